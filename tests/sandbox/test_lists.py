"""Lists: proper List objects, cluster-wide listing, label and field selectors."""

from __future__ import annotations

import pytest

from tksh.sandbox.apiserver import EmbeddedAPIServer

from .helpers import WIDGETS, call, widget

ALL_WIDGETS = "/apis/example.test/v1/widgets"


async def _populate(api: EmbeddedAPIServer) -> None:
    await call(api, "POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
    for ns, name, labels, size in (("default", "a", {"app": "x", "tier": "web"}, "small"),
                                   ("default", "b", {"app": "y"}, "large"),
                                   ("other", "c", {"app": "x", "tier": "db"}, "small"),
                                   ("other", "d", {}, "large")):
        body = widget(name, size=size) | {"metadata": {"name": name, "labels": labels}}
        reply = await call(api, "POST", f"/apis/example.test/v1/namespaces/{ns}/widgets", body)
        assert reply.status == 201


async def test_a_list_has_kind_api_version_resource_version_and_typed_items(embedded_api: EmbeddedAPIServer) -> None:
    await _populate(embedded_api)
    reply = await call(embedded_api, "GET", WIDGETS)
    assert reply.status == 200
    assert reply.body["apiVersion"] == "example.test/v1"
    assert reply.body["kind"] == "WidgetList"
    assert reply.body["metadata"]["resourceVersion"] == embedded_api.store.resource_version
    assert [item["metadata"]["name"] for item in reply.body["items"]] == ["a", "b"]
    assert all(item["kind"] == "Widget" and item["apiVersion"] == "example.test/v1" for item in reply.body["items"])


async def test_cluster_wide_list_spans_all_namespaces(embedded_api: EmbeddedAPIServer) -> None:
    await _populate(embedded_api)
    reply = await call(embedded_api, "GET", ALL_WIDGETS)
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in reply.body["items"]] == [
        ("default", "a"), ("default", "b"), ("other", "c"), ("other", "d")]


@pytest.mark.parametrize(("selector", "names"), [
    ("app=x", ["a", "c"]),
    ("app==x", ["a", "c"]),
    ("app!=x", ["b", "d"]),
    ("app in (x,y)", ["a", "b", "c"]),
    ("app notin (x)", ["b", "d"]),
    ("tier", ["a", "c"]),
    ("!tier", ["b", "d"]),
    ("app=x,tier=db", ["c"]),
    ("app in (x, y),!tier", ["b"]),
])
async def test_label_selectors(embedded_api: EmbeddedAPIServer, selector: str, names: list[str]) -> None:
    await _populate(embedded_api)
    reply = await call(embedded_api, "GET", ALL_WIDGETS, params={"labelSelector": selector})
    assert reply.status == 200
    assert [item["metadata"]["name"] for item in reply.body["items"]] == names


@pytest.mark.parametrize(("selector", "names"), [
    ("metadata.name=c", ["c"]),
    ("metadata.name!=c", ["a", "b", "d"]),
    ("metadata.namespace=other", ["c", "d"]),
    ("metadata.namespace==default,metadata.name!=a", ["b"]),
    ("spec.size=large", ["b", "d"]),  # declared in the CRD's selectableFields
])
async def test_field_selectors(embedded_api: EmbeddedAPIServer, selector: str, names: list[str]) -> None:
    await _populate(embedded_api)
    reply = await call(embedded_api, "GET", ALL_WIDGETS, params={"fieldSelector": selector})
    assert reply.status == 200
    assert [item["metadata"]["name"] for item in reply.body["items"]] == names


@pytest.mark.parametrize(("namespace", "selector", "names"), [
    ("other", {"fieldSelector": "metadata.name=c"}, ["c"]),
    ("other", {"fieldSelector": "metadata.name=a"}, []),  # a is in default
    ("other", {"fieldSelector": "metadata.name=c", "labelSelector": "app=y"}, []),
    ("other", {"fieldSelector": "metadata.name=c,spec.size=large"}, []),
    ("default", {"fieldSelector": "metadata.name=a,metadata.namespace=default"}, ["a"]),
])
async def test_a_name_selector_in_a_namespace_reads_that_object_only(
    embedded_api: EmbeddedAPIServer, namespace: str, selector: dict[str, str], names: list[str]
) -> None:
    await _populate(embedded_api)
    reply = await call(embedded_api, "GET", f"/apis/example.test/v1/namespaces/{namespace}/widgets", params=selector)
    assert reply.status == 200
    assert [item["metadata"]["name"] for item in reply.body["items"]] == names


async def test_unsupported_field_selectors_and_bad_label_selectors_are_400(embedded_api: EmbeddedAPIServer) -> None:
    fields = await call(embedded_api, "GET", ALL_WIDGETS, params={"fieldSelector": "spec.owner.bin=1"})
    assert fields.status == 400
    assert fields.body["message"] == "field label not supported: spec.owner.bin"
    labels = await call(embedded_api, "GET", ALL_WIDGETS, params={"labelSelector": "app in x"})
    assert labels.status == 400


async def test_limit_and_continue_are_ignored_and_everything_is_returned(embedded_api: EmbeddedAPIServer) -> None:
    await _populate(embedded_api)
    reply = await call(embedded_api, "GET", ALL_WIDGETS, params={"limit": "1"})
    assert len(reply.body["items"]) == 4
    assert not reply.body["metadata"].get("continue")
