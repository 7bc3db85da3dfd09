"""Issue 7, item 1: the operator, a separate process, SIGKILLed mid-workflow N times and restarted each time.

Workflows of every kind run while the kill loop kills the operator at random and targeted points
(:mod:`tests.reliability.killer`): registrations (§14–17), AccessGrants activated with their token
Secrets and terminated on REVOKED, REFUSED, EXPIRED (a timer a few seconds ahead), a three-level
delegation cascade and FALSE_INFORMATION with its cascade (§20), and outages of integrated objects
whose real HTTP targets go down and recover (an Incident, e-mails and signed webhooks, §34). After each
kill another workflow starts, so there is always work in flight. Afterwards every object is in its right
final state, every due e-mail and webhook was delivered exactly once after de-duplication, none was lost;
raw duplicates (the same key re-sent after a kill between sending and marking) are counted and reported.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.realapi.cluster import RealCluster
from tests.reliability.figures import record
from tests.reliability.harness import Harness
from tests.reliability.killer import KillLoop
from tests.reliability.logscan import assert_no_personal_data
from tests.reliability.mix import every_kind
from tests.reliability.verify import account, wait_final
from tksh.sandbox.apiserver import project_crd_paths

DRIVE_TIMEOUT = 900.0  # a deadline for a broken run: a step may wait through many kills


async def kill_run(harness: Harness, name: str, kills: int, initial: int, seed: int) -> None:
    workflows = await every_kind(harness, initial + kills)
    waiting = list(workflows[initial:])
    tasks = [asyncio.create_task(harness.drive(w, DRIVE_TIMEOUT)) for w in workflows[:initial]]

    def next_workflow(_: int) -> None:
        if waiting:
            tasks.append(asyncio.create_task(harness.drive(waiting.pop(0), DRIVE_TIMEOUT)))

    try:
        report = await KillLoop(harness, kills, seed, on_kill=next_workflow).run()
        tasks.extend(asyncio.create_task(harness.drive(w, DRIVE_TIMEOUT)) for w in waiting)
        await asyncio.gather(*tasks)
        await wait_final(harness.cluster, workflows)
        accounting = await account(harness.cluster, harness.mail, workflows, harness.hooks)
    finally:
        for task in tasks:
            task.cancel()
    scanned = assert_no_personal_data(harness.log_lines())
    kinds = collections.Counter(w.name.split("/")[0] for w in workflows)
    record(name, {"backend": harness.backend, "seed": seed, **report.figures(), **accounting.figures(),
                  "workflow_kinds": dict(sorted(kinds.items())), "log_lines_scanned": scanned})
    assert report.crashes == [], report.crashes
    assert report.kills == kills
    assert accounting.lost == 0, accounting.problems
    assert accounting.duplicates_after_dedup == 0, accounting.problems
    assert accounting.problems == []


@contextlib.asynccontextmanager
async def real_harness(cluster: RealCluster, tmp_path: Path) -> AsyncIterator[Harness]:
    await asyncio.to_thread(cluster.install_crds, project_crd_paths())
    async with Harness.real(cluster, tmp_path / "logs", f"rel-{uuid.uuid4().hex[:6]}") as harness:
        yield harness


async def test_kills_short(tmp_path: Path, reliability_seed: int) -> None:
    """Every kill point once (11 kills), a workflow of each kind or two: part of the default `make test`."""
    async with Harness.embedded(tmp_path / "logs") as harness:
        await kill_run(harness, "kill-embedded-short", kills=11, initial=4, seed=reliability_seed)


@pytest.mark.reliability_long
@pytest.mark.timeout(900)
async def test_kills_long(tmp_path: Path, reliability_seed: int) -> None:
    async with Harness.embedded(tmp_path / "logs") as harness:
        await kill_run(harness, "kill-embedded-long", kills=24, initial=6, seed=reliability_seed)


@pytest.mark.realapi
async def test_kills_real_api(tmp_path: Path, reliability_seed: int, real_cluster: RealCluster) -> None:
    """Against the real kube-apiserver: random, startup and SMTP kill points (no store hooks there)."""
    async with real_harness(real_cluster, tmp_path) as harness:
        await kill_run(harness, "kill-real-short", kills=6, initial=3, seed=reliability_seed)


@pytest.mark.realapi
@pytest.mark.reliability_long
@pytest.mark.timeout(900)
async def test_kills_real_api_long(tmp_path: Path, reliability_seed: int, real_cluster: RealCluster) -> None:
    async with real_harness(real_cluster, tmp_path) as harness:
        await kill_run(harness, "kill-real-long", kills=20, initial=4, seed=reliability_seed)
