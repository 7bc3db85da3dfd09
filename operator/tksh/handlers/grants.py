"""AccessGrant handlers: the recorded lifecycle (§19–22, §20) of every grant, by one controller per operator.

Shape (built for 100,000 grants at rest: no task and no poll per grant)
----------------------------------------------------------------------
* two ``@kopf.index`` handlers keep what the lifecycle needs of *other* grants in memory: the
  :class:`~tksh.access.lifecycle.Indexed` facts by id (the same handler also keeps
  :class:`~tksh.access.links.GrantLinks`: ids by (namespace, subject) and by principal) and the directory's
  functions (name -> Ready). kopf fills every index from the initial listing before it calls any other
  handler, so a grant is never judged against a half-loaded cache;
* ``@kopf.on.event`` offers each grant's body to :class:`~tksh.access.controller.GrantController` (a work
  queue keyed by grant id, one timer heap, four workers), which is the grant's single status writer;
* a worker reconciles with the pure :func:`tksh.access.lifecycle.reconcile` and writes the fields it owns
  with a JSON merge patch carrying ``metadata.resourceVersion``: a stale view gets 409, is re-read and
  re-reconciled, so no list field (``conditions``, ``outbox``) is lost and a termination record is written
  (and counted in ``tksh_grants_terminated_total``) exactly once, across restarts and replicas. The token
  fields (``tokenSecret``, ``tokenExpiresAt``) are never written here;
* after a termination it queues the grants :func:`~tksh.access.lifecycle.followers` names (delegates, the
  same subject's grants on FALSE_INFORMATION), so a cascade moves at once, grant by grant; after an
  activation, the delegates waiting for it; after a directory change, the grants not yet Active;
* FALSE_INFORMATION found on a grant flags the subject's applications (DigitalObjects of the namespace
  whose ``spec.owner.bin`` is the grant's ``onBehalfOf.bin``) with the annotation
  ``tksh.kz/false-information: <grant>`` and a Warning Event, then ``ApplicationsFlagged=True``.

Peering: kopf pauses this operator while another replica is active. kopf stops its own watch-streams and
daemons then, but keeps the pause state private (``operator_paused``, a toggle set passed to its root
tasks). :func:`tksh.handlers.pausegate.kopf_pause_gate` finds that toggle set in the frames of kopf's root
tasks once, when the controller starts; the controller's workers and timer wait on it (``wait_for(False)``)
before every grant and every timer round, and a reconcile checks it before each of its writes and e-mails:
one under way when the pause lands stops there and runs again after the resume. Without it (a kopf version
that hides it differently) the controller still runs and logs so: every write is conditional on the
resourceVersion it read, so two writers cannot corrupt a grant, at worst an e-mail is sent twice with the
same idempotency key.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Iterator, Mapping
from typing import Any, cast

import kopf
from kopf._cogs.clients import api, errors
from kopf._cogs.structs import references

from tksh import API_VERSION, GROUP, VERSION
from tksh.access.admission import FieldProblemError, facts_of
from tksh.access.controller import GrantController
from tksh.access.delivery import deliver_due
from tksh.access.lifecycle import GrantPlan, Indexed, flagged, followers, reconcile
from tksh.access.links import GrantLinks
from tksh.handlers import Context
from tksh.handlers.pausegate import kopf_pause_gate
from tksh.handlers.settings import make_settings
from tksh.logs import get_logger, mask_text
from tksh.notify import Backoff, SmtpSettings
from tksh.notify.outbox import due, merge, next_attempt_at, parse_time
from tksh.resources.accessgrant import ACCESS_GRANT_PHASES

PLURAL = "accessgrants"
GRANTS, FUNCTIONS = "tksh_grants", "tksh_grant_functions"
FALSE_INFORMATION_ANNOTATION = f"{GROUP}/false-information"
DIGITAL_OBJECTS = kopf.Resource(GROUP, VERSION, "digitalobjects", kind="DigitalObject", namespaced=True)
ACCESS_GRANTS = kopf.Resource(GROUP, VERSION, PLURAL, kind="AccessGrant", namespaced=True)
_OWNED = ("phase", "observedGeneration", "activatedAt", "terminated", "message", "conditions", "outbox")
_log = get_logger("tksh.handlers.grants")


class _Conflict(Exception):
    """409: the object changed since it was read."""


class _Paused(Exception):
    """kopf paused this replica for a peer mid-reconcile: no further write; the grant waits for the resume."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _body(obj: Mapping[str, Any]) -> kopf.Body:
    return kopf.Body(cast(Any, obj))


_SHARED: dict[object, object] = {}
"""One copy of each value many grants repeat (function sets, scopes, BINs), shared by their index entries."""


def _shared(value: Any) -> Any:
    if value is None or len(_SHARED) > 100_000:
        return value
    return _SHARED.setdefault(value, value)


async def read_grant(namespace: str, name: str, *, settings: kopf.OperatorSettings,
                     logger: kopf.Logger | logging.Logger) -> dict[str, Any] | None:
    """Grant ``namespace/name`` as the API server stores it now (a GET by name: one object, whatever the namespace
    holds); ``None`` when there is none. Other API errors are raised once kopf's retries give up."""
    url = ACCESS_GRANTS.get_url(namespace=references.NamespaceName(namespace), name=name)
    try:
        stored: dict[str, Any] = await api.get(url, settings=settings, logger=logger)
    except errors.APINotFoundError:
        return None
    return {"apiVersion": API_VERSION, "kind": "AccessGrant"} | stored


def indexed_of(body: Mapping[str, Any]) -> Indexed:
    """The index entry of one grant object (facts ``None`` when it cannot be read)."""
    created = None
    try:
        created = parse_time((body.get("metadata") or {}).get("creationTimestamp"))
        facts = facts_of(body, stored=True)  # a watch event's or a list's body, or a write's answer
    except (FieldProblemError, ValueError):
        return Indexed(None, created)
    facts = dataclasses.replace(facts, owner_bin=_shared(facts.owner_bin), functions=_shared(facts.functions),
                                categories=_shared(facts.categories), owner_bins=_shared(facts.owner_bins),
                                digital_objects=_shared(facts.digital_objects))
    return Indexed(facts, created)


class _Grants(Mapping[str, Indexed]):
    """The ``tksh_grants`` index as ``id -> Indexed``."""

    def __init__(self, index: kopf.Index[str, Indexed]) -> None:
        self.index = index

    def __getitem__(self, key: str) -> Indexed:
        for value in self.index[key]:
            return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)


class _Functions(Mapping[str, bool]):
    def __init__(self, index: kopf.Index[str, bool]) -> None:
        self.index = index

    def __getitem__(self, key: str) -> bool:
        return any(self.index[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    config, metrics = ctx.config, ctx.metrics
    settings = make_settings(config)
    smtp = SmtpSettings(host=config.smtp_host, port=config.smtp_port, sender=config.smtp_sender)
    backoff = Backoff(initial=datetime.timedelta(seconds=0.5), maximum=datetime.timedelta(seconds=5)) \
        if config.fast else Backoff()
    phases: dict[str, str] = {}
    state: dict[str, Any] = {}

    counts = dict.fromkeys(ACCESS_GRANT_PHASES, 0)
    for phase_name in ACCESS_GRANT_PHASES:
        metrics.grants.labels(phase=phase_name).set(0)

    def publish(key: str, phase: str | None) -> None:
        """``tksh_grants{phase}`` as the watch-stream shows the grants, kept incrementally (O(1) per event)."""
        old = phases.pop(key, None)
        if old is not None:
            counts[old] -= 1
        if phase is not None and phase in counts:
            phases[key] = phase
            counts[phase] += 1
        for name in counts.keys() & {old or "", phase or ""}:
            metrics.grants.labels(phase=name).set(counts[name])

    pending: dict[str, int] = {}
    metrics.set_pending("grants", 0)

    def publish_pending(key: str, outbox: Any) -> None:
        """The grants' part of ``tksh_notifications_pending`` as the watch-stream shows their outboxes (O(1))."""
        count = sum(1 for e in outbox or () if isinstance(e, Mapping) and e.get("state", "Pending") == "Pending")
        old = pending.pop(key, 0)
        if count:
            pending[key] = count
        if count != old:
            state["pending"] = state.get("pending", 0) + count - old
            metrics.set_pending("grants", state["pending"])

    links = GrantLinks()  # filled here with the index, emptied in on_grant on DELETED (kopf skips indexers then)

    @kopf.index(GROUP, VERSION, PLURAL, registry=registry, id=GRANTS)
    async def index_grant(body: kopf.Body, spec: kopf.Spec, namespace: str | None, name: str,
                          **_: Any) -> dict[str, Indexed]:
        key = f"{namespace}/{name}"
        links.update(key, str(namespace), spec)
        return {key: indexed_of(body)}

    @kopf.index(GROUP, VERSION, "subjectfunctions", registry=registry, id=FUNCTIONS)
    async def index_function(name: str, status: kopf.Status, **_: Any) -> dict[str, bool]:
        return {name: status.get("phase") == "Active"}

    def views() -> tuple[_Grants, _Functions]:
        return _Grants(state[GRANTS]), _Functions(state[FUNCTIONS])

    def same_subject(namespace: str, subject: str) -> list[Indexed]:
        grants = views()[0]
        return [grants[key] for key in links.same_subject(namespace, subject) if key in grants]

    def delegates_of(key: str) -> list[str]:
        return links.delegates(key)

    async def fetch(key: str) -> dict[str, Any] | None:
        namespace, _, name = key.partition("/")
        return await read_grant(namespace, name, settings=settings, logger=state["logger"])

    async def write(body: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any] | None:
        """One status merge patch, conditional on the resourceVersion ``body`` was read at (none once paused)."""
        writable()
        meta = body["metadata"]
        url = ACCESS_GRANTS.get_url(namespace=meta["namespace"], name=meta["name"], subresource="status")
        payload = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": dict(fields)}
        try:
            stored: dict[str, Any] = await api.patch(url=url, headers={"Content-Type": "application/merge-patch+json"},
                                                     payload=payload, settings=settings, logger=state["logger"])
        except errors.APIConflictError as error:
            raise _Conflict from error
        except errors.APINotFoundError:
            return None
        return stored

    def after_write(key: str, before: Mapping[str, Any], stored: dict[str, Any], plan: GrantPlan) -> None:
        for event in plan.events:
            kopf.event(_body(stored), type=event.type, reason=event.reason, message=mask_text(event.message))
        if plan.ending is not None and not (before.get("status") or {}).get("terminated"):
            metrics.grants_terminated.labels(reason=str(plan.ending.reason)).inc()
            cascade(key, indexed_of(stored))
        if plan.activated:
            for delegate in delegates_of(key):
                controller.offer(delegate)

    def cascade(key: str, ended: Indexed) -> None:
        """Queue the grants the end of ``ended`` ends next (its delegates; the same subject's on FALSE_INFORMATION)."""
        if ended.facts is None:
            return
        grants = views()[0]
        delegates = [g.facts for k in delegates_of(key) if (g := grants.get(k)) and g.facts]
        same = [g.facts for g in same_subject(ended.facts.namespace, ended.facts.subject_id) if g.facts]
        for step in followers(ended.facts, delegates, same):
            controller.offer(step.grant)

    async def flag_applications(grant: Mapping[str, Any]) -> int:
        """Annotate (and warn on) the DigitalObjects of the grant's subject in its namespace; how many there are."""
        meta, spec = grant["metadata"], grant.get("spec") or {}
        owner_bin = (spec.get("onBehalfOf") or {}).get("bin")
        listing = await api.get(DIGITAL_OBJECTS.get_url(namespace=meta["namespace"]), settings=settings,
                                logger=state["logger"])
        count = 0
        for item in listing.get("items") or ():
            if ((item.get("spec") or {}).get("owner") or {}).get("bin") != owner_bin:
                continue
            count += 1
            annotations = (item.get("metadata") or {}).get("annotations") or {}
            if FALSE_INFORMATION_ANNOTATION in annotations:
                continue
            url = DIGITAL_OBJECTS.get_url(namespace=meta["namespace"], name=item["metadata"]["name"])
            writable()
            await api.patch(url=url, headers={"Content-Type": "application/merge-patch+json"},
                            payload={"metadata": {"annotations": {FALSE_INFORMATION_ANNOTATION: meta["name"]}}},
                            settings=settings, logger=state["logger"])
            kopf.warn(_body(item), reason="FalseInformation",
                      message=f"access grant {meta['name']} was terminated: false information in the subject's "
                              "application (§20.6); this application is flagged for review")
        return count

    async def deliver(key: str, body: dict[str, Any]) -> dict[str, Any]:
        writable()  # nothing sent by a paused replica; one paused while sending records nothing (write() refuses):
        # the active peer sends the same entries again, with the same keys
        outbox, attempts = await deliver_due((body.get("status") or {}).get("outbox"), body.get("spec") or {},
                                             _now(), smtp=smtp, backoff=backoff)
        if not attempts:
            return body
        for _ in range(5):
            try:
                stored = await write(body, {"outbox": outbox})
                break
            except _Conflict:
                fresh = await fetch(key)
                if fresh is None:
                    return body
                body, outbox = fresh, merge((fresh.get("status") or {}).get("outbox"), outbox)
        else:
            raise RuntimeError("the outbox could not be written after 5 conflicts")
        for attempt in attempts:
            result = "delivered" if attempt.result.delivered else ("retry" if attempt.state == "Pending" else "failed")
            metrics.notifications.labels(channel="email", result=result).inc()
            what = f"{attempt.template} to {mask_text(attempt.recipient)} (key {attempt.id})"
            if result == "delivered":
                kopf.event(_body(body), type="Normal", reason="NotificationSent", message=f"e-mail {what} sent")
            elif result == "failed":
                kopf.warn(_body(body), reason="NotificationFailed",
                          message=mask_text(f"e-mail {what} given up: {attempt.result.error}")[:1000])
        return stored or body

    def plan_for(body: Mapping[str, Any]) -> tuple[GrantPlan, dict[str, Any]]:
        """The lifecycle's plan for ``body``, and the status fields it would change."""
        meta, status = body.get("metadata") or {}, body.get("status") or {}
        grants, functions = views()
        subject = str((body.get("spec") or {}).get("subject", {}).get("id") or "")
        plan = reconcile(body, grants, same_subject(str(meta.get("namespace")), subject), functions, _now(),
                         timezone=config.timezone, stored=True)  # bodies here are stored versions, never edited
        return plan, {k: plan.status[k] for k in _OWNED if status.get(k) != plan.status[k]}

    async def process(key: str, body: Mapping[str, Any] | None) -> datetime.datetime | None:
        """Reconcile one grant; write what changed (conditionally); deliver its due e-mails; its next instant.

        A body from the watch-stream may be older than this writer's last write (its event was still on its
        way): writes from it fail with 409 and are redone on a fresh read, and e-mails are sent only from a body
        known to be current (just read, or just written), so a stale view never sends a message twice.
        """
        try:
            return await reconcile_once(key, body)
        except _Paused:  # the active peer writes now; this replica runs the grant again after the resume
            controller.offer(key)
            return None

    def writable() -> None:
        """Before every write and every e-mail of a reconcile (several of each, with reads in between)."""
        if controller.gate.is_paused():
            raise _Paused

    async def reconcile_once(key: str, body: Mapping[str, Any] | None) -> datetime.datetime | None:
        current, fresh = (dict(body), False) if body is not None else (await fetch(key), True)
        for _ in range(8):
            if current is None:
                controller.forget(key)
                return None
            writable()  # paused while reading: stop before planning
            meta, status = current.get("metadata") or {}, current.get("status") or {}
            plan, fields = plan_for(current)
            if plan.flag_applications and not fields:
                count = await flag_applications(current)
                fields = flagged(status, count, int(meta.get("generation") or 1), _now())
            if fields:
                try:
                    stored = await write(current, fields)
                except _Conflict:
                    current, fresh = await fetch(key), True
                    continue
                if stored is not None:
                    after_write(key, current, stored, plan)
                current, fresh = stored, True
                continue
            outbox = status.get("outbox")
            if not fresh and due(outbox, _now()):
                current, fresh = await fetch(key), True
                continue
            current = await deliver(key, current)
            metrics.reconciliations.labels(kind="AccessGrant", result="ok").inc()
            wake = [t for t in (plan.requeue_at, next_attempt_at((current.get("status") or {}).get("outbox"))) if t]
            return min(wake, default=None)
        raise RuntimeError("the grant kept changing under its reconcile (8 rounds)")

    controller = GrantController(process, workers=4, retry=0.5 if config.fast else 2.0)

    def start(kwargs: Mapping[str, Any]) -> None:
        if state.get("started"):
            return
        for index in (GRANTS, FUNCTIONS):
            state[index] = kwargs[index]
        # API calls log under this module, not the first grant's object logger (which would post its lines as
        # Events on that grant).
        state["logger"], state["started"] = logging.getLogger(__name__), True
        gate = kopf_pause_gate()
        if gate is None and not config.standalone:
            _log.error("kopf's pause state was not found: the grant controller runs whether or not this replica is "
                       "the active peer (its writes stay conditional on the resourceVersion read)")
        controller.gate = gate or controller.gate
        controller.start()

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, id="grant-lifecycle")
    async def on_grant(event: kopf.RawEvent, body: kopf.Body, namespace: str | None, name: str, **kwargs: Any) -> None:
        start(kwargs)
        key = f"{namespace}/{name}"
        if event.get("type") == "DELETED":
            controller.forget(key)
            publish(key, None)
            publish_pending(key, None)
            links.remove(key)
            for delegate in delegates_of(key):  # an Active delegate of a deleted principal ends
                controller.offer(delegate)
            return
        seen, phase = phases.get(key), str((body.get("status") or {}).get("phase") or "Pending")
        publish(key, phase)
        publish_pending(key, (body.get("status") or {}).get("outbox"))
        plan, fields = plan_for(body)  # most events (our own writes, a restart's listing) need nothing but a timer
        if fields or plan.flag_applications or due((body.get("status") or {}).get("outbox"), _now()) or \
                controller.busy(key):
            controller.offer(key, dict(body))
        else:
            controller.schedule(key, plan.wake_at)
        if seen is not None and seen != phase:  # the indexes know the new phase now: whoever waits on it goes on
            for delegate in delegates_of(key):
                controller.offer(delegate)
            if phase == "Terminated":
                cascade(key, indexed_of(body))

    @kopf.on.event(GROUP, VERSION, "subjectfunctions", registry=registry, id="grant-directory")
    async def on_function(name: str, **kwargs: Any) -> None:
        if not state.get("started"):
            return
        for key, known in views()[0].items():
            if known.facts is not None and known.facts.phase != "Terminated" and name in known.facts.functions \
                    and known.facts.phase != "Active":
                controller.offer(key)

    @kopf.on.cleanup(registry=registry, id="grant-controller-stop")
    async def stop(**_: Any) -> None:
        await controller.stop()

    state["controller"] = controller
