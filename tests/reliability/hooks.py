"""A real webhook receiver that verifies signatures, de-duplicates on the idempotency key, and can go down.

It is what an owner's endpoint (``spec.owner.webhook``) would be: an aiohttp server on 127.0.0.1 that
checks ``X-TKSH-Signature`` with :func:`tksh.notify.webhook.verify` against the secret registered for
the path (``/hooks/<namespace>/<name>``), answers 200 to a valid request and 401 to a bad signature
(counted in ``bad_signatures``: the suite requires none), and keeps:

- every accepted request in arrival order (``raw``), and the first one per ``Idempotency-Key``
  (``unique``): what a receiver that remembers keys would act on;
- a hook called after a request was read and verified but before the ``200`` goes out (``on_request``:
  "mid-delivery"; a sender killed there never learns it arrived and must send it again with the same key).

``down()`` stops listening (clients get *connection refused*, a temporary failure for the sender);
``up()`` listens again on the same port.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tksh.monitoring.messages import template_for
from tksh.notify.webhook import IDEMPOTENCY_KEY_HEADER, SIGNATURE_HEADER, SignatureError, verify

Hook = Callable[[], None]


@dataclasses.dataclass(frozen=True)
class Delivered:
    """One accepted webhook request."""

    path: str
    key: str
    payload: dict[str, Any]

    @property
    def recipient(self) -> str:
        """The object the hook belongs to: ``<namespace>/<name>`` of ``/hooks/<namespace>/<name>``."""
        return self.path.removeprefix("/hooks/")

    @property
    def template(self) -> str:
        """The notice, named as the e-mail's template (``incident-opened``, ``incident-recovered``...)."""
        return template_for(str(self.payload.get("transition") or "Opened"))


def hook_path(namespace: str, name: str) -> str:
    return f"/hooks/{namespace}/{name}"


class DedupWebhooks:
    """``async with DedupWebhooks() as hooks: hooks.register(ns, name, secret); url = hooks.url_for(ns, name)``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.secrets: dict[str, bytes] = {}
        self.received: list[Delivered] = []
        self.bad_signatures = 0
        self.refused_unknown = 0
        self.on_request: Hook | None = None
        self.connections_while_down = 0
        self.is_up = False
        self._runner: web.AppRunner | None = None

    # --- serving ----------------------------------------------------------------------------------

    def register(self, namespace: str, name: str, secret: bytes) -> str:
        """Accept hooks for ``namespace/name`` signed with ``secret``; the URL to put in the owner's spec."""
        path = hook_path(namespace, name)
        self.secrets[path] = secret
        return self.url + path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> DedupWebhooks:
        await self.up()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.down()

    async def up(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/{namespace}/{name}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, self.host, self.port).start()
        self.port = int(runner.addresses[0][1])  # the same port on every up()
        self._runner, self.is_up = runner, True

    async def down(self) -> None:
        runner, self._runner, self.is_up = self._runner, None, False
        if runner is not None:
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        secret = self.secrets.get(request.path)
        if secret is None:
            self.refused_unknown += 1
            return web.json_response({"error": "unknown hook"}, status=404)
        try:
            verify(body, request.headers.get(SIGNATURE_HEADER), secret)
        except SignatureError as error:
            self.bad_signatures += 1
            return web.json_response({"error": str(error)}, status=401)
        key = request.headers.get(IDEMPOTENCY_KEY_HEADER, "").strip()
        self.received.append(Delivered(request.path, key, json.loads(body)))
        hook, self.on_request = self.on_request, None  # one-shot, after the request is kept, before the answer
        if hook is not None:
            hook()
        return web.json_response({"ok": True})

    # --- what arrived -----------------------------------------------------------------------------

    @property
    def raw(self) -> list[Delivered]:
        return list(self.received)

    def counts(self) -> collections.Counter[str]:
        return collections.Counter(d.key for d in self.received)

    def unique(self) -> list[Delivered]:
        """The first request of each key, in arrival order (a de-duplicating receiver's view)."""
        seen: set[str] = set()
        result: list[Delivered] = []
        for delivered in self.received:
            if delivered.key not in seen:
                seen.add(delivered.key)
                result.append(delivered)
        return result

    @property
    def raw_duplicates(self) -> int:
        return sum(n - 1 for n in self.counts().values())
