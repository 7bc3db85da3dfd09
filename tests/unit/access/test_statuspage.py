"""The public status page's pure parts: the cache's entries (nothing personal kept), the view, the language
negotiation, the HTML (escaped, self-contained) and the 503 before the first sync."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tksh.access.statuscache import KINDS, StatusCache
from tksh.access.statuspage import add_routes, negotiate, render_html, status_view

NOW = datetime.datetime(2026, 3, 20, 6, 0, tzinfo=datetime.UTC)
ALMATY = datetime.timezone(datetime.timedelta(hours=5))


def ts(delta: datetime.timedelta = datetime.timedelta(0)) -> str:
    return (NOW + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def dobj(name: str, phase: str = "Integrated", state: str = "Up", **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "housing"},
            "spec": {"owner": {"bin": "140540001231", "name": "ОСИ «Достық 12»", "email": "board@dostyk12.example.kz",
                               "phone": "+77011234567", "subjectType": "WaterSupplier"},
                     "endpoint": {"url": "https://water.example.kz/api"}},
            "status": {"phase": phase, "availability": {"state": state, "uptime30d": 0.99}, **status}}


def component(name: str, state: str = "Up", critical: bool = False, title: str | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"title": title, "critical": critical,
                                                 "endpoint": {"url": "https://cz.example.kz"}},
            "status": {"availability": {"state": state}}}


def incident(name: str, target: str, started: datetime.timedelta, recovered: datetime.timedelta | None,
             kind: str = "DigitalObject") -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Open" if recovered is None else "Recovered"}
    if recovered is not None:
        status["recoveredAt"] = ts(recovered)
    return {"metadata": {"name": name, "namespace": "housing"},
            "spec": {"target": {"kind": kind, "name": target, "namespace": "housing"}, "startedAt": ts(started),
                     "failure": {"class": "timeout", "message": "GET https://water.example.kz/api timed out"}},
            "status": status}


def cache_with(*items: tuple[str, dict[str, Any]]) -> StatusCache:
    cache = StatusCache(clock=lambda: NOW)
    for kind in KINDS:
        cache.replace(kind, [obj for k, obj in items if k == kind])
    return cache


H = datetime.timedelta(hours=1)


@pytest.mark.parametrize(("query", "header", "expected"), [
    (None, None, "kk"),
    ("ru", None, "ru"),
    ("en", "kk", "en"),
    ("fr", "ru", "ru"),
    (None, "en-US,en;q=0.9", "en"),
    (None, "de,ru;q=0.3,kk;q=0.8", "kk"),
    (None, "ru;q=0, en", "en"),
    (None, "ru;q=bad, en;q=0.1", "en"),
    (None, "zh, ja", "kk"),
    (None, "RU-kz", "ru"),
])
def test_language_negotiation(query: str | None, header: str | None, expected: str) -> None:
    assert negotiate(query, header) == expected


@pytest.mark.parametrize(("components", "objects", "summary"), [
    ([component("a"), component("b", "Down")], [dobj("x")], "degraded"),
    ([component("a", "Down", critical=True)], [dobj("x")], "central-outage"),
    ([component("a"), component("b", "Unknown")], [dobj("x"), dobj("y", state="Unknown")], "operational"),
    ([component("a")], [dobj("x", state="Down")], "degraded"),
    ([component("a")], [dobj("x", phase="Suspended", state="Down")], "operational"),
])
def test_summary(components: list[dict[str, Any]], objects: list[dict[str, Any]], summary: str) -> None:
    cache = cache_with(*[("CentralComponent", c) for c in components], *[("DigitalObject", o) for o in objects])
    assert status_view(cache, NOW)["summary"] == summary


def test_view_keeps_integrated_objects_and_recent_incidents_of_shown_targets_only() -> None:
    cache = cache_with(
        ("DigitalObject", dobj("water", state="Down", openIncident="water-3")),
        ("DigitalObject", dobj("applicant", phase="UnderReview")),
        ("CentralComponent", component("cz", title="ЦЖ API", critical=True)),
        ("Incident", incident("water-1", "water", -40 * 24 * H, -40 * 24 * H + H / 2)),  # too old: not kept
        ("Incident", incident("water-2", "water", -50 * H, -49 * H)),
        ("Incident", incident("water-3", "water", -H / 3, None)),
        ("Incident", incident("applicant-1", "applicant", -H, None)),  # its target is not shown
        ("Incident", incident("cz-1", "cz", -2 * H, -H, kind="CentralComponent")),
    )
    assert set(cache.incidents) == {"housing/water-2", "housing/water-3", "housing/applicant-1", "housing/cz-1"}
    view = status_view(cache, NOW)
    assert [o["name"] for o in view["digitalObjects"]] == ["water"]
    assert view["digitalObjects"][0] == {"namespace": "housing", "name": "water", "category": "WaterSupplier",
                                         "state": "Down", "since": None, "uptime30d": 0.99,
                                         "openIncident": "water-3"}
    assert [i["name"] for i in view["openIncidents"]] == ["water-3"]
    assert [i["name"] for i in view["recentIncidents"]] == ["cz-1", "water-2"]  # the latest first
    assert view["recentIncidents"][0]["target"] == {"kind": "CentralComponent", "name": "cz", "namespace": None}
    text = json.dumps(view, ensure_ascii=False)
    for secret in ("140540001231", "Достық", "dostyk12", "+77011234567", "example.kz", "timed out"):
        assert secret not in text


def test_a_relist_forgets_what_is_gone_and_a_drop_out_of_integrated_removes_the_object() -> None:
    cache = cache_with(("DigitalObject", dobj("a")), ("DigitalObject", dobj("b")))
    assert cache.ready and set(cache.objects) == {"housing/a", "housing/b"}
    cache.replace("DigitalObject", [dobj("b")])
    assert set(cache.objects) == {"housing/b"}
    cache.upsert("DigitalObject", dobj("b", phase="Suspended"))
    assert cache.objects == {}


def test_html_escapes_and_is_self_contained() -> None:
    cache = cache_with(("CentralComponent", component("cz", "Down", title='<script>alert("x")</script>')),
                       ("Incident", incident("cz-1", "cz", -H / 2, None, kind="CentralComponent")))
    page = render_html(status_view(cache, NOW), "ru", ALMATY)
    assert "<script>" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert page.startswith('<!doctype html><html lang="ru">')
    assert '<time datetime="2026-03-20T05:30:00Z">2026-03-20 10:30 (UTC+05:00)</time>' in page
    assert 'aria-current="true">Русский</a>' in page and 'hreflang="kk"' in page
    assert "30 мин" in page and "Не работает" in page and "Превышено время ожидания" in page
    assert "src=" not in page and "<link" not in page


async def test_503_until_every_kind_is_listed() -> None:
    cache = StatusCache(clock=lambda: NOW)
    app = web.Application()
    add_routes(app, cache)
    async with TestClient(TestServer(app)) as client:
        for path in ("/status", "/status.json"):
            response = await client.get(path, headers={"Accept-Language": "ru"})
            assert response.status == 503 and response.headers["Retry-After"] == "5"
        cache.replace("DigitalObject", [dobj("a")])
        cache.replace("CentralComponent", [])
        assert (await client.get("/status.json")).status == 503
        cache.replace("Incident", [])
        response = await client.get("/status.json")
        assert response.status == 200 and (await response.json())["digitalObjects"][0]["name"] == "a"
        page = await client.get("/status")
        assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
