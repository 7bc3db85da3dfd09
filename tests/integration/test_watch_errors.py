"""A watch ERROR event other than 410 Gone (500, 503, 429) must not end the operator (issue #7, item 2 follow-up).

A real kube-apiserver answers a watch with ``{"type": "ERROR", "object": {"kind": "Status", "code": 500, ...}}`` over
HTTP 200, e.g. ``etcdserver: request timed out``. kopf 1.45.2 raises ``WatchingError``: the watcher and kopf's
orchestrator fail and every watch ends, so nothing is reconciled any more (measured without the fix: the operator
thread then stayed up with no watch open for the 120 s observed). With :mod:`tksh.handlers.kopfwatch` the watcher
lists and watches again. Embedded backend only: a real server cannot be made to send such an event on demand (the
embedded one does it with ``api.faults.error_watches``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.integration.backends import EmbeddedBackend
from tests.integration.registration_helpers import make_namespace
from tests.sandbox.helpers import watch_lines
from tksh.run import OperatorHandle, OperatorThread
from tksh.sandbox.apiserver import EmbeddedAPIServer
from tksh.sandbox.mailsink import MailSink

Wait = Callable[..., Awaitable[Any]]
API = "tksh.kz/v1alpha1"
GRANTS = "accessgrants.tksh.kz"
DEADLINE = 90.0  # a bound on a broken test, not a timing requirement (the machine is shared)


def grant(name: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": API, "kind": "AccessGrant", "metadata": {"name": name, "namespace": ns},
        "spec": {
            "subject": {"id": f"person:{name}", "kind": "person", "name": "Айгүл Серікқызы"},
            "onBehalfOf": {"bin": "140540001231", "name": "ОСИ «Достық 12»", "email": "board@dostyk12.example.kz"},
            "functions": ["owners-association"],
            "agreement": {"number": "ДД-2026/0107", "validFrom": "2026-01-01T00:00:00Z",
                          "validUntil": "2099-01-01T00:00:00Z"},
        },
    }


@dataclasses.dataclass
class Running:
    thread: OperatorThread
    handle: OperatorHandle

    def alive(self) -> None:
        """Fails at once (not retried by ``wait_until``) once the operator has exited."""
        if not self.thread.alive:
            raise RuntimeError(f"the operator exited: {self.thread.error!r}")


@pytest.fixture
async def operator(api: EmbeddedAPIServer, mail: MailSink) -> AsyncIterator[Running]:
    """The operator in its thread, as ``tests.integration.backends.running``, with the thread at hand."""
    config = dataclasses.replace(EmbeddedBackend(api).operator_config(), smtp_host="127.0.0.1", smtp_port=mail.port,
                                 smtp_sender="tksh@tksh.example.kz")
    thread = OperatorThread(config)
    handle = await asyncio.to_thread(thread.start)
    try:
        await asyncio.to_thread(thread.wait_ready, DEADLINE)
        yield Running(thread, handle)
    finally:
        await asyncio.to_thread(thread.stop, 60)


async def phase(api: EmbeddedAPIServer, name: str, ns: str) -> str:
    obj = api.store.get("AccessGrant", ns, name) or {}
    status = obj.get("status") or {}
    return str(status.get("phase"))


async def test_the_embedded_server_sends_the_error_event_as_a_real_one_does(api: EmbeddedAPIServer) -> None:
    fault = api.faults.error_watches(500, resource="accessgrants")
    events = await watch_lines(api, "/apis/tksh.kz/v1alpha1/accessgrants", {"timeoutSeconds": "1"})
    assert [(e["type"], e["object"]["kind"], e["object"]["code"], e["object"]["reason"]) for e in events] == [
        ("ERROR", "Status", 500, "InternalError")]
    assert fault.hits == 1 and fault.exhausted and [i.status for i in api.faults.injected] == [500]
    assert await watch_lines(api, "/apis/tksh.kz/v1alpha1/accessgrants", {"timeoutSeconds": "1"}) == []


@pytest.mark.parametrize("code", [500, 503])
async def test_a_watch_error_event_does_not_end_the_operator_and_the_watch_comes_back(
    api: EmbeddedAPIServer, operator: Running, code: int, wait_until: Wait
) -> None:
    backend = EmbeddedBackend(api)
    ns = await make_namespace(backend, f"e{code}", "watch")
    await backend.apply(grant("before", ns))

    async def active(name: str) -> None:
        operator.alive()
        assert await phase(api, name, ns) == "Active"

    await wait_until(lambda: active("before"), DEADLINE)

    fault = api.faults.error_watches(code, resource="accessgrants")
    assert api.drop_watches("accessgrants", abrupt=False) >= 1  # the watcher re-watches at once and gets the error

    def answered() -> None:
        assert fault.hits == 1

    await wait_until(answered, DEADLINE)
    await backend.apply(grant("after", ns))  # only a watch that came back (after a fresh list) sees this one
    await wait_until(lambda: active("after"), DEADLINE)

    def counted() -> None:
        operator.alive()
        assert operator.handle.metrics.value("tksh_watch_errors_total", {"resource": GRANTS, "code": str(code)}) == 1

    await wait_until(counted, DEADLINE)
    assert operator.thread.error is None
