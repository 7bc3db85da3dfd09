"""``kubectl tksh report``: availability by time from incidents, Unknown apart, time to restore, breaches, output."""

from __future__ import annotations

import csv
import datetime
import io
import json
from typing import Any

import pytest

from tksh.cli import build_parser
from tksh.monitoring.availability import Interval
from tksh.report import (
    IncidentInfo,
    TargetInfo,
    TargetRef,
    build_report,
    incidents_of,
    parse_time,
    render,
    targets_of,
    timeline,
)

T0 = datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC)
H = datetime.timedelta(hours=1)
M = datetime.timedelta(minutes=1)
END = T0 + 10 * H
OSI = TargetRef("DigitalObject", "housing", "osi-dostyk")
EARLY = T0 - 48 * H  # integrated long before the period


def at(hours: float) -> datetime.datetime:
    return T0 + datetime.timedelta(hours=hours)


def inc(start: float, end: float | None, target: TargetRef = OSI) -> IncidentInfo:
    return IncidentInfo(target, at(start), None if end is None else at(end))


# (case, monitored since, unknown intervals, incidents, up h, down h, unknown h, incidents, open, breaches)
CASES: list[tuple[str, datetime.datetime | None, list[Interval], list[IncidentInfo], float, float, float, int,
                  int, int]] = [
    ("no incident", EARLY, [], [], 10, 0, 0, 0, 0, 0),
    ("recovered exactly at the deadline: met", EARLY, [], [inc(2, 3)], 9, 1, 0, 1, 0, 0),
    ("recovered a second late: breached", EARLY, [], [inc(2, 3 + 1 / 3600)], 9 - 1 / 3600, 1 + 1 / 3600, 0, 1, 0, 1),
    ("open, deadline passed within the period", EARLY, [], [inc(8, None)], 8, 2, 0, 1, 1, 1),
    ("open, deadline after the period", EARLY, [], [inc(9.5, None)], 9.5, 0.5, 0, 1, 1, 0),
    ("integrated within the period: the time before is unknown", at(5), [], [], 5, 0, 5, 0, 0, 0),
    ("unknown wins over down, down over up", EARLY, [Interval("Unknown", at(4), at(6))], [inc(5, 7)], 7, 1, 2, 1, 0,
     1),
    ("still unknown now", EARLY, [Interval("Unknown", at(9), None)], [], 9, 0, 1, 0, 0, 0),
    ("an incident from before the period counts its part in it", EARLY, [], [inc(-2, 0.5)], 9.5, 0.5, 0, 1, 0, 0),
    ("an incident recovered before the period does not count", EARLY, [], [inc(-3, -2)], 10, 0, 0, 0, 0, 0),
    ("recovered after the period: open at its end", EARLY, [], [inc(9.5, 12)], 9.5, 0.5, 0, 1, 1, 0),
    ("never monitored in the period", at(11), [], [], 0, 0, 10, 0, 0, 0),
]


@pytest.mark.parametrize(("since", "unknown", "incidents", "up", "down", "unknown_h", "count", "still_open",
                          "breaches"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_uptime_incidents_and_breaches_of_one_target(
    since: datetime.datetime | None, unknown: list[Interval], incidents: list[IncidentInfo], up: float, down: float,
    unknown_h: float, count: int, still_open: int, breaches: int,
) -> None:
    report = build_report([TargetInfo(OSI, since, tuple(unknown))], incidents, T0, END, END)
    (row,) = report.targets
    assert row.ref == OSI
    assert row.time.up == pytest.approx(up * 3600)
    assert row.time.down == pytest.approx(down * 3600)
    assert row.time.unknown == pytest.approx(unknown_h * 3600)
    assert (row.incidents, row.open, row.breaches) == (count, still_open, breaches)
    expected_ratio = up / (up + down) if up + down else None
    assert row.time.ratio == (pytest.approx(expected_ratio) if expected_ratio is not None else None)


def test_timeline_does_not_overlap_and_covers_the_monitored_time() -> None:
    target = TargetInfo(OSI, at(1), (Interval("Unknown", at(4), at(6)),))
    intervals = timeline(target, [inc(3, 5), inc(5.5, 8)], T0, END)
    assert [(i.state, i.start, i.end) for i in intervals] == [
        ("Up", at(1), at(3)), ("Down", at(3), at(4)), ("Unknown", at(4), at(6)), ("Down", at(6), at(8)),
        ("Up", at(8), END)]


@pytest.mark.parametrize(("durations", "p50", "p90", "p99", "mean"), [
    ([], None, None, None, None),
    ([600], 600, 600, 600, 600),
    ([60, 120, 180, 240, 3000], 180, 3000, 3000, 720),
    (list(range(60, 6060, 60)), 3000, 5400, 5940, 3030),
])
def test_time_to_restore_percentiles_are_nearest_rank(durations: list[int], p50: float | None, p90: float | None,
                                                      p99: float | None, mean: float | None) -> None:
    incidents = [IncidentInfo(OSI, END - datetime.timedelta(seconds=d) - M, END - M) for d in durations]
    report = build_report([TargetInfo(OSI, EARLY)], incidents, T0 - 200 * H, END, END)
    restore = report.targets[0].restore
    assert (restore.count, restore.p50, restore.p90, restore.p99) == (len(durations), p50, p90, p99)
    assert restore.mean == (pytest.approx(mean) if mean is not None else None)


def test_restores_count_where_the_recovery_falls() -> None:
    report = build_report([TargetInfo(OSI, EARLY)], [inc(-1.5, 0.25), inc(9.5, 10.5)], T0, END, at(12))
    assert report.targets[0].restore.count == 1 and report.targets[0].restore.p50 == 1.75 * 3600


def test_total_sums_targets_and_a_gone_target_is_reported_from_its_incidents() -> None:
    gone = TargetRef("DigitalObject", "housing", "gone")
    cz = TargetRef("CentralComponent", "", "cz-gateway")
    report = build_report([TargetInfo(OSI, EARLY), TargetInfo(cz, EARLY)], [inc(1, 2), inc(3, 5, gone)], T0, END,
                          END)
    assert [r.ref for r in report.targets] == [cz, gone, OSI]
    assert report.targets[1].time.down == 2 * 3600 and report.targets[1].time.up == 8 * 3600
    total = report.total
    assert total.ref is None and (total.incidents, total.breaches) == (2, 1)
    assert total.time.up == (10 + 8 + 9) * 3600 and total.time.down == 3 * 3600
    assert total.time.ratio == pytest.approx(27 / 30)


def test_the_future_is_cut_at_now() -> None:
    report = build_report([TargetInfo(OSI, EARLY)], [inc(1, 2)], T0, T0 + 100 * H, at(4))
    assert report.end == at(4) and report.targets[0].time.up == 3 * 3600


@pytest.mark.parametrize(("start", "end", "now", "message"), [
    (END, T0, END, "--to: must be later than --from"),
    (T0, T0, END, "--to: must be later than --from"),
    (END + H, END + 2 * H, END, "--from: must be earlier than now"),
])
def test_a_bad_period_is_refused_naming_the_flag(start: datetime.datetime, end: datetime.datetime,
                                                 now: datetime.datetime, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_report([], [], start, end, now)


# --- parsing ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-03-01T05:00:00Z", datetime.datetime(2026, 3, 1, 5, tzinfo=datetime.UTC)),
    ("2026-03-01T10:00:00+05:00", datetime.datetime(2026, 3, 1, 5, tzinfo=datetime.UTC)),
    ("2026-03-01", T0),
    ("now", END),
    ("now-30d", END - 30 * 24 * H),
    ("now-12h", END - 12 * H),
    ("now-90m", END - 90 * M),
])
def test_times_are_parsed(text: str, expected: datetime.datetime) -> None:
    assert parse_time(text, "--from", END) == expected


@pytest.mark.parametrize(("text", "flag", "rule"), [
    ("yesterday", "--from", "is not a time"),
    ("now-3w", "--to", "is not a time"),
    ("2026-13-01", "--from", "is not a time"),
    ("2026-03-01T05:00:00", "--to", "has no time zone"),
])
def test_bad_times_name_the_flag_and_the_rule(text: str, flag: str, rule: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_time(text, flag, END)
    assert str(error.value).startswith(f"{flag}: ") and rule in str(error.value)


def test_command_line() -> None:
    args = build_parser().parse_args(["report", "--from", "2026-03-01", "--to", "now", "-o", "csv", "-n", "housing"])
    assert (args.command, args.start, args.end, args.format, args.namespace) == (
        "report", "2026-03-01", "now", "csv", "housing")
    defaults = build_parser().parse_args(["report"])
    assert (defaults.start, defaults.end, defaults.format) == ("now-30d", "now", "table")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["report", "--format", "xml"])


# --- from the objects -----------------------------------------------------------------------------------------------


def digital_object(name: str, phase: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "housing", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"owner": {"bin": "140540001231", "name": "ОСИ «Достық 12»", "email": "board@dostyk12.example.kz"}},
            "status": {"phase": phase, **status}}


def test_targets_are_the_integrated_objects_and_every_central_component() -> None:
    history = [{"state": "Up", "start": "2026-02-27T00:00:00Z", "end": "2026-02-28T00:00:00Z"},
               {"state": "Unknown", "start": "2026-02-28T00:00:00Z", "end": "2026-02-28T02:00:00Z"},
               {"state": "Up", "start": "2026-02-28T02:00:00Z"}]
    found = targets_of(
        [digital_object("osi-dostyk", "Integrated", integratedAt="2026-02-01T00:00:00Z",
                        availability={"state": "Up", "history": history}),
         digital_object("paused", "Suspended"),
         digital_object("waiting", "UnderReview")],
        [{"metadata": {"name": "cz-gateway", "creationTimestamp": "2026-01-02T00:00:00Z"}, "spec": {}}])
    assert [(t.ref.kind, t.ref.namespace, t.ref.name) for t in found] == [
        ("DigitalObject", "housing", "osi-dostyk"), ("DigitalObject", "housing", "paused"),
        ("CentralComponent", "", "cz-gateway")]
    assert found[0].monitored_since == datetime.datetime(2026, 2, 1, tzinfo=datetime.UTC)
    assert found[0].unknown == (Interval("Unknown", datetime.datetime(2026, 2, 28, tzinfo=datetime.UTC),
                                         datetime.datetime(2026, 2, 28, 2, tzinfo=datetime.UTC)),)
    assert found[1].monitored_since == datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)  # its creation


def test_incidents_are_read_from_their_spec_and_status() -> None:
    found = incidents_of([
        {"metadata": {"name": "osi-1", "namespace": "housing"},
         "spec": {"target": {"kind": "DigitalObject", "name": "osi-dostyk", "namespace": "housing"},
                  "startedAt": "2026-03-01T01:00:00Z", "failure": {"class": "connect"}},
         "status": {"phase": "Recovered", "recoveredAt": "2026-03-01T01:30:00Z"}},
        {"metadata": {"name": "cz-1", "namespace": "tksh-system"},
         "spec": {"target": {"kind": "CentralComponent", "name": "cz-gateway"}, "startedAt": "2026-03-01T02:00:00Z",
                  "failure": {"class": "timeout"}},
         "status": {"phase": "Open"}},
        {"metadata": {"name": "broken", "namespace": "housing"}, "spec": {"target": {"name": "x"}}},
    ])
    assert found == [
        IncidentInfo(OSI, at(1), at(1.5)),
        IncidentInfo(TargetRef("CentralComponent", "", "cz-gateway"), at(2), None),
    ]


# --- output -----------------------------------------------------------------------------------------------------------


@pytest.fixture
def report() -> Any:
    cz = TargetRef("CentralComponent", "", "cz-gateway")
    listed = targets_of([digital_object("osi-dostyk", "Integrated", integratedAt="2026-01-01T00:00:00Z")], [])
    targets = [*listed, TargetInfo(cz, EARLY)]
    return build_report(targets, [inc(2, 3.5), inc(4, 4.25)], T0, END, END)


def test_table_for_people_without_personal_data(report: Any) -> None:
    text = render(report, "table")
    lines = text.splitlines()
    assert lines[0] == "Period 2026-03-01T00:00:00Z .. 2026-03-01T10:00:00Z"
    assert lines[1].split() == ["KIND", "NAMESPACE", "NAME", "UPTIME", "DOWN", "UNKNOWN", "INCIDENTS", "OPEN",
                                "BREACHES", "TTR-P50", "TTR-P90", "TTR-P99", "TTR-MEAN"]
    assert lines[2].split() == ["CentralComponent", "-", "cz-gateway", "100.000%", "0s", "0s", "0", "0", "0", "-", "-",
                                "-", "-"]
    assert lines[3].split() == ["DigitalObject", "housing", "osi-dostyk", "82.500%", "1h45m00s", "0s", "2", "0", "1",
                                "15m00s", "1h30m00s", "1h30m00s", "52m30s"]
    assert lines[4].split()[:4] == ["TOTAL", "-", "-", "91.250%"]
    assert "140540001231" not in text and "dostyk12" not in text and "Достық" not in text


def test_csv_has_one_row_per_target_and_a_total(report: Any) -> None:
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    assert [r["kind"] for r in rows] == ["CentralComponent", "DigitalObject", "TOTAL"]
    osi = rows[1]
    assert (osi["namespace"], osi["name"], osi["uptime"], osi["down_seconds"], osi["breaches"]) == (
        "housing", "osi-dostyk", "0.825000", "6300", "1")
    assert (osi["ttr_p50_seconds"], osi["ttr_p99_seconds"], osi["from"]) == ("900", "5400", "2026-03-01T00:00:00Z")
    assert rows[0]["ttr_mean_seconds"] == ""


def test_json_keeps_exact_figures(report: Any) -> None:
    body = json.loads(render(report, "json"))
    assert (body["from"], body["to"]) == ("2026-03-01T00:00:00Z", "2026-03-01T10:00:00Z")
    osi = body["targets"][1]
    assert osi["kind"] == "DigitalObject" and osi["uptime"] == pytest.approx(0.825)
    assert osi["timeToRestore"] == {"count": 2, "mean": 3150.0, "p50": 900.0, "p90": 5400.0, "p99": 5400.0,
                                    "max": 5400.0}
    assert body["targets"][0]["namespace"] is None
    assert body["total"]["incidents"] == 2 and "kind" not in body["total"]
