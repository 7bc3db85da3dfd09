"""Putting the rendered chart into the real API server, and asking it who may do what (no pytest in here)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from tests.realapi.cluster import FIELD_MANAGER, RealCluster

from .helpers import CRDS, NAMESPACE, Obj

SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
# What the chart applies besides workloads: identities, roles, bindings, peering objects.
RBAC_KINDS = ("Namespace", "ServiceAccount", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding")


def install_crds(cluster: RealCluster) -> list[str]:
    """The chart's crds/ (ours and kopf's peering CRDs), waiting until each is served."""
    return cluster.install_crds(sorted(CRDS.glob("*.yaml")))


def apply_rbac(cluster: RealCluster, objs: Sequence[Obj], namespace: str = NAMESPACE) -> None:
    """The rendered ServiceAccounts, roles and bindings (and the release namespace)."""
    cluster.ensure_namespace(namespace)
    for kind in RBAC_KINDS:
        for obj in objs:
            if obj["kind"] == kind:
                cluster.apply(obj)


def apply_peering(cluster: RealCluster, objs: Iterable[Obj]) -> list[Obj]:
    """The rendered peering objects, recreated empty (no peers left from earlier operators)."""
    peerings = [o for o in objs if o["kind"] in ("ClusterKopfPeering", "KopfPeering")]
    for obj in peerings:
        meta = obj["metadata"]
        cluster.delete(obj["apiVersion"], obj["kind"], meta["name"], namespace=meta.get("namespace"))
        cluster.apply(obj)
    return peerings


def dry_run_apply(cluster: RealCluster, obj: Obj) -> Any:
    """Server-side apply with dryRun=All: admission and validation run, nothing is stored. Raises on refusal."""
    meta = obj["metadata"]
    path = cluster.resource_path(obj["apiVersion"], obj["kind"], namespace=meta.get("namespace"), name=meta["name"])
    return cluster.request(
        "PATCH",
        path,
        dict(obj),
        content_type="application/apply-patch+yaml",
        query={"fieldManager": FIELD_MANAGER, "force": "true", "dryRun": "All"},
    )


def service_account_user(name: str, namespace: str) -> tuple[str, list[str]]:
    return (
        f"system:serviceaccount:{namespace}:{name}",
        ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
    )


def may(
    cluster: RealCluster,
    user: str,
    groups: Sequence[str],
    verb: str,
    resource: str,
    *,
    group: str = "tksh.kz",
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> bool:
    """A SubjectAccessReview: may this user (in these groups) do this?"""
    attributes: dict[str, str] = {"verb": verb, "group": group, "resource": resource}
    if namespace:
        attributes["namespace"] = namespace
    if name:
        attributes["name"] = name
    if subresource:
        attributes["subresource"] = subresource
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": list(groups), "resourceAttributes": attributes},
    }
    status = cluster.checked("POST", SAR_PATH, body)["status"]
    return bool(status.get("allowed", False))


def wait_until_authorized(
    cluster: RealCluster, checks: Sequence[tuple[bool, dict[str, Any]]], timeout: float = 30.0
) -> None:
    """Waits until every SubjectAccessReview answers as expected: the authorizer follows role changes through
    an informer, so a role just applied may take a moment to count. A deadline, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while True:
        wrong = [kw for expected, kw in checks if may(cluster, **kw) != expected]
        if not wrong:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the authorizer still answers differently for {wrong}")
        time.sleep(0.05)
