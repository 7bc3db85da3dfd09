"""The admission rules of ``AccessGrant`` (§20, §20.4), as pure functions shared by the webhook and the lifecycle.

- :func:`delegation_problems`: a delegated grant never gives more than its principal holds (functions a subset,
  each scope list within the principal's, the same ``onBehalfOf.bin``) nor outlives it (``agreement.validUntil``
  and ``grounds.validUntil`` not after the principal's end). The operator reports the same problems in the
  ``Valid`` condition (a principal may narrow after its delegate was admitted).
- :func:`check_grant`: the validating webhook's whole rule for a CREATE or UPDATE: the spec of a terminated
  grant is frozen (it is never resumed: a new grant is needed), ``spec.termination`` once set is neither
  removed nor changed, ``OTHER_BY_LAW`` needs a note, and a delegated grant's principal exists, is not
  terminated and bounds it as above.

Every refusal names the field (:class:`~tksh.problems.FieldProblem`); messages name grants, never people.
"""

from __future__ import annotations

import collections
import datetime
from collections.abc import Mapping
from typing import Any

import pydantic

from tksh.access.facts import GrantFacts, TerminationFacts, grant_facts
from tksh.access.identifiers import IdentifierError
from tksh.access.reasons import format_instant
from tksh.problems import FieldProblem
from tksh.resources.accessgrant import AccessGrant, TerminationReason

__all__ = [
    "PRINCIPAL_UNKNOWN",
    "check_grant",
    "delegation_problems",
    "ended",
    "facts_of",
    "principal_end",
    "termination_problem",
]

PRINCIPAL_UNKNOWN = object()
"""Passed as ``principal`` when the operator's cache does not hold the named grant (absent, or not seen yet)."""


def _spec_field(field: str) -> str:
    return field if field.startswith("metadata.") or field == "id" else f"spec.{field}"


_FACTS_CACHED = 1 << 17
"""Grants whose last stored facts are kept (one entry per grant: about 100 bytes besides the facts, which the
operator's index shares)."""
_facts_cache: collections.OrderedDict[str, tuple[tuple[Any, ...], GrantFacts | FieldProblemError]] = \
    collections.OrderedDict()


def facts_of(obj: Mapping[str, Any], namespace: str | None = None, *, stored: bool = False) -> GrantFacts:
    """The facts of a grant object (``namespace`` fills a missing ``metadata.namespace``).

    Raises :class:`FieldProblemError` naming the offending field. The facts depend on the name, the spec,
    ``status.phase`` and ``status.terminated`` only, so only those are read (the conditions, outbox and token
    fields are not validated here: the API server's schema does that).

    ``stored``: ``obj`` is a version exactly as the API server stored it (a watch event, a list item, a write's
    answer). Then its ``uid`` and ``metadata.generation`` (which the API server raises on every change of the
    spec) name its spec, and the facts are read again only when the generation, the phase or the termination
    record changed: the operator asks for the facts of every watch event of a grant in its index, its lifecycle
    and its token handler, and most events are status writes that change none of those (issue #7, item 5).
    Never for an object changed since it was read (an admission request's new object carries the old
    ``generation``), nor for one built locally.
    """
    meta_of = obj.get("metadata")
    meta: Mapping[str, Any] = meta_of if isinstance(meta_of, Mapping) else {}
    uid, generation = meta.get("uid"), meta.get("generation")
    if not (stored and isinstance(uid, str) and uid and isinstance(generation, int)):
        return _facts_of(obj, namespace)
    status_of = obj.get("status")
    status: Mapping[str, Any] = status_of if isinstance(status_of, Mapping) else {}
    fingerprint = (generation, namespace, meta.get("name"), meta.get("namespace"), status.get("phase"),
                   repr(status.get("terminated")))
    cached = _facts_cache.get(uid)
    if cached is not None and cached[0] == fingerprint:
        _facts_cache.move_to_end(uid)
        known = cached[1]
    else:
        try:
            known = _facts_of(obj, namespace)
        except FieldProblemError as error:
            known = error
        _facts_cache[uid] = (fingerprint, known)
        _facts_cache.move_to_end(uid)
        if len(_facts_cache) > _FACTS_CACHED:
            _facts_cache.popitem(last=False)
    if isinstance(known, FieldProblemError):
        raise FieldProblemError(known.problem)
    return known


def _facts_of(obj: Mapping[str, Any], namespace: str | None) -> GrantFacts:
    meta = obj.get("metadata")
    meta = {k: meta[k] for k in ("name", "namespace") if k in meta} if isinstance(meta, Mapping) else meta
    if namespace and isinstance(meta, dict) and not meta.get("namespace"):
        meta["namespace"] = namespace
    status = obj.get("status")
    if isinstance(status, Mapping):
        status = {k: status[k] for k in ("phase", "terminated") if k in status}
    body = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": meta, "spec": obj.get("spec"),
            **({} if status is None else {"status": status})}
    body = {k: v for k, v in body.items() if v is not None or k in ("metadata", "spec")}
    try:
        return grant_facts(AccessGrant.model_validate(body))
    except IdentifierError as error:
        raise FieldProblemError(FieldProblem(_spec_field(error.field), error.rule)) from None
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "spec"
        raise FieldProblemError(FieldProblem(where, str(first["msg"]))) from None


class FieldProblemError(ValueError):
    """A grant cannot be read; ``problem`` names the field."""

    def __init__(self, problem: FieldProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def principal_end(principal: GrantFacts) -> datetime.datetime:
    """When the principal's access ends by its dates: the earlier of its agreement's and its grounds' end."""
    if principal.grounds_until is not None:
        return min(principal.valid_until, principal.grounds_until)
    return principal.valid_until


def ended(facts: GrantFacts, now: datetime.datetime) -> TerminationFacts | None:
    """Whether a grant's access has ended at ``now`` by itself (record, effective request, dates); how."""
    if facts.terminated is not None:
        return facts.terminated
    if facts.phase == "Terminated":
        return TerminationFacts(reason=TerminationReason.OTHER_BY_LAW, note="phase Terminated without a record")
    request = facts.requested
    if request is not None and (request.at is None or request.at <= now) and termination_problem(request) is None:
        return request
    if facts.valid_until <= now:
        return TerminationFacts(reason=TerminationReason.EXPIRED, at=facts.valid_until)
    if facts.grounds_until is not None and facts.grounds_until <= now:
        return TerminationFacts(reason=TerminationReason.GROUNDS_ENDED, at=facts.grounds_until)
    return None


def termination_problem(request: TerminationFacts) -> FieldProblem | None:
    """What is wrong with a termination request beyond the schema (OTHER_BY_LAW without a note)."""
    if request.reason is TerminationReason.OTHER_BY_LAW and not (request.note or "").strip():
        return FieldProblem("spec.termination.note", "OTHER_BY_LAW (§20.7) needs a note naming the legal act")
    return None


def _names(values: frozenset[Any]) -> str:
    return ", ".join(str(v) for v in sorted(values))


def _within(
    field: str, mine: frozenset[Any] | None, theirs: frozenset[Any] | None, principal: str
) -> list[FieldProblem]:
    if theirs is None:
        return []  # the principal is not narrowed here
    if mine is None:
        return [FieldProblem(field, f"must be narrowed to the principal grant {principal}'s ({_names(theirs)}): "
                                    "a delegate never gets more than its principal")]
    extra = mine - theirs
    if extra:
        return [FieldProblem(field, f"{_names(extra)} outside the principal grant {principal}'s ({_names(theirs)}): "
                                    "a delegate never gets more than its principal")]
    return []


def delegation_problems(delegate: GrantFacts, principal: GrantFacts) -> list[FieldProblem]:
    """Where ``delegate`` gives more than ``principal`` holds, or outlives it (empty: within it)."""
    p = principal.id
    problems: list[FieldProblem] = []
    if delegate.owner_bin != principal.owner_bin:
        problems.append(FieldProblem("spec.onBehalfOf.bin", f"must be the principal grant {p}'s: a delegate acts on "
                                                            "behalf of the same subject"))
    extra = delegate.functions - principal.functions
    if extra:
        problems.append(FieldProblem("spec.functions", f"{_names(extra)} not held by the principal grant {p} "
                                                       f"({_names(principal.functions)})"))
    problems += _within("spec.scope.categories", delegate.categories, principal.categories, p)
    problems += _within("spec.scope.ownerBins", delegate.owner_bins, principal.owner_bins, p)
    problems += _within("spec.scope.digitalObjects", delegate.digital_objects, principal.digital_objects, p)
    end = principal_end(principal)
    if delegate.valid_until > end:
        problems.append(FieldProblem("spec.agreement.validUntil", f"must not be after {format_instant(end)}, when the "
                                                                   f"principal grant {p} ends"))
    if delegate.grounds_until is not None and delegate.grounds_until > end:
        problems.append(FieldProblem("spec.grounds.validUntil", f"must not be after {format_instant(end)}, when the "
                                                                 f"principal grant {p} ends"))
    return problems


def _terminated(obj: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    status = obj.get("status") if isinstance(obj, Mapping) else None
    if not isinstance(status, Mapping):
        return None
    record = status.get("terminated")
    if isinstance(record, Mapping):
        return record
    return {} if status.get("phase") == "Terminated" else None


def _without_termination(spec: object) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k != "termination"} if isinstance(spec, Mapping) else {}


def check_grant(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    principal: GrantFacts | object | None,
    now: datetime.datetime,
    *,
    namespace: str | None = None,
) -> FieldProblem | None:
    """``None`` if a CREATE (``old`` is ``None``) or UPDATE of a grant may pass; else the first problem.

    ``principal``: the facts of the grant ``spec.delegatedFrom`` names, ``None`` when the new spec names none,
    or :data:`PRINCIPAL_UNKNOWN` when the operator's cache does not hold it.
    """
    old_spec = old.get("spec") if isinstance(old, Mapping) else None
    new_spec = new.get("spec")
    if old is not None and old_spec == new_spec:
        return None  # metadata or status only: nothing of the grant changes
    record = _terminated(old)
    if record is not None:
        how = f" on {record.get('reason')} at {record.get('at')}" if record.get("reason") else ""
        return FieldProblem("spec", f"the grant was terminated{how} and is never resumed nor changed: create a new "
                                    "AccessGrant")
    old_request = old_spec.get("termination") if isinstance(old_spec, Mapping) else None
    new_request = new_spec.get("termination") if isinstance(new_spec, Mapping) else None
    try:
        facts = facts_of(new, namespace)
    except FieldProblemError as error:
        return error.problem
    if facts.requested is not None and (problem := termination_problem(facts.requested)) is not None:
        return problem
    if old_request is not None and old_request != new_request:
        try:
            old_facts = facts_of(old or {}, namespace)
        except FieldProblemError:
            old_facts = None
        valid_before = old_facts is not None and old_facts.requested is not None and \
            termination_problem(old_facts.requested) is None
        if valid_before:  # an invalid request (no note for OTHER_BY_LAW) may still be completed
            what = "removed" if new_request is None else "changed"
            return FieldProblem("spec.termination", f"a termination request once made cannot be {what} (§20: the "
                                                    "access ends; a new grant is needed to restore it)")
    if facts.delegated_from is None or (old is not None and _without_termination(old_spec) ==
                                        _without_termination(new_spec)):
        return None  # not delegated, or only a termination request was added: ending access is always possible
    if facts.delegated_from == facts.id:
        return FieldProblem("spec.delegatedFrom", "a grant cannot be delegated from itself")
    name = facts.delegated_from.partition("/")[2]
    if principal is PRINCIPAL_UNKNOWN or principal is None:
        return FieldProblem("spec.delegatedFrom", f"the principal grant {name} does not exist in this namespace, or "
                                                  "could not be read just now: retry")
    assert isinstance(principal, GrantFacts)
    if principal.delegated_from == facts.id:
        return FieldProblem("spec.delegatedFrom", f"the principal grant {name} is delegated from this grant: a cycle")
    if (end := ended(principal, now)) is not None:
        return FieldProblem("spec.delegatedFrom", f"the principal grant {name} has ended ({end.reason}, "
                                                  f"{format_instant(end.at)}): nothing can be delegated from it")
    problems = delegation_problems(facts, principal)
    return problems[0] if problems else None
