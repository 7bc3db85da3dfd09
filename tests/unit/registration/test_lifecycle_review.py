"""The lifecycle up to the decision: completeness, submission, the review term, the review.

Every ``Sim.run`` also checks idempotency, the status schema and the absence of personal data.
"""

from __future__ import annotations

import datetime

import pytest

from tests.unit.registration.data import APPLICATION
from tests.unit.registration.sim import (
    DAY,
    DEADLINE,
    HOUR,
    REMINDER,
    SUBMITTED,
    UTC,
    Sim,
    approve,
    integrated,
)
from tksh.notify.outbox import compact, mark_delivered
from tksh.registration import messages as m
from tksh.registration.lifecycle import CONDITION_TYPES
from tksh.registration.plan import LifecycleConfig

# --- submission and completeness -----------------------------------------------------------------------------------


def test_a_complete_application_goes_under_review_with_the_deadline() -> None:
    sim = Sim()
    plan = sim.run()
    assert (plan.previous_phase, plan.phase) == (None, "UnderReview")
    assert sim.status["submittedAt"] == "2026-07-21T05:00:00Z"
    assert sim.status["reviewDeadline"] == "2026-07-28T19:00:00Z"
    assert sim.status["missing"] == []
    assert [(e.type, e.reason) for e in plan.events] == [("Normal", "UnderReview")]
    assert "2026-07-28" in plan.events[0].message
    assert plan.notifications == ()
    assert plan.requeue_at == REMINDER
    assert [c["type"] for c in sim.status["conditions"]] == list(CONDITION_TYPES)
    assert all(c["observedGeneration"] == 1 for c in sim.status["conditions"])
    assert sim.cond("Complete") == ("True", "ApplicationComplete")
    assert sim.cond("Reviewed") == ("Unknown", "AwaitingReview")
    assert sim.cond("Ready") == ("False", "UnderReview")
    assert sim.cond("ReviewOverdue") == ("False", "WithinDeadline")


def test_an_incomplete_application_is_refused_with_every_missing_item() -> None:
    spec = dict(APPLICATION, owner=dict(APPLICATION["owner"], bin="140540001232"), functions=["ghost"])
    del spec["endpoint"]
    sim = Sim(spec)
    plan = sim.run()
    assert plan.phase == "Refused"
    assert sim.status["missing"] == ["spec.categories[0]", "spec.categories[1]", "spec.categories[2]",
                                     "spec.categories[3]", "spec.endpoint.url", "spec.functions[0]", "spec.owner.bin"]
    complete = sim.condition("Complete")
    assert (complete["status"], complete["reason"]) == ("False", "ApplicationIncomplete")
    assert "spec.endpoint.url" in complete["message"] and "spec.owner.bin" in complete["message"]
    assert "reviewDeadline" not in sim.status and sim.status["decidedAt"] == "2026-07-21T05:00:00Z"
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "Refused")]
    [mail] = plan.notifications
    assert mail["template"] == m.REFUSED and mail["recipient"] == "b***@d***.kz" and mail["params"]["to"] == "owner"
    body = m.render(mail["template"], mail["params"]).body
    assert "spec.endpoint.url" in body and "spec.owner.bin" in body and "ghost" in body
    assert sim.cond("Reviewed") == ("Unknown", "AwaitingCompleteApplication")
    assert plan.requeue_at is None


def test_without_an_address_the_refusal_is_only_an_event() -> None:
    spec = dict(APPLICATION, owner={k: v for k, v in APPLICATION["owner"].items() if k != "email"})
    sim = Sim(spec)
    plan = sim.run()
    assert plan.phase == "Refused" and plan.notifications == () and sim.status["missing"] == ["spec.owner.email"]
    assert [e.reason for e in plan.events] == ["Refused"]


def test_each_resubmission_of_an_incomplete_application_is_answered() -> None:
    sim = Sim(dict(APPLICATION, functions=[]))
    first = sim.run()
    sim.edit(lambda s: s.update(functions=["ghost"]))
    second = sim.run(SUBMITTED + HOUR)
    assert second.phase == "Refused" and [e.reason for e in second.events] == ["Refused"]
    assert [n["template"] for n in second.notifications] == [m.REFUSED]
    assert second.notifications[0]["id"] != first.notifications[0]["id"]
    assert sim.templates() == [m.REFUSED, m.REFUSED]


def test_fixing_the_application_resubmits_it_with_a_new_term() -> None:
    sim = Sim(dict(APPLICATION, functions=[]))
    sim.run()
    fixed_at = datetime.datetime(2026, 7, 24, 4, 0, tzinfo=UTC)  # Friday 09:00 Almaty
    sim.edit(lambda s: s.update(functions=APPLICATION["functions"]))
    plan = sim.run(fixed_at)
    assert (plan.previous_phase, plan.phase) == ("Refused", "UnderReview")
    assert sim.status["submittedAt"] == "2026-07-24T04:00:00Z"
    assert sim.status["reviewDeadline"] == "2026-07-31T19:00:00Z"  # Mon 27 .. Fri 31 July: end of the 31st
    assert sim.status["missing"] == [] and "decidedAt" not in sim.status
    assert sim.cond("Complete") == ("True", "ApplicationComplete")


def test_a_directory_not_yet_loaded_keeps_the_application_submitted() -> None:
    sim = Sim(directory=None)
    plan = sim.run()
    assert plan.phase == "Submitted" and sim.cond("Complete") == ("Unknown", "DirectoryNotLoaded")
    assert plan.requeue_at == SUBMITTED + datetime.timedelta(minutes=1)
    sim.directory = Sim().directory
    later = sim.run(SUBMITTED + 2 * DAY)
    assert later.phase == "UnderReview"
    assert sim.status["submittedAt"] == "2026-07-21T05:00:00Z"  # the term runs from when it was received
    assert sim.status["reviewDeadline"] == "2026-07-28T19:00:00Z"


def test_an_application_that_becomes_incomplete_under_review_is_refused() -> None:
    sim = Sim()
    sim.run()
    sim.directory = {k: v for k, v in sim.directory.items() if k != "meetings"}  # type: ignore[union-attr]
    plan = sim.run(SUBMITTED + DAY)
    assert (plan.previous_phase, plan.phase) == ("UnderReview", "Refused")
    assert sim.status["missing"] == ["spec.categories[3]", "spec.functions[1]"]


def test_an_edit_under_review_keeps_the_term() -> None:
    sim = Sim()
    sim.run()
    sim.edit(lambda s: s["endpoint"].update(url="https://osi2.example.kz"))
    plan = sim.run(SUBMITTED + DAY)
    assert plan.phase == "UnderReview" and plan.events == ()
    assert sim.status["reviewDeadline"] == "2026-07-28T19:00:00Z"


# --- the review term -------------------------------------------------------------------------------------------------


def test_the_administrator_is_reminded_on_the_fourth_working_day() -> None:
    sim = Sim()
    sim.run()
    assert sim.run(REMINDER - datetime.timedelta(seconds=1)).notifications == ()
    plan = sim.run(REMINDER)
    [mail] = plan.notifications
    assert mail["template"] == m.REVIEW_REMINDER and mail["params"]["to"] == "administrator"
    assert mail["recipient"] == "r***@t***.kz"
    assert mail["params"]["reviewDeadline"] == "2026-07-28T19:00:00Z"
    assert "28.07.2026" in m.render(mail["template"], mail["params"]).body
    assert plan.requeue_at == DEADLINE
    assert sim.run(REMINDER + HOUR).notifications == ()  # once


def test_past_the_deadline_the_review_is_overdue() -> None:
    sim = Sim()
    sim.run()
    sim.run(REMINDER)
    just_before = sim.run(DEADLINE - datetime.timedelta(seconds=1))
    assert sim.cond("ReviewOverdue") == ("False", "WithinDeadline") and just_before.events == ()
    plan = sim.run(DEADLINE)
    assert sim.cond("ReviewOverdue") == ("True", "ReviewDeadlinePassed")
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "ReviewOverdue")]
    assert [n["template"] for n in plan.notifications] == [m.REVIEW_OVERDUE]
    assert "overdue" in sim.status["message"]
    assert plan.requeue_at is None
    assert sim.run(DEADLINE + 3 * DAY).events == ()
    # a decision ends it
    sim.edit(approve)
    sim.run(DEADLINE + 4 * DAY)
    assert sim.cond("ReviewOverdue") == ("False", "NotUnderReview")


def test_no_administrator_mailbox_no_reminder_but_still_the_condition() -> None:
    sim = Sim(config=LifecycleConfig(administrator_mailbox=""))
    sim.run()
    assert sim.run(REMINDER).notifications == ()
    plan = sim.run(DEADLINE)
    assert plan.notifications == () and [e.reason for e in plan.events] == ["ReviewOverdue"]


def test_an_operator_down_past_the_deadline_sends_only_the_overdue_notice() -> None:
    sim = Sim()
    sim.run()
    assert [n["template"] for n in sim.run(DEADLINE + DAY).notifications] == [m.REVIEW_OVERDUE]


# --- the decision --------------------------------------------------------------------------------------------------


def test_approval() -> None:
    sim = Sim()
    sim.run()
    sim.edit(approve)
    plan = sim.run(SUBMITTED + 2 * DAY)
    assert (plan.previous_phase, plan.phase) == ("UnderReview", "Approved")
    assert sim.status["decidedAt"] == "2026-07-23T06:00:00Z"
    assert [(e.type, e.reason) for e in plan.events] == [("Normal", "Approved")]
    [mail] = plan.notifications
    assert mail["template"] == m.APPROVED
    assert "интеграция туралы шарт" in m.render(mail["template"], mail["params"]).body
    assert sim.cond("Reviewed") == ("True", "Approved")
    assert sim.cond("AgreementSigned") == ("False", "AgreementMissing")
    assert sim.cond("Tested") == ("Unknown", "NotStarted")
    assert plan.test is None and plan.requeue_at is None


def test_rejection_with_a_reason() -> None:
    sim = Sim()
    sim.run()
    sim.edit(lambda s: s.update(review={"decision": "Rejected", "reviewer": "Иванов А.",
                                        "reason": "БИН 140540001231 не совпадает с реестром"}))
    plan = sim.run(SUBMITTED + DAY)
    assert (plan.previous_phase, plan.phase) == ("UnderReview", "Rejected")
    assert sim.cond("Reviewed") == ("False", "Rejected")
    [mail] = plan.notifications
    assert mail["template"] == m.REJECTED and "не совпадает с реестром" in mail["params"]["reason"]
    assert "140540001231" not in mail["params"]["reason"]  # the reason is masked like everything stored
    body = m.render(mail["template"], mail["params"]).body
    assert "Себебі:" in body and "Причина:" in body and "Следующий шаг" in body
    # the applicant's edits do not reopen a rejection
    sim.edit(lambda s: s["endpoint"].update(url="https://osi3.example.kz"))
    assert sim.run(SUBMITTED + 2 * DAY).phase == "Rejected"


@pytest.mark.parametrize("review", [
    {"decision": "Rejected", "reviewer": "Иванов А."},
    {"decision": "Rejected", "reviewer": "Иванов А.", "reason": "   "},
    {"decision": "Maybe", "reviewer": "Иванов А."},
])
def test_an_invalid_review_is_reported_and_changes_nothing(review: dict[str, str]) -> None:
    sim = Sim()
    sim.run()
    sim.edit(lambda s: s.update(review=review))
    plan = sim.run(SUBMITTED + DAY)
    assert plan.phase == "UnderReview" and plan.notifications == ()
    assert sim.cond("Reviewed") == ("False", "InvalidReview")
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "InvalidReview")]
    assert sim.status["reviewDeadline"] == "2026-07-28T19:00:00Z"
    # the reminder still comes: the review is still pending
    assert [n["template"] for n in sim.run(REMINDER).notifications] == [m.REVIEW_REMINDER]


def test_a_rejection_changed_to_an_approval() -> None:
    sim = Sim()
    sim.run()
    sim.edit(lambda s: s.update(review={"decision": "Rejected", "reviewer": "И.", "reason": "дубликат"}))
    sim.run(SUBMITTED + DAY)
    sim.edit(approve)
    plan = sim.run(SUBMITTED + 2 * DAY)
    assert (plan.previous_phase, plan.phase) == ("Rejected", "Approved")
    assert sim.templates() == [m.REJECTED, m.APPROVED]


def test_withdrawing_the_decision_reopens_the_review_with_a_new_term() -> None:
    sim = integrated()
    sim.edit(lambda s: s.pop("review"))
    reopened_at = datetime.datetime(2026, 8, 3, 4, 0, tzinfo=UTC)  # Monday
    plan = sim.run(reopened_at)
    assert (plan.previous_phase, plan.phase) == ("Integrated", "UnderReview")
    assert [e.reason for e in plan.events] == ["ReviewWithdrawn", "UnderReview"]
    assert sim.status["submittedAt"] == "2026-08-03T04:00:00Z"
    assert sim.status["reviewDeadline"] == "2026-08-10T19:00:00Z"  # Tue 4 .. Mon 10 August
    assert "decidedAt" not in sim.status and "integratedAt" not in sim.status


def test_keys_forgotten_by_compaction_are_not_derived_again() -> None:
    refused = Sim(dict(APPLICATION, functions=[]))
    refused.run()
    overdue = Sim()
    overdue.run()
    overdue.run(DEADLINE)
    for sim in (refused, overdue):
        [entry] = sim.status["outbox"]
        delivered = mark_delivered(sim.status["outbox"], entry["id"], sim.now)
        much_later = sim.now + 400 * DAY
        sim.status["outbox"] = compact(delivered, much_later, keep=0, retention=45 * DAY)
        assert sim.status["outbox"] == []
        assert sim.run(much_later).notifications == ()
