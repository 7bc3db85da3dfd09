"""Two operator replicas with kopf peering, and two decision points, for item 4 of issue 7.

* :class:`Replicas`: two ``tksh operator`` processes (``TKSH_STANDALONE`` off, one peering object,
  priorities 1 and 0 as the chart's StatefulSet gives them: the higher one is active, the other a hot
  standby). Each talks to the embedded API server through a listener of its own (another port of the
  same server), so the server's request log tells which process made each request: ``writes()``.
  Each has its own kopf identity (``POD_ID``) and log files.
* :class:`DecisionPoints`: two ``tksh authz`` processes (the decision point, ``access/server.py``)
  watching the same API server, with keys from a folder; :meth:`DecisionPoints.converged` waits until
  both answer a set of decision requests exactly as the decision core (``tksh.access.DecisionIndex``)
  built from the grants and functions stored at that moment answers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import kmock

from tests.reliability.harness import Harness, RecordingAPIServer
from tests.reliability.procs import PYTHON, ROOT, OperatorProcess, free_port
from tksh.access import DecisionIndex, KeySet, function_rights, grant_facts
from tksh.access.identifiers import IdentifierError
from tksh.resources.accessgrant import AccessGrant
from tksh.resources.subjectfunction import SubjectFunction
from tksh.sandbox.apiserver.wire import closing_client

WRITES = ("POST", "PUT", "PATCH", "DELETE")
PEERING = "tksh-reliability"


@dataclasses.dataclass(frozen=True)
class Write:
    at: float  # monotonic, this process's clock (the kill loop's too)
    replica: str
    method: str
    path: str


class Replicas:
    """``async with Replicas(harness, api, lifetime, log_dir) as r:`` two peered operators (not started)."""

    def __init__(self, harness: Harness, api: RecordingAPIServer, lifetime: int, log_dir: Path) -> None:
        self.h, self.api, self.lifetime, self.log_dir = harness, api, lifetime, log_dir
        self.by_port: dict[int, str] = {}
        self.processes: dict[str, OperatorProcess] = {}
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Replicas:
        await self.h.apply({"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": PEERING}})
        env = Harness.operator_env(self.h.mail.port, self.h.namespace)
        for name, priority in (("replica-a", 1), ("replica-b", 0)):
            listener = await self._stack.enter_async_context(
                kmock.Server(self.api, host="127.0.0.1", client_fct=closing_client))
            self.by_port[int(listener.port)] = name
            self.processes[name] = OperatorProcess(
                ["--server", f"http://127.0.0.1:{listener.port}"],
                {**env, "TKSH_PEERING_NAME": PEERING, "TKSH_PRIORITY": str(priority),
                 "TKSH_PEERING_LIFETIME": str(self.lifetime)},
                self.log_dir, standalone=False, name=name)
        return self

    async def __aexit__(self, *_: object) -> None:
        for process in self.processes.values():
            await process.stop()
        await self._stack.aclose()

    def writes(self, since: float = 0.0) -> list[Write]:
        """Every write a replica made (peering keep-alives excluded: a standby sends those too), oldest first."""
        found = []
        for i, (at, method, path) in enumerate(self.api.request_log):
            replica = self.by_port.get(self.api.request_ports[i])
            if replica is not None and at >= since and method in WRITES and "kopfpeerings" not in path:
                found.append(Write(at, replica, method, path))
        return found

    def first_write(self, replica: str, since: float) -> Write | None:
        return next((w for w in self.writes(since) if w.replica == replica), None)

    def log_lines(self) -> list[str]:
        return [line for process in self.processes.values() for line in process.log_lines()]


# --- decision points -------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Ask:
    subject: str
    action: str
    category: int
    owner_bin: str

    def body(self) -> dict[str, Any]:
        return {"subject": self.subject, "action": self.action,
                "resource": {"category": self.category, "ownerBin": self.owner_bin}}


Answer = tuple[bool, str, str | None]


class DecisionPoints:
    """Two ``tksh authz`` processes on loopback ports; keys generated into ``folder``."""

    def __init__(self, server: str, folder: Path, count: int = 2) -> None:
        self.server, self.folder, self.count = server, folder, count
        self.ports = [free_port() for _ in range(count)]
        self.processes: list[asyncio.subprocess.Process] = []
        self.http: aiohttp.ClientSession | None = None
        self.log_paths = [folder / f"authz-{i}.log" for i in range(count)]

    async def __aenter__(self) -> DecisionPoints:
        self.folder.mkdir(parents=True, exist_ok=True)
        keys = KeySet.generate(issuer="tksh-operator", audience="tksh-authz")
        for name, data in keys.to_pem_files().items():
            (self.folder / name).write_bytes(data)
        for port, path in zip(self.ports, self.log_paths, strict=True):
            with path.open("wb") as log:
                self.processes.append(await asyncio.create_subprocess_exec(
                    str(PYTHON), "-m", "tksh.cli", "authz", "--port", str(port), "--server", self.server,
                    "--keys-dir", str(self.folder), cwd=str(ROOT), stdin=asyncio.subprocess.DEVNULL,
                    stdout=log, stderr=log))
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.http is not None:
            await self.http.close()
        for process in self.processes:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 20)
                except TimeoutError:
                    process.kill()
                    await process.wait()

    async def ready(self) -> None:
        assert self.http is not None
        for process, port in zip(self.processes, self.ports, strict=True):
            assert process.returncode is None, f"tksh authz on {port} exited with {process.returncode}"
            try:
                async with self.http.get(f"http://127.0.0.1:{port}/readyz") as response:
                    assert response.status == 200, response.status
            except aiohttp.ClientConnectionError as error:
                raise AssertionError(f"tksh authz on {port} does not answer yet") from error

    async def answer(self, port: int, ask: Ask) -> Answer:
        assert self.http is not None
        async with self.http.post(f"http://127.0.0.1:{port}/v1/decisions", json=ask.body()) as response:
            assert response.status == 200, (response.status, await response.text())
            body = await response.json()
        return bool(body["allowed"]), str(body["code"]), body.get("grant")

    async def answers(self, port: int, asks: Sequence[Ask]) -> list[Answer]:
        """The decision point's answers to ``asks``, asked at once (concurrent requests)."""
        return list(await asyncio.gather(*(self.answer(port, ask) for ask in asks)))

    def log_lines(self) -> list[str]:
        return [line for path in self.log_paths if path.exists()
                for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]


async def expected_answers(api: RecordingAPIServer, namespace: str, asks: Sequence[Ask]) -> list[Answer]:
    """What the decision core says for ``asks`` given the grants and functions stored now."""
    functions = {}
    for obj in api.store.list("subjectfunctions"):
        rights = function_rights(SubjectFunction.model_validate(obj))
        functions[obj["metadata"]["name"]] = rights or frozenset()
    grants = []
    for obj in api.store.list("accessgrants", namespace):
        with contextlib.suppress(IdentifierError, ValueError):
            grants.append(grant_facts(AccessGrant.model_validate(obj)))
    index = DecisionIndex.build(grants, functions)
    now = datetime.datetime.now(datetime.UTC)
    found: list[Answer] = []
    for ask in asks:
        decision = index.decide(ask.subject, ask.action, ask.category, ask.owner_bin, now=now)
        out = decision.to_dict()
        found.append((bool(out["allowed"]), str(out["code"]), out.get("grant")))
    return found


@dataclasses.dataclass
class Convergence:
    checks: int = 0
    seconds: list[float] = dataclasses.field(default_factory=list)
    """Per check: from the step's end until both decision points agreed with a stable store."""
    rounds: list[int] = dataclasses.field(default_factory=list)
    """Per check: how many rounds of asking that took (a round whose store changed meanwhile is asked again)."""
    decisions_compared: int = 0


async def converged(points: DecisionPoints, api: RecordingAPIServer, namespace: str, asks: Sequence[Ask],
                    figures: Convergence, timeout: float = 60.0) -> None:  # noqa: ASYNC109
    """Wait until both decision points answer ``asks`` as the decision core does over the stored grants (the
    same before and after they were asked: other workflows change grants meanwhile)."""
    started = time.monotonic()
    deadline = started + timeout
    rounds = 0
    while True:
        rounds += 1
        want = await expected_answers(api, namespace, asks)
        got = await asyncio.gather(*(points.answers(port, asks) for port in points.ports))
        if all(g == want for g in got) and await expected_answers(api, namespace, asks) == want:
            figures.checks += 1
            figures.seconds.append(time.monotonic() - started)
            figures.rounds.append(rounds)
            figures.decisions_compared += len(asks) * len(points.ports)
            return
        if time.monotonic() > deadline:
            diff = [(a, w, [g[i] for g in got]) for i, (a, w) in enumerate(zip(asks, want, strict=True))
                    if any(g[i] != w for g in got)]
            raise AssertionError(f"the decision points did not converge within {timeout:g} s: {diff[:5]}")
        await asyncio.sleep(0.1)
