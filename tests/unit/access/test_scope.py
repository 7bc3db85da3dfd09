"""Scope narrowing: categories, owner BINs, digital objects; an absent list does not narrow."""

from __future__ import annotations

import itertools

import pytest

from tests.unit.access.helpers import FUNCTIONS, OTHER_OWNER, OWNER, T0, grant, index
from tksh.access import DenyReason, GrantFacts
from tksh.access.reference import Reference

PORTAL, APP = "housing/portal", "housing/app"


def allowed(facts: GrantFacts, category: int = 5, action: str = "read", channel: str | None = None) -> bool:
    return index(facts).decide("person:a1", action, category, OWNER, digital_object=channel, now=T0).allowed


def test_unscoped_grant_gives_all_its_functions_rights_through_every_channel() -> None:
    facts = grant()
    for (category, action), channel in itertools.product(FUNCTIONS["owners-association"], (None, PORTAL)):
        assert allowed(facts, category, action, channel)
    assert not allowed(facts, 12)


def test_categories_narrow_and_never_widen() -> None:
    facts = grant(categories={5, 12})
    assert allowed(facts, 5)
    assert not allowed(facts, 6)  # the function has it, the scope does not
    assert index(facts).decide("person:a1", "read", 12, OWNER, now=T0).reason is DenyReason.FUNCTION_LACKS_RIGHT


def test_owner_bins_narrow_within_the_domain() -> None:
    assert allowed(grant(owner_bins={OWNER, OTHER_OWNER}))
    assert not allowed(grant(owner_bins={OTHER_OWNER}))
    # the domain is the grant's onBehalfOf: another owner's information is never reached through it
    decision = index(grant(owner_bins={OWNER, OTHER_OWNER})).decide("person:a1", "read", 5, OTHER_OWNER, now=T0)
    assert decision.reason is DenyReason.NO_GRANT


@pytest.mark.parametrize(("channel", "expected"), [(PORTAL, True), (APP, False), (None, False)])
def test_digital_objects_narrow_the_channel(channel: str | None, expected: bool) -> None:
    assert allowed(grant(digital_objects={PORTAL}), channel=channel) is expected


def test_reference_agrees_on_scopes() -> None:
    grants = [
        grant("housing/a", "person:a", categories={5, 12}),
        grant("housing/b", "person:b", owner_bins={OTHER_OWNER}),
        grant("housing/c", "person:c", digital_objects={PORTAL}),
        grant("housing/d", "person:d", categories={6}, owner_bins={OWNER}, digital_objects={PORTAL, APP}),
    ]
    idx = index(*grants)
    reference = Reference(grants, FUNCTIONS, (), T0)
    fast = Reference(grants, FUNCTIONS, (), T0, fast=True)
    for subject, category, action, owner, channel in itertools.product(
        ("person:a", "person:b", "person:c", "person:d"), (5, 6, 12), ("read", "write"), (OWNER, OTHER_OWNER),
        (None, PORTAL, APP),
    ):
        expected = idx.decide(subject, action, category, owner, digital_object=channel, now=T0).allowed
        assert reference.allows(subject, action, category, owner, digital_object=channel) is expected
        assert fast.allows(subject, action, category, owner, digital_object=channel) is expected
