"""Tokens: issuance bounds, verification pinned to EdDSA/issuer/audience/kid, the attack set, JWKS and rotation."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.unit.access.helpers import DAY, T0, grant, terminated
from tksh.access.tokens import KeySet, SigningKey, TokenError, TokenReason
from tksh.resources.accessgrant import TerminationReason

ISS, AUD = "https://tksh.example/authz", "tksh-decisions"
HOUR = datetime.timedelta(hours=1)


@pytest.fixture(scope="module")
def keys() -> KeySet:
    return KeySet.generate(issuer=ISS, audience=AUD)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(signature)}"


def claims(keys: KeySet, **changes: Any) -> dict[str, Any]:
    base = {"iss": ISS, "aud": AUD, "sub": "person:a1", "grant": "housing/g1", "jti": "j1",
            "iat": int(T0.timestamp()), "nbf": int(T0.timestamp()), "exp": int((T0 + HOUR).timestamp())}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(keys: KeySet, payload: dict[str, Any], kid: str | None = None) -> str:
    assert keys.current.private is not None
    return jwt.encode(payload, keys.current.private, algorithm="EdDSA", headers={"kid": kid or keys.current.kid})


def refused(keys: KeySet, token: str, now: datetime.datetime = T0) -> TokenReason:
    with pytest.raises(TokenError) as caught:
        keys.verify(token, now)
    return caught.value.reason


def test_issued_token_verifies_with_its_grant_and_subject(keys: KeySet) -> None:
    token = keys.issue(grant(), T0, HOUR)
    got = keys.verify(token, T0)
    assert (got.subject_id, got.grant, got.kid) == ("person:a1", "housing/g1", keys.current.kid)
    assert got.expires_at == T0 + HOUR
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
    assert keys.verify(keys.issue(grant(), T0, HOUR), T0).jti != got.jti


def test_exp_never_passes_the_agreement_nor_the_grounds(keys: KeySet) -> None:
    until = T0 + datetime.timedelta(minutes=10, microseconds=900_000)
    got = keys.verify(keys.issue(grant(valid_until=until), T0, DAY), T0)
    assert got.expires_at == T0 + datetime.timedelta(minutes=10)  # rounded down, never past
    grounds = T0 + datetime.timedelta(minutes=5)
    got = keys.verify(keys.issue(grant(grounds_until=grounds), T0, DAY), T0)
    assert got.expires_at == grounds


def test_no_token_for_a_grant_that_is_not_active(keys: KeySet) -> None:
    with pytest.raises(ValueError, match="not Active"):
        keys.issue(terminated(grant(), TerminationReason.REVOKED), T0, HOUR)
    with pytest.raises(ValueError, match="not Active"):
        keys.issue(grant(phase="Pending"), T0, HOUR)
    with pytest.raises(ValueError, match="ends before"):
        keys.issue(grant(valid_until=T0 + datetime.timedelta(milliseconds=10)), T0, HOUR)


def test_alg_none_is_refused(keys: KeySet) -> None:
    token = forge({"alg": "none", "typ": "JWT", "kid": keys.current.kid}, claims(keys))
    assert refused(keys, token) is TokenReason.TOKEN_ALG_NOT_ALLOWED


def test_hs256_signed_with_the_public_key_is_refused(keys: KeySet) -> None:
    header = {"alg": "HS256", "typ": "JWT", "kid": keys.current.kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims(keys)).encode())}"
    for secret in (keys.current.public_pem(), json.dumps(keys.current.jwk()).encode()):
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assert refused(keys, f"{signing_input}.{b64(signature)}") is TokenReason.TOKEN_ALG_NOT_ALLOWED


def test_a_token_signed_with_another_key_under_our_kid_is_refused(keys: KeySet) -> None:
    stranger = Ed25519PrivateKey.generate()
    token = jwt.encode(claims(keys), stranger, algorithm="EdDSA", headers={"kid": keys.current.kid})
    assert refused(keys, token) is TokenReason.TOKEN_BAD_SIGNATURE


def test_tampered_payload_is_refused(keys: KeySet) -> None:
    head, _, signature = keys.issue(grant(), T0, HOUR).split(".")
    payload = claims(keys, sub="person:mallory", grant="housing/admin")
    assert refused(keys, f"{head}.{b64(json.dumps(payload).encode())}.{signature}") is TokenReason.TOKEN_BAD_SIGNATURE


def test_expiry_is_exact_and_not_before_is_honoured(keys: KeySet) -> None:
    token = sign(keys, claims(keys))
    keys.verify(token, T0 + HOUR - datetime.timedelta(microseconds=1))
    assert refused(keys, token, T0 + HOUR) is TokenReason.TOKEN_EXPIRED
    early = sign(keys, claims(keys, nbf=int((T0 + HOUR / 2).timestamp())))
    assert refused(keys, early) is TokenReason.TOKEN_NOT_YET_VALID
    assert keys.verify(early, T0 + HOUR / 2).grant == "housing/g1"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"iss": "https://evil.example"}, TokenReason.TOKEN_WRONG_ISSUER),
        ({"aud": "someone-else"}, TokenReason.TOKEN_WRONG_AUDIENCE),
        ({"grant": None}, TokenReason.TOKEN_MISSING_CLAIM),
        ({"jti": None}, TokenReason.TOKEN_MISSING_CLAIM),
        ({"exp": None}, TokenReason.TOKEN_MISSING_CLAIM),
        ({"sub": "900101300123"}, TokenReason.TOKEN_MALFORMED),  # an IIN is not a subject id
        ({"grant": "no-namespace"}, TokenReason.TOKEN_MALFORMED),
        ({"exp": "tomorrow"}, TokenReason.TOKEN_MALFORMED),
    ],
)
def test_claims_are_pinned(keys: KeySet, change: dict[str, Any], reason: TokenReason) -> None:
    assert refused(keys, sign(keys, claims(keys, **change))) is reason


def test_unknown_or_missing_kid_is_refused(keys: KeySet) -> None:
    assert refused(keys, sign(keys, claims(keys), kid="not-ours")) is TokenReason.TOKEN_UNKNOWN_KID
    assert keys.current.private is not None
    token = jwt.encode(claims(keys), keys.current.private, algorithm="EdDSA")
    assert refused(keys, token) is TokenReason.TOKEN_UNKNOWN_KID


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "....", "eyJhbGciOiJFZERTQSJ9.e30"])
def test_garbage_is_malformed(keys: KeySet, token: str) -> None:
    assert refused(keys, token) in (TokenReason.TOKEN_MALFORMED, TokenReason.TOKEN_ALG_NOT_ALLOWED)


def test_reasons_have_texts_in_three_languages() -> None:
    for reason in TokenReason:
        texts = reason.texts
        assert texts.kk and texts.ru and texts.en
        assert len({texts.kk, texts.ru, texts.en}) == 3


def test_jwks_publishes_current_and_next_public_keys_only(keys: KeySet) -> None:
    published = keys.jwks()["keys"]
    assert [k["kid"] for k in published] == [keys.current.kid, keys.next.kid]
    for key in published:
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
        assert "d" not in key  # no private part
        public = jwt.PyJWK(key).key
        token = keys.issue(grant(), T0, HOUR)
        if key["kid"] == keys.current.kid:
            assert jwt.decode(token, public, algorithms=["EdDSA"], audience=AUD, options={"verify_exp": False})


def test_rotation_publishes_the_next_key_before_it_signs(keys: KeySet) -> None:
    rotated = keys.rotate()
    assert rotated.current.kid == keys.next.kid
    assert rotated.previous is not None and rotated.previous.kid == keys.current.kid
    assert rotated.next.kid not in {k["kid"] for k in keys.jwks()["keys"]}
    new_token = rotated.issue(grant(), T0, HOUR)
    assert keys.verify(new_token, T0).kid == keys.next.kid  # verifiers holding the old JWKS accept it
    old_token = keys.issue(grant(), T0, HOUR)
    assert rotated.verify(old_token, T0).kid == keys.current.kid  # tokens of the previous key still verify
    twice = rotated.rotate()
    assert refused(twice, old_token) is TokenReason.TOKEN_UNKNOWN_KID


def test_pem_files_round_trip_and_verify_only_sets(keys: KeySet) -> None:
    files = keys.rotate().to_pem_files()
    assert set(files) == {"current.pem", "next.pem", "previous.pem", "kids"}
    loaded = KeySet.from_pem_files(files, issuer=ISS, audience=AUD)
    assert loaded.verify(loaded.issue(grant(), T0, HOUR), T0).kid == keys.next.kid
    public_only = {name: data for name, data in files.items() if name == "kids"}
    for role, key in (("current", loaded.current), ("next", loaded.next)):
        public_only[f"{role}.pem"] = key.public_pem()
    verifier = KeySet.from_pem_files(public_only, issuer=ISS, audience=AUD)
    assert verifier.verify(loaded.issue(grant(), T0, HOUR), T0).grant == "housing/g1"
    with pytest.raises(ValueError, match="private"):
        verifier.issue(grant(), T0, HOUR)


def test_bad_key_files_are_refused(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="kids"):
        KeySet.from_pem_files({"current.pem": b"", "next.pem": b""}, issuer=ISS, audience=AUD)
    same = SigningKey.generate("k1")
    with pytest.raises(ValueError, match="differ"):
        KeySet(same, dataclasses.replace(same), issuer=ISS, audience=AUD)
    keys = KeySet.generate(issuer=ISS, audience=AUD)
    for name, data in keys.to_pem_files().items():
        (tmp_path / name).write_bytes(data)
    assert KeySet.from_dir(tmp_path, issuer=ISS, audience=AUD).current.kid == keys.current.kid
