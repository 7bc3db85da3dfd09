"""kubectl's typed create commands send protobuf; the few common built-in types are decoded."""

from __future__ import annotations

import pytest

from tksh.sandbox.apiserver import APIError, EmbeddedAPIServer
from tksh.sandbox.apiserver.protobuf import decode

from .helpers import call

# Captured from `kubectl create configmap cm1 --from-literal=a=b` (kubectl v1.37).
CONFIGMAP = (b'k8s\x00\n\x0f\n\x02v1\x12\tConfigMap\x12\x1d\n\x13\n\x03cm1\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00'
             b'\x12\x06\n\x01a\x12\x01b\x1a\x00"\x00')


def test_a_configmap_envelope_decodes_to_its_json_form() -> None:
    assert decode(CONFIGMAP) == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm1"},
                                 "data": {"a": "b"}}


def test_unknown_types_are_415() -> None:
    pod = b"k8s\x00\n\t\n\x02v1\x12\x03Pod\x12\x00"
    with pytest.raises(APIError) as info:
        decode(pod)
    assert info.value.code == 415


async def test_a_protobuf_create_is_stored(embedded_api: EmbeddedAPIServer) -> None:
    reply = await call(embedded_api, "POST", "/api/v1/namespaces/default/configmaps", CONFIGMAP,
                       content_type="application/vnd.kubernetes.protobuf")
    assert reply.status == 201
    stored = embedded_api.store.get("configmaps", "default", "cm1")
    assert stored is not None and stored["data"] == {"a": "b"}
