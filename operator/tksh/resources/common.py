"""Shared pieces of the resources, defined once: value types, conditions, endpoint and probe,
availability, the notification outbox, titles and agreements.

The constrained types below carry their constraints into the CRD schema (patterns, ranges) and
into the Python models alike. The models validate *what the schema validates and nothing more*,
so every object the API server accepts also parses; rules that need several fields at once
(a probe timeout shorter than its interval, a grant's delegation chain) belong to the operator,
which reports them in the status.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from tksh.resources.base import KubeModel, Timestamp

# --- value types -----------------------------------------------------------------------------------------------------

BIN_PATTERN = r"^[0-9]{12}$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PHONE_PATTERN = r"^\+[1-9][0-9]{6,14}$"
URL_PATTERN = r"^https?://[^\s/?#]+([/?#]\S*)?$"
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
TEMPLATE_PATTERN = r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$"

Bin = Annotated[str, StringConstraints(pattern=BIN_PATTERN)]
"""A business identification number (БСН/БИН): 12 digits."""

Name = Annotated[str, StringConstraints(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
"""The name of a Kubernetes object (a DNS-1123 subdomain)."""

Email = Annotated[str, StringConstraints(max_length=254, pattern=EMAIL_PATTERN)]
Phone = Annotated[str, StringConstraints(pattern=PHONE_PATTERN)]
Url = Annotated[str, StringConstraints(max_length=2048, pattern=URL_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=1024)]
LongText = Annotated[str, StringConstraints(max_length=32768)]
NonEmptyText = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=REASON_PATTERN)]

Category = Annotated[int, Field(ge=1, le=15)]
"""A §4 information category, 1 to 15 (see ``INFORMATION_CATEGORIES``)."""

Percent = Annotated[float, Field(ge=0, le=100)]
Ratio = Annotated[float, Field(ge=0, le=1)]
"""A share, 0 to 1."""
MAX_HISTORY = 200
"""At most this many intervals in ``status.availability.history``."""

INT64: dict[str, Any] = {"format": "int64"}
SET: dict[str, Any] = {"x-kubernetes-list-type": "set"}
"""A list of unique scalars. The API server refuses duplicates (``uniqueItems`` is forbidden in CRDs)."""


def list_map(*keys: str) -> dict[str, Any]:
    """A list of objects identified by ``keys``: the API server refuses two items with the same keys."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


ConditionStatus = Literal["True", "False", "Unknown"]


class Titles(KubeModel):
    """A name in the three languages of the product: Kazakh, Russian and English."""

    kk: NonEmptyText
    """Kazakh (the language of the Rules)."""
    ru: NonEmptyText
    """Russian."""
    en: NonEmptyText
    """English."""


class Condition(KubeModel):
    """One condition of the object, in the Kubernetes convention (as ``metav1.Condition``)."""

    type: Annotated[str, StringConstraints(max_length=316, pattern=CONDITION_TYPE_PATTERN)]
    """The aspect this condition reports, in CamelCase, e.g. ``Ready``; unique in the list."""
    status: ConditionStatus
    """Whether the condition holds: ``True``, ``False`` or ``Unknown``."""
    reason: Reason
    """Why, as a CamelCase word for machines, e.g. ``ReviewDeadlinePassed``."""
    message: LongText
    """Why, in words for humans (may be empty)."""
    last_transition_time: Timestamp
    """When ``status`` last changed (not when the condition was last written)."""
    observed_generation: int | None = Field(default=None, ge=0, json_schema_extra=INT64)
    """The ``metadata.generation`` the condition was computed from."""


Conditions = Annotated[list[Condition], Field(max_length=32, json_schema_extra=list_map("type"))]


class Endpoint(KubeModel):
    """Where the system is reached by the central system (ЦЖ)."""

    url: Url | None = None
    """The base URL of the integration endpoint, ``http://`` or ``https://``."""


class Probe(KubeModel):
    """How the operator checks that the system is up (§33–34: continuous monitoring).

    An ``http`` probe requests ``path`` on the endpoint's host and expects ``expectedStatus``;
    ``tcp`` only opens a connection to the endpoint's host and port; ``tls`` completes a TLS
    handshake and checks the certificate. After ``failureThreshold`` failed probes in a row the
    system is down and an Incident is opened.
    """

    type: Literal["http", "tcp", "tls"] = "http"
    """The kind of check."""
    path: Annotated[str, StringConstraints(max_length=1024, pattern=r"^/\S*$")] = "/healthz"
    """The path requested by ``http`` probes, replacing the endpoint URL's path (ignored by ``tcp`` and ``tls``).
    The integration agreement fixes the health path; set ``/`` to probe the root."""
    interval_seconds: int = Field(default=2, ge=1, le=3600)
    """Seconds between two probes. The default (2 s) with the operator's default confirmation re-probes
    (``TKSH_CONFIRM_INTERVAL``, 0.5 s) puts the owner's e-mail within about 5 s of a failure that answers;
    a longer interval delays detection by up to that interval."""
    timeout_seconds: int = Field(default=2, ge=1, le=60)
    """Seconds one probe may take before it counts as failed (a timeout). A target that hangs is detected
    no sooner than ``failureThreshold`` × this (the confirmation re-probes wait for it too)."""
    failure_threshold: int = Field(default=3, ge=1, le=10)
    """Failed probes in a row after which the system counts as down: the first failure is re-probed
    ``failureThreshold`` − 1 times ``TKSH_CONFIRM_INTERVAL`` seconds apart, not a whole interval apart."""
    expected_status: int = Field(default=200, ge=100, le=599)
    """The HTTP status an ``http`` probe expects."""


ProbeField = Annotated[Probe, Field(json_schema_extra={"default": {}})]
"""A probe that, when left out, is filled with all the defaults by the API server."""


class AvailabilityInterval(KubeModel):
    """A stretch of time the system spent in one state."""

    state: Literal["Up", "Down", "Unknown"]
    """The state during the interval."""
    start: Timestamp
    """When it began."""
    end: Timestamp | None = None
    """When it ended; absent for the current state."""


class Availability(KubeModel):
    """What monitoring knows about the system's availability (§33–34), computed by time.

    Uptime is the share of *known* time the system was up: ``up / (up + down)``. Time in ``Unknown``
    (the prober impaired, monitoring paused or not yet started) counts neither as up nor as down; it
    is reported apart in ``unknownSeconds30d``. A period with no known time has no uptime (null).
    """

    state: Literal["Up", "Down", "Unknown"] = "Unknown"
    """``Up`` or ``Down`` by the latest probes; ``Unknown`` before the first probe, while the prober itself
    is impaired (it cannot reach its control targets) or while probing is paused."""
    since: Timestamp | None = None
    """When ``state`` last changed (for ``Down``: the first failed probe of the outage)."""
    last_checked_at: Timestamp | None = None
    """When the latest probe finished (written periodically, not after every probe)."""
    uptime24h: Ratio | None = None
    """Share of the known time of the last 24 hours the system was up, 0 to 1 (``0.999``); null when none of it
    is known."""
    uptime30d: Ratio | None = None
    """Share of the known time of the last 30 days the system was up, 0 to 1; null when none of it is known."""
    downtime_seconds30d: int | None = Field(default=None, ge=0, json_schema_extra=INT64)
    """Seconds the system was down within the last 30 days."""
    unknown_seconds30d: int | None = Field(default=None, ge=0, json_schema_extra=INT64)
    """Seconds of the last 30 days with no known state (before monitoring began, monitoring paused, the
    prober impaired): kept apart from downtime."""
    history: Annotated[list[AvailabilityInterval], Field(max_length=MAX_HISTORY)] = Field(default_factory=list)
    """The state intervals of the last 31 days, oldest first (at most 200; older ones are dropped first), so that
    uptime survives an operator restart. Incidents remain the record of every outage."""


class OutboxEntry(KubeModel):
    """One notification waiting to be (or already) delivered, recorded in the object's status.

    The outbox is durable: an entry is written before it is sent and marked delivered after, so
    an operator restart neither loses a notification nor sends it twice. Recipients are kept
    masked (personal data, §9); the channel resolves the real address when it delivers.
    """

    id: Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
    """Unique in the list; also the idempotency key the receiver sees (a webhook's ``Idempotency-Key``,
    an e-mail's ``Message-ID``), so a retry after a crash is recognised as the same message."""
    channel: Literal["email", "webhook", "event", "alertmanager"]
    """How the notification is delivered."""
    recipient: Text | None = None
    """The recipient in masked form, e.g. ``a***@example.kz`` (never the full address)."""
    template: Annotated[str, StringConstraints(max_length=253, pattern=TEMPLATE_PATTERN)]
    """The message template, e.g. ``registration-approved``."""
    params: dict[str, Text] | None = None
    """Template parameters that are not personal data (names of objects, dates, reasons)."""
    state: Literal["Pending", "Delivered", "Failed"] = "Pending"
    """``Pending`` until delivered; ``Failed`` when retries were given up."""
    created_at: Timestamp
    """When the entry was recorded."""
    attempts: int = Field(default=0, ge=0)
    """Delivery attempts made so far."""
    next_attempt_at: Timestamp | None = None
    """When the next attempt is due (``Pending`` entries only)."""
    delivered_at: Timestamp | None = None
    """When the notification was delivered."""
    last_error: Text | None = None
    """Why the latest attempt failed."""


Outbox = Annotated[list[OutboxEntry], Field(json_schema_extra=list_map("id"))]


class Agreement(KubeModel):
    """An agreement concluded with the Administrator or the authorized body (§6, §17, §19)."""

    number: NonEmptyText
    """The agreement's registration number."""
    signed_at: Timestamp | None = None
    """When it was signed."""
    valid_from: Timestamp | None = None
    """When it takes effect (default: when signed)."""
    valid_until: Timestamp | None = None
    """When it ends; without it the agreement has no end date."""


class StatusBase(KubeModel):
    """What every status carries."""

    observed_generation: int | None = Field(default=None, ge=0, json_schema_extra=INT64)
    """The ``metadata.generation`` the operator last acted upon."""
    message: LongText | None = None
    """What the operator last concluded, in words."""
    conditions: Conditions = Field(default_factory=list)
    """The conditions of the object; ``Ready`` summarises them."""
