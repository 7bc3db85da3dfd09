"""The operator suite: each test runs against the embedded API server and, when the real tier is
available (always in CI), against the real kube-apiserver + etcd too.

The operator runs in a thread with its own loop (``OperatorThread``), as in the sandbox: kopf
cancels every task of its loop created after it started, which would include the fixtures' own.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.integration.backends import Backend, EmbeddedBackend, RealBackend, running
from tests.realapi.cluster import RealCluster
from tksh.run import OperatorHandle
from tksh.sandbox.apiserver import EmbeddedAPIServer, project_crd_paths
from tksh.sandbox.mailsink import MailSink

_installed: set[int] = set()


@pytest.fixture
async def api() -> AsyncIterator[EmbeddedAPIServer]:
    """The embedded API server alone, for the tests that inject its faults (a real server cannot fail on demand)."""
    async with EmbeddedAPIServer(crd_paths=project_crd_paths()) as server:
        yield server


@pytest.fixture(params=["embedded", pytest.param("real", marks=pytest.mark.realapi)])
async def cluster(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "embedded":
        async with EmbeddedAPIServer(crd_paths=project_crd_paths()) as server:
            yield EmbeddedBackend(server)
        return
    real: RealCluster = request.getfixturevalue("real_cluster")
    if id(real) not in _installed:
        await asyncio.to_thread(real.install_crds, project_crd_paths())
        _installed.add(id(real))
    backend = RealBackend(real)
    try:
        yield backend
    finally:
        await backend.cleanup()


@pytest.fixture
def unique() -> str:
    """A suffix for object names: the real cluster is shared by the whole session."""
    return uuid.uuid4().hex[:6]


@pytest.fixture
async def mail() -> AsyncIterator[MailSink]:
    """A real SMTP relay on 127.0.0.1 (``mail.port``) that keeps what it receives."""
    async with MailSink() as sink:
        yield sink


@pytest.fixture
async def operator(cluster: Backend) -> AsyncIterator[OperatorHandle]:
    async with running(cluster.operator_config()) as handle:
        yield handle
