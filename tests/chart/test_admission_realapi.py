"""The chart's admission webhook against the real kube-apiserver: the API server itself calls the operator's webhook
over TLS and enforces its answer, also when the replica that answers is a paused peering standby; without a
serving replica the writes fail closed; and the Helm-generated certificate stays the same across upgrades.

The rendered ValidatingWebhookConfiguration is installed as it is, except its clientConfig: this API server has no
cluster network to reach a Service, so each webhook gets ``url: https://127.0.0.1:<port>/<path>`` and the CA of a
pair with the chart's DNS names plus 127.0.0.1 (the chart's own pair is served and verified under the Service's
name in test_admission.py). Its namespaceSelector is the chart's value, set to the test's namespace only, so
nothing else in the shared cluster depends on this operator.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime
import json
import logging
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from cryptography import x509

from tests.realapi.cluster import ApiResponse, RealCluster
from tksh import API_VERSION
from tksh.config import OperatorConfig
from tksh.run import OperatorThread

from .chart_cluster import apply_rbac, install_crds
from .helpers import CHART, Obj, one, render
from .webhook_tls import (
    WEBHOOK_SERVICE,
    TlsPair,
    certificate,
    dns_names,
    make_pair,
    secret_pair,
    verify_server_certificate,
)

pytestmark = pytest.mark.realapi

T = TypeVar("T")
ADMINS = "tksh:administrators"
APPLICANTS = "tksh-test:applicants"
PEERING = "tksh"
PEERING_LOGGER = "kopf._core.engines.peering"
REFUSED = "spec.review: the Administrator's decision may be set or changed only by members of the group"
TIMEOUT = 60.0  # a deadline for a broken test, not a timing assertion


def eventually(check: Callable[[], T], what: str, timeout: float = TIMEOUT) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except (AssertionError, LookupError) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:g} s ({exc})") from exc
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LogRecorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def application(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "DigitalObject", "metadata": {"name": name, "namespace": namespace},
        "spec": {"owner": {"bin": "140540001231", "name": "ОСИ «Тест»", "subjectType": "PropertyOwnersAssociation",
                           "email": "owner@example.kz"}, "categories": [2], **spec},
    }


@dataclasses.dataclass
class Served:
    """The chart's webhook configuration installed, pointing at an in-process operator that serves it."""

    cluster: RealCluster
    namespace: str
    config: OperatorConfig
    webhook_config: Obj  # as installed
    pair: TlsPair
    thread: OperatorThread
    recorder: LogRecorder

    @property
    def apps(self) -> str:
        return f"/apis/{API_VERSION}/namespaces/{self.namespace}/digitalobjects"

    def as_user(self, user: str, group: str, method: str, path: str, body: Any = None,
                content_type: str = "application/json") -> ApiResponse:
        """A request by a person, impersonated by the admin client (so RBAC and admission see that person)."""
        headers = {"Impersonate-User": user, "Impersonate-Group": group}
        return self.cluster.request(method, path, body, headers=headers, content_type=content_type)

    def review(self, user: str, group: str, name: str, review: dict[str, Any] | None) -> ApiResponse:
        return self.as_user(user, group, "PATCH", f"{self.apps}/{name}", {"spec": {"review": review}},
                            content_type="application/merge-patch+json")

    def stop_operator(self) -> None:
        if self.thread.alive:
            self.thread.stop(30)


def message(resp: ApiResponse) -> str:
    return str(resp.body.get("message", "")) if isinstance(resp.body, dict) else str(resp.body)


@pytest.fixture(scope="module")
def served(real_cluster: RealCluster, helm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    cluster = real_cluster
    namespace = f"tksh-admission-{uuid.uuid4().hex[:6]}"
    selector = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    objs = render(helm, extra=["--set-json", f"admission.namespaceSelector={json.dumps(selector)}"])
    install_crds(cluster)
    apply_rbac(cluster, objs)  # the operator's roles and the people's: tksh-admin bound to tksh:administrators
    cluster.ensure_namespace(namespace)
    # Applicants may write their applications (RBAC allows it): only the webhook stands between them and spec.review.
    cluster.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "applicants", "namespace": namespace},
                   "rules": [{"apiGroups": ["tksh.kz"], "resources": ["digitalobjects"],
                              "verbs": ["get", "list", "create", "update", "patch"]}]})
    cluster.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "applicants", "namespace": namespace},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "applicants"},
                   "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": APPLICANTS}]})
    cluster.apply({"apiVersion": "kopf.dev/v1", "kind": "KopfPeering",
                   "metadata": {"name": PEERING, "namespace": namespace}})

    # The chart's names plus 127.0.0.1, and the chart's webhooks pointed at that address.
    pair = make_pair(dns_names(certificate(secret_pair(objs).cert)), ["127.0.0.1"])
    certfile, keyfile = pair.write(tmp_path_factory.mktemp("admission"))
    port = free_port()
    webhook_config = copy.deepcopy(one(objs, "ValidatingWebhookConfiguration", WEBHOOK_SERVICE))
    webhook_config["metadata"]["name"] = f"{WEBHOOK_SERVICE}-{namespace}"
    for hook in webhook_config["webhooks"]:
        path = hook["clientConfig"]["service"]["path"]
        hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": pair.ca_bundle}

    # The operator as in its pod, with peering, restricted to the test's namespace (a KopfPeering there).
    config = OperatorConfig(
        kubeconfig=str(cluster.kubeconfig), namespaces=(namespace,), ops_host="127.0.0.1", ops_port=0,
        standalone=False, peering_name=PEERING, priority=0, administrators_group=ADMINS, fast=True,
        admission_port=port, admission_addr="127.0.0.1", admission_certfile=str(certfile),
        admission_keyfile=str(keyfile),
    )
    recorder = LogRecorder()
    logger = logging.getLogger(PEERING_LOGGER)
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(recorder)
    thread = OperatorThread(config)
    env = Served(cluster, namespace, config, webhook_config, pair, thread, recorder)
    try:
        cluster.apply(webhook_config)
        thread.start(TIMEOUT)
        thread.wait_ready(TIMEOUT)
        yield env
    finally:
        env.stop_operator()
        logger.removeHandler(recorder)
        logger.setLevel(previous_level)
        cluster.delete("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
                       webhook_config["metadata"]["name"])
        for item in cluster.checked("GET", env.apps)["items"]:
            name = item["metadata"]["name"]
            cluster.request("PATCH", f"{env.apps}/{name}", {"metadata": {"finalizers": None}},
                            content_type="application/merge-patch+json")
            cluster.request("DELETE", f"{env.apps}/{name}")


def create_when_served(env: Served, name: str) -> None:
    """An applicant creates an application once the API server reaches the webhook (its configuration is picked up
    by the API server's informer, and the operator starts listening after it has discovered the resources)."""

    def created() -> None:
        resp = env.as_user("owner", APPLICANTS, "POST", env.apps, application(name, env.namespace))
        assert resp.status == 201, (resp.status, message(resp))

    eventually(created, "the API server reaches the webhook and lets the applicant create an application")


def test_api_server_enforces_the_review_rule_through_a_paused_standby(served: Served) -> None:
    env, c = served, served.cluster

    # This replica becomes active, then a replica of higher priority appears: it pauses as a hot standby does.
    eventually(lambda: assert_logged(env, "Resuming operations after the pause"), "the operator is active")
    rival = {"priority": 100, "lifetime": 3600, "lastseen": datetime.datetime.now(datetime.UTC).isoformat()}
    c.checked("PATCH", f"/apis/kopf.dev/v1/namespaces/{env.namespace}/kopfpeerings/{PEERING}",
              {"status": {"rival-replica": rival}}, content_type="application/merge-patch+json")
    eventually(lambda: assert_logged(env, "Pausing operations in favour of"), "the operator pauses")

    # Everything below is answered by the paused replica: the API server calls it over TLS and enforces the answer.
    create_when_served(env, "osi")
    approved = {"decision": "Approved", "reviewer": "aigerim"}

    refused = env.review("owner", APPLICANTS, "osi", approved)
    assert refused.status == 403, (refused.status, refused.body)
    assert 'admission webhook "review.tksh.kz" denied the request' in message(refused)
    assert f"{REFUSED} '{ADMINS}'" in message(refused)
    stored = c.get(API_VERSION, "DigitalObject", "osi", namespace=env.namespace).body
    assert "review" not in stored["spec"], stored["spec"]
    # creating an application that already carries a decision is refused just the same
    self_approved = application("self-approved", env.namespace, review=approved)
    resp = env.as_user("owner", APPLICANTS, "POST", env.apps, self_approved)
    assert resp.status == 403 and REFUSED in message(resp), (resp.status, resp.body)

    # an applicant's update that leaves spec.review alone passes
    resp = env.as_user("owner", APPLICANTS, "PATCH", f"{env.apps}/osi", {"spec": {"categories": [2, 5]}},
                       content_type="application/merge-patch+json")
    assert resp.status == 200, (resp.status, resp.body)

    # a member of the administrators group decides; a refusal without a reason is refused even to them
    rejected = env.review("aigerim", ADMINS, "osi", {"decision": "Rejected", "reviewer": "aigerim"})
    assert rejected.status == 403 and "spec.review.reason" in message(rejected), (rejected.status, rejected.body)
    decided = env.review("aigerim", ADMINS, "osi", approved)
    assert decided.status == 200, (decided.status, decided.body)
    assert decided.body["spec"]["review"]["decision"] == "Approved"
    # and only they may take it back
    resp = env.review("owner", APPLICANTS, "osi", None)
    assert resp.status == 403 and "may be removed only by members" in message(resp), (resp.status, resp.body)

    # the replica stayed paused all along (it never resumed after the rival appeared)
    pauses = [i for i, m in enumerate(env.recorder.messages) if m.startswith("Pausing operations")]
    assert not [m for m in env.recorder.messages[pauses[0]:] if m.startswith("Resuming operations")]

    # The API server verifies the webhook's certificate: with another CA in caBundle the call fails TLS.
    wrong = copy.deepcopy(env.webhook_config)
    for hook in wrong["webhooks"]:
        hook["clientConfig"]["caBundle"] = make_pair(["other"]).ca_bundle
    c.apply(wrong)
    try:
        def untrusted() -> None:
            resp = env.review("aigerim", ADMINS, "osi", {**approved, "reviewer": "dana"})
            assert resp.status == 500 and "x509" in message(resp), (resp.status, message(resp))

        eventually(untrusted, "the API server refuses to trust the webhook under another CA")
    finally:
        c.apply(env.webhook_config)
    eventually(lambda: assert_status(env.review("aigerim", ADMINS, "osi", {**approved, "reviewer": "dana"}), 200),
               "the API server trusts the webhook again")


def test_without_a_serving_replica_writes_fail_closed(served: Served) -> None:
    """failurePolicy Fail (the default): with no replica serving, nobody can set spec.review, administrators
    included, until the operator is back."""
    env = served
    create_when_served(env, "closed")
    env.stop_operator()

    def fails_closed() -> None:
        resp = env.review("aigerim", ADMINS, "closed", {"decision": "Approved", "reviewer": "aigerim"})
        assert resp.status == 500, (resp.status, resp.body)
        assert 'failed calling webhook "review.tksh.kz"' in message(resp), message(resp)

    eventually(fails_closed, "writes are refused while the webhook is down")
    stored = env.cluster.get(API_VERSION, "DigitalObject", "closed", namespace=env.namespace).body
    assert "review" not in stored["spec"]


def assert_logged(env: Served, prefix: str) -> None:
    assert any(m.startswith(prefix) for m in env.recorder.messages), env.recorder.messages


def assert_status(resp: ApiResponse, status: int) -> None:
    assert resp.status == status, (resp.status, resp.body)


# --- the Helm-generated pair across upgrades ------------------------------------------------------------------------


UPGRADED = "upgraded"  # a release of its own: its cluster-scoped objects must not collide with other tests' ones
UPGRADED_NAME = f"{UPGRADED}-tksh-admission"


def server_dry_run(helm: Path, cluster: RealCluster, namespace: str) -> list[Obj]:
    """`helm upgrade --install --dry-run=server`: rendered with `lookup` answered by the real API server."""
    proc = subprocess.run(
        [str(helm), "upgrade", "--install", UPGRADED, str(CHART), "--namespace", namespace, "--dry-run=server",
         "--set", "operator.peering.create=false", "--output", "json"],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ, **cluster.env()},
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(proc.stdout)["manifest"]
    return [doc for doc in yaml.safe_load_all(manifest) if doc]


def test_generated_pair_is_kept_across_upgrades_and_renewed_near_its_end(real_cluster: RealCluster, helm: Path) -> None:
    cluster = real_cluster
    namespace = f"tksh-upgrade-{uuid.uuid4().hex[:6]}"
    cluster.ensure_namespace(namespace)
    secret_name = f"{UPGRADED_NAME}-tls"

    def pair_and_bundle(objs: list[Obj]) -> tuple[TlsPair, set[bytes]]:
        config = one(objs, "ValidatingWebhookConfiguration", UPGRADED_NAME)
        bundle = {base64.b64decode(w["clientConfig"]["caBundle"]) for w in config["webhooks"]}
        return secret_pair(objs, name=secret_name), bundle

    # Without a stored Secret every render makes a new pair.
    first, second = (pair_and_bundle(server_dry_run(helm, cluster, namespace))[0] for _ in range(2))
    assert first.cert != second.cert and first.ca != second.ca

    # With the Secret of an installed release stored, an upgrade keeps it: same pair, same caBundle.
    installed = server_dry_run(helm, cluster, namespace)
    stored = one(installed, "Secret", secret_name)
    owned = copy.deepcopy(stored)  # what `helm install` leaves on its objects
    owned["metadata"]["annotations"].update({"meta.helm.sh/release-name": UPGRADED,
                                             "meta.helm.sh/release-namespace": namespace})
    cluster.apply(owned)
    kept, bundle = pair_and_bundle(server_dry_run(helm, cluster, namespace))
    assert kept == secret_pair(installed, name=secret_name)
    assert bundle == {kept.ca}
    assert one(server_dry_run(helm, cluster, namespace), "Secret", secret_name)["metadata"]["annotations"] == (
        stored["metadata"]["annotations"])

    def ends_in(days: int) -> None:
        when = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
        cluster.checked("PATCH", f"/api/v1/namespaces/{namespace}/secrets/{secret_name}",
                        {"metadata": {"annotations": {"tksh.kz/certificate-not-after": when}}},
                        content_type="application/merge-patch+json")

    # Within 30 days of its end, the next upgrade makes a new pair, and the caBundle trusts the new CA and the
    # previous one: the pods serve the old certificate until their mounted files are updated and reloaded.
    hostname = f"{UPGRADED_NAME}.{namespace}.svc"
    ends_in(20)
    renewed_objs = server_dry_run(helm, cluster, namespace)
    renewed, bundle = pair_and_bundle(renewed_objs)
    assert renewed.cert != kept.cert and bundle == {renewed.ca}
    assert x509.load_pem_x509_certificates(renewed.ca) == [certificate(renewed.ca), certificate(kept.ca)]
    verify_server_certificate(renewed, hostname)
    verify_server_certificate(dataclasses.replace(kept, ca=renewed.ca), hostname)  # the old one, meanwhile
    not_after = one(renewed_objs, "Secret", secret_name)["metadata"]["annotations"]["tksh.kz/certificate-not-after"]
    assert datetime.datetime.fromisoformat(not_after) > datetime.datetime.now(datetime.UTC) + datetime.timedelta(
        days=3000)

    # The next renewal keeps only the CA before it: the bundle does not grow.
    owned = copy.deepcopy(one(renewed_objs, "Secret", secret_name))
    owned["metadata"]["annotations"].update({"meta.helm.sh/release-name": UPGRADED,
                                             "meta.helm.sh/release-namespace": namespace})
    cluster.apply(owned)
    ends_in(10)
    again = secret_pair(server_dry_run(helm, cluster, namespace), name=secret_name)
    assert x509.load_pem_x509_certificates(again.ca)[1:] == [certificate(renewed.ca)]

    # A certificate already past its end is not trusted any more; an incomplete Secret (no ca.crt) is replaced.
    ends_in(-1)
    expired = secret_pair(server_dry_run(helm, cluster, namespace), name=secret_name)
    assert expired.cert != renewed.cert and len(x509.load_pem_x509_certificates(expired.ca)) == 1
    cluster.checked("PATCH", f"/api/v1/namespaces/{namespace}/secrets/{secret_name}",
                    [{"op": "remove", "path": "/data/ca.crt"}], content_type="application/json-patch+json")
    incomplete = secret_pair(server_dry_run(helm, cluster, namespace), name=secret_name)
    assert incomplete.cert != renewed.cert and len(x509.load_pem_x509_certificates(incomplete.ca)) == 1
