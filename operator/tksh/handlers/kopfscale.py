"""Three fixes to kopf (pinned at 1.45.2) for many objects of one kind: 100,000 AccessGrants (issue #7, item 5).

1. **Index readiness without a wake-up storm** (:func:`install`). kopf holds every handler back until every
   ``@kopf.index`` is filled from the initial listing: during a listing (a start, a peering resume, a flood of new
   objects right after one) it adds one toggle per listed object to the operator-wide ``ToggleSet`` and drops it
   once that object is indexed, while each object's worker waits on the set's condition for all toggles to be
   gone. kopf's ``make_toggle`` and ``drop_toggle`` wake *every* waiter on each call (``notify_all``), and every
   woken waiter re-takes the condition's lock and re-checks the whole set: with N objects listed that is O(N²)
   wake-ups — measured, 2,000 grants held all handlers back for 33 s, and 100,000 would take hours. The fix keeps
   kopf's semantics (nothing runs before the indexes are complete) and wakes the waiters only when the set's
   overall state changes: when the last toggle is dropped, once, instead of on every toggle.

2. **The waiters let through a few at a time** (:class:`_Turnstile`). When the set does turn on after a listing,
   every listed object's worker was waiting: all of them became runnable at once, and asyncio ran them all — each
   object's indexing, handlers and diff, about a millisecond each — in *one* turn of the event loop. Measured on a
   restart over 20,000 grants: one turn of 17.7 s, during which ``/healthz`` did not answer (the liveness probe
   gives up after 3 s) and no peering keep-alive could be written; 100,000 grants would stall the loop for about
   90 s, longer than the peering lifetime (60 s), so the standby would take over from a replica that is still
   acting, and the liveness probe would restart the operator in the middle of its resync, again and again. A
   waiter that had to wait now passes a turnstile that lets 64 waiters on per turn of the loop, so a turn stays
   short (tens of milliseconds) and everything else — probes, keep-alives, the grant controller — runs in between.

3. **Quiet successes of event handlers** (:class:`QuietEventSuccess`). kopf logs ``Handler 'x' succeeded.`` at
   INFO for every ``@kopf.on.event`` handler on every watch event (its "local" object logger, never posted as a
   Kubernetes Event). With two such handlers on AccessGrants and four events per grant that is 800,000 lines for
   100,000 grants, and about 7% of the operator's CPU. The filter drops exactly those lines; failures and
   retries of event handlers, and every line of change handlers and daemons, are kept.

All are idempotent and checked by ``tests/unit/test_kopfscale.py`` against the installed kopf, so a kopf upgrade
that changes these internals fails a test instead of silently losing the fix.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Iterable
from typing import Any

from kopf._cogs.aiokits import aiotoggles

__all__ = ["QuietEventSuccess", "install"]

_MARK = "_tksh_scale_fix"
_TURNSTILE = "_tksh_turnstile"
BATCH = 64
"""Waiters of a ToggleSet let on per turn of the event loop once the set is in the state they wait for."""


class _Turnstile:
    """Lets queued waiters on :data:`BATCH` at a time, one batch per turn of the loop (``call_soon``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: collections.deque[asyncio.Future[None]] = collections.deque()
        self.scheduled = False

    def enter(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self.loop.create_future()
        self.queue.append(future)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._release)
        return future

    def _release(self) -> None:
        released = 0
        while self.queue and released < BATCH:
            future = self.queue.popleft()
            if not future.done():  # a cancelled waiter is skipped
                future.set_result(None)
                released += 1
        if self.queue:
            self.loop.call_soon(self._release)
        else:
            self.scheduled = False


async def _wait_for(self: aiotoggles.ToggleSet, __state: bool) -> None:
    state = bool(__state)
    if self.is_on() == state:
        return
    async with self._condition:
        await self._condition.wait_for(lambda: self.is_on() == state)
    loop = asyncio.get_running_loop()
    turnstile: _Turnstile | None = self.__dict__.get(_TURNSTILE)
    if turnstile is None or turnstile.loop is not loop:
        turnstile = self.__dict__[_TURNSTILE] = _Turnstile(loop)
    await turnstile.enter()


async def _make_toggle(self: aiotoggles.ToggleSet, __val: bool = False, *,
                       name: str | None = None) -> aiotoggles.Toggle:
    toggle = aiotoggles.Toggle(__val, name=name, condition=self._condition)
    async with self._condition:
        before = self.is_on()
        self._toggles.add(toggle)
        if self.is_on() != before:
            self._condition.notify_all()
    return toggle


async def _drop_toggle(self: aiotoggles.ToggleSet, toggle: aiotoggles.Toggle) -> None:
    async with self._condition:
        before = self.is_on()
        self._toggles.discard(toggle)
        if self.is_on() != before:
            self._condition.notify_all()


async def _drop_toggles(self: aiotoggles.ToggleSet, toggles: Iterable[aiotoggles.Toggle]) -> None:
    async with self._condition:
        before = self.is_on()
        self._toggles.difference_update(toggles)
        if self.is_on() != before:
            self._condition.notify_all()


def install() -> None:
    """Patch kopf's ``ToggleSet`` (once per process) and quieten event handlers' successes (see the module)."""
    cls: Any = aiotoggles.ToggleSet
    if not getattr(cls, _MARK, False):
        cls.make_toggle, cls.drop_toggle, cls.drop_toggles = _make_toggle, _drop_toggle, _drop_toggles
        cls.wait_for = _wait_for
        setattr(cls, _MARK, True)
    objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, QuietEventSuccess) for f in objects.filters):
        objects.addFilter(QuietEventSuccess())


class QuietEventSuccess(logging.Filter):
    """Drops kopf's INFO ``Handler '...' succeeded.`` of event-watching and index handlers (not posted as Events)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and getattr(record, "k8s_skip", False)
                    and isinstance(record.msg, str) and record.msg.startswith("Handler ")
                    and record.msg.endswith(" succeeded."))
