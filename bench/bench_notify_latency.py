"""Failure-to-notification latency: a target starts failing → the owner's incident e-mail reaches the SMTP server.

    .venv/bin/python bench/bench_notify_latency.py [--objects 20] [--rounds 2] [--failure status|refused|hang]
                                                   [--interval SECONDS]

The whole operator runs (``tksh.run.OperatorThread``, its own thread and loop) against the embedded API server on
127.0.0.1, with real SMTP into an in-process ``MailSink``. ``--objects`` Integrated DigitalObjects each watch their
own real local HTTP target (``tksh.sandbox.targets.HTTPTarget``). Settings are the defaults: ``OperatorConfig()``
with ``fast=False`` and no monitoring overrides (``confirm_interval`` 0.5 s, ``recovery_threshold`` 2, no interval
cap), and the CRD's default probe (``spec.probe`` left out: http ``/healthz``, interval 2 s, timeout 2 s,
failureThreshold 3), unless ``--interval`` sets ``spec.probe.intervalSeconds`` (e.g. ``--interval 30``, the old
default, for comparison). Only the connection settings differ from a bare ``OperatorConfig()`` (API server URL, ops
port 0, standalone, the SMTP port and sender, an administrator mailbox).

Each object's target starts failing at a random instant within one probe interval (so the failure falls at every
phase of the probe cycle), and that wall-clock instant is recorded; the latency is the time until the owner's
``incident-opened`` e-mail is received by the SMTP server (``ReceivedMail.received_at``). ``--failure`` chooses how
the target fails:

* ``status`` — it answers 503 (a failure that answers, like a body mismatch or a TLS error);
* ``refused`` — its listener is closed: connection refused (like a DNS error or a reset);
* ``hang`` — it accepts the request and never answers: each probe fails only at its timeout, so detection takes at
  least ``failureThreshold`` × ``timeoutSeconds``.

Where the time goes is measured, not inferred from the Incident's whole-second times: the targets record when each
request arrives (the first failed probe, the confirming one), and a listener on the API server's store records when
each Incident is created. (With ``refused`` no request arrives: those parts come from the Incident's ``startedAt``
and ``detectedAt``, whole seconds.) Between rounds the targets recover and their incidents close. The Prometheus +
Alertmanager row printed here is computed from their default settings; ``bench_prometheus_latency.py`` measures it.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import dataclasses
import datetime
import logging
import platform
import random
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tksh.config import OperatorConfig
from tksh.notify.outbox import parse_time
from tksh.resources.common import Probe
from tksh.run import OperatorThread
from tksh.sandbox.apiserver import EmbeddedAPIServer, project_crd_paths
from tksh.sandbox.apiserver.store import WatchEvent
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
INCIDENTS = ("tksh.kz", "incidents")  # the store's key of the resource
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


class Target(HTTPTarget):
    """An ``HTTPTarget`` that records when each request arrives, and can refuse connections (listener closed)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.arrivals: list[datetime.datetime] = []

    async def _handle(self, request: web.Request) -> web.Response:
        self.arrivals.append(datetime.datetime.now(datetime.UTC))
        return await super()._handle(request)

    async def fail(self, failure: str) -> None:
        if failure == "status":
            self.failing(503)
        elif failure == "hang":
            self.slow(3600)  # accepts, never answers (released by the next switch)
        else:
            await self.close()  # refused: nothing listens on the port any more

    async def recover(self) -> None:
        self.healthy()
        if self._runner is None:
            await self.start()  # the same port again


@dataclasses.dataclass(frozen=True)
class Sample:
    """One object's failure, in seconds from the failure (``None``: not measured for this failure mode)."""

    email: float  # failure → owner's e-mail received
    first_probe: float | None  # failure → first failed probe arrives at the target
    confirming_probe: float | None  # failure → the confirming (failureThreshold-th) failed probe arrives
    incident: float  # failure → the Incident is created (API server)
    started: float  # failure → Incident startedAt (whole seconds)
    detected: float  # failure → Incident detectedAt (whole seconds)


async def one_round(api: EmbeddedAPIServer, mail: MailSink, targets: list[Target], interval: float, failure: str,
                    created: dict[str, datetime.datetime], threshold: int) -> list[Sample]:
    """Fail every target at a random instant within one interval; the latencies of the owners' e-mails."""
    def opened(i: int, after: datetime.datetime) -> Callable[[ReceivedMail], bool]:
        return lambda m: (m.message["X-TKSH-Template"] == "incident-opened" and m.envelope_to == (owner_email(i),)
                          and m.received_at >= after)

    async def fail_and_wait(i: int, target: Target) -> tuple[datetime.datetime, datetime.datetime]:
        await asyncio.sleep(random.uniform(0, interval))
        failed_at = datetime.datetime.now(datetime.UTC)
        await target.fail(failure)
        received = await mail.wait_for(opened(i, failed_at), timeout=interval * 3 + 120)
        return failed_at, received.received_at

    created.clear()
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
        arrivals = [t for t in targets[i].arrivals if t >= failed_at]

        def since_failure(t: datetime.datetime) -> float:
            return (t - failed_at).total_seconds()  # noqa: B023 -- used within the iteration

        samples.append(Sample(
            email=since_failure(received_at),
            first_probe=since_failure(arrivals[0]) if arrivals else None,
            confirming_probe=since_failure(arrivals[threshold - 1]) if len(arrivals) >= threshold else None,
            incident=since_failure(created[ours[0]["metadata"]["name"]]),
            started=since_failure(started), detected=since_failure(detected),
        ))
    for target in targets:
        await target.recover()
    await wait_until(lambda: all((status(api, i).get("availability") or {}).get("state") == "Up"
                                 and not status(api, i).get("openIncident") for i in range(len(targets))),
                     "every object Up again with no open incident", interval * 3 + 120)
    return samples


def table(samples: list[Sample], interval: float, timeout: float, threshold: int, confirm: float,
          failure: str) -> None:
    latencies = [sample.email for sample in samples]
    print("\n| failure → owner's incident-opened e-mail | samples | p50 (s) | p99 (s) | max (s) | min (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| tksh, measured, `{failure}` (interval {interval:g} s, timeout {timeout:g} s, failureThreshold "
          f"{threshold}, confirm {confirm:g} s) | {len(latencies)} | {pct(latencies, 0.5):.2f} "
          f"| {pct(latencies, 0.99):.2f} | {max(latencies):.2f} | {min(latencies):.2f} |")
    if failure == "hang":  # every probe of the run ends at its timeout; the re-probes follow at once
        low, what = threshold * timeout, f"{threshold} probes × timeout {timeout:g} s"
    else:
        low, what = (threshold - 1) * confirm, f"{threshold - 1} confirmations × {confirm:g} s"
    high = interval + low
    print(f"| tksh, computed (before delivery): next probe 0–{interval:g} s + {what} | — | {(low + high) / 2:.1f} "
          f"| {low + 0.99 * interval:.1f} | {high:.1f} | {low:.1f} |")
    print("| Prometheus + Alertmanager defaults, computed (not measured): scrape 0–60 s + rule evaluation 0–60 s "
          "(for: 0) + group_wait 30 s | — | 90 | 142 | 150 | 30 |")
    print("\n(with an alert rule's `for: 1m`, add 60 s to the Prometheus figures)")
    print("\n| part of the measured latency | p50 (s) | p99 (s) | max (s) |")
    print("|---|---:|---:|---:|")

    def line(what: str, part: list[float]) -> None:
        if part:
            print(f"| {what} | {pct(part, 0.5):.3f} | {pct(part, 0.99):.3f} | {max(part):.3f} |")

    first = [s.first_probe for s in samples if s.first_probe is not None]
    confirming = [(s.first_probe, s.confirming_probe) for s in samples
                  if s.first_probe is not None and s.confirming_probe is not None]
    line("failure → first failed probe reaches the target (waiting for the probe's slot)", first)
    line("first failed probe → confirming probe reaches the target", [c - f for f, c in confirming])
    line("confirming probe reaches the target → Incident created (the probe's own answer or timeout, then the "
         "monitor daemon)", [s.incident - s.confirming_probe for s in samples if s.confirming_probe is not None])
    line("failure → Incident created", [s.incident for s in samples])
    line("Incident created → owner's e-mail received (incident daemon, outbox, SMTP)",
         [s.email - s.incident for s in samples])
    line("failure → Incident startedAt (whole seconds: −1…0 s)", [s.started for s in samples])
    line("Incident startedAt → detectedAt (whole seconds: ±1 s)", [s.detected - s.started for s in samples])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=20, help="digital objects (targets) failing in parallel")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--failure", choices=("status", "refused", "hang"), default="status",
                        help="how the targets fail: answer 503, refuse connections, or accept and never answer")
    parser.add_argument("--interval", type=int, default=None,
                        help="spec.probe.intervalSeconds (default: left out, the CRD default)")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    random.seed(args.seed)
    logging.basicConfig(level=logging.WARNING)
    probe_defaults = Probe()
    interval = float(args.interval or probe_defaults.interval_seconds)
    threshold, timeout = probe_defaults.failure_threshold, float(probe_defaults.timeout_seconds)

    async with EmbeddedAPIServer(crd_paths=project_crd_paths()) as api, MailSink() as mail:
        created: dict[str, datetime.datetime] = {}

        def on_commit(event: WatchEvent) -> None:
            if event.type == "ADDED" and event.key == INCIDENTS:
                created[str(event.obj["metadata"]["name"])] = datetime.datetime.now(datetime.UTC)

        api.store.subscribe(on_commit)
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
              f"{' (CRD default)' if args.interval is None else ' (--interval)'}, timeout {timeout:g} s, "
              f"failureThreshold {threshold} (CRD defaults); failure: {args.failure}")
        await api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        await api.apply(copy.deepcopy(FUNCTION))
        targets = [Target(f"heat-{i}") for i in range(args.objects)]
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
                found = await one_round(api, mail, targets, interval, args.failure, created, threshold)
                print(f"round {number + 1}: " + ", ".join(f"{x:.1f}" for x in sorted(s.email for s in found)) + " s")
                samples += found
        finally:
            logging.getLogger("kopf").setLevel(logging.ERROR)  # daemons cancelled at the stop: expected
            await asyncio.to_thread(thread.stop, 60)
            for target in targets:
                await target.close()
        if thread.error is not None:
            raise RuntimeError(f"the operator failed: {thread.error!r}")
    table(samples, interval, timeout, threshold, config.confirm_interval, args.failure)


if __name__ == "__main__":
    asyncio.run(main())
