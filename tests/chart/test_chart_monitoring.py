"""The chart offline, for monitoring (§33–34): the operator's environment (incident namespace, Alertmanager, controls,
status page), the egress its probes need, the namespaces it must watch, and the values schema of these keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tksh.config import OperatorConfig

from .helpers import NAMESPACE, Obj, env_of, one, render, run_helm, template_args


def operator_env(objs: list[Obj]) -> dict[str, dict[str, Any]]:
    return env_of(one(objs, "StatefulSet")["spec"]["template"]["spec"]["containers"][0])


def parsed(objs: list[Obj]) -> OperatorConfig:
    """The operator's configuration from the rendered environment, with its own parser (files left out)."""
    plain = {name: e["value"] for name, e in operator_env(objs).items() if "value" in e}
    plain = {k: v for k, v in plain.items() if k not in ("TKSH_ADMISSION_CERTFILE", "TKSH_ADMISSION_KEYFILE")}
    return OperatorConfig.from_env({**plain, "TKSH_PRIORITY": "0"})


def test_incidents_of_central_components_go_to_the_release_namespace(rendered_default: list[Obj]) -> None:
    env = operator_env(rendered_default)
    assert env["TKSH_INCIDENT_NAMESPACE"] == {"name": "TKSH_INCIDENT_NAMESPACE", "value": NAMESPACE}
    for optional in ("TKSH_ALERTMANAGER_URL", "TKSH_CONTROL_URLS", "TKSH_STATUS_URL"):
        assert optional not in env  # empty values: the operator's defaults (no alerts, no controls, no link)
    config = parsed(rendered_default)
    assert (config.incident_namespace, config.alertmanager_url, config.control_urls, config.status_url) == (
        NAMESPACE, "", (), "")


def test_incident_namespace_follows_the_release_namespace(helm: Path) -> None:
    config = parsed(render(helm, namespace="tksh-prod"))
    assert config.incident_namespace == "tksh-prod"


def test_monitoring_values_reach_the_operator(rendered_all: list[Obj]) -> None:
    config = parsed(rendered_all)
    assert config.alertmanager_url == "http://alertmanager-operated.monitoring:9093"
    assert config.control_urls == ("http://tksh-authz.tksh-system:8081/readyz", "https://www.gov.kz/")
    assert config.status_url == "https://status.tksh.example.kz/status"


def test_a_namespaced_operator_must_watch_the_release_namespace(helm: Path) -> None:
    proc = run_helm(helm, template_args(extra=["--set-json", 'operator.namespaces=["tksh-apps"]']), check=False)
    assert proc.returncode != 0
    assert 'operator.namespaces: must include the release namespace "tksh-system"' in proc.stderr
    assert "TKSH_INCIDENT_NAMESPACE" in proc.stderr  # says why
    objs = render(helm, extra=["--set-json", f'operator.namespaces=["tksh-apps","{NAMESPACE}"]'])
    assert parsed(objs).namespaces == ("tksh-apps", NAMESPACE)


def probe_rule(objs: list[Obj]) -> dict[str, Any]:
    """The operator's egress rule after DNS, the API server and the SMTP relay."""
    egress = one(objs, "NetworkPolicy", "tksh-operator")["spec"]["egress"]
    assert len(egress) == 4, egress
    return dict(egress[3])


def test_probes_may_leave_for_any_tcp_endpoint_by_default(rendered_default: list[Obj]) -> None:
    """Digital objects' endpoints are anywhere, on any port: every TCP port to any address, nothing else (no UDP)."""
    assert probe_rule(rendered_default) == {"ports": [{"protocol": "TCP"}]}


def test_probe_egress_can_be_narrowed_or_turned_off(rendered_all: list[Obj], helm: Path) -> None:
    assert probe_rule(rendered_all) == {
        "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 8443}],
        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}
    off = render(helm, set_values={"networkPolicy.probes.enabled": "false"})
    egress = one(off, "NetworkPolicy", "tksh-operator")["spec"]["egress"]
    assert len(egress) == 3 and all(p.get("port") for rule in egress for p in rule["ports"])


BAD_VALUES = [
    pytest.param({"operator.monitoring.alertmanagerUrl": "alertmanager:9093"},
                 ["/operator/monitoring/alertmanagerUrl", "pattern"], id="alertmanager-url-scheme"),
    pytest.param({"operator.monitoring.statusUrl": "ftp://status.example.kz"},
                 ["/operator/monitoring/statusUrl", "pattern"], id="status-url-scheme"),
    pytest.param({"operator.monitoring.controlUrls": ["http://a.example.kz/x,y"]},
                 ["/operator/monitoring/controlUrls/0", "pattern"], id="control-url-comma"),
    pytest.param({"operator.monitoring.controlUrls": "http://a.example.kz"},
                 ["/operator/monitoring/controlUrls", "want array"], id="control-urls-list"),
    pytest.param({"operator.monitoring.typo": 1}, ["/operator/monitoring", "typo"], id="monitoring-unknown-key"),
    pytest.param({"networkPolicy.probes.ports": [0]}, ["/networkPolicy/probes/ports/0", "minimum"],
                 id="probe-port-range"),
    pytest.param({"networkPolicy.probes.enabled": "yes"}, ["/networkPolicy/probes/enabled", "want boolean"],
                 id="probes-enabled-bool"),
]


@pytest.mark.parametrize(("values", "expected"), BAD_VALUES)
def test_schema_refuses_bad_monitoring_values(helm: Path, values: dict[str, Any], expected: list[str]) -> None:
    extra = [arg for key, value in values.items() for arg in ("--set-json", f"{key}={json.dumps(value)}")]
    proc = run_helm(helm, template_args(extra=extra), check=False)
    assert proc.returncode != 0, f"accepted {values}"
    assert "values don't meet the specifications of the schema" in proc.stderr
    for fragment in expected:
        assert fragment in proc.stderr, proc.stderr
