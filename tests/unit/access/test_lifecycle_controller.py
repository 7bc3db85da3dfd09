"""The grant controller: one queue keyed by grant, one timer heap, a pause gate. Real asyncio, no Kubernetes."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from tests.conftest import eventually
from tksh.access.controller import GrantController


class Recorder:
    """A ``process`` that records what it was given, can be held, and returns a chosen next instant."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.running: set[str] = set()
        self.overlaps = 0
        self.hold = asyncio.Event()
        self.hold.set()
        self.wake: dict[str, datetime.datetime | None] = {}
        self.fail: set[str] = set()

    async def __call__(self, key: str, body: Mapping[str, Any] | None) -> datetime.datetime | None:
        if key in self.running:
            self.overlaps += 1
        self.running.add(key)
        try:
            self.calls.append((key, None if body is None else body.get("v")))
            await self.hold.wait()
            if key in self.fail:
                raise RuntimeError("API server unreachable")
            return self.wake.get(key)
        finally:
            self.running.discard(key)


class Gate:
    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()

    def is_paused(self) -> bool:
        return not self.open.is_set()

    async def wait_resumed(self) -> None:
        await self.open.wait()


@pytest.fixture
async def started() -> AsyncIterator[tuple[GrantController, Recorder, Gate]]:
    recorder, gate = Recorder(), Gate()
    controller = GrantController(recorder, workers=3, gate=gate, retry=0.05)
    controller.start()
    try:
        yield controller, recorder, gate
    finally:
        await controller.stop()


def ensure(condition: bool, what: object = "") -> None:
    assert condition, what


def soon(seconds: float) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)


async def test_a_burst_of_offers_is_one_reconcile_with_the_newest_body(started: Any) -> None:
    controller, recorder, _ = started
    recorder.hold.clear()
    controller.offer("ns/a", {"v": 1})
    await eventually(lambda: ensure(recorder.calls == [("ns/a", 1)], recorder.calls))
    for v in (2, 3, 4):  # while the first runs
        controller.offer("ns/a", {"v": v})
    recorder.hold.set()

    def twice() -> None:
        assert recorder.calls == [("ns/a", 1), ("ns/a", 4)]

    await eventually(twice)
    await asyncio.sleep(0.1)
    assert recorder.calls == [("ns/a", 1), ("ns/a", 4)] and recorder.overlaps == 0


async def test_grants_are_reconciled_in_parallel_but_each_by_one_worker(started: Any) -> None:
    controller, recorder, _ = started
    for n in range(20):
        controller.offer(f"ns/g{n % 5}", {"v": n})

    def done() -> None:
        assert {key for key, _ in recorder.calls} == {f"ns/g{n}" for n in range(5)}
        assert controller.queued == 0

    await eventually(done)
    assert recorder.overlaps == 0


async def test_the_timer_queues_a_grant_at_its_instant_and_only_the_latest_instant_counts(started: Any) -> None:
    controller, recorder, _ = started
    controller.schedule("ns/later", soon(30))
    controller.schedule("ns/later", soon(0.2))  # replaces the earlier one
    controller.schedule("ns/never", soon(0.1))
    controller.schedule("ns/never", None)  # cancelled
    await eventually(lambda: ensure([k for k, _ in recorder.calls] == ["ns/later"], recorder.calls))
    assert recorder.calls == [("ns/later", None)]  # no body: the reconcile reads the grant itself
    await asyncio.sleep(0.3)
    assert [k for k, _ in recorder.calls] == ["ns/later"]


async def test_the_next_instant_a_reconcile_returns_is_scheduled(started: Any) -> None:
    controller, recorder, _ = started
    recorder.wake["ns/a"] = soon(3600)
    controller.offer("ns/a", {"v": 1})
    wake = recorder.wake["ns/a"]

    def scheduled() -> None:
        due = controller.due_at("ns/a")
        assert due is not None and abs(due - wake) < datetime.timedelta(milliseconds=1), due

    await eventually(scheduled)
    assert controller.scheduled == 1
    controller.forget("ns/a")
    assert controller.scheduled == 0


async def test_nothing_runs_while_paused(started: Any) -> None:
    controller, recorder, gate = started
    gate.open.clear()
    controller.offer("ns/a", {"v": 1})
    controller.schedule("ns/b", soon(0.05))
    await asyncio.sleep(0.3)
    assert recorder.calls == []
    gate.open.set()
    await eventually(lambda: ensure({k for k, _ in recorder.calls} == {"ns/a", "ns/b"}, recorder.calls))


async def test_a_failed_reconcile_is_retried(started: Any) -> None:
    controller, recorder, _ = started
    recorder.fail.add("ns/a")
    controller.offer("ns/a", {"v": 1})
    await eventually(lambda: ensure(len(recorder.calls) >= 3, recorder.calls))
    recorder.fail.clear()
    count = len(recorder.calls)
    await eventually(lambda: ensure(controller.due_at("ns/a") is None and len(recorder.calls) > count))


async def test_stop_ends_every_task() -> None:
    controller = GrantController(Recorder(), workers=2)
    controller.start()
    controller.offer("ns/a", {"v": 1})
    await asyncio.sleep(0.05)
    await controller.stop()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("tksh-grant")]
