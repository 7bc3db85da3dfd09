"""§16's admission rule: only administrators set spec.review; a refusal needs a reason."""

from __future__ import annotations

from typing import Any

import pytest

from tksh.registration.admission import Refusal, check_review

GROUP = "tksh:administrators"
ADMIN = {"username": "aigerim@tksh.example.kz", "groups": ["system:authenticated", GROUP]}
APPLICANT = {"username": "owner@example.kz", "groups": ["system:authenticated"]}
APPROVED = {"decision": "Approved", "reviewer": "aigerim"}
REJECTED = {"decision": "Rejected", "reviewer": "aigerim", "reason": "the endpoint is not in Kazakhstan"}
APP: dict[str, Any] = {"owner": {"bin": "140540001231"}, "functions": ["owners-association"]}


def spec(review: Any = None, **extra: Any) -> dict[str, Any]:
    result = {**APP, **extra}
    if review is not None:
        result["review"] = review
    return result


@pytest.mark.parametrize(
    ("old", "new", "user"),
    [
        (None, spec(), APPLICANT),  # create without a decision
        (spec(), spec(endpoint={"url": "http://x"}), APPLICANT),  # the applicant edits the application
        (spec(APPROVED), spec(APPROVED, endpoint={"url": "http://y"}), APPLICANT),  # decision untouched
        (None, spec(APPROVED), ADMIN),  # an administrator creates it decided
        (spec(), spec(APPROVED), ADMIN),
        (spec(), spec(REJECTED), ADMIN),
        (spec(APPROVED), spec(REJECTED), ADMIN),
        (spec(REJECTED), spec(), ADMIN),  # withdrawing the decision re-opens the review
        (spec(REJECTED), None, APPLICANT),  # delete: no new object, the rule does not apply
    ],
)
def test_allowed(old: Any, new: Any, user: Any) -> None:
    if new is None:
        new = old  # a DELETE carries only the old object: nothing about the review changes
    assert check_review(old, new, user, GROUP) is None


@pytest.mark.parametrize(
    ("old", "new", "word"),
    [
        (None, spec(APPROVED), "set or changed"),  # an applicant approving itself on create
        (spec(), spec(APPROVED), "set or changed"),
        (spec(REJECTED), spec(APPROVED), "set or changed"),
        (spec(APPROVED), spec({**APPROVED, "reviewer": "someone else"}), "set or changed"),
        (spec(REJECTED), spec(), "removed"),  # an applicant withdrawing a rejection
    ],
)
def test_non_members_may_not_touch_the_review(old: Any, new: Any, word: str) -> None:
    refusal = check_review(old, new, APPLICANT, GROUP)
    assert isinstance(refusal, Refusal)
    assert refusal.field == "spec.review"
    assert word in refusal.message and GROUP in refusal.message
    assert "owner@example.kz" not in str(refusal)  # the user is not named (personal data)


@pytest.mark.parametrize(
    "userinfo",
    [
        None,
        {},
        {"username": "x"},
        {"groups": None},
        {"groups": "tksh:administrators"},  # a string is not a list of groups
        {"groups": ["tksh:administrators-extra", "TKSH:ADMINISTRATORS"]},  # exact names only
    ],
)
def test_group_membership_is_exact(userinfo: Any) -> None:
    assert check_review(spec(), spec(APPROVED), userinfo, GROUP) is not None


def test_an_empty_group_setting_admits_no_one() -> None:
    assert check_review(spec(), spec(APPROVED), {"groups": [""]}, "") is not None


@pytest.mark.parametrize("reason", [None, "", "   ", 42])
def test_a_rejection_needs_a_reason_even_from_an_administrator(reason: Any) -> None:
    review = {"decision": "Rejected", "reviewer": "aigerim"}
    if reason is not None:
        review["reason"] = reason
    refusal = check_review(spec(), spec(review), ADMIN, GROUP)
    assert refusal is not None and refusal.field == "spec.review.reason"
    assert str(refusal).startswith("spec.review.reason: ")


def test_an_unchanged_reasonless_rejection_is_not_refused_again() -> None:
    """Objects stored before the webhook existed stay editable; the lifecycle reports them instead."""
    review = {"decision": "Rejected", "reviewer": "aigerim"}
    assert check_review(spec(review), spec(review, endpoint={"url": "http://z"}), APPLICANT, GROUP) is None


def test_the_membership_rule_comes_before_the_reason_rule() -> None:
    refusal = check_review(spec(), spec({"decision": "Rejected", "reviewer": "x"}), APPLICANT, GROUP)
    assert refusal is not None and refusal.field == "spec.review"
