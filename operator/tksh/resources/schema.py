"""From the pydantic models to Kubernetes: structural ``openAPIV3Schema`` and whole CRD manifests.

The models' JSON schema (``mode="validation"``: what a client may send) is rewritten into the
dialect the API server accepts (apiextensions.k8s.io/v1, structural):

- ``$ref``/``$defs`` are inlined (the API server has no references);
- ``Optional[X]`` (``anyOf: [X, {type: null}]``) becomes ``X``, simply not required (no ``nullable``:
  the API server drops nulls, and a merge patch's null deletes the field, as it should);
- ``const`` becomes a one-value ``enum``; ``title`` and ``examples`` are dropped;
- ``uniqueItems`` (forbidden in CRDs: quadratic) becomes ``x-kubernetes-list-type: set``;
- ``default: null`` and ``default: []`` are dropped (absent is the same as empty), other defaults kept;
- descriptions come from the docstrings, paragraphs unwrapped;
- anything the converter does not understand (unions, ``exclusiveMinimum``, ``patternProperties``...)
  raises :class:`SchemaError` rather than producing a schema the API server would refuse.

Output is deterministic: keys in a fixed order, properties in the models' field order.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from tksh.resources.base import CRDInfo, camel
from tksh.resources.common import StatusBase

CRD_API_VERSION = "apiextensions.k8s.io/v1"

_KEY_ORDER = (
    "description",
    "type",
    "format",
    "enum",
    "default",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "items",
    "properties",
    "required",
    "additionalProperties",
)
_COPIED = frozenset(
    {"type", "format", "pattern", "minLength", "maxLength", "minimum", "maximum", "multipleOf", "minItems", "maxItems"}
)
_DROPPED = frozenset({"title", "examples", "$defs"})

API_VERSION_DESCRIPTION = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
    "recognized schemas to the latest internal value, and may reject unrecognized values."
)
KIND_DESCRIPTION = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer this "
    "from the endpoint the client submits requests to. In CamelCase."
)


class SchemaError(ValueError):
    """A model uses a construct that has no structural-schema equivalent here."""


def describe(text: str | None) -> str:
    """A docstring as a description: paragraphs kept, the lines of each paragraph joined, ``code`` as `code`."""
    if not text:
        return ""
    text = text.replace("``", "`")
    paragraphs = [" ".join(line.strip() for line in block.splitlines()) for block in text.strip().split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural openAPIV3Schema of one model (e.g. a resource's spec)."""
    raw = model.model_json_schema(mode="validation", by_alias=True)
    defs: dict[str, Any] = raw.pop("$defs", {})
    return _convert(raw, defs, model.__name__)


def _flatten(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    """Resolve references and optional-unions into one node; the outer node's keys win."""
    node = dict(node)
    if "$ref" in node:
        name = node.pop("$ref").rsplit("/", 1)[-1]
        if name not in defs:
            raise SchemaError(f"{path}: unresolved reference {name!r}")
        node = {**_flatten(defs[name], defs, path), **node}
    if "allOf" in node:
        parts = node.pop("allOf")
        if len(parts) != 1:
            raise SchemaError(f"{path}: allOf with {len(parts)} members is not supported")
        node = {**_flatten(parts[0], defs, path), **node}
    if "anyOf" in node:
        options = [option for option in node.pop("anyOf") if option != {"type": "null"}]
        if len(options) != 1:
            raise SchemaError(f"{path}: unions are not supported in a structural schema (use one type per field)")
        node = {**_flatten(options[0], defs, path), **node}
    return node


def _convert(raw: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    node = _flatten(raw, defs, path)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "description":
            if text := describe(value):
                out["description"] = text
        elif key in _COPIED or key.startswith("x-kubernetes-"):
            out[key] = value
        elif key == "const":
            out["enum"] = [value]
        elif key == "enum":
            out["enum"] = list(value)
        elif key == "default":
            if value is not None and value != []:
                out["default"] = value
        elif key == "properties":
            out["properties"] = {name: _convert(sub, defs, f"{path}.{name}") for name, sub in value.items()}
        elif key == "required":
            out["required"] = list(value)
        elif key == "items":
            out["items"] = _convert(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            if value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out["additionalProperties"] = _convert(value, defs, f"{path}{{}}")
        elif key == "uniqueItems":
            if value:
                out.setdefault("x-kubernetes-list-type", "set")
        else:
            raise SchemaError(f"{path}: the keyword {key!r} has no structural-schema equivalent here")
    if "enum" in out and "type" not in out:
        out["type"] = _enum_type(out["enum"], path)
    if "properties" in out:
        out["type"] = "object"
    return _ordered(out)


def _enum_type(values: list[Any], path: str) -> str:
    kinds = {type(value) for value in values}
    for python, openapi in ((str, "string"), (bool, "boolean"), (int, "integer")):
        if kinds == {python}:
            return openapi
    raise SchemaError(f"{path}: an enum must have values of one scalar type, got {sorted(k.__name__ for k in kinds)}")


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    rank = {key: index for index, key in enumerate(_KEY_ORDER)}
    return {key: node[key] for key in sorted(node, key=lambda k: (rank.get(k, len(rank)), k))}


def resource_schema(info: CRDInfo) -> dict[str, Any]:
    """The whole openAPIV3Schema of a resource: apiVersion, kind, metadata, spec, status."""
    spec = openapi_schema(info.spec)
    status = openapi_schema(info.status)
    # The fields every status shares (StatusBase) come last, after the resource's own (phase first).
    shared = [camel(name) for name in StatusBase.model_fields]
    own = {k: v for k, v in status.get("properties", {}).items() if k not in shared}
    status["properties"] = {**own, **{k: v for k, v in status.get("properties", {}).items() if k in shared}}
    schema: dict[str, Any] = {
        "description": describe(info.model.__doc__),
        "type": "object",
        "properties": {
            "apiVersion": {"description": API_VERSION_DESCRIPTION, "type": "string"},
            "kind": {"description": KIND_DESCRIPTION, "type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    if spec.get("required"):
        schema["required"] = ["spec"]
    return schema


def crd_manifest(info: CRDInfo) -> dict[str, Any]:
    """The CustomResourceDefinition of one resource, as a plain dict ready to be dumped as YAML."""
    names: dict[str, Any] = {
        "kind": info.kind,
        "listKind": info.list_kind,
        "plural": info.plural,
        "singular": info.singular,
    }
    if info.short_names:
        names["shortNames"] = list(info.short_names)
    if info.categories:
        names["categories"] = list(info.categories)
    version: dict[str, Any] = {
        "name": info.version,
        "served": True,
        "storage": True,
        "subresources": {"status": {}},
        "additionalPrinterColumns": [column.to_kube() for column in info.printer_columns],
        "schema": {"openAPIV3Schema": resource_schema(info)},
    }
    return {
        "apiVersion": CRD_API_VERSION,
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": info.crd_name,
            "labels": {"app.kubernetes.io/name": "tksh", "app.kubernetes.io/part-of": "tksh"},
        },
        "spec": {
            "group": info.group,
            "names": names,
            "scope": info.scope,
            "versions": [version],
        },
    }
