"""Reading objects the workflows need besides their own: lists (Incidents of a target) and Secrets, on both backends."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.backends import EmbeddedBackend, RealBackend

API = "tksh.kz/v1alpha1"


async def list_objects(cluster: Any, plural: str, namespace: str) -> list[dict[str, Any]]:
    """Every object of ``plural`` (a tksh.kz resource, or ``secrets``) in ``namespace``."""
    if isinstance(cluster, EmbeddedBackend):
        return list(cluster.api.store.list(plural, namespace))
    assert isinstance(cluster, RealBackend), type(cluster)
    path = (f"/api/v1/namespaces/{namespace}/{plural}" if plural == "secrets"
            else f"/apis/{API}/namespaces/{namespace}/{plural}")
    body = await asyncio.to_thread(cluster.cluster.checked, "GET", path)
    items: list[dict[str, Any]] = body["items"]
    return items


async def secret(cluster: Any, namespace: str, name: str) -> dict[str, Any] | None:
    """The Secret, or None."""
    if isinstance(cluster, EmbeddedBackend):
        return cluster.api.store.get("secrets", namespace, name)
    assert isinstance(cluster, RealBackend), type(cluster)
    response = await asyncio.to_thread(cluster.cluster.get, "v1", "Secret", name, namespace=namespace)
    if response.status == 404:
        return None
    assert response.ok, response.body
    found: dict[str, Any] = response.body
    return found


async def incidents_of(cluster: Any, namespace: str, target: str) -> list[dict[str, Any]]:
    """The Incidents of the DigitalObject ``namespace/target``, oldest first."""
    found = [i for i in await list_objects(cluster, "incidents", namespace)
             if ((i.get("spec") or {}).get("target") or {}).get("name") == target]
    return sorted(found, key=lambda i: str(i["spec"].get("startedAt")))
