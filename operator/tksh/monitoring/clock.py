"""A wall clock that can be moved forward: the monitoring's time source in tests of the one-hour SLA.

The operator takes its monitoring time from ``OperatorConfig.clock`` (the system clock by default).
A test gives it an :class:`OffsetClock` and calls :meth:`OffsetClock.advance` (from any thread) to
move the incident's time 15 minutes on, then 15 more...: reminders, the breach and the verdict follow
without sleeping for an hour. Real time keeps flowing underneath, so sockets, the API server and
timeouts behave as usual.
"""

from __future__ import annotations

import datetime
import threading

from tksh.monitoring.scheduler import utc_now

__all__ = ["OffsetClock"]


class OffsetClock:
    """``now() = the system clock + offset``; the offset only grows (time never goes back)."""

    def __init__(self, start: datetime.datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = datetime.timedelta(0) if start is None else start - utc_now()

    def __call__(self) -> datetime.datetime:
        return utc_now() + self._offset

    @property
    def offset(self) -> datetime.timedelta:
        return self._offset

    def advance(self, delta: datetime.timedelta | float) -> datetime.datetime:
        """Move the clock forward by ``delta`` (a timedelta or seconds); returns the new now."""
        step = delta if isinstance(delta, datetime.timedelta) else datetime.timedelta(seconds=delta)
        if step < datetime.timedelta(0):
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += step
        return self()
