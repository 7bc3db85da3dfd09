"""Structural-schema pruning, defaulting and validation of custom objects (``openAPIV3Schema``).

The target is what a real kube-apiserver answers, not what a generic JSON-Schema library says:
the same order (prune, default, validate), the same field paths (``spec.items[0].name``) and the
same message shapes (``spec.x: Invalid value: "1": spec.x in body should match '^a$'``).
CEL rules (``x-kubernetes-validations``) are not evaluated.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime
import ipaddress
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tksh.sandbox.apiserver.errors import JSON, Cause, Obj, go_value
from tksh.sandbox.apiserver.patching import json_equal

Schema = Mapping[str, Any]

OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
    "ownerReferences", "finalizers", "managedFields",
})

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}"
                       r"[A-Za-z0-9])?)*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class Outcome:
    obj: Obj
    pruned: list[str] = field(default_factory=list)  # paths of the dropped unknown fields
    causes: list[Cause] = field(default_factory=list)  # all violations; empty if valid


def process(obj: Obj, schema: Schema | None) -> Outcome:
    """Prune unknown fields, apply defaults, then validate; ``obj`` itself is not modified."""
    result = copy.deepcopy(obj)
    if schema is None:
        return Outcome(result)
    pruned: list[str] = []
    result = _prune(result, schema, "", pruned, resource=True)
    result = _default(result, schema)
    causes: list[Cause] = []
    _validate(result, schema, "", causes)
    return Outcome(result, pruned, causes)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def prune_metadata(meta: JSON, path: str, pruned: list[str]) -> JSON:
    if not isinstance(meta, dict):
        return meta
    for key in [k for k in meta if k not in OBJECT_META_FIELDS]:
        pruned.append(_join(path, key))
        del meta[key]
    return meta


def _prune(value: JSON, schema: Schema, path: str, pruned: list[str], *, resource: bool = False) -> JSON:
    resource = resource or schema.get("x-kubernetes-embedded-resource") is True
    if isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            return [_prune(item, items, f"{path}[{i}]", pruned) for i, item in enumerate(value)]
        return value
    if not isinstance(value, dict):
        return value
    props: Mapping[str, Any] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    result: Obj = {}
    for key, sub in value.items():
        sub_path = _join(path, key)
        if resource and key in ("apiVersion", "kind"):
            result[key] = sub
        elif resource and key == "metadata":
            result[key] = prune_metadata(sub, sub_path, pruned)
        elif key in props:
            result[key] = _prune(sub, props[key], sub_path, pruned)
        elif isinstance(additional, Mapping):
            result[key] = _prune(sub, additional, sub_path, pruned)
        elif additional is True or preserve:
            result[key] = sub
        else:
            pruned.append(sub_path)
    return result


def _default(value: JSON, schema: Schema) -> JSON:
    if isinstance(value, list):
        items = schema.get("items")
        return [_default(item, items) for item in value] if isinstance(items, Mapping) else value
    if not isinstance(value, dict):
        return value
    props: Mapping[str, Any] = schema.get("properties") or {}
    for key, sub in props.items():
        if "default" in sub and (key not in value or (value[key] is None and not sub.get("nullable"))):
            value[key] = copy.deepcopy(sub["default"])
    additional = schema.get("additionalProperties")
    for key in value:
        if key in props:
            value[key] = _default(value[key], props[key])
        elif isinstance(additional, Mapping):
            value[key] = _default(value[key], additional)
    return value


def json_type(value: JSON) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _type_ok(value: JSON, expected: str) -> bool:
    actual = json_type(value)
    if expected == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    if expected == "number":
        return actual in ("integer", "number")
    return actual == expected


def _format_ok(value: str, fmt: str) -> bool:
    try:
        if fmt in ("date-time", "datetime"):
            if not _DATE_TIME.match(value):
                return False
            datetime.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00").replace("t", "T"))
        elif fmt == "date":
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                return False
            datetime.date.fromisoformat(value)
        elif fmt == "uuid":
            uuid.UUID(value)
        elif fmt == "ipv4":
            ipaddress.IPv4Address(value)
        elif fmt == "ipv6":
            ipaddress.IPv6Address(value)
        elif fmt == "cidr":
            ipaddress.ip_network(value, strict=False)
        elif fmt == "byte":
            base64.b64decode(value, validate=True)
        elif fmt == "hostname":
            return bool(_HOSTNAME.match(value))
        elif fmt == "email":
            return bool(_EMAIL.match(value))
    except (ValueError, binascii.Error):
        return False
    return True  # unknown formats are not checked, as on a real server


def _invalid(causes: list[Cause], path: str, value: JSON, detail: str, reason: str = "FieldValueInvalid") -> None:
    causes.append(Cause(reason, path, f"Invalid value: {go_value(value)}: {detail}"))


def _validate(value: JSON, schema: Schema, path: str, causes: list[Cause]) -> None:
    name = path or "body"
    if value is None and schema.get("nullable"):
        return
    expected = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or (_type_ok(value, "integer") and not isinstance(value, bool))):
            actual = json_type(value)
            _invalid(causes, path, actual, f'{name} in body must be of type integer,string: "{actual}"',
                     "FieldValueTypeInvalid")
            return
    elif isinstance(expected, str) and not _type_ok(value, expected):
        actual = json_type(value)
        _invalid(causes, path, actual, f'{name} in body must be of type {expected}: "{actual}"',
                 "FieldValueTypeInvalid")
        return
    elif value is None and expected is None and not schema.get("x-kubernetes-preserve-unknown-fields"):
        _invalid(causes, path, "null", f'{name} in body must not be null', "FieldValueTypeInvalid")
        return

    enum = schema.get("enum")
    if enum is not None and not any(json_equal(value, allowed) for allowed in enum):
        supported = ", ".join(json.dumps(v, ensure_ascii=False) if isinstance(v, str) else go_value(v) for v in enum)
        causes.append(Cause("FieldValueNotSupported", path,
                            f"Unsupported value: {go_value(value)}: supported values: {supported}"))

    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            causes.append(Cause("FieldValueTooLong", path, f"Too long: may not be longer than {schema['maxLength']}"))
        if "minLength" in schema and len(value) < schema["minLength"]:
            _invalid(causes, path, value, f"{name} in body should be at least {schema['minLength']} chars long")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            _invalid(causes, path, value, f"{name} in body should match '{schema['pattern']}'")
        fmt = schema.get("format")
        if isinstance(fmt, str) and not _format_ok(value, fmt):
            _invalid(causes, path, value, f"{name} in body must be of type {fmt}: {go_value(value)}")

    if json_type(value) in ("integer", "number"):
        _validate_number(value, schema, path, name, causes)

    if isinstance(value, list):
        _validate_array(value, schema, path, name, causes)

    if isinstance(value, dict):
        _validate_object(value, schema, path, name, causes)

    for sub in schema.get("allOf") or ():
        _validate(value, sub, path, causes)
    for keyword in ("anyOf", "oneOf"):
        options = schema.get(keyword)
        if options:
            passed = sum(1 for sub in options if not _sub_causes(value, sub, path))
            if passed < 1 or (keyword == "oneOf" and passed > 1):
                wording = "at least one schema (anyOf)" if keyword == "anyOf" else "one and only one schema (oneOf)"
                _invalid(causes, path, value, f"{name} in body must validate {wording}")
    if "not" in schema and not _sub_causes(value, schema["not"], path):
        _invalid(causes, path, value, f"{name} in body must not validate the schema (not)")


def _sub_causes(value: JSON, schema: Schema, path: str) -> list[Cause]:
    found: list[Cause] = []
    _validate(value, schema, path, found)
    return found


def _validate_number(value: float, schema: Schema, path: str, name: str, causes: list[Cause]) -> None:
    if "minimum" in schema:
        bound = schema["minimum"]
        if value < bound or (schema.get("exclusiveMinimum") is True and value == bound):
            word = "greater than" if schema.get("exclusiveMinimum") is True else "greater than or equal to"
            _invalid(causes, path, value, f"{name} in body should be {word} {go_value(bound)}")
    if "maximum" in schema:
        bound = schema["maximum"]
        if value > bound or (schema.get("exclusiveMaximum") is True and value == bound):
            word = "less than" if schema.get("exclusiveMaximum") is True else "less than or equal to"
            _invalid(causes, path, value, f"{name} in body should be {word} {go_value(bound)}")
    step = schema.get("multipleOf")
    if step and (value / step) != int(value / step):
        _invalid(causes, path, value, f"{name} in body should be a multiple of {go_value(step)}")


def _validate_array(value: list[Any], schema: Schema, path: str, name: str, causes: list[Cause]) -> None:
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        causes.append(Cause("FieldValueTooMany", path,
                            f"Too many: {len(value)}: must have at most {schema['maxItems']} items"))
    if "minItems" in schema and len(value) < schema["minItems"]:
        _invalid(causes, path, len(value), f"{name} in body should have at least {schema['minItems']} items")
    items = schema.get("items")
    keys = schema.get("x-kubernetes-list-map-keys") or ()
    unique = schema.get("uniqueItems") is True or schema.get("x-kubernetes-list-type") in ("set", "map")
    seen: list[JSON] = []
    for i, item in enumerate(value):
        if isinstance(items, Mapping):
            _validate(item, items, f"{path}[{i}]", causes)
        identity = {k: item.get(k) for k in keys} if keys and isinstance(item, dict) else item
        if unique and any(json_equal(identity, other) for other in seen):
            causes.append(Cause("FieldValueDuplicate", f"{path}[{i}]", f"Duplicate value: {go_value(identity)}"))
        seen.append(identity)


def _validate_object(value: Obj, schema: Schema, path: str, name: str, causes: list[Cause]) -> None:
    props: Mapping[str, Any] = schema.get("properties") or {}
    for key in schema.get("required") or ():
        if key not in value:
            causes.append(Cause("FieldValueRequired", _join(path, key), "Required value"))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        causes.append(Cause("FieldValueTooMany", path,
                            f"Too many: {len(value)}: must have at most {schema['maxProperties']} items"))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        _invalid(causes, path, len(value), f"{name} in body should have at least {schema['minProperties']} properties")
    additional = schema.get("additionalProperties")
    for key, sub in value.items():
        if not path and key in ("apiVersion", "kind", "metadata") and key not in props:
            continue
        if key in props:
            _validate(sub, props[key], _join(path, key), causes)
        elif isinstance(additional, Mapping):
            _validate(sub, additional, _join(path, key), causes)
