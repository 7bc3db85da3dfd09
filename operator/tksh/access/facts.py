"""What a decision needs from the resources, and nothing else: :class:`GrantFacts` and function rights.

An ``AccessGrant`` carries display names, agreement numbers, outboxes and tokens; a decision needs
only identifiers, sets and instants. :func:`grant_facts` extracts those (validating every identifier,
see :mod:`tksh.access.identifiers`) and drops the rest, so nothing a person can type into a name
ever reaches the decision point's data. :func:`function_rights` does the same for a
``SubjectFunction``.

Conventions:

* a grant's id is ``namespace/name``; ``delegatedFrom`` and ``scope.digitalObjects`` name objects of
  the grant's own namespace and become ``namespace/name`` ids as well;
* an empty scope list does not narrow and becomes ``None`` (``frozenset()`` would mean "nothing");
* ``validFrom`` defaults to ``signedAt`` (the agreement's own default), and to no lower bound;
* ``spec.termination`` is kept as a *request*: it ends the access at its ``at`` (at once without one),
  even before the operator has written ``status.terminated``.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable
from typing import Literal

from tksh.access.identifiers import (
    IdentifierError,
    validate_action,
    validate_bin,
    validate_category,
    validate_digital_object_id,
    validate_function_name,
    validate_grant_id,
    validate_namespace,
    validate_object_name,
    validate_subject_id,
)
from tksh.resources.accessgrant import AccessGrant, TerminationReason
from tksh.resources.subjectfunction import SubjectFunction

__all__ = [
    "Action",
    "FunctionRights",
    "GrantFacts",
    "GrantPhase",
    "Right",
    "TerminationFacts",
    "function_rights",
    "grant_facts",
    "rights_of",
]

Action = Literal["read", "write", "sign"]
GrantPhase = Literal["Pending", "Active", "Terminated"]
Right = tuple[int, str]
"""One right: (§4 category, action)."""
FunctionRights = frozenset[Right]
"""The rights a function carries."""


@dataclasses.dataclass(frozen=True, slots=True)
class TerminationFacts:
    """A termination: the record of ``status.terminated``, or the request of ``spec.termination``.

    ``at`` is ``None`` only for a request without a date, which takes effect at once.
    """

    reason: TerminationReason
    at: datetime.datetime | None = None
    by: str | None = None
    note: str | None = None
    cascade_from: str | None = None
    """The id (``namespace/name``) of the grant whose end caused this one's."""


@dataclasses.dataclass(frozen=True, slots=True)
class GrantFacts:
    """The decision-relevant content of one ``AccessGrant``. Identifiers only; no display names."""

    id: str
    """``namespace/name``."""
    subject_id: str
    owner_bin: str
    """``spec.onBehalfOf.bin``: the domain of the grant."""
    functions: frozenset[str]
    valid_until: datetime.datetime
    valid_from: datetime.datetime | None = None
    grounds_until: datetime.datetime | None = None
    categories: frozenset[int] | None = None
    owner_bins: frozenset[str] | None = None
    digital_objects: frozenset[str] | None = None
    """``namespace/name`` ids; ``None``: not narrowed."""
    phase: GrantPhase | None = None
    terminated: TerminationFacts | None = None
    """``status.terminated``."""
    requested: TerminationFacts | None = None
    """``spec.termination``."""
    delegated_from: str | None = None
    """The principal grant's id (``namespace/name``)."""

    def __post_init__(self) -> None:
        validate_grant_id(self.id, "id")
        validate_subject_id(self.subject_id, "subject.id")
        validate_bin(self.owner_bin, "onBehalfOf.bin")
        if not self.functions:
            raise IdentifierError("functions", "must name at least one function")
        for name in self.functions:
            validate_function_name(name, "functions[]")
        for category in self.categories or ():
            validate_category(category, "scope.categories[]")
        for bin_ in self.owner_bins or ():
            validate_bin(bin_, "scope.ownerBins[]")
        for dob in self.digital_objects or ():
            validate_digital_object_id(dob, "scope.digitalObjects[]")
        if self.delegated_from is not None:
            validate_grant_id(self.delegated_from, "delegatedFrom")
        for field, moment in (
            ("agreement.validUntil", self.valid_until),
            ("agreement.validFrom", self.valid_from),
            ("grounds.validUntil", self.grounds_until),
        ):
            if moment is not None and moment.tzinfo is None:
                raise IdentifierError(field, "must be a timezone-aware instant")

    @property
    def namespace(self) -> str:
        return self.id.partition("/")[0]


def _termination(
    reason: TerminationReason,
    at: datetime.datetime | None,
    by: str | None,
    note: str | None,
    cascade_from: str | None,
    namespace: str,
) -> TerminationFacts:
    origin = None if cascade_from is None else f"{namespace}/{validate_object_name(cascade_from, 'cascadeFrom')}"
    return TerminationFacts(reason=reason, at=at, by=by, note=note, cascade_from=origin)


def grant_facts(grant: AccessGrant) -> GrantFacts:
    """The facts of one ``AccessGrant`` object; raises :class:`IdentifierError` on a bad identifier."""
    namespace = validate_namespace(grant.metadata.namespace, "metadata.namespace")
    name = validate_object_name(grant.metadata.name, "metadata.name")
    spec, status = grant.spec, grant.status
    scope = spec.scope
    terminated = None
    if status.terminated is not None:
        record = status.terminated
        terminated = _termination(record.reason, record.at, record.by, record.note, record.cascade_from, namespace)
    requested = None
    if spec.termination is not None:
        request = spec.termination
        requested = _termination(request.reason, request.at, request.by, request.note, None, namespace)
    return GrantFacts(
        id=f"{namespace}/{name}",
        subject_id=spec.subject.id,
        owner_bin=spec.on_behalf_of.bin,
        functions=frozenset(spec.functions),
        valid_from=spec.agreement.valid_from or spec.agreement.signed_at,
        valid_until=spec.agreement.valid_until,
        grounds_until=None if spec.grounds is None else spec.grounds.valid_until,
        categories=frozenset(scope.categories) if scope and scope.categories else None,
        owner_bins=frozenset(scope.owner_bins) if scope and scope.owner_bins else None,
        digital_objects=(
            frozenset(f"{namespace}/{dob}" for dob in scope.digital_objects)
            if scope and scope.digital_objects
            else None
        ),
        phase=status.phase,
        terminated=terminated,
        requested=requested,
        delegated_from=None if spec.delegated_from is None else f"{namespace}/{spec.delegated_from}",
    )


def rights_of(pairs: Iterable[tuple[int, str]]) -> FunctionRights:
    """Validated rights from (category, action) pairs."""
    return frozenset(
        (validate_category(c, "rights[].category"), validate_action(a, "rights[].actions[]")) for c, a in pairs
    )


def function_rights(function: SubjectFunction) -> FunctionRights | None:
    """The rights of one directory entry, or ``None`` when it must not give any (phase ``Invalid``: it breaks a
    directory rule, so the decision point treats it as absent from the directory)."""
    validate_function_name(function.metadata.name, "metadata.name")
    if function.status.phase == "Invalid":
        return None
    return rights_of((right.category, action) for right in function.spec.rights for action in right.actions)
