"""The lifecycle after the decision: agreement, integration test, expiry, suspension, later edits.

Every ``Sim.run`` also checks idempotency, the status schema and the absence of personal data.
"""

from __future__ import annotations

import datetime

from tests.unit.registration.data import APPLICATION
from tests.unit.registration.sim import (
    AGREEMENT,
    AGREEMENT_END,
    DAY,
    HOUR,
    SUBMITTED,
    UTC,
    Sim,
    approve,
    approved,
    in_testing,
    integrated,
    sign,
)
from tksh.registration import messages as m
from tksh.registration.lifecycle import reconcile
from tksh.registration.plan import LifecycleConfig, ObjectRef, TestResult, recipient_address

# --- agreement and test --------------------------------------------------------------------------------------------


def test_an_agreement_starts_the_test() -> None:
    sim = approved()
    sim.edit(sign)
    at = SUBMITTED + 3 * DAY
    plan = sim.run(at)
    assert (plan.previous_phase, plan.phase) == ("Approved", "Testing")
    assert [e.reason for e in plan.events] == ["TestingStarted"]
    assert sim.cond("AgreementSigned") == ("True", "AgreementInEffect")
    assert sim.cond("Tested") == ("Unknown", "TestPending")
    assert plan.test is not None and plan.test.probes == 3 and plan.test.generation == sim.generation
    assert plan.test.not_before == at
    assert plan.requeue_at == AGREEMENT_END - 30 * DAY
    assert plan.notifications == ()


def test_an_agreement_not_yet_in_effect_waits() -> None:
    sim = approved()
    starts = datetime.datetime(2026, 8, 1, 0, 0, tzinfo=UTC)
    sim.edit(lambda s: s.update(agreement=dict(AGREEMENT, validFrom="2026-08-01T00:00:00Z")))
    plan = sim.run(SUBMITTED + 3 * DAY)
    assert plan.phase == "Approved" and sim.cond("AgreementSigned") == ("False", "AgreementNotYetValid")
    assert plan.requeue_at == starts
    assert sim.run(starts).phase == "Testing"


def test_a_failed_test_stays_testing_and_tells_the_owner_what_failed_once() -> None:
    sim = in_testing()
    at = SUBMITTED + 3 * DAY + HOUR
    failure = TestResult(False, "UnexpectedStatus", "probe 2 of 3: HTTP 503 from /healthz", generation=sim.generation)
    plan = sim.run(at, test=failure)
    assert plan.phase == "Testing"
    assert sim.cond("Tested") == ("False", "UnexpectedStatus")
    assert sim.condition("Tested")["message"] == "probe 2 of 3: HTTP 503 from /healthz"
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "TestFailed")]
    [mail] = plan.notifications
    assert mail["template"] == m.TEST_FAILED and mail["params"]["detail"] == "probe 2 of 3: HTTP 503 from /healthz"
    assert "HTTP 503" in m.render(mail["template"], mail["params"]).body
    assert plan.test is not None and plan.test.not_before == at + CONFIG_RETRY
    # the same failure again: no new mail, no new event
    again = sim.run(at + CONFIG_RETRY, test=failure)
    assert again.notifications == () and again.events == ()
    # another failure: the owner hears about it
    other = TestResult(False, "ProbeTimeout", "probe 1 of 3: no answer within 5 s", generation=sim.generation)
    assert [n["template"] for n in sim.run(at + 2 * CONFIG_RETRY, test=other).notifications] == [m.TEST_FAILED]


CONFIG_RETRY = LifecycleConfig().test_retry


def test_a_stale_test_result_is_ignored() -> None:
    sim = in_testing()
    stale = TestResult(True, generation=sim.generation - 1)
    plan = sim.run(SUBMITTED + 3 * DAY + HOUR, test=stale)
    assert plan.phase == "Testing" and sim.cond("Tested") == ("Unknown", "TestPending")


def test_a_passed_test_integrates() -> None:
    sim = in_testing()
    at = SUBMITTED + 3 * DAY + HOUR
    plan = sim.run(at, test=TestResult(True, generation=sim.generation))
    assert (plan.previous_phase, plan.phase) == ("Testing", "Integrated")
    assert sim.status["integratedAt"] == "2026-07-24T06:00:00Z"
    assert sim.cond("Tested") == ("True", "TestPassed") and sim.cond("Ready") == ("True", "Integrated")
    assert [n["template"] for n in plan.notifications] == [m.INTEGRATED]
    assert [e.reason for e in plan.events] == ["Integrated"]
    assert plan.test is None
    assert sim.templates() == [m.APPROVED, m.INTEGRATED]


def test_everything_at_once_on_creation() -> None:
    spec = dict(APPLICATION)
    approve(spec)
    sign(spec)
    sim = Sim(spec, now=datetime.datetime(2026, 7, 24, 5, 0, tzinfo=UTC))
    plan = sim.run()
    assert plan.phase == "Testing"
    assert [e.reason for e in plan.events] == ["UnderReview", "Approved", "TestingStarted"]
    assert [n["template"] for n in plan.notifications] == [m.APPROVED]


# --- the agreement's end ---------------------------------------------------------------------------------------------


def test_notices_30_and_7_days_before_the_end_then_suspension() -> None:
    sim = integrated()
    assert sim.run(AGREEMENT_END - 31 * DAY).notifications == ()
    plan = sim.run(AGREEMENT_END - 30 * DAY)
    [mail] = plan.notifications
    assert mail["template"] == m.AGREEMENT_EXPIRING and mail["params"]["days"] == "30"
    assert [e.reason for e in plan.events] == ["AgreementExpiring"]
    assert plan.requeue_at == AGREEMENT_END - 7 * DAY
    assert sim.run(AGREEMENT_END - 20 * DAY).notifications == ()
    plan = sim.run(AGREEMENT_END - 7 * DAY + HOUR)
    [mail] = plan.notifications
    assert mail["params"]["days"] == "7"
    assert "7 дней" in m.render(mail["template"], mail["params"]).subject
    assert plan.requeue_at == AGREEMENT_END
    plan = sim.run(AGREEMENT_END)
    assert (plan.previous_phase, plan.phase) == ("Integrated", "Suspended")
    assert sim.cond("AgreementSigned") == ("False", "AgreementExpired") and sim.cond("Ready") == ("False", "Suspended")
    assert sim.cond("Tested") == ("True", "TestPassed")
    [mail] = plan.notifications
    assert mail["template"] == m.SUSPENDED and mail["params"]["reason"] == "AgreementExpired"
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "Suspended")]
    assert sim.run(AGREEMENT_END + 10 * DAY).notifications == ()


def test_an_operator_down_through_the_30_day_window_sends_only_the_7_day_notice() -> None:
    sim = integrated()
    plan = sim.run(AGREEMENT_END - 5 * DAY)
    assert [(n["template"], n["params"]["days"]) for n in plan.notifications] == [(m.AGREEMENT_EXPIRING, "5")]


def test_a_renewed_agreement_resumes_after_a_new_test() -> None:
    sim = integrated()
    sim.run(AGREEMENT_END)
    assert sim.phase == "Suspended"
    sim.edit(lambda s: s.update(agreement={"number": "ЦЖ-2027/0100", "signedAt": "2027-07-25T05:00:00Z",
                                           "validUntil": "2028-07-25T00:00:00Z"}))
    at = datetime.datetime(2027, 7, 26, 5, 0, tzinfo=UTC)
    plan = sim.run(at)
    assert (plan.previous_phase, plan.phase) == ("Suspended", "Testing") and plan.test is not None
    plan = sim.run(at + HOUR, test=TestResult(True, generation=sim.generation))
    assert plan.phase == "Integrated" and [n["template"] for n in plan.notifications] == [m.INTEGRATED]


def test_removing_the_agreement_of_an_integrated_object_suspends_it() -> None:
    sim = integrated()
    sim.edit(lambda s: s.pop("agreement"))
    plan = sim.run(SUBMITTED + 10 * DAY)
    assert plan.phase == "Suspended" and sim.cond("AgreementSigned") == ("False", "AgreementMissing")
    [mail] = plan.notifications
    assert mail["params"]["reason"] == "AgreementWithdrawn"
    assert "отозван" in m.render(mail["template"], mail["params"]).body


def test_removing_the_agreement_during_the_test_goes_back_to_approved() -> None:
    sim = in_testing()
    sim.edit(lambda s: s.pop("agreement"))
    plan = sim.run(SUBMITTED + 4 * DAY)
    assert (plan.previous_phase, plan.phase) == ("Testing", "Approved") and plan.notifications == ()
    assert [e.reason for e in plan.events] == ["AwaitingAgreement"]


# --- spec changes after the decision ---------------------------------------------------------------------------------


def test_an_approved_application_made_incomplete_holds_before_testing() -> None:
    sim = approved()
    sim.edit(lambda s: s.pop("endpoint"))
    plan = sim.run(SUBMITTED + 3 * DAY)
    assert plan.phase == "Approved" and [e.reason for e in plan.events] == ["ApplicationIncomplete"]
    assert sim.cond("Complete") == ("False", "ApplicationIncomplete")
    assert sim.cond("Ready") == ("False", "ApplicationIncomplete")
    sim.edit(sign)
    held = sim.run(SUBMITTED + 4 * DAY)
    assert held.phase == "Approved" and held.test is None  # no test without an endpoint
    sim.edit(lambda s: s.update(endpoint={"url": "https://osi.example.kz/api"}))
    assert sim.run(SUBMITTED + 5 * DAY).phase == "Testing"


def test_an_integrated_object_made_incomplete_stays_integrated_but_not_ready() -> None:
    sim = integrated()
    sim.edit(lambda s: s["owner"].pop("email"))
    plan = sim.run(SUBMITTED + 10 * DAY)
    assert plan.phase == "Integrated" and plan.notifications == ()
    assert sim.cond("Ready") == ("False", "ApplicationIncomplete")
    assert sim.status["missing"] == []  # status.missing is the refusal's list; Complete carries this one
    assert "spec.owner.email" in sim.condition("Complete")["message"]


def test_a_changed_endpoint_during_the_test_is_tested_anew() -> None:
    sim = in_testing()
    sim.run(SUBMITTED + 3 * DAY + HOUR, test=TestResult(False, "ConnectionRefused", "refused",
                                                         generation=sim.generation))
    sim.edit(lambda s: s["endpoint"].update(url="https://osi-new.example.kz/api"))
    plan = sim.run(SUBMITTED + 3 * DAY + 2 * HOUR)
    assert sim.cond("Tested") == ("Unknown", "TestPending")
    assert plan.test is not None and plan.test.not_before == SUBMITTED + 3 * DAY + 2 * HOUR


# --- recipients ------------------------------------------------------------------------------------------------------


def test_recipients_are_resolved_at_send_time() -> None:
    sim = integrated()
    approved, done = sim.status["outbox"]
    assert "board@" not in str(sim.status["outbox"])
    assert recipient_address(approved, sim.spec, sim.config) == "board@dostyk12.example.kz"
    sim.spec["owner"]["email"] = "new-board@dostyk12.example.kz"
    assert recipient_address(done, sim.spec, sim.config) == "new-board@dostyk12.example.kz"
    assert recipient_address({"params": {"to": "administrator"}}, sim.spec, sim.config) == "reviews@tksh.example.kz"
    assert recipient_address({"params": {"to": "administrator"}}, sim.spec, LifecycleConfig()) is None
    assert recipient_address({"params": {}}, sim.spec, sim.config) is None
    del sim.spec["owner"]["email"]
    assert recipient_address(approved, sim.spec, sim.config) is None


def test_keys_differ_between_objects() -> None:
    first = Sim()
    first.run()
    first.edit(approve)
    key = first.run(SUBMITTED + DAY).notifications[0]["id"]
    other = reconcile(first.spec, {"phase": "UnderReview", "submittedAt": "2026-07-21T05:00:00Z"},
                      first.generation, first.directory, SUBMITTED + DAY, first.config,
                      ref=ObjectRef(uid="another-uid", name="osi-portal", namespace="housing"))
    assert other.notifications[0]["id"] != key


def test_an_invalid_review_after_approval_holds_progress() -> None:
    sim = approved()
    sim.edit(lambda s: s.update(review={"decision": "Rejected", "reviewer": "Иванов А."}))
    plan = sim.run(SUBMITTED + 3 * DAY)
    assert plan.phase == "Approved" and [e.reason for e in plan.events] == ["InvalidReview"]
    assert sim.cond("Reviewed") == ("False", "InvalidReview") and sim.cond("Ready") == ("False", "InvalidReview")
    sim.edit(sign)
    assert sim.run(SUBMITTED + 4 * DAY).phase == "Approved"  # the agreement waits for a valid decision
    sim.edit(approve)
    assert sim.run(SUBMITTED + 5 * DAY).phase == "Testing"


def test_a_test_reason_that_is_not_a_condition_reason_is_replaced() -> None:
    sim = in_testing()
    sim.run(SUBMITTED + 4 * DAY, test=TestResult(False, "HTTP 503!", "HTTP 503", generation=sim.generation))
    assert sim.cond("Tested") == ("False", "TestFailed")
