"""The 1-hour recovery SLA (§34.2): deadline, reminders at T+15/30/45, breach at T+60, verdicts, idempotency."""

from __future__ import annotations

import datetime

import pytest

from tksh.monitoring import due_transitions, duration_seconds, evaluate, next_due_at, recovery_deadline, verdict
from tksh.resources.incident import Incident, Transition

T = datetime.datetime(2026, 7, 12, 9, 0, tzinfo=datetime.UTC)
M = datetime.timedelta(minutes=1)


def incident(recovered: float | None = None, delivered: tuple[Transition, ...] = ()) -> Incident:
    return Incident.model_validate(
        {
            "metadata": {"name": "obj-20260712-0900", "namespace": "akimat"},
            "spec": {
                "target": {"kind": "DigitalObject", "name": "obj", "namespace": "akimat"},
                "startedAt": T.isoformat(),
                "detectedAt": (T + 4 * datetime.timedelta(seconds=1)).isoformat(),
                "failure": {"class": "timeout", "message": "no answer within 5 s"},
            },
            "status": {
                "recoveredAt": None if recovered is None else (T + recovered * M).isoformat(),
                "notifications": [
                    {"channel": "email", "transition": name, "deliveredAt": T.isoformat()} for name in delivered
                ],
            },
        }
    )


def test_the_deadline_is_an_hour_after_the_start() -> None:
    assert recovery_deadline(T) == T + 60 * M
    assert evaluate(incident(), T).recovery_deadline == T + 60 * M


@pytest.mark.parametrize(
    ("minutes", "sent", "due"),
    [
        (0, (), ["Opened"]),
        (0, ("Opened",), []),
        (14.9, ("Opened",), []),
        (15, ("Opened",), ["Reminder15"]),
        (20, ("Opened", "Reminder15"), []),
        (30, ("Opened", "Reminder15"), ["Reminder30"]),
        (45, ("Opened", "Reminder15", "Reminder30"), ["Reminder45"]),
        (59, ("Opened", "Reminder15", "Reminder30", "Reminder45"), []),
        (60, ("Opened", "Reminder15", "Reminder30", "Reminder45"), ["Breached"]),
        (90, ("Opened", "Reminder15", "Reminder30", "Reminder45", "Breached"), []),
        (50, (), ["Opened", "Reminder45"]),  # missed reminders are not sent in a burst: the latest only
        (50, ("Opened", "Reminder15"), ["Reminder45"]),
        (70, ("Opened",), ["Breached"]),  # past the deadline: the breach, no stale reminder
    ],
)
def test_what_is_due_while_down(minutes: float, sent: tuple[Transition, ...], due: list[Transition]) -> None:
    assert due_transitions(incident(), T + minutes * M, sent=sent) == due
    assert due_transitions(incident(delivered=sent), T + minutes * M) == due  # from status.notifications


@pytest.mark.parametrize(
    ("recovered", "now", "sent", "due"),
    [
        (10, 10, ("Opened",), ["Recovered"]),
        (10, 50, ("Opened",), ["Recovered"]),  # no reminders once recovered
        (40, 40, ("Opened", "Reminder15", "Reminder30"), ["Recovered"]),
        (60, 60, ("Opened", "Reminder15", "Reminder30", "Reminder45"), ["Recovered"]),  # at the deadline: met
        (75, 75, ("Opened", "Reminder15", "Reminder30", "Reminder45", "Breached"), ["Recovered"]),
        (75, 80, ("Opened", "Reminder45"), ["Breached", "Recovered"]),  # a breach noticed late is still told
        (5, 5, (), ["Opened", "Recovered"]),  # opened and recovered before anything was sent
        (10, 10, ("Opened", "Recovered"), []),
    ],
)
def test_what_is_due_once_recovered(
    recovered: float, now: float, sent: tuple[Transition, ...], due: list[Transition]
) -> None:
    assert due_transitions(incident(recovered), T + now * M, sent=sent) == due


def test_due_transitions_are_idempotent_over_a_whole_life() -> None:
    """Ticking every minute and sending what is due sends each notification once, in order."""
    sent: list[Transition] = []
    for minute in range(0, 120):
        recovered = 95 if minute >= 95 else None
        for name in due_transitions(incident(recovered), T + minute * M, sent=sent):
            assert name not in sent
            sent.append(name)
        assert due_transitions(incident(recovered), T + minute * M, sent=sent) == []
    assert sent == ["Opened", "Reminder15", "Reminder30", "Reminder45", "Breached", "Recovered"]


@pytest.mark.parametrize(
    ("recovered", "now", "expected"),
    [
        (None, 0, "Pending"),
        (None, 59.99, "Pending"),
        (None, 60, "Breached"),
        (30, 90, "Met"),
        (60, 90, "Met"),
        (60.01, 90, "Breached"),
    ],
)
def test_the_verdict(recovered: float | None, now: float, expected: str) -> None:
    recovered_at = None if recovered is None else T + recovered * M
    assert verdict(T, recovered_at, T + now * M) == expected


def test_evaluate_fills_the_status_fields() -> None:
    state = evaluate(incident(recovered=42.5), T + 50 * M)
    assert (state.sla_verdict, state.duration_seconds) == ("Met", 2550)
    state = evaluate(incident(), T + 61 * M)
    assert (state.sla_verdict, state.duration_seconds) == ("Breached", None)
    assert duration_seconds(T, T - M) == 0


@pytest.mark.parametrize(
    ("sent", "recovered", "expected"),
    [
        ((), None, 15),
        (("Opened", "Reminder15"), None, 30),
        (("Opened", "Reminder15", "Reminder30", "Reminder45"), None, 60),
        (("Opened", "Reminder45"), None, 60),
        (("Opened", "Breached"), None, None),
        (("Opened",), 10, None),
    ],
)
def test_when_the_next_notification_falls_due(
    sent: tuple[Transition, ...], recovered: float | None, expected: float | None
) -> None:
    due = next_due_at(incident(recovered), sent=sent)
    assert due == (None if expected is None else T + expected * M)
