"""One scale run (item 5): apply, wait until everything is reconciled, measure, rest, verify.

``python -m tests.reliability.scalerun --grants 2000 --digital-objects 100 [--profile DIR]`` runs it outside
pytest and prints the figures; ``--profile`` records py-spy profiles (collapsed stacks) of the operator
process and of this process (the embedded API server) while the objects converge.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.reliability.harness import Harness
from tests.reliability.observe import DecisionPoint, HealthProbe, metric, profiled
from tests.reliability.scale import (
    CountingAPIServer,
    Population,
    Progress,
    cpu_seconds,
    difference,
    population,
    rss,
)
from tksh.access.keyrotation import GRANT_UID_LABEL, token_secret_name

APPLY_BATCH = 250


async def apply_all(api: CountingAPIServer, pop: Population) -> None:
    """Everything into the store, in batches with a pause in between so the server also serves the operator."""
    objects = [*pop.digital_objects, *pop.grants]
    for start in range(0, len(objects), APPLY_BATCH):
        for obj in objects[start:start + APPLY_BATCH]:
            await api.apply(obj)
        await asyncio.sleep(0)


async def converge(h: Harness, progress: Progress, deadline: float, label: str) -> None:
    last, started = 0.0, time.monotonic()
    while not progress.done:
        if not h.operator.running:
            raise AssertionError(f"the operator process exited: {h.operator.tail()}")
        now = time.monotonic()
        if now > deadline:
            raise AssertionError(f"{label}: not reconciled in time: grants {progress.grants_ok}/"
                                 f"{len(progress.grants)}, objects {progress.objects_ok}/{len(progress.expected)}; "
                                 f"e.g. {progress.missing()}")
        if now - last > 10:
            print(f"{label}: {now - started:.0f} s, grants {progress.grants_ok}/{len(progress.grants)} "
                  f"(active {progress.grants_active}), "
                  f"objects {progress.objects_ok}/{len(progress.expected)}", file=sys.stderr, flush=True)
            last = now
        await asyncio.sleep(0.2)


def verify_store(api: CountingAPIServer, pop: Population, namespace: str) -> None:
    """Every object as it must be, read from the store (not from the progress counters)."""
    store = api.store
    grants = {obj["metadata"]["name"]: obj for obj in store.current(store.info("accessgrants.tksh.kz"))
              if obj["metadata"].get("namespace") == namespace}
    secrets = {obj["metadata"]["name"]: obj for obj in store.current(store.info("secrets"))
               if obj["metadata"].get("namespace") == namespace}
    problems: list[str] = []
    for body in pop.grants:
        name = body["metadata"]["name"]
        grant = grants.get(name) or {}
        status = grant.get("status") or {}
        ready = [c for c in status.get("conditions") or () if c.get("type") == "Ready"]
        secret = secrets.get(token_secret_name(name)) or {}
        label = ((secret.get("metadata") or {}).get("labels") or {}).get(GRANT_UID_LABEL)
        if status.get("phase") != "Active" or not ready or ready[0].get("status") != "True" \
                or status.get("observedGeneration") != grant["metadata"].get("generation") \
                or status.get("tokenSecret") != token_secret_name(name) or not status.get("tokenExpiresAt") \
                or label != grant["metadata"].get("uid") or not (secret.get("data") or {}):
            problems.append(f"grant {name}: phase {status.get('phase')}, Ready {ready[:1]}, secret label {label}")
        for entry in status.get("outbox") or ():
            if entry.get("state") != "Delivered":
                problems.append(f"grant {name}: outbox entry {entry.get('id')} {entry.get('state')}")
    objects = {f"{namespace}/{obj['metadata']['name']}": obj for obj in store.current(store.info("digitalobjects"))}
    for key, phase in pop.expected_phase.items():
        status = (objects.get(key) or {}).get("status") or {}
        if status.get("phase") != phase:
            problems.append(f"digital object {key}: phase {status.get('phase')}, expected {phase}")
        for entry in status.get("outbox") or ():
            if entry.get("state") != "Delivered":
                problems.append(f"digital object {key}: outbox entry {entry.get('id')} {entry.get('state')}")
    assert not problems, f"{len(problems)} objects not as expected: {problems[:10]}"


async def measure(h: Harness, api: CountingAPIServer, *, digital_objects: int, grants: int, rest: float,
                  deadline: float, profile: Path | None = None) -> dict[str, Any]:
    """The run; returns the figures (and raises AssertionError when something is not reconciled)."""
    access_log = logging.getLogger("aiohttp.access")  # a line per request (a million) is this process's cost only
    level, access_log.level = access_log.level, logging.WARNING
    try:
        return await _measure(h, api, digital_objects=digital_objects, grants=grants, rest=rest, deadline=deadline,
                              profile=profile)
    finally:
        access_log.setLevel(level)


async def _measure(h: Harness, api: CountingAPIServer, *, digital_objects: int, grants: int, rest: float,
                   deadline: float, profile: Path | None) -> dict[str, Any]:
    namespace = h.namespace
    pop = population(namespace, digital_objects, grants, h.target.url)
    progress = Progress(namespace, (g["metadata"]["name"] for g in pop.grants), pop.expected_phase)
    unsubscribe = api.store.subscribe(progress.feed)
    authz = DecisionPoint(api.url, h.operator.log_dir)
    await authz.start()
    await h.operator.start()
    await h.operator.wait_ready()
    figures: dict[str, Any] = {"digital_objects": digital_objects, "grants": grants, "emails": pop.emails}
    try:
        figures |= await _converge(h, api, pop, progress, deadline, profile, authz.pid)
        figures |= await _rest(h, api, rest, "")
        operator_rss, operator_peak = rss(_pid(h))
        authz_rss, authz_peak = rss(authz.pid)
        figures |= {"operator_rss_mib": round(operator_rss), "operator_peak_rss_mib": round(operator_peak),
                    "authz_rss_mib": round(authz_rss), "authz_peak_rss_mib": round(authz_peak)}
        verify_store(api, pop, namespace)
        figures |= await check_decision_point(authz, pop)
        figures |= await _restart(h, api, pop, deadline)
        figures |= await _rest(h, api, rest, "after_restart_")
        verify_store(api, pop, namespace)
    finally:
        unsubscribe()
        await authz.stop()
    figures["authz_log_lines"] = authz.lines()
    return figures


def _pid(h: Harness) -> int:
    pid = h.operator.pid
    assert pid is not None, f"the operator process is not running: {h.operator.tail()}"
    return pid


async def _converge(h: Harness, api: CountingAPIServer, pop: Population, progress: Progress, deadline: float,
                    profile: Path | None, authz_pid: int) -> dict[str, Any]:
    """Apply everything; wait until every object is reconciled and every e-mail received."""
    operator_pid = _pid(h)
    requests = api.snapshot()
    cpu_start = {"operator": cpu_seconds(operator_pid), "apiserver": cpu_seconds(os.getpid()),
                 "authz": cpu_seconds(authz_pid)}
    async with profiled({"operator": operator_pid, "apiserver": os.getpid()}, profile):
        with HealthProbe(h.operator.url) as probe:
            started = time.monotonic()
            await apply_all(api, pop)
            applied = time.monotonic() - started
            await converge(h, progress, deadline, f"{len(pop.digital_objects)} DOs + {len(pop.grants)} grants")
            converged = time.monotonic() - started
    cpu = {"operator": cpu_seconds(operator_pid) - cpu_start["operator"],
           "apiserver": cpu_seconds(os.getpid()) - cpu_start["apiserver"],
           "authz": cpu_seconds(authz_pid) - cpu_start["authz"]}
    await wait_mail(h, pop.emails, deadline)
    delivered = time.monotonic() - started
    await asyncio.sleep(2.0)  # the last writes' events reach every watcher
    to_converge = difference(api.snapshot(), requests)
    return {
        "applied_seconds": round(applied, 1), "converged_seconds": round(converged, 1),
        "grants_converged_seconds": round((progress.grants_done_at or started) - started, 1),
        "objects_converged_seconds": round((progress.objects_done_at or started) - started, 1),
        "mail_delivered_seconds": round(delivered, 1), "mails_received": len(h.mail.unique()),
        "cpu_seconds_to_converge": {k: round(v, 1) for k, v in cpu.items()},
        "operator_cpu_ms_per_grant": round(1000 * cpu["operator"] / max(len(pop.grants), 1), 2),
        "apiserver_cpu_ms_per_grant": round(1000 * cpu["apiserver"] / max(len(pop.grants), 1), 2),
        "requests_to_converge": sum(to_converge.values()), "requests_to_converge_by_kind": to_converge,
        **probe.figures(""),
    }


async def _rest(h: Harness, api: CountingAPIServer, seconds: float, prefix: str) -> dict[str, Any]:
    """Nothing changes for ``seconds``: the requests the operator (and the decision point) make meanwhile."""
    pid = _pid(h)
    before, cpu_before = api.snapshot(), cpu_seconds(pid)
    api.detail = []
    try:
        await asyncio.sleep(seconds)
    finally:
        detail, api.detail = api.detail, None
    at_rest = difference(api.snapshot(), before)
    return {f"{prefix}rest_seconds": seconds, f"{prefix}requests_at_rest": at_rest,
            f"{prefix}requests_at_rest_total": sum(at_rest.values()),
            f"{prefix}requests_at_rest_paths": sorted(set(detail)),
            f"{prefix}operator_cpu_at_rest_percent": round(100 * (cpu_seconds(pid) - cpu_before) / seconds, 1)}


async def _restart(h: Harness, api: CountingAPIServer, pop: Population, deadline: float) -> dict[str, Any]:
    """The operator stopped and started again over everything reconciled: how long until its view is complete
    (``tksh_grants{phase="Active"}`` counts every grant, ``tksh_applications`` every application), what it asks of
    the API server meanwhile (lists and watches; no write: nothing is due), its CPU and memory."""
    await h.operator.stop()
    requests, version = api.snapshot(), int(api.store.resource_version)
    started = time.monotonic()
    await h.operator.start()
    pid = _pid(h)
    await h.operator.wait_ready(timeout=max(deadline - time.monotonic(), 60.0))
    ready = time.monotonic() - started
    with HealthProbe(h.operator.url) as probe:
        resynced = await _resynced(h, pop, deadline) - started
        await asyncio.sleep(3.0)
    during = difference(api.snapshot(), requests)
    events = collections.Counter(
        f"{(e.get('involvedObject') or {}).get('kind')} {e.get('reason')}" for e in api.events()
        if int(e["metadata"]["resourceVersion"]) > version)
    _, peak = rss(pid)
    return {"restart_ready_seconds": round(ready, 1), "restart_resync_seconds": round(resynced, 1),
            "restart_requests": during, "restart_events": dict(events),
            "restart_operator_cpu_seconds": round(cpu_seconds(pid), 1),
            "restart_operator_peak_rss_mib": round(peak), **probe.figures("restart_")}


async def _resynced(h: Harness, pop: Population, deadline: float) -> float:
    """When the restarted operator's gauges count every grant Active and every application in its phase."""
    phases = collections.Counter(pop.expected_phase.values())
    wanted = {'tksh_grants{phase="Active"}': len(pop.grants),
              **{f'tksh_applications{{phase="{phase}"}}': n for phase, n in phases.items()}}
    while True:
        seen = {name: await metric(h.operator.url, name) for name in wanted}
        if all(seen[name] == n for name, n in wanted.items()):
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"the restarted operator did not see everything: {seen}, expected {wanted}")
        await asyncio.sleep(0.2)


async def wait_mail(h: Harness, expected: int, deadline: float) -> None:
    """Until the receiver has ``expected`` distinct messages (by idempotency key)."""
    while len(h.mail.unique()) < expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(h.mail.unique())} of {expected} e-mails received")
        await asyncio.sleep(0.2)


async def check_decision_point(authz: DecisionPoint, pop: Population) -> dict[str, Any]:
    """The decision point holds every grant and allows what a sample of them grant."""
    sample = random.Random(3).sample(pop.grants, min(50, len(pop.grants)))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        held = await authz.metric(http, "tksh_authz_index_grants")
        answers = [await authz.decide(http, g["spec"]["subject"]["id"], g["spec"]["onBehalfOf"]["bin"])
                   for g in sample]
    denied = [a for a in answers if not a.get("allowed")]
    assert held == len(pop.grants), f"the decision point holds {held} grants of {len(pop.grants)}"
    assert not denied, f"{len(denied)} of {len(answers)} sampled decisions denied: {denied[:3]}"
    return {"authz_index_grants": int(held), "authz_sampled_decisions_allowed": len(answers)}


# --- outside pytest: python -m tests.reliability.scalerun ----------------------------------------------------------


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    log_dir = Path(tempfile.mkdtemp(prefix="tksh-scale-"))
    async with Harness.embedded(log_dir, api_class=CountingAPIServer) as h:
        assert isinstance(h.api, CountingAPIServer)
        figures = await measure(h, h.api, digital_objects=args.digital_objects, grants=args.grants, rest=args.rest,
                                deadline=time.monotonic() + args.timeout, profile=args.profile)
        figures["log_dir"] = str(log_dir)
        figures.pop("authz_log_lines")
        return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grants", type=int, default=2000)
    parser.add_argument("--digital-objects", type=int, default=100)
    parser.add_argument("--rest", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    figures = asyncio.run(_main(args))
    print(json.dumps(figures, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
