"""Keeps a :class:`~tksh.access.DecisionIndex` in step with the cluster: AccessGrants and SubjectFunctions.

One loop per kind, over plain aiohttp (no kopf: the decision point is not an operator and must not take
part in kopf's peering or finalizers):

1. *list* the kind; *reconcile* the index with the list incrementally: upsert every listed object (a no-op
   when unchanged) and remove what this sync had put in the index and the list no longer has. Decisions
   keep being answered from the index throughout; nothing is rebuilt as a whole.
2. *watch* from the list's ``resourceVersion`` with bookmarks; each event touches one entry.
3. when the watch ends cleanly (server timeout), watch again from the last version seen; when it breaks
   (connection dropped, an error) or answers 410 Gone (that version is too old), go back to 1.

An object that breaks an identifier rule (:class:`~tksh.access.IdentifierError`) or the model is skipped,
logged with its name only (masked), and removed from the index if an earlier version was there: it then
allows nothing (fail closed). Nothing of the object's content is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, Final

import aiohttp
import pydantic

from tksh.access.facts import function_rights, grant_facts
from tksh.access.identifiers import IdentifierError
from tksh.access.index import DecisionIndex
from tksh.logs import get_logger
from tksh.resources import ACCESS_GRANTS, SUBJECT_FUNCTIONS
from tksh.resources.accessgrant import AccessGrant
from tksh.resources.subjectfunction import SubjectFunction

__all__ = ["IndexSync", "KubeConnection"]

_SA_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")
GRANTS: Final = "AccessGrant"
FUNCTIONS: Final = "SubjectFunction"


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
    """The watch stream broke or answered an error other than 410; relist."""


def _path(plural: str, group: str, version: str) -> str:
    return f"/apis/{group}/{version}/{plural}"


class IndexSync:
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
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.index = index
        self.connection = connection
        self.watch_timeout = watch_timeout
        self.retry_delay = retry_delay
        self.on_change = on_change or (lambda: None)
        self.ready = asyncio.Event()
        self.synced_revision: dict[str, str] = {}
        self.relists: dict[str, int] = {GRANTS: 0, FUNCTIONS: 0}
        self.skipped: dict[str, str] = {}
        """Objects left out of the index: id -> the field and rule they break (no values)."""
        self._listed: set[str] = set()
        self._grant_ids: set[str] = set()
        self._function_names: set[str] = set()
        self._log = get_logger("tksh.access.sync")

    async def run(self) -> None:
        ssl_context = self.connection.ssl_context()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=self.watch_timeout + 30)
        connector = aiohttp.TCPConnector(ssl=ssl_context)
        async with (
            aiohttp.ClientSession(self.connection.server, timeout=timeout, connector=connector) as session,
            asyncio.TaskGroup() as group,
        ):
            group.create_task(self._loop(session, GRANTS))
            group.create_task(self._loop(session, FUNCTIONS))

    # --- the loop of one kind -----------------------------------------------------------------------------------------

    async def _loop(self, session: aiohttp.ClientSession, kind: str) -> None:
        ref = ACCESS_GRANTS if kind == GRANTS else SUBJECT_FUNCTIONS
        path = _path(ref.plural, ref.group, ref.version)
        while True:
            try:
                revision = await self._relist(session, kind, path)
                while True:  # a clean end of the stream resumes from the last version; anything else relists
                    revision = await self._watch(session, kind, path, revision)
            except _Gone:
                self._log.info("watch expired, relisting", kind=kind)
            except (_Broken, aiohttp.ClientError, TimeoutError, ValueError, OSError) as error:
                self._log.warning("watch interrupted, relisting", kind=kind, error=type(error).__name__,
                                  detail=str(error)[:200])
                await asyncio.sleep(self.retry_delay)

    async def _relist(self, session: aiohttp.ClientSession, kind: str, path: str) -> str:
        async with session.get(path, headers=self.connection.headers()) as response:
            if response.status != 200:
                raise _Broken(f"list {kind}: HTTP {response.status}")
            body = await response.json()
        items: list[dict[str, Any]] = body.get("items") or []
        revision = str((body.get("metadata") or {}).get("resourceVersion") or "")
        listed = {self._apply(kind, "MODIFIED", item) for item in items}
        known = self._grant_ids if kind == GRANTS else self._function_names
        for gone in known - listed:
            self._remove(kind, gone)
        self.relists[kind] += 1
        self.synced_revision[kind] = revision
        self._listed.add(kind)
        if self._listed >= {GRANTS, FUNCTIONS}:
            self.ready.set()
        self.on_change()
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
                revision = self._event(kind, event) or revision
        return revision

    def _event(self, kind: str, event: Mapping[str, Any]) -> str | None:
        kind_of_event, obj = event.get("type"), event.get("object") or {}
        revision = (obj.get("metadata") or {}).get("resourceVersion")
        if kind_of_event == "ERROR":
            if obj.get("code") == 410:
                raise _Gone
            raise _Broken(f"watch {kind}: {obj.get('code')} {obj.get('reason')}")
        if kind_of_event in ("ADDED", "MODIFIED"):
            self._apply(kind, "MODIFIED", obj)
        elif kind_of_event == "DELETED":
            key = self._key(kind, obj)
            if key is not None:
                self._remove(kind, key)
        elif kind_of_event != "BOOKMARK":
            raise _Broken(f"watch {kind}: unexpected event type {str(kind_of_event)[:32]!r}")
        if revision is not None:
            self.synced_revision[kind] = str(revision)
        if kind_of_event != "BOOKMARK":
            self.on_change()
        return None if revision is None else str(revision)

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


@contextlib.asynccontextmanager
async def running(sync: IndexSync) -> AsyncIterator[IndexSync]:
    """Run ``sync`` in a task for the duration of the block (cancelled at its end)."""
    task = asyncio.create_task(sync.run(), name="tksh-authz-sync")
    try:
        yield sync
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
