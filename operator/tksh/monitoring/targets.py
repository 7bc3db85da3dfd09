"""One monitored object as the operator's task for it sees it: availability log, open incident, what to write.

:class:`TargetState` is pure: it takes the object's stored ``status.availability`` and
``status.openIncident``, then each :class:`~tksh.monitoring.machine.StateChange` of the object, and
answers with a :class:`TargetUpdate`: the ``status`` fields to merge-patch (only
``availability`` and ``openIncident``: a digital object's other status fields belong to its
registration lifecycle), the ``Incident`` to create, the recovery to hand to the incident, and the
Event to post. The glue performs them in that order (the incident first, so that ``openIncident``
never names an incident that does not exist).

Times: the outage is recorded as ``Down`` from its first failed probe (``startedAt``), and ``Up``
again from the first successful probe of the recovery, so that downtime is the incident's duration.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from tksh.conditions import rfc3339
from tksh.monitoring.availability import AvailabilityLog
from tksh.monitoring.incidents import TargetRef, incident_manifest, incident_name
from tksh.monitoring.machine import StateChange
from tksh.notify.outbox import parse_time

__all__ = ["Event", "TargetState", "TargetUpdate"]


@dataclasses.dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class TargetUpdate:
    """What one state change asks of the glue."""

    status: dict[str, Any]
    create: dict[str, Any] | None = None
    """The ``Incident`` manifest to create (a 409 means it already exists: fine)."""
    recovered: tuple[str, datetime.datetime] | None = None
    """``(incident name, recovered at)`` to hand over to the incident's task."""
    event: Event | None = None


class TargetState:
    """See the module description. ``incident_namespace`` is where the target's incidents live."""

    def __init__(
        self,
        target: TargetRef,
        availability: Mapping[str, Any] | None,
        open_incident: str | None,
        now: datetime.datetime,
        *,
        incident_namespace: str,
    ) -> None:
        self.target = target
        self.incident_namespace = incident_namespace
        self.log = AvailabilityLog.from_status(availability, now)
        self.log.record("Unknown", now)  # (re)started: nothing is known until the first probe
        self.open_incident = open_incident
        self.last_checked_at: datetime.datetime | None = None
        if availability and availability.get("lastCheckedAt"):
            self.last_checked_at = parse_time(str(availability["lastCheckedAt"]))
        self._watched_from = now
        self._down_counted = 0.0

    def status(self, now: datetime.datetime) -> dict[str, Any]:
        """``{"availability": ..., "openIncident": ...}`` as of ``now`` (a merge patch of just those keys)."""
        # Every key, nulls included: in a merge patch a missing key would keep a stale value.
        model = self.log.availability(now, self.last_checked_at)
        availability = model.model_dump(mode="json", by_alias=True)
        availability["history"] = [interval.to_kube() for interval in model.history]  # no nulls inside a list
        return {"availability": availability, "openIncident": self.open_incident}

    def downtime(self, now: datetime.datetime) -> float:
        """Seconds of ``Down`` recorded since the previous call (for ``tksh_downtime_seconds_total``).

        Counted over everything this task watched, so an outage recorded from its first failed probe (before
        the previous call) is counted whole.
        """
        total = self.log.uptime(self._watched_from, max(now, self._watched_from), now).down
        delta, self._down_counted = total - self._down_counted, total
        return max(0.0, delta)

    def on_change(self, change: StateChange, now: datetime.datetime) -> TargetUpdate:
        """Take one state change of the target into account."""
        who = self.target.shown
        if change.incident == "opened" and change.started_at is not None:
            self.log.record("Down", change.started_at)
            manifest = incident_manifest(self.target, change, self.incident_namespace)
            self.open_incident = incident_name(self.target, change.started_at)
            event = Event("Warning", "TargetDown",
                          f"{who} is down since {rfc3339(change.started_at)} ({change.failure}: {change.message}); "
                          f"Incident {self.open_incident} opened")
            return TargetUpdate(self.status(now), create=manifest, event=event)
        if change.incident == "recovered" and change.recovered_at is not None:
            self.log.record("Up", change.recovered_at)
            if change.started_at is not None:
                self.log.record_restore(change.started_at, change.recovered_at)
            name, self.open_incident = self.open_incident, None
            event = Event("Normal", "TargetRecovered",
                          f"{who} is up again since {rfc3339(change.recovered_at)} after "
                          f"{change.duration_seconds or 0:.0f} s" + (f"; Incident {name} recovered" if name else ""))
            return TargetUpdate(self.status(now), recovered=(name, change.recovered_at) if name else None, event=event)
        self.log.record(change.state, change.at)
        notice: Event | None = None
        if change.state == "Unknown":
            notice = Event("Normal", "AvailabilityUnknown",
                          f"{who}: the prober is impaired (its control targets fail), so a failing probe says "
                          "nothing about this object: availability unknown, no incident opened, no owner notified")
        elif change.state == "Down":
            notice = Event("Warning", "TargetDown", f"{who} is still down (Incident {self.open_incident})")
        return TargetUpdate(self.status(now), event=notice)
