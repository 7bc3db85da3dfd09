"""Issue 7, item 4: two operator replicas with kopf peering, and two decision points.

Two ``tksh operator`` processes share one peering object with the chart's priorities (replica-a 1: active;
replica-b 0: hot standby), each through its own listener of the embedded API server, so its request log
says which process wrote what. Workflows of every kind run all along. Each round SIGKILLs the active
replica: the standby must take over (its first write after the kill: the **handover time**, bounded by the
peering lifetime); then the killed replica is restarted, as its StatefulSet would, and, having the higher
priority, takes over again (**handback**), and the other pauses (kopf logs it). A write by the replica
that is not the active one at that moment is a violation: none is allowed, except by the old active
replica between the new one's first write and its own pause (counted and reported as overlap; every write
is conditional or idempotent, so an overlap costs at most a notification sent twice with one key).
Afterwards every object is in its final state, every due notification was delivered once after
de-duplication, none was lost.

Two ``tksh authz`` processes watch the same server; after every step of every grant workflow (activation,
termination, cascade) both must answer a set of decision requests exactly as the decision core does over
the grants stored at that moment (:func:`tests.reliability.replicas.converged`).
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.figures import record
from tests.reliability.harness import Harness
from tests.reliability.logscan import assert_no_personal_data
from tests.reliability.mix import every_kind
from tests.reliability.replicas import Ask, Convergence, DecisionPoints, Replicas, Write, converged
from tests.reliability.verify import account, wait_final
from tests.reliability.workflows import Step, Workflow, until

DRIVE_TIMEOUT = 600.0
PAUSED = "Pausing operations in favour of"
RESUMED = "Resuming operations after the pause"


def asks_for(workflows: list[Workflow]) -> list[Ask]:
    """Two requests per grant the workflows apply: read category 2 and sign category 5 for its owner."""
    asks: list[Ask] = []
    for workflow in workflows:
        for step in workflow.steps:
            for obj in step.objects:
                body = obj() if callable(obj) else obj
                if body.get("kind") != "AccessGrant" or "termination" in body["spec"]:
                    continue
                subject, owner = body["spec"]["subject"]["id"], body["spec"]["onBehalfOf"]["bin"]
                asks += [Ask(subject, "read", 2, owner), Ask(subject, "sign", 5, owner)]
    return list(dict.fromkeys(asks))


async def paused(replicas: Replicas, name: str) -> None:
    """kopf logged that ``name`` paused in favour of a peer, after it last resumed."""
    lines = replicas.processes[name].log_lines()
    last_pause = max((i for i, line in enumerate(lines) if PAUSED in line), default=-1)
    last_resume = max((i for i, line in enumerate(lines) if RESUMED in line), default=-1)
    assert last_pause > last_resume, f"{name} not paused yet"


async def replicas_run(tmp_path: Path, name: str, rounds: int, lifetime: int, batch: int,
                       graceful: bool = False) -> None:
    """``graceful``: the active replica is stopped with SIGTERM (as a rolling update or a drained node stops a
    pod) instead of SIGKILL."""
    async with Harness.embedded(tmp_path / "logs") as h:
        api = h.api
        assert api is not None
        async with Replicas(h, api, lifetime, tmp_path / "logs") as r, \
                DecisionPoints(api.url, tmp_path / "keys") as points:
            a, b = r.processes["replica-a"], r.processes["replica-b"]
            await a.start()
            await a.wait_ready()
            segment = time.monotonic()  # from here on replica-b is the standby: any write of its is a violation
            await b.start()  # starts paused (peering is mandatory), sees replica-a alive, stays paused
            await b.wait_ready()
            await until(points.ready, 60)
            convergence = Convergence()
            workflows: list[Workflow] = []
            tasks: list[asyncio.Task[None]] = []

            async def after(workflow: Workflow, step: Step) -> None:
                if workflow.name.startswith("grant-"):
                    await converged(points, api, h.namespace, asks_for(workflows), convergence)

            async def more() -> None:
                new = await every_kind(h, batch, start=len(workflows))
                workflows.extend(new)
                tasks.extend(asyncio.create_task(h.drive(w, DRIVE_TIMEOUT, after)) for w in new)

            def acting(replica: str, since: float) -> Callable[[], Awaitable[Write]]:
                async def check() -> Write:
                    found = r.first_write(replica, since)
                    assert found is not None, f"{replica} has written nothing since {since:.1f}"
                    return found
                return check

            violations: list[Write] = []
            timeline: list[Any] = []
            overlaps: list[int] = []
            handovers: list[float] = []
            handbacks: list[float] = []
            exits: list[int | None] = []
            late: list[Write] = []  # writes of a stopping replica after the standby's first
            active, standby = "replica-a", "replica-b"
            await more()
            try:
                await until(acting(active, segment), 60)
                for _ in range(rounds):
                    await more()
                    await until(acting(active, segment), 60)
                    killed = r.processes[active]
                    killed_at = time.monotonic()
                    if graceful:
                        exited = asyncio.create_task(killed.stop(timeout=60))
                    else:
                        killed.kill()
                        exited = asyncio.create_task(killed.wait_exit())
                    taken = await until(acting(standby, killed_at), 60 + 2 * lifetime)
                    exits.append(await exited)
                    violations += [w for w in r.writes(segment) if w.replica == standby and w.at < killed_at]
                    handovers.append(taken.at - killed_at)
                    late += [w for w in r.writes(taken.at) if w.replica == active]
                    await more()  # the new active replica takes work of its own
                    await until(acting(standby, taken.at + 1e-9), 60)
                    restarted_at = time.monotonic()
                    await killed.start()
                    back = await until(acting(active, restarted_at), 60 + 2 * lifetime)
                    handbacks.append(back.at - restarted_at)
                    await until(functools.partial(paused, r, standby), 60)
                    paused_seen = time.monotonic()
                    overlap = [w for w in r.writes(back.at) if w.replica == standby and w.at < paused_seen]
                    overlaps.append(len(overlap))
                    timeline.append(("killed", killed_at, "restarted", restarted_at, "back", back.at))
                    segment = paused_seen
                await asyncio.gather(*tasks)
                await wait_final(h.cluster, workflows)
                violations += [w for w in r.writes(segment) if w.replica == standby]
                accounting = await account(h.cluster, h.mail, workflows, h.hooks)
                await converged(points, api, h.namespace, asks_for(workflows), convergence)
            finally:
                for task in tasks:
                    task.cancel()
            writers = {replica: len([w for w in r.writes() if w.replica == replica]) for replica in r.processes}
            scanned = assert_no_personal_data([*r.log_lines(), *h.logs.lines(), *points.log_lines()])
    record(name, {
        "backend": "embedded", "rounds": rounds, "peering_lifetime": lifetime, "workflows": len(workflows),
        "stop": "SIGTERM" if graceful else "SIGKILL", "exit_codes": exits, "late_writes_at_stop": len(late),
        "handover_seconds": [round(s, 2) for s in handovers],
        "handover_max": round(max(handovers), 2), "handover_mean": round(sum(handovers) / len(handovers), 2),
        "handback_seconds": [round(s, 2) for s in handbacks], "overlap_writes": overlaps,
        "writes_by_replica": writers, "violations": len(violations),
        "decision_checks": convergence.checks, "decisions_compared": convergence.decisions_compared,
        "decision_convergence_max": round(max(convergence.seconds, default=0.0), 2),
        "decision_convergence_median": round(statistics.median(convergence.seconds or [0.0]), 2),
        "decision_rounds_max": max(convergence.rounds, default=0),
        **{k: v for k, v in accounting.figures().items() if k != "workflows"},
        "log_lines_scanned": scanned,
    })
    assert violations == [], (violations[:10], timeline)
    assert exits == [0] * rounds if graceful else all(code is not None and code < 0 for code in exits), exits
    assert accounting.lost == 0 and accounting.duplicates_after_dedup == 0, accounting.problems
    assert accounting.problems == []


async def test_two_replicas_hand_over_short(tmp_path: Path) -> None:
    """Two kills of the active replica, a 5-second peering lifetime: part of the default `make test`."""
    await replicas_run(tmp_path, "replicas-embedded-short", rounds=2, lifetime=5, batch=3)


@pytest.mark.reliability_long
@pytest.mark.timeout(900)
async def test_two_replicas_hand_over_long(tmp_path: Path) -> None:
    await replicas_run(tmp_path, "replicas-embedded-long", rounds=8, lifetime=5, batch=3)


@pytest.mark.reliability_long
@pytest.mark.timeout(900)
async def test_two_replicas_hand_over_production_lifetime(tmp_path: Path) -> None:
    """The production peering lifetime (60 s, kopf's default): the handover time a cluster sees."""
    await replicas_run(tmp_path, "replicas-embedded-lifetime-60", rounds=3, lifetime=60, batch=2)


@pytest.mark.timeout(900)
async def test_two_replicas_hand_over_on_sigterm(tmp_path: Path) -> None:
    """A graceful stop (SIGTERM: a rolling update, a drained node) with the production peering lifetime (60 s): the
    stopping replica says it is gone, so the standby does not wait for the lifetime to run out."""
    await replicas_run(tmp_path, "replicas-embedded-sigterm-60", rounds=3, lifetime=60, batch=2, graceful=True)
