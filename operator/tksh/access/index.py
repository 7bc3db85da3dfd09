"""The fast, incremental decision index: the semantics of ``policies/model.conf``, plus time and delegation.

A decision looks up the asker's grants in the requested owner's domain (a per-subject bucket, keyed by
the owner BIN: ``spec.onBehalfOf.bin``), then checks each grant until one allows:

1. *coverage*: the union of the rights of the grant's functions holds (category, action); each scope
   list present includes the category, the owner BIN and the channel (digital object);
2. *in effect at ``now``*: not terminated (``status.terminated``, or a ``spec.termination`` whose
   ``at`` has come), ``now < agreement.validUntil`` and ``now < grounds.validUntil`` (exact to the
   microsecond, whatever the status says: a timer or watch delay cannot extend access),
   ``now >= validFrom``, and phase ``Active`` (the operator's checks passed);
3. *delegation*: a delegated grant is effective only while every grant up its chain is in effect
   (step 2) and *also* covers the request (step 1, in the same owner domain). So a delegate's rights are
   the intersection of its own with each principal's, and it never outlives any of them. A principal
   that ended gives ``DELEGATION_TERMINATED`` naming it; one not started yet gives its own
   ``GRANT_PENDING``/``AGREEMENT_NOT_YET_VALID`` with ``principal`` set; a missing principal or a cycle is
   treated as ended.

The open part (§21) is checked first and allows everyone, registered or not. When every grant denies,
the most informative reason is reported (:class:`tksh.access.reasons.DenyReason` order; ties: the
smallest grant id), with every grant's own verdict in ``considered``.

Updates touch only what changes: a grant update re-sorts one (subject, owner) bucket; a function
update recomputes the rights of the grants naming it (a reverse index); nothing is ever rebuilt as a
whole, so decisions are never blocked by a reload. Buckets are immutable tuples replaced on update, so
a reader never sees a half-updated bucket. One writer (the watch loop) is assumed; reads may interleave.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator, Mapping
from typing import Final

from tksh.access.facts import FunctionRights, GrantFacts, Right
from tksh.access.identifiers import ANONYMOUS
from tksh.access.reasons import TERMINATION_CODES, Decision, DenyReason

__all__ = ["MAX_DELEGATION_DEPTH", "DecisionIndex"]

MAX_DELEGATION_DEPTH: Final = 16
"""Longer chains are treated as broken (they cannot be legitimate, and bound the work of a decision)."""

_OPEN_ALLOW: Final = Decision(True, open_part=True)


class _Entry:
    """One grant as the index holds it: the facts, flattened for speed, and its functions' rights."""

    __slots__ = (
        "allow",
        "categories",
        "dobs",
        "facts",
        "grounds_until",
        "id",
        "is_active",
        "is_terminated",
        "owner_bin",
        "owner_bins",
        "principal",
        "requested",
        "rights",
        "terminated",
        "unknown",
        "valid_from",
        "valid_until",
    )

    def __init__(self, facts: GrantFacts, functions: Mapping[str, FunctionRights]) -> None:
        self.facts = facts
        self.id = facts.id
        self.owner_bin = facts.owner_bin
        self.categories = facts.categories
        self.owner_bins = facts.owner_bins
        self.dobs = facts.digital_objects
        self.valid_from = facts.valid_from
        self.valid_until = facts.valid_until
        self.grounds_until = facts.grounds_until
        self.is_active = facts.phase == "Active"
        self.is_terminated = facts.phase == "Terminated" or facts.terminated is not None
        self.terminated = facts.terminated
        self.requested = facts.requested
        self.principal = facts.delegated_from
        self.allow = Decision(True, grant=facts.id)
        self.rights: FunctionRights = frozenset()
        self.unknown: tuple[str, ...] = ()
        self.refresh(functions)

    def refresh(self, functions: Mapping[str, FunctionRights]) -> None:
        """Recompute the union of the functions' rights (after a function changed)."""
        rights: set[Right] = set()
        unknown = []
        for name in self.facts.functions:
            known = functions.get(name)
            if known is None:
                unknown.append(name)
            else:
                rights |= known
        self.rights = frozenset(rights)
        self.unknown = tuple(sorted(unknown))


def _ineffective(entry: _Entry, now: datetime.datetime) -> Decision | None:
    """Why the grant itself is not in effect at ``now``; ``None`` when it is."""
    if entry.is_terminated:
        record = entry.terminated
        if record is None:
            return Decision(False, DenyReason.TERMINATED, grant=entry.id)
        reason = TERMINATION_CODES[record.reason]
        principal = record.cascade_from if reason is DenyReason.DELEGATION_TERMINATED else None
        return Decision(False, reason, grant=entry.id, instant=record.at, record=record, principal=principal)
    request = entry.requested
    if request is not None and (request.at is None or request.at <= now):
        return Decision(False, TERMINATION_CODES[request.reason], grant=entry.id, instant=request.at, record=request)
    if now >= entry.valid_until:
        return Decision(False, DenyReason.AGREEMENT_EXPIRED, grant=entry.id, instant=entry.valid_until)
    if entry.grounds_until is not None and now >= entry.grounds_until:
        return Decision(False, DenyReason.GROUNDS_ENDED, grant=entry.id, instant=entry.grounds_until)
    if entry.valid_from is not None and now < entry.valid_from:
        return Decision(False, DenyReason.AGREEMENT_NOT_YET_VALID, grant=entry.id, instant=entry.valid_from)
    if not entry.is_active:
        return Decision(False, DenyReason.GRANT_PENDING, grant=entry.id)
    return None


def _uncovered(entry: _Entry, right: Right, owner_bin: str, dob: str | None) -> Decision | None:
    """Why the grant's rights and scope do not include the request; ``None`` when they do."""
    if right not in entry.rights:
        if entry.unknown:
            return Decision(False, DenyReason.UNKNOWN_FUNCTION, grant=entry.id, missing_functions=entry.unknown)
        return Decision(False, DenyReason.FUNCTION_LACKS_RIGHT, grant=entry.id)
    if entry.categories is not None and right[0] not in entry.categories:
        return Decision(False, DenyReason.OUT_OF_SCOPE, grant=entry.id, scope="category")
    if entry.owner_bin != owner_bin or (entry.owner_bins is not None and owner_bin not in entry.owner_bins):
        return Decision(False, DenyReason.OUT_OF_SCOPE, grant=entry.id, scope="owner")
    if entry.dobs is not None and dob not in entry.dobs:
        return Decision(False, DenyReason.OUT_OF_SCOPE, grant=entry.id, scope="digital-object")
    return None


_ENDED: Final = frozenset(TERMINATION_CODES.values()) | {DenyReason.TERMINATED}


class DecisionIndex:
    """Grants and functions, indexed for decisions; see the module docstring for the semantics."""

    def __init__(self, *, open_part: Iterable[Right] = ()) -> None:
        self._functions: dict[str, FunctionRights] = {}
        self._grants: dict[str, _Entry] = {}
        self._buckets: dict[str, dict[str, tuple[_Entry, ...]]] = {}
        self._naming: dict[str, set[str]] = {}
        self._delegates: dict[str, set[str]] = {}
        self._open: FunctionRights = frozenset(open_part)

    @classmethod
    def build(
        cls,
        grants: Iterable[GrantFacts] = (),
        functions: Mapping[str, FunctionRights] | None = None,
        *,
        open_part: Iterable[Right] = (),
    ) -> DecisionIndex:
        """An index holding ``functions`` and ``grants`` (the same as upserting them one by one)."""
        index = cls(open_part=open_part)
        for name, rights in (functions or {}).items():
            index.upsert_function(name, rights)
        for facts in grants:
            index.upsert_grant(facts)
        return index

    # --- reading ------------------------------------------------------------------------------------------------------

    def grant(self, grant_id: str) -> GrantFacts | None:
        entry = self._grants.get(grant_id)
        return None if entry is None else entry.facts

    def grants(self) -> Iterator[GrantFacts]:
        return (entry.facts for entry in self._grants.values())

    @property
    def functions(self) -> Mapping[str, FunctionRights]:
        return dict(self._functions)

    @property
    def open_part(self) -> FunctionRights:
        return self._open

    def delegates_of(self, grant_id: str) -> frozenset[str]:
        """The grants delegated directly from ``grant_id``."""
        return frozenset(self._delegates.get(grant_id, ()))

    def __len__(self) -> int:
        return len(self._grants)

    # --- updates ------------------------------------------------------------------------------------------------------

    def set_open_part(self, rights: Iterable[Right]) -> None:
        self._open = frozenset(rights)

    def upsert_function(self, name: str, rights: FunctionRights | None) -> None:
        """Add or change a function's rights; ``None`` removes it (e.g. its entry became ``Invalid``)."""
        if rights is None:
            self.remove_function(name)
            return
        rights = frozenset(rights)
        if self._functions.get(name) == rights:
            return
        self._functions[name] = rights
        self._refresh_naming(name)

    def remove_function(self, name: str) -> None:
        if self._functions.pop(name, None) is not None:
            self._refresh_naming(name)

    def _refresh_naming(self, name: str) -> None:
        for grant_id in self._naming.get(name, ()):
            self._grants[grant_id].refresh(self._functions)

    def upsert_grant(self, facts: GrantFacts) -> None:
        """Add or replace one grant: touches its bucket and the reverse indexes of what it names."""
        old = self._grants.get(facts.id)
        if old is not None:
            if old.facts == facts:
                return
            self._unlink(old)
        entry = _Entry(facts, self._functions)
        self._grants[facts.id] = entry
        domains = self._buckets.setdefault(facts.subject_id, {})
        bucket = domains.get(facts.owner_bin, ())
        domains[facts.owner_bin] = tuple(sorted((*bucket, entry), key=lambda e: e.id))
        for name in facts.functions:
            self._naming.setdefault(name, set()).add(facts.id)
        if facts.delegated_from is not None:
            self._delegates.setdefault(facts.delegated_from, set()).add(facts.id)

    def remove_grant(self, grant_id: str) -> None:
        entry = self._grants.pop(grant_id, None)
        if entry is not None:
            self._unlink(entry)

    def _unlink(self, entry: _Entry) -> None:
        facts = entry.facts
        domains = self._buckets[facts.subject_id]
        bucket = tuple(e for e in domains[facts.owner_bin] if e.id != facts.id)
        if bucket:
            domains[facts.owner_bin] = bucket
        else:
            del domains[facts.owner_bin]
            if not domains:
                del self._buckets[facts.subject_id]
        for name in facts.functions:
            _discard(self._naming, name, facts.id)
        if facts.delegated_from is not None:
            _discard(self._delegates, facts.delegated_from, facts.id)

    # --- decisions ----------------------------------------------------------------------------------------------------

    def decide(
        self,
        subject_id: str,
        action: str,
        category: int,
        owner_bin: str,
        *,
        digital_object: str | None = None,
        now: datetime.datetime,
    ) -> Decision:
        """May ``subject_id`` do ``action`` on ``category`` information of ``owner_bin``, through ``digital_object``
        (``namespace/name``; ``None``: the personal cabinet), at the instant ``now`` (timezone-aware)?

        Identifiers are matched, not parsed: an unknown or malformed one simply matches nothing (validate
        input at the API boundary with :mod:`tksh.access.identifiers` to tell the caller why).
        """
        right = (category, action)
        if right in self._open:
            return _OPEN_ALLOW
        if subject_id == ANONYMOUS:
            return Decision(False, DenyReason.AUTHENTICATION_REQUIRED, category=category, action=action)
        domains = self._buckets.get(subject_id)
        entries = domains.get(owner_bin) if domains is not None else None
        if not entries:
            return Decision(False, DenyReason.NO_GRANT, category=category, action=action)
        denials = []
        for entry in entries:
            deny = _uncovered(entry, right, owner_bin, digital_object) or _ineffective(entry, now)
            if deny is None and entry.principal is not None:
                deny = self._chain(entry, right, owner_bin, digital_object, now)
            if deny is None:
                return entry.allow
            denials.append(deny)
        best = denials[0]  # entries are sorted by id: of equally informative denials, the smallest id wins
        for deny in denials[1:]:
            if _rank(deny) > _rank(best):
                best = deny
        return Decision(
            False,
            best.reason,
            grant=best.grant,
            principal=best.principal,
            instant=best.instant,
            record=best.record,
            scope=best.scope,
            missing_functions=best.missing_functions,
            category=category,
            action=action,
            considered=tuple((d.grant or "", d.reason or DenyReason.NO_GRANT) for d in denials),
        )

    def _chain(
        self, entry: _Entry, right: Right, owner_bin: str, dob: str | None, now: datetime.datetime
    ) -> Decision | None:
        """Check the delegation chain of ``entry``: every principal in effect, then every principal covering."""
        chain: list[_Entry] = []
        seen = {entry.id}
        principal_id = entry.principal
        while principal_id is not None:
            principal = self._grants.get(principal_id)
            if principal is None or principal_id in seen or len(chain) >= MAX_DELEGATION_DEPTH:
                return Decision(False, DenyReason.DELEGATION_TERMINATED, grant=entry.id, principal=principal_id)
            ended = _ineffective(principal, now)
            if ended is not None:
                reason = ended.reason
                if reason in _ENDED:
                    return Decision(False, DenyReason.DELEGATION_TERMINATED, grant=entry.id, principal=principal_id,
                                    instant=ended.instant, record=ended.record)
                return Decision(False, reason, grant=entry.id, principal=principal_id, instant=ended.instant)
            chain.append(principal)
            seen.add(principal_id)
            principal_id = principal.principal
        for principal in chain:
            if _uncovered(principal, right, owner_bin, dob) is not None:
                return Decision(False, DenyReason.DELEGATION_EXCEEDS_PRINCIPAL, grant=entry.id, principal=principal.id)
        return None


def _rank(decision: Decision) -> int:
    return -1 if decision.reason is None else decision.reason.rank


def _discard(index: dict[str, set[str]], key: str, value: str) -> None:
    values = index.get(key)
    if values is not None:
        values.discard(value)
        if not values:
            del index[key]
