"""Alertmanager's v2 API against a real local aiohttp receiver: fired, re-posted, resolved, outcomes."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator

import pytest

from tests.integration.monitoring_helpers import HTTPReceiver
from tksh.notify.alertmanager import ALERTS_PATH, Alert, alerts_url, post_alerts

START = datetime.datetime(2026, 7, 12, 9, 0, 7, 250000, tzinfo=datetime.UTC)
LABELS = {"alertname": "TkshIncident", "kind": "DigitalObject", "namespace": "housing", "name": "heat-billing"}


@pytest.fixture
async def am() -> AsyncIterator[HTTPReceiver]:
    async with HTTPReceiver() as receiver:
        yield receiver


async def test_firing_then_resolved_with_the_same_labels(am: HTTPReceiver) -> None:
    firing = Alert(LABELS, {"summary": "heat-billing is down", "slaVerdict": "Pending"}, starts_at=START,
                   generator_url="https://status.example.kz/status")
    assert (await post_alerts(am.url + "/", [firing])).delivered
    resolved = Alert(LABELS, {"summary": "heat-billing recovered"}, starts_at=START,
                     ends_at=START + datetime.timedelta(minutes=20))
    assert (await post_alerts(am.url, [resolved])).delivered
    first, second = am.requests
    assert first.path == second.path == ALERTS_PATH
    assert first.json() == [{
        "labels": LABELS, "annotations": {"summary": "heat-billing is down", "slaVerdict": "Pending"},
        "startsAt": "2026-07-12T09:00:07Z", "generatorURL": "https://status.example.kz/status",
    }]
    assert "endsAt" not in first.json()[0] and not firing.resolved
    assert second.json()[0]["endsAt"] == "2026-07-12T09:20:07Z" and resolved.resolved
    assert second.json()[0]["labels"] == first.json()[0]["labels"]


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (404, True), (500, False), (503, False)])
async def test_failures_are_classified(am: HTTPReceiver, status: int, permanent: bool) -> None:
    am.respond(status)
    result = await post_alerts(am.url, [Alert(LABELS)])
    assert (result.delivered, result.permanent, result.code) == (False, permanent, status)


async def test_without_a_url_nothing_is_sent() -> None:
    assert (await post_alerts("", [Alert(LABELS)])).permanent


def test_labels_must_be_prometheus_names() -> None:
    with pytest.raises(ValueError, match="must match"):
        Alert({"target-name": "x"})
    with pytest.raises(ValueError, match="at least one label"):
        Alert({})
    assert alerts_url("http://am:9093/") == alerts_url("http://am:9093") == "http://am:9093/api/v2/alerts"
