"""Run-time configuration of the operator, from the CLI and environment, validated in one place."""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
from collections.abc import Mapping

from tksh.registration.plan import LifecycleConfig

_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the setting and the rule."""


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    """Everything the operator process needs to know at start.

    ``server`` overrides the cluster connection (the embedded API server of the sandbox and
    tests, plain HTTP on loopback, no credentials); ``kubeconfig`` logs in with that file's
    current context; with neither, the in-cluster service account applies, then ``$KUBECONFIG``.
    """

    namespaces: tuple[str, ...] = ()  # empty: all namespaces (cluster-wide)
    server: str = ""
    kubeconfig: str = ""  # a kubeconfig file to log in with (its current context)
    ops_host: str = "0.0.0.0"
    ops_port: int = 8080  # /healthz, /readyz, /metrics
    standalone: bool = False  # no kopf peering (one replica, the sandbox, tests)
    peering_name: str = "tksh"
    priority: int = 0
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_sender: str = "tksh@localhost"
    administrators_group: str = "tksh:administrators"
    administrator_mailbox: str = ""
    timezone: str = "Asia/Almaty"
    # §17 integration test: this many probes in a row must pass within the time limit; a failed test is
    # retried after test_retry; probes are test_probe_interval seconds apart.
    test_probes: int = 3
    test_time_limit: float = 600.0  # seconds
    test_retry: float = 900.0  # seconds
    test_probe_interval: float = 5.0  # seconds
    # The validating admission webhook (§16: only administrators set spec.review). 0: not served.
    admission_port: int = 0
    admission_addr: str = "0.0.0.0"
    admission_insecure: bool = False  # plain HTTP (tests, local debugging); the API server needs HTTPS
    admission_certfile: str = ""  # PEM certificate and key; empty: kopf generates a self-signed pair
    admission_keyfile: str = ""
    fast: bool = False  # short backoffs and timeouts, for tests and the sandbox

    def __post_init__(self) -> None:
        for ns in self.namespaces:
            if not _NAMESPACE.match(ns):
                raise ConfigError(f"namespaces: {ns!r} is not a valid namespace name (DNS-1123 label)")
        for name, port in (("ops_port", self.ops_port), ("smtp_port", self.smtp_port),
                           ("admission_port", self.admission_port)):
            if not 0 <= port <= 65535:
                raise ConfigError(f"{name}: {port} is outside 0..65535")
        if self.server and not re.match(r"^https?://[^\s/]+", self.server):
            raise ConfigError(f"server: {self.server!r} must be an http(s) URL")
        if self.server and self.kubeconfig:
            raise ConfigError("server and kubeconfig: give one of them, not both")
        if self.test_probes < 1:
            raise ConfigError(f"test_probes: {self.test_probes} must be at least 1")
        for name, seconds in (("test_time_limit", self.test_time_limit), ("test_retry", self.test_retry),
                              ("test_probe_interval", self.test_probe_interval)):
            if not seconds > 0:
                raise ConfigError(f"{name}: {seconds} must be a positive number of seconds")
        if self.test_probe_interval * (self.test_probes - 1) >= self.test_time_limit:
            raise ConfigError(
                f"test_time_limit: {self.test_time_limit:g} s cannot fit {self.test_probes} probes "
                f"{self.test_probe_interval:g} s apart (test_probes, test_probe_interval)"
            )
        if bool(self.admission_certfile) != bool(self.admission_keyfile):
            raise ConfigError("admission_certfile and admission_keyfile: give both or neither")
        if not self.peering_name or not _NAMESPACE.match(self.peering_name):
            raise ConfigError(f"peering_name: {self.peering_name!r} must be a DNS-1123 label")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> OperatorConfig:
        """Read ``TKSH_*`` variables (the Helm chart sets them); explicit overrides win."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if env.get("TKSH_NAMESPACES"):
            values["namespaces"] = tuple(ns.strip() for ns in env["TKSH_NAMESPACES"].split(",") if ns.strip())
        for field, var, kind in (
            ("server", "TKSH_SERVER", str),
            ("kubeconfig", "TKSH_KUBECONFIG", str),
            ("ops_port", "TKSH_OPS_PORT", int),
            ("peering_name", "TKSH_PEERING_NAME", str),
            ("priority", "TKSH_PRIORITY", int),
            ("smtp_host", "TKSH_SMTP_HOST", str),
            ("smtp_port", "TKSH_SMTP_PORT", int),
            ("smtp_sender", "TKSH_SMTP_SENDER", str),
            ("administrators_group", "TKSH_ADMINISTRATORS_GROUP", str),
            ("administrator_mailbox", "TKSH_ADMINISTRATOR_MAILBOX", str),
            ("timezone", "TKSH_TIMEZONE", str),
            ("test_probes", "TKSH_TEST_PROBES", int),
            ("test_time_limit", "TKSH_TEST_TIME_LIMIT", float),
            ("test_retry", "TKSH_TEST_RETRY", float),
            ("test_probe_interval", "TKSH_TEST_PROBE_INTERVAL", float),
            ("admission_port", "TKSH_ADMISSION_PORT", int),
            ("admission_addr", "TKSH_ADMISSION_ADDR", str),
            ("admission_certfile", "TKSH_ADMISSION_CERTFILE", str),
            ("admission_keyfile", "TKSH_ADMISSION_KEYFILE", str),
        ):
            if var in env:
                try:
                    values[field] = kind(env[var])
                except ValueError as exc:
                    raise ConfigError(f"{var}: {env[var]!r} is not a valid {kind.__name__}") from exc
        for field, var in (("standalone", "TKSH_STANDALONE"), ("admission_insecure", "TKSH_ADMISSION_INSECURE")):
            if var in env:
                values[field] = env[var].lower() in ("1", "true", "yes")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def lifecycle(self) -> LifecycleConfig:
        """What the registration lifecycle (``tksh.registration``) needs of this configuration."""
        return LifecycleConfig(
            timezone=self.timezone,
            administrator_mailbox=self.administrator_mailbox,
            test_probes=self.test_probes,
            test_time_limit=datetime.timedelta(seconds=self.test_time_limit),
            test_retry=datetime.timedelta(seconds=self.test_retry),
        )
