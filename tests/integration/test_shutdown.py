"""The operator stops when told to, even while the API server fails every request (its retries are endless
while it runs: see ``tksh.handlers.settings.Unending``)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tests.integration.backends import EmbeddedBackend
from tksh.run import OperatorThread


@pytest.mark.parametrize("cluster", ["embedded"], indirect=True)
async def test_a_peered_operator_stops_while_the_api_server_answers_500(cluster: EmbeddedBackend,
                                                                        unique: str) -> None:
    peering = f"stop-{unique}"
    await cluster.apply({"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": peering}})
    config = dataclasses.replace(cluster.operator_config(), standalone=False, peering_name=peering)
    thread = OperatorThread(config)
    await asyncio.to_thread(thread.start)
    await asyncio.to_thread(thread.wait_ready, 30)
    # Every request from now on fails, including the last peering keep-alive kopf makes on its way out.
    cluster.api.faults.inject(500, times=None)
    await asyncio.to_thread(thread.stop, 60)  # raises TimeoutError if the stop hangs on endless retries
    assert not thread.alive
