"""Watch streams: history replay, live events, selectors, timeouts, bookmarks, and abrupt drops."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from tksh.sandbox.apiserver.errors import APIError, Obj
from tksh.sandbox.apiserver.resources import ResourceInfo
from tksh.sandbox.apiserver.selectors import Matcher
from tksh.sandbox.apiserver.store import Store, WatchEvent, present
from tksh.sandbox.apiserver.tables import table

_DROP = object()


@dataclass
class WatchSpec:
    info: ResourceInfo
    namespace: str | None = None
    name: str | None = None
    matcher: Matcher = lambda obj: True
    since: int | None = None  # None/0: start with synthetic ADDED events of the current objects
    timeout: float | None = None  # timeoutSeconds
    bookmarks: bool = False  # allowWatchBookmarks
    initial_events: bool = False  # sendInitialEvents: a BOOKMARK marks the end of the initial ADDED events
    table_version: str | None = None  # as=Table: objects are wrapped into Tables

    def visible(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        return ((self.namespace is None or meta.get("namespace") == self.namespace)
                and (self.name is None or meta.get("name") == self.name) and self.matcher(obj))


@dataclass(eq=False)
class Watch:
    """One open watch request; fed synchronously by the store, drained by the HTTP stream."""

    spec: WatchSpec
    store: Store
    close_transport: Callable[[], None] = lambda: None
    backlog: list[tuple[str, Obj]] = field(default_factory=list)
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    abrupt: bool = True
    _unsubscribe: Callable[[], None] = lambda: None
    _columns_sent: bool = False

    def start(self) -> None:
        """Snapshot the backlog and subscribe, atomically (no await in between): nothing is lost or doubled."""
        spec = self.spec
        if spec.since:
            for event in self.store.history_since(spec.info, spec.since):  # may raise 410 Gone
                translated = self.translate(event)
                if translated is not None:
                    self.backlog.append(translated)
        else:
            self.backlog = [("ADDED", obj) for obj in self.store.current(spec.info) if spec.visible(obj)]
        self._unsubscribe = self.store.subscribe(self.feed)

    def feed(self, event: WatchEvent) -> None:
        if event.key == self.spec.info.storage_key:
            self.queue.put_nowait(event)

    def drop(self, *, abrupt: bool = True) -> None:
        self.abrupt = abrupt
        self.queue.put_nowait(_DROP)

    def translate(self, event: WatchEvent) -> tuple[str, Obj] | None:
        """Selectors decide per state: leaving the selection is DELETED, entering it is ADDED."""
        was = event.type != "ADDED" and self.spec.visible(event.old)
        now = self.spec.visible(event.obj)
        if event.type == "DELETED":
            return ("DELETED", event.obj) if now else None
        if was and now:
            return ("MODIFIED", event.obj)
        if now:
            return ("ADDED", event.obj)
        return ("DELETED", event.obj) if was else None

    def _line(self, kind: str, obj: Obj) -> bytes:
        info = self.spec.info
        body = present(info, obj)
        if self.spec.table_version and kind != "BOOKMARK":
            body = table(info, [body], self.store.resource_version, version=self.spec.table_version,
                         with_columns=not self._columns_sent)
            self._columns_sent = True
        return json.dumps({"type": kind, "object": body}, separators=(",", ":")).encode() + b"\n"

    def _bookmark(self, *, initial_end: bool = False) -> bytes:
        meta: Obj = {"resourceVersion": self.store.resource_version}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return self._line("BOOKMARK", {"metadata": meta})

    async def stream(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.spec.timeout if self.spec.timeout else None
        last_rv = self.spec.since or 0
        try:
            yield b""  # send the headers now: a client waits for them before it reads the events
            for kind, obj in self.backlog:
                last_rv = max(last_rv, int(obj["metadata"]["resourceVersion"]))
                yield self._line(kind, obj)
            if self.spec.initial_events and self.spec.bookmarks:
                yield self._bookmark(initial_end=True)
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        item = await self.queue.get()
                except TimeoutError:
                    if self.spec.bookmarks:
                        yield self._bookmark()
                    return
                if item is _DROP:
                    if self.abrupt:
                        self.close_transport()
                    return
                if item.rv <= last_rv:
                    continue  # already sent from the backlog
                translated = self.translate(item)
                if translated is not None:
                    yield self._line(*translated)
        finally:
            self._unsubscribe()


def error_stream(error: APIError) -> AsyncIterator[bytes]:
    """A watch answered with one ERROR event (HTTP 200), as a real server does for 410 Gone."""

    async def stream() -> AsyncIterator[bytes]:
        yield json.dumps({"type": "ERROR", "object": error.status()}, separators=(",", ":")).encode() + b"\n"

    return stream()
