"""Builders shared by the access tests: grants with sensible defaults around a fixed instant."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from tksh.access import DecisionIndex, FunctionRights, GrantFacts, TerminationFacts
from tksh.resources.accessgrant import TerminationReason

UTC = datetime.UTC
T0 = datetime.datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
"""The instant most tests decide at."""
US = datetime.timedelta(microseconds=1)
DAY = datetime.timedelta(days=1)
OWNER = "140540001231"
OTHER_OWNER = "210987654321"

ALL = frozenset({(c, a) for c in range(1, 16) for a in ("read", "write", "sign")})
FUNCTIONS: dict[str, FunctionRights] = {
    "owners-association": frozenset(
        {(1, "read")}
        | {(c, a) for c in (2, 3, 4, 7, 8) for a in ("read", "write")}
        | {(c, a) for c in (5, 6) for a in ("read", "write", "sign")}
    ),
    "reports-reader": frozenset({(5, "read"), (6, "read")}),
    "meters": frozenset({(12, "read"), (13, "read"), (13, "write")}),
}


def grant(grant_id: str = "housing/g1", subject: str = "person:a1", /, **changes: Any) -> GrantFacts:
    """An Active grant of ``owners-association`` for OWNER, valid from a day before T0 to a year after."""
    base = GrantFacts(
        id=grant_id,
        subject_id=subject,
        owner_bin=OWNER,
        functions=frozenset({"owners-association"}),
        valid_from=T0 - DAY,
        valid_until=T0 + 365 * DAY,
        phase="Active",
    )
    if "functions" in changes:
        changes["functions"] = frozenset(changes["functions"])
    for key in ("categories", "owner_bins", "digital_objects"):
        if changes.get(key) is not None:
            changes[key] = frozenset(changes[key])
    return dataclasses.replace(base, **changes)


def terminated(facts: GrantFacts, reason: TerminationReason, **record: Any) -> GrantFacts:
    """``facts`` with phase Terminated and a status record (at T0 - 1 h unless given)."""
    record.setdefault("at", T0 - datetime.timedelta(hours=1))
    return dataclasses.replace(facts, phase="Terminated", terminated=TerminationFacts(reason=reason, **record))


def index(*grants: GrantFacts, functions: dict[str, FunctionRights] | None = None, **kw: Any) -> DecisionIndex:
    return DecisionIndex.build(grants, FUNCTIONS if functions is None else functions, **kw)
