"""A standby peer does not probe: kopf pauses it, its monitoring daemons stop, the shared scheduler stops with them.

Two operators share one kopf peering object; the one with the higher priority is active. The paused one
exports no ``tksh_probe_success`` while the active one probes and handles the outage; when the active one
leaves, the standby resumes probing. And an incident's notifier caught mid-delivery by the pause records
nothing after it: the active peer is the writer from then on (it sends the notice again, with the same key).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.integration.backends import Backend, running
from tests.integration.monitoring_helpers import (
    OWNER,
    digital_object,
    integrated,
    mail_to,
    monitoring_config,
    namespace,
    one_incident,
)
from tests.integration.peering import HeldMail, Peering, paused_mid_delivery
from tksh.config import OperatorConfig
from tksh.metrics import OperatorMetrics
from tksh.sandbox.mailsink import MailSink
from tksh.sandbox.targets import HTTPTarget

Wait = Callable[..., Awaitable[Any]]


def probing(metrics: OperatorMetrics, labels: dict[str, str], expected: float | None) -> None:
    assert metrics.value("tksh_probe_success", labels) == expected


async def test_only_the_active_peer_probes_and_a_standby_takes_over(
    cluster: Backend, mail: MailSink, unique: str, wait_until: Wait
) -> None:
    ns = await namespace(cluster, f"peer-{unique}")
    peering = f"mon-{unique}"
    # A namespaced operator (below) peers through a KopfPeering in its namespace.
    await cluster.apply({"apiVersion": "kopf.dev/v1", "kind": "KopfPeering",
                         "metadata": {"name": peering, "namespace": ns}})
    # Only this test's namespace: the real cluster keeps other tests' incidents, which the metrics would count.
    base = dataclasses.replace(monitoring_config(cluster, mail.port, namespaces=(ns,), incident_namespace=ns),
                               standalone=False, peering_name=peering)

    def peer(priority: int) -> OperatorConfig:
        return dataclasses.replace(base, priority=priority)

    labels = {"kind": "DigitalObject", "namespace": ns, "name": "heat-billing"}
    async with HTTPTarget("heat") as target, running(peer(10)) as standby:
        obj = digital_object("heat-billing", ns, target.url, OWNER)
        await cluster.apply(obj)
        await wait_until(lambda: integrated(cluster, obj), timeout=60)
        await wait_until(lambda: probing(standby.metrics, labels, 1.0), timeout=60)

        async with running(peer(20)) as active:
            await wait_until(lambda: probing(active.metrics, labels, 1.0), timeout=60)
            await wait_until(lambda: probing(standby.metrics, labels, None), timeout=60)  # paused: not probing
            hits = target.hits
            await wait_until(lambda: _grew(target.hits, hits, 5))
            probing(standby.metrics, labels, None)  # still silent while the active peer keeps probing

            target.failing(503)
            await wait_until(lambda: one_incident(cluster, ns), timeout=60)
            await mail.wait_for(mail_to(OWNER, "incident-opened"), timeout=30)

            async def counted_by_the_active_peer_only() -> None:
                assert active.metrics.value("tksh_incidents_open") == 1
                assert standby.metrics.value("tksh_incidents_open") in (None, 0)

            await wait_until(counted_by_the_active_peer_only)
            target.healthy()
            await wait_until(lambda: one_incident(cluster, ns, "Recovered"), timeout=60)
        # The active peer is gone: the standby resumes and probes again.
        await wait_until(lambda: probing(standby.metrics, labels, 1.0), timeout=90)
    opened = [m for m in mail.received if m.envelope_to == (OWNER,)
              and m.message["X-TKSH-Template"] == "incident-opened"]
    assert len(opened) == 1  # one incident, told once: only the active peer acted


def _grew(now: int, before: int, by: int) -> None:
    assert now >= before + by, (now, before)


def owner_notice(incident: dict[str, Any]) -> dict[str, Any]:
    entry, = [e for e in incident["status"]["outbox"] if e["template"] == "incident-opened" and e["channel"] == "email"]
    return dict(entry)


async def test_a_notifier_caught_mid_delivery_by_the_pause_records_nothing_after_it(
    cluster: Backend, unique: str, wait_until: Wait, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns = await namespace(cluster, f"held-{unique}")
    monkeypatch.setenv("POD_ID", f"held-{unique}")
    async with HeldMail("incident-opened") as mail, HTTPTarget("heat") as target:
        with Peering(cluster, f"held-{unique}", ns) as peering:
            await peering.create()
            config = dataclasses.replace(monitoring_config(cluster, mail.port, namespaces=(ns,), incident_namespace=ns),
                                         standalone=False, peering_name=peering.name)
            async with running(config):
                obj = digital_object("heat-billing", ns, target.url, OWNER)
                await cluster.apply(obj)
                await wait_until(lambda: integrated(cluster, obj), timeout=60)
                target.failing(503)
                after = await paused_mid_delivery(peering, mail, lambda: one_incident(cluster, ns), wait_until)
                assert owner_notice(after)["state"] == "Pending"

                await peering.rival(False)  # resumed: this replica is the writer again, and sends the notice again

                async def recorded() -> dict[str, Any]:
                    entry = owner_notice(await one_incident(cluster, ns))
                    assert entry["state"] == "Delivered", entry
                    return entry

                entry = await wait_until(recorded, timeout=60)
    assert mail.keys() == [entry["id"]] * 2  # at least once, with one key
