"""The sandbox HTTP targets answer real HTTP requests and switch behaviour at runtime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from tksh.sandbox.targets import HTTPTarget, start_sandbox_targets


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def target() -> AsyncIterator[HTTPTarget]:
    async with HTTPTarget("tsok") as started:
        yield started


WaitUntil = Callable[..., Awaitable[object]]


def hit(target: HTTPTarget, times: int) -> Callable[[], None]:
    def check() -> None:
        assert target.hits == times

    return check


async def fetch(client: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    async with client.get(url) as response:
        return response.status, response.content_type, await response.text()


async def test_healthy_by_default_on_healthz_and_root(target: HTTPTarget, client: aiohttp.ClientSession) -> None:
    assert target.url.startswith("http://127.0.0.1:") and target.port > 0
    for path in ("/", "/healthz"):
        async with client.get(target.url + path) as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok", "target": "tsok"}
    assert target.hits == 2


async def test_failing_with_default_and_given_status(target: HTTPTarget, client: aiohttp.ClientSession) -> None:
    target.failing()
    async with client.get(target.url + "/healthz") as response:
        assert response.status == 503
        assert await response.json() == {"status": "failing", "target": "tsok"}
    target.failing(status=500)
    assert (await fetch(client, target.url))[0] == 500
    with pytest.raises(ValueError):
        target.failing(status=200)


async def test_switching_at_runtime_back_and_forth(target: HTTPTarget, client: aiohttp.ClientSession) -> None:
    statuses = []
    for switch in (target.healthy, target.failing, target.healthy):
        switch()
        statuses.append((await fetch(client, target.url + "/healthz"))[0])
    assert statuses == [200, 503, 200]
    assert target.hits == 3


async def test_body_is_served_verbatim(target: HTTPTarget, client: aiohttp.ClientSession) -> None:
    target.body("Жүйе жұмыс істейді / Система работает")
    assert await fetch(client, target.url + "/anything") == (
        200, "text/plain", "Жүйе жұмыс істейді / Система работает")
    target.body('{"ready": false}', status=500, content_type="application/json")
    assert await fetch(client, target.url) == (500, "application/json", '{"ready": false}')


async def test_slow_holds_the_answer_until_released(
    target: HTTPTarget, client: aiohttp.ClientSession, wait_until: WaitUntil
) -> None:
    target.slow(3600)
    pending = asyncio.create_task(fetch(client, target.url + "/healthz"))
    await wait_until(hit(target, 1))
    await asyncio.sleep(0.05)
    assert not pending.done(), "a slow target must not answer before its delay"
    target.failing(502)  # a switch releases the delayed request, which answers as the target is now
    status, _, _ = await pending
    assert status == 502


async def test_slow_trips_a_client_timeout(target: HTTPTarget, client: aiohttp.ClientSession) -> None:
    target.slow(3600)
    with pytest.raises(asyncio.TimeoutError):
        async with client.get(target.url, timeout=aiohttp.ClientTimeout(total=0.2)):
            pass
    assert target.hits == 1


async def test_slow_then_answers_with_its_status(target: HTTPTarget, client: aiohttp.ClientSession) -> None:
    target.slow(0.01, status=504)
    assert (await fetch(client, target.url))[0] == 504
    with pytest.raises(ValueError):
        target.slow(-1)


async def test_closing_releases_delayed_requests_and_frees_the_port(
    client: aiohttp.ClientSession, wait_until: WaitUntil
) -> None:
    target = HTTPTarget("closing")
    await target.start()
    target.slow(3600)
    pending = asyncio.create_task(fetch(client, target.url))
    await wait_until(hit(target, 1))
    await asyncio.wait_for(target.close(), timeout=30)  # would wait an hour if slow requests were not released
    result = await asyncio.gather(pending, return_exceptions=True)
    assert isinstance(result[0], (tuple, aiohttp.ClientError))
    with pytest.raises(aiohttp.ClientConnectionError):
        await fetch(client, target.url)
    await target.close()  # twice is harmless


async def test_sandbox_pair(client: aiohttp.ClientSession) -> None:
    healthy, failing = await start_sandbox_targets()
    try:
        assert healthy.port != failing.port
        assert (await fetch(client, healthy.url + "/healthz"))[0] == 200
        assert (await fetch(client, failing.url + "/healthz"))[0] == 503
        assert (healthy.name, failing.name) == ("healthy", "failing")
    finally:
        await healthy.close()
        await failing.close()


async def test_a_busy_port_raises_oserror(target: HTTPTarget) -> None:
    with pytest.raises(OSError):
        async with HTTPTarget("clash", port=target.port):
            pass
