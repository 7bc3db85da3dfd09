"""The monitoring and grant-ending part of the RBAC proof's operator workflow (tests/chart/test_rbac_proof.py).

Real local servers, in a background event loop (the workflow itself is synchronous): an HTTP target per probed
endpoint (``tksh.sandbox.targets.HTTPTarget``), the owner's webhook receiver and an SMTP sink. What the operator
does, with the permission each part needs:

* a central component is probed: its status shows ``Up`` and ``Ready`` (list/watch centralcomponents for the daemon
  and the index, patch for kopf's finalizer, patch centralcomponents/status);
* an approved application with its endpoint up is integrated (§17) and monitored (patch digitalobjects/status);
* the endpoint fails: an Incident is created and opened (create incidents; list/watch incidents for the index and
  the incident's daemon, patch for its finalizer, patch incidents/status), the application's status names it and
  shows ``Down``, an Event is posted, and the owner's webhook is signed with the secret read from the Secret its
  ``spec.owner.webhook.secretRef`` names (get secrets);
* the endpoint recovers: the incident is ``Recovered`` and released (its daemon ends, kopf removes the finalizer);
* a grant of the owner's organisation is ended on false information (§20.6): the grant lifecycle flags the
  organisation's applications (list digitalobjects, patch the annotation) and records it (patch accessgrants/status);
* the application and the component are deleted: the operator lets them go.

This file only writes what an administrator or an owner writes (the objects, the webhook Secret, the termination).
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from tests.integration.monitoring_helpers import HTTPReceiver, Received
from tests.realapi.cluster import RealCluster
from tksh.access.keyrotation import token_secret_name
from tksh.config import OperatorConfig
from tksh.notify import SIGNATURE_HEADER, verify
from tksh.sandbox.mailsink import MailSink
from tksh.sandbox.targets import HTTPTarget

API = "tksh.kz/v1alpha1"
OWNER_BIN = "140540001231"
WEBHOOK_SECRET = "whsec-rbac-proof-0123456789"
FINALIZER = "tksh.kz/finalizer"
FALSE_INFORMATION = "tksh.kz/false-information"
T = TypeVar("T")
Step = Callable[[str, Callable[[], Any]], Any]

# The operator's monitoring and integration test, fast (as tests/integration/monitoring_helpers.monitoring_config).
FAST_MONITORING: dict[str, Any] = {
    "test_probes": 2, "test_time_limit": 3.0, "test_retry": 3600.0, "test_probe_interval": 0.1,
    "probe_interval_cap": 0.3, "confirm_interval": 0.1, "availability_interval": 0.5,
}


class Servers:
    """The workflow's local servers, in an event loop of their own thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="rbac-proof-servers", daemon=True)
        self.target = HTTPTarget("osi")  # the application's endpoint
        self.central = HTTPTarget("cz")  # the central component's, always up (a control: see tksh.monitoring)
        self.hook = HTTPReceiver()  # the owner's webhook endpoint
        self.mail = MailSink()  # the SMTP relay: the e-mails of the registration and of the incident

    def call(self, make: Callable[[], Awaitable[T]]) -> T:
        return asyncio.run_coroutine_threadsafe(_awaited(make), self.loop).result(timeout=30)

    def start(self) -> None:
        self.thread.start()
        for server in (self.target, self.central, self.hook, self.mail):
            self.call(server.start)

    def stop(self) -> None:
        for server in (self.target, self.central, self.hook, self.mail):
            self.call(server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    def endpoint_up(self, up: bool) -> None:
        async def switch() -> None:
            if up:
                self.target.healthy()
            else:
                self.target.failing(503)

        self.call(switch)

    def webhooks(self) -> list[Received]:
        return list(self.hook.requests)


async def _awaited(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


def function(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API, "kind": "SubjectFunction",
        "metadata": {"name": name, "labels": {"tksh.kz/test": "rbac-proof"}},
        "spec": {"titles": {"kk": "ПИБ", "ru": "ОСИ", "en": "Owners' association"},
                 "subjectTypes": ["PropertyOwnersAssociation"],
                 "rights": [{"category": 2, "actions": ["read", "write"]}]},
    }


def monitored(name: str, namespace: str, function: str, url: str, webhook: str) -> dict[str, Any]:
    """A complete, approved application with its agreement: the registration lifecycle tests and integrates it."""
    return {
        "apiVersion": API, "kind": "DigitalObject", "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "owner": {"bin": OWNER_BIN, "name": "Proof", "subjectType": "PropertyOwnersAssociation",
                      "email": "proof@example.kz",
                      "webhook": {"url": webhook, "secretRef": {"name": f"{name}-webhook", "key": "secret"}}},
            "functions": [function], "categories": [2], "endpoint": {"url": url},
            "probe": {"type": "http", "path": "/healthz", "intervalSeconds": 5, "timeoutSeconds": 1,
                      "failureThreshold": 2},
            "review": {"decision": "Approved", "reviewer": "proof"},
            "agreement": {"number": "RBAC-3", "signedAt": "2020-01-01T00:00:00Z", "validUntil": "2099-01-01T00:00:00Z"},
        },
    }


def central(name: str, url: str) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "CentralComponent", "metadata": {"name": name},
            "spec": {"title": "ЦЖ", "endpoint": {"url": url}, "critical": False,
                     "probe": {"type": "http", "path": "/healthz", "intervalSeconds": 5, "timeoutSeconds": 1,
                               "failureThreshold": 2}}}


def grant(name: str, namespace: str, function: str) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "AccessGrant", "metadata": {"name": name, "namespace": namespace},
            "spec": {"subject": {"id": f"person:{name}", "kind": "person"}, "onBehalfOf": {"bin": OWNER_BIN},
                     "functions": [function], "agreement": {"number": "RBAC-4", "validFrom": "2020-01-01T00:00:00Z",
                                                            "validUntil": "2099-01-01T00:00:00Z"}}}


def names(name: str) -> tuple[str, str, str, str]:
    """The application, the central component, the function and the grant of one workflow run."""
    return f"{name}-osi", f"{name}-cc", f"{name}-mon", f"{name}-liar"


def _release(cluster: RealCluster, path: str) -> None:
    """Delete, after removing finalizers nobody may remove (a trial without a permission leaves them)."""
    cluster.request("PATCH", path, {"metadata": {"finalizers": None}}, content_type="application/merge-patch+json")
    cluster.request("DELETE", path)


def _incidents(cluster: RealCluster, namespaces: tuple[str, ...], *targets: str) -> Iterator[dict[str, Any]]:
    selector = f"tksh.kz/target-name in ({','.join(targets)})"
    for ns in namespaces:
        yield from cluster.checked("GET", f"/apis/{API}/namespaces/{ns}/incidents",
                                   query={"labelSelector": selector})["items"]


def clean_monitoring(cluster: RealCluster, config: OperatorConfig, name: str, namespace: str) -> None:
    """Nothing left of a run (called with the operator stopped): objects, incidents, the grant and its token."""
    obj, component, fn, liar = names(name)
    _release(cluster, f"/apis/{API}/namespaces/{namespace}/digitalobjects/{obj}")
    _release(cluster, f"/apis/{API}/centralcomponents/{component}")
    for incident in _incidents(cluster, (namespace, config.incident_namespace), obj, component):
        meta = incident["metadata"]
        _release(cluster, f"/apis/{API}/namespaces/{meta['namespace']}/incidents/{meta['name']}")
    cluster.delete(API, "AccessGrant", liar, namespace=namespace)
    cluster.delete("v1", "Secret", token_secret_name(liar), namespace=namespace)
    cluster.delete("v1", "Secret", f"{obj}-webhook", namespace=namespace)
    cluster.delete(API, "SubjectFunction", fn)


def monitoring_steps(cluster: RealCluster, config: OperatorConfig, name: str, namespace: str, step: Step,
                     servers: Servers) -> None:
    obj, component, fn, liar = names(name)
    objects = f"/apis/{API}/namespaces/{namespace}/digitalobjects"
    servers.endpoint_up(True)
    cluster.checked("POST", f"/apis/{API}/subjectfunctions", function(fn))
    cluster.checked("POST", f"/apis/{API}/centralcomponents", central(component, servers.central.url))

    def status_of(kind: str, item: str, ns: str | None = None) -> dict[str, Any]:
        resp = cluster.get(API, kind, item, namespace=ns)
        assert resp.status == 200, resp.body
        return dict(resp.body)

    def component_up() -> None:
        body = status_of("CentralComponent", component)
        status = body.get("status") or {}
        assert (status.get("availability") or {}).get("state") == "Up", status
        ready = [c for c in status.get("conditions") or () if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", status
        assert FINALIZER in body["metadata"].get("finalizers", []), body["metadata"]

    step("a central component is probed: Up, Ready, held by the finalizer", component_up)

    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{obj}-webhook", "namespace": namespace},
              "data": {"secret": base64.b64encode(WEBHOOK_SECRET.encode()).decode()}}
    cluster.checked("POST", f"/api/v1/namespaces/{namespace}/secrets", secret)
    cluster.checked("POST", objects, monitored(obj, namespace, fn, servers.target.url, f"{servers.hook.url}/hook"))

    def availability(state: str) -> dict[str, Any]:
        status = status_of("DigitalObject", obj, namespace).get("status") or {}
        assert status.get("phase") == "Integrated", status
        assert (status.get("availability") or {}).get("state") == state, status.get("availability")
        return status

    step("an approved application with its endpoint up is integrated and monitored: Up",
         lambda: availability("Up"))
    servers.endpoint_up(False)

    def the_incident() -> dict[str, Any]:
        found = list(_incidents(cluster, (namespace,), obj))
        assert len(found) == 1, f"incidents of {obj}: {[i['metadata']['name'] for i in found]}"
        return found[0]

    def opened() -> dict[str, Any]:
        incident = the_incident()
        assert (incident.get("status") or {}).get("phase") == "Open", incident.get("status")
        assert incident["status"].get("recoveryDeadline"), incident["status"]
        assert FINALIZER in incident["metadata"].get("finalizers", []), incident["metadata"]
        return incident

    incident = step("its endpoint down: an Incident is created, opened, held by the finalizer", opened)
    incident_name = incident["metadata"]["name"]

    def down() -> None:
        status = availability("Down")
        assert status.get("openIncident") == incident_name, status
        events = cluster.checked("GET", f"/api/v1/namespaces/{namespace}/events",
                                 query={"fieldSelector": f"involvedObject.name={obj}"})["items"]
        assert any(e["reason"] == "TargetDown" for e in events), [e["reason"] for e in events]

    step("the application's status shows Down and names the incident; a TargetDown Event", down)

    def webhook_signed() -> None:
        found = [r for r in servers.webhooks() if r.json().get("transition") == "Opened"
                 and (r.json().get("incident") or {}).get("name") == incident_name]
        assert found, f"no Opened webhook for {incident_name}"
        assert verify(found[0].body, found[0].headers[SIGNATURE_HEADER], WEBHOOK_SECRET), "signature"

    step("the owner's webhook is signed with the secret read from its Secret", webhook_signed)
    servers.endpoint_up(True)

    def recovered() -> None:
        found = the_incident()
        assert (found.get("status") or {}).get("phase") == "Recovered", found.get("status")
        assert FINALIZER not in (found["metadata"].get("finalizers") or []), found["metadata"]
        assert availability("Up").get("openIncident") is None

    step("recovered: the incident is Recovered and released, the application Up again", recovered)

    grants = f"/apis/{API}/namespaces/{namespace}/accessgrants"
    cluster.checked("POST", grants, grant(liar, namespace, fn))

    def grant_status(phase: str) -> dict[str, Any]:
        status = status_of("AccessGrant", liar, namespace).get("status") or {}
        assert status.get("phase") == phase, status
        return status

    step("a grant of the owner's organisation is Active", lambda: grant_status("Active"))
    cluster.checked("PATCH", f"{grants}/{liar}",
                    {"spec": {"termination": {"reason": "FALSE_INFORMATION", "by": "proof", "note": "rbac proof"}}},
                    content_type="application/merge-patch+json")

    def flagged() -> None:
        status = grant_status("Terminated")
        assert status["terminated"]["reason"] == "FALSE_INFORMATION", status["terminated"]
        recorded = [c["status"] for c in status.get("conditions") or () if c["type"] == "ApplicationsFlagged"]
        assert recorded == ["True"], status.get("conditions")
        annotations = status_of("DigitalObject", obj, namespace)["metadata"].get("annotations") or {}
        assert annotations.get(FALSE_INFORMATION) == liar, annotations

    step("ended on false information: the organisation's application is flagged, the grant records it", flagged)

    cluster.checked("DELETE", f"{objects}/{obj}")
    cluster.checked("DELETE", f"/apis/{API}/centralcomponents/{component}")

    def let_go() -> None:
        assert cluster.get(API, "DigitalObject", obj, namespace=namespace).status == 404, "the application is held"
        assert cluster.get(API, "CentralComponent", component).status == 404, "the component is held"

    step("the application and the component deleted: the operator lets them go", let_go)
