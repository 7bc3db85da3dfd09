"""The API servers the operator suite runs against, behind one small interface.

``embedded``: a fresh ``EmbeddedAPIServer`` per test (fast; fault injection available).
``real``: the session's real kube-apiserver + etcd (``real_cluster``); what a test creates is
deleted after it, and tests use unique names, since the cluster outlives them.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any, Protocol

from tests.realapi.cluster import RealCluster
from tksh import API_VERSION
from tksh.config import OperatorConfig
from tksh.run import OperatorHandle, OperatorThread
from tksh.sandbox.apiserver import APIError, EmbeddedAPIServer


class Backend(Protocol):
    name: str

    def operator_config(self) -> OperatorConfig: ...

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]: ...

    async def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None: ...

    async def events(self, involved_name: str) -> list[dict[str, Any]]: ...

    async def cleanup(self) -> None: ...


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, api: EmbeddedAPIServer) -> None:
        self.api = api

    def operator_config(self) -> OperatorConfig:
        return OperatorConfig(server=self.api.url, ops_host="127.0.0.1", ops_port=0, standalone=True, fast=True)

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        return await self.api.apply(obj)

    async def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return self.api.store.get(kind, namespace, name)
        except APIError:
            return None

    async def events(self, involved_name: str) -> list[dict[str, Any]]:
        return list(self.api.events(involved_name=involved_name))

    async def cleanup(self) -> None:
        return None  # the server is thrown away with the test


class RealBackend:
    name = "real"

    def __init__(self, cluster: RealCluster) -> None:
        self.cluster = cluster
        self.created: list[tuple[str, str, str, str | None]] = []

    def operator_config(self) -> OperatorConfig:
        return OperatorConfig(
            kubeconfig=str(self.cluster.kubeconfig), ops_host="127.0.0.1", ops_port=0, standalone=True, fast=True
        )

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        key = (obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        if key not in self.created:
            self.created.append(key)
        stored: dict[str, Any] = await asyncio.to_thread(self.cluster.apply, obj)
        return stored

    async def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        api_version = "v1" if kind in ("Namespace", "Event") else API_VERSION
        response = await asyncio.to_thread(self.cluster.get, api_version, kind, name, namespace=namespace)
        if response.status == 404:
            return None
        assert response.ok, response.body
        found: dict[str, Any] = response.body
        return found

    async def events(self, involved_name: str) -> list[dict[str, Any]]:
        selector = urllib.parse.quote(f"involvedObject.name={involved_name}")
        body = await asyncio.to_thread(self.cluster.checked, "GET", f"/api/v1/events?fieldSelector={selector}")
        items: list[dict[str, Any]] = body["items"]
        return items

    async def cleanup(self) -> None:
        for api_version, kind, name, namespace in reversed(self.created):
            await asyncio.to_thread(self.cluster.delete, api_version, kind, name, namespace=namespace)


@contextlib.asynccontextmanager
async def running(config: OperatorConfig) -> AsyncIterator[OperatorHandle]:
    """The operator in its own thread and loop (kopf cancels its loop's other tasks when it stops)."""
    thread = OperatorThread(config)
    handle = await asyncio.to_thread(thread.start)
    try:
        await asyncio.to_thread(thread.wait_ready, 30)
        yield handle
    finally:
        await asyncio.to_thread(thread.stop, 30)
    assert thread.error is None, thread.error
