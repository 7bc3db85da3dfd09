"""Monitoring handlers (§33–34): kopf glue from the monitored objects to the shared scheduler, incidents, notices.

Tasks and their single writers
------------------------------
* **One daemon per monitored object** (``monitor``): every ``DigitalObject`` in phase ``Integrated``
  (kopf stops the daemon when the phase changes: ``when`` filter) and every ``CentralComponent``. It
  attaches the object to the one shared :class:`~tksh.monitoring.service.MonitorService` and turns
  the object's state changes (:class:`~tksh.monitoring.targets.TargetState`) into: the ``Incident``
  (created, name deterministic), a merge patch of ``status.availability`` and ``status.openIncident``
  (nothing else of a ``DigitalObject``: its registration daemon owns the rest), Events, and the
  recovery handed to the incident's daemon. Availability is also written every
  ``availability_interval`` seconds, never on every probe.
* **One daemon per active incident** (``notify``; open, or with notices still pending): the only
  writer of the incident's status. It sets the deadline and verdict, enqueues the notices due
  (:func:`tksh.monitoring.sla.due_transitions`) into ``status.outbox`` before sending them, delivers
  them (:mod:`tksh.monitoring.delivery`), records them in ``status.notifications``, re-posts the
  firing Alertmanager alert, and ends when the incident is recovered and every notice is settled.

Standby peers: kopf stops every daemon when the operator is paused (another peer is active) or
exits, so every object detaches and the scheduler stops probing with the last of them; the active
peer attaches them again. Nothing probes or notifies on a standby, and a pass under way when the pause
lands writes nothing more (:mod:`tksh.handlers.daemonwrites`). Indexes (owners, central components,
open incidents) give the daemons what they need without extra API reads; open incidents are restored
into the scheduler after a restart (never opened twice).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import datetime
import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf
from kopf._cogs.clients import api, errors
from kopf._cogs.clients.creating import create_obj
from kopf._cogs.structs import bodies, references

from tksh import GROUP, VERSION
from tksh.conditions import set_condition
from tksh.handlers import Context
from tksh.handlers.daemonwrites import patch_status, pausing
from tksh.handlers.settings import make_settings
from tksh.logs import mask_text
from tksh.monitoring import PHASES, OpenIncident, ProbeResult, ProbeSpec, StateChange
from tksh.monitoring.delivery import WebhookTarget
from tksh.monitoring.incident_task import IncidentTask, needs_task
from tksh.monitoring.incidents import TargetRef
from tksh.monitoring.scheduler import utc_now
from tksh.monitoring.service import CONTROL_PREFIX, MonitorService
from tksh.monitoring.targets import TargetState, TargetUpdate
from tksh.notify.outbox import Backoff, DeliveryResult, parse_time
from tksh.resources.common import ConditionStatus, Probe

OWNERS, COMPONENTS, OPEN = "monitoring_owners", "monitoring_components", "monitoring_open_incidents"
INCIDENTS = references.Resource(GROUP, VERSION, "incidents", kind="Incident", namespaced=True,
                                subresources=frozenset({"status"}))
STOPPED_FOR_GOOD = kopf.DaemonStoppingReason.FILTERS_MISMATCH
logger = logging.getLogger(__name__)


def probe_spec(body: Mapping[str, Any], cap: float) -> tuple[ProbeSpec | None, str]:
    """The object's probe (``spec.endpoint.url`` + ``spec.probe``), or why it cannot be probed."""
    spec = body.get("spec") or {}
    url = str((spec.get("endpoint") or {}).get("url") or "")
    try:
        probe = ProbeSpec.from_probe(url, Probe.model_validate(spec.get("probe") or {}))
    except ValueError as error:
        return None, mask_text(f"spec.endpoint.url: cannot be probed: {str(error).splitlines()[0]}")[:500]
    if cap > 0 and probe.interval > cap:  # tests and the sandbox: probe more often than the schema's minimum
        probe = dataclasses.replace(probe, interval=cap, timeout=min(probe.timeout, cap))
    return probe, ""


async def wait_any(stopped: kopf.DaemonStopped, event: asyncio.Event | None, queue: asyncio.Queue[Any] | None,
                   seconds: float) -> Any:
    """Until an item in ``queue`` (returned), ``event`` is set, the daemon is stopped, or ``seconds`` pass."""
    if queue is not None and not queue.empty():
        return queue.get_nowait()

    async def stop() -> None:
        await stopped.wait()

    waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop())]
    if event is not None:
        waiters.append(asyncio.ensure_future(event.wait()))
    getter = asyncio.ensure_future(queue.get()) if queue is not None else None
    try:
        await asyncio.wait([*waiters, *([getter] if getter else [])], timeout=max(seconds, 0.0),
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        if getter is not None and not getter.done():
            getter.cancel()
    if getter is not None and getter.done() and not getter.cancelled():
        return getter.result()
    return None


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    config, metrics = ctx.config, ctx.metrics
    clock = config.clock or utc_now
    if config.namespaces and config.incident_namespace not in config.namespaces:
        logger.warning("incident_namespace %s is not watched (namespaces %s): incidents of central components will "
                       "be created but never notified", config.incident_namespace, ",".join(config.namespaces))
    api_settings = make_settings(config)
    fast = config.fast
    cap = config.probe_interval_cap
    default = Probe()  # the CRD's default interval and timeout, capped like every probe
    interval, timeout = float(default.interval_seconds), float(default.timeout_seconds)
    controls = [ProbeSpec(url, path=None, interval=min(interval, cap or interval), timeout=min(timeout, cap or timeout),
                          failure_threshold=1)
                for url in config.control_urls]
    last_checked: dict[str, datetime.datetime] = {}
    wakes: dict[str, asyncio.Event] = {}
    shown: set[tuple[str, str, str]] = set()  # label sets of tksh_probe_success now exported

    def on_result(key: str, spec: ProbeSpec, result: ProbeResult) -> None:
        if key.startswith(CONTROL_PREFIX):
            return
        kind, namespace, name = key.split("/", 2)
        labels = (kind, namespace, name)
        last_checked[key] = clock()
        if service.impaired and not result.ok and kind != "CentralComponent":  # Unknown: says nothing
            hide(labels)
        else:
            metrics.probe_success.labels(*labels).set(1 if result.ok else 0)
            shown.add(labels)
        for phase, seconds in result.phases.items():
            metrics.probe_duration.labels(*labels, phase).set(seconds)

    def hide(labels: tuple[str, str, str]) -> None:
        if labels in shown:
            shown.discard(labels)
            metrics.probe_success.remove(*labels)

    def post_event(obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        kopf.event(cast(kopf.Body, obj), type=type_, reason=reason, message=message[:1000])

    service = MonitorService(concurrency=config.probe_concurrency, confirm_interval=config.confirm_interval,
                             recovery_threshold=config.recovery_threshold, clock=clock, controls=controls,
                             on_result=on_result)
    backoff = Backoff(initial=datetime.timedelta(seconds=0.5), maximum=datetime.timedelta(seconds=5)) if fast \
        else Backoff()
    # tksh_notifications_pending is one gauge for every outbox: the incidents' part of it (metrics.set_pending).
    incidents = IncidentTask(config=config, metrics=metrics, service=service, clock=clock, backoff=backoff,
                             webhook_target=lambda entry, owners: webhook_target(entry, owners),
                             post_event=post_event, on_pending=lambda total: metrics.set_pending("incidents", total))

    # --- what the daemons need to know of other objects --------------------------------------------

    @kopf.index(GROUP, VERSION, "digitalobjects", registry=registry, id=OWNERS)
    async def index_owner(namespace: str | None, name: str, uid: str, spec: kopf.Spec, status: kopf.Status,
                    **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
        owner = spec.get("owner") or {}
        return {(namespace or "", name): {"uid": uid, "phase": status.get("phase"), "email": owner.get("email"),
                                    "webhook": owner.get("webhook")}}

    @kopf.index(GROUP, VERSION, "centralcomponents", registry=registry, id=COMPONENTS)
    async def index_component(name: str, uid: str, spec: kopf.Spec, **_: Any) -> dict[str, dict[str, Any]]:
        return {name: {"uid": uid, "critical": bool(spec.get("critical")), "title": spec.get("title")}}

    @kopf.index(GROUP, VERSION, "incidents", registry=registry, id=OPEN)
    async def index_open(namespace: str | None, name: str, spec: kopf.Spec, status: kopf.Status,
                   **_: Any) -> dict[str, dict[str, Any]] | None:
        if status.get("phase") == "Recovered" or status.get("recoveredAt"):
            return None
        target = spec.get("target") or {}
        key = TargetRef(target.get("kind", "DigitalObject"), target.get("name", ""), target.get("namespace")).key
        return {key: {"namespace": namespace, "name": name, "spec": dict(spec)}}

    def restore(key: str, named: str | None, index: kopf.Index[str, dict[str, Any]]) -> tuple[str | None, Any]:
        """The target's open incident after a (re)start: the one its status names, else the latest open one."""
        found = sorted(index.get(key, []), key=lambda i: str(i["spec"].get("startedAt")))
        chosen = next((i for i in found if i["name"] == named), found[-1] if found else None)
        if chosen is None:
            return None, None
        spec = chosen["spec"]
        failure = spec.get("failure") or {}
        started = parse_time(spec.get("startedAt"))
        assert started is not None
        incident = OpenIncident(started, parse_time(spec.get("detectedAt")) or started,
                                failure.get("class", "unknown"), failure.get("message") or "")
        return chosen["name"], incident

    async def webhook_target(entry: Mapping[str, Any], owners: Mapping[Any, Any]) -> WebhookTarget | DeliveryResult:
        params = entry.get("params") or {}
        namespace, name = params.get("recipientNamespace", ""), params.get("recipientName", "")
        owner = next(iter(owners.get((namespace, name), [])), None)
        hook = (owner or {}).get("webhook") or {}
        ref = hook.get("secretRef") or {}
        if not hook.get("url") or not ref.get("name"):
            return DeliveryResult(False, permanent=True, error=f"{namespace}/{name} has no spec.owner.webhook")
        try:
            secret = await api.get(f"/api/v1/namespaces/{namespace}/secrets/{ref['name']}", settings=api_settings,
                                   logger=logger)
        except errors.APINotFoundError:
            return DeliveryResult(False, error=f"Secret {namespace}/{ref['name']} (spec.owner.webhook.secretRef) "
                                               "not found")
        except errors.APIError as error:
            return DeliveryResult(False, error=f"Secret {namespace}/{ref['name']} unreadable: HTTP {error.status}")
        try:
            value = base64.b64decode((secret.get("data") or {})[ref.get("key", "")], validate=True)
        except (KeyError, binascii.Error):
            return DeliveryResult(False, error=f"Secret {namespace}/{ref['name']} has no key {ref.get('key')!r}")
        return WebhookTarget(str(hook["url"]), [value])

    # --- the monitored objects ------------------------------------------------------------------------

    @kopf.on.event(GROUP, VERSION, "digitalobjects", registry=registry, id="monitor-wake")
    @kopf.on.event(GROUP, VERSION, "centralcomponents", registry=registry, id="monitor-wake")
    async def wake_on_change(body: kopf.Body, **_: Any) -> None:  # async: in the loop, not a thread
        meta = body.get("metadata") or {}
        event = wakes.get(f"{body.get('kind')}/{meta.get('namespace') or ''}/{meta.get('name')}")
        if event is not None:
            event.set()  # the object's daemon re-reads its spec

    def integrated(status: kopf.Status, **_: Any) -> bool:
        return status.get("phase") == "Integrated"

    @kopf.daemon(GROUP, VERSION, "digitalobjects", registry=registry, id="monitor", when=integrated,
                 cancellation_timeout=10.0)
    async def monitor_object(stopped: kopf.DaemonStopped, body: kopf.Body, resource: kopf.Resource,
                             logger: kopf.Logger, **kwargs: Any) -> None:
        meta = body.meta
        target = TargetRef("DigitalObject", str(meta["name"]), meta.get("namespace"), meta.get("uid"))
        await watch(target, body, resource, stopped, logger, kwargs[OPEN], target.namespace or "")

    @kopf.daemon(GROUP, VERSION, "centralcomponents", registry=registry, id="monitor", cancellation_timeout=10.0)
    async def monitor_component(stopped: kopf.DaemonStopped, body: kopf.Body, resource: kopf.Resource,
                                logger: kopf.Logger, **kwargs: Any) -> None:
        target = TargetRef("CentralComponent", str(body.meta["name"]), None, body.meta.get("uid"))
        await watch(target, body, resource, stopped, logger, kwargs[OPEN], config.incident_namespace)

    async def watch(target: TargetRef, body: kopf.Body, resource: kopf.Resource, stopped: kopf.DaemonStopped,
                    log: kopf.Logger, open_index: kopf.Index[str, dict[str, Any]], incident_namespace: str) -> None:
        key, central = target.key, target.kind == "CentralComponent"
        wake = wakes.setdefault(key, asyncio.Event())
        written = dict(body.get("status") or {})

        async def store(fields: Mapping[str, Any]) -> bool:
            nonlocal written
            fields = dict(fields)
            if central:  # the component's status is all ours: a Ready condition too
                state = (fields.get("availability") or {}).get("state", "Unknown")
                ready: ConditionStatus = "True" if state == "Up" else "False" if state == "Down" else "Unknown"
                reason = {"Up": "Available", "Down": "IncidentOpen"}.get(state, "AvailabilityUnknown")
                generation = body.meta.get("generation")
                fields["conditions"] = set_condition(written.get("conditions"), "Ready", ready, reason,
                                                     f"availability {state}", observed_generation=generation)
                fields["observedGeneration"] = generation
            stored = await patch_status(stopped, settings=api_settings, resource=resource, namespace=target.namespace,
                                        name=target.name, fields=fields, logger=log)
            written = stored or written
            return stored is not None

        async def apply(update: TargetUpdate) -> None:
            if pausing(stopped):
                return  # the active peer probes this target too and acts on what it sees
            warned = False
            while update.create is not None and not stopped:  # the Incident first: openIncident names it
                try:
                    with contextlib.suppress(errors.APIConflictError):  # created before a restart: same name
                        await create_obj(settings=api_settings, resource=INCIDENTS, logger=log,
                                         body=cast(bodies.RawBody, update.create))
                    break
                except errors.APIError as error:
                    if not warned:
                        kopf.warn(body, reason="IncidentNotRecorded", message=mask_text(
                            f"Incident {update.create['metadata']['name']} cannot be created in namespace "
                            f"{incident_namespace} (HTTP {error.status}); retrying")[:1000])
                        warned = True
                    await wait_any(stopped, None, None, 1.0 if fast else 10.0)
            if not await store(update.status):
                return
            if update.recovered is not None:
                service.recover(f"{incident_namespace}/{update.recovered[0]}", update.recovered[1])
            if update.event is not None:
                kopf.event(body, type=update.event.type, reason=update.event.reason,
                           message=mask_text(update.event.message)[:1000])

        spec, problem = probe_spec(body, cap)
        while spec is None and not stopped:  # reported once per generation; the daemon waits for a fix
            kopf.warn(body, reason="MonitoringInvalid", message=problem)
            generation = body.meta.get("generation")
            while not stopped and body.meta.get("generation") == generation:
                wake.clear()
                await wait_any(stopped, wake, None, 60.0)
            spec, problem = probe_spec(body, cap)
        if spec is None:
            return
        named, incident = restore(key, written.get("openIncident"), open_index)
        state = TargetState(target, written.get("availability"), named, clock(), incident_namespace=incident_namespace)
        queue = await service.attach(key, spec, control=central, incident=incident)
        loop = asyncio.get_running_loop()
        try:
            await store(state.status(clock()))
            next_write = loop.time() + config.availability_interval
            while not stopped:
                wake.clear()
                change: StateChange | None = await wait_any(stopped, wake, queue, next_write - loop.time())
                if stopped:
                    break
                state.last_checked_at = last_checked.get(key, state.last_checked_at)
                if change is not None:
                    await apply(state.on_change(change, clock()))
                new_spec, _ = probe_spec(body, cap)
                if new_spec is not None and new_spec != spec:
                    spec = new_spec
                    service.update(key, spec, control=central)
                if loop.time() >= next_write:
                    await store(state.status(clock()))
                    next_write = loop.time() + config.availability_interval
                kind, ns = target.kind, target.namespace or ""
                metrics.downtime.labels(kind=kind, namespace=ns, name=target.name).inc(state.downtime(clock()))
        finally:
            await service.detach(key)
            wakes.pop(key, None)
            last_checked.pop(key, None)
            labels = (target.kind, target.namespace or "", target.name)
            hide(labels)
            for phase in PHASES:  # no stale series of an object no longer probed here
                with contextlib.suppress(KeyError):
                    metrics.probe_duration.remove(*labels, phase)
            if stopped.reason is not None and STOPPED_FOR_GOOD in stopped.reason:
                state.log.record("Unknown", clock())  # no longer monitored (e.g. suspended)
                await store(state.status(clock()))

    # --- the incidents ----------------------------------------------------------------------------

    def active(status: kopf.Status, **_: Any) -> bool:
        return needs_task(status)

    @kopf.daemon(GROUP, VERSION, "incidents", registry=registry, id="notify", when=active, cancellation_timeout=10.0)
    async def notify(stopped: kopf.DaemonStopped, body: kopf.Body, resource: kopf.Resource, logger: kopf.Logger,
                     **kwargs: Any) -> None:
        meta = body.meta
        namespace = str(meta.get("namespace"))

        async def store(fields: Mapping[str, Any]) -> dict[str, Any] | None:
            return await patch_status(stopped, settings=api_settings, resource=resource, namespace=namespace,
                                      name=str(meta["name"]), fields=fields, logger=logger)

        async def pause(event: asyncio.Event, seconds: float) -> None:
            await wait_any(stopped, event, None, seconds)

        await incidents.run(body, store, pause, lambda: bool(stopped), kwargs[OWNERS], kwargs[COMPONENTS])

