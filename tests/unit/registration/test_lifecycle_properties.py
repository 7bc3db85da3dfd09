"""Any sequence of edits, decisions, test results and time: the lifecycle never breaks its promises.

``Sim.run`` checks after every step that the status passes the schema, that re-running on the
written status adds no notification, no Event and no change, that a replay before the write gives
the same keys, and that no personal data is in the status or the Events.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.registration.data import APPLICATION
from tests.unit.registration.sim import AGREEMENT, CONFIG, REF, SUBMITTED, Sim
from tksh.registration.lifecycle import reconcile
from tksh.registration.plan import TestResult

Edit = Callable[[dict[str, Any]], object]
SIGNED = dict(AGREEMENT, signedAt="2026-07-01T05:00:00Z")

EDITS: dict[str, Edit] = {
    "approve": lambda s: s.update(review={"decision": "Approved", "reviewer": "Иванов А."}),
    "reject": lambda s: s.update(review={"decision": "Rejected", "reviewer": "Иванов А.", "reason": "дубликат"}),
    "reject-without-reason": lambda s: s.update(review={"decision": "Rejected", "reviewer": "Иванов А."}),
    "withdraw-review": lambda s: s.pop("review", None),
    "sign": lambda s: s.update(agreement=dict(SIGNED)),
    "sign-short": lambda s: s.update(agreement=dict(SIGNED, validUntil="2026-08-20T00:00:00Z")),
    "sign-later": lambda s: s.update(agreement=dict(SIGNED, validFrom="2026-09-01T00:00:00Z")),
    "withdraw-agreement": lambda s: s.pop("agreement", None),
    "break": lambda s: s.pop("endpoint", None),
    "break-email": lambda s: s["owner"].pop("email", None),
    "fix": lambda s: s.update(endpoint=dict(APPLICATION["endpoint"]), owner=dict(APPLICATION["owner"])),
    "move-endpoint": lambda s: s.update(endpoint={"url": "https://elsewhere.example.kz"}),
}

steps = st.one_of(
    st.tuples(st.just("edit"), st.sampled_from(sorted(EDITS))),
    st.tuples(st.just("wait"), st.sampled_from([1, 6, 24, 24 * 3, 24 * 10, 24 * 40])),
    st.tuples(st.just("test"), st.sampled_from(["pass", "fail", "fail-other", "stale", "bad-reason"])),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["new", "approved", "testing", "integrated"]), st.lists(steps, min_size=1, max_size=30))
def test_any_history_keeps_the_promises(start: str, history: list[tuple[str, Any]]) -> None:
    sim = Sim()
    sim.run()
    now = SUBMITTED
    if start != "new":
        sim.edit(EDITS["approve"])
        sim.run(now)
    if start in ("testing", "integrated"):
        sim.edit(EDITS["sign"])
        sim.run(now)
    if start == "integrated":
        sim.run(now, test=TestResult(True, generation=sim.generation))
    for kind, arg in history:
        test: TestResult | None = None
        if kind == "edit":
            sim.edit(EDITS[arg])
        elif kind == "wait":
            now += datetime.timedelta(hours=arg)
        elif arg == "pass":
            test = TestResult(True, generation=sim.generation)
        elif arg == "fail":
            test = TestResult(False, "UnexpectedStatus", "HTTP 503", generation=sim.generation)
        elif arg == "fail-other":
            test = TestResult(False, "ProbeTimeout", "no answer", generation=sim.generation)
        elif arg == "stale":
            test = TestResult(True, generation=sim.generation + 1)
        else:
            test = TestResult(False, "not a CamelCase reason!", "broken", generation=sim.generation)
        plan = sim.run(now, test=test)
        assert plan.phase in {"Refused", "UnderReview", "Rejected", "Approved", "Testing", "Integrated", "Suspended"}
        if plan.phase == "Integrated":
            assert sim.cond("Tested")[0] == "True" and sim.cond("AgreementSigned")[0] == "True"
        if plan.phase in {"Testing", "Integrated"}:
            assert sim.cond("Reviewed") in {("True", "Approved"), ("False", "InvalidReview")}
        if sim.cond("Ready")[0] == "True":
            assert plan.phase == "Integrated" and sim.cond("Reviewed") == ("True", "Approved")
            assert sim.cond("Complete") == ("True", "ApplicationComplete")
        if plan.requeue_at is not None:
            assert plan.requeue_at > now
        ids = [e["id"] for e in sim.status["outbox"]]
        assert len(ids) == len(set(ids))


def test_an_unknown_phase_starts_afresh() -> None:
    plan = reconcile(APPLICATION, {"phase": "Legacy"}, 1, Sim().directory, SUBMITTED, CONFIG, ref=REF)
    assert plan.phase == "UnderReview" and plan.previous_phase is None
