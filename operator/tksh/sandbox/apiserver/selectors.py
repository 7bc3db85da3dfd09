"""Label and field selectors, parsed and matched as the real API server does."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tksh.sandbox.apiserver.errors import APIError

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_SET_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)\s*$")
_OP_RE = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|!=|=|>|<)\s*(?P<value>[^=!<>\s]*)\s*$")
_EXISTS_RE = re.compile(rf"^\s*(?P<neg>!?)\s*(?P<key>{_KEY})\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # in, notin, exists, !exists, gt, lt  (= and == become "in", != becomes "notin")
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        try:  # gt / lt: both sides must be integers
            number, bound = int(value or ""), int(self.values[0])
        except ValueError:
            return False
        return number > bound if self.op == "gt" else number < bound


def _split(selector: str) -> list[str]:
    """Split at commas outside of parentheses."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, char in enumerate(selector):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(selector[start:i])
            start = i + 1
    parts.append(selector[start:])
    return [part for part in parts if part.strip()]


def parse_labels(selector: str | None) -> list[Requirement]:
    """Parse ``a=b,c!=d,e in (x,y),f notin (z),g,!h,n>1`` into requirements; 400 on garbage."""
    result: list[Requirement] = []
    for part in _split(selector or ""):
        if match := _SET_RE.match(part):
            values = tuple(v.strip() for v in match["values"].split(",") if v.strip())
            result.append(Requirement(match["key"], match["op"], values))
        elif match := _OP_RE.match(part):
            op = {"=": "in", "==": "in", "!=": "notin", ">": "gt", "<": "lt"}[match["op"]]
            if op in ("gt", "lt") and not re.fullmatch(r"-?\d+", match["value"]):
                raise APIError(400, f"unable to parse requirement: for 'Gt', 'Lt' operators, "
                                    f"the value must be an integer: {part.strip()}")
            result.append(Requirement(match["key"], op, (match["value"],)))
        elif match := _EXISTS_RE.match(part):
            result.append(Requirement(match["key"], "!exists" if match["neg"] else "exists"))
        else:
            raise APIError(400, f"unable to parse requirement: found '{part.strip()}', expected: label selector")
    return result


def labels_match(requirements: Sequence[Requirement], obj: Mapping[str, Any]) -> bool:
    labels: Mapping[str, str] = (obj.get("metadata") or {}).get("labels") or {}
    return all(req.matches(labels) for req in requirements)


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    value: str
    negate: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return (field_value(obj, self.path) == self.value) != self.negate


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """A field's value as the server compares it in field selectors: a string, "" when absent."""
    current: Any = obj
    for part in path.split("."):
        current = current.get(part) if isinstance(current, Mapping) else None
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


def parse_fields(selector: str | None, allowed: Sequence[str], kind: str, api_version: str) -> list[FieldRequirement]:
    """Parse ``metadata.name=x,spec.y!=z``; fields not selectable for the resource are a 400, as on a real server."""
    result: list[FieldRequirement] = []
    for part in _split(selector or ""):
        match = re.match(r"^\s*([^=!\s]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if not match:
            raise APIError(400, f"invalid selector: '{selector}'; can't understand '{part}'")
        path, op, value = match.groups()
        if path not in allowed:
            raise APIError(400, f'field label not supported: {path}',
                           details={"causes": [{"reason": "FieldValueInvalid", "field": "fieldSelector",
                                                "message": f'"{path}" is not a known field selector: '
                                                           f'only "{", ".join(allowed)}"'}],
                                    "kind": kind, "group": api_version})
        result.append(FieldRequirement(path, value, op == "!="))
    return result


def fields_match(requirements: Sequence[FieldRequirement], obj: Mapping[str, Any]) -> bool:
    return all(req.matches(obj) for req in requirements)


Matcher = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Selection:
    """A label and field selection; ``name`` is the one name a ``metadata.name=`` requirement leaves, which a
    list then reads directly (as the real server does) instead of matching every object of the resource."""

    labels: Sequence[Requirement]
    fields: Sequence[FieldRequirement]

    def __call__(self, obj: Mapping[str, Any]) -> bool:
        return labels_match(self.labels, obj) and fields_match(self.fields, obj)

    @property
    def name(self) -> str | None:
        for req in self.fields:
            if req.path == "metadata.name" and not req.negate:
                return req.value
        return None


def make_matcher(labels: Sequence[Requirement], fields: Sequence[FieldRequirement]) -> Selection:
    return Selection(tuple(labels), tuple(fields))
