"""The life of one incident as its single writer runs it: deadline, verdict, notices, delivery, alert re-posts.

:meth:`IncidentTask.run` is the body of the operator's per-incident daemon, written without kopf:
the caller passes how to store a status merge patch, how to wait, whether to stop, the indexes of
owners and central components, and how to post an Event. One pass:

1. a new incident gets ``phase: Open``, its ``recoveryDeadline`` and ``slaVerdict``; a recovery handed
   over by the target's task (:meth:`MonitorService.recover`) becomes ``recoveredAt``,
   ``durationSeconds``, the final verdict and ``phase: Recovered``; an open incident past its deadline
   becomes ``Breached`` (counted once in ``tksh_sla_breaches_total``);
2. the notices due (:func:`tksh.monitoring.sla.due_transitions`, given every transition already in
   the outbox or delivered) are enqueued, one entry per recipient, and stored *before* any is sent;
3. the due entries are delivered and the outcome stored with the delivered records;
4. while open, the firing Alertmanager alert is re-posted every ``alertmanager_repost`` seconds;
5. it sleeps until the next mark (a reminder, the breach, a retry, a re-post) or a wake-up.

It returns once the incident is recovered and no notice is pending.

Recipients (:meth:`recipients`): Events always; Alertmanager when configured; the owner of a digital
object (e-mail to ``spec.owner.email``, webhook if ``spec.owner.webhook``); for a central component,
the Administrator's mailbox and, if the component is critical, the owners of *every* integrated
object for the outage and the recovery (§34.3), a window of owners at a time (:mod:`tksh.monitoring.fanout`,
:meth:`fanout_owners`). ``Unknown`` never reaches here: it opens no incident.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from tksh.config import OperatorConfig
from tksh.logs import mask_text
from tksh.metrics import OperatorMetrics
from tksh.monitoring import fanout, sla
from tksh.monitoring.delivery import Attempt, Channels, WebhookTarget, deliver_due
from tksh.monitoring.incidents import (
    Recipient,
    TargetRef,
    incident_alert,
    incident_params,
    open_fields,
    plan_entries,
    recovery_fields,
    transition_at,
    transition_of,
    transitions_in,
)
from tksh.monitoring.service import MonitorService
from tksh.notify.alertmanager import post_alerts
from tksh.notify.email import SmtpSettings
from tksh.notify.outbox import Backoff, DeliveryResult, compact, enqueue_all, next_attempt_at
from tksh.resources.incident import Incident, Transition

__all__ = ["IncidentTask", "needs_task"]

logger = logging.getLogger(__name__)
Store = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any] | None]]
Pause = Callable[[asyncio.Event, float], Awaitable[None]]
PostEvent = Callable[[Mapping[str, Any], str, str, str], None]
TargetLabels = tuple[str, str, str]
"""A target's labels on the monitoring series: kind, namespace (empty for a central component), name."""
WebhookResolver = Callable[[Mapping[str, Any], Mapping[Any, Any]], Awaitable[WebhookTarget | DeliveryResult]]
_EVENTS: dict[str, tuple[str, str]] = {
    "Opened": ("Warning", "IncidentOpened"), "Reminder15": ("Warning", "IncidentReminder"),
    "Reminder30": ("Warning", "IncidentReminder"), "Reminder45": ("Warning", "IncidentReminder"),
    "Breached": ("Warning", "IncidentSLABreached"), "Recovered": ("Normal", "IncidentRecovered"),
}


def _first(store: Iterable[Any] | None) -> Any:
    return next(iter(store or ()), None)


@dataclasses.dataclass
class IncidentTask:
    """What every incident's task shares: configuration, metrics, the service, the clock, the channels."""

    config: OperatorConfig
    metrics: OperatorMetrics
    service: MonitorService
    clock: Callable[[], datetime.datetime]
    backoff: Backoff
    webhook_target: WebhookResolver
    post_event: PostEvent
    on_pending: Callable[[int], None] = lambda total: None
    """Told the number of pending notices of all incidents (for ``tksh_notifications_pending``)."""
    open: set[str] = dataclasses.field(default_factory=set)
    pending: dict[str, int] = dataclasses.field(default_factory=dict)
    starts: dict[str, tuple[TargetLabels, float]] = dataclasses.field(default_factory=dict)
    """Each open incident's target and start (Unix time), for ``tksh_incident_started_timestamp_seconds``."""

    def publish(self, key: str, status: Mapping[str, Any] | None,
                start: tuple[TargetLabels, float] | None = None) -> None:
        """Export what this incident's task knows: open or not (and since when, per target), pending notices."""
        if status is None or status.get("phase") == "Recovered":
            self.open.discard(key)
            self._started(key, None)
        else:
            self.open.add(key)
            self._started(key, start)
        if status is None:
            self.pending.pop(key, None)
        else:
            self.pending[key] = sum(1 for e in status.get("outbox") or () if e.get("state", "Pending") == "Pending")
        self.metrics.incidents_open.set(len(self.open))
        self.on_pending(sum(self.pending.values()))

    def _started(self, key: str, start: tuple[TargetLabels, float] | None) -> None:
        """The target's series is the earliest start of its open incidents (normally one), gone with the last."""
        before = self.starts.pop(key, None)
        if start is not None:
            self.starts[key] = start
        for labels in {s[0] for s in (before, start) if s is not None}:
            opened = [at for target, at in self.starts.values() if target == labels]
            if opened:
                self.metrics.incident_started.labels(*labels).set(min(opened))
            else:
                self.metrics.incident_started.remove(*labels)

    def recipients(self, incident: Incident, owners: Mapping[Any, Any]) -> list[Recipient]:
        found = [Recipient("events", "event", "Events on the target and the incident")]
        if self.config.alertmanager_url:
            found.append(Recipient("alertmanager", "alertmanager", "Alertmanager"))
        target = incident.spec.target
        if target.kind == "DigitalObject":
            owner = _first(owners.get((target.namespace or "", target.name)))
            if owner:
                found += _owner_recipients(target.namespace or "", target.name, owner, central=False)
            return found
        if self.config.administrator_mailbox:
            found.append(Recipient("administrator", "email", self.config.administrator_mailbox,
                                   {"recipientRole": "administrator"}))
        return found  # the owners of integrated objects, for a critical one: a window at a time (fan-out)

    @staticmethod
    def fanout_owners(owners: Mapping[Any, Any]) -> fanout.Owners:
        """Every integrated object's place and its owner's recipients of a central failure, in order (§34.3)."""
        found: list[tuple[tuple[str, str], list[Recipient]]] = []
        for (namespace, name), store in sorted(owners.items()):
            owner = _first(store)
            if owner and owner.get("phase") == "Integrated":
                found.append(((namespace, name), _owner_recipients(namespace, name, owner, central=True)))
        return found

    async def run(self, body: Mapping[str, Any], store: Store, pause: Pause, stopped: Callable[[], bool],
                  owners: Mapping[Any, Any], components: Mapping[Any, Any]) -> None:
        meta = body.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        status: dict[str, Any] = dict(body.get("status") or {})
        target = _target(body, owners, components)
        component = _first(components.get(target.name)) if target.kind == "CentralComponent" else None
        title = (component or {}).get("title")
        channels = Channels(
            smtp=SmtpSettings(host=self.config.smtp_host, port=self.config.smtp_port, sender=self.config.smtp_sender),
            email_address=lambda entry: self._address(entry, owners),
            webhook_target=lambda entry: self.webhook_target(entry, owners),
            post_event=lambda entry: self._events(entry, body, target),
            alertmanager_url=self.config.alertmanager_url, generator_url=self.config.status_url,
            critical=bool((component or {}).get("critical")), stopped=stopped,
        )
        spec_start = Incident.model_validate({**body, "status": status}).spec.started_at
        start = ((target.kind, target.namespace or "", target.name), spec_start.timestamp())
        wake = self.service.wake(key)
        loop = asyncio.get_running_loop()
        repost_at = loop.time() + self.config.alertmanager_repost
        try:
            while not stopped():
                wake.clear()
                now = self.clock()
                incident = Incident.model_validate({**body, "status": status})
                fields: dict[str, Any] = {} if status.get("phase") else open_fields(incident, now)
                recovered_at = self.service.recovery(key)
                if recovered_at is not None and not status.get("recoveredAt"):
                    fields.update(recovery_fields(incident, recovered_at))
                elif status.get("phase", "Open") == "Open":
                    verdict = sla.verdict(incident.spec.started_at, None, now)
                    if verdict != status.get("slaVerdict"):
                        fields["slaVerdict"] = verdict
                incident = Incident.model_validate({**body, "status": {**status, **fields}})
                due = sla.due_transitions(incident, now, transitions_in(status.get("outbox"),
                                                                        status.get("notifications")))
                if due:
                    entries = plan_entries(incident, due, self.recipients(incident, owners), now,
                                           timezone=self.config.timezone, title=title)
                    fields["outbox"] = enqueue_all(status.get("outbox"), entries)
                if channels.critical:
                    fields.update(self._fan_out(incident, status, fields, due, owners, now, title))
                if fields:
                    stored = await store(fields)
                    if stored is None:
                        return  # the incident is gone
                    self._count(status, stored)
                    status = stored
                    self.publish(key, status, start)
                    if stored.get("recoveredAt"):
                        self.service.forget(key)
                if stopped():
                    break  # nothing sent by a stopping task: the next writer sends what is stored, with its keys
                outbox, attempts = await deliver_due(status.get("outbox"), channels, self.clock(),
                                                     backoff=self.backoff)
                if attempts:
                    done_at = self.clock()
                    progress, listed = fanout.tally(status.get("fanout"), [(a.template, a.fanout, a.state, a.record)
                                                                          for a in attempts])
                    notifications = [*(status.get("notifications") or ()), *listed]
                    stored = await store({"outbox": compact(outbox, done_at), "notifications": notifications,
                                          **({"fanout": progress} if progress else {})})
                    # The attempts happened, whatever the store did: counted; told in Events only if recorded.
                    self._report(attempts, incident, body, done_at, events=stored is not None)
                    status = stored if stored is not None else status
                self.publish(key, status, start)
                recovered = status.get("phase") == "Recovered"
                told = not channels.critical or fanout.complete(status.get("fanout"))  # (no longer critical: done)
                if recovered and not self.pending.get(key) and told:
                    return
                if not recovered and self.config.alertmanager_url and loop.time() >= repost_at:
                    await self._repost(incident, status, channels)
                    repost_at = loop.time() + self.config.alertmanager_repost
                more = channels.critical and bool(self._window(status.get("fanout"), owners, status.get("outbox"))[1])
                await pause(wake, 0.0 if more else self._sleep(incident, status, repost_at - loop.time()))
        finally:
            self.publish(key, None)

    # --- helpers --------------------------------------------------------------------------------------

    def _fan_out(self, incident: Incident, status: Mapping[str, Any], fields: Mapping[str, Any],
                 due: Sequence[Transition], owners: Mapping[Any, Any], now: datetime.datetime,
                 title: str | None) -> dict[str, Any]:
        """The next window of owners told of a critical central component's failure or recovery: the fields of
        its outbox and progress to store in the same write (nothing when there is no room or nobody left)."""
        before = status.get("fanout") or []
        outbox = fields.get("outbox", status.get("outbox"))
        progress, plan = self._window(fanout.start(before, due), owners, outbox)
        for transition, recipients in plan:
            outbox = enqueue_all(outbox, plan_entries(incident, [transition], recipients, now,
                                                      timezone=self.config.timezone, title=title))
        if progress == before:
            return {}
        return {"fanout": progress, "outbox": outbox} if plan else {"fanout": progress}

    def _window(self, progress: Sequence[Mapping[str, Any]] | None, owners: Mapping[Any, Any],
                outbox: Sequence[Mapping[str, Any]] | None) -> tuple[list[dict[str, Any]], list[tuple[Transition,
                                                                                                  list[Recipient]]]]:
        return fanout.next_window(progress, self.fanout_owners(owners), outbox, self.config.fanout_window)

    def _sleep(self, incident: Incident, status: Mapping[str, Any], repost_in: float) -> float:
        now = self.clock()
        marks = [sla.next_due_at(incident, transitions_in(status.get("outbox"), status.get("notifications"))),
                 next_attempt_at(status.get("outbox"))]
        seconds = [(mark - now).total_seconds() for mark in marks if mark is not None]
        if status.get("phase") != "Recovered" and self.config.alertmanager_url:
            seconds.append(repost_in)
        # A bounded nap even with nothing scheduled: the clock may be moved (tests) or a mark missed.
        return max(0.0, min([*seconds, 0.2 if self.config.fast else 60.0]))

    def _count(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        if after.get("slaVerdict") == "Breached" and before.get("slaVerdict") != "Breached":
            self.metrics.sla_breaches.inc()
        if after.get("recoveredAt") and not before.get("recoveredAt"):
            self.metrics.time_to_restore.observe(float(after.get("durationSeconds") or 0))

    def _address(self, entry: Mapping[str, Any], owners: Mapping[Any, Any]) -> str | None:
        params = entry.get("params") or {}
        if params.get("recipientRole") == "administrator":
            return self.config.administrator_mailbox or None
        owner = _first(owners.get((params.get("recipientNamespace", ""), params.get("recipientName", ""))))
        return (owner or {}).get("email") or None

    def _events(self, entry: Mapping[str, Any], body: Mapping[str, Any], target: TargetRef) -> None:
        transition = transition_of(entry) or "Opened"
        kind, reason = _EVENTS[transition]
        p = entry.get("params") or {}
        message = f"Incident {p.get('incident')}: {transition} ({target.shown}, started {p.get('startedAt')}, " \
                  f"deadline {p.get('deadline')}" + (f", verdict {p['verdict']}" if p.get("verdict") else "") + ")"
        for obj in (body, target.body()):
            self.post_event(obj, kind, reason, mask_text(message))

    def _report(self, attempts: list[Attempt], incident: Incident, body: Mapping[str, Any], now: datetime.datetime,
                *, events: bool) -> None:
        for attempt in attempts:
            result = {"Delivered": "delivered", "Pending": "retry"}.get(attempt.state, "failed")
            self.metrics.notifications.labels(channel=attempt.channel, result=result).inc()
            transition = transition_of({"template": attempt.template})
            if result == "delivered" and transition is not None:
                latency = (now - transition_at(incident, transition)).total_seconds()
                self.metrics.notification_latency.labels(channel=attempt.channel).observe(max(0.0, latency))
            if result == "failed" and events:
                what = f"{attempt.channel} {attempt.template} to {attempt.recipient}"
                self.post_event(body, "Warning", "NotificationFailed",
                                mask_text(f"{what} given up: {attempt.result.error}")[:1000])
            elif result == "retry":
                logger.info("%s %s not delivered yet: %s", attempt.channel, attempt.id, mask_text(attempt.result.error))

    async def _repost(self, incident: Incident, status: Mapping[str, Any], channels: Channels) -> None:
        if "Opened" not in transitions_in((), status.get("notifications")):
            return  # not fired yet: the outbox does the first post
        alert = incident_alert(incident_params(incident, None, timezone=self.config.timezone), resolved=False,
                               critical=channels.critical, generator_url=self.config.status_url)
        result = await post_alerts(self.config.alertmanager_url, [alert])
        if not result.delivered:
            logger.warning("re-posting the alert of %s failed: %s", incident.metadata.name, result.error)


def needs_task(status: Mapping[str, Any]) -> bool:
    """Whether an incident needs its task (the operator's daemon): open, a notice pending, or a central failure's
    announcement not yet planned for every owner (between two windows nothing may be pending)."""
    pending = any(e.get("state", "Pending") == "Pending" for e in status.get("outbox") or ())
    return status.get("phase") != "Recovered" or pending or not fanout.complete(status.get("fanout"))


def _owner_recipients(namespace: str, name: str, owner: Mapping[str, Any], *, central: bool) -> list[Recipient]:
    params = {"recipientRole": "owner", "recipientNamespace": namespace, "recipientName": name}
    if central:
        params["central"] = "true"
    transitions = fanout.ANNOUNCED if central else None
    found: list[Recipient] = []
    if owner.get("email"):
        found.append(Recipient(f"owner:{owner.get('uid')}", "email", str(owner["email"]), params, transitions))
    if (owner.get("webhook") or {}).get("url"):
        found.append(Recipient(f"owner:{owner.get('uid')}", "webhook", f"webhook of {namespace}/{name}", params,
                               transitions))
    return found


def _target(body: Mapping[str, Any], owners: Mapping[Any, Any], components: Mapping[Any, Any]) -> TargetRef:
    target = (body.get("spec") or {}).get("target") or {}
    kind, name, namespace = target.get("kind", "DigitalObject"), target.get("name", ""), target.get("namespace")
    known = _first(owners.get((namespace or "", name))) if kind == "DigitalObject" else _first(components.get(name))
    return TargetRef(kind, name, namespace, (known or {}).get("uid"))
