"""kopf peering in the integration suites: a rival peer pauses the operator under test, and kopf's log says when.

A peering object (``ClusterKopfPeering``, or ``KopfPeering`` for a namespaced operator) lists its peers in
``status``; a peer of higher priority seen within its lifetime makes kopf pause this operator (it logs
:data:`PAUSED`), its removal resumes it. :class:`Peering` writes such a rival into the object and removes it,
and records kopf's peering log to wait for the pause. :class:`HeldMail` holds a notice mid-delivery, so that
the pause lands while it is being sent (:func:`paused_mid_delivery`).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from tests.integration.backends import Backend
from tksh.notify import IDEMPOTENCY_HEADER
from tksh.sandbox.mailsink import MailSink, ReceivedMail

PAUSED = "Pausing operations in favour of"


async def merge_patch(cluster: Backend, path: str, body: dict[str, Any]) -> None:
    """A JSON merge patch on either backend (the embedded one over plain HTTP, no credentials)."""
    if cluster.name == "embedded":
        import aiohttp

        async with aiohttp.ClientSession() as http, http.patch(
                cluster.api.url + path, json=body,  # type: ignore[attr-defined]
                headers={"Content-Type": "application/merge-patch+json"}) as response:
            assert response.status == 200, await response.text()
        return
    await asyncio.to_thread(cluster.cluster.checked, "PATCH", path, body,  # type: ignore[attr-defined]
                            content_type="application/merge-patch+json")


class Peering:
    """``with Peering(cluster, name, namespace=None) as peering:`` the object's path, kopf's peering log recorded.

    The object itself is created by :meth:`create` (before the operator starts, which needs it)."""

    def __init__(self, cluster: Backend, name: str, namespace: str | None = None) -> None:
        self.cluster, self.name, self.namespace = cluster, name, namespace
        self.path = (f"/apis/kopf.dev/v1/namespaces/{namespace}/kopfpeerings/{name}" if namespace
                     else f"/apis/kopf.dev/v1/clusterkopfpeerings/{name}")
        self.messages: list[str] = []
        self._logger = logging.getLogger("kopf._core.engines.peering")
        self._level = self._logger.level
        self._handler = _Recorder(self.messages)

    def __enter__(self) -> Peering:
        self._logger.setLevel(logging.INFO)
        self._logger.addHandler(self._handler)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._logger.removeHandler(self._handler)
        self._logger.setLevel(self._level)

    async def create(self, *, rival: bool = False) -> None:
        kind = "KopfPeering" if self.namespace else "ClusterKopfPeering"
        metadata = {"name": self.name, **({"namespace": self.namespace} if self.namespace else {})}
        await self.cluster.apply({"apiVersion": "kopf.dev/v1", "kind": kind, "metadata": metadata})
        if rival:
            await self.rival(True)

    async def rival(self, present: bool, lifetime: int = 600) -> None:
        """Write a peer of priority 100, seen now, into the object (or remove it)."""
        seen = datetime.datetime.now(datetime.UTC).isoformat()
        peer = {"priority": 100, "lifetime": lifetime, "lastseen": seen} if present else None
        await merge_patch(self.cluster, self.path, {"status": {"rival": peer}})

    def paused(self) -> None:
        """Asserts kopf logged the pause (for ``wait_until``)."""
        assert any(m.startswith(PAUSED) for m in self.messages), self.messages


class _Recorder(logging.Handler):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(level=logging.INFO)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class HeldMail(MailSink):
    """A mail sink that holds the messages of one template mid-DATA until released: the sender waits for the reply."""

    def __init__(self, template: str) -> None:
        super().__init__()
        self.template = template
        self.holding, self.released = asyncio.Event(), asyncio.Event()

    def held(self, mail: ReceivedMail) -> bool:
        return bool(mail.message["X-TKSH-Template"] == self.template)

    async def _store(self, envelope_from: str, envelope_to: tuple[str, ...], data: bytes) -> None:
        if f"X-TKSH-Template: {self.template}".encode() in data and not self.released.is_set():
            self.holding.set()
            await self.released.wait()
        await super()._store(envelope_from, envelope_to, data)

    def keys(self) -> list[str]:
        """The idempotency keys of the held template's messages received, in order."""
        return [str(m.message[IDEMPOTENCY_HEADER]) for m in self.received if self.held(m)]


async def paused_mid_delivery(peering: Peering, mail: HeldMail, read: Callable[[], Awaitable[dict[str, Any] | None]],
                              wait_until: Callable[..., Awaitable[Any]]) -> dict[str, Any]:
    """With a notice held by ``mail``: pause the operator, release the notice, and assert that the object ``read``
    returns is not written after the pause (the sender's record of the delivery included). The object, unchanged."""
    async with asyncio.timeout(60):
        await mail.holding.wait()
    await peering.rival(True)
    await wait_until(peering.paused)
    before = await read()
    mail.released.set()
    await mail.wait_for(mail.held, timeout=30)
    await asyncio.sleep(2.0)  # the record of that delivery, if written at all, follows at once
    after = await read()
    assert before is not None and after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], \
        (before.get("status"), after.get("status"))  # nothing written after the pause
    return after
