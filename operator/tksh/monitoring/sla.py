"""The 1-hour recovery SLA of §34.2: deadline, notification schedule and verdict of one incident.

Working order must be restored within one hour of the outage's start: the deadline is
``startedAt + 1 h``. The owner is told when the incident opens, reminded at T+15, T+30 and T+45
minutes while the target is still down, told of the breach at T+60, and told of the recovery.

:func:`due_transitions` is the whole schedule as a pure function of the incident, the time and
the transitions already sent (or queued in the outbox), so calling it again after a crash or on
every timer tick is safe: what was sent is never due again. Reminders that were missed (the
operator was down across several marks) are not sent in a burst: only the latest one passed is
due, and none once the target has recovered. A breach is announced even when it is noticed only
after the recovery: it happened.

Boundaries: an incident recovered exactly at the deadline met the SLA; an incident still open at
the deadline has breached it.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable
from typing import Final

from tksh.resources.incident import Incident, SlaVerdict, Transition

__all__ = [
    "BREACH",
    "RECOVERY_SLA",
    "REMINDERS",
    "SlaState",
    "due_transitions",
    "duration_seconds",
    "evaluate",
    "next_due_at",
    "recovery_deadline",
    "sent_transitions",
    "verdict",
]

RECOVERY_SLA: Final = datetime.timedelta(hours=1)
REMINDERS: Final[tuple[tuple[Transition, datetime.timedelta], ...]] = (
    ("Reminder15", datetime.timedelta(minutes=15)),
    ("Reminder30", datetime.timedelta(minutes=30)),
    ("Reminder45", datetime.timedelta(minutes=45)),
)
BREACH: Final[tuple[Transition, datetime.timedelta]] = ("Breached", RECOVERY_SLA)


def recovery_deadline(started_at: datetime.datetime) -> datetime.datetime:
    """``startedAt`` + 1 hour."""
    return started_at + RECOVERY_SLA


def verdict(
    started_at: datetime.datetime, recovered_at: datetime.datetime | None, now: datetime.datetime
) -> SlaVerdict:
    """``Met`` if recovered by the deadline, ``Breached`` if recovered later or still open at it, else ``Pending``."""
    deadline = recovery_deadline(started_at)
    if recovered_at is not None:
        return "Met" if recovered_at <= deadline else "Breached"
    return "Breached" if now >= deadline else "Pending"


def duration_seconds(started_at: datetime.datetime, recovered_at: datetime.datetime) -> int:
    """Whole seconds from start to recovery (never negative), as ``status.durationSeconds``."""
    return max(0, int((recovered_at - started_at).total_seconds()))


@dataclasses.dataclass(frozen=True, slots=True)
class SlaState:
    """The SLA fields of an incident's status at a given time."""

    recovery_deadline: datetime.datetime
    sla_verdict: SlaVerdict
    duration_seconds: int | None


def evaluate(incident: Incident, now: datetime.datetime) -> SlaState:
    """``recoveryDeadline``, ``slaVerdict`` and ``durationSeconds`` of the incident as of ``now``."""
    started_at, recovered_at = incident.spec.started_at, incident.status.recovered_at
    return SlaState(
        recovery_deadline=recovery_deadline(started_at),
        sla_verdict=verdict(started_at, recovered_at, now),
        duration_seconds=None if recovered_at is None else duration_seconds(started_at, recovered_at),
    )


def sent_transitions(incident: Incident) -> set[Transition]:
    """The transitions recorded as delivered in the incident's ``status.notifications``."""
    return {record.transition for record in incident.status.notifications}


def due_transitions(
    incident: Incident, now: datetime.datetime, sent: Iterable[Transition] | None = None
) -> list[Transition]:
    """The notifications due now, in the order to send them; none of ``sent`` (default: the delivered ones).

    Pass as ``sent`` every transition already delivered *or queued* (outbox entries included), so
    that a transition is enqueued once, whatever the number of recipients and channels.
    """
    done = set(sent_transitions(incident) if sent is None else sent)
    started_at, recovered_at = incident.spec.started_at, incident.status.recovered_at
    due: list[Transition] = []
    if "Opened" not in done:
        due.append("Opened")
    breach_time = started_at + BREACH[1]
    breached = recovered_at > breach_time if recovered_at is not None else now >= breach_time
    if recovered_at is None and not breached:
        passed = [name for name, offset in REMINDERS if now >= started_at + offset]
        later_sent = any(name in done for name, _ in REMINDERS[len(passed) :]) or BREACH[0] in done
        if passed and passed[-1] not in done and not later_sent:
            due.append(passed[-1])
    if breached and BREACH[0] not in done:
        due.append(BREACH[0])
    if recovered_at is not None and "Recovered" not in done:
        due.append("Recovered")
    return due


def next_due_at(incident: Incident, sent: Iterable[Transition] | None = None) -> datetime.datetime | None:
    """When the next scheduled notification (a reminder or the breach) falls due; ``None`` when no more will.

    For the operator's timer: sleep until then, then call :func:`due_transitions`. ``Opened`` and
    ``Recovered`` are due at once and are not scheduled.
    """
    if incident.status.recovered_at is not None:
        return None
    done = set(sent_transitions(incident) if sent is None else sent)
    started_at = incident.spec.started_at
    if BREACH[0] in done:
        return None
    last_sent = max((offset for name, offset in REMINDERS if name in done), default=datetime.timedelta(0))
    for _name, offset in (*REMINDERS, BREACH):
        if offset > last_sent:
            return started_at + offset
    return None
