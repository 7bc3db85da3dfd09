"""Failure-to-notification latency: a target starts failing → the owner's incident e-mail reaches the SMTP server.

    .venv/bin/python bench/bench_notify_latency.py [--objects 20] [--rounds 1] [--interval SECONDS]

The whole operator runs (``tksh.run.OperatorThread``, its own thread and loop) against the embedded API server on
127.0.0.1, with real SMTP into an in-process ``MailSink``. ``--objects`` Integrated DigitalObjects each watch their
own real local HTTP target (``tksh.sandbox.targets.HTTPTarget``). Settings are the defaults: ``OperatorConfig()``
with ``fast=False`` and no monitoring overrides (confirm_interval 2 s, recovery_threshold 2, no interval cap), and
the CRD's default probe (``spec.probe`` left out: http ``/healthz``, interval 30 s, timeout 5 s, failureThreshold 3),
unless ``--interval`` sets ``spec.probe.intervalSeconds``. Only the connection settings differ from a bare
``OperatorConfig()`` (API server URL, ops port 0, standalone, the SMTP port and sender, an administrator mailbox).

Each object's target is switched to answering 503 at a random instant within one probe interval (so the failure
falls at every phase of the probe cycle), and that wall-clock instant is recorded; the latency is the time until
the owner's ``incident-opened`` e-mail is received by the SMTP server (``ReceivedMail.received_at``). Between
rounds the targets recover and their incidents close. The Prometheus + Alertmanager baseline is computed from
their default settings, not measured (no Prometheus runs here).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import datetime
import logging
import platform
import random
import time
from collections.abc import Callable
from typing import Any

from tksh.config import OperatorConfig
from tksh.notify.outbox import parse_time
from tksh.resources.common import Probe
from tksh.run import OperatorThread
from tksh.sandbox.apiserver import EmbeddedAPIServer, project_crd_paths
from tksh.sandbox.mailsink import MailSink, ReceivedMail
from tksh.sandbox.targets import HTTPTarget

API = "tksh.kz/v1alpha1"
NS = "bench-notify"
FUNCTION: dict[str, Any] = {
    "apiVersion": API,
    "kind": "SubjectFunction",
    "metadata": {"name": "utility-supply"},
    "spec": {
        "titles": {"kk": "Коммуналдық қызмет", "ru": "Коммунальные услуги", "en": "Utility supply"},
        "subjectTypes": ["HeatSupplier"],
        "rights": [{"category": 11, "actions": ["read", "write"]}],
    },
}
AGREEMENT = {"number": "ЦЖ-2026/0042", "signedAt": "2026-01-20T09:00:00Z", "validUntil": "2099-07-20T00:00:00Z"}


def owner_email(i: int) -> str:
    return f"it{i}@zhylu.example.kz"


def digital_object(i: int, url: str, interval: int | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "owner": {"bin": "201240007890", "name": "АО «Жылу Желісі»", "subjectType": "HeatSupplier",
                  "email": owner_email(i)},
        "functions": ["utility-supply"],
        "categories": [11],
        "endpoint": {"url": url},
        "review": {"decision": "Approved", "reviewer": "aigerim"},
        "agreement": AGREEMENT,
    }
    if interval is not None:
        spec["probe"] = {"intervalSeconds": interval}
    return {"apiVersion": API, "kind": "DigitalObject", "metadata": {"name": f"heat-{i}", "namespace": NS},
            "spec": spec}


async def wait_until(check: Callable[[], bool], what: str, timeout: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.2)


def status(api: EmbeddedAPIServer, i: int) -> dict[str, Any]:
    obj = api.store.get("DigitalObject", NS, f"heat-{i}")
    return dict((obj or {}).get("status") or {})


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


Sample = tuple[float, float, float, float]
"""failure → e-mail; failure → first failed probe; → incident detected (confirmed); detected → e-mail (seconds)."""


async def one_round(api: EmbeddedAPIServer, mail: MailSink, targets: list[HTTPTarget], interval: float) -> list[Sample]:
    """Fail every target at a random instant within one interval; the latencies of the owners' e-mails."""
    def opened(i: int, after: datetime.datetime) -> Callable[[ReceivedMail], bool]:
        return lambda m: (m.message["X-TKSH-Template"] == "incident-opened" and m.envelope_to == (owner_email(i),)
                          and m.received_at >= after)

    async def fail_and_wait(i: int, target: HTTPTarget) -> tuple[datetime.datetime, datetime.datetime]:
        await asyncio.sleep(random.uniform(0, interval))
        failed_at = datetime.datetime.now(datetime.UTC)
        target.failing(503)
        received = await mail.wait_for(opened(i, failed_at), timeout=interval * 3 + 120)
        return failed_at, received.received_at

    times = await asyncio.gather(*(fail_and_wait(i, t) for i, t in enumerate(targets)))
    samples: list[Sample] = []
    incidents = api.store.list("incidents", NS)
    for i, (failed_at, received_at) in enumerate(times):
        since = failed_at.replace(microsecond=0)  # Incidents keep whole seconds
        ours = [x for x in incidents if x["spec"]["target"]["name"] == f"heat-{i}"
                and (parse_time(x["spec"]["startedAt"]) or since) >= since]
        assert len(ours) == 1, f"heat-{i}: {len(ours)} incidents since {since}"
        started, detected = parse_time(ours[0]["spec"]["startedAt"]), parse_time(ours[0]["spec"]["detectedAt"])
        assert started is not None and detected is not None
        samples.append(((received_at - failed_at).total_seconds(), (started - failed_at).total_seconds(),
                        (detected - started).total_seconds(), (received_at - detected).total_seconds()))
    for target in targets:
        target.healthy()
    await wait_until(lambda: all((status(api, i).get("availability") or {}).get("state") == "Up"
                                 and not status(api, i).get("openIncident") for i in range(len(targets))),
                     "every object Up again with no open incident", interval * 3 + 120)
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=20, help="digital objects (targets) failing in parallel")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--interval", type=int, default=None,
                        help="spec.probe.intervalSeconds (default: left out, the CRD default)")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    random.seed(args.seed)
    logging.basicConfig(level=logging.WARNING)
    probe_defaults = Probe()
    interval = float(args.interval or probe_defaults.interval_seconds)

    async with EmbeddedAPIServer(crd_paths=project_crd_paths()) as api, MailSink() as mail:
        defaults = OperatorConfig()
        config = OperatorConfig(server=api.url, ops_host="127.0.0.1", ops_port=0, standalone=True,
                                smtp_host="127.0.0.1", smtp_port=mail.port, smtp_sender="tksh@tksh.example.kz",
                                administrator_mailbox="duty@tksh.example.kz")
        print(f"{platform.platform()}, Python {platform.python_version()}; embedded API server, MailSink (SMTP)")
        print(f"operator: fast={config.fast}, confirm_interval={config.confirm_interval:g} s, recovery_threshold="
              f"{config.recovery_threshold}, probe_interval_cap={config.probe_interval_cap:g} (none), "
              f"probe_concurrency={config.probe_concurrency} (all as OperatorConfig() defaults: "
              f"{config.confirm_interval == defaults.confirm_interval and config.fast == defaults.fast})")
        print(f"probe: {probe_defaults.type} {probe_defaults.path}, interval {interval:g} s"
              f"{' (CRD default)' if args.interval is None else ' (--interval)'}, timeout "
              f"{probe_defaults.timeout_seconds} s, failureThreshold {probe_defaults.failure_threshold} (CRD defaults)")
        await api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        await api.apply(copy.deepcopy(FUNCTION))
        targets = [HTTPTarget(f"heat-{i}") for i in range(args.objects)]
        for target in targets:
            await target.start()
        thread = OperatorThread(config)
        try:
            await asyncio.to_thread(thread.start)
            await asyncio.to_thread(thread.wait_ready, 60)
            started = time.monotonic()
            for i, target in enumerate(targets):
                await api.apply(digital_object(i, target.url, args.interval))
            await wait_until(lambda: all(status(api, i).get("phase") == "Integrated" for i in range(args.objects)),
                             "every object Integrated", 900)
            integrated = time.monotonic() - started
            await wait_until(lambda: all((status(api, i).get("availability") or {}).get("state") == "Up"
                                         for i in range(args.objects)), "every object Up", interval * 2 + 60)
            print(f"{args.objects} objects Integrated after {integrated:.1f} s and Up after "
                  f"{time.monotonic() - started:.1f} s")
            samples: list[Sample] = []
            for number in range(args.rounds):
                found = await one_round(api, mail, targets, interval)
                print(f"round {number + 1}: " + ", ".join(f"{s[0]:.1f}" for s in sorted(found)) + " s")
                samples += found
        finally:
            logging.getLogger("kopf").setLevel(logging.ERROR)  # daemons cancelled at the stop: expected
            await asyncio.to_thread(thread.stop, 60)
            for target in targets:
                await target.close()
        if thread.error is not None:
            raise RuntimeError(f"the operator failed: {thread.error!r}")

    latencies = [sample[0] for sample in samples]
    threshold = probe_defaults.failure_threshold
    confirm = config.confirm_interval
    print("\n| failure → owner's incident-opened e-mail | samples | p50 (s) | p99 (s) | max (s) | min (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| tksh, measured (interval {interval:g} s, failureThreshold {threshold}, confirm {confirm:g} s) "
          f"| {len(latencies)} | {pct(latencies, 0.5):.1f} | {pct(latencies, 0.99):.1f} | {max(latencies):.1f} "
          f"| {min(latencies):.1f} |")
    low, high = (threshold - 1) * confirm, interval + (threshold - 1) * confirm
    print(f"| tksh, computed: next probe 0–{interval:g} s + {threshold - 1} confirmations × {confirm:g} s "
          f"| — | {(low + high) / 2:.0f} | {low + 0.99 * interval:.0f} | {high:.0f} | {low:.0f} |")
    print("| Prometheus + Alertmanager defaults, computed (not measured): scrape 0–60 s + rule evaluation 0–60 s "
          "(for: 0) + group_wait 30 s | — | 90 | 142 | 150 | 30 |")
    print("\n(with an alert rule's `for: 1m`, add 60 s to the Prometheus figures)")
    print("\n| part of the measured latency (Incident times are whole seconds: ±1 s) | p50 (s) | p99 (s) | max (s) |")
    print("|---|---:|---:|---:|")
    for column, what in enumerate(("failure → first failed probe (Incident startedAt): waiting for the probe's slot",
                                   "first failed probe → confirmed (Incident detectedAt)",
                                   "confirmed → owner's e-mail received (incident, outbox, SMTP)"), start=1):
        part = [sample[column] for sample in samples]
        print(f"| {what} | {pct(part, 0.5):.2f} | {pct(part, 0.99):.2f} | {max(part):.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
