"""Creation and stamping: uid, resourceVersion, generation, creationTimestamp, names, namespaces."""

from __future__ import annotations

import re
import uuid

from tksh.sandbox.apiserver import EmbeddedAPIServer

from .helpers import WIDGETS, call, widget

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


async def test_create_stamps_uid_resource_version_generation_timestamp_and_namespace(
        embedded_api: EmbeddedAPIServer) -> None:
    reply = await call(embedded_api, "POST", WIDGETS, widget("w1"))
    assert reply.status == 201
    meta = reply.body["metadata"]
    assert uuid.UUID(meta["uid"]).version == 4
    assert meta["resourceVersion"].isdigit()
    assert meta["generation"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert meta["namespace"] == "default"
    assert embedded_api.store.get("widgets", "default", "w1") == reply.body


async def test_resource_version_is_one_global_counter_bumped_by_every_write(embedded_api: EmbeddedAPIServer) -> None:
    first = (await call(embedded_api, "POST", WIDGETS, widget("w1"))).body["metadata"]["resourceVersion"]
    second = (await call(embedded_api, "POST", CONFIGMAPS, {"metadata": {"name": "c"}})).body
    patched = (await call(embedded_api, "PATCH", f"{WIDGETS}/w1", {"metadata": {"labels": {"a": "b"}}},
                          content_type="application/merge-patch+json")).body
    versions = [int(first), int(second["metadata"]["resourceVersion"]), int(patched["metadata"]["resourceVersion"])]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert embedded_api.store.resource_version == str(versions[-1])


async def test_generation_grows_only_when_something_outside_metadata_and_status_changes(
        embedded_api: EmbeddedAPIServer) -> None:
    await call(embedded_api, "POST", WIDGETS, widget("w1"))
    merge = "application/merge-patch+json"
    labelled = await call(embedded_api, "PATCH", f"{WIDGETS}/w1", {"metadata": {"labels": {"x": "y"}}},
                          content_type=merge)
    assert labelled.body["metadata"]["generation"] == 1
    status = await call(embedded_api, "PATCH", f"{WIDGETS}/w1/status", {"status": {"phase": "Ready"}},
                        content_type=merge)
    assert status.body["metadata"]["generation"] == 1
    spec = await call(embedded_api, "PATCH", f"{WIDGETS}/w1", {"spec": {"replicas": 5}}, content_type=merge)
    assert spec.body["metadata"]["generation"] == 2
    await call(embedded_api, "POST", CONFIGMAPS, {"metadata": {"name": "c"}, "data": {"a": "1"}})
    cm = await call(embedded_api, "PATCH", f"{CONFIGMAPS}/c", {"data": {"a": "2"}}, content_type=merge)
    assert cm.body["metadata"]["generation"] == 2


async def test_a_write_that_changes_nothing_keeps_the_resource_version(embedded_api: EmbeddedAPIServer) -> None:
    created = (await call(embedded_api, "POST", WIDGETS, widget("w1"))).body
    same = await call(embedded_api, "PATCH", f"{WIDGETS}/w1", {"spec": {"size": "small"}},
                      content_type="application/merge-patch+json")
    assert same.status == 200
    assert same.body["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_creating_an_existing_name_is_409_already_exists(embedded_api: EmbeddedAPIServer) -> None:
    await call(embedded_api, "POST", WIDGETS, widget("w1"))
    reply = await call(embedded_api, "POST", WIDGETS, widget("w1"))
    assert reply.status == 409
    assert reply.body["reason"] == "AlreadyExists"
    assert reply.body["message"] == 'widgets.example.test "w1" already exists'


async def test_creating_without_name_and_generate_name_is_422(embedded_api: EmbeddedAPIServer) -> None:
    body = widget()
    del body["metadata"]["name"]
    reply = await call(embedded_api, "POST", WIDGETS, body)
    assert reply.status == 422
    assert reply.body["reason"] == "Invalid"
    assert reply.body["details"]["causes"][0]["field"] == "metadata.name"


async def test_generate_name_appends_five_random_lowercase_alphanumerics(embedded_api: EmbeddedAPIServer) -> None:
    event = {"metadata": {"generateName": "kopf-event-"}, "reason": "Test", "message": "hello",
             "involvedObject": {"kind": "Widget", "name": "w1", "namespace": "default"}}
    names = set()
    for _ in range(3):
        reply = await call(embedded_api, "POST", "/api/v1/namespaces/default/events", event)
        assert reply.status == 201
        names.add(reply.body["metadata"]["name"])
    assert len(names) == 3
    assert all(re.fullmatch(r"kopf-event-[a-z0-9]{5}", name) for name in names)
    assert len(embedded_api.events("default", involved_name="w1")) == 3


async def test_creating_in_a_missing_namespace_is_404(embedded_api: EmbeddedAPIServer) -> None:
    reply = await call(embedded_api, "POST", "/apis/example.test/v1/namespaces/nowhere/widgets", widget("w1"))
    assert reply.status == 404
    assert reply.body["message"] == 'namespaces "nowhere" not found'
    assert embedded_api.store.get("widgets", "nowhere", "w1") is None


async def test_names_must_be_rfc1123_subdomains(embedded_api: EmbeddedAPIServer) -> None:
    reply = await call(embedded_api, "POST", WIDGETS, widget("Not_Valid"))
    assert reply.status == 422
    assert reply.body["details"]["causes"][0]["field"] == "metadata.name"
    assert "RFC 1123 subdomain" in reply.body["message"]


async def test_namespaces_exist_and_can_be_created_and_listed(embedded_api: EmbeddedAPIServer) -> None:
    created = await call(embedded_api, "POST", "/api/v1/namespaces", {"metadata": {"name": "team-a"}})
    assert created.status == 201
    assert created.body["status"] == {"phase": "Active"}
    listed = await call(embedded_api, "GET", "/api/v1/namespaces")
    assert listed.status == 200
    assert [ns["metadata"]["name"] for ns in listed.body["items"]] == ["default", "kube-system", "team-a"]
    assert (await call(embedded_api, "POST", "/apis/example.test/v1/namespaces/team-a/widgets",
                       widget("w1"))).status == 201


async def test_leases_secrets_and_service_accounts_are_served(embedded_api: EmbeddedAPIServer) -> None:
    for path, body in (
        ("/apis/coordination.k8s.io/v1/namespaces/default/leases", {"metadata": {"name": "l"}, "spec": {}}),
        ("/api/v1/namespaces/default/secrets", {"metadata": {"name": "s"}, "stringData": {"a": "b"}}),
        ("/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": "sa"}}),
        ("/apis/events.k8s.io/v1/namespaces/default/events", {"metadata": {"generateName": "e-"}, "note": "x",
                                                              "regarding": {"name": "w1"}}),
    ):
        reply = await call(embedded_api, "POST", path, body)
        assert reply.status == 201, reply.body
        assert reply.body["apiVersion"] in ("v1", "coordination.k8s.io/v1", "events.k8s.io/v1")
    assert embedded_api.store.get("leases", "default", "l") is not None
    assert len(embedded_api.events(involved_name="w1")) == 1


async def test_apply_helper_creates_then_merges_and_writes_the_status(embedded_api: EmbeddedAPIServer) -> None:
    created = await embedded_api.apply(widget("w1") | {"status": {"phase": "Pending"}})
    assert created["status"] == {"phase": "Pending"}
    updated = await embedded_api.apply(widget("w1", replicas=4))
    assert updated["spec"]["replicas"] == 4
    assert updated["status"] == {"phase": "Pending"}
    assert updated["metadata"]["generation"] == 2
