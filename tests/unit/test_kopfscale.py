"""tksh.handlers.kopfscale against the installed kopf: index readiness without a wake-up storm, quiet successes."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging

import pytest
from kopf._cogs.aiokits import aiotoggles
from kopf._core.actions import loggers
from kopf._core.reactor import processing, queueing

from tksh.handlers import kopfscale


@pytest.fixture(autouse=True)
def installed() -> None:
    kopfscale.install()


def test_kopf_still_blocks_handlers_on_one_toggle_per_listed_object() -> None:
    """What the fix relies on: the watcher adds a toggle per new object during a listing, the processing drops it and
    waits for the whole set. If kopf changes this, the fix must be looked at again."""
    assert "operator_indexed.make_toggle(" in inspect.getsource(queueing.watcher)
    source = inspect.getsource(processing.process_resource_event)
    assert "operator_indexed.drop_toggle(" in source and "operator_indexed.wait_for(True)" in source
    assert {"_condition", "_toggles"} <= set(vars(aiotoggles.ToggleSet(all)))
    assert aiotoggles.ToggleSet.wait_for is kopfscale._wait_for


async def test_waiters_are_woken_once_when_the_last_toggle_goes_not_per_toggle() -> None:
    toggles = aiotoggles.ToggleSet(all)
    blocker = await toggles.make_toggle(name="resource listing")
    woken = 0
    notify_all = toggles._condition.notify_all

    def counting() -> None:
        nonlocal woken
        woken += 1
        notify_all()

    toggles._condition.notify_all = counting  # type: ignore[method-assign]
    waiters = [asyncio.create_task(toggles.wait_for(True)) for _ in range(200)]
    await asyncio.sleep(0)
    per_object = [await toggles.make_toggle(name=f"object {n}") for n in range(1000)]
    for toggle in per_object:
        await toggles.drop_toggle(toggle)
    assert woken == 0  # kopf's own make/drop would have woken all 200 waiters 2,000 times
    assert not any(w.done() for w in waiters) and toggles.is_off()
    await toggles.drop_toggle(blocker)
    await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)
    assert woken == 1 and toggles.is_on()


async def test_woken_waiters_go_on_a_batch_per_turn_of_the_loop_so_others_run_in_between() -> None:
    """After a listing every object's worker waits; once the set turns on they must not all run in one turn."""
    toggles = aiotoggles.ToggleSet(all)
    blocker = await toggles.make_toggle(name="resource listing")
    done: list[int] = []
    probe_saw: list[int] = []

    async def worker(n: int) -> None:
        await toggles.wait_for(True)
        done.append(n)  # the object's processing would run here, synchronously

    async def probe() -> None:  # /healthz, a peering keep-alive: anything else in the loop
        while len(done) < 1000:
            probe_saw.append(len(done))
            await asyncio.sleep(0)

    workers = [asyncio.create_task(worker(n)) for n in range(1000)]
    await asyncio.sleep(0)
    await toggles.drop_toggle(blocker)
    watcher = asyncio.create_task(probe())
    await asyncio.wait_for(asyncio.gather(*workers, watcher), timeout=5)
    assert sorted(done) == list(range(1000))
    between = [n for n in probe_saw if 0 < n < 1000]
    assert between, "nothing else ran while the woken waiters went on"
    assert all(b - a <= 2 * kopfscale.BATCH for a, b in itertools.pairwise(between)), between[:20]


async def test_a_waiter_that_need_not_wait_goes_on_at_once() -> None:
    toggles = aiotoggles.ToggleSet(all)
    await asyncio.wait_for(toggles.wait_for(True), timeout=1)  # empty: on
    cancelled = asyncio.create_task(toggles.wait_for(False))
    await asyncio.sleep(0)
    cancelled.cancel()
    off = await toggles.make_toggle(False)
    await asyncio.wait_for(toggles.wait_for(False), timeout=1)
    await toggles.drop_toggle(off)
    assert cancelled.cancelled()


async def test_a_set_that_turns_on_or_off_still_wakes_its_waiters() -> None:
    paused = aiotoggles.ToggleSet(any)  # as kopf's operator_paused
    waiter = asyncio.create_task(paused.wait_for(True))
    await asyncio.sleep(0)
    flag = await paused.make_toggle(True, name="peering")  # the set turns on
    await asyncio.wait_for(waiter, timeout=5)
    resumed = asyncio.create_task(paused.wait_for(False))
    await asyncio.sleep(0)
    await paused.drop_toggles([flag])  # and off again
    await asyncio.wait_for(resumed, timeout=5)
    other = await paused.make_toggle(False)
    turned = asyncio.create_task(paused.wait_for(True))
    await asyncio.sleep(0)
    await other.turn_to(True)  # a member turned on directly (kopf's Toggle, not patched)
    await asyncio.wait_for(turned, timeout=5)


def _record(msg: str, level: int, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("kopf.objects", level, __file__, 1, msg, None, None)
    record.__dict__.update(extra)
    return record


def test_only_event_handlers_successes_are_dropped() -> None:
    quiet = kopfscale.QuietEventSuccess()
    assert not quiet.filter(_record("Handler 'tokens' succeeded.", logging.INFO, k8s_skip=True))
    assert quiet.filter(_record("Handler 'directory' succeeded.", logging.INFO))  # a change handler: kept
    assert quiet.filter(_record("Handler 'tokens' failed with an exception.", logging.ERROR, k8s_skip=True))
    assert quiet.filter(_record("Handler 'tokens' succeeded.", logging.WARNING, k8s_skip=True))
    assert any(isinstance(f, kopfscale.QuietEventSuccess) for f in logging.getLogger("kopf.objects").filters)


def test_kopf_still_marks_event_handler_lines_as_not_posted() -> None:
    """The filter recognises event handlers' lines by kopf's ``k8s_skip`` mark (its LocalObjectLogger)."""
    assert "k8s_skip=True" in inspect.getsource(loggers.LocalObjectLogger.log)


def test_install_is_idempotent() -> None:
    make = aiotoggles.ToggleSet.make_toggle
    kopfscale.install()
    assert aiotoggles.ToggleSet.make_toggle is make
    assert sum(isinstance(f, kopfscale.QuietEventSuccess) for f in logging.getLogger("kopf.objects").filters) == 1
