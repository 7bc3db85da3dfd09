"""The chart's PrometheusRule: promtool checks the rendered rules and runs their unit tests
(tests/chart/prometheusrule-test.yaml), which must show every alert both firing and not firing; every series an
expression selects is one the operator exposes (or a recording rule of the chart), and every alert's runbook is in
docs/operations.md."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tksh.metrics import OperatorMetrics

from .helpers import HERE, REPO_ROOT, Obj, one, render, run_helm, template_args
from .promql import exposed_series, rule_names, series_names

UNIT_TESTS = HERE / "prometheusrule-test.yaml"


@pytest.fixture(scope="module")
def rule_spec(helm: Path) -> dict[str, Any]:
    objs: list[Obj] = render(helm, set_values={"metrics.prometheusRule.enabled": "true"})
    spec: dict[str, Any] = one(objs, "PrometheusRule")["spec"]
    return spec


@pytest.fixture
def rules_dir(rule_spec: dict[str, Any], tmp_path: Path) -> Path:
    """rules.yaml (the PrometheusRule's spec, a Prometheus rule file) beside a copy of the unit tests."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_spec, sort_keys=False, allow_unicode=True))
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    return tmp_path


def promtool_run(promtool: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_rules_pass_promtool_check(promtool: Path, rules_dir: Path) -> None:
    proc = promtool_run(promtool, ["check", "rules", "rules.yaml"], rules_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_alert_unit_tests_pass(promtool: Path, rules_dir: Path) -> None:
    proc = promtool_run(promtool, ["test", "rules", UNIT_TESTS.name], rules_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_unit_tests_fail_when_an_alert_changes(promtool: Path, rules_dir: Path) -> None:
    """The unit tests can fail: a threshold moved in the rules makes promtool report it."""
    rules = yaml.safe_load((rules_dir / "rules.yaml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "TkshDirectoryInvalidEntries":
                rule["expr"] = rule["expr"].replace("> 0", "> 5")
    (rules_dir / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False, allow_unicode=True))
    proc = promtool_run(promtool, ["test", "rules", UNIT_TESTS.name], rules_dir)
    assert proc.returncode != 0
    assert "TkshDirectoryInvalidEntries" in proc.stdout + proc.stderr


def test_every_alert_is_tested_firing_and_not_firing(rule_spec: dict[str, Any]) -> None:
    alerts = {rule["alert"] for group in rule_spec["groups"] for rule in group["rules"] if "alert" in rule}
    assert alerts == {
        "TkshOperatorDown",
        "TkshOperatorReplicaDown",
        "TkshOperatorNotReady",
        "TkshReconcileErrors",
        "TkshWatchErrors",
        "TkshDirectoryInvalidEntries",
        "TkshIncidentOpen",
        "TkshRecoverySLAAtRisk",
        "TkshRecoverySLABreached",
        "TkshProbeTargetsUnknown",
        "TkshNotificationBacklog",
        "TkshNotificationsFailing",
        "TkshApplicationsOverdue",
    }
    tests = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    firing = {c["alertname"] for t in tests for c in t.get("alert_rule_test", []) if c.get("exp_alerts")}
    silent = {c["alertname"] for t in tests for c in t.get("alert_rule_test", []) if not c.get("exp_alerts")}
    assert alerts - firing == set(), "alerts never shown firing"
    assert alerts - silent == set(), "alerts never shown not firing"


def test_every_alert_has_severity_summary_description_and_runbook(rule_spec: dict[str, Any]) -> None:
    runbooks = (REPO_ROOT / "docs" / "operations.md").read_text()
    for group in rule_spec["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
            assert rule["for"], rule["alert"]
            assert rule["annotations"]["runbook_url"] == f"docs/operations.md#{rule['alert'].lower()}"
            assert f"\n### {rule['alert']}\n" in runbooks, f"no runbook heading for {rule['alert']}"


def test_every_series_selected_is_exposed_by_the_operator_or_recorded(rule_spec: dict[str, Any]) -> None:
    """A misspelt metric would make an alert silently never fire: every name must exist."""
    known = exposed_series(OperatorMetrics()) | rule_names(rule_spec["groups"])
    outside = {"up", "kube_statefulset_status_replicas_ready", "kube_statefulset_replicas"}  # Prometheus, KSM
    for group in rule_spec["groups"]:
        for rule in group["rules"]:
            unknown = series_names(rule["expr"]) - known - outside
            assert not unknown, f"{rule.get('alert') or rule.get('record')} selects unknown series {unknown}"


def test_sli_recording_rules_have_sloths_names_labels_and_windows(rule_spec: dict[str, Any]) -> None:
    rules = [r for g in rule_spec["groups"] for r in g["rules"] if r.get("record", "").startswith("slo:sli_error")]
    windows = {r["labels"]["sloth_window"]: r["record"] for r in rules}
    assert windows == {w: f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")}
    for rule in rules:
        if rule["labels"]["sloth_window"] != "30d":  # Sloth's 30d rule carries only sloth_window, as Sloth's does
            assert {k: rule["labels"][k] for k in ("sloth_id", "sloth_service", "sloth_slo")} == {
                "sloth_id": "tksh-target-availability", "sloth_service": "tksh", "sloth_slo": "target-availability"}
    meta = {r["record"] for g in rule_spec["groups"] for r in g["rules"] if "record" in r} - set(windows.values())
    assert meta == {"slo:objective:ratio", "slo:error_budget:ratio", "slo:time_period:days",
                    "slo:current_burn_rate:ratio", "slo:period_burn_rate:ratio",
                    "slo:period_error_budget_remaining:ratio", "sloth_slo_info"}


def test_objective_and_slo_rules_follow_the_values(helm: Path, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("metrics: {prometheusRule: {enabled: true, slo: {objective: 99.9}}}\n")
    spec = one(render(helm, [values]), "PrometheusRule")["spec"]
    (objective,) = [r for g in spec["groups"] for r in g["rules"] if r.get("record") == "slo:objective:ratio"]
    assert objective["expr"] == "vector(0.999)"
    spec = one(render(helm, set_values={"metrics.prometheusRule.enabled": "true",
                                        "metrics.prometheusRule.slo.enabled": "false"}), "PrometheusRule")["spec"]
    assert not [r for g in spec["groups"] for r in g["rules"] if "record" in r]


def test_recovery_at_risk_fires_at_the_minutes_set_into_an_incident(helm: Path) -> None:
    values = {"metrics.prometheusRule.enabled": "true", "metrics.prometheusRule.recoveryAtRisk.warningMinutes": "10",
              "metrics.prometheusRule.recoveryAtRisk.criticalMinutes": "20"}
    spec = one(render(helm, set_values=values), "PrometheusRule")["spec"]
    rules = [r for g in spec["groups"] for r in g["rules"] if r.get("alert") == "TkshRecoverySLAAtRisk"]
    assert [(r["labels"]["severity"], r["expr"].split(">=")[-1].strip()) for r in rules] == [
        ("warning", "600"), ("critical", "1200")]


def test_recovery_at_risk_critical_before_warning_is_refused_by_the_template(helm: Path) -> None:
    values = {"metrics.prometheusRule.enabled": "true", "metrics.prometheusRule.recoveryAtRisk.criticalMinutes": "30"}
    proc = run_helm(helm, template_args(set_values=values), check=False)
    assert proc.returncode != 0
    assert "recoveryAtRisk.criticalMinutes must be greater than warningMinutes" in proc.stderr
