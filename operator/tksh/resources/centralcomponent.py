"""``CentralComponent``: a part of the central collection system (ЦЖ) itself, watched like a digital object.

§34.3 asks for continuous monitoring of the central system's availability and an immediate
notice to the owners of digital objects when it fails: a failing *critical* component opens an
Incident and notifies every integrated object's owner.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tksh import API_VERSION
from tksh.resources.base import (
    AGE_COLUMN,
    MESSAGE_COLUMN,
    READY_COLUMN,
    CRDInfo,
    KubeModel,
    ObjectMeta,
    PrinterColumn,
)
from tksh.resources.common import Availability, Endpoint, Name, Outbox, Probe, ProbeField, StatusBase, Text


class CentralComponentSpec(KubeModel):
    """A component of the central system and how it is probed."""

    title: Text | None = None
    """A human name, e.g. "ЦЖ API gateway"."""
    endpoint: Endpoint
    """Where the component is probed."""
    probe: ProbeField = Field(default_factory=Probe)
    """How it is probed."""
    critical: bool = False
    """Whether its failure is a failure of the central system, announced to all owners of digital objects (§34.3)."""


class CentralComponentStatus(StatusBase):
    """The component's availability."""

    availability: Availability | None = None
    """The component's availability by monitoring."""
    open_incident: Name | None = None
    """The ``Incident`` open for this component, if it is down."""
    outbox: Outbox = Field(default_factory=list)
    """Notifications about the component, durable until delivered."""


class CentralComponent(KubeModel):
    """A component of the central collection system (ЦЖ), monitored continuously (§34.3)."""

    api_version: str = API_VERSION
    kind: Literal["CentralComponent"] = "CentralComponent"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: CentralComponentSpec
    status: CentralComponentStatus = Field(default_factory=CentralComponentStatus)


INFO = CRDInfo(
    kind="CentralComponent",
    plural="centralcomponents",
    singular="centralcomponent",
    short_names=("ccomp",),
    scope="Cluster",
    model=CentralComponent,
    spec=CentralComponentSpec,
    status=CentralComponentStatus,
    printer_columns=(
        PrinterColumn("Critical", "boolean", ".spec.critical", "Whether its failure is the central system's"),
        PrinterColumn("Availability", "string", ".status.availability.state", "Up, Down or Unknown"),
        PrinterColumn("Incident", "string", ".status.openIncident", "The open Incident, if down"),
        READY_COLUMN,
        AGE_COLUMN,
        MESSAGE_COLUMN,
    ),
)
