"""One incident's task (:meth:`IncidentTask.run`) told to stop after its first write sends nothing.

The first write of a new incident stores its deadline and the notices due (the outbox) before any is sent;
if the task is stopped then (its replica pauses for a peer, or exits), the next writer sends them from what
is stored. A task that is not stopped sends the owner's e-mail over real SMTP and records it: the control.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Any

from tests.unit.monitoring.test_delivery import OWNER, T0, TARGET, incident
from tksh.config import OperatorConfig
from tksh.metrics import OperatorMetrics
from tksh.monitoring.delivery import WebhookTarget
from tksh.monitoring.incident_task import IncidentTask
from tksh.monitoring.service import MonitorService
from tksh.notify.outbox import Backoff, DeliveryResult
from tksh.sandbox.mailsink import MailSink

OWNERS = {("housing", "heat-billing"): [{"uid": TARGET.uid, "email": OWNER, "phase": "Integrated"}]}


async def no_webhook(entry: Mapping[str, Any], owners: Mapping[Any, Any]) -> WebhookTarget | DeliveryResult:
    return DeliveryResult(False, permanent=True, error="no webhook")


async def run_stopping_after(writes: int) -> tuple[list[dict[str, Any]], MailSink]:
    """Run the task of a new incident until it has made ``writes`` writes (then it is told to stop)."""
    stored: list[dict[str, Any]] = []
    status: dict[str, Any] = {}

    async def store(fields: Mapping[str, Any]) -> dict[str, Any]:
        stored.append(dict(fields))
        status.update(fields)
        return dict(status)

    async def pause(event: asyncio.Event, seconds: float) -> None:
        await asyncio.sleep(0)

    async with MailSink() as mail:
        config = dataclasses.replace(OperatorConfig(), smtp_host="127.0.0.1", smtp_port=mail.port,
                                     smtp_sender="tksh@tksh.example.kz", fast=True)
        task = IncidentTask(config=config, metrics=OperatorMetrics(), service=MonitorService(), clock=lambda: T0,
                            backoff=Backoff(), webhook_target=no_webhook, post_event=lambda *_: None)
        body = incident().model_dump(by_alias=True, exclude_none=True, mode="json")
        async with asyncio.timeout(30):
            await task.run(body, store, pause, lambda: len(stored) >= writes, OWNERS, {})
    return stored, mail


async def test_a_task_stopped_after_storing_its_notices_sends_none_of_them() -> None:
    stored, mail = await run_stopping_after(1)
    (first,) = stored
    assert first["phase"] == "Open" and first["outbox"], first
    assert {e["state"] for e in first["outbox"]} == {"Pending"}  # recorded, for the next writer to send
    assert mail.received == []


async def test_a_running_task_sends_and_records_them() -> None:  # the control: the same run, not stopped at once
    stored, mail = await run_stopping_after(2)
    assert [m.envelope_to for m in mail.received] == [(OWNER,)]
    assert [r["channel"] for r in stored[1]["notifications"]] == ["event", "email"]


STARTED = "tksh_incident_started_timestamp_seconds"


def test_each_target_exports_the_start_of_its_open_incident_until_it_recovers() -> None:
    metrics = OperatorMetrics()
    task = IncidentTask(config=OperatorConfig(), metrics=metrics, service=MonitorService(), clock=lambda: T0,
                        backoff=Backoff(), webhook_target=no_webhook, post_event=lambda *_: None)
    heat, gateway = ("DigitalObject", "housing", "heat-billing"), ("CentralComponent", "", "cz-gateway")
    labels = {"kind": "DigitalObject", "namespace": "housing", "name": "heat-billing"}
    central = {"kind": "CentralComponent", "namespace": "", "name": "cz-gateway"}
    task.publish("housing/heat-1", {"phase": "Open"}, (heat, 1000.0))
    task.publish("tksh-system/cz-1", {"phase": "Open"}, (gateway, 1500.0))
    task.publish("housing/heat-2", {"phase": "Open"}, (heat, 2000.0))  # a second one of the target: the earlier
    assert metrics.value(STARTED, labels) == 1000.0
    assert metrics.value(STARTED, central) == 1500.0
    task.publish("housing/heat-1", {"phase": "Recovered"})
    assert metrics.value(STARTED, labels) == 2000.0
    task.publish("housing/heat-2", None)  # its task ended (e.g. the replica paused): no longer this one's to tell
    assert metrics.value(STARTED, labels) is None
    assert metrics.value(STARTED, central) == 1500.0
    assert metrics.value("tksh_incidents_open") == 1


async def test_a_running_task_exports_its_incident_s_start_and_removes_it_when_it_ends() -> None:
    metrics = OperatorMetrics()
    seen: list[float | None] = []
    status: dict[str, Any] = {}
    labels = {"kind": "DigitalObject", "namespace": "housing", "name": "heat-billing"}

    async def store(fields: Mapping[str, Any]) -> dict[str, Any]:
        seen.append(metrics.value(STARTED, labels))  # what was exported before this write
        status.update(fields)
        return dict(status)

    async def pause(event: asyncio.Event, seconds: float) -> None:
        await asyncio.sleep(0)

    task = IncidentTask(config=dataclasses.replace(OperatorConfig(), fast=True), metrics=metrics,
                        service=MonitorService(), clock=lambda: T0, backoff=Backoff(), webhook_target=no_webhook,
                        post_event=lambda *_: None)
    body = incident().model_dump(by_alias=True, exclude_none=True, mode="json")
    async with asyncio.timeout(30):
        await task.run(body, store, pause, lambda: len(seen) >= 2, {}, {})
    assert seen == [None, incident().spec.started_at.timestamp()]  # exported once the incident's status is stored
    assert metrics.value(STARTED, labels) is None  # the task ended: nothing left behind
