"""Access tokens end to end: the operator issues a grant's token into a Secret, a real ``tksh authz`` (in-process,
keys from a folder refreshed the way the kubelet refreshes a mounted Secret) verifies it and decides with it;
termination deletes it; rotation signs with the next key while the old tokens verify until it drops; a restart
re-issues nothing. Both backends. Waits are deadlines only (``eventually``)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime
import json
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from tests.conftest import eventually
from tests.integration.backends import Backend, EmbeddedBackend, RealBackend, running
from tksh.access.keyrotation import GRANT_UID_LABEL, ROTATED_AT, TOKEN_SECRET_TYPE
from tksh.access.server import AuthzConfig, AuthzHandle, start_authz
from tksh.config import OperatorConfig
from tksh.run import OperatorHandle

API = "tksh.kz/v1alpha1"
OWNER = "140540001231"
SUBJECT = "person:t1"
READ5: dict[str, Any] = {"action": "read", "resource": {"category": 5, "ownerBin": OWNER}}
HOUR = datetime.timedelta(hours=1)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def stamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Kube:
    """Plain HTTP to either backend (the embedded server's URL, or the real one as admin)."""

    def __init__(self, cluster: Backend, http: aiohttp.ClientSession) -> None:
        self.cluster, self.http = cluster, http

    async def call(self, method: str, path: str, body: Any = None,
                   content_type: str = "application/merge-patch+json") -> tuple[int, Any]:
        if isinstance(self.cluster, RealBackend):
            real = self.cluster.cluster
            response = await asyncio.to_thread(real.request, method, path, body, content_type=content_type)
            return response.status, response.body
        assert isinstance(self.cluster, EmbeddedBackend)
        data = None if body is None else json.dumps(body)
        async with self.http.request(method, self.cluster.api.url + path, data=data,
                                     headers={"Content-Type": content_type}) as response:
            return response.status, await response.json(content_type=None)

    async def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        status, body = await self.call("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if status == 404:
            return None
        assert status == 200, body
        found: dict[str, Any] = body
        return found

    async def grant(self, namespace: str, name: str) -> dict[str, Any]:
        status, body = await self.call("GET", f"/apis/{API}/namespaces/{namespace}/accessgrants/{name}")
        assert status == 200, body
        found: dict[str, Any] = body
        return found

    async def patch(self, path: str, body: Any) -> dict[str, Any]:
        status, out = await self.call("PATCH", path, body)
        assert status == 200, out
        patched: dict[str, Any] = out
        return patched


@dataclasses.dataclass
class World:
    cluster: Backend
    kube: Kube
    http: aiohttp.ClientSession
    namespace: str
    function: str
    config: OperatorConfig
    keys_dir: Path

    @property
    def keys_secret(self) -> str:
        return self.config.signing_keys_secret

    def grant_path(self, name: str) -> str:
        return f"/apis/{API}/namespaces/{self.namespace}/accessgrants/{name}"

    async def make_grant(self, name: str, valid_until: datetime.datetime | None = None) -> dict[str, Any]:
        until = valid_until or utcnow() + 365 * datetime.timedelta(days=1)
        await self.cluster.apply({
            "apiVersion": API, "kind": "AccessGrant", "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"subject": {"id": SUBJECT, "kind": "person", "name": "Айгүл Серікқызы"},
                     "onBehalfOf": {"bin": OWNER, "name": "ОСИ «Достық 12»"},
                     "functions": [self.function],
                     "agreement": {"number": "ДД-1", "validFrom": "2020-01-01T00:00:00Z", "validUntil": stamp(until)}},
        })

        async def active() -> dict[str, Any]:  # by the operator's grant lifecycle
            grant = await self.kube.grant(self.namespace, name)
            assert (grant.get("status") or {}).get("phase") == "Active", grant.get("status")
            return grant

        return await eventually(active)

    async def function_ready(self) -> None:
        """The directory entry accepted by the operator: a grant of it is activated at once, not held Pending."""
        async def ready() -> None:
            status, body = await self.kube.call("GET", f"/apis/{API}/subjectfunctions/{self.function}")
            assert status == 200 and (body.get("status") or {}).get("phase") == "Active", body

        await eventually(ready)

    async def events(self, name: str) -> list[str]:
        """The reasons of the Events about ``name`` in this test's namespace (the real cluster is shared)."""
        found = await self.cluster.events(name)
        return [e["reason"] for e in found if e["involvedObject"].get("namespace") == self.namespace]

    async def event(self, name: str, reason: str) -> None:
        async def posted() -> None:
            assert reason in await self.events(name)

        await eventually(posted)

    async def terminate(self, name: str) -> None:
        await self.kube.patch(self.grant_path(name), {"spec": {"termination": {
            "reason": "REVOKED", "by": "admin-1", "note": "agreement withdrawn"}}})

    async def issued(self, name: str) -> tuple[dict[str, Any], dict[str, Any], str]:
        """Waits for the grant's token: (the grant, its Secret, the token)."""
        async def ready() -> tuple[dict[str, Any], dict[str, Any], str]:
            grant = await self.kube.grant(self.namespace, name)
            status = grant.get("status") or {}
            assert status.get("tokenSecret") and status.get("tokenExpiresAt"), status
            secret = await self.kube.secret(self.namespace, status["tokenSecret"])
            assert secret is not None
            token = base64.b64decode(secret["data"]["token"]).decode()
            assert jwt.decode(token, options={"verify_signature": False})["exp"] == int(
                datetime.datetime.fromisoformat(status["tokenExpiresAt"]).timestamp()), "status not written yet"
            return grant, secret, token
        return await eventually(ready)

    async def key_secrets(self) -> tuple[dict[str, Any], dict[str, Any]]:
        async def both() -> tuple[dict[str, Any], dict[str, Any]]:
            private = await self.kube.secret(self.namespace, self.keys_secret)
            public = await self.kube.secret(self.namespace, self.keys_secret + "-public")
            assert private is not None and public is not None
            assert kids_of(private) == kids_of(public)
            return private, public
        return await eventually(both)

    async def mirror_public_keys(self) -> dict[str, str]:
        """The public key Secret into ``keys_dir`` as the kubelet updates a mounted Secret; its kids."""
        _, public = await self.key_secrets()
        kubelet_update(self.keys_dir, public["data"])
        return kids_of(public)

    async def backdate_rotation(self) -> None:
        """As if a whole rotation period had passed since the current key started signing."""
        long_ago = utcnow() - datetime.timedelta(seconds=self.config.key_rotation_period + 60)
        await self.kube.patch(f"/api/v1/namespaces/{self.namespace}/secrets/{self.keys_secret}",
                              {"metadata": {"annotations": {ROTATED_AT: stamp(long_ago)}}})


def kids_of(secret: dict[str, Any]) -> dict[str, str]:
    kids: dict[str, str] = json.loads(base64.b64decode(secret["data"]["kids"]))
    return kids


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def kubelet_update(folder: Path, data: dict[str, str]) -> None:
    """What the kubelet's atomic writer does: the files in a fresh ``..<timestamp>`` folder, ``..data`` swapped to
    it by a rename, and one ``name -> ..data/name`` link per key."""
    fresh = folder / f"..{time.time_ns()}"
    fresh.mkdir()
    for name, value in data.items():
        (fresh / name).write_bytes(base64.b64decode(value))
    link = folder / "..data_tmp"
    link.symlink_to(fresh.name)
    old = os.readlink(folder / "..data") if (folder / "..data").is_symlink() else None
    os.replace(link, folder / "..data")
    for name in data:
        if not (folder / name).is_symlink():
            (folder / name).symlink_to(f"..data/{name}")
    for entry in folder.iterdir():
        if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in data:
            entry.unlink()
    if old is not None:
        shutil.rmtree(folder / old)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def world(cluster: Backend, unique: str, http: aiohttp.ClientSession, tmp_path: Path) -> World:
    namespace, function = f"tok-{unique}", f"tok-{unique}"
    await cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    await cluster.apply({
        "apiVersion": API, "kind": "SubjectFunction", "metadata": {"name": function},
        "spec": {"titles": {"kk": "ПИБ", "ru": "ОСИ", "en": "Owners' association"},
                 "subjectTypes": ["PropertyOwnersAssociation"],
                 "rights": [{"category": 5, "actions": ["read", "write", "sign"]}]},
    })
    config = dataclasses.replace(cluster.operator_config(), signing_keys_secret=f"keys-{unique}",
                                 signing_keys_namespace=namespace)
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    return World(cluster, Kube(cluster, http), http, namespace, function, config, keys_dir)


def authz_config(world: World) -> AuthzConfig:
    cluster = world.cluster
    where: dict[str, Any] = ({"server": cluster.api.url} if isinstance(cluster, EmbeddedBackend)
                             else {"kubeconfig": str(cluster.cluster.kubeconfig)})  # type: ignore[attr-defined]
    return AuthzConfig(host="127.0.0.1", port=0, keys_dir=world.keys_dir, keys_reload_interval=0.1,
                       issuer=world.config.token_issuer, audience=world.config.token_audience, configure_logs=False,
                       retry_delay=0.05, watch_timeout=30, **where)


@contextlib.asynccontextmanager
async def operator(config: OperatorConfig) -> AsyncIterator[OperatorHandle]:
    async with running(config) as handle:
        yield handle


@contextlib.asynccontextmanager
async def decision_point(world: World) -> AsyncIterator[AuthzHandle]:
    await world.mirror_public_keys()
    async with start_authz(authz_config(world)) as handle:
        async def ready() -> None:
            async with world.http.get(handle.url + "/readyz") as response:
                assert response.status == 200
        await eventually(ready)
        yield handle


async def decide(world: World, handle: AuthzHandle, token: str) -> tuple[int, dict[str, Any]]:
    async with world.http.post(handle.url + "/v1/decisions", json=READ5,
                               headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json()


async def jwks_kids(world: World, handle: AuthzHandle) -> set[str]:
    async with world.http.get(handle.url + "/.well-known/jwks.json") as response:
        return {key["kid"] for key in (await response.json())["keys"]}


def issued(handle: OperatorHandle, cause: str) -> float:
    return handle.metrics.value("tksh_tokens_issued_total", {"cause": cause}) or 0.0


# --- tests -----------------------------------------------------------------------------------------------------------


async def test_an_active_grant_gets_a_token_the_decision_point_accepts_until_termination_deletes_it(
    world: World, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    ends = utcnow() + HOUR + datetime.timedelta(milliseconds=700)  # sooner than the 24 h lifetime
    async with operator(world.config) as handle:
        await world.function_ready()
        private, public = await world.key_secrets()
        assert private["type"] == "tksh.kz/signing-keys" and public["type"] == "tksh.kz/verification-keys"
        assert b"PRIVATE KEY" in base64.b64decode(private["data"]["current.pem"])
        assert all(b"PRIVATE" not in base64.b64decode(v) for v in public["data"].values())
        await world.make_grant("g1", valid_until=ends)
        grant, secret, token = await world.issued("g1")
        uid = grant["metadata"]["uid"]
        assert grant["status"]["tokenSecret"] == "g1-token"
        assert secret["type"] == TOKEN_SECRET_TYPE
        assert secret["metadata"]["labels"][GRANT_UID_LABEL] == uid
        (owner,) = secret["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("AccessGrant", "g1", uid)
        assert SUBJECT not in json.dumps(secret["metadata"])
        claims = jwt.decode(token, options={"verify_signature": False})
        assert (claims["sub"], claims["grant"], claims["iss"], claims["aud"]) == (
            SUBJECT, f"{world.namespace}/g1", "tksh-operator", "tksh-authz")
        assert claims["exp"] == int(ends.timestamp())  # capped at the agreement's end, rounded down
        assert kid_of(token) == kids_of(private)["current"]
        await world.event("g1", "TokenIssued")
        assert issued(handle, "new") == 1

        async with decision_point(world) as authz:
            assert await jwks_kids(world, authz) == {kids_of(private)["current"], kids_of(private)["next"]}
            status, out = await decide(world, authz, token)
            assert (status, out["allowed"], out["grant"]) == (200, True, f"{world.namespace}/g1")

            await world.terminate("g1")

            async def deleted() -> None:
                assert await world.kube.secret(world.namespace, "g1-token") is None
                status = (await world.kube.grant(world.namespace, "g1")).get("status") or {}
                assert "tokenSecret" not in status and "tokenExpiresAt" not in status, status

            await eventually(deleted)
            await world.event("g1", "TokenDeleted")

            async def denied() -> None:
                status, out = await decide(world, authz, token)
                assert (status, out["allowed"], out["reason"]) == (200, False, "REVOKED"), out

            await eventually(denied)
    signature = token.rsplit(".", 1)[1]
    assert "access token issued for grant" in caplog.text  # the operator's log lines were captured
    assert signature not in caplog.text  # no token, nor any part of its signature, in any log line
    events = await world.cluster.events("g1")
    assert events and not any(signature in json.dumps(e) for e in events)


async def test_tokens_are_renewed_before_they_expire(world: World) -> None:
    config = dataclasses.replace(world.config, token_lifetime=6.0, key_rotation_period=3600.0)
    async with operator(config) as handle:
        await world.function_ready()
        await world.make_grant("g1")
        _, _, first = await world.issued("g1")

        async def renewed() -> str:
            _, _, token = await world.issued("g1")
            assert token != first
            return token

        second = await eventually(renewed)
        before = jwt.decode(first, options={"verify_signature": False})
        after = jwt.decode(second, options={"verify_signature": False})
        assert after["exp"] > before["exp"]
        assert after["iat"] < before["exp"]  # renewed before the old one expired
        assert issued(handle, "renewal") >= 1
        assert (await world.events("g1")).count("TokenIssued") == 1  # renewals are not Events


async def test_rotation_signs_with_the_next_key_and_old_tokens_verify_until_it_drops(world: World) -> None:
    config = dataclasses.replace(world.config, token_lifetime=30.0, key_rotation_period=3600.0)
    async with operator(config) as handle:
        await world.function_ready()
        await world.make_grant("g1")
        _, _, old = await world.issued("g1")
        first = await world.mirror_public_keys()
        assert kid_of(old) == first["current"]
        async with decision_point(world) as authz:
            await world.backdate_rotation()

            async def rotated() -> dict[str, str]:
                private, _ = await world.key_secrets()
                kids = kids_of(private)
                assert kids["current"] == first["next"] and kids["previous"] == first["current"], kids
                return kids

            second = await eventually(rotated)
            await world.event(world.keys_secret, "SigningKeysRotated")
            await world.mirror_public_keys()

            async def reloaded() -> None:
                assert await jwks_kids(world, authz) == set(second.values())

            await eventually(reloaded)  # the new next key is published; no restart of the decision point
            status, out = await decide(world, authz, old)  # signed by the previous key: still verifies
            assert (status, out["allowed"]) == (200, True), out

            async def reissued() -> str:  # the grant's token, re-signed within the spread window
                _, _, token = await world.issued("g1")
                assert kid_of(token) == second["current"]
                return token

            new = await eventually(reissued)
            assert issued(handle, "rotation") == 1
            await world.backdate_rotation()

            async def dropped() -> None:
                private, _ = await world.key_secrets()
                assert kids_of(private)["previous"] == second["current"]

            await eventually(dropped)
            await world.mirror_public_keys()

            async def refused() -> None:
                status, out = await decide(world, authz, old)
                assert (status, out.get("reason")) == (401, "TOKEN_UNKNOWN_KID"), out

            await eventually(refused)
            status, out = await decide(world, authz, new)  # signed by the key that is now previous
            assert (status, out["allowed"]) == (200, True), out


async def test_a_restart_reissues_nothing_and_does_not_rotate(world: World) -> None:
    async with operator(world.config):
        await world.function_ready()
        await world.make_grant("g1")
        grant, secret, token = await world.issued("g1")
        private, _ = await world.key_secrets()
    async with operator(world.config) as handle:
        await world.make_grant("g2")  # once its token is there, the restarted operator has seen g1 too
        await world.issued("g2")
        again, again_secret, again_token = await world.issued("g1")
        assert again_token == token
        assert again_secret["metadata"]["resourceVersion"] == secret["metadata"]["resourceVersion"]
        assert again["status"]["tokenExpiresAt"] == grant["status"]["tokenExpiresAt"]
        assert (issued(handle, "new"), issued(handle, "renewal"), issued(handle, "rotation")) == (1, 0, 0)
        now_private, _ = await world.key_secrets()
        assert kids_of(now_private) == kids_of(private)
        assert now_private["metadata"]["annotations"][ROTATED_AT] == private["metadata"]["annotations"][ROTATED_AT]


async def test_a_foreign_secret_of_the_same_name_is_left_alone(world: World) -> None:
    await world.cluster.apply({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                               "metadata": {"name": "g1-token", "namespace": world.namespace},
                               "data": {"token": base64.b64encode(b"not ours").decode()}})
    async with operator(world.config):
        await world.function_ready()
        await world.make_grant("g1")

        async def warned() -> None:
            assert "TokenSecretConflict" in await world.events("g1")

        await eventually(warned)
        secret = await world.kube.secret(world.namespace, "g1-token")
        assert secret is not None and base64.b64decode(secret["data"]["token"]) == b"not ours"
        await world.terminate("g1")

        async def released() -> None:
            status = (await world.kube.grant(world.namespace, "g1")).get("status") or {}
            assert "tokenSecret" not in status, status

        await eventually(released)
    secret = await world.kube.secret(world.namespace, "g1-token")
    assert secret is not None and base64.b64decode(secret["data"]["token"]) == b"not ours"  # deleted nothing
