"""cascade(): which grants a termination ends with it."""

from __future__ import annotations

from tests.unit.access.helpers import OTHER_OWNER, grant, terminated
from tksh.access import CascadeStep, DecisionIndex, cascade
from tksh.resources.accessgrant import TerminationReason as R

ROOT, MID, LEAF = "housing/chair", "housing/accountant", "housing/assistant"
WORLD = [
    grant(ROOT, "person:chair"),
    grant(MID, "person:acct", delegated_from=ROOT),
    grant(LEAF, "person:asst", delegated_from=MID),
    grant("housing/sibling", "person:sib", delegated_from=ROOT),
    grant("housing/unrelated", "person:other"),
    grant("utility/acct-elsewhere", "person:acct", owner_bin=OTHER_OWNER),
]


def test_delegation_terminated_ends_everything_delegated_transitively() -> None:
    assert cascade(WORLD, ROOT, R.DELEGATION_TERMINATED) == [
        CascadeStep(MID, R.DELEGATION_TERMINATED, ROOT),
        CascadeStep("housing/sibling", R.DELEGATION_TERMINATED, ROOT),
        CascadeStep(LEAF, R.DELEGATION_TERMINATED, MID),
    ]


def test_any_ground_ends_the_delegates_too() -> None:
    for reason in (R.EXPIRED, R.REVOKED, R.REFUSED, R.GROUNDS_ENDED, R.OTHER_BY_LAW):
        assert [step.grant for step in cascade(WORLD, MID, reason)] == [LEAF]


def test_false_information_ends_every_grant_of_the_subject_and_their_delegates() -> None:
    world = [*WORLD, grant("utility/helper", "person:helper", delegated_from="utility/acct-elsewhere")]
    assert cascade(world, MID, R.FALSE_INFORMATION) == [
        CascadeStep("utility/acct-elsewhere", R.FALSE_INFORMATION, MID),
        CascadeStep(LEAF, R.DELEGATION_TERMINATED, MID),
        CascadeStep("utility/helper", R.DELEGATION_TERMINATED, "utility/acct-elsewhere"),
    ]


def test_ended_grants_are_skipped_but_walked_through() -> None:
    world = list(WORLD)
    world[1] = terminated(world[1], R.REFUSED)  # the accountant refused earlier; the assistant was left Active
    assert cascade(world, ROOT, R.REVOKED) == [
        CascadeStep("housing/sibling", R.DELEGATION_TERMINATED, ROOT),
        CascadeStep(LEAF, R.DELEGATION_TERMINATED, MID),
    ]


def test_nothing_to_cascade() -> None:
    assert cascade(WORLD, "housing/unrelated", R.REVOKED) == []
    assert cascade(WORLD, "housing/missing", R.FALSE_INFORMATION) == []


def test_a_cycle_terminates() -> None:
    a = grant("housing/a", "person:a", delegated_from="housing/b")
    b = grant("housing/b", "person:b", delegated_from="housing/a")
    assert cascade([a, b], "housing/a", R.REVOKED) == [CascadeStep("housing/b", R.DELEGATION_TERMINATED, "housing/a")]


def test_the_index_exposes_its_grants_for_the_cascade() -> None:
    idx = DecisionIndex.build(WORLD)
    assert idx.delegates_of(ROOT) == {MID, "housing/sibling"}
    assert [s.grant for s in cascade(idx.grants(), ROOT, R.REVOKED)] == [MID, "housing/sibling", LEAF]
