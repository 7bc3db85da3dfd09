"""The figures of docs/reliability.md, from the JSON files the reliability tests leave behind.

    .venv/bin/pytest tests/reliability -p no:cacheprovider      # every variant, long ones included
    .venv/bin/python -m tests.reliability.report --write          # rewrite the figures in docs/reliability.md

Without ``--write`` the tables are printed. Only the part between the ``figures:begin`` and
``figures:end`` markers of the document is replaced; runs that left no file are shown as not run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.reliability.figures import ROOT, out_dir

DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
Row = Callable[[dict[str, Any]], list[Any]]


def load(folder: Path) -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))}


def _counts(mapping: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in mapping.items()) or "—"


def _workflows(f: dict[str, Any]) -> str:
    kinds = f.get("workflow_kinds")
    return f"{f['workflows']} ({_counts(kinds)})" if kinds else str(f["workflows"])


def table(runs: dict[str, dict[str, Any]], names: Sequence[str], header: Sequence[str], row: Row) -> list[str]:
    lines = ["| run | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header)]
    for name in names:
        if name in runs:
            cells = row(runs[name]["figures"])
            lines.append(f"| {name} | " + " | ".join(str(c) for c in cells) + " |")
        else:
            lines.append(f"| {name} | not run |" + " |" * (len(header) - 1))
    return lines


def _per_second(f: dict[str, Any], prefix: str) -> str:
    seconds = float(f[f"{prefix}rest_seconds"])
    rates = {kind: round(n / seconds, 2) for kind, n in f[f"{prefix}requests_at_rest"].items()}
    return f"{f[f'{prefix}requests_at_rest_total'] / seconds:.2f} ({_counts(rates)})"


def _scale_row(f: dict[str, Any]) -> list[Any]:
    cpu = f["cpu_seconds_to_converge"]
    return [f"{f['digital_objects']:,}", f"{f['grants']:,}", f["emails"], f["applied_seconds"],
            f"{f['converged_seconds']}: {f['grants_converged_seconds']}; {f['objects_converged_seconds']}",
            f"{cpu['operator']}; {cpu['apiserver']}; {cpu['authz']}", f["operator_cpu_ms_per_grant"],
            f"{f['requests_to_converge']:,} ({f['requests_to_converge'] / max(f['grants'], 1):.1f})",
            _per_second(f, ""), f"{f['operator_rss_mib']} ({f['operator_peak_rss_mib']})",
            f"{f['authz_rss_mib']} ({f['authz_peak_rss_mib']})",
            f"{f['restart_ready_seconds']}; {f['restart_resync_seconds']}", _counts(f["restart_requests"]),
            _per_second(f, "after_restart_")]


def render(runs: dict[str, dict[str, Any]]) -> str:
    out: list[str] = []
    kill = ["kill-embedded-short", "kill-embedded-long", "kill-real-short", "kill-real-long"]
    out += ["**1. Operator killed mid-workflow** (kill points: see below)", ""]
    out += table(runs, kill, ["backend", "kills N", "kill points covered", "fallbacks", "crashes", "workflows",
                              "notifications due", "delivered (dedup): e-mail + webhook", "lost",
                              "duplicates after dedup", "raw e-mails (duplicates)", "raw webhooks (duplicates)"],
                 lambda f: [f["backend"], f["kills"], _counts(f["kill_points"]), _counts(f["fallbacks"]),
                            f["crashes"], _workflows(f), f["expected"],
                            f"{f['delivered_unique']} + {f.get('webhooks_delivered_unique', 0)}", f["lost"],
                            f["duplicates_after_dedup"], f"{f['raw_messages']} ({f['raw_duplicates']})",
                            f"{f.get('webhook_raw_requests', 0)} ({f.get('webhook_raw_duplicates', 0)})"])
    out += ["", "**2. API faults** (the operator process, no kills)", ""]
    out += table(runs, ["faults-embedded-short", "faults-embedded-long"],
                 ["workflows", "faults injected", "requests answered with a fault", "requests total",
                  "operator exits", "converged (s)", "error log lines", "writes at rest (lifecycle, repeated)",
                  "errors at rest", "lost", "duplicates after dedup", "raw duplicates"],
                 lambda f: [f["workflows"], _counts(f["faults_planned"]), _counts(f["requests_answered_with_fault"]),
                            f["requests_total"], f["operator_exits"], f["converged_seconds"], f["error_log_lines"],
                            f"{f['writes_at_rest']} ({f['lifecycle_writes_at_rest']}, {f['repeated_writes_at_rest']})",
                            f["errors_at_rest"], f["lost"], f["duplicates_after_dedup"], f["raw_duplicates"]])
    out += [""]
    out += table(runs, ["api-down-embedded"], ["requests answered 500 in a row", "operator exits", "lost",
                                                "duplicates after dedup"],
                 lambda f: [f["requests_answered_500"], f["operator_exits"], f["lost"], f["duplicates"]])
    out += ["", "**3. SMTP server and webhook receiver down, then back**", ""]
    out += table(runs, ["receivers-down-embedded-short", "receivers-down-embedded-long"],
                 ["workflows", "SMTP down (s, real)", "webhooks down (s, real)",
                  "attempts of the first entry while down: e-mail; webhook",
                  "backlog max (tksh_notifications_pending)", "notifications due",
                  "delivered (dedup): e-mail + webhook", "lost", "duplicates after dedup", "receivers",
                  "receivers out of order"],
                 lambda f: [f["workflows"], f["down_seconds"], f["webhook_down_seconds"],
                            f"{f['attempts_while_down_min']}–{f['attempts_while_down_max']}; "
                            f"{f['webhook_attempts_while_down_min']}–{f['webhook_attempts_while_down_max']}",
                            f["backlog_max"], f["expected"],
                            f"{f['delivered_unique']} + {f['webhooks_delivered_unique']}", f["lost"],
                            f["duplicates_after_dedup"], f["receivers"], f["out_of_order_recipients"]])
    out += ["", "**4. Two replicas with kopf peering; two decision points**", ""]
    out += table(runs, ["replicas-embedded-short", "replicas-embedded-long", "replicas-embedded-lifetime-60",
                        "replicas-embedded-sigterm-60"],
                 ["peering lifetime (s)", "stops of the active replica", "handover after the stop (s): each",
                  "mean", "max", "handback after the restart (s): each", "writes by the standby (violations)",
                  "writes of the stopping replica after the handover", "overlap writes at handback",
                  "writes: replica-a, replica-b", "workflows", "notifications due",
                  "lost", "duplicates after dedup", "raw duplicates: e-mail, webhook",
                  "decision-point checks (decisions compared)", "wait until both agree (s): median, max",
                  "rounds of asking, max"],
                 lambda f: [f["peering_lifetime"], f"{f['rounds']} {f.get('stop', 'SIGKILL')}",
                            ", ".join(str(s) for s in f["handover_seconds"]), f["handover_mean"], f["handover_max"],
                            ", ".join(str(s) for s in f["handback_seconds"]), f["violations"],
                            f.get("late_writes_at_stop", "—"), sum(f["overlap_writes"]),
                            f"{f['writes_by_replica']['replica-a']}, {f['writes_by_replica']['replica-b']}",
                            f["workflows"], f["expected"], f["lost"], f["duplicates_after_dedup"],
                            f"{f['raw_duplicates']}, {f['webhook_raw_duplicates']}",
                            f"{f['decision_checks']} ({f['decisions_compared']:,})",
                            f"{f.get('decision_convergence_median', '—')}, {f['decision_convergence_max']}",
                            f.get("decision_rounds_max", "—")])
    out += ["", "**5. Scale** (the operator a process, the embedded API server in the test process; see below)", ""]
    sizes = sorted((n for n in runs if n.startswith("scale-embedded-") and n != "scale-embedded-short"),
                   key=lambda n: (runs[n]["figures"]["grants"], n))
    out += table(runs, ["scale-embedded-short", *(sizes or ["scale-embedded-long"])],
                 ["DigitalObjects", "AccessGrants", "e-mails", "applied (s)", "all reconciled (s): grants; objects",
                  "CPU to converge (s): operator; API server; decision point", "operator CPU per grant (ms)",
                  "requests to converge (per grant)", "requests at rest (per s)", "operator RSS (peak), MiB",
                  "decision point RSS (peak), MiB", "restart: ready; resync (s)", "restart: requests",
                  "at rest after the restart (per s)"],
                 _scale_row)
    out += ["", "**6. Hostile input**", ""]
    out += table(runs, ["hostile-admit-short", "hostile-admit-long", "hostile-store-short", "hostile-store-long"],
                 ["examples", "mutation sites", "by rule", "kinds"],
                 lambda f: [f["examples"], f["sites"], _counts(f["sites_by_rule"]), ", ".join(f["kinds"])])
    out += [""]
    out += table(runs, ["hostile-http-short", "hostile-http-long"], ["requests", "answers by status"],
                 lambda f: [f["examples"], _counts(f["answers"])])
    out += [""]
    out += table(runs, ["decision-api-fuzz-short", "decision-api-fuzz-long"],
                 ["requests", "by operation and status", "5xx", "log lines scanned"],
                 lambda f: [f["requests"], _counts(f["requests_by_operation_and_status"]), f["server_errors"],
                            f["log_lines_scanned"]])
    scanned = sum(int(run["figures"].get("log_lines_scanned", 0)) for run in runs.values())
    measured = sorted({run["measured_at"][:10] for run in runs.values()})
    machines = sorted({run["machine"] for run in runs.values()})
    out += ["", f"Log scan: {scanned:,} log lines of the operator processes, this process and the decision point "
            "scanned; personal data in clear found: 0 (a finding fails its test).", "",
            f"Measured {', '.join(measured) or '—'} on {'; '.join(machines) or '—'}."]
    return "\n".join(out)


def write(doc: Path, figures: str) -> None:
    text = doc.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{doc}: the markers {BEGIN} and {END} are missing")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{BEGIN}\n{figures}\n{END}{tail}", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"rewrite the figures in {DOC.relative_to(ROOT)}")
    parser.add_argument("--from", dest="folder", type=Path, default=None, help="the folder of the JSON files")
    args = parser.parse_args(argv)
    runs = load(args.folder or out_dir())
    if not runs:
        print(f"no figures in {args.folder or out_dir()}: run the suite first", file=sys.stderr)
        return 1
    figures = render(runs)
    if args.write:
        write(DOC, figures)
        print(f"wrote the figures of {len(runs)} runs into {DOC}")
    else:
        print(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
