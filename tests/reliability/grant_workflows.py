"""AccessGrant workflows (§19–22, §20): activation, termination on several grounds, cascades, tokens.

Each grant acts for an organisation with an address of its own (``spec.onBehalfOf.email``), so every
e-mail is told apart by (recipient, template) and one grant's mail never waits behind another's.
Every grant that became Active had its token Secret issued (``handlers/tokens.py``) before the
workflow terminates it; at the end no terminated grant has a token Secret left.

=====================  ====================================================================================
``ended(REVOKED)``     Active (token issued) -> ``spec.termination`` REVOKED -> Terminated
``ended(REFUSED)``     the same, refused by the holder (§20.3)
``expired``            ``agreement.validUntil`` a few seconds after the grant is applied: Terminated EXPIRED
                       at exactly that instant, by the operator's timer (its activation e-mail is due only
                       if it was activated before the instant: an operator killed then may never activate it)
``delegation``         chair -> accountant -> assistant (delegatedFrom); chair REVOKED: both delegates end
                       DELEGATION_TERMINATED, each ``cascadeFrom`` its direct principal (§20.4)
``false_information``  FALSE_INFORMATION on one grant: the same subject's other grant ends FALSE_INFORMATION
                       (``cascadeFrom`` the finding), its delegate DELEGATION_TERMINATED, and the subject's
                       application (a DigitalObject with the finding's BIN) is flagged (§20.6)
=====================  ====================================================================================
"""

from __future__ import annotations

import copy
import datetime
import hashlib
from collections.abc import Callable
from typing import Any

from tests.reliability.objects import secret
from tests.reliability.workflows import (
    API,
    FUNCTION_NAME,
    Check,
    Expected,
    Ref,
    Step,
    Workflow,
    application,
    check,
    condition_of,
    phase_is,
)
from tksh.access.keyrotation import token_secret_name
from tksh.registration.completeness import bin_checksum_valid
from tksh.resources.accessgrant import TerminationReason

R = TerminationReason
ADMIN = "aigerim"
NOTE = "по акту № 7"
EXPIRES_AFTER = 8.0  # seconds from the moment the grant is applied


def org_email(name: str) -> str:
    return f"org.{name}@dostyk12.example.kz"


def bin_of(seed: str) -> str:
    """A valid 12-digit BIN (check digit included) of its own for a workflow, never the registration workflows'."""
    digits = str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))
    for i in range(len(digits) - 9):
        candidate = "21" + digits[i:i + 9]
        for last in "0123456789":
            if bin_checksum_valid(candidate + last):
                return candidate + last
    raise AssertionError(f"no valid BIN derived from {seed!r}")


def stamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def grant(name: str, namespace: str, subject: str, *, owner_bin: str | None = None, **spec: Any) -> dict[str, Any]:
    from tests.reliability.workflows import OWNER_BIN, OWNER_NAME

    body: dict[str, Any] = {
        "apiVersion": API, "kind": "AccessGrant", "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "subject": {"id": subject, "kind": "person", "name": "Айгүл Серікқызы"},
            "onBehalfOf": {"bin": owner_bin or OWNER_BIN, "name": OWNER_NAME, "email": org_email(name)},
            "functions": [FUNCTION_NAME],
            "agreement": {"number": "ДД-2026/0107", "validFrom": "2026-01-01T00:00:00Z",
                          "validUntil": "2099-01-01T00:00:00Z"},
        },
    }
    body["spec"].update(copy.deepcopy(spec))
    return body


def terminated(body: dict[str, Any], reason: R, by: str = ADMIN, note: str | None = NOTE) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    request: dict[str, Any] = {"reason": str(reason), "by": by}
    if note is not None:
        request["note"] = note
    changed["spec"]["termination"] = request
    return changed


# --- checks ----------------------------------------------------------------------------------------


def observed(obj: dict[str, Any]) -> None:
    status = obj.get("status") or {}
    generation = obj["metadata"].get("generation", 1)
    assert status.get("observedGeneration") == generation, (obj["metadata"]["name"], status.get("observedGeneration"),
                                                            generation)


def ended_as(reason: R, cascade_from: str | None = None, by: str | None = None) -> Check:
    def condition(obj: dict[str, Any]) -> None:
        phase_is("Terminated")(obj)
        observed(obj)
        record = (obj.get("status") or {}).get("terminated") or {}
        assert record.get("reason") == str(reason), (obj["metadata"]["name"], record)
        assert record.get("cascadeFrom") == cascade_from, (obj["metadata"]["name"], record)
        if by is not None:
            assert record.get("by") == by, record
        assert condition_of(obj, "Terminated")["status"] == "True"
        assert condition_of(obj, "Ready")["status"] == "False"
    return condition


def token_issued(namespace: str, *names: str) -> Callable[[Any], Any]:
    """Each grant Active (or already Terminated) and, while Active, its token Secret exists and is in its status."""
    async def condition(cluster: Any) -> None:
        for name in names:
            obj = await check(cluster, Ref("AccessGrant", namespace, name), phase_is("Active", "Terminated"))
            if (obj.get("status") or {}).get("phase") != "Active":
                continue
            assert (obj.get("status") or {}).get("tokenSecret") == token_secret_name(name), obj.get("status")
            assert await secret(cluster, namespace, token_secret_name(name)) is not None, f"no token Secret of {name}"
    return condition


def tokens_gone(namespace: str, *names: str) -> Callable[[Any], Any]:
    async def condition(cluster: Any) -> None:
        left = [n for n in names if await secret(cluster, namespace, token_secret_name(n)) is not None]
        assert not left, f"token Secrets of terminated grants still exist: {left}"
    return condition


def both(*checks: Callable[[Any], Any]) -> Callable[[Any], Any]:
    async def condition(cluster: Any) -> None:
        for one in checks:
            await one(cluster)
    return condition


def told(name: str, reason: R | None = None, optional_activation: bool = False) -> list[Expected]:
    expected = [Expected(org_email(name), "grant-activated", optional=optional_activation)]
    if reason is not None:
        expected.append(Expected(org_email(name), "grant-terminated", (reason.titles.ru,)))
    return expected


# --- workflows -------------------------------------------------------------------------------------


def ended(name: str, namespace: str, reason: R) -> Workflow:
    """Active with its token, then terminated by a request in ``spec.termination`` on ``reason``."""
    ref = Ref("AccessGrant", namespace, name)
    body = grant(name, namespace, f"person:{name}")
    by = f"person:{name}" if reason is R.REFUSED else ADMIN
    return Workflow(
        name=f"grant-{reason.lower()}/{name}", ref=ref, final=ended_as(reason, by=by),
        also=tokens_gone(namespace, name),
        steps=[
            Step([body], ref=ref, until=phase_is("Active"), wait=token_issued(namespace, name), what="activated"),
            Step([terminated(body, reason, by=by)], ref=ref, until=phase_is("Terminated"), what=str(reason)),
        ],
        expected=told(name, reason),
    )


def revoked(name: str, namespace: str) -> Workflow:
    return ended(name, namespace, R.REVOKED)


def refused(name: str, namespace: str) -> Workflow:
    return ended(name, namespace, R.REFUSED)


def expired(name: str, namespace: str, seconds: float = EXPIRES_AFTER) -> Workflow:
    """``agreement.validUntil`` ``seconds`` after the grant is applied; the timer ends it at that instant."""
    ref = Ref("AccessGrant", namespace, name)

    def body() -> dict[str, Any]:  # built when the step runs, so the instant is always ahead
        until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
        return grant(name, namespace, f"person:{name}", agreement={
            "number": "ДД-2026/0108", "validFrom": "2026-01-01T00:00:00Z", "validUntil": stamp(until)})

    def final(obj: dict[str, Any]) -> None:
        ended_as(R.EXPIRED, by="tksh-operator")(obj)
        record = obj["status"]["terminated"]
        assert record["at"] == obj["spec"]["agreement"]["validUntil"], (record, obj["spec"]["agreement"])

    return Workflow(
        name=f"grant-expired/{name}", ref=ref, final=final, also=tokens_gone(namespace, name),
        steps=[Step([body], ref=ref, until=phase_is("Terminated"), what="expired")],
        expected=told(name, R.EXPIRED, optional_activation=True),
    )


def delegation(prefix: str, namespace: str) -> Workflow:
    """Three levels: chair -> accountant -> assistant; the chair's access revoked ends the chain (§20.4)."""
    chair, accountant, assistant = f"{prefix}-chair", f"{prefix}-acct", f"{prefix}-asst"
    bodies = [grant(chair, namespace, f"person:{chair}"),
              grant(accountant, namespace, f"person:{accountant}", delegatedFrom=chair, scope={"categories": [5]}),
              grant(assistant, namespace, f"person:{assistant}", delegatedFrom=accountant, scope={"categories": [5]})]
    ref = Ref("AccessGrant", namespace, chair)
    names = (chair, accountant, assistant)

    async def cascaded(cluster: Any) -> None:
        await check(cluster, Ref("AccessGrant", namespace, accountant), ended_as(R.DELEGATION_TERMINATED, chair))
        await check(cluster, Ref("AccessGrant", namespace, assistant), ended_as(R.DELEGATION_TERMINATED, accountant))
        await tokens_gone(namespace, *names)(cluster)

    return Workflow(
        name=f"grant-cascade/{prefix}", ref=ref, final=ended_as(R.REVOKED, by=ADMIN), also=cascaded,
        refs=[Ref("AccessGrant", namespace, n) for n in names],
        steps=[
            Step(bodies, wait=token_issued(namespace, *names), what="three levels activated"),
            Step([terminated(bodies[0], R.REVOKED)], ref=ref, until=phase_is("Terminated"), what="chair revoked"),
        ],
        expected=[*told(chair, R.REVOKED), *told(accountant, R.DELEGATION_TERMINATED),
                  *told(assistant, R.DELEGATION_TERMINATED)],
    )


def false_information(prefix: str, namespace: str, url: str) -> Workflow:
    """FALSE_INFORMATION on ``finding``: ``elsewhere`` (same subject) and its delegate ``helper`` end; the subject's
    application is flagged (§20.6)."""
    finding, elsewhere, helper, osi = (f"{prefix}-{n}" for n in ("finding", "elsewhere", "helper", "osi"))
    liar, other = bin_of(prefix), bin_of(prefix + "/other")
    subject = f"person:{prefix}-liar"
    app = application(osi, namespace, url)
    app["spec"]["owner"]["bin"] = liar
    bodies = [grant(finding, namespace, subject, owner_bin=liar),
              grant(elsewhere, namespace, subject, owner_bin=other),
              grant(helper, namespace, f"person:{helper}", owner_bin=other, delegatedFrom=elsewhere)]
    ref = Ref("AccessGrant", namespace, finding)
    names = (finding, elsewhere, helper)

    async def swept(cluster: Any) -> None:
        await check(cluster, Ref("AccessGrant", namespace, elsewhere), ended_as(R.FALSE_INFORMATION, finding))
        await check(cluster, Ref("AccessGrant", namespace, helper), ended_as(R.DELEGATION_TERMINATED, elsewhere))
        await tokens_gone(namespace, *names)(cluster)
        flagged = await check(cluster, Ref("AccessGrant", namespace, finding), lambda o: None)
        assert condition_of(flagged, "ApplicationsFlagged")["status"] == "True"

        def marked(obj: dict[str, Any]) -> None:
            annotations = obj["metadata"].get("annotations") or {}
            assert annotations.get("tksh.kz/false-information") == finding, annotations
            assert condition_of(obj, "FalseInformation")["status"] == "True"

        await check(cluster, Ref("DigitalObject", namespace, osi), marked)

    return Workflow(
        name=f"grant-false-information/{prefix}", ref=ref, final=ended_as(R.FALSE_INFORMATION, by=ADMIN), also=swept,
        refs=[Ref("AccessGrant", namespace, n) for n in names],
        steps=[
            Step([app, *bodies], wait=token_issued(namespace, *names), what="subject's grants activated"),
            Step([terminated(bodies[0], R.FALSE_INFORMATION, note="справка № 5 поддельная")], ref=ref,
                 until=phase_is("Terminated"), what="false information found"),
        ],
        expected=[*told(finding, R.FALSE_INFORMATION), *told(elsewhere, R.FALSE_INFORMATION),
                  *told(helper, R.DELEGATION_TERMINATED)],
    )
