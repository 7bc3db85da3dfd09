"""Keeps a :class:`~tksh.access.DecisionIndex` in step with the cluster: AccessGrants and SubjectFunctions.

One :mod:`list+watch loop <tksh.access.listwatch>` per kind, over plain aiohttp (no kopf):

1. *list* the kind; *reconcile* the index with the list incrementally: upsert every listed object (a no-op
   when unchanged) and remove what this sync had put in the index and the list no longer has. Decisions
   keep being answered from the index throughout; nothing is rebuilt as a whole.
2. *watch* from the list's ``resourceVersion`` with bookmarks; each event touches one entry.
3. when the watch ends cleanly (server timeout), watch again from the last version seen; when it breaks
   (connection dropped, an error) or answers 410 Gone (that version is too old), go back to 1, with a delay
   that grows until a watch works again (see :mod:`tksh.access.listwatch`).

An object that breaks an identifier rule (:class:`~tksh.access.IdentifierError`) or the model is skipped,
logged with its name only (masked), and removed from the index if an earlier version was there: it then
allows nothing (fail closed). Nothing of the object's content is logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Final

import pydantic

from tksh.access.facts import function_rights, grant_facts
from tksh.access.identifiers import IdentifierError
from tksh.access.index import DecisionIndex
from tksh.access.listwatch import MAX_RETRY_DELAY, STEADY_AFTER, KubeConnection, ListWatch
from tksh.resources import ACCESS_GRANTS, SUBJECT_FUNCTIONS
from tksh.resources.accessgrant import AccessGrant
from tksh.resources.subjectfunction import SubjectFunction

__all__ = ["IndexSync", "KubeConnection"]

GRANTS: Final = "AccessGrant"
FUNCTIONS: Final = "SubjectFunction"


class IndexSync(ListWatch):
    """Lists and watches grants and functions into ``index``. ``await sync.run()`` until cancelled.

    ``ready`` is set once both kinds were listed; ``synced_revision`` is the last resourceVersion applied, per kind
    (``"AccessGrant"``, ``"SubjectFunction"``); ``relists`` counts lists per kind (tests watch recovery with it).
    """

    def __init__(
        self,
        index: DecisionIndex,
        connection: KubeConnection,
        *,
        watch_timeout: int = 300,
        retry_delay: float = 1.0,
        max_retry_delay: float = MAX_RETRY_DELAY,
        steady_after: float = STEADY_AFTER,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(connection, {GRANTS: ACCESS_GRANTS, FUNCTIONS: SUBJECT_FUNCTIONS}, logger="tksh.access.sync",
                         watch_timeout=watch_timeout, retry_delay=retry_delay, max_retry_delay=max_retry_delay,
                         steady_after=steady_after)
        self.index = index
        self.on_change = on_change or (lambda: None)
        self.ready = asyncio.Event()
        self.synced_revision: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        """Objects left out of the index: id -> the field and rule they break (no values)."""
        self._listed: set[str] = set()
        self._grant_ids: set[str] = set()
        self._function_names: set[str] = set()

    def listed(self, kind: str, items: list[dict[str, Any]], revision: str) -> None:
        listed = {self._apply(kind, "MODIFIED", item) for item in items}
        known = self._grant_ids if kind == GRANTS else self._function_names
        for gone in known - listed:
            self._remove(kind, gone)
        self.synced_revision[kind] = revision
        self._listed.add(kind)
        if self._listed >= {GRANTS, FUNCTIONS}:
            self.ready.set()
        self.on_change()

    def changed(self, kind: str, event_type: str, obj: Mapping[str, Any]) -> None:
        if event_type in ("ADDED", "MODIFIED"):
            self._apply(kind, "MODIFIED", obj)
        elif event_type == "DELETED":
            key = self._key(kind, obj)
            if key is not None:
                self._remove(kind, key)
        revision = (obj.get("metadata") or {}).get("resourceVersion")
        if revision is not None:
            self.synced_revision[kind] = str(revision)
        if event_type != "BOOKMARK":
            self.on_change()

    # --- the index ----------------------------------------------------------------------------------------------------

    @staticmethod
    def _key(kind: str, obj: Mapping[str, Any]) -> str | None:
        meta = obj.get("metadata") or {}
        name, namespace = meta.get("name"), meta.get("namespace")
        if not isinstance(name, str):
            return None
        if kind == FUNCTIONS:
            return name
        return f"{namespace}/{name}" if isinstance(namespace, str) else None

    def _apply(self, kind: str, _type: str, obj: Mapping[str, Any]) -> str:
        """Upsert one object; returns its key (also when it is skipped, so a relist does not re-remove it)."""
        key = self._key(kind, obj) or ""
        try:
            if kind == GRANTS:
                facts = grant_facts(AccessGrant.model_validate(obj))
                self.index.upsert_grant(facts)
                self._grant_ids.add(facts.id)
            else:
                function = SubjectFunction.model_validate(obj)
                self.index.upsert_function(function.metadata.name or key, function_rights(function))
                self._function_names.add(key)
        except IdentifierError as error:
            self._skip(kind, key, f"{error.field}: {error.rule}")
        except pydantic.ValidationError as error:
            fields = sorted({".".join(str(p) for p in e["loc"]) for e in error.errors()})
            self._skip(kind, key, "invalid fields: " + ", ".join(fields)[:200])
        else:
            self.skipped.pop(key, None)
        return key

    def _skip(self, kind: str, key: str, why: str) -> None:
        self.skipped[key] = why
        self._log.warning("object left out of the decision index", kind=kind, obj=key, why=why)
        if key:
            self._remove(kind, key)

    def _remove(self, kind: str, key: str) -> None:
        if kind == GRANTS:
            self.index.remove_grant(key)
            self._grant_ids.discard(key)
        else:
            self.index.remove_function(key)
            self._function_names.discard(key)
