"""Table output for kubectl: printer columns, JSONPath cells, PartialObjectMetadata rows."""

from __future__ import annotations

import pytest

from tksh.sandbox.apiserver import EmbeddedAPIServer
from tksh.sandbox.apiserver.tables import human_duration, jsonpath

from .helpers import WIDGETS, call, widget

TABLE = ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
         "application/json")


async def test_custom_resources_are_tabulated_with_their_printer_columns(embedded_api: EmbeddedAPIServer) -> None:
    await embedded_api.apply(widget("w1", replicas=3) | {"status": {"phase": "Ready", "conditions": [
        {"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}})
    await embedded_api.apply(widget("w2"))
    reply = await call(embedded_api, "GET", WIDGETS, headers={"Accept": TABLE})
    assert reply.status == 200
    assert (reply.body["kind"], reply.body["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert [c["name"] for c in reply.body["columnDefinitions"]] == ["Name", "Size", "Replicas", "Phase", "Ready", "Age"]
    rows = reply.body["rows"]
    assert [row["cells"][:5] for row in rows] == [["w1", "small", 3, "Ready", "True"], ["w2", "small", 1, None, None]]
    assert rows[0]["cells"][5].endswith("s")
    assert rows[0]["object"]["kind"] == "PartialObjectMetadata"
    assert rows[0]["object"]["metadata"]["name"] == "w1"
    single = await call(embedded_api, "GET", f"{WIDGETS}/w2", headers={"Accept": TABLE})
    assert [row["cells"][0] for row in single.body["rows"]] == ["w2"]


async def test_resources_without_printer_columns_get_name_and_age(embedded_api: EmbeddedAPIServer) -> None:
    await call(embedded_api, "POST", "/apis/example.test/v1/gadgets", {"metadata": {"name": "g"}})
    gadgets = await call(embedded_api, "GET", "/apis/example.test/v1/gadgets", headers={"Accept": TABLE})
    assert [c["name"] for c in gadgets.body["columnDefinitions"]] == ["Name", "Age"]
    configmaps = await call(embedded_api, "GET", "/api/v1/namespaces/kube-system/configmaps",
                            headers={"Accept": TABLE})
    assert [c["name"] for c in configmaps.body["columnDefinitions"]] == ["Name", "Age"]
    plain = await call(embedded_api, "GET", "/apis/example.test/v1/gadgets")
    assert plain.body["kind"] == "GadgetList"


def test_jsonpath_subset() -> None:
    obj = {"status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]},
           "spec": {"list": [1, 2], "a.b": "dotted"}}
    assert jsonpath(obj, '.status.conditions[?(@.type=="Ready")].status') == ["True"]
    assert jsonpath(obj, ".status.conditions[?(@.type!='Ready')].type") == ["A"]
    assert jsonpath(obj, ".spec.list[1]") == [2]
    assert jsonpath(obj, ".spec.list[*]") == [1, 2]
    assert jsonpath(obj, "{.spec['a.b']}") == ["dotted"]
    assert jsonpath(obj, ".spec.missing") == []


@pytest.mark.parametrize(("seconds", "text"), [
    (5, "5s"), (119, "119s"), (125, "2m5s"), (600, "10m"), (3 * 3600 + 5 * 60, "3h5m"), (30 * 3600, "30h"),
    (3 * 86400 + 4 * 3600, "3d4h"), (40 * 86400, "40d"), (-5, "<invalid>"),
])
def test_ages_read_like_kubectl(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text
