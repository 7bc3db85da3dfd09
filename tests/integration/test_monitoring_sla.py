"""The one-hour recovery SLA with fake time: reminders at T+15/30/45 and the breach notice at T+60.

The operator takes its monitoring time from an ``OffsetClock`` that the test moves forward by a quarter of
an hour at a time; probes, SMTP and the API server keep running in real time. No sleeping for an hour.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import Any

from tests.integration.backends import Backend, running
from tests.integration.monitoring_helpers import (
    OWNER,
    digital_object,
    integrated,
    mail_to,
    monitoring_config,
    namespace,
    one_incident,
    reasons,
)
from tksh.monitoring.clock import OffsetClock
from tksh.sandbox.mailsink import MailSink
from tksh.sandbox.targets import HTTPTarget

Wait = Callable[..., Awaitable[Any]]
MINUTES = datetime.timedelta(minutes=1)


async def test_reminders_at_15_30_45_minutes_then_the_breach_at_60(
    cluster: Backend, mail: MailSink, unique: str, wait_until: Wait
) -> None:
    ns = await namespace(cluster, f"sla-{unique}")
    clock = OffsetClock()
    # Only this test's namespace: the real cluster keeps other tests' incidents, which the clock would breach too.
    config = monitoring_config(cluster, mail.port, clock=clock, namespaces=(ns,), incident_namespace=ns)
    async with HTTPTarget("heat") as target, running(config) as operator:
        obj = digital_object("heat-billing", ns, target.url, OWNER)
        await cluster.apply(obj)
        await wait_until(lambda: integrated(cluster, obj), timeout=60)
        target.failing(500)
        incident = await wait_until(lambda: one_incident(cluster, ns), timeout=60)
        name = incident["metadata"]["name"]
        await mail.wait_for(mail_to(OWNER, "incident-opened"), timeout=30)
        assert not [m for m in mail.received if "reminder" in str(m.message["X-TKSH-Template"])]

        for minutes in (15, 30, 45):
            clock.advance(15 * MINUTES)
            reminder = await mail.wait_for(mail_to(OWNER, f"incident-reminder-{minutes}"), timeout=30)
            assert f"{minutes} минут" in reminder.text and f"{minutes} minutes" in reminder.text
            status = (await one_incident(cluster, ns))["status"]
            assert status["slaVerdict"] == "Pending"
        assert operator.metrics.value("tksh_sla_breaches_total") in (None, 0)

        clock.advance(16 * MINUTES)  # T+61
        breach = await mail.wait_for(mail_to(OWNER, "incident-breached"), timeout=30)
        assert "часовой срок" in breach.text

        async def breached() -> None:
            assert (await one_incident(cluster, ns))["status"]["slaVerdict"] == "Breached"
            assert operator.metrics.value("tksh_sla_breaches_total") == 1
            assert "IncidentSLABreached" in await reasons(cluster, name)

        await wait_until(breached)

        target.healthy()
        back = await mail.wait_for(mail_to(OWNER, "incident-recovered"), timeout=60)
        assert "часовой срок нарушен" in back.text

        async def settled() -> dict[str, Any]:
            status: dict[str, Any] = (await one_incident(cluster, ns, "Recovered"))["status"]
            assert all(e["state"] == "Delivered" for e in status["outbox"])
            return status

        status = await wait_until(settled)
    assert status["slaVerdict"] == "Breached"  # recovered after the deadline: still a breach
    assert status["durationSeconds"] > 3600
    assert operator.metrics.value("tksh_sla_breaches_total") == 1
    sent = [str(m.message["X-TKSH-Template"]) for m in mail.received if m.envelope_to == (OWNER,)]
    assert [t for t in sent if t.startswith("incident-")] == [
        "incident-opened", "incident-reminder-15", "incident-reminder-30", "incident-reminder-45",
        "incident-breached", "incident-recovered",
    ]
    transitions = [n["transition"] for n in status["notifications"] if n["channel"] == "email"]
    assert transitions == ["Opened", "Reminder15", "Reminder30", "Reminder45", "Breached", "Recovered"]
