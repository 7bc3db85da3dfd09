"""kopf's pause state, and the one rule every writer of this operator keeps with it: no write while paused.

kopf pauses a replica while another peer of higher priority is active: it stops its watch-streams and daemons, but
keeps the pause state private (``operator_paused``, a toggle set passed to its root tasks).
:func:`kopf_pause_gate` finds that toggle set in the frames of kopf's root tasks (the grant controller and the token
scheduler wait on it and check it before each write). :func:`install` applies the rule to kopf's Event poster: an
Event is posted by the active replica only. Events are posted in the background from a queue, so those queued by
work done just before a pause would otherwise go out after it (seen in the two-replica test: two Events 0.2 s after
the standby's pause); they are dropped, as a Kubernetes controller that loses its leader lease exits and drops its
queued Events (client-go's broadcaster goes with the process). The status written before the pause stays the record.
Idempotent and per event loop (several operators in one process each find their own kopf), like
:mod:`tksh.handlers.kopfwatch`.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.clients import events

from tksh.access.controller import PauseGate
from tksh.logs import get_logger

__all__ = ["install", "kopf_pause_gate"]

_MARK = "_tksh_original_post_event"
_log = get_logger("tksh.handlers.pausegate")
_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PauseGate | None] = weakref.WeakKeyDictionary()


class _KopfGate:
    """kopf's own pause state."""

    def __init__(self, toggle: aiotoggles.ToggleSet) -> None:
        self.toggle = toggle

    def is_paused(self) -> bool:
        return self.toggle.is_on()

    async def wait_resumed(self) -> None:
        await self.toggle.wait_for(False)


def kopf_pause_gate() -> PauseGate | None:
    """The operator-wide pause toggle kopf passes to its root tasks (``daemon killer``, ``orchestrator``), found in
    the running loop; ``None`` before kopf's root tasks run (or in a kopf version that hides it differently)."""
    for task in asyncio.all_tasks():
        coro: Any = task.get_coro()
        for _ in range(4):  # kopf's guard() -> the root coroutine
            frame = getattr(coro, "cr_frame", None)
            if frame is None:
                break
            toggle = frame.f_locals.get("operator_paused")
            if isinstance(toggle, aiotoggles.ToggleSet):
                return _KopfGate(toggle)
            coro = frame.f_locals.get("coro") or getattr(coro, "cr_await", None)
    return None


def _loop_gate() -> PauseGate | None:
    """This loop's gate, looked up once: Events are posted by kopf's poster, a root task, so the others run by then."""
    loop = asyncio.get_running_loop()
    if loop not in _GATES:
        _GATES[loop] = kopf_pause_gate()
    return _GATES[loop]


def install() -> None:
    """Wrap kopf's ``post_event`` (once per process): nothing is posted while this loop's operator is paused."""
    if getattr(events, _MARK, None) is not None:
        return
    original: Callable[..., Awaitable[None]] = events.post_event
    setattr(events, _MARK, original)

    async def post_event(**kwargs: Any) -> None:
        gate = _loop_gate()
        if gate is not None and gate.is_paused():
            ref = kwargs.get("ref") or {}
            _log.info("event not posted: this replica is paused for a peer", reason=kwargs.get("reason"),
                      kind=ref.get("kind"), namespace=ref.get("namespace"), name=ref.get("name"))
            return
        await original(**kwargs)

    events.post_event = post_event
