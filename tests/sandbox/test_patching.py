"""Merge patches, JSON patches, unsupported patch types, and optimistic concurrency."""

from __future__ import annotations

import pytest

from tksh.sandbox.apiserver import EmbeddedAPIServer

from .helpers import WIDGETS, call, widget

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


async def test_merge_patch_merges_objects_and_null_deletes(embedded_api: EmbeddedAPIServer) -> None:
    await call(embedded_api, "POST", WIDGETS, widget("w1", labels={"a": "1", "b": "2"}, title="t"))
    reply = await call(embedded_api, "PATCH", f"{WIDGETS}/w1", {"spec": {"labels": {"a": None, "c": "3"},
                                                                          "title": None}}, content_type=MERGE)
    assert reply.status == 200
    assert reply.body["spec"]["labels"] == {"b": "2", "c": "3"}
    assert "title" not in reply.body["spec"]


async def test_json_patch_supports_all_operations(embedded_api: EmbeddedAPIServer) -> None:
    created = (await call(embedded_api, "POST", WIDGETS, widget("w1", tags=["a", "b"]))).body
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": created["metadata"]["resourceVersion"]},
        {"op": "add", "path": "/spec/tags/-", "value": "c"},
        {"op": "remove", "path": "/spec/tags/0"},
        {"op": "replace", "path": "/spec/size", "value": "large"},
        {"op": "copy", "from": "/spec/size", "path": "/spec/title"},
        {"op": "move", "from": "/spec/title", "path": "/spec/owner/name"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x.test/f"]},
    ]
    reply = await call(embedded_api, "PATCH", f"{WIDGETS}/w1", ops, content_type=JSON_PATCH)
    assert reply.status == 200, reply.body
    spec = reply.body["spec"]
    assert spec["tags"] == ["b", "c"]
    assert spec["size"] == "large"
    assert spec["owner"] == {"bin": "123456789012", "name": "large"}
    assert "title" not in spec
    assert reply.body["metadata"]["finalizers"] == ["x.test/f"]


@pytest.mark.parametrize("ops", [
    [{"op": "test", "path": "/metadata/resourceVersion", "value": "1"}, {"op": "replace", "path": "/spec/size",
                                                                         "value": "large"}],
    [{"op": "replace", "path": "/spec/size", "value": "large"}, {"op": "remove", "path": "/spec/nothing"}],
    [{"op": "replace", "path": "/spec/size", "value": "large"}, {"op": "add", "path": "/spec/tags/7", "value": "x"}],
    [{"op": "replace", "path": "/spec/size", "value": "large"}, {"op": "frobnicate", "path": "/spec"}],
], ids=["failed-test", "missing-path", "index-out-of-range", "unknown-op"])
async def test_failed_json_patch_is_422_invalid_and_changes_nothing(
        embedded_api: EmbeddedAPIServer, ops: list[dict[str, object]]) -> None:
    created = (await call(embedded_api, "POST", WIDGETS, widget("w1"))).body
    reply = await call(embedded_api, "PATCH", f"{WIDGETS}/w1", ops, content_type=JSON_PATCH)
    assert reply.status == 422
    assert reply.body["reason"] == "Invalid"
    assert embedded_api.store.get("widgets", "default", "w1") == created


async def test_strategic_merge_patch_on_a_custom_resource_is_415(embedded_api: EmbeddedAPIServer) -> None:
    await call(embedded_api, "POST", WIDGETS, widget("w1"))
    reply = await call(embedded_api, "PATCH", f"{WIDGETS}/w1", {"spec": {"size": "large"}},
                       content_type="application/strategic-merge-patch+json")
    assert reply.status == 415
    assert reply.body["reason"] == "UnsupportedMediaType"
    applied = await call(embedded_api, "PATCH", f"{WIDGETS}/w1", b"spec: {size: large}",
                         content_type="application/apply-patch+yaml")
    assert applied.status == 415


async def test_strategic_merge_patch_on_a_core_resource_works_as_a_merge(embedded_api: EmbeddedAPIServer) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    await call(embedded_api, "POST", path, {"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}})
    reply = await call(embedded_api, "PATCH", f"{path}/c", {"data": {"a": None, "c": "3"}, "$retainKeys": ["data"]},
                       content_type="application/strategic-merge-patch+json")
    assert reply.status == 200
    assert reply.body["data"] == {"b": "2", "c": "3"}
    assert "$retainKeys" not in reply.body


async def test_put_with_a_stale_resource_version_is_409_conflict(embedded_api: EmbeddedAPIServer) -> None:
    created = (await call(embedded_api, "POST", WIDGETS, widget("w1"))).body
    await call(embedded_api, "PATCH", f"{WIDGETS}/w1", {"spec": {"replicas": 2}}, content_type=MERGE)
    reply = await call(embedded_api, "PUT", f"{WIDGETS}/w1", created | {"spec": {**created["spec"], "replicas": 3}})
    assert reply.status == 409
    assert reply.body["reason"] == "Conflict"
    assert "the object has been modified" in reply.body["message"]
    stored = embedded_api.store.get("widgets", "default", "w1")
    assert stored is not None and stored["spec"]["replicas"] == 2


async def test_merge_patch_with_a_stale_resource_version_is_409_conflict(embedded_api: EmbeddedAPIServer) -> None:
    created = (await call(embedded_api, "POST", WIDGETS, widget("w1"))).body
    stale = created["metadata"]["resourceVersion"]
    await call(embedded_api, "PATCH", f"{WIDGETS}/w1", {"spec": {"replicas": 2}}, content_type=MERGE)
    reply = await call(embedded_api, "PATCH", f"{WIDGETS}/w1",
                       {"metadata": {"resourceVersion": stale}, "spec": {"replicas": 3}}, content_type=MERGE)
    assert reply.status == 409


async def test_put_of_a_custom_resource_requires_a_resource_version(embedded_api: EmbeddedAPIServer) -> None:
    created = (await call(embedded_api, "POST", WIDGETS, widget("w1"))).body
    del created["metadata"]["resourceVersion"]
    reply = await call(embedded_api, "PUT", f"{WIDGETS}/w1", created)
    assert reply.status == 422
    assert reply.body["details"]["causes"][0]["field"] == "metadata.resourceVersion"
