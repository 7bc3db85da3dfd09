"""Outage workflows (§33–34): an Integrated DigitalObject whose real local HTTP target goes down, then recovers.

The object is integrated as in :func:`tests.reliability.workflows.integrated`, with an owner webhook
(``spec.owner.webhook``: the suite's :class:`~tests.reliability.hooks.DedupWebhooks`, signed with a
Secret of the object's namespace). Then its own :class:`~tksh.sandbox.targets.HTTPTarget` answers 503
until the operator has opened an Incident with its notices recorded, and 200 again until the Incident
is Recovered. Due: the owner's e-mails (approved, integrated, outage opened, recovered) and the signed
webhooks (opened, recovered); the Incident's ``status.outbox`` (found at run time) holds the notices.
At the end there is exactly one Incident for the outage, Recovered within the one-hour term, and the
object is Up with no open incident.
"""

from __future__ import annotations

import base64
from typing import Any

from tests.reliability.hooks import DedupWebhooks
from tests.reliability.objects import incidents_of
from tests.reliability.workflows import Expected, Ref, Step, Workflow, integrated, owner_email, phase_is
from tksh.sandbox.targets import HTTPTarget


def webhook_secret(name: str) -> bytes:
    return f"whsec-{name}-0123456789".encode()


def outage(name: str, namespace: str, target: HTTPTarget, hooks: DedupWebhooks) -> Workflow:
    url = hooks.register(namespace, name, webhook_secret(name))
    webhook = {"url": url, "secretRef": {"name": f"{name}-webhook", "key": "secret"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{name}-webhook", "namespace": namespace},
              "data": {"secret": base64.b64encode(webhook_secret(name)).decode()}}
    registration = integrated(name, namespace, target.url, webhook=webhook)
    ref = Ref("DigitalObject", namespace, name)

    async def down() -> None:
        target.failing(503)

    async def back() -> None:
        target.healthy()

    async def opened(cluster: Any) -> None:
        found = await incidents_of(cluster, namespace, name)
        assert found, f"no Incident of {namespace}/{name} yet"
        templates = {e.get("template") for e in (found[-1].get("status") or {}).get("outbox") or ()}
        assert "incident-opened" in templates, f"the outage notices of {found[-1]['metadata']['name']} not recorded"

    async def recovered(cluster: Any) -> None:
        found = await incidents_of(cluster, namespace, name)
        assert found and all((i.get("status") or {}).get("phase") == "Recovered" for i in found), \
            [(i["metadata"]["name"], (i.get("status") or {}).get("phase")) for i in found]

    async def one_incident(cluster: Any) -> None:
        found = await incidents_of(cluster, namespace, name)
        assert len(found) == 1, f"{len(found)} Incidents for one outage: {[i['metadata']['name'] for i in found]}"
        status = found[0].get("status") or {}
        assert status.get("phase") == "Recovered" and status.get("recoveredAt"), status
        assert status.get("slaVerdict") == "Met", status.get("slaVerdict")

    def final(obj: dict[str, Any]) -> None:
        phase_is("Integrated")(obj)
        status = obj.get("status") or {}
        assert (status.get("availability") or {}).get("state") == "Up", status.get("availability")
        assert not status.get("openIncident"), status.get("openIncident")

    owner = owner_email(name)
    return Workflow(
        name=f"outage/{name}", ref=ref, final=final, also=one_incident,
        outboxes=lambda cluster: incidents_of(cluster, namespace, name),
        steps=[
            Step([secret], what="webhook secret"),
            *registration.steps,
            Step(act=down, wait=opened, what="target down"),
            Step(act=back, wait=recovered, what="target back"),
        ],
        expected=[
            *registration.expected,
            Expected(owner, "incident-opened"), Expected(owner, "incident-recovered"),
            Expected(f"{namespace}/{name}", "incident-opened", channel="webhook"),
            Expected(f"{namespace}/{name}", "incident-recovered", channel="webhook"),
        ],
    )
