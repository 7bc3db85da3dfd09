"""The pure schedule of keys and tokens: rotation time from the Secret, Secret names, the token plan, the claims."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
from typing import Any

import pytest

from tests.unit.access.helpers import DAY, T0, grant, terminated
from tksh.access import TerminationFacts
from tksh.access.keyrotation import (
    GRANT_UID_LABEL,
    ROTATED_AT,
    TOKEN_SECRET_TYPE,
    Action,
    KeyEpoch,
    KeySecretError,
    KeyState,
    TokenPlan,
    TokenPolicy,
    TokenRecord,
    plan_token,
    public_secret_name,
    read_key_secret,
    token_secret,
    token_secret_name,
)
from tksh.access.tokens import KeySet, TokenError, TokenReason
from tksh.resources.accessgrant import TerminationReason

ISS, AUD = "tksh-operator", "tksh-authz"
HOUR = datetime.timedelta(hours=1)
LIFE = datetime.timedelta(hours=24)
POLICY = TokenPolicy(LIFE)
EPOCH = KeyEpoch("k-current", T0 - 10 * DAY)
NAME = token_secret_name("g1")


def plan(facts: Any = None, record: TokenRecord | None = None, *, at: datetime.datetime = T0,
         epoch: KeyEpoch = EPOCH, uid: str = "uid-1", **kw: Any) -> TokenPlan:
    return plan_token(grant() if facts is None else facts, record or TokenRecord(), epoch, POLICY, at, uid=uid, **kw)


def fresh(issued: datetime.datetime = T0 - HOUR, kid: str | None = "k-current") -> TokenRecord:
    """The record of an unbounded token issued at ``issued``."""
    return TokenRecord(NAME, issued + LIFE, kid)


# --- key Secret and rotation time ------------------------------------------------------------------------------------


def secret_of(state: KeyState) -> dict[str, Any]:
    return state.secret("tksh-signing-keys", "tksh-system")


def test_a_key_secret_round_trips_with_its_rotation_time() -> None:
    state = KeyState.generate(issuer=ISS, audience=AUD, now=T0 + datetime.timedelta(microseconds=7))
    secret = secret_of(state)
    assert secret["metadata"]["annotations"] == {ROTATED_AT: "2026-09-01T12:00:00Z"}
    back, rewrite = read_key_secret(secret, issuer=ISS, audience=AUD, now=T0 + DAY)
    assert not rewrite
    assert back.rotated_at == T0
    assert back.epoch == state.epoch
    assert back.keys.next.kid == state.keys.next.kid


def test_the_rotation_is_due_a_period_after_the_annotation_whatever_the_restarts() -> None:
    state = KeyState.generate(issuer=ISS, audience=AUD, now=T0)
    period = 30 * DAY
    for restart in (T0 + DAY, T0 + 29 * DAY):  # a restart reads the annotation: no early and no late rotation
        again, _ = read_key_secret(secret_of(state), issuer=ISS, audience=AUD, now=restart)
        assert again.due(period) == T0 + period


@pytest.mark.parametrize("annotation", [None, "yesterday", "2026-09-01T12:00:00", "2099-01-01T00:00:00Z"])
def test_a_missing_unreadable_or_future_rotation_time_counts_from_now_and_is_rewritten(annotation: str | None) -> None:
    secret = secret_of(KeyState.generate(issuer=ISS, audience=AUD, now=T0))
    secret["metadata"]["annotations"] = {} if annotation is None else {ROTATED_AT: annotation}
    state, rewrite = read_key_secret(secret, issuer=ISS, audience=AUD, now=T0 + DAY)
    assert rewrite
    assert state.rotated_at == T0 + DAY


def test_rotation_publishes_next_before_it_signs_and_keeps_the_old_key_verifying() -> None:
    state = KeyState.generate(issuer=ISS, audience=AUD, now=T0)
    old_current, old_next = state.keys.current.kid, state.keys.next.kid
    token = state.keys.issue(grant(), T0, LIFE)
    rotated = state.rotate(T0 + 30 * DAY)
    assert rotated.keys.current.kid == old_next  # it was in the JWKS a whole period before signing
    assert rotated.keys.previous is not None and rotated.keys.previous.kid == old_current
    assert rotated.rotated_at == T0 + 30 * DAY
    assert rotated.keys.verify(token, T0 + HOUR).kid == old_current
    twice = rotated.rotate(T0 + 60 * DAY)
    with pytest.raises(TokenError) as refused:
        twice.keys.verify(token, T0 + HOUR)
    assert refused.value.reason is TokenReason.TOKEN_UNKNOWN_KID


def test_the_public_secret_has_the_same_kids_and_no_private_key() -> None:
    state = KeyState.generate(issuer=ISS, audience=AUD, now=T0).rotate(T0 + DAY)
    public = state.public_secret("tksh-signing-keys", "tksh-system")
    assert public["metadata"]["name"] == public_secret_name("tksh-signing-keys") == "tksh-signing-keys-public"
    files = {k: base64.b64decode(v) for k, v in public["data"].items()}
    assert all(b"PRIVATE" not in pem for pem in files.values())
    assert json.loads(files["kids"]) == json.loads(base64.b64decode(secret_of(state)["data"]["kids"]))
    verifier = KeySet.from_pem_files(files, issuer=ISS, audience=AUD)
    assert verifier.jwks() == state.keys.jwks()
    token = state.keys.issue(grant(), T0 + DAY, LIFE)
    assert verifier.verify(token, T0 + DAY).kid == state.keys.current.kid
    with pytest.raises(ValueError, match="no private part"):
        verifier.issue(grant(), T0 + DAY, LIFE)
    with pytest.raises(KeySecretError, match=r"data.current.pem: must be a private key"):
        read_key_secret(public, issuer=ISS, audience=AUD, now=T0)


@pytest.mark.parametrize(("data", "message"), [
    ({"kids": "!!!"}, r"data.kids: is not valid base64"),
    ({"kids": base64.b64encode(b"[]").decode()}, "'kids' must be a JSON object"),
    ({}, "needs 'kids'"),
])
def test_a_broken_key_secret_is_refused_naming_the_key(data: dict[str, str], message: str) -> None:
    with pytest.raises(KeySecretError, match=message) as refused:
        read_key_secret({"metadata": {}, "data": data}, issuer=ISS, audience=AUD, now=T0)
    assert "!!!" not in str(refused.value)


# --- Secret names ----------------------------------------------------------------------------------------------------


def test_token_secret_names_are_derived_from_the_grant_and_fit_the_limit() -> None:
    assert token_secret_name("dostyk12-chair") == "dostyk12-chair-token"
    fits = "a" * (253 - len("-token"))
    assert token_secret_name(fits) == fits + "-token"
    long_a, long_b = "a" * 250 + "-x", "a" * 250 + "-y"
    name_a, name_b = token_secret_name(long_a), token_secret_name(long_b)
    assert len(name_a) <= 253 and len(name_b) <= 253
    assert name_a != name_b  # the hash of the whole name keeps long names apart
    assert name_a == token_secret_name(long_a)  # deterministic
    assert name_a.endswith("-token")
    dotted = token_secret_name("b" * 235 + "." + "c" * 17)  # cut right after the dot: the dot is dropped
    assert dotted.startswith("b" * 235 + "-") and len(dotted) <= 253


def test_the_token_secret_is_owned_by_its_grant_and_carries_no_personal_data() -> None:
    body = token_secret(grant_name="g1", namespace="housing", grant_uid="uid-1", token="a.b.c", kid="k1",
                        issued_at=T0, expires_at=T0 + LIFE)
    meta = body["metadata"]
    assert body["type"] == TOKEN_SECRET_TYPE
    assert (meta["name"], meta["namespace"]) == ("g1-token", "housing")
    assert meta["labels"][GRANT_UID_LABEL] == "uid-1"
    (owner,) = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("AccessGrant", "g1", "uid-1", True)
    assert "blockOwnerDeletion" not in owner  # that would need the accessgrants/finalizers permission
    assert base64.b64decode(body["data"]["token"]) == b"a.b.c"
    text = json.dumps(meta)
    assert "person:a1" not in text and "a.b.c" not in text


# --- the plan --------------------------------------------------------------------------------------------------------


def test_an_active_grant_without_a_token_gets_one() -> None:
    decided = plan()
    assert (decided.action, decided.cause) == (Action.ISSUE, "new")
    assert decided.until == T0 + 365 * DAY
    assert plan(record=TokenRecord("other-name", T0 + HOUR)).cause == "new"  # not the grant's Secret
    assert plan(record=TokenRecord(NAME, None)).cause == "new"  # the name written, the token not yet


def test_a_fresh_token_is_kept_until_two_thirds_of_its_lifetime() -> None:
    decided = plan(record=fresh(T0 - HOUR))
    assert decided.action is Action.KEEP
    assert decided.wake_at == T0 - HOUR + LIFE * 2 / 3
    due = plan(record=fresh(T0 - HOUR), at=T0 - HOUR + LIFE * 2 / 3)
    assert (due.action, due.cause) == (Action.ISSUE, "renewal")


def test_an_expired_token_or_one_outliving_the_access_is_reissued() -> None:
    assert plan(record=fresh(T0 - 2 * LIFE)).cause == "renewal"
    short = grant(valid_until=T0 + HOUR)
    decided = plan(short, fresh(T0 - HOUR))
    assert (decided.action, decided.cause, decided.until) == (Action.ISSUE, "renewal", T0 + HOUR)


def test_a_token_reaching_the_end_of_the_access_is_not_renewed() -> None:
    end = T0 + 5 * HOUR
    decided = plan(grant(valid_until=end), TokenRecord(NAME, end, "k-current"))
    assert decided.action is Action.KEEP
    assert decided.wake_at == end  # only to delete it then


@pytest.mark.parametrize("changes", [
    {"grounds_until": T0 + HOUR},
    {"requested": TerminationFacts(TerminationReason.REVOKED, at=T0 + HOUR)},
])
def test_the_token_never_outlives_the_grounds_or_a_dated_termination(changes: dict[str, Any]) -> None:
    decided = plan(grant(**changes))
    assert (decided.action, decided.until) == (Action.ISSUE, T0 + HOUR)


def test_claims_of_an_issued_token_end_with_the_access() -> None:
    """What the handler does with a plan: the claims' exp is never past the access's end, rounded down."""
    state = KeyState.generate(issuer=ISS, audience=AUD, now=T0)
    end = T0 + datetime.timedelta(hours=2, microseconds=900_000)
    facts = grant(valid_until=T0 + DAY, grounds_until=end)
    decided = plan(facts)
    assert decided.until == end
    capped = dataclasses.replace(facts, valid_until=decided.until, grounds_until=None, requested=None)
    claims = state.keys.verify(state.keys.issue(capped, T0, LIFE), T0)
    assert claims.expires_at == T0 + 2 * HOUR
    assert claims.kid == state.keys.current.kid
    assert claims.grant == "housing/g1" and claims.subject_id == "person:a1"
    unbounded = state.keys.verify(state.keys.issue(grant(), T0, LIFE), T0)
    assert unbounded.expires_at == T0 + LIFE


@pytest.mark.parametrize(("facts", "why"), [
    (terminated(grant(), TerminationReason.REVOKED), "terminated (REVOKED)"),
    (grant(phase="Terminated"), "not Active"),
    (grant(phase="Pending"), "not Active"),
    (grant(requested=TerminationFacts(TerminationReason.REFUSED)), "termination requested (REFUSED)"),
    (grant(requested=TerminationFacts(TerminationReason.REFUSED, at=T0 - HOUR)), "has ended"),
    (grant(valid_until=T0), "has ended"),
    (None, "identifier rule"),
])
def test_an_ended_grant_has_its_token_deleted(facts: Any, why: str) -> None:
    decided = plan_token(facts, fresh(), EPOCH, POLICY, T0, uid="uid-1")
    assert decided.action is Action.DELETE
    assert why in decided.why
    assert plan_token(facts, TokenRecord(), EPOCH, POLICY, T0, uid="uid-1").action is Action.KEEP


def test_a_grant_being_deleted_has_its_token_deleted() -> None:
    assert plan(record=fresh(), deleting=True).action is Action.DELETE


def test_an_agreement_not_in_force_yet_waits_for_its_start() -> None:
    decided = plan(grant(valid_from=T0 + HOUR))
    assert (decided.action, decided.wake_at) == (Action.KEEP, T0 + HOUR)


def test_after_a_rotation_tokens_of_the_old_key_are_reissued_spread_over_a_window() -> None:
    rotated = KeyEpoch("k-new", T0)
    spread = POLICY.rotation_spread
    assert spread == HOUR  # min(slack of 8 h, 1 h)
    dues = []
    for n in range(200):
        decided = plan(record=fresh(T0 - HOUR, kid="k-current"), epoch=rotated, at=T0, uid=f"uid-{n}")
        assert decided.action is Action.KEEP
        assert decided.wake_at is not None and T0 <= decided.wake_at < T0 + spread
        dues.append(decided.wake_at)
        due = plan(record=fresh(T0 - HOUR, kid="k-current"), epoch=rotated, at=decided.wake_at, uid=f"uid-{n}")
        assert (due.action, due.cause) == (Action.ISSUE, "rotation")
    assert len(set(dues)) > 150  # spread, not a burst
    assert plan(record=fresh(T0 + datetime.timedelta(minutes=1), kid="k-new"), epoch=rotated,
                at=T0 + 2 * HOUR).action is Action.KEEP


def test_without_a_known_kid_the_signing_key_is_inferred_from_the_expiry() -> None:
    rotated = KeyEpoch("k-new", T0)
    after = plan(record=fresh(T0 + datetime.timedelta(minutes=5), kid=None), epoch=rotated, at=T0 + HOUR)
    assert after.action is Action.KEEP and after.wake_at == T0 + datetime.timedelta(minutes=5) + LIFE * 2 / 3
    before = plan(record=fresh(T0 - datetime.timedelta(minutes=5), kid=None), epoch=rotated, at=T0 + HOUR)
    assert (before.action, before.cause) == (Action.ISSUE, "rotation")


@pytest.mark.parametrize(("lifetime", "renew_after"), [(datetime.timedelta(0), 0.5), (HOUR, 1.0), (HOUR, 0.0)])
def test_a_token_policy_refuses_nonsense(lifetime: datetime.timedelta, renew_after: float) -> None:
    with pytest.raises(ValueError):
        TokenPolicy(lifetime, renew_after)


def test_the_record_reads_the_status() -> None:
    record = TokenRecord.from_status({"tokenSecret": "g1-token", "tokenExpiresAt": "2026-09-02T12:00:00Z"}, "k1")
    assert record == TokenRecord("g1-token", T0 + DAY, "k1")
    assert not TokenRecord.from_status({"tokenSecret": "", "tokenExpiresAt": "soon"}).present


# --- the shared scheduler --------------------------------------------------------------------------------------------


async def test_the_due_queue_runs_keys_at_their_deadline_replaced_or_removed() -> None:
    import asyncio

    from tksh.handlers.schedule import DueQueue

    ran: list[str] = []
    done = asyncio.Event()

    async def act(key: str) -> None:
        ran.append(key)
        if key == "last":
            done.set()

    queue = DueQueue(act, concurrency=1)
    start = datetime.datetime.now(datetime.UTC)
    queue.set("b", start + datetime.timedelta(milliseconds=20))
    queue.set("a", start)
    queue.set("gone", start)
    queue.set("gone", None)  # removed
    queue.set("moved", start)
    queue.set("moved", start + datetime.timedelta(milliseconds=40))  # replaced: runs once, later
    queue.set("last", start + datetime.timedelta(milliseconds=60))
    assert len(queue) == 4
    task = asyncio.create_task(queue.run())
    try:
        await asyncio.wait_for(done.wait(), 30)
    finally:
        task.cancel()
    assert ran == ["a", "b", "moved", "last"]
    assert len(queue) == 0


async def test_the_due_queue_waits_while_the_replica_is_paused() -> None:
    import asyncio

    from tksh.handlers.schedule import DueQueue

    class Paused:
        def __init__(self) -> None:
            self.resumed = asyncio.Event()

        def is_paused(self) -> bool:
            return not self.resumed.is_set()

        async def wait_resumed(self) -> None:
            await self.resumed.wait()

    ran: list[str] = []
    acted = asyncio.Event()

    async def act(key: str) -> None:
        ran.append(key)
        acted.set()

    queue = DueQueue(act)
    gate = Paused()
    queue.gate = gate
    queue.set("k", datetime.datetime.now(datetime.UTC))
    task = asyncio.create_task(queue.run())
    try:
        for _ in range(20):
            await asyncio.sleep(0)
        assert ran == []  # due, but paused
        gate.resumed.set()
        await asyncio.wait_for(acted.wait(), 30)
    finally:
        task.cancel()
    assert ran == ["k"]


# --- the decision point picks up rotated keys from its mounted folder ------------------------------------------------


def _kubelet_write(folder: Any, files: dict[str, bytes]) -> None:
    """The kubelet's atomic update of a mounted Secret: a fresh timestamped folder, ``..data`` renamed onto it."""
    import os
    import time

    fresh = folder / f"..{time.time_ns()}"
    fresh.mkdir()
    for name, data in files.items():
        (fresh / name).write_bytes(data)
    (folder / "..data_tmp").symlink_to(fresh.name)
    os.replace(folder / "..data_tmp", folder / "..data")
    for name in files:
        if not (folder / name).is_symlink():
            (folder / name).symlink_to(f"..data/{name}")


def test_the_decision_point_reloads_changed_key_files_and_keeps_its_keys_when_they_are_broken(tmp_path: Any) -> None:
    from tksh.access.index import DecisionIndex
    from tksh.access.server import AuthzConfig, KeyDirReloader
    from tksh.access.service import DecisionService

    state = KeyState.generate(issuer=ISS, audience=AUD, now=T0)
    _kubelet_write(tmp_path, state.public_keys().to_pem_files())
    config = AuthzConfig(keys_dir=tmp_path, issuer=ISS, audience=AUD)
    service = DecisionService(DecisionIndex(), config.key_set())
    reloader = KeyDirReloader(config, tmp_path, service)
    assert reloader.check() is False  # nothing changed
    rotated = state.rotate(T0 + DAY)
    _kubelet_write(tmp_path, rotated.public_keys().to_pem_files())
    assert reloader.check() is True
    assert {k["kid"] for k in service.keys.jwks()["keys"]} == {
        rotated.keys.current.kid, rotated.keys.next.kid, state.keys.current.kid}
    old_token = state.keys.issue(grant(), T0, LIFE)
    assert service.keys.verify(old_token, T0 + HOUR).kid == state.keys.current.kid  # previous still verifies
    broken = dict(rotated.rotate(T0 + 2 * DAY).public_keys().to_pem_files(), kids=b"{not json")
    _kubelet_write(tmp_path, broken)
    assert reloader.check() is False  # the keys in use stay
    assert service.keys.next.kid == rotated.keys.next.kid
    assert service.metrics.value("tksh_authz_key_reloads_total", {"result": "failed"}) == 1
    assert service.metrics.value("tksh_authz_key_reloads_total", {"result": "ok"}) == 1
