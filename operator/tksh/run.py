"""Running the operator: kopf with our registry and settings, plus the ops HTTP endpoints.

``run_operator`` runs in the caller's event loop. ``OperatorThread`` runs it in a thread of its own
with its own loop (``tksh operator``, the sandbox and the tests): kopf treats every task created in
its loop after it started as its own and cancels it at exit, so it must not share a loop with
anything that outlives it (a test's fixtures, the sandbox's servers).

When kopf's core fails (one of its root tasks ends although no stop was asked for: a watcher's or
the orchestrator's error, a bug, the peering task failing), the operator reconciles nothing any
more. It must then end, not stay up silently: ``/healthz`` answers 503 with the reason from that
moment on, the endless API retries end, kopf's own shutdown gets :data:`SHUTDOWN_GRACE` seconds
(then what is left is cancelled), and ``run_operator`` raises :class:`CoreFailed`;
``tksh operator`` exits non-zero, so Kubernetes restarts the pod (and a standby peer takes over).

Found with ``tests/integration/test_core_failure.py``: kopf waits for a ``threading.Event`` stop
flag in a worker thread of the loop's default executor (``aioadapters.wait_flag``), and
``asyncio.run`` joins that thread at exit; after a failure nobody sets the flag, so the operator's
thread never ended (kopf's ``ultimate_termination`` would SIGKILL the whole process after 10
minutes). kopf is therefore only ever given an ``asyncio.Event``, set from the caller's flag.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Coroutine
from typing import Any

import kopf

from tksh.config import OperatorConfig
from tksh.handlers import Context, build_registry
from tksh.handlers.settings import Unending, make_settings
from tksh.logs import get_logger, mask_text
from tksh.metrics import OperatorMetrics
from tksh.opsserver import OpsServer

Flag = asyncio.Event | threading.Event

SHUTDOWN_GRACE = 15.0
"""Seconds kopf's shutdown (after a stop or a failure) may take before what is left is cancelled. With the
cancellation and the loop's close (:data:`CLOSE_GRACE` each) it stays within the chart's
``terminationGracePeriodSeconds`` (30). kopf alone waits 5 s for its handlers' tasks."""
FAST_SHUTDOWN_GRACE = 10.0
"""The same in fast mode (tests, the sandbox)."""
CLOSE_GRACE = 5.0
"""Seconds kopf's shutdown gets once cancelled, and the tasks still left when the operator's loop closes."""
_STOP_FLAG_CHECKER = "stop-flag checker"  # kopf's root task that ends on a stop flag or a signal

_log = get_logger("tksh.run")


class CoreFailed(RuntimeError):
    """kopf's core ended although no stop was asked for; the message says which root task and how."""


@dataclasses.dataclass
class OperatorHandle:
    """A running operator: its configuration, metrics and the port of its ops endpoints."""

    config: OperatorConfig
    metrics: OperatorMetrics
    ops_port: int


class _Core:
    """kopf's root tasks seen from outside: whether a stop was asked for, and whether the core failed."""

    def __init__(self, backoffs: object, on_failed: Callable[[str], None] | None) -> None:
        self.kopf_stop = asyncio.Event()  # kopf's stop flag: an asyncio one, never waited for in a thread
        self.ended = asyncio.Event()  # a stop was asked for, the core failed, or kopf ended
        self.stop_requested = False
        self.failure: str | None = None
        self._backoffs = backoffs
        self._on_failed = on_failed

    def _end_retries(self) -> None:
        """API requests stop retrying (see :class:`tksh.handlers.settings.Unending`): the way out never waits
        on an API server that is down or forbids the last requests."""
        if isinstance(self._backoffs, Unending):
            self._backoffs.stop()

    def request_stop(self) -> None:
        if self.stop_requested or self.failure is not None:
            return
        self.stop_requested = True
        self.kopf_stop.set()
        self._end_retries()
        self.ended.set()

    def follow(self, root_tasks: Collection[asyncio.Task[Any]]) -> None:
        for task in root_tasks:
            task.add_done_callback(self._root_done)

    def _root_done(self, task: asyncio.Task[Any]) -> None:
        if self.stop_requested or self.failure is not None:
            return
        if task.get_name() == _STOP_FLAG_CHECKER and not task.cancelled() and task.exception() is None:
            self.request_stop()  # kopf's own signal handlers (when it runs in the main thread)
            return
        self.failure = describe_root_task(task)
        _log.error("kopf's core has failed: the operator reconciles nothing any more and ends so that it is "
                   "restarted", reason=self.failure)
        self._end_retries()
        self.ended.set()
        if self._on_failed is not None:
            self._on_failed(self.failure)


def describe_root_task(task: asyncio.Task[Any]) -> str:
    """How a root task of kopf ended, for ``/healthz`` and the logs (masked: errors may carry object names)."""
    name = task.get_name()
    if task.cancelled():
        return f"kopf's root task {name!r} was cancelled"
    error = task.exception()
    if error is None:
        return f"kopf's root task {name!r} ended unexpectedly"
    return f"kopf's root task {name!r} failed: {type(error).__name__}: {mask_text(str(error))[:300]}"


async def run_operator(
    config: OperatorConfig,
    *,
    stop_flag: Flag | None = None,
    ready_flag: Flag | None = None,
    metrics: OperatorMetrics | None = None,
    on_started: Callable[[OperatorHandle], None] | None = None,
    on_failed: Callable[[str], None] | None = None,
    shutdown_grace: float | None = None,
) -> None:
    """Run until ``stop_flag`` is set (or forever); raise :class:`CoreFailed` once kopf's core has failed.

    ``on_started`` gets the handle once it serves; ``on_failed`` the reason as soon as the core fails (the shutdown
    follows, bounded by ``shutdown_grace`` seconds: :data:`SHUTDOWN_GRACE` by default).
    """
    metrics = metrics or OperatorMetrics()
    ready = ready_flag if ready_flag is not None else asyncio.Event()
    grace = shutdown_grace if shutdown_grace is not None else FAST_SHUTDOWN_GRACE if config.fast else SHUTDOWN_GRACE
    registry = build_registry(Context(config=config, metrics=metrics))
    settings = make_settings(config)
    core = _Core(settings.networking.error_backoffs, on_failed)
    # Created before kopf starts, so kopf does not treat it as its own.
    follower = asyncio.create_task(_follow_stop_flag(stop_flag, core), name="tksh-stop-flag")
    try:
        async with OpsServer(metrics, ready.is_set, host=config.ops_host, port=config.ops_port,
                             failure=lambda: core.failure) as ops:
            if on_started is not None:
                on_started(OperatorHandle(config, metrics, ops.port))
            existing = asyncio.all_tasks()  # what kopf must leave alone (as kopf.operator does)
            root_tasks = await kopf.spawn_tasks(
                registry=registry,
                settings=settings,
                clusterwide=not config.namespaces,
                namespaces=config.namespaces,
                stop_flag=core.kopf_stop,
                ready_flag=ready,
            )
            core.follow(root_tasks)
            kopf_run = asyncio.create_task(kopf.run_tasks(root_tasks, ignored=existing), name="tksh-kopf")
            kopf_run.add_done_callback(lambda _: core.ended.set())
            try:
                await core.ended.wait()
                await _end_within(kopf_run, grace)
            finally:
                if not kopf_run.done():  # cancelled from outside, or kopf's shutdown hangs after the grace
                    kopf_run.cancel()
            error = None if kopf_run.cancelled() or not kopf_run.done() else kopf_run.exception()
            if core.failure is None and not core.stop_requested:  # not expected: kopf ends after a root task
                core.failure = "kopf ended although no stop was asked for"
            if core.failure is not None:
                raise CoreFailed(core.failure) from error
            if error is not None:
                raise error
    finally:
        follower.cancel()


async def _end_within(task: asyncio.Task[Any], grace: float) -> None:
    """Wait for kopf's shutdown; past ``grace`` seconds, cancel it again and again (each cancellation gets kopf
    past one of its unbounded waits for tasks that do not end) for at most :data:`CLOSE_GRACE` seconds more."""
    done, _ = await asyncio.wait({task}, timeout=grace)
    if done:
        return
    _log.error("kopf did not stop within the grace period: cancelling what is left", grace=grace)
    deadline = time.monotonic() + CLOSE_GRACE
    while not task.done() and time.monotonic() < deadline:
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)


async def _follow_stop_flag(stop_flag: Flag | None, core: _Core) -> None:
    if stop_flag is None:
        return
    if isinstance(stop_flag, asyncio.Event):
        await stop_flag.wait()
    else:
        # A thread's flag cannot be awaited; a worker thread waiting for it would hold the loop's exit if never set.
        while not stop_flag.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    core.request_stop()


def run_in_new_loop(main: Coroutine[Any, Any, None], close_grace: float = CLOSE_GRACE) -> None:
    """``asyncio.run(main)``, but the loop's close is bounded: the tasks still left get ``close_grace`` seconds
    once cancelled, and the default executor's threads are not waited for (``asyncio.run`` waits forever)."""
    loop = asyncio.new_event_loop()
    executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="tksh-operator-io")
    loop.set_default_executor(executor)
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(main)
    finally:
        try:
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            if left:
                _, pending = loop.run_until_complete(asyncio.wait(left, timeout=close_grace))
                if pending:
                    _log.error("tasks did not end when cancelled; left behind",
                               tasks=sorted(task.get_name() for task in pending))
            loop.run_until_complete(asyncio.wait_for(loop.shutdown_asyncgens(), close_grace))
        except (TimeoutError, RuntimeError) as exc:
            _log.error("the operator's loop did not close cleanly", error=repr(exc))
        finally:
            asyncio.set_event_loop(None)
            executor.shutdown(wait=False, cancel_futures=True)
            loop.close()


class OperatorThread:
    """The operator in a thread with its own event loop; ``start()`` returns once it serves.

    ``failed`` is set as soon as kopf's core fails; the thread then ends by itself (bounded) with ``error`` a
    :class:`CoreFailed`.
    """

    def __init__(self, config: OperatorConfig, metrics: OperatorMetrics | None = None,
                 shutdown_grace: float | None = None) -> None:
        self.config = config
        self.metrics = metrics or OperatorMetrics()
        self.shutdown_grace = shutdown_grace
        self.stop_flag = threading.Event()
        self.ready_flag = threading.Event()
        self.failed = threading.Event()
        self._started: concurrent.futures.Future[OperatorHandle] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._main, name="tksh-operator", daemon=True)
        self.error: BaseException | None = None

    def _main(self) -> None:
        try:
            run_in_new_loop(run_operator(
                self.config,
                stop_flag=self.stop_flag,
                ready_flag=self.ready_flag,
                metrics=self.metrics,
                on_started=self._started.set_result,
                on_failed=lambda _reason: self.failed.set(),
                shutdown_grace=self.shutdown_grace,
            ))
        except BaseException as exc:  # reported to whoever waits for it; a thread has no one else
            self.error = exc
            if not self._started.done():
                self._started.set_exception(exc)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self, timeout: float = 60.0) -> OperatorHandle:
        self._thread.start()
        return self._started.result(timeout=timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        if not self.ready_flag.wait(timeout):
            raise TimeoutError(f"the operator was not ready within {timeout:g} s (error: {self.error!r})")

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end by itself; whether it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self, timeout: float = 60.0) -> None:
        self.stop_flag.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the operator did not stop within {timeout:g} s")


def run_operator_blocking(config: OperatorConfig) -> int:
    """The ``tksh operator`` command, until SIGINT or SIGTERM stops it gracefully (0) or kopf's core fails (1).

    The signals are handled here, in the main thread, and the operator runs in an :class:`OperatorThread`
    (kopf then leaves the signals alone): a signal sets the stop flag, which also ends the endless API
    retries, so a stop is never held up by an API server that is down or forbids the last requests.
    The exit is bounded: should the operator's thread (or a worker thread it leaves behind) not end
    in time, the process exits anyway, so Kubernetes restarts it.
    """
    thread = OperatorThread(config)
    grace = FAST_SHUTDOWN_GRACE if config.fast else SHUTDOWN_GRACE
    bound = grace + 4 * CLOSE_GRACE  # kopf's shutdown, its cancellation, the loop's close, with room to spare

    def on_signal(signum: int, _frame: object) -> None:
        thread.stop_flag.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    thread._thread.start()
    ending_since: float | None = None
    while not thread.join(0.5):
        if ending_since is None and (thread.stop_flag.is_set() or thread.failed.is_set()):
            ending_since = time.monotonic()
        if ending_since is not None and time.monotonic() - ending_since > bound:
            _log.error("the operator did not end in time; exiting the process", bound=bound)
            _exit_now(1)
    if isinstance(thread.error, CoreFailed):
        _log.error("the operator ended because kopf's core failed; exiting with status 1", reason=str(thread.error))
        code = 1
    elif thread.error is not None:
        raise thread.error
    else:
        code = 0
    _leave_held_threads(code, CLOSE_GRACE)
    return code


def _leave_held_threads(code: int, timeout: float) -> None:
    """Worker threads still busy (an executor's blocking call) would hold the interpreter's exit: past
    ``timeout`` seconds, exit without waiting for them."""
    deadline = time.monotonic() + timeout
    for other in threading.enumerate():
        if other is not threading.current_thread() and not other.daemon:
            other.join(max(0.0, deadline - time.monotonic()))
    held = [t.name for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    if held:
        _log.error("threads still busy would hold the exit; exiting without them", threads=held)
        _exit_now(code)


def _exit_now(code: int) -> None:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)
