"""RBAC proof: the operator's roles in the chart are sufficient and minimal.

The operator runs in-process under the chart's ServiceAccount token (never as admin), cluster-wide and with kopf
peering on, against the real kube-apiserver in RBAC mode, through its whole workflow of today:

    start -> the admission webhook answers over TLS -> keep-alive in the peering object -> SubjectFunction created:
    Active, Ready, an Accepted Event -> updated to invalid: Invalid, a Warning Event -> an application refused ->
    the signing keys created -> a grant made Active gets its token Secret -> renewed -> terminated: the Secret
    deleted -> a delegate of that ended grant refused by the webhook, which read its principal -> a central
    component probed -> an application integrated and monitored -> its endpoint (a real
    local HTTP server) fails: an Incident opened, the application Down, the owner's signed webhook (its Secret
    read) -> recovered: the Incident released -> a grant ended on false information flags the application ->
    application and component deleted -> the function deleted -> yields to a higher-priority peer -> resumes

(token_steps.py and monitoring_steps.py hold the middle parts.)

The decision point's role is proven the same way at the end of this file (its own, shorter workflow: listed, then
objects created later seen through the watches without a relist).

The operator serves the admission webhook as in its pod (the chart's certificate; admission.enabled is the default):
the chart installs the ValidatingWebhookConfiguration, so serving it needs no permission of the operator's own.

Sufficient: with the rendered roles every step passes. Minimal: the rules of the rendered roles bound to the
operator's ServiceAccount are split into single (apiGroup, resource, verb[, resourceName]) permissions; for each,
the roles are re-applied without it, the API server is asked (SubjectAccessReview) until it denies exactly that
one, and the workflow runs again on a fresh object: some step must fail. Nothing here knows today's rules: when a
later issue adds handlers and rules, the proof covers them (and its workflow must grow with them).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.realapi.cluster import RealCluster
from tksh.config import OperatorConfig
from tksh.run import OperatorThread

from .chart_cluster import apply_peering, apply_rbac, install_crds, service_account_user, wait_until_authorized
from .helpers import NAMESPACE, Obj, bound_roles, env_of, one, render
from .monitoring_steps import FAST_MONITORING, Servers, clean_monitoring, monitoring_steps
from .token_steps import clean_tokens, delegate_of, token_steps
from .webhook_tls import SERVICE_HOSTNAME, TlsPair, admission_review, post_over_tls, secret_pair

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
    webhook_tls: TlsPair  # the chart's pair, which the operator serves
    servers: Servers  # the probed endpoints, the owner's webhook receiver, the SMTP sink
    # Gives the operator its full roles back: an operator that may not patch its peering record does not stop (kopf's
    # last keep-alive retries 403 under the operator's unending API backoffs); it stops once the patch is allowed.
    unstick: Callable[[], None] | None = None
    outcome: Outcome = dataclasses.field(default_factory=lambda: Outcome(passed=[]))

    def run(self) -> Outcome:
        self.cluster.delete(API, "SubjectFunction", self.name)
        self.cluster.delete(API, "DigitalObject", self.name, namespace=APPS_NAMESPACE)
        clean_tokens(self.cluster, self.config, self.name, APPS_NAMESPACE)
        clean_monitoring(self.cluster, self.config, self.name, APPS_NAMESPACE)
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
                try:
                    thread.stop(30)
                except TimeoutError:
                    if self.unstick is None:
                        raise
                    self.unstick()
                    thread.stop(30)
                    self.outcome.crashed = "it did not stop until the full roles were back"
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
                clean_tokens(self.cluster, self.config, self.name, APPS_NAMESPACE)
                clean_monitoring(self.cluster, self.config, self.name, APPS_NAMESPACE)
            if thread.error is not None:
                error = thread.error
                message = str(error.args[0]) if error.args else str(error)
                self.outcome.crashed = f"{type(error).__name__}: {message.splitlines()[0][:200]}"
        return self.outcome

    def step(self, what: str, check: Callable[[], T]) -> T:
        result = eventually(check, self.step_timeout, what)
        self.outcome.passed.append(what)
        return result

    def webhook(self, path: str, review: dict[str, Any]) -> dict[str, Any]:
        """The operator's webhook's answer (``response``) to AdmissionReview ``review`` at ``path``, over TLS as the
        API server asks it; an AssertionError (the step retries) while it does not answer."""
        try:
            status, body = post_over_tls(self.config.admission_port, path, review, ca=self.webhook_tls.ca,
                                         server_hostname=SERVICE_HOSTNAME)
        except OSError as exc:
            raise AssertionError(f"not answering: {exc}") from exc
        assert status == 200, body
        response: dict[str, Any] = body["response"]
        return response

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

        def webhook_answers() -> None:
            new = application(name)
            new["spec"]["review"] = {"decision": "Approved", "reviewer": "proof"}
            review = admission_review(uid=name, userinfo={"username": "owner", "groups": ["system:authenticated"]},
                                      new=new, old=application(name))
            response = self.webhook("/review", review)
            assert response["allowed"] is False and response["status"]["code"] == 403, response

        self.step("the admission webhook answers over TLS", webhook_answers)

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

        token_steps(self.cluster, self.config, name, APPS_NAMESPACE, self.step)  # access tokens and signing keys

        def delegate_refused() -> None:
            """The webhook reads the principal a delegate names (get by name): only then can it say the principal
            has ended; unread, it would refuse the delegate as naming an unknown principal."""
            delegate = delegate_of(name, APPS_NAMESPACE)
            review = admission_review(uid=f"{name}-delegate", userinfo={"username": "admin", "groups": ["admins"]},
                                      new=delegate, old=None, kind="AccessGrant", plural="accessgrants")
            response = self.webhook("/accessgrants", review)
            assert response["allowed"] is False, response
            assert "has ended (REVOKED" in response["status"]["message"], response

        self.step("a delegate of the ended grant is refused: the webhook read its principal", delegate_refused)
        # probes, incidents, the owner's webhook, the grant lifecycle's flag on applications
        monitoring_steps(self.cluster, self.config, name, APPS_NAMESPACE, self.step, self.servers)

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
    webhook_tls: TlsPair
    servers: Servers

    def apply_roles(self, without: Permission | None = None) -> None:
        for role in self.roles:
            keep = [p for p in split(role) if p != without]
            self.cluster.apply(rebuild(role, keep) if without else role)
        checks = [(p != without, p.review(self.user, self.groups)) for p in self.permissions]
        wait_until_authorized(self.cluster, checks)

    def workflow(self, name: str, step_timeout: float) -> Outcome:
        peering = one(self.objs, "ClusterKopfPeering")
        return Workflow(self.cluster, self.config, peering, name, step_timeout, self.webhook_tls, self.servers,
                        unstick=self.apply_roles).run()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def operator_config(kubeconfig: Path, certfile: Path, keyfile: Path) -> OperatorConfig:
    """The operator as in its pod: peering on, cluster-wide, logged in with the ServiceAccount's token, serving the
    admission webhook with the chart's certificate (on loopback here)."""
    return OperatorConfig(
        kubeconfig=str(kubeconfig), ops_host="127.0.0.1", ops_port=0, standalone=False, peering_name="tksh",
        priority=0, fast=True, admission_port=free_port(), admission_addr="127.0.0.1",
        admission_certfile=str(certfile), admission_keyfile=str(keyfile),
    )


@pytest.fixture(scope="module")
def proof(real_cluster: RealCluster, helm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProofEnv]:
    objs = render(helm)  # the default values: peering on, cluster-wide, the admission webhook on
    install_crds(real_cluster)
    apply_rbac(real_cluster, objs)
    real_cluster.ensure_namespace(EVENTS_NAMESPACE)
    real_cluster.ensure_namespace(APPS_NAMESPACE)
    roles = bound_roles(objs, SA_NAME, NAMESPACE)
    assert {r["metadata"]["name"] for r in roles} == {"tksh-operator-read", "tksh-operator-write"}
    permissions = [p for role in roles for p in split(role)]
    kubeconfig = real_cluster.kubeconfig_for_service_account(SA_NAME, namespace=NAMESPACE)
    user, groups = service_account_user(SA_NAME, NAMESPACE)
    webhook_tls = secret_pair(objs)
    certfile, keyfile = webhook_tls.write(tmp_path_factory.mktemp("admission"))
    env_vars = env_of(one(objs, "StatefulSet")["spec"]["template"]["spec"]["containers"][0])
    servers = Servers()
    servers.start()
    config = dataclasses.replace(  # the chart's signing-key Secret; tokens short-lived, so that one is renewed
        operator_config(kubeconfig, certfile, keyfile),
        signing_keys_secret=env_vars["TKSH_SIGNING_KEYS_SECRET"]["value"],
        signing_keys_namespace=env_vars["TKSH_SIGNING_KEYS_NAMESPACE"]["value"], token_lifetime=6.0,
        key_rotation_period=3600.0, incident_namespace=env_vars["TKSH_INCIDENT_NAMESPACE"]["value"],
        smtp_host="127.0.0.1", smtp_port=servers.mail.port, **FAST_MONITORING)  # monitoring fast, as its tests
    env = ProofEnv(real_cluster, objs, roles, permissions, config, user, groups, webhook_tls, servers)
    try:
        yield env
    finally:
        env.apply_roles()
        servers.stop()
        release_applications(real_cluster)
        peering = one(objs, "ClusterKopfPeering")
        real_cluster.delete(peering["apiVersion"], peering["kind"], peering["metadata"]["name"])


# --- the proof ------------------------------------------------------------------------------------------------------


def test_operator_roles_are_sufficient(proof: ProofEnv) -> None:
    proof.apply_roles()
    outcome = proof.workflow("rbac-proof-full", STEP_TIMEOUT)
    assert outcome.ok, f"failed at: {outcome.failed}; passed: {outcome.passed}; crash: {outcome.crashed}"
    assert outcome.crashed is None
    assert len(outcome.passed) == 27


@pytest.mark.timeout(1800)
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
                  + (f" [operator: {outcome.crashed}]" if outcome.crashed else ""))
    unneeded = [str(p) for p, outcome in evidence if outcome.ok]
    assert not unneeded, f"the workflow passes without these permissions, so the role must not have them: {unneeded}"


# --- the decision point's role --------------------------------------------------------------------------------------
#
# `tksh authz` runs in-process under the chart's authz ServiceAccount token, through its workflow:
#     started -> ready (grants and functions listed) -> the status page's kinds listed -> a function and a grant
#     created afterwards are seen (its subject is allowed), and a central component, an integrated digital object
#     and an incident on the status page -> all through the watches, without a relist (a watch it may not open
#     makes it relist instead, which is how an object created later would still be seen)
# Its keys are given directly here: in its pod they are a mounted volume, which needs no permission of its own.

AUTHZ_SA = "tksh-authz"


async def _authz_steps(cluster: RealCluster, kubeconfig: Path, name: str, step_timeout: float,
                       outcome: Outcome) -> None:
    import aiohttp

    from tksh.access.server import AuthzConfig, start_authz
    from tksh.access.statuscache import KINDS
    from tksh.access.sync import FUNCTIONS, GRANTS
    from tksh.access.tokens import KeySet

    async def step(what: str, check: Callable[[], Any]) -> None:
        deadline = time.monotonic() + step_timeout
        while True:
            try:
                result = check()
                if hasattr(result, "__await__"):
                    await result
                outcome.passed.append(what)
                return
            except (AssertionError, KeyError, LookupError, aiohttp.ClientError) as exc:
                if time.monotonic() > deadline:
                    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise StepFailed(f"{what}: not within {step_timeout:g} s ({detail})") from None
            await asyncio.sleep(0.1)

    config = AuthzConfig(host="127.0.0.1", port=0, kubeconfig=str(kubeconfig), configure_logs=False, retry_delay=0.2,
                         watch_timeout=60, keys=KeySet.generate(issuer="tksh-operator", audience="tksh-authz"))
    fn, grant = f"{name}-fn", f"{name}-grant"
    async with start_authz(config) as handle, aiohttp.ClientSession() as http:
        async def ready() -> None:
            async with http.get(handle.url + "/readyz") as response:
                assert response.status == 200, "not ready"

        await step("started: grants and functions listed (ready)", ready)
        status = handle.status
        assert status is not None

        def page_listed() -> None:
            assert status.cache.ready, f"listed: {status.cache.listed}"

        await step("the status page's digital objects, central components and incidents listed", page_listed)
        await asyncio.to_thread(cluster.checked, "POST", f"/apis/{API}/subjectfunctions", function(fn))
        body = {"apiVersion": API, "kind": "AccessGrant", "metadata": {"name": grant, "namespace": APPS_NAMESPACE},
                "spec": {"subject": {"id": "person:proof", "kind": "person"}, "onBehalfOf": {"bin": "140540001231"},
                         "functions": [fn], "agreement": {"number": "RBAC-2", "validFrom": "2020-01-01T00:00:00Z",
                                                          "validUntil": "2099-01-01T00:00:00Z"}}}
        grants = f"/apis/{API}/namespaces/{APPS_NAMESPACE}/accessgrants"
        await asyncio.to_thread(cluster.checked, "POST", grants, body)
        await asyncio.to_thread(cluster.checked, "PATCH", f"{grants}/{grant}/status", {"status": {"phase": "Active"}},
                                content_type="application/merge-patch+json")

        async def allowed() -> None:
            request = {"subject": "person:proof", "action": "read", "resource": {"category": 5,
                                                                                  "ownerBin": "140540001231"}}
            async with http.post(handle.url + "/v1/decisions", json=request) as response:
                out = await response.json()
            assert out.get("allowed") is True, out

        await step("a function and a grant created later are seen: the subject is allowed", allowed)
        await asyncio.to_thread(_status_objects, cluster, name)

        def on_the_page() -> None:
            assert f"{name}-cc" in status.cache.components, "no component"
            assert f"{APPS_NAMESPACE}/{name}-dobj" in status.cache.objects, "no digital object"
            assert f"{APPS_NAMESPACE}/{name}-inc" in status.cache.incidents, "no incident"

        await step("a component, an integrated digital object and an incident created later are on the page",
                   on_the_page)

        def watched() -> None:
            assert handle.sync.relists == {GRANTS: 1, FUNCTIONS: 1}, f"relisted: {handle.sync.relists}"
            assert status.relists == dict.fromkeys(KINDS, 1), f"relisted: {status.relists}"

        await step("seen through the watches, without a relist", watched)


def _status_objects(cluster: RealCluster, name: str) -> None:
    """What the status page shows: a central component, an integrated digital object, an incident."""
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cluster.checked("POST", f"/apis/{API}/centralcomponents", {
        "apiVersion": API, "kind": "CentralComponent", "metadata": {"name": f"{name}-cc"},
        "spec": {"endpoint": {"url": "https://cz.example.kz/healthz"}}})
    objects = f"/apis/{API}/namespaces/{APPS_NAMESPACE}/digitalobjects"
    body = application(f"{name}-dobj")
    body["spec"] |= {"functions": ["proof"], "endpoint": {"url": "https://osi.example.kz/api"}}
    cluster.checked("POST", objects, body)
    cluster.checked("PATCH", f"{objects}/{name}-dobj/status", {"status": {"phase": "Integrated"}},
                    content_type="application/merge-patch+json")
    cluster.checked("POST", f"/apis/{API}/namespaces/{APPS_NAMESPACE}/incidents", {
        "apiVersion": API, "kind": "Incident", "metadata": {"name": f"{name}-inc", "namespace": APPS_NAMESPACE},
        "spec": {"target": {"kind": "CentralComponent", "name": f"{name}-cc"}, "startedAt": started,
                 "detectedAt": started, "failure": {"class": "connect", "message": "refused"}}})


def _drop_authz_objects(cluster: RealCluster, name: str) -> None:
    cluster.delete(API, "SubjectFunction", f"{name}-fn")
    cluster.delete(API, "AccessGrant", f"{name}-grant", namespace=APPS_NAMESPACE)
    cluster.delete(API, "CentralComponent", f"{name}-cc")
    cluster.delete(API, "DigitalObject", f"{name}-dobj", namespace=APPS_NAMESPACE)
    cluster.delete(API, "Incident", f"{name}-inc", namespace=APPS_NAMESPACE)


def authz_workflow(cluster: RealCluster, kubeconfig: Path, name: str, step_timeout: float) -> Outcome:
    outcome = Outcome(passed=[])
    _drop_authz_objects(cluster, name)
    try:
        asyncio.run(_authz_steps(cluster, kubeconfig, name, step_timeout, outcome))
    except StepFailed as exc:
        outcome.failed = str(exc)
    finally:
        _drop_authz_objects(cluster, name)
    return outcome


@dataclasses.dataclass
class AuthzProofEnv:
    cluster: RealCluster
    roles: list[Obj]
    permissions: list[Permission]
    kubeconfig: Path
    user: str
    groups: list[str]

    def apply_roles(self, without: Permission | None = None) -> None:
        for role in self.roles:
            keep = [p for p in split(role) if p != without]
            self.cluster.apply(rebuild(role, keep) if without else role)
        checks = [(p != without, p.review(self.user, self.groups)) for p in self.permissions]
        wait_until_authorized(self.cluster, checks)


@pytest.fixture(scope="module")
def authz_proof(real_cluster: RealCluster, helm: Path) -> Iterator[AuthzProofEnv]:
    objs = render(helm)  # the default values: the decision point is on
    install_crds(real_cluster)
    apply_rbac(real_cluster, objs)
    real_cluster.ensure_namespace(APPS_NAMESPACE)
    roles = bound_roles(objs, AUTHZ_SA, NAMESPACE)
    assert {r["metadata"]["name"] for r in roles} == {"tksh-authz-read"}
    permissions = [p for role in roles for p in split(role)]
    kubeconfig = real_cluster.kubeconfig_for_service_account(AUTHZ_SA, namespace=NAMESPACE)
    user, groups = service_account_user(AUTHZ_SA, NAMESPACE)
    env = AuthzProofEnv(real_cluster, roles, permissions, kubeconfig, user, groups)
    try:
        yield env
    finally:
        env.apply_roles()


def test_authz_roles_are_sufficient(authz_proof: AuthzProofEnv) -> None:
    authz_proof.apply_roles()
    outcome = authz_workflow(authz_proof.cluster, authz_proof.kubeconfig, "rbac-authz-full", STEP_TIMEOUT)
    assert outcome.ok, f"failed at: {outcome.failed}; passed: {outcome.passed}"
    assert len(outcome.passed) == 5


@pytest.mark.timeout(600)
def test_authz_roles_are_minimal(authz_proof: AuthzProofEnv, capsys: pytest.CaptureFixture[str]) -> None:
    assert {(p.resource, p.verb) for p in authz_proof.permissions} == {
        (resource, verb) for resource in ("accessgrants", "subjectfunctions", "digitalobjects", "centralcomponents",
                                          "incidents") for verb in ("list", "watch")}
    evidence: list[tuple[Permission, Outcome]] = []
    try:
        for index, permission in enumerate(authz_proof.permissions):
            authz_proof.apply_roles(without=permission)
            evidence.append((permission, authz_workflow(authz_proof.cluster, authz_proof.kubeconfig,
                                                        f"rbac-authz-{index}", TRIAL_STEP_TIMEOUT)))
    finally:
        authz_proof.apply_roles()
    with capsys.disabled():
        print("\nRBAC minimality of the decision point: each permission removed alone, and the step that failed")
        for permission, outcome in evidence:
            print(f"  - {permission}\n      -> {outcome.failed or 'NOTHING FAILED'}")
    unneeded = [str(p) for p, outcome in evidence if outcome.ok]
    assert not unneeded, f"the workflow passes without these permissions, so the role must not have them: {unneeded}"
