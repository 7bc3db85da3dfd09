"""One scheduler probing many targets concurrently, each on its own cadence, feeding their state machines.

* Every target has its own task, so a slow target never delays another; a probe runs under the
  target's timeout (plus ``grace``, in case the probe function overruns its own) and inside a
  semaphore bounding how many probes run at once.
* Start times are spread: a target's probes are phase-locked to the loop's clock at a fixed offset
  in ``[0, interval)`` derived from a hash of its key, so the same target probes at the same phase
  after a restart and many targets never fire together.
* After a failure (or a first success during an outage) the target is re-probed after
  ``confirm_interval`` seconds rather than a whole interval (see :mod:`tksh.monitoring.machine`).
* Control targets (the central system's own components, a known-good local target) tell whether
  the prober itself works. Before a failure may open an incident, the controls are probed afresh;
  while at least ``control_quorum`` of them (default: all) fail (by their latest probe, fresh or
  scheduled), the prober is *impaired*: a target whose probe fails becomes ``Unknown``, never
  ``Down``, and no incident is opened (a target that still answers stays ``Up``). When the controls
  pass again, the ``Unknown`` targets are re-probed within ``confirm_interval``. Control targets are
  themselves monitored as usual (a central component's own outage is reported).
* State changes are delivered in order: to ``on_change`` (sync or async, called one at a time)
  when given, else left in :attr:`Scheduler.changes` for the caller to consume. Every probe
  result also goes to ``on_result`` (sync; for metrics).

Time: sleeping uses the event loop's clock (so ``looptime`` fast-forwards it in tests); the
timestamps in observations and state changes come from ``clock`` (wall time by default; tests use
:func:`loop_clock`, a wall clock that follows the loop's time).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator

from tksh.aio import Service
from tksh.monitoring.machine import (
    CONFIRM_INTERVAL,
    RECOVERY_THRESHOLD,
    Machine,
    Observation,
    OpenIncident,
    Policy,
    StateChange,
)
from tksh.monitoring.probes import ProbeResult, ProbeSpec

__all__ = ["Clock", "ProbeFn", "Scheduler", "jitter", "loop_clock", "utc_now"]

logger = logging.getLogger(__name__)

ProbeFn = Callable[[ProbeSpec], Awaitable[ProbeResult]]
ChangeHandler = Callable[[StateChange], Awaitable[None] | None]
ResultHandler = Callable[[str, ProbeSpec, ProbeResult], None]
Clock = Callable[[], datetime.datetime]


def utc_now() -> datetime.datetime:
    """The wall clock, aware, in UTC."""
    return datetime.datetime.now(datetime.UTC)


def loop_clock(start: datetime.datetime | None = None, origin: float | None = None) -> Clock:
    """A wall clock that moves with the running loop's time: ``start`` at loop time ``origin``.

    ``start`` defaults to the wall time and ``origin`` to the loop time of the first call. Under
    ``looptime`` (whose loop time starts at 0) ``loop_clock(EPOCH, 0)`` makes every timestamp
    ``EPOCH`` + the fake time, so tests assert on exact timestamps.
    """
    anchor: list[tuple[float, datetime.datetime]] = []

    def now() -> datetime.datetime:
        loop_now = asyncio.get_running_loop().time()
        if not anchor:
            anchor.append((loop_now if origin is None else origin, start or utc_now()))
        loop_then, wall_then = anchor[0]
        return wall_then + datetime.timedelta(seconds=loop_now - loop_then)

    return now


def jitter(key: str) -> float:
    """A target's fixed phase in ``[0, 1)``: the same key always gets the same offset."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclasses.dataclass(eq=False)
class _Entry:
    key: str
    spec: ProbeSpec
    control: bool
    machine: Machine
    due: float | None = None  # loop time of the next probe; None: the next phase-locked slot
    waiter: asyncio.Future[None] | None = None  # set while the task waits for ``due``
    task: asyncio.Task[None] | None = None
    last: ProbeResult | None = None

    def wake(self) -> None:
        """``due`` moved: the waiting task re-reads it (a task busy probing reads it next anyway)."""
        _release(self.waiter)


def _release(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class Scheduler(Service):
    """Probes targets added with :meth:`add` until :meth:`close`; see the module's documentation."""

    def __init__(
        self,
        probe: ProbeFn,
        *,
        on_change: ChangeHandler | None = None,
        on_result: ResultHandler | None = None,
        concurrency: int = 512,
        confirm_interval: float = CONFIRM_INTERVAL,
        recovery_threshold: int = RECOVERY_THRESHOLD,
        control_quorum: int | None = None,
        clock: Clock = utc_now,
        grace: float = 1.0,
    ) -> None:
        if concurrency < 1 or confirm_interval <= 0 or recovery_threshold < 1 or grace < 0:
            raise ValueError("concurrency, confirm_interval and recovery_threshold must be positive")
        if control_quorum is not None and control_quorum < 1:
            raise ValueError("control_quorum must be at least 1")
        self._probe = probe
        self._on_change = on_change
        self._on_result = on_result
        self._semaphore = asyncio.Semaphore(concurrency)
        self._confirm_interval = confirm_interval
        self._recovery_threshold = recovery_threshold
        self._control_quorum = control_quorum
        self._clock = clock
        self._grace = grace
        self._entries: dict[str, _Entry] = {}
        self._control_ok: dict[str, bool] = {}
        self._impaired = False
        self._controls_checked_at: float | None = None
        self._control_check: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._running = False
        self.changes: asyncio.Queue[StateChange] = asyncio.Queue()
        """Every state change, in order; drained by ``on_change`` when one is given."""

    # --- targets ---------------------------------------------------------------------------------

    def add(self, key: str, spec: ProbeSpec, *, control: bool = False, incident: OpenIncident | None = None) -> None:
        """Probe ``spec`` under ``key``, or update the target's spec (its state is kept).

        ``incident`` restores an outage still open (after a restart): the target starts ``Unknown``
        and its next probes either recover that incident or mark it ``Down`` again, never a second one.
        """
        policy = self._policy(spec)
        entry = self._entries.get(key)
        if entry is None:
            machine = Machine(key, policy, incident=incident)
            if self._impaired and not control:
                machine = machine.impair()
            entry = self._entries[key] = _Entry(key, spec, control, machine)
            if self._running:
                entry.task = asyncio.create_task(self._run(entry), name=f"probe {key}")
        else:
            rescheduled = spec.interval != entry.spec.interval
            entry.spec, entry.machine = spec, entry.machine.with_policy(policy)
            if control != entry.control:
                entry.control = control
                self._control_ok.pop(key, None)
                if control and entry.machine.impaired:
                    entry.machine = entry.machine.restore()
                self._update_impairment()
            if rescheduled:
                entry.due = None
                entry.wake()

    def remove(self, key: str) -> None:
        """Stop probing ``key`` and forget its state (no-op when unknown)."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        if entry.task is not None:
            entry.task.cancel()
        if entry.control:
            self._control_ok.pop(key, None)
            self._update_impairment()

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> Iterator[str]:
        return iter(list(self._entries))

    def machine(self, key: str) -> Machine:
        """The target's current state (``Availability.state``/``since``, the open incident)."""
        return self._entries[key].machine

    def last_result(self, key: str) -> ProbeResult | None:
        """The target's latest scheduled probe result (``None`` before the first)."""
        return self._entries[key].last

    @property
    def impaired(self) -> bool:
        """Whether the controls fail, so that failing targets are ``Unknown`` rather than ``Down``."""
        return self._impaired

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start probing every target added so far (and those added later)."""
        if self._running:
            return
        self._running = True
        for entry in self._entries.values():
            entry.task = asyncio.create_task(self._run(entry), name=f"probe {entry.key}")
        if self._on_change is not None:
            self._dispatcher = asyncio.create_task(self._dispatch(self._on_change), name="probe state changes")

    async def close(self, *, drain: bool = True) -> None:
        """Stop probing; with ``drain``, first let ``on_change`` take the changes already emitted."""
        self._running = False
        tasks = [entry.task for entry in self._entries.values() if entry.task is not None]
        if self._control_check is not None:
            tasks.append(self._control_check)
        for task in tasks:
            task.cancel()
        for entry in self._entries.values():
            entry.task = None
        await asyncio.gather(*tasks, return_exceptions=True)
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            if drain:
                await self.changes.join()
            dispatcher.cancel()
            await asyncio.gather(dispatcher, return_exceptions=True)

    # --- probing ---------------------------------------------------------------------------------

    def _policy(self, spec: ProbeSpec) -> Policy:
        return Policy(
            failure_threshold=spec.failure_threshold,
            recovery_threshold=self._recovery_threshold,
            interval=spec.interval,
            confirm_interval=self._confirm_interval,
        )

    async def _run(self, entry: _Entry) -> None:
        """The target's loop: wait for its slot (or a wake-up that moves it), probe, plan the next."""
        loop = asyncio.get_running_loop()
        while True:
            if entry.due is None:
                interval, now = entry.spec.interval, loop.time()
                entry.due = now + (jitter(entry.key) * interval - now) % interval
            if entry.due > loop.time():
                # A bare future and one timer: the cheapest wait asyncio has (no timeout context, no
                # cancellation at every slot), which matters at thousands of probes per second.
                waiter = entry.waiter = loop.create_future()
                timer = loop.call_at(entry.due, _release, waiter)
                try:
                    await waiter
                finally:
                    timer.cancel()
                    entry.waiter = None
                continue
            planned = entry.due
            await self._probe_once(entry)
            entry.due = max(planned + entry.machine.next_delay, loop.time())

    async def _guarded_probe(self, spec: ProbeSpec) -> ProbeResult:
        """The probe function, held to the spec's timeout; an error becomes an ``unknown`` failure."""
        try:
            async with asyncio.timeout(spec.timeout + self._grace):
                return await self._probe(spec)
        except TimeoutError:
            return ProbeResult(ok=False, failure="timeout", message=f"no answer within {spec.timeout:g} s")
        except Exception as exc:
            logger.exception("probe function failed")
            return ProbeResult(ok=False, failure="unknown", message=f"unexpected error: {type(exc).__name__}")

    async def _probe_once(self, entry: _Entry) -> None:
        spec = entry.spec
        async with self._semaphore:
            started_at = self._clock()
            result = await self._guarded_probe(spec)
            finished_at = self._clock()
        entry.last = result
        self._notify_result(entry.key, spec, result)
        observation = Observation.of(result, started_at, finished_at)
        if entry.control:
            self._control_ok[entry.key] = result.ok
            self._update_impairment()
        elif entry.machine.would_confirm(observation) and any(e.control for e in self._entries.values()):
            await self._check_controls()
        entry.machine, changes = entry.machine.observe(observation)  # re-read: the check may impair it
        self._emit(changes)

    def _notify_result(self, key: str, spec: ProbeSpec, result: ProbeResult) -> None:
        if self._on_result is None:
            return
        try:
            self._on_result(key, spec, result)
        except Exception:
            logger.exception("on_result failed")

    # --- impairment ------------------------------------------------------------------------------

    async def _check_controls(self) -> None:
        """Probe the controls now (one check at a time, reused for ``confirm_interval``)."""
        task = self._control_check
        if task is None or task.done():
            checked_at = self._controls_checked_at
            if checked_at is not None and asyncio.get_running_loop().time() - checked_at < self._confirm_interval:
                return
            task = self._control_check = asyncio.create_task(self._probe_controls(), name="probe controls")
        await asyncio.shield(task)

    async def _probe_controls(self) -> None:
        controls = [entry for entry in self._entries.values() if entry.control]
        results = await asyncio.gather(*(self._guarded_probe(entry.spec) for entry in controls))
        for entry, result in zip(controls, results, strict=True):
            self._notify_result(entry.key, entry.spec, result)
            if self._entries.get(entry.key) is entry and entry.control:
                self._control_ok[entry.key] = result.ok
        self._controls_checked_at = asyncio.get_running_loop().time()
        self._update_impairment()

    def _update_impairment(self) -> None:
        """Impaired while enough controls fail; on a change, every other target follows."""
        controls = [entry.key for entry in self._entries.values() if entry.control]
        failing = sum(1 for key in controls if self._control_ok.get(key) is False)
        quorum = min(self._control_quorum or len(controls), len(controls))
        impaired = bool(controls) and failing >= quorum
        if impaired == self._impaired:
            return
        self._impaired = impaired
        logger.warning("prober %s", "impaired: failing targets are Unknown" if impaired else "recovered")
        for entry in self._entries.values():
            if entry.control:
                continue
            if impaired:
                entry.machine = entry.machine.impair()
            else:
                entry.machine = entry.machine.restore()
                if self._running and entry.machine.state == "Unknown":
                    entry.due = asyncio.get_running_loop().time() + jitter(entry.key) * self._confirm_interval
                    entry.wake()

    # --- state changes ---------------------------------------------------------------------------

    def _emit(self, changes: list[StateChange]) -> None:
        for change in changes:
            self.changes.put_nowait(change)

    async def _dispatch(self, handler: ChangeHandler) -> None:
        while True:
            change = await self.changes.get()
            try:
                outcome = handler(change)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("on_change failed for %s", change.key)
            finally:
                self.changes.task_done()
