"""The operator's one shared scheduler, started with the first monitored target and closed with the last.

:class:`MonitorService` owns the :class:`~tksh.monitoring.scheduler.Scheduler` and its
:class:`~tksh.monitoring.probes.Prober`. Each monitored object is *attached* by the task that watches
it (the kopf daemon of the object, in the operator) and gets a queue of its own state changes; it is
*detached* when that task ends. The scheduler runs only while at least one object is attached: kopf
stops every daemon when the operator is paused (a standby peer) or exits, so probing stops with them,
and the next active peer attaches the objects again.

Control targets: every ``CentralComponent`` is attached as a control (``control=True``), and the
operator's configured control URLs are added with the first object. While all controls fail, the
prober is impaired: failing digital objects become ``Unknown``, never ``Down``.

It also carries the hand-over of a recovery from the target's task to the incident's task (the
incident's single writer): :meth:`recover` records it and wakes the incident; :meth:`recovery` reads
it; :meth:`forget_recovery` drops it once stored. No Kubernetes here.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Sequence

from tksh.monitoring.machine import CONFIRM_INTERVAL, RECOVERY_THRESHOLD, OpenIncident, StateChange
from tksh.monitoring.probes import Prober, ProbeResult, ProbeSpec
from tksh.monitoring.scheduler import Clock, Scheduler, utc_now

__all__ = ["CONTROL_PREFIX", "MonitorService"]

logger = logging.getLogger(__name__)
CONTROL_PREFIX = "control/"


class MonitorService:
    """See the module description."""

    def __init__(
        self,
        *,
        prober: Callable[[], Prober] = Prober,
        concurrency: int = 512,
        confirm_interval: float = CONFIRM_INTERVAL,
        recovery_threshold: int = RECOVERY_THRESHOLD,
        clock: Clock = utc_now,
        controls: Sequence[ProbeSpec] = (),
        on_result: Callable[[str, ProbeSpec, ProbeResult], None] | None = None,
    ) -> None:
        self._make_prober = prober
        self._concurrency = concurrency
        self._confirm_interval = confirm_interval
        self._recovery_threshold = recovery_threshold
        self.clock = clock
        self._controls = list(controls)
        self._on_result = on_result
        self._scheduler: Scheduler | None = None
        self._prober: Prober | None = None
        self._queues: dict[str, asyncio.Queue[StateChange]] = {}
        self._lock = asyncio.Lock()
        self._recoveries: dict[str, datetime.datetime] = {}
        self._wakes: dict[str, asyncio.Event] = {}

    @property
    def running(self) -> bool:
        return self._scheduler is not None

    @property
    def impaired(self) -> bool:
        return self._scheduler is not None and self._scheduler.impaired

    def __len__(self) -> int:
        return len(self._queues)

    async def attach(
        self, key: str, spec: ProbeSpec, *, control: bool = False, incident: OpenIncident | None = None
    ) -> asyncio.Queue[StateChange]:
        """Start probing ``key`` (the scheduler too, if it was idle); its state changes arrive in the queue."""
        async with self._lock:
            scheduler = self._scheduler
            if scheduler is None:
                self._prober = self._make_prober()
                scheduler = Scheduler(
                    self._prober.probe, on_change=self._route, on_result=self._on_result,
                    concurrency=self._concurrency, confirm_interval=self._confirm_interval,
                    recovery_threshold=self._recovery_threshold, clock=self.clock,
                )
                for index, control_spec in enumerate(self._controls):
                    scheduler.add(f"{CONTROL_PREFIX}{index}", control_spec, control=True)
                await scheduler.start()
                self._scheduler = scheduler
                logger.info("monitoring started")
            queue = self._queues.setdefault(key, asyncio.Queue())
            scheduler.add(key, spec, control=control, incident=incident)
            return queue

    def update(self, key: str, spec: ProbeSpec, *, control: bool = False) -> None:
        """New probe settings for an attached target (its state is kept)."""
        if self._scheduler is not None and key in self._queues:
            self._scheduler.add(key, spec, control=control)

    async def detach(self, key: str) -> None:
        """Stop probing ``key``; with the last target gone, stop the scheduler and the prober."""
        async with self._lock:
            self._queues.pop(key, None)
            scheduler = self._scheduler
            if scheduler is None:
                return
            scheduler.remove(key)
            if self._queues:
                return
            self._scheduler, prober, self._prober = None, self._prober, None
            await scheduler.close(drain=False)
            if prober is not None:
                await prober.close()
            logger.info("monitoring stopped: no target is attached")

    async def close(self) -> None:
        for key in list(self._queues):
            await self.detach(key)

    def _route(self, change: StateChange) -> None:
        queue = self._queues.get(change.key)
        if queue is not None:
            queue.put_nowait(change)
        elif change.key.startswith(CONTROL_PREFIX):
            logger.warning("control target %s is %s", change.key, change.state)

    # --- the hand-over of recoveries to the incidents' tasks ----------------------------------------

    def wake(self, incident: str) -> asyncio.Event:
        """The event that wakes the task of ``incident`` (``namespace/name``)."""
        return self._wakes.setdefault(incident, asyncio.Event())

    def recover(self, incident: str, recovered_at: datetime.datetime) -> None:
        """The target of ``incident`` is up again since ``recovered_at``."""
        self._recoveries[incident] = recovered_at
        self.wake(incident).set()

    def recovery(self, incident: str) -> datetime.datetime | None:
        return self._recoveries.get(incident)

    def forget(self, incident: str) -> None:
        """The incident's task stored the recovery (or ended): drop what was handed over."""
        self._recoveries.pop(incident, None)
        self._wakes.pop(incident, None)
