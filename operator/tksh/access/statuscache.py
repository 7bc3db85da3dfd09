"""What the public status page (§21, the open part) shows, kept in step with the cluster: a small read-only cache.

Three kinds are listed and watched by the loop the decision index uses (:mod:`tksh.access.listwatch`: list, then
watch from the list's ``resourceVersion`` with bookmarks; relist on 410 Gone or a broken stream): ``DigitalObject``,
``CentralComponent`` and ``Incident``. Only the few fields the page shows are kept, and nothing personal: of a
digital object its namespace, name, the *kind* of its owner (``spec.owner.subjectType``, e.g. a water supplier:
the category of the system, not who owns it) and its availability; never the owner's BIN, name, e-mail or phone,
nor endpoints. Of an incident: its target, start, recovery, duration, verdict and failure class, never the probe's
message (it may name hosts). Digital objects that are not ``Integrated`` are not kept.

The authz ServiceAccount needs ``list`` and ``watch`` on ``digitalobjects``, ``centralcomponents`` and
``incidents`` (cluster-wide). Without them the page answers 503 and the sync retries with a growing delay (up to
30 s; a watch refused after a successful list does not reset it).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Mapping
from typing import Any, Final

from tksh.access.listwatch import MAX_RETRY_DELAY, STEADY_AFTER, KubeConnection, ListWatch
from tksh.conditions import read_time
from tksh.resources import CENTRAL_COMPONENTS, DIGITAL_OBJECTS, INCIDENTS

__all__ = ["KINDS", "ComponentEntry", "IncidentEntry", "ObjectEntry", "StatusCache", "StatusSync"]

KINDS: Final = {"DigitalObject": DIGITAL_OBJECTS, "CentralComponent": CENTRAL_COMPONENTS, "Incident": INCIDENTS}
KEEP_RECOVERED: Final = datetime.timedelta(days=31)
"""Incidents recovered longer ago than this are not kept (the page shows the last 30 days)."""


def _text(value: object, limit: int = 256) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _ratio(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1 else None


def _state(availability: Mapping[str, Any]) -> str:
    state = availability.get("state")
    return state if state in ("Up", "Down", "Unknown") else "Unknown"


@dataclasses.dataclass(frozen=True, slots=True)
class ComponentEntry:
    name: str
    title: str | None
    critical: bool
    state: str
    since: datetime.datetime | None
    uptime30d: float | None
    open_incident: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectEntry:
    namespace: str
    name: str
    category: str | None
    """The kind of the owner (``SubjectType``), e.g. ``WaterSupplier``."""
    state: str
    since: datetime.datetime | None
    uptime30d: float | None
    open_incident: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class IncidentEntry:
    namespace: str
    name: str
    target_kind: str
    target_namespace: str | None
    target_name: str
    failure_class: str
    started_at: datetime.datetime
    recovered_at: datetime.datetime | None
    duration_seconds: int | None
    sla_verdict: str | None

    @property
    def open(self) -> bool:
        return self.recovered_at is None


def component_entry(obj: Mapping[str, Any]) -> ComponentEntry | None:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    name = _text(meta.get("name"))
    if name is None:
        return None
    availability = status.get("availability") or {}
    return ComponentEntry(name, _text(spec.get("title")), spec.get("critical") is True, _state(availability),
                          read_time(availability.get("since")), _ratio(availability.get("uptime30d")),
                          _text(status.get("openIncident")))


def object_entry(obj: Mapping[str, Any]) -> ObjectEntry | None:
    """The public view of an integrated digital object; ``None`` for any other phase."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    name, namespace = _text(meta.get("name")), _text(meta.get("namespace"))
    if name is None or namespace is None or status.get("phase") != "Integrated":
        return None
    availability = status.get("availability") or {}
    return ObjectEntry(namespace, name, _text((spec.get("owner") or {}).get("subjectType"), 64), _state(availability),
                       read_time(availability.get("since")), _ratio(availability.get("uptime30d")),
                       _text(status.get("openIncident")))


def incident_entry(obj: Mapping[str, Any]) -> IncidentEntry | None:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    target = spec.get("target") or {}
    name, namespace, target_name = _text(meta.get("name")), _text(meta.get("namespace")), _text(target.get("name"))
    started = read_time(spec.get("startedAt"))
    if name is None or namespace is None or target_name is None or started is None:
        return None
    kind = "CentralComponent" if target.get("kind") == "CentralComponent" else "DigitalObject"
    duration = status.get("durationSeconds")
    return IncidentEntry(
        namespace, name, kind, None if kind == "CentralComponent" else (_text(target.get("namespace")) or namespace),
        target_name, _text((spec.get("failure") or {}).get("class"), 32) or "unknown", started,
        read_time(status.get("recoveredAt")), duration if isinstance(duration, int) else None,
        _text(status.get("slaVerdict"), 32))


class StatusCache:
    """The entries by key; written by :class:`StatusSync`, read by the status page."""

    def __init__(self, clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC)) -> None:
        self.clock = clock
        self.components: dict[str, ComponentEntry] = {}
        self.objects: dict[str, ObjectEntry] = {}
        self.incidents: dict[str, IncidentEntry] = {}
        self.listed: set[str] = set()

    @property
    def ready(self) -> bool:
        """Whether every kind has been listed at least once."""
        return self.listed >= KINDS.keys()

    def _table(self, kind: str) -> dict[str, Any]:
        tables: dict[str, dict[str, Any]] = {"DigitalObject": self.objects, "CentralComponent": self.components,
                                             "Incident": self.incidents}
        return tables[kind]

    @staticmethod
    def key(kind: str, obj: Mapping[str, Any]) -> str | None:
        meta = obj.get("metadata") or {}
        name, namespace = meta.get("name"), meta.get("namespace")
        if not isinstance(name, str):
            return None
        return name if kind == "CentralComponent" else f"{namespace}/{name}"

    def upsert(self, kind: str, obj: Mapping[str, Any]) -> str | None:
        """Keep (or drop, when it is not to be shown) one object; its key."""
        key = self.key(kind, obj)
        if key is None:
            return None
        entry = {"DigitalObject": object_entry, "CentralComponent": component_entry,
                 "Incident": incident_entry}[kind](obj)
        table = self._table(kind)
        if isinstance(entry, IncidentEntry) and entry.recovered_at is not None \
                and entry.recovered_at < self.clock() - KEEP_RECOVERED:
            entry = None
        if entry is None:
            table.pop(key, None)
        else:
            table[key] = entry
        return key

    def remove(self, kind: str, key: str) -> None:
        self._table(kind).pop(key, None)

    def replace(self, kind: str, items: list[Mapping[str, Any]]) -> None:
        """A relist: what the list has, and nothing else."""
        keys = {self.upsert(kind, item) for item in items}
        table = self._table(kind)
        for gone in set(table) - keys:
            table.pop(gone, None)
        self.listed.add(kind)


class StatusSync(ListWatch):
    """Lists and watches the three kinds into ``cache``; ``await sync.run()`` until cancelled."""

    what = "status watch"

    def __init__(self, cache: StatusCache, connection: KubeConnection, *, watch_timeout: int = 300,
                 retry_delay: float = 1.0, max_retry_delay: float = MAX_RETRY_DELAY,
                 steady_after: float = STEADY_AFTER) -> None:
        super().__init__(connection, KINDS, logger="tksh.access.statuscache", watch_timeout=watch_timeout,
                         retry_delay=retry_delay, max_retry_delay=max_retry_delay, steady_after=steady_after)
        self.cache = cache

    def listed(self, kind: str, items: list[dict[str, Any]], revision: str) -> None:
        self.cache.replace(kind, list(items))

    def changed(self, kind: str, event_type: str, obj: Mapping[str, Any]) -> None:
        if event_type in ("ADDED", "MODIFIED"):
            self.cache.upsert(kind, obj)
        elif event_type == "DELETED":
            key = self.cache.key(kind, obj)
            if key is not None:
                self.cache.remove(kind, key)
