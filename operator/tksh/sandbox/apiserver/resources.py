"""The resources the embedded API server serves: the built-in ones and those of CRDs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tksh.sandbox.apiserver.errors import Cause, Obj, go_value

VERBS: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
META_FIELDS: tuple[str, ...] = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass(frozen=True)
class ResourceInfo:
    """One served group/version/resource (all versions of a resource share the storage)."""

    group: str
    version: str
    plural: str
    kind: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = VERBS
    status: bool = False  # has the ``/status`` subresource
    crd: bool = False  # served from a CustomResourceDefinition (schema-validated, no strategic merge)
    schema: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    printer_columns: tuple[PrinterColumn, ...] = ()
    selectable_fields: tuple[str, ...] = ()  # field selectors beyond metadata.name/namespace

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def field_selectors(self) -> tuple[str, ...]:
        return META_FIELDS + self.selectable_fields


def _core(plural: str, kind: str, namespaced: bool = True, short: tuple[str, ...] = (), **kw: Any) -> ResourceInfo:
    return ResourceInfo(group="", version="v1", plural=plural, kind=kind, singular=kind.lower(),
                        namespaced=namespaced, short_names=short, **kw)


_EVENT_FIELDS = (
    *(f"involvedObject.{f}" for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion",
                                      "fieldPath")),
    "reason", "reportingComponent", "source", "type",
)

BUILTIN_RESOURCES: tuple[ResourceInfo, ...] = (
    _core("namespaces", "Namespace", namespaced=False, short=("ns",), status=True,
          selectable_fields=("status.phase",),
          printer_columns=(PrinterColumn("Status", "string", ".status.phase"),)),
    _core("events", "Event", short=("ev",), selectable_fields=_EVENT_FIELDS,
          printer_columns=(PrinterColumn("Type", "string", ".type"), PrinterColumn("Reason", "string", ".reason"),
                           PrinterColumn("Object", "string", ".involvedObject.name"),
                           PrinterColumn("Message", "string", ".message"))),
    _core("secrets", "Secret", selectable_fields=("type",),
          printer_columns=(PrinterColumn("Type", "string", ".type"),)),
    _core("configmaps", "ConfigMap", short=("cm",)),
    _core("serviceaccounts", "ServiceAccount", short=("sa",)),
    ResourceInfo(group="events.k8s.io", version="v1", plural="events", kind="Event", singular="event",
                 namespaced=True, short_names=("ev",)),
    ResourceInfo(group="coordination.k8s.io", version="v1", plural="leases", kind="Lease", singular="lease",
                 namespaced=True),
    ResourceInfo(group="apiextensions.k8s.io", version="v1", plural="customresourcedefinitions",
                 kind="CustomResourceDefinition", singular="customresourcedefinition", namespaced=False,
                 short_names=("crd", "crds"), categories=("api-extensions",), status=True,
                 printer_columns=(PrinterColumn("Created At", "string", ".metadata.creationTimestamp"),)),
)

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key of Kubernetes versions, highest priority first: v2 > v1 > v1beta2 > v1alpha1 > others."""
    match = _VERSION_RE.match(version)
    if not match:
        return (3, 0, 0, version)
    major, stage, minor = int(match[1]), match[2], int(match[3] or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -major, -minor, "")


def resources_from_crd(crd: Mapping[str, Any]) -> list[ResourceInfo]:
    """All served versions of a CRD (``apiextensions.k8s.io/v1``) as resources."""
    spec: Mapping[str, Any] = crd.get("spec") or {}
    names: Mapping[str, Any] = spec.get("names") or {}
    result: list[ResourceInfo] = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or spec.get("subresources") or {}
        columns = version.get("additionalPrinterColumns") or spec.get("additionalPrinterColumns") or []
        schema = (version.get("schema") or spec.get("validation") or {}).get("openAPIV3Schema")
        result.append(ResourceInfo(
            group=spec["group"], version=version["name"], plural=names["plural"], kind=names["kind"],
            singular=names.get("singular") or names["kind"].lower(),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()), categories=tuple(names.get("categories") or ()),
            status="status" in subresources, crd=True, schema=schema,
            printer_columns=tuple(
                PrinterColumn(name=c["name"], type=c.get("type", "string"), json_path=c["jsonPath"],
                              description=c.get("description", ""), priority=int(c.get("priority", 0)),
                              format=c.get("format", ""))
                for c in columns),
            selectable_fields=tuple(f["jsonPath"].lstrip(".") for f in version.get("selectableFields") or ()),
        ))
    return result


class Registry:
    """Which group/version/plural is served, and how names (kinds, short names) resolve to it."""

    def __init__(self, resources: Iterable[ResourceInfo] = BUILTIN_RESOURCES) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceInfo] = {}
        for info in resources:
            self.add(info)

    def add(self, info: ResourceInfo) -> None:
        self._by_gvr[(info.group, info.version, info.plural)] = info

    def remove_group_resource(self, group: str, plural: str) -> None:
        for key in [k for k in self._by_gvr if k[0] == group and k[2] == plural]:
            del self._by_gvr[key]

    def replace_group_resource(self, group: str, plural: str, infos: Iterable[ResourceInfo]) -> None:
        self.remove_group_resource(group, plural)
        for info in infos:
            self.add(info)

    def __iter__(self) -> Iterator[ResourceInfo]:
        return iter(list(self._by_gvr.values()))

    def get(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._by_gvr.get((group, version, plural))

    def preferred(self, group: str, plural: str) -> ResourceInfo | None:
        versions = [info for info in self if info.group == group and info.plural == plural]
        return min(versions, key=lambda info: version_priority(info.version)) if versions else None

    def groups(self) -> dict[str, list[str]]:
        """Group name -> served versions, the preferred (highest priority) first; core ("") included."""
        result: dict[str, set[str]] = {}
        for info in self:
            result.setdefault(info.group, set()).add(info.version)
        return {group: sorted(versions, key=version_priority) for group, versions in result.items()}

    def resolve(self, name: str) -> ResourceInfo:
        """Find a resource by plural, ``plural.group``, ``group/version/plural``, short name, kind or singular."""
        if name.count("/") == 2 or (name.count("/") == 1 and name.startswith("v1/")):
            *group_parts, version, plural = name.split("/")
            info = self.get("/".join(group_parts) if len(group_parts) else "", version, plural)
            if info is None:
                raise LookupError(f"no such resource: {name}")
            return info
        base, _, group = name.partition(".")
        candidates = [info for info in self if not group or info.group == group]
        for matcher in (lambda i: i.plural == base, lambda i: base in i.short_names,
                        lambda i: i.kind.lower() == base.lower(), lambda i: i.singular == base):
            found = [info for info in candidates if matcher(info)]
            if found:
                # The core group wins for ambiguous names (events), then the preferred version.
                found.sort(key=lambda i: (i.group != "", i.group, version_priority(i.version)))
                return found[0]
        raise LookupError(f"no such resource: {name}")

    def by_kind(self, api_version: str, kind: str) -> ResourceInfo:
        group, _, version = api_version.rpartition("/")
        for info in self:
            if info.group == group and info.version == version and info.kind == kind:
                return info
        raise LookupError(f"no such kind: {kind} in {api_version}")


def crd_name_problems(crd: Obj) -> list[tuple[str, str]]:
    """Minimal CRD sanity: (field, message) pairs for a missing group/names/versions or a wrong name."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    problems: list[tuple[str, str]] = []
    for path, value in (("spec.group", spec.get("group")), ("spec.names.plural", names.get("plural")),
                        ("spec.names.kind", names.get("kind"))):
        if not value:
            problems.append((path, "Required value"))
    if not spec.get("versions"):
        problems.append(("spec.versions", "Required value: must have exactly one version marked as storage version"))
    name = (crd.get("metadata") or {}).get("name")
    if not problems and name != f"{names['plural']}.{spec['group']}":
        problems.append(("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group'))
    return problems


def crd_status(crd: Obj, timestamp: str) -> Obj:
    """What the real server reports for an accepted CRD: names accepted, established."""
    spec = crd.get("spec") or {}
    names = dict(spec.get("names") or {})
    names.setdefault("singular", str(names.get("kind", "")).lower())
    names.setdefault("listKind", f"{names.get('kind')}List")
    return {
        "acceptedNames": names,
        "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
        "conditions": [
            {"type": kind, "status": "True", "reason": reason, "message": message, "lastTransitionTime": timestamp}
            for kind, reason, message in (
                ("NamesAccepted", "NoConflicts", "no conflicts found"),
                ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            )
        ],
    }


_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                  "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                  "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
              "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
              "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")


def name_causes(name: str, *, label: bool = False) -> list[Cause]:
    """Object name rules: an RFC 1123 subdomain (253 chars), or a label (63 chars) for namespaces."""
    pattern, message, limit = (_LABEL, _LABEL_MSG, 63) if label else (_SUBDOMAIN, _SUBDOMAIN_MSG, 253)
    if not pattern.match(name):
        return [Cause("FieldValueInvalid", "metadata.name", f"Invalid value: {go_value(name)}: {message}")]
    if len(name) > limit:
        return [Cause("FieldValueInvalid", "metadata.name",
                      f"Invalid value: {go_value(name)}: must be no more than {limit} characters")]
    return []
