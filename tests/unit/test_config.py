"""``OperatorConfig``: every ``TKSH_*`` variable is read, and every rule refuses bad values by naming the setting."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

from tksh.config import ConfigError, OperatorConfig


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Files that exist: a kubeconfig and the webhook's certificate and key."""
    paths = {"kubeconfig": tmp_path / "kubeconfig", "certfile": tmp_path / "tls.crt", "keyfile": tmp_path / "tls.key"}
    for path in paths.values():
        path.write_text("placeholder\n")
    return {name: str(path) for name, path in paths.items()}


def test_environment_is_read_and_overrides_win() -> None:
    config = OperatorConfig.from_env(
        {"TKSH_NAMESPACES": "tksh, housing", "TKSH_SMTP_PORT": "2525", "TKSH_STANDALONE": "true"},
        smtp_host="mail.local",
    )
    assert config.namespaces == ("tksh", "housing")
    assert config.smtp_port == 2525
    assert config.standalone is True
    assert config.smtp_host == "mail.local"


def test_an_empty_environment_gives_the_defaults() -> None:
    assert OperatorConfig.from_env({}) == OperatorConfig()
    config = OperatorConfig()
    assert (config.timezone, config.administrator_mailbox, config.namespaces) == ("Asia/Almaty", "", ())
    assert (config.test_probes, config.test_time_limit, config.test_retry, config.test_probe_interval) == (
        3, 600.0, 900.0, 5.0)
    assert (config.admission_port, config.admission_insecure) == (0, False)


def test_none_overrides_leave_the_environment_alone() -> None:
    config = OperatorConfig.from_env({"TKSH_PRIORITY": "7"}, priority=None, ops_port=None)
    assert (config.priority, config.ops_port) == (7, 8080)


@pytest.mark.parametrize(
    ("var", "raw", "field", "expected"),
    [
        ("TKSH_NAMESPACES", " tksh ,, housing ,", "namespaces", ("tksh", "housing")),
        ("TKSH_SERVER", "http://127.0.0.1:8001", "server", "http://127.0.0.1:8001"),
        ("TKSH_OPS_PORT", "9090", "ops_port", 9090),
        ("TKSH_PEERING_NAME", "tksh-blue", "peering_name", "tksh-blue"),
        ("TKSH_PRIORITY", "-3", "priority", -3),
        ("TKSH_SMTP_HOST", "relay.tksh.kz", "smtp_host", "relay.tksh.kz"),
        ("TKSH_SMTP_PORT", "587", "smtp_port", 587),
        ("TKSH_SMTP_SENDER", "noreply@tksh.kz", "smtp_sender", "noreply@tksh.kz"),
        ("TKSH_ADMINISTRATORS_GROUP", "oidc:tksh-admins", "administrators_group", "oidc:tksh-admins"),
        ("TKSH_ADMINISTRATOR_MAILBOX", "reviews@tksh.gov.kz", "administrator_mailbox", "reviews@tksh.gov.kz"),
        ("TKSH_ADMINISTRATOR_MAILBOX", "", "administrator_mailbox", ""),
        ("TKSH_TIMEZONE", "Asia/Qostanay", "timezone", "Asia/Qostanay"),
        ("TKSH_TIMEZONE", "UTC", "timezone", "UTC"),
        ("TKSH_TEST_PROBES", "5", "test_probes", 5),
        ("TKSH_TEST_TIME_LIMIT", "120.5", "test_time_limit", 120.5),
        ("TKSH_TEST_RETRY", "60", "test_retry", 60.0),
        ("TKSH_TEST_PROBE_INTERVAL", "0.25", "test_probe_interval", 0.25),
        ("TKSH_ADMISSION_PORT", "9443", "admission_port", 9443),
        ("TKSH_ADMISSION_ADDR", "127.0.0.1", "admission_addr", "127.0.0.1"),
        ("TKSH_ADMISSION_TIMEOUT", "5", "admission_timeout", 5.0),
        ("TKSH_STANDALONE", "1", "standalone", True),
        ("TKSH_STANDALONE", "Yes", "standalone", True),
        ("TKSH_STANDALONE", "on", "standalone", True),
        ("TKSH_STANDALONE", "false", "standalone", False),
        ("TKSH_STANDALONE", "0", "standalone", False),
        ("TKSH_STANDALONE", "", "standalone", False),
        ("TKSH_ADMISSION_INSECURE", "true", "admission_insecure", True),
        ("TKSH_ADMISSION_INSECURE", "no", "admission_insecure", False),
        ("TKSH_PEERING_LIFETIME", "15", "peering_lifetime", 15),
        ("TKSH_FAST", "true", "fast", True),
        ("TKSH_FAST", "1", "fast", True),
        ("TKSH_FAST", "off", "fast", False),
        ("TKSH_FAST", "", "fast", False),
    ],
)
def test_each_variable_sets_its_setting(var: str, raw: str, field: str, expected: Any) -> None:
    config = OperatorConfig.from_env({var: raw})
    assert getattr(config, field) == expected
    assert type(getattr(config, field)) is type(expected)


def test_file_settings_are_read(files: dict[str, str]) -> None:
    config = OperatorConfig.from_env({"TKSH_KUBECONFIG": files["kubeconfig"],
                                      "TKSH_ADMISSION_CERTFILE": files["certfile"],
                                      "TKSH_ADMISSION_KEYFILE": files["keyfile"]})
    assert (config.kubeconfig, config.admission_certfile, config.admission_keyfile) == (
        files["kubeconfig"], files["certfile"], files["keyfile"])


def test_the_lifecycle_gets_the_registration_settings() -> None:
    config = OperatorConfig.from_env({"TKSH_TIMEZONE": "Asia/Aqtobe", "TKSH_ADMINISTRATOR_MAILBOX": "a@tksh.kz",
                                      "TKSH_TEST_PROBES": "4", "TKSH_TEST_TIME_LIMIT": "90",
                                      "TKSH_TEST_RETRY": "30", "TKSH_TEST_PROBE_INTERVAL": "2"})
    lifecycle = config.lifecycle()
    assert (lifecycle.timezone, lifecycle.administrator_mailbox, lifecycle.test_probes) == (
        "Asia/Aqtobe", "a@tksh.kz", 4)
    assert lifecycle.test_time_limit == datetime.timedelta(seconds=90)
    assert lifecycle.test_retry == datetime.timedelta(seconds=30)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        # values that are not of the setting's type name the variable
        ({"TKSH_SMTP_PORT": "twenty-five"}, "TKSH_SMTP_PORT: 'twenty-five' is not a valid int"),
        ({"TKSH_OPS_PORT": "80.5"}, "TKSH_OPS_PORT"),
        ({"TKSH_PRIORITY": "high"}, "TKSH_PRIORITY"),
        ({"TKSH_ADMISSION_PORT": "https"}, "TKSH_ADMISSION_PORT"),
        ({"TKSH_TEST_PROBES": "3.5"}, "TKSH_TEST_PROBES"),
        ({"TKSH_TEST_TIME_LIMIT": "10m"}, "TKSH_TEST_TIME_LIMIT: '10m' is not a valid float"),
        ({"TKSH_TEST_RETRY": "soon"}, "TKSH_TEST_RETRY"),
        ({"TKSH_TEST_PROBE_INTERVAL": ""}, "TKSH_TEST_PROBE_INTERVAL"),
        ({"TKSH_STANDALONE": "ture"}, "TKSH_STANDALONE: 'ture' is not a boolean"),
        ({"TKSH_ADMISSION_INSECURE": "maybe"}, "TKSH_ADMISSION_INSECURE"),
        ({"TKSH_FAST": "quick"}, "TKSH_FAST: 'quick' is not a boolean"),
        ({"TKSH_PEERING_LIFETIME": "2"}, "peering_lifetime: 2 must be 3 to 3600 seconds"),
        ({"TKSH_PEERING_LIFETIME": "1.5"}, "TKSH_PEERING_LIFETIME: '1.5' is not a valid int"),
        # the rules of __post_init__ name the setting
        ({"TKSH_SMTP_PORT": "70000"}, "smtp_port: 70000 is outside 0..65535"),
        ({"TKSH_OPS_PORT": "-1"}, "ops_port"),
        ({"TKSH_ADMISSION_PORT": "65536"}, "admission_port"),
        ({"TKSH_ADMISSION_TIMEOUT": "0.5"}, "admission_timeout: 0.5 must be 1 to 30 seconds"),
        ({"TKSH_ADMISSION_TIMEOUT": "31"}, "admission_timeout: 31.0 must be 1 to 30 seconds"),
        ({"TKSH_ADMISSION_TIMEOUT": "nan"}, "admission_timeout: nan must be 1 to 30 seconds"),
        ({"TKSH_ADMISSION_TIMEOUT": "10s"}, "TKSH_ADMISSION_TIMEOUT: '10s' is not a valid float"),
        ({"TKSH_NAMESPACES": "Bad_Name"}, "namespaces: 'Bad_Name' is not a valid namespace name"),
        ({"TKSH_SERVER": "ftp://x"}, "server: 'ftp://x' must be an http"),
        ({"TKSH_SERVER": "http://127.0.0.1", "TKSH_KUBECONFIG": "{kubeconfig}"}, "server and kubeconfig"),
        ({"TKSH_KUBECONFIG": "/nonexistent/kubeconfig"}, "kubeconfig: '/nonexistent/kubeconfig' is not a file"),
        ({"TKSH_TEST_PROBES": "0"}, "test_probes: 0 must be at least 1"),
        ({"TKSH_TEST_TIME_LIMIT": "0"}, "test_time_limit: 0.0 must be a positive, finite number of seconds"),
        ({"TKSH_TEST_TIME_LIMIT": "inf"}, "test_time_limit: inf must be a positive, finite"),
        ({"TKSH_TEST_RETRY": "-5"}, "test_retry: -5.0 must be a positive"),
        ({"TKSH_TEST_RETRY": "nan"}, "test_retry: nan must be a positive"),
        ({"TKSH_TEST_PROBE_INTERVAL": "0"}, "test_probe_interval: 0.0 must be a positive"),
        ({"TKSH_TEST_PROBES": "10", "TKSH_TEST_PROBE_INTERVAL": "60", "TKSH_TEST_TIME_LIMIT": "540"},
         "test_time_limit: 540 s cannot fit 10 probes 60 s apart"),
        ({"TKSH_ADMISSION_CERTFILE": "{certfile}"}, "admission_certfile and admission_keyfile: give both or neither"),
        ({"TKSH_ADMISSION_KEYFILE": "{keyfile}"}, "admission_certfile and admission_keyfile"),
        ({"TKSH_ADMISSION_CERTFILE": "/nonexistent/tls.crt", "TKSH_ADMISSION_KEYFILE": "{keyfile}"},
         "admission_certfile: '/nonexistent/tls.crt' is not a file"),
        ({"TKSH_ADMISSION_CERTFILE": "{certfile}", "TKSH_ADMISSION_KEYFILE": "/nonexistent/tls.key"},
         "admission_keyfile: '/nonexistent/tls.key' is not a file"),
        ({"TKSH_PEERING_NAME": ""}, "peering_name: '' must be a DNS-1123 label"),
        ({"TKSH_PEERING_NAME": "Tksh_Peering"}, "peering_name"),
        ({"TKSH_SMTP_HOST": " "}, "smtp_host: must not be empty"),
        ({"TKSH_ADMISSION_ADDR": ""}, "admission_addr: must not be empty"),
        ({"TKSH_ADMINISTRATORS_GROUP": ""}, "administrators_group: must not be empty"),
        ({"TKSH_SMTP_SENDER": "tksh"}, "smtp_sender: 'tksh' must be an e-mail address"),
        ({"TKSH_ADMINISTRATOR_MAILBOX": "admin"}, "administrator_mailbox: 'admin' must be an e-mail address"),
        ({"TKSH_ADMINISTRATOR_MAILBOX": "admin@localhost"}, "administrator_mailbox: 'admin@localhost'"),
        ({"TKSH_ADMINISTRATOR_MAILBOX": "a@tksh.kz, b@tksh.kz"}, "administrator_mailbox"),
        ({"TKSH_TIMEZONE": "Almaty"}, "timezone: 'Almaty' is not a known IANA time zone"),
        ({"TKSH_TIMEZONE": "Asia/Astana/"}, "timezone"),
        ({"TKSH_TIMEZONE": "../etc/passwd"}, "timezone: '../etc/passwd'"),
        ({"TKSH_TIMEZONE": ""}, "timezone: ''"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str, files: dict[str, str]) -> None:
    env = {var: raw.format(**files) for var, raw in env.items()}
    with pytest.raises(ConfigError) as refused:
        OperatorConfig.from_env(env)
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("namespaces", ("ok", "-bad"), "namespaces: '-bad'"),
        ("test_probes", -1, "test_probes"),
        ("timezone", "Mars/Olympus_Mons", "timezone: 'Mars/Olympus_Mons'"),
        ("administrator_mailbox", "reviews at tksh.kz", "administrator_mailbox"),
    ],
)
def test_overrides_are_validated_too(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        OperatorConfig.from_env({}, **{field: value})


# --- access tokens and signing keys (tksh.handlers.tokens) -----------------------------------------------------------


def test_token_and_key_settings_are_read() -> None:
    config = OperatorConfig.from_env({
        "TKSH_SIGNING_KEYS_SECRET": "keys.tksh", "TKSH_SIGNING_KEYS_NAMESPACE": "tksh-system",
        "TKSH_TOKEN_ISSUER": "https://tksh.example/", "TKSH_TOKEN_AUDIENCE": "decisions",
        "TKSH_TOKEN_LIFETIME": "3600", "TKSH_KEY_ROTATION_PERIOD": "7200",
    })
    assert (config.signing_keys_secret, config.signing_keys_namespace) == ("keys.tksh", "tksh-system")
    assert (config.token_issuer, config.token_audience) == ("https://tksh.example/", "decisions")
    assert (config.token_lifetime, config.key_rotation_period) == (3600.0, 7200.0)


def test_token_defaults_match_what_the_decision_point_pins() -> None:
    from tksh.access.server import DEFAULT_AUDIENCE, DEFAULT_ISSUER

    config = OperatorConfig()
    assert (config.token_issuer, config.token_audience) == (DEFAULT_ISSUER, DEFAULT_AUDIENCE)
    assert (config.token_lifetime, config.key_rotation_period) == (86400.0, 30 * 86400.0)
    assert config.signing_keys_secret == "tksh-signing-keys"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TKSH_SIGNING_KEYS_SECRET": "Keys"}, "signing_keys_secret: 'Keys' must be a Secret name"),
        ({"TKSH_SIGNING_KEYS_SECRET": "k" * 247}, "at most 246 characters"),
        ({"TKSH_SIGNING_KEYS_SECRET": ""}, "signing_keys_secret: ''"),
        ({"TKSH_SIGNING_KEYS_NAMESPACE": "tksh.system"}, "signing_keys_namespace: 'tksh.system' must be a namespace"),
        ({"TKSH_TOKEN_ISSUER": ""}, "token_issuer: '' must be non-empty"),
        ({"TKSH_TOKEN_AUDIENCE": " aud"}, "token_audience: ' aud'"),
        ({"TKSH_TOKEN_LIFETIME": "soon"}, "TKSH_TOKEN_LIFETIME: 'soon' is not a valid float"),
        ({"TKSH_TOKEN_LIFETIME": "1"}, "token_lifetime: 1 must be a finite number of seconds, at least 5"),
        ({"TKSH_TOKEN_LIFETIME": "inf"}, "token_lifetime: inf"),
        ({"TKSH_TOKEN_LIFETIME": "nan"}, "token_lifetime: nan"),
        ({"TKSH_TOKEN_LIFETIME": "86400", "TKSH_KEY_ROTATION_PERIOD": "100000"},
         "key_rotation_period: 100000 s must be at least twice token_lifetime (172800 s)"),
        ({"TKSH_KEY_ROTATION_PERIOD": "inf"}, "key_rotation_period: inf"),
    ],
)
def test_bad_token_settings_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        OperatorConfig.from_env(env)
    assert message in str(refused.value)


def test_fast_mode_is_off_unless_asked_for_and_an_override_wins() -> None:
    """``TKSH_FAST`` (short kopf and outbox backoffs) lets ``tksh operator`` itself run in the tests' fast mode."""
    assert OperatorConfig.from_env({}).fast is False
    assert OperatorConfig.from_env({"TKSH_FAST": "yes"}).fast is True
    assert OperatorConfig.from_env({"TKSH_FAST": "yes"}, fast=False).fast is False


def test_the_peering_lifetime_bounds_a_standby_takeover_and_reaches_kopf() -> None:
    from tksh.handlers.settings import make_settings

    assert OperatorConfig().peering_lifetime == 60  # kopf's default: a standby takes over within a minute
    assert make_settings(OperatorConfig(peering_lifetime=7)).peering.lifetime == 7
