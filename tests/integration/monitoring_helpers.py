"""Shared pieces of the monitoring suites: a real local HTTP receiver (a webhook endpoint or an Alertmanager's
v2 API), the operator's configuration, integrated digital objects, central components, and small readers.

The receiver is an aiohttp server on 127.0.0.1 that keeps every request (headers and raw body) and answers
with a scripted status: ``respond(503, 503)`` makes the next two answers 503, then the default (200).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import dataclasses
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.integration.backends import Backend, EmbeddedBackend, RealBackend
from tests.integration.registration_helpers import AGREEMENT
from tksh.aio import Service
from tksh.config import OperatorConfig
from tksh.sandbox.mailsink import ReceivedMail

API = "tksh.kz/v1alpha1"
ADMIN_EMAIL = "duty@tksh.example.kz"
OWNER = "it@zhylu.example.kz"
"""The owner of the digital object a suite watches fail."""
WEBHOOK_SECRET = "whsec-test-0123456789"
FUNCTION: dict[str, Any] = {
    "apiVersion": API,
    "kind": "SubjectFunction",
    "metadata": {"name": "utility-supply"},
    "spec": {
        "titles": {"kk": "Коммуналдық қызмет", "ru": "Коммунальные услуги", "en": "Utility supply"},
        "subjectTypes": ["HeatSupplier"],
        "rights": [{"category": 11, "actions": ["read", "write"]}],
    },
}


@dataclasses.dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    """What the receiver answered."""

    def json(self) -> Any:
        return json.loads(self.body)


class HTTPReceiver(Service):
    """``async with HTTPReceiver() as hook: ... hook.url ... hook.requests``."""

    def __init__(self, default_status: int = 200) -> None:
        self.default_status = default_status
        self.script: list[int] = []
        self.requests: list[Received] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def respond(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, in order, then with the default."""
        self.script.extend(statuses)

    def accepted(self, path: str | None = None) -> list[Received]:
        """The requests answered 2xx (optionally only those to ``path``)."""
        return [r for r in self.requests if 200 <= r.status < 300 and (path is None or r.path == path)]

    async def wait_for(self, check: Callable[[Received], bool], timeout: float = 30.0) -> Received:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while True:
                for request in self.requests:
                    if check(request):
                        return request
                self._arrived.clear()
                await self._arrived.wait()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = self.script.pop(0) if self.script else self.default_status
        self.requests.append(Received(request.path, dict(request.headers), body, status))
        self._arrived.set()
        return web.json_response({"ok": status < 300}, status=status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


# --- scenario helpers ----------------------------------------------------------------------------------


def monitoring_config(cluster: Backend, smtp_port: int, **changes: Any) -> OperatorConfig:
    """The backend's operator with real SMTP, a short integration test and fast monitoring."""
    return dataclasses.replace(
        cluster.operator_config(), smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_sender="tksh@tksh.example.kz",
        administrator_mailbox=ADMIN_EMAIL, test_probes=2, test_time_limit=3, test_retry=3600,
        test_probe_interval=0.1, probe_interval_cap=0.3, confirm_interval=0.1, availability_interval=0.5,
        alertmanager_repost=1.0, **changes,
    )


async def namespace(cluster: Backend, name: str) -> str:
    await cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    await cluster.apply(copy.deepcopy(FUNCTION))
    return name


def digital_object(name: str, ns: str, url: str, email: str, *, webhook: str | None = None) -> dict[str, Any]:
    owner: dict[str, Any] = {"bin": "201240007890", "name": "АО «Жылу Желісі»", "subjectType": "HeatSupplier",
                             "email": email}
    if webhook:
        owner["webhook"] = {"url": webhook, "secretRef": {"name": f"{name}-webhook", "key": "secret"}}
    return {
        "apiVersion": API,
        "kind": "DigitalObject",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "owner": owner,
            "functions": ["utility-supply"],
            "categories": [11],
            "endpoint": {"url": url},
            "probe": {"type": "http", "path": "/healthz", "intervalSeconds": 5, "timeoutSeconds": 1,
                      "failureThreshold": 2},
            "review": {"decision": "Approved", "reviewer": "aigerim"},
            "agreement": AGREEMENT,
        },
    }


async def webhook_secret(cluster: Backend, name: str, ns: str) -> None:
    await cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{name}-webhook", "namespace": ns},
                         "data": {"secret": base64.b64encode(WEBHOOK_SECRET.encode()).decode()}})


def central_component(name: str, url: str, *, critical: bool = True) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "CentralComponent", "metadata": {"name": name},
            "spec": {"title": "ЦЖ gateway", "endpoint": {"url": url}, "critical": critical,
                     "probe": {"type": "http", "path": "/healthz", "intervalSeconds": 5, "timeoutSeconds": 1,
                               "failureThreshold": 2}}}


async def status_of(cluster: Backend, kind: str, name: str, ns: str | None = None) -> dict[str, Any]:
    obj = await cluster.get(kind, name, ns)
    assert obj is not None, f"{kind} {ns}/{name} not found"
    return dict(obj.get("status") or {})


async def integrated(cluster: Backend, obj: dict[str, Any]) -> None:
    """Wait until the digital object's registration lifecycle has integrated it (§17)."""
    status = await status_of(cluster, "DigitalObject", obj["metadata"]["name"], obj["metadata"]["namespace"])
    assert status.get("phase") == "Integrated", status


async def availability(cluster: Backend, kind: str, name: str, ns: str | None, state: str) -> dict[str, Any]:
    status = await status_of(cluster, kind, name, ns)
    found = status.get("availability") or {}
    assert found.get("state") == state, found
    return status


async def incidents(cluster: Backend, ns: str) -> list[dict[str, Any]]:
    """The Incidents of a namespace, oldest first."""
    if isinstance(cluster, EmbeddedBackend):
        items = cluster.api.store.list("incidents", ns)
    else:
        assert isinstance(cluster, RealBackend)
        body = await asyncio.to_thread(cluster.cluster.checked, "GET", f"/apis/{API}/namespaces/{ns}/incidents")
        items = body["items"]
    return sorted(items, key=lambda i: str(i["spec"]["startedAt"]))


async def one_incident(cluster: Backend, ns: str, phase: str = "Open") -> dict[str, Any]:
    found = await incidents(cluster, ns)
    assert len(found) == 1, [i["metadata"]["name"] for i in found]
    assert (found[0].get("status") or {}).get("phase") == phase, found[0].get("status")
    return found[0]


async def reasons(cluster: Backend, name: str) -> set[str]:
    return {e["reason"] for e in await cluster.events(name)}


def mail_to(address: str, template: str) -> Callable[[ReceivedMail], bool]:
    return lambda m: m.message["X-TKSH-Template"] == template and m.envelope_to == (address,)
