"""The monitoring settings of the operator: read from TKSH_* variables, refused with a message naming them."""

from __future__ import annotations

import pytest

from tksh.config import ConfigError, OperatorConfig


def test_defaults_and_variables() -> None:
    default = OperatorConfig()
    assert (default.probe_concurrency, default.confirm_interval, default.recovery_threshold) == (512, 0.5, 2)
    assert (default.incident_namespace, default.alertmanager_url, default.control_urls) == ("tksh-system", "", ())
    config = OperatorConfig.from_env({
        "TKSH_PROBE_CONCURRENCY": "64", "TKSH_CONFIRM_INTERVAL": "1.5", "TKSH_RECOVERY_THRESHOLD": "3",
        "TKSH_PROBE_INTERVAL_CAP": "1", "TKSH_AVAILABILITY_INTERVAL": "30", "TKSH_INCIDENT_NAMESPACE": "tksh",
        "TKSH_ALERTMANAGER_URL": "http://alertmanager.monitoring:9093", "TKSH_ALERTMANAGER_REPOST": "45",
        "TKSH_STATUS_URL": "https://status.tksh.kz/status", "TKSH_FANOUT_WINDOW": "40",
        "TKSH_CONTROL_URLS": "https://kubernetes.default.svc/readyz, http://anchor.example.kz/",
    })
    assert (config.probe_concurrency, config.confirm_interval, config.recovery_threshold) == (64, 1.5, 3)
    assert (config.probe_interval_cap, config.availability_interval, config.alertmanager_repost) == (1.0, 30.0, 45.0)
    assert config.incident_namespace == "tksh" and config.status_url.endswith("/status")
    assert (default.fanout_window, config.fanout_window) == (100, 40)
    assert config.control_urls == ("https://kubernetes.default.svc/readyz", "http://anchor.example.kz/")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"probe_concurrency": 0}, "probe_concurrency: 0 must be at least 1"),
        ({"fanout_window": 0}, "fanout_window: 0 must be 1 to 1000"),
        ({"fanout_window": 5000}, "fanout_window: 5000 must be 1 to 1000"),
        ({"recovery_threshold": 11}, "recovery_threshold: 11 must be 1 to 10"),
        ({"confirm_interval": 0.0}, "confirm_interval: 0.0 must be a positive"),
        ({"availability_interval": float("inf")}, "availability_interval: inf must be a positive, finite"),
        ({"alertmanager_repost": -1.0}, "alertmanager_repost"),
        ({"probe_interval_cap": -1.0}, "probe_interval_cap"),
        ({"incident_namespace": "Tksh_System"}, "incident_namespace: 'Tksh_System' must be a namespace name"),
        ({"alertmanager_url": "alertmanager:9093"}, "alertmanager_url: 'alertmanager:9093' must be an http://"),
        ({"control_urls": ("http://ok.example.kz", "ftp://x")}, "control_urls: 'ftp://x' must be an http://"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        OperatorConfig(**changes)  # type: ignore[arg-type]


def test_a_bad_number_in_the_environment_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="TKSH_CONFIRM_INTERVAL: 'soon' is not a valid float"):
        OperatorConfig.from_env({"TKSH_CONFIRM_INTERVAL": "soon"})
