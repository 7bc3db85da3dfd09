"""List and watch kinds of the Kubernetes API over plain aiohttp: the loop the decision index and the status page share.

No kopf: the decision point is not an operator and must not take part in kopf's peering or finalizers. One loop
per kind (:class:`ListWatch`; :class:`tksh.access.sync.IndexSync` and :class:`tksh.access.statuscache.StatusSync`
say what a list and an event do to what they keep):

1. *list* the kind and hand the items to :meth:`ListWatch.listed`;
2. *watch* from the list's ``resourceVersion`` with bookmarks; each event goes to :meth:`ListWatch.changed`;
3. when the watch ends cleanly (server timeout), watch again from the last version seen; when it breaks
   (connection dropped, an error status) or answers 410 Gone (that version is too old), go back to 1.

Retries back off: a failed list or a broken watch waits ``retry_delay``, doubled after every failure up to
``max_retry_delay``. A successful list does not reset the delay: a watch refused right after every list (a role
with ``list`` but not ``watch``) would otherwise relist every ``retry_delay``. Only a *steady* watch resets it: one
that delivers an event (at once) or stays open ``steady_after`` seconds (half its timeout, if that is shorter). A
watch that ends, cleanly or with 410, before it was steady waits the same way before the next watch or list.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import ssl
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

import aiohttp

from tksh.logs import get_logger
from tksh.resources.base import ResourceRef

__all__ = ["MAX_RETRY_DELAY", "STEADY_AFTER", "KubeConnection", "ListWatch", "running"]

MAX_RETRY_DELAY: Final = 30.0
STEADY_AFTER: Final = 10.0
_SA_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_EVENT_TYPES: Final = ("ADDED", "MODIFIED", "DELETED", "BOOKMARK")


@dataclasses.dataclass(frozen=True)
class KubeConnection:
    """How to reach the Kubernetes API: a server URL and optional credentials.

    ``token_path`` is re-read on every request: projected service-account tokens are rotated by the kubelet.
    """

    server: str
    ca_path: str | None = None
    token: str | None = None
    token_path: str | None = None
    certificate_path: str | None = None
    private_key_path: str | None = None
    insecure: bool = False

    @classmethod
    def from_kubeconfig(cls, path: str) -> KubeConnection:
        """The current context of a kubeconfig file (via :func:`tksh.handlers.login.connection_from_kubeconfig`)."""
        from tksh.handlers.login import connection_from_kubeconfig

        info = connection_from_kubeconfig(path)
        return cls(server=str(info.server), ca_path=_text(info.ca_path), token=info.token,
                   certificate_path=_text(info.certificate_path), private_key_path=_text(info.private_key_path),
                   insecure=bool(info.insecure))

    @classmethod
    def in_cluster(cls) -> KubeConnection:
        """The pod's service account (``KUBERNETES_SERVICE_HOST``/``_PORT`` and the mounted token and CA)."""
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        host = f"[{host}]" if ":" in host else host
        return cls(server=f"https://{host}:{port}", ca_path=str(_SA_DIR / "ca.crt"),
                   token_path=str(_SA_DIR / "token"))

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https"):
            return False
        if self.insecure:
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            return context
        context = ssl.create_default_context(cafile=self.ca_path)
        if self.certificate_path:
            context.load_cert_chain(self.certificate_path, self.private_key_path)
        return context

    def headers(self) -> dict[str, str]:
        token = self.token
        if self.token_path:
            token = Path(self.token_path).read_text(encoding="utf-8").strip()
        return {"Authorization": f"Bearer {token}"} if token else {}


def _text(path: str | bytes | os.PathLike[str] | os.PathLike[bytes] | None) -> str | None:
    return None if path is None else os.fsdecode(path)


class _Gone(Exception):
    """410 Gone: the watched resourceVersion is too old; relist."""


class _Broken(Exception):
    """The list or watch answered an error other than 410, or the stream broke; relist."""


class _Backoff:
    """The delay before the next try of one kind: doubles after each failure up to ``cap``; reset by a steady watch."""

    def __init__(self, initial: float, cap: float) -> None:
        self.initial, self.cap, self.delay = initial, cap, initial

    def reset(self) -> None:
        self.delay = self.initial

    async def wait(self) -> None:
        delay, self.delay = self.delay, min(self.cap, self.delay * 2)
        await asyncio.sleep(delay)


class ListWatch:
    """Lists and watches ``kinds`` (name -> resource); ``await run()`` until cancelled.

    Subclasses implement :meth:`listed` and :meth:`changed`. ``relists`` counts the successful lists per kind,
    ``events`` the watch events handled per kind, :meth:`retry_in` is the current delay of a kind's loop (tests
    watch recovery and backoff with them).
    """

    what = "watch"
    """How the log lines name this loop."""

    def __init__(self, connection: KubeConnection, kinds: Mapping[str, ResourceRef], *, logger: str,
                 watch_timeout: int = 300, retry_delay: float = 1.0, max_retry_delay: float = MAX_RETRY_DELAY,
                 steady_after: float = STEADY_AFTER) -> None:
        self.connection = connection
        self.kinds = dict(kinds)
        self.watch_timeout = watch_timeout
        self.retry_delay = retry_delay
        self.max_retry_delay = max(retry_delay, max_retry_delay)
        self.steady_after = min(steady_after, watch_timeout / 2)
        self.relists: dict[str, int] = dict.fromkeys(self.kinds, 0)
        self.events: dict[str, int] = dict.fromkeys(self.kinds, 0)
        self._backoffs = {kind: _Backoff(retry_delay, self.max_retry_delay) for kind in self.kinds}
        self._log = get_logger(logger)

    def retry_in(self, kind: str) -> float:
        """How long the loop of ``kind`` waits after its next failure."""
        return self._backoffs[kind].delay

    def listed(self, kind: str, items: list[dict[str, Any]], revision: str) -> None:
        """A list of ``kind`` succeeded: keep what it has, and nothing else."""
        raise NotImplementedError

    def changed(self, kind: str, event_type: str, obj: Mapping[str, Any]) -> None:
        """One watch event: ``ADDED``, ``MODIFIED``, ``DELETED`` or ``BOOKMARK``."""
        raise NotImplementedError

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=self.watch_timeout + 30)
        connector = aiohttp.TCPConnector(ssl=self.connection.ssl_context())
        async with (aiohttp.ClientSession(self.connection.server, timeout=timeout, connector=connector) as session,
                    asyncio.TaskGroup() as group):
            for kind in self.kinds:
                group.create_task(self._loop(session, kind))

    async def _loop(self, session: aiohttp.ClientSession, kind: str) -> None:
        ref = self.kinds[kind]
        path = f"/apis/{ref.group}/{ref.version}/{ref.plural}"
        backoff = self._backoffs[kind]
        while True:
            started: float | None = None  # when the current watch began, and the events seen by then
            seen = 0
            try:
                revision = await self._list(session, kind, path)
                while True:  # a clean end of the stream resumes from the last version; anything else relists
                    started, seen = asyncio.get_running_loop().time(), self.events[kind]
                    revision = await self._watch(session, kind, path, revision)
                    if not self._steady(backoff, kind, started, seen):  # ended at once with nothing
                        await backoff.wait()
            except _Gone:
                self._log.info(f"{self.what} expired, relisting", kind=kind)
                if not self._steady(backoff, kind, started, seen):
                    await backoff.wait()
            except (_Broken, aiohttp.ClientError, TimeoutError, ValueError, OSError) as error:
                self._steady(backoff, kind, started, seen)
                self._log.warning(f"{self.what} interrupted, relisting", kind=kind, error=type(error).__name__,
                                  detail=str(error)[:200], retry_in=backoff.delay)
                await backoff.wait()

    def _steady(self, backoff: _Backoff, kind: str, started: float | None, seen: int) -> bool:
        """Whether the watch begun at ``started`` delivered an event or stayed open long enough; if so, the
        delay is back to ``retry_delay``."""
        steady = started is not None and (
            self.events[kind] > seen or asyncio.get_running_loop().time() - started >= self.steady_after)
        if steady:
            backoff.reset()
        return steady

    async def _list(self, session: aiohttp.ClientSession, kind: str, path: str) -> str:
        async with session.get(path, headers=self.connection.headers()) as response:
            if response.status != 200:
                raise _Broken(f"list {kind}: HTTP {response.status}")
            body = await response.json()
        revision = str((body.get("metadata") or {}).get("resourceVersion") or "")
        self.listed(kind, list(body.get("items") or []), revision)
        self.relists[kind] += 1
        return revision

    async def _watch(self, session: aiohttp.ClientSession, kind: str, path: str, revision: str) -> str:
        params = {"watch": "true", "resourceVersion": revision, "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(self.watch_timeout)}
        async with session.get(path, params=params, headers=self.connection.headers()) as response:
            if response.status == 410:
                raise _Gone
            if response.status != 200:
                raise _Broken(f"watch {kind}: HTTP {response.status}")
            async for event in _lines(response.content):
                event_type, obj = event.get("type"), event.get("object") or {}
                if event_type == "ERROR":
                    if obj.get("code") == 410:
                        raise _Gone
                    raise _Broken(f"watch {kind}: {obj.get('code')} {obj.get('reason')}")
                if event_type not in _EVENT_TYPES:
                    raise _Broken(f"watch {kind}: unexpected event type {str(event_type)[:32]!r}")
                self.changed(kind, str(event_type), obj)
                self.events[kind] += 1
                self._backoffs[kind].reset()  # a watch that delivers works
                revision = str((obj.get("metadata") or {}).get("resourceVersion") or revision)
        return revision


W = TypeVar("W", bound=ListWatch)


@contextlib.asynccontextmanager
async def running(sync: W) -> AsyncIterator[W]:
    """Run ``sync`` in a task for the duration of the block (cancelled at its end)."""
    task = asyncio.create_task(sync.run(), name=f"tksh-{type(sync).__name__}")
    try:
        yield sync
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _lines(stream: aiohttp.StreamReader) -> AsyncIterator[dict[str, Any]]:
    """JSON events of a watch stream, one per line, whatever their size (no readline limit)."""
    buffer = b""
    async for chunk in stream.iter_any():
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)
    if buffer.strip():
        yield json.loads(buffer)
