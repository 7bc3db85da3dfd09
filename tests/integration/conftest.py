"""The operator against the embedded API server: a fresh server and operator per test.

The operator runs in a thread with its own loop (``OperatorThread``), as in the sandbox: kopf
cancels every task of its loop created after it started, which would include the fixtures' own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tksh.config import OperatorConfig
from tksh.run import OperatorHandle, OperatorThread
from tksh.sandbox.apiserver import EmbeddedAPIServer, project_crd_paths


@pytest.fixture
async def api() -> AsyncIterator[EmbeddedAPIServer]:
    async with EmbeddedAPIServer(crd_paths=project_crd_paths()) as server:
        yield server


@pytest.fixture
def operator_config(api: EmbeddedAPIServer) -> OperatorConfig:
    return OperatorConfig(server=api.url, ops_host="127.0.0.1", ops_port=0, standalone=True, fast=True)


@pytest.fixture
async def operator(operator_config: OperatorConfig) -> AsyncIterator[OperatorHandle]:
    thread = OperatorThread(operator_config)
    handle = await asyncio.to_thread(thread.start)
    try:
        await asyncio.to_thread(thread.wait_ready, 30)
        yield handle
    finally:
        await asyncio.to_thread(thread.stop, 30)
    assert thread.error is None, thread.error
