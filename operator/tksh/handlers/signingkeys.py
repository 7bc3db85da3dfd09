"""The signing-key Secrets in the cluster, and a small API client over kopf's own (its credentials, its retries).

:class:`KeyStore` keeps the operator's :class:`~tksh.access.keyrotation.KeyState` in step with the Secret
``config.signing_keys_secret`` in ``config.signing_keys_namespace``: it creates the Secret when missing, re-reads it
every ``refresh`` (another replica may have rotated), rotates it when ``tksh.kz/rotated-at`` + the period has passed,
and publishes ``<name>-public`` (public halves only) for the decision points. Every replica runs it, active or
standby: each write carries the ``resourceVersion`` it was computed from, so two replicas never rotate twice (the
loser gets 409 and re-reads), and a standby that becomes active already has the keys.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

import aiohttp
import kopf
from kopf._cogs.clients import api, errors, events  # kopf's client: the operator's credentials, retries on 5xx/429
from kopf._cogs.structs import references

from tksh.access.keyrotation import KeySecretError, KeyState, public_secret_name, read_key_secret
from tksh.config import OperatorConfig

__all__ = ["TRANSIENT", "Api", "KeyStore", "now"]

TRANSIENT: Final = (errors.APIError, aiohttp.ClientError, TimeoutError)
MERGE: Final = "application/merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"
_EVENTS = references.Resource(group="", version="v1", plural="events", namespaced=True)
_KEY_FILES: Final = ("kids", "current.pem", "next.pem", "previous.pem")


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Api:
    """kopf's API client with the settings and logger bound; bodies in and out are plain JSON."""

    def __init__(self, settings: kopf.OperatorSettings, logger: logging.Logger) -> None:
        self.settings, self.logger = settings, logger

    async def get(self, path: str) -> dict[str, Any]:
        found: dict[str, Any] = await api.get(path, settings=self.settings, logger=self.logger)
        return found

    async def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        made: dict[str, Any] = await api.post(path, payload=body, settings=self.settings, logger=self.logger)
        return made

    async def patch(self, path: str, body: object, content_type: str = MERGE) -> dict[str, Any]:
        patched: dict[str, Any] = await api.patch(path, payload=body, headers={"Content-Type": content_type},
                                                  settings=self.settings, logger=self.logger)
        return patched

    async def delete(self, path: str, body: Mapping[str, Any] | None = None) -> None:
        await api.delete(path, payload=body, settings=self.settings, logger=self.logger)

    async def event(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """An Event about ``obj`` (failures are logged by kopf, never raised)."""
        meta = obj.get("metadata") or {}
        ref: dict[str, str] = {k: v for k, v in (("apiVersion", obj.get("apiVersion")), ("kind", obj.get("kind")),
                                                 ("name", meta.get("name")), ("namespace", meta.get("namespace")),
                                                 ("uid", meta.get("uid"))) if v}
        await events.post_event(ref=ref, type=type_, reason=reason, message=message, resource=_EVENTS,  # type: ignore[arg-type]
                         settings=self.settings, logger=self.logger)


def secret_path(namespace: str, name: str | None = None) -> str:
    return f"/api/v1/namespaces/{namespace}/secrets" + (f"/{name}" if name else "")


def _data_patch(secret: Mapping[str, Any]) -> dict[str, Any]:
    """Every key file set, and the absent ones removed (a merge patch keeps keys it does not mention)."""
    data = secret["data"]
    return {name: data.get(name) for name in _KEY_FILES}


class KeyStore:
    """The operator's signing keys; ``state`` is ``None`` until they were read or created."""

    def __init__(self, config: OperatorConfig, client: Api, *, refresh: float,
                 on_change: Callable[[KeyState], None] = lambda state: None) -> None:
        self.name, self.namespace = config.signing_keys_secret, config.signing_keys_namespace
        self.issuer, self.audience = config.token_issuer, config.token_audience
        self.period = datetime.timedelta(seconds=config.key_rotation_period)
        self.client, self.refresh, self.on_change = client, refresh, on_change
        self.state: KeyState | None = None
        self.ready = asyncio.Event()
        self._rv: str | None = None
        self._published: str | None = None  # the kids last written to the public Secret by this process
        self._log = logging.getLogger("tksh.handlers.tokens")
        self._last_error = ""

    def _ref(self, uid: str | None = None) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": self.name, "namespace": self.namespace,
                                                                     **({"uid": uid} if uid else {})}}

    async def run(self) -> None:
        """Read (or create) the keys, then rotate them when due; until cancelled. Errors are retried with backoff."""
        failures = 0
        while True:
            try:
                state = await self.load()
                if now() >= state.due(self.period):
                    state = await self.rotate(state)
                failures, self._last_error = 0, ""
                wait = min(max((state.due(self.period) - now()).total_seconds(), 0.0), self.refresh)
            except (KeySecretError, *TRANSIENT) as error:
                failures += 1
                wait = min(self.refresh, 0.5 * 2 ** min(failures, 8))
                await self._report(error)
            await asyncio.sleep(max(wait, 0.05))

    async def _report(self, error: BaseException) -> None:
        text = f"{type(error).__name__}: {error}"[:300]
        if text == self._last_error:
            return
        self._last_error = text
        self._log.warning("signing keys unavailable, retrying: %s", text)
        if isinstance(error, KeySecretError):
            await self.client.event(self._ref(), "Warning", "SigningKeysInvalid",
                                    f"the signing keys cannot be used, no token is issued until fixed: {error}")

    async def load(self) -> KeyState:
        """The keys as stored (created when missing); publishes them when this process has not yet."""
        path = secret_path(self.namespace, self.name)
        try:
            secret = await self.client.get(path)
        except errors.APINotFoundError:
            state = KeyState.generate(issuer=self.issuer, audience=self.audience, now=now())
            try:
                created = await self.client.post(secret_path(self.namespace), state.secret(self.name, self.namespace))
            except errors.APIConflictError:  # another replica was first
                secret = await self.client.get(path)
            else:
                self._rv = created["metadata"]["resourceVersion"]
                await self._publish(state)
                self._set(state)
                await self.client.event(created, "Normal", "SigningKeysCreated",
                                        f"signing keys created: key {state.keys.current.kid} signs, "
                                        f"{state.keys.next.kid} is published next")
                return state
        state, rewrite = read_key_secret(secret, issuer=self.issuer, audience=self.audience, now=now())
        self._rv = secret["metadata"]["resourceVersion"]
        if rewrite:  # the rotation period counts from now: record it, so a restart does not restart the count
            patched = await self.client.patch(path, {"metadata": {"resourceVersion": self._rv,
                                                                  "annotations": state.annotations()}})
            self._rv = patched["metadata"]["resourceVersion"]
        if self._published != _kids(state):
            await self._publish(state)
        self._set(state)
        return state

    async def rotate(self, state: KeyState) -> KeyState:
        """next -> current -> previous, a new next; written only over the version it was computed from."""
        rotated = state.rotate(now())
        body = rotated.secret(self.name, self.namespace)
        patch = {"metadata": {"resourceVersion": self._rv, "annotations": body["metadata"]["annotations"]},
                 "data": _data_patch(body)}
        try:
            patched = await self.client.patch(secret_path(self.namespace, self.name), patch)
        except errors.APIConflictError:  # changed meanwhile (another replica rotated): take what is there
            return await self.load()
        self._rv = patched["metadata"]["resourceVersion"]
        await self._publish(rotated)
        self._set(rotated)
        keys = rotated.keys
        await self.client.event(patched, "Normal", "SigningKeysRotated",
                                f"signing keys rotated: key {keys.current.kid} signs from now on, "
                                f"{keys.previous.kid if keys.previous else '-'} still verifies until the next "
                                f"rotation, {keys.next.kid} is published next")
        self._log.info("signing keys rotated: %s signs", keys.current.kid)
        return rotated

    async def _publish(self, state: KeyState) -> None:
        """The public Secret for the decision points: patched, or created when missing; left alone when it already
        holds these keys (a replica that starts, a standby included, writes nothing another one already wrote)."""
        body = state.public_secret(self.name, self.namespace)
        path = secret_path(self.namespace, public_secret_name(self.name))
        patch = {"metadata": {"annotations": body["metadata"]["annotations"]}, "data": _data_patch(body)}
        try:
            if _holds(await self.client.get(path), patch):
                self._published = _kids(state)
                return
            await self.client.patch(path, patch)
        except errors.APINotFoundError:
            try:
                await self.client.post(secret_path(self.namespace), body)
            except errors.APIConflictError:
                await self.client.patch(path, patch)
        self._published = _kids(state)

    def _set(self, state: KeyState) -> None:
        changed = self.state is None or self.state.epoch != state.epoch
        self.state = state
        self.ready.set()
        if changed:
            self.on_change(state)


def _holds(secret: Mapping[str, Any], patch: Mapping[str, Any]) -> bool:
    """Whether ``secret`` already is what the merge ``patch`` would make it (its annotations and key files)."""
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    data = secret.get("data") or {}
    return all(annotations.get(k) == v for k, v in patch["metadata"]["annotations"].items()) and \
        all(data.get(k) == v for k, v in patch["data"].items())


def _kids(state: KeyState) -> str:
    k = state.keys
    return f"{k.current.kid}/{k.next.kid}/{k.previous.kid if k.previous else ''}"
