"""A watch ``ERROR`` event other than 410 Gone must not end the operator (kopf pinned at 1.45.2; issue #7, item 2).

kopf's ``continuous_watch`` lists a resource, then follows its watch-stream. An ``ERROR`` event with code 410
("too old resource version") ends the stream, and ``infinite_watch`` sleeps ``settings.watching.reconnect_backoff``,
lists again and watches anew. Any *other* ``ERROR`` event raises ``WatchingError``, which fails the watcher and
kopf's orchestrator: every watch closes. Observed (``tests/integration/test_watch_errors.py`` without this module):
the operator's thread did not even exit, it stayed up with no watch open, reconciling nothing — silent, not
crashed, so no restart would have cured it. A real kube-apiserver sends such events: 500 ``etcdserver: request timed
out``, 429, 503 while it restarts. client-go's reflectors log them and list and watch again.

:func:`install` wraps ``continuous_watch``: such a ``WatchingError`` is logged at WARNING (masked: the Status message
may carry object names), counted in ``tksh_watch_errors_total{resource,code}`` of the operator that started the watch,
and the stream ends as after a 410, so kopf lists again (a fresh list: no change is missed) and watches anew. A server
that keeps answering errors is not hammered: from the second error in a row on a resource (no watch event in between,
and the last error less than :data:`STREAK_RESET` seconds ago) the stream waits the next of the operator's
``networking.error_backoffs`` delays first. Every other exception (cancellation, a bug) goes through untouched.

Idempotent, like :mod:`tksh.handlers.kopfscale`; ``tests/unit/test_kopfwatch.py`` checks the installed kopf still
has the shape relied on (the global lookup of ``continuous_watch`` by ``infinite_watch``, the message of the error).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import contextvars
import dataclasses
import itertools
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from kopf._cogs.aiokits import aiotasks
from kopf._cogs.clients import watching
from kopf._cogs.configs import configuration
from kopf._cogs.structs import bodies, references

from tksh.logs import get_logger, mask_text
from tksh.metrics import OperatorMetrics

__all__ = ["PREFIX", "STREAK_RESET", "WatchErrors", "install", "parse_error"]

_MARK = "_tksh_original_continuous_watch"
PREFIX = "Error in the watch-stream: "
"""How kopf's ``WatchingError`` for an ``ERROR`` event starts; the rest is the repr of the Status object."""
STREAK_RESET = 120.0
"""Seconds after the last error of a resource when the next one counts as the first again (as client-go's reflector)."""
WATCH_EVENTS = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK"})

_log = get_logger("tksh.handlers.kopfwatch")

StreamKey = tuple[str, str | None]


@dataclasses.dataclass
class WatchErrors:
    """One operator's account of watch errors: its metrics and each resource's errors in a row."""

    metrics: OperatorMetrics | None = None
    streaks: dict[StreamKey, tuple[int, float]] = dataclasses.field(default_factory=dict)

    def failed(self, key: StreamKey, now: float) -> int:
        """Record an error of ``key``'s stream; how many in a row it now has (1: the first)."""
        count, last = self.streaks.get(key, (0, now))
        count = 1 if count == 0 or now - last > STREAK_RESET else count + 1
        self.streaks[key] = (count, now)
        return count

    def recovered(self, key: StreamKey) -> None:
        self.streaks.pop(key, None)


_DEFAULT = WatchErrors()
_CURRENT: contextvars.ContextVar[WatchErrors] = contextvars.ContextVar("tksh_watch_errors", default=_DEFAULT)


def parse_error(error: BaseException) -> dict[str, Any] | None:
    """The Status object of kopf's ``WatchingError`` for an ``ERROR`` event, or None if it is not one.

    A Status the repr of which does not parse gives ``{}`` (still an ``ERROR`` event: handled, code ``unknown``).
    """
    text = str(error)
    if not isinstance(error, watching.WatchingError) or not text.startswith(PREFIX):
        return None
    try:
        status = ast.literal_eval(text[len(PREFIX):])
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return {}
    return status if isinstance(status, dict) else {}


def backoff(backoffs: float | Iterable[float], in_a_row: int) -> float:
    """The wait before relisting after the ``in_a_row``-th error in a row: none for the first, then the
    operator's API error backoffs one after the other (their last one once they run out)."""
    if in_a_row <= 1:
        return 0.0
    if isinstance(backoffs, int | float):
        return float(backoffs)
    delays = list(itertools.islice(backoffs, in_a_row - 1))
    return float(delays[-1]) if delays else 0.0


def resource_label(resource: references.Resource) -> str:
    return f"{resource.plural}.{resource.group}" if resource.group else resource.plural


async def _continuous_watch(
        *,
        settings: configuration.OperatorSettings,
        resource: references.Resource,
        namespace: references.Namespace,
        operator_pause_waiter: aiotasks.Future,
) -> AsyncIterator[watching.Bookmark | bodies.RawEvent]:
    errors = _CURRENT.get()
    label = resource_label(resource)
    key: StreamKey = (label, namespace)
    original = getattr(watching, _MARK)
    stream = original(settings=settings, resource=resource, namespace=namespace,
                      operator_pause_waiter=operator_pause_waiter)
    try:
        async with contextlib.aclosing(stream):
            async for event in stream:
                if isinstance(event, dict) and event.get("type") in WATCH_EVENTS:
                    errors.recovered(key)
                yield event
    except watching.WatchingError as exc:
        status = parse_error(exc)
        if status is None:
            raise
        code = str(status.get("code", "unknown"))
        in_a_row = errors.failed(key, time.monotonic())
        delay = backoff(settings.networking.error_backoffs, in_a_row)
        if errors.metrics is not None:
            errors.metrics.watch_errors.labels(resource=label, code=code).inc()
        _log.warning(
            "the watch-stream answered an ERROR event; listing and watching again",
            resource=label, namespace=namespace, code=code, reason=mask_text(str(status.get("reason", ""))),
            message=mask_text(str(status.get("message", ""))[:500]), in_a_row=in_a_row, retry_in=delay,
        )
        if delay > 0:
            await asyncio.sleep(delay)


def install(metrics: OperatorMetrics | None = None) -> None:
    """Wrap kopf's ``continuous_watch`` (once per process); count this context's watch errors into ``metrics``.

    Called while building an operator (in the task that then runs ``kopf.operator``): every kopf task started from
    there inherits the context, so each operator in a process counts its own errors.
    """
    if getattr(watching, _MARK, None) is None:
        setattr(watching, _MARK, watching.continuous_watch)  # the original, kept where a re-import finds it
        watching.continuous_watch = _continuous_watch
    if metrics is not None:
        _CURRENT.set(WatchErrors(metrics))
