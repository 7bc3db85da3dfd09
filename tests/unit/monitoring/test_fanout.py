"""A central failure told to every integrated owner a window at a time (:mod:`tksh.monitoring.fanout`).

The pure planning first (order, window, cursor, the recovery after the outage, the tally), then one
incident's task over a real SMTP server with more owners than the window: each owner gets the outage
and then the recovery exactly once, and no stored status holds more than the window of pending notices.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
from collections.abc import Mapping
from typing import Any

from tests.unit.monitoring.test_delivery import T0
from tests.unit.monitoring.test_incident_task import no_webhook
from tksh.config import OperatorConfig
from tksh.metrics import OperatorMetrics
from tksh.monitoring import fanout
from tksh.monitoring.incident_task import IncidentTask, needs_task
from tksh.monitoring.incidents import Recipient, TargetRef, incident_manifest
from tksh.monitoring.machine import StateChange
from tksh.monitoring.service import MonitorService
from tksh.notify.outbox import Backoff
from tksh.sandbox.mailsink import MailSink


def owner(namespace: str, name: str, channels: int = 1) -> tuple[tuple[str, str], list[Recipient]]:
    params = {"recipientRole": "owner", "recipientNamespace": namespace, "recipientName": name, "central": "true"}
    kinds = ("email", "webhook")[:channels]
    return (namespace, name), [Recipient(f"owner:{name}", kind, f"{kind} of {name}", params) for kind in kinds]


def pending(n: int) -> list[dict[str, Any]]:
    return [{"id": f"p{i}", "state": "Pending", "template": "incident-opened", "params": {"central": "true"}}
            for i in range(n)]


def test_owners_are_planned_in_order_whole_and_up_to_the_window() -> None:
    owners = [owner("a", "x", 2), owner("a", "y", 2), owner("b", "z", 2)]
    progress, plan = fanout.next_window(fanout.start([], ["Opened"]), owners, [], window=5)
    assert [(t, [r.params["recipientName"] for r in rs]) for t, rs in plan] == [("Opened", ["x", "x", "y", "y"])]
    assert progress == [{"transition": "Opened", "plannedThrough": "a/y", "owners": 2, "complete": False,
                         "delivered": 0, "failed": 0}]
    # the two planned are still pending: room for one owner of two channels only once 3 are done
    assert fanout.next_window(progress, owners, pending(4), window=5)[1] == []
    progress, plan = fanout.next_window(progress, owners, pending(3), window=5)
    assert [r.params["recipientName"] for _, rs in plan for r in rs] == ["z", "z"]
    assert progress[0]["complete"] and progress[0]["owners"] == 3 and progress[0]["plannedThrough"] == "b/z"
    assert fanout.complete(progress)
    assert fanout.next_window(progress, owners, [], window=5) == (progress, [])  # nothing more, no change


def test_the_cursor_follows_namespace_then_name_not_the_joined_string() -> None:
    # "a-b/x" sorts before "a/x" as a string ('-' < '/'), after it as (namespace, name)
    owners = sorted([owner("a", "x"), owner("a-b", "x"), owner("a", "z")])
    progress, plan = fanout.next_window(fanout.start([], ["Opened"]), owners, [], window=2)
    assert [r.params["recipientNamespace"] + "/" + r.params["recipientName"] for _, rs in plan for r in rs] == [
        "a/x", "a/z"]
    progress, plan = fanout.next_window(progress, owners, [], window=2)
    assert [r.params["recipientNamespace"] for _, rs in plan for r in rs] == ["a-b"]
    assert progress[0]["complete"]


def test_an_owner_with_more_channels_than_the_window_goes_alone_once_nothing_is_pending() -> None:
    owners = [owner("a", "x", 2), owner("a", "y", 2)]
    progress, plan = fanout.next_window(fanout.start([], ["Opened"]), owners, [], window=1)
    assert [r.params["recipientName"] for _, rs in plan for r in rs] == ["x", "x"]
    assert fanout.next_window(progress, owners, pending(1), window=1)[1] == []  # not while one is pending
    progress, plan = fanout.next_window(progress, owners, [], window=1)
    assert [r.params["recipientName"] for _, rs in plan for r in rs] == ["y", "y"] and progress[0]["complete"]


def test_an_owner_without_a_channel_is_passed_over() -> None:
    owners = [((("a", "mute")), []), owner("a", "x")]
    progress, plan = fanout.next_window(fanout.start([], ["Opened"]), owners, [], window=1)
    assert [r.params["recipientName"] for _, rs in plan for r in rs] == ["x"]
    assert progress[0]["owners"] == 1 and progress[0]["complete"]


def test_the_recovery_is_announced_only_once_the_outage_is_planned_for_everyone() -> None:
    owners = [owner("a", "x"), owner("a", "y")]
    started = fanout.start(fanout.start([], ["Opened"]), ["Recovered", "Opened"])  # Opened is not started twice
    assert [r["transition"] for r in started] == ["Opened", "Recovered"]
    progress, plan = fanout.next_window(started, owners, [], window=1)
    assert [t for t, _ in plan] == ["Opened"] and not progress[1]["owners"]
    progress, plan = fanout.next_window(progress, owners, [], window=2)
    assert [(t, len(rs)) for t, rs in plan] == [("Opened", 1), ("Recovered", 1)]  # the last of one, the first of other


def test_the_tally_counts_fan_out_notices_and_lists_the_others() -> None:
    progress = fanout.start([], ["Opened"])
    record = {"channel": "email", "transition": "Opened", "deliveredAt": "2026-07-12T09:00:00Z"}
    progress, listed = fanout.tally(progress, [
        ("incident-opened", True, "Delivered", record),
        ("incident-opened", True, "Failed", None),
        ("incident-opened", True, "Pending", None),
        ("incident-opened", False, "Delivered", {**record, "channel": "event"}),
    ])
    assert (progress[0]["delivered"], progress[0]["failed"]) == (1, 1)
    assert listed == [{**record, "channel": "event"}]


# --- one incident's task, with more owners than the window ---------------------------------------------------

GATEWAY = TargetRef("CentralComponent", "cz-gateway", None, "uid-gateway")
COMPONENTS = {"cz-gateway": [{"uid": "uid-gateway", "critical": True, "title": "Gateway"}]}
OWNERS = 230


async def test_every_owner_is_told_once_of_the_outage_then_of_the_recovery_within_a_bounded_status() -> None:
    change = StateChange(GATEWAY.key, "Up", "Down", T0, incident="opened", started_at=T0, detected_at=T0,
                         failure="connect", message="connection refused")
    body = incident_manifest(GATEWAY, change, "tksh-system")
    body["metadata"]["uid"] = "uid-incident"
    key = f"tksh-system/{body['metadata']['name']}"
    owners = {(f"ns-{i % 7}", f"object-{i}"): [{"uid": f"uid-{i}", "email": f"owner{i}@example.kz",
                                                "phase": "Integrated"}] for i in range(OWNERS)}
    owners[("ns-0", "applicant")] = [{"uid": "uid-a", "email": "applicant@example.kz", "phase": "UnderReview"}]
    status: dict[str, Any] = {}
    writes: list[dict[str, Any]] = []
    everyone_told = asyncio.Event()

    async def store(fields: Mapping[str, Any]) -> dict[str, Any]:
        status.update(json.loads(json.dumps(fields)))
        writes.append(json.loads(json.dumps(status)))
        if any(r["transition"] == "Opened" and r["delivered"] == OWNERS for r in status.get("fanout") or ()):
            everyone_told.set()
        return dict(status)

    async def pause(event: asyncio.Event, seconds: float) -> None:
        await asyncio.sleep(min(seconds, 0.01))

    service = MonitorService()
    async with MailSink() as mail:
        config = dataclasses.replace(OperatorConfig(), smtp_host="127.0.0.1", smtp_port=mail.port,
                                     smtp_sender="tksh@tksh.example.kz", administrator_mailbox="admin@tksh.example.kz",
                                     fast=True)
        task = IncidentTask(config=config, metrics=OperatorMetrics(), service=service, clock=lambda: T0,
                            backoff=Backoff(), webhook_target=no_webhook, post_event=lambda *_: None)
        running = asyncio.create_task(task.run(body, store, pause, lambda: False, owners, COMPONENTS))
        async with asyncio.timeout(120):
            await everyone_told.wait()
            service.recover(key, T0 + datetime.timedelta(minutes=10))
            await running
    by_owner: dict[str, list[str]] = {}
    for message in mail.received:
        by_owner.setdefault(message.envelope_to[0], []).append(str(message.message["X-TKSH-Template"]))
    assert by_owner.pop("admin@tksh.example.kz") == ["incident-opened", "incident-recovered"]
    assert by_owner == {f"owner{i}@example.kz": ["incident-opened", "incident-recovered"] for i in range(OWNERS)}
    final = writes[-1]
    assert [(r["transition"], r["owners"], r["delivered"], r["failed"], r["complete"]) for r in final["fanout"]] == [
        ("Opened", OWNERS, OWNERS, 0, True), ("Recovered", OWNERS, OWNERS, 0, True)]
    assert {n["channel"] for n in final["notifications"]} == {"event", "email"}  # the Events and the administrator
    assert len(final["notifications"]) == 4
    most = max(sum(1 for e in w.get("outbox") or () if e.get("state") == "Pending" and fanout.is_fanout(e))
               for w in writes)
    assert 0 < most <= config.fanout_window == 100
    # the window's pending entries plus the outbox's bounded history: 139 kB here, whatever the number of owners;
    # planned all at once, as before, the same 230 owners made a 276 kB status (and 1,000 owners 1.6 MB)
    assert max(len(json.dumps(w)) for w in writes) < 200_000


def test_an_incident_keeps_its_task_until_the_recovery_is_planned_for_every_owner() -> None:
    """Between two windows nothing may be pending: a recovered incident whose announcement is not planned for
    everyone still needs its task (else kopf's filter would stop it and the rest of the owners never be told)."""
    recovered = {"phase": "Recovered", "outbox": [{"id": "a", "state": "Delivered"}]}
    assert not needs_task(recovered)
    assert needs_task({**recovered, "fanout": [{"transition": "Recovered", "complete": False}]})
    assert not needs_task({**recovered, "fanout": [{"transition": "Recovered", "complete": True}]})
    assert needs_task({**recovered, "outbox": [{"id": "a", "state": "Pending"}]})
    assert needs_task({"phase": "Open"})


async def test_a_task_whose_component_is_no_longer_critical_ends_with_its_announcement_unfinished() -> None:
    """No owner is told any more once the component is not critical: the recovered incident's task ends."""
    change = StateChange(GATEWAY.key, "Up", "Down", T0, incident="opened", started_at=T0, detected_at=T0,
                         failure="connect", message="connection refused")
    body = incident_manifest(GATEWAY, change, "tksh-system")
    told = [{"channel": "event", "transition": t, "deliveredAt": "2026-07-12T09:10:00Z"} for t in ("Opened",
                                                                                                   "Recovered")]
    unfinished = {"transition": "Recovered", "plannedThrough": "ns-0/object-1", "owners": 1, "complete": False,
                  "delivered": 1, "failed": 0}
    body["status"] = {"phase": "Recovered", "recoveredAt": "2026-07-12T09:10:00Z", "slaVerdict": "Met",
                      "notifications": told, "outbox": [], "fanout": [unfinished]}
    owners = {("ns-0", f"object-{i}"): [{"uid": f"uid-{i}", "email": f"o{i}@example.kz", "phase": "Integrated"}]
              for i in range(3)}

    async def store(fields: Mapping[str, Any]) -> dict[str, Any]:
        raise AssertionError(f"nothing to write: {fields}")

    async def pause(event: asyncio.Event, seconds: float) -> None:
        await asyncio.sleep(0)

    task = IncidentTask(config=OperatorConfig(), metrics=OperatorMetrics(), service=MonitorService(),
                        clock=lambda: T0, backoff=Backoff(), webhook_target=no_webhook, post_event=lambda *_: None)
    not_critical = {"cz-gateway": [{"uid": "uid-gateway", "critical": False}]}
    async with asyncio.timeout(10):
        await task.run(body, store, pause, lambda: False, owners, not_critical)
