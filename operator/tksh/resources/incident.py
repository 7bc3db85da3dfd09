"""``Incident``: one outage of a digital object or of a central component, and its 1-hour recovery SLA (§34.2).

The operator creates incidents; people read them. What is known when the outage is detected
(target, start, detection, failure) is the ``spec``, written once at creation, so an incident is
never seen without its start. What evolves (recovery, deadline, verdict, notifications) is the
``status``. An incident lives in its target's namespace; incidents of (cluster-scoped) central
components live in the operator's own namespace.

Phases: ``Open`` until the target is up again, then ``Recovered`` (final). The SLA verdict is
``Pending`` while open and within the hour, ``Breached`` once the hour has passed (even if
still open), ``Met`` when recovered in time.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, StringConstraints

from tksh import API_VERSION
from tksh.resources.base import (
    AGE_COLUMN,
    MESSAGE_COLUMN,
    CRDInfo,
    KubeModel,
    ObjectMeta,
    PrinterColumn,
    Timestamp,
)
from tksh.resources.common import Name, Outbox, StatusBase, Text, list_map

IncidentPhase = Literal["Open", "Recovered"]
INCIDENT_PHASES: tuple[str, ...] = get_args(IncidentPhase)
FailureClass = Literal["dns", "connect", "tls", "timeout", "http_status", "body", "unknown"]
Transition = Literal["Opened", "Reminder15", "Reminder30", "Reminder45", "Breached", "Recovered"]
SlaVerdict = Literal["Met", "Breached", "Pending"]


class Target(KubeModel):
    """What is down."""

    kind: Literal["DigitalObject", "CentralComponent"]
    """The kind of the target."""
    name: Name
    """The target's name."""
    namespace: Annotated[str, StringConstraints(max_length=63)] | None = None
    """The target's namespace (``DigitalObject`` only; central components are cluster-scoped)."""


class Failure(KubeModel):
    """How the probes failed."""

    class_: FailureClass = Field(alias="class")
    """``dns`` (name not resolved), ``connect`` (refused or unreachable), ``tls`` (handshake or certificate),
    ``timeout``, ``http_status`` (an unexpected status), ``body`` (an unexpected response), ``unknown``."""
    message: Text | None = None
    """The probe's own words."""


class NotificationRecord(KubeModel):
    """A notification delivered about this incident."""

    channel: Literal["email", "webhook", "event", "alertmanager"]
    """How it was delivered."""
    recipient: Text | None = None
    """The recipient in masked form (never the full address)."""
    transition: Transition
    """What it announced: the outage (``Opened``), a reminder 15/30/45 minutes in, the breach of the
    1-hour SLA (``Breached``), or the recovery."""
    delivered_at: Timestamp
    """When it was delivered."""


class FanoutProgress(KubeModel):
    """How far the announcement of a central failure (or of its recovery) to every integrated owner has gone
    (§34.3). Owners are told in the order of their objects (namespace, then name), a window at a time, so the
    incident's status stays small however many owners there are."""

    transition: Literal["Opened", "Recovered"]
    """What is announced: the outage or the recovery."""
    planned_through: Annotated[str, StringConstraints(max_length=317)] = ""
    """``namespace/name`` of the last object whose owner's notices are planned (empty before the first)."""
    owners: int = Field(default=0, ge=0)
    """Owners whose notices are planned so far."""
    complete: bool = False
    """Every integrated owner's notices are planned (some may still be in the outbox)."""
    delivered: int = Field(default=0, ge=0)
    """Notices of this announcement delivered (counted here rather than listed in ``notifications``)."""
    failed: int = Field(default=0, ge=0)
    """Notices of this announcement given up after their retries."""


class IncidentSpec(KubeModel):
    """The facts of the outage known when it was detected; written once by the operator."""

    target: Target
    """What is down."""
    started_at: Timestamp
    """When the outage began: the first failed probe of the failing run."""
    detected_at: Timestamp | None = None
    """When the failure threshold was reached and the outage declared."""
    failure: Failure
    """How the probes failed."""


class IncidentStatus(StatusBase):
    """How the outage evolves and ends."""

    phase: IncidentPhase | None = None
    """``Open`` or ``Recovered``."""
    recovery_deadline: Timestamp | None = None
    """``startedAt`` + 1 hour: working order must be restored by then (§34.2)."""
    recovered_at: Timestamp | None = None
    """When the target was up again."""
    duration_seconds: int | None = Field(default=None, ge=0)
    """How long the outage lasted (recovered incidents), in seconds."""
    sla_verdict: SlaVerdict | None = None
    """``Pending`` while open within the hour, ``Met`` when recovered in time, ``Breached`` when not."""
    notifications: list[NotificationRecord] = Field(default_factory=list)
    """The notifications delivered, in order (§34.3: owners are notified immediately)."""
    outbox: Outbox = Field(default_factory=list)
    """Notifications not yet delivered, durable until delivered."""
    fanout: Annotated[list[FanoutProgress], Field(max_length=2, json_schema_extra=list_map("transition"))] = Field(
        default_factory=list)
    """A central failure announced to every integrated owner (critical central components, §34.3): one record per
    announcement (``Opened``, ``Recovered``)."""


class Incident(KubeModel):
    """One outage of a digital object or a central component: start, detection, recovery, the 1-hour
    recovery deadline (§34.2), the SLA verdict and the notifications delivered (§34.3)."""

    api_version: str = API_VERSION
    kind: Literal["Incident"] = "Incident"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: IncidentSpec
    status: IncidentStatus = Field(default_factory=IncidentStatus)


INFO = CRDInfo(
    kind="Incident",
    plural="incidents",
    singular="incident",
    short_names=("inc",),
    scope="Namespaced",
    model=Incident,
    spec=IncidentSpec,
    status=IncidentStatus,
    printer_columns=(
        PrinterColumn("Target", "string", ".spec.target.name", "What is down"),
        PrinterColumn("Reason", "string", ".spec.failure.class", "How the probes failed"),
        PrinterColumn("Phase", "string", ".status.phase", "Open or Recovered"),
        PrinterColumn("Started", "date", ".spec.startedAt", "When the outage began"),
        PrinterColumn("Deadline", "string", ".status.recoveryDeadline", "Recovery due by (start + 1 hour, §34.2)"),
        PrinterColumn("Verdict", "string", ".status.slaVerdict", "Pending, Met or Breached"),
        AGE_COLUMN,
        MESSAGE_COLUMN,
    ),
)
