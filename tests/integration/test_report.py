"""``kubectl tksh report`` end to end: the real kubectl runs the plugin against the API server, over Incident,
DigitalObject and CentralComponent objects written with the status an operator would write (no operator runs)."""

from __future__ import annotations

import asyncio
import csv
import datetime
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.backends import Backend, EmbeddedBackend, RealBackend

API = "tksh.kz/v1alpha1"
OWNER_BIN = "140540001231"
OWNER_EMAIL = "board@dostyk12.example.kz"


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def put(cluster: Backend, obj: dict[str, Any]) -> dict[str, Any]:
    """Create the object, then write its status through the status subresource."""
    status = obj.pop("status", None)
    stored = await cluster.apply(obj)
    if status is None:
        return stored
    if isinstance(cluster, EmbeddedBackend):
        return await cluster.api.apply({**obj, "status": status})
    assert isinstance(cluster, RealBackend), cluster
    real = cluster.cluster
    meta = obj["metadata"]
    path = real.resource_path(API, obj["kind"], namespace=meta.get("namespace"), name=meta["name"]) + "/status"
    patched: dict[str, Any] = await asyncio.to_thread(
        real.checked, "PATCH", path, {"status": status}, content_type="application/merge-patch+json")
    return patched


def incident(name: str, ns: str, target: dict[str, Any], started: datetime.datetime,
             recovered: datetime.datetime | None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Open" if recovered is None else "Recovered",
                              "recoveryDeadline": rfc3339(started + datetime.timedelta(hours=1))}
    if recovered is not None:
        status["recoveredAt"] = rfc3339(recovered)
        status["durationSeconds"] = int((recovered - started).total_seconds())
    return {"apiVersion": API, "kind": "Incident", "metadata": {"name": name, "namespace": ns},
            "spec": {"target": target, "startedAt": rfc3339(started), "detectedAt": rfc3339(started),
                     "failure": {"class": "connect", "message": "connection refused"}},
            "status": status}


@pytest.fixture
async def objects(cluster: Backend, unique: str) -> dict[str, Any]:
    """Two namespaces; an integrated object with two incidents (one breached), an integrated object without any, an
    application under review (not a target), and a central component with an open incident."""
    ns, other = f"report-{unique}", f"report-other-{unique}"
    for name in (ns, other):
        await cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    owner = {"bin": OWNER_BIN, "name": "ОСИ «Достық 12»", "subjectType": "PropertyOwnersAssociation",
             "email": OWNER_EMAIL}

    def dobj(name: str, namespace: str, phase: str) -> dict[str, Any]:
        status: dict[str, Any] = {"phase": phase}
        if phase == "Integrated":
            status["integratedAt"] = rfc3339(now - datetime.timedelta(days=3))
        return {"apiVersion": API, "kind": "DigitalObject", "metadata": {"name": name, "namespace": namespace},
                "spec": {"owner": owner, "functions": ["owners-association"], "categories": [5],
                         "endpoint": {"url": "http://127.0.0.1:9/"}}, "status": status}

    osi, water, waiting = f"osi-{unique}", f"water-{unique}", f"waiting-{unique}"
    await put(cluster, dobj(osi, ns, "Integrated"))
    await put(cluster, dobj(water, other, "Integrated"))
    await put(cluster, dobj(waiting, ns, "UnderReview"))
    component = await put(cluster, {"apiVersion": API, "kind": "CentralComponent",
                                    "metadata": {"name": f"cz-{unique}"},
                                    "spec": {"title": "ЦЖ API", "endpoint": {"url": "http://127.0.0.1:9/"},
                                             "critical": True}})

    def hours(h: float) -> datetime.datetime:
        return now - datetime.timedelta(hours=h)

    target = {"kind": "DigitalObject", "name": osi, "namespace": ns}
    await put(cluster, incident(f"{osi}-1", ns, target, hours(8), hours(6.5)))  # 1h30m: breached
    await put(cluster, incident(f"{osi}-2", ns, target, hours(6), hours(5.75)))  # 15m
    created = datetime.datetime.fromisoformat(component["metadata"]["creationTimestamp"])
    await put(cluster, incident(f"cz-{unique}-1", ns, {"kind": "CentralComponent", "name": f"cz-{unique}"},
                                created, None))
    return {"ns": ns, "other": other, "osi": osi, "water": water, "waiting": waiting, "cz": f"cz-{unique}"}


@pytest.fixture
def kubectl_env(cluster: Backend, tmp_path: Path) -> dict[str, str]:
    if isinstance(cluster, EmbeddedBackend):
        kubeconfig = cluster.api.write_kubeconfig(tmp_path / "kubeconfig")
    else:
        assert isinstance(cluster, RealBackend)
        kubeconfig = Path(cluster.cluster.kubeconfig)
    bin_dir = Path(sys.executable).parent
    return {**os.environ, "KUBECONFIG": str(kubeconfig), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


async def kubectl(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(str(Path(sys.executable).parent / "kubectl"), "tksh", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_report_as_json_per_target(objects: dict[str, Any], kubectl_env: dict[str, str]) -> None:
    code, out, err = await kubectl(kubectl_env, "report", "--from", "now-10h", "--to", "now", "-o", "json")
    assert code == 0, err
    body = json.loads(out)
    rows = {(t["kind"], t["name"]): t for t in body["targets"]}
    osi = rows[("DigitalObject", objects["osi"])]
    assert osi["namespace"] == objects["ns"]
    assert (osi["incidents"], osi["open"], osi["breaches"], osi["downSeconds"]) == (2, 0, 1, 6300)
    assert osi["timeToRestore"] == {"count": 2, "mean": 3150.0, "p50": 900.0, "p90": 5400.0, "p99": 5400.0,
                                    "max": 5400.0}
    assert osi["unknownSeconds"] == 0 and osi["uptime"] == pytest.approx(1 - 6300 / 36000, abs=1e-3)
    water = rows[("DigitalObject", objects["water"])]
    assert (water["incidents"], water["downSeconds"], water["uptime"]) == (0, 0, 1.0)
    assert ("DigitalObject", objects["waiting"]) not in rows  # an application under review is not monitored
    cz = rows[("CentralComponent", objects["cz"])]
    assert cz["namespace"] is None and (cz["incidents"], cz["open"], cz["breaches"]) == (1, 1, 0)
    assert cz["upSeconds"] == 0 and cz["uptime"] in (0.0, None)  # down since its creation
    assert body["total"]["incidents"] >= 3
    assert OWNER_BIN not in out and "dostyk12" not in out


async def test_report_of_one_namespace_as_csv_and_table(objects: dict[str, Any], kubectl_env: dict[str, str]) -> None:
    code, out, err = await kubectl(kubectl_env, "report", "-n", objects["ns"], "--from=now-10h", "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["kind"], r["name"]) for r in rows] == [("DigitalObject", objects["osi"]), ("TOTAL", "")]
    assert (rows[0]["down_seconds"], rows[0]["breaches"], rows[0]["ttr_p50_seconds"]) == ("6300", "1", "900")
    assert rows[1]["incidents"] == "2"  # the central component's incident is left out with -n

    code, out, err = await kubectl(kubectl_env, "report", "-n", objects["ns"], "--from", "now-10h")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Period ") and lines[1].split()[:4] == ["KIND", "NAMESPACE", "NAME", "UPTIME"]
    assert lines[2].split()[:3] == ["DigitalObject", objects["ns"], objects["osi"]]
    assert lines[2].split()[4:9] == ["1h45m00s", "0s", "2", "0", "1"]


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "last tuesday"], "--from: 'last tuesday' is not a time"),
    (["--from", "now-1h", "--to", "now-2h"], "--to: must be later than --from"),
    (["--to", "2026-03-01T00:00:00"], "--to: '2026-03-01T00:00:00' has no time zone"),
])
async def test_bad_times_are_refused_naming_the_flag(cluster: Backend, kubectl_env: dict[str, str], args: list[str],
                                                     message: str) -> None:
    code, out, err = await kubectl(kubectl_env, "report", *args)
    assert code == 2 and out == ""
    assert err.strip().startswith(f"tksh report: {message}")
