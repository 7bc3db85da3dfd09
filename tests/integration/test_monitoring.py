"""Monitoring end to end: a real failing HTTP target opens an Incident, the owner is told over real SMTP, a signed
webhook and Alertmanager's v2 API (real local receivers), Events are posted; recovery closes it in time."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.integration.backends import Backend, running
from tests.integration.monitoring_helpers import (
    OWNER,
    WEBHOOK_SECRET,
    HTTPReceiver,
    availability,
    digital_object,
    incidents,
    integrated,
    mail_to,
    monitoring_config,
    namespace,
    one_incident,
    reasons,
    webhook_secret,
)
from tksh.notify import IDEMPOTENCY_HEADER, IDEMPOTENCY_KEY_HEADER, SIGNATURE_HEADER, verify
from tksh.notify.outbox import parse_time
from tksh.sandbox.mailsink import MailSink
from tksh.sandbox.targets import HTTPTarget

Wait = Callable[..., Awaitable[Any]]
STARTED = "tksh_incident_started_timestamp_seconds"


@pytest.fixture
async def receivers() -> AsyncIterator[tuple[HTTPReceiver, HTTPReceiver]]:
    async with HTTPReceiver() as hook, HTTPReceiver() as am:
        yield hook, am


async def test_an_outage_opens_an_incident_notifies_everyone_and_recovery_closes_it(
    cluster: Backend, mail: MailSink, receivers: tuple[HTTPReceiver, HTTPReceiver], unique: str, wait_until: Wait
) -> None:
    hook, am = receivers
    ns = await namespace(cluster, f"mon-{unique}")
    config = monitoring_config(cluster, mail.port, alertmanager_url=am.url)
    async with HTTPTarget("heat") as target, running(config) as operator:
        await webhook_secret(cluster, "heat-billing", ns)
        obj = digital_object("heat-billing", ns, target.url, OWNER, webhook=f"{hook.url}/tksh")
        await cluster.apply(obj)
        await wait_until(lambda: integrated(cluster, obj), timeout=60)
        await wait_until(lambda: availability(cluster, "DigitalObject", "heat-billing", ns, "Up"))

        target.failing(503)
        incident = await wait_until(lambda: one_incident(cluster, ns), timeout=60)
        spec, status = incident["spec"], incident["status"]
        name = incident["metadata"]["name"]
        assert spec["target"] == {"kind": "DigitalObject", "name": "heat-billing", "namespace": ns}
        assert spec["failure"] == {"class": "http_status", "message": "expected status 200, got 503"}
        started, detected = parse_time(spec["startedAt"]), parse_time(spec["detectedAt"])
        assert started is not None and detected is not None and started <= detected
        assert parse_time(status["recoveryDeadline"]) == started + datetime.timedelta(hours=1)
        assert status["slaVerdict"] == "Pending"
        dobj = await wait_until(lambda: availability(cluster, "DigitalObject", "heat-billing", ns, "Down"))
        assert dobj["openIncident"] == name
        assert dobj["phase"] == "Integrated"  # availability is not a phase; the lifecycle's status is untouched

        opened = await mail.wait_for(mail_to(OWNER, "incident-opened"), timeout=30)
        assert "heat-billing" in opened.subject and "503" in opened.text and "Инцидент" in opened.text
        target_labels = {"kind": "DigitalObject", "namespace": ns, "name": "heat-billing"}
        assert operator.metrics.value(STARTED, target_labels) == started.timestamp()  # the SLA clock, for alerts
        webhook = await hook.wait_for(lambda r: r.json()["transition"] == "Opened")
        assert verify(webhook.body, webhook.headers[SIGNATURE_HEADER], WEBHOOK_SECRET)  # the receiver's own check
        assert webhook.json()["incident"]["name"] == name and webhook.json()["failure"]["class"] == "http_status"
        assert webhook.headers[IDEMPOTENCY_KEY_HEADER].startswith("incident-opened-")
        firing = await am.wait_for(lambda r: r.path == "/api/v2/alerts")
        (alert,) = firing.json()
        assert alert["labels"]["incident"] == name and alert["labels"]["target_name"] == "heat-billing"
        assert parse_time(alert["startsAt"]) == started.replace(microsecond=0) and "endsAt" not in alert

        async def events_posted() -> None:
            assert {"TargetDown", "IncidentOpened"} <= await reasons(cluster, "heat-billing")
            assert "IncidentOpened" in await reasons(cluster, name)

        await wait_until(events_posted)
        await am.wait_for(lambda r: r is not firing and r.path == "/api/v2/alerts")  # re-posted while firing

        async def down_for_a_while() -> None:  # the times are whole seconds: the outage must span more than one
            assert datetime.datetime.now(datetime.UTC) >= started + datetime.timedelta(seconds=2)

        await wait_until(down_for_a_while)
        target.healthy()

        async def recovered() -> dict[str, Any]:
            return await one_incident(cluster, ns, "Recovered")

        incident = await wait_until(recovered, timeout=60)
        status = incident["status"]
        recovered_at = parse_time(status["recoveredAt"])
        assert recovered_at is not None and recovered_at > started
        assert status["durationSeconds"] == int((recovered_at - started).total_seconds())
        assert status["slaVerdict"] == "Met"
        back = await mail.wait_for(mail_to(OWNER, "incident-recovered"), timeout=30)
        assert "қалпына келтірілді" in back.text and "срок соблюдён" in back.text
        await hook.wait_for(lambda r: r.json()["transition"] == "Recovered")
        resolved = await am.wait_for(lambda r: "endsAt" in r.json()[0])
        assert resolved.json()[0]["labels"] == alert["labels"]
        dobj = await wait_until(lambda: availability(cluster, "DigitalObject", "heat-billing", ns, "Up"))
        assert dobj.get("openIncident") is None
        assert 0 <= dobj["availability"]["uptime24h"] < 1 and dobj["availability"]["downtimeSeconds30d"] >= 1

        async def settled() -> dict[str, Any]:
            final: dict[str, Any] = (await one_incident(cluster, ns, "Recovered"))["status"]
            assert final["outbox"] and all(e["state"] == "Delivered" for e in final["outbox"])
            return final

        final = await wait_until(settled)

        async def released() -> None:  # done: the incident's daemon ended and kopf dropped its finalizer
            obj = await one_incident(cluster, ns, "Recovered")
            assert "tksh.kz/finalizer" not in (obj["metadata"].get("finalizers") or [])

        await wait_until(released)
        delivered = {(n["channel"], n["transition"]) for n in final["notifications"]}
        assert delivered == {(c, t) for c in ("email", "webhook", "event", "alertmanager") for t in ("Opened",
                                                                                                  "Recovered")}
        assert all("@" not in (n.get("recipient") or "") or "***" in n["recipient"] for n in final["notifications"])
        metrics = operator.metrics
        assert metrics.value("tksh_incidents_open") == 0
        assert metrics.value(STARTED, target_labels) is None
        assert metrics.value("tksh_time_to_restore_seconds_count") == 1
        assert metrics.value("tksh_sla_breaches_total") in (None, 0)
        for channel in ("email", "webhook", "event", "alertmanager"):
            sent = metrics.value("tksh_notifications_total", {"channel": channel, "result": "delivered"})
            assert sent == 2 if channel != "email" else sent == 4  # + the registration's approved, integrated
            assert metrics.value("tksh_notification_latency_seconds_count", {"channel": channel}) == 2
        labels = {"kind": "DigitalObject", "namespace": ns, "name": "heat-billing"}
        assert (metrics.value("tksh_downtime_seconds_total", labels) or 0) > 0
        assert metrics.value("tksh_probe_success", labels) == 1
        assert metrics.value("tksh_probe_duration_seconds", {**labels, "phase": "connect"}) is not None
    keys = [m.message[IDEMPOTENCY_HEADER] for m in mail.received if m.envelope_to == (OWNER,)]
    assert len(keys) == len(set(keys))  # e-mails: integration-completed, opened, recovered; none twice
    assert len(await incidents(cluster, ns)) == 1  # never deleted, never duplicated
