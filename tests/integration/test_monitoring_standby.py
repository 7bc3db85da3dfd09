"""A standby peer does not probe: kopf pauses it, its monitoring daemons stop, the shared scheduler stops with them.

Two operators share one kopf peering object; the one with the higher priority is active. The paused one
exports no ``tksh_probe_success`` while the active one probes and handles the outage; when the active one
leaves, the standby resumes probing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

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
