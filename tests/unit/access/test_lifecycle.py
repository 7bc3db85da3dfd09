"""The pure grant lifecycle: phases, the seven §20 grounds as data, cascades, timers, finality."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from tksh.access import cascade
from tksh.access.admission import facts_of
from tksh.access.lifecycle import OPERATOR, GrantPlan, Indexed, followers, reconcile
from tksh.resources.accessgrant import TerminationReason as R

T0 = datetime.datetime(2026, 9, 1, 12, 0, tzinfo=datetime.UTC)
HOUR, DAY = datetime.timedelta(hours=1), datetime.timedelta(days=1)
NS = "housing"
READY = {"owners-association": True}


def stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def obj(name: str = "chair", subject: str = "person:a1", *, created: datetime.datetime = T0 - 30 * DAY,
        generation: int = 1, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "tksh.kz/v1alpha1", "kind": "AccessGrant",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": generation,
                     "creationTimestamp": stamp(created)},
        "spec": {"subject": {"id": subject, "kind": "person"},
                 "onBehalfOf": {"bin": "140540001231", "email": "board@example.kz"},
                 "functions": ["owners-association"],
                 "agreement": {"number": "ДД-1", "validFrom": stamp(T0 - 10 * DAY),
                               "validUntil": stamp(T0 + 300 * DAY)}},
    }
    body["spec"].update(spec)
    return body


def run(body: dict[str, Any], now: datetime.datetime = T0, world: list[dict[str, Any]] = (),  # type: ignore[assignment]
        functions: dict[str, bool] | None = None) -> GrantPlan:
    """Reconcile ``body`` against the other grants of ``world`` (objects), then store the plan's status in it."""
    grants = {f"{NS}/{o['metadata']['name']}": indexed(o) for o in world}
    plan = reconcile(body, grants, list(grants.values()), READY if functions is None else functions, now)
    body["status"] = {k: v for k, v in plan.status.items() if v is not None}
    return plan


def indexed(body: dict[str, Any]) -> Indexed:
    meta = body["metadata"]
    return Indexed(facts_of(body), datetime.datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00")))


def active(body: dict[str, Any], world: list[dict[str, Any]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    plan = run(body, T0 - DAY, world)
    assert plan.phase == "Active", plan.status["message"]
    return body


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = [c for c in body["status"]["conditions"] if c["type"] == kind]
    return dict(found)


def request(body: dict[str, Any], reason: R, at: datetime.datetime | None = None, note: str | None = "акт № 1",
            by: str = "aigerim") -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["spec"]["termination"] = {"reason": str(reason), "by": by} | ({"at": stamp(at)} if at else {}) | (
        {"note": note} if note else {})
    body["metadata"]["generation"] += 1
    return body


# --- phases -----------------------------------------------------------------------------------------------------------


def test_pending_before_valid_from_then_active_at_it() -> None:
    body = obj(agreement={"number": "ДД-1", "validFrom": stamp(T0 + HOUR), "validUntil": stamp(T0 + DAY)})
    plan = run(body)
    assert plan.phase == "Pending" and plan.wake_at == T0 + HOUR
    assert condition(body, "Active")["reason"] == "NotYetValid"
    assert [e.reason for e in plan.events] == ["Pending"]
    plan = run(body, T0 + HOUR)
    assert plan.phase == "Active" and body["status"]["activatedAt"] == stamp(T0 + HOUR)
    assert [e.reason for e in plan.events] == ["Activated"]
    assert [n["template"] for n in plan.notifications] == ["grant-activated"]
    assert plan.wake_at == T0 + HOUR  # the activation e-mail is due at once; the agreement ends a day later
    assert plan.requeue_at == T0 + DAY


def test_a_plan_fed_back_changes_nothing() -> None:
    body = obj()
    first = run(body)
    again = run(body)
    assert first.status == again.status
    assert again.events == () and again.notifications == ()


def test_the_token_fields_are_never_written() -> None:
    body = obj()
    body["status"] = {"tokenSecret": "chair-token", "tokenExpiresAt": stamp(T0 + DAY)}
    plan = run(body)
    assert not {"tokenSecret", "tokenExpiresAt"} & set(plan.status)


def test_no_e_mail_without_the_organisations_address() -> None:
    body = obj(onBehalfOf={"bin": "140540001231"})
    assert run(body).notifications == ()
    plan = run(request(body, R.REVOKED))
    assert plan.notifications == () and "not e-mailed" in plan.events[0].message


@pytest.mark.parametrize(("functions", "reason"), [({}, "UnknownFunction"),
                                                    ({"owners-association": False}, "FunctionNotReady")])
def test_a_function_absent_or_not_ready_keeps_the_grant_pending(functions: dict[str, bool], reason: str) -> None:
    body = obj()
    plan = run(body, functions=functions)
    assert plan.phase == "Pending"
    valid = condition(body, "Valid")
    assert (valid["status"], valid["reason"]) == ("False", reason)
    assert valid["message"].startswith("spec.functions: owners-association")
    assert reason in [e.reason for e in plan.events]
    assert run(body).phase == "Active"  # the directory caught up


def test_an_unreadable_grant_names_the_field() -> None:
    body = obj()
    body["spec"]["subject"]["id"] = "Not An Id"
    plan = run(body)
    valid = condition(body, "Valid")
    assert plan.phase == "Pending" and valid["reason"] == "InvalidSpec"
    assert valid["message"].startswith("spec.subject.id")


# --- the seven grounds, one code path ---------------------------------------------------------------------------------

PAST = T0 - 2 * HOUR
GROUNDS: list[tuple[str, R, Any, dict[str, Any]]] = [
    # name, ground, how the grant gets there (a function of the active grant -> (grant, world)), the record expected
    ("expired-at-valid-until", R.EXPIRED,
     lambda g: (g | {"spec": g["spec"] | {"agreement": g["spec"]["agreement"] | {"validUntil": stamp(PAST)}}}, []),
     {"reason": "EXPIRED", "at": stamp(PAST), "by": OPERATOR, "note": "the agreement's term ended"}),
    ("revoked-at-once", R.REVOKED, lambda g: (request(g, R.REVOKED), []),
     {"reason": "REVOKED", "at": stamp(T0), "by": "aigerim", "note": "акт № 1"}),
    ("refused-backdated", R.REFUSED, lambda g: (request(g, R.REFUSED, at=PAST, note=None), []),
     {"reason": "REFUSED", "at": stamp(PAST), "by": "aigerim"}),
    ("delegation-terminated", R.DELEGATION_TERMINATED, None,
     {"reason": "DELEGATION_TERMINATED", "at": stamp(PAST), "by": OPERATOR, "cascadeFrom": "principal",
      "note": "the principal's access ended: REVOKED"}),
    ("grounds-ended-at-grounds-end", R.GROUNDS_ENDED,
     lambda g: (g | {"spec": g["spec"] | {"grounds": {"kind": "Employment", "validUntil": stamp(PAST)}}}, []),
     {"reason": "GROUNDS_ENDED", "at": stamp(PAST), "by": OPERATOR, "note": "the grounds' term ended"}),
    ("grounds-ended-requested", R.GROUNDS_ENDED, lambda g: (request(g, R.GROUNDS_ENDED), []),
     {"reason": "GROUNDS_ENDED", "at": stamp(T0), "by": "aigerim", "note": "акт № 1"}),
    ("false-information", R.FALSE_INFORMATION, lambda g: (request(g, R.FALSE_INFORMATION), []),
     {"reason": "FALSE_INFORMATION", "at": stamp(T0), "by": "aigerim", "note": "акт № 1"}),
    ("other-by-law", R.OTHER_BY_LAW, lambda g: (request(g, R.OTHER_BY_LAW, note="Закон № 94-V"), []),
     {"reason": "OTHER_BY_LAW", "at": stamp(T0), "by": "aigerim", "note": "Закон № 94-V"}),
]


def _delegated() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    principal = active(obj("principal", "person:p"))
    delegate = active(obj("chair", delegatedFrom="principal"), [principal])
    ended = copy.deepcopy(principal)
    ended["status"]["terminated"] = {"reason": "REVOKED", "at": stamp(PAST), "by": "aigerim"}
    ended["status"]["phase"] = "Terminated"
    return delegate, [ended]


@pytest.mark.parametrize(("name", "ground", "how", "record"), GROUNDS, ids=[g[0] for g in GROUNDS])
def test_every_ground_is_recorded_the_same_way(name: str, ground: R, how: Any, record: dict[str, Any]) -> None:
    body, world = _delegated() if how is None else how(active(obj()))
    plan = run(body, T0, world)
    assert plan.phase == "Terminated"
    assert body["status"]["terminated"] == record
    assert plan.ending is not None and plan.ending.reason is ground
    terminated = condition(body, "Terminated")
    camel = "".join(p.capitalize() for p in ground.split("_"))
    assert (terminated["status"], terminated["reason"]) == ("True", camel)
    assert (condition(body, "Active")["reason"], condition(body, "Ready")["status"]) == ("Terminated", "False")
    (event,) = plan.events
    assert event.reason == "Terminated" and ground in event.message
    assert event.type == ("Normal" if ground is R.EXPIRED else "Warning")
    (mail,) = plan.notifications
    assert mail["template"] == "grant-terminated" and mail["params"]["reason"] == ground
    assert mail["recipient"] == "b***@e***.kz"  # masked in the status
    assert plan.flag_applications == (ground is R.FALSE_INFORMATION)


def test_the_earliest_ground_wins() -> None:
    body = active(obj(grounds={"kind": "Employment", "validUntil": stamp(T0 - 3 * HOUR)}))
    plan = run(request(body, R.REVOKED, at=T0 - HOUR), T0)
    assert plan.status["terminated"]["reason"] == "GROUNDS_ENDED"


def test_timers_wake_at_each_instant_that_can_change_the_grant() -> None:
    body = active(obj(grounds={"kind": "Employment", "validUntil": stamp(T0 + 5 * HOUR)},
                      agreement={"number": "1", "validFrom": stamp(T0 - DAY), "validUntil": stamp(T0 + 9 * HOUR)}))
    body["status"]["outbox"] = []  # the activation e-mail, sent
    assert run(body).wake_at == T0 + 5 * HOUR
    scheduled = request(body, R.REVOKED, at=T0 + 2 * HOUR)
    plan = run(scheduled)
    assert plan.phase == "Active" and plan.wake_at == T0 + 2 * HOUR
    assert condition(scheduled, "Terminated")["reason"] == "TerminationScheduled"
    assert [e.reason for e in plan.events] == ["TerminationScheduled"]
    plan = run(scheduled, T0 + 2 * HOUR + datetime.timedelta(seconds=7))
    assert plan.status["terminated"]["at"] == stamp(T0 + 2 * HOUR)  # the instant asked for, not when it ran


def test_other_by_law_without_a_note_is_not_recorded() -> None:
    body = request(active(obj()), R.OTHER_BY_LAW, note=None)
    plan = run(body)
    assert plan.phase == "Active" and "terminated" not in body["status"]
    valid = condition(body, "Valid")
    assert valid["reason"] == "InvalidTermination" and valid["message"].startswith("spec.termination.note:")


# --- terminated is final --------------------------------------------------------------------------------------------


def test_a_terminated_grant_is_never_resumed() -> None:
    body = request(active(obj()), R.REVOKED)
    run(body)
    record = body["status"]["terminated"]
    resumed = copy.deepcopy(body)
    del resumed["spec"]["termination"]
    resumed["spec"]["agreement"]["validUntil"] = stamp(T0 + 900 * DAY)
    resumed["metadata"]["generation"] += 1
    plan = run(resumed, T0 + HOUR)
    assert plan.phase == "Terminated" and resumed["status"]["terminated"] == record
    assert [e.reason for e in plan.events] == ["NewGrantNeeded"] and plan.notifications == ()
    assert "never resumed" in condition(resumed, "Terminated")["message"]
    again = run(resumed, T0 + 2 * HOUR)
    assert again.events == () and "never resumed" in condition(resumed, "Terminated")["message"]


# --- cascades ---------------------------------------------------------------------------------------------------------


def test_a_three_level_cascade_agrees_with_cascade() -> None:
    chair = active(obj("chair", "person:chair"))
    acct = active(obj("accountant", "person:acct", delegatedFrom="chair"), [chair])
    asst = active(obj("assistant", "person:asst", delegatedFrom="accountant"), [chair, acct])
    expected = cascade([facts_of(o) for o in (chair, acct, asst)], f"{NS}/chair", R.REVOKED)
    chair = request(chair, R.REVOKED)
    run(chair, T0)
    steps = followers(facts_of(chair), [facts_of(acct)], [])  # whom the operator looks at next: the delegate
    assert [(s.grant, s.reason, s.cascade_from) for s in steps] == [
        (f"{NS}/accountant", R.DELEGATION_TERMINATED, f"{NS}/chair")]
    # the assistant happens to be reconciled before its own principal: it ends all the same
    plan = run(asst, T0 + HOUR, [chair, acct])
    assert asst["status"]["terminated"] == {"reason": "DELEGATION_TERMINATED", "at": stamp(T0), "by": OPERATOR,
                                            "cascadeFrom": "accountant", "note": "the principal's access ended "
                                            "(grant chair up the delegation chain): REVOKED"}
    assert plan.flag_applications is False
    run(acct, T0 + HOUR, [chair, asst])
    recorded = [(f"{NS}/{o['metadata']['name']}", R(o["status"]["terminated"]["reason"]),
                 f"{NS}/{o['status']['terminated']['cascadeFrom']}") for o in (acct, asst)]
    assert recorded == [(s.grant, s.reason, s.cascade_from) for s in expected]


def test_an_active_delegate_of_a_deleted_principal_ends() -> None:
    principal = active(obj("principal", "person:p"))
    delegate = active(obj(delegatedFrom="principal"), [principal])
    plan = run(delegate, T0, [])
    assert plan.status["terminated"]["reason"] == "DELEGATION_TERMINATED"
    assert "no longer exists" in plan.status["terminated"]["note"]


def test_a_pending_delegate_waits_for_its_principal() -> None:
    principal = obj("principal", "person:p", agreement={"number": "1", "validFrom": stamp(T0 + HOUR),
                                                         "validUntil": stamp(T0 + DAY)})
    run(principal)
    delegate = obj(delegatedFrom="principal", agreement={"number": "2", "validUntil": stamp(T0 + DAY)})
    plan = run(delegate, T0, [principal])
    assert plan.phase == "Pending" and condition(delegate, "Active")["reason"] == "PrincipalNotActive"
    run(principal, T0 + HOUR)
    assert run(delegate, T0 + HOUR, [principal]).phase == "Active"


def test_a_delegate_beyond_its_principal_is_not_activated() -> None:
    principal = active(obj("principal", "person:p", scope={"categories": [5]}))
    delegate = obj(delegatedFrom="principal")
    plan = run(delegate, T0, [principal])
    valid = condition(delegate, "Valid")
    assert plan.phase == "Pending" and valid["reason"] == "DelegationExceedsPrincipal"
    assert valid["message"].startswith("spec.scope.categories:")


def test_false_information_sweeps_the_subjects_grants_that_existed() -> None:
    finding = request(active(obj("finding", "person:liar")), R.FALSE_INFORMATION)
    run(finding)
    older = active(obj("older", "person:liar"))
    newer = active(obj("newer", "person:liar", created=T0 + HOUR))
    honest = active(obj("honest", "person:honest"))
    world = [finding, older, newer, honest]
    steps = followers(facts_of(finding), [], [facts_of(o) for o in world])
    assert {s.grant for s in steps} == {f"{NS}/older", f"{NS}/newer"}  # whom to look at; each decides itself
    plan = run(older, T0 + 2 * HOUR, world)
    assert older["status"]["terminated"] == {"reason": "FALSE_INFORMATION", "at": stamp(T0), "by": OPERATOR,
                                             "note": "false information in the subject's application was found "
                                                     "(grant finding)", "cascadeFrom": "finding"}
    assert plan.flag_applications is False  # only where it was found
    assert run(newer, T0 + 2 * HOUR, world).phase == "Active"  # created after the finding: a new grant stands
    assert run(honest, T0 + 2 * HOUR, world).phase == "Active"
