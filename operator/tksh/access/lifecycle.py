"""The life of an ``AccessGrant`` (§19–22, §20) as one pure function, :func:`reconcile`.

Given the grant object, what the operator knows of the other grants (:class:`Indexed`, by id, and the grants of
the same subject in the namespace), the function directory (name -> Ready) and the time, it returns a
:class:`GrantPlan`: the status fields the lifecycle owns (``phase``, ``activatedAt``, ``terminated``,
``conditions``, ``observedGeneration``, ``message``, ``outbox``; never the token fields), the Events to post,
the e-mails enqueued, and when to come back. No Kubernetes, no I/O.

Phases: ``Pending`` -> ``Active`` -> ``Terminated`` (final).

* ``Pending`` before the agreement's ``validFrom``; and, until first activated, while a reference is wrong
  (a function absent or not Ready in the directory, a principal grant absent, a delegate exceeding or
  outliving its principal: :func:`tksh.access.admission.delegation_problems`) or the principal is not Active.
  Once Active, such problems are reported (``Valid=False``, a Warning Event) but do not deactivate: the
  decision point already gives a delegate no more than its principal and nothing for an absent function.
* ``Terminated`` on the earliest of the seven §20 grounds, each of them data (:class:`Ending`: reason, at, by,
  note, cascadeFrom; found by :func:`tksh.access.endings.earliest_ending`) through one code path: ``EXPIRED`` at
  ``agreement.validUntil``, ``GROUNDS_ENDED`` at ``grounds.validUntil``, ``spec.termination`` (any ground, at its
  ``at`` or at once; ``OTHER_BY_LAW`` needs a note), ``DELEGATION_TERMINATED`` when a grant up the delegation chain
  ended (``cascadeFrom`` the direct principal; an Active delegate whose principal was deleted ends too),
  ``FALSE_INFORMATION`` when a grant of the same ``subject.id`` in the namespace ended on it (``cascadeFrom`` the
  grant the finding was recorded on; grants created after the finding are not swept). The result agrees with
  :func:`tksh.access.cascade`, which :func:`followers` uses to tell the operator whom to reconcile next.
* A terminated grant stays terminated whatever its spec becomes: a spec change is answered by a
  ``NewGrantNeeded`` Warning Event and the ``Terminated`` condition's message.

Idempotency: Events only on a change (of phase, or of a condition at this generation); outbox keys are the
grant's uid with ``activated`` or with the ground and instant of its termination.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from tksh.access import messages
from tksh.access.admission import FieldProblemError, delegation_problems, facts_of, termination_problem
from tksh.access.cascade import CascadeStep, cascade
from tksh.access.endings import OPERATOR, Ending, Indexed, earliest_ending
from tksh.access.facts import GrantFacts
from tksh.access.reasons import format_instant
from tksh.conditions import ConditionStatus, get_condition, rfc3339, set_condition
from tksh.logs import mask_text
from tksh.notify.outbox import Entry, enqueue_all, find, make_key, new_entry, next_attempt_at, parse_time
from tksh.problems import FieldProblem
from tksh.registration.calendar import DEFAULT_TIMEZONE
from tksh.registration.plan import EventSpec
from tksh.resources.accessgrant import ACCESS_GRANT_PHASES, TerminationReason

__all__ = ["CONDITION_TYPES", "OPERATOR", "Ending", "GrantPlan", "Indexed", "flagged", "followers", "reconcile"]

CONDITION_TYPES = ("Valid", "Active", "Terminated", "Ready")
FLAGGED = "ApplicationsFlagged"
_IGNORED = "; spec changes are ignored: a terminated grant is never resumed, create a new AccessGrant"


@dataclasses.dataclass(frozen=True)
class GrantPlan:
    """What the lifecycle concluded: write ``status`` (one merge patch; ``None`` deletes), post ``events``."""

    phase: str
    previous_phase: str | None
    status: dict[str, Any]
    events: tuple[EventSpec, ...]
    notifications: tuple[Entry, ...]
    requeue_at: datetime.datetime | None
    facts: GrantFacts | None
    ending: Ending | None = None
    """The termination this run records (``None``: none new); the operator counts it once, when it writes it."""
    flag_applications: bool = False
    """FALSE_INFORMATION was found on this grant: flag the subject's applications, then :func:`flagged`."""

    @property
    def activated(self) -> bool:
        return self.phase == "Active" and self.previous_phase != "Active"

    @property
    def wake_at(self) -> datetime.datetime | None:
        times = [t for t in (self.requeue_at, next_attempt_at(self.status.get("outbox"))) if t is not None]
        return min(times, default=None)


def _camel(reason: TerminationReason) -> str:
    return "".join(part.capitalize() for part in str(reason).split("_"))


class _Run:
    """One reconcile: inputs read once, conditions/Events/e-mails accumulated, the plan built."""

    def __init__(self, obj: Mapping[str, Any], now: datetime.datetime, timezone: str) -> None:
        meta, self.spec = obj.get("metadata") or {}, obj.get("spec") or {}
        self.status: Mapping[str, Any] = obj.get("status") or {}
        self.uid, self.name = str(meta.get("uid") or ""), str(meta.get("name") or "")
        self.namespace = str(meta.get("namespace") or "")
        self.generation, self.now, self.timezone = int(meta.get("generation") or 1), now, timezone
        self.created = parse_time(meta.get("creationTimestamp"))
        phase = self.status.get("phase")
        self.old_phase: str | None = phase if phase in ACCESS_GRANT_PHASES else None
        self.phase = self.old_phase or "Pending"
        self.activated_at = parse_time(self.status.get("activatedAt"))
        self.old_conditions: list[dict[str, Any]] = list(self.status.get("conditions") or [])
        self.conds: dict[str, tuple[ConditionStatus, str, str]] = {}
        self.events: list[EventSpec] = []
        self.entries: list[Entry] = []
        self.wake: list[datetime.datetime] = []
        behalf = self.spec.get("onBehalfOf")
        email = behalf.get("email") if isinstance(behalf, Mapping) else None
        self.email = email.strip() if isinstance(email, str) else ""

    def cond(self, type: str, status: ConditionStatus, reason: str, message: str = "") -> None:
        self.conds[type] = (status, reason, mask_text(message)[:32768])

    def is_new(self, type: str, status: str, reason: str) -> bool:
        old = get_condition(self.old_conditions, type)
        return old is None or (old.get("status"), old.get("reason"), old.get("observedGeneration")) != (
            status, reason, self.generation)

    def event(self, type: str, reason: str, message: str) -> None:
        self.events.append(EventSpec("Warning" if type == "Warning" else "Normal", reason, mask_text(message)[:1000]))

    def later(self, *moments: datetime.datetime | None) -> None:
        self.wake.extend(t for t in moments if t is not None and t > self.now)

    def notify(self, template: str, key_parts: tuple[object, ...], **params: str | None) -> bool:
        if not self.email:
            return False
        key = make_key(template, self.uid, *key_parts)
        if find(self.status.get("outbox"), key) is not None:
            return False
        agreement = self.spec.get("agreement") or {}
        subject = self.spec.get("subject") or {}
        base = {"to": "organisation", "name": self.name, "namespace": self.namespace, "timezone": self.timezone,
                "agreement": mask_text(str(agreement.get("number") or "")), "subject": str(subject.get("id") or ""),
                "validUntil": str(agreement.get("validUntil") or "")}
        extra = {k: mask_text(v) for k, v in params.items() if v}
        self.entries.append(new_entry(id=key, channel="email", template=template, now=self.now,
                                      recipient=self.email, params=base | extra))
        return True

    def plan(self, facts: GrantFacts | None, ending: Ending | None = None, flag: bool = False) -> GrantPlan:
        self.conds.setdefault("Ready", ("True", "Active", self.conds["Active"][2]) if self.phase == "Active"
                              else ("False", self.phase, self.conds["Active"][2]))
        conditions = self.old_conditions
        for type in (*CONDITION_TYPES, FLAGGED):
            if type in self.conds:
                state, reason, message = self.conds[type]
                conditions = set_condition(conditions, type, state, reason, message,
                                           observed_generation=self.generation, now=self.now)
        record = ending.record() if ending is not None else self.status.get("terminated")
        status: dict[str, Any] = {
            "phase": self.phase,
            "observedGeneration": self.generation,
            "activatedAt": rfc3339(self.activated_at) if self.activated_at else None,
            "terminated": record or None,
            "message": self.conds["Ready"][2],
            "conditions": conditions,
            "outbox": enqueue_all(self.status.get("outbox"), self.entries),
        }
        return GrantPlan(self.phase, self.old_phase, status, tuple(self.events), tuple(self.entries),
                         min(self.wake, default=None), facts, ending, flag)


def _problems(facts: GrantFacts, grants: Mapping[str, Indexed], functions: Mapping[str, bool]) -> \
        list[tuple[str, FieldProblem]]:
    """Wrong references, each with the ``Valid`` condition's reason."""
    problems: list[tuple[str, FieldProblem]] = []
    for name in sorted(facts.functions):
        state = functions.get(name)
        if state is None:
            problems.append(("UnknownFunction", FieldProblem("spec.functions", f"{name} is not in the function "
                                                                               "directory")))
        elif not state:
            problems.append(("FunctionNotReady", FieldProblem("spec.functions", f"{name} is not Ready in the function "
                                                                                "directory")))
    if facts.requested is not None and (problem := termination_problem(facts.requested)) is not None:
        problems.append(("InvalidTermination", problem))
    principal = facts.delegated_from
    if principal is not None:
        name, known = principal.partition("/")[2], grants.get(principal)
        if principal == facts.id:
            problems.append(("DelegationCycle", FieldProblem("spec.delegatedFrom", "a grant cannot be delegated from "
                                                                                   "itself")))
        elif known is None:
            problems.append(("PrincipalNotFound", FieldProblem("spec.delegatedFrom", f"no AccessGrant {name} in this "
                                                                                     "namespace")))
        elif known.facts is None:
            problems.append(("PrincipalNotFound", FieldProblem("spec.delegatedFrom", f"the principal grant {name} "
                                                                                     "cannot be read")))
        else:
            problems += [("DelegationExceedsPrincipal", p) for p in delegation_problems(facts, known.facts)]
    return problems


def _valid(run: _Run, problems: list[tuple[str, FieldProblem]]) -> None:
    if not problems:
        run.cond("Valid", "True", "ReferencesValid", "the functions are in the directory and Ready; a delegation is "
                                                     "within its principal")
        return
    reason = problems[0][0]
    message = "; ".join(str(p) for _, p in problems)
    if run.is_new("Valid", "False", reason):
        run.event("Warning", reason, message)
    run.cond("Valid", "False", reason, message)


def _described(record: Mapping[str, Any]) -> str:
    """A termination record in words (the same text when it is written and every time after)."""
    reason = str(record.get("reason") or "")
    if reason not in TerminationReason.__members__:
        return "terminated (no termination record)"
    text = f"terminated on {reason} ({TerminationReason(reason).paragraph}) at {record.get('at')}"
    text += f" by {record['by']}" if record.get("by") else ""
    text += f", after grant {record['cascadeFrom']}" if record.get("cascadeFrom") else ""
    return text + (f": {record['note']}" if record.get("note") else "")


def _terminate(run: _Run, facts: GrantFacts, ending: Ending) -> GrantPlan:
    run.phase = "Terminated"
    text = _described(ending.record())
    run.notify(messages.TERMINATED, (str(ending.reason), rfc3339(ending.at)), reason=str(ending.reason),
               at=rfc3339(ending.at), by=ending.by, note=ending.note, cascadeFrom=ending.cascade_from)
    unnotified = "" if run.email else "; the organisation is not e-mailed: spec.onBehalfOf.email is not set"
    run.event("Normal" if ending.reason is TerminationReason.EXPIRED else "Warning", "Terminated", text + unnotified)
    run.cond("Terminated", "True", _camel(ending.reason), text)
    run.cond("Active", "False", "Terminated", text)
    origin = ending.reason is TerminationReason.FALSE_INFORMATION and ending.cascade_from is None
    return run.plan(facts, ending, flag=origin)


def _final(run: _Run, facts: GrantFacts | None) -> GrantPlan:
    """A terminated grant: the record stays, spec changes are answered, never resumed."""
    run.phase = "Terminated"
    record = run.status.get("terminated") or {}
    reason = str(record.get("reason") or "")
    text = _described(record)
    observed = run.status.get("observedGeneration")
    changed = observed is not None and int(observed) != run.generation
    if changed:
        run.event("Warning", "NewGrantNeeded", f"the spec changed (generation {run.generation}) after the access was "
                                               f"{text}; a terminated grant is never resumed: create a new AccessGrant")
    old = get_condition(run.old_conditions, "Terminated") or {}
    if changed or str(old.get("message") or "").endswith(_IGNORED):
        text += _IGNORED
    camel = _camel(TerminationReason(reason)) if reason in TerminationReason.__members__ else "Terminated"
    run.cond("Terminated", "True", camel, text)
    run.cond("Active", "False", "Terminated", text)
    flagged_before = (get_condition(run.old_conditions, FLAGGED) or {}).get("status") == "True"
    origin = reason == TerminationReason.FALSE_INFORMATION and not record.get("cascadeFrom")
    return run.plan(facts, flag=origin and not flagged_before)


def reconcile(
    obj: Mapping[str, Any],
    grants: Mapping[str, Indexed],
    same_subject: Iterable[Indexed],
    functions: Mapping[str, bool],
    now: datetime.datetime,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    stored: bool = False,
) -> GrantPlan:
    """Where the grant ``obj`` stands at ``now`` (see the module description). Pure: the same inputs give the
    same plan; a plan's status fed back in gives no new Event and no new e-mail.

    ``grants``: every grant of the namespace the operator knows, by id (``namespace/name``); ``same_subject``:
    those with this grant's ``subject.id`` (a superset is fine); ``functions``: the directory, name -> Ready.
    ``stored``: ``obj`` is a version exactly as the API server stored it (see :func:`~tksh.access.admission.facts_of`).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    run = _Run(obj, now, timezone)
    try:
        facts: GrantFacts | None = facts_of(obj, stored=stored)
    except FieldProblemError as error:
        facts, problem = None, error.problem
    if run.status.get("terminated") or run.old_phase == "Terminated":
        return _final(run, facts)
    if facts is None:
        if run.is_new("Valid", "False", "InvalidSpec"):
            run.event("Warning", "InvalidSpec", str(problem))
        run.cond("Valid", "False", "InvalidSpec", str(problem))
        run.cond("Active", "True" if run.phase == "Active" else "False", "InvalidSpec",
                 f"the grant cannot be read: {problem}")
        run.cond("Terminated", "False", "NotTerminated", "")
        return run.plan(None)
    ending = earliest_ending(facts, grants, same_subject, now, created=run.created,
                             was_active=run.old_phase == "Active")
    if ending is not None:
        return _terminate(run, facts, ending)
    request = facts.requested
    if request is not None and request.at is not None and request.at > now:
        text = f"{request.reason} ({request.reason.paragraph}) takes effect at {rfc3339(request.at)}"
        if run.is_new("Terminated", "False", "TerminationScheduled"):
            run.event("Normal", "TerminationScheduled", text)
        run.cond("Terminated", "False", "TerminationScheduled", text)
        run.later(request.at)
    else:
        run.cond("Terminated", "False", "NotTerminated", "in effect until its agreement or grounds end, or a §20 "
                                                         "ground applies")
    run.later(facts.valid_until, facts.grounds_until, facts.valid_from)
    problems = _problems(facts, grants, functions)
    _valid(run, problems)
    principal = grants.get(facts.delegated_from) if facts.delegated_from else None
    principal_active = principal is None or (principal.facts is not None and principal.facts.phase == "Active")
    until = format_instant(min(t for t in (facts.valid_until, facts.grounds_until) if t is not None))
    if facts.valid_from is not None and now < facts.valid_from:
        run.phase, why = "Pending", ("NotYetValid", f"the agreement takes effect at {rfc3339(facts.valid_from)}")
    elif run.old_phase == "Active":
        run.phase, why = "Active", ("Active", f"in effect until {until}")
    elif problems:
        run.phase, why = "Pending", ("Invalid", f"not activated: {problems[0][1]}")
    elif not principal_active:
        run.phase, why = "Pending", ("PrincipalNotActive", f"waiting for the principal grant "
                                                          f"{str(facts.delegated_from).partition('/')[2]} to be Active")
    else:
        run.phase, why = "Active", ("Active", f"in effect until {until}")
        run.activated_at = now
        run.event("Normal", "Activated", f"the access is in effect until {until}")
        run.notify(messages.ACTIVATED, ("activated",), activatedAt=rfc3339(now))
    if run.phase == "Pending" and (run.old_phase != "Pending" or run.is_new("Active", "False", why[0])):
        run.event("Normal", "Pending", why[1])
    run.cond("Active", "True" if run.phase == "Active" else "False", *why)
    return run.plan(facts)


def flagged(status: Mapping[str, Any], count: int, generation: int, now: datetime.datetime) -> dict[str, Any]:
    """The status patch recording that the subject's applications were flagged (after FALSE_INFORMATION)."""
    message = f"{count} application(s) of the subject flagged with the tksh.kz/false-information annotation"
    return {"conditions": set_condition(status.get("conditions"), FLAGGED, "True", "Flagged", message,
                                        observed_generation=generation, now=now)}


def followers(ended_grant: GrantFacts, delegates: Iterable[GrantFacts], same_subject: Iterable[GrantFacts]) -> \
        list[CascadeStep]:
    """Whom the end of ``ended_grant`` (its ``terminated`` record set) ends next: :func:`tksh.access.cascade` over
    its direct delegates and, for a FALSE_INFORMATION finding recorded on it, the same subject's grants in the
    namespace. Each of those, once ended, has followers of its own: the walk goes on grant by grant."""
    record = ended_grant.terminated
    if record is None:
        return []
    origin = record.reason is TerminationReason.FALSE_INFORMATION and record.cascade_from is None
    reason = record.reason if origin else TerminationReason.DELEGATION_TERMINATED
    world = {ended_grant.id: ended_grant}
    world |= {g.id: g for g in delegates if g.delegated_from == ended_grant.id}
    if origin:
        world |= {g.id: g for g in same_subject
                  if g.subject_id == ended_grant.subject_id and g.namespace == ended_grant.namespace}
    return cascade(world.values(), ended_grant.id, reason)
