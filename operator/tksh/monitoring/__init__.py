"""Continuous monitoring (§33–34): probes, their scheduler and state machine, availability and the recovery SLA.

Pure asyncio and networking, nothing of Kubernetes: the operator's handlers turn what this package
reports into resources (Incidents, ``status.availability``), notifications and metrics.

* :mod:`~tksh.monitoring.probes` — one HTTP(S), TCP or TLS probe, timed by phase, failures classified
  (:class:`Prober`, :class:`ProbeSpec`, :class:`ProbeResult`);
* :mod:`~tksh.monitoring.machine` — the pure per-target state machine: confirmation, thresholds,
  recovery without flapping, ``Unknown`` while the prober is impaired (:class:`Machine`, :class:`StateChange`);
* :mod:`~tksh.monitoring.scheduler` — many targets probed concurrently, spread, with control targets
  (:class:`Scheduler`);
* :mod:`~tksh.monitoring.availability` — uptime by time with ``Unknown`` apart, time to restore
  (:class:`AvailabilityLog`, :func:`uptime`, :func:`restore_stats`);
* :mod:`~tksh.monitoring.sla` — the 1-hour recovery SLA: deadline, reminders, breach, verdict
  (:func:`due_transitions`, :func:`evaluate`).
"""

from tksh.monitoring.availability import (
    RETENTION,
    AvailabilityLog,
    Interval,
    RestoreStats,
    Uptime,
    percentile,
    restore_stats,
    uptime,
)
from tksh.monitoring.machine import Machine, Observation, OpenIncident, Policy, State, StateChange
from tksh.monitoring.probes import PHASES, Phase, Prober, ProbeResult, ProbeSpec, ProbeType
from tksh.monitoring.scheduler import Clock, ProbeFn, Scheduler, jitter, loop_clock, utc_now
from tksh.monitoring.sla import (
    RECOVERY_SLA,
    REMINDERS,
    SlaState,
    due_transitions,
    duration_seconds,
    evaluate,
    next_due_at,
    recovery_deadline,
    sent_transitions,
    verdict,
)

__all__ = [
    "PHASES",
    "RECOVERY_SLA",
    "REMINDERS",
    "RETENTION",
    "AvailabilityLog",
    "Clock",
    "Interval",
    "Machine",
    "Observation",
    "OpenIncident",
    "Phase",
    "Policy",
    "ProbeFn",
    "ProbeResult",
    "ProbeSpec",
    "ProbeType",
    "Prober",
    "RestoreStats",
    "Scheduler",
    "SlaState",
    "State",
    "StateChange",
    "Uptime",
    "due_transitions",
    "duration_seconds",
    "evaluate",
    "jitter",
    "loop_clock",
    "next_due_at",
    "percentile",
    "recovery_deadline",
    "restore_stats",
    "sent_transitions",
    "uptime",
    "utc_now",
    "verdict",
]
