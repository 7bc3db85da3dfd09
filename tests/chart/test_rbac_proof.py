"""RBAC proof: the operator's roles in the chart are sufficient and minimal.

The operator runs in-process under the chart's ServiceAccount token (never as admin), cluster-wide and with kopf
peering on, against the real kube-apiserver in RBAC mode, through its whole workflow of today:

    start -> keep-alive in the peering object -> SubjectFunction created: Active, Ready, an Accepted Event ->
    updated to invalid: Invalid, a Warning Event -> deleted -> yields to a higher-priority peer -> resumes

Sufficient: with the rendered roles every step passes. Minimal: the rules of the rendered roles bound to the
operator's ServiceAccount are split into single (apiGroup, resource, verb[, resourceName]) permissions; for each,
the roles are re-applied without it, the API server is asked (SubjectAccessReview) until it denies exactly that
one, and the workflow runs again on a fresh object: some step must fail. Nothing here knows today's rules: when a
later issue adds handlers and rules, the proof covers them (and its workflow must grow with them).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.realapi.cluster import RealCluster
from tksh.config import OperatorConfig
from tksh.run import OperatorThread

from .chart_cluster import apply_peering, apply_rbac, install_crds, service_account_user, wait_until_authorized
from .helpers import NAMESPACE, Obj, bound_roles, one, render

pytestmark = pytest.mark.realapi

T = TypeVar("T")
SA_NAME = "tksh-operator"
STEP_TIMEOUT = 30.0  # with the full roles: only a deadline for a broken test
TRIAL_STEP_TIMEOUT = 10.0  # with a permission removed a step is expected to fail: wait less, but not flakily less
EVENTS_NAMESPACE = "default"  # kopf posts a cluster-scoped object's Events to its default namespace
APPS_NAMESPACE = "tksh-proof-apps"  # where the workflow's application (DigitalObject) lives
PEERING_LOGGER = "kopf._core.engines.peering"
API = "tksh.kz/v1alpha1"


# --- permissions ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Permission:
    """One (apiGroup, resource, verb[, resourceName]) of one rendered role."""

    role_kind: str
    role_name: str
    role_namespace: str | None
    group: str
    resource: str
    verb: str
    name: str | None = None

    def __str__(self) -> str:
        what = f"{self.group or 'core'}/{self.resource}" + (f"[{self.name}]" if self.name else "")
        return f"{self.verb} {what} ({self.role_kind} {self.role_name})"

    def review(self, user: str, groups: list[str]) -> dict[str, Any]:
        """The SubjectAccessReview arguments that ask for exactly this permission."""
        resource, _, subresource = self.resource.partition("/")
        kw: dict[str, Any] = {"user": user, "groups": groups, "verb": self.verb, "resource": resource,
                              "group": self.group, "subresource": subresource or None, "name": self.name}
        if self.role_namespace:
            kw["namespace"] = self.role_namespace
        elif self.group == "" and resource == "events":
            kw["namespace"] = EVENTS_NAMESPACE
        return kw


def split(role: Obj) -> list[Permission]:
    meta = role["metadata"]
    perms: list[Permission] = []
    for rule in role.get("rules", []):
        assert not rule.get("nonResourceURLs"), f"{meta['name']}: non-resource URLs are not expected"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), f"{meta['name']}: wildcards are not least privilege"
                    for name in rule.get("resourceNames") or [None]:
                        perms.append(Permission(role["kind"], meta["name"], meta.get("namespace"), group, resource,
                                                verb, name))
    return perms


def rebuild(role: Obj, perms: Sequence[Permission]) -> Obj:
    """The role with exactly these permissions (one rule each)."""
    rules = []
    for p in perms:
        rule: dict[str, Any] = {"apiGroups": [p.group], "resources": [p.resource], "verbs": [p.verb]}
        if p.name:
            rule["resourceNames"] = [p.name]
        rules.append(rule)
    return {**role, "rules": rules}


# --- the workflow ---------------------------------------------------------------------------------------------------


class StepFailed(AssertionError):
    pass


def eventually(check: Callable[[], T], timeout: float, what: str) -> T:
    """Retries ``check`` until it passes; a deadline to stop waiting, not a timing assertion."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            return check()
        except (AssertionError, KeyError, LookupError, TypeError) as exc:
            last = exc
        if time.monotonic() > deadline:
            detail = str(last).splitlines()[0] if str(last) else type(last).__name__
            raise StepFailed(f"{what}: not within {timeout:g} s ({detail})")
        time.sleep(0.1)


class LogRecorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@dataclasses.dataclass
class Outcome:
    passed: list[str]
    failed: str | None = None  # the first step that failed, with why
    crashed: str | None = None  # the operator's own exception, if it died

    @property
    def ok(self) -> bool:
        return self.failed is None


def application(name: str) -> dict[str, Any]:
    """An incomplete application (no functions, no endpoint): the operator must refuse it in its status (§16)."""
    return {
        "apiVersion": API, "kind": "DigitalObject", "metadata": {"name": name, "namespace": APPS_NAMESPACE},
        "spec": {"owner": {"bin": "140540001231", "name": "Proof", "subjectType": "PropertyOwnersAssociation",
                           "email": "proof@example.kz"}, "categories": [2]},
    }


def release_applications(cluster: RealCluster) -> None:
    """Trials without a permission leave applications whose finalizer nobody could remove: drop them."""
    apps = f"/apis/{API}/namespaces/{APPS_NAMESPACE}/digitalobjects"
    for item in cluster.checked("GET", apps)["items"]:
        name = item["metadata"]["name"]
        cluster.request("PATCH", f"{apps}/{name}", {"metadata": {"finalizers": None}},
                        content_type="application/merge-patch+json")
        cluster.request("DELETE", f"{apps}/{name}")


def function(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "SubjectFunction",
        "metadata": {"name": name, "labels": {"tksh.kz/test": "rbac-proof"}},
        "spec": {
            "titles": {"kk": "Пәтер иелерінің бірлестігі", "ru": "ОСИ", "en": "Owners' association"},
            "subjectTypes": ["PropertyOwnersAssociation"],
            "rights": [{"category": 2, "actions": ["read", "write"]}, {"category": 5, "actions": ["read", "write",
                                                                                                   "sign"]}],
        },
    }


@dataclasses.dataclass
class Workflow:
    cluster: RealCluster
    config: OperatorConfig
    peering: Obj  # the chart's ClusterKopfPeering
    name: str  # of the SubjectFunction and of this operator's peering identity
    step_timeout: float
    outcome: Outcome = dataclasses.field(default_factory=lambda: Outcome(passed=[]))

    def run(self) -> Outcome:
        self.cluster.delete(API, "SubjectFunction", self.name)
        self.cluster.delete(API, "DigitalObject", self.name, namespace=APPS_NAMESPACE)
        apply_peering(self.cluster, [self.peering])
        recorder = LogRecorder()
        logger = logging.getLogger(PEERING_LOGGER)
        previous_level = logger.level
        logger.setLevel(logging.INFO)
        logger.addHandler(recorder)
        previous_pod_id = os.environ.get("POD_ID")
        os.environ["POD_ID"] = self.name  # kopf's identity of this operator in the peering object
        thread = OperatorThread(self.config)
        try:
            self.steps(thread, recorder)
        except StepFailed as exc:
            self.outcome.failed = str(exc)
        finally:
            try:
                thread.stop(30)
            except TimeoutError:
                self.outcome.crashed = f"the operator did not stop within 30 s (trial {self.name})"
                raise
            finally:
                logger.removeHandler(recorder)
                logger.setLevel(previous_level)
                if previous_pod_id is None:
                    os.environ.pop("POD_ID", None)
                else:
                    os.environ["POD_ID"] = previous_pod_id
                self.cluster.delete(API, "SubjectFunction", self.name)
            if thread.error is not None:
                error = thread.error
                message = str(error.args[0]) if error.args else str(error)
                self.outcome.crashed = f"{type(error).__name__}: {message.splitlines()[0][:200]}"
        return self.outcome

    def step(self, what: str, check: Callable[[], T]) -> T:
        result = eventually(check, self.step_timeout, what)
        self.outcome.passed.append(what)
        return result

    def status(self) -> dict[str, Any]:
        resp = self.cluster.get(API, "SubjectFunction", self.name)
        assert resp.status == 200, resp.body
        return dict(resp.body.get("status") or {})

    def events(self) -> list[dict[str, Any]]:
        resp = self.cluster.checked("GET", f"/api/v1/namespaces/{EVENTS_NAMESPACE}/events",
                                    query={"fieldSelector": f"involvedObject.name={self.name}"})
        return list(resp["items"])

    def steps(self, thread: OperatorThread, recorder: LogRecorder) -> None:
        c = self.cluster
        name = self.name

        def started() -> None:
            if thread.error is not None:
                raise StepFailed(f"operator started: it died ({thread.error!r})")
            assert thread.ready_flag.is_set(), "not ready"

        try:
            thread.start(self.step_timeout)
        except Exception as exc:
            raise StepFailed(f"operator started: {exc!r}") from exc
        self.step("operator started and ready", started)

        def kept_alive() -> None:
            peering = c.checked("GET", f"/apis/kopf.dev/v1/clusterkopfpeerings/{self.peering['metadata']['name']}")
            assert name in (peering.get("status") or {}), peering.get("status")

        self.step("its keep-alive is in the peering object", kept_alive)

        c.checked("POST", f"/apis/{API}/subjectfunctions", function(name))

        def active() -> None:
            status = self.status()
            assert status.get("phase") == "Active", status
            assert status["observedGeneration"] == 1, status
            (ready,) = [x for x in status["conditions"] if x["type"] == "Ready"]
            assert (ready["status"], ready["reason"]) == ("True", "Accepted"), ready

        self.step("created: status Active, Ready=True, observedGeneration 1", active)

        def accepted_event() -> None:
            found = [e for e in self.events() if e["reason"] == "Accepted"]
            assert found and found[0]["type"] == "Normal", self.events()
            assert found[0]["reportingComponent"] == "tksh-operator", found[0]

        self.step("an Accepted Event is posted", accepted_event)

        broken = {"spec": {"rights": [{"category": 5, "actions": ["read", "write"]}]}}  # §8: no sign
        c.checked("PATCH", f"/apis/{API}/subjectfunctions/{name}", broken, content_type="application/merge-patch+json")

        def invalid() -> None:
            status = self.status()
            assert status.get("phase") == "Invalid", status
            assert status["observedGeneration"] == 2, status
            (ready,) = [x for x in status["conditions"] if x["type"] == "Ready"]
            assert (ready["status"], ready["reason"]) == ("False", "InvalidRights"), ready

        self.step("updated to invalid: status Invalid, Ready=False", invalid)

        def warning_event() -> None:
            assert any(e["reason"] == "InvalidRights" and e["type"] == "Warning" for e in self.events()), self.events()

        self.step("a Warning Event InvalidRights is posted", warning_event)

        # An application: the lifecycle daemon needs the finalizer (patch), the watch (list, watch) and
        # the status (patch status) to refuse it as incomplete and to let it go when deleted.
        apps = f"/apis/{API}/namespaces/{APPS_NAMESPACE}/digitalobjects"
        c.checked("POST", apps, application(name))

        def refused() -> None:
            resp = c.get(API, "DigitalObject", name, namespace=APPS_NAMESPACE)
            status = dict(resp.body.get("status") or {})
            assert status.get("phase") == "Refused", status
            assert "spec.functions" in status.get("missing", []), status
            # The lifecycle daemon holds the object until it has stopped (kopf's finalizer for daemons).
            assert "tksh.kz/finalizer" in resp.body["metadata"].get("finalizers", []), resp.body["metadata"]

        self.step("an incomplete application: Refused with what is missing, held by the finalizer", refused)
        c.checked("DELETE", f"{apps}/{name}")

        def released() -> None:
            assert c.get(API, "DigitalObject", name, namespace=APPS_NAMESPACE).status == 404

        self.step("the application deleted: the operator released its finalizer", released)

        c.checked("DELETE", f"/apis/{API}/subjectfunctions/{name}")

        def gone() -> None:
            assert c.get(API, "SubjectFunction", name).status == 404

        self.step("deleted: nothing holds it", gone)

        # A higher-priority operator appears in the peering object: this one must see it and pause.
        peering_path = f"/apis/kopf.dev/v1/clusterkopfpeerings/{self.peering['metadata']['name']}"
        rival = f"{name}-rival"
        now = datetime.datetime.now(datetime.UTC).isoformat()
        c.checked("PATCH", peering_path, {"status": {rival: {"priority": 100, "lifetime": 60, "lastseen": now}}},
                  content_type="application/merge-patch+json")

        def paused() -> None:
            assert any(m.startswith("Pausing operations in favour of") and rival in m for m in recorder.messages), (
                recorder.messages)

        self.step("pauses for a higher-priority peer", paused)

        c.checked("PATCH", peering_path, {"status": {rival: None}}, content_type="application/merge-patch+json")

        def resumed() -> None:
            pauses = [i for i, m in enumerate(recorder.messages) if m.startswith("Pausing operations")]
            assert pauses, recorder.messages
            later = recorder.messages[pauses[0] + 1:]
            assert any(m.startswith("Resuming operations after the pause") for m in later), recorder.messages

        self.step("resumes when that peer is gone", resumed)


# --- fixtures -------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ProofEnv:
    cluster: RealCluster
    objs: list[Obj]
    roles: list[Obj]
    permissions: list[Permission]
    config: OperatorConfig
    user: str
    groups: list[str]

    def apply_roles(self, without: Permission | None = None) -> None:
        for role in self.roles:
            keep = [p for p in split(role) if p != without]
            self.cluster.apply(rebuild(role, keep) if without else role)
        checks = [(p != without, p.review(self.user, self.groups)) for p in self.permissions]
        wait_until_authorized(self.cluster, checks)

    def workflow(self, name: str, step_timeout: float) -> Outcome:
        peering = one(self.objs, "ClusterKopfPeering")
        return Workflow(self.cluster, self.config, peering, name, step_timeout).run()


def operator_config(kubeconfig: Path) -> OperatorConfig:
    """The operator as in its pod: peering on, cluster-wide, logged in with the ServiceAccount's token."""
    return OperatorConfig(
        kubeconfig=str(kubeconfig), ops_host="127.0.0.1", ops_port=0, standalone=False, peering_name="tksh",
        priority=0, fast=True,
    )


@pytest.fixture(scope="module")
def proof(real_cluster: RealCluster, helm: Path) -> Iterator[ProofEnv]:
    objs = render(helm)  # the default values: peering on, cluster-wide
    install_crds(real_cluster)
    apply_rbac(real_cluster, objs)
    real_cluster.ensure_namespace(EVENTS_NAMESPACE)
    real_cluster.ensure_namespace(APPS_NAMESPACE)
    roles = bound_roles(objs, SA_NAME, NAMESPACE)
    assert {r["metadata"]["name"] for r in roles} == {"tksh-operator-read", "tksh-operator-write"}
    permissions = [p for role in roles for p in split(role)]
    kubeconfig = real_cluster.kubeconfig_for_service_account(SA_NAME, namespace=NAMESPACE)
    user, groups = service_account_user(SA_NAME, NAMESPACE)
    env = ProofEnv(real_cluster, objs, roles, permissions, operator_config(kubeconfig), user, groups)
    try:
        yield env
    finally:
        env.apply_roles()
        release_applications(real_cluster)
        peering = one(objs, "ClusterKopfPeering")
        real_cluster.delete(peering["apiVersion"], peering["kind"], peering["metadata"]["name"])


# --- the proof ------------------------------------------------------------------------------------------------------


def test_operator_roles_are_sufficient(proof: ProofEnv) -> None:
    proof.apply_roles()
    outcome = proof.workflow("rbac-proof-full", STEP_TIMEOUT)
    assert outcome.ok, f"failed at: {outcome.failed}; passed: {outcome.passed}; crash: {outcome.crashed}"
    assert outcome.crashed is None
    assert len(outcome.passed) == 11


@pytest.mark.timeout(900)
def test_operator_roles_are_minimal(proof: ProofEnv, capsys: pytest.CaptureFixture[str]) -> None:
    assert proof.permissions
    evidence: list[tuple[Permission, Outcome]] = []
    try:
        for index, permission in enumerate(proof.permissions):
            proof.apply_roles(without=permission)
            evidence.append((permission, proof.workflow(f"rbac-proof-{index}", TRIAL_STEP_TIMEOUT)))
    finally:
        proof.apply_roles()
    with capsys.disabled():
        print("\nRBAC minimality: each permission removed alone, and the first workflow step that failed")
        for permission, outcome in evidence:
            print(f"  - {permission}\n      -> {outcome.failed or 'NOTHING FAILED'}"
                  + (f" [operator died: {outcome.crashed}]" if outcome.crashed else ""))
    unneeded = [str(p) for p, outcome in evidence if outcome.ok]
    assert not unneeded, f"the workflow passes without these permissions, so the role must not have them: {unneeded}"
