"""The processes a scale run watches from outside: the decision point, the operator's /healthz, py-spy profiles."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.reliability.procs import free_port
from tksh.access import KeySet

TKSH = Path(sys.executable).parent / "tksh"


class DecisionPoint:
    """``tksh authz`` as a process against the same API server, its log in ``log_dir``."""

    def __init__(self, server: str, log_dir: Path) -> None:
        self.server, self.log_dir, self.port = server, log_dir, free_port()
        self.process: asyncio.subprocess.Process | None = None
        self.log = log_dir / "authz.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        keys = self.log_dir / "authz-keys"
        keys.mkdir(parents=True, exist_ok=True)
        for name, data in KeySet.generate(issuer="tksh-operator", audience="tksh-authz").to_pem_files().items():
            (keys / name).write_bytes(data)
        with self.log.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                str(TKSH), "authz", "--port", str(self.port), "--server", self.server, "--keys-dir", str(keys),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)

    async def metric(self, http: aiohttp.ClientSession, name: str) -> float | None:
        async with http.get(f"{self.url}/metrics") as response:
            for line in (await response.text()).splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return None

    async def decide(self, http: aiohttp.ClientSession, subject: str, owner: str) -> dict[str, Any]:
        body = {"subject": subject, "action": "read", "resource": {"category": 2, "ownerBin": owner}}
        async with http.post(f"{self.url}/v1/decisions", json=body) as response:
            answer: dict[str, Any] = await response.json()
            return answer

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    def lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8", errors="replace").splitlines() if self.log.exists() else []


class HealthProbe:
    """GET /healthz of the operator every ``interval`` seconds, as a liveness probe would; each answer's latency.

    The chart's liveness probe gives up after 3 s (``timeoutSeconds``) three times in a row: an event loop that is
    too busy to answer for that long gets the operator restarted, so the latencies are figures of their own."""

    LIVENESS_TIMEOUT = 3.0

    def __init__(self, url: str, interval: float = 0.5) -> None:
        self.url, self.interval = url, interval
        self.latencies: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
            while True:
                started = time.monotonic()
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"{self.url}/healthz") as response:
                        await response.read()
                        self.latencies.append(time.monotonic() - started)
                await asyncio.sleep(self.interval)

    def __enter__(self) -> HealthProbe:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()

    def figures(self, prefix: str) -> dict[str, Any]:
        worst = max(self.latencies, default=0.0)
        slow = sum(1 for latency in self.latencies if latency > self.LIVENESS_TIMEOUT)
        return {f"{prefix}healthz_max_seconds": round(worst, 2), f"{prefix}healthz_probes": len(self.latencies),
                f"{prefix}healthz_over_3s": slow}


async def metric(url: str, name: str) -> float | None:
    """One sample of the operator's /metrics, waiting as long as it takes (a busy operator answers late)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http, \
            http.get(f"{url}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


@contextlib.asynccontextmanager
async def profiled(pids: dict[str, int], folder: Path | None) -> AsyncIterator[None]:
    """py-spy (``.venv/bin/py-spy``) records each process while the block runs; collapsed stacks in ``folder``."""
    if folder is None:
        yield
        return
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    spy = Path(sys.executable).parent / "py-spy"
    procs = [await asyncio.create_subprocess_exec(
        str(spy), "record", "--pid", str(pid), "--rate", "50", "--format", "raw", "--nonblocking",
        "--output", str(folder / f"{name}.txt"), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        for name, pid in pids.items()]
    try:
        yield
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            await proc.wait()
