"""Prometheus metrics of the operator, defined in one place.

Each operator instance owns its own ``CollectorRegistry`` (not the process-global one), so
tests can run several operators in one process and assert on their metrics independently.
"""

from __future__ import annotations

import dataclasses

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import generate_latest

from tksh import __version__


@dataclasses.dataclass
class OperatorMetrics:
    registry: CollectorRegistry = dataclasses.field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        self.info = Info("tksh_operator", "Build information of the tksh operator.", registry=r)
        self.info.info({"version": __version__})
        self.directory_functions = Gauge(
            "tksh_directory_functions",
            "SubjectFunction entries of the function directory (§15), by phase.",
            ["phase"],
            registry=r,
        )
        self.reconciliations = Counter(
            "tksh_reconciliations_total",
            "Reconciliations performed, by resource kind and result (ok, invalid, error).",
            ["kind", "result"],
            registry=r,
        )
        self.watch_errors = Counter(
            "tksh_watch_errors_total",
            "Watch-stream ERROR events other than 410 Gone (listed and watched again), by resource and code.",
            ["resource", "code"],
            registry=r,
        )

        self.applications = Gauge(
            "tksh_applications",
            "DigitalObject applications (§14–17), by phase.",
            ["phase"],
            registry=r,
        )
        self.applications_overdue = Gauge(
            "tksh_applications_overdue",
            "Applications under review past their 5-working-day deadline (§16).",
            registry=r,
        )
        self.notifications = Counter(
            "tksh_notifications",
            "Notification delivery attempts, by channel and result (delivered, retry, failed).",
            ["channel", "result"],
            registry=r,
        )
        self.notifications_pending = Gauge(
            "tksh_notifications_pending",
            "Outbox entries not yet delivered nor given up, over all objects.",
            registry=r,
        )
        self._pending_parts: dict[str, float] = {}

        # Access (§19–22): grants and their termination (§20).
        self.grants = Gauge(
            "tksh_grants",
            "AccessGrant objects, by phase (Pending, Active, Terminated).",
            ["phase"],
            registry=r,
        )
        self.grants_terminated = Counter(
            "tksh_grants_terminated",
            "Grants terminated, by §20 ground (EXPIRED, REVOKED, ... OTHER_BY_LAW), cascades included.",
            ["reason"],
            registry=r,
        )
        self.tokens_issued = Counter(
            "tksh_tokens_issued",
            "Access tokens (JWT) issued into a grant's Secret, by cause (new, rotation).",
            ["cause"],
            registry=r,
        )

        # Monitoring (§33–34): probes, incidents and the 1-hour recovery SLA.
        self.probe_success = Gauge(
            "tksh_probe_success",
            "1 if the last probe of the target succeeded, 0 if it failed (absent while Unknown).",
            ["kind", "namespace", "name"],
            registry=r,
        )
        self.probe_duration = Gauge(
            "tksh_probe_duration_seconds",
            "Duration of the last probe of the target, by phase (resolve, connect, tls, processing, transfer).",
            ["kind", "namespace", "name", "phase"],
            registry=r,
        )
        self.incidents_open = Gauge(
            "tksh_incidents_open",
            "Incidents not yet recovered.",
            registry=r,
        )
        self.incident_started = Gauge(
            "tksh_incident_started_timestamp_seconds",
            "Start (the first failed probe, Unix time) of the target's open incident; absent while none is open. "
            "Working order is due one hour later (§34.2).",
            ["kind", "namespace", "name"],
            registry=r,
        )
        self.time_to_restore = Histogram(
            "tksh_time_to_restore_seconds",
            "Time from an incident's first failed probe to its recovery.",
            buckets=(60, 300, 600, 900, 1800, 2700, 3600, 5400, 7200, 14400, 86400),
            registry=r,
        )
        self.sla_breaches = Counter(
            "tksh_sla_breaches",
            "Incidents not recovered within the 1-hour recovery deadline (§34).",
            registry=r,
        )
        self.downtime = Counter(
            "tksh_downtime_seconds",
            "Seconds of confirmed downtime (Unknown time excluded), by target.",
            ["kind", "namespace", "name"],
            registry=r,
        )
        self.notification_latency = Histogram(
            "tksh_notification_latency_seconds",
            "Time from the event a notification is about (e.g. the first failed probe) to its delivery.",
            ["channel"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=r,
        )

    def set_pending(self, part: str, value: float) -> None:
        """One outbox owner's count of pending entries (``registration``, ``grants``, ``incidents``):
        ``tksh_notifications_pending`` is the sum of every part, so no owner overwrites another's."""
        self._pending_parts[part] = value
        self.notifications_pending.set(sum(self._pending_parts.values()))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The current value of one sample (for tests and the status command)."""
        return self.registry.get_sample_value(name, labels or {})
