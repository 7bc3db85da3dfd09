"""Deletion: finalizers hold objects back; watchers see MODIFIED, then DELETED; namespaces cascade."""

from __future__ import annotations

from tksh.sandbox.apiserver import EmbeddedAPIServer

from .helpers import WIDGETS, call, live_watch, widget

MERGE = "application/merge-patch+json"


async def test_deletion_with_finalizers_sets_deletion_timestamp_and_keeps_the_object(
        embedded_api: EmbeddedAPIServer) -> None:
    created = (await call(embedded_api, "POST", WIDGETS, widget("w1") | {
        "metadata": {"name": "w1", "finalizers": ["x.test/a", "x.test/b"]}})).body
    async with live_watch(embedded_api, WIDGETS, resourceVersion=created["metadata"]["resourceVersion"]) as watch:
        reply = await call(embedded_api, "DELETE", f"{WIDGETS}/w1")
        assert reply.status == 200
        stamp = reply.body["metadata"]["deletionTimestamp"]
        event = await watch.next()
        assert event["type"] == "MODIFIED"
        assert event["object"]["metadata"]["deletionTimestamp"] == stamp

        again = await call(embedded_api, "DELETE", f"{WIDGETS}/w1")
        assert again.body["metadata"]["deletionTimestamp"] == stamp

        one_left = await call(embedded_api, "PATCH", f"{WIDGETS}/w1", {"metadata": {"finalizers": ["x.test/b"]}},
                              content_type=MERGE)
        assert one_left.body["metadata"]["deletionTimestamp"] == stamp
        assert (await watch.next())["type"] == "MODIFIED"
        assert embedded_api.store.get("widgets", "default", "w1") is not None

        await call(embedded_api, "PATCH", f"{WIDGETS}/w1", {"metadata": {"finalizers": None}}, content_type=MERGE)
        final = await watch.next()
        assert final["type"] == "DELETED"
        assert final["object"]["metadata"]["name"] == "w1"
    assert embedded_api.store.get("widgets", "default", "w1") is None


async def test_deletion_without_finalizers_removes_at_once(embedded_api: EmbeddedAPIServer) -> None:
    created = (await call(embedded_api, "POST", WIDGETS, widget("w1"))).body
    async with live_watch(embedded_api, WIDGETS, resourceVersion=created["metadata"]["resourceVersion"]) as watch:
        reply = await call(embedded_api, "DELETE", f"{WIDGETS}/w1")
        assert reply.status == 200
        event = await watch.next()
        assert event["type"] == "DELETED"
    assert embedded_api.store.get("widgets", "default", "w1") is None
    assert (await call(embedded_api, "GET", f"{WIDGETS}/w1")).status == 404


async def test_new_finalizers_are_refused_on_an_object_being_deleted(embedded_api: EmbeddedAPIServer) -> None:
    await call(embedded_api, "POST", WIDGETS, widget("w1") | {"metadata": {"name": "w1", "finalizers": ["x.test/a"]}})
    await call(embedded_api, "DELETE", f"{WIDGETS}/w1")
    before = embedded_api.store.get("widgets", "default", "w1")
    reply = await call(embedded_api, "PATCH", f"{WIDGETS}/w1", {"metadata": {"finalizers": ["x.test/a", "x.test/new"]}},
                       content_type=MERGE)
    assert reply.status == 422
    assert reply.body["details"]["causes"][0]["field"] == "metadata.finalizers"
    assert "no new finalizers can be added" in reply.body["message"]
    assert embedded_api.store.get("widgets", "default", "w1") == before


async def test_deleting_a_missing_object_is_404(embedded_api: EmbeddedAPIServer) -> None:
    reply = await call(embedded_api, "DELETE", f"{WIDGETS}/ghost")
    assert reply.status == 404
    assert reply.body["reason"] == "NotFound"
    assert reply.body["message"] == 'widgets.example.test "ghost" not found'


async def test_deleting_a_namespace_cascades_and_waits_for_finalizers(embedded_api: EmbeddedAPIServer) -> None:
    await call(embedded_api, "POST", "/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    path = "/apis/example.test/v1/namespaces/doomed/widgets"
    await call(embedded_api, "POST", path, widget("plain"))
    await call(embedded_api, "POST", path, widget("held") | {"metadata": {"name": "held", "finalizers": ["x.test/a"]}})
    reply = await call(embedded_api, "DELETE", "/api/v1/namespaces/doomed")
    assert reply.body["status"]["phase"] == "Terminating"
    assert embedded_api.store.get("widgets", "doomed", "plain") is None
    assert embedded_api.store.get("widgets", "doomed", "held") is not None
    refused = await call(embedded_api, "POST", path, widget("late"))
    assert refused.status == 403
    await call(embedded_api, "PATCH", f"{path}/held", {"metadata": {"finalizers": []}}, content_type=MERGE)
    assert embedded_api.store.get("namespaces", None, "doomed") is None
    assert (await call(embedded_api, "DELETE", "/api/v1/namespaces/default")).status == 403
