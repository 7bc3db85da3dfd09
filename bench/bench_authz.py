"""The decision point over HTTP, and how fast a termination reaches every decision point (§20).

    .venv/bin/python bench/bench_authz.py [--requests 20000] [--terminations 200]

Everything runs against the embedded API server on 127.0.0.1. Two figures, each with a baseline
measured in the same run:

1. HTTP decisions per CPU-second of the server process (one core's worth of work), with a load
   generator in a separate process (so it does not share the server's core). Baseline: the same
   load against a constant-JSON endpoint in the same aiohttp server: the framework's own ceiling.
   Decision logging is on (JSON to /dev/null, masked), as in production.
2. Time from a termination written to the API server until two running decision points deny,
   p50/p99 over N terminations. Baseline: the same writes seen by a bare watch on the API server
   (the floor any watcher has).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tksh.access import KeySet
from tksh.access.server import AuthzConfig, start_authz
from tksh.logs import configure_logging
from tksh.sandbox.apiserver import EmbeddedAPIServer, project_crd_paths

NS = "bench"
OWNER = "140540001231"
BODY = {"subject": "person:b0", "action": "read", "resource": {"category": 5, "ownerBin": OWNER}}

CLIENT = r"""
import asyncio, json, sys, time
import aiohttp
url, body, total, concurrency = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), int(sys.argv[4])
async def main():
    left = total
    async with aiohttp.ClientSession(headers={"Content-Type": "application/json"}) as http:
        async def worker():
            nonlocal left
            while left > 0:
                left -= 1
                async with http.post(url, data=body) as response:
                    await response.read()
                    assert response.status == 200, response.status
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        print(json.dumps({"wall": time.perf_counter() - start}))
asyncio.run(main())
"""


def function() -> dict[str, Any]:
    return {
        "apiVersion": "tksh.kz/v1alpha1", "kind": "SubjectFunction", "metadata": {"name": "owners-association"},
        "spec": {"titles": {"kk": "ПИБ", "ru": "ОСИ", "en": "Owners' association"},
                 "subjectTypes": ["PropertyOwnersAssociation"],
                 "rights": [{"category": 5, "actions": ["read", "write", "sign"]}]},
        "status": {"phase": "Active"},
    }


def grant(name: str, subject: str, terminated: bool = False) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Active"}
    if terminated:
        status = {"phase": "Terminated",
                  "terminated": {"reason": "REVOKED", "at": "2026-01-01T00:00:00Z", "by": "bench"}}
    return {
        "apiVersion": "tksh.kz/v1alpha1", "kind": "AccessGrant", "metadata": {"name": name, "namespace": NS},
        "spec": {"subject": {"id": subject, "kind": "person"}, "onBehalfOf": {"bin": OWNER},
                 "functions": ["owners-association"],
                 "agreement": {"number": "B-1", "validFrom": "2020-01-01T00:00:00Z",
                               "validUntil": "2099-01-01T00:00:00Z"}},
        "status": status,
    }


async def load(url: str, requests: int, concurrency: int) -> tuple[float, float]:
    """(server CPU seconds, client wall seconds) for ``requests`` POSTs to ``url``."""
    cpu = time.process_time()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, url, json.dumps(BODY), str(requests), str(concurrency),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    return time.process_time() - cpu, json.loads(out)["wall"]


async def http_figures(api: EmbeddedAPIServer, keys: KeySet, requests: int) -> dict[str, float]:
    baseline = web.Application()
    payload = json.dumps({"decisionId": "0" * 32, "allowed": True, "reason": "ALLOW"}).encode()

    async def constant(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=payload, content_type="application/json")

    baseline.router.add_post("/noop", constant)
    runner = web.AppRunner(baseline, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    noop_url = f"http://127.0.0.1:{runner.addresses[0][1]}/noop"
    config = AuthzConfig(port=0, server=api.url, keys=keys, configure_logs=False)
    async with start_authz(config) as handle:
        await _until(lambda: handle.sync.ready.is_set())
        await load(handle.url + "/v1/decisions", 500, 16)  # warm-up
        await load(noop_url, 500, 16)
        d_cpu, d_wall = await load(handle.url + "/v1/decisions", requests, 16)
        n_cpu, n_wall = await load(noop_url, requests, 16)
    await runner.cleanup()
    return {"decisions_per_cpu_s": requests / d_cpu, "noop_per_cpu_s": requests / n_cpu,
            "decisions_per_wall_s": requests / d_wall, "noop_per_wall_s": requests / n_wall}


async def propagation(api: EmbeddedAPIServer, keys: KeySet, count: int) -> tuple[list[float], list[float]]:
    """Seconds from each termination written until both decision points deny; and until a bare watch sees it."""
    config = AuthzConfig(port=0, server=api.url, keys=keys, configure_logs=False)
    floor: list[float] = []
    seen: dict[str, float] = {}
    async with start_authz(config) as first, start_authz(config) as second, aiohttp.ClientSession() as http:
        await _until(lambda: first.sync.ready.is_set() and second.sync.ready.is_set())
        watch_url = f"{api.url}/apis/tksh.kz/v1alpha1/namespaces/{NS}/accessgrants?watch=true"

        async def watcher() -> None:
            async with http.get(watch_url, timeout=aiohttp.ClientTimeout(total=None)) as response:
                async for line in response.content:
                    event = json.loads(line)
                    obj = event.get("object", {})
                    if obj.get("status", {}).get("phase") == "Terminated":
                        seen.setdefault(obj["metadata"]["name"], time.perf_counter())

        watch_task = asyncio.create_task(watcher())
        delays: list[float] = []
        now = datetime.datetime.now(datetime.UTC)
        for i in range(count):
            name, subject = f"t{i}", f"person:t{i}"
            await api.apply(grant(name, subject))
            for handle in (first, second):
                await _until(lambda h=handle, s=subject: h.index.decide(s, "read", 5, OWNER, now=now).allowed)
            start = time.perf_counter()
            await api.apply(grant(name, subject, terminated=True))
            for handle in (first, second):
                await _until(lambda h=handle, s=subject: not h.index.decide(s, "read", 5, OWNER, now=now).allowed,
                             interval=0.0002)
            delays.append(time.perf_counter() - start)
            await _until(lambda n=name: n in seen, interval=0.0002)
            floor.append(seen[name] - start)
        watch_task.cancel()
    return delays, floor


async def _until(check: Any, timeout: float = 30.0, interval: float = 0.005) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(interval)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--terminations", type=int, default=200)
    args = parser.parse_args()
    configure_logging("INFO", json=True, stream=open(os.devnull, "w"))  # noqa: SIM115, ASYNC230 - whole run
    keys = KeySet.generate(issuer="tksh-operator", audience="tksh-authz")
    async with EmbeddedAPIServer(crd_paths=project_crd_paths()) as api:
        await api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        await api.apply(function())
        await api.apply(grant("b0", "person:b0"))
        http = await http_figures(api, keys, args.requests)
        delays, floor = await propagation(api, keys, args.terminations)
    print(f"HTTP decisions, {args.requests} requests, 16 concurrent, client in another process:")
    print(f"  /v1/decisions  {http['decisions_per_cpu_s']:8.0f} per server CPU-second"
          f"  ({http['decisions_per_wall_s']:.0f}/s wall)")
    print(f"  baseline noop  {http['noop_per_cpu_s']:8.0f} per server CPU-second"
          f"  ({http['noop_per_wall_s']:.0f}/s wall)")
    print(f"  ratio decisions/noop: {http['decisions_per_cpu_s'] / http['noop_per_cpu_s']:.2f}")
    print(f"Termination to deny at 2 decision points, {args.terminations} terminations:")
    print(f"  p50 {pct(delays, 0.5) * 1000:.1f} ms  p99 {pct(delays, 0.99) * 1000:.1f} ms"
          f"  max {max(delays) * 1000:.1f} ms  mean {statistics.mean(delays) * 1000:.1f} ms")
    print(f"  baseline bare watch: p50 {pct(floor, 0.5) * 1000:.1f} ms  p99 {pct(floor, 0.99) * 1000:.1f} ms")
    print(f"  ratio p99 / watch p99: {pct(delays, 0.99) / pct(floor, 0.99):.2f}")
    print(f"  python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {Path(__file__).name}")


if __name__ == "__main__":
    asyncio.run(main())
