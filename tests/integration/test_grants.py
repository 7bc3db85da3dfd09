"""The AccessGrant lifecycle end to end: operator, API server, real SMTP, the decision core.

Every §20 ground: the status record, the Event, ``tksh_grants_terminated_total{reason}``, the e-mail in Kazakh
and Russian (EXPIRED and GROUNDS_ENDED by their timers, at their instant). The cascade through three levels,
FALSE_INFORMATION ending the subject's grants and flagging its application, a terminated grant never resumed,
OTHER_BY_LAW without a note. The operations (admission, kubectl, hostile names, restart, peering) are in
``test_grants_operations.py``. Waits are deadlines only (``eventually``).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.integration.backends import Backend, running
from tests.integration.registration_helpers import application, make_namespace
from tksh.access import DecisionIndex, grant_facts
from tksh.config import OperatorConfig
from tksh.notify import IDEMPOTENCY_HEADER
from tksh.resources.accessgrant import AccessGrant, TerminationReason
from tksh.run import OperatorHandle
from tksh.sandbox.mailsink import MailSink, ReceivedMail

Wait = Callable[..., Awaitable[Any]]
API = "tksh.kz/v1alpha1"
OWNER_BIN = "140540001231"
ORG_EMAIL = "board@dostyk12.example.kz"
R = TerminationReason


def instant(delta: datetime.timedelta = datetime.timedelta(0)) -> str:
    moment = datetime.datetime.now(datetime.UTC) + delta
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def grant(name: str, ns: str, subject: str = "person:a1", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": API, "kind": "AccessGrant", "metadata": {"name": name, "namespace": ns},
        "spec": {
            "subject": {"id": subject, "kind": "person", "name": "Айгүл Серікқызы"},
            "onBehalfOf": {"bin": OWNER_BIN, "name": "ОСИ «Достық 12»", "email": ORG_EMAIL},
            "functions": ["owners-association"],
            "agreement": {"number": "ДД-2026/0107", "validFrom": "2026-01-01T00:00:00Z",
                          "validUntil": "2099-01-01T00:00:00Z"},
        },
    }
    body["spec"].update(spec)
    return body


def grant_review(new: dict[str, Any], old: dict[str, Any] | None = None, uid: str = "req-1") -> dict[str, Any]:
    """The AdmissionReview the API server sends the ``/accessgrants`` webhook for a write of ``new``."""
    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid, "operation": "UPDATE" if old else "CREATE",
            "userInfo": {"username": "aigerim", "groups": ["system:authenticated"]},
            "kind": {"group": "tksh.kz", "version": "v1alpha1", "kind": "AccessGrant"},
            "resource": {"group": "tksh.kz", "version": "v1alpha1", "resource": "accessgrants"},
            "namespace": new["metadata"]["namespace"], "name": new["metadata"]["name"], "object": new,
            "oldObject": old,
        },
    }


def delegate_of_chair(ns: str, **spec: Any) -> dict[str, Any]:
    """Grant ``acct`` delegated from ``chair`` (category 5, an agreement until 2080); ``spec`` overrides."""
    base: dict[str, Any] = {"delegatedFrom": "chair", "scope": {"categories": [5]},
                            "agreement": {"number": "ДД-2", "validUntil": "2080-01-01T00:00:00Z"}}
    return grant("acct", ns, "person:acct", **(base | spec))


def config_for(cluster: Backend, smtp_port: int) -> OperatorConfig:
    return dataclasses.replace(cluster.operator_config(), smtp_host="127.0.0.1", smtp_port=smtp_port,
                               smtp_sender="tksh@tksh.example.kz")


@pytest.fixture
async def ns(cluster: Backend, unique: str) -> str:
    return await make_namespace(cluster, unique, "grants")


@pytest.fixture
async def operator_(cluster: Backend, mail: MailSink, ns: str) -> AsyncIterator[OperatorHandle]:
    async with running(config_for(cluster, mail.port)) as handle:
        yield handle


async def status_of(cluster: Backend, name: str, ns: str, phase: str | None = None) -> dict[str, Any]:
    obj = await cluster.get("AccessGrant", name, ns)
    assert obj is not None
    status: dict[str, Any] = obj.get("status") or {}
    if phase is not None:
        assert status.get("phase") == phase, status
    return status


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [c for c in status.get("conditions") or () if c["type"] == kind]
    assert len(found) == 1, f"no {kind} condition: {status.get('conditions')}"
    return dict(found[0])


async def reasons(cluster: Backend, name: str) -> dict[str, str]:
    return {e["reason"]: e["message"] for e in await cluster.events(name)}


async def event(cluster: Backend, name: str, reason: str) -> str:
    """The message of the Event ``reason`` on ``name`` (KeyError, retried by ``eventually``, until there is one)."""
    return (await reasons(cluster, name))[reason]


def counted(handle: OperatorHandle, reason: R) -> float:
    return handle.metrics.value("tksh_grants_terminated_total", {"reason": str(reason)}) or 0.0


def terminated_mail(name: str) -> Callable[[ReceivedMail], bool]:
    return lambda m: m.message["X-TKSH-Template"] == "grant-terminated" and f"/{name}" in m.subject


async def test_a_grant_becomes_active_and_the_organisation_is_told(
    cluster: Backend, operator_: OperatorHandle, mail: MailSink, ns: str, wait_until: Wait
) -> None:
    await cluster.apply(grant("chair", ns))
    status = await wait_until(lambda: status_of(cluster, "chair", ns, "Active"))
    assert status["activatedAt"] and not status.get("terminated")
    assert condition(status, "Valid")["status"] == "True"
    assert condition(status, "Ready")["status"] == "True"
    told = await mail.wait_for(lambda m: m.message["X-TKSH-Template"] == "grant-activated", timeout=30)
    assert told.envelope_to == (ORG_EMAIL,) and "күшіне енді" in told.text and "вступил в силу" in told.text
    await wait_until(lambda: event(cluster, "chair", "Activated"))

    def gauged() -> None:
        assert operator_.metrics.value("tksh_grants", {"phase": "Active"}) == 1
        assert operator_.metrics.value("tksh_grants", {"phase": "Pending"}) == 0

    await wait_until(gauged)


# --- helpers for the scenarios ---------------------------------------------------------------------------------------


async def terminate(cluster: Backend, body: dict[str, Any], reason: R, note: str | None = "по акту № 7",
                    by: str = "aigerim", at: str | None = None) -> None:
    request: dict[str, Any] = {"reason": str(reason), "by": by}
    if note is not None:
        request["note"] = note
    if at is not None:
        request["at"] = at
    changed = copy.deepcopy(body)
    changed["spec"]["termination"] = request
    await cluster.apply(changed)


async def terminated_as(cluster: Backend, name: str, ns: str, reason: R) -> dict[str, Any]:
    status = await status_of(cluster, name, ns, "Terminated")
    assert status["terminated"]["reason"] == str(reason), status["terminated"]
    return status


async def index_of(cluster: Backend, ns: str, *names: str) -> DecisionIndex:
    """The decision core fed with the grants as stored (what ``tksh authz`` would hold)."""
    from tksh.access import function_rights
    from tksh.resources.subjectfunction import SubjectFunction

    function = await cluster.get("SubjectFunction", "owners-association")
    assert function is not None
    rights = function_rights(SubjectFunction.model_validate(function))
    grants = []
    for name in names:
        obj = await cluster.get("AccessGrant", name, ns)
        assert obj is not None
        grants.append(grant_facts(AccessGrant.model_validate(obj)))
    return DecisionIndex.build(grants, {"owners-association": rights or frozenset()})


def decisions(index: DecisionIndex, subject: str) -> list[tuple[bool, str | None]]:
    now = datetime.datetime.now(datetime.UTC)
    return [(d.allowed, str(d.reason) if d.reason else None) for d in
            (index.decide(subject, action, category, OWNER_BIN, now=now)
             for category in (1, 2, 5, 9) for action in ("read", "write", "sign"))]


# --- the seven grounds ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", list(R), ids=[r.lower() for r in R])
async def test_each_ground_ends_the_grant_with_record_event_metric_and_mail(
    cluster: Backend, operator_: OperatorHandle, mail: MailSink, ns: str, wait_until: Wait, reason: R
) -> None:
    name = "g-" + reason.lower().replace("_", "-")
    origin: str | None = None
    soon = instant(datetime.timedelta(seconds=4))
    if reason is R.EXPIRED:  # a timer fires at the agreement's end
        body = grant(name, ns, agreement={"number": "ДД-1", "validFrom": "2026-01-01T00:00:00Z", "validUntil": soon})
        await cluster.apply(body)
    elif reason is R.GROUNDS_ENDED:  # ... or at the grounds' end
        body = grant(name, ns, grounds={"kind": "PowerOfAttorney", "reference": "№ 12", "validUntil": soon})
        await cluster.apply(body)
    elif reason is R.DELEGATION_TERMINATED:  # the principal's end ends the delegate
        origin = "principal"
        principal = grant(origin, ns, "person:p1")
        await cluster.apply(principal)
        await wait_until(lambda: status_of(cluster, origin or "", ns, "Active"))
        body = grant(name, ns, delegatedFrom=origin)
        await cluster.apply(body)
        await wait_until(lambda: status_of(cluster, name, ns, "Active"))
        await terminate(cluster, principal, R.REFUSED)
    else:  # a request in spec.termination
        body = grant(name, ns)
        await cluster.apply(body)
        await wait_until(lambda: status_of(cluster, name, ns, "Active"))
        await terminate(cluster, body, reason)

    status = await wait_until(lambda: terminated_as(cluster, name, ns, reason), timeout=60)
    record = status["terminated"]
    assert record["at"]
    if reason is R.EXPIRED:
        assert record["at"] == soon  # at the agreement's instant, whenever the timer ran
    elif reason is R.GROUNDS_ENDED:
        assert record["at"] == soon
    elif origin is not None:
        assert record["cascadeFrom"] == origin and record["by"] == "tksh-operator"
    else:
        assert (record["by"], record["note"]) == ("aigerim", "по акту № 7")
    terminated = condition(status, "Terminated")
    assert terminated["status"] == "True" and condition(status, "Ready")["status"] == "False"

    assert str(reason) in await wait_until(lambda: event(cluster, name, "Terminated"))
    def counted_once() -> None:
        assert counted(operator_, reason) == 1

    await wait_until(counted_once)

    told = await mail.wait_for(terminated_mail(name), timeout=30)
    assert told.envelope_to == (ORG_EMAIL,)
    assert reason.titles.kk in told.text and reason.titles.ru in told.text  # the ground, in Kazakh and Russian
    assert "тоқтатылды" in told.text and "прекращён" in told.text
    assert told.message[IDEMPOTENCY_HEADER]
    if origin is not None:
        assert f"{ns}/{origin}" in told.text


async def test_a_termination_cascades_through_three_levels_of_delegation(
    cluster: Backend, operator_: OperatorHandle, ns: str, wait_until: Wait
) -> None:
    chair = grant("chair", ns, "person:chair")
    await cluster.apply(chair)
    await cluster.apply(grant("accountant", ns, "person:acct", delegatedFrom="chair", scope={"categories": [5]}))
    await cluster.apply(grant("assistant", ns, "person:asst", delegatedFrom="accountant",
                              scope={"categories": [5]}))
    await cluster.apply(grant("unrelated", ns, "person:other"))
    for name in ("chair", "accountant", "assistant", "unrelated"):
        await wait_until(lambda name=name: status_of(cluster, name, ns, "Active"))
    before = decisions(await index_of(cluster, ns, "chair", "accountant", "assistant"), "person:asst")
    assert (True, None) in before  # the assistant may read category 5 through the chain

    await terminate(cluster, chair, R.REVOKED)
    accountant = await wait_until(lambda: terminated_as(cluster, "accountant", ns, R.DELEGATION_TERMINATED))
    assistant = await wait_until(lambda: terminated_as(cluster, "assistant", ns, R.DELEGATION_TERMINATED))
    assert accountant["terminated"]["cascadeFrom"] == "chair"
    assert assistant["terminated"]["cascadeFrom"] == "accountant"  # the direct principal
    await status_of(cluster, "unrelated", ns, "Active")
    index = await index_of(cluster, ns, "chair", "accountant", "assistant")
    after = decisions(index, "person:asst")
    assert not any(allowed for allowed, _ in after)
    assert {after[i][1] for i, (allowed, _) in enumerate(before) if allowed} == {"DELEGATION_TERMINATED"}

    def cascade_counted() -> None:
        assert counted(operator_, R.DELEGATION_TERMINATED) == 2 and counted(operator_, R.REVOKED) == 1
        assert operator_.metrics.value("tksh_grants", {"phase": "Terminated"}) == 3
        assert operator_.metrics.value("tksh_grants", {"phase": "Active"}) == 1

    await wait_until(cascade_counted)


async def test_false_information_ends_the_subjects_grants_and_flags_its_applications(
    cluster: Backend, operator_: OperatorHandle, ns: str, wait_until: Wait
) -> None:
    await cluster.apply(application("osi", ns))
    other = application("other-osi", ns)
    other["spec"]["owner"]["bin"] = "210987654321"
    await cluster.apply(other)
    finding = grant("finding", ns, "person:liar")
    await cluster.apply(finding)
    await cluster.apply(grant("elsewhere", ns, "person:liar",
                              onBehalfOf={"bin": "210987654321", "email": "other@example.kz"}))
    await cluster.apply(grant("helper", ns, "person:helper", delegatedFrom="elsewhere",
                              onBehalfOf={"bin": "210987654321"}))
    await cluster.apply(grant("honest", ns, "person:honest"))
    for name in ("finding", "elsewhere", "helper", "honest"):
        await wait_until(lambda name=name: status_of(cluster, name, ns, "Active"))

    await terminate(cluster, finding, R.FALSE_INFORMATION, note="справка № 5 поддельная")
    origin = await wait_until(lambda: terminated_as(cluster, "finding", ns, R.FALSE_INFORMATION))
    assert "cascadeFrom" not in origin["terminated"]
    swept = await wait_until(lambda: terminated_as(cluster, "elsewhere", ns, R.FALSE_INFORMATION))
    assert swept["terminated"]["cascadeFrom"] == "finding"
    helper = await wait_until(lambda: terminated_as(cluster, "helper", ns, R.DELEGATION_TERMINATED))
    assert helper["terminated"]["cascadeFrom"] == "elsewhere"
    await status_of(cluster, "honest", ns, "Active")

    async def flagged() -> dict[str, Any]:
        obj = await cluster.get("DigitalObject", "osi", ns)
        assert obj is not None
        assert obj["metadata"].get("annotations", {}).get("tksh.kz/false-information") == "finding"
        found = condition(obj.get("status") or {"conditions": []}, "FalseInformation")
        assert found["status"] == "True" and "finding" in found["message"], found
        return obj

    await wait_until(flagged, timeout=60)
    assert "§20.6" in await wait_until(lambda: event(cluster, "osi", "FalseInformation"))
    untouched = await cluster.get("DigitalObject", "other-osi", ns)
    assert untouched is not None and "tksh.kz/false-information" not in (untouched["metadata"].get("annotations") or {})
    async def recorded() -> None:
        status = await status_of(cluster, "finding", ns, "Terminated")
        assert condition(status, "ApplicationsFlagged")["message"].startswith("1 application")

    await wait_until(recorded)


async def test_a_terminated_grant_is_never_resumed(
    cluster: Backend, operator_: OperatorHandle, ns: str, wait_until: Wait
) -> None:
    body = grant("chair", ns)
    await cluster.apply(body)
    await wait_until(lambda: status_of(cluster, "chair", ns, "Active"))
    await terminate(cluster, body, R.REVOKED)
    before = await wait_until(lambda: terminated_as(cluster, "chair", ns, R.REVOKED))
    resumed = grant("chair", ns, agreement={"number": "ДД-2", "validUntil": "2100-01-01T00:00:00Z"})
    await cluster.apply(resumed)  # the request removed, the term extended: no webhook on this API server

    async def answered() -> dict[str, Any]:
        status = await terminated_as(cluster, "chair", ns, R.REVOKED)
        assert status["observedGeneration"] == 3
        assert "never resumed" in condition(status, "Terminated")["message"]
        return status

    after = await wait_until(answered)
    assert after["terminated"] == before["terminated"]
    assert "create a new AccessGrant" in await wait_until(lambda: event(cluster, "chair", "NewGrantNeeded"))
    assert counted(operator_, R.REVOKED) == 1


async def test_other_by_law_needs_a_note(
    cluster: Backend, operator_: OperatorHandle, ns: str, wait_until: Wait
) -> None:
    body = grant("chair", ns)
    await cluster.apply(body)
    await wait_until(lambda: status_of(cluster, "chair", ns, "Active"))
    if cluster.name == "real":  # CEL in the CRD: the real API server refuses it, naming the field
        from tests.realapi.cluster import RealClusterError

        with pytest.raises(RealClusterError, match=r"spec\.termination\.note"):
            await terminate(cluster, body, R.OTHER_BY_LAW, note=None)
        return
    await terminate(cluster, body, R.OTHER_BY_LAW, note=None)  # no CEL here: the operator refuses to record it

    async def refused() -> dict[str, Any]:
        status = await status_of(cluster, "chair", ns, "Active")
        valid = condition(status, "Valid")
        assert (valid["status"], valid["reason"]) == ("False", "InvalidTermination"), valid
        assert valid["message"].startswith("spec.termination.note:")
        return status

    await wait_until(refused)
    await terminate(cluster, body, R.OTHER_BY_LAW, note="Закон РК № 94-V, ст. 12")
    status = await wait_until(lambda: terminated_as(cluster, "chair", ns, R.OTHER_BY_LAW))
    assert status["terminated"]["note"] == "Закон РК № 94-V, ст. 12"
