"""Kubernetes ``Status`` errors, shaped like the real API server's."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

JSON = Any  # a decoded JSON value: dict, list, str, int, float, bool or None
Obj = dict[str, Any]  # a decoded JSON object (a Kubernetes object, a patch, a schema)

REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Gone",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass(frozen=True)
class Cause:
    """One field violation, as in ``Status.details.causes[]``."""

    reason: str  # FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, FieldValueTypeInvalid, ...
    field: str  # e.g. "spec.owner.bin"
    body: str  # e.g. 'Invalid value: "1": spec.owner.bin in body should match ...' (Go's ErrorBody())

    @property
    def message(self) -> str:
        """The whole line, as in the Status message: ``spec.x: Invalid value: ...``."""
        return f"{self.field}: {self.body}" if self.field else self.body

    def as_dict(self) -> Obj:
        return {"reason": self.reason, "message": self.body, "field": self.field}


@dataclass
class APIError(Exception):
    """An error answered as a ``kind: Status`` body with the given HTTP code."""

    code: int
    message: str
    reason: str = ""
    details: Obj | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)
        if not self.reason:
            self.reason = REASONS.get(self.code, "Unknown")

    def status(self) -> Obj:
        return status_body(self.code, self.reason, self.message, self.details)

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"


def status_body(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def _details(name: str | None, group: str, kind: str) -> Obj:
    details: Obj = {"kind": kind}
    if name is not None:
        details["name"] = name
    if group:
        details["group"] = group
    return details


def not_found(plural: str, group: str, name: str) -> APIError:
    res = f"{plural}.{group}" if group else plural
    return APIError(404, f'{res} "{name}" not found', details=_details(name, group, plural))


def no_such_resource() -> APIError:
    return APIError(404, "the server could not find the requested resource", details={})


def already_exists(plural: str, group: str, name: str) -> APIError:
    res = f"{plural}.{group}" if group else plural
    return APIError(409, f'{res} "{name}" already exists', "AlreadyExists", _details(name, group, plural))


def conflict(plural: str, group: str, name: str, why: str | None = None) -> APIError:
    res = f"{plural}.{group}" if group else plural
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return APIError(409, f'Operation cannot be fulfilled on {res} "{name}": {why}', "Conflict",
                    _details(name, group, plural))


def bad_request(message: str) -> APIError:
    return APIError(400, message)


def invalid(kind: str, group: str, name: str, causes: Sequence[Cause]) -> APIError:
    """422 Invalid with the real server's message: ``Kind.group "name" is invalid: a, b``."""
    qualified = f"{kind}.{group}" if group else kind
    lines = [cause.message for cause in causes]
    joined = lines[0] if len(lines) == 1 else "[" + ", ".join(lines) + "]"
    details = _details(name, group, kind)
    details["causes"] = [cause.as_dict() for cause in causes]
    return APIError(422, f'{qualified} "{name}" is invalid: {joined}', "Invalid", details)


def go_value(value: JSON) -> str:
    """Render a value roughly as Go's ``field.Error`` does: strings quoted, numbers bare."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
