"""The Grafana dashboard shipped with the chart (charts/tksh/dashboards/tksh.json) and its ConfigMap.

Every panel query parses (``promtool check rules`` on a throwaway rule file holding each query), selects only series
the operator exposes, and returns data when evaluated (``promtool test rules``) over the operator's real metrics
(a populated ``OperatorMetrics``) labelled as a scrape through the chart's ServiceMonitor stores them.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tksh.metrics import OperatorMetrics

from .helpers import CHART, Obj, of_kind, one, render
from .promql import exposed_series, populated_metrics, scraped_input_series, series_names

DASHBOARD = CHART / "dashboards" / "tksh.json"
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "1h", "$__interval": "1m", "$job": "tksh-operator"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title + refId, expression) of every panel target."""
    return [(f"{panel['title']} {target['refId']}", target["expr"])
            for panel in dashboard["panels"] if panel["type"] != "row" for target in panel["targets"]]


def substituted(expr: str) -> str:
    """The query as Grafana sends it, with its variables' values."""
    for name, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    assert "$" not in expr, f"an unknown Grafana variable in {expr}"
    return expr


def run_promtool(tool: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tool), *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def rule_name(index: int) -> str:
    return f"dashboard:query_{index}"


# --- the JSON ---------------------------------------------------------------------------------------------------------


def test_dashboard_is_well_formed(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "tksh-overview" and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["job"]["definition"] == "label_values(tksh_operator_info, job)"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["description"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert 'job="$job"' in target["expr"], f"{panel['title']}: every query selects the job"


def test_panels_cover_what_the_operator_measures(dashboard: dict[str, Any]) -> None:
    used = set().union(*(series_names(substituted(expr)) for _, expr in queries(dashboard)))
    for metric in ("tksh_probe_success", "tksh_incidents_open", "tksh_time_to_restore_seconds_bucket",
                   "tksh_sla_breaches_total", "tksh_downtime_seconds_total", "tksh_notification_latency_seconds_bucket",
                   "tksh_notifications_pending", "tksh_notifications_total", "tksh_applications",
                   "tksh_applications_overdue", "tksh_grants", "tksh_grants_terminated_total",
                   "tksh_probe_duration_seconds"):
        assert metric in used, f"no panel shows {metric}"
    quantiles = {m.group(1) for _, e in queries(dashboard)
                 for m in re.finditer(r"histogram_quantile\((0\.\d+),.*tksh_time_to_restore_seconds_bucket", e)}
    assert quantiles == {"0.5", "0.9", "0.99"}


def test_every_series_is_exposed_by_the_operator(dashboard: dict[str, Any]) -> None:
    known = exposed_series(OperatorMetrics())
    for title, expr in queries(dashboard):
        unknown = series_names(substituted(expr)) - known
        assert not unknown, f"{title}: unknown series {unknown}"


# --- promtool ---------------------------------------------------------------------------------------------------------


def test_every_query_parses(promtool: Path, dashboard: dict[str, Any], tmp_path: Path) -> None:
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": rule_name(i), "expr": substituted(expr)} for i, (_, expr) in enumerate(queries(dashboard))]}]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    proc = run_promtool(promtool, ["check", "rules", "rules.yaml"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(queries(dashboard))} rules found" in proc.stdout


def test_a_query_that_does_not_parse_is_caught(promtool: Path, tmp_path: Path) -> None:
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": rule_name(0), "expr": substituted('sum by (le (rate(tksh_probe_success{job="$job"}[5m]))')}]}]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    proc = run_promtool(promtool, ["check", "rules", "rules.yaml"], tmp_path)
    assert proc.returncode != 0


def test_every_query_returns_data_from_the_operators_metrics(
    promtool: Path, dashboard: dict[str, Any], tmp_path: Path
) -> None:
    """Each query, as an alert `count(query) > 0`, must fire over the operator's scraped metrics after 2.5 hours."""
    listed = queries(dashboard)
    alerts = [{"alert": f"Query{i}", "expr": f"count({substituted(expr)}) > 0"} for i, (_, expr) in enumerate(listed)]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": alerts}]}))
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": scraped_input_series(populated_metrics()),
        "alert_rule_test": [{"eval_time": "150m", "alertname": f"Query{i}", "exp_alerts": [{"exp_labels": {}}]}
                            for i in range(len(listed))],
    }]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    proc = run_promtool(promtool, ["test", "rules", "tests.yaml"], tmp_path)
    titles = "\n".join(f"Query{i}: {title}" for i, (title, _) in enumerate(listed))
    assert proc.returncode == 0, f"{proc.stdout}{proc.stderr}\n{titles}"


# --- the ConfigMap ----------------------------------------------------------------------------------------------------


def test_no_dashboard_by_default(rendered_default: list[Obj]) -> None:
    assert of_kind(rendered_default, "ConfigMap") == []


def test_configmap_carries_the_dashboard_for_the_sidecar(helm: Path) -> None:
    objs = render(helm, set_values={"metrics.grafanaDashboard.enabled": "true"})
    config_map = one(objs, "ConfigMap", "tksh-operator-dashboard")
    assert config_map["metadata"]["namespace"] == "tksh-system"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["tksh.json"]) == json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_configmap_labels_annotations_and_namespace_follow_the_values(helm: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"metrics": {"grafanaDashboard": {
        "enabled": True, "labels": {"dashboards": "tksh"}, "annotations": {"grafana_folder": "tksh"},
        "namespace": "monitoring"}}}))
    config_map = one(render(helm, [values]), "ConfigMap", "tksh-operator-dashboard")
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["labels"]["dashboards"] == "tksh"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"  # Helm merges maps: null removes it
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "tksh"}
