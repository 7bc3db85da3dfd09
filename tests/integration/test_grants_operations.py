"""AccessGrant operations end to end: the admission webhook over HTTP, ``kubectl tksh revoke|refuse|terminate``,
hostile names against the decision core, an operator restart mid-way, and a replica paused by kopf peering.

The scenarios and helpers are those of ``test_grants.py``; waits are deadlines only (``eventually``).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime
from typing import Any

import pytest

from tests.integration.backends import Backend, running
from tests.integration.peering import Peering
from tests.integration.registration_helpers import admission_answer, free_port, kubectl_env, kubectl_tksh
from tests.integration.test_grants import (
    R,
    Wait,
    condition,
    config_for,
    counted,
    decisions,
    delegate_of_chair,
    event,
    grant,
    grant_review,
    index_of,
    ns,
    operator_,
    status_of,
    terminate,
    terminated_as,
    terminated_mail,
)
from tksh.notify import IDEMPOTENCY_HEADER
from tksh.run import OperatorHandle
from tksh.sandbox.mailsink import MailSink

__all__ = ["ns", "operator_"]  # fixtures, used by name (``mail`` is in conftest)


# --- admission, kubectl -----------------------------------------------------------------------------------------------


async def test_admission_webhook_bounds_delegation_and_freezes_terminations(
    cluster: Backend, mail: MailSink, ns: str, wait_until: Wait
) -> None:
    import aiohttp

    port = free_port()
    config = dataclasses.replace(config_for(cluster, mail.port), admission_port=port, admission_addr="127.0.0.1",
                                 admission_insecure=True)

    chair = grant("chair", ns, scope={"categories": [2, 5]},
                  agreement={"number": "ДД-1", "validFrom": "2026-01-01T00:00:00Z",
                             "validUntil": "2090-01-01T00:00:00Z"})
    async with running(config), aiohttp.ClientSession() as http:
        await cluster.apply(chair)
        await wait_until(lambda: status_of(cluster, "chair", ns, "Active"))

        async def ask(body: dict[str, Any]) -> dict[str, Any]:
            return await admission_answer(http, f"http://127.0.0.1:{port}/accessgrants", body)

        def delegate(**spec: Any) -> dict[str, Any]:
            return delegate_of_chair(ns, **spec)

        async def refused(body: dict[str, Any], field: str, old: dict[str, Any] | None = None) -> str:
            answer = await ask(grant_review(body, old))
            assert answer["allowed"] is False, answer
            message: str = answer["status"]["message"]
            assert message.startswith(f"{field}: "), message
            return message

        assert (await wait_until(lambda: ask(grant_review(delegate()))))["allowed"] is True
        await refused(delegate(functions=["owners-association", "meters"]), "spec.functions")
        await refused(delegate(scope={"categories": [5, 9]}), "spec.scope.categories")
        await refused(delegate(scope=None), "spec.scope.categories")
        await refused(delegate(agreement={"number": "ДД-2", "validUntil": "2095-01-01T00:00:00Z"}),
                      "spec.agreement.validUntil")
        await refused(delegate(grounds={"kind": "Contract", "validUntil": "2095-01-01T00:00:00Z"}),
                      "spec.grounds.validUntil")
        await refused(delegate(onBehalfOf={"bin": "210987654321"}), "spec.onBehalfOf.bin")
        assert "retry" in await refused(delegate(delegatedFrom="nobody"), "spec.delegatedFrom")
        await refused(grant("x", ns, termination={"reason": "OTHER_BY_LAW"}), "spec.termination.note")

        revoked = copy.deepcopy(chair)
        revoked["spec"]["termination"] = {"reason": "REVOKED", "by": "aigerim", "note": "акт"}
        assert (await ask(grant_review(revoked, chair)))["allowed"] is True
        changed = copy.deepcopy(revoked)
        changed["spec"]["termination"]["reason"] = "REFUSED"
        await refused(changed, "spec.termination", revoked)
        await refused(chair, "spec.termination", revoked)  # removed
        await cluster.apply(revoked)
        await wait_until(lambda: terminated_as(cluster, "chair", ns, R.REVOKED))
        stored = await cluster.get("AccessGrant", "chair", ns)
        assert stored is not None
        resumed = copy.deepcopy(stored)
        resumed["spec"]["agreement"]["validUntil"] = "2099-01-01T00:00:00Z"
        assert "never resumed" in await refused(resumed, "spec", stored)
        assert (await ask(grant_review({**stored, "metadata": {**stored["metadata"], "labels": {"a": "b"}}}, stored)))[
            "allowed"] is True  # not a spec change
        assert "has ended" in await refused(delegate(), "spec.delegatedFrom")


async def test_kubectl_tksh_revoke_refuse_terminate(
    cluster: Backend, operator_: OperatorHandle, mail: MailSink, ns: str, wait_until: Wait, tmp_path: Any
) -> None:
    """The real kubectl runs the plugin (kubectl-tksh) against the API server with a kubeconfig."""
    env = kubectl_env(cluster, tmp_path)

    async def kubectl(*args: str) -> tuple[int, str, str]:
        return await kubectl_tksh(env, *args, "-n", ns)

    for name in ("a", "b", "c"):
        await cluster.apply(grant(name, ns, f"person:{name}"))
        await wait_until(lambda name=name: status_of(cluster, name, ns, "Active"))

    code, _, err = await kubectl("revoke", "a")
    assert code == 2 and "--reason" in err
    code, _, err = await kubectl("terminate", "c", "--ground", "OTHER_BY_LAW")
    assert code == 2 and "--note" in err and "OTHER_BY_LAW" in err
    code, _, err = await kubectl("terminate", "c", "--ground", "EXPIRED")
    assert code == 2 and "--ground" in err and "validUntil" in err
    code, _, err = await kubectl("terminate", "c", "--ground", "GROUNDS_ENDED", "--at", "tomorrow")
    assert code == 2 and "--at" in err
    code, _, err = await kubectl("revoke", "nobody", "--reason", "x")
    assert code == 1 and "not found" in err

    code, out, err = await kubectl("revoke", "a", "--reason", "доверенность отозвана, см. (акт) № 3")
    assert code == 0, err
    assert "REVOKED (§20.2)" in out
    record = (await wait_until(lambda: terminated_as(cluster, "a", ns, R.REVOKED)))["terminated"]
    assert record["by"] and record["note"] == "доверенность отозвана, см. (акт) № 3"  # by: the kubeconfig's user
    code, out, err = await kubectl("refuse", "b", "--by", "person:b")
    assert code == 0, err
    assert (await wait_until(lambda: terminated_as(cluster, "b", ns, R.REFUSED)))["terminated"]["by"] == "person:b"
    code, out, err = await kubectl("terminate", "c", "--ground", "OTHER_BY_LAW", "--note", "Закон № 94-V")
    assert code == 0, err
    await wait_until(lambda: terminated_as(cluster, "c", ns, R.OTHER_BY_LAW))
    code, _, err = await kubectl("revoke", "a", "--reason", "again")
    assert code == 2 and "already terminated" in err
    told = await mail.wait_for(terminated_mail("a"), timeout=30)
    assert "доверенность отозвана, см. (акт) № 3" in told.text


# --- hostile names, a restart, a paused replica ---------------------------------------------------------------------

HOSTILE = 'mallory, admin, org1 "quoted" (paren)) \\ ; DROP\nnew line Қазақ әріптері ӘҒҚҢӨҰҮҺІ'


async def test_hostile_names_never_change_a_decision_nor_break_anything(
    cluster: Backend, operator_: OperatorHandle, mail: MailSink, ns: str, wait_until: Wait
) -> None:
    plain = grant("plain", ns, "person:plain")
    hostile = grant("hostile", ns, "person:hostile", grounds={"kind": "PowerOfAttorney", "reference": HOSTILE},
                    agreement={"number": HOSTILE, "validFrom": "2026-01-01T00:00:00Z",
                               "validUntil": "2099-01-01T00:00:00Z"})
    hostile["spec"]["subject"]["name"] = HOSTILE
    hostile["spec"]["onBehalfOf"]["name"] = HOSTILE
    plain["spec"]["agreement"]["number"] = "ДД-1"
    for body in (plain, hostile):
        await cluster.apply(body)
    for name in ("plain", "hostile"):
        await wait_until(lambda name=name: status_of(cluster, name, ns, "Active"))
    index = await index_of(cluster, ns, "plain", "hostile")
    assert decisions(index, "person:hostile") == decisions(index, "person:plain")
    assert any(allowed for allowed, _ in decisions(index, "person:plain"))

    await terminate(cluster, plain, R.REVOKED, note="плановый отзыв")
    await terminate(cluster, hostile, R.REVOKED, note=HOSTILE, by=HOSTILE)
    for name in ("plain", "hostile"):
        await wait_until(lambda name=name: terminated_as(cluster, name, ns, R.REVOKED))
    index = await index_of(cluster, ns, "plain", "hostile")
    assert decisions(index, "person:hostile") == decisions(index, "person:plain")
    assert not any(allowed for allowed, _ in decisions(index, "person:hostile"))

    record = (await status_of(cluster, "hostile", ns))["terminated"]
    assert (record["note"], record["by"]) == (HOSTILE, HOSTILE)  # kept as written
    told = await mail.wait_for(terminated_mail("hostile"), timeout=30)
    assert HOSTILE not in told.subject and "\n" not in told.subject
    assert HOSTILE in told.text  # the note and the agreement number arrive intact, in the body
    assert "mallory" in await wait_until(lambda: event(cluster, "hostile", "Terminated"))


async def test_a_restart_mid_way_loses_and_duplicates_nothing(
    cluster: Backend, ns: str, wait_until: Wait
) -> None:
    port = free_port()  # nothing listens yet: SMTP is down
    config = config_for(cluster, port)
    early, late = grant("early", ns, "person:e"), grant("late", ns, "person:l")
    async with running(config) as first:
        await cluster.apply(early)
        await cluster.apply(late)
        for name in ("early", "late"):
            await wait_until(lambda name=name: status_of(cluster, name, ns, "Active"))
        await terminate(cluster, early, R.REVOKED)

        async def recorded_not_sent() -> dict[str, Any]:
            status = await terminated_as(cluster, "early", ns, R.REVOKED)
            entry, = [e for e in status["outbox"] if e["template"] == "grant-terminated"]
            assert entry["state"] == "Pending", entry  # recorded; not sent (SMTP is down)
            activated, = [e for e in status["outbox"] if e["template"] == "grant-activated"]
            assert activated.get("attempts", 0) >= 1, activated  # tried, and it failed
            return status

        before = await wait_until(recorded_not_sent)

        def revoked_counted() -> None:  # by the writer, once its write's answer is back (after the store has it)
            assert counted(first, R.REVOKED) == 1
        await wait_until(revoked_counted)
    await terminate(cluster, late, R.GROUNDS_ENDED)  # while no operator runs

    async with MailSink(port=port) as sink, running(config) as second:
        await wait_until(lambda: terminated_as(cluster, "late", ns, R.GROUNDS_ENDED))

        async def all_delivered() -> list[dict[str, Any]]:
            outbox = []
            for name in ("early", "late"):
                outbox += (await status_of(cluster, name, ns, "Terminated"))["outbox"]
            assert len(outbox) == 4 and all(e["state"] == "Delivered" for e in outbox), [
            (e["template"], e["state"], e.get("attempts"), e.get("nextAttemptAt"), e.get("lastError")) for e in outbox]
            return outbox

        outbox = await wait_until(all_delivered)
        await asyncio.sleep(1.0)  # a duplicate, if any, would be sent right after the mark
        keys = [m[IDEMPOTENCY_HEADER] for m in sink.messages]
        assert counted(second, R.GROUNDS_ENDED) == 1
        assert counted(second, R.REVOKED) == 0  # recorded (and counted) by the first operator only
    assert sorted(keys) == sorted(e["id"] for e in outbox)
    assert len(keys) == len(set(keys))
    after = await status_of(cluster, "early", ns, "Terminated")
    assert after["terminated"] == before["terminated"]


async def test_a_paused_replica_writes_nothing_until_it_is_the_active_peer(
    cluster: Backend, mail: MailSink, ns: str, unique: str, wait_until: Wait, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kopf peering on: a higher-priority peer pauses this operator; the grant timer must wait for the resume."""
    monkeypatch.setenv("POD_ID", f"grants-{unique}")
    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=12)
    due = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    with Peering(cluster, f"tksh-{unique}") as peering:
        await peering.create()
        config = dataclasses.replace(config_for(cluster, mail.port), standalone=False, peering_name=peering.name)
        async with running(config):
            body = grant("chair", ns, termination={"reason": "REVOKED", "by": "aigerim", "at": due})
            await cluster.apply(body)
            status = await wait_until(lambda: status_of(cluster, "chair", ns, "Active"))
            assert condition(status, "Terminated")["reason"] == "TerminationScheduled"
            await peering.rival(True, lifetime=60)
            await wait_until(peering.paused)
            if datetime.datetime.now(datetime.UTC) > at - datetime.timedelta(seconds=2):
                pytest.skip("this machine took too long to pause the operator before the scheduled instant")
            await asyncio.sleep((at - datetime.datetime.now(datetime.UTC)).total_seconds() + 3)
            held = await status_of(cluster, "chair", ns, "Active")  # due, but this replica is paused
            assert not held.get("terminated")

            await peering.rival(False)
            status = await wait_until(lambda: terminated_as(cluster, "chair", ns, R.REVOKED))
            assert status["terminated"]["at"] == due


async def test_a_paused_replica_still_bounds_delegation_from_the_api_server(
    cluster: Backend, mail: MailSink, ns: str, unique: str, wait_until: Wait, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every replica serves the webhook, and a paused one watches nothing (its indexes stay empty): the principal
    must be read from the API server, or a standby would refuse every delegate (or judge from stale data)."""
    import aiohttp

    chair = grant("chair", ns, scope={"categories": [2, 5]},
                  agreement={"number": "ДД-1", "validFrom": "2026-01-01T00:00:00Z",
                             "validUntil": "2090-01-01T00:00:00Z"})
    async with running(config_for(cluster, mail.port)):
        await cluster.apply(chair)
        await wait_until(lambda: status_of(cluster, "chair", ns, "Active"))

    peering = Peering(cluster, f"tksh-{unique}")
    monkeypatch.setenv("POD_ID", f"standby-{unique}")
    await peering.create(rival=True)
    port = free_port()
    config = dataclasses.replace(config_for(cluster, mail.port), standalone=False, peering_name=peering.name,
                                 admission_port=port, admission_addr="127.0.0.1", admission_insecure=True)

    def review(**spec: Any) -> dict[str, Any]:
        return grant_review(delegate_of_chair(ns, **spec), uid="req-standby")

    async with running(config), aiohttp.ClientSession() as http:
        async def ask(body: dict[str, Any]) -> dict[str, Any]:
            return await admission_answer(http, f"http://127.0.0.1:{port}/accessgrants", body)

        assert (await wait_until(lambda: ask(review())))["allowed"] is True, "a paused replica refused a delegate"
        wider = await ask(review(scope={"categories": [5, 9]}))
        assert wider["allowed"] is False and wider["status"]["message"].startswith("spec.scope.categories: ")
        assert (await status_of(cluster, "chair", ns, "Active"))  # untouched by the paused replica
