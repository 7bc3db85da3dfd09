"""AccessGrant tokens: issued into a Secret next to an Active grant, renewed before expiry and after a key
rotation, deleted at once on termination. Thin glue over :func:`tksh.access.keyrotation.plan_token`; the signing
keys are :class:`tksh.handlers.signingkeys.KeyStore`'s.

Shape, for 100,000 grants (issue #7):

* **one kopf event handler** (``@kopf.on.event``) sees every watch event of every grant. It stores nothing on the
  object (no last-handled annotation, no finalizer, no progress), makes no API call when nothing is due, and runs
  again for every grant after a restart or a peering pause (kopf relists), so nothing is missed;
* **one shared scheduler** (:class:`DueQueue`: a heap of deadlines in one task) for what time alone brings: the
  renewal at two thirds of a token's life, the re-issue after a rotation (spread over a window), the end of the
  access. No daemon or timer per grant: that would be 100,000 sleeping tasks with kopf's bookkeeping each.

Writes, in this order, so that a crash or a concurrent termination never leaves a token behind:

1. ``status.tokenSecret`` (first issue only), guarded by the ``resourceVersion`` the plan was made from: a grant
   changed meanwhile is planned again from its next event;
2. the Secret (``create``; an existing one is overwritten only if its ``tksh.kz/grant-uid`` label is this grant's);
3. ``status.tokenExpiresAt``. Each write is an event of the grant, so whoever handles grants sees the token and,
   if the grant ended meanwhile, deletes it.

Before each of them the plan checks kopf's pause gate: a replica paused for a peer mid-plan stops there, and the
scheduler runs the grant again after the resume, planned afresh from what is stored (the peer writes meanwhile).

Deleting checks the label the same way and then deletes with the Secret's uid as precondition. Only
``status.tokenSecret`` and ``status.tokenExpiresAt`` are ever written on a grant. Events: ``TokenIssued`` (first
token), ``TokenDeleted``; renewals and re-issues are counted in ``tksh_tokens_issued_total{cause}`` and seen in
``status.tokenExpiresAt`` (an Event each would be 100,000 Events a day). No token ever goes to a log or an Event.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
from collections.abc import Mapping
from typing import Any, Final

import kopf
from kopf._cogs.clients import errors

from tksh import API_VERSION, GROUP, VERSION
from tksh.access.admission import FieldProblemError, facts_of
from tksh.access.controller import PauseGate
from tksh.access.facts import GrantFacts
from tksh.access.keyrotation import (
    GRANT_UID_LABEL,
    Action,
    KeyState,
    TokenPlan,
    TokenPolicy,
    TokenRecord,
    plan_token,
    token_secret,
    token_secret_name,
)
from tksh.conditions import rfc3339
from tksh.handlers import Context
from tksh.handlers.pausegate import kopf_pause_gate
from tksh.handlers.schedule import DueQueue
from tksh.handlers.signingkeys import JSON_PATCH, TRANSIENT, Api, KeyStore, now, secret_path

__all__ = ["Tokens", "register"]

PLURAL: Final = "accessgrants"
_LABEL_PATH: Final = "/metadata/labels/" + GRANT_UID_LABEL.replace("~", "~0").replace("/", "~1")
_log = logging.getLogger("tksh.handlers.tokens")


class _Retry(Exception):
    """The grant changed (409) or vanished (404) under a write: plan again from its next event."""


class _Foreign(Exception):
    """A Secret of the token's name exists and is not this grant's."""


class _Paused(Exception):
    """kopf paused this replica for a peer in the middle of a plan: the peer writes; the rest waits for the resume."""


@dataclasses.dataclass
class _Grant:
    name: str
    namespace: str
    uid: str
    rv: str
    facts: GrantFacts | None
    deleting: bool
    record: TokenRecord
    failures: int = 0

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def ref(self) -> dict[str, Any]:
        return {"apiVersion": API_VERSION, "kind": "AccessGrant",
                "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid}}

    def status_path(self) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}/{PLURAL}/{self.name}/status"


def _pause_gate() -> PauseGate | None:
    """kopf's pause state; without it the scheduler also runs on a paused replica, which its guarded, convergent
    writes tolerate."""
    gate = kopf_pause_gate()
    if gate is None:
        _log.warning("kopf's pause state was not found: token renewals also run on a paused replica")
    return gate


def _version(value: object) -> int | None:
    """A resourceVersion as a number (etcd's revision) or ``None`` when it is not one (then never compared)."""
    return int(value) if isinstance(value, str) and value.isdecimal() else None


def _facts(body: Mapping[str, Any]) -> GrantFacts | None:
    try:
        return facts_of(body, stored=True)  # an event's body: read once per version, shared with the lifecycle
    except FieldProblemError:
        return None


class Tokens:
    """The token side of the operator: grants seen, the scheduler, the keys."""

    def __init__(self, ctx: Context) -> None:
        config = ctx.config
        self.metrics = ctx.metrics
        self.config = config
        self.policy = TokenPolicy(datetime.timedelta(seconds=config.token_lifetime))
        self.retry = 0.2 if config.fast else 2.0
        self.max_backoff = 5.0 if config.fast else 300.0
        self.grants: dict[str, _Grant] = {}
        self.issued: dict[str, tuple[datetime.datetime, str]] = {}
        """What this process issued: grant key -> (expiry, kid)."""
        self.queue = DueQueue(self.reconcile)
        self.keys: KeyStore | None = None
        self.client: Api | None = None
        self._written: dict[str, int] = {}
        """The resourceVersion of this process's last write per grant, until the watch has delivered it: older
        events show the grant as it was before that write, and are skipped."""
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._gate_checked = False

    def start(self, settings: kopf.OperatorSettings) -> None:
        self.client = Api(settings, _log)
        self.keys = KeyStore(self.config, self.client, refresh=0.5 if self.config.fast else 60.0,
                             on_change=self._keys_changed)
        self._tasks = [asyncio.create_task(self.keys.run(), name="tksh-signing-keys"),
                       asyncio.create_task(self.queue.run(), name="tksh-token-scheduler")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _keys_changed(self, state: KeyState) -> None:
        """Another key signs now: every token is planned again (its rotation re-issue is spread by the plan)."""
        moment = now()
        for key in list(self.grants):
            self.queue.set(key, moment)

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def _backoff(self, failures: int) -> datetime.timedelta:
        return datetime.timedelta(seconds=min(self.retry * 2 ** min(failures, 16), self.max_backoff))

    # --- what kopf tells -------------------------------------------------------------------------------------------

    async def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        if not self._gate_checked:  # kopf's root tasks exist once events flow
            self._gate_checked = True
            self.queue.gate = None if self.config.standalone else _pause_gate()
        meta = body.get("metadata") or {}
        name, namespace, uid = str(meta.get("name")), str(meta.get("namespace")), str(meta.get("uid"))
        key = f"{namespace}/{name}"
        status = body.get("status") or {}
        if event_type == "DELETED":
            async with self._lock(key):
                self.grants.pop(key, None)
                self.issued.pop(key, None)
                self.queue.set(key, None)
                secret = status.get("tokenSecret")
                if isinstance(secret, str) and secret:
                    with contextlib.suppress(_Paused, *TRANSIENT):  # else the active peer, or the garbage collector
                        await self._delete_secret(namespace, secret, uid)
            self._locks.pop(key, None)
            self._written.pop(key, None)
            return
        version, written = _version(meta.get("resourceVersion")), self._written.get(key)
        if written is not None and version is not None:
            if version < written:
                return  # from before this process's own last write, which is on its way
            del self._written[key]
        mine = self.issued.get(key)
        record = TokenRecord.from_status(status)
        if mine is not None and record.expires_at == mine[0]:
            record = dataclasses.replace(record, kid=mine[1])
        async with self._lock(key):
            self.grants[key] = _Grant(name, namespace, uid, str(meta.get("resourceVersion")), _facts(body),
                                      bool(meta.get("deletionTimestamp")), record)
        await self.reconcile(key)

    # --- planning and acting -----------------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        async with self._lock(key):
            grant = self.grants.get(key)
            if grant is None:
                return
            state = self.keys.state if self.keys is not None else None
            if state is None:  # the keys are not loaded yet (or not loadable: the key store reports why)
                self.queue.set(key, now() + datetime.timedelta(seconds=self.retry))
                return
            moment = now()
            plan = self._plan(grant, state, moment)
            try:
                if plan.action is Action.ISSUE:
                    await self._issue(grant, state, plan, moment)
                elif plan.action is Action.DELETE:
                    await self._delete(grant, plan.why)
            except _Retry:
                self.queue.set(key, now() + self._backoff(1))
                return
            except _Paused:
                self.queue.set(key, now())  # the queue runs it again after the resume, planned afresh
                return
            except (_Foreign, ValueError, *TRANSIENT) as error:
                grant.failures += 1
                _log.warning("token of grant %s not %s, retrying: %s", key,
                             "issued" if plan.action is Action.ISSUE else "deleted", f"{type(error).__name__}: "
                             f"{error}"[:300])
                self.queue.set(key, now() + self._backoff(grant.failures))
                return
            grant.failures = 0
            if plan.action is not Action.KEEP:
                plan = self._plan(grant, state, now())
            if plan.action is not Action.KEEP:
                self.queue.set(key, now() + datetime.timedelta(seconds=self.retry))
            elif plan.wake_at is None and not grant.record.present:
                self.grants.pop(key, None)  # nothing to do until it changes: its next event brings it back
                self.queue.set(key, None)
            else:
                self.queue.set(key, plan.wake_at)

    def _plan(self, grant: _Grant, state: KeyState, moment: datetime.datetime) -> TokenPlan:
        return plan_token(grant.facts, grant.record, state.epoch, self.policy, moment, uid=grant.uid,
                          deleting=grant.deleting)

    def _writable(self) -> None:
        """Before each write of a plan: none from a replica paused meanwhile (a plan is several writes)."""
        gate = self.queue.gate
        if gate is not None and gate.is_paused():
            raise _Paused

    async def _status(self, grant: _Grant, fields: Mapping[str, Any], *, guard: bool = False) -> None:
        """A merge patch of the two token fields; ``guard``: only over the version the plan was made from."""
        assert self.client is not None
        self._writable()
        patch: dict[str, Any] = {"status": dict(fields)}
        if guard:
            patch["metadata"] = {"resourceVersion": grant.rv}
        try:
            body = await self.client.patch(grant.status_path(), patch)
        except (errors.APIConflictError, errors.APINotFoundError):
            raise _Retry from None
        grant.rv = str(body["metadata"]["resourceVersion"])
        version = _version(grant.rv)
        if version is not None:
            self._written[grant.key] = version

    async def _issue(self, grant: _Grant, state: KeyState, plan: TokenPlan, moment: datetime.datetime) -> None:
        assert self.client is not None and grant.facts is not None and plan.until is not None
        name = token_secret_name(grant.name)
        facts = dataclasses.replace(grant.facts, valid_until=plan.until, grounds_until=None, requested=None)
        token = state.keys.issue(facts, moment, self.policy.lifetime)
        claims = state.keys.verify(token, moment)
        if grant.record.secret != name:
            await self._status(grant, {"tokenSecret": name}, guard=True)
            grant.record = dataclasses.replace(grant.record, secret=name)
        await self._write_secret(grant, token_secret(
            grant_name=grant.name, namespace=grant.namespace, grant_uid=grant.uid, token=token, kid=claims.kid,
            issued_at=claims.issued_at, expires_at=claims.expires_at))
        self.issued[grant.key] = (claims.expires_at, claims.kid)
        await self._status(grant, {"tokenExpiresAt": rfc3339(claims.expires_at)})
        grant.record = TokenRecord(name, claims.expires_at, claims.kid)
        self.metrics.tokens_issued.labels(cause=plan.cause or "new").inc()
        _log.info("access token issued for grant %s into Secret %s: key %s, expires %s, cause %s (%s)", grant.key,
                  name, claims.kid, rfc3339(claims.expires_at), plan.cause, plan.why)
        if plan.cause == "new":
            self._writable()
            await self.client.event(grant.ref(), "Normal", "TokenIssued",
                                    f"access token issued into Secret {name}: signed with key {claims.kid}, "
                                    f"valid until {rfc3339(claims.expires_at)}")

    async def _write_secret(self, grant: _Grant, body: dict[str, Any]) -> None:
        """Create the Secret; overwrite it only when it is this grant's (its uid label)."""
        assert self.client is not None
        name = body["metadata"]["name"]
        self._writable()
        for _ in range(2):
            try:
                await self.client.post(secret_path(grant.namespace), body)
                return
            except errors.APIConflictError:
                pass
            ops = [{"op": "test", "path": _LABEL_PATH, "value": grant.uid},
                   {"op": "add", "path": "/data", "value": body["data"]},
                   {"op": "add", "path": "/metadata/annotations", "value": body["metadata"]["annotations"]}]
            try:
                await self.client.patch(secret_path(grant.namespace, name), ops, JSON_PATCH)
                return
            except errors.APINotFoundError:
                continue  # deleted in between: create it
            except errors.APIUnprocessableEntityError:
                await self.client.event(grant.ref(), "Warning", "TokenSecretConflict",
                                        f"Secret {name} exists and does not belong to this grant (no "
                                        f"{GRANT_UID_LABEL} label with its uid): no token is issued until it is "
                                        "removed or renamed")
                raise _Foreign(f"Secret {name} belongs to something else") from None
        raise _Retry

    async def _delete(self, grant: _Grant, why: str) -> None:
        assert self.client is not None
        name = grant.record.secret or token_secret_name(grant.name)
        deleted = await self._delete_secret(grant.namespace, name, grant.uid)
        await self._status(grant, {"tokenSecret": None, "tokenExpiresAt": None})
        grant.record = TokenRecord()
        self.issued.pop(grant.key, None)
        _log.info("access token of grant %s deleted (%s)", grant.key, why)
        if deleted:
            self._writable()
            await self.client.event(grant.ref(), "Normal", "TokenDeleted",
                                    f"access token Secret {name} deleted: {why}")

    async def _delete_secret(self, namespace: str, name: str, uid: str) -> bool:
        """Delete the token Secret if it is this grant's; whether it was deleted now."""
        assert self.client is not None
        self._writable()
        path = secret_path(namespace, name)
        try:
            found = await self.client.patch(path, [{"op": "test", "path": _LABEL_PATH, "value": uid}], JSON_PATCH)
        except errors.APINotFoundError:
            return False
        except errors.APIUnprocessableEntityError:
            _log.warning("Secret %s/%s is not the token of grant uid %s: left alone", namespace, name, uid)
            return False
        options = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": found["metadata"]["uid"]}}
        try:
            await self.client.delete(path, options)
        except (errors.APINotFoundError, errors.APIConflictError):
            return False
        return True


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    tokens = Tokens(ctx)

    @kopf.on.startup(registry=registry, id="tokens-start")
    async def start(settings: kopf.OperatorSettings, **_: Any) -> None:
        tokens.start(settings)  # the tasks wait for kopf's credentials, which come after the startup handlers

    @kopf.on.cleanup(registry=registry, id="tokens-stop")
    async def stop(**_: Any) -> None:
        await tokens.stop()

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry, id="tokens")
    async def grant_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        await tokens.observe(type, body)
