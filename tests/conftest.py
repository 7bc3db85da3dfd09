"""Fixtures shared by every test tier."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

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
