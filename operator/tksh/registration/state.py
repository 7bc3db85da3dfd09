"""The bookkeeping of one lifecycle run: recording transitions and reporting them as a status.

Internal to ``tksh.registration.lifecycle`` (which holds the transitions): conditions derived per
phase, the status summary, Events posted only on a change, notifications enqueued under
deterministic keys, and the plan.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any

from tksh.conditions import ConditionStatus, get_condition, rfc3339, set_condition
from tksh.logs import mask_text
from tksh.notify.outbox import Entry, enqueue_all, find, make_key, new_entry, parse_time
from tksh.registration.calendar import WorkingCalendar, calendar_for
from tksh.registration.completeness import Completeness
from tksh.registration.plan import EventSpec, LifecycleConfig, ObjectRef, Plan, TestRequest
from tksh.resources.common import EMAIL_PATTERN
from tksh.resources.digitalobject import DIGITAL_OBJECT_PHASES

__all__ = ["APPROVED_LINE", "CONDITION_TYPES", "UNDECIDED", "RunState", "text", "time_or_none"]

CONDITION_TYPES = ("Complete", "Reviewed", "AgreementSigned", "Tested", "Ready", "ReviewOverdue")
UNDECIDED = frozenset({None, "Submitted", "Refused", "UnderReview"})
"""Phases before a decision: completeness decides (refuse, or review)."""
APPROVED_LINE = frozenset({"Approved", "Testing", "Integrated", "Suspended"})
"""Phases after an approval: the agreement decides."""
_EMAIL = re.compile(EMAIL_PATTERN)


def text(value: object) -> str:
    """A string field's value, stripped ("" for anything else)."""
    return value.strip() if isinstance(value, str) else ""


def time_or_none(value: object) -> datetime.datetime | None:
    """A timestamp written by a person (``spec.review.decidedAt``...); ``None`` if absent or unreadable."""
    try:
        return parse_time(value) if isinstance(value, str) else None
    except ValueError:
        return None


class RunState:
    """One reconcile's state: the inputs read once, the outcome accumulated, the plan built from it.

    The transitions themselves are in ``tksh.registration.lifecycle``; this class records what they
    decide (phase, times, conditions, Events, outbox entries, wake-up times) and reports it.
    """

    def __init__(
        self,
        spec: Mapping[str, Any],
        status: Mapping[str, Any],
        generation: int,
        now: datetime.datetime,
        config: LifecycleConfig,
        ref: ObjectRef,
    ) -> None:
        self.spec, self.status, self.generation, self.now, self.config, self.ref = (
            spec, status, generation, now, config, ref)
        self.cal: WorkingCalendar = calendar_for(config.timezone)
        known = status.get("phase") in DIGITAL_OBJECT_PHASES
        self.old_phase: str | None = status["phase"] if known else None  # an unknown phase starts afresh
        self.phase: str | None = self.old_phase
        self.old_conditions: list[dict[str, Any]] = list(status.get("conditions") or [])
        self.old_outbox: list[Entry] = list(status.get("outbox") or [])
        self.submitted_at = parse_time(status.get("submittedAt"))
        self.deadline = parse_time(status.get("reviewDeadline"))
        self.decided_at = parse_time(status.get("decidedAt"))
        self.integrated_at = parse_time(status.get("integratedAt"))
        self.missing: list[str] = []
        self.conds: dict[str, tuple[ConditionStatus, str, str]] = {}
        self.events: list[EventSpec] = []
        self.entries: list[Entry] = []
        self.wake: list[datetime.datetime] = []
        self.test: TestRequest | None = None
        self.false_information: str | None = None  # the grant whose §20.6 finding flagged this application
        self.hold: str | None = None  # why a decided application's progress holds (a condition reason)
        owner = spec.get("owner")
        self.owner_email = text(owner.get("email")) if isinstance(owner, Mapping) else ""

    # --- helpers -----------------------------------------------------------------------------------------------------

    def cond(self, type: str, status: ConditionStatus, reason: str, message: str = "") -> None:
        """Decide condition ``type`` for this run (the message is masked: it ends up in the status)."""
        self.conds[type] = (status, reason, mask_text(message))

    def cond_is_new(self, type: str, status: str, reason: str) -> bool:
        """Whether setting ``type`` to ``status``/``reason`` at this generation changes what was reported."""
        old = get_condition(self.old_conditions, type)
        return old is None or (old.get("status"), old.get("reason"), old.get("observedGeneration")) != (
            status, reason, self.generation)

    def event(self, type: str, reason: str, message: str) -> None:
        """Post an Event (masked message). Callers post only on a change, so re-runs post nothing."""
        self.events.append(EventSpec("Warning" if type == "Warning" else "Normal", reason, mask_text(message)))

    def move(self, phase: str, event_type: str, reason: str, message: str) -> None:
        """Go to ``phase``, with an Event if that is a change."""
        if phase != self.phase:
            self.event(event_type, reason, message)
        self.phase = phase

    def notify(self, template: str, role: str, key_parts: tuple[object, ...], **params: str) -> bool:
        """Enqueue an e-mail (to ``owner`` or ``administrator``); ``True`` if its key is new."""
        address = self.owner_email if role == "owner" else self.config.administrator_mailbox.strip()
        if not _EMAIL.match(address):
            return False
        key = make_key(template, self.ref.uid, role, *key_parts)
        if find(self.old_outbox, key) is not None or any(e["id"] == key for e in self.entries):
            return False
        base = {"to": role, "name": self.ref.name, "timezone": self.config.timezone}
        if self.ref.namespace:
            base["namespace"] = self.ref.namespace
        params = {k: mask_text(v) for k, v in params.items()}
        self.entries.append(new_entry(id=key, channel="email", template=template, now=self.now,
                                      recipient=address, params=base | params))
        return True

    def later(self, *moments: datetime.datetime | None) -> None:
        """Ask to be reconciled again at each future instant of ``moments``."""
        self.wake.extend(t for t in moments if t is not None and t > self.now)

    def day(self, deadline: datetime.datetime) -> str:
        """The last day of a term ending at ``deadline``, for people: ``2026-07-28 (Asia/Almaty)``."""
        return f"{self.cal.last_day_of_term(deadline):%Y-%m-%d} ({self.config.timezone})"

    # --- the plan ---------------------------------------------------------------------------------------------------

    def keep_old(self, type: str) -> bool:
        """Carry the previously reported condition ``type`` over unchanged (if there is one)."""
        old = get_condition(self.old_conditions, type)
        if old is None or old.get("status") not in ("True", "False", "Unknown"):
            return False
        self.conds[type] = (old["status"], str(old.get("reason") or "Unknown"), str(old.get("message") or ""))
        return True

    def summary(self, verdict: Completeness | None) -> str:
        """``status.message`` and the ``Ready`` message: where the application stands, in words."""
        phase = self.phase or "Submitted"
        if phase == "Submitted":
            return "submitted; waiting for the function directory to check it"
        if phase == "Refused" and verdict is not None:
            return "refused: " + verdict.message
        if self.hold == "InvalidReview":
            return f"{phase}, on hold: {self.conds['Reviewed'][2]}"
        if self.hold and verdict is not None:
            return f"{phase}, on hold: " + verdict.message
        if phase == "UnderReview" and self.deadline is not None:
            late = " (overdue)" if self.now >= self.deadline else ""
            return f"under review; decision due by the end of {self.day(self.deadline)}{late}"
        if phase in ("Approved", "Suspended"):
            return f"{phase.lower()}: {self.conds['AgreementSigned'][2]}"
        if phase == "Testing":
            return f"testing: {self.conds['Tested'][2]}"
        if phase == "Integrated":
            since = f" since {rfc3339(self.integrated_at)}" if self.integrated_at else ""
            return f"integrated with the central system{since}; monitored continuously"
        return "rejected by the Administrator" if phase == "Rejected" else phase

    def conditions(self, verdict: Completeness | None, agreement: tuple[str, str] | None) -> list[dict[str, Any]]:
        """All six conditions for the final phase: those the stages decided, the rest derived from the phase."""
        phase = self.phase or "Submitted"
        if verdict is None:
            if not self.keep_old("Complete"):
                self.cond("Complete", "Unknown", "DirectoryNotLoaded", "the function directory is not loaded yet")
        elif verdict.complete:
            self.cond("Complete", "True", "ApplicationComplete", verdict.message)
        else:
            self.cond("Complete", "False", "ApplicationIncomplete", verdict.message)
        if "Reviewed" not in self.conds:
            if phase in APPROVED_LINE:
                self.cond("Reviewed", "True", "Approved", "the Administrator approved the application")
            elif phase == "Rejected":
                self.cond("Reviewed", "False", "Rejected", "the Administrator rejected the application")
            elif phase == "UnderReview":
                self.cond("Reviewed", "Unknown", "AwaitingReview", "waiting for the Administrator's decision")
            else:
                self.cond("Reviewed", "Unknown", "AwaitingCompleteApplication",
                          "an application is reviewed once it is complete")
        if agreement is None:
            self.cond("AgreementSigned", "False", "NotApproved", "an integration agreement follows an approval")
        if "Tested" not in self.conds:
            if phase == "Integrated":
                self.cond("Tested", "True", "TestPassed", f"{self.config.test_probes} probes in a row passed")
            elif not (phase in ("Testing", "Suspended") and self.keep_old("Tested")):
                self.cond("Tested", "Unknown", "NotStarted", "the test runs once an agreement is in effect")
        self.conds.setdefault("ReviewOverdue", ("False", "NotUnderReview", "no review is pending"))
        summary = self.summary(verdict)
        if phase == "Integrated" and not self.hold:
            self.cond("Ready", "True", "Integrated", summary)
        else:
            self.cond("Ready", "False", self.hold or phase, summary)
        if self.false_information:  # shown only once flagged (tksh.kz/false-information, by the grant handlers)
            self.cond("FalseInformation", "True", "FalseInformationFound",
                      f"access grant {self.false_information} was terminated on §20.6: false information in the "
                      "subject's application; review this application")
        elif get_condition(self.old_conditions, "FalseInformation") is not None:
            self.cond("FalseInformation", "False", "FlagRemoved",
                      "the tksh.kz/false-information annotation was removed")
        result = self.old_conditions
        for type in (*CONDITION_TYPES, "FalseInformation"):
            if type not in self.conds:
                continue
            status, reason, message = self.conds[type]
            result = set_condition(result, type, status, reason, message,
                                   observed_generation=self.generation, now=self.now)
        return result

    def plan(self, verdict: Completeness | None, agreement: tuple[str, str] | None) -> Plan:
        """The status patch (``None`` deletes a field), Events, new outbox entries and wake-up time."""
        phase = self.phase or "Submitted"
        conditions = self.conditions(verdict, agreement)
        status: dict[str, Any] = {
            "phase": phase,
            "observedGeneration": self.generation,
            "submittedAt": rfc3339(self.submitted_at) if self.submitted_at else None,
            "reviewDeadline": rfc3339(self.deadline) if self.deadline else None,
            "decidedAt": rfc3339(self.decided_at) if self.decided_at else None,
            "integratedAt": rfc3339(self.integrated_at) if self.integrated_at else None,
            "missing": self.missing,
            "message": self.conds["Ready"][2][:32768],
            "conditions": conditions,
            "outbox": enqueue_all(self.old_outbox, self.entries),
        }
        return Plan(phase=phase, previous_phase=self.old_phase, status=status, events=tuple(self.events),
                    notifications=tuple(self.entries), requeue_at=min(self.wake, default=None), test=self.test)
