"""Delegation (§20.4): a delegate never gets more than its principal holds, nor outlives it."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from tests.unit.access.helpers import DAY, OTHER_OWNER, OWNER, T0, US, grant, index, terminated
from tksh.access import Decision, DecisionIndex, DenyReason, GrantFacts, TerminationFacts
from tksh.access.reference import Reference
from tksh.resources.accessgrant import TerminationReason

ROOT, MID, LEAF = "housing/chair", "housing/accountant", "housing/assistant"


def chain(**root_changes: object) -> tuple[GrantFacts, GrantFacts, GrantFacts]:
    """chair (owners-association) -> accountant (categories 5, 6) -> assistant (reads reports)."""
    root = grant(ROOT, "person:chair", **root_changes)
    mid = grant(MID, "person:acct", delegated_from=ROOT, categories={5, 6}, valid_until=T0 + 700 * DAY)
    leaf = grant(LEAF, "person:asst", delegated_from=MID, functions={"reports-reader", "owners-association"})
    return root, mid, leaf


def decide(
    idx: DecisionIndex,
    subject: str,
    action: str = "read",
    category: int = 5,
    *,
    now: datetime.datetime = T0,
    digital_object: str | None = None,
) -> Decision:
    return idx.decide(subject, action, category, OWNER, digital_object=digital_object, now=now)


def test_three_levels_in_effect_allow_the_intersection() -> None:
    idx = index(*chain())
    assert decide(idx, "person:asst").allowed
    assert decide(idx, "person:asst", "sign", 6).allowed
    # the assistant's own owners-association would give category 2; the accountant's scope does not
    denied = decide(idx, "person:asst", "read", 2)
    assert (denied.reason, denied.principal) == (DenyReason.DELEGATION_EXCEEDS_PRINCIPAL, MID)


@pytest.mark.parametrize(
    "ending",
    [
        {"phase": "Terminated", "terminated": TerminationFacts(TerminationReason.REVOKED, at=T0 - DAY, by="admin")},
        {"valid_until": T0},
        {"grounds_until": T0 - US},
        {"requested": TerminationFacts(TerminationReason.REFUSED, at=T0)},
    ],
    ids=["revoked", "expired", "grounds-ended", "refusal-requested"],
)
def test_when_the_root_ends_every_delegate_is_denied_naming_it(ending: dict[str, object]) -> None:
    idx = index(*chain(**ending))
    for subject in ("person:acct", "person:asst"):
        decision = decide(idx, subject)
        assert decision.reason is DenyReason.DELEGATION_TERMINATED, subject
        assert decision.principal == ROOT
        assert ROOT in decision.texts.en and "20.4" in decision.texts.ru


def test_a_delegate_never_outlives_its_principal_to_the_microsecond() -> None:
    root_end = T0 + 10 * DAY
    idx = index(*chain(valid_until=root_end))
    assert decide(idx, "person:asst", now=root_end - US).allowed
    decision = decide(idx, "person:asst", now=root_end)
    assert (decision.reason, decision.principal, decision.instant) == (
        DenyReason.DELEGATION_TERMINATED, ROOT, root_end
    )


def test_the_middle_ending_names_the_middle() -> None:
    root, mid, leaf = chain()
    idx = index(root, terminated(mid, TerminationReason.REFUSED), leaf)
    assert decide(idx, "person:chair").allowed
    assert decide(idx, "person:acct").reason is DenyReason.REFUSED
    leaf_decision = decide(idx, "person:asst")
    assert (leaf_decision.reason, leaf_decision.principal) == (DenyReason.DELEGATION_TERMINATED, MID)


def test_after_the_operator_applies_the_cascade_the_records_name_the_principals() -> None:
    root, mid, leaf = chain()
    root = terminated(root, TerminationReason.REVOKED)
    mid = terminated(mid, TerminationReason.DELEGATION_TERMINATED, cascade_from=ROOT)
    leaf = terminated(leaf, TerminationReason.DELEGATION_TERMINATED, cascade_from=MID)
    idx = index(root, mid, leaf)
    assert (decide(idx, "person:acct").reason, decide(idx, "person:acct").principal) == (
        DenyReason.DELEGATION_TERMINATED, ROOT
    )
    assert decide(idx, "person:asst").principal == MID


def test_a_principal_not_started_yet_is_reported_as_such() -> None:
    idx = index(*chain(valid_from=T0 + DAY))
    decision = decide(idx, "person:acct")
    assert (decision.reason, decision.principal) == (DenyReason.AGREEMENT_NOT_YET_VALID, ROOT)
    assert ROOT in decision.texts.en
    pending = index(*chain(phase="Pending"))
    assert decide(pending, "person:asst").reason is DenyReason.GRANT_PENDING


def test_a_missing_principal_or_a_cycle_denies() -> None:
    root, mid, leaf = chain()
    missing = decide(index(mid, leaf), "person:asst")
    assert (missing.reason, missing.principal) == (DenyReason.DELEGATION_TERMINATED, ROOT)
    looped = dataclasses.replace(root, delegated_from=LEAF)
    idx = index(looped, mid, leaf)
    for subject in ("person:chair", "person:acct", "person:asst"):
        assert decide(idx, subject).reason is DenyReason.DELEGATION_TERMINATED


def test_a_principal_acting_for_another_owner_gives_nothing() -> None:
    root = grant(ROOT, "person:chair", owner_bin=OTHER_OWNER)
    mid = grant(MID, "person:acct", delegated_from=ROOT)
    decision = decide(index(root, mid), "person:acct")
    assert (decision.reason, decision.principal) == (DenyReason.DELEGATION_EXCEEDS_PRINCIPAL, ROOT)


def test_scopes_intersect_along_the_chain() -> None:
    root = grant(ROOT, "person:chair", digital_objects={"housing/portal", "housing/app"})
    mid = grant(MID, "person:acct", delegated_from=ROOT, digital_objects={"housing/app", "housing/crm"})
    idx = index(root, mid)
    assert decide(idx, "person:acct", digital_object="housing/app").allowed
    for channel in ("housing/portal", "housing/crm", None):
        assert not decide(idx, "person:acct", digital_object=channel).allowed


def test_the_reference_agrees_on_the_chains() -> None:
    worlds = [chain(), chain(valid_until=T0), chain(phase="Pending"), chain(valid_from=T0 + DAY)]
    for world in worlds:
        idx = index(*world)
        reference = Reference(world, idx.functions, (), T0)
        for subject in ("person:chair", "person:acct", "person:asst"):
            for category in (1, 2, 5, 6):
                for action in ("read", "write", "sign"):
                    expected = decide(idx, subject, action, category).allowed
                    assert reference.allows(subject, action, category, OWNER) is expected
