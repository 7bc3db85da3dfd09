"""The in-memory object store with Kubernetes write semantics; no HTTP in here.

Every stored object is immutable once committed (writes replace it with a fresh dict), so watch
history and listeners can hold them without copying. Callers get copies (see :func:`present`).
"""

from __future__ import annotations

import builtins
import collections
import copy
import datetime
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tksh.sandbox.apiserver import errors, schema
from tksh.sandbox.apiserver.errors import JSON, APIError, Cause, Obj
from tksh.sandbox.apiserver.patching import apply_patch, json_equal
from tksh.sandbox.apiserver.resources import (
    Registry,
    ResourceInfo,
    crd_name_problems,
    crd_status,
    name_causes,
    resources_from_crd,
)
from tksh.sandbox.apiserver.selectors import Matcher, make_matcher, parse_fields, parse_labels

StorageKey = tuple[str, str]  # (group, plural): all versions of a resource share one storage
ObjectKey = tuple[str, str]  # (namespace or "" for cluster-scoped, name)
Listener = Callable[["WatchEvent"], None]

PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # as in k8s.io/apimachinery/pkg/util/rand
_MANAGED = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
            "resourceVersion", "name", "namespace")
NAMESPACES = ("", "namespaces")
CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")


@dataclass(frozen=True)
class WatchEvent:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    key: StorageKey
    obj: Obj  # the new state; for DELETED, the last state (with the deletion's resourceVersion)
    old: Obj | None  # the previous state; None for ADDED


@dataclass
class WriteResult:
    obj: Obj
    warnings: list[str] = field(default_factory=list)
    created: bool = False


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def present(info: ResourceInfo, obj: Mapping[str, Any]) -> Obj:
    """A caller's copy of a stored object, with the apiVersion/kind of the requested version."""
    rest = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("apiVersion", "kind")}
    return {"apiVersion": info.api_version, "kind": info.kind, **rest}


def _meta(obj: Mapping[str, Any]) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


class Store:
    """All objects of all resources, the global resourceVersion counter and the watch history."""

    def __init__(self, *, history_limit: int = 1000, registry: Registry | None = None) -> None:
        self.registry = registry or Registry()
        self.history_limit = history_limit
        self._rv = 0
        self._objects: dict[StorageKey, dict[ObjectKey, Obj]] = collections.defaultdict(dict)
        self._history: dict[StorageKey, collections.deque[WatchEvent]] = {}
        self._compacted: dict[StorageKey, int] = {}  # the newest resourceVersion dropped from the history
        self._listeners: builtins.list[Listener] = []
        namespaces = self.registry.resolve("namespaces")
        for name in ("default", "kube-system"):
            self.create(namespaces, None, {"metadata": {"name": name}})

    # -- inspection (for tests and the server) -------------------------------------------------

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    def info(self, resource: str | ResourceInfo) -> ResourceInfo:
        return resource if isinstance(resource, ResourceInfo) else self.registry.resolve(resource)

    def get(self, resource: str | ResourceInfo, namespace: str | None, name: str) -> Obj | None:
        """The object or None; ``resource`` is a plural, ``plural.group``, short name or kind."""
        info = self.info(resource)
        obj = self._objects[info.storage_key].get((namespace or "", name))
        return present(info, obj) if obj is not None else None

    def list(self, resource: str | ResourceInfo, namespace: str | None = None, *,
             label_selector: str | None = None, field_selector: str | None = None) -> builtins.list[Obj]:
        info = self.info(resource)
        fields = parse_fields(field_selector, info.field_selectors, info.kind, info.api_version)
        return self.list_objects(info, namespace, make_matcher(parse_labels(label_selector), fields))[0]

    def list_objects(self, info: ResourceInfo, namespace: str | None,
                     matcher: Matcher) -> tuple[builtins.list[Obj], str]:
        bucket = self._objects[info.storage_key]
        name = getattr(matcher, "name", None)  # metadata.name=...: one object, read by its key (no scan)
        if name is not None and (namespace is not None or not info.namespaced):
            keys = [key for key in ((namespace or "", name),) if key in bucket]
        else:
            keys = sorted(key for key in bucket if namespace is None or key[0] == namespace)
        return [present(info, bucket[key]) for key in keys if matcher(bucket[key])], self.resource_version

    def read(self, info: ResourceInfo, namespace: str | None, name: str) -> Obj:
        return present(info, self._existing(info, namespace, name))

    @property
    def listener_count(self) -> int:
        return len(self._listeners)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def history_since(self, info: ResourceInfo, since: int) -> builtins.list[WatchEvent]:
        """Retained events newer than ``since``; 410 Gone (Expired) if some newer ones were dropped."""
        compacted = self._compacted.get(info.storage_key, 0)
        if since < compacted:
            raise APIError(410, f"too old resource version: {since} ({compacted + 1})", "Expired")
        return [event for event in self._history.get(info.storage_key, ()) if event.rv > since]

    def current(self, info: ResourceInfo) -> builtins.list[Obj]:
        """The stored objects (not copies; do not modify) in key order."""
        bucket = self._objects[info.storage_key]
        return [bucket[key] for key in sorted(bucket)]

    # -- writes ---------------------------------------------------------------------------------

    def create(self, info: ResourceInfo, namespace: str | None, body: JSON, *, dry_run: bool = False,
               field_validation: str | None = None) -> WriteResult:
        obj = self._decode(info, body)
        meta = obj["metadata"]
        namespace = self._scope(info, namespace, meta)
        if meta.get("resourceVersion"):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                cause = Cause("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")
                raise errors.invalid(info.kind, info.group, "", [cause])
            meta["name"] = self._generate_name(info, namespace, str(prefix))
        name = str(meta["name"])
        if info.namespaced:
            self._require_namespace(info, namespace, name)
        if (namespace, name) in self._objects[info.storage_key]:
            raise errors.already_exists(info.plural, info.group, name)
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(key, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now(), generation=1)
        if info.status:
            obj.pop("status", None)  # only the /status subresource writes the status
        if info.storage_key == NAMESPACES:
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        obj, warnings = self._admit(info, obj, field_validation)
        if dry_run:
            return WriteResult(present(info, obj), warnings, created=True)
        committed = self._commit(info, "ADDED", obj, None)
        return WriteResult(present(info, committed), warnings, created=True)

    def replace(self, info: ResourceInfo, namespace: str | None, name: str, body: JSON, *,
                subresource: str | None = None, dry_run: bool = False,
                field_validation: str | None = None) -> WriteResult:
        old = self._existing(info, namespace, name)
        candidate = self._decode(info, body)
        if info.crd and not candidate["metadata"].get("resourceVersion"):
            cause = Cause("FieldValueInvalid", "metadata.resourceVersion",
                          "Invalid value: 0x0: must be specified for an update")
            raise errors.invalid(info.kind, info.group, name, [cause])
        return self._update(info, old, candidate, subresource, dry_run, field_validation)

    def patch(self, info: ResourceInfo, namespace: str | None, name: str, content_type: str | None, body: JSON, *,
              subresource: str | None = None, dry_run: bool = False,
              field_validation: str | None = None) -> WriteResult:
        old = self._existing(info, namespace, name)
        candidate = apply_patch(present(info, old), content_type, body, crd=info.crd)
        return self._update(info, old, self._decode(info, candidate), subresource, dry_run, field_validation)

    def delete(self, info: ResourceInfo, namespace: str | None, name: str, *,
               preconditions: Mapping[str, Any] | None = None, dry_run: bool = False) -> Obj:
        old = self._existing(info, namespace, name)
        meta = _meta(old)
        for key in ("uid", "resourceVersion"):
            wanted = (preconditions or {}).get(key)
            if wanted and wanted != meta.get(key):
                why = f"Precondition failed: {key} in precondition: {wanted}, {key} in object meta: {meta.get(key)}"
                raise errors.conflict(info.plural, info.group, name, why)
        if info.storage_key == NAMESPACES and name in PROTECTED_NAMESPACES:
            raise APIError(403, f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                           details={"name": name, "kind": "namespaces"})
        return present(info, old) if dry_run else present(info, self._delete(info, old))

    def delete_collection(self, info: ResourceInfo, namespace: str | None, matcher: Matcher) -> builtins.list[Obj]:
        items, _ = self.list_objects(info, namespace, matcher)
        return [self.delete(info, namespace, _meta(item)["name"]) for item in items]

    # -- internals ------------------------------------------------------------------------------

    def _existing(self, info: ResourceInfo, namespace: str | None, name: str) -> Obj:
        obj = self._objects[info.storage_key].get(((namespace or "") if info.namespaced else "", name))
        if obj is None:
            raise errors.not_found(info.plural, info.group, name)
        return obj

    def _decode(self, info: ResourceInfo, body: JSON) -> Obj:
        if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
            raise errors.bad_request("the body of the request must be a JSON object with a metadata object")
        obj = copy.deepcopy(body)
        if obj.get("apiVersion") not in (None, "", info.api_version):
            raise errors.bad_request(f"the API version in the data ({obj['apiVersion']}) does not match "
                                     f"the expected API version ({info.api_version})")
        if obj.get("kind") not in (None, "", info.kind):
            raise errors.bad_request(f"the kind in the data ({obj['kind']}) does not match the expected kind "
                                     f"({info.kind})")
        rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
        return {"apiVersion": info.api_version, "kind": info.kind, "metadata": {}, **rest}

    def _scope(self, info: ResourceInfo, namespace: str | None, meta: Obj) -> str:
        if not info.namespaced:
            meta.pop("namespace", None)
            return ""
        if meta.get("namespace") and namespace and meta["namespace"] != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on "
                                     "the request")
        meta["namespace"] = namespace or meta.get("namespace") or ""
        return str(meta["namespace"])

    def _require_namespace(self, info: ResourceInfo, namespace: str, name: str) -> None:
        ns = self._objects[NAMESPACES].get(("", namespace))
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if _meta(ns).get("deletionTimestamp"):
            raise APIError(403, f'{info.group_resource} "{name}" is forbidden: unable to create new content in '
                                f'namespace {namespace} because it is being terminated',
                           details={"name": name, "group": info.group, "kind": info.plural})

    def _generate_name(self, info: ResourceInfo, namespace: str, prefix: str) -> str:
        while True:
            name = prefix[:58] + "".join(random.choices(NAME_ALPHABET, k=5))
            if (namespace, name) not in self._objects[info.storage_key]:
                return name

    def _admit(self, info: ResourceInfo, obj: Obj, field_validation: str | None) -> tuple[Obj, builtins.list[str]]:
        """Prune, default and validate; raise 400 (strict unknown fields) or 422 (all violations)."""
        outcome = schema.process(obj, info.schema if info.crd else None)
        if not info.crd:
            schema.prune_metadata(outcome.obj.get("metadata"), "metadata", outcome.pruned)
        causes = name_causes(str(_meta(outcome.obj).get("name", "")), label=info.storage_key == NAMESPACES)
        causes += outcome.causes
        if info.storage_key == CRDS:
            causes += [Cause("FieldValueRequired" if msg.startswith("Required") else "FieldValueInvalid", path, msg)
                       for path, msg in crd_name_problems(outcome.obj)]
        unknown = [f'unknown field "{path}"' for path in outcome.pruned]
        if unknown and (field_validation or "").lower() == "strict":
            raise errors.bad_request("strict decoding error: " + ", ".join(unknown))
        if causes:
            raise errors.invalid(info.kind, info.group, str(_meta(obj).get("name", "")), causes)
        warnings = unknown if (field_validation or "Warn").lower() == "warn" else []
        return outcome.obj, warnings

    def _update(self, info: ResourceInfo, old: Obj, candidate: Obj, subresource: str | None,
                dry_run: bool, field_validation: str | None) -> WriteResult:
        old_meta, meta = _meta(old), candidate["metadata"]
        name = str(old_meta["name"])
        if meta.get("name", name) != name:
            raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL "
                                     f"({name})")
        if info.namespaced and meta.get("namespace", old_meta.get("namespace")) != old_meta.get("namespace"):
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on "
                                     "the request")
        if meta.get("resourceVersion") and meta["resourceVersion"] != old_meta["resourceVersion"]:
            raise errors.conflict(info.plural, info.group, name)
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            why = f"Precondition failed: UID in precondition: {old_meta['uid']}, UID in object meta: {meta['uid']}"
            raise errors.conflict(info.plural, info.group, name, why)
        for key in _MANAGED:
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if subresource == "status":  # only the status changes; the rest is the old object
            new = copy.deepcopy(old)
            new["apiVersion"] = candidate["apiVersion"]
            if "status" in candidate:
                new["status"] = candidate["status"]
            else:
                new.pop("status", None)
        else:
            new = candidate
            if info.status:  # the main resource never changes the status
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            if info.storage_key == NAMESPACES:
                new["spec"] = copy.deepcopy(old.get("spec", {}))
        new, warnings = self._admit(info, new, field_validation)
        if old_meta.get("deletionTimestamp"):
            added = [f for f in _meta(new).get("finalizers") or [] if f not in (old_meta.get("finalizers") or [])]
            if added:
                cause = Cause("FieldValueForbidden", "metadata.finalizers",
                              f"Forbidden: no new finalizers can be added if the object is being deleted, "
                              f"found new finalizers {errors.go_value(added)}")
                raise errors.invalid(info.kind, info.group, name, [cause])
        if json_equal({**new, "apiVersion": None}, {**old, "apiVersion": None}):
            return WriteResult(present(info, old), warnings)  # a no-op write: no new resourceVersion
        if self._spec_changed(info, old, new):
            _meta(new)["generation"] = int(old_meta.get("generation", 1)) + 1
        if dry_run:
            return WriteResult(present(info, new), warnings)
        releasable = old_meta.get("deletionTimestamp") and self._releasable(info, new)
        committed = self._commit(info, "DELETED" if releasable else "MODIFIED", new, old)
        return WriteResult(present(info, committed), warnings)

    @staticmethod
    def _spec_changed(info: ResourceInfo, old: Obj, new: Obj) -> bool:
        ignored = {"metadata", "apiVersion", "kind"} | ({"status"} if info.status or not info.crd else set())
        return not json_equal({k: v for k, v in old.items() if k not in ignored},
                              {k: v for k, v in new.items() if k not in ignored})

    def _children(self, info: ResourceInfo, obj: Obj) -> builtins.list[tuple[ResourceInfo, Obj]]:
        """What the deletion of a namespace or a CRD cascades to."""
        name = _meta(obj)["name"]
        if info.storage_key == NAMESPACES:
            keys: Iterable[StorageKey] = [key for key in self._objects if key != NAMESPACES]
            pick: Callable[[ObjectKey], bool] = lambda key: key[0] == name  # noqa: E731
        elif info.storage_key == CRDS:
            spec = obj.get("spec") or {}
            keys = [(spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))]
            pick = lambda key: True  # noqa: E731
        else:
            return []
        result: builtins.list[tuple[ResourceInfo, Obj]] = []
        for group, plural in keys:
            child_info = self.registry.preferred(group, plural)
            if child_info is not None:
                result.extend((child_info, o) for k, o in self._objects[(group, plural)].items() if pick(k))
        return result

    def _releasable(self, info: ResourceInfo, obj: Obj) -> bool:
        return not _meta(obj).get("finalizers") and not self._children(info, obj)

    def _delete(self, info: ResourceInfo, old: Obj) -> Obj:
        meta = _meta(old)
        if meta.get("deletionTimestamp"):
            return old
        if self._releasable(info, old):
            return self._commit(info, "DELETED", copy.deepcopy(old), old)
        new = copy.deepcopy(old)
        _meta(new).update(deletionTimestamp=now(), deletionGracePeriodSeconds=0)
        if info.storage_key == NAMESPACES:
            new["status"] = {"phase": "Terminating"}
        committed = self._commit(info, "MODIFIED", new, old)
        for child_info, child in self._children(info, committed):
            self._delete(child_info, child)
        key = (meta.get("namespace") or "", meta["name"])
        return self._objects[info.storage_key].get(key, committed)

    def _commit(self, info: ResourceInfo, kind: str, new: Obj, old: Obj | None) -> Obj:
        self._rv += 1
        meta = _meta(new)
        meta["resourceVersion"] = str(self._rv)
        key = (str(meta.get("namespace") or ""), str(meta["name"]))
        bucket = self._objects[info.storage_key]
        if kind == "DELETED":
            bucket.pop(key, None)
        else:
            bucket[key] = new
        event = WatchEvent(self._rv, kind, info.storage_key, new, old)
        history = self._history.setdefault(info.storage_key, collections.deque())
        history.append(event)
        while len(history) > self.history_limit:
            self._compacted[info.storage_key] = history.popleft().rv
        if info.storage_key == CRDS:
            self._sync_crd(new, removed=kind == "DELETED")
        for listener in list(self._listeners):
            listener(event)
        if kind == "DELETED":
            self._after_removal(info, new)
        return new

    def _sync_crd(self, crd: Obj, *, removed: bool) -> None:
        spec = crd.get("spec") or {}
        group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
        if removed:
            self.registry.remove_group_resource(group, plural)
            return
        self.registry.replace_group_resource(group, plural, resources_from_crd(crd))
        if "conditions" not in (crd.get("status") or {}):
            crd["status"] = crd_status(crd, now())

    def _after_removal(self, info: ResourceInfo, obj: Obj) -> None:
        """Finish a terminating namespace or CRD once the last object in it is gone."""
        owners: builtins.list[tuple[ResourceInfo, Obj | None]] = []
        if info.namespaced:
            owners.append((self.registry.resolve("namespaces"),
                           self._objects[NAMESPACES].get(("", str(_meta(obj).get("namespace"))))))
        if info.crd:
            owners.append((self.registry.resolve("customresourcedefinitions"),
                           self._objects[CRDS].get(("", info.group_resource))))
        for owner_info, owner in owners:
            if owner is not None and _meta(owner).get("deletionTimestamp") and self._releasable(owner_info, owner):
                self._commit(owner_info, "DELETED", copy.deepcopy(owner), owner)
