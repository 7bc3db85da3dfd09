"""Watch streams: initial state, history replay, 410 Gone, timeouts with bookmarks, selectors, drops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tksh.sandbox.apiserver import EmbeddedAPIServer

from .helpers import WIDGETS, call, live_watch, watch_lines, widget

MERGE = "application/merge-patch+json"


@pytest.fixture
async def short_history_api(crd_file: Path) -> AsyncIterator[EmbeddedAPIServer]:
    async with EmbeddedAPIServer(crd_paths=[crd_file], history_limit=3) as api:
        yield api


async def test_watch_without_resource_version_starts_with_added_events_then_goes_live(
        embedded_api: EmbeddedAPIServer) -> None:
    await call(embedded_api, "POST", WIDGETS, widget("w1"))
    async with live_watch(embedded_api, WIDGETS) as watch:
        first = await watch.next()
        assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "w1")
        assert first["object"]["kind"] == "Widget" and first["object"]["apiVersion"] == "example.test/v1"
        await call(embedded_api, "POST", WIDGETS, widget("w2"))
        second = await watch.next()
        assert (second["type"], second["object"]["metadata"]["name"]) == ("ADDED", "w2")


async def test_watch_from_a_resource_version_replays_the_newer_history(embedded_api: EmbeddedAPIServer) -> None:
    created = (await call(embedded_api, "POST", WIDGETS, widget("w1"))).body
    since = created["metadata"]["resourceVersion"]
    await call(embedded_api, "PATCH", f"{WIDGETS}/w1", {"spec": {"replicas": 2}}, content_type=MERGE)
    await call(embedded_api, "POST", WIDGETS, widget("w2"))
    await call(embedded_api, "DELETE", f"{WIDGETS}/w2")
    events = await watch_lines(embedded_api, WIDGETS, {"resourceVersion": since, "timeoutSeconds": "1"})
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("MODIFIED", "w1"), ("ADDED", "w2"), ("DELETED", "w2")]


async def test_watch_from_a_compacted_resource_version_gets_410_gone(short_history_api: EmbeddedAPIServer) -> None:
    api = short_history_api
    created = (await call(api, "POST", WIDGETS, widget("w1"))).body
    for replicas in range(2, 7):
        await call(api, "PATCH", f"{WIDGETS}/w1", {"spec": {"replicas": replicas}}, content_type=MERGE)
    events = await watch_lines(api, WIDGETS, {"resourceVersion": created["metadata"]["resourceVersion"]})
    assert len(events) == 1
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410
    assert events[0]["object"]["reason"] == "Expired"


async def test_watch_ends_after_timeout_seconds_with_a_bookmark(embedded_api: EmbeddedAPIServer) -> None:
    await call(embedded_api, "POST", WIDGETS, widget("w1"))
    events = await watch_lines(embedded_api, WIDGETS, {"timeoutSeconds": "1", "allowWatchBookmarks": "true"})
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    bookmark = events[-1]["object"]
    assert bookmark["metadata"]["resourceVersion"] == embedded_api.store.resource_version
    assert bookmark["kind"] == "Widget" and bookmark["apiVersion"] == "example.test/v1"
    without = await watch_lines(embedded_api, WIDGETS, {"timeoutSeconds": "1"})
    assert [e["type"] for e in without] == ["ADDED"]


async def test_watch_accepts_watch_1_and_send_initial_events(embedded_api: EmbeddedAPIServer) -> None:
    await call(embedded_api, "POST", WIDGETS, widget("w1"))
    async with embedded_api.request("GET", WIDGETS, params={
            "watch": "1", "timeoutSeconds": "1", "sendInitialEvents": "true", "allowWatchBookmarks": "true",
            "resourceVersionMatch": "NotOlderThan"}) as response:
        text = await response.text()
    assert '"ADDED"' in text
    assert '"k8s.io/initial-events-end":"true"' in text


async def test_watch_honours_namespace_and_selectors_including_transitions(embedded_api: EmbeddedAPIServer) -> None:
    await call(embedded_api, "POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
    async with live_watch(embedded_api, WIDGETS, labelSelector="app=x", resourceVersion="1") as watch:
        await call(embedded_api, "POST", "/apis/example.test/v1/namespaces/other/widgets",
                   widget("elsewhere") | {"metadata": {"name": "elsewhere", "labels": {"app": "x"}}})
        await call(embedded_api, "POST", WIDGETS, widget("unlabelled"))
        await call(embedded_api, "PATCH", f"{WIDGETS}/unlabelled", {"metadata": {"labels": {"app": "x"}}},
                   content_type=MERGE)
        entered = await watch.next()
        assert (entered["type"], entered["object"]["metadata"]["name"]) == ("ADDED", "unlabelled")
        await call(embedded_api, "PATCH", f"{WIDGETS}/unlabelled", {"metadata": {"labels": {"app": "z"}}},
                   content_type=MERGE)
        left = await watch.next()
        assert (left["type"], left["object"]["metadata"]["name"]) == ("DELETED", "unlabelled")
    names = await watch_lines(embedded_api, "/apis/example.test/v1/widgets",
                              {"fieldSelector": "metadata.name=elsewhere", "timeoutSeconds": "1"})
    assert [e["object"]["metadata"]["name"] for e in names] == ["elsewhere"]


async def test_dropped_watches_end_and_the_client_can_rewatch(embedded_api: EmbeddedAPIServer) -> None:
    async with live_watch(embedded_api, WIDGETS) as watch:
        await call(embedded_api, "POST", WIDGETS, widget("w1"))
        assert (await watch.next())["type"] == "ADDED"
        assert embedded_api.drop_watches("widgets") == 1
        assert await watch.ended()
    async with live_watch(embedded_api, WIDGETS) as again:
        assert (await again.next())["object"]["metadata"]["name"] == "w1"


async def test_forced_expiry_answers_the_next_watch_with_410(embedded_api: EmbeddedAPIServer) -> None:
    created = (await call(embedded_api, "POST", WIDGETS, widget("w1"))).body
    embedded_api.faults.expire_watches("widgets")
    since = created["metadata"]["resourceVersion"]
    gone = await watch_lines(embedded_api, WIDGETS, {"resourceVersion": since})
    assert [(e["type"], e["object"]["code"]) for e in gone] == [("ERROR", 410)]
    fine = await watch_lines(embedded_api, WIDGETS, {"resourceVersion": since, "timeoutSeconds": "1"})
    assert fine == []


async def test_a_client_closing_its_watch_unsubscribes_it(embedded_api: EmbeddedAPIServer, wait_until: Any) -> None:
    async with live_watch(embedded_api, WIDGETS) as watch:
        await call(embedded_api, "POST", WIDGETS, widget("w1"))
        assert (await watch.next())["type"] == "ADDED"
        assert embedded_api.watch_count == 1
        watch.response.close()

    def closed() -> None:
        assert embedded_api.watch_count == 0
        assert embedded_api.store.listener_count == 0

    await wait_until(closed)
