"""An operator whose kopf core has failed must not stay up silently (``tksh.run``).

The failure is a real one: a watch ``ERROR`` event (500) with :mod:`tksh.handlers.kopfwatch`'s patch taken off for
the test, so kopf's watcher and its orchestrator ("multidimensional multitasker") fail, as they did before that
module existed. Measured before the fix: the operator's thread never ended (kopf waited for its ``threading.Event``
stop flag in a worker thread that ``asyncio.run`` joins at exit) and ``/healthz`` said 200 while kopf shut down.

Now ``/healthz`` answers 503 with the reason from the failure on, the thread ends by itself with :class:`CoreFailed`
(bounded even when kopf's shutdown hangs), and ``tksh operator`` exits with status 1. To look at ``/healthz`` while
kopf shuts down, the tests hold kopf's shutdown in the tokens' cleanup handler (a hold, not a mock: the real handler
runs once released). Embedded backend only: a real server cannot be made to send a watch ``ERROR`` event on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kopf._cogs.clients import watching

from tests.integration.backends import EmbeddedBackend
from tests.reliability.procs import ROOT, free_port
from tksh import run
from tksh.handlers import kopfwatch
from tksh.handlers.tokens import Tokens
from tksh.run import OperatorThread
from tksh.sandbox.apiserver import EmbeddedAPIServer

Wait = Callable[..., Awaitable[Any]]
DEADLINE = 120.0  # a bound on a broken test, not a timing requirement (the machine is shared)


@pytest.fixture
def unpatched_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf's own ``continuous_watch`` again: a watch ``ERROR`` event fails kopf's core (kopfwatch stays installed
    in name, so building the operator does not wrap it again; the wrapper is back after the test)."""
    kopfwatch.install()
    monkeypatch.setattr(watching, "continuous_watch", getattr(watching, kopfwatch._MARK))


@dataclasses.dataclass
class Hold:
    """Holds kopf's shutdown in the tokens' cleanup handler: until released, or (``stuck``) for ever, shrugging off
    cancellations as a hung handler would."""

    stuck: bool = False
    reached: threading.Event = dataclasses.field(default_factory=threading.Event)
    released: threading.Event = dataclasses.field(default_factory=threading.Event)
    cancellations: int = 0

    def arrived(self) -> None:
        assert self.reached.is_set(), "kopf's shutdown has not reached the cleanup handlers yet"


@pytest.fixture
def hold(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hold]:
    held = Hold()
    original = Tokens.stop

    async def held_stop(self: Tokens) -> None:
        held.reached.set()
        while held.stuck or not held.released.is_set():
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                held.cancellations += 1
                if not held.stuck:
                    raise
        await original(self)

    monkeypatch.setattr(Tokens, "stop", held_stop)
    yield held
    held.released.set()


async def healthz(port: int) -> tuple[int, dict[str, Any]] | None:
    """The answer of ``/healthz``, or None when nothing listens any more."""
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz",
                                                             timeout=aiohttp.ClientTimeout(total=10)) as response:
            return response.status, json.loads(await response.text())
    except aiohttp.ClientConnectionError:
        return None


def break_the_core(api: EmbeddedAPIServer) -> None:
    """The next watch of AccessGrants (the one open is ended, if any) gets a 500 ``ERROR`` event: kopf's watcher
    and orchestrator fail."""
    api.faults.error_watches(500, resource="accessgrants")
    api.drop_watches("accessgrants", abrupt=False)


async def started(api: EmbeddedAPIServer, **kwargs: Any) -> tuple[OperatorThread, int]:
    thread = OperatorThread(EmbeddedBackend(api).operator_config(), **kwargs)
    handle = await asyncio.to_thread(thread.start)
    await asyncio.to_thread(thread.wait_ready, DEADLINE)
    answer = await healthz(handle.ops_port)
    assert answer == (200, {"status": "ok"})
    return thread, handle.ops_port


async def test_a_failed_core_says_503_and_the_operator_ends(
    api: EmbeddedAPIServer, unpatched_watch: None, hold: Hold, monkeypatch: pytest.MonkeyPatch, wait_until: Wait
) -> None:
    monkeypatch.setattr(run, "FAST_SHUTDOWN_GRACE", DEADLINE, raising=False)  # the hold is not cut short here
    thread, port = await started(api)
    try:
        break_the_core(api)
        await wait_until(hold.arrived, DEADLINE)  # kopf is shutting down and cannot finish before the release
        answer = await healthz(port)
        assert answer is not None and answer[0] == 503, answer
        reason = answer[1]["reason"]
        assert "'multidimensional multitasker' failed: WatchingError" in reason and "InternalError" in reason
        assert thread.alive
    finally:
        hold.released.set()

    def ended() -> None:
        assert not thread.alive, "the operator's thread is still up"

    await wait_until(ended, DEADLINE)
    assert isinstance(thread.error, run.CoreFailed), repr(thread.error)
    assert "'multidimensional multitasker' failed" in str(thread.error)
    assert isinstance(thread.error.__cause__, watching.WatchingError)
    assert thread.failed.is_set()
    assert await healthz(port) is None  # its endpoints are gone with it


async def test_the_end_is_bounded_when_kopfs_shutdown_hangs(
    api: EmbeddedAPIServer, unpatched_watch: None, hold: Hold, wait_until: Wait
) -> None:
    hold.stuck = True  # a cleanup handler that never ends, even when cancelled
    thread, port = await started(api, shutdown_grace=0.5)
    try:
        break_the_core(api)
        await wait_until(hold.arrived, DEADLINE)

        def ended() -> None:
            assert not thread.alive, "the operator's thread is still up"

        await wait_until(ended, DEADLINE)
    finally:
        if thread.alive:
            await asyncio.to_thread(thread.stop, 5)
    assert isinstance(thread.error, run.CoreFailed), repr(thread.error)
    assert hold.cancellations >= 1
    assert await healthz(port) is None


async def test_a_stop_is_bounded_when_a_cleanup_handler_hangs(api: EmbeddedAPIServer, hold: Hold) -> None:
    hold.stuck = True
    thread, port = await started(api, shutdown_grace=0.5)
    await asyncio.to_thread(thread.stop, DEADLINE)  # raises TimeoutError if the stop hangs with the handler
    assert thread.error is None and not thread.failed.is_set()
    assert hold.reached.is_set() and hold.cancellations >= 1
    assert await healthz(port) is None


BOOTSTRAP = """
import sys
from kopf._cogs.clients import watching
from tksh.handlers import kopfwatch
kopfwatch.install()
watching.continuous_watch = getattr(watching, "_tksh_original_continuous_watch")
from tksh.cli import main
sys.exit(main(sys.argv[1:]))
"""


async def start_cli(api: EmbeddedAPIServer, log_path: Path, port: int) -> asyncio.subprocess.Process:
    """``tksh operator`` (its ``main``, with kopfwatch's patch taken off) in a child process, in fast mode."""
    env = {**os.environ, "TKSH_FAST": "1", "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-c", BOOTSTRAP, "operator", "--server", api.url, "--standalone", "--ops-port", str(port),
            cwd=str(ROOT), env=env, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)


@contextlib.asynccontextmanager
async def cli_operator(api: EmbeddedAPIServer, tmp_path: Path, wait_until: Wait) -> AsyncIterator[tuple[
        asyncio.subprocess.Process, int, Path]]:
    port, log_path = free_port(), tmp_path / "operator.log"
    process = await start_cli(api, log_path, port)
    try:
        async def healthy() -> None:
            assert process.returncode is None, log_path.read_text()[-3000:]
            assert await healthz(port) == (200, {"status": "ok"})

        await wait_until(healthy, DEADLINE)
        yield process, port, log_path
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_tksh_operator_exits_with_status_1_when_its_core_fails(api: EmbeddedAPIServer, tmp_path: Path,
                                                                      wait_until: Wait) -> None:
    async with cli_operator(api, tmp_path, wait_until) as (process, port, log_path):
        break_the_core(api)
        answers: list[int | None] = []  # /healthz from now until the process has exited
        async with asyncio.timeout(DEADLINE):
            while process.returncode is None:
                answer = await healthz(port)
                answers.append(None if answer is None else answer[0])
                await asyncio.sleep(0.05)
            code = await process.wait()
    text = log_path.read_text()
    assert code == 1, text[-3000:]
    assert "kopf's core has failed" in text and "exiting with status 1" in text
    # Healthy until the error arrives, then 503 until nothing listens: never healthy again once it said 503.
    assert set(answers) <= {200, 503, None}, answers
    after_failure = answers[answers.index(503):] if 503 in answers else []
    assert 200 not in after_failure, answers
    assert answers == [] or answers[-1] is None or answers[-1] == 503, answers


async def test_tksh_operator_still_exits_with_0_on_sigterm(api: EmbeddedAPIServer, tmp_path: Path,
                                                           wait_until: Wait) -> None:
    async with cli_operator(api, tmp_path, wait_until) as (process, _port, log_path):
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), DEADLINE)
    text = log_path.read_text()
    assert code == 0, text[-3000:]
    assert "kopf's core has failed" not in text and "threads still busy" not in text
    assert "Activity 'tokens-stop' succeeded." in text  # a graceful stop: kopf's cleanup ran
