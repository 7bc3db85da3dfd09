"""Access tokens (JWT) for grants: signing keys, issuance, verification, the published key set (JWKS).

Pure: no Kubernetes, no HTTP. The operator issues a token when a grant becomes Active; the decision point
verifies it and then re-checks the grant in its index (a terminated grant is denied whatever its token says).

**Algorithm: EdDSA (Ed25519), and only it.** Ed25519 signatures are deterministic (no per-signature random
nonce whose reuse or bias leaks the key, the classic ECDSA/ES256 failure), keys and signatures are small
(32/64 bytes), verification is fast, and there are no parameter choices to get wrong (RSA padding, curve
points). Verification *pins* the algorithm: any other ``alg`` (``none``, ``HS256`` made with the public key as
an HMAC secret, ``RS256``...) is refused before any key is touched.

**Keys.** A :class:`KeySet` holds the ``current`` key (signs), the ``next`` key (published, not used yet) and
optionally the ``previous`` key (verify only). They come from PEM data as a Kubernetes Secret holds them
(:meth:`KeySet.from_pem_files`: ``current.pem``, ``next.pem``, optional ``previous.pem`` and ``kids``, a JSON
object ``{"current": kid, "next": kid, "previous": kid}``). A PEM may hold a public key only: such a key set
verifies but cannot issue (a decision point needs no private key).

**Rotation.** The next key is published in the JWKS before it signs anything, so every verifier (and every
cache of the JWKS) already knows it when the first token signed with it appears. :meth:`KeySet.rotate`
moves ``current`` to ``previous`` (still verifying the tokens it signed until they expire), ``next`` to
``current``, and generates a new ``next``. Rotate no more often than the longest token lifetime plus the
JWKS cache time, so the previous key is never needed after it is dropped at the following rotation.

**Claims.** ``iss``, ``aud``, ``sub`` (subject id), ``grant`` (``namespace/name``), ``jti``, ``iat``, ``nbf``,
``exp``. ``exp`` is never past the agreement's ``validUntil`` nor the grounds' ``validUntil`` (rounded down
to the second). Failures raise :class:`TokenError` with a :class:`TokenReason` and texts in kk/ru/en.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import math
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

from tksh.access.facts import GrantFacts
from tksh.access.identifiers import IdentifierError, validate_grant_id, validate_subject_id
from tksh.resources.common import Titles

__all__ = [
    "ALGORITHM",
    "REQUIRED_CLAIMS",
    "KeySet",
    "SigningKey",
    "TokenClaims",
    "TokenError",
    "TokenReason",
]

ALGORITHM: Final = "EdDSA"
REQUIRED_CLAIMS: Final = ("iss", "aud", "sub", "grant", "jti", "iat", "nbf", "exp")
_KID_ROLES: Final = ("current", "next", "previous")


class TokenReason(enum.StrEnum):
    """Why a token is refused (HTTP 401 at the decision point)."""

    TOKEN_MALFORMED = "TOKEN_MALFORMED"
    TOKEN_ALG_NOT_ALLOWED = "TOKEN_ALG_NOT_ALLOWED"
    TOKEN_UNKNOWN_KID = "TOKEN_UNKNOWN_KID"
    TOKEN_BAD_SIGNATURE = "TOKEN_BAD_SIGNATURE"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    TOKEN_NOT_YET_VALID = "TOKEN_NOT_YET_VALID"
    TOKEN_WRONG_ISSUER = "TOKEN_WRONG_ISSUER"
    TOKEN_WRONG_AUDIENCE = "TOKEN_WRONG_AUDIENCE"
    TOKEN_MISSING_CLAIM = "TOKEN_MISSING_CLAIM"

    @property
    def texts(self) -> Titles:
        kk, ru, en = _TEXTS[self]
        return Titles(kk=kk, ru=ru, en=en)


_TEXTS: Final[dict[TokenReason, tuple[str, str, str]]] = {
    TokenReason.TOKEN_MALFORMED: (
        "қол жеткізу токені бүлінген немесе JWT емес",
        "токен доступа повреждён или не является JWT",
        "the access token is malformed or not a JWT",
    ),
    TokenReason.TOKEN_ALG_NOT_ALLOWED: (
        f"токен рұқсат етілмеген алгоритммен қол қойылған (тек {ALGORITHM})",
        f"токен подписан недопустимым алгоритмом (допускается только {ALGORITHM})",
        f"the token is signed with an algorithm that is not allowed (only {ALGORITHM})",
    ),
    TokenReason.TOKEN_UNKNOWN_KID: (
        "токенге белгісіз кілтпен қол қойылған (kid жарияланған кілттер жиынында жоқ)",
        "токен подписан неизвестным ключом (kid нет среди опубликованных ключей)",
        "the token is signed with an unknown key (its kid is not in the published key set)",
    ),
    TokenReason.TOKEN_BAD_SIGNATURE: (
        "токеннің қолтаңбасы жарамсыз: ол өзгертілген немесе басқа кілтпен қол қойылған",
        "подпись токена недействительна: он изменён или подписан другим ключом",
        "the token's signature is invalid: it was altered or signed with another key",
    ),
    TokenReason.TOKEN_EXPIRED: (
        "токеннің қолданылу мерзімі өтті",
        "срок действия токена истёк",
        "the token has expired",
    ),
    TokenReason.TOKEN_NOT_YET_VALID: (
        "токен әлі күшіне енген жоқ",
        "токен ещё не действует",
        "the token is not valid yet",
    ),
    TokenReason.TOKEN_WRONG_ISSUER: (
        "токенді басқа шығарушы берген",
        "токен выпущен другим издателем",
        "the token was issued by another issuer",
    ),
    TokenReason.TOKEN_WRONG_AUDIENCE: (
        "токен басқа қабылдаушыға арналған",
        "токен предназначен для другого получателя",
        "the token is meant for another audience",
    ),
    TokenReason.TOKEN_MISSING_CLAIM: (
        "токенде міндетті талап (claim) жоқ",
        "в токене нет обязательного утверждения (claim)",
        "the token lacks a required claim",
    ),
}


class TokenError(Exception):
    """A token is refused (or cannot be issued): ``reason`` and, when known, the ``claim`` at fault."""

    def __init__(self, reason: TokenReason, detail: str = "", claim: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason
        self.detail = detail
        self.claim = claim

    @property
    def texts(self) -> Titles:
        return self.reason.texts


@dataclasses.dataclass(frozen=True, slots=True)
class TokenClaims:
    """The verified content of a token."""

    subject_id: str
    grant: str
    jti: str
    issued_at: datetime.datetime
    not_before: datetime.datetime
    expires_at: datetime.datetime
    kid: str


@dataclasses.dataclass(frozen=True, slots=True)
class SigningKey:
    """One Ed25519 key with its ``kid``; ``private`` is ``None`` for a verify-only key."""

    kid: str
    public: Ed25519PublicKey
    private: Ed25519PrivateKey | None = None

    @classmethod
    def generate(cls, kid: str | None = None) -> SigningKey:
        private = Ed25519PrivateKey.generate()
        return cls(kid or uuid.uuid4().hex, private.public_key(), private)

    @classmethod
    def from_pem(cls, kid: str, pem: bytes) -> SigningKey:
        """A private (PKCS#8) or public (SubjectPublicKeyInfo) Ed25519 key in PEM."""
        if not kid or not isinstance(kid, str):
            raise ValueError("a key needs a non-empty kid")
        if b"PRIVATE KEY" in pem:
            private = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(private, Ed25519PrivateKey):
                raise ValueError(f"key {kid}: not an Ed25519 private key")
            return cls(kid, private.public_key(), private)
        public = serialization.load_pem_public_key(pem)
        if not isinstance(public, Ed25519PublicKey):
            raise ValueError(f"key {kid}: not an Ed25519 public key")
        return cls(kid, public)

    def private_pem(self) -> bytes:
        if self.private is None:
            raise ValueError(f"key {self.kid} has no private part")
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def public_pem(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def jwk(self) -> dict[str, str]:
        """The public key as a JWK (RFC 8037: ``kty`` OKP, ``crv`` Ed25519)."""
        jwk: dict[str, str] = json.loads(OKPAlgorithm.to_jwk(self.public))
        return {**jwk, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}


def _epoch(instant: datetime.datetime) -> int:
    return math.floor(instant.timestamp())


def _instant(seconds: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


class KeySet:
    """The signing keys of the decision API: ``current`` signs, ``next`` is published ahead, ``previous``
    still verifies. ``issuer`` and ``audience`` are pinned at verification."""

    def __init__(
        self,
        current: SigningKey,
        next_key: SigningKey,
        *,
        issuer: str,
        audience: str,
        previous: SigningKey | None = None,
        leeway: datetime.timedelta = datetime.timedelta(seconds=30),
    ) -> None:
        keys = [k for k in (current, next_key, previous) if k is not None]
        if len({k.kid for k in keys}) != len(keys):
            raise ValueError("the kids of the current, next and previous keys must differ")
        if not issuer or not audience:
            raise ValueError("issuer and audience must be non-empty")
        self.current = current
        self.next = next_key
        self.previous = previous
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        """Clock skew tolerated for ``nbf``/``iat`` (issuer ahead of the verifier); never for ``exp``."""

    @classmethod
    def generate(cls, *, issuer: str, audience: str) -> KeySet:
        return cls(SigningKey.generate(), SigningKey.generate(), issuer=issuer, audience=audience)

    @classmethod
    def from_pem_files(cls, files: Mapping[str, bytes], *, issuer: str, audience: str) -> KeySet:
        """From a Secret's data: ``current.pem``, ``next.pem``, optional ``previous.pem``, and ``kids``."""
        try:
            kids = json.loads(files["kids"])
        except KeyError:
            raise ValueError("the key set needs 'kids'") from None
        except ValueError:
            raise ValueError("'kids' must be a JSON object {\"current\": kid, \"next\": kid}") from None
        if not isinstance(kids, dict):
            raise ValueError("'kids' must be a JSON object {\"current\": kid, \"next\": kid}")
        loaded: dict[str, SigningKey] = {}
        for role in _KID_ROLES:
            pem = files.get(f"{role}.pem")
            if pem is None:
                if role != "previous":
                    raise ValueError(f"the key set needs '{role}.pem'")
                continue
            loaded[role] = SigningKey.from_pem(str(kids.get(role) or ""), pem)
        return cls(loaded["current"], loaded["next"], previous=loaded.get("previous"), issuer=issuer,
                   audience=audience)

    @classmethod
    def from_dir(cls, path: str | Path, *, issuer: str, audience: str) -> KeySet:
        """From a directory where a Secret is mounted (``$TKSH_AUTHZ_KEYS_DIR``)."""
        folder = Path(path)
        names = ("kids", *(f"{role}.pem" for role in _KID_ROLES))
        files = {name: (folder / name).read_bytes() for name in names if (folder / name).is_file()}
        return cls.from_pem_files(files, issuer=issuer, audience=audience)

    def to_pem_files(self) -> dict[str, bytes]:
        """The Secret data for this key set (private keys where known; inverse of :meth:`from_pem_files`)."""
        files: dict[str, bytes] = {}
        kids: dict[str, str] = {}
        for role, key in (("current", self.current), ("next", self.next), ("previous", self.previous)):
            if key is not None:
                files[f"{role}.pem"] = key.private_pem() if key.private is not None else key.public_pem()
                kids[role] = key.kid
        files["kids"] = json.dumps(kids).encode()
        return files

    def rotate(self) -> KeySet:
        """A new key set: next -> current, current -> previous, a fresh next (see the module docstring)."""
        return KeySet(self.next, SigningKey.generate(), previous=self.current, issuer=self.issuer,
                      audience=self.audience, leeway=self.leeway)

    def verification_keys(self) -> dict[str, SigningKey]:
        return {k.kid: k for k in (self.current, self.next, self.previous) if k is not None}

    def jwks(self) -> dict[str, Any]:
        """The JWKS document: current, next and (while it may still be needed) previous public keys."""
        return {"keys": [key.jwk() for key in self.verification_keys().values()]}

    # --- issuing ------------------------------------------------------------------------------------------------------

    def issue(self, facts: GrantFacts, now: datetime.datetime, lifetime: datetime.timedelta) -> str:
        """A token for the grant's subject, valid from ``now`` for ``lifetime`` but never past the agreement's
        nor the grounds' ``validUntil``. Raises :class:`ValueError` for a grant that is not Active or has ended."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if self.current.private is None:
            raise ValueError("the current key has no private part: this key set cannot issue tokens")
        if facts.phase != "Active" or facts.terminated is not None or facts.requested is not None:
            raise ValueError(f"grant {facts.id} is not Active: no token is issued for it")
        ends = [now + lifetime, facts.valid_until]
        if facts.grounds_until is not None:
            ends.append(facts.grounds_until)
        exp, iat = _epoch(min(ends)), _epoch(now)
        if exp <= iat:
            raise ValueError(f"grant {facts.id} ends before a token could be valid")
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": facts.subject_id,
            "grant": facts.id,
            "jti": uuid.uuid4().hex,
            "iat": iat,
            "nbf": iat,
            "exp": exp,
        }
        return jwt.encode(claims, self.current.private, algorithm=ALGORITHM, headers={"kid": self.current.kid})

    # --- verifying ----------------------------------------------------------------------------------------------------

    def verify(self, token: str, now: datetime.datetime) -> TokenClaims:
        """The claims of a valid token at ``now``; raises :class:`TokenError` with the first reason found.

        Order: structure, algorithm (pinned), kid, signature, issuer, audience, required claims, times.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as error:
            raise TokenError(TokenReason.TOKEN_MALFORMED, str(error)) from None
        if header.get("alg") != ALGORITHM:
            raise TokenError(TokenReason.TOKEN_ALG_NOT_ALLOWED, f"alg {str(header.get('alg'))[:32]!r}")
        kid = header.get("kid")
        key = self.verification_keys().get(kid) if isinstance(kid, str) else None
        if key is None or not isinstance(kid, str):
            raise TokenError(TokenReason.TOKEN_UNKNOWN_KID)
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key.public,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": list(REQUIRED_CLAIMS), "verify_exp": False, "verify_nbf": False,
                         "verify_iat": False},
            )
        except jwt.InvalidSignatureError:
            raise TokenError(TokenReason.TOKEN_BAD_SIGNATURE) from None
        except jwt.InvalidAlgorithmError:
            raise TokenError(TokenReason.TOKEN_ALG_NOT_ALLOWED) from None
        except jwt.MissingRequiredClaimError as error:
            raise TokenError(TokenReason.TOKEN_MISSING_CLAIM, str(error), claim=error.claim) from None
        except jwt.InvalidIssuerError:
            raise TokenError(TokenReason.TOKEN_WRONG_ISSUER) from None
        except jwt.InvalidAudienceError:
            raise TokenError(TokenReason.TOKEN_WRONG_AUDIENCE) from None
        except jwt.InvalidTokenError as error:  # DecodeError and claim type errors
            raise TokenError(TokenReason.TOKEN_MALFORMED, str(error)) from None
        return self._claims(payload, kid, now)

    def _claims(self, payload: Mapping[str, Any], kid: str, now: datetime.datetime) -> TokenClaims:
        times: dict[str, int] = {}
        for claim in ("iat", "nbf", "exp"):
            value = payload[claim]
            if isinstance(value, bool) or not isinstance(value, int):
                raise TokenError(TokenReason.TOKEN_MALFORMED, f"{claim} must be an integer", claim=claim)
            times[claim] = value
        try:
            subject = validate_subject_id(payload["sub"], "sub")
            grant = validate_grant_id(payload["grant"], "grant")
        except IdentifierError as error:
            raise TokenError(TokenReason.TOKEN_MALFORMED, str(error), claim=error.field) from None
        jti = payload["jti"]
        if not isinstance(jti, str) or not jti:
            raise TokenError(TokenReason.TOKEN_MALFORMED, "jti must be a non-empty string", claim="jti")
        moment, skew = now.timestamp(), self.leeway.total_seconds()
        if moment >= times["exp"]:
            raise TokenError(TokenReason.TOKEN_EXPIRED, claim="exp")
        if times["nbf"] > moment + skew:
            raise TokenError(TokenReason.TOKEN_NOT_YET_VALID, claim="nbf")
        if times["iat"] > moment + skew:
            raise TokenError(TokenReason.TOKEN_NOT_YET_VALID, claim="iat")
        return TokenClaims(
            subject_id=subject,
            grant=grant,
            jti=jti,
            issued_at=_instant(times["iat"]),
            not_before=_instant(times["nbf"]),
            expires_at=_instant(times["exp"]),
            kid=kid,
        )
