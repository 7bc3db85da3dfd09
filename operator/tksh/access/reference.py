"""The reference decision: stock ``casbin.Enforcer`` / ``casbin.FastEnforcer`` on ``policies/model.conf``.

This is the definition the fast index (:mod:`tksh.access.index`) is tested against (allow/deny must
agree) and measured against (``bench/bench_decisions.py``). It is fed only through Casbin's API
(``add_policies``, ``add_named_grouping_policies``); user data never becomes CSV text.

What the model cannot express, and how the reference handles it: Casbin has no notion of time and
cannot intersect the rights of two policy lines. So the reference is a *snapshot at an instant*
``now``, built by :func:`reference_policy`:

1. **Instants and status.** A grant is fed only if it is in effect at ``now``: phase ``Active``, no
   ``status.terminated``, no ``spec.termination`` whose ``at`` is missing or ``<= now``,
   ``validFrom <= now`` (``validFrom`` absent: no bound), ``now < agreement.validUntil`` and
   ``now < grounds.validUntil``. Every other grant is left out, so it allows nothing.
2. **Delegation.** A delegated grant is fed only if every grant up its ``delegatedFrom`` chain exists, is
   in effect at ``now`` (1), acts for the same owner BIN, and the chain has no cycle and at most
   ``MAX_DELEGATION_DEPTH`` principals. Its rights are then materialised as the *intersection* along
   the chain: the set of (category, action) pairs each grant's own functions give within its own
   category scope, intersected over the chain, linked directly ``grant:<id> -> right:<c>:<a>`` (its
   ``cats`` field is ``any``, the category scope being already applied); its owner and digital-object
   scopes are the intersections of the chain's lists (a missing list is the universe).
3. **Everything else is Casbin's**: the subject and domain match, the role graph from grants to
   functions to rights (unknown functions are dangling nodes that carry nothing), the scope lists of
   undelegated grants, and the open part (the ``@anonymous`` line of ``policies/open-part.csv``).

``FastEnforcer`` is built with ``cache_key_order=[0, 1]`` (it keeps only the lines of the asker and
domain before matching). That filter also hides the open-part line (subject ``@anonymous``, domain
``*``), so :meth:`Reference.allows` asks a FastEnforcer a second time as ``("@anonymous", "*")``; a
plain Enforcer answers in one call.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping
from typing import Any

import casbin

from tksh.access.facts import FunctionRights, GrantFacts, Right
from tksh.access.identifiers import ANONYMOUS
from tksh.access.index import MAX_DELEGATION_DEPTH
from tksh.access.policy import (
    ANY,
    LISTED,
    OPEN_PART_DOMAIN,
    OPEN_PART_NODE,
    category_node,
    function_node,
    grant_node,
    model_path,
    owner_node,
    right_node,
    via_node,
)

__all__ = ["HAS_FAST_ENFORCER", "Reference", "ReferencePolicy", "build_enforcer", "in_effect", "reference_policy"]

HAS_FAST_ENFORCER: bool = hasattr(casbin, "FastEnforcer")
FAST_CACHE_KEY_ORDER = (0, 1)


@dataclasses.dataclass(frozen=True)
class ReferencePolicy:
    """Casbin policy lines (``p``) and role links (``g``), unique, in a deterministic order."""

    lines: list[list[str]]
    links: list[list[str]]


def in_effect(grant: GrantFacts, now: datetime.datetime) -> bool:
    """Whether the grant itself is in effect at ``now`` (rule 1 of the module docstring)."""
    if grant.phase != "Active" or grant.terminated is not None:
        return False
    if grant.requested is not None and (grant.requested.at is None or grant.requested.at <= now):
        return False
    if grant.valid_from is not None and now < grant.valid_from:
        return False
    return now < grant.valid_until and (grant.grounds_until is None or now < grant.grounds_until)


def _own_rights(grant: GrantFacts, functions: Mapping[str, FunctionRights]) -> set[Right]:
    rights = {right for name in grant.functions for right in functions.get(name, ())}
    return rights if grant.categories is None else {r for r in rights if r[0] in grant.categories}


def _meet(sets: Iterable[frozenset[str] | None]) -> frozenset[str] | None:
    result: frozenset[str] | None = None
    for value in sets:
        if value is not None:
            result = value if result is None else result & value
    return result


def _chain(grant: GrantFacts, grants: Mapping[str, GrantFacts], now: datetime.datetime) -> list[GrantFacts] | None:
    """``[grant, principal, ...]`` if the whole chain is in effect (rule 2), else ``None``."""
    chain = [grant]
    while chain[-1].delegated_from is not None:
        principal = grants.get(chain[-1].delegated_from)
        if principal is None or principal in chain or len(chain) > MAX_DELEGATION_DEPTH:
            return None
        if not in_effect(principal, now) or principal.owner_bin != grant.owner_bin:
            return None
        chain.append(principal)
    return chain


def reference_policy(
    grants: Iterable[GrantFacts],
    functions: Mapping[str, FunctionRights],
    open_part: Iterable[Right],
    now: datetime.datetime,
) -> ReferencePolicy:
    """The policy in effect at ``now`` (see the module docstring for exactly what is fed and how)."""
    by_id = {grant.id: grant for grant in grants}
    lines: dict[tuple[str, ...], None] = {}
    links: dict[tuple[str, str], None] = {}
    for name, carried in sorted(functions.items()):
        for category, action in sorted(carried):
            links[function_node(name), right_node(category, action)] = None
    open_rights = sorted(open_part)
    if open_rights:
        lines[ANONYMOUS, OPEN_PART_DOMAIN, OPEN_PART_NODE, ANY, ANY, ANY] = None
        for category, action in open_rights:
            links[OPEN_PART_NODE, right_node(category, action)] = None
    for grant in sorted(by_id.values(), key=lambda g: g.id):
        if not in_effect(grant, now):
            continue
        node = grant_node(grant.id)
        cats: frozenset[int] | None
        owners: frozenset[str] | None
        objs: frozenset[str] | None
        if grant.delegated_from is None:
            cats, owners, objs = grant.categories, grant.owner_bins, grant.digital_objects
            for name in sorted(grant.functions):
                links[node, function_node(name)] = None
        else:
            chain = _chain(grant, by_id, now)
            if chain is None:
                continue
            rights = set.intersection(*(_own_rights(member, functions) for member in chain))
            for category, action in sorted(rights):
                links[node, right_node(category, action)] = None
            cats = None
            owners = _meet(member.owner_bins for member in chain)
            objs = _meet(member.digital_objects for member in chain)
        for category in sorted(cats or ()):
            links[node, category_node(category)] = None
        for bin_ in sorted(owners or ()):
            links[node, owner_node(bin_)] = None
        for dob in sorted(objs or ()):
            links[node, via_node(dob)] = None
        flags = tuple(ANY if scope is None else LISTED for scope in (cats, owners, objs))
        lines[(grant.subject_id, grant.owner_bin, node, *flags)] = None
    return ReferencePolicy([list(line) for line in lines], [list(link) for link in links])


def build_enforcer(policy: ReferencePolicy, *, fast: bool = False) -> Any:
    """A stock ``casbin.Enforcer`` (or ``FastEnforcer``) on ``policies/model.conf``, fed through the API."""
    if fast:
        if not HAS_FAST_ENFORCER:
            raise RuntimeError("this pycasbin has no FastEnforcer")
        enforcer = casbin.FastEnforcer(str(model_path()), cache_key_order=list(FAST_CACHE_KEY_ORDER))
    else:
        enforcer = casbin.Enforcer(str(model_path()))
    if policy.lines:
        enforcer.add_policies(policy.lines)
    if policy.links:
        enforcer.add_named_grouping_policies("g", policy.links)
    return enforcer


class Reference:
    """A reference decision point frozen at ``now``: ``allows(...)`` asks stock Casbin."""

    def __init__(
        self,
        grants: Iterable[GrantFacts],
        functions: Mapping[str, FunctionRights],
        open_part: Iterable[Right],
        now: datetime.datetime,
        *,
        fast: bool = False,
    ) -> None:
        self.now = now
        self.fast = fast
        self.policy = reference_policy(grants, functions, open_part, now)
        self.enforcer = build_enforcer(self.policy, fast=fast)

    def allows(
        self, subject_id: str, action: str, category: int, owner_bin: str, *, digital_object: str | None = None
    ) -> bool:
        """Casbin's answer for the request, at the snapshot's ``now``."""
        via = digital_object or ""
        if self.enforcer.enforce(subject_id, owner_bin, str(category), action, via):
            return True
        return self.fast and bool(self.enforcer.enforce(ANONYMOUS, OPEN_PART_DOMAIN, str(category), action, via))
