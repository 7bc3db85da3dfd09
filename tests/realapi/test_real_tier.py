"""Proves the real tier is a real API server: version, structural schemas, CEL, tables, RBAC, our own CRDs."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from .cluster import REPO_ROOT, RealCluster, pinned_versions

T = TypeVar("T")

GROUP = "example.test"
API_VERSION = f"{GROUP}/v1"
PLURAL = "widgets"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
PROJECT_CRDS = REPO_ROOT / "charts" / "tksh" / "crds"

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Colour", "type": "string", "jsonPath": ".spec.colour"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "x-kubernetes-validations": [
                                    {"rule": "self.size >= self.minSize", "message": "size must be at least minSize"}
                                ],
                                "properties": {
                                    "size": {"type": "integer"},
                                    "minSize": {"type": "integer", "default": 1},
                                    "colour": {"type": "string", "default": "blue"},
                                },
                            },
                            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                        },
                    }
                },
            }
        ],
    },
}


def eventually(check: Callable[[], T], timeout: float = 30.0) -> T:
    """Retries ``check`` until it stops failing an assertion (a deadline for a broken test, not a timing check)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def widgets(real_cluster: RealCluster) -> RealCluster:
    real_cluster.install_crd(WIDGET_CRD)
    return real_cluster


@pytest.fixture
def namespace(real_cluster: RealCluster) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    real_cluster.ensure_namespace(name)
    return name


def widgets_path(namespace: str, name: str | None = None) -> str:
    path = f"/apis/{API_VERSION}/namespaces/{namespace}/{PLURAL}"
    return f"{path}/{name}" if name else path


def test_version_is_the_pinned_release(real_cluster: RealCluster) -> None:
    k8s_version, etcd_version = pinned_versions()
    version = real_cluster.checked("GET", "/version")
    assert version["gitVersion"] == k8s_version
    major, minor = k8s_version.lstrip("v").split(".")[:2]
    assert (version["major"], version["minor"]) == (major, minor)
    with urllib.request.urlopen(f"{real_cluster.etcd_url}/version", timeout=5) as resp:
        etcd = resp.read().decode()
    assert f'"etcdserver":"{etcd_version.lstrip("v")}"' in etcd


def test_everything_listens_on_loopback(real_cluster: RealCluster) -> None:
    assert real_cluster.server.startswith("https://127.0.0.1:")
    assert real_cluster.etcd_url.startswith("http://127.0.0.1:")
    assert real_cluster.kubeconfig.is_file()


def test_structural_crd_is_established(widgets: RealCluster) -> None:
    crd = widgets.checked("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{PLURAL}.{GROUP}")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert conditions.get("NonStructuralSchema", "False") == "False"
    discovery = widgets.checked("GET", f"/apis/{API_VERSION}")
    assert {r["name"] for r in discovery["resources"]} == {PLURAL, f"{PLURAL}/status"}


def test_defaults_applied_unknown_fields_pruned_status_ignored(widgets: RealCluster, namespace: str) -> None:
    obj = {
        "apiVersion": API_VERSION,
        "kind": "Widget",
        "metadata": {"name": "w1"},
        "spec": {"size": 3, "undeclared": "must vanish"},
        "status": {"phase": "set-on-create"},
        "undeclaredTopLevel": {"also": "pruned"},
    }
    resp = widgets.request("POST", widgets_path(namespace), obj)
    assert resp.status == 201, resp.body
    created = resp.body
    assert created["spec"] == {"size": 3, "minSize": 1, "colour": "blue"}
    assert "undeclaredTopLevel" not in created
    assert "status" not in created  # the status subresource owns it: ignored on the main resource
    assert "undeclared" in resp.headers.get("Warning", "")  # fieldValidation=Warn: the server says what it pruned

    stored = widgets.checked("GET", widgets_path(namespace, "w1"))
    assert stored["spec"] == {"size": 3, "minSize": 1, "colour": "blue"}

    stored["status"] = {"phase": "Ready", "undeclared": "pruned too"}
    updated = widgets.checked("PUT", widgets_path(namespace, "w1") + "/status", stored)
    assert updated["status"] == {"phase": "Ready"}


def test_strict_field_validation_refuses_unknown_fields(widgets: RealCluster, namespace: str) -> None:
    obj = {"apiVersion": API_VERSION, "kind": "Widget", "metadata": {"name": "strict"}, "spec": {"size": 2, "x": 1}}
    resp = widgets.request("POST", widgets_path(namespace), obj, query={"fieldValidation": "Strict"})
    assert resp.status == 400, resp.body
    assert 'unknown field "spec.x"' in resp.body["message"]


def test_cel_violation_is_refused_with_422(widgets: RealCluster, namespace: str) -> None:
    obj = {
        "apiVersion": API_VERSION,
        "kind": "Widget",
        "metadata": {"name": "small"},
        "spec": {"size": 1, "minSize": 5},
    }
    resp = widgets.request("POST", widgets_path(namespace), obj)
    assert resp.status == 422, resp.body
    assert resp.body["reason"] == "Invalid"
    assert "size must be at least minSize" in resp.body["message"]
    assert widgets.request("GET", widgets_path(namespace, "small")).status == 404

    missing = {"apiVersion": API_VERSION, "kind": "Widget", "metadata": {"name": "nosize"}, "spec": {}}
    resp = widgets.request("POST", widgets_path(namespace), missing)
    assert resp.status == 422, resp.body
    assert "spec.size: Required value" in resp.body["message"]


def test_table_has_printer_columns(widgets: RealCluster, namespace: str) -> None:
    widgets.apply(
        {
            "apiVersion": API_VERSION,
            "kind": "Widget",
            "metadata": {"name": "tab", "namespace": namespace},
            "spec": {"size": 7, "colour": "green"},
        }
    )
    table = widgets.checked("GET", widgets_path(namespace), headers={"Accept": TABLE})
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns == ["Name", "Size", "Colour", "Phase"]  # declared columns replace the default Age column
    assert len(table["rows"]) == 1
    assert table["rows"][0]["cells"] == ["tab", 7, "green", None]  # no status yet: the Phase cell is empty


def test_rbac_denies_a_fresh_service_account(widgets: RealCluster, namespace: str) -> None:
    token = widgets.service_account_token("nobody", namespace=namespace)

    # The token is valid (authenticated, not 401) and names the ServiceAccount...
    review = widgets.checked(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        token=token,
    )
    assert review["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:nobody"

    # ...yet it may not list widgets, and the admin certificate may.
    denied = widgets.request("GET", widgets_path(namespace), token=token)
    assert denied.status == 403, denied.body
    assert denied.body["reason"] == "Forbidden"
    assert widgets.request("GET", widgets_path(namespace)).status == 200

    # A Role + RoleBinding grants exactly list in this namespace, and nothing elsewhere.
    widgets.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "widget-reader", "namespace": namespace},
            "rules": [{"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["list"]}],
        }
    )
    widgets.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "nobody-reads-widgets", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "widget-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "nobody", "namespace": namespace}],
        }
    )

    def allowed() -> None:
        assert widgets.request("GET", widgets_path(namespace), token=token).status == 200

    eventually(allowed)
    assert widgets.request("GET", widgets_path("default"), token=token).status == 403
    create = {"apiVersion": API_VERSION, "kind": "Widget", "metadata": {"name": "nope"}, "spec": {"size": 1}}
    assert widgets.request("POST", widgets_path(namespace), create, token=token).status == 403


def test_kubeconfig_for_token_is_usable_by_the_kubernetes_client(widgets: RealCluster, namespace: str) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    path = widgets.kubeconfig_for_service_account("reader", namespace=namespace)
    api = kubernetes.config.new_client_from_config(config_file=str(path))
    try:
        custom = kubernetes.client.CustomObjectsApi(api)
        with pytest.raises(kubernetes.client.exceptions.ApiException) as info:
            custom.list_namespaced_custom_object(GROUP, "v1", namespace, PLURAL)
        assert info.value.status == 403
    finally:
        api.close()

    admin = kubernetes.config.new_client_from_config(config_file=str(widgets.kubeconfig))
    try:
        items = kubernetes.client.CustomObjectsApi(admin).list_namespaced_custom_object(GROUP, "v1", namespace, PLURAL)
        assert items["kind"] == "WidgetList"
    finally:
        admin.close()


def project_crd_files() -> list[Path]:
    return sorted(PROJECT_CRDS.glob("*.yaml")) if PROJECT_CRDS.is_dir() else []


def test_project_crds_are_established(real_cluster: RealCluster) -> None:
    files = project_crd_files()
    if not files:
        pytest.skip(f"no CRDs in {PROJECT_CRDS.relative_to(REPO_ROOT)} yet (generated by `make crds`)")
    names = real_cluster.install_crds(files)
    assert names, f"{len(files)} files but no CustomResourceDefinition in them"
    for name in names:
        crd = real_cluster.checked("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions["Established"] == "True", (name, conditions)
        assert conditions.get("NonStructuralSchema", "False") == "False", (name, conditions)
        group, version = crd["spec"]["group"], next(v["name"] for v in crd["spec"]["versions"] if v["served"])
        plural = crd["spec"]["names"]["plural"]
        assert real_cluster.request("GET", f"/apis/{group}/{version}/{plural}").status == 200
