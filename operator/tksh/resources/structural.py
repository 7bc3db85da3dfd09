"""A checker for the rules the API server applies to a CRD's schema, so that a bad schema fails a unit
test here rather than ``kubectl apply`` in a cluster.

It follows the apiextensions.k8s.io/v1 rules for structural schemas and the static validation of
``openAPIV3Schema``: every node has a ``type`` (unless ``x-kubernetes-int-or-string`` or
``x-kubernetes-preserve-unknown-fields``); arrays have ``items``; no ``$ref``, ``definitions``,
``patternProperties``, ``dependencies``, ``additionalItems``, ``id``; ``uniqueItems`` is never true;
``properties`` and ``additionalProperties`` exclude each other and ``additionalProperties`` is not
false; inside ``anyOf``/``allOf``/``oneOf``/``not`` there are no ``type``, ``description``, ``default``,
``additionalProperties`` or ``nullable``, and every field named there is also specified outside;
``x-kubernetes-list-type`` is atomic, set (scalar items) or map (keys: scalar item properties that are
required or defaulted); ``required`` names declared properties; the root metadata is not
described beyond ``type: object``; unknown keywords are refused (the API server's strict decoding
would); defaults validate against their own node.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema

ALLOWED_KEYS = frozenset(
    {
        "description", "type", "format", "title", "default", "maximum", "exclusiveMaximum", "minimum",
        "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems", "multipleOf", "enum",
        "maxProperties", "minProperties", "required", "items", "allOf", "oneOf", "anyOf", "not", "properties",
        "additionalProperties", "externalDocs", "example", "nullable",
        "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string",
        "x-kubernetes-list-map-keys", "x-kubernetes-list-type", "x-kubernetes-map-type", "x-kubernetes-validations",
    }
)  # fmt: skip
TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean"})
FORMATS = frozenset(
    {
        "bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "uuid3", "uuid4",
        "uuid5", "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor", "rgbcolor", "byte", "password",
        "date", "duration", "datetime", "date-time", "int32", "int64", "float", "double",
    }
)  # fmt: skip
FORBIDDEN = {
    "$ref": "$ref is not supported",
    "definitions": "definitions is not supported",
    "$defs": "$defs is not supported",
    "patternProperties": "patternProperties is not supported",
    "dependencies": "dependencies is not supported",
    "additionalItems": "additionalItems is not supported",
    "id": "id is not supported",
    "const": "const is not supported (use a one-value enum)",
}
JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
FORBIDDEN_IN_JUNCTORS = ("type", "description", "default", "additionalProperties", "nullable")
INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]
SCALARS = frozenset({"string", "integer", "number", "boolean"})


def check_structural(schema: dict[str, Any], path: str = "openAPIV3Schema") -> list[str]:
    """Every violation found in a CRD version's ``openAPIV3Schema``; empty when the API server would accept it."""
    problems = list(_check(schema, path, root=True))
    if schema.get("type") != "object":
        problems.append(f"{path}.type: the root must be of type object")
    metadata = schema.get("properties", {}).get("metadata")
    if metadata is not None and set(metadata) - {"type", "description"}:
        problems.append(f"{path}.properties.metadata: only `type: object` is allowed for the root metadata")
    return problems


def _check(node: Any, path: str, *, root: bool = False, in_junctor: bool = False) -> Iterator[str]:
    if not isinstance(node, dict):
        yield f"{path}: must be a schema object, got {type(node).__name__}"
        return
    for key in node:
        if key in FORBIDDEN:
            yield f"{path}.{key}: {FORBIDDEN[key]}"
        elif key not in ALLOWED_KEYS:
            yield f"{path}.{key}: unknown keyword (the API server would refuse or drop it)"
    if node.get("uniqueItems") is True:
        yield f"{path}.uniqueItems: cannot be true (use x-kubernetes-list-type: set or map)"
    kind = node.get("type")
    if in_junctor:
        for key in FORBIDDEN_IN_JUNCTORS:
            if key in node:
                yield f"{path}.{key}: must not be set inside allOf/anyOf/oneOf/not"
    elif kind is None:
        if not (node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")):
            yield f"{path}.type: required (a structural schema types every node)"
    elif kind not in TYPES:
        yield f"{path}.type: {kind!r} is not one of {sorted(TYPES)}"
    if "format" in node and node["format"] not in FORMATS:
        yield f"{path}.format: {node['format']!r} is not a format the API server knows"
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if key in node and not isinstance(node[key], bool):
            yield f"{path}.{key}: must be a boolean in OpenAPI v3.0"
    yield from _check_object(node, path)
    yield from _check_array(node, path, in_junctor=in_junctor)
    yield from _check_junctors(node, path)
    if "default" in node and not in_junctor:
        if root:
            yield f"{path}.default: not allowed at the root"
        else:
            errors = sorted(jsonschema.Draft4Validator(_without_defaults(node)).iter_errors(node["default"]), key=str)
            for error in errors:
                yield f"{path}.default: {error.message}"


def _check_object(node: dict[str, Any], path: str) -> Iterator[str]:
    properties = node.get("properties")
    additional = node.get("additionalProperties")
    if properties is not None:
        if node.get("type") not in (None, "object"):
            yield f"{path}.properties: only objects have properties"
        for name, sub in properties.items():
            yield from _check(sub, f"{path}.properties.{name}")
        for name in node.get("required", []):
            if name not in properties:
                yield f"{path}.required: {name!r} is not a declared property"
    if additional is not None:
        if properties:
            yield f"{path}.additionalProperties: additionalProperties and properties are mutually exclusive"
        if additional is False:
            yield f"{path}.additionalProperties: cannot be false"
        elif isinstance(additional, dict):
            yield from _check(additional, f"{path}.additionalProperties")


def _check_array(node: dict[str, Any], path: str, *, in_junctor: bool) -> Iterator[str]:
    items = node.get("items")
    list_type = node.get("x-kubernetes-list-type")
    if node.get("type") == "array" and items is None and not in_junctor:
        yield f"{path}.items: an array must describe its items"
    if isinstance(items, list):
        yield f"{path}.items: must be a schema object and not an array"
        return
    if items is not None:
        yield from _check(items, f"{path}.items", in_junctor=in_junctor)
    if list_type is None:
        if "x-kubernetes-list-map-keys" in node:
            yield f"{path}.x-kubernetes-list-type: must be map if x-kubernetes-list-map-keys is set"
        return
    if node.get("type") != "array":
        yield f"{path}.type: must be array if x-kubernetes-list-type is set"
    if list_type not in ("atomic", "set", "map"):
        yield f"{path}.x-kubernetes-list-type: {list_type!r} is not atomic, set or map"
    item = items if isinstance(items, dict) else {}
    if list_type == "set" and item.get("type") not in SCALARS and item.get("x-kubernetes-map-type") != "atomic":
        yield f"{path}.items: the items of a set must be scalars (or atomic)"
    if list_type == "map":
        keys = node.get("x-kubernetes-list-map-keys") or []
        if not keys:
            yield f"{path}.x-kubernetes-list-map-keys: must not be empty if x-kubernetes-list-type is map"
        if item.get("type") != "object":
            yield f"{path}.items.type: must be object if x-kubernetes-list-type is map"
        item_properties = item.get("properties", {})
        for key in keys:
            prop = item_properties.get(key)
            if prop is None:
                yield f"{path}.x-kubernetes-list-map-keys: {key!r} is not a property of the items"
            elif prop.get("type") not in SCALARS:
                yield f"{path}.items.properties.{key}: a map key must be a scalar"
            elif key not in item.get("required", []) and "default" not in prop:
                yield f"{path}.items.properties.{key}: a map key must be required or have a default"


def _check_junctors(node: dict[str, Any], path: str) -> Iterator[str]:
    declared = set(node.get("properties", {}))
    for junctor in JUNCTORS:
        if junctor not in node:
            continue
        members = [node[junctor]] if junctor == "not" else node[junctor]
        if node.get("x-kubernetes-int-or-string") and junctor == "anyOf" and members == INT_OR_STRING:
            continue  # the one pattern in which types are allowed inside a junctor
        for index, member in enumerate(members):
            where = f"{path}.{junctor}" if junctor == "not" else f"{path}.{junctor}[{index}]"
            yield from _check(member, where, in_junctor=True)
            for name in member.get("properties", {}) if isinstance(member, dict) else ():
                if name not in declared:
                    yield f"{where}.properties.{name}: must also be specified outside {junctor}"


def _without_defaults(node: Any) -> Any:
    """A node's schema minus its own defaults, to validate a default against (draft 4 ≈ OpenAPI v3.0)."""
    if isinstance(node, dict):
        return {key: _without_defaults(value) for key, value in node.items() if key != "default"}
    if isinstance(node, list):
        return [_without_defaults(value) for value in node]
    return node
