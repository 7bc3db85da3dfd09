"""``AccessGrant``: access to the closed part of the central system per agreement (§6, §19, §22, §31),
and its termination on the seven grounds of §20.

Phases: ``Pending`` (not in effect yet: before ``agreement.validFrom``, or waiting for the
operator's checks), ``Active`` (the decision point allows its rights), ``Terminated`` (final: a
§20 ground applied; ``status.terminated`` says which, when, by whom, and through which grant a
cascade came). A termination is requested by writing ``spec.termination``; expiry at
``agreement.validUntil`` needs no request.
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal, get_args

from pydantic import ConfigDict, Field, StringConstraints
from pydantic.config import JsonDict

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
from tksh.resources.common import SET, Agreement, Bin, Category, Email, Name, Outbox, StatusBase, Text, Titles

AccessGrantPhase = Literal["Pending", "Active", "Terminated"]
ACCESS_GRANT_PHASES: tuple[str, ...] = get_args(AccessGrantPhase)

SUBJECT_ID_PATTERN = r"^[a-z0-9]([a-z0-9._:-]{0,61}[a-z0-9])?$"


class TerminationReason(enum.StrEnum):
    """The ground on which access rights terminate: items 1 to 7 of §20, in order."""

    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"
    REFUSED = "REFUSED"
    DELEGATION_TERMINATED = "DELEGATION_TERMINATED"
    GROUNDS_ENDED = "GROUNDS_ENDED"
    FALSE_INFORMATION = "FALSE_INFORMATION"
    OTHER_BY_LAW = "OTHER_BY_LAW"

    @property
    def paragraph(self) -> str:
        """The item of the Rules, e.g. ``§20.1``."""
        return f"§20.{list(TerminationReason).index(self) + 1}"

    @property
    def titles(self) -> Titles:
        return TERMINATION_TITLES[self]


def _t(kk: str, ru: str, en: str) -> Titles:
    return Titles(kk=kk, ru=ru, en=en)


TERMINATION_TITLES: dict[TerminationReason, Titles] = {
    TerminationReason.EXPIRED: _t(
        "келісімге сәйкес қол жеткізу құқығы берілген мерзім аяқталды",
        "истёк срок, на который доступ предоставлен по соглашению",
        "the term of access granted by the agreement ended",
    ),
    TerminationReason.REVOKED: _t(
        "қол жеткізу құқықтарын кері қайтарып алу туралы ақпарат орналастырылды",
        "размещена информация об отзыве прав доступа",
        "information revoking the access was placed in the system",
    ),
    TerminationReason.REFUSED: _t(
        "субъект атынан іс-қимыл жасауға қол жеткізу құқығы берілген тұлға одан бас тартты",
        "лицо, получившее доступ для действий от имени субъекта, отказалось от него",
        "the person granted access to act on the subject's behalf refused it",
    ),
    TerminationReason.DELEGATION_TERMINATED: _t(
        "өз атынан іс-қимыл жасауға өкілеттік берген пайдаланушы оны тоқтатты",
        "пользователь, уполномочивший другое лицо действовать от его имени, прекратил полномочия",
        "the user who empowered another person to act on its behalf terminated that authority",
    ),
    TerminationReason.GROUNDS_ENDED: _t(
        "қол жеткізу құқығы берілген негіздемелер тоқтатылды немесе олардың жоқ екені анықталды",
        "основания предоставления доступа прекращены или выявлено их отсутствие",
        "the grounds on which access was granted ended or were found to be absent",
    ),
    TerminationReason.FALSE_INFORMATION: _t(
        "субъектінің өтінімде дұрыс емес мәліметтер ұсыну фактісі анықталды",
        "выявлен факт представления субъектом недостоверных сведений в заявке",
        "the subject was found to have given false information in its application",
    ),
    TerminationReason.OTHER_BY_LAW: _t(
        "Қазақстан Республикасының заңнамасында көзделген өзге де жағдайлар",
        "иные случаи, предусмотренные законодательством Республики Казахстан",
        "other cases provided by the law of the Republic of Kazakhstan",
    ),
}


class GrantSubject(KubeModel):
    """Who receives the access."""

    id: Annotated[str, StringConstraints(pattern=SUBJECT_ID_PATTERN)]
    """An opaque identifier of the subject at the identity provider (the JWT ``sub``); never an IIN/BIN."""
    kind: Literal["person", "organisation", "digital-object"]
    """A person (through a personal cabinet), an organisation, or an integrated digital object."""
    name: Text | None = None
    """A display name."""


class OnBehalfOf(KubeModel):
    """The subject of the ТКШ digital environment on whose behalf the access is used (§20.3, §20.4)."""

    bin: Bin
    """The subject's BIN, 12 digits."""
    name: Text | None = None
    """The subject's registered name."""
    email: Email | None = None
    """Where the subject's organisation is told about the grant (activation, termination); without it, no e-mail."""


class GrantAgreement(Agreement):
    """The access agreement (§19, §22). Its ``validUntil`` is required: access ends with its term (§20.1)."""

    valid_until: Timestamp
    """When the access ends (§20.1); tokens never outlive it."""


class GrantScope(KubeModel):
    """Narrows the functions' rights; an absent list does not narrow."""

    categories: Annotated[list[Category], Field(json_schema_extra=SET)] = Field(default_factory=list)
    """Only these §4 categories."""
    owner_bins: Annotated[list[Bin], Field(json_schema_extra=SET)] = Field(default_factory=list)
    """Only information of these subjects (by BIN)."""
    digital_objects: Annotated[list[Name], Field(json_schema_extra=SET)] = Field(default_factory=list)
    """Only through these digital objects (`DigitalObject` names) of the grant's namespace."""


class Grounds(KubeModel):
    """On what grounds the access is given (§20.5 ends it when they end)."""

    kind: Literal["Ownership", "Employment", "PowerOfAttorney", "Membership", "Contract", "Law"]
    """The kind of grounds: the subject itself, an employee, a power of attorney, membership (e.g. an
    association's board), a contract (e.g. management of a condominium), or a statute."""
    reference: Text | None = None
    """The document: number and date of the power of attorney, contract, decision."""
    valid_until: Timestamp | None = None
    """When the grounds end, if they have an end date."""


OTHER_BY_LAW_NEEDS_NOTE: JsonDict = {
    "rule": "self.reason != 'OTHER_BY_LAW' || (has(self.note) && self.note.matches('\\\\S'))",
    "message": "OTHER_BY_LAW (§20.7) needs a note naming the legal act",
    "fieldPath": ".note",
    "reason": "FieldValueRequired",
}
"""CEL: the real API server refuses an OTHER_BY_LAW request without a note (the admission webhook and the
operator check it as well, for servers without CEL)."""


class TerminationRequest(KubeModel):
    """A request to end the access, on one of the grounds of §20. OTHER_BY_LAW needs a ``note``."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [OTHER_BY_LAW_NEEDS_NOTE]})

    reason: TerminationReason
    """The §20 ground: EXPIRED (§20.1), REVOKED (§20.2), REFUSED (§20.3), DELEGATION_TERMINATED (§20.4),
    GROUNDS_ENDED (§20.5), FALSE_INFORMATION (§20.6), OTHER_BY_LAW (§20.7)."""
    by: Text | None = None
    """Who requests it."""
    at: Timestamp | None = None
    """When it takes effect (default: at once)."""
    note: Text | None = None
    """A free-text explanation; required for OTHER_BY_LAW (the legal act)."""


class AccessGrantSpec(KubeModel):
    """Who may use which functions, on whose behalf, within which scope, until when, and on what grounds."""

    subject: GrantSubject
    """Who receives the access."""
    on_behalf_of: OnBehalfOf
    """On whose behalf."""
    delegated_from: Name | None = None
    """The ``AccessGrant`` (same namespace) whose holder delegated this access; its end ends this one (§20.4)."""
    functions: Annotated[list[Name], Field(min_length=1, json_schema_extra=SET)]
    """The ``SubjectFunction`` entries whose rights are granted."""
    scope: GrantScope | None = None
    """Narrows the rights of the functions."""
    agreement: GrantAgreement
    """The access agreement (§19, §22)."""
    grounds: Grounds | None = None
    """The grounds of the access (§20.5)."""
    termination: TerminationRequest | None = None
    """A request to end the access; once ended, a grant is not resumed (create a new one)."""


class TerminationRecord(KubeModel):
    """How the access ended."""

    reason: TerminationReason
    """The §20 ground."""
    at: Timestamp
    """When the access ended."""
    by: Text | None = None
    """Who ended it (a person, or ``tksh-operator`` for expiries and cascades)."""
    cascade_from: Name | None = None
    """The grant whose end caused this one's (a principal's grant, or a grant of the same subject)."""
    note: Text | None = None
    """An explanation."""


class AccessGrantStatus(StatusBase):
    """Whether the access is in effect, and the token issued for it."""

    phase: AccessGrantPhase | None = None
    """``Pending``, ``Active`` or ``Terminated``."""
    activated_at: Timestamp | None = None
    """When the grant became active."""
    terminated: TerminationRecord | None = None
    """How the access ended (phase ``Terminated`` only)."""
    token_secret: Name | None = None
    """The ``Secret`` (same namespace) that holds the subject's access token (JWT)."""
    token_expires_at: Timestamp | None = None
    """When the current token expires (never after ``agreement.validUntil``)."""
    outbox: Outbox = Field(default_factory=list)
    """Notifications about the grant, durable until delivered."""


class AccessGrant(KubeModel):
    """Access to the closed part of the central system per agreement (§19, §22): who, on whose behalf,
    which functions within which scope, until when; and its termination on the grounds of §20."""

    api_version: str = API_VERSION
    kind: Literal["AccessGrant"] = "AccessGrant"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: AccessGrantSpec
    status: AccessGrantStatus = Field(default_factory=AccessGrantStatus)


INFO = CRDInfo(
    kind="AccessGrant",
    plural="accessgrants",
    singular="accessgrant",
    short_names=("grant",),
    scope="Namespaced",
    model=AccessGrant,
    spec=AccessGrantSpec,
    status=AccessGrantStatus,
    printer_columns=(
        PrinterColumn("Phase", "string", ".status.phase", "Pending, Active or Terminated"),
        PrinterColumn("Until", "string", ".spec.agreement.validUntil", "When the agreement's term ends (§20.1)"),
        PrinterColumn("Terminated", "string", ".status.terminated.reason", "The §20 ground the access ended on"),
        READY_COLUMN,
        AGE_COLUMN,
        MESSAGE_COLUMN,
    ),
)
