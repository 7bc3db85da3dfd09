"""The inputs and the output of the registration lifecycle (``tksh.registration.lifecycle``).

Kept apart from the state machine so the glue (kopf handlers, CLI, tests) can build inputs and
read plans without reading the transitions.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any, Literal

from tksh.notify.outbox import Entry, next_attempt_at
from tksh.registration.calendar import DEFAULT_TIMEZONE

__all__ = [
    "EventSpec",
    "LifecycleConfig",
    "ObjectRef",
    "Plan",
    "TestRequest",
    "TestResult",
    "recipient_address",
]


@dataclasses.dataclass(frozen=True)
class LifecycleConfig:
    """The Administrator's settings the lifecycle depends on."""

    timezone: str = DEFAULT_TIMEZONE
    """The Administrator's timezone: working days and deadlines are counted in it."""
    administrator_mailbox: str = ""
    """Where review reminders and overdue notices go; empty: no such e-mails (the Events remain)."""
    test_probes: int = 3
    """The integration test passes after this many consecutive successful probes (§17)."""
    test_time_limit: datetime.timedelta = datetime.timedelta(minutes=10)
    """...within this time, or it fails."""
    test_retry: datetime.timedelta = datetime.timedelta(minutes=15)
    """How long after a failed test the next one runs (the owner may be fixing the endpoint)."""
    expiry_notices: tuple[int, ...] = (30, 7)
    """Days before the agreement's end at which the owner is told it expires."""

    def __post_init__(self) -> None:
        if self.test_probes < 1 or self.test_time_limit <= datetime.timedelta(0):
            raise ValueError("test_probes must be at least 1 and test_time_limit positive")
        if any(d < 1 for d in self.expiry_notices):
            raise ValueError("expiry_notices are days before the end, each at least 1")


@dataclasses.dataclass(frozen=True)
class ObjectRef:
    """Which ``DigitalObject`` is reconciled: ``uid`` makes idempotency keys unique across re-created objects."""

    uid: str
    name: str
    namespace: str | None = None


@dataclasses.dataclass(frozen=True)
class TestResult:
    """The outcome of an integration test run by the caller (``probes`` consecutive probes within a limit)."""

    __test__ = False  # not a pytest test class

    passed: bool
    reason: str = ""
    """CamelCase, e.g. ``ProbeTimeout``, ``UnexpectedStatus``; defaults to ``TestPassed``/``TestFailed``."""
    detail: str = ""
    """What failed, for people (e.g. ``probe 2 of 3: HTTP 503 from /healthz``); no personal data."""
    generation: int | None = None
    """The spec generation the test ran against; a result for another generation is ignored (stale)."""


@dataclasses.dataclass(frozen=True)
class TestRequest:
    """The plan asks the caller to run the integration test, then reconcile again with its result."""

    __test__ = False  # not a pytest test class

    probes: int
    time_limit: datetime.timedelta
    generation: int
    not_before: datetime.datetime
    """Run it at or after this instant (now, or after ``test_retry`` when it just failed)."""


@dataclasses.dataclass(frozen=True)
class EventSpec:
    """A Kubernetes Event to post on the object. The message never carries personal data."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the lifecycle concluded: write ``status`` (one merge patch), post ``events``, and come back.

    ``status`` holds every status field the lifecycle owns (``phase``, ``submittedAt``,
    ``reviewDeadline``, ``decidedAt``, ``integratedAt``, ``missing``, ``message``,
    ``observedGeneration``, ``conditions``, ``outbox``); a ``None`` value deletes the field.
    ``notifications`` are the outbox entries added by this run (already in ``status["outbox"]``).
    """

    phase: str
    previous_phase: str | None
    status: dict[str, Any]
    events: tuple[EventSpec, ...]
    notifications: tuple[Entry, ...]
    requeue_at: datetime.datetime | None
    """When the lifecycle itself must be re-evaluated (reminder, deadline, agreement dates, test retry)."""
    test: TestRequest | None

    @property
    def changed_phase(self) -> bool:
        return self.phase != self.previous_phase

    @property
    def outbox(self) -> list[Entry]:
        return list(self.status.get("outbox") or [])

    @property
    def wake_at(self) -> datetime.datetime | None:
        """The earlier of :attr:`requeue_at` and the next due outbox delivery."""
        times = [t for t in (self.requeue_at, next_attempt_at(self.outbox)) if t is not None]
        return min(times, default=None)


def recipient_address(entry: Mapping[str, Any], spec: Mapping[str, Any], config: LifecycleConfig) -> str | None:
    """The real address of an outbox entry of the lifecycle, read at send time (never stored).

    Entries name their recipient by role in ``params["to"]``: ``owner`` is ``spec.owner.email`` as
    it is *now* (a corrected address receives the pending message), ``administrator`` the
    configured mailbox. ``None`` when there is no address (a permanent failure for the sender).
    """
    role = (entry.get("params") or {}).get("to")
    if role == "owner":
        owner = spec.get("owner")
        email = owner.get("email") if isinstance(owner, Mapping) else None
        return email.strip() if isinstance(email, str) and email.strip() else None
    if role == "administrator":
        return config.administrator_mailbox.strip() or None
    return None
