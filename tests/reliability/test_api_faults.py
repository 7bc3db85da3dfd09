"""Issue 7, item 2: 409s, 429s with Retry-After, 500s, dropped watch streams and 410 Gone during workflows.

The operator (a separate process) must converge: every object in its right final state, every
notification delivered exactly once after de-duplication, nothing half-applied (each status describes
the current generation, each outbox entry delivered); the process never exits and answers /healthz;
and once the faults stop it comes to rest: in a quiet period afterwards no error line, no write of the
registration lifecycle's fields, and no write repeated (no handler stuck in an error loop). Monitoring
may write availability changes at rest (an integrated object is probed): counted, not refused.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import json
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.faults import FaultInjector
from tests.reliability.figures import record
from tests.reliability.harness import Harness
from tests.reliability.logscan import assert_no_personal_data
from tests.reliability.verify import account, wait_final
from tests.reliability.workflows import integrated, registration_mix, until

WRITES = ("POST", "PUT", "PATCH", "DELETE")
# What the registration lifecycle writes (tksh.registration.Plan.status): none of it may change at rest.
LIFECYCLE_FIELDS = frozenset({"phase", "submittedAt", "reviewDeadline", "decidedAt", "integratedAt", "missing",
                              "message", "observedGeneration", "conditions", "outbox"})
QUIET_SECONDS = 3.0  # the rest period observed after convergence: a window, not a threshold


def error_lines(lines: list[str], since: datetime.datetime | None = None) -> list[dict[str, Any]]:
    found = []
    for line in lines:
        try:
            record_ = json.loads(line)
        except ValueError:
            found.append({"level": "unparsed", "event": line[:200]})  # a traceback outside the JSON logger
            continue
        if record_.get("level") not in ("error", "critical"):
            continue
        stamp = datetime.datetime.fromisoformat(str(record_.get("timestamp", "")).replace("Z", "+00:00"))
        if since is None or stamp >= since:
            found.append(record_)
    return found


def lifecycle_fields(body: bytes) -> set[str]:
    """The registration lifecycle's status fields a write carries."""
    try:
        status = json.loads(body or b"{}").get("status")
    except (ValueError, AttributeError):
        return set()
    return set(status) & LIFECYCLE_FIELDS if isinstance(status, dict) else set()


async def first_of(work: Coroutine[Any, Any, None], watchdog: asyncio.Task[None]) -> None:
    """Run ``work``; fail at once if the watchdog fires first."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.wait({task, watchdog}, return_when=asyncio.FIRST_COMPLETED)
        if watchdog.done():
            watchdog.result()
        await task
    finally:
        task.cancel()


async def fault_run(harness: Harness, name: str, count: int, seed: int, mean_interval: float) -> None:
    api, operator = harness.api, harness.operator
    assert api is not None
    workflows = registration_mix(count, harness.namespace, harness.target.url)
    await operator.start()
    await operator.wait_ready()
    injector = FaultInjector(api, seed, mean_interval)
    stop = asyncio.Event()
    injecting = asyncio.create_task(injector.run(stop))

    async def staggered(index: int) -> None:
        await asyncio.sleep(0.2 * index)
        await harness.drive(workflows[index])

    async def drivers() -> None:
        await asyncio.gather(*(staggered(i) for i in range(len(workflows))))

    started = time.monotonic()
    watchdog = asyncio.create_task(harness.watchdog())
    try:
        await first_of(drivers(), watchdog)
        stop.set()
        await injecting
        api.faults.clear()
        await first_of(wait_final(harness.cluster, workflows), watchdog)
    finally:
        stop.set()
        watchdog.cancel()
    converged = time.monotonic() - started
    accounting = await account(harness.cluster, harness.mail, workflows)

    rest_from, rest_wall = time.monotonic(), datetime.datetime.now(datetime.UTC)
    await asyncio.sleep(QUIET_SECONDS)
    writes_at_rest = [(method, path, api.write_bodies.get(i, b""))
                      for i, (at, method, path) in enumerate(api.request_log) if at >= rest_from and method in WRITES]
    lifecycle_at_rest = [(path, body[:300]) for _, path, body in writes_at_rest if lifecycle_fields(body)]
    repeated_at_rest = len(writes_at_rest) - len(set(writes_at_rest))
    errors_at_rest = error_lines(operator.log_lines(), since=rest_wall)
    healthz = await operator.probe("/healthz")
    lines = operator.log_lines()
    record(name, {
        "backend": harness.backend, "seed": seed, "workflows": len(workflows), "faults_planned": dict(injector.planned),
        "requests_answered_with_fault": injector.answered(), "requests_total": len(api.request_log),
        "operator_exits": operator.incarnations - 1 + (0 if operator.running else 1),
        "converged_seconds": round(converged, 1), "error_log_lines": len(error_lines(lines)),
        "writes_at_rest": len(writes_at_rest), "lifecycle_writes_at_rest": len(lifecycle_at_rest),
        "repeated_writes_at_rest": repeated_at_rest, "errors_at_rest": len(errors_at_rest),
        **{k: v for k, v in accounting.figures().items() if k != "workflows"},
        "log_lines_scanned": assert_no_personal_data(harness.log_lines()),
    })
    assert operator.running, f"the operator exited: {operator.tail()}"
    assert operator.incarnations == 1
    assert healthz == 200
    assert sum(injector.answered().values()) > 0
    assert accounting.lost == 0 and accounting.duplicates_after_dedup == 0, accounting.problems
    assert accounting.problems == []
    assert lifecycle_at_rest == [], lifecycle_at_rest
    assert repeated_at_rest == 0, writes_at_rest
    assert errors_at_rest == [], sorted({str(e.get("event"))[:300] for e in errors_at_rest})


async def test_api_faults_short(tmp_path: Path, reliability_seed: int) -> None:
    async with Harness.embedded(tmp_path / "logs") as harness:
        await fault_run(harness, "faults-embedded-short", count=6, seed=reliability_seed, mean_interval=0.3)


@pytest.mark.reliability_long
@pytest.mark.timeout(900)
async def test_api_faults_long(tmp_path: Path, reliability_seed: int) -> None:
    """More workflows, a fault every 0.1 s on average."""
    async with Harness.embedded(tmp_path / "logs") as harness:
        await fault_run(harness, "faults-embedded-long", count=24, seed=reliability_seed, mean_interval=0.1)


async def test_api_answering_500_longer_than_every_backoff_does_not_end_the_operator(tmp_path: Path) -> None:
    """Every request fails until each watch has failed more often than kopf's backoffs allow (it used to exit)."""
    async with Harness.embedded(tmp_path / "logs") as harness:
        api, operator = harness.api, harness.operator
        assert api is not None
        await operator.start()
        await operator.wait_ready()
        fault = api.faults.inject(500, times=None)
        api.drop_watches()  # the open streams end: every watcher lists and watches anew, and fails

        async def failed_long_enough() -> None:
            assert operator.running, operator.tail()
            hits = collections.Counter(item.path for item in api.faults.injected)
            # one request retried 8 times: kopf gave up after 5 attempts (fast mode) and the operator exited
            assert max(hits.values(), default=0) >= 8, hits

        await until(failed_long_enough, 120)
        api.faults.clear()
        workflow = integrated("after-outage", harness.namespace, harness.target.url)
        await harness.drive(workflow)
        await wait_final(harness.cluster, [workflow])
        accounting = await account(harness.cluster, harness.mail, [workflow])
        record("api-down-embedded", {"requests_answered_500": fault.hits, "operator_exits": operator.incarnations - 1,
                                     "lost": accounting.lost, "duplicates": accounting.duplicates_after_dedup})
        assert operator.running and operator.incarnations == 1
        assert await operator.probe("/healthz") == 200
        assert accounting.problems == []
