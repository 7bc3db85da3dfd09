"""A central failure told to every integrated owner (§34.3), a window of owners at a time (pure).

When a critical ``CentralComponent`` fails, the owner of every integrated digital object is told, and
again when it recovers. Planned all at once, as one outbox entry per owner and channel, the Incident's
status grew with the number of owners: about 900 bytes an entry, so 1,000 owners with an e-mail and a
webhook each made a 1.8 MB write, past etcd's default request limit (1.5 MiB), and the one write that
was to tell them all would have been refused.

So the owners are planned in the order of their objects (namespace, then name), at most ``window``
of their entries pending at once (``OperatorConfig.fanout_window``, ``TKSH_FANOUT_WINDOW``, default
100); one :class:`~tksh.resources.incident.FanoutProgress` record per announcement in
``status.fanout`` says how far planning has gone (``plannedThrough``, the last object planned), and
counts the notices delivered and given up instead of listing each in ``status.notifications``.
Whatever the number of owners, the status holds at most ``window`` pending fan-out entries plus the
outbox's bounded history (:func:`tksh.notify.outbox.compact`). A window is planned in the same write
as the cursor that records it, so a restart neither skips nor repeats an owner (and a notice sent
twice carries the same idempotency key). An owner with more channels than the whole window is
planned alone, once nothing else is pending.

The recovery is announced only once the outage has been planned for every owner, so each owner's
queue in the outbox has the outage before the recovery. An object integrated after the cursor has
passed its place is not told of that outage; one that sorts after the cursor is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tksh.monitoring.incidents import Recipient, transition_of
from tksh.resources.incident import Transition

__all__ = ["ANNOUNCED", "complete", "is_fanout", "next_window", "start", "tally"]

ANNOUNCED: frozenset[Transition] = frozenset({"Opened", "Recovered"})
"""The transitions announced to every integrated owner."""

Owners = Sequence[tuple[tuple[str, str], Sequence[Recipient]]]
"""Every integrated object's (namespace, name) and its owner's recipients, sorted by (namespace, name)."""


def is_fanout(entry: Mapping[str, Any]) -> bool:
    """Whether an outbox entry is a notice to an owner about a central failure (while it has its params)."""
    return (entry.get("params") or {}).get("central") == "true"


def start(fanout: Sequence[Mapping[str, Any]] | None, due: Iterable[Transition]) -> list[dict[str, Any]]:
    """The progress records with one added for each announced transition just due (none is started twice)."""
    records = [dict(r) for r in fanout or ()]
    have = {r.get("transition") for r in records}
    for transition in due:
        if transition in ANNOUNCED and transition not in have:
            records.append({"transition": transition, "plannedThrough": "", "owners": 0, "complete": False,
                            "delivered": 0, "failed": 0})
            have.add(transition)
    return records


def complete(fanout: Sequence[Mapping[str, Any]] | None) -> bool:
    """Every announcement started is planned for every owner."""
    return all(r.get("complete") for r in fanout or ())


def _place(key: str) -> tuple[str, str]:
    namespace, _, name = key.partition("/")
    return namespace, name


def next_window(
    fanout: Sequence[Mapping[str, Any]] | None,
    owners: Owners,
    outbox: Sequence[Mapping[str, Any]] | None,
    window: int,
) -> tuple[list[dict[str, Any]], list[tuple[Transition, list[Recipient]]]]:
    """The progress records after planning as many owners as the window has room for, and what to plan.

    Owners are taken whole (all their channels) after each record's cursor; an owner with no channel
    is passed over. ``Recovered`` waits until ``Opened`` is complete.
    """
    room = window - sum(1 for e in outbox or () if e.get("state", "Pending") == "Pending" and is_fanout(e))
    records = [dict(r) for r in fanout or ()]
    plan: list[tuple[Transition, list[Recipient]]] = []
    for record in records:
        opened_done = all(r.get("complete") for r in records if r.get("transition") == "Opened")
        if record.get("complete") or (record.get("transition") == "Recovered" and not opened_done):
            continue
        through = _place(str(record.get("plannedThrough") or ""))
        chosen: list[Recipient] = []
        for place, recipients in owners:
            if record.get("plannedThrough") and place <= through:
                continue
            if len(recipients) > room and (chosen or room < window):
                break  # (an owner with more channels than the whole window goes alone, once nothing is pending)
            chosen += recipients
            room -= len(recipients)
            record["plannedThrough"] = "/".join(place)
            record["owners"] = int(record.get("owners") or 0) + (1 if recipients else 0)
        else:
            record["complete"] = True
        if chosen:
            plan.append((record["transition"], chosen))
    return records, plan


def tally(
    fanout: Sequence[Mapping[str, Any]] | None,
    outcomes: Iterable[tuple[str, bool, str, Mapping[str, Any] | None]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Count the fan-out notices just delivered or given up in their announcement's record.

    ``outcomes``: for each attempt, the entry's template, whether it is a fan-out notice, its state after the
    attempt and its ``status.notifications`` record if it was delivered. Returns the progress records and the
    notification records to list: all but the fan-out's, which are counted instead.
    """
    records = [dict(r) for r in fanout or ()]
    by_transition = {r.get("transition"): r for r in records}
    listed: list[dict[str, Any]] = []
    for template, fanned, state, delivered in outcomes:
        record = by_transition.get(transition_of({"template": template})) if fanned else None
        if record is None:
            if delivered is not None:
                listed.append(dict(delivered))
            continue
        if state == "Delivered":
            record["delivered"] = int(record.get("delivered") or 0) + 1
        elif state == "Failed":
            record["failed"] = int(record.get("failed") or 0) + 1
    return records, listed
