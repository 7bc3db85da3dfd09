"""Running the operator: kopf with our registry and settings, plus the ops HTTP endpoints.

``run_operator`` runs in the caller's event loop (``tksh operator``). ``OperatorThread`` runs it in
a thread of its own with its own loop, for the sandbox and the tests: kopf treats every task
created in its loop after it started as its own and cancels it at exit, so it must not share a
loop with anything that outlives it (a test's fixtures, the sandbox's servers).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import signal
import threading
from collections.abc import Callable

import kopf

from tksh.config import OperatorConfig
from tksh.handlers import Context, build_registry
from tksh.handlers.settings import Unending, make_settings
from tksh.metrics import OperatorMetrics
from tksh.opsserver import OpsServer

Flag = asyncio.Event | threading.Event


@dataclasses.dataclass
class OperatorHandle:
    """A running operator: its configuration, metrics and the port of its ops endpoints."""

    config: OperatorConfig
    metrics: OperatorMetrics
    ops_port: int


async def run_operator(
    config: OperatorConfig,
    *,
    stop_flag: Flag | None = None,
    ready_flag: Flag | None = None,
    metrics: OperatorMetrics | None = None,
    on_started: Callable[[OperatorHandle], None] | None = None,
) -> None:
    """Run until ``stop_flag`` is set (or forever). ``on_started`` gets the handle once it serves."""
    metrics = metrics or OperatorMetrics()
    ready = ready_flag if ready_flag is not None else asyncio.Event()
    registry = build_registry(Context(config=config, metrics=metrics))
    settings = make_settings(config)
    # Created before kopf starts, so kopf does not treat it as its own; ends the endless API retries at stop.
    ender = asyncio.create_task(_end_retries_when_stopped(settings, stop_flag), name="tksh-end-retries")
    try:
        async with OpsServer(metrics, ready.is_set, host=config.ops_host, port=config.ops_port) as ops:
            if on_started is not None:
                on_started(OperatorHandle(config, metrics, ops.port))
            await kopf.operator(
                registry=registry,
                settings=settings,
                clusterwide=not config.namespaces,
                namespaces=config.namespaces,
                stop_flag=stop_flag,
                ready_flag=ready,
            )
    finally:
        ender.cancel()


async def _end_retries_when_stopped(settings: kopf.OperatorSettings, stop_flag: Flag | None) -> None:
    """Once ``stop_flag`` is set, API requests stop retrying (see :class:`tksh.handlers.settings.Unending`)."""
    backoffs = settings.networking.error_backoffs
    if stop_flag is None or not isinstance(backoffs, Unending):
        return
    if isinstance(stop_flag, asyncio.Event):
        await stop_flag.wait()
    else:
        # A thread's flag cannot be awaited; a waiting worker thread would hold asyncio.run()'s exit if never set.
        while not stop_flag.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    backoffs.stop()


class OperatorThread:
    """The operator in a thread with its own event loop; ``start()`` returns once it serves."""

    def __init__(self, config: OperatorConfig, metrics: OperatorMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or OperatorMetrics()
        self.stop_flag = threading.Event()
        self.ready_flag = threading.Event()
        self._started: concurrent.futures.Future[OperatorHandle] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._main, name="tksh-operator", daemon=True)
        self.error: BaseException | None = None

    def _main(self) -> None:
        try:
            asyncio.run(run_operator(
                self.config,
                stop_flag=self.stop_flag,
                ready_flag=self.ready_flag,
                metrics=self.metrics,
                on_started=self._started.set_result,
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

    def stop(self, timeout: float = 60.0) -> None:
        self.stop_flag.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the operator did not stop within {timeout:g} s")


def run_operator_blocking(config: OperatorConfig) -> None:
    """The ``tksh operator`` command, until SIGINT or SIGTERM stops it gracefully.

    The signals are handled here, in the main thread, and the operator runs in an :class:`OperatorThread`
    (kopf then leaves the signals alone): a signal sets the stop flag, which also ends the endless API
    retries, so a stop is never held up by an API server that is down or forbids the last requests.
    """
    thread = OperatorThread(config)

    def on_signal(signum: int, _frame: object) -> None:
        thread.stop_flag.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    thread._thread.start()
    while thread.alive:
        thread._thread.join(0.5)
    if thread.error is not None:
        raise thread.error
