"""Run-time configuration of the operator, from the CLI and environment, validated in one place."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping

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
    fast: bool = False  # short backoffs and timeouts, for tests and the sandbox

    def __post_init__(self) -> None:
        for ns in self.namespaces:
            if not _NAMESPACE.match(ns):
                raise ConfigError(f"namespaces: {ns!r} is not a valid namespace name (DNS-1123 label)")
        for name, port in (("ops_port", self.ops_port), ("smtp_port", self.smtp_port)):
            if not 0 <= port <= 65535:
                raise ConfigError(f"{name}: {port} is outside 0..65535")
        if self.server and not re.match(r"^https?://[^\s/]+", self.server):
            raise ConfigError(f"server: {self.server!r} must be an http(s) URL")
        if self.server and self.kubeconfig:
            raise ConfigError("server and kubeconfig: give one of them, not both")
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
        ):
            if var in env:
                try:
                    values[field] = kind(env[var])
                except ValueError as exc:
                    raise ConfigError(f"{var}: {env[var]!r} is not a valid {kind.__name__}") from exc
        if "TKSH_STANDALONE" in env:
            values["standalone"] = env["TKSH_STANDALONE"].lower() in ("1", "true", "yes")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
