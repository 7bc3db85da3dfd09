"""The decision point ``tksh authz`` end to end: sync from the embedded API server + HTTP decisions + tokens.

No operator runs here: the tests write grants and functions with the status an operator would write.
Waits are deadlines only (``eventually``); nothing asserts how fast anything happens.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import hmac
import io
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jsonschema
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import eventually
from tksh.access import grant_facts
from tksh.access.openapi import MAX_BODY_BYTES, openapi_document
from tksh.access.server import AuthzConfig, AuthzHandle, start_authz
from tksh.access.tokens import KeySet
from tksh.logs import configure_logging
from tksh.resources.accessgrant import AccessGrant
from tksh.sandbox.apiserver import EmbeddedAPIServer, project_crd_paths

ISS, AUD = "tksh-operator", "tksh-authz"
OWNER = "140540001231"
NS = "housing"
HOUR = datetime.timedelta(hours=1)
READ5: dict[str, Any] = {"action": "read", "resource": {"category": 5, "ownerBin": OWNER}}


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def function(name: str = "owners-association") -> dict[str, Any]:
    return {
        "apiVersion": "tksh.kz/v1alpha1", "kind": "SubjectFunction", "metadata": {"name": name},
        "spec": {"titles": {"kk": "ПИБ", "ru": "ОСИ", "en": "Owners' association"},
                 "subjectTypes": ["PropertyOwnersAssociation"],
                 "rights": [{"category": 5, "actions": ["read", "write", "sign"]},
                            {"category": 1, "actions": ["read"]}]},
        "status": {"phase": "Active"},
    }


def grant(name: str = "g1", subject: str = "person:a1", **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tksh.kz/v1alpha1", "kind": "AccessGrant", "metadata": {"name": name, "namespace": NS},
        "spec": {"subject": {"id": subject, "kind": "person", "name": "Айгүл Серікқызы"},
                 "onBehalfOf": {"bin": OWNER, "name": "ОСИ «Достық 12»"},
                 "functions": ["owners-association"],
                 "agreement": {"number": "ДД-1", "validFrom": "2020-01-01T00:00:00Z",
                               "validUntil": "2099-01-01T00:00:00Z"}},
        "status": {"phase": "Active", **status},
    }


def revoked(name: str = "g1", subject: str = "person:a1") -> dict[str, Any]:
    record = {"reason": "REVOKED", "at": "2026-01-01T00:00:00Z", "by": "admin-42", "note": "agreement withdrawn"}
    return grant(name, subject, phase="Terminated", terminated=record)


@pytest.fixture
async def api() -> AsyncIterator[EmbeddedAPIServer]:
    async with EmbeddedAPIServer(crd_paths=project_crd_paths()) as server:
        await server.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        await server.apply(function())
        await server.apply(grant())
        yield server


@pytest.fixture(scope="module")
def keys() -> KeySet:
    return KeySet.generate(issuer=ISS, audience=AUD)


def config(api: EmbeddedAPIServer, keys: KeySet) -> AuthzConfig:
    return AuthzConfig(host="127.0.0.1", port=0, server=api.url, keys=keys, issuer=ISS, audience=AUD,
                       configure_logs=False, retry_delay=0.05, watch_timeout=30)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@contextlib.asynccontextmanager
async def ready_authz(api: EmbeddedAPIServer, keys: KeySet,
                      http: aiohttp.ClientSession) -> AsyncIterator[AuthzHandle]:
    async with start_authz(config(api, keys)) as handle:
        async def is_ready() -> None:
            async with http.get(handle.url + "/readyz") as response:
                assert response.status == 200
        await eventually(is_ready)
        yield handle


@pytest.fixture
async def authz(api: EmbeddedAPIServer, keys: KeySet, http: aiohttp.ClientSession) -> AsyncIterator[AuthzHandle]:
    async with ready_authz(api, keys, http) as handle:
        yield handle


async def decide(http: aiohttp.ClientSession, handle: AuthzHandle, body: Any = READ5, *, token: str | None = None,
                 raw: bytes | None = None, header: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if header is not None:
        headers["Authorization"] = header
    data = raw if raw is not None else json.dumps(body).encode()
    async with http.post(handle.url + "/v1/decisions", data=data, headers=headers) as response:
        return response.status, await response.json()


def as_subject(subject: str, body: dict[str, Any] = READ5) -> dict[str, Any]:
    return {"subject": subject, **body}


def check(schema: str, instance: Any) -> None:
    """Validate against a schema of the OpenAPI document (JSON Schema 2020-12)."""
    doc = openapi_document()
    jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{schema}", "components": doc["components"]},
                                    format_checker=jsonschema.FormatChecker()).validate(instance)


def facts_of(obj: dict[str, Any]) -> Any:
    return grant_facts(AccessGrant.model_validate(obj))


async def code_of(http: aiohttp.ClientSession, handle: AuthzHandle, body: Any, **kw: Any) -> str:
    status, out = await decide(http, handle, body, **kw)
    assert status == 200, out
    return str(out["reason"])


# --- decisions and termination ----------------------------------------------------------------------------------------


async def test_allow_with_the_grant_deny_without_and_the_open_part(authz: AuthzHandle,
                                                                  http: aiohttp.ClientSession) -> None:
    status, out = await decide(http, authz, as_subject("person:a1"))
    assert status == 200 and out["allowed"] is True and out["grant"] == f"{NS}/g1" and out["reason"] == "ALLOW"
    check("Decision", out)
    status, out = await decide(http, authz, as_subject("person:nobody"))
    assert (status, out["allowed"], out["reason"]) == (200, False, "NO_GRANT")
    assert out["texts"]["kk"] and out["texts"]["ru"] and out["texts"]["en"]
    check("Decision", out)
    public = {"action": "read", "resource": {"category": 9, "ownerBin": OWNER}}
    status, out = await decide(http, authz, public)
    assert (out["allowed"], out.get("openPart"), out["subject"]) == (True, True, "@anonymous")
    assert await code_of(http, authz, READ5) == "AUTHENTICATION_REQUIRED"
    write9 = {"action": "write", "resource": {"category": 9, "ownerBin": OWNER}}
    assert await code_of(http, authz, as_subject("person:a1", write9)) == "FUNCTION_LACKS_RIGHT"


async def test_a_termination_is_denied_revoked_once_the_watch_delivers_it(
    api: EmbeddedAPIServer, authz: AuthzHandle, http: aiohttp.ClientSession, keys: KeySet
) -> None:
    token = keys.issue(facts_of(grant()), now(), HOUR)
    assert await code_of(http, authz, READ5, token=token) == "ALLOW"
    await api.apply(revoked())

    async def denied() -> dict[str, Any]:
        _, out = await decide(http, authz, as_subject("person:a1"))
        assert out["reason"] == "REVOKED"
        return out

    out = await eventually(denied)
    assert out["record"] == {"reason": "REVOKED", "paragraph": "§20.2", "at": "2026-01-01T00:00:00Z",
                             "by": "admin-42", "note": "agreement withdrawn"}
    check("Decision", out)
    status, by_token = await decide(http, authz, READ5, token=token)  # the token is still valid as a JWT
    assert (status, by_token["allowed"], by_token["reason"], by_token["grant"]) == (200, False, "REVOKED", f"{NS}/g1")


async def test_a_token_is_bound_to_its_grant(api: EmbeddedAPIServer, authz: AuthzHandle,
                                             http: aiohttp.ClientSession, keys: KeySet) -> None:
    await api.apply(grant("g0", "person:a1"))  # a second grant of the same subject, sorting first
    token = keys.issue(facts_of(grant()), now(), HOUR)
    await eventually(lambda: _assert(len(authz.index) == 2))
    await api.apply(revoked())
    await eventually(lambda: _assert(authz.index.grant(f"{NS}/g1").phase == "Terminated"))  # type: ignore[union-attr]
    assert await code_of(http, authz, as_subject("person:a1")) == "ALLOW"  # g0 still allows the subject
    _, out = await decide(http, authz, READ5, token=token)
    assert (out["allowed"], out["reason"], out["grant"]) == (False, "REVOKED", f"{NS}/g1")  # but not g1's token
    stranger = keys.issue(facts_of(grant("g0", "person:a1")), now(), HOUR)
    assert await code_of(http, authz, READ5, token=stranger) == "ALLOW"


def _assert(condition: bool) -> None:
    assert condition


async def test_relist_after_a_dropped_watch_and_a_410_misses_nothing(
    api: EmbeddedAPIServer, authz: AuthzHandle, http: aiohttp.ClientSession
) -> None:
    lists = dict(authz.sync.relists)
    # The watch breaks and the API refuses to answer for a while: changes pile up unseen.
    api.faults.inject(503, resource="accessgrants", times=None)
    assert api.drop_watches("accessgrants") >= 1
    await api.apply(grant("g2", "person:a2"))
    api.store.delete(api.store.info("accessgrants"), NS, "g1")
    api.faults.clear()
    await eventually(lambda: _assert(authz.sync.relists["AccessGrant"] > lists["AccessGrant"]))
    assert await code_of(http, authz, as_subject("person:a2")) == "ALLOW"  # what appeared
    assert await code_of(http, authz, as_subject("person:a1")) == "NO_GRANT"  # what vanished
    # A clean end of the stream resumes from the last version; that version is gone (410): relist.
    lists = dict(authz.sync.relists)
    api.faults.expire_watches("accessgrants")
    api.drop_watches("accessgrants", abrupt=False)
    await eventually(lambda: _assert(authz.sync.relists["AccessGrant"] > lists["AccessGrant"]))
    await api.apply(revoked("g2", "person:a2"))
    await eventually(lambda: _revoked(http, authz, "person:a2"))
    # Functions are watched the same way: removing the only function leaves the grant without rights.
    await api.apply(grant("g3", "person:a3"))
    await eventually(lambda: _allowed(http, authz, "person:a3"))
    api.drop_watches("subjectfunctions")
    api.store.delete(api.store.info("subjectfunctions"), None, "owners-association")
    await eventually(lambda: _code(http, authz, "person:a3", "UNKNOWN_FUNCTION"))


async def _code(http: aiohttp.ClientSession, handle: AuthzHandle, subject: str, code: str) -> None:
    assert await code_of(http, handle, as_subject(subject)) == code


async def _revoked(http: aiohttp.ClientSession, handle: AuthzHandle, subject: str) -> None:
    await _code(http, handle, subject, "REVOKED")


async def _allowed(http: aiohttp.ClientSession, handle: AuthzHandle, subject: str) -> None:
    await _code(http, handle, subject, "ALLOW")


async def test_two_decision_points_converge_on_a_termination(
    api: EmbeddedAPIServer, keys: KeySet, http: aiohttp.ClientSession
) -> None:
    async with ready_authz(api, keys, http) as first, ready_authz(api, keys, http) as second:
        for handle in (first, second):
            await _allowed(http, handle, "person:a1")
        await api.apply(revoked())
        await eventually(lambda: _revoked(http, first, "person:a1"))
        await eventually(lambda: _revoked(http, second, "person:a1"))


async def test_not_ready_until_both_kinds_are_listed(api: EmbeddedAPIServer, keys: KeySet,
                                                    http: aiohttp.ClientSession) -> None:
    api.faults.inject(503, resource="subjectfunctions", times=None)
    async with start_authz(config(api, keys)) as handle:
        await eventually(lambda: _assert(handle.sync.relists["AccessGrant"] >= 1))
        async with http.get(handle.url + "/readyz") as response:
            assert response.status == 503
            check("Health", await response.json())
        async with http.get(handle.url + "/healthz") as response:
            assert response.status == 200
        api.faults.clear()
        await eventually(lambda: _assert(handle.sync.ready.is_set()))
        async with http.get(handle.url + "/readyz") as response:
            assert response.status == 200


async def test_an_invalid_grant_is_skipped_and_the_loop_goes_on(api: EmbeddedAPIServer, authz: AuthzHandle,
                                                                http: aiohttp.ClientSession) -> None:
    bad = grant("g-bad", "person:bad")
    bad["spec"]["delegatedFrom"] = "x" * 300  # passes the CRD? if not, the API refuses it: both are fine
    with contextlib.suppress(Exception):
        await api.apply(bad)
    await api.apply(grant("g4", "person:a4"))
    await eventually(lambda: _allowed(http, authz, "person:a4"))
    assert await code_of(http, authz, as_subject("person:bad")) == "NO_GRANT"


# --- tokens -----------------------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**changes: Any) -> dict[str, Any]:
    t = int(now().timestamp())
    base = {"iss": ISS, "aud": AUD, "sub": "person:a1", "grant": f"{NS}/g1", "jti": "j", "iat": t, "nbf": t,
            "exp": t + 3600}
    return {**base, **changes}


def private(keys: KeySet) -> Ed25519PrivateKey:
    assert keys.current.private is not None
    return keys.current.private


def attacks(keys: KeySet) -> dict[str, tuple[str, str]]:
    kid = keys.current.kid
    valid = keys.issue(facts_of(grant()), now(), HOUR)
    head, _, signature = valid.split(".")
    hs_input = f"{_b64(json.dumps({'alg': 'HS256', 'kid': kid}).encode())}.{_b64(json.dumps(_claims()).encode())}"
    hs_sig = hmac.new(keys.current.public_pem(), hs_input.encode(), hashlib.sha256).digest()
    other = Ed25519PrivateKey.generate()
    return {
        "alg none": (f"{_b64(json.dumps({'alg': 'none', 'kid': kid}).encode())}."
                     f"{_b64(json.dumps(_claims()).encode())}.", "TOKEN_ALG_NOT_ALLOWED"),
        "HS256 with the public key": (f"{hs_input}.{_b64(hs_sig)}", "TOKEN_ALG_NOT_ALLOWED"),
        "wrong key": (jwt.encode(_claims(), other, algorithm="EdDSA", headers={"kid": kid}), "TOKEN_BAD_SIGNATURE"),
        "expired": (keys.issue(facts_of(grant()), now() - 2 * HOUR, HOUR), "TOKEN_EXPIRED"),
        "tampered": (f"{head}.{_b64(json.dumps(_claims(sub='person:a2')).encode())}.{signature}",
                     "TOKEN_BAD_SIGNATURE"),
        "wrong issuer": (KeySet(keys.current, keys.next, issuer="evil", audience=AUD).issue(
            facts_of(grant()), now(), HOUR), "TOKEN_WRONG_ISSUER"),
        "wrong audience": (KeySet(keys.current, keys.next, issuer=ISS, audience="elsewhere").issue(
            facts_of(grant()), now(), HOUR), "TOKEN_WRONG_AUDIENCE"),
        "unknown kid": (KeySet.generate(issuer=ISS, audience=AUD).issue(facts_of(grant()), now(), HOUR),
                        "TOKEN_UNKNOWN_KID"),
        "missing grant": (jwt.encode({k: v for k, v in _claims().items() if k != "grant"}, private(keys),
                                     algorithm="EdDSA", headers={"kid": kid}), "TOKEN_MISSING_CLAIM"),
        "not a JWT": ("hello", "TOKEN_MALFORMED"),
    }


async def test_the_token_attack_set_is_refused_with_its_reason(authz: AuthzHandle, http: aiohttp.ClientSession,
                                                               keys: KeySet) -> None:
    assert await code_of(http, authz, READ5, token=keys.issue(facts_of(grant()), now(), HOUR)) == "ALLOW"
    for name, (token, reason) in attacks(keys).items():
        status, out = await decide(http, authz, READ5, token=token)
        assert (status, out.get("reason")) == (401, reason), name
        check("InvalidToken", out)
        assert authz.service.metrics.value("tksh_authz_token_refusals_total", {"reason": reason})
    status, out = await decide(http, authz, READ5, header="Basic dXNlcjpwYXNz")
    assert (status, out["reason"]) == (401, "TOKEN_MALFORMED")
    assert authz.service.metrics.value("tksh_decisions_total", {"result": "allow", "reason": "ALLOW"}) == 1


async def test_jwks_publishes_the_current_and_next_keys(authz: AuthzHandle, http: aiohttp.ClientSession,
                                                        keys: KeySet) -> None:
    async with http.get(authz.url + "/.well-known/jwks.json") as response:
        body = await response.json()
    check("Jwks", body)
    assert [key["kid"] for key in body["keys"]] == [keys.current.kid, keys.next.kid]
    token = keys.issue(facts_of(grant()), now(), HOUR)
    public = jwt.PyJWK(body["keys"][0]).key
    assert jwt.decode(token, public, algorithms=["EdDSA"], audience=AUD, issuer=ISS)["grant"] == f"{NS}/g1"


# --- hostile input ----------------------------------------------------------------------------------------------------


HOSTILE: list[tuple[str, bytes, int, str]] = [
    ("non-JSON", b"{not json", 400, "body"),
    ("not UTF-8", b'{"action": "\xff"}', 400, "body"),
    ("an array", b"[1, 2]", 400, "body"),
    ("empty", b"", 400, "body"),
    ("missing action", json.dumps({"resource": READ5["resource"]}).encode(), 400, "action"),
    ("missing resource", json.dumps({"action": "read"}).encode(), 400, "resource"),
    ("resource a string", json.dumps({"action": "read", "resource": "5"}).encode(), 400, "resource"),
    ("action delete", json.dumps({**READ5, "action": "delete"}).encode(), 400, "action"),
    ("category 16", json.dumps({"action": "read", "resource": {"category": 16, "ownerBin": OWNER}}).encode(),
     400, "resource.category"),
    ("category as text", json.dumps({"action": "read", "resource": {"category": "5", "ownerBin": OWNER}}).encode(),
     400, "resource.category"),
    ("category true", json.dumps({"action": "read", "resource": {"category": True, "ownerBin": OWNER}}).encode(),
     400, "resource.category"),
    ("BIN with letters", json.dumps({"action": "read", "resource": {"category": 5, "ownerBin": "14054000123A"}})
     .encode(), 400, "resource.ownerBin"),
    ("BIN as number", json.dumps({"action": "read", "resource": {"category": 5, "ownerBin": 140540001231}}).encode(),
     400, "resource.ownerBin"),
    ("missing ownerBin", json.dumps({"action": "read", "resource": {"category": 5}}).encode(), 400,
     "resource.ownerBin"),
    ("bad digital object", json.dumps({"action": "read", "resource": {**READ5["resource"], "digitalObject": "x"}})
     .encode(), 400, "resource.digitalObject"),
    ("subject an IIN", json.dumps(as_subject("900101300123")).encode(), 400, "subject"),
    ("subject with comma", json.dumps(as_subject("mallory, admin, org1")).encode(), 400, "subject"),
    ("subject a list", json.dumps({**READ5, "subject": ["person:a1"]}).encode(), 400, "subject"),
    ("unknown field", json.dumps({**READ5, "admin": True}).encode(), 400, "admin"),
    ("unknown resource field", json.dumps({"action": "read", "resource": {**READ5["resource"], "x": 1}}).encode(),
     400, "resource.x"),
    ("deep nesting", b"[" * 4000 + b"]" * 4000, 400, "body"),
    ("huge body", json.dumps({**READ5, "pad": "x" * (MAX_BODY_BYTES * 4)}).encode(), 413, "body"),
]


async def test_hostile_bodies_are_refused_naming_the_field_and_change_nothing(
    authz: AuthzHandle, http: aiohttp.ClientSession
) -> None:
    grants_before = list(authz.index.grants())
    for name, raw, expected, field in HOSTILE:
        status, out = await decide(http, authz, raw=raw)
        assert (status, out.get("field")) == (expected, field), name
        check("InvalidRequest", out)
        assert "mallory" not in out["rule"] and "900101300123" not in out["rule"], name
    status, out = await decide(http, authz, READ5, token="x.y.z")
    assert (status, out["reason"]) == (401, "TOKEN_MALFORMED")
    assert list(authz.index.grants()) == grants_before
    assert authz.service.metrics.value("tksh_decisions_total", {"result": "allow", "reason": "ALLOW"}) is None
    assert await code_of(http, authz, as_subject("person:a1")) == "ALLOW"


async def test_subject_and_token_together_are_refused(authz: AuthzHandle, http: aiohttp.ClientSession,
                                                      keys: KeySet) -> None:
    token = keys.issue(facts_of(grant()), now(), HOUR)
    status, out = await decide(http, authz, as_subject("person:a2"), token=token)
    assert (status, out["field"]) == (400, "subject")


# --- the document, metrics, logs --------------------------------------------------------------------------------------


async def test_openapi_document_is_served_and_describes_real_traffic(authz: AuthzHandle,
                                                                     http: aiohttp.ClientSession) -> None:
    async with http.get(authz.url + "/openapi.json") as response:
        doc = await response.json()
    assert doc == openapi_document() and doc["openapi"].startswith("3.1")
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    for body in (READ5, as_subject("person:a1"), as_subject("person:a1", {"action": "sign", "resource": {
            "category": 5, "ownerBin": OWNER, "digitalObject": f"{NS}/portal"}})):
        check("DecisionRequest", body)
        status, out = await decide(http, authz, body)
        assert status == 200
        check("Decision", out)
    for name, raw, _, _ in HOSTILE:
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            continue  # not JSON at all
        with pytest.raises(jsonschema.ValidationError):
            check("DecisionRequest", body)  # what the service refuses, the document refuses too
            pytest.fail(name)


async def test_metrics_count_decisions_and_index_size(authz: AuthzHandle, http: aiohttp.ClientSession) -> None:
    await decide(http, authz, as_subject("person:a1"))
    await decide(http, authz, as_subject("person:nobody"))
    async with http.get(authz.url + "/metrics") as response:
        text = await response.text()
    assert 'tksh_decisions_total{reason="ALLOW",result="allow"} 1.0' in text
    assert 'tksh_decisions_total{reason="NO_GRANT",result="deny"} 1.0' in text
    assert "tksh_decision_seconds_count 2.0" in text
    assert "tksh_authz_index_grants 1.0" in text


async def test_decision_logs_carry_the_decision_but_no_bin_or_name(api: EmbeddedAPIServer, keys: KeySet,
                                                                    http: aiohttp.ClientSession) -> None:
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    try:
        async with ready_authz(api, keys, http) as handle:
            _, allowed = await decide(http, handle, as_subject("person:a1"))
            _, denied = await decide(http, handle, as_subject("person:nobody"))
            await decide(http, handle, READ5, token=keys.issue(facts_of(grant()), now(), HOUR))
    finally:
        configure_logging("INFO", json=True, stream=sys.stderr)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    decisions = {line["decision_id"]: line for line in lines if line.get("event") == "decision"}
    assert set(decisions) >= {allowed["decisionId"], denied["decisionId"]}
    first = decisions[allowed["decisionId"]]
    assert (first["subject_id"], first["action"], first["category"], first["result"], first["reason"]) == (
        "person:a1", "read", 5, "allow", "ALLOW")
    assert first["bin"].startswith("<bin:")
    text = stream.getvalue()
    assert OWNER not in text
    for name in ("Айгүл", "Достық"):
        assert name not in text
