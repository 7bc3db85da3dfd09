"""``tksh sandbox``: the whole control plane on one machine, no cluster needed.

It starts, all on 127.0.0.1: the embedded API server with the project's CRDs, a local SMTP
server that keeps every received message (also as ``.eml`` files), two sample HTTP targets
(one healthy, one failing), and the operator in-process; then it applies the manifests in
``examples/``, writes a kubeconfig and tells how to look at everything with ``kubectl``.

Monitoring runs as in a cluster: the integrated example (``heat-billing``) and the central component
are probed on the healthy target; pointing the component at the failing target (the banner shows
the command) opens an Incident and mails every integrated owner within seconds. Incidents of central
components go to the namespace ``tksh-system``, which the sandbox creates.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TextIO

import yaml

from tksh.config import OperatorConfig
from tksh.run import OperatorHandle, OperatorThread
from tksh.sandbox.apiserver import APIError, EmbeddedAPIServer, project_crd_paths
from tksh.sandbox.mailsink import MailSink
from tksh.sandbox.targets import HTTPTarget

HOST = "127.0.0.1"
INCIDENT_NAMESPACE = "tksh-system"  # where incidents of central components go (the operator's default)


class SandboxError(RuntimeError):
    """The sandbox could not start; the message says which option to change."""


@dataclasses.dataclass(frozen=True)
class SandboxOptions:
    directory: Path = Path(".sandbox")
    api_port: int = 8001
    smtp_port: int = 2525
    ops_port: int = 8080
    targets_port: int = 18080
    examples: Path | None = None
    duration: float | None = None


@dataclasses.dataclass
class Sandbox:
    """A running sandbox: the handles tests and the banner need."""

    options: SandboxOptions
    api: EmbeddedAPIServer
    mail: MailSink
    healthy: HTTPTarget
    failing: HTTPTarget
    operator: OperatorHandle
    operator_thread: OperatorThread
    kubeconfig: Path
    applied: list[str]

    def banner(self) -> str:
        ops = f"http://{HOST}:{self.operator.ops_port}"
        lines = [
            "tksh sandbox is up (everything listens on 127.0.0.1 only).",
            f"  API server  {self.api.url}  (embedded; no authentication)",
            f"  kubeconfig  {self.kubeconfig}",
            f"      export KUBECONFIG={self.kubeconfig}",
            "      kubectl get sfn,ccomp            # the function directory, central components",
            "      kubectl get dobj,grant,inc -A    # digital objects, access grants, incidents",
            "      kubectl get events -A",
            f"  mail        smtp://{HOST}:{self.mail.port}; received messages: {self.options.directory / 'mail'}/*.eml",
            f"  operator    {ops}/metrics  {ops}/healthz  {ops}/readyz",
            f"  targets     healthy {self.healthy.url}  failing {self.failing.url}",
            f"  applied     {len(self.applied)} objects: {', '.join(self.applied)}",
            "  monitoring  kubectl get dobj,ccomp -A   # AVAILABILITY: Up, Down or Unknown",
            "      kubectl patch ccomp integration-gateway --type merge "
            f"-p '{{\"spec\":{{\"endpoint\":{{\"url\":\"{self.failing.url}\"}}}}}}'",
            "      kubectl get inc -A -w                # a central failure: an Incident, owners mailed",
        ]
        return "\n".join(lines)


def load_manifests(folder: Path) -> list[dict[str, Any]]:
    """All YAML documents of ``folder/*.yaml`` in file-name order (number the files to order them)."""
    if not folder.is_dir():
        raise SandboxError(f"--examples: {folder} is not a folder")
    documents: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            loaded = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except yaml.YAMLError as exc:
            raise SandboxError(f"{path}: not valid YAML: {exc}") from exc
        for index, doc in enumerate(loaded):
            if doc is None:
                continue
            if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
                raise SandboxError(f"{path}: document {index} is not a Kubernetes object (apiVersion, kind)")
            documents.append(doc)
    return documents


@contextlib.asynccontextmanager
async def _listening(what: str, option: str, port: int, cm: Any) -> AsyncIterator[Any]:
    try:
        entered = await cm.__aenter__()
    except OSError as exc:
        raise SandboxError(f"{what} cannot listen on {HOST}:{port} ({exc.strerror}): choose another {option}") from exc
    try:
        yield entered
    finally:
        await cm.__aexit__(None, None, None)


@contextlib.asynccontextmanager
async def start_sandbox(options: SandboxOptions) -> AsyncIterator[Sandbox]:
    # Every request to the embedded API server would be an access-log line: keep the console for the story.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    directory = options.directory.resolve()
    (directory / "mail").mkdir(parents=True, exist_ok=True)
    manifests = load_manifests(options.examples) if options.examples else []
    async with contextlib.AsyncExitStack() as stack:
        mail = await stack.enter_async_context(
            _listening("the mail sink", "--smtp-port", options.smtp_port,
                       MailSink(host=HOST, port=options.smtp_port, maildir=directory / "mail")))
        healthy = await stack.enter_async_context(
            _listening("the healthy target", "--targets-port", options.targets_port,
                       HTTPTarget("healthy", host=HOST, port=options.targets_port)))
        failing_port = options.targets_port + 1 if options.targets_port else 0
        failing = await stack.enter_async_context(
            _listening("the failing target", "--targets-port", failing_port,
                       HTTPTarget("failing", host=HOST, port=failing_port)))
        failing.failing(503)
        api = await stack.enter_async_context(
            _listening("the API server", "--api-port", options.api_port,
                       EmbeddedAPIServer(crd_paths=project_crd_paths(), host=HOST, port=options.api_port)))
        kubeconfig = api.write_kubeconfig(directory / "kubeconfig")
        await api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": INCIDENT_NAMESPACE}})

        applied: list[str] = []
        for doc in manifests:
            try:
                obj = await api.apply(doc)
            except APIError as exc:
                name = doc.get("metadata", {}).get("name")
                raise SandboxError(f"--examples: {doc['kind']} {name} was refused by the API server: {exc}") from exc
            meta = obj.get("metadata", {})
            where = f"{meta['namespace']}/" if meta.get("namespace") else ""
            applied.append(f"{obj['kind']} {where}{meta.get('name')}")

        config = OperatorConfig(
            server=api.url,
            ops_host=HOST,
            ops_port=options.ops_port,
            standalone=True,
            smtp_host=HOST,
            smtp_port=mail.port,
            smtp_sender="tksh-sandbox@localhost",
            incident_namespace=INCIDENT_NAMESPACE,
        )
        thread = OperatorThread(config)
        try:
            handle = await asyncio.to_thread(thread.start)
        except OSError as exc:
            raise SandboxError(
                f"the operator cannot listen on {HOST}:{options.ops_port} ({exc.strerror}): choose another --ops-port"
            ) from exc
        try:
            await asyncio.to_thread(thread.wait_ready, 60)
            yield Sandbox(options, api, mail, healthy, failing, handle, thread, kubeconfig, applied)
        finally:
            await asyncio.to_thread(thread.stop, 60)


async def run_sandbox(options: SandboxOptions, stop: asyncio.Event, out: TextIO = sys.stdout) -> None:
    async with start_sandbox(options) as sandbox:
        print(sandbox.banner(), file=out, flush=True)
        print("Stop with Ctrl-C." if options.duration is None else f"Stopping in {options.duration:g} s.",
              file=out, flush=True)
        deadline = None if options.duration is None else asyncio.get_running_loop().time() + options.duration
        while not stop.is_set() and sandbox.operator_thread.alive:
            if deadline is not None and asyncio.get_running_loop().time() >= deadline:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
        if not sandbox.operator_thread.alive:
            raise SandboxError(f"the operator stopped unexpectedly: {sandbox.operator_thread.error!r}")
    print("tksh sandbox stopped.", file=out, flush=True)


def run_sandbox_blocking(options: SandboxOptions) -> int:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_sandbox(options, stop)

    try:
        asyncio.run(main())
    except SandboxError as exc:
        print(f"tksh sandbox: {exc}", file=sys.stderr)
        return 2
    return 0
