"""Small local HTTP targets whose behaviour can be switched at runtime: what probes are pointed at.

The sandbox starts one healthy and one failing target so monitoring has something to watch;
tests flip a target from healthy to failing (or slow) to drive incidents and back to resolve them.
Real aiohttp servers (``AppRunner`` + ``TCPSite``) on the running loop, 127.0.0.1 by default.

Every path answers with the current behaviour (``/`` and ``/healthz`` are what probes use):

* ``healthy()``  — 200, ``{"status": "ok", "target": <name>}``;
* ``failing(status=503)`` — that status, ``{"status": "failing", "target": <name>}``;
* ``slow(seconds, status=200)`` — the healthy (or given status) answer after a delay;
* ``body(text, status=200, content_type="text/plain")`` — exactly that body.

Each call replaces the whole behaviour. Requests still being delayed by ``slow`` are released
when the behaviour changes or the target closes (answering with the new behaviour), so tests
never wait out a long delay and closing never hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from typing import Self

from aiohttp import web

from tksh.aio import Service

__all__ = ["Behaviour", "HTTPTarget", "start_sandbox_targets"]


@dataclasses.dataclass(frozen=True)
class Behaviour:
    """What a target answers: status, body, content type, and a delay before answering."""

    status: int = 200
    text: str | None = None  # None: the standard JSON body for the status
    content_type: str = "application/json"
    delay: float = 0.0


class HTTPTarget(Service):
    """``async with HTTPTarget("healthy") as target: ... target.failing(503) ... target.hits``."""

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.hits = 0  # requests received (counted on arrival, before any delay)
        self.behaviour = Behaviour()
        self._changed = asyncio.Event()  # set and replaced on every switch: wakes delayed requests
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (no trailing slash); valid once started."""
        return f"http://{self.host}:{self.port}"

    # --- behaviour switches ----------------------------------------------------------------------

    def _switch(self, behaviour: Behaviour) -> Self:
        self.behaviour = behaviour
        self._changed.set()
        self._changed = asyncio.Event()
        return self

    def healthy(self) -> Self:
        return self._switch(Behaviour())

    def failing(self, status: int = 503) -> Self:
        if not 400 <= status <= 599:
            raise ValueError(f"a failing target answers 4xx/5xx, not {status}")
        return self._switch(Behaviour(status=status))

    def slow(self, seconds: float, status: int = 200) -> Self:
        if seconds < 0:
            raise ValueError("the delay cannot be negative")
        return self._switch(Behaviour(status=status, delay=seconds))

    def body(self, text: str, status: int = 200, content_type: str = "text/plain") -> Self:
        return self._switch(Behaviour(status=status, text=text, content_type=content_type))

    # --- serving ---------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        behaviour, changed = self.behaviour, self._changed
        if behaviour.delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=behaviour.delay)
            behaviour = self.behaviour  # released early by a switch: answer as the target is now
        if behaviour.text is not None:
            text = behaviour.text
        else:
            state = "ok" if behaviour.status < 400 else "failing"
            text = json.dumps({"status": state, "target": self.name})
        return web.Response(status=behaviour.status, text=text, content_type=behaviour.content_type)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._switch(self.behaviour)  # release delayed requests so that shutdown does not wait for them
        await runner.cleanup()

    def __repr__(self) -> str:
        return f"<HTTPTarget {self.name} {self.url} status={self.behaviour.status} hits={self.hits}>"


async def start_sandbox_targets(
    host: str = "127.0.0.1", healthy_port: int = 0, failing_port: int = 0
) -> tuple[HTTPTarget, HTTPTarget]:
    """Start a healthy and a failing (503) target; the caller closes both (``await t.close()``)."""
    healthy = HTTPTarget("healthy", host=host, port=healthy_port)
    await healthy.start()
    try:
        failing = HTTPTarget("failing", host=host, port=failing_port).failing(503)
        await failing.start()
    except BaseException:
        await healthy.close()
        raise
    return healthy, failing
