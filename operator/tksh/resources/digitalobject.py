"""``DigitalObject``: an application for registration and integration of a ТКШ digital object (§14–17).

Shape in the schema, content in the operator
--------------------------------------------
§16 makes the Administrator *refuse* an application whose information is incomplete, and say so.
If the CRD schema made the application's content ``required``, the API server would bounce an
incomplete application before anyone sees it: no refusal, no list of what is missing, no e-mail.
So the schema is split by one rule, field by field:

- **Shape** is the schema's: types, enums, patterns, ranges, uniqueness. A value that is present
  but malformed (a BIN of 11 digits, category 16, a subject type not in the list, an ``ftp://``
  URL, a badly formed e-mail address) is refused by the API server, naming the field.
- **Content** is the operator's: whether something required by the Rules is *there*. These fields
  are optional in the schema, and the operator refuses the application with phase ``Refused`` and
  ``status.missing`` listing the field paths:

  ``spec.owner`` and its ``bin``, ``name``, ``subjectType``, ``email``; ``spec.functions`` (at least
  one, §15); ``spec.categories`` (at least one, §4); ``spec.endpoint.url``. Blank free text (an
  owner name of spaces) counts as missing, too. ``spec.owner.phone`` is optional by law.

- What administrators write (``spec.review``, ``spec.agreement``) is not part of the application:
  it is required-complete in the schema (a decision without a decision is a typo, not a refusal).
- ``spec.probe`` has defaults for everything: leave it out and the API server fills it in.

Phases (``status.phase``)
-------------------------
``Submitted`` (seen, not yet checked) -> ``Refused`` (incomplete, §16; fixing the spec re-submits)
or ``UnderReview`` (complete; ``status.reviewDeadline`` is 5 working days ahead, §16) ->
``Rejected`` (the Administrator said no) or ``Approved`` (yes: an integration agreement follows,
§17) -> ``Testing`` (agreement recorded, the integration test runs, §17) -> ``Integrated`` (test
passed; monitored continuously, §33–34) -> ``Suspended`` (no longer integrated: the agreement
expired or was withdrawn; a renewed agreement resumes it). ``Refused`` and ``Rejected`` are kept
apart because they differ in who decided: the operator by the completeness rule, or a person.
Availability is not a phase: an integrated object that is down stays ``Integrated`` with
``status.availability.state: Down`` and an open Incident.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, StringConstraints

from tksh import API_VERSION
from tksh.resources.base import (
    AGE_COLUMN,
    MESSAGE_COLUMN,
    READY_COLUMN,
    CRDInfo,
    KubeModel,
    ObjectMeta,
    PrinterColumn,
    Timestamp,
)
from tksh.resources.common import (
    SET,
    Agreement,
    Availability,
    Bin,
    Category,
    Email,
    Endpoint,
    Name,
    NonEmptyText,
    Outbox,
    Phone,
    Probe,
    ProbeField,
    StatusBase,
    Text,
    Url,
)
from tksh.resources.subjects import SubjectType

DigitalObjectPhase = Literal[
    "Submitted", "Refused", "UnderReview", "Rejected", "Approved", "Testing", "Integrated", "Suspended"
]
DIGITAL_OBJECT_PHASES: tuple[str, ...] = get_args(DigitalObjectPhase)


class SecretKeyRef(KubeModel):
    """One key of a Secret in the object's own namespace."""

    name: Name
    """The Secret's name."""
    key: Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]
    """The key within the Secret's ``data``."""


class OwnerWebhook(KubeModel):
    """Where the owner receives signed monitoring notifications (§34.3) besides e-mail.

    Each notification is a JSON ``POST`` signed with HMAC-SHA256 over the timestamp and the body with the
    shared secret: header ``X-TKSH-Signature: t=<unix seconds>,v1=<hex>`` (several ``v1`` while a secret is
    rotated) and ``Idempotency-Key`` (the same for every retry of one notification). A 2xx answer delivers
    it; 4xx gives up; 5xx and network errors are retried with backoff.
    """

    url: Url
    """The receiver's URL (``https://`` outside a test bench)."""
    secret_ref: SecretKeyRef
    """The Secret (in the object's namespace) and key holding the shared signing secret; the operator reads it
    when it sends, so rotating it needs no change here."""


class Owner(KubeModel):
    """The subject that owns or holds the digital object and applies for its integration (§14).

    Every field is personal data under §9/§24: it is never shown in printer columns or logs.
    """

    bin: Bin | None = None
    """The owner's BIN (business identification number), 12 digits."""
    name: Text | None = None
    """The owner's registered name."""
    subject_type: SubjectType | None = None
    """What kind of subject the owner is (§2.4), or which utility service it supplies (§2.1)."""
    email: Email | None = None
    """Where the approval or refusal is sent (§16)."""
    phone: Phone | None = None
    """A contact phone in international form, e.g. ``+77011234567`` (optional)."""
    webhook: OwnerWebhook | None = None
    """Optional: a signed webhook that receives the monitoring notifications too (outages, reminders, breach,
    recovery, central failures)."""


class Review(KubeModel):
    """The Administrator's decision on the application (§16), written by ``kubectl tksh approve|reject``."""

    decision: Literal["Approved", "Rejected"]
    """The decision."""
    reviewer: NonEmptyText
    """Who decided (the Administrator's employee)."""
    reason: Text | None = None
    """Why; expected with ``Rejected``, sent to the applicant."""
    decided_at: Timestamp | None = None
    """When the decision was taken."""


class DigitalObjectSpec(KubeModel):
    """The application for registration and integration, plus the Administrator's decision and agreement."""

    owner: Owner | None = None
    """Who owns the digital object and applies (§14)."""
    functions: Annotated[list[Name], Field(json_schema_extra=SET)] = Field(default_factory=list)
    """The owner's functions (competences), names of ``SubjectFunction`` entries of the directory (§15)."""
    categories: Annotated[list[Category], Field(json_schema_extra=SET)] = Field(default_factory=list)
    """The §4 information categories the digital object keeps, 1 to 15."""
    endpoint: Endpoint | None = None
    """The integration endpoint the central system talks to."""
    probe: ProbeField = Field(default_factory=Probe)
    """How the endpoint is monitored once integrated."""
    review: Review | None = None
    """The Administrator's decision; absent while the application waits for review."""
    agreement: Agreement | None = None
    """The integration agreement concluded after approval (§17); written by the Administrator."""


class DigitalObjectStatus(StatusBase):
    """What the operator concluded about the application and the integrated object."""

    phase: DigitalObjectPhase | None = None
    """Where the application stands (see the module description of phases)."""
    submitted_at: Timestamp | None = None
    """When the operator first saw the application (the start of the review term)."""
    review_deadline: Timestamp | None = None
    """The end of the 5 working days the Administrator has to decide (§16)."""
    decided_at: Timestamp | None = None
    """When the decision (approval, rejection or refusal) was recorded."""
    integrated_at: Timestamp | None = None
    """When the integration test passed."""
    missing: list[Annotated[str, StringConstraints(max_length=256)]] = Field(default_factory=list)
    """Field paths the application lacks (e.g. ``spec.owner.email``), reported with phase ``Refused``."""
    availability: Availability | None = None
    """The object's availability by monitoring (integrated objects only)."""
    open_incident: Name | None = None
    """The ``Incident`` open for this object, if it is down."""
    outbox: Outbox = Field(default_factory=list)
    """Notifications to the owner (decisions, outages), durable until delivered."""


class DigitalObject(KubeModel):
    """A ТКШ digital object: its owner's application for registration and integration with the central
    system (§14–17), and, once integrated, its monitored availability (§33–34)."""

    api_version: str = API_VERSION
    kind: Literal["DigitalObject"] = "DigitalObject"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: DigitalObjectSpec = Field(default_factory=DigitalObjectSpec)
    status: DigitalObjectStatus = Field(default_factory=DigitalObjectStatus)


INFO = CRDInfo(
    kind="DigitalObject",
    plural="digitalobjects",
    singular="digitalobject",
    short_names=("dobj",),
    scope="Namespaced",
    model=DigitalObject,
    spec=DigitalObjectSpec,
    status=DigitalObjectStatus,
    printer_columns=(
        PrinterColumn("Phase", "string", ".status.phase", "Where the application stands"),
        PrinterColumn("Deadline", "string", ".status.reviewDeadline", "The Administrator's review deadline (§16)"),
        PrinterColumn("Availability", "string", ".status.availability.state", "Up, Down or Unknown"),
        READY_COLUMN,
        AGE_COLUMN,
        MESSAGE_COLUMN,
    ),
)
