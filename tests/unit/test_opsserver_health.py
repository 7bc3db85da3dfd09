"""``/healthz`` of the operator's ops server: 200 while kopf's core is intact, 503 with the reason once it failed
(``tksh.run``), without asking anything of the API server. A real local HTTP server and a real client."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tksh.metrics import OperatorMetrics
from tksh.opsserver import OpsServer
from tksh.run import describe_root_task


async def get(port: int, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.json()


async def test_healthz_is_200_while_the_core_is_intact_and_503_with_the_reason_once_it_failed() -> None:
    failure: list[str] = []
    async with OpsServer(OperatorMetrics(), lambda: True, host="127.0.0.1", port=0,
                         failure=lambda: failure[0] if failure else None) as ops:
        assert await get(ops.port, "/healthz") == (200, {"status": "ok"})
        failure.append("kopf's root task 'multidimensional multitasker' failed: WatchingError: ...")
        assert await get(ops.port, "/healthz") == (503, {"status": "failing", "reason": failure[0]})
        assert await get(ops.port, "/readyz") == (200, {"status": "ready"})  # readiness is kopf's flag alone


async def test_healthz_without_a_failure_check_is_200() -> None:
    async with OpsServer(OperatorMetrics(), lambda: False, host="127.0.0.1", port=0) as ops:
        assert await get(ops.port, "/healthz") == (200, {"status": "ok"})
        assert await get(ops.port, "/readyz") == (503, {"status": "starting"})


async def _fails() -> None:
    raise RuntimeError("watch of grant for 870412300415 broke")


async def _returns() -> None:
    return None


async def _sleeps() -> None:
    await asyncio.sleep(3600)


@pytest.mark.parametrize(("coro", "expected"), [
    (_fails, "kopf's root task 'orchestrator' failed: RuntimeError: watch of grant for <bin:"),
    (_returns, "kopf's root task 'orchestrator' ended unexpectedly"),
    (_sleeps, "kopf's root task 'orchestrator' was cancelled"),
])
async def test_a_root_tasks_end_is_described_masked(coro: Any, expected: str) -> None:
    task = asyncio.create_task(coro(), name="orchestrator")
    if coro is _sleeps:
        await asyncio.sleep(0)
        task.cancel()
    await asyncio.wait({task})
    text = describe_root_task(task)
    assert text.startswith(expected), text
    assert "870412300415" not in text
