"""Issue 7, item 3: the SMTP server and a webhook receiver are down for a period, then back.

While they are down the workflows go on (phases, grants, incidents do not wait for notifications) and
every notification waits in its object's outbox, retried with backoff; the backlog shows in
``tksh_notifications_pending`` on the operator's /metrics. The SMTP server comes back first (e-mails
drain while webhooks still wait), then the webhook receiver. Once both are back, every notification is
delivered, none lost, none twice after de-duplication, and in order per recipient: each receiver
(channel, recipient) of an object's outbox gets its entries in the order the outbox recorded them.

Time: the operator process runs on the real clock, in fast mode (outbox retries after 0.5 s, doubling,
at most 5 s, given up after 10 attempts, about 30 s). The down periods last at least ``min_down``
seconds and until the first entry in line for each receiver has failed ``MIN_ATTEMPTS`` times or more
(several backoff periods; the entries behind it wait their turn, unattempted); the figures record how
long they were and how many attempts the first entries made. In production the same schedule starts
at 30 s and is capped at 1 hour, so an outage of up to about 3 hours loses nothing.
"""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.figures import record
from tests.reliability.grant_workflows import delegation, revoked
from tests.reliability.harness import Harness
from tests.reliability.incident_workflows import outage
from tests.reliability.logscan import assert_no_personal_data
from tests.reliability.verify import account, arrival_order, outbox_entries, wait_final
from tests.reliability.workflows import Workflow, integrated, refused, rejected, until

MIN_ATTEMPTS = 3
KINDS = ("integrated", "outage", "revoked", "integrated", "refused", "cascade", "outage", "rejected")


async def mix(harness: Harness, count: int) -> list[Workflow]:
    """Two e-mails or more per recipient (the second recorded while the first waits), and outages with webhooks."""
    ns, url = harness.namespace, harness.target.url
    found: list[Workflow] = []
    for i in range(count):
        kind, name = KINDS[i % len(KINDS)], f"down-{i:03d}"
        if kind == "outage":
            found.append(outage(name, ns, await harness.new_target(name), harness.hooks))
        elif kind == "revoked":
            found.append(revoked(name, ns))
        elif kind == "cascade":
            found.append(delegation(name, ns))
        else:
            found.append({"integrated": integrated, "refused": refused, "rejected": rejected}[kind](name, ns, url))
    return found


def queues(obj: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """An object's e-mail and webhook entries by receiver (channel, masked recipient), in recorded order."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = collections.defaultdict(list)
    for entry in outbox_entries(obj):
        if entry.get("channel") in ("email", "webhook"):
            found[(str(entry["channel"]), str(entry.get("recipient") or ""))].append(entry)
    return found


async def waiting(harness: Harness, workflows: list[Workflow], channel: str) -> list[int]:
    """Every ``channel`` entry still Pending; the first of each receiver tried; the attempts of those firsts."""
    attempts: list[int] = []
    for workflow in workflows:
        for obj in await workflow.outbox_objects(harness.cluster):
            for (kind, _), entries in queues(obj).items():
                if kind != channel:
                    continue
                first, *later = entries
                assert [e["state"] for e in entries] == ["Pending"] * len(entries), (workflow.name, entries)
                attempts.append(int(first.get("attempts") or 0))
                # a later entry to the same receiver waits behind the first: never attempted out of turn
                assert all(int(e.get("attempts") or 0) == 0 for e in later), later
    return attempts


async def down_run(harness: Harness, name: str, count: int, min_down: float) -> None:
    operator, mail, hooks = harness.operator, harness.mail, harness.hooks
    await mail.down()
    await hooks.down()
    down_at = time.monotonic()
    await operator.start()
    await operator.wait_ready()
    workflows = await mix(harness, count)
    await asyncio.gather(*(harness.drive(w) for w in workflows))  # every phase is reached without notifications
    due = {channel: sum(1 for w in workflows for e in w.expected if e.channel == channel)
           for channel in ("email", "webhook")}
    backlog: list[float] = []

    async def queued_and_retried() -> dict[str, list[int]]:
        pending = await operator.metric("tksh_notifications_pending")
        backlog.append(pending or 0)
        total = due["email"] + due["webhook"]
        assert pending is not None and pending >= total, f"tksh_notifications_pending {pending} < {total}"
        found = {channel: await waiting(harness, workflows, channel) for channel in due}
        for channel, attempts in found.items():
            assert attempts and min(attempts) >= MIN_ATTEMPTS, (channel, attempts)
        assert time.monotonic() - down_at >= min_down
        return found

    attempts = await until(queued_and_retried, 120, interval=0.25)
    smtp_down = time.monotonic() - down_at
    assert mail.received == [] and mail.connections == 0 and hooks.received == []
    await mail.up()

    async def mail_drained_hooks_waiting() -> list[int]:
        for workflow in workflows:
            for obj in await workflow.outbox_objects(harness.cluster):
                left = [e["template"] for e in outbox_entries(obj)
                        if e.get("channel") == "email" and e.get("state") != "Delivered"]
                assert not left, (workflow.name, left)
        return await waiting(harness, workflows, "webhook")

    webhook_attempts = await until(mail_drained_hooks_waiting, 120, interval=0.25)
    hooks_down = time.monotonic() - down_at
    await hooks.up()
    await wait_final(harness.cluster, workflows)
    accounting = await account(harness.cluster, mail, workflows, hooks)

    async def drained() -> None:
        pending = await operator.metric("tksh_notifications_pending")
        assert pending == 0, pending

    await until(drained, 60)
    position = arrival_order(mail, hooks)
    out_of_order: list[Any] = []
    receivers = 0
    for workflow in workflows:
        for obj in await workflow.outbox_objects(harness.cluster):
            for receiver, entries in queues(obj).items():
                receivers += 1
                arrived = [position.get(e["id"], -1) for e in entries]
                if arrived != sorted(arrived):
                    out_of_order.append((workflow.name, receiver[0], [e["template"] for e in entries], arrived))
    record(name, {
        "backend": harness.backend, "workflows": len(workflows), "down_seconds": round(smtp_down, 1),
        "webhook_down_seconds": round(hooks_down, 1),
        "backlog_max": max(backlog), "attempts_while_down_min": min(attempts["email"]),
        "attempts_while_down_max": max(attempts["email"]),
        "webhook_attempts_while_down_min": min(webhook_attempts),
        "webhook_attempts_while_down_max": max(webhook_attempts),
        "receivers": receivers, "out_of_order_recipients": len(out_of_order),
        **{k: v for k, v in accounting.figures().items() if k != "workflows"},
        "log_lines_scanned": assert_no_personal_data(harness.log_lines()),
    })
    assert max(backlog) >= due["email"] + due["webhook"]
    assert accounting.lost == 0 and accounting.duplicates_after_dedup == 0, accounting.problems
    assert accounting.problems == []
    assert out_of_order == [], out_of_order


async def test_receivers_down_then_back_short(tmp_path: Path) -> None:
    async with Harness.embedded(tmp_path / "logs") as harness:
        await down_run(harness, "receivers-down-embedded-short", count=8, min_down=4.0)


@pytest.mark.reliability_long
async def test_receivers_down_then_back_long(tmp_path: Path) -> None:
    async with Harness.embedded(tmp_path / "logs") as harness:
        await down_run(harness, "receivers-down-embedded-long", count=24, min_down=15.0)
