"""The kill loop: SIGKILL the operator process at random and at targeted points, restart it, N times.

Kill points (a seeded RNG picks the order: every available point once, shuffled, then at random):

====================  ==============================================================================
``startup``           a random delay (0-1.2 s) after the process was started, ready or not
``random``            a random delay (0.05-1.5 s) after it became ready
``spec-change``       right after the API server stored a driver's spec change of a DigitalObject or an
                      AccessGrant (approve, agreement, a termination request)
``phase-write``       right after the API server stored the operator's status write that changes a
                      phase (of a DigitalObject, an AccessGrant or an Incident); the operator never sees
                      the response
``outbox-recorded``   right after the status write that records a new outbox entry, before any send
``smtp-connect``      when the operator connects to the SMTP receiver: right before a delivery
``smtp-data``         after the receiver kept the message, before it answers 250: mid-delivery (the
                      operator never learns it arrived and must re-send it with the same key)
``delivery-marked``   right after the status write that marks an entry Delivered
``token-secret``      right after the API server stored (or deleted) a grant's token Secret, before the
                      operator wrote ``status.tokenExpiresAt`` (or saw the deletion answered)
``incident-created``  right after the API server stored a new Incident, before the object's
                      ``status.openIncident`` names it
``webhook-post``      the webhook receiver kept a signed request, before it answers 200: mid-delivery
====================  ==============================================================================

The API-server points need the embedded server (its store calls us synchronously on each commit, so
the kill lands before the response is written); against a real server only the others are used. A
targeted point that does not occur within ``arm_timeout`` falls back to a random kill, and is
reported as such (``fallbacks``), not as covered.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import random
from collections.abc import Callable
from typing import Any

from tests.reliability.harness import Harness
from tksh.access.keyrotation import GRANT_UID_LABEL
from tksh.sandbox.apiserver.store import WatchEvent

STORE_POINTS = ("spec-change", "phase-write", "outbox-recorded", "delivery-marked", "token-secret",
                "incident-created")
SMTP_POINTS = ("smtp-connect", "smtp-data")
HOOK_POINTS = ("webhook-post",)
TIMED_POINTS = ("startup", "random")
DIGITAL_OBJECTS = ("tksh.kz", "digitalobjects")
GRANTS = ("tksh.kz", "accessgrants")
INCIDENTS = ("tksh.kz", "incidents")
SECRETS = ("", "secrets")


def store_points(event: WatchEvent) -> set[str]:
    """The kill points a committed write (of a DigitalObject, AccessGrant, Incident or token Secret) is."""
    if event.key == SECRETS:
        labels = (event.obj.get("metadata") or {}).get("labels") or {}
        return {"token-secret"} if GRANT_UID_LABEL in labels and event.type in ("ADDED", "DELETED") else set()
    if event.key == INCIDENTS and event.type == "ADDED":
        return {"incident-created"}
    if event.key not in (DIGITAL_OBJECTS, GRANTS, INCIDENTS) or event.type != "MODIFIED" or event.old is None:
        return set()
    old, new = event.old, event.obj
    points: set[str] = set()
    if old["metadata"].get("generation") != new["metadata"].get("generation"):
        points.add("spec-change")
    before, after = old.get("status") or {}, new.get("status") or {}
    if before == after:
        return points
    if before.get("phase") != after.get("phase"):
        points.add("phase-write")
    old_entries = {e["id"]: e for e in before.get("outbox") or ()}
    for entry in after.get("outbox") or ():
        previous = old_entries.get(entry["id"])
        if previous is None:
            points.add("outbox-recorded")
        elif entry.get("state") == "Delivered" and previous.get("state") != "Delivered":
            points.add("delivery-marked")
    return points


@dataclasses.dataclass
class KillReport:
    kills: int = 0
    covered: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    fallbacks: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    restarts: int = 0
    crashes: list[str] = dataclasses.field(default_factory=list)
    """Exits that were not our SIGKILL (the exit code and the log's tail): must stay empty."""

    def figures(self) -> dict[str, Any]:
        return {"kills": self.kills, "restarts": self.restarts, "crashes": len(self.crashes),
                "kill_points": dict(sorted(self.covered.items())), "fallbacks": dict(sorted(self.fallbacks.items()))}


class KillLoop:
    def __init__(self, harness: Harness, kills: int, seed: int, arm_timeout: float = 10.0,
                 on_kill: Callable[[int], None] | None = None) -> None:
        self.h = harness
        self.target = kills
        self.rng = random.Random(seed)
        self.arm_timeout = arm_timeout
        self.on_kill = on_kill
        self.report = KillReport()
        self.armed: str | None = None
        self.fired = asyncio.Event()
        self.available = [*TIMED_POINTS, *SMTP_POINTS, *HOOK_POINTS,
                          *(STORE_POINTS if harness.api is not None else ())]
        if harness.api is not None:
            harness.api.store.subscribe(self._on_commit)

    def _plan(self) -> list[str]:
        first = list(self.available)
        self.rng.shuffle(first)
        rest = [self.rng.choice(self.available) for _ in range(max(self.target - len(first), 0))]
        return (first + rest)[: self.target]

    # --- hooks (synchronous: the kill lands before the API server or SMTP receiver answers) ---------

    def _fire(self, point: str) -> None:
        if self.armed == point and self.h.operator.kill():
            self.armed = None
            self.fired.set()

    def _on_commit(self, event: WatchEvent) -> None:
        if self.armed in STORE_POINTS and self.armed in store_points(event):
            self._fire(self.armed)

    def _arm_receiver(self, point: str) -> None:
        if point == "smtp-connect":
            self.h.mail.on_connect = lambda: self._fire("smtp-connect")
        elif point == "smtp-data":
            self.h.mail.on_data = lambda: self._fire("smtp-data")
        else:
            self.h.hooks.on_request = lambda: self._fire("webhook-post")

    def _disarm(self) -> None:
        self.armed = None
        self.h.mail.on_connect = self.h.mail.on_data = None
        self.h.hooks.on_request = None

    # --- the loop ----------------------------------------------------------------------------------

    async def run(self) -> KillReport:
        """Kill and restart ``kills`` times; the operator is left running and ready."""
        operator = self.h.operator
        if not operator.running:
            await operator.start()
        for point in self._plan():
            if point == "startup":
                await asyncio.sleep(self.rng.uniform(0.0, 1.2))
                self._kill(point)
            else:
                await operator.wait_ready()
                if point == "random":
                    await asyncio.sleep(self.rng.uniform(0.05, 1.5))
                    self._kill(point)
                else:
                    await self._targeted(point)
            code = await operator.wait_exit()
            if code != -9:
                self.report.crashes.append(f"exit {code} before the kill at {point}: {operator.tail()}")
            self.report.kills += 1
            if self.on_kill is not None:
                self.on_kill(self.report.kills)
            await asyncio.sleep(self.rng.uniform(0.0, 0.3))  # the operator stays down a moment
            await operator.start()
            self.report.restarts += 1
        await operator.wait_ready()
        return self.report

    def _kill(self, point: str, counter: collections.Counter[str] | None = None) -> None:
        if self.h.operator.kill():
            (self.report.covered if counter is None else counter)[point] += 1

    async def _targeted(self, point: str) -> None:
        self.fired.clear()
        self.armed = point
        if point in SMTP_POINTS or point in HOOK_POINTS:
            self._arm_receiver(point)
        try:
            await asyncio.wait_for(self.fired.wait(), self.arm_timeout)
            self.report.covered[point] += 1
        except TimeoutError:
            self._disarm()
            self._kill(point, self.report.fallbacks)
        finally:
            self._disarm()
