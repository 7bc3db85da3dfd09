"""What the API server does to an object with our CRDs, done in Python: prune, default, validate.

Used by the tests (example objects must pass and bad ones fail, naming the field) and available to
anything that lacks a real API server behind it (an embedded server, a dry run). It follows the
apiextensions.k8s.io/v1 semantics closely enough for our schemas: unknown fields are what pruning
would drop; defaults fill absent fields of present objects (a defaulted object gets its own
defaults); validation is OpenAPI v3.0 (JSON Schema draft 4 semantics) plus ``date-time`` and
``int64`` formats and the uniqueness of ``x-kubernetes-list-type: set|map`` lists.
"""

from __future__ import annotations

import copy
import datetime
import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema

from tksh.resources.base import CRDInfo
from tksh.resources.schema import resource_schema

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_REQUIRED = re.compile(r"^'(?P<name>[^']+)' is a required property$")


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    try:
        datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_int64(value: object) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


FORMAT_CHECKER = jsonschema.FormatChecker(formats=())
FORMAT_CHECKER.checkers["date-time"] = (_is_date_time, ())
FORMAT_CHECKER.checkers["int64"] = (_is_int64, ())


def _list_type(
    validator: Any, list_type: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if not isinstance(instance, list) or list_type not in ("set", "map"):
        return
    keys = schema.get("x-kubernetes-list-map-keys") or []
    seen: dict[str, int] = {}
    for index, item in enumerate(instance):
        if list_type == "map":
            identity = repr([item.get(key) for key in keys]) if isinstance(item, dict) else repr(item)
            described = ", ".join(f"{key}={item.get(key)!r}" for key in keys) if isinstance(item, dict) else repr(item)
        else:
            identity = described = repr(item)
        if identity in seen:
            yield jsonschema.ValidationError(f"duplicate entry {described} (also at [{seen[identity]}])", path=[index])
        else:
            seen[identity] = index


_Validator = jsonschema.validators.extend(jsonschema.Draft4Validator, {"x-kubernetes-list-type": _list_type})


def field_path(parts: Any) -> str:
    """``["spec", "rights", 0, "category"]`` as ``spec.rights[0].category``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<root>"


def schema_errors(schema: Mapping[str, Any], instance: Any) -> list[str]:
    """Every way ``instance`` breaks ``schema``, as ``path: message``, sorted by path."""
    problems = []
    for error in _Validator(schema, format_checker=FORMAT_CHECKER).iter_errors(instance):
        parts = list(error.absolute_path)
        if error.validator == "required" and (match := _REQUIRED.match(error.message)):
            parts.append(match["name"])
            problems.append(f"{field_path(parts)}: required")
        else:
            problems.append(f"{field_path(parts)}: {error.message}")
    return sorted(problems)


def unknown_fields(schema: Mapping[str, Any], instance: Any, path: tuple[Any, ...] = ()) -> list[str]:
    """The field paths the API server would prune from ``instance`` (not declared in ``schema``)."""
    found: list[str] = []
    if schema.get("x-kubernetes-preserve-unknown-fields") or path == ("metadata",):
        return found
    if isinstance(instance, dict) and schema.get("type") == "object":
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        for key, value in instance.items():
            if properties is not None and key in properties:
                found += unknown_fields(properties[key], value, (*path, key))
            elif isinstance(additional, dict):
                found += unknown_fields(additional, value, (*path, key))
            else:
                found.append(field_path((*path, key)))
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(instance):
            found += unknown_fields(schema["items"], item, (*path, index))
    return found


def apply_defaults(schema: Mapping[str, Any], instance: Any) -> Any:
    """A copy of ``instance`` with the schema's defaults filled in where fields are absent."""
    result = copy.deepcopy(instance)
    _default_in_place(schema, result)
    return result


def _default_in_place(schema: Mapping[str, Any], instance: Any) -> None:
    if isinstance(instance, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance:
                _default_in_place(sub, instance[key])
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for value in instance.values():
                _default_in_place(additional, value)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            _default_in_place(schema["items"], item)


@functools.cache
def _schema_of(info: CRDInfo) -> dict[str, Any]:
    return resource_schema(info)


def admit(info: CRDInfo, body: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Treat ``body`` as the API server would on create: prune (unknown fields, nulls), default, validate.

    Returns the object as it would be stored and the list of validation errors (empty when accepted).
    """
    schema = _schema_of(info)
    pruned = _prune(schema, dict(body), ())
    stored = apply_defaults(schema, pruned)
    return stored, schema_errors(schema, stored)


def _prune(schema: Mapping[str, Any], instance: Any, path: tuple[Any, ...]) -> Any:
    if schema.get("x-kubernetes-preserve-unknown-fields") or path == ("metadata",):
        return instance
    if isinstance(instance, dict) and schema.get("type") == "object":
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        if properties is not None:
            return {
                key: _prune(properties[key], value, (*path, key))
                for key, value in instance.items()
                if key in properties and value is not None
            }
        if isinstance(additional, dict):
            return {
                key: _prune(additional, value, (*path, key)) for key, value in instance.items() if value is not None
            }
        return {}
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        return [_prune(schema["items"], item, (*path, index)) for index, item in enumerate(instance)]
    return instance
