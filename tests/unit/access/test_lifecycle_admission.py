"""The AccessGrant admission rule (the webhook's pure part): delegation bounds, frozen terminations."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.unit.access.test_lifecycle import T0, active, obj, request, run, stamp
from tksh.access.admission import PRINCIPAL_UNKNOWN, FieldProblemError, check_grant, facts_of
from tksh.resources.accessgrant import TerminationReason as R


def principal(**spec: Any) -> dict[str, Any]:
    return active(obj("principal", "person:p", **({"scope": {"categories": [2, 5]}} | spec)))


def delegate(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"delegatedFrom": "principal", "scope": {"categories": [5]},
                            "agreement": {"number": "2", "validUntil": stamp(T0)}}
    return obj("acct", "person:acct", **(base | spec))


def field_of(new: dict[str, Any], old: dict[str, Any] | None = None, p: Any = "default") -> str | None:
    found = check_grant(old, new, facts_of(principal()) if p == "default" else p, T0)
    return None if found is None else found.field


def test_a_delegate_within_its_principal_passes() -> None:
    assert field_of(delegate()) is None
    assert field_of(obj("plain")) is None  # not delegated: nothing to bound


@pytest.mark.parametrize(("change", "field"), [
    ({"functions": ["owners-association", "meters"]}, "spec.functions"),
    ({"scope": {"categories": [5, 9]}}, "spec.scope.categories"),
    ({"scope": None}, "spec.scope.categories"),
    ({"onBehalfOf": {"bin": "210987654321"}}, "spec.onBehalfOf.bin"),
    ({"agreement": {"number": "2", "validUntil": stamp(T0.replace(year=2099))}}, "spec.agreement.validUntil"),
    ({"grounds": {"kind": "Contract", "validUntil": stamp(T0.replace(year=2099))}}, "spec.grounds.validUntil"),
    ({"delegatedFrom": "acct"}, "spec.delegatedFrom"),
])
def test_a_delegate_never_gets_more_than_its_principal_nor_outlives_it(change: dict[str, Any], field: str) -> None:
    assert field_of(delegate(**change)) == field


def test_the_principal_must_be_known_and_in_effect() -> None:
    found = check_grant(None, delegate(), PRINCIPAL_UNKNOWN, T0)
    assert found is not None and found.field == "spec.delegatedFrom" and "retry" in found.message
    ended = request(principal(), R.REVOKED)
    run(ended)
    found = check_grant(None, delegate(), facts_of(ended), T0)
    assert found is not None and "has ended" in found.message


def test_a_grounds_end_of_the_principal_bounds_the_delegate() -> None:
    p = facts_of(principal(grounds={"kind": "Employment", "validUntil": stamp(T0.replace(month=10))}))
    assert field_of(delegate(agreement={"number": "2", "validUntil": stamp(T0.replace(month=11))}), p=p) == \
        "spec.agreement.validUntil"


def test_a_termination_request_is_never_removed_nor_changed() -> None:
    old = request(obj("plain"), R.REVOKED)
    changed = copy.deepcopy(old)
    changed["spec"]["termination"]["reason"] = "REFUSED"
    assert field_of(changed, old) == "spec.termination"
    assert field_of(obj("plain"), old) == "spec.termination"
    assert field_of(request(obj("plain"), R.REVOKED), obj("plain")) is None  # adding one is always possible


def test_other_by_law_needs_a_note_but_a_missing_one_may_be_completed() -> None:
    bare = request(obj("plain"), R.OTHER_BY_LAW, note=None)
    assert field_of(bare) == "spec.termination.note"
    assert field_of(request(obj("plain"), R.OTHER_BY_LAW, note="Закон № 94-V"), bare) is None


def test_a_terminated_grant_is_frozen_but_its_metadata_is_not() -> None:
    old = request(active(obj("plain")), R.REVOKED)
    run(old)
    resumed = copy.deepcopy(old)
    resumed["spec"]["agreement"]["validUntil"] = stamp(T0.replace(year=2099))
    found = check_grant(old, resumed, None, T0)
    assert found is not None and found.field == "spec" and "never resumed" in found.message
    labelled = copy.deepcopy(old)
    labelled["metadata"]["labels"] = {"team": "a"}
    assert check_grant(old, labelled, None, T0) is None


def test_a_delegate_may_always_be_ended() -> None:
    ended = request(principal(), R.REVOKED)
    run(ended)
    mine = delegate()
    assert check_grant(mine, request(mine, R.REFUSED), facts_of(ended), T0) is None


def test_a_bad_identifier_is_refused_naming_it() -> None:
    bad = obj("plain")
    bad["spec"]["subject"]["id"] = "Bad Id"
    assert field_of(bad) == "spec.subject.id"


def test_the_facts_of_a_stored_grant_are_read_again_only_when_they_can_differ() -> None:
    stored = obj("cached") | {"status": {"phase": "Active"}}
    stored["metadata"] = {**stored["metadata"], "resourceVersion": "41"}
    first = facts_of(stored, stored=True)
    status_write = copy.deepcopy(stored)  # a new version whose spec, phase and termination are the same
    status_write["metadata"]["resourceVersion"] = "42"
    status_write["status"] |= {"tokenSecret": "cached-token", "conditions": [{"type": "Ready", "status": "True"}]}
    assert facts_of(status_write, stored=True) is first
    ended = copy.deepcopy(status_write)
    ended["metadata"]["resourceVersion"], ended["status"]["phase"] = "43", "Terminated"
    assert facts_of(ended, stored=True).phase == "Terminated"
    recorded = copy.deepcopy(ended)
    recorded["status"]["terminated"] = {"reason": "REVOKED", "at": stamp(T0), "by": "admin"}
    assert facts_of(recorded, stored=True).terminated is not None
    respecified = copy.deepcopy(stored)  # the API server raises the generation on every change of the spec
    respecified["metadata"]["generation"], respecified["spec"]["functions"] = 2, ["housing-manager"]
    assert facts_of(respecified, stored=True).functions == frozenset({"housing-manager"})
    unstored = copy.deepcopy(stored)
    del unstored["metadata"]["generation"]
    assert facts_of(unstored, stored=True) == first and facts_of(unstored, stored=True) is not first


def test_an_object_not_known_as_stored_is_read_each_time() -> None:
    """An admission request's new object carries the generation of the old one: never the old one's facts."""
    old = obj("edited") | {"status": {"phase": "Active"}}
    old["metadata"] = {**old["metadata"], "resourceVersion": "7"}
    assert facts_of(old, stored=True).functions == frozenset({"owners-association"})
    new = copy.deepcopy(old)
    new["spec"]["functions"] = ["housing-manager"]
    assert facts_of(new).functions == frozenset({"housing-manager"})


def test_only_the_fields_the_facts_come_from_are_read() -> None:
    """A malformed condition or outbox entry (the API server's schema keeps them out anyway) does not hide the
    facts: the operator must still see what the grant grants and whether it ended."""
    grant = obj("odd") | {"status": {"phase": "Active", "conditions": [{"type": 5}], "outbox": "not a list"}}
    assert facts_of(grant).phase == "Active"
    broken_phase = obj("odd-phase") | {"status": {"phase": "Sleeping"}}
    with pytest.raises(FieldProblemError) as refused:
        facts_of(broken_phase)
    assert refused.value.problem.field == "status.phase"


def test_an_unreadable_stored_version_is_refused_every_time() -> None:
    broken = obj("broken", subject="140540001231")  # twelve digits: not an opaque id
    broken["metadata"] = {**broken["metadata"], "resourceVersion": "7"}
    for _ in range(2):
        with pytest.raises(FieldProblemError) as refused:
            facts_of(broken, stored=True)
        assert refused.value.problem.field == "spec.subject.id"


def test_an_update_is_judged_on_its_new_spec_even_when_the_stored_version_was_read() -> None:
    """The operator has read (and cached) the stored delegate; an UPDATE's new object carries the same uid and
    generation but widens the scope: the webhook must refuse it, not answer from the stored version's facts."""
    old = delegate()
    old["metadata"] = {**old["metadata"], "uid": "u-acct", "resourceVersion": "12"}
    assert facts_of(old, stored=True).delegated_from is not None  # in the cache now
    new = copy.deepcopy(old)
    new["spec"]["scope"] = {"categories": [5, 9]}
    assert field_of(new, old) == "spec.scope.categories"
