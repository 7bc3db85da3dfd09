"""Prometheus metrics of the operator, defined in one place.

Each operator instance owns its own ``CollectorRegistry`` (not the process-global one), so
tests can run several operators in one process and assert on their metrics independently.
"""

from __future__ import annotations

import dataclasses

from prometheus_client import CollectorRegistry, Counter, Gauge, Info
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

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The current value of one sample (for tests and the status command)."""
        return self.registry.get_sample_value(name, labels or {})
