"""The operator's operational HTTP endpoints: ``/healthz``, ``/readyz`` and ``/metrics``.

Liveness (``/healthz``) answers 200 while the event loop runs and kopf's core is intact, and 503 with the reason
once kopf's core has failed (one of its root tasks ended although no stop was asked for: the operator then reconciles
nothing and is on its way out; see :mod:`tksh.run`). It only reads a flag: no API call, so it keeps answering under
load. Readiness follows kopf's ready flag, which kopf sets once it has logged in and started watching, so a
Deployment's rollout waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tksh.metrics import OperatorMetrics


class OpsServer:
    def __init__(
        self,
        metrics: OperatorMetrics,
        ready: Callable[[], bool],
        host: str = "0.0.0.0",
        port: int = 8080,
        failure: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._metrics = metrics
        self._ready = ready
        self._failure = failure
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port = port

    async def __aenter__(self) -> OpsServer:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._serve_metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server
        if isinstance(server, asyncio.base_events.Server) and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        failure = self._failure()
        if failure is not None:
            return web.json_response({"status": "failing", "reason": failure}, status=503)
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        if self._ready():
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "starting"}, status=503)

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        body = self._metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
