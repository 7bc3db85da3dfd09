"""One monitored object's state as its task keeps it: incidents opened and recovered, Unknown, availability."""

from __future__ import annotations

import datetime

from tksh.monitoring.clock import OffsetClock
from tksh.monitoring.incidents import TargetRef, incident_name
from tksh.monitoring.machine import StateChange
from tksh.monitoring.targets import TargetState

T0 = datetime.datetime(2026, 7, 12, 9, 0, tzinfo=datetime.UTC)
S = datetime.timedelta(seconds=1)
TARGET = TargetRef("DigitalObject", "heat-billing", "housing", "uid-1")


def state(availability: dict[str, object] | None = None, open_incident: str | None = None) -> TargetState:
    return TargetState(TARGET, availability, open_incident, T0, incident_namespace="housing")


def test_an_outage_is_down_from_its_first_failed_probe_and_up_from_the_first_success() -> None:
    target = state()
    target.on_change(StateChange(TARGET.key, "Unknown", "Up", T0 + S), T0 + S)
    update = target.on_change(StateChange(TARGET.key, "Up", "Down", T0 + 100 * S, incident="opened",
                                          started_at=T0 + 90 * S, detected_at=T0 + 100 * S, failure="connect",
                                          message="connection refused"), T0 + 100 * S)
    name = incident_name(TARGET, T0 + 90 * S)
    assert update.create is not None and update.create["metadata"]["name"] == name
    assert update.status["openIncident"] == name and update.status["availability"]["state"] == "Down"
    assert update.status["availability"]["since"] == "2026-07-12T09:01:30Z"
    assert update.event is not None and update.event.reason == "TargetDown" and name in update.event.message
    assert target.downtime(T0 + 95 * S) == 5  # the outage counts from its first failed probe
    assert target.downtime(T0 + 100 * S) == 5

    back = target.on_change(StateChange(TARGET.key, "Down", "Up", T0 + 131 * S, incident="recovered",
                                        started_at=T0 + 90 * S, recovered_at=T0 + 130 * S,
                                        duration_seconds=40.0), T0 + 131 * S)
    assert back.recovered == (name, T0 + 130 * S) and back.create is None
    assert back.status["openIncident"] is None
    availability = back.status["availability"]
    assert availability["state"] == "Up" and availability["downtimeSeconds30d"] == 40
    assert availability["uptime24h"] == round(90 / 130, 6)  # the time before monitoring is unknown, not up
    assert availability["unknownSeconds30d"] == 30 * 86400 - 130
    assert [i["state"] for i in availability["history"]] == ["Unknown", "Up", "Down", "Up"]
    assert "end" not in availability["history"][-1]  # no nulls inside the list
    assert back.event is not None and back.event.reason == "TargetRecovered"
    assert target.downtime(T0 + 200 * S) == 30  # the rest of the outage, then nothing


def test_an_impaired_prober_is_unknown_with_an_event_and_no_incident() -> None:
    target = state()
    update = target.on_change(StateChange(TARGET.key, "Up", "Unknown", T0 + 5 * S), T0 + 5 * S)
    assert update.create is None and update.status["availability"]["state"] == "Unknown"
    assert update.event is not None and update.event.reason == "AvailabilityUnknown"
    assert "no owner notified" in update.event.message


def test_after_a_restart_the_history_continues_and_the_gap_is_unknown() -> None:
    before = state()
    before.on_change(StateChange(TARGET.key, "Unknown", "Up", T0), T0)
    before.last_checked_at = T0 + 3600 * S
    stored = before.status(T0 + 3600 * S)["availability"]
    after = TargetState(TARGET, stored, "heat-billing-x", T0 + 7200 * S, incident_namespace="housing")
    assert after.open_incident == "heat-billing-x"
    availability = after.status(T0 + 7200 * S)["availability"]
    assert availability["state"] == "Unknown" and availability["uptime24h"] == 1.0
    assert [(i["state"], i.get("end")) for i in availability["history"]] == [
        ("Up", "2026-07-12T10:00:00Z"), ("Unknown", None)]
    assert availability["unknownSeconds30d"] == 30 * 86400 - 3600


def test_the_offset_clock_only_moves_forward() -> None:
    clock = OffsetClock(start=T0)
    assert abs((clock() - T0).total_seconds()) < 60
    before = clock.offset
    moved = clock.advance(datetime.timedelta(minutes=15))
    assert moved - T0 >= datetime.timedelta(minutes=15)
    assert clock.offset - before == datetime.timedelta(minutes=15)
    clock.advance(60)
    try:
        clock.advance(-1)
    except ValueError as error:
        assert "forward" in str(error)
    else:  # pragma: no cover
        raise AssertionError("a step back was accepted")
