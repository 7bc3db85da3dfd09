"""``tksh authz``: the decision point process: the index sync and the HTTP service, wired from a config.

:func:`start_authz` runs both for the duration of an ``async with`` block (tests, embedding);
:func:`run_authz` is the blocking entry point for the CLI (until SIGINT/SIGTERM).

Keys from a folder (the operator's ``<signing keys>-public`` Secret mounted as a volume) are reloaded when
its files change, without a restart: :class:`KeyDirReloader` compares a cheap signature (inode, mtime and size
of each file, and the target of kubelet's ``..data`` link, which the kubelet swaps atomically on every
update) every ``keys_reload_interval`` seconds. A folder caught half-written, or with keys that do not load,
keeps the previous keys in use and is tried again at the next check. The rotation scheme makes the delay
harmless: the key that starts signing was already published as ``next`` one rotation period earlier.
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
from tksh.access.statuscache import StatusCache, StatusSync
from tksh.access.sync import IndexSync, KubeConnection
from tksh.access.tokens import KeySet
from tksh.logs import configure_logging, get_logger

__all__ = ["AuthzConfig", "AuthzHandle", "KeyDirReloader", "run_authz", "start_authz"]

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
    """A key set given directly (tests); wins over ``keys_dir`` and is never reloaded."""
    keys_reload_interval: float = 2.0
    """Seconds between checks of the key folder for changed files."""
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
    status_page: bool = True
    """Serve the public status page (``/status``, ``/status.json``) from a cache of digital objects, central
    components and incidents (:mod:`tksh.access.statuscache`)."""
    timezone: str = "Asia/Almaty"
    """The time zone the status page shows times in (the Administrator's)."""

    def connection(self) -> KubeConnection:
        if self.server:
            return KubeConnection(server=self.server)
        if self.kubeconfig:
            return KubeConnection.from_kubeconfig(self.kubeconfig)
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            return KubeConnection.in_cluster()
        kubeconfig = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(Path.home() / ".kube" / "config")
        return KubeConnection.from_kubeconfig(kubeconfig)

    def keys_folder(self) -> Path | None:
        """Where the keys are mounted (``keys_dir``, else ``$TKSH_AUTHZ_KEYS_DIR``); ``None`` with ``keys`` given."""
        if self.keys is not None:
            return None
        return self.keys_dir or (Path(os.environ["TKSH_AUTHZ_KEYS_DIR"]) if "TKSH_AUTHZ_KEYS_DIR" in os.environ
                                 else None)

    def key_set(self) -> KeySet:
        if self.keys is not None:
            return self.keys
        folder = self.keys_folder()
        if folder is None:
            raise ValueError("no signing keys: pass --keys-dir or set TKSH_AUTHZ_KEYS_DIR")
        return KeySet.from_dir(folder, issuer=self.issuer, audience=self.audience)


class KeyDirReloader:
    """Reloads ``service``'s keys from ``config``'s key folder when its files change (see the module description)."""

    FILES = ("..data", "kids", "current.pem", "next.pem", "previous.pem")

    def __init__(self, config: AuthzConfig, folder: Path, service: DecisionService) -> None:
        self.config, self.folder, self.service = config, folder, service
        self.seen = self.signature()
        self._log = get_logger("tksh.access.server")

    def signature(self) -> tuple[object, ...]:
        parts: list[object] = []
        for name in self.FILES:
            path = self.folder / name
            try:
                info = path.stat()
                link = os.readlink(path) if path.is_symlink() else ""
            except OSError:
                parts.append((name, None))
                continue
            parts.append((name, info.st_ino, info.st_mtime_ns, info.st_size, link))
        return tuple(parts)

    def check(self) -> bool:
        """Reload if the files changed since the last good load; whether new keys are in use now."""
        now = self.signature()
        if now == self.seen:
            return False
        try:
            keys = KeySet.from_dir(self.folder, issuer=self.config.issuer, audience=self.config.audience)
        except (ValueError, OSError) as error:  # half-written or broken: keep the keys in use, try again later
            self.service.metrics.key_reloads.labels(result="failed").inc()
            self._log.warning("verification keys not reloaded, the previous ones stay in use",
                              folder=str(self.folder), error=type(error).__name__, detail=str(error)[:200])
            return False
        if self.signature() != now:
            return False  # changed while reading: read again at the next check
        self.seen = now
        self.service.use_keys(keys)
        self._log.info("verification keys reloaded", kids=sorted(keys.verification_keys()))
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.config.keys_reload_interval)
            self.check()


@dataclasses.dataclass
class AuthzHandle:
    """A running decision point."""

    url: str
    index: DecisionIndex
    sync: IndexSync
    service: DecisionService
    status: StatusSync | None = None
    """The status page's sync (its ``cache``), when the page is served."""


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
    status = None if not config.status_page else StatusSync(
        StatusCache(), config.connection(), watch_timeout=config.watch_timeout, retry_delay=config.retry_delay)
    app = build_app(service, None if status is None else status.cache, config.timezone)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    task = asyncio.create_task(sync.run(), name="tksh-authz-sync")
    folder = config.keys_folder()
    reloader = None if folder is None else asyncio.create_task(KeyDirReloader(config, folder, service).run(),
                                                               name="tksh-authz-keys")
    status_task = None if status is None else asyncio.create_task(status.run(), name="tksh-authz-status")
    try:
        await site.start()
        host, port = runner.addresses[0][:2]
        host = f"[{host}]" if ":" in host else host
        get_logger("tksh.access.server").info("decision point listening", url=f"http://{host}:{port}")
        yield AuthzHandle(f"http://{host}:{port}", index, sync, service, status)
    finally:
        for running in (task, reloader, status_task):
            if running is not None:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
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
