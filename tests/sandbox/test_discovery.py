"""Discovery documents, /version, CRDs served as objects, runtime CRD registration, CRD file loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tksh.sandbox import apiserver
from tksh.sandbox.apiserver import EmbeddedAPIServer, project_crd_paths

from .helpers import TEST_CRDS, call


async def test_core_discovery_reports_group_version_v1(embedded_api: EmbeddedAPIServer) -> None:
    versions = await call(embedded_api, "GET", "/api")
    assert versions.body["kind"] == "APIVersions" and versions.body["versions"] == ["v1"]
    reply = await call(embedded_api, "GET", "/api/v1")
    assert reply.body["kind"] == "APIResourceList"
    assert reply.body["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in reply.body["resources"]}
    assert {"namespaces", "events", "secrets", "configmaps", "serviceaccounts"} <= set(by_name)
    assert by_name["namespaces"]["namespaced"] is False
    assert by_name["namespaces"]["kind"] == "Namespace"
    assert by_name["configmaps"]["shortNames"] == ["cm"]
    assert by_name["events"]["singularName"] == "event"
    assert "watch" in by_name["events"]["verbs"]


async def test_apis_lists_crd_groups_and_builtin_groups(embedded_api: EmbeddedAPIServer) -> None:
    reply = await call(embedded_api, "GET", "/apis")
    assert reply.body["kind"] == "APIGroupList"
    groups = {g["name"]: g for g in reply.body["groups"]}
    assert {"example.test", "apiextensions.k8s.io", "coordination.k8s.io", "events.k8s.io"} <= set(groups)
    assert groups["example.test"]["preferredVersion"] == {"groupVersion": "example.test/v1", "version": "v1"}
    group = await call(embedded_api, "GET", "/apis/example.test")
    assert group.body["kind"] == "APIGroup" and group.body["name"] == "example.test"
    assert (await call(embedded_api, "GET", "/apis/nothing.test")).status == 404


async def test_group_version_lists_crd_resources_with_the_status_subresource(embedded_api: EmbeddedAPIServer) -> None:
    reply = await call(embedded_api, "GET", "/apis/example.test/v1")
    assert reply.body["groupVersion"] == "example.test/v1"
    by_name = {r["name"]: r for r in reply.body["resources"]}
    widgets = by_name["widgets"]
    assert widgets["kind"] == "Widget" and widgets["namespaced"] is True
    assert widgets["shortNames"] == ["wdg"] and widgets["categories"] == ["examples"]
    assert widgets["singularName"] == "widget"
    assert set(widgets["verbs"]) >= {"get", "list", "watch", "create", "update", "patch", "delete"}
    assert by_name["widgets/status"]["verbs"] == ["get", "patch", "update"]
    assert by_name["gadgets"]["namespaced"] is False
    assert "gadgets/status" not in by_name


async def test_version_reports_kubernetes_1_31(embedded_api: EmbeddedAPIServer) -> None:
    reply = await call(embedded_api, "GET", "/version")
    assert reply.body["major"] == "1" and reply.body["minor"] == "31"
    assert reply.body["gitVersion"].startswith("v1.31")
    assert (await call(embedded_api, "GET", "/openapi/v2")).status == 404


async def test_crds_are_objects_and_a_crd_created_at_runtime_is_served(embedded_api: EmbeddedAPIServer) -> None:
    crds = await call(embedded_api, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    names = [crd["metadata"]["name"] for crd in crds.body["items"]]
    assert names == ["gadgets.example.test", "widgets.example.test"]
    established = crds.body["items"][1]["status"]["conditions"]
    assert {"type": "Established", "status": "True"}.items() <= established[1].items()

    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "kexes.kopf.dev"},
           "spec": {"group": "kopf.dev", "scope": "Cluster", "names": {"plural": "kexes", "kind": "KopfExample"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
    registered = await call(embedded_api, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert registered.status == 201
    assert "kopf.dev" in {g["name"] for g in (await call(embedded_api, "GET", "/apis")).body["groups"]}
    created = await call(embedded_api, "POST", "/apis/kopf.dev/v1/kexes", {"metadata": {"name": "k"}, "x": 1})
    assert created.status == 201 and created.body["x"] == 1

    crds_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    deleted = await call(embedded_api, "DELETE", f"{crds_path}/kexes.kopf.dev")
    assert deleted.status == 200
    assert (await call(embedded_api, "GET", "/apis/kopf.dev/v1/kexes")).status == 404


async def test_a_crd_whose_name_mismatches_its_names_is_422(embedded_api: EmbeddedAPIServer) -> None:
    crd = yaml.safe_load(TEST_CRDS.split("---")[0])
    crd["metadata"]["name"] = "wrong.example.test"
    reply = await call(embedded_api, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert reply.status == 422
    assert reply.body["details"]["causes"][0]["field"] == "metadata.name"


def test_crds_load_from_multi_document_yaml(crd_file: Path) -> None:
    assert [doc["metadata"]["name"] for doc in apiserver.load_crds([crd_file])] == [
        "widgets.example.test", "gadgets.example.test"]


def test_project_crd_paths_lists_yaml_files_of_the_crds_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TKSH_CRDS_DIR", raising=False)
    repo_crds = Path(__file__).resolve().parents[2] / "charts" / "tksh" / "crds"
    assert project_crd_paths() == sorted(repo_crds.glob("*.y*ml"))
    (tmp_path / "b.yaml").write_text("{}")
    (tmp_path / "a.yaml").write_text("{}")
    (tmp_path / "notes.txt").write_text("")
    monkeypatch.setenv("TKSH_CRDS_DIR", str(tmp_path))
    assert [path.name for path in project_crd_paths()] == ["a.yaml", "b.yaml"]
    monkeypatch.setenv("TKSH_CRDS_DIR", str(tmp_path / "missing"))
    assert project_crd_paths() == []
