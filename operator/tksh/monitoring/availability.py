"""Availability by time, with ``Unknown`` kept apart from downtime (§33–34).

A target's history is a sequence of state intervals (``Up``, ``Down``, ``Unknown``). Uptime over a
period is ``up / (up + down)`` (a ratio, 0 to 1, in ``status.availability``): time in ``Unknown``
(the prober impaired, monitoring paused) and time not covered by any interval (before monitoring
began, beyond the retention) is neither up nor down; it is reported separately as ``unknown`` and
leaves the uptime undefined (``None``) when it is all there is.

The history survives operator restarts in ``status.availability.history``
(:meth:`AvailabilityLog.availability` writes it, :meth:`AvailabilityLog.from_status` reads it back,
the time the operator was away counted as ``Unknown``).

Time to restore is per incident, ``recovered_at - started_at``; the summary gives the mean and
the percentiles p50, p90, p99 (nearest-rank: always a value some incident actually had, so the
p99 of a few incidents is the worst of them, not an interpolation).

:class:`AvailabilityLog` keeps one target's history in bounded memory: intervals and restores
that ended before ``retention`` (30 days + a day's margin) are dropped as new ones come, and at
most ``max_intervals`` are kept whatever happens.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tksh.monitoring.machine import State
from tksh.resources.common import MAX_HISTORY, Availability, AvailabilityInterval

__all__ = [
    "DAY",
    "RETENTION",
    "AvailabilityLog",
    "Interval",
    "RestoreStats",
    "Uptime",
    "percentile",
    "restore_stats",
    "uptime",
]

DAY = datetime.timedelta(days=1)
RETENTION = 31 * DAY
"""30 days for the longest standard window, plus a day's margin."""


@dataclasses.dataclass(frozen=True, slots=True)
class Interval:
    """The target was in ``state`` from ``start`` until ``end`` (``None``: still is)."""

    state: State
    start: datetime.datetime
    end: datetime.datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Uptime:
    """Seconds up, down and unknown within ``[start, end)``; ``percent`` is ``None`` when never up or down."""

    start: datetime.datetime
    end: datetime.datetime
    up: float
    down: float
    unknown: float

    @property
    def percent(self) -> float | None:
        ratio = self.ratio
        return None if ratio is None else 100.0 * ratio

    @property
    def ratio(self) -> float | None:
        """``up / (up + down)``, 0 to 1 (``status.availability.uptime24h``/``uptime30d``)."""
        known = self.up + self.down
        return self.up / known if known > 0 else None


@dataclasses.dataclass(frozen=True, slots=True)
class RestoreStats:
    """Times to restore (seconds) of the incidents recovered in a period; ``None`` without any."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None


def uptime(
    intervals: Iterable[Interval],
    start: datetime.datetime,
    end: datetime.datetime,
    *,
    now: datetime.datetime | None = None,
) -> Uptime:
    """Up, down and unknown time within ``[start, end)``; an open interval lasts until ``now`` (default ``end``).

    Intervals are expected not to overlap (an :class:`AvailabilityLog` never makes them overlap).
    """
    if end < start:
        raise ValueError("the period ends before it starts")
    until = end if now is None else min(now, end)
    seconds = {"Up": 0.0, "Down": 0.0, "Unknown": 0.0}
    for interval in intervals:
        lo = max(interval.start, start)
        hi = min(interval.end if interval.end is not None else until, until)
        if hi > lo:
            seconds[interval.state] += (hi - lo).total_seconds()
    total = (end - start).total_seconds()
    return Uptime(start, end, seconds["Up"], seconds["Down"], max(0.0, total - seconds["Up"] - seconds["Down"]))


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of non-empty ``values``."""
    if not values:
        raise ValueError("no values")
    if not 0 < q <= 100:
        raise ValueError("q must be in (0, 100]")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def restore_stats(durations: Iterable[float]) -> RestoreStats:
    """Mean, p50, p90, p99 and max of times to restore."""
    values = sorted(durations)
    if not values:
        return RestoreStats(0, None, None, None, None, None)
    return RestoreStats(
        count=len(values),
        mean=sum(values) / len(values),
        p50=percentile(values, 50),
        p90=percentile(values, 90),
        p99=percentile(values, 99),
        max=values[-1],
    )


class AvailabilityLog:
    """One target's state history and restores, in bounded memory.

    ``record(state, at)`` each time the state changes (from the scheduler's transitions) and
    ``record_restore(started_at, recovered_at)`` when an incident recovers. Timestamps are expected
    in order; one earlier than the current interval's start is taken as that start (a clock step
    back never makes intervals overlap).
    """

    def __init__(
        self,
        intervals: Iterable[Interval] = (),
        restores: Iterable[tuple[datetime.datetime, datetime.datetime]] = (),
        *,
        retention: datetime.timedelta = RETENTION,
        max_intervals: int = 10_000,
    ) -> None:
        self.retention = retention
        self.max_intervals = max_intervals
        self._intervals: collections.deque[Interval] = collections.deque(intervals)
        self._restores: collections.deque[tuple[datetime.datetime, datetime.datetime]] = collections.deque(restores)

    @property
    def intervals(self) -> tuple[Interval, ...]:
        return tuple(self._intervals)

    @property
    def restores(self) -> tuple[tuple[datetime.datetime, datetime.datetime], ...]:
        """``(started_at, recovered_at)`` of the incidents recovered within the retention."""
        return tuple(self._restores)

    @property
    def state(self) -> State:
        return self._intervals[-1].state if self._intervals else "Unknown"

    @property
    def since(self) -> datetime.datetime | None:
        return self._intervals[-1].start if self._intervals else None

    def record(self, state: State, at: datetime.datetime) -> None:
        """The target is in ``state`` from ``at`` on (a repeated state is no change).

        A state that would last no time (changed again at the same instant) leaves no interval behind.
        """
        if self._intervals:
            current = self._intervals[-1]
            if current.state == state:
                return
            at = max(at, current.start)
            if at == current.start:  # zero length: replaced, and merged with the one before if the same
                self._intervals.pop()
                if self._intervals and self._intervals[-1].state == state:
                    self._intervals[-1] = dataclasses.replace(self._intervals[-1], end=None)
                    return
                self._intervals.append(Interval(state, at))
                return
            self._intervals[-1] = dataclasses.replace(current, end=at)
        self._intervals.append(Interval(state, at))
        self.compact(at)

    def record_restore(self, started_at: datetime.datetime, recovered_at: datetime.datetime) -> None:
        """An incident that started at ``started_at`` recovered at ``recovered_at``."""
        self._restores.append((started_at, max(started_at, recovered_at)))
        self.compact(recovered_at)

    def compact(self, now: datetime.datetime) -> None:
        """Drop what ended before ``now - retention`` (and the oldest beyond ``max_intervals``)."""
        cutoff = now - self.retention
        while len(self._intervals) > 1 and (
            len(self._intervals) > self.max_intervals or (self._intervals[0].end or now) < cutoff
        ):
            self._intervals.popleft()
        while self._restores and (len(self._restores) > self.max_intervals or self._restores[0][1] < cutoff):
            self._restores.popleft()

    def uptime(self, start: datetime.datetime, end: datetime.datetime, now: datetime.datetime | None = None) -> Uptime:
        """Uptime over a custom period (see :func:`uptime`)."""
        return uptime(self._intervals, start, end, now=now)

    def uptime_24h(self, now: datetime.datetime) -> Uptime:
        return self.uptime(now - DAY, now, now)

    def uptime_30d(self, now: datetime.datetime) -> Uptime:
        return self.uptime(now - 30 * DAY, now, now)

    def times_to_restore(self, start: datetime.datetime, end: datetime.datetime) -> list[float]:
        """Seconds to restore of each incident recovered within ``[start, end)``, in order."""
        return [(rec - began).total_seconds() for began, rec in self._restores if start <= rec < end]

    def restore_stats(self, start: datetime.datetime, end: datetime.datetime) -> RestoreStats:
        return restore_stats(self.times_to_restore(start, end))

    def availability(self, now: datetime.datetime, last_checked_at: datetime.datetime | None = None) -> Availability:
        """The ``status.availability`` of the target: state, uptime ratios (6 decimals), the 30-day down and
        unknown seconds, and the history (the intervals within the retention, the newest ``MAX_HISTORY``)."""
        self.compact(now)
        day, month = self.uptime_24h(now), self.uptime_30d(now)
        kept = [i for i in self._intervals if (i.end or now) >= now - self.retention][-MAX_HISTORY:]
        return Availability(
            state=self.state,
            since=self.since,
            last_checked_at=last_checked_at,
            uptime24h=None if day.ratio is None else round(day.ratio, 6),
            uptime30d=None if month.ratio is None else round(month.ratio, 6),
            downtime_seconds30d=round(month.down),
            unknown_seconds30d=round(month.unknown),
            history=[AvailabilityInterval(state=i.state, start=i.start, end=i.end) for i in kept],
        )

    @classmethod
    def from_status(
        cls, availability: Mapping[str, Any] | None, now: datetime.datetime, **kwargs: Any
    ) -> AvailabilityLog:
        """The log kept in a ``status.availability`` (its ``history``), after an operator restart at ``now``.

        The time from the last stored probe (``lastCheckedAt``, or the end of the history) until ``now``
        was not watched: it is ``Unknown``, never counted as up or down.
        """
        stored = Availability.model_validate(availability or {})
        intervals = [Interval(i.state, i.start, i.end) for i in stored.history]
        log = cls(intervals, **kwargs)
        if intervals:
            last = intervals[-1]
            seen = max(moment for moment in (last.end, stored.last_checked_at, last.start) if moment is not None)
            if last.end is not None:
                log._intervals.append(Interval("Unknown", last.end))
            elif last.state != "Unknown" and seen < now:
                log._intervals[-1] = dataclasses.replace(last, end=seen)
                log._intervals.append(Interval("Unknown", seen))
        return log

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, to keep the history across operator restarts."""
        return {
            "intervals": [
                {"state": i.state, "start": i.start.isoformat(), "end": i.end.isoformat() if i.end else None}
                for i in self._intervals
            ],
            "restores": [[began.isoformat(), rec.isoformat()] for began, rec in self._restores],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> AvailabilityLog:
        """The log saved by :meth:`to_dict`."""
        parse = datetime.datetime.fromisoformat
        if any(i.get("state") not in ("Up", "Down", "Unknown") for i in data.get("intervals", [])):
            raise ValueError("an interval's state must be Up, Down or Unknown")
        intervals = [
            Interval(i["state"], parse(i["start"]), parse(i["end"]) if i.get("end") else None)
            for i in data.get("intervals", [])
        ]
        restores = [(parse(began), parse(rec)) for began, rec in data.get("restores", [])]
        return cls(intervals, restores, **kwargs)
