"""The availability state machine of one target: pure (no I/O, no clock), so every rule is tested alone.

The scheduler feeds it one :class:`Observation` per probe and it answers with its next state and
the :class:`StateChange` events to act on. The rules:

* a failure does not make a target ``Down``: it starts a *run*; while the run is shorter than
  ``failure_threshold`` the target keeps its state and is re-probed after ``confirm_interval``
  (:data:`CONFIRM_INTERVAL` by default) instead of a whole interval. The probe that completes the run confirms the
  outage: state ``Down``, an incident is ``opened`` with ``started_at`` = the start of the run's
  first failed probe and ``detected_at`` = the end of the confirming probe. A success resets the run;
* an open incident ends only after ``recovery_threshold`` successes in a row (re-probed after
  ``confirm_interval``); a failure in between resets that count, so a flapping target neither
  closes nor re-opens incidents. ``recovered_at`` is the start of the first success of that run;
* while the prober is impaired (its control targets fail too) a failed probe says nothing about
  the target: the target becomes ``Unknown``, runs are reset, no incident is opened (an open one
  stays open). A successful probe still counts as it always does (the target did answer): it
  keeps the target ``Up`` or counts toward a recovery. When the prober recovers, the target is
  re-evaluated by its next probes;
* ``Unknown`` (start-up, impairment) becomes ``Up`` on one success; it becomes ``Down`` after a
  full run of failures, or on one failure if an incident is already open (restored after a
  restart, or left open through an impairment: that outage was already confirmed).
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Final, Literal

from tksh.monitoring.probes import ProbeResult
from tksh.resources.common import Probe
from tksh.resources.incident import FailureClass

__all__ = [
    "CONFIRM_INTERVAL", "RECOVERY_THRESHOLD",
    "Machine", "Observation", "OpenIncident", "Policy", "State", "StateChange",
]

State = Literal["Up", "Down", "Unknown"]

CONFIRM_INTERVAL: Final = 0.5
"""The default seconds between the re-probes that confirm a failure or a recovery: the one source of the default of
``OperatorConfig.confirm_interval`` (``TKSH_CONFIRM_INTERVAL``), the scheduler, the monitor service and
:class:`Policy`. With the CRD's default probe (every 2 s, ``failureThreshold`` 3) a failure that answers is confirmed
at most 2 + 2 × 0.5 = 3 s after it began (docs/benchmarks.md, "Failure-to-notification latency")."""
RECOVERY_THRESHOLD: Final = 2
"""The default number of successful probes in a row that end an incident (``OperatorConfig.recovery_threshold``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Policy:
    """How many probes decide, and how far apart (seconds)."""

    failure_threshold: int = Probe.model_fields["failure_threshold"].default
    recovery_threshold: int = RECOVERY_THRESHOLD
    interval: float = float(Probe.model_fields["interval_seconds"].default)
    confirm_interval: float = CONFIRM_INTERVAL

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.recovery_threshold < 1:
            raise ValueError("thresholds must be at least 1")
        if self.interval <= 0 or self.confirm_interval <= 0:
            raise ValueError("intervals must be positive")


@dataclasses.dataclass(frozen=True, slots=True)
class Observation:
    """One probe's outcome as the machine sees it: when it ran and whether it passed."""

    ok: bool
    started_at: datetime.datetime
    finished_at: datetime.datetime
    failure: FailureClass | None = None
    message: str = ""

    @classmethod
    def of(cls, result: ProbeResult, started_at: datetime.datetime, finished_at: datetime.datetime) -> Observation:
        return cls(result.ok, started_at, finished_at, result.failure, result.message)


@dataclasses.dataclass(frozen=True, slots=True)
class OpenIncident:
    """The facts of a confirmed outage still open (restorable from an Incident after a restart)."""

    started_at: datetime.datetime
    detected_at: datetime.datetime
    failure: FailureClass
    message: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class StateChange:
    """A change of a target's state, and the incident opened or recovered with it, if any.

    ``at`` is when the change was decided (the end of the deciding probe, or when the prober's
    impairment changed). ``incident`` is ``"opened"`` (``started_at``, ``detected_at``, ``failure``,
    ``message`` describe the new outage) or ``"recovered"`` (the same facts of the outage that ended,
    plus ``recovered_at`` and ``duration_seconds`` = ``recovered_at - started_at``).
    """

    key: str
    previous: State
    state: State
    at: datetime.datetime
    incident: Literal["opened", "recovered"] | None = None
    started_at: datetime.datetime | None = None
    detected_at: datetime.datetime | None = None
    failure: FailureClass | None = None
    message: str = ""
    recovered_at: datetime.datetime | None = None
    duration_seconds: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Machine:
    """The state of one target; every method returns a new machine (and the state changes it emits)."""

    key: str
    policy: Policy = Policy()
    state: State = "Unknown"
    since: datetime.datetime | None = None
    failures: int = 0
    """Failures in a row in the current run."""
    successes: int = 0
    """Successes in a row while an incident is open."""
    run_started_at: datetime.datetime | None = None
    """Start of the first failed probe of the current run."""
    recovery_started_at: datetime.datetime | None = None
    """Start of the first successful probe of the current recovery run."""
    incident: OpenIncident | None = None
    impaired: bool = False

    @property
    def confirming(self) -> bool:
        """Between a first failure and its confirmation, or a first success and recovery."""
        return (self.incident is None and self.failures > 0) or (self.incident is not None and self.successes > 0)

    @property
    def next_delay(self) -> float:
        """Seconds until the next probe: short while confirming, the interval otherwise."""
        if self.confirming:
            return min(self.policy.confirm_interval, self.policy.interval)
        return self.policy.interval

    def would_confirm(self, observation: Observation) -> bool:
        """Whether this observation would open an incident (the scheduler checks its controls first)."""
        return (
            not observation.ok
            and not self.impaired
            and self.incident is None
            and self.failures + 1 >= self.policy.failure_threshold
        )

    def observe(self, observation: Observation) -> tuple[Machine, list[StateChange]]:
        """Take one probe's outcome into account."""
        at = observation.finished_at
        if self.impaired and not observation.ok:
            return self._reset()._move("Unknown", at)
        if observation.ok and self.state == "Up" and self.incident is None and not self.failures:
            return self, []  # the steady state, by far the most frequent: nothing changes (no copy)
        if observation.ok:
            machine = dataclasses.replace(self, failures=0, run_started_at=None)
            if machine.incident is None:
                return machine._move("Up", at)
            successes = machine.successes + 1
            recovery_started_at = machine.recovery_started_at or observation.started_at
            if successes < self.policy.recovery_threshold:
                return dataclasses.replace(machine, successes=successes, recovery_started_at=recovery_started_at), []
            incident = machine.incident
            machine, _ = dataclasses.replace(machine, successes=0, recovery_started_at=None, incident=None)._move(
                "Up", at
            )
            change = self._incident_change(
                "Up", at, "recovered", incident,
                recovered_at=recovery_started_at,
                duration_seconds=max(0.0, (recovery_started_at - incident.started_at).total_seconds()),
            )
            return machine, [change]

        machine = dataclasses.replace(
            self,
            successes=0,
            recovery_started_at=None,
            failures=self.failures + 1,
            run_started_at=self.run_started_at or observation.started_at,
        )
        if machine.incident is not None:
            return machine._move("Down", at)
        if machine.failures < self.policy.failure_threshold:
            return machine, []
        assert machine.run_started_at is not None
        incident = OpenIncident(
            started_at=machine.run_started_at,
            detected_at=at,
            failure=observation.failure or "unknown",
            message=observation.message,
        )
        machine = dataclasses.replace(machine, incident=incident, state="Down", since=at)
        return machine, [self._incident_change("Down", at, "opened", incident)]

    def _incident_change(
        self,
        state: State,
        at: datetime.datetime,
        what: Literal["opened", "recovered"],
        incident: OpenIncident,
        **recovery: Any,
    ) -> StateChange:
        """The change that opens or closes ``incident``, carrying its facts."""
        return StateChange(
            key=self.key, previous=self.state, state=state, at=at, incident=what,
            started_at=incident.started_at, detected_at=incident.detected_at,
            failure=incident.failure, message=incident.message, **recovery,
        )

    def impair(self) -> Machine:
        """The prober is impaired: a run of failures in progress is void; failures now mean ``Unknown``."""
        return dataclasses.replace(self._reset(), impaired=True)

    def restore(self) -> Machine:
        """The prober works again: the state stands until the next probes decide (a new run)."""
        return dataclasses.replace(self._reset(), impaired=False)

    def with_policy(self, policy: Policy) -> Machine:
        """The same state under new thresholds or intervals (the target's probe settings changed)."""
        return dataclasses.replace(self, policy=policy)

    def _reset(self) -> Machine:
        return dataclasses.replace(self, failures=0, successes=0, run_started_at=None, recovery_started_at=None)

    def _move(self, state: State, at: datetime.datetime) -> tuple[Machine, list[StateChange]]:
        if state == self.state:
            return self, []
        return dataclasses.replace(self, state=state, since=at), [StateChange(self.key, self.state, state, at)]
