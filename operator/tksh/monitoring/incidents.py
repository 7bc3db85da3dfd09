"""Incidents as data: the object a confirmed outage creates, its notices and who receives them (pure).

The operator's glue (``tksh.handlers.monitoring``) calls these functions and does the I/O:

* :func:`incident_name` and :func:`incident_manifest` — the ``Incident`` an ``opened``
  :class:`~tksh.monitoring.machine.StateChange` creates. The name is a function of the target and
  the outage's start, so an operator that restarts after creating it recreates the same name
  (409, nothing duplicated);
* :func:`open_fields`, :func:`recovery_fields` — the status of an open incident and of its recovery;
* :func:`plan_entries` — the outbox entries of the transitions due (``Opened``, ``Reminder15/30/45``,
  ``Breached``, ``Recovered``, from :func:`tksh.monitoring.sla.due_transitions`), one per recipient,
  each with the idempotency key *incident uid + transition + recipient*;
* :func:`webhook_payload`, :func:`incident_alert` — what the webhook and Alertmanager channels send.

Entries carry no personal data: the owner is named by their object (``recipientNamespace``,
``recipientName``); the address, webhook URL and secret are resolved when the entry is sent.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from tksh import API_VERSION
from tksh.conditions import rfc3339
from tksh.logs import mask_text
from tksh.monitoring import messages
from tksh.monitoring.machine import StateChange
from tksh.monitoring.sla import BREACH, REMINDERS, recovery_deadline, verdict
from tksh.notify.alertmanager import Alert
from tksh.notify.outbox import Channel, Entry, make_key, new_entry, parse_time
from tksh.resources.incident import Incident, Transition

__all__ = [
    "TRANSITIONS",
    "Recipient",
    "TargetRef",
    "delivered_record",
    "incident_alert",
    "incident_manifest",
    "incident_name",
    "incident_params",
    "open_fields",
    "plan_entries",
    "recovery_fields",
    "transition_at",
    "transition_of",
    "transitions_in",
    "webhook_payload",
]

TargetKind = Literal["DigitalObject", "CentralComponent"]
TRANSITIONS: tuple[Transition, ...] = ("Opened", "Reminder15", "Reminder30", "Reminder45", "Breached", "Recovered")
_BY_TEMPLATE = {messages.template_for(t): t for t in TRANSITIONS}


@dataclasses.dataclass(frozen=True)
class TargetRef:
    """A monitored object: a ``DigitalObject`` (namespaced) or a ``CentralComponent`` (cluster-scoped)."""

    kind: TargetKind
    name: str
    namespace: str | None = None
    uid: str | None = None

    @property
    def key(self) -> str:
        """The scheduler's key: ``DigitalObject/housing/heat-billing``, ``CentralComponent//gateway``."""
        return f"{self.kind}/{self.namespace or ''}/{self.name}"

    @property
    def shown(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def body(self) -> dict[str, Any]:
        """A minimal object body, enough to post Events about it."""
        meta = {k: v for k, v in (("name", self.name), ("namespace", self.namespace), ("uid", self.uid)) if v}
        return {"apiVersion": API_VERSION, "kind": self.kind, "metadata": meta}


@dataclasses.dataclass(frozen=True)
class Recipient:
    """Who receives an incident's notices over one channel.

    ``id`` names the recipient in the idempotency key (e.g. ``owner:<object uid>``, ``administrator``);
    ``description`` is stored masked in the entry; ``params`` tell the sender whom to resolve
    (``recipientNamespace``/``recipientName`` of the owner's object); ``transitions`` limits the notices
    (``None``: all of them).
    """

    id: str
    channel: Channel
    description: str = ""
    params: Mapping[str, str] = dataclasses.field(default_factory=dict)
    transitions: frozenset[Transition] | None = None


def incident_name(target: TargetRef, started_at: datetime.datetime) -> str:
    """``<target name>-<10 hex>`` (``ccomp-<name>-...`` for central components), from the target and the start."""
    digest = hashlib.sha256(f"{target.key}\x1f{started_at.isoformat()}".encode()).hexdigest()[:10]
    prefix = ("ccomp-" if target.kind == "CentralComponent" else "") + target.name
    return f"{prefix[:240].rstrip('-.')}-{digest}"


def incident_manifest(target: TargetRef, change: StateChange, namespace: str) -> dict[str, Any]:
    """The ``Incident`` to create for an ``opened`` change (the failure message masked and clipped)."""
    if change.incident != "opened" or change.started_at is None:
        raise ValueError("only an opened change creates an incident")
    target_ref = {"kind": target.kind, "name": target.name}
    if target.namespace:
        target_ref["namespace"] = target.namespace
    failure: dict[str, str] = {"class": change.failure or "unknown"}
    if change.message:
        failure["message"] = mask_text(change.message)[:1024]
    spec: dict[str, Any] = {"target": target_ref, "startedAt": rfc3339(change.started_at), "failure": failure}
    if change.detected_at is not None:
        spec["detectedAt"] = rfc3339(change.detected_at)
    labels = {"tksh.kz/target-kind": target.kind, "tksh.kz/target-name": target.name[:63].rstrip("-.")}
    return {
        "apiVersion": API_VERSION,
        "kind": "Incident",
        "metadata": {"name": incident_name(target, change.started_at), "namespace": namespace, "labels": labels},
        "spec": spec,
    }


def open_fields(incident: Incident, now: datetime.datetime) -> dict[str, Any]:
    """The status of an incident the operator sees for the first time (``Open``, deadline, verdict)."""
    started_at = incident.spec.started_at
    return {
        "phase": "Open",
        "recoveryDeadline": rfc3339(recovery_deadline(started_at)),
        "slaVerdict": verdict(started_at, None, now),
        "message": "open: recovery due within one hour of the start (§34)",
    }


def recovery_fields(incident: Incident, recovered_at: datetime.datetime) -> dict[str, Any]:
    """The status of the recovery: phase, ``recoveredAt``, duration and the final verdict."""
    started_at = incident.spec.started_at
    recovered_at = max(recovered_at, started_at)
    final = verdict(started_at, recovered_at, recovered_at)
    seconds = max(0, int((recovered_at - started_at).total_seconds()))
    return {
        "phase": "Recovered",
        "recoveredAt": rfc3339(recovered_at),
        "durationSeconds": seconds,
        "slaVerdict": final,
        "message": f"recovered after {seconds} s; SLA {'met' if final == 'Met' else 'breached'}",
    }


def transition_at(incident: Incident, transition: Transition) -> datetime.datetime:
    """The instant a notice is about: the start, a reminder's or the breach's mark, or the recovery."""
    started_at = incident.spec.started_at
    marks = dict((*REMINDERS, BREACH))
    if transition in marks:
        return started_at + marks[transition]
    if transition == "Recovered" and incident.status.recovered_at is not None:
        return incident.status.recovered_at
    return started_at


def transition_of(entry: Mapping[str, Any]) -> Transition | None:
    """The transition an incident outbox entry announces (from its template)."""
    return _BY_TEMPLATE.get(str(entry.get("template")))


def transitions_in(
    outbox: Iterable[Mapping[str, Any]] | None, notifications: Iterable[Mapping[str, Any]] | None = None
) -> set[Transition]:
    """Transitions already queued (any entry state) or recorded as delivered: never enqueued twice."""
    found = {t for e in outbox or () if (t := transition_of(e)) is not None}
    return found | {n["transition"] for n in notifications or () if n.get("transition") in TRANSITIONS}


def incident_params(
    incident: Incident, transition: Transition | None, *, timezone: str, title: str | None = None,
    central: bool = False,
) -> dict[str, str]:
    """The entry params of a notice: names, times, failure, outcome (no personal data)."""
    spec, status, meta = incident.spec, incident.status, incident.metadata
    params = {
        "incident": meta.name or "",
        "incidentNamespace": meta.namespace or "",
        "targetKind": spec.target.kind,
        "targetNamespace": spec.target.namespace or "",
        "targetName": spec.target.name,
        "targetTitle": title or "",
        "startedAt": rfc3339(spec.started_at),
        "detectedAt": rfc3339(spec.detected_at) if spec.detected_at else "",
        "deadline": rfc3339(recovery_deadline(spec.started_at)),
        "failureClass": spec.failure.class_,
        "failureMessage": spec.failure.message or "",
        "timezone": timezone,
        "central": "true" if central else "",
    }
    if transition is not None:
        params["transition"] = transition
        if transition.startswith("Reminder"):
            params["minutes"] = transition.removeprefix("Reminder")
    if status.recovered_at is not None:
        params["recoveredAt"] = rfc3339(status.recovered_at)
        params["durationSeconds"] = str(status.duration_seconds or 0)
    if status.sla_verdict:
        params["verdict"] = status.sla_verdict
    return {k: v for k, v in params.items() if v}


def plan_entries(
    incident: Incident,
    transitions: Sequence[Transition],
    recipients: Sequence[Recipient],
    now: datetime.datetime,
    *,
    timezone: str,
    title: str | None = None,
) -> list[Entry]:
    """One ``Pending`` outbox entry per transition and recipient, in that order."""
    uid = incident.metadata.uid or incident.metadata.name or ""
    entries: list[Entry] = []
    for transition in transitions:
        template = messages.template_for(transition)
        for recipient in recipients:
            if recipient.transitions is not None and transition not in recipient.transitions:
                continue
            params = incident_params(incident, transition, timezone=timezone, title=title,
                                     central=recipient.params.get("central") == "true")
            params.update({k: v for k, v in recipient.params.items() if k != "central"})
            entries.append(new_entry(
                id=make_key(template, uid, transition, recipient.channel, recipient.id),
                channel=recipient.channel, template=template, now=now,
                recipient=recipient.description or None, params=params,
            ))
    return entries


def delivered_record(entry: Mapping[str, Any], now: datetime.datetime) -> dict[str, Any]:
    """The ``status.notifications`` record of a delivered entry."""
    record = {"channel": entry["channel"], "transition": transition_of(entry), "deliveredAt": rfc3339(now)}
    if entry.get("recipient"):
        record["recipient"] = entry["recipient"]
    return record


def webhook_payload(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of a webhook notice, from the entry alone (the same bytes on every retry)."""
    p: Mapping[str, str] = entry.get("params") or {}
    transition = transition_of(entry) or "Opened"
    incident = {k: p[k] for k in ("startedAt", "detectedAt", "recoveredAt", "verdict") if p.get(k)}
    incident.update(name=p.get("incident", ""), namespace=p.get("incidentNamespace", ""),
                    recoveryDeadline=p.get("deadline", ""))
    if p.get("durationSeconds"):
        incident["durationSeconds"] = int(p["durationSeconds"])  # type: ignore[assignment]
    body: dict[str, Any] = {
        "id": entry["id"],
        "type": f"tksh.incident.{transition.lower()}",
        "transition": transition,
        "central": p.get("central") == "true",
        "incident": incident,
        "failure": {"class": p.get("failureClass", "unknown"), "message": p.get("failureMessage", "")},
        "target": {"kind": p.get("targetKind", ""), "namespace": p.get("targetNamespace", ""),
                   "name": p.get("targetName", ""), "title": p.get("targetTitle", "")},
    }
    if p.get("recipientName"):
        body["object"] = {"namespace": p.get("recipientNamespace", ""), "name": p["recipientName"]}
    return body


def incident_alert(params: Mapping[str, str], *, resolved: bool, critical: bool,
                   generator_url: str | None = None) -> Alert:
    """The Alertmanager alert of an incident; its labels never change during the incident's life."""
    labels = {"alertname": "TkshIncident", "incident": params.get("incident", ""),
              "target_kind": params.get("targetKind", ""), "target_name": params.get("targetName", ""),
              "severity": "critical" if critical else "warning"}
    if params.get("targetNamespace"):
        labels["target_namespace"] = params["targetNamespace"]
    shown = "/".join(x for x in (params.get("targetNamespace"), params.get("targetName")) if x)
    annotations = {
        "summary": f"{params.get('targetKind')} {shown} " + ("recovered" if resolved else "is down"),
        "description": f"{params.get('failureClass', 'unknown')}: {params.get('failureMessage', '')}".strip(": "),
        "recovery_deadline": params.get("deadline", ""),
        "sla_verdict": params.get("verdict", "Pending"),
    }
    started = parse_time(params.get("startedAt"))
    ended = parse_time(params.get("recoveredAt")) if resolved else None
    return Alert({k: v for k, v in labels.items() if v}, annotations, starts_at=started, ends_at=ended,
                 generator_url=generator_url or None)
