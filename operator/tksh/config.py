"""Run-time configuration of the operator, from the CLI and environment, validated in one place."""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import re
import zoneinfo
from collections.abc import Callable, Mapping

from tksh.monitoring.machine import CONFIRM_INTERVAL, RECOVERY_THRESHOLD
from tksh.registration.plan import LifecycleConfig
from tksh.resources.common import EMAIL_PATTERN

_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_EMAIL = re.compile(EMAIL_PATTERN)  # the rule the lifecycle applies to the mailbox before it sends
_SENDER = re.compile(r"^[^@\s]+@[^@\s]+$")  # an envelope sender may be local (tksh@localhost)
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KEYS_SECRET_MAX = 253 - len("-public")
_MIN_TOKEN_LIFETIME = 5.0  # seconds: tokens expire on whole seconds, and are renewed after two thirds


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
    # Seconds a replica's peering keep-alive stays valid: a standby takes over at most this long after the active
    # replica died without saying goodbye (SIGKILL, node loss); kopf refreshes it every lifetime - 5..10 s.
    peering_lifetime: int = 60
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
    # seconds the API server waits for the webhook (the chart's admission.timeoutSeconds): what the webhook reads
    # from the API server is bounded to half of it, so that it answers with its own reason, not the server's timeout
    admission_timeout: float = 10.0
    fast: bool = False  # short backoffs and timeouts, for tests and the sandbox (TKSH_FAST); never in production
    # Access tokens (JWT) for Active grants and the signing keys (tksh.handlers.tokens). The operator owns the
    # Secret signing_keys_secret (private keys) and publishes "<that>-public" for the decision points.
    signing_keys_secret: str = "tksh-signing-keys"
    signing_keys_namespace: str = "default"  # the chart sets its release namespace
    token_issuer: str = "tksh-operator"  # the tokens' iss and aud: what `tksh authz` pins (--issuer, --audience)
    token_audience: str = "tksh-authz"
    token_lifetime: float = 86400.0  # seconds; renewed after two thirds, never past the access's end
    key_rotation_period: float = 30 * 86400.0  # seconds; at least twice token_lifetime
    # Continuous monitoring (§33–34, tksh.handlers.monitoring); see docs/operations.md.
    probe_concurrency: int = 512  # probes in flight at once
    confirm_interval: float = CONFIRM_INTERVAL  # seconds between the re-probes that confirm a failure (or a recovery)
    recovery_threshold: int = RECOVERY_THRESHOLD  # successful probes in a row that end an incident
    probe_interval_cap: float = 0.0  # > 0: at most this many seconds between probes (tests, the sandbox)
    availability_interval: float = 60.0  # seconds between writes of status.availability (and on every change)
    incident_namespace: str = "tksh-system"  # where incidents of central components live (the chart: its own)
    control_urls: tuple[str, ...] = ()  # known-good URLs; while they and all central components fail: Unknown
    alertmanager_url: str = ""  # Alertmanager's base URL (POST /api/v2/alerts); empty: no alerts
    alertmanager_repost: float = 60.0  # seconds between re-posts of a firing alert (below resolve_timeout)
    status_url: str = ""  # the public status page, linked from alerts (generatorURL)
    fanout_window: int = 100  # a central failure's notices to owners pending at once (tksh.monitoring.fanout)
    clock: Callable[[], datetime.datetime] | None = dataclasses.field(default=None, compare=False, repr=False)
    """The monitoring's time source (default: the system clock); tests pass a ``tksh.monitoring.clock.OffsetClock``."""

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
        if not 1 <= self.admission_timeout <= 30:  # the API server's range for a webhook's timeoutSeconds
            raise ConfigError(f"admission_timeout: {self.admission_timeout} must be 1 to 30 seconds")
        for name, seconds in (("test_time_limit", self.test_time_limit), ("test_retry", self.test_retry),
                              ("test_probe_interval", self.test_probe_interval)):
            if not (seconds > 0 and math.isfinite(seconds)):
                raise ConfigError(f"{name}: {seconds} must be a positive, finite number of seconds")
        if self.test_probe_interval * (self.test_probes - 1) >= self.test_time_limit:
            raise ConfigError(
                f"test_time_limit: {self.test_time_limit:g} s cannot fit {self.test_probes} probes "
                f"{self.test_probe_interval:g} s apart (test_probes, test_probe_interval)"
            )
        if bool(self.admission_certfile) != bool(self.admission_keyfile):
            raise ConfigError("admission_certfile and admission_keyfile: give both or neither")
        if not self.peering_name or not _NAMESPACE.match(self.peering_name):
            raise ConfigError(f"peering_name: {self.peering_name!r} must be a DNS-1123 label")
        if not 3 <= self.peering_lifetime <= 3600:
            raise ConfigError(f"peering_lifetime: {self.peering_lifetime} must be 3 to 3600 seconds (kopf refreshes "
                              "the keep-alive every second at the least)")
        self._check_tokens()
        self._check_monitoring()
        for name, path in (("kubeconfig", self.kubeconfig), ("admission_certfile", self.admission_certfile),
                           ("admission_keyfile", self.admission_keyfile)):
            if path and not os.path.isfile(path):
                raise ConfigError(f"{name}: {path!r} is not a file")
        for name, value in (("ops_host", self.ops_host), ("smtp_host", self.smtp_host),
                            ("admission_addr", self.admission_addr),
                            ("administrators_group", self.administrators_group)):
            if not value.strip():
                raise ConfigError(f"{name}: must not be empty")
        if not _SENDER.match(self.smtp_sender):
            raise ConfigError(f"smtp_sender: {self.smtp_sender!r} must be an e-mail address (name@host)")
        if self.administrator_mailbox and not _EMAIL.match(self.administrator_mailbox):
            raise ConfigError(f"administrator_mailbox: {self.administrator_mailbox!r} must be an e-mail address "
                              "(name@domain.tld), or empty for no reminders")
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"timezone: {self.timezone!r} is not a known IANA time zone (e.g. Asia/Almaty)") from None

    def _check_tokens(self) -> None:
        if len(self.signing_keys_secret) > _KEYS_SECRET_MAX or not _SUBDOMAIN.match(self.signing_keys_secret):
            raise ConfigError(f"signing_keys_secret: {self.signing_keys_secret!r} must be a Secret name (DNS-1123 "
                              f"subdomain) of at most {_KEYS_SECRET_MAX} characters (\"-public\" is appended)")
        if not _NAMESPACE.match(self.signing_keys_namespace):
            raise ConfigError(f"signing_keys_namespace: {self.signing_keys_namespace!r} must be a namespace name "
                              "(DNS-1123 label)")
        for name, value in (("token_issuer", self.token_issuer), ("token_audience", self.token_audience)):
            if not value or value != value.strip() or len(value) > 256:
                raise ConfigError(f"{name}: {value!r} must be non-empty, at most 256 characters, without "
                                  "surrounding spaces")
        if not (math.isfinite(self.token_lifetime) and self.token_lifetime >= _MIN_TOKEN_LIFETIME):
            raise ConfigError(f"token_lifetime: {self.token_lifetime:g} must be a finite number of seconds, at least "
                              f"{_MIN_TOKEN_LIFETIME:g}")
        if not (math.isfinite(self.key_rotation_period) and self.key_rotation_period >= 2 * self.token_lifetime):
            raise ConfigError(
                f"key_rotation_period: {self.key_rotation_period:g} s must be at least twice token_lifetime "
                f"({2 * self.token_lifetime:g} s): a retired key keeps verifying for one period, which must outlast "
                "every token it signed"
            )

    def _check_monitoring(self) -> None:
        if self.probe_concurrency < 1:
            raise ConfigError(f"probe_concurrency: {self.probe_concurrency} must be at least 1")
        if not 1 <= self.fanout_window <= 1000:
            raise ConfigError(f"fanout_window: {self.fanout_window} must be 1 to 1000 (each notice pending in it is "
                              "about 900 bytes of the Incident's status)")
        if not 1 <= self.recovery_threshold <= 10:
            raise ConfigError(f"recovery_threshold: {self.recovery_threshold} must be 1 to 10")
        for name, seconds in (("confirm_interval", self.confirm_interval),
                              ("availability_interval", self.availability_interval),
                              ("alertmanager_repost", self.alertmanager_repost)):
            if not (seconds > 0 and math.isfinite(seconds)):
                raise ConfigError(f"{name}: {seconds} must be a positive, finite number of seconds")
        if not (self.probe_interval_cap >= 0 and math.isfinite(self.probe_interval_cap)):
            raise ConfigError(f"probe_interval_cap: {self.probe_interval_cap} must be 0 (none) or a number of seconds")
        if not _NAMESPACE.match(self.incident_namespace):
            raise ConfigError(f"incident_namespace: {self.incident_namespace!r} must be a namespace name (DNS-1123 "
                              "label)")
        urls = [("alertmanager_url", self.alertmanager_url), ("status_url", self.status_url)]
        for url in (*urls, *(("control_urls", u) for u in self.control_urls)):
            if url[1] and not re.match(r"^https?://[^\s/?#]+(/\S*)?$", url[1]):
                raise ConfigError(f"{url[0]}: {url[1]!r} must be an http:// or https:// URL with a host")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> OperatorConfig:
        """Read ``TKSH_*`` variables (the Helm chart sets them); explicit overrides win."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if env.get("TKSH_NAMESPACES"):
            values["namespaces"] = tuple(ns.strip() for ns in env["TKSH_NAMESPACES"].split(",") if ns.strip())
        if env.get("TKSH_CONTROL_URLS"):
            values["control_urls"] = tuple(u.strip() for u in env["TKSH_CONTROL_URLS"].split(",") if u.strip())
        for field, var, kind in (
            ("server", "TKSH_SERVER", str),
            ("kubeconfig", "TKSH_KUBECONFIG", str),
            ("ops_port", "TKSH_OPS_PORT", int),
            ("peering_name", "TKSH_PEERING_NAME", str),
            ("priority", "TKSH_PRIORITY", int),
            ("peering_lifetime", "TKSH_PEERING_LIFETIME", int),
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
            ("admission_timeout", "TKSH_ADMISSION_TIMEOUT", float),
            ("signing_keys_secret", "TKSH_SIGNING_KEYS_SECRET", str),
            ("signing_keys_namespace", "TKSH_SIGNING_KEYS_NAMESPACE", str),
            ("token_issuer", "TKSH_TOKEN_ISSUER", str),
            ("token_audience", "TKSH_TOKEN_AUDIENCE", str),
            ("token_lifetime", "TKSH_TOKEN_LIFETIME", float),
            ("key_rotation_period", "TKSH_KEY_ROTATION_PERIOD", float),
            ("probe_concurrency", "TKSH_PROBE_CONCURRENCY", int),
            ("confirm_interval", "TKSH_CONFIRM_INTERVAL", float),
            ("recovery_threshold", "TKSH_RECOVERY_THRESHOLD", int),
            ("probe_interval_cap", "TKSH_PROBE_INTERVAL_CAP", float),
            ("availability_interval", "TKSH_AVAILABILITY_INTERVAL", float),
            ("incident_namespace", "TKSH_INCIDENT_NAMESPACE", str),
            ("alertmanager_url", "TKSH_ALERTMANAGER_URL", str),
            ("alertmanager_repost", "TKSH_ALERTMANAGER_REPOST", float),
            ("status_url", "TKSH_STATUS_URL", str),
            ("fanout_window", "TKSH_FANOUT_WINDOW", int),
        ):
            if var in env:
                try:
                    values[field] = kind(env[var])
                except ValueError as exc:
                    raise ConfigError(f"{var}: {env[var]!r} is not a valid {kind.__name__}") from exc
        for field, var in (("standalone", "TKSH_STANDALONE"), ("admission_insecure", "TKSH_ADMISSION_INSECURE"),
                           ("fast", "TKSH_FAST")):
            if var in env:
                flag = env[var].strip().lower()
                if flag not in _TRUE + _FALSE:
                    raise ConfigError(f"{var}: {env[var]!r} is not a boolean (true/false, 1/0, yes/no, on/off)")
                values[field] = flag in _TRUE
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
