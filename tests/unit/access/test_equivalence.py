"""The fast index and stock Casbin (``Enforcer`` and ``FastEnforcer``) agree on allow/deny.

Casbin is the definition of the semantics (``policies/model.conf``); the reference feeds it the
grants in effect at ``now`` (see :mod:`tksh.access.reference`). Worlds are random and large: hundreds
of grants, dozens of functions, instants on the microsecond boundaries, delegation chains.
"""

from __future__ import annotations

import datetime
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.access.worlds import World, random_world
from tksh.access import DecisionIndex
from tksh.access.reference import HAS_FAST_ENFORCER, Reference

NOW = datetime.datetime(2026, 9, 1, 12, 0, tzinfo=datetime.UTC)


def check(world: World, *, with_casbin: bool = True) -> tuple[int, int, int]:
    """Assert agreement on every request; return (allowed, allowed through a delegated grant, total)."""
    index = DecisionIndex.build(world.grants, world.functions, open_part=world.open_part)
    references = []
    if with_casbin:
        references.append(Reference(world.grants, world.functions, world.open_part, NOW))
        if HAS_FAST_ENFORCER:
            references.append(Reference(world.grants, world.functions, world.open_part, NOW, fast=True))
    allowed = delegated = 0
    for q in world.requests:
        decision = index.decide(q.subject, q.action, q.category, q.owner, digital_object=q.channel, now=NOW)
        allowed += decision.allowed
        holder = index.grant(decision.grant) if decision.allowed and decision.grant else None
        delegated += holder is not None and holder.delegated_from is not None
        for reference in references:
            expected = reference.allows(q.subject, q.action, q.category, q.owner, digital_object=q.channel)
            assert decision.allowed is expected, (q, decision, "FastEnforcer" if reference.fast else "Enforcer")
    return allowed, delegated, len(world.requests)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**64 - 1), grants=st.integers(150, 500), functions=st.integers(12, 60))
def test_large_random_policies_agree(seed: int, grants: int, functions: int) -> None:
    """Hundreds of grants and dozens of functions: hypothesis draws the sizes and a seed (a world this large
    drawn choice by choice would overrun its buffer); the small test below shrinks structure instead."""
    check(random_world(random.Random(seed), grants=grants, functions=functions, requests=200, now=NOW))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(r=st.randoms(use_true_random=False), grants=st.integers(1, 12), functions=st.integers(1, 6))
def test_small_random_policies_agree(r: random.Random, grants: int, functions: int) -> None:
    """Small worlds drawn choice by choice, so a disagreement shrinks to a minimal world."""
    check(random_world(r, grants=grants, functions=functions, requests=40, now=NOW))


def test_the_random_worlds_are_not_trivial() -> None:
    """Agreement means something only if both allows and denies are frequent."""
    world = random_world(random.Random(20260712), grants=300, functions=30, requests=3000, now=NOW)
    allowed, delegated, total = check(world, with_casbin=False)
    assert 0.1 < allowed / total < 0.9
    assert delegated / total > 0.01  # the delegation intersection is exercised, not only its denials
