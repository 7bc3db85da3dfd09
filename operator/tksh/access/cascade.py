"""Which grants a termination ends with it (§20.4, §20.6): a pure function the operator applies.

* Whatever the ground, every grant delegated from the ended grant ends, transitively, on
  ``DELEGATION_TERMINATED`` with ``cascadeFrom`` its own (direct) principal: a delegate never
  outlives its principal (§20.4).
* ``FALSE_INFORMATION`` (§20.6) also ends every other grant of the same subject (``subject.id``),
  with ``cascadeFrom`` the grant the finding was recorded on; their delegates follow as above.

Grants already terminated (``status.terminated`` or phase ``Terminated``) are left alone, but the
walk goes through them, so a live delegate of an ended delegate still ends; the ended grant itself
is not in the result (the operator records it from the request). The result
is in breadth-first order (nearest first, then by id), so applying it in order writes each
principal's record before its delegates'.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from tksh.access.facts import GrantFacts
from tksh.resources.accessgrant import TerminationReason

__all__ = ["CascadeStep", "cascade"]


@dataclasses.dataclass(frozen=True, slots=True)
class CascadeStep:
    """One grant the termination ends: its id, the §20 ground to record, and ``cascadeFrom``."""

    grant: str
    reason: TerminationReason
    cascade_from: str


def _ended(facts: GrantFacts) -> bool:
    return facts.phase == "Terminated" or facts.terminated is not None


def cascade(grants: Iterable[GrantFacts], terminated_id: str, reason: TerminationReason) -> list[CascadeStep]:
    """The grants that end because ``terminated_id`` ends on ``reason`` (see the module docstring)."""
    every = {facts.id: facts for facts in grants}
    delegates: dict[str, list[str]] = {}
    for facts in every.values():
        if facts.delegated_from is not None:
            delegates.setdefault(facts.delegated_from, []).append(facts.id)

    steps: list[CascadeStep] = []
    done = {terminated_id}
    frontier = [terminated_id]
    origin = every.get(terminated_id)
    if reason is TerminationReason.FALSE_INFORMATION and origin is not None:
        subject = origin.subject_id
        same_subject = sorted(g for g, facts in every.items() if facts.subject_id == subject and g not in done)
        for grant_id in same_subject:
            done.add(grant_id)
            if not _ended(every[grant_id]):
                steps.append(CascadeStep(grant_id, TerminationReason.FALSE_INFORMATION, terminated_id))
        frontier.extend(same_subject)
    while frontier:
        following: list[str] = []
        for principal in frontier:
            for grant_id in sorted(delegates.get(principal, ())):
                if grant_id in done:
                    continue
                done.add(grant_id)
                following.append(grant_id)  # walk through ended grants too: their live delegates still end
                if not _ended(every[grant_id]):
                    steps.append(CascadeStep(grant_id, TerminationReason.DELEGATION_TERMINATED, principal))
        frontier = following
    return steps
