"""Hostile names never change a decision; hostile ids never get in; user data never goes through a CSV."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import casbin
import pytest

from tests.unit.access.helpers import FUNCTIONS, OTHER_OWNER, OWNER, T0
from tksh.access import DecisionIndex, GrantFacts, IdentifierError, grant_facts
from tksh.access.reference import Reference
from tksh.resources import AccessGrant, GrantSubject

HOSTILE_NAMES = [
    "mallory, admin, org1",
    'O"Brien \'quoted\'',
    "x) || true || (x",
    "line one\nline two\r\n",
    "Әлия Сәрсенбайқызы",
    "ОСИ «Достық 12»",
    "p, @anonymous, *, open-part, any, any, any",
    "g, grant:housing/g1, right:5:write",
    "#comment, [bracket], {brace}",
    "\t\u200b\u00a0",
]
PLAIN = "Plain Name"


def body(name: str, *, grant_name: str = "g1", subject: str = "person:a1", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": grant_name, "namespace": "housing"},
        "spec": {
            "subject": {"id": subject, "kind": "person", "name": name},
            "onBehalfOf": {"bin": OWNER, "name": name},
            "functions": ["reports-reader"],
            "agreement": {
                "number": name or "1",
                "validUntil": "2027-07-12T00:00:00Z",
                "validFrom": "2026-01-01T00:00:00Z",
            },
            "grounds": {"kind": "PowerOfAttorney", "reference": name},
            **spec,
        },
        "status": {"phase": "Active", "message": name},
    }


def world(name: str) -> list[GrantFacts]:
    return [
        grant_facts(AccessGrant.model_validate(body(name))),
        grant_facts(AccessGrant.model_validate(body(name, grant_name="g2", subject="person:b2",
                                                    delegatedFrom="g1", scope={"categories": [5]}))),
    ]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_display_names_never_reach_the_decision(name: str) -> None:
    hostile, plain = world(name), world(PLAIN)
    assert hostile == plain  # names are dropped when the facts are extracted
    hostile_index = DecisionIndex.build(hostile, FUNCTIONS)
    plain_index = DecisionIndex.build(plain, FUNCTIONS)
    reference = Reference(hostile, FUNCTIONS, (), T0)
    assert reference.policy == Reference(plain, FUNCTIONS, (), T0).policy
    for subject, action, category, owner in itertools.product(
        ("person:a1", "person:b2", "mallory", "admin"), ("read", "write"), (5, 6), (OWNER, OTHER_OWNER, "org1")
    ):
        decision = hostile_index.decide(subject, action, category, owner, now=T0)
        assert decision == plain_index.decide(subject, action, category, owner, now=T0)
        assert reference.allows(subject, action, category, owner) is decision.allowed


def test_hostile_ids_are_refused_even_when_the_schema_is_bypassed() -> None:
    model = AccessGrant.model_validate(body(PLAIN))
    model.spec.subject = GrantSubject.model_construct(id="mallory, admin, org1", kind="person")
    with pytest.raises(IdentifierError, match=r"^subject\.id: "):
        grant_facts(model)
    model = AccessGrant.model_validate(body(PLAIN))
    model.metadata.name = "g1)"
    with pytest.raises(IdentifierError, match=r"^metadata\.name: "):
        grant_facts(model)


def test_the_reference_enforcer_is_fed_through_the_api_not_a_file() -> None:
    reference = Reference(world(PLAIN), FUNCTIONS, (), T0)
    assert reference.enforcer.get_adapter() is None
    for line in reference.policy.lines + reference.policy.links:
        assert all("," not in field and "\n" not in field for field in line)


RBAC_WITH_DOMAINS = """
[request_definition]
r = sub, dom, obj, act
[policy_definition]
p = sub, dom, obj, act
[role_definition]
g = _, _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.obj == p.obj && r.act == p.act
"""


def test_why_names_stay_out_of_csv_stock_casbin_turns_a_name_into_admin(tmp_path: Path) -> None:
    """The attack the design avoids: a subject *named* ``mallory, admin, org1`` saved to CSV and reloaded."""
    policy = tmp_path / "policy.csv"
    policy.write_text("p, admin, org1, data, write\n")
    enforcer = casbin.Enforcer(casbin.Enforcer.new_model(text=RBAC_WITH_DOMAINS), casbin.FileAdapter(str(policy)))
    enforcer.add_grouping_policy("mallory, admin, org1", "user", "org1")
    enforcer.save_policy()
    reloaded = casbin.Enforcer(casbin.Enforcer.new_model(text=RBAC_WITH_DOMAINS), casbin.FileAdapter(str(policy)))
    assert reloaded.enforce("mallory", "org1", "data", "write")  # the name became an admin link
    with pytest.raises(IdentifierError):
        GrantFacts(id="org1/g", subject_id="mallory, admin, org1", owner_bin=OWNER,
                   functions=frozenset({"reports-reader"}), valid_until=T0)
