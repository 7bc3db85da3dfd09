"""The status subresource isolates ``.status`` from the rest of the object, both ways."""

from __future__ import annotations

from tksh.sandbox.apiserver import EmbeddedAPIServer

from .helpers import GADGETS, WIDGETS, call, widget

MERGE = "application/merge-patch+json"


async def test_status_patch_changes_only_the_status(embedded_api: EmbeddedAPIServer) -> None:
    await call(embedded_api, "POST", WIDGETS, widget("w1"))
    reply = await call(embedded_api, "PATCH", f"{WIDGETS}/w1/status", {
        "status": {"phase": "Ready"}, "spec": {"size": "large"}, "metadata": {"labels": {"sneaky": "yes"}},
    }, content_type=MERGE)
    assert reply.status == 200
    stored = embedded_api.store.get("widgets", "default", "w1")
    assert stored is not None
    assert stored["status"] == {"phase": "Ready"}
    assert stored["spec"]["size"] == "small"
    assert "labels" not in stored["metadata"]


async def test_main_resource_writes_ignore_the_status(embedded_api: EmbeddedAPIServer) -> None:
    created = await call(embedded_api, "POST", WIDGETS, widget("w1") | {"status": {"phase": "Ready"}})
    assert "status" not in created.body
    await call(embedded_api, "PATCH", f"{WIDGETS}/w1/status", {"status": {"phase": "Pending"}}, content_type=MERGE)
    reply = await call(embedded_api, "PATCH", f"{WIDGETS}/w1", {"status": {"phase": "Failed"}, "spec": {"replicas": 2}},
                       content_type=MERGE)
    assert reply.body["status"] == {"phase": "Pending"}
    assert reply.body["spec"]["replicas"] == 2
    current = reply.body | {"status": {"phase": "Failed"}}
    replaced = await call(embedded_api, "PUT", f"{WIDGETS}/w1", current)
    assert replaced.status == 200
    assert replaced.body["status"] == {"phase": "Pending"}


async def test_status_put_ignores_spec_but_honours_the_resource_version(embedded_api: EmbeddedAPIServer) -> None:
    created = (await call(embedded_api, "POST", WIDGETS, widget("w1"))).body
    stale = created["metadata"]["resourceVersion"]
    body = created | {"spec": {**created["spec"], "size": "large"}, "status": {"phase": "Ready"}}
    reply = await call(embedded_api, "PUT", f"{WIDGETS}/w1/status", body)
    assert reply.status == 200
    assert reply.body["spec"]["size"] == "small"
    assert reply.body["status"] == {"phase": "Ready"}
    again = await call(embedded_api, "PUT", f"{WIDGETS}/w1/status", body | {"status": {"phase": "Failed"}})
    assert again.status == 409, stale
    assert again.body["reason"] == "Conflict"
    stale_patch = await call(embedded_api, "PATCH", f"{WIDGETS}/w1/status",
                             {"metadata": {"resourceVersion": stale}, "status": {"phase": "Failed"}},
                             content_type=MERGE)
    assert stale_patch.status == 409


async def test_status_is_404_for_resources_without_the_subresource(embedded_api: EmbeddedAPIServer) -> None:
    await call(embedded_api, "POST", GADGETS, {"metadata": {"name": "g1"}, "spec": {"a": 1}})
    reply = await call(embedded_api, "PATCH", f"{GADGETS}/g1/status", {"status": {"x": 1}}, content_type=MERGE)
    assert reply.status == 404
    assert reply.body["reason"] == "NotFound"
    # Without the subresource, the status is an ordinary field, and it counts for the generation.
    plain = await call(embedded_api, "PATCH", f"{GADGETS}/g1", {"status": {"x": 1}}, content_type=MERGE)
    assert plain.body["status"] == {"x": 1}
    assert plain.body["metadata"]["generation"] == 2
