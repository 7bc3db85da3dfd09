"""A small driver for the lifecycle: applies each plan like the handlers would, and checks idempotency."""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Callable, Mapping
from typing import Any

from tests.unit.registration.data import APPLICATION, DIRECTORY
from tksh.registration.lifecycle import reconcile
from tksh.registration.plan import LifecycleConfig, ObjectRef, Plan, TestResult
from tksh.resources.digitalobject import DigitalObjectStatus

UTC = datetime.UTC
SUBMITTED = datetime.datetime(2026, 7, 21, 5, 0, tzinfo=UTC)  # Tuesday 10:00 in Almaty
REMINDER = datetime.datetime(2026, 7, 26, 19, 0, tzinfo=UTC)  # Monday 27 July 00:00 Almaty: 4th working day
DEADLINE = datetime.datetime(2026, 7, 28, 19, 0, tzinfo=UTC)  # end of Tuesday 28 July in Almaty
ADMIN = "reviews@tksh.example.kz"
CONFIG = LifecycleConfig(administrator_mailbox=ADMIN, test_probes=3)
REF = ObjectRef(uid="0b6f7c1e-uid", name="osi-portal", namespace="housing")
AGREEMENT = {"number": "ЦЖ-2026/0042", "signedAt": "2026-07-22T05:00:00Z", "validUntil": "2027-07-22T00:00:00Z"}
AGREEMENT_END = datetime.datetime(2027, 7, 22, 0, 0, tzinfo=UTC)
PERSONAL = ("140540001231", "board@dostyk12", "Достық", "reviews@tksh", "+77011234567", "Иванов")


def approve(spec: dict[str, Any]) -> None:
    spec["review"] = {"decision": "Approved", "reviewer": "Иванов А.", "decidedAt": "2026-07-23T06:00:00Z"}


def sign(spec: dict[str, Any]) -> None:
    spec["agreement"] = dict(AGREEMENT)


def apply(status: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch of the status: ``None`` deletes the field."""
    result = dict(copy.deepcopy(status))
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = copy.deepcopy(value)
    return result


class Sim:
    """One ``DigitalObject`` going through its life, one reconcile at a time."""

    def __init__(
        self,
        spec: Mapping[str, Any] | None = None,
        *,
        now: datetime.datetime = SUBMITTED,
        config: LifecycleConfig = CONFIG,
        directory: Mapping[str, Any] | None = DIRECTORY,
    ) -> None:
        self.spec: dict[str, Any] = copy.deepcopy(dict(spec if spec is not None else APPLICATION))
        self.status: dict[str, Any] = {}
        self.generation = 1
        self.now = now
        self.config = config
        self.directory = directory
        self.plans: list[Plan] = []

    def edit(self, change: Callable[[dict[str, Any]], object]) -> None:
        change(self.spec)
        self.generation += 1

    def run(self, at: datetime.datetime | None = None, test: TestResult | None = None) -> Plan:
        now = at or self.now
        args = (self.spec, self.status, self.generation, self.directory, now, self.config)
        plan = reconcile(*args, ref=REF, test=test)
        # a crash before the status was written: the same run again derives the same keys
        replay = reconcile(*args, ref=REF, test=test)
        assert [n["id"] for n in replay.notifications] == [n["id"] for n in plan.notifications]
        status = apply(self.status, plan.status)
        DigitalObjectStatus.model_validate(status)  # the status schema accepts what we write
        # the status written: re-running adds nothing (no notification, no event, no change)
        again = reconcile(self.spec, status, self.generation, self.directory, now, self.config, ref=REF)
        assert again.notifications == () and again.events == (), (again.notifications, again.events)
        assert apply(status, again.status) == status
        self.check_no_personal_data(plan, status)
        self.status, self.now = status, now
        self.plans.append(plan)
        return plan

    @staticmethod
    def check_no_personal_data(plan: Plan, status: Mapping[str, Any]) -> None:
        visible = json.dumps([status, [e.__dict__ for e in plan.events]], ensure_ascii=False)
        for datum in PERSONAL:
            assert datum not in visible, datum

    @property
    def phase(self) -> str:
        return str(self.status["phase"])

    def condition(self, type: str) -> dict[str, Any]:
        return next(c for c in self.status["conditions"] if c["type"] == type)

    def cond(self, type: str) -> tuple[str, str]:
        found = self.condition(type)
        return found["status"], found["reason"]

    def templates(self) -> list[str]:
        return [e["template"] for e in self.status.get("outbox", [])]


DAY = datetime.timedelta(days=1)
HOUR = datetime.timedelta(hours=1)


def approved() -> Sim:
    """An application approved two days after submission, without an agreement yet."""
    sim = Sim()
    sim.run()
    sim.edit(approve)
    sim.run(SUBMITTED + 2 * DAY)
    return sim


def in_testing() -> Sim:
    """``approved()`` plus an agreement signed: the integration test is due."""
    sim = approved()
    sim.edit(sign)
    sim.run(SUBMITTED + 3 * DAY)
    return sim


def integrated() -> Sim:
    sim = in_testing()
    sim.run(SUBMITTED + 3 * DAY + HOUR, test=TestResult(True, generation=sim.generation))
    assert sim.phase == "Integrated"
    return sim
