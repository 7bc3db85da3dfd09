"""The public status page of the open part (§21, §34.3): ``GET /status`` (HTML) and ``GET /status.json``.

Served by the decision point without authentication: the central system's components and the integrated digital
objects with their current state (Up, Down, Unknown) and 30-day availability, the open incidents and those of the
last 30 days. No personal data: objects are shown by name and by the *kind* of system (the owner's subject type,
e.g. a water supplier), never by owner, BIN, e-mail, phone or endpoint (see :mod:`tksh.access.statuscache`).

The HTML is rendered on the server, self-contained (inline CSS, no script, no external asset), in Kazakh, Russian
or English (``?lang=kk|ru|en``, else ``Accept-Language``, else Kazakh), with a language switch, landmarks, table
captions and header scopes, and state told in words (not by colour alone). Times are shown in the Administrator's
time zone and given to machines in ``<time datetime>`` and in the JSON (UTC).
"""

from __future__ import annotations

import datetime
import html
import zoneinfo
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from tksh.access.statuscache import IncidentEntry, StatusCache
from tksh.access.statustexts import CATEGORY, FAILURE, LANGUAGES, STATE, TEXTS, VERDICT
from tksh.monitoring.sla import recovery_deadline

__all__ = ["STATUS", "add_routes", "negotiate", "render_html", "status_view"]

STATUS: Final = web.AppKey("status_cache", StatusCache)
TIMEZONE: Final = web.AppKey("status_timezone", datetime.tzinfo)
RECENT: Final = datetime.timedelta(days=30)
MAX_RECENT: Final = 50
_HEADERS: Final = {"Cache-Control": "public, max-age=15", "X-Content-Type-Options": "nosniff",
                   "Vary": "Accept-Language"}
_CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


# --- language ---------------------------------------------------------------------------------------------------------


def negotiate(query: str | None, accept_language: str | None) -> str:
    """``?lang=`` if supported, else the best of ``Accept-Language`` (q-values honoured), else ``kk``."""
    if query in LANGUAGES:
        return query
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and q > 0:
            ranked.append((-q, position, primary))
    return min(ranked)[2] if ranked else "kk"


# --- the view (also the JSON body) ------------------------------------------------------------------------------------


def _iso(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _incident(entry: IncidentEntry) -> dict[str, Any]:
    return {"name": entry.name, "namespace": entry.namespace,
            "target": {"kind": entry.target_kind, "name": entry.target_name, "namespace": entry.target_namespace},
            "phase": "Open" if entry.open else "Recovered", "failureClass": entry.failure_class,
            "startedAt": _iso(entry.started_at), "recoveryDeadline": _iso(recovery_deadline(entry.started_at)),
            "recoveredAt": _iso(entry.recovered_at), "durationSeconds": entry.duration_seconds,
            "slaVerdict": entry.sla_verdict}


def status_view(cache: StatusCache, now: datetime.datetime) -> dict[str, Any]:
    """What the page shows, as the JSON of ``/status.json``."""
    components = sorted(cache.components.values(), key=lambda c: c.name)
    objects = sorted(cache.objects.values(), key=lambda o: (o.name, o.namespace))
    shown = {("CentralComponent", None, c.name) for c in components} | {
        ("DigitalObject", o.namespace, o.name) for o in objects}
    incidents = [i for i in cache.incidents.values() if (i.target_kind, i.target_namespace, i.target_name) in shown]
    open_ = sorted((i for i in incidents if i.open), key=lambda i: i.started_at)
    recent = sorted((i for i in incidents if not i.open and i.recovered_at and i.recovered_at >= now - RECENT),
                    key=lambda i: i.started_at, reverse=True)[:MAX_RECENT]
    if any(c.critical and c.state == "Down" for c in components):
        summary = "central-outage"
    elif any(c.state == "Down" for c in components) or any(o.state == "Down" for o in objects):
        summary = "degraded"
    else:
        summary = "operational"
    return {
        "generatedAt": _iso(now), "summary": summary,
        "centralComponents": [{"name": c.name, "title": c.title, "critical": c.critical, "state": c.state,
                               "since": _iso(c.since), "uptime30d": c.uptime30d, "openIncident": c.open_incident}
                              for c in components],
        "digitalObjects": [{"namespace": o.namespace, "name": o.name, "category": o.category, "state": o.state,
                            "since": _iso(o.since), "uptime30d": o.uptime30d, "openIncident": o.open_incident}
                           for o in objects],
        "openIncidents": [_incident(i) for i in open_],
        "recentIncidents": [_incident(i) for i in recent],
    }


# --- HTML -------------------------------------------------------------------------------------------------------------

_STYLE: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1b1b1b;
background:#f6f7f9;line-height:1.45}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px 8px}
header,main,footer{max-width:72rem;margin:0 auto;padding:0 1rem}
header{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:baseline;gap:1rem}
h1{font-size:1.6rem;margin:1.2rem 0 .4rem}h2{font-size:1.2rem;margin:1.6rem 0 .5rem}
nav ul{list-style:none;display:flex;gap:.8rem;margin:0;padding:0}
a{color:#0b4f9c}a[aria-current]{font-weight:700;color:#1b1b1b}
.banner{padding:.8rem 1rem;border-radius:6px;font-weight:600;border:2px solid}
.banner-operational{background:#e8f5e9;border-color:#2e7d32}.banner-degraded{background:#fff4e5;border-color:#b35c00}
.banner-central-outage{background:#fdecea;border-color:#b3261e}
table{border-collapse:collapse;width:100%;background:#fff;margin-bottom:.5rem}
caption{text-align:left;font-size:.9rem;color:#444;padding:.3rem 0}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #d9dde3;vertical-align:top}
th{background:#eef1f5}th[scope=row]{white-space:nowrap}
.state-Up{color:#1e6b24}.state-Down{color:#a4221b;font-weight:700}.state-Unknown{color:#5f6368}
.none{color:#444;font-style:italic}footer{font-size:.9rem;color:#444;margin-top:2rem;padding-bottom:2rem}
"""
_DOT: Final = {"Up": "●", "Down": "▲", "Unknown": "?"}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _when(moment_iso: str | None, tz: datetime.tzinfo) -> str:
    if moment_iso is None:
        return "—"
    moment = datetime.datetime.fromisoformat(moment_iso).astimezone(tz)
    offset = moment.strftime("%z")
    shown = f"{moment:%Y-%m-%d %H:%M} (UTC{offset[:3]}:{offset[3:]})"
    return f'<time datetime="{_e(moment_iso)}">{_e(shown)}</time>'


def _duration(seconds: float | None, t: Mapping[str, str]) -> str:
    if seconds is None:
        return "—"
    minutes = max(0, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} {t['h']} {minutes:02d} {t['min']}" if hours else f"{minutes} {t['min']}"


def _uptime(ratio: float | None) -> str:
    return "—" if ratio is None else f"{100 * ratio:.3f} %"


def _state_cell(state: str, lang: str) -> str:
    return (f'<td class="state state-{_e(state)}"><span aria-hidden="true">{_DOT.get(state, "?")}</span> '
            f"{_e(STATE[state][lang])}</td>")


def _table(caption: str, headers: list[str], rows: list[str], empty: str) -> str:
    if not rows:
        return f'<p class="none">{_e(empty)}</p>'
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    return (f"<table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _target_label(incident: Mapping[str, Any], titles: Mapping[str, str]) -> str:
    target = incident["target"]
    title = titles.get(target["name"]) if target["kind"] == "CentralComponent" else None
    return _e(f"{title} ({target['name']})" if title else target["name"])


def render_html(view: Mapping[str, Any], lang: str, tz: datetime.tzinfo, path: str = "/status") -> str:
    """The page in ``lang`` from :func:`status_view`'s result."""
    t = TEXTS[lang]
    current = ' aria-current="true"'
    switch = "".join(
        f'<li><a href="{_e(path)}?lang={code}" hreflang="{code}" lang="{code}"'
        f'{current if code == lang else ""}>{_e(TEXTS[code]["language"])}</a></li>'
        for code in LANGUAGES)
    components = [
        f'<tr data-kind="CentralComponent" data-name="{_e(c["name"])}" data-state="{_e(c["state"])}">'
        f'<th scope="row">{_e(c["title"] or c["name"])}</th><td>{_e(t["critical"] if c["critical"] else "—")}</td>'
        f'{_state_cell(c["state"], lang)}<td>{_when(c["since"], tz)}</td><td>{_uptime(c["uptime30d"])}</td></tr>'
        for c in view["centralComponents"]]
    objects = [
        f'<tr data-kind="DigitalObject" data-namespace="{_e(o["namespace"])}" data-name="{_e(o["name"])}" '
        f'data-state="{_e(o["state"])}"><th scope="row">{_e(o["name"])}</th>'
        f'<td>{_e(CATEGORY[o["category"]][lang] if o["category"] in CATEGORY else "—")}</td>'
        f'{_state_cell(o["state"], lang)}<td>{_when(o["since"], tz)}</td><td>{_uptime(o["uptime30d"])}</td></tr>'
        for o in view["digitalObjects"]]
    titles = {c["name"]: c["title"] for c in view["centralComponents"] if c["title"]}
    now = datetime.datetime.fromisoformat(view["generatedAt"])

    def incident_row(i: Mapping[str, Any], is_open: bool) -> str:
        started = datetime.datetime.fromisoformat(i["startedAt"])
        lasted = (now - started).total_seconds() if is_open else i["durationSeconds"]
        verdict = VERDICT.get(i["slaVerdict"] or "Pending", VERDICT["Pending"])[lang]
        end_cell = _when(i["recoveryDeadline"] if is_open else i["recoveredAt"], tz)
        return (f'<tr data-incident="{_e(i["name"])}" data-target="{_e(i["target"]["name"])}" '
                f'data-phase="{_e(i["phase"])}"><th scope="row">{_target_label(i, titles)}</th>'
                f'<td>{_e(FAILURE.get(i["failureClass"], FAILURE["unknown"])[lang])}</td>'
                f'<td>{_when(i["startedAt"], tz)}</td><td>{end_cell}</td><td>{_duration(lasted, t)}</td>'
                f"<td>{_e(verdict)}</td></tr>")

    open_rows = [incident_row(i, True) for i in view["openIncidents"]]
    recent_rows = [incident_row(i, False) for i in view["recentIncidents"]]
    head = [t["col_name"], t["col_critical"], t["col_state"], t["col_since"], t["col_uptime"]]
    obj_head = [t["col_name"], t["col_category"], t["col_state"], t["col_since"], t["col_uptime"]]
    inc_head = [t["col_target"], t["col_cause"], t["col_started"], t["col_deadline"], t["col_duration"],
                t["col_verdict"]]
    rec_head = [*inc_head[:3], t["col_recovered"], *inc_head[4:]]
    summary = view["summary"]
    sections = [
        ("central", t["central"], _table(t["central_caption"], head, components, t["none"])),
        ("objects", t["objects"], _table(t["objects_caption"], obj_head, objects, t["none"])),
        ("open", t["open"], _table(t["open_caption"], inc_head, open_rows, t["no_open"])),
        ("recent", t["recent"], _table(t["recent_caption"], rec_head, recent_rows, t["none"])),
    ]
    body = "".join(f'<section aria-labelledby="h-{key}"><h2 id="h-{key}">{_e(title)}</h2>{content}</section>'
                   for key, title, content in sections)
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_e(t["title"])}</title>'
        f"<style>{_STYLE}</style></head><body>"
        f'<a class="skip" href="#main">{_e(t["skip"])}</a>'
        f'<header><h1>{_e(t["title"])}</h1><nav aria-label="{_e(t["language_nav"])}"><ul>{switch}</ul></nav></header>'
        f'<main id="main"><p class="banner banner-{summary}" role="status" data-summary="{summary}">'
        f"{_e(t[summary])}</p><p>{_e(t['sla_note'])}</p>{body}</main>"
        f'<footer><p>{_e(t["updated"])}: {_when(view["generatedAt"], tz)} · '
        f'<a href="{_e(path)}.json" type="application/json">JSON</a></p></footer></body></html>'
    )


# --- HTTP -------------------------------------------------------------------------------------------------------------


def _unavailable(lang: str) -> web.Response:
    return web.json_response({"error": "synchronising", "message": TEXTS[lang]["synchronising"]}, status=503,
                             headers={"Retry-After": "5", "Cache-Control": "no-store"})


async def _status_json(request: web.Request) -> web.Response:
    cache = request.app[STATUS]
    if not cache.ready:
        return _unavailable("en")
    view = status_view(cache, cache.clock())
    return web.json_response(view, headers={**_HEADERS, "Access-Control-Allow-Origin": "*"})


async def _status_html(request: web.Request) -> web.Response:
    cache = request.app[STATUS]
    lang = negotiate(request.query.get("lang"), request.headers.get("Accept-Language"))
    if not cache.ready:
        return _unavailable(lang)
    page = render_html(status_view(cache, cache.clock()), lang, request.app[TIMEZONE])
    return web.Response(text=page, content_type="text/html", charset="utf-8",
                        headers={**_HEADERS, "Content-Language": lang, "Content-Security-Policy": _CSP})


def add_routes(app: web.Application, cache: StatusCache, timezone: str = "Asia/Almaty") -> None:
    """``GET /status`` and ``GET /status.json`` on ``app``, from ``cache``; times shown in ``timezone``."""
    app[STATUS] = cache
    try:
        app[TIMEZONE] = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        app[TIMEZONE] = datetime.UTC
    app.router.add_get("/status", _status_html)
    app.router.add_get("/status.json", _status_json)

