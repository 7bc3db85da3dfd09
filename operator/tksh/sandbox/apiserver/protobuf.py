"""Decoding of the few protobuf bodies kubectl's typed commands send (``kubectl create ns/cm/secret/sa``).

client-go writes built-in types as ``application/vnd.kubernetes.protobuf`` and does not fall back to
JSON on a 415. Only the types below are understood; anything else is answered 415 by the server.
The wire format: https://protobuf.dev/programming-guides/encoding/ ; the envelope is the ``k8s\\0``
magic followed by a ``runtime.Unknown`` message carrying the TypeMeta and the raw typed message.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from tksh.sandbox.apiserver.errors import APIError, Obj

MAGIC = b"k8s\x00"

# A message is {field number: (JSON name, kind)}; a kind is a scalar name or a nested message.
Field = tuple[str, "str | Message"]
Message = Mapping[int, Field]

_OWNER_REFERENCE: Message = {5: ("apiVersion", "string"), 1: ("kind", "string"), 3: ("name", "string"),
                             4: ("uid", "string"), 6: ("controller", "bool"), 7: ("blockOwnerDeletion", "bool")}
_OBJECT_REFERENCE: Message = {1: ("kind", "string"), 2: ("namespace", "string"), 3: ("name", "string"),
                              4: ("uid", "string"), 5: ("apiVersion", "string"), 6: ("resourceVersion", "string"),
                              7: ("fieldPath", "string")}
_OBJECT_META: Message = {
    1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"), 5: ("uid", "string"),
    6: ("resourceVersion", "string"), 7: ("generation", "int"), 11: ("labels", "map"), 12: ("annotations", "map"),
    13: ("ownerReferences[]", _OWNER_REFERENCE), 14: ("finalizers[]", "string"),
}
TYPES: dict[str, Message] = {
    "ConfigMap": {1: ("metadata", _OBJECT_META), 2: ("data", "map"), 3: ("binaryData", "bytesmap"),
                  4: ("immutable", "bool")},
    "Secret": {1: ("metadata", _OBJECT_META), 2: ("data", "bytesmap"), 3: ("type", "string"),
               4: ("stringData", "map"), 5: ("immutable", "bool")},
    "Namespace": {1: ("metadata", _OBJECT_META), 2: ("spec", {1: ("finalizers[]", "string")})},
    "ServiceAccount": {1: ("metadata", _OBJECT_META), 2: ("secrets[]", _OBJECT_REFERENCE),
                       3: ("imagePullSecrets[]", {1: ("name", "string")}), 4: ("automountServiceAccountToken", "bool")},
}
_ENVELOPE: Message = {1: ("typeMeta", {1: ("apiVersion", "string"), 2: ("kind", "string")}), 2: ("raw", "raw")}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return result, pos


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs: ints for varints/fixed numbers, bytes for length-delimited values."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            fields.append((number, value))
        elif wire == 2:
            size, pos = _varint(data, pos)
            fields.append((number, data[pos:pos + size]))
            pos += size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            fields.append((number, int.from_bytes(data[pos:pos + size], "little")))
            pos += size
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return fields


def _decode(data: bytes, message: Message) -> Obj:
    result: Obj = {}
    for number, value in _fields(data):
        if number not in message:
            continue
        name, kind = message[number]
        repeated = name.endswith("[]")
        name = name.removesuffix("[]")
        decoded: Any
        if not isinstance(kind, str):
            decoded = _decode(value, kind) if isinstance(value, bytes) else {}
        elif kind in ("map", "bytesmap") and isinstance(value, bytes):
            entry = dict(_fields(value))
            key, raw = entry.get(1, b""), entry.get(2, b"")
            if isinstance(key, bytes) and isinstance(raw, bytes):
                text = base64.b64encode(raw).decode() if kind == "bytesmap" else raw.decode()
                result.setdefault(name, {})[key.decode()] = text
            continue
        elif kind == "string" and isinstance(value, bytes):
            decoded = value.decode()
        elif kind in ("int", "bool") and isinstance(value, int):
            decoded = bool(value) if kind == "bool" else value
        else:
            decoded = value
        if repeated:
            result.setdefault(name, []).append(decoded)
        elif decoded not in ("", 0, {}):  # as JSON's omitempty: no empty strings, zeros, false
            result[name] = decoded
    return result


def decode(body: bytes) -> Obj:
    """A protobuf-encoded built-in object as its JSON form; 415 if the type is not one of :data:`TYPES`."""
    if not body.startswith(MAGIC):
        raise APIError(415, "the body of the request was in an unknown format: no protobuf envelope")
    try:
        envelope = _decode(body[len(MAGIC):], _ENVELOPE)
        type_meta = envelope.get("typeMeta") or {}
        kind = str(type_meta.get("kind", ""))
        if kind not in TYPES:
            raise APIError(415, f"the embedded API server decodes protobuf only for {', '.join(sorted(TYPES))}, "
                                f"not {kind or 'this type'}: send JSON (e.g. kubectl apply -f)")
        obj = _decode(envelope.get("raw", b""), TYPES[kind])
    except (ValueError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the protobuf body could not be decoded: {exc}") from None
    return {"apiVersion": type_meta.get("apiVersion", "v1"), "kind": kind, **obj}
