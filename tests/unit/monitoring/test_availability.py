"""Availability by time: uptime with Unknown apart from downtime, time to restore, bounded history."""

from __future__ import annotations

import datetime

import pytest

from tksh.monitoring import AvailabilityLog, Interval, State, percentile, restore_stats, uptime
from tksh.monitoring.availability import RestoreStats

T0 = datetime.datetime(2026, 7, 1, tzinfo=datetime.UTC)
S = datetime.timedelta(seconds=1)
DAY = datetime.timedelta(days=1)


def at(seconds: float) -> datetime.datetime:
    return T0 + seconds * S


def intervals(*spans: tuple[State, float, float | None]) -> list[Interval]:
    return [Interval(state, at(start), None if end is None else at(end)) for state, start, end in spans]


@pytest.mark.parametrize(
    ("spans", "now", "expected"),
    [
        ([("Up", 0, 100)], None, (100, 0, 0, 100.0)),
        ([("Up", 0, 50), ("Down", 50, 75), ("Up", 75, 100)], None, (75, 25, 0, 75.0)),
        ([("Up", 0, 40), ("Unknown", 40, 60), ("Down", 60, 80), ("Up", 80, 100)], None, (60, 20, 20, 75.0)),
        ([("Unknown", 0, 100)], None, (0, 0, 100, None)),
        ([], None, (0, 0, 100, None)),
        ([("Up", 50, None)], None, (50, 0, 50, 100.0)),  # monitoring began at 50: before is unknown
        ([("Up", 0, 90), ("Down", 90, None)], 95, (90, 5, 5, 90 / 95 * 100)),  # open until now; the rest unknown
        ([("Down", -500, 10), ("Up", 10, 200)], None, (90, 10, 0, 90.0)),  # clipped to the period
        ([("Down", 0, 100)], None, (0, 100, 0, 0.0)),
    ],
    ids=["up", "outage", "unknown-apart", "all-unknown", "no-data", "late-start", "open", "clipped", "down"],
)
def test_uptime_over_a_period(
    spans: list[tuple[State, float, float | None]],
    now: float | None,
    expected: tuple[float, float, float, float | None],
) -> None:
    result = uptime(intervals(*spans), at(0), at(100), now=None if now is None else at(now))
    assert (result.up, result.down, result.unknown) == pytest.approx(expected[:3])
    assert result.percent == (None if expected[3] is None else pytest.approx(expected[3]))


def test_a_period_must_not_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="ends before"):
        uptime([], at(10), at(0))


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([5.0], 50, 5.0), ([1.0, 2.0, 3.0, 4.0], 50, 2.0), ([1.0, 2.0, 3.0, 4.0], 90, 4.0), ([3.0, 1.0, 2.0], 100, 3.0)],
)
def test_percentiles_are_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def test_percentile_needs_values_and_a_sane_rank() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 0)


@pytest.mark.parametrize(
    ("durations", "expected"),
    [
        ([], RestoreStats(0, None, None, None, None, None)),
        ([600.0], RestoreStats(1, 600.0, 600.0, 600.0, 600.0, 600.0)),
        ([float(n) for n in range(100, 0, -1)], RestoreStats(100, 50.5, 50.0, 90.0, 99.0, 100.0)),
        ([60.0, 60.0, 60.0, 7200.0], RestoreStats(4, 1845.0, 60.0, 7200.0, 7200.0, 7200.0)),  # the mean hides it
    ],
)
def test_time_to_restore_statistics(durations: list[float], expected: RestoreStats) -> None:
    assert restore_stats(durations) == expected


def test_the_log_turns_state_changes_into_intervals() -> None:
    log = AvailabilityLog()
    assert (log.state, log.since) == ("Unknown", None)
    log.record("Up", at(0))
    log.record("Up", at(10))  # no change
    log.record("Down", at(3600))
    log.record("Unknown", at(4200))
    log.record("Up", at(4800))
    assert log.intervals == tuple(
        intervals(("Up", 0, 3600), ("Down", 3600, 4200), ("Unknown", 4200, 4800), ("Up", 4800, None))
    )
    now = at(DAY.total_seconds())
    day = log.uptime_24h(now)
    assert (day.down, day.unknown) == (600, 600)
    assert day.percent == pytest.approx(100 * (86400 - 1200) / (86400 - 600))
    month = log.uptime_30d(now)
    assert month.unknown == pytest.approx(29 * 86400 + 600)  # before monitoring began: unknown, not down
    assert month.percent == day.percent
    assert log.uptime(at(3600), at(4200)).percent == 0.0
    availability = log.availability(now, last_checked_at=now)
    assert (availability.state, availability.since, availability.last_checked_at) == ("Up", at(4800), now)
    assert availability.uptime24h == availability.uptime30d == round(85200 / 85800, 6)


def test_a_clock_step_back_never_makes_intervals_overlap() -> None:
    log = AvailabilityLog()
    log.record("Up", at(100))
    log.record("Down", at(50))
    assert log.intervals == tuple(intervals(("Down", 100, None)))  # the Up that lasted no time leaves nothing
    log.record("Up", at(200))
    log.record("Unknown", at(200))
    log.record("Up", at(200))
    assert log.intervals == tuple(intervals(("Down", 100, 200), ("Up", 200, None)))


def test_times_to_restore_are_kept_per_incident() -> None:
    log = AvailabilityLog()
    log.record_restore(at(0), at(600))
    log.record_restore(at(7200), at(7200 + 4000))
    assert log.times_to_restore(at(0), at(86400)) == [600.0, 4000.0]
    assert log.times_to_restore(at(601), at(86400)) == [4000.0]  # by recovery time
    assert log.restore_stats(at(0), at(86400)).max == 4000.0


def test_memory_is_bounded_by_the_retention() -> None:
    log = AvailabilityLog()
    moment = T0
    for n in range(60 * 24):  # 60 days of one outage an hour
        log.record("Down" if n % 2 else "Up", moment)
        log.record_restore(moment, moment + 30 * S)
        moment += datetime.timedelta(hours=1)
    oldest = log.intervals[0]
    assert oldest.end is not None and oldest.end >= moment - datetime.timedelta(days=31, hours=1)
    assert len(log.intervals) <= 31 * 24 + 2
    assert len(log.restores) <= 31 * 24 + 1
    assert log.uptime_30d(moment).unknown == 0  # the 30-day window is still whole


def test_memory_is_bounded_by_the_count_too() -> None:
    log = AvailabilityLog(max_intervals=100)
    for n in range(1000):
        log.record("Down" if n % 2 else "Up", at(n))
    assert len(log.intervals) == 100 and log.intervals[-1].start == at(999)


def test_the_log_survives_a_round_trip() -> None:
    log = AvailabilityLog()
    log.record("Up", at(0))
    log.record("Down", at(100))
    log.record_restore(at(100), at(200))
    log.record("Up", at(200))
    again = AvailabilityLog.from_dict(log.to_dict())
    assert (again.intervals, again.restores) == (log.intervals, log.restores)
    with pytest.raises(ValueError):
        AvailabilityLog.from_dict({"intervals": [{"state": "Sideways", "start": T0.isoformat()}]})


def test_the_status_keeps_ratios_and_the_history_and_a_restart_reads_it_back() -> None:
    log = AvailabilityLog()
    log.record("Up", at(0))
    log.record("Down", at(600))
    log.record("Up", at(900))
    now = at(1200)
    availability = log.availability(now, last_checked_at=now)
    assert availability.uptime24h == round(900 / 1200, 6) and availability.uptime30d == availability.uptime24h
    assert (availability.downtime_seconds30d, availability.unknown_seconds30d) == (300, 30 * 86400 - 1200)
    assert [(i.state, i.end) for i in availability.history] == [("Up", at(600)), ("Down", at(900)), ("Up", None)]
    stored = availability.to_kube()
    restarted = AvailabilityLog.from_status(stored, at(1800))  # the operator was away for ten minutes
    assert restarted.intervals[-2:] == tuple(intervals(("Up", 900, 1200), ("Unknown", 1200, None)))
    assert restarted.uptime(at(0), at(1800), at(1800)).unknown == 600  # away: unknown, never up or down
    assert AvailabilityLog.from_status(None, now).intervals == ()
    assert log.uptime(at(600), at(900)).ratio == 0.0 and AvailabilityLog().uptime(at(0), at(1)).ratio is None
