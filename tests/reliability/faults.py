"""Random API faults injected into the embedded API server while workflows run (issue 7, item 2).

Every ``interval`` (a seeded random delay) one fault, chosen with weights:

=============  =================================================================================
``409``        the next status write of a DigitalObject answers 409 Conflict
``429``        the next 1-2 requests for DigitalObjects answer 429 with ``Retry-After: 1``
``500``        the next 1-3 requests of a random method (GET, PATCH, POST), any resource, answer 500
``503``        the next request of any kind answers 503
``drop``       every open watch stream ends (half of the time abruptly, mid-stream)
``410``        the next watch request gets a 410 Gone ``ERROR`` event; the open watches are dropped
               so that one comes at once
``watch500``   the next watch request gets a 500 InternalError ``ERROR`` event (HTTP 200, as a real
               server sends ``etcdserver: request timed out``); the open watches are dropped likewise
=============  =================================================================================

Faults are answered before anything changes in the store, as a real API server's admission and
rate limits do. The operator is the only HTTP client of the server (the drivers write in-process).
"""

from __future__ import annotations

import asyncio
import collections
import random

from tests.reliability.harness import RecordingAPIServer

KINDS = ("409", "429", "500", "503", "drop", "410", "watch500")
WEIGHTS = (3, 2, 3, 1, 2, 2, 2)


class FaultInjector:
    def __init__(self, api: RecordingAPIServer, seed: int, mean_interval: float = 0.25) -> None:
        self.api = api
        self.rng = random.Random(seed)
        self.mean_interval = mean_interval
        self.planned: collections.Counter[str] = collections.Counter()

    def inject_one(self) -> str:
        kind = self.rng.choices(KINDS, WEIGHTS)[0]
        faults = self.api.faults
        if kind == "409":
            faults.inject(409, method="PATCH", resource="digitalobjects", subresource="status")
        elif kind == "429":
            faults.inject(429, resource="digitalobjects", retry_after=1, times=self.rng.randint(1, 2))
        elif kind == "500":
            faults.inject(500, method=self.rng.choice(["GET", "PATCH", "POST"]), times=self.rng.randint(1, 3))
        elif kind == "503":
            faults.inject(503)
        elif kind == "drop":
            self.api.drop_watches(abrupt=self.rng.random() < 0.5)
        elif kind == "410":
            faults.expire_watches()
            self.api.drop_watches(abrupt=False)
        else:
            faults.error_watches(500)
            self.api.drop_watches(abrupt=False)
        self.planned[kind] += 1
        return kind

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            delay = self.rng.uniform(0.2, 1.8) * self.mean_interval
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                self.inject_one()

    def answered(self) -> dict[str, int]:
        """How many requests were answered with an injected status, by status (``watch500``: an ERROR event)."""
        counts = collections.Counter(f"watch{item.status}" if item.fault.event else str(item.status)
                                     for item in self.api.faults.injected)
        return dict(sorted(counts.items()))
