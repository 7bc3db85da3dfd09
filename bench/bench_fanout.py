"""A central failure told to every integrated owner (§34.3): the window of :mod:`tksh.monitoring.fanout` against
planning every owner at once, side by side in the same run.

    .venv/bin/python bench/bench_fanout.py [--owners 1000] [--webhooks] [--window 100]

One incident's task (:meth:`tksh.monitoring.incident_task.IncidentTask.run`, the body of the operator's
per-incident daemon, without kopf) for a critical CentralComponent that fails and then recovers, with ``--owners``
integrated digital objects: an e-mail to each owner over real SMTP (an in-process ``MailSink``) and, with
``--webhooks``, a signed webhook to a local HTTP receiver as well. The store is in memory and keeps every status
write as JSON, as the API server would, so the figures are: the largest status written (etcd refuses a request over
1.5 MiB by default), the number of writes and their bytes, and the time from the failure to the last owner told of
the outage, then from the recovery to the last owner told of it. The baseline is the same task with a window as
large as all the owners' notices: every owner planned at once, as the operator did before the window.
Everything on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import json
import platform
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from tksh.config import OperatorConfig
from tksh.metrics import OperatorMetrics
from tksh.monitoring.delivery import WebhookTarget
from tksh.monitoring.incident_task import IncidentTask
from tksh.monitoring.incidents import TargetRef, incident_manifest
from tksh.monitoring.machine import StateChange
from tksh.monitoring.service import MonitorService
from tksh.notify.outbox import Backoff, DeliveryResult
from tksh.sandbox.mailsink import MailSink

T0 = datetime.datetime(2026, 7, 12, 9, 0, tzinfo=datetime.UTC)
GATEWAY = TargetRef("CentralComponent", "cz-gateway", None, "uid-gateway")
COMPONENTS = {"cz-gateway": [{"uid": "uid-gateway", "critical": True, "title": "Integration gateway"}]}
ETCD_LIMIT = 1572864  # etcd's default --max-request-bytes (1.5 MiB)


class Receiver:
    """Counts webhook POSTs."""

    def __init__(self) -> None:
        self.received = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Receiver:
        async def handle(request: web.Request) -> web.Response:
            await request.read()
            self.received += 1
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/{tail:.*}", handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclasses.dataclass
class Run:
    window: int
    writes: int = 0
    bytes_written: int = 0
    largest: int = 0
    opened_s: float = 0.0
    recovered_s: float = 0.0
    emails: int = 0
    webhooks: int = 0


async def run(owners: int, webhooks: bool, window: int) -> Run:
    change = StateChange(GATEWAY.key, "Up", "Down", T0, incident="opened", started_at=T0, detected_at=T0,
                         failure="connect", message="connection refused")
    body = incident_manifest(GATEWAY, change, "tksh-system")
    body["metadata"]["uid"] = "uid-incident"
    key = f"tksh-system/{body['metadata']['name']}"
    index = {(f"housing-{i % 17:02d}", f"object-{i:05d}"): [{
        "uid": f"0f8e2b7c-0000-4000-8000-{i:012d}", "email": f"owner{i}@example.kz", "phase": "Integrated",
        **({"webhook": {"url": "set below", "secretRef": {"name": "hook", "key": "secret"}}} if webhooks else {}),
    }] for i in range(owners)}
    result = Run(window)
    status: dict[str, Any] = {}
    done = {"Opened": asyncio.Event(), "Recovered": asyncio.Event()}

    async def store(fields: Mapping[str, Any]) -> dict[str, Any]:
        request = json.dumps({"status": fields})  # a merge patch of the status, as the operator sends it
        status.update(json.loads(request)["status"])
        size = len(json.dumps({"status": status}))
        result.writes += 1
        result.bytes_written += len(request)
        result.largest = max(result.largest, size)
        for record in status.get("fanout") or ():
            if record["delivered"] + record["failed"] >= owners * (2 if webhooks else 1) and record["complete"]:
                done[record["transition"]].set()
        return dict(status)

    async def pause(event: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), min(seconds, 0.05))

    async with MailSink() as mail, Receiver() as hooks:
        async def webhook_target(entry: Mapping[str, Any],
                                 _owners: Mapping[Any, Any]) -> WebhookTarget | DeliveryResult:
            return WebhookTarget(hooks.url, [b"bench-secret"])

        config = dataclasses.replace(OperatorConfig(), smtp_host="127.0.0.1", smtp_port=mail.port,
                                     smtp_sender="tksh@tksh.example.kz", administrator_mailbox="", fast=True)
        # The baseline's window (every owner at once) is past the setting's bound (1,000), which exists because of
        # what this measures: set past the validation, on purpose, for the baseline only.
        object.__setattr__(config, "fanout_window", window)
        service = MonitorService()
        task = IncidentTask(config=config, metrics=OperatorMetrics(), service=service, clock=lambda: T0,
                            backoff=Backoff(), webhook_target=webhook_target, post_event=lambda *_: None)
        started = time.perf_counter()
        running = asyncio.create_task(task.run(body, store, pause, lambda: False, index, COMPONENTS))
        await done["Opened"].wait()
        result.opened_s = time.perf_counter() - started
        recovered = time.perf_counter()
        service.recover(key, T0 + datetime.timedelta(minutes=10))
        await done["Recovered"].wait()
        result.recovered_s = time.perf_counter() - recovered
        await running
        result.emails, result.webhooks = len(mail.received), hooks.received
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--owners", type=int, default=1000, help="integrated objects (default 1000)")
    parser.add_argument("--webhooks", action="store_true", help="each owner also has a webhook")
    parser.add_argument("--window", type=int, default=100, help="fan-out notices pending at once (default 100)")
    args = parser.parse_args()
    if args.owners < 1 or args.window < 2:
        parser.error("--owners must be at least 1 and --window at least 2")
    per_owner = 2 if args.webhooks else 1
    print(f"{platform.system()} {platform.machine()}, Python {platform.python_version()}; {args.owners} owners, "
          f"{'e-mail + webhook' if args.webhooks else 'e-mail'} each")
    baseline = await run(args.owners, args.webhooks, args.owners * per_owner)
    windowed = await run(args.owners, args.webhooks, args.window)
    expected = args.owners * 2  # the outage and the recovery, per owner and channel
    print("| planning | window | largest status (bytes) | over etcd's 1.5 MiB | writes | bytes written | "
          "failure → last owner told (s) | recovery → last owner told (s) | e-mails | webhooks |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for label, r in (("every owner at once (baseline)", baseline), ("a window at a time", windowed)):
        print(f"| {label} | {r.window:,} | {r.largest:,} | {'yes' if r.largest > ETCD_LIMIT else 'no'} | {r.writes:,} "
              f"| {r.bytes_written:,} | {r.opened_s:.2f} | {r.recovered_s:.2f} | {r.emails:,} | {r.webhooks:,} |")
        assert r.emails == expected and r.webhooks == (expected if args.webhooks else 0), (r.emails, r.webhooks)
    print(f"ratios window / baseline: largest status {windowed.largest / baseline.largest:.3f}, "
          f"time to tell everyone of the outage {windowed.opened_s / baseline.opened_s:.2f}, "
          f"of the recovery {windowed.recovered_s / baseline.recovered_s:.2f}, "
          f"bytes written {windowed.bytes_written / baseline.bytes_written:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
