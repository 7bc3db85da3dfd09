"""``tksh authz``: the decision point process: the index sync and the HTTP service, wired from a config.

:func:`start_authz` runs both for the duration of an ``async with`` block (tests, embedding);
:func:`run_authz` is the blocking entry point for the CLI (until SIGINT/SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from tksh.access.index import DecisionIndex
from tksh.access.policy import load_open_part
from tksh.access.service import DecisionService, build_app
from tksh.access.sync import IndexSync, KubeConnection
from tksh.access.tokens import KeySet
from tksh.logs import configure_logging, get_logger

__all__ = ["AuthzConfig", "AuthzHandle", "run_authz", "start_authz"]

DEFAULT_ISSUER = "tksh-operator"
DEFAULT_AUDIENCE = "tksh-authz"


@dataclasses.dataclass(frozen=True)
class AuthzConfig:
    """Everything ``tksh authz`` needs. ``server`` (a URL, e.g. the embedded API server) wins over
    ``kubeconfig``; with neither, the pod's service account (in a cluster) is used."""

    host: str = "127.0.0.1"
    port: int = 8080
    server: str | None = None
    kubeconfig: str | None = None
    keys_dir: Path | None = None
    """Where the signing-key Secret is mounted; default ``$TKSH_AUTHZ_KEYS_DIR``."""
    keys: KeySet | None = None
    """A key set given directly (tests); wins over ``keys_dir``."""
    issuer: str = DEFAULT_ISSUER
    audience: str = DEFAULT_AUDIENCE
    open_part_path: Path | None = None
    """``open-part.csv``; default ``policies/open-part.csv`` (or ``$TKSH_POLICIES_DIR``)."""
    watch_timeout: int = 300
    retry_delay: float = 1.0
    """Seconds to wait before relisting after a failed list or a broken watch."""
    log_level: str = "INFO"
    log_json: bool = True
    configure_logs: bool = True
    """``False`` leaves logging as the caller configured it (tests)."""

    def connection(self) -> KubeConnection:
        if self.server:
            return KubeConnection(server=self.server)
        if self.kubeconfig:
            return KubeConnection.from_kubeconfig(self.kubeconfig)
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            return KubeConnection.in_cluster()
        kubeconfig = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(Path.home() / ".kube" / "config")
        return KubeConnection.from_kubeconfig(kubeconfig)

    def key_set(self) -> KeySet:
        if self.keys is not None:
            return self.keys
        folder = self.keys_dir or (Path(os.environ["TKSH_AUTHZ_KEYS_DIR"]) if "TKSH_AUTHZ_KEYS_DIR" in os.environ
                                   else None)
        if folder is None:
            raise ValueError("no signing keys: pass --keys-dir or set TKSH_AUTHZ_KEYS_DIR")
        return KeySet.from_dir(folder, issuer=self.issuer, audience=self.audience)


@dataclasses.dataclass
class AuthzHandle:
    """A running decision point."""

    url: str
    index: DecisionIndex
    sync: IndexSync
    service: DecisionService


@contextlib.asynccontextmanager
async def start_authz(config: AuthzConfig) -> AsyncIterator[AuthzHandle]:
    """Start the sync and the HTTP service (``port=0``: any free port, see ``handle.url``); stop them at exit."""
    if config.configure_logs:
        configure_logging(config.log_level, json=config.log_json)
    index = DecisionIndex(open_part=load_open_part(config.open_part_path))
    sync = IndexSync(index, config.connection(), watch_timeout=config.watch_timeout,
                     retry_delay=config.retry_delay)
    task: asyncio.Task[None] | None = None
    # Ready once both kinds are listed, and only while the sync runs (a dead sync must not serve stale data).
    service = DecisionService(index, config.key_set(),
                              ready=lambda: sync.ready.is_set() and task is not None and not task.done())
    runner = web.AppRunner(build_app(service), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    task = asyncio.create_task(sync.run(), name="tksh-authz-sync")
    try:
        await site.start()
        host, port = runner.addresses[0][:2]
        host = f"[{host}]" if ":" in host else host
        get_logger("tksh.access.server").info("decision point listening", url=f"http://{host}:{port}")
        yield AuthzHandle(f"http://{host}:{port}", index, sync, service)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runner.cleanup()


async def serve_authz(config: AuthzConfig) -> None:
    """Run until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with start_authz(config):
        await stop.wait()


def run_authz(config: AuthzConfig) -> int:
    """The CLI entry point: serve until stopped; the exit code (0)."""
    asyncio.run(serve_authz(config))
    return 0
