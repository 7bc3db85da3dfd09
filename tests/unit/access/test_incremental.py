"""Incremental updates give exactly what a rebuild gives, and touch only what changes."""

from __future__ import annotations

import dataclasses
import datetime
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.access.helpers import FUNCTIONS, OWNER, T0, grant
from tests.unit.access.worlds import random_functions, random_grants, random_requests
from tksh.access import DecisionIndex, FunctionRights, GrantFacts
from tksh.access.index import _Entry

NOW = datetime.datetime(2026, 9, 1, 12, 0, tzinfo=datetime.UTC)


def structure(index: DecisionIndex) -> dict[str, object]:
    """Everything the index holds, in a comparable form."""
    return {
        "grants": {gid: (e.facts, e.rights, e.unknown) for gid, e in index._grants.items()},
        "buckets": {s: {o: [e.id for e in b] for o, b in d.items()} for s, d in index._buckets.items()},
        "naming": index._naming,
        "delegates": index._delegates,
        "functions": index._functions,
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), r=st.randoms(use_true_random=False), steps=st.integers(1, 80))
def test_any_sequence_of_updates_equals_a_rebuild(seed: int, r: random.Random, steps: int) -> None:
    """A pool of grants and functions from ``seed``; hypothesis draws the sequence of updates (and shrinks it)."""
    subjects = [f"person:s{i}" for i in range(6)]
    pool = random.Random(seed)
    pool_functions = random_functions(pool, 8)
    pool_grants = random_grants(pool, 40, sorted(pool_functions), NOW, subjects)
    index = DecisionIndex()
    grants: dict[str, GrantFacts] = {}
    functions: dict[str, FunctionRights] = {}
    for _ in range(steps):
        op = r.choice(("grant", "grant", "grant", "remove-grant", "function", "remove-function"))
        if op == "grant":
            facts = r.choice(pool_grants)
            if facts.id in grants and r.random() < 0.5:  # an update of an existing grant
                facts = dataclasses.replace(r.choice(pool_grants), id=facts.id)
            grants[facts.id] = facts
            index.upsert_grant(facts)
        elif op == "remove-grant" and grants:
            grant_id = r.choice(sorted(grants))
            del grants[grant_id]
            index.remove_grant(grant_id)
        elif op == "function":
            name = r.choice(sorted(pool_functions))
            rights = r.choice((pool_functions[name], random_functions(pool, 1)["fn-0"]))
            functions[name] = rights
            index.upsert_function(name, rights)
        elif op == "remove-function" and functions:
            name = r.choice(sorted(functions))
            del functions[name]
            index.remove_function(name)
    rebuilt = DecisionIndex.build(grants.values(), functions)
    assert structure(index) == structure(rebuilt)
    for q in random_requests(pool, 60, list(grants.values()), subjects, functions):
        args = (q.subject, q.action, q.category, q.owner)
        assert index.decide(*args, digital_object=q.channel, now=NOW) == rebuilt.decide(
            *args, digital_object=q.channel, now=NOW
        )


def test_removing_everything_leaves_nothing_behind() -> None:
    index = DecisionIndex.build([grant("housing/a"), grant("housing/b", delegated_from="housing/a")], FUNCTIONS)
    index.remove_grant("housing/b")
    index.remove_grant("housing/a")
    index.remove_grant("housing/never-there")
    assert len(index) == 0
    assert (index._buckets, index._naming, index._delegates) == ({}, {}, {})


def test_a_grant_update_touches_only_its_own_bucket() -> None:
    grants = [grant(f"housing/g{i}", f"person:s{i % 50}") for i in range(500)]
    index = DecisionIndex.build(grants, FUNCTIONS)
    before = {subject: dict(domains) for subject, domains in index._buckets.items()}
    index.upsert_grant(grant("housing/g7", "person:s7", functions={"meters"}))
    for subject, domains in index._buckets.items():
        for owner, bucket in domains.items():
            if subject != "person:s7":
                assert bucket is before[subject][owner]  # the very same tuple: not rebuilt
    assert index._buckets["person:s7"][OWNER] is not before["person:s7"][OWNER]
    assert index.decide("person:s7", "read", 13, OWNER, now=T0).allowed


def test_a_function_update_refreshes_only_the_grants_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    grants = [grant(f"housing/g{i}", functions={"meters" if i % 10 == 0 else "reports-reader"}) for i in range(200)]
    index = DecisionIndex.build(grants, FUNCTIONS)
    refreshed: list[str] = []
    original = _Entry.refresh

    def spy(self: _Entry, functions: dict[str, FunctionRights]) -> None:
        refreshed.append(self.id)
        original(self, functions)

    monkeypatch.setattr(_Entry, "refresh", spy)
    index.upsert_function("meters", frozenset({(12, "write")}))
    assert sorted(refreshed) == sorted(f"housing/g{i}" for i in range(0, 200, 10))
    assert index.decide("person:a1", "write", 12, OWNER, now=T0).allowed
    refreshed.clear()
    index.upsert_function("meters", frozenset({(12, "write")}))  # unchanged: nothing to do
    assert refreshed == []
    index.upsert_function("meters", None)  # an Invalid entry gives nothing
    assert index.decide("person:a1", "write", 12, OWNER, now=T0).reason is not None
