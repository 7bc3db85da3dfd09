"""``kubectl tksh report``: availability, incidents, time to restore and breaches per target over a period (§33–34).

Computed by time from the objects themselves, so any past period can be reported (incidents are never deleted):

* a target is monitored from its integration (``status.integratedAt``; a central component: its creation). Before
  that, and after ``now``, its time is neither up nor down;
* it is ``Down`` during each of its incidents, from ``startedAt`` to ``recoveredAt`` (or ``now`` while open);
* it is ``Unknown`` where its ``status.availability.history`` says so (the last 31 days: the prober impaired or
  probing paused). Unknown wins over Down and Down over Up, as in the operator's own availability log;
* it is ``Up`` the rest of the monitored time.

Uptime is ``up / (up + down)`` (:func:`tksh.monitoring.availability.uptime`), Unknown kept apart. Per target, and
over all targets: the incidents that overlap the period (and how many are still open at its end), the time to
restore of those recovered within it (mean, p50, p90, p99 by nearest rank, max:
:func:`~tksh.monitoring.availability.restore_stats`), and the breaches of the one-hour limit whose deadline fell
within it. Nothing personal is printed: kinds, namespaces, object names and figures only.

The computation (:func:`build_report`) and the output (:func:`render`) are pure; :func:`main` lists the objects
through the Kubernetes API.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import io
import itertools
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from tksh import GROUP, VERSION
from tksh.conditions import read_time
from tksh.monitoring.availability import Interval, RestoreStats, Uptime, restore_stats, uptime
from tksh.monitoring.machine import State
from tksh.monitoring.sla import recovery_deadline

__all__ = ["IncidentInfo", "Report", "TargetInfo", "TargetReport", "add_parser", "build_report", "incidents_of",
           "main", "parse_time", "render", "targets_of"]

FORMATS = ("table", "csv", "json")
_RELATIVE = re.compile(r"^now(?:-(\d+)([dhm]))?$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class TargetRef:
    kind: str
    namespace: str
    """Empty for a central component (cluster-scoped)."""
    name: str


@dataclasses.dataclass(frozen=True, slots=True)
class TargetInfo:
    """A monitored target: since when, and its known ``Unknown`` intervals."""

    ref: TargetRef
    monitored_since: datetime.datetime | None
    """``None``: not known (a target known only by its incidents): monitored throughout."""
    unknown: tuple[Interval, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class IncidentInfo:
    target: TargetRef
    started_at: datetime.datetime
    recovered_at: datetime.datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class TargetReport:
    ref: TargetRef | None
    """``None`` for the total over all targets."""
    time: Uptime
    incidents: int
    open: int
    breaches: int
    restore: RestoreStats


@dataclasses.dataclass(frozen=True, slots=True)
class Report:
    start: datetime.datetime
    end: datetime.datetime
    generated_at: datetime.datetime
    targets: tuple[TargetReport, ...]
    total: TargetReport


# --- input ------------------------------------------------------------------------------------------------------------


def parse_time(text: str, flag: str, now: datetime.datetime) -> datetime.datetime:
    """An RFC 3339 time, a date (midnight UTC) or ``now``/``now-N(d|h|m)``; ``ValueError`` naming ``flag``."""
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = relative.groups()
        return now - datetime.timedelta(**{_UNITS[unit]: int(amount)}) if amount else now
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{flag}: {text[:64]!r} is not a time: give RFC 3339 (2026-03-01T00:00:00Z), a date "
                         "(2026-03-01, midnight UTC) or now, now-30d, now-12h, now-90m") from None
    if len(value) == 10:  # a date alone
        return parsed.replace(tzinfo=datetime.UTC)
    if parsed.tzinfo is None:
        raise ValueError(f"{flag}: {text[:64]!r} has no time zone: end it with Z or an offset such as +05:00")
    return parsed


def _unknown_intervals(status: Mapping[str, Any]) -> tuple[Interval, ...]:
    history = ((status.get("availability") or {}).get("history")) or []
    found = []
    for item in history:
        start = read_time(item.get("start"))
        if item.get("state") == "Unknown" and start is not None:
            found.append(Interval("Unknown", start, read_time(item.get("end"))))
    return tuple(found)


def targets_of(digital_objects: Iterable[Mapping[str, Any]],
               central_components: Iterable[Mapping[str, Any]]) -> list[TargetInfo]:
    """The monitored targets among listed objects: digital objects once integrated, every central component."""
    found = []
    for obj in digital_objects:
        meta, status = obj.get("metadata") or {}, obj.get("status") or {}
        integrated = read_time(status.get("integratedAt"))
        if integrated is None and status.get("phase") not in ("Integrated", "Suspended"):
            continue
        since = integrated or read_time(meta.get("creationTimestamp"))
        ref = TargetRef("DigitalObject", str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        found.append(TargetInfo(ref, since, _unknown_intervals(status)))
    for obj in central_components:
        meta, status = obj.get("metadata") or {}, obj.get("status") or {}
        ref = TargetRef("CentralComponent", "", str(meta.get("name") or ""))
        found.append(TargetInfo(ref, read_time(meta.get("creationTimestamp")), _unknown_intervals(status)))
    return found


def incidents_of(items: Iterable[Mapping[str, Any]]) -> list[IncidentInfo]:
    """The incidents among listed objects (those without a parsable start are skipped)."""
    found = []
    for obj in items:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        target, started = spec.get("target") or {}, read_time(spec.get("startedAt"))
        if started is None or not target.get("name"):
            continue
        kind = str(target.get("kind") or "DigitalObject")
        namespace = "" if kind == "CentralComponent" else str(target.get("namespace") or
                                                              (obj.get("metadata") or {}).get("namespace") or "")
        found.append(IncidentInfo(TargetRef(kind, namespace, str(target["name"])), started,
                                  read_time(status.get("recoveredAt"))))
    return found


# --- computation ------------------------------------------------------------------------------------------------------


def timeline(target: TargetInfo, incidents: Sequence[IncidentInfo], start: datetime.datetime,
             end: datetime.datetime) -> list[Interval]:
    """The target's non-overlapping state intervals within ``[start, end)``: Unknown over Down over Up."""
    since = max(start, target.monitored_since or start)
    if since >= end:
        return []
    downs = [(i.started_at, i.recovered_at or end) for i in incidents]
    unknowns = [(i.start, i.end or end) for i in target.unknown]
    cuts = {since, end} | {t for pair in (*downs, *unknowns) for t in pair if since < t < end}
    ordered = sorted(cuts)
    intervals: list[Interval] = []
    for lo, hi in itertools.pairwise(ordered):
        state: State
        if any(a <= lo < b for a, b in unknowns):
            state = "Unknown"
        elif any(a <= lo < b for a, b in downs):
            state = "Down"
        else:
            state = "Up"
        if intervals and intervals[-1].state == state:
            intervals[-1] = dataclasses.replace(intervals[-1], end=hi)
        else:
            intervals.append(Interval(state, lo, hi))
    return intervals


def _summary(ref: TargetRef | None, time: Uptime, incidents: Sequence[IncidentInfo], start: datetime.datetime,
             end: datetime.datetime) -> TargetReport:
    overlapping = [i for i in incidents if i.started_at < end and (i.recovered_at is None or i.recovered_at > start)]
    still_open = [i for i in overlapping if i.recovered_at is None or i.recovered_at > end]
    restored = [(i.recovered_at - i.started_at).total_seconds() for i in incidents
                if i.recovered_at is not None and start <= i.recovered_at < end]
    breaches = 0
    for incident in incidents:
        deadline = recovery_deadline(incident.started_at)
        if start <= deadline < end and (incident.recovered_at is None or incident.recovered_at > deadline):
            breaches += 1
    return TargetReport(ref, time, len(overlapping), len(still_open), breaches, restore_stats(restored))


def build_report(targets: Iterable[TargetInfo], incidents: Iterable[IncidentInfo], start: datetime.datetime,
                 end: datetime.datetime, now: datetime.datetime) -> Report:
    """The report over ``[start, end)`` as of ``now``; the period is cut at ``now`` (no future time)."""
    if end <= start:
        raise ValueError("--to: must be later than --from")
    end = min(end, now)
    if end <= start:
        raise ValueError("--from: must be earlier than now")
    by_target: dict[TargetRef, list[IncidentInfo]] = {}
    for incident in incidents:
        by_target.setdefault(incident.target, []).append(incident)
    known = {t.ref: t for t in targets}
    for ref in by_target.keys() - known.keys():  # a target gone since: known by its incidents alone
        known[ref] = TargetInfo(ref, None)
    rows = []
    for ref in sorted(known):
        own = by_target.get(ref, [])
        time = uptime(timeline(known[ref], own, start, end), start, end)
        rows.append(_summary(ref, time, own, start, end))
    total_time = Uptime(start, end, sum(r.time.up for r in rows), sum(r.time.down for r in rows),
                        sum(r.time.unknown for r in rows))
    total = _summary(None, total_time, [i for own in by_target.values() for i in own], start, end)
    return Report(start, end, now, tuple(rows), total)


# --- output -----------------------------------------------------------------------------------------------------------


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h{minutes:02d}m"
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _as_dict(row: TargetReport) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if row.ref is not None:
        out |= {"kind": row.ref.kind, "namespace": row.ref.namespace or None, "name": row.ref.name}
    r = row.restore
    return out | {
        "uptime": row.time.ratio, "upSeconds": round(row.time.up), "downSeconds": round(row.time.down),
        "unknownSeconds": round(row.time.unknown), "incidents": row.incidents, "open": row.open,
        "breaches": row.breaches,
        "timeToRestore": {"count": r.count, "mean": r.mean, "p50": r.p50, "p90": r.p90, "p99": r.p99, "max": r.max},
    }


def _table(report: Report) -> str:
    header = ("KIND", "NAMESPACE", "NAME", "UPTIME", "DOWN", "UNKNOWN", "INCIDENTS", "OPEN", "BREACHES",
              "TTR-P50", "TTR-P90", "TTR-P99", "TTR-MEAN")
    rows = [header]
    for row in (*report.targets, report.total):
        ratio = row.time.ratio
        ref = row.ref or TargetRef("TOTAL", "", "")
        r = row.restore
        rows.append((ref.kind, ref.namespace or "-", ref.name or "-",
                     "-" if ratio is None else f"{100 * ratio:.3f}%", _duration(row.time.down),
                     _duration(row.time.unknown), str(row.incidents), str(row.open), str(row.breaches),
                     _duration(r.p50), _duration(r.p90), _duration(r.p99), _duration(r.mean)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return f"Period {_iso(report.start)} .. {_iso(report.end)}\n" + "\n".join(lines)


def _csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["from", "to", "kind", "namespace", "name", "uptime", "up_seconds", "down_seconds",
                     "unknown_seconds", "incidents", "open", "breaches", "restored", "ttr_mean_seconds",
                     "ttr_p50_seconds", "ttr_p90_seconds", "ttr_p99_seconds", "ttr_max_seconds"])
    for row in (*report.targets, report.total):
        d = _as_dict(row)
        t = d["timeToRestore"]
        writer.writerow([_iso(report.start), _iso(report.end), d.get("kind", "TOTAL"), d.get("namespace") or "",
                         d.get("name", ""), "" if d["uptime"] is None else f"{d['uptime']:.6f}", d["upSeconds"],
                         d["downSeconds"], d["unknownSeconds"], d["incidents"], d["open"], d["breaches"], t["count"],
                         *("" if t[k] is None else round(t[k]) for k in ("mean", "p50", "p90", "p99", "max"))])
    return buffer.getvalue().rstrip("\n")


def render(report: Report, fmt: str) -> str:
    """The report as a table (for people), CSV or JSON."""
    if fmt == "table":
        return _table(report)
    if fmt == "csv":
        return _csv(report)
    if fmt == "json":
        body = {"from": _iso(report.start), "to": _iso(report.end), "generatedAt": _iso(report.generated_at),
                "targets": [_as_dict(r) for r in report.targets], "total": _as_dict(report.total)}
        return json.dumps(body, indent=2, ensure_ascii=False)
    raise ValueError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")


# --- the command ------------------------------------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    """``report`` in the ``tksh`` parser's subparsers."""
    p = sub.add_parser("report", help="availability, incidents, time to restore and breaches per target")
    p.add_argument("--from", dest="start", default="now-30d",
                   help="start: RFC 3339, a date (midnight UTC) or now-N(d|h|m) (default now-30d)")
    p.add_argument("--to", dest="end", default="now", help="end, as --from (default now)")
    p.add_argument("--format", "-o", default="table", choices=FORMATS, help="table (default), csv or json")
    p.add_argument("--namespace", "-n", default=None,
                   help="only the digital objects of this namespace (default: all, and the central components)")
    p.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")


def _items(listed: object) -> list[dict[str, Any]]:
    items = listed.get("items") if isinstance(listed, Mapping) else None
    return list(items or [])


def main(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """List the objects, compute the report and print it; 2 for bad arguments, 1 when the API server refuses."""
    import kubernetes
    from kubernetes.client.exceptions import ApiException

    now = datetime.datetime.now(datetime.UTC)
    try:
        start, end = parse_time(args.start, "--from", now), parse_time(args.end, "--to", now)
        if end <= start:
            raise ValueError("--to: must be later than --from")
        api = kubernetes.client.CustomObjectsApi(
            kubernetes.config.new_client_from_config(config_file=args.kubeconfig))  # type: ignore[no-untyped-call]
        if args.namespace:
            objects = _items(api.list_namespaced_custom_object(GROUP, VERSION, args.namespace, "digitalobjects"))
            components: list[dict[str, Any]] = []
            incidents = _items(api.list_namespaced_custom_object(GROUP, VERSION, args.namespace, "incidents"))
            incidents = [i for i in incidents if ((i.get("spec") or {}).get("target") or {}).get("kind")
                         != "CentralComponent"]
        else:
            objects = _items(api.list_cluster_custom_object(GROUP, VERSION, "digitalobjects"))
            components = _items(api.list_cluster_custom_object(GROUP, VERSION, "centralcomponents"))
            incidents = _items(api.list_cluster_custom_object(GROUP, VERSION, "incidents"))
        report = build_report(targets_of(objects, components), incidents_of(incidents), start, end, now)
        print(render(report, args.format), file=out)
    except ValueError as exc:
        print(f"tksh report: {exc}", file=err)
        return 2
    except ApiException as exc:
        print(f"tksh report: the API server refused: {exc.status} {exc.reason}", file=err)
        return 1
    return 0
