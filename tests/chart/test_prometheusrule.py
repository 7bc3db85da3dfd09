"""The chart's PrometheusRule: promtool checks the rendered rules and runs their unit tests
(tests/chart/prometheusrule-test.yaml), which must show every alert both firing and not firing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import HERE, Obj, one, render

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
            if rule["alert"] == "TkshDirectoryInvalidEntries":
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
        "TkshDirectoryInvalidEntries",
    }
    tests = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    firing = {c["alertname"] for t in tests for c in t.get("alert_rule_test", []) if c.get("exp_alerts")}
    silent = {c["alertname"] for t in tests for c in t.get("alert_rule_test", []) if not c.get("exp_alerts")}
    assert alerts - firing == set(), "alerts never shown firing"
    assert alerts - silent == set(), "alerts never shown not firing"


def test_every_alert_has_severity_summary_and_description(rule_spec: dict[str, Any]) -> None:
    for group in rule_spec["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
            assert rule["for"], rule["alert"]
