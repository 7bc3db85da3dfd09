"""Time is checked at decision time, exact to the microsecond, whatever the status says."""

from __future__ import annotations

import datetime

import pytest

from tests.unit.access.helpers import OWNER, T0, US, grant, index
from tksh.access import DenyReason, GrantFacts, TerminationFacts, grant_facts
from tksh.access.reference import Reference
from tksh.resources import AccessGrant
from tksh.resources.accessgrant import TerminationReason

END = T0 + datetime.timedelta(hours=3, microseconds=250)


def reason_at(facts: GrantFacts, now: datetime.datetime) -> DenyReason | None:
    return index(facts).decide("person:a1", "read", 5, OWNER, now=now).reason


@pytest.mark.parametrize(
    ("field", "code"),
    [("valid_until", DenyReason.AGREEMENT_EXPIRED), ("grounds_until", DenyReason.GROUNDS_ENDED)],
)
def test_access_ends_exactly_at_the_instant(field: str, code: DenyReason) -> None:
    facts = grant(**{field: END})
    assert reason_at(facts, END - US) is None
    assert reason_at(facts, END) is code
    assert reason_at(facts, END + US) is code
    decision = index(facts).decide("person:a1", "read", 5, OWNER, now=END)
    assert decision.instant == END
    assert "2026-09-01T15:00:00.000250Z" in decision.texts.en


def test_access_starts_exactly_at_valid_from() -> None:
    facts = grant(valid_from=END)
    assert reason_at(facts, END - US) is DenyReason.AGREEMENT_NOT_YET_VALID
    assert reason_at(facts, END) is None


def test_a_termination_request_takes_effect_exactly_at_its_instant() -> None:
    facts = grant(requested=TerminationFacts(TerminationReason.OTHER_BY_LAW, at=END, note="court order"))
    assert reason_at(facts, END - US) is None
    assert reason_at(facts, END) is DenyReason.OTHER_BY_LAW


def test_expiry_wins_over_an_active_status() -> None:
    """The operator's timer may lag: an Active status never extends access past validUntil."""
    facts = grant(valid_until=END, phase="Active")
    assert reason_at(facts, END) is DenyReason.AGREEMENT_EXPIRED


def test_instants_in_other_time_zones_compare_as_instants() -> None:
    almaty = datetime.timezone(datetime.timedelta(hours=5))
    facts = grant(valid_until=END.astimezone(almaty))
    assert reason_at(facts, END - US) is None
    assert reason_at(facts, END) is DenyReason.AGREEMENT_EXPIRED


def test_the_reference_agrees_at_the_boundary() -> None:
    for field in ("valid_until", "grounds_until", "valid_from"):
        facts = grant(**{field: END})
        for now in (END - US, END, END + US):
            allowed = reason_at(facts, now) is None
            reference = Reference([facts], index().functions, (), now)
            assert reference.allows("person:a1", "read", 5, OWNER) is allowed, (field, now)


def test_microseconds_survive_parsing_from_the_resource() -> None:
    body = {
        "metadata": {"name": "g1", "namespace": "housing"},
        "spec": {
            "subject": {"id": "person:a1", "kind": "person"},
            "onBehalfOf": {"bin": OWNER},
            "functions": ["owners-association"],
            "agreement": {
                "number": "1",
                "validFrom": "2026-01-01T00:00:00Z",
                "validUntil": "2026-09-01T15:00:00.000250Z",
            },
            "grounds": {"kind": "Membership", "validUntil": "2026-09-01T15:00:00.5+05:00"},
        },
        "status": {"phase": "Active"},
    }
    facts = grant_facts(AccessGrant.model_validate(body))
    assert facts.valid_until == END
    assert reason_at(facts, END - US) is DenyReason.GROUNDS_ENDED  # 10:00:00.5Z, earlier than the agreement's end
    assert facts.grounds_until == datetime.datetime(2026, 9, 1, 10, 0, 0, 500000, tzinfo=datetime.UTC)
