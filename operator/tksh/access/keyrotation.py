"""When the signing keys rotate, and when a grant's access token is issued, renewed or deleted. Pure.

No Kubernetes, no clock of its own: every function takes ``now``. The kopf glue is in
:mod:`tksh.handlers.tokens`; the keys and the tokens themselves are :mod:`tksh.access.tokens`.

Keys
----
The operator owns one Secret of signing keys (private, never mounted anywhere) and publishes a
second one, ``<name>-public``, with the same kids and the public halves only: the decision points
mount that one, so a compromised decision point leaks no signing key. The annotation
``tksh.kz/rotated-at`` on the private Secret is the instant its ``current`` key started signing;
the next rotation is due ``period`` after it, whoever runs the operator and however often it
restarts. :meth:`KeyState.rotate` moves next -> current -> previous and draws a new next: the key
that starts signing was published a whole period earlier, and the key that stops signing still
verifies for one more period, longer than any token it signed can live (the configuration refuses
a period shorter than twice the token lifetime).

Tokens
------
:func:`plan_token` decides, from a grant's facts and what its status says about its token, one of
``issue`` (with a cause: ``new``, ``renewal`` or ``rotation``), ``delete`` or ``keep`` and when to
look again. A token lives ``lifetime`` but never past the access's end (the agreement's and the
grounds' ``validUntil`` and a dated termination request); it is renewed once two thirds of its
lifetime have passed, unless it already reaches that end. After a rotation every token signed by
an older key is re-issued at an instant spread over a window (at most an hour, and within the
renewal slack) derived from the grant's uid, so a rotation over 100,000 grants is not a burst.
Which key signed a token is known when this process issued it; otherwise it is inferred from its
expiry (an unbounded token was issued exactly ``lifetime`` before it expires).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import enum
import hashlib
import math
from collections.abc import Mapping
from typing import Any, Final

from tksh import API_VERSION
from tksh.access.facts import GrantFacts
from tksh.access.tokens import KeySet, SigningKey
from tksh.conditions import rfc3339

__all__ = [
    "GRANT_UID_LABEL",
    "KEYS_SECRET_TYPE",
    "PUBLIC_KEYS_SECRET_TYPE",
    "ROTATED_AT",
    "TOKEN_KEY",
    "TOKEN_SECRET_TYPE",
    "Action",
    "KeyEpoch",
    "KeySecretError",
    "KeyState",
    "TokenPlan",
    "TokenPolicy",
    "TokenRecord",
    "plan_token",
    "public_secret_name",
    "read_key_secret",
    "token_secret",
    "token_secret_name",
]

ROTATED_AT: Final = "tksh.kz/rotated-at"
"""Annotation of the key Secret: when its ``current`` key started signing (RFC 3339)."""
KEYS_SECRET_TYPE: Final = "tksh.kz/signing-keys"
PUBLIC_KEYS_SECRET_TYPE: Final = "tksh.kz/verification-keys"
TOKEN_SECRET_TYPE: Final = "tksh.kz/access-token"
TOKEN_KEY: Final = "token"
"""The data key of a token Secret that holds the JWT."""
GRANT_UID_LABEL: Final = "tksh.kz/grant-uid"
KID_ANNOTATION: Final = "tksh.kz/kid"
ISSUED_AT_ANNOTATION: Final = "tksh.kz/issued-at"
EXPIRES_AT_ANNOTATION: Final = "tksh.kz/expires-at"
MANAGED_BY: Final = {"app.kubernetes.io/managed-by": "tksh-operator"}
PUBLIC_SUFFIX: Final = "-public"
TOKEN_SUFFIX: Final = "-token"
RENEW_AFTER: Final = 2 / 3
"""A token is renewed once this fraction of its lifetime has passed."""
MAX_ROTATION_SPREAD: Final = datetime.timedelta(hours=1)
_NAME_MAX: Final = 253


# --- names ----------------------------------------------------------------------------------------------------------


def public_secret_name(name: str) -> str:
    """The Secret with the public keys that the decision points mount."""
    return name + PUBLIC_SUFFIX


def token_secret_name(grant_name: str) -> str:
    """``<grant>-token``; a grant name too long for that keeps a prefix and gains a hash of the whole name, so
    two long names never share a Secret and the same grant always gets the same one."""
    name = grant_name + TOKEN_SUFFIX
    if len(name) <= _NAME_MAX:
        return name
    digest = hashlib.sha256(grant_name.encode()).hexdigest()[:10]
    prefix = grant_name[: _NAME_MAX - len(TOKEN_SUFFIX) - len(digest) - 1].rstrip("-.")
    return f"{prefix}-{digest}{TOKEN_SUFFIX}"


# --- keys -----------------------------------------------------------------------------------------------------------


class KeySecretError(ValueError):
    """The key Secret cannot be used; the message names the key and the rule, never the content."""


def _b64(files: Mapping[str, bytes]) -> dict[str, str]:
    return {name: base64.b64encode(data).decode() for name, data in sorted(files.items())}


def _parse_instant(text: object) -> datetime.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@dataclasses.dataclass(frozen=True)
class KeyEpoch:
    """Which key signs now, and since when."""

    kid: str
    since: datetime.datetime


@dataclasses.dataclass(frozen=True)
class KeyState:
    """The operator's key set and when its ``current`` key started signing."""

    keys: KeySet
    rotated_at: datetime.datetime

    @classmethod
    def generate(cls, *, issuer: str, audience: str, now: datetime.datetime) -> KeyState:
        return cls(KeySet.generate(issuer=issuer, audience=audience), _whole_second(now))

    @property
    def epoch(self) -> KeyEpoch:
        return KeyEpoch(self.keys.current.kid, self.rotated_at)

    def due(self, period: datetime.timedelta) -> datetime.datetime:
        """When the next rotation is due."""
        return self.rotated_at + period

    def rotate(self, now: datetime.datetime) -> KeyState:
        return KeyState(self.keys.rotate(), _whole_second(now))

    def public_keys(self) -> KeySet:
        """The same kids with the public halves only: verifies, cannot sign."""
        k = self.keys

        def public(key: SigningKey | None) -> SigningKey | None:
            return None if key is None else SigningKey(key.kid, key.public)

        current, next_key = public(k.current), public(k.next)
        assert current is not None and next_key is not None
        return KeySet(current, next_key, previous=public(k.previous), issuer=k.issuer, audience=k.audience,
                      leeway=k.leeway)

    def annotations(self) -> dict[str, str]:
        return {ROTATED_AT: rfc3339(self.rotated_at)}

    def secret(self, name: str, namespace: str) -> dict[str, Any]:
        """The private key Secret."""
        return _secret(name, namespace, KEYS_SECRET_TYPE, self.keys.to_pem_files(), self.annotations())

    def public_secret(self, name: str, namespace: str) -> dict[str, Any]:
        """The public key Secret (named by :func:`public_secret_name`) for the decision points."""
        return _secret(public_secret_name(name), namespace, PUBLIC_KEYS_SECRET_TYPE,
                       self.public_keys().to_pem_files(), self.annotations())


def _secret(name: str, namespace: str, kind: str, files: Mapping[str, bytes],
            annotations: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Secret", "type": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY),
                     "annotations": dict(annotations)},
        "data": _b64(files),
    }


def _whole_second(moment: datetime.datetime) -> datetime.datetime:
    return moment.astimezone(datetime.UTC).replace(microsecond=0)


def read_key_secret(secret: Mapping[str, Any], *, issuer: str, audience: str,
                    now: datetime.datetime) -> tuple[KeyState, bool]:
    """The key state of a key Secret, and whether its ``rotated-at`` annotation must be (re)written: when it is
    missing, unreadable or in the future, the rotation period counts from ``now``."""
    data = secret.get("data") or {}
    if not isinstance(data, Mapping):
        raise KeySecretError("data: must be a map of file names to base64 contents")
    files: dict[str, bytes] = {}
    for name, value in data.items():
        try:
            files[str(name)] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            raise KeySecretError(f"data.{name}: is not valid base64") from None
    try:
        keys = KeySet.from_pem_files(files, issuer=issuer, audience=audience)
    except ValueError as error:  # the messages of from_pem_files/from_pem name files and kids, never contents
        raise KeySecretError(f"data: {error}") from None
    for role, key in (("current", keys.current), ("next", keys.next)):
        if key.private is None:
            raise KeySecretError(f"data.{role}.pem: must be a private key (this Secret is the one that signs)")
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    rotated_at = _parse_instant(annotations.get(ROTATED_AT))
    if rotated_at is None or rotated_at > now:
        return KeyState(keys, _whole_second(now)), True
    return KeyState(keys, rotated_at), False


# --- tokens ---------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TokenPolicy:
    """How long tokens live (``lifetime``) and when they are renewed."""

    lifetime: datetime.timedelta
    renew_after: float = RENEW_AFTER

    def __post_init__(self) -> None:
        if self.lifetime <= datetime.timedelta(0):
            raise ValueError("lifetime must be positive")
        if not 0 < self.renew_after < 1:
            raise ValueError("renew_after must be between 0 and 1")

    @property
    def slack(self) -> datetime.timedelta:
        """How long before its expiry a token is renewed."""
        return self.lifetime * (1 - self.renew_after)

    @property
    def rotation_spread(self) -> datetime.timedelta:
        """The window over which the tokens signed by an older key are re-issued after a rotation."""
        return min(self.slack, MAX_ROTATION_SPREAD)


@dataclasses.dataclass(frozen=True)
class TokenRecord:
    """What is known of a grant's token: ``status.tokenSecret``, ``status.tokenExpiresAt``, and the ``kid`` that
    signed it when this process issued it (``None``: unknown)."""

    secret: str | None = None
    expires_at: datetime.datetime | None = None
    kid: str | None = None

    @classmethod
    def from_status(cls, status: Mapping[str, Any], kid: str | None = None) -> TokenRecord:
        secret = status.get("tokenSecret")
        return cls(secret if isinstance(secret, str) and secret else None,
                   _parse_instant(status.get("tokenExpiresAt")), kid)

    @property
    def present(self) -> bool:
        return self.secret is not None or self.expires_at is not None


class Action(enum.StrEnum):
    ISSUE = "issue"
    DELETE = "delete"
    KEEP = "keep"


@dataclasses.dataclass(frozen=True)
class TokenPlan:
    action: Action
    why: str
    cause: str | None = None
    """For ``issue``: ``new``, ``renewal`` or ``rotation`` (the label of ``tksh_tokens_issued_total``)."""
    wake_at: datetime.datetime | None = None
    """When to plan again without any change to the grant (``None``: only on a change)."""
    until: datetime.datetime | None = None
    """For ``issue``: the end of the access the token must not outlive."""


def access_end(facts: GrantFacts) -> datetime.datetime | None:
    """The earliest of the agreement's and the grounds' ``validUntil`` and a termination request's date;
    ``None`` for a request without a date (it ends the access at once)."""
    ends = [facts.valid_until]
    if facts.grounds_until is not None:
        ends.append(facts.grounds_until)
    if facts.requested is not None:
        if facts.requested.at is None:
            return None
        ends.append(facts.requested.at)
    return min(ends)


def _spread_fraction(uid: str) -> float:
    return int.from_bytes(hashlib.sha256(uid.encode()).digest()[:4], "big") / 2**32


def _floor_second(moment: datetime.datetime) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(math.floor(moment.timestamp()), datetime.UTC)


def _ended(facts: GrantFacts | None, deleting: bool, now: datetime.datetime) -> str | None:
    """Why the grant must not have a token now, or ``None`` when it must have one."""
    if facts is None:
        return "the grant breaks an identifier rule"
    if deleting:
        return "the grant is being deleted"
    if facts.terminated is not None:
        return f"the grant was terminated ({facts.terminated.reason})"
    if facts.phase != "Active":
        return f"the grant is not Active (phase {facts.phase or 'unset'})"
    end = access_end(facts)
    if end is None:
        return f"termination requested ({facts.requested.reason if facts.requested else ''})"
    if end <= now:
        return "the access has ended"
    return None


def plan_token(
    facts: GrantFacts | None,
    record: TokenRecord,
    epoch: KeyEpoch,
    policy: TokenPolicy,
    now: datetime.datetime,
    *,
    uid: str,
    deleting: bool = False,
) -> TokenPlan:
    """What to do about one grant's token now, and when to look again (see the module description).

    ``facts`` is ``None`` for a grant that breaks an identifier rule (it gets no token); ``deleting`` is true once
    the grant has a ``deletionTimestamp``.
    """
    why_not = _ended(facts, deleting, now)
    if why_not is not None or facts is None:
        if record.present:
            return TokenPlan(Action.DELETE, why_not or "")
        return TokenPlan(Action.KEEP, why_not or "")
    end = access_end(facts)
    assert end is not None
    if facts.valid_from is not None and facts.valid_from > now:
        return TokenPlan(Action.KEEP if not record.present else Action.DELETE, "the agreement is not in force yet",
                         wake_at=facts.valid_from)
    expected = token_secret_name(facts.id.partition("/")[2])
    if record.secret != expected or record.expires_at is None:
        return TokenPlan(Action.ISSUE, "the grant is Active and has no token", "new", until=end)
    expires = record.expires_at
    if expires > end:
        return TokenPlan(Action.ISSUE, "the token outlives the access's end", "renewal", until=end)
    if expires <= now:
        return TokenPlan(Action.ISSUE, "the token has expired", "renewal", until=end)
    renew_at = None if expires >= _floor_second(end) else expires - policy.slack
    signed_by_current = (record.kid == epoch.kid) if record.kid is not None \
        else expires - policy.lifetime >= epoch.since
    rotate_at = None if signed_by_current else epoch.since + policy.rotation_spread * _spread_fraction(uid)
    if renew_at is not None and now >= renew_at:
        return TokenPlan(Action.ISSUE, "two thirds of the token's lifetime have passed", "renewal", until=end)
    if rotate_at is not None and now >= rotate_at:
        return TokenPlan(Action.ISSUE, "the token was signed by a key that no longer signs", "rotation", until=end)
    wake = min(t for t in (renew_at, rotate_at, end) if t is not None)
    return TokenPlan(Action.KEEP, "the token is current", wake_at=wake)


def token_secret(
    *,
    grant_name: str,
    namespace: str,
    grant_uid: str,
    token: str,
    kid: str,
    issued_at: datetime.datetime,
    expires_at: datetime.datetime,
) -> dict[str, Any]:
    """The token Secret next to its grant: owned by it (the garbage collector deletes it with the grant), linked
    to it by the uid label; no personal data in labels or annotations (the subject is inside the token only)."""
    return {
        "apiVersion": "v1", "kind": "Secret", "type": TOKEN_SECRET_TYPE,
        "metadata": {
            "name": token_secret_name(grant_name), "namespace": namespace,
            "labels": {**MANAGED_BY, GRANT_UID_LABEL: grant_uid},
            "annotations": {KID_ANNOTATION: kid, ISSUED_AT_ANNOTATION: rfc3339(issued_at),
                            EXPIRES_AT_ANNOTATION: rfc3339(expires_at)},
            "ownerReferences": [{"apiVersion": API_VERSION, "kind": "AccessGrant", "name": grant_name,
                                 "uid": grant_uid, "controller": True}],
        },
        "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }
