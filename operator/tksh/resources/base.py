"""The building blocks every resource model uses: the base model, timestamps, references, CRD metadata.

- :class:`KubeModel` is the base of every model: camelCase aliases for JSON (``observed_generation``
  is ``observedGeneration``), Python names accepted as well, unknown fields ignored (an object
  from the API carries metadata and fields of newer versions), attribute docstrings become the
  field descriptions of the CRD schema and of ``docs/api-reference.md``.
- :data:`Timestamp` is an aware datetime written as the API server writes one:
  ``2026-07-12T09:00:00Z`` (UTC, whole seconds).
- :class:`ResourceRef` names a resource for the API (group, version, plural); it unpacks into
  kopf's decorators: ``kopf.on.create(*DIGITAL_OBJECTS)``.
- :class:`CRDInfo` is the per-resource CRD metadata (names, scope, printer columns, models),
  declared once next to each resource's models and collected in ``tksh.resources.RESOURCES``.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

from tksh import GROUP, VERSION


def camel(name: str) -> str:
    """The JSON name of a Python field: ``observed_generation`` -> ``observedGeneration``.

    Digits do not start a new word (``uptime24h`` stays ``uptime24h``) and a trailing underscore,
    used for Python keywords, is dropped (``class_`` -> ``class``).
    """
    first, *rest = name.rstrip("_").split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def rfc3339(moment: datetime.datetime) -> str:
    """An aware datetime as the API server writes it: UTC, whole seconds, ``Z``."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(datetime.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


Timestamp = Annotated[AwareDatetime, PlainSerializer(rfc3339, return_type=str, when_used="json")]
"""An RFC 3339 date-time with a time zone; serialized to JSON as ``YYYY-MM-DDTHH:MM:SSZ``."""


class KubeModel(BaseModel):
    """Base of every model that is (part of) a Kubernetes object."""

    model_config = ConfigDict(
        alias_generator=camel,
        populate_by_name=True,
        extra="ignore",
        use_attribute_docstrings=True,
    )

    def to_kube(self) -> dict[str, Any]:
        """The whole object as JSON for the API (create, replace): camelCase names, ``None`` fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_patch(self) -> dict[str, Any]:
        """Only the fields explicitly set, as a JSON merge patch: an explicit ``None`` becomes ``null``,
        which deletes the field; fields never set (and their defaults) are left alone.

        ``DigitalObjectStatus(phase="Refused", open_incident=None).to_patch()`` is
        ``{"phase": "Refused", "openIncident": None}``: it does not touch ``conditions`` or ``outbox``.
        """
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class ObjectMeta(KubeModel):
    """The part of ``metadata`` the operator reads; everything else is kept by the API server."""

    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    creation_timestamp: Timestamp | None = None
    deletion_timestamp: Timestamp | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class ResourceRef(NamedTuple):
    """A resource of the API: unpacks into kopf decorators as ``(group, version, plural)``."""

    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"


ColumnType = Literal["string", "integer", "number", "boolean", "date"]


@dataclasses.dataclass(frozen=True)
class PrinterColumn:
    """One column of ``kubectl get`` (an ``additionalPrinterColumns`` entry).

    Deadlines are ``string`` columns (the RFC 3339 timestamp): a ``date`` column shows the time
    elapsed since, and a future time as ``<invalid>``.
    """

    name: str
    type: ColumnType
    json_path: str
    description: str
    priority: int = 0

    def to_kube(self) -> dict[str, Any]:
        column: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        column["description"] = self.description
        if self.priority:
            column["priority"] = self.priority
        return column


READY_COLUMN = PrinterColumn(
    "Ready", "string", '.status.conditions[?(@.type=="Ready")].status', "Status of the Ready condition"
)
AGE_COLUMN = PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since the object was created")
MESSAGE_COLUMN = PrinterColumn(
    "Message", "string", ".status.message", "What the operator last concluded, in words", priority=1
)


@dataclasses.dataclass(frozen=True)
class CRDInfo:
    """Everything the CRD of one resource needs beyond its schema; the schema comes from the models."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    scope: Literal["Namespaced", "Cluster"]
    model: type[KubeModel]
    """The whole object (apiVersion, kind, metadata, spec, status); its docstring describes the CRD."""
    spec: type[KubeModel]
    status: type[KubeModel]
    printer_columns: tuple[PrinterColumn, ...]
    categories: tuple[str, ...] = ("tksh",)
    group: str = GROUP
    version: str = VERSION

    @property
    def ref(self) -> ResourceRef:
        return ResourceRef(self.group, self.version, self.plural)

    @property
    def crd_name(self) -> str:
        return self.ref.crd_name

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def namespaced(self) -> bool:
        return self.scope == "Namespaced"
