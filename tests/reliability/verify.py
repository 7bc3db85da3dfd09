"""After a run: every object in its right final state, every due notification delivered exactly once.

The accounting, as seen by receivers that de-duplicate on the idempotency key (``X-TKSH-Idempotency-Key``
of an e-mail, ``Idempotency-Key`` of a webhook), per channel:

- **lost**: an expected notification (channel, recipient, template) with no message at all, or an outbox
  entry whose key never arrived on its channel, or one that is not ``Delivered`` (given up);
- **duplicates after de-duplication**: more than one distinct key for one expected (channel, recipient,
  template), or a message nobody expected: the operator notified twice *as different messages*;
- **raw duplicates**: messages beyond the first of their key (a crash between sending and marking the
  entry delivered re-sends once, with the same key: allowed, and counted).

``event`` entries (Kubernetes Events an Incident posts) must be ``Delivered``; they reach no receiver.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence
from typing import Any

from tests.reliability.hooks import DedupWebhooks
from tests.reliability.mailbox import DedupMailbox
from tests.reliability.workflows import Cluster, Workflow, check, until

FINAL_TIMEOUT = 180.0  # a deadline for a broken run, never a timing assertion


@dataclasses.dataclass
class Accounting:
    workflows: int = 0
    expected: int = 0
    delivered_unique: int = 0
    lost: int = 0
    duplicates_after_dedup: int = 0
    raw_messages: int = 0
    raw_duplicates: int = 0
    outbox_entries: int = 0
    webhooks_delivered_unique: int = 0
    webhook_raw_requests: int = 0
    webhook_raw_duplicates: int = 0
    bad_signatures: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "problems"}


def outbox_entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list((obj.get("status") or {}).get("outbox") or ())


async def wait_final(cluster: Cluster, workflows: Sequence[Workflow], timeout: float = FINAL_TIMEOUT) -> None:  # noqa: ASYNC109
    """Each workflow's object in its final state and each outbox fully delivered (a deadline only)."""

    async def all_final() -> None:
        for workflow in workflows:
            await check(cluster, workflow.ref, workflow.final)
            if workflow.also is not None:
                await workflow.also(cluster)
            for obj in await workflow.outbox_objects(cluster):
                pending = [e["template"] for e in outbox_entries(obj) if e.get("state") != "Delivered"]
                assert not pending, f"{workflow.name}: not delivered yet: {pending}"

    await until(all_final, timeout, interval=0.2)


Group = tuple[str, str, str]
"""(channel, recipient, template)."""


def received_groups(mail: DedupMailbox, hooks: DedupWebhooks | None) -> tuple[dict[Group, list[Any]], set[str]]:
    """What the de-duplicating receivers got, by (channel, recipient, template), and every key they saw."""
    by_group: dict[Group, list[Any]] = collections.defaultdict(list)
    keys: set[str] = set()
    for message in mail.unique():
        keys.add(mail.key(message))
        for recipient in message.envelope_to:
            by_group[("email", recipient, str(message.message.get("X-TKSH-Template", "")))].append(message)
    for request in hooks.unique() if hooks is not None else ():
        keys.add(request.key)
        by_group[("webhook", request.recipient, request.template)].append(request)
    return by_group, keys


def _text(message: Any) -> str:
    return str(message.text) if hasattr(message, "text") else str(message.payload)


async def account(cluster: Cluster, mail: DedupMailbox, workflows: Sequence[Workflow],
                  hooks: DedupWebhooks | None = None) -> Accounting:
    """The figures of a finished run (call after :func:`wait_final`)."""
    result = Accounting(workflows=len(workflows))
    result.raw_messages = len(mail.received)
    result.raw_duplicates = mail.raw_duplicates
    result.delivered_unique = len(mail.unique())
    if hooks is not None:
        result.webhooks_delivered_unique = len(hooks.unique())
        result.webhook_raw_requests = len(hooks.received)
        result.webhook_raw_duplicates = hooks.raw_duplicates
        result.bad_signatures = hooks.bad_signatures
        if hooks.bad_signatures:
            result.problems.append(f"{hooks.bad_signatures} webhook requests with a bad signature")
    by_group, received_keys = received_groups(mail, hooks)

    expected_groups: set[Group] = set()
    for workflow in workflows:
        recorded: set[Group] = set()
        for obj in await workflow.outbox_objects(cluster):
            for entry in outbox_entries(obj):
                result.outbox_entries += 1
                channel = str(entry.get("channel") or "email")
                if channel in ("email", "webhook"):
                    recorded.add((channel, "", str(entry["template"])))
                if channel == "webhook" and hooks is None:
                    continue
                if channel in ("email", "webhook") and entry["id"] not in received_keys:
                    result.lost += 1
                    result.problems.append(f"{workflow.name}: outbox entry {channel} {entry['template']} "
                                           f"({entry['state']}) never arrived")
                elif entry.get("state") != "Delivered":
                    result.problems.append(f"{workflow.name}: {channel} {entry['template']} is {entry['state']}")
        for want in workflow.expected:
            group = (want.channel, want.recipient, want.template)
            expected_groups.add(group)
            got = by_group.get(group, [])
            if want.optional and not got and (want.channel, "", want.template) not in recorded:
                continue  # not due: the operator never recorded it
            result.expected += 1
            if not got:
                result.lost += 1
                result.problems.append(f"{workflow.name}: no {want.channel} {want.template} to {want.recipient}")
                continue
            if len(got) > 1:
                result.duplicates_after_dedup += len(got) - 1
                result.problems.append(f"{workflow.name}: {len(got)} distinct {want.channel} {want.template} messages")
            for text in want.contains:
                if text not in _text(got[0]):
                    result.problems.append(f"{workflow.name}: {want.template} does not say {text!r}")
    for group, messages in by_group.items():
        if group not in expected_groups:
            result.duplicates_after_dedup += len(messages)
            result.problems.append(f"unexpected: {len(messages)} x {group[0]} {group[2]}")
    return result


def per_recipient_order(mail: DedupMailbox) -> dict[str, list[str]]:
    """Templates each recipient received, in arrival order, de-duplicated."""
    order: dict[str, list[str]] = collections.defaultdict(list)
    for message in mail.unique():
        for recipient in message.envelope_to:
            order[recipient].append(str(message.message.get("X-TKSH-Template", "")))
    return dict(order)


def arrival_order(mail: DedupMailbox, hooks: DedupWebhooks | None = None) -> dict[str, int]:
    """The position of each idempotency key in its receiver's de-duplicated arrival order."""
    order = {mail.key(m): i for i, m in enumerate(mail.unique())}
    if hooks is not None:
        order.update({d.key: i for i, d in enumerate(hooks.unique())})
    return order
