"""The scheduler under fake loop time (``looptime``): cadence, spreading, confirmation, impairment, runtime changes.

Probes are a scripted function of the loop time (plus one end-to-end test with real probes of a
real local target); assertions are on which probes ran when and what was emitted, never on wall time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import itertools
from collections import Counter
from collections.abc import Callable

import pytest

from tksh.config import OperatorConfig
from tksh.monitoring import (
    OpenIncident,
    Prober,
    ProbeResult,
    ProbeSpec,
    Scheduler,
    StateChange,
    jitter,
    loop_clock,
)
from tksh.monitoring.machine import CONFIRM_INTERVAL, Policy
from tksh.resources.common import Probe
from tksh.sandbox.targets import HTTPTarget

EPOCH = datetime.datetime(2026, 7, 12, 9, 0, tzinfo=datetime.UTC)


def at(seconds: float) -> datetime.datetime:
    return EPOCH + datetime.timedelta(seconds=seconds)


def spec(key: str, interval: float = 30, timeout: float = 5, threshold: int = 3) -> ProbeSpec:
    return ProbeSpec(f"http://{key}.test", interval=interval, timeout=timeout, failure_threshold=threshold)


class FakeProbe:
    """A probe function: each target passes unless scripted to fail (in loop-time windows) or to hang."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []
        self.failing: dict[str, list[tuple[float, float]]] = {}
        self.delays: dict[str, float] = {}
        self.running = 0
        self.max_running = 0

    def fail(self, key: str, start: float, end: float = float("inf")) -> None:
        self.failing.setdefault(key, []).append((start, end))

    async def __call__(self, spec: ProbeSpec) -> ProbeResult:
        key = spec.host.removesuffix(".test")
        now = asyncio.get_running_loop().time()
        self.calls.append((now, key))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep(self.delays.get(key, 0))
        finally:
            self.running -= 1
        if any(start <= now < end for start, end in self.failing.get(key, [])):
            return ProbeResult(ok=False, failure="connect", message="connection refused")
        return ProbeResult(ok=True)

    def times(self, key: str) -> list[float]:
        return [t for t, k in self.calls if k == key]


def summary(transitions: list[StateChange], key: str | None = None) -> list[tuple[str, str, str | None]]:
    return [(t.previous, t.state, t.incident) for t in transitions if key is None or t.key == key]


async def drain(scheduler: Scheduler) -> list[StateChange]:
    emitted = []
    while not scheduler.changes.empty():
        emitted.append(scheduler.changes.get_nowait())
    return emitted


@pytest.mark.looptime
async def test_many_targets_keep_their_cadence_while_one_hangs() -> None:
    fake = FakeProbe()
    fake.delays["slow"] = 3600  # never answers: held to its timeout (+ grace) by the scheduler
    keys = [f"t{n}" for n in range(30)]
    async with Scheduler(fake, concurrency=8, clock=loop_clock(EPOCH, 0)) as scheduler:
        for key in [*keys, "slow"]:
            scheduler.add(key, spec(key, interval=10))
        await asyncio.sleep(100)
        emitted = await drain(scheduler)
    for key in keys:
        first = jitter(key) * 10
        assert fake.times(key) == pytest.approx([first + 10 * n for n in range(10)], abs=1e-5), key
        assert summary(emitted, key) == [("Unknown", "Up", None)]
    assert summary(emitted, "slow") == [("Unknown", "Down", "opened")]
    assert [t.failure for t in emitted if t.key == "slow"] == ["timeout"]
    assert fake.max_running <= 8


@pytest.mark.looptime
async def test_start_times_are_spread_and_the_same_after_a_restart() -> None:
    keys = [f"object-{n}" for n in range(50)]
    firsts: list[dict[str, float]] = []
    for _restart in range(2):
        fake = FakeProbe()
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with Scheduler(fake) as scheduler:
            for key in keys:
                scheduler.add(key, spec(key, interval=30))
            await asyncio.sleep(30)
        firsts.append({key: fake.times(key)[0] - started for key in keys})
        assert len(fake.calls) == 50  # one probe each within the first interval: no burst, none missed
    assert len({round(t, 3) for t in firsts[0].values()}) == 50
    assert all(0 <= t < 30 for t in firsts[0].values())
    assert firsts[0] == pytest.approx(firsts[1])
    assert max(Counter(int(t // 3) for t in firsts[0].values()).values()) < 15  # spread over the interval


@pytest.mark.looptime
async def test_a_failure_is_confirmed_fast_and_recovery_needs_two_successes() -> None:
    fake = FakeProbe()
    fake.fail("a", 100, 300)
    async with Scheduler(fake, confirm_interval=2, clock=loop_clock(EPOCH, 0)) as scheduler:
        scheduler.add("a", spec("a", interval=30, threshold=3))
        await asyncio.sleep(400)
        emitted = await drain(scheduler)
    phase = jitter("a") * 30
    first_fail = next(phase + 30 * n for n in range(14) if phase + 30 * n >= 100)
    confirmed = first_fail + 4
    first_ok = next(confirmed + 30 * n for n in range(14) if confirmed + 30 * n >= 300)
    assert fake.times("a") == pytest.approx(
        [phase + 30 * n for n in range(4) if phase + 30 * n < first_fail]  # up: the normal interval
        + [first_fail, first_fail + 2, confirmed]  # confirmation re-probes 2 s apart
        + [confirmed + 30 * n for n in range(1, 14) if confirmed + 30 * n < first_ok]  # down: the interval again
        + [first_ok, first_ok + 2]  # the recovery confirmed 2 s later
        + [first_ok + 2 + 30 * n for n in range(1, 5) if first_ok + 2 + 30 * n < 400],
        abs=1e-5,
    )
    assert summary(emitted) == [("Unknown", "Up", None), ("Up", "Down", "opened"), ("Down", "Up", "recovered")]
    opened, recovered = emitted[1], emitted[2]
    assert opened.started_at == pytest.approx(at(first_fail), abs=datetime.timedelta(milliseconds=1))
    assert opened.detected_at == pytest.approx(at(first_fail + 4), abs=datetime.timedelta(milliseconds=1))
    assert recovered.recovered_at == pytest.approx(at(first_ok), abs=datetime.timedelta(milliseconds=1))
    assert recovered.duration_seconds == pytest.approx(first_ok - first_fail, abs=1e-3)


@pytest.mark.looptime
async def test_when_the_controls_fail_too_targets_are_unknown_not_down() -> None:
    fake = FakeProbe()
    for key in ("ctl", "a", "b"):
        fake.fail(key, 100, 300)  # the prober's network is cut: everything fails
    async with Scheduler(fake, confirm_interval=2, clock=loop_clock(EPOCH, 0)) as scheduler:
        scheduler.add("ctl", spec("ctl", interval=10), control=True)
        scheduler.add("a", spec("a", interval=30))
        scheduler.add("b", spec("b", interval=30))
        await asyncio.sleep(200)
        assert scheduler.impaired
        assert (scheduler.machine("a").state, scheduler.machine("b").state) == ("Unknown", "Unknown")
        await asyncio.sleep(200)
        assert not scheduler.impaired
        emitted = await drain(scheduler)
    for key in ("a", "b"):
        assert summary(emitted, key) == [("Unknown", "Up", None), ("Up", "Unknown", None), ("Unknown", "Up", None)]
        back = next(t for t in emitted if t.key == key and t.previous == "Unknown" and t.at > at(300))
        assert back.at < at(310 + 2 + 1)  # re-evaluated within the confirmation interval of the controls passing
    assert not any(t.incident == "opened" for t in emitted if t.key in ("a", "b"))
    assert ("Up", "Down", "opened") in summary(emitted, "ctl")  # the control itself is still monitored


@pytest.mark.looptime
async def test_a_target_failing_alone_is_down_when_the_controls_pass() -> None:
    fake = FakeProbe()
    fake.fail("a", 100)
    async with Scheduler(fake, clock=loop_clock(EPOCH, 0)) as scheduler:
        scheduler.add("ctl", spec("ctl", interval=60), control=True)
        scheduler.add("a", spec("a", interval=30))
        scheduler.add("b", spec("b", interval=30))
        await asyncio.sleep(200)
        emitted = await drain(scheduler)
    assert summary(emitted, "a") == [("Unknown", "Up", None), ("Up", "Down", "opened")]
    assert summary(emitted, "b") == [("Unknown", "Up", None)]
    confirmed = next(t.detected_at for t in emitted if t.incident == "opened")
    assert confirmed is not None
    control_checks = [t for t in fake.times("ctl") if at(t) <= confirmed]
    assert control_checks[-1] == pytest.approx((confirmed - EPOCH).total_seconds(), abs=1e-3)  # checked afresh


@pytest.mark.looptime
async def test_targets_that_answer_stay_up_while_the_controls_fail() -> None:
    fake = FakeProbe()
    fake.fail("ctl", 100)
    async with Scheduler(fake, clock=loop_clock(EPOCH, 0)) as scheduler:
        scheduler.add("ctl", spec("ctl", interval=10), control=True)
        scheduler.add("a", spec("a", interval=30))
        await asyncio.sleep(200)
        assert scheduler.impaired
        assert scheduler.machine("a").state == "Up"
        fake.fail("a", 200)
        await asyncio.sleep(100)
        assert scheduler.machine("a").state == "Unknown"  # failing while impaired: not Down
        scheduler.remove("ctl")  # without controls, nothing can impair the prober
        assert not scheduler.impaired
        await asyncio.sleep(100)
        emitted = await drain(scheduler)
    assert summary(emitted, "a") == [("Unknown", "Up", None), ("Up", "Unknown", None), ("Unknown", "Down", "opened")]


@pytest.mark.looptime
async def test_targets_are_added_updated_and_removed_at_runtime() -> None:
    fake = FakeProbe()
    async with Scheduler(fake) as scheduler:
        scheduler.add("a", spec("a", interval=10))
        await asyncio.sleep(100)
        assert len(fake.times("a")) == 10
        scheduler.add("a", spec("a", interval=50))  # slower now
        scheduler.add("b", spec("b", interval=10))
        await asyncio.sleep(100)
        assert 2 <= len(fake.times("a")) - 10 <= 3
        assert len(fake.times("b")) == 10
        assert scheduler.machine("a").policy.interval == 50 and scheduler.machine("a").state == "Up"
        scheduler.remove("b")
        scheduler.remove("nothing")
        before = len(fake.times("b"))
        await asyncio.sleep(100)
        assert len(fake.times("b")) == before
        assert "b" not in scheduler and list(scheduler.keys()) == ["a"] and len(scheduler) == 1


@pytest.mark.looptime
async def test_concurrency_is_bounded() -> None:
    fake = FakeProbe()
    keys = [f"t{n}" for n in range(20)]
    for key in keys:
        fake.delays[key] = 4
    async with Scheduler(fake, concurrency=3) as scheduler:
        for key in keys:
            scheduler.add(key, spec(key, interval=60, timeout=10))
        await asyncio.sleep(120)
    assert fake.max_running == 3
    assert all(len(fake.times(key)) >= 1 for key in keys)


@pytest.mark.looptime
async def test_changes_and_results_reach_their_handlers_in_order() -> None:
    fake = FakeProbe()
    fake.fail("a", 50)
    received: list[StateChange] = []
    results: Counter[str] = Counter()

    async def on_change(transition: StateChange) -> None:
        await asyncio.sleep(1)  # a slow handler does not slow the probes
        if transition.state == "Up":
            received.append(transition)
            raise RuntimeError("a broken handler does not stop the delivery")
        received.append(transition)

    def on_result(key: str, spec: ProbeSpec, result: ProbeResult) -> None:
        results[key] += 1

    async with Scheduler(fake, on_change=on_change, on_result=on_result) as scheduler:
        scheduler.add("a", spec("a", interval=10))
        await asyncio.sleep(100)
    assert summary(received) == [("Unknown", "Up", None), ("Up", "Down", "opened")]
    assert results["a"] == len(fake.times("a"))


@pytest.mark.looptime
async def test_an_incident_restored_after_a_restart_is_recovered() -> None:
    fake = FakeProbe()
    incident = OpenIncident(at(-900), at(-895), "http_status", "expected status 200, got 503")
    async with Scheduler(fake, clock=loop_clock(EPOCH, 0)) as scheduler:
        scheduler.add("a", spec("a"), incident=incident)
        await asyncio.sleep(60)
        emitted = await drain(scheduler)
    assert summary(emitted) == [("Unknown", "Up", "recovered")]
    assert emitted[0].started_at == at(-900)
    assert emitted[0].duration_seconds == pytest.approx(900 + jitter("a") * 30, abs=1e-3)


@pytest.mark.looptime
async def test_real_probes_of_a_real_target_open_and_close_an_incident() -> None:
    async with HTTPTarget("real") as target:
        prober = Prober()
        clock: Callable[[], datetime.datetime] = loop_clock(EPOCH, 0)
        async with Scheduler(prober.probe, confirm_interval=2, clock=clock) as scheduler:
            scheduler.add("real", ProbeSpec(target.url, interval=10, timeout=2, failure_threshold=3))
            await asyncio.sleep(30)
            target.failing(503)
            await asyncio.sleep(30)
            target.slow(60)
            await asyncio.sleep(30)
            target.healthy()
            await asyncio.sleep(30)
            emitted = await drain(scheduler)
        await prober.close()
    assert summary(emitted) == [("Unknown", "Up", None), ("Up", "Down", "opened"), ("Down", "Up", "recovered")]
    assert emitted[1].failure == "http_status" and emitted[1].message == "expected status 200, got 503"
    assert at(30) <= emitted[1].started_at <= at(40)  # type: ignore[operator]
    assert at(90) <= emitted[2].recovered_at <= at(100)  # type: ignore[operator]


@pytest.mark.looptime
async def test_with_every_default_a_failure_that_answers_is_confirmed_within_three_seconds() -> None:
    """The defaults behind issue 6's goal: the CRD's probe (every 2 s, threshold 3) and the operator's confirmation
    (0.5 s). A failure starting at any phase of the probe cycle is confirmed at most 2 + 2 × 0.5 s after it began."""
    defaults = ProbeSpec.from_probe("http://x.test", Probe())
    assert (defaults.interval, defaults.timeout, defaults.failure_threshold) == (2.0, 2.0, 3)
    assert Policy().confirm_interval == OperatorConfig().confirm_interval == CONFIRM_INTERVAL == 0.5
    assert Policy().interval == defaults.interval and Policy().failure_threshold == defaults.failure_threshold
    fake = FakeProbe()
    keys = [f"t{n}" for n in range(40)]
    failed_at = {key: 100 + n * 0.05 for n, key in enumerate(keys)}  # 0 to 2 s into the cycle: every phase
    for key in keys:
        fake.fail(key, failed_at[key])
    async with Scheduler(fake, clock=loop_clock(EPOCH, 0)) as scheduler:
        for key in keys:
            scheduler.add(key, dataclasses.replace(defaults, url=f"http://{key}.test"))
        await asyncio.sleep(110)
        emitted = [change for change in await drain(scheduler) if change.incident == "opened"]
    assert sorted(change.key for change in emitted) == sorted(keys)
    for change in emitted:
        assert change.started_at is not None and change.detected_at is not None
        waited = (change.started_at - at(failed_at[change.key])).total_seconds()
        confirming = (change.detected_at - change.started_at).total_seconds()
        assert 0 <= waited < defaults.interval, change.key
        assert confirming == pytest.approx(2 * CONFIRM_INTERVAL, abs=1e-3), change.key
        assert waited + confirming <= defaults.interval + 2 * CONFIRM_INTERVAL


@pytest.mark.looptime
async def test_a_shorter_interval_wakes_a_target_waiting_for_its_old_slot() -> None:
    fake = FakeProbe()
    async with Scheduler(fake) as scheduler:
        scheduler.add("a", spec("a", interval=3600))
        await asyncio.sleep(1)
        probed = len(fake.times("a"))
        scheduler.add("a", spec("a", interval=10))  # the task waits for a slot up to an hour away: woken
        await asyncio.sleep(30)
        assert len(fake.times("a")) - probed >= 2
        assert all(b - a == pytest.approx(10, abs=1e-5) for a, b in itertools.pairwise(fake.times("a")[probed:]))
