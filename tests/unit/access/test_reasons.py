"""Every reason code of a deny, with its particulars and its texts in kk/ru/en."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from tests.unit.access.helpers import DAY, OTHER_OWNER, OWNER, T0, grant, index, terminated
from tksh.access import ANONYMOUS, Decision, DecisionIndex, DenyReason, TerminationFacts
from tksh.resources.accessgrant import TerminationReason


def decide(
    idx: DecisionIndex,
    subject: str = "person:a1",
    action: str = "read",
    category: int = 5,
    *,
    owner_bin: str = OWNER,
    digital_object: str | None = None,
    now: datetime.datetime = T0,
) -> Decision:
    return idx.decide(subject, action, category, owner_bin, digital_object=digital_object, now=now)


def assert_texts(decision: Decision, *fragments: str) -> None:
    texts = decision.texts
    for text in (texts.kk, texts.ru, texts.en):
        assert text
        for fragment in fragments:
            assert fragment in text, (fragment, text)


def test_allow_names_the_grant() -> None:
    decision = decide(index(grant()), action="write", category=6)
    assert decision.allowed and decision.code == "ALLOW"
    assert decision.grant == "housing/g1"
    assert decision.to_dict()["grant"] == "housing/g1"


def test_open_part_allows_everyone_to_read_the_registry_of_suppliers() -> None:
    idx = index(open_part={(9, "read"), (10, "read")})
    for subject in (ANONYMOUS, "person:nobody"):
        decision = decide(idx, subject, "read", 10, owner_bin=OTHER_OWNER)
        assert decision.allowed and decision.open_part and decision.grant is None
    assert not decide(idx, ANONYMOUS, "write", 10).allowed


def test_authentication_required_for_the_closed_part() -> None:
    decision = decide(index(grant(), open_part={(10, "read")}), ANONYMOUS, "read", 5)
    assert decision.reason is DenyReason.AUTHENTICATION_REQUIRED
    assert_texts(decision, "21")


def test_no_grant() -> None:
    idx = index(grant())
    assert decide(idx, "person:stranger").reason is DenyReason.NO_GRANT
    other_domain = decide(idx, owner_bin=OTHER_OWNER)
    assert other_domain.reason is DenyReason.NO_GRANT
    assert OTHER_OWNER not in str(other_domain.to_dict())  # a BIN never appears in the texts


def test_function_lacks_right() -> None:
    decision = decide(index(grant(functions={"reports-reader"})), action="write", category=5)
    assert (decision.reason, decision.grant) == (DenyReason.FUNCTION_LACKS_RIGHT, "housing/g1")
    assert_texts(decision, "housing/g1", "write", "5")


def test_unknown_function() -> None:
    decision = decide(index(grant(functions={"reports-reader", "gone-function"})), action="write")
    assert decision.reason is DenyReason.UNKNOWN_FUNCTION
    assert decision.missing_functions == ("gone-function",)
    assert_texts(decision, "gone-function")
    # the known function still gives what it has
    assert decide(index(grant(functions={"reports-reader", "gone-function"}))).allowed


@pytest.mark.parametrize(
    ("scope", "request_", "kind"),
    [
        ({"categories": {6}}, {"category": 5}, "category"),
        ({"owner_bins": {OTHER_OWNER}}, {}, "owner"),
        ({"digital_objects": {"housing/portal"}}, {"digital_object": "housing/other"}, "digital-object"),
        ({"digital_objects": {"housing/portal"}}, {}, "digital-object"),  # the personal cabinet is a channel too
    ],
)
def test_out_of_scope(scope: dict[str, object], request_: dict[str, Any], kind: str) -> None:
    decision = decide(index(grant(**scope)), **request_)
    assert (decision.reason, decision.scope) == (DenyReason.OUT_OF_SCOPE, kind)
    assert_texts(decision, "housing/g1")


def test_grant_pending() -> None:
    decision = decide(index(grant(phase="Pending")))
    assert decision.reason is DenyReason.GRANT_PENDING
    assert decide(index(grant(phase=None))).reason is DenyReason.GRANT_PENDING


def test_agreement_not_yet_valid_names_the_instant() -> None:
    starts = T0 + DAY
    decision = decide(index(grant(valid_from=starts)))
    assert (decision.reason, decision.instant) == (DenyReason.AGREEMENT_NOT_YET_VALID, starts)
    assert_texts(decision, "2026-09-02T12:00:00Z")


def test_agreement_expired_names_the_instant() -> None:
    decision = decide(index(grant(valid_until=T0 - DAY)))
    assert (decision.reason, decision.instant) == (DenyReason.AGREEMENT_EXPIRED, T0 - DAY)
    assert_texts(decision, "2026-08-31T12:00:00Z", "20.1")


def test_grounds_ended_names_the_instant() -> None:
    decision = decide(index(grant(grounds_until=T0 - DAY)))
    assert (decision.reason, decision.instant) == (DenyReason.GROUNDS_ENDED, T0 - DAY)
    assert_texts(decision, "2026-08-31T12:00:00Z", "20.5")


def test_revoked_carries_the_record() -> None:
    at = T0 - datetime.timedelta(minutes=5)
    facts = terminated(grant(), TerminationReason.REVOKED, at=at, by="admin:aigerim", note="order No. 7")
    decision = decide(index(facts))
    assert decision.reason is DenyReason.REVOKED
    assert decision.record == TerminationFacts(TerminationReason.REVOKED, at=at, by="admin:aigerim", note="order No. 7")
    assert decision.instant == at
    assert_texts(decision, "admin:aigerim", "order No. 7", "20.2")
    record = decision.to_dict()["record"]
    assert record == {"reason": "REVOKED", "paragraph": "§20.2", "at": "2026-09-01T11:55:00Z",
                      "by": "admin:aigerim", "note": "order No. 7"}


@pytest.mark.parametrize(
    ("ground", "code", "paragraph"),
    [
        (TerminationReason.EXPIRED, DenyReason.AGREEMENT_EXPIRED, "20.1"),
        (TerminationReason.REVOKED, DenyReason.REVOKED, "20.2"),
        (TerminationReason.REFUSED, DenyReason.REFUSED, "20.3"),
        (TerminationReason.DELEGATION_TERMINATED, DenyReason.DELEGATION_TERMINATED, "20.4"),
        (TerminationReason.GROUNDS_ENDED, DenyReason.GROUNDS_ENDED, "20.5"),
        (TerminationReason.FALSE_INFORMATION, DenyReason.FALSE_INFORMATION, "20.6"),
        (TerminationReason.OTHER_BY_LAW, DenyReason.OTHER_BY_LAW, "20.7"),
    ],
)
def test_each_section_20_ground_has_its_code(ground: TerminationReason, code: DenyReason, paragraph: str) -> None:
    facts = terminated(grant(), ground, cascade_from="housing/root", note="Law No. 1")
    decision = decide(index(facts))
    assert decision.reason is code
    assert decision.record is not None and decision.record.reason is ground
    assert_texts(decision, paragraph)
    if code is DenyReason.DELEGATION_TERMINATED:
        assert decision.principal == "housing/root"
    if code is DenyReason.OTHER_BY_LAW:
        assert_texts(decision, "Law No. 1")


def test_terminated_phase_without_record_is_denied() -> None:
    assert decide(index(grant(phase="Terminated"))).reason is DenyReason.TERMINATED


def test_a_termination_request_ends_access_at_its_instant_before_the_operator_acts() -> None:
    at = T0 + datetime.timedelta(hours=1)
    facts = grant(requested=TerminationFacts(TerminationReason.REFUSED, at=at, by="person:a1"))
    assert decide(index(facts)).allowed
    decision = decide(index(facts), now=at)
    assert (decision.reason, decision.instant) == (DenyReason.REFUSED, at)
    at_once = grant(requested=TerminationFacts(TerminationReason.REVOKED))
    assert decide(index(at_once)).reason is DenyReason.REVOKED


def test_delegation_exceeds_principal() -> None:
    principal = grant("housing/chair", "person:chair", functions={"reports-reader"})
    delegate = grant("housing/acct", "person:acct", delegated_from="housing/chair")
    decision = decide(index(principal, delegate), "person:acct", "write", 5)
    assert (decision.reason, decision.principal) == (DenyReason.DELEGATION_EXCEEDS_PRINCIPAL, "housing/chair")
    assert_texts(decision, "housing/acct", "housing/chair")


def test_the_most_informative_reason_wins() -> None:
    lacking = grant("housing/a-lacking", functions={"meters"})
    expired = grant("housing/b-expired", valid_until=T0 - DAY)
    decision = decide(index(lacking, expired))
    assert (decision.reason, decision.grant) == (DenyReason.AGREEMENT_EXPIRED, "housing/b-expired")
    assert decision.considered == (
        ("housing/a-lacking", DenyReason.FUNCTION_LACKS_RIGHT),
        ("housing/b-expired", DenyReason.AGREEMENT_EXPIRED),
    )
    # an expired grant that would not have covered the request anyway is not the reason
    decision = decide(index(grant("housing/x", functions={"meters"}, valid_until=T0 - DAY)))
    assert decision.reason is DenyReason.FUNCTION_LACKS_RIGHT


def test_equally_informative_denials_report_the_smallest_grant_id() -> None:
    a = grant("housing/a", valid_until=T0 - DAY)
    b = grant("housing/b", valid_until=T0 - 2 * DAY)
    assert decide(index(b, a)).grant == "housing/a"


def test_any_allowing_grant_allows() -> None:
    revoked = terminated(grant("housing/a"), TerminationReason.REVOKED)
    assert decide(index(revoked, grant("housing/b"))).grant == "housing/b"


def test_reasons_are_ordered_from_least_to_most_informative() -> None:
    ranks = [reason.rank for reason in DenyReason]
    assert ranks == sorted(ranks)
    assert DenyReason.NO_GRANT.rank < DenyReason.OUT_OF_SCOPE.rank < DenyReason.AGREEMENT_EXPIRED.rank


def test_every_reason_has_three_texts() -> None:
    for reason in DenyReason:
        for principal in (None, "housing/p"):
            decision = Decision(False, reason, grant="housing/g", principal=principal, instant=T0, category=5,
                                action="read", record=TerminationFacts(TerminationReason.REVOKED, at=T0))
            texts = decision.texts
            assert texts.kk and texts.ru and texts.en
            assert len({texts.kk, texts.ru, texts.en}) == 3
    assert dataclasses.replace(decision, allowed=True).texts.en.startswith("allowed")
