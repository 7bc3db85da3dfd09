"""Fixtures shared by every test tier."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from tests.realapi.cluster import BinariesUnavailable, RealCluster, ensure_binaries

T = TypeVar("T")


async def eventually(check: Callable[[], T | Awaitable[T]], timeout: float = 30.0, interval: float = 0.05) -> T:  # noqa: ASYNC109
    """Retry ``check`` until it stops raising AssertionError (or LookupError), then return its result.

    A deadline, not a timing assertion: it only bounds how long a broken test hangs.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
                result = await result
            return result  # type: ignore[return-value]
        except (AssertionError, LookupError, TypeError):
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(interval)


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[object]]:
    return eventually


FALSY = ("0", "false", "no", "off")
TRUTHY = ("1", "true", "yes", "on")


def realapi_disabled() -> bool:
    return os.environ.get("TKSH_REALAPI", "").strip().lower() in FALSY


def realapi_required() -> bool:
    return (
        os.environ.get("TKSH_REALAPI", "").strip().lower() in TRUTHY
        or os.environ.get("CI", "").strip().lower() == "true"
    )


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[RealCluster]:
    """A started ``RealCluster`` shared by the whole session; stopped (and its data deleted) at the end."""
    if realapi_disabled():
        pytest.skip("real API server tier disabled by TKSH_REALAPI=0")
    try:
        binaries = ensure_binaries()
    except BinariesUnavailable as exc:
        if realapi_required():
            pytest.fail(f"the real API server tier is required here (CI=true or TKSH_REALAPI=1): {exc}", pytrace=False)
        pytest.skip(f"real API server tier unavailable: {exc}; set TKSH_REALAPI=0 to silence this")
    cluster = RealCluster(binaries=binaries)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
