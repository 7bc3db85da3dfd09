"""One task for many deadlines: :class:`DueQueue`, the token issuer's shared scheduler (no task per grant)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import heapq
import logging
from collections.abc import Awaitable, Callable

from tksh.access.controller import PauseGate

__all__ = ["DueQueue"]

_log = logging.getLogger("tksh.handlers.tokens")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class DueQueue:
    """Deadlines per key in one heap and one task: ``act(key)`` runs when a key's deadline passes (at most
    ``concurrency`` at once). Setting a key again replaces its deadline; ``None`` removes it. With a ``gate``, nothing
    runs while the replica is paused (the active one acts; kopf relists for this one when it resumes)."""

    def __init__(self, act: Callable[[str], Awaitable[None]], *, concurrency: int = 8) -> None:
        self._act = act
        self.gate: PauseGate | None = None
        self._due: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._running: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._due)

    def due(self, key: str) -> datetime.datetime | None:
        at = self._due.get(key)
        return None if at is None else datetime.datetime.fromtimestamp(at, datetime.UTC)

    def set(self, key: str, at: datetime.datetime | None) -> None:
        if at is None:
            self._due.pop(key, None)
            return
        stamp = at.timestamp()
        self._due[key] = stamp
        if not self._heap or stamp < self._heap[0][0]:
            self._wake.set()
        heapq.heappush(self._heap, (stamp, key))
        if len(self._heap) > 2 * len(self._due) + 1024:  # drop replaced deadlines
            self._heap = [(t, k) for k, t in self._due.items()]
            heapq.heapify(self._heap)

    async def run(self) -> None:
        try:
            while True:
                if self.gate is not None and self.gate.is_paused():
                    await self.gate.wait_resumed()
                moment = _now().timestamp()
                while self._heap and self._heap[0][0] <= moment:
                    stamp, key = heapq.heappop(self._heap)
                    if self._due.get(key) != stamp:
                        continue  # replaced or removed
                    del self._due[key]
                    await self._slots.acquire()
                    task = asyncio.create_task(self._one(key), name=f"tksh-token {key}")
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
                self._wake.clear()
                delay = min(self._heap[0][0] - _now().timestamp(), 60.0) if self._heap else 60.0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(delay, 0.0))
        finally:
            for task in list(self._running):
                task.cancel()

    async def _one(self, key: str) -> None:
        try:
            await self._act(key)
        except Exception:  # a bug must not stop the scheduler; act() reports its own failures
            _log.exception("token reconcile failed for %s", key)
        finally:
            self._slots.release()
