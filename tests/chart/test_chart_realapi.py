"""The rendered chart against the real kube-apiserver: its CRDs, identities and roles are accepted and mean what
they say (SubjectAccessReview and impersonated requests), and its workloads pass admission, including the
`restricted` Pod Security Standard."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.realapi.cluster import RealCluster

from .chart_cluster import RBAC_KINDS, apply_peering, apply_rbac, dry_run_apply, install_crds, may, service_account_user
from .helpers import NAMESPACE, VALUES_ALL, Obj, crd_documents, of_kind, render, workloads

pytestmark = pytest.mark.realapi

AUDITORS = "tksh:auditors"
ADMINS = "tksh:administrators"
PSS_NAMESPACE = "tksh-pss-restricted"
SF = "subjectfunctions"
FUNCTION: dict[str, Any] = {
    "apiVersion": "tksh.kz/v1alpha1",
    "kind": "SubjectFunction",
    "metadata": {"name": "chart-rbac-check"},
    "spec": {
        "titles": {"kk": "Тексеру", "ru": "Проверка", "en": "Check"},
        "subjectTypes": ["PropertyOwnersAssociation"],
        "rights": [{"category": 2, "actions": ["read"]}],
    },
}


@pytest.fixture(scope="module")
def installed(real_cluster: RealCluster, helm: Path) -> Iterator[list[Obj]]:
    """CRDs, ServiceAccount, roles, bindings and the peering object of the default chart (plus a viewer group)."""
    objs = render(helm, set_values={"rbac.viewer.groups[0]": AUDITORS})
    install_crds(real_cluster)
    apply_rbac(real_cluster, objs)
    apply_peering(real_cluster, objs)
    yield objs
    for obj in of_kind(objs, "ClusterKopfPeering"):
        real_cluster.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"])


def test_crds_and_rbac_are_stored(real_cluster: RealCluster, installed: list[Obj]) -> None:
    for crd in crd_documents():
        stored = real_cluster.checked("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                                             f"{crd['metadata']['name']}")
        assert {c["type"]: c["status"] for c in stored["status"]["conditions"]}["Established"] == "True"
    applied = [o for o in installed if o["kind"] in (*RBAC_KINDS, "ClusterKopfPeering")]
    assert len(applied) >= 8
    for obj in applied:
        meta = obj["metadata"]
        resp = real_cluster.get(obj["apiVersion"], obj["kind"], meta["name"], namespace=meta.get("namespace"))
        assert resp.status == 200, (obj["kind"], meta["name"], resp.body)
        if obj["kind"] in ("ClusterRole", "Role"):
            assert resp.body["rules"] == obj["rules"]


def test_operator_identity_gets_exactly_its_rules(real_cluster: RealCluster, installed: list[Obj]) -> None:
    user, groups = service_account_user("tksh-operator", NAMESPACE)

    def can(verb: str, resource: str, **kw: Any) -> bool:
        return may(real_cluster, user, groups, verb, resource, **kw)

    assert can("list", SF) and can("watch", SF) and can("patch", SF)
    assert can("patch", SF, subresource="status")
    assert can("create", "events", group="", namespace="default")
    assert can("patch", "clusterkopfpeerings", group="kopf.dev", name="tksh")
    # and nothing more
    assert not can("get", SF)
    assert not can("delete", SF)
    assert not can("update", SF, subresource="status")
    assert not can("create", SF)
    assert not can("patch", "clusterkopfpeerings", group="kopf.dev", name="someone-else")
    assert not can("list", "secrets", group="", namespace=NAMESPACE)
    assert can("list", "digitalobjects") and can("watch", "digitalobjects") and can("patch", "digitalobjects")
    assert can("patch", "digitalobjects", subresource="status")
    assert not can("get", "digitalobjects") and not can("update", "digitalobjects", subresource="status")
    assert can("list", "accessgrants") and can("watch", "accessgrants") and can("get", "accessgrants")
    assert can("patch", "accessgrants", subresource="status")
    assert not can("patch", "accessgrants") and not can("create", "accessgrants")
    # monitoring: central components and incidents watched; incidents created; finalizers and status patched
    for resource in ("centralcomponents", "incidents"):
        assert can("list", resource) and can("watch", resource) and can("patch", resource), resource
        assert can("patch", resource, subresource="status"), resource
        assert not can("get", resource) and not can("delete", resource), resource
        assert not can("update", resource, subresource="status"), resource
    assert can("create", "incidents", namespace="apps") and can("create", "incidents", namespace=NAMESPACE)
    assert not can("create", "centralcomponents")
    # Secrets: tokens written and deleted, the signing keys and owners' webhook secrets read by name; never found
    # without their name (list, watch), never updated wholesale
    for verb in ("get", "create", "patch", "delete"):
        assert can(verb, "secrets", group="", namespace="apps"), verb
    for verb in ("list", "watch", "update", "deletecollection"):
        assert not can(verb, "secrets", group="", namespace="apps"), verb
    assert can("get", "secrets", group="", namespace=NAMESPACE, name="tksh-signing-keys")
    # and nothing else of the core group but Events
    for resource in ("configmaps", "pods", "serviceaccounts"):
        assert not can("get", resource, group="", namespace="apps"), resource


def test_authz_identity_only_reads_what_it_serves(real_cluster: RealCluster, installed: list[Obj]) -> None:
    user, groups = service_account_user("tksh-authz", NAMESPACE)
    for resource in ("accessgrants", SF, "digitalobjects", "centralcomponents", "incidents"):
        for verb in ("list", "watch"):
            assert may(real_cluster, user, groups, verb, resource), (verb, resource)
        for verb in ("get", "create", "patch", "delete"):
            assert not may(real_cluster, user, groups, verb, resource, namespace="apps"), (verb, resource)
    assert not may(real_cluster, user, groups, "get", "secrets", group="", namespace=NAMESPACE,
                   name="tksh-signing-keys-public")  # its keys are a mounted volume


def test_viewer_reads_and_writes_nothing(real_cluster: RealCluster, installed: list[Obj]) -> None:
    for verb in ("get", "list", "watch"):
        for resource in ("digitalobjects", SF, "accessgrants", "incidents", "centralcomponents"):
            assert may(real_cluster, "audrey", [AUDITORS], verb, resource, namespace="apps"), (verb, resource)
    for verb in ("create", "update", "patch", "delete"):
        assert not may(real_cluster, "audrey", [AUDITORS], verb, "digitalobjects", namespace="apps"), verb
    assert not may(real_cluster, "bob", [], "get", "digitalobjects", namespace="apps")


def test_admin_writes_reviews_but_never_status(real_cluster: RealCluster, installed: list[Obj]) -> None:
    for verb in ("create", "update", "patch", "delete"):
        for resource in ("digitalobjects", SF, "accessgrants"):
            assert may(real_cluster, "alice", [ADMINS], verb, resource, namespace="apps"), (verb, resource)
    assert not may(real_cluster, "alice", [ADMINS], "patch", "digitalobjects", namespace="apps", subresource="status")
    assert not may(real_cluster, "alice", [ADMINS], "patch", SF, subresource="status")
    assert not may(real_cluster, "bob", [], "patch", "digitalobjects", namespace="apps")


def test_people_acting_through_the_api(real_cluster: RealCluster, installed: list[Obj]) -> None:
    """Real requests as the people (impersonated by the admin client), not just reviews."""
    path = f"/apis/tksh.kz/v1alpha1/{SF}"

    def as_(user: str, *groups: str) -> dict[str, str]:
        headers = {"Impersonate-User": user}
        if groups:
            headers["Impersonate-Group"] = groups[0]  # one group is enough here
        return headers

    name = FUNCTION["metadata"]["name"]
    real_cluster.delete("tksh.kz/v1alpha1", "SubjectFunction", name)
    assert real_cluster.request("POST", path, copy.deepcopy(FUNCTION), headers=as_("bob")).status == 403
    assert real_cluster.request("POST", path, copy.deepcopy(FUNCTION), headers=as_("audrey", AUDITORS)).status == 403
    created = real_cluster.request("POST", path, copy.deepcopy(FUNCTION), headers=as_("alice", ADMINS))
    assert created.status == 201, created.body
    try:
        assert real_cluster.request("GET", f"{path}/{name}", headers=as_("audrey", AUDITORS)).status == 200
        assert real_cluster.request("GET", f"{path}/{name}", headers=as_("bob")).status == 403
        status_patch = {"status": {"phase": "Active"}}
        refused = real_cluster.request("PATCH", f"{path}/{name}/status", status_patch, headers=as_("alice", ADMINS),
                                       content_type="application/merge-patch+json")
        assert refused.status == 403
    finally:
        real_cluster.delete("tksh.kz/v1alpha1", "SubjectFunction", name)


def test_workloads_pass_admission_under_the_restricted_pod_security_standard(
    real_cluster: RealCluster, helm: Path, installed: list[Obj]
) -> None:
    """Every rendered object is accepted by the real API server (server-side dry run), in a namespace that enforces
    the `restricted` Pod Security Standard; a Pod made from each workload's template is admitted there."""
    real_cluster.apply({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": PSS_NAMESPACE, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/warn": "restricted",
        }},
    })
    objs = render(helm, [VALUES_ALL], namespace=PSS_NAMESPACE)
    # the Prometheus Operator's and cert-manager's CRDs are not installed here
    skipped = {"ServiceMonitor", "PrometheusRule", "Certificate", "Issuer"}
    for obj in objs:
        if obj["kind"] in skipped:
            continue
        resp = dry_run_apply(real_cluster, obj)
        assert resp.ok, (obj["kind"], obj["metadata"]["name"], resp.body)
        assert "PodSecurity" not in resp.headers.get("Warning", ""), (obj["kind"], resp.headers["Warning"])
    found = list(workloads(objs))
    assert {w["kind"] for w in found} == {"StatefulSet", "Deployment"}
    for workload in found:
        pod = pod_from(workload)
        resp = real_cluster.request("POST", f"/api/v1/namespaces/{PSS_NAMESPACE}/pods", pod, query={"dryRun": "All"})
        assert resp.status == 201, (workload["metadata"]["name"], resp.body)
    # the check can fail: the same pod with privilege escalation allowed is refused
    pod = pod_from(found[0])
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    resp = real_cluster.request("POST", f"/api/v1/namespaces/{PSS_NAMESPACE}/pods", pod, query={"dryRun": "All"})
    assert resp.status == 403 and "allowPrivilegeEscalation" in str(resp.body), resp.body


def pod_from(workload: Obj) -> dict[str, Any]:
    template = copy.deepcopy(workload["spec"]["template"])
    # the downward API label of StatefulSet pods, set here by hand (no controller runs in this tier)
    template["metadata"]["labels"]["apps.kubernetes.io/pod-index"] = "0"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{workload['metadata']['name']}-dry-run", **template["metadata"]},
        "spec": template["spec"],
    }
