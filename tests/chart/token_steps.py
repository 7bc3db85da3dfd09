"""The access-token part of the RBAC proof's operator workflow (tests/chart/test_rbac_proof.py).

Each run starts without signing keys, so every run has the operator read (get by name), create and publish (patch,
create) them; then a grant made Active gets its token Secret (list/watch grants, patch their status, create the
Secret), the token is renewed (patch the Secret), and the grant's termination deletes it (delete) and clears the
status (patch). The grant lifecycle activates and terminates the grant; this file only writes what an
administrator writes (the function, the grant, the termination request).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from tests.realapi.cluster import RealCluster
from tksh.access.keyrotation import GRANT_UID_LABEL, TOKEN_SECRET_TYPE, public_secret_name, token_secret_name
from tksh.config import OperatorConfig

API = "tksh.kz/v1alpha1"
Step = Callable[[str, Callable[[], Any]], Any]


def _function(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API, "kind": "SubjectFunction",
        "metadata": {"name": name, "labels": {"tksh.kz/test": "rbac-proof"}},
        "spec": {"titles": {"kk": "ПИБ", "ru": "ОСИ", "en": "Owners' association"},
                 "subjectTypes": ["PropertyOwnersAssociation"],
                 "rights": [{"category": 5, "actions": ["read", "write", "sign"]}]},
    }


def _grant(name: str, namespace: str, function: str) -> dict[str, Any]:
    return {
        "apiVersion": API, "kind": "AccessGrant", "metadata": {"name": name, "namespace": namespace},
        "spec": {"subject": {"id": "person:proof", "kind": "person"},
                 "onBehalfOf": {"bin": "140540001231"},
                 "functions": [function],
                 "agreement": {"number": "RBAC-1", "validFrom": "2020-01-01T00:00:00Z",
                               "validUntil": "2099-01-01T00:00:00Z"}},
    }


def delegate_of(principal: str, namespace: str) -> dict[str, Any]:
    """A grant delegated from ``principal`` (the grant these steps make), within it in every respect."""
    delegate = _grant(f"{principal}-delegate", namespace, f"{principal}-fn")
    delegate["spec"]["delegatedFrom"] = principal
    delegate["spec"]["subject"]["id"] = "person:proof-delegate"
    return delegate


def clean_tokens(cluster: RealCluster, config: OperatorConfig, name: str, namespace: str) -> None:
    """No signing keys, and nothing left of an earlier run's grant (trials may leave what they could not delete)."""
    for secret in (config.signing_keys_secret, public_secret_name(config.signing_keys_secret)):
        cluster.delete("v1", "Secret", secret, namespace=config.signing_keys_namespace)
    cluster.delete(API, "AccessGrant", name, namespace=namespace)
    cluster.delete("v1", "Secret", token_secret_name(name), namespace=namespace)
    cluster.delete(API, "SubjectFunction", f"{name}-fn")


def token_steps(cluster: RealCluster, config: OperatorConfig, name: str, namespace: str, step: Step) -> None:
    keys, keys_ns = config.signing_keys_secret, config.signing_keys_namespace
    cluster.checked("POST", f"/apis/{API}/subjectfunctions", _function(f"{name}-fn"))

    def keys_created() -> None:
        for secret in (keys, public_secret_name(keys)):
            assert cluster.get("v1", "Secret", secret, namespace=keys_ns).status == 200, f"no Secret {secret}"

    step("the signing keys are created, with their public copy", keys_created)

    def function_ready() -> None:  # so that the grant is activated at once, not held Pending
        status = cluster.get(API, "SubjectFunction", f"{name}-fn").body.get("status") or {}
        assert status.get("phase") == "Active", status

    step("the grant's function is Active in the directory", function_ready)
    cluster.checked("POST", f"/apis/{API}/namespaces/{namespace}/accessgrants", _grant(name, namespace, f"{name}-fn"))
    secret_name = token_secret_name(name)

    def grant_status() -> dict[str, Any]:
        resp = cluster.get(API, "AccessGrant", name, namespace=namespace)
        assert resp.status == 200, resp.body
        return dict(resp.body.get("status") or {})

    def token() -> str:
        status = grant_status()
        assert status.get("phase") == "Active", status
        assert status.get("tokenSecret") == secret_name and status.get("tokenExpiresAt"), status
        resp = cluster.get("v1", "Secret", secret_name, namespace=namespace)
        assert resp.status == 200, f"no Secret {secret_name}"
        assert resp.body["type"] == TOKEN_SECRET_TYPE
        assert GRANT_UID_LABEL in resp.body["metadata"]["labels"]
        return base64.b64decode(resp.body["data"]["token"]).decode()

    first = step("an Active grant gets its token in a Secret next to it", token)

    def renewed() -> None:
        assert token() != first, "not renewed yet"

    step("its token is renewed before it expires", renewed)

    cluster.checked("PATCH", f"/apis/{API}/namespaces/{namespace}/accessgrants/{name}",
                    {"spec": {"termination": {"reason": "REVOKED", "by": "proof", "note": "rbac proof"}}},
                    content_type="application/merge-patch+json")

    def deleted() -> None:
        assert cluster.get("v1", "Secret", secret_name, namespace=namespace).status == 404, "the Secret is still there"
        status = grant_status()
        assert "tokenSecret" not in status and "tokenExpiresAt" not in status, status

    step("terminated: its token Secret is deleted and the status cleared", deleted)
