"""The operator as a separate OS process: started, probed, killed with SIGKILL, restarted.

Every incarnation writes its stdout and stderr (the product's JSON log lines) to a file of its own in
``log_dir``, so the suite can scan all of them afterwards (personal data, error loops).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
PYTHON = Path(sys.executable)


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OperatorProcess:
    """``tksh operator`` itself in a child process, in fast mode (``TKSH_FAST=1``: short kopf and outbox backoffs).

    ``connection`` is ``["--server", URL]`` or ``["--kubeconfig", PATH]``; ``env`` adds ``TKSH_*``
    settings (SMTP, test probes). The ops port is fixed for the whole run, so /healthz and /metrics
    keep their address across restarts. ``standalone=False`` runs it with kopf peering (``env`` then
    names the peering and the priority); ``name`` is its kopf peering identity (``POD_ID``, as the
    chart sets it) and the prefix of its log files.
    """

    def __init__(self, connection: Sequence[str], env: Mapping[str, str], log_dir: Path, *,
                 standalone: bool = True, name: str = "operator") -> None:
        self.connection = list(connection)
        self.env = {"TKSH_FAST": "1", "POD_ID": name, **env}
        self.log_dir = log_dir
        self.standalone = standalone
        self.name = name
        self.ops_port = free_port()
        self.incarnations = 0
        self.kills = 0
        self.process: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self.log_paths: list[Path] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ops_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.running and self.process is not None else None

    def command(self) -> list[str]:
        return [str(PYTHON), "-m", "tksh.cli", "operator", *self.connection,
                *(["--standalone"] if self.standalone else []), "--ops-port", str(self.ops_port)]

    async def start(self) -> None:
        if self.running:
            raise RuntimeError("the operator process is already running")
        self.incarnations += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / f"{self.name}-{self.incarnations:03d}.log"
        self.log_paths.append(path)
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        with path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                *self.command(), cwd=str(ROOT), env=env, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )
        self.started_at = time.monotonic()

    def kill(self) -> bool:
        """SIGKILL now (safe to call from a synchronous hook); whether a running process was killed."""
        process = self.process
        if process is None or process.returncode is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
            self.kills += 1
            return True
        return False

    async def wait_exit(self, timeout: float = 30.0) -> int | None:  # noqa: ASYNC109
        if self.process is None:
            return None
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def stop(self, timeout: float = 20.0) -> int | None:  # noqa: ASYNC109
        """SIGTERM (kopf stops gracefully), SIGKILL if it does not stop in time."""
        process = self.process
        if process is None or process.returncode is not None:
            return None if process is None else process.returncode
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGKILL)
            return await process.wait()

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as http, http.get(self.url + path,
                                                             timeout=aiohttp.ClientTimeout(total=5)) as response:
            return response.status, await response.text()

    async def probe(self, path: str) -> int | None:
        """The status of GET ``path`` on the ops port, or None when nothing answers."""
        try:
            return (await self.get(path))[0]
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def wait_ready(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"the operator exited with {self.process and self.process.returncode}: "
                                   f"{self.tail()}")
            if await self.probe("/readyz") == 200:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"the operator was not ready within {timeout:g} s: {self.tail()}")

    async def metric(self, name: str) -> float | None:
        """One unlabelled sample of /metrics (e.g. ``tksh_notifications_pending``), None when absent."""
        status, text = await self.get("/metrics")
        if status != 200:
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def tail(self, lines: int = 15) -> str:
        if not self.log_paths or not self.log_paths[-1].exists():
            return "(no log)"
        return "\n".join(self.log_paths[-1].read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def log_lines(self) -> list[str]:
        """Every line every incarnation wrote."""
        found: list[str] = []
        for path in self.log_paths:
            if path.exists():
                found.extend(path.read_text(encoding="utf-8", errors="replace").splitlines())
        return found
