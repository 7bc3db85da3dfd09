"""Delivering an incident's due notices over real channels: SMTP (MailSink), a webhook and an Alertmanager receiver."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from tests.integration.monitoring_helpers import HTTPReceiver
from tksh.monitoring.delivery import Channels, WebhookTarget, deliver_due
from tksh.monitoring.incidents import Recipient, TargetRef, incident_manifest, plan_entries
from tksh.monitoring.machine import StateChange
from tksh.notify import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify
from tksh.notify.email import SmtpSettings
from tksh.notify.outbox import DeliveryResult
from tksh.resources.incident import Incident
from tksh.sandbox.mailsink import MailSink

T0 = datetime.datetime(2026, 7, 12, 9, 0, tzinfo=datetime.UTC)
TARGET = TargetRef("DigitalObject", "heat-billing", "housing", "uid-1")
OWNER = "it@zhylu.example.kz"
SECRET = b"s3cret"


def incident() -> Incident:
    change = StateChange(TARGET.key, "Up", "Down", T0, incident="opened", started_at=T0, detected_at=T0,
                         failure="connect", message="connection refused")
    manifest = incident_manifest(TARGET, change, "housing")
    manifest["metadata"]["uid"] = "uid-incident"
    return Incident.model_validate(manifest)


RECIPIENTS = [
    Recipient("events", "event", "Events"),
    Recipient("alertmanager", "alertmanager", "Alertmanager"),
    Recipient("owner:uid-1", "email", OWNER, {"recipientNamespace": "housing", "recipientName": "heat-billing"}),
    Recipient("owner:uid-1", "webhook", "webhook", {"recipientNamespace": "housing", "recipientName": "heat-billing"}),
    Recipient("owner:uid-2", "email", "nobody@example.kz", {"recipientName": "gone"}),
]


async def test_each_channel_delivers_and_failures_are_recorded() -> None:
    events: list[Mapping[str, Any]] = []
    async with MailSink() as mail, HTTPReceiver() as hook, HTTPReceiver() as am:

        async def webhook_target(entry: Mapping[str, Any]) -> WebhookTarget | DeliveryResult:
            return WebhookTarget(f"{hook.url}/h", [SECRET])

        channels = Channels(
            smtp=SmtpSettings(port=mail.port, sender="tksh@tksh.example.kz"),
            email_address=lambda e: OWNER if (e.get("params") or {}).get("recipientName") == "heat-billing" else None,
            webhook_target=webhook_target, post_event=events.append, alertmanager_url=am.url, critical=True,
        )
        outbox = plan_entries(incident(), ["Opened"], RECIPIENTS, T0, timezone="Asia/Almaty")
        result, attempts = await deliver_due(outbox, channels, T0)
        records = [a.record for a in attempts if a.record]
    states = {(e["channel"], e.get("recipient")): e["state"] for e in result}
    assert states == {("event", "Events"): "Delivered", ("alertmanager", "Alertmanager"): "Delivered",
                      ("email", "i***@z***.kz"): "Delivered", ("webhook", "webhook"): "Delivered",
                      ("email", "n***@e***.kz"): "Failed"}  # no address to send to: permanent
    assert sorted(r["channel"] for r in records) == ["alertmanager", "email", "event", "webhook"]
    assert all(r["transition"] == "Opened" for r in records) and len(attempts) == 5
    (mailed,) = mail.received
    assert mailed.envelope_to == (OWNER,) and mailed.message[IDEMPOTENCY_HEADER] == outbox[2]["id"]
    (posted,) = hook.requests
    assert verify(posted.body, posted.headers[SIGNATURE_HEADER], SECRET) and posted.json()["id"] == outbox[3]["id"]
    (alert,) = am.requests[0].json()
    assert alert["labels"]["severity"] == "critical" and alert["labels"]["incident"] == incident().metadata.name
    assert len(events) == 1 and events[0]["id"] == outbox[0]["id"]


async def test_a_temporary_failure_is_retried_later_not_now() -> None:
    async def unavailable(entry: Mapping[str, Any]) -> WebhookTarget | DeliveryResult:
        return DeliveryResult(False, error="Secret housing/heat-billing-webhook not found")

    channels = Channels(smtp=SmtpSettings(), email_address=lambda e: None, webhook_target=unavailable,
                        post_event=lambda e: None)
    outbox = plan_entries(incident(), ["Opened"], [RECIPIENTS[3]], T0, timezone="Asia/Almaty")
    result, attempts = await deliver_due(outbox, channels, T0)
    records = [a.record for a in attempts if a.record]
    (entry,) = result
    assert (entry["state"], entry["attempts"], records) == ("Pending", 1, [])
    assert entry["nextAttemptAt"] > entry["createdAt"] and "not found" in entry["lastError"]
    again, attempts = await deliver_due(result, channels, T0 + datetime.timedelta(seconds=1))
    assert attempts == [] and again == result  # not due yet


async def test_a_stopping_task_attempts_no_further_entry() -> None:
    events: list[Mapping[str, Any]] = []
    async with MailSink() as mail:
        channels = Channels(
            smtp=SmtpSettings(port=mail.port, sender="tksh@tksh.example.kz"), email_address=lambda e: OWNER,
            webhook_target=lambda e: _never(), post_event=events.append,
            stopped=lambda: bool(events),  # stops once the first entry (the Events) is delivered
        )
        outbox = plan_entries(incident(), ["Opened"], RECIPIENTS[:3:2], T0, timezone="Asia/Almaty")
        result, attempts = await deliver_due(outbox, channels, T0)
        records = [a.record for a in attempts if a.record]
    assert [(e["channel"], e["state"]) for e in result] == [("event", "Delivered"), ("email", "Pending")]
    assert [r["channel"] for r in records] == ["event"]
    assert [a.channel for a in attempts] == ["event"] and mail.received == []  # the e-mail stays due, untried
    assert "attempts" not in result[1] or result[1]["attempts"] == 0


async def _never() -> WebhookTarget | DeliveryResult:
    raise AssertionError("no webhook entry in this outbox")
