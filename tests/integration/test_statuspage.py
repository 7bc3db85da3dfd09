"""The public status page (§21) of ``tksh authz``, end to end: objects written to the API server (as the operator
would write them; no operator runs), the decision point's status cache lists and watches them, and the page is
read over HTTP and in real headless Chromium (Debian's ``chromium``), which also takes the screenshots kept in
``test-artifacts/statuspage/`` (``$TKSH_TEST_ARTIFACTS`` moves the folder).

Chromium is looked up as ``$TKSH_CHROMIUM``, then ``chromium``/``chromium-browser`` on PATH. Where it is absent the
browser test is skipped with the command that installs it; in CI (``CI=true``) or with ``TKSH_CHROMIUM_REQUIRED=1``
it must be there (``hack/tools/install.sh`` installs it) and its absence fails the test.
"""

from __future__ import annotations

import asyncio
import datetime
import html.parser
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import TRUTHY, eventually, realapi_required
from tests.integration.backends import Backend, EmbeddedBackend, RealBackend
from tksh.access.server import AuthzConfig, AuthzHandle, start_authz
from tksh.access.tokens import KeySet

API = "tksh.kz/v1alpha1"
OWNER_BIN = "140540001231"
OWNER_EMAIL = "board@dostyk12.example.kz"
OWNER_NAME = "ОСИ «Достық 12»"
PROBE_MESSAGE = "connect to 10.2.3.4:443 refused"
REPO_ROOT = Path(__file__).resolve().parents[2]


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def put(cluster: Backend, obj: dict[str, Any]) -> dict[str, Any]:
    """Create or update the object, then write its status through the status subresource."""
    status = obj.get("status")
    body = {k: v for k, v in obj.items() if k != "status"}
    stored = await cluster.apply(body)
    if status is None:
        return stored
    if isinstance(cluster, EmbeddedBackend):
        return await cluster.api.apply(obj)
    assert isinstance(cluster, RealBackend), cluster
    meta = obj["metadata"]
    path = cluster.cluster.resource_path(API, obj["kind"], namespace=meta.get("namespace"), name=meta["name"])
    patched: dict[str, Any] = await asyncio.to_thread(cluster.cluster.checked, "PATCH", path + "/status",
                                                      {"status": status}, content_type="application/merge-patch+json")
    return patched


def digital_object(name: str, ns: str, subject_type: str, phase: str, **availability: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if "open_incident" in availability:
        status["openIncident"] = availability.pop("open_incident")  # None removes it (merge patch)
    if availability:
        status["availability"] = availability
    return {"apiVersion": API, "kind": "DigitalObject", "metadata": {"name": name, "namespace": ns},
            "spec": {"owner": {"bin": OWNER_BIN, "name": OWNER_NAME, "subjectType": subject_type,
                               "email": OWNER_EMAIL, "phone": "+77011234567"},
                     "functions": ["owners-association"], "categories": [5],
                     "endpoint": {"url": "https://osi-dostyk12.example.kz/api"}},
            "status": status}


def incident(name: str, ns: str, target: dict[str, Any], started: datetime.datetime,
             recovered: datetime.datetime | None, verdict: str) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Open" if recovered is None else "Recovered", "slaVerdict": verdict,
                              "recoveryDeadline": rfc3339(started + datetime.timedelta(hours=1))}
    if recovered is not None:
        status |= {"recoveredAt": rfc3339(recovered), "durationSeconds": int((recovered - started).total_seconds())}
    return {"apiVersion": API, "kind": "Incident", "metadata": {"name": name, "namespace": ns},
            "spec": {"target": target, "startedAt": rfc3339(started), "detectedAt": rfc3339(started),
                     "failure": {"class": "connect", "message": PROBE_MESSAGE}},
            "status": status}


@pytest.fixture
async def world(cluster: Backend, unique: str) -> dict[str, str]:
    """Two central components, three digital objects (one Down with an open incident, one Up, one not yet
    integrated) and incidents: one open, one recovered 3 days ago, one recovered 40 days ago."""
    ns = f"status-{unique}"
    await cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)

    def ago(**delta: float) -> datetime.datetime:
        return now - datetime.timedelta(**delta)

    names = {"ns": ns, "cz": f"cz-gateway-{unique}", "registry": f"cz-registry-{unique}", "osi": f"osi-{unique}",
             "water": f"water-{unique}", "applicant": f"applicant-{unique}"}
    await put(cluster, {"apiVersion": API, "kind": "CentralComponent", "metadata": {"name": names["cz"]},
                        "spec": {"title": "ЦЖ API шлюзі", "endpoint": {"url": "https://cz.example.kz/healthz"},
                                 "critical": True},
                        "status": {"availability": {"state": "Up", "since": rfc3339(ago(days=9)),
                                                    "uptime30d": 0.9995}}})
    await put(cluster, {"apiVersion": API, "kind": "CentralComponent", "metadata": {"name": names["registry"]},
                        "spec": {"endpoint": {"url": "https://registry.cz.example.kz/healthz"}},
                        "status": {"availability": {"state": "Unknown"}}})
    await put(cluster, digital_object(names["osi"], ns, "PropertyOwnersAssociation", "Integrated", state="Down",
                                      since=rfc3339(ago(minutes=20)), uptime30d=0.98,
                                      open_incident=f"{names['osi']}-1"))
    await put(cluster, digital_object(names["water"], ns, "WaterSupplier", "Integrated", state="Up",
                                      since=rfc3339(ago(days=3)), uptime30d=1.0))
    await put(cluster, digital_object(names["applicant"], ns, "GasSupplier", "UnderReview"))
    osi = {"kind": "DigitalObject", "name": names["osi"], "namespace": ns}
    water = {"kind": "DigitalObject", "name": names["water"], "namespace": ns}
    await put(cluster, incident(f"{names['osi']}-1", ns, osi, ago(minutes=20), None, "Pending"))
    await put(cluster, incident(f"{names['water']}-1", ns, water, ago(days=3, minutes=25), ago(days=3), "Met"))
    await put(cluster, incident(f"{names['water']}-0", ns, water, ago(days=40, hours=2), ago(days=40), "Breached"))
    return names


@pytest.fixture(scope="module")
def keys() -> KeySet:
    return KeySet.generate(issuer="tksh-operator", audience="tksh-authz")


@pytest.fixture
async def authz(cluster: Backend, world: dict[str, str], keys: KeySet) -> AsyncIterator[AuthzHandle]:
    where: dict[str, Any]
    if isinstance(cluster, EmbeddedBackend):
        where = {"server": cluster.api.url}
    else:
        assert isinstance(cluster, RealBackend)
        where = {"kubeconfig": str(cluster.cluster.kubeconfig)}
    config = AuthzConfig(host="127.0.0.1", port=0, keys=keys, configure_logs=False, retry_delay=0.05,
                         watch_timeout=30, **where)
    async with start_authz(config) as handle:
        yield handle


async def fetch(handle: AuthzHandle, path: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.get(handle.url + path, headers=headers) as response:
        return response.status, await response.text(), dict(response.headers)


async def status_json(handle: AuthzHandle) -> dict[str, Any]:
    code, text, _ = await fetch(handle, "/status.json")
    assert code == 200, text
    body: dict[str, Any] = json.loads(text)
    return body


def own(items: list[dict[str, Any]], names: set[str]) -> dict[str, dict[str, Any]]:
    """The entries of this test (the real cluster is shared with other tests)."""
    return {item["name"]: item for item in items if item["name"] in names}


async def test_status_json_shows_state_uptime_and_incidents_without_personal_data(
    authz: AuthzHandle, world: dict[str, str]
) -> None:
    async def synced() -> dict[str, Any]:
        body = await status_json(authz)
        assert world["osi"] in {o["name"] for o in body["digitalObjects"]}
        assert f"{world['osi']}-1" in {i["name"] for i in body["openIncidents"]}
        assert f"{world['water']}-1" in {i["name"] for i in body["recentIncidents"]}
        return body

    body = await eventually(synced)
    components = own(body["centralComponents"], {world["cz"], world["registry"]})
    assert components[world["cz"]] | {"since": None} == {
        "name": world["cz"], "title": "ЦЖ API шлюзі", "critical": True, "state": "Up", "since": None,
        "uptime30d": 0.9995, "openIncident": None}
    assert components[world["registry"]]["state"] == "Unknown"
    objects = own(body["digitalObjects"], {world["osi"], world["water"], world["applicant"]})
    assert set(objects) == {world["osi"], world["water"]}  # not the application under review
    assert objects[world["osi"]] | {"since": None} == {
        "namespace": world["ns"], "name": world["osi"], "category": "PropertyOwnersAssociation", "state": "Down",
        "since": None, "uptime30d": 0.98, "openIncident": f"{world['osi']}-1"}
    (opened,) = [i for i in body["openIncidents"] if i["target"]["name"] == world["osi"]]
    assert opened["phase"] == "Open" and opened["failureClass"] == "connect" and opened["recoveredAt"] is None
    recent = {i["name"] for i in body["recentIncidents"]}
    assert f"{world['water']}-1" in recent and f"{world['water']}-0" not in recent  # 40 days ago: not shown
    _, page, _ = await fetch(authz, "/status?lang=en")
    for text in (json.dumps(body, ensure_ascii=False), page):
        for secret in (OWNER_BIN, OWNER_EMAIL, OWNER_NAME, "+77011234567", "osi-dostyk12.example.kz", PROBE_MESSAGE,
                       "cz.example.kz"):
            assert secret not in text


@pytest.mark.parametrize(("query", "accept", "lang", "word"), [
    ("", "", "kk", "Жұмыс істемейді"),
    ("?lang=ru", "en", "ru", "Не работает"),
    ("", "en-GB,en;q=0.9,ru;q=0.8", "en", "Down"),
    ("", "de, ru;q=0.5, kk;q=0.7", "kk", "Жұмыс істемейді"),
    ("?lang=fr", "ru-KZ", "ru", "Не работает"),
])
async def test_status_page_speaks_kazakh_russian_and_english(
    authz: AuthzHandle, world: dict[str, str], query: str, accept: str, lang: str, word: str
) -> None:
    async def page() -> tuple[str, dict[str, str]]:
        code, text, headers = await fetch(authz, "/status" + query, **({"Accept-Language": accept} if accept else {}))
        assert code == 200 and world["osi"] in text
        return text, headers

    text, headers = await eventually(page)
    assert text.startswith(f'<!doctype html><html lang="{lang}">')
    assert headers["Content-Language"] == lang and headers["Content-Type"].startswith("text/html")
    assert "script" not in text.lower() and "http://" not in text and "https://" not in text  # self-contained
    assert word in text


async def test_status_page_follows_the_cluster(cluster: Backend, authz: AuthzHandle, world: dict[str, str]) -> None:
    await eventually(lambda: _has_open(authz, world["osi"], True))
    now = datetime.datetime.now(datetime.UTC)
    await put(cluster, digital_object(world["osi"], world["ns"], "PropertyOwnersAssociation", "Integrated",
                                      state="Up", since=rfc3339(now), uptime30d=0.979, open_incident=None))
    started = now - datetime.timedelta(minutes=21)
    await put(cluster, incident(f"{world['osi']}-1", world["ns"],
                                {"kind": "DigitalObject", "name": world["osi"], "namespace": world["ns"]}, started,
                                now, "Met"))
    await put(cluster, digital_object(world["applicant"], world["ns"], "GasSupplier", "Integrated", state="Up",
                                      uptime30d=1.0))

    async def updated() -> None:
        body = await status_json(authz)
        objects = own(body["digitalObjects"], {world["osi"], world["applicant"]})
        assert objects[world["osi"]]["state"] == "Up" and objects[world["applicant"]]["category"] == "GasSupplier"
        assert not [i for i in body["openIncidents"] if i["target"]["name"] == world["osi"]]
        assert f"{world['osi']}-1" in {i["name"] for i in body["recentIncidents"]}

    await eventually(updated)


async def _has_open(handle: AuthzHandle, target: str, expected: bool) -> None:
    body = await status_json(handle)
    assert bool([i for i in body["openIncidents"] if i["target"]["name"] == target]) == expected


# --- in a real browser ------------------------------------------------------------------------------------------------


def chromium_required() -> bool:
    return realapi_required() or os.environ.get("TKSH_CHROMIUM_REQUIRED", "").strip().lower() in TRUTHY


@pytest.fixture(scope="session")
def chromium() -> Path:
    override = os.environ.get("TKSH_CHROMIUM", "")
    found = override or shutil.which("chromium") or shutil.which("chromium-browser")
    if found and os.access(found, os.X_OK):
        return Path(found)
    if chromium_required():
        pytest.fail("headless Chromium is required here (CI=true or TKSH_CHROMIUM_REQUIRED=1) and was not found: "
                    "run hack/tools/install.sh (apt-get install chromium)", pytrace=False)
    pytest.skip("chromium not found ($TKSH_CHROMIUM, PATH): run hack/tools/install.sh (apt-get install chromium)")


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("TKSH_TEST_ARTIFACTS") or REPO_ROOT / "test-artifacts") / "statuspage"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def run_chromium(chromium: Path, profile: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode()


class Rows(html.parser.HTMLParser):
    """The table rows of a DOM (their data-* attributes and text), the <html lang> and the headings."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.headings: list[str] = []
        self.lang = ""
        self._row: dict[str, str] | None = None
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html":
            self.lang = dict(attrs).get("lang") or ""
        if tag == "tr":
            self._row = {k: v or "" for k, v in attrs} | {"text": ""}
        if tag in ("h1", "h2"):
            self._heading = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        if tag in ("h1", "h2") and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None

    def handle_data(self, data: str) -> None:
        if self._row is not None:
            self._row["text"] += data
        if self._heading is not None:
            self._heading.append(data)


@pytest.mark.parametrize("lang", ["kk", "en"])
async def test_status_page_in_headless_chromium(
    chromium: Path, authz: AuthzHandle, world: dict[str, str], tmp_path: Path, cluster: Backend, lang: str
) -> None:
    await eventually(lambda: _has_open(authz, world["osi"], True))
    url = f"{authz.url}/status?lang={lang}"
    dom = Rows()
    dom.feed(await run_chromium(chromium, tmp_path / "profile", "--dump-dom", url))
    assert dom.lang == lang
    down = [r for r in dom.rows if r.get("data-kind") == "DigitalObject" and r.get("data-name") == world["osi"]]
    assert len(down) == 1 and down[0]["data-state"] == "Down"
    assert {"kk": "Жұмыс істемейді", "en": "Down"}[lang] in down[0]["text"]
    opened = [r for r in dom.rows if r.get("data-target") == world["osi"] and r.get("data-phase") == "Open"]
    assert len(opened) == 1
    assert {"kk": "Қосылу мүмкін емес", "en": "Connection failed"}[lang] in opened[0]["text"]
    assert {"kk": "Ашық инциденттер", "en": "Open incidents"}[lang] in dom.headings
    up = [r for r in dom.rows if r.get("data-name") == world["water"]]
    assert len(up) == 1 and up[0]["data-state"] == "Up" and "100.000 %" in up[0]["text"]
    assert not [r for r in dom.rows if r.get("data-name") == world["applicant"]]

    shot = artifacts_dir() / f"status-{lang}-{cluster.name}.png"
    shot.unlink(missing_ok=True)
    await run_chromium(chromium, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,1400", url)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 1400)
