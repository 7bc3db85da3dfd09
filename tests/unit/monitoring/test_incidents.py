"""Incidents as data: names, manifests, SLA fields, notices planned per recipient, webhook and alert bodies."""

from __future__ import annotations

import datetime
import re

import pytest

from tksh.monitoring.incidents import (
    Recipient,
    TargetRef,
    incident_alert,
    incident_manifest,
    incident_name,
    incident_params,
    open_fields,
    plan_entries,
    recovery_fields,
    transition_at,
    transition_of,
    transitions_in,
    webhook_payload,
)
from tksh.monitoring.machine import StateChange
from tksh.notify.outbox import enqueue_all
from tksh.resources.common import DNS_SUBDOMAIN_PATTERN
from tksh.resources.incident import Incident

T0 = datetime.datetime(2026, 7, 12, 9, 0, 7, 123456, tzinfo=datetime.UTC)
MIN = datetime.timedelta(minutes=1)
DOBJ = TargetRef("DigitalObject", "heat-billing", "housing", "uid-dobj")
CCOMP = TargetRef("CentralComponent", "gateway", None, "uid-cc")


def opened(target: TargetRef = DOBJ, message: str = "expected status 200, got 503") -> StateChange:
    return StateChange(target.key, "Up", "Down", T0 + 4 * MIN / 60, incident="opened", started_at=T0,
                       detected_at=T0 + 4 * MIN / 60, failure="http_status", message=message)


def incident(target: TargetRef = DOBJ, **status: object) -> Incident:
    manifest = incident_manifest(target, opened(target), "housing")
    manifest["metadata"]["uid"] = "uid-incident"
    return Incident.model_validate({**manifest, "status": status})


def test_the_name_is_a_function_of_the_target_and_the_start() -> None:
    name = incident_name(DOBJ, T0)
    assert name == incident_name(DOBJ, T0) and name.startswith("heat-billing-")
    assert incident_name(DOBJ, T0 + datetime.timedelta(microseconds=1)) != name
    assert incident_name(TargetRef("DigitalObject", "heat-billing", "other"), T0) != name
    assert incident_name(CCOMP, T0).startswith("ccomp-gateway-")
    long = incident_name(TargetRef("DigitalObject", "a" * 253, "ns"), T0)
    assert len(long) <= 253 and re.match(DNS_SUBDOMAIN_PATTERN, long)


def test_the_manifest_carries_the_facts_with_the_message_masked() -> None:
    manifest = incident_manifest(DOBJ, opened(message="refused for owner@example.kz"), "housing")
    spec = manifest["spec"]
    assert spec["target"] == {"kind": "DigitalObject", "name": "heat-billing", "namespace": "housing"}
    assert spec["startedAt"] == "2026-07-12T09:00:07Z" and spec["detectedAt"] == "2026-07-12T09:00:11Z"
    assert spec["failure"]["class"] == "http_status" and "owner@example.kz" not in spec["failure"]["message"]
    assert manifest["metadata"]["labels"]["tksh.kz/target-kind"] == "DigitalObject"
    assert "namespace" not in incident_manifest(CCOMP, opened(CCOMP), "tksh-system")["spec"]["target"]
    with pytest.raises(ValueError, match="only an opened change"):
        incident_manifest(DOBJ, StateChange(DOBJ.key, "Up", "Unknown", T0), "housing")


def test_open_and_recovery_fields_follow_the_one_hour_rule() -> None:
    fields = open_fields(incident(), T0 + MIN)
    assert (fields["phase"], fields["recoveryDeadline"], fields["slaVerdict"]) == (
        "Open", "2026-07-12T10:00:07Z", "Pending")
    assert open_fields(incident(), T0 + 61 * MIN)["slaVerdict"] == "Breached"
    started = incident().spec.started_at  # whole seconds, as stored
    met = recovery_fields(incident(), started + 60 * MIN)  # exactly at the deadline: met
    assert (met["phase"], met["slaVerdict"], met["durationSeconds"]) == ("Recovered", "Met", 3600)
    late = recovery_fields(incident(), started + 60 * MIN + datetime.timedelta(microseconds=1))
    assert late["slaVerdict"] == "Breached"


def test_notices_are_planned_per_recipient_with_stable_keys() -> None:
    recipients = [
        Recipient("events", "event", "Events"),
        Recipient("owner:u1", "email", "it@zhylu.example.kz", {"recipientNamespace": "housing", "recipientName": "a"}),
        Recipient("owner:u1", "webhook", "webhook of housing/a", {"recipientName": "a"}),
        Recipient("owner:u2", "email", "ops@su.example.kz", {"central": "true", "recipientName": "b"},
                  frozenset({"Opened", "Recovered"})),
    ]
    entries = plan_entries(incident(), ["Opened", "Reminder15"], recipients, T0, timezone="Asia/Almaty")
    assert [(e["template"], e["channel"]) for e in entries] == [
        ("incident-opened", "event"), ("incident-opened", "email"), ("incident-opened", "webhook"),
        ("incident-opened", "email"), ("incident-reminder-15", "event"), ("incident-reminder-15", "email"),
        ("incident-reminder-15", "webhook"),
    ]
    assert len({e["id"] for e in entries}) == len(entries)
    again = plan_entries(incident(), ["Opened", "Reminder15"], recipients, T0 + MIN, timezone="Asia/Almaty")
    assert [e["id"] for e in again] == [e["id"] for e in entries]  # the same keys: enqueue is a no-op
    assert enqueue_all(entries, again) == entries
    assert entries[1]["recipient"] == "i***@z***.kz"
    assert all("@" not in value for e in entries for value in e["params"].values())
    assert entries[3]["params"]["central"] == "true" and "central" not in entries[1]["params"]
    assert entries[4]["params"]["minutes"] == "15"
    assert transitions_in(entries) == {"Opened", "Reminder15"}
    assert transitions_in([], [{"transition": "Breached"}]) == {"Breached"}
    assert transition_of({"template": "incident-reminder-45"}) == "Reminder45"
    assert transition_of({"template": "registration-approved"}) is None


def test_the_instant_each_notice_is_about() -> None:
    down, start = incident(), T0.replace(microsecond=0)  # the stored start: whole seconds
    assert transition_at(down, "Opened") == start
    assert transition_at(down, "Reminder30") == start + 30 * MIN
    assert transition_at(down, "Breached") == start + 60 * MIN
    assert transition_at(incident(recoveredAt="2026-07-12T09:20:00Z"), "Recovered") == datetime.datetime(
        2026, 7, 12, 9, 20, tzinfo=datetime.UTC)


def test_webhook_payload_and_alert_come_from_the_params_alone() -> None:
    recovered = incident(recoveredAt="2026-07-12T09:20:07Z", durationSeconds=1200, slaVerdict="Met",
                         phase="Recovered")
    (entry,) = plan_entries(recovered, ["Recovered"], [Recipient("owner:u1", "webhook", "hook",
                                                                  {"recipientNamespace": "housing",
                                                                   "recipientName": "heat-billing"})],
                            T0, timezone="Asia/Almaty")
    body = webhook_payload(entry)
    assert body["type"] == "tksh.incident.recovered" and body["id"] == entry["id"] and body["central"] is False
    assert body["incident"]["durationSeconds"] == 1200 and body["incident"]["verdict"] == "Met"
    assert body["object"] == {"namespace": "housing", "name": "heat-billing"}
    assert body["target"]["name"] == "heat-billing" and body["failure"]["class"] == "http_status"
    params = incident_params(recovered, None, timezone="Asia/Almaty")
    firing, resolved = (incident_alert(params, resolved=r, critical=False) for r in (False, True))
    assert firing.labels == resolved.labels and firing.labels["severity"] == "warning"
    assert firing.ends_at is None and resolved.ends_at == datetime.datetime(2026, 7, 12, 9, 20, 7,
                                                                             tzinfo=datetime.UTC)
    assert firing.starts_at == T0.replace(microsecond=0)
    assert incident_alert(params, resolved=False, critical=True).labels["severity"] == "critical"
