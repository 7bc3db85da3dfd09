"""The life of a ``DigitalObject`` application (§14–17) as one pure function, :func:`reconcile`.

Given the spec, the current status, the generation, the function directory, the time and the
Administrator's settings, it returns a :class:`~tksh.registration.plan.Plan`: the new phase and
status (conditions, outbox), the Events to post, and when to come back. No Kubernetes, no I/O.

Transitions (``*`` = an e-mail to the owner, ``A`` = to the Administrator's mailbox):

=================  ===========================================  ===========  ===========================
from               input                                        to           notifies
=================  ===========================================  ===========  ===========================
new / Submitted    incomplete (§16)                             Refused      * refused, missing items
new / Submitted    complete                                     UnderReview  (deadline = 5 working days)
Refused            spec changed, still incomplete               Refused      * refused (per generation)
Refused            spec fixed (complete)                        UnderReview  new submittedAt, deadline
UnderReview        4th working day begins                       UnderReview  A reminder
UnderReview        deadline passed                              UnderReview  A overdue; ReviewOverdue
UnderReview        application became incomplete                Refused      * refused
UnderReview        review Rejected without a reason             UnderReview  Reviewed=False InvalidReview
UnderReview        review Rejected with a reason                Rejected     * rejected, the reason
UnderReview        review Approved                              Approved     * approved, next: agreement
Rejected           review changed to Approved                   Approved     * approved
Approved           agreement in effect                          Testing      (the caller runs the test)
Testing            test passed (N probes in a row)              Integrated   * integrated
Testing            test failed                                  Testing      * what failed (once per failure)
Testing            agreement removed / not in effect, never     Approved
                   integrated
Testing/Integr.    30 and 7 days before the agreement ends      (same)       * expiring
Testing/Integr.    agreement expired or removed, had been       Suspended    * suspended
                   integrated
Suspended          agreement in effect again                    Testing      (re-test, then Integrated)
Approved..Susp.    review changed to Rejected with a reason     Rejected     * rejected, the reason
any decided        review made invalid                          (same)       holds; Reviewed=False
any decided        application became incomplete                (same)       holds; Complete=False
any decided        spec.review removed                          UnderReview  (re-opened: new term)
=================  ===========================================  ===========  ===========================

Spec changes after the decision (the decision is not revoked by the applicant):
completeness is still checked at every generation. While the application is incomplete its
progress *holds* (Approved does not start testing, Testing runs no test, Integrated stays
integrated but ``Ready=False``) and ``Complete=False`` lists the items, with a Warning Event.
An invalid review (a rejection without a reason) after a decision holds progress the same way:
the earlier decision stands, ``Reviewed=False/InvalidReview`` says why nothing moves.
A changed endpoint during Testing is tested anew (test results are per generation). A rejected
application stays rejected whatever the applicant edits; to have it looked at again the
Administrator changes or removes ``spec.review`` (removing it re-opens the review with a new
term). An application edited while under review keeps its review term.

Idempotency: outbox ids are deterministic keys (object uid + what happened + the input that
identifies the occurrence: the generation for decisions, the agreement and its end for expiry
notices, the submission time for reminders), so re-running on the same inputs adds nothing;
Events are posted only on a change of phase or condition, or with a notification that is new.
A key is derived only on a transition (computed against the stored status, so a run repeated
after a crash derives it again) or within a window shorter than the outbox's retention (the
reminder until the deadline, an expiry notice until the next one): a key forgotten by
:func:`tksh.notify.outbox.compact` is never derived again.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from typing import Any

from tksh.conditions import get_condition, rfc3339
from tksh.notify.outbox import parse_time
from tksh.registration import messages as m
from tksh.registration.completeness import Completeness, DirectoryEntry, check_application
from tksh.registration.plan import LifecycleConfig, ObjectRef, Plan, TestRequest, TestResult
from tksh.registration.state import (
    APPROVED_LINE,
    CONDITION_TYPES,
    UNDECIDED,
    RunState,
    text,
    time_or_none,
)
from tksh.resources.common import REASON_PATTERN

__all__ = ["CONDITION_TYPES", "reconcile"]

_REASON = re.compile(REASON_PATTERN)
_PROBLEMS_BUDGET = 1000  # params values are at most 1024 characters
_DAY = datetime.timedelta(days=1)
_DIRECTORY_RETRY = datetime.timedelta(minutes=1)


class _Run(RunState):
    """The transitions of one reconcile, stage by stage (see the module description)."""

    def reopen(self) -> None:
        """``spec.review`` was removed after a decision: the application is looked at again."""
        self.event("Normal", "ReviewWithdrawn", "the decision was withdrawn; the application is reviewed again")
        self.phase, self.submitted_at, self.deadline = "Submitted", None, None
        self.decided_at = self.integrated_at = None

    def refuse(self, verdict: Completeness) -> None:
        """§16: an incomplete application is refused, listing every item; each new generation is answered."""
        self.missing = verdict.missing
        self.phase = "Refused"
        self.submitted_at = self.submitted_at or self.now
        self.deadline = None
        if self.old_phase == "Refused" and not self.cond_is_new("Complete", "False", "ApplicationIncomplete"):
            return  # answered already: keys are derived on transitions only (outbox compaction forgets old ones)
        self.decided_at = self.now
        self.event("Warning", "Refused", verdict.message)
        problems, more = verdict.encoded(_PROBLEMS_BUDGET)
        self.notify(m.REFUSED, "owner", ("refused", self.generation), problems=problems, more=str(more))

    def submit(self) -> None:
        """A complete application enters (or stays in) review; a new submission starts a new term."""
        if self.phase != "UnderReview" or self.submitted_at is None:
            if self.phase != "Submitted" or self.submitted_at is None:
                self.submitted_at = self.now
            self.deadline = None
            self.decided_at = None
        self.deadline = self.deadline or self.cal.review_deadline(self.submitted_at)
        self.move("UnderReview", "Normal", "UnderReview",
                  f"the application is complete and under review; decision due by the end of {self.day(self.deadline)}")

    def review(self, review: Mapping[str, Any] | None) -> None:
        """Apply the Administrator's decision; a rejection without a reason is reported, not applied."""
        if review is None:
            return
        decision, reason = review.get("decision"), text(review.get("reason"))
        if decision not in ("Approved", "Rejected") or (decision == "Rejected" and not reason):
            problem = "a rejection needs a reason" if decision == "Rejected" else f"unknown decision {decision!r}"
            if self.cond_is_new("Reviewed", "False", "InvalidReview"):
                self.event("Warning", "InvalidReview", f"spec.review is not a valid decision: {problem}")
            self.cond("Reviewed", "False", "InvalidReview", f"spec.review is not a valid decision: {problem}")
            if self.phase not in UNDECIDED:  # the earlier decision stands, but nothing moves on it
                self.hold = self.hold or "InvalidReview"
            return
        decided = time_or_none(review.get("decidedAt"))
        if decision == "Rejected" and self.phase != "Rejected":
            self.decided_at, self.integrated_at = decided or self.now, None
            self.move("Rejected", "Normal", "Rejected", f"the Administrator rejected the application: {reason}")
            self.notify(m.REJECTED, "owner", ("rejected", self.generation), reason=reason,
                        decidedAt=rfc3339(self.decided_at))
        elif decision == "Approved" and self.phase in ("UnderReview", "Rejected"):
            self.decided_at = decided or self.now
            self.move("Approved", "Normal", "Approved",
                      "the Administrator approved the application; an integration agreement follows")
            self.notify(m.APPROVED, "owner", ("approved", self.generation), decidedAt=rfc3339(self.decided_at))

    def agreement(self) -> tuple[str, str]:
        """Move along the agreement; returns the AgreementSigned condition's (status, reason)."""
        agreement = self.spec.get("agreement")
        agreement = agreement if isinstance(agreement, Mapping) else None
        number = text(agreement.get("number")) if agreement else ""
        start = time_or_none(agreement.get("validFrom") or agreement.get("signedAt")) if agreement else None
        end = time_or_none(agreement.get("validUntil")) if agreement else None
        if not number:
            state, message = "AgreementMissing", "no integration agreement is recorded (spec.agreement)"
        elif start is not None and start > self.now:
            state, message = "AgreementNotYetValid", f"agreement No. {number} takes effect {rfc3339(start)}"
            self.later(start)
        elif end is not None and end <= self.now:
            state, message = "AgreementExpired", f"agreement No. {number} expired {rfc3339(end)}"
        else:
            state = "AgreementInEffect"
            message = f"agreement No. {number} is in effect" + (f" until {rfc3339(end)}" if end else "")
        self.cond("AgreementSigned", "True" if state == "AgreementInEffect" else "False", state, message)
        if state == "AgreementInEffect":
            if self.phase in ("Approved", "Suspended") and not self.hold:
                self.move("Testing", "Normal", "TestingStarted",
                          f"{message}; the integration test runs ({self.config.test_probes} probes in a row)")
            if self.phase in ("Testing", "Integrated") and end is not None:
                self.expiry_notices(number, end)
        elif self.phase in ("Testing", "Integrated") and self.integrated_at is not None:
            self.move("Suspended", "Warning", "Suspended", f"the integration is suspended: {message}")
            reason = "AgreementWithdrawn" if state == "AgreementMissing" else state
            parts: tuple[object, ...] = ("suspended", state, number, agreement.get("validUntil") if agreement else "")
            if state == "AgreementMissing":
                parts = (*parts, self.generation)
            self.notify(m.SUSPENDED, "owner", parts, reason=reason, agreement=number,
                        validUntil=rfc3339(end) if end else "")
        elif self.phase == "Testing":
            self.move("Approved", "Normal", "AwaitingAgreement", f"the test waits for an agreement: {message}")
        return ("True" if state == "AgreementInEffect" else "False"), state

    def expiry_notices(self, number: str, end: datetime.datetime) -> None:
        """Tell the owner 30 and 7 days ahead (only the latest notice whose time has come)."""
        due = [d for d in sorted(self.config.expiry_notices) if self.now >= end - d * _DAY]
        self.later(*(end - d * _DAY for d in self.config.expiry_notices), end)
        if not due:
            return
        days = due[0]
        left = max(math.ceil((end - self.now) / _DAY), 1)
        if self.notify(m.AGREEMENT_EXPIRING, "owner", ("expiring", days, number, rfc3339(end)),
                       agreement=number, validUntil=rfc3339(end), days=str(left), notice=str(days)):
            self.event("Warning", "AgreementExpiring", f"agreement No. {number} expires {rfc3339(end)}, in {left} "
                       f"day(s): the owner gets the {days}-day notice")

    def testing(self, result: TestResult | None) -> None:
        """§17: a passed test integrates; a failure keeps Testing and tells the owner once per distinct failure."""
        if self.hold:
            return
        entered = self.old_phase != "Testing"
        if result is not None and not entered and result.generation in (None, self.generation):
            if result.passed:
                self.integrated_at = self.now
                self.cond("Tested", "True", result.reason if _REASON.match(result.reason) else "TestPassed",
                          f"{self.config.test_probes} probes in a row passed")
                self.move("Integrated", "Normal", "Integrated", "the integration test passed; the object is integrated")
                self.notify(m.INTEGRATED, "owner", ("integrated", self.generation),
                            integratedAt=rfc3339(self.now))
                return
            reason = result.reason if _REASON.match(result.reason) else "TestFailed"
            detail = result.detail or "the integration test failed"
            self.cond("Tested", "False", reason, detail)
            last = get_condition(self.old_conditions, "Tested") or {}
            seen = (last.get("status"), last.get("reason"), last.get("message"), last.get("observedGeneration"))
            if seen != ("False", reason, self.conds["Tested"][2], self.generation):  # a new failure
                self.event("Warning", "TestFailed", f"the integration test failed: {detail}")
                self.notify(m.TEST_FAILED, "owner", ("test-failed", self.generation, reason, detail),
                            detail=detail, probes=str(self.config.test_probes), testedAt=rfc3339(self.now))
            retry_at = self.now + self.config.test_retry
        else:
            old = get_condition(self.old_conditions, "Tested")
            if not entered and old is not None and old.get("observedGeneration") == self.generation:
                self.keep_old("Tested")
                tested_at = parse_time(old.get("lastTransitionTime")) or self.now
                retry_at = max(self.now, tested_at + self.config.test_retry) if old["status"] == "False" else self.now
            else:
                self.cond("Tested", "Unknown", "TestPending",
                          f"waiting for {self.config.test_probes} probes in a row within {self.config.test_time_limit}")
                retry_at = self.now
        self.test = TestRequest(self.config.test_probes, self.config.test_time_limit, self.generation, retry_at)
        self.later(retry_at)

    def review_term(self) -> None:
        """§16's 5 working days: the reminder on the 4th, the overdue condition and notice after the end."""
        assert self.submitted_at is not None and self.deadline is not None
        reminder = self.cal.reminder_due(self.submitted_at)
        params = {"submittedAt": rfc3339(self.submitted_at), "reviewDeadline": rfc3339(self.deadline)}
        if self.now >= self.deadline:
            message = f"the review deadline (end of {self.day(self.deadline)}) has passed without a decision"
            if self.cond_is_new("ReviewOverdue", "True", "ReviewDeadlinePassed"):
                self.event("Warning", "ReviewOverdue", message)
                self.notify(m.REVIEW_OVERDUE, "administrator", ("overdue", rfc3339(self.submitted_at)), **params)
            self.cond("ReviewOverdue", "True", "ReviewDeadlinePassed", message)
        else:
            due = f"decision due by the end of {self.day(self.deadline)}"
            self.cond("ReviewOverdue", "False", "WithinDeadline", due)
            if self.now >= reminder:
                self.notify(m.REVIEW_REMINDER, "administrator", ("reminder", rfc3339(self.submitted_at)), **params)
            self.later(reminder, self.deadline)


def reconcile(
    spec: Mapping[str, Any],
    status: Mapping[str, Any] | None,
    generation: int,
    directory: Mapping[str, DirectoryEntry | Mapping[str, Any]] | None,
    now: datetime.datetime,
    config: LifecycleConfig,
    *,
    ref: ObjectRef,
    test: TestResult | None = None,
    false_information: str | None = None,
) -> Plan:
    """Where the application ``spec`` with ``status`` stands at ``now``, and what to do about it.

    ``directory``: the function directory by name (``None`` while it is not loaded: the application
    waits in ``Submitted``). ``test``: the result of the integration test the previous plan asked for.
    ``false_information``: the grant named by the object's ``tksh.kz/false-information`` annotation (§20.6),
    reported as the condition ``FalseInformation``.
    Pure: the same inputs give the same plan; a plan's status fed back in gives no new notification.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    run = _Run(spec, status or {}, generation, now, config, ref)
    run.false_information = false_information
    verdict = check_application(spec, directory) if directory is not None else None
    review = spec.get("review") if isinstance(spec.get("review"), Mapping) else None
    if run.phase not in UNDECIDED and review is None:
        run.reopen()
    if run.phase in UNDECIDED:
        if verdict is None:
            run.phase, run.submitted_at = "Submitted", run.submitted_at or now
            run.later(now + _DIRECTORY_RETRY)
            return run.plan(verdict, None)
        if not verdict.complete:
            run.refuse(verdict)
            return run.plan(verdict, None)
        run.submit()
    else:
        run.hold = "ApplicationIncomplete" if verdict is not None and not verdict.complete else None
        if run.hold and run.cond_is_new("Complete", "False", "ApplicationIncomplete"):
            run.event("Warning", "ApplicationIncomplete", f"the decided application became incomplete: "
                      f"{'; '.join(p.text('en') for p in verdict.problems) if verdict else ''}")
    run.review(review)
    agreement = run.agreement() if run.phase in APPROVED_LINE else None
    if run.phase == "Testing":
        run.testing(test)
    if run.phase == "UnderReview":
        run.review_term()
    return run.plan(verdict, agreement)
