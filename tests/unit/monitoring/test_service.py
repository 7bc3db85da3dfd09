"""The shared scheduler's life: started by the first attached target, stopped with the last; routing; hand-over."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from typing import Any

from tksh.monitoring import ProbeSpec
from tksh.monitoring.service import MonitorService
from tksh.sandbox.targets import HTTPTarget

Wait = Callable[..., Awaitable[Any]]


def spec(url: str) -> ProbeSpec:
    return ProbeSpec(url, interval=0.2, timeout=1.0, failure_threshold=2)


async def test_the_scheduler_runs_while_a_target_is_attached(wait_until: Wait) -> None:
    results: list[str] = []
    service = MonitorService(confirm_interval=0.05, on_result=lambda key, _spec, _result: results.append(key))
    async with HTTPTarget("a") as a, HTTPTarget("b") as b:
        assert not service.running
        queue_a = await service.attach("DigitalObject/ns/a", spec(a.url))
        queue_b = await service.attach("DigitalObject/ns/b", spec(b.url))
        assert service.running and len(service) == 2
        first = await asyncio.wait_for(queue_a.get(), 10)
        assert (first.key, first.previous, first.state) == ("DigitalObject/ns/a", "Unknown", "Up")
        assert (await asyncio.wait_for(queue_b.get(), 10)).key == "DigitalObject/ns/b"

        b.failing(503)
        opened = await asyncio.wait_for(queue_b.get(), 10)
        assert (opened.state, opened.incident, opened.failure) == ("Down", "opened", "http_status")
        assert queue_a.empty()  # each target's changes go to its own task only

        await service.detach("DigitalObject/ns/a")
        assert service.running  # b is still watched
        hits = a.hits
        await service.detach("DigitalObject/ns/b")
        assert not service.running
        await asyncio.sleep(0.5)
        assert a.hits == hits  # nothing probes once the last target is gone
        assert "DigitalObject/ns/a" in results


async def test_every_control_failing_makes_failing_targets_unknown(wait_until: Wait) -> None:
    async with HTTPTarget("control") as control, HTTPTarget("a") as a:
        service = MonitorService(confirm_interval=0.05, controls=[spec(control.url)])
        try:
            queue = await service.attach("DigitalObject/ns/a", spec(a.url))
            assert (await asyncio.wait_for(queue.get(), 10)).state == "Up"
            control.failing(503)
            await wait_until(lambda: _true(service.impaired))
            a.failing(503)
            change = await asyncio.wait_for(queue.get(), 10)
            assert (change.state, change.incident) == ("Unknown", None)
        finally:
            await service.close()
        assert not service.running


async def test_a_recovery_is_handed_over_to_the_incident_and_wakes_it() -> None:
    service = MonitorService()
    wake = service.wake("ns/inc-1")
    assert not wake.is_set() and service.recovery("ns/inc-1") is None
    moment = datetime.datetime(2026, 7, 12, 9, 20, tzinfo=datetime.UTC)
    service.recover("ns/inc-1", moment)
    assert wake.is_set() and service.recovery("ns/inc-1") == moment
    service.forget("ns/inc-1")
    assert service.recovery("ns/inc-1") is None and service.wake("ns/inc-1") is not wake


def _true(value: bool) -> None:
    assert value
