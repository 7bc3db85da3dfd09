"""How an ``AccessGrant``'s access ends: the seven grounds of §20 as data, and the earliest that applies.

An :class:`Ending` is one termination (reason, at, by, note, cascadeFrom); :func:`earliest_ending` finds every
one that has happened by ``now`` and returns the earliest (ties: the order of §20):

* the grant's own ``spec.termination`` (any ground; at its ``at``, or at once; OTHER_BY_LAW only with a note);
* ``EXPIRED`` at ``agreement.validUntil``; ``GROUNDS_ENDED`` at ``grounds.validUntil``;
* ``DELEGATION_TERMINATED`` when a grant up the delegation chain has ended (recorded, requested or by its
  dates), at that grant's end, ``cascadeFrom`` the *direct* principal; an Active delegate whose principal no
  longer exists ends at once;
* ``FALSE_INFORMATION`` when another grant of the same ``subject.id`` in the namespace ended on it, unless this
  grant was created after that finding (a new grant stands); ``cascadeFrom`` the grant it was found on.

What the operator knows of the other grants is :class:`Indexed` (facts and creation time). Pure.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from tksh.access.admission import ended, termination_problem
from tksh.access.facts import GrantFacts, TerminationFacts
from tksh.access.index import MAX_DELEGATION_DEPTH
from tksh.conditions import rfc3339
from tksh.resources.accessgrant import TerminationReason

__all__ = ["OPERATOR", "Ending", "Indexed", "earliest_ending"]

OPERATOR = "tksh-operator"
"""``by`` of the terminations the operator records itself (dates, cascades)."""
_ORDER = {reason: i for i, reason in enumerate(TerminationReason)}


@dataclasses.dataclass(frozen=True, slots=True)
class Indexed:
    """What the operator keeps of each grant: its facts (``None``: unreadable) and its creation time."""

    facts: GrantFacts | None
    created: datetime.datetime | None = None


@dataclasses.dataclass(frozen=True)
class Ending:
    """One way the access ends: the §20 ground, when, by whom, why, and the grant it came from (a name)."""

    reason: TerminationReason
    at: datetime.datetime
    by: str | None = None
    note: str | None = None
    cascade_from: str | None = None

    def record(self) -> dict[str, Any]:
        fields = {"reason": str(self.reason), "at": rfc3339(self.at), "by": self.by,
                  "cascadeFrom": self.cascade_from, "note": self.note[:1024] if self.note else None}
        return {k: v for k, v in fields.items() if v is not None}


def _at(end: TerminationFacts, now: datetime.datetime) -> datetime.datetime:
    return end.at if end.at is not None else now


def _chain_end(facts: GrantFacts, grants: Mapping[str, Indexed], now: datetime.datetime,
               created: datetime.datetime | None, was_active: bool) -> Ending | None:
    """DELEGATION_TERMINATED: the earliest end of a grant up the chain (``cascadeFrom``: the direct principal)."""
    direct = facts.delegated_from
    if direct is None:
        return None
    name = direct.partition("/")[2]
    if direct not in grants:
        if was_active:
            return Ending(TerminationReason.DELEGATION_TERMINATED, now, OPERATOR,
                          f"the principal grant {name} no longer exists", name)
        return None
    found: list[tuple[datetime.datetime, str, TerminationFacts]] = []
    seen: set[str] = {facts.id}
    current_id: str | None = direct
    while current_id is not None and current_id not in seen and len(seen) <= MAX_DELEGATION_DEPTH:
        seen.add(current_id)
        known = grants.get(current_id)
        if known is None or known.facts is None:
            break
        end = ended(known.facts, now)
        if end is not None:
            found.append((_at(end, now), current_id, end))
        current_id = known.facts.delegated_from
    if not found:
        return None
    at, origin, end = min(found, key=lambda f: f[0])
    at = max(at, created) if created is not None else at
    up = "" if origin == direct else f" (grant {origin.partition('/')[2]} up the delegation chain)"
    return Ending(TerminationReason.DELEGATION_TERMINATED, at, OPERATOR,
                  f"the principal's access ended{up}: {end.reason}", name)


def _false_information(facts: GrantFacts, same_subject: Iterable[Indexed], now: datetime.datetime,
                       created: datetime.datetime | None) -> Ending | None:
    """FALSE_INFORMATION found on a grant of the same subject in the namespace (``cascadeFrom``: that grant)."""
    found: list[tuple[datetime.datetime, str]] = []
    for other in same_subject:
        of = other.facts
        if of is None or of.id == facts.id or of.subject_id != facts.subject_id or of.namespace != facts.namespace:
            continue
        end = ended(of, now)
        if end is None or end.reason is not TerminationReason.FALSE_INFORMATION:
            continue
        at, origin = _at(end, now), end.cascade_from or of.id
        if origin != facts.id and (created is None or created <= at):
            found.append((at, origin))
    if not found:
        return None
    at, origin = min(found)
    name = origin.partition("/")[2]
    return Ending(TerminationReason.FALSE_INFORMATION, at, OPERATOR,
                  f"false information in the subject's application was found (grant {name})", name)


def earliest_ending(facts: GrantFacts, grants: Mapping[str, Indexed], same_subject: Iterable[Indexed],
                    now: datetime.datetime, *, created: datetime.datetime | None = None,
                    was_active: bool = False) -> Ending | None:
    """The earliest of every way the access has ended by ``now`` (ties: the order of §20)."""
    candidates = []
    request = facts.requested
    if request is not None and (request.at is None or request.at <= now) and termination_problem(request) is None:
        candidates.append(Ending(request.reason, request.at or now, request.by, request.note))
    if facts.valid_until <= now:
        candidates.append(Ending(TerminationReason.EXPIRED, facts.valid_until, OPERATOR,
                                 "the agreement's term ended"))
    if facts.grounds_until is not None and facts.grounds_until <= now:
        candidates.append(Ending(TerminationReason.GROUNDS_ENDED, facts.grounds_until, OPERATOR,
                                 "the grounds' term ended"))
    for found in (_chain_end(facts, grants, now, created, was_active),
                  _false_information(facts, same_subject, now, created)):
        if found is not None:
            candidates.append(found)
    return min(candidates, key=lambda e: (e.at, _ORDER[e.reason]), default=None)
