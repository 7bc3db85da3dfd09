"""One work queue and one timer heap for every AccessGrant of an operator: no task, no poll per grant.

The operator's grant handlers (``tksh.handlers.grants``) feed it and give it the reconcile of one grant
(``process``). The pieces:

* **a work queue keyed by grant id** (``namespace/name``): :meth:`GrantController.offer` adds a grant with
  the body just seen on the watch-stream (or none: ``process`` reads it). A grant is queued at most once;
  a grant offered while a worker handles it is handled again right after, with the newest body. So each
  grant has one writer at a time, and a burst of events for it costs one reconcile.
* **one timer heap**: :meth:`GrantController.schedule` keeps, per grant, the next instant its reconcile
  asked for (agreement start or end, grounds' end, a scheduled termination, an e-mail retry). One task
  sleeps until the earliest and queues what is due. At rest nothing wakes but that task at the next
  instant (at least once an hour): no API request, no polling.
* **a few workers** take grants off the queue and run ``process``; it returns the grant's next instant.
  A failure is retried after a backoff (doubling per grant, at most five minutes).
* **a pause gate**: while the operator is paused (kopf peering: another replica is active), workers and
  the timer wait; nothing is written. What was queued stays queued.

No Kubernetes here: ids, bodies (plain mappings) and instants.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from tksh.logs import get_logger

__all__ = ["GrantController", "PauseGate"]

Process = Callable[[str, Mapping[str, Any] | None], Awaitable[datetime.datetime | None]]
_MAX_SLEEP = 3600.0
_MAX_RETRY = 300.0
_STOP_WAIT = 10.0


class PauseGate(Protocol):
    """Whether the operator may act now (the active peer), and a way to wait until it may."""

    def is_paused(self) -> bool: ...

    async def wait_resumed(self) -> None: ...


class _Open:
    """No peering: never paused."""

    def is_paused(self) -> bool:
        return False

    async def wait_resumed(self) -> None:
        return None


class GrantController:
    """See the module description. ``await run()`` until cancelled (``async with`` runs it in a task)."""

    def __init__(self, process: Process, *, workers: int = 4, gate: PauseGate | None = None,
                 retry: float = 2.0, clock: Callable[[], float] = time.time) -> None:
        self.process = process
        self.gate: PauseGate = gate or _Open()
        self.workers = workers
        self.retry = retry
        self.clock = clock
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._active: set[str] = set()
        self._again: set[str] = set()
        self._bodies: dict[str, Mapping[str, Any]] = {}
        self._due: dict[str, float] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._changed = asyncio.Event()
        self._failures: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._log = get_logger("tksh.access.controller")
        self.processed = 0
        """Reconciles run (for tests and measurements)."""

    # --- feeding ------------------------------------------------------------------------------------------------------

    def offer(self, key: str, body: Mapping[str, Any] | None = None) -> None:
        """Queue ``key`` (with the newest ``body`` seen, if any)."""
        if body is not None:
            self._bodies[key] = body
        if key in self._active:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def schedule(self, key: str, at: datetime.datetime | None) -> None:
        """Reconcile ``key`` again at ``at`` (replacing its earlier instant); ``None``: no instant."""
        if at is None:
            self._due.pop(key, None)
            return
        moment = at.timestamp()
        if self._due.get(key) == moment:
            return
        self._due[key] = moment
        heapq.heappush(self._heap, (moment, next(self._seq), key))
        if self._heap[0][2] == key:
            self._changed.set()

    def forget(self, key: str) -> None:
        """The grant is gone: drop its instant and any body kept for it."""
        self._due.pop(key, None)
        self._bodies.pop(key, None)
        self._failures.pop(key, None)

    def busy(self, key: str) -> bool:
        """Whether ``key`` is queued or being reconciled (an offer then only refreshes its body)."""
        return key in self._queued or key in self._active

    @property
    def queued(self) -> int:
        return len(self._queued) + len(self._again)

    @property
    def scheduled(self) -> int:
        return len(self._due)

    def due_at(self, key: str) -> datetime.datetime | None:
        moment = self._due.get(key)
        return None if moment is None else datetime.datetime.fromtimestamp(moment, datetime.UTC)

    # --- running ------------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._timer(), name="tksh-grants-timer")
            for n in range(self.workers):
                group.create_task(self._worker(), name=f"tksh-grants-worker-{n}")

    def start(self) -> None:
        """Run in a background task of the current loop (stopped by :meth:`stop`)."""
        if not self._tasks:
            self._tasks.append(asyncio.create_task(self.run(), name="tksh-grant-controller"))

    async def stop(self) -> None:
        """Cancel the workers and the timer; wait for them (at most ten seconds)."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=_STOP_WAIT)
        self._tasks.clear()

    @staticmethod
    def _check_cancelled() -> None:
        """Python 3.11's ``asyncio.wait_for`` (used by aiohttp and aiosmtplib) can swallow a cancellation that
        arrives as the awaited call completes; a task that was asked to stop stops here all the same."""
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError

    async def _timer(self) -> None:
        while True:
            self._check_cancelled()
            await self.gate.wait_resumed()
            now = self.clock()
            while self._heap and self._heap[0][0] <= now:
                moment, _, key = heapq.heappop(self._heap)
                if self._due.get(key) == moment:
                    del self._due[key]
                    self.offer(key)
            self._changed.clear()
            delay = min(self._heap[0][0] - now, _MAX_SLEEP) if self._heap else _MAX_SLEEP
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=max(delay, 0.0))

    async def _worker(self) -> None:
        while True:
            self._check_cancelled()
            key = await self._queue.get()
            await self.gate.wait_resumed()
            self._queued.discard(key)
            self._active.add(key)
            body = self._bodies.pop(key, None)
            wake: datetime.datetime | None
            try:
                wake = await self.process(key, body)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                delay = min(self.retry * 2 ** (failures - 1), _MAX_RETRY)
                self._log.warning("grant reconcile failed; retrying", obj=key, error=type(error).__name__,
                                  detail=str(error)[:300], retry_in=delay)
                wake = datetime.datetime.fromtimestamp(self.clock() + delay, datetime.UTC)
            finally:
                self._active.discard(key)
                self.processed += 1
            self.schedule(key, wake)
            if key in self._again:
                self._again.discard(key)
                self.offer(key)
