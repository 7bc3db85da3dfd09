"""JSON merge patches (RFC 7386) and JSON patches (RFC 6902), with the real server's error classes."""

from __future__ import annotations

import copy
import json
from typing import Any

from tksh.sandbox.apiserver.errors import JSON, APIError, Obj

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
CRD_PATCH_TYPES = (JSON_PATCH, MERGE)


class PatchFailed(Exception):
    """The patch is well-formed but cannot be applied (a failed ``test``, a missing path): 422."""


def json_equal(a: JSON, b: JSON) -> bool:
    """Equality of JSON values, where ``true != 1`` and ``1 == 1.0`` (as in Go's JSON semantics)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def merge_patch(target: JSON, patch: JSON) -> JSON:
    """RFC 7386: objects merge recursively, ``null`` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: Obj = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strip_directives(patch: JSON) -> JSON:
    """Drop strategic-merge directives (``$patch``, ``$setElementOrder/...``, ``$retainKeys``...)."""
    if isinstance(patch, dict):
        return {k: strip_directives(v) for k, v in patch.items() if not k.startswith("$")}
    if isinstance(patch, list):
        return [strip_directives(v) for v in patch]
    return patch


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchFailed(f"invalid JSON pointer: {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list[Any], token: str, path: str, *, adding: bool) -> int:
    if token == "-" and adding:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchFailed(f"invalid array index {token!r} in path {path}")
    index = int(token)
    if index > len(container) or (index == len(container) and not adding):
        raise PatchFailed(f"array index {index} out of bounds in path {path}")
    return index


def _parent(doc: JSON, path: str) -> tuple[JSON, str]:
    tokens = _pointer(path)
    if not tokens:
        raise PatchFailed("the root of the document cannot be targeted here")
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, path, adding=False)]
        else:
            raise PatchFailed(f"doc is missing path: {path}")
    return node, tokens[-1]


def _get(doc: JSON, path: str) -> JSON:
    if path == "":
        return doc
    parent, token = _parent(doc, path)
    if isinstance(parent, dict) and token in parent:
        return parent[token]
    if isinstance(parent, list):
        return parent[_index(parent, token, path, adding=False)]
    raise PatchFailed(f"doc is missing path: {path}")


def _add(doc: JSON, path: str, value: JSON) -> JSON:
    if path == "":
        return value
    parent, token = _parent(doc, path)
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, path, adding=True), value)
    else:
        raise PatchFailed(f"doc is missing path: {path}")
    return doc


def _remove(doc: JSON, path: str) -> JSON:
    parent, token = _parent(doc, path)
    if isinstance(parent, dict) and token in parent:
        return parent.pop(token)
    if isinstance(parent, list):
        return parent.pop(_index(parent, token, path, adding=False))
    raise PatchFailed(f"remove operation does not apply: doc is missing path: {path}")


def json_patch(target: JSON, ops: JSON) -> JSON:
    """RFC 6902, all-or-nothing: a copy is patched; ``PatchFailed`` leaves the target untouched."""
    if not isinstance(ops, list):
        raise APIError(400, "json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "path" not in op or not isinstance(op.get("op"), str):
            raise PatchFailed(f"invalid patch operation: {json.dumps(op)}")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchFailed(f"missing value for the {kind} operation at {path}")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            try:
                _get(doc, path)
            except PatchFailed:
                raise PatchFailed(f"replace operation does not apply: doc is missing key: {path}") from None
            if path == "":
                doc = copy.deepcopy(op["value"])
            else:
                _remove(doc, path)
                doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise PatchFailed(f"missing from for the {kind} operation at {path}")
            value = _remove(doc, source) if kind == "move" else copy.deepcopy(_get(doc, source))
            doc = _add(doc, path, value)
        elif kind == "test":
            try:
                actual = _get(doc, path)
            except PatchFailed:
                actual = None
            if not json_equal(actual, op["value"]):
                raise PatchFailed(f"testing value {path} failed: test failed")
        else:
            raise PatchFailed(f"Unexpected kind: {kind}")
    return doc


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def apply_patch(target: Obj, content_type: str | None, body: JSON, *, crd: bool) -> Obj:
    """Patch ``target`` (never modified) by the request's content type; 415/400/422 as a real server."""
    kind = media_type(content_type)
    accepted = CRD_PATCH_TYPES if crd else (JSON_PATCH, MERGE, STRATEGIC)
    if kind not in accepted:
        raise APIError(415, "the body of the request was in an unknown format - accepted media types include: "
                            + ", ".join(accepted))
    try:
        if kind == JSON_PATCH:
            result = json_patch(target, body)
        else:  # merge patch; strategic merge on built-ins is approximated by a merge patch
            if not isinstance(body, dict):
                raise APIError(400, "json: cannot unmarshal into a patch: the body must be a JSON object")
            result = merge_patch(target, strip_directives(body) if kind == STRATEGIC else body)
    except PatchFailed as exc:
        raise APIError(422, str(exc)) from None
    if not isinstance(result, dict):
        raise APIError(422, "the patch produced a non-object")
    return result
