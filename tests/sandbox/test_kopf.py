"""kopf itself, in-process, against the embedded API server: finalizers, status, Events, deletion."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from tksh.sandbox.apiserver import EmbeddedAPIServer

from .helpers import WIDGETS, call, widget


def _registry(server: str) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=server)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.level = logging.INFO
        settings.persistence.finalizer = "tksh.kz/finalizer"
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="tksh.kz")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="tksh.kz")
        settings.peering.standalone = True
        settings.watching.server_timeout = 10
        settings.watching.client_timeout = 15
        settings.watching.connect_timeout = 5
        settings.networking.request_timeout = 15
        settings.queueing.idle_timeout = 0.5
        settings.queueing.exit_timeout = 2
        settings.queueing.error_delays = [0.1, 0.2, 0.5]

    @kopf.on.create("example.test", "v1", "widgets", registry=registry)
    def created(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        kopf.info(body, reason="Welcomed", message=f"Widget {body.metadata.name} is welcome.")
        patch.status["phase"] = "Ready"
        patch.status["conditions"] = [{"type": "Ready", "status": "True", "reason": "Welcomed"}]

    @kopf.on.delete("example.test", "v1", "widgets", registry=registry)
    def deleted(**_: Any) -> None:
        pass

    return registry


async def test_kopf_operator_adds_finalizer_writes_status_posts_event_and_completes_deletion(
        embedded_api: EmbeddedAPIServer, wait_until: Any) -> None:
    eventually = wait_until
    api = embedded_api
    stop = asyncio.Event()
    task = asyncio.create_task(kopf.operator(
        registry=_registry(api.url), clusterwide=True, standalone=True, stop_flag=stop,
    ))
    try:
        assert (await call(api, "POST", WIDGETS, widget("w1"))).status == 201

        def handled() -> dict[str, Any]:
            obj = api.store.get("widgets", "default", "w1")
            assert obj is not None
            assert "tksh.kz/finalizer" in obj["metadata"].get("finalizers", [])
            assert obj.get("status", {}).get("phase") == "Ready"
            return obj

        obj = await eventually(handled)
        assert obj["status"]["conditions"][0]["status"] == "True"

        events = await eventually(lambda: _welcomed(api))
        assert events[0]["metadata"]["name"].startswith("kopf-event-")
        assert len(events[0]["metadata"]["name"]) == len("kopf-event-") + 5
        assert events[0]["involvedObject"]["name"] == "w1"
        assert events[0]["metadata"]["namespace"] == "default"

        assert (await call(api, "DELETE", f"{WIDGETS}/w1")).status == 200

        def gone() -> None:
            assert api.store.get("widgets", "default", "w1") is None

        await eventually(gone)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


def _welcomed(api: EmbeddedAPIServer) -> list[dict[str, Any]]:
    found = [e for e in api.events("default", involved_name="w1") if e.get("reason") == "Welcomed"]
    assert found
    return found
