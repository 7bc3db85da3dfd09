"""The harness: an API server, a de-duplicating SMTP receiver, a real HTTP target and the operator process.

``async with Harness.embedded(tmp_path) as h:`` starts, on 127.0.0.1 only, a :class:`RecordingAPIServer`
(the embedded API server, which also records every request it serves) with the project's CRDs, a
:class:`~tests.reliability.mailbox.DedupMailbox`, a :class:`~tests.reliability.hooks.DedupWebhooks`
receiver, a healthy :class:`~tksh.sandbox.targets.HTTPTarget` for the integration tests (and more
targets on demand: :meth:`Harness.new_target`, one per outage workflow), and prepares the operator as
a separate process (``h.operator``; started by the caller, killed and restarted by the kill loop).
``Harness.real(...)`` does the same against the session's real kube-apiserver. Workflows
(:mod:`tests.reliability.workflows`) are driven with :meth:`Harness.drive` and checked with
:mod:`tests.reliability.verify`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs

from tests.integration.backends import Backend, EmbeddedBackend, RealBackend
from tests.realapi.cluster import RealCluster
from tests.reliability.hooks import DedupWebhooks
from tests.reliability.logscan import LogCapture, captured_logs
from tests.reliability.mailbox import DedupMailbox
from tests.reliability.procs import OperatorProcess
from tests.reliability.workflows import (
    ADMIN_MAILBOX,
    SENDER,
    Check,
    Ref,
    Step,
    Workflow,
    check,
    function_directory,
    until,
)
from tksh.sandbox.apiserver import APIError, EmbeddedAPIServer, project_crd_paths
from tksh.sandbox.targets import HTTPTarget

STEP_TIMEOUT = 120.0  # a deadline for a broken run, never a timing assertion


@attrs.define(kw_only=True, eq=False)
class RecordingAPIServer(EmbeddedAPIServer):
    """The embedded API server that also keeps (monotonic time, method, path?query) of every request,
    and the bodies of the writes (``write_bodies``, same index), to tell what a write at rest was."""

    request_log: list[tuple[float, str, str]] = attrs.field(init=False, factory=list)
    write_bodies: dict[int, bytes] = attrs.field(init=False, factory=dict)
    request_ports: list[int] = attrs.field(init=False, factory=list)
    """The local port each request arrived on (same index): tells apart clients given different listeners."""

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if raw_request.method in ("POST", "PUT", "PATCH", "DELETE"):
            self.write_bodies[len(self.request_log)] = await raw_request.read()  # aiohttp keeps it for later reads
        sockname = raw_request.transport.get_extra_info("sockname") if raw_request.transport else None
        self.request_ports.append(int(sockname[1]) if sockname else 0)
        self.request_log.append((time.monotonic(), raw_request.method, raw_request.path_qs))
        return await super().__call__(raw_request)


@dataclasses.dataclass
class Harness:
    cluster: Backend
    mail: DedupMailbox
    target: HTTPTarget
    operator: OperatorProcess
    namespace: str
    logs: LogCapture  # what this process (API server, SMTP receiver, targets) logged, through the product's logging
    api: RecordingAPIServer | None = None  # the embedded server (kill hooks, faults, request log)
    hooks: DedupWebhooks = dataclasses.field(default_factory=DedupWebhooks)  # started by the constructors
    stack: contextlib.AsyncExitStack = dataclasses.field(default_factory=contextlib.AsyncExitStack)
    _numbers: itertools.count[int] = dataclasses.field(default_factory=itertools.count)

    @property
    def backend(self) -> str:
        return self.cluster.name

    # --- construction ----------------------------------------------------------------------------

    @staticmethod
    def operator_env(smtp_port: int, namespace: str = "housing") -> dict[str, str]:
        """The operator's settings: real SMTP, an integration test of 2 probes 0.2 s apart, monitoring probes at
        most 0.5 s apart (an outage is confirmed within a second or two), the signing keys in ``namespace``."""
        return {
            "TKSH_SMTP_HOST": "127.0.0.1", "TKSH_SMTP_PORT": str(smtp_port), "TKSH_SMTP_SENDER": SENDER,
            "TKSH_ADMINISTRATOR_MAILBOX": ADMIN_MAILBOX, "TKSH_OPS_PORT": "0",
            "TKSH_TEST_PROBES": "2", "TKSH_TEST_PROBE_INTERVAL": "0.2", "TKSH_TEST_TIME_LIMIT": "30",
            "TKSH_TEST_RETRY": "1",
            "TKSH_PROBE_INTERVAL_CAP": "0.5", "TKSH_CONFIRM_INTERVAL": "0.2",
            "TKSH_SIGNING_KEYS_NAMESPACE": namespace,
        }

    @classmethod
    @contextlib.asynccontextmanager
    async def embedded(cls, log_dir: Path, namespace: str = "housing",
                       api_class: type[RecordingAPIServer] = RecordingAPIServer) -> AsyncIterator[Harness]:
        async with (api_class(crd_paths=project_crd_paths()) as api,
                    cls._around(EmbeddedBackend(api), ["--server", api.url], log_dir, namespace) as harness):
            harness.api = api
            yield harness

    @classmethod
    @contextlib.asynccontextmanager
    async def real(cls, cluster: RealCluster, log_dir: Path, namespace: str) -> AsyncIterator[Harness]:
        backend = RealBackend(cluster)
        try:
            async with cls._around(backend, ["--kubeconfig", str(cluster.kubeconfig)], log_dir,
                                   namespace) as harness:
                yield harness
        finally:
            await backend.cleanup()

    @classmethod
    @contextlib.asynccontextmanager
    async def _around(cls, cluster: Backend, connection: list[str], log_dir: Path,
                      namespace: str) -> AsyncIterator[Harness]:
        await cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        for obj in function_directory():
            await cluster.apply(obj)
        with captured_logs() as logs:
            async with DedupMailbox() as mail, HTTPTarget("healthy") as target, DedupWebhooks() as hooks, \
                    contextlib.AsyncExitStack() as stack:
                operator = OperatorProcess(connection, cls.operator_env(mail.port, namespace), log_dir)
                harness = cls(cluster, mail, target, operator, namespace, logs, hooks=hooks, stack=stack)
                try:
                    yield harness
                finally:
                    await operator.stop()

    def log_lines(self) -> list[str]:
        """Every line of every operator incarnation and of this process, for the personal-data scan."""
        return [*self.operator.log_lines(), *self.logs.lines()]

    # --- driving ---------------------------------------------------------------------------------

    async def apply(self, obj: dict[str, Any]) -> None:
        """Apply, retrying what a busy API server may answer (the drivers are not under test)."""
        for attempt in range(50):
            try:
                await self.cluster.apply(obj)
                return
            except (APIError, AssertionError, OSError):
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)

    async def watchdog(self, interval: float = 0.2) -> None:
        """Raise as soon as the operator process exits on its own (run it next to the drivers)."""
        while True:
            if not self.operator.running:
                raise AssertionError(f"the operator process exited: {self.operator.tail()}")
            await asyncio.sleep(interval)

    async def new_target(self, name: str = "outage") -> HTTPTarget:
        """One more real HTTP target (healthy), stopped with the harness."""
        return await self.stack.enter_async_context(HTTPTarget(f"{name}-{next(self._numbers)}"))

    async def drive(self, workflow: Workflow, timeout: float = STEP_TIMEOUT,  # noqa: ASYNC109
                    after_step: Callable[[Workflow, Step], Awaitable[None]] | None = None) -> None:
        """Run the steps in order, each until its condition holds, whatever happens to the operator; after each
        one, ``after_step`` (e.g. a check that the decision points agree with the grants now stored)."""
        for step in workflow.steps:
            for obj in step.objects:
                await self.apply(obj() if callable(obj) else obj)
            if step.act is not None:
                await step.act()
            if step.ref is not None and step.until is not None:
                await until(self._checker(step.ref, step.until), timeout)
            if step.wait is not None:
                await until(functools.partial(step.wait, self.cluster), timeout)
            if after_step is not None:
                await after_step(workflow, step)

    def _checker(self, ref: Ref, condition: Check) -> Callable[[], Awaitable[dict[str, Any]]]:
        return lambda: check(self.cluster, ref, condition)
