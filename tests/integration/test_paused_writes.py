"""A peering pause: work under way when it lands writes nothing after it.

A rival peer of higher priority pauses the operator under test while a piece of work is held half-way:

* an e-mail of a grant, or of an application's registration, held by the SMTP receiver: once released, the
  e-mail is sent but not recorded on the object; after the resume the operator sends it again with the same
  idempotency key and records it (both backends; the incident's notifier: ``test_monitoring_standby``);
* a grant's first token (three writes: ``status.tokenSecret``, the Secret, ``status.tokenExpiresAt``) held at
  the Secret's creation by the embedded API server: once released, the write already sent lands, and nothing
  after it; after the resume the plan runs again from what is stored (embedded backend only: a real API server
  cannot hold one request on demand).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp.web
import attrs
import pytest

from tests.integration.backends import Backend, EmbeddedBackend, running
from tests.integration.peering import HeldMail, Peering, paused_mid_delivery
from tests.integration.registration_helpers import application, make_namespace
from tests.integration.test_grants import config_for, grant, status_of
from tksh.sandbox.apiserver import EmbeddedAPIServer, project_crd_paths
from tksh.sandbox.mailsink import MailSink

Wait = Callable[..., Awaitable[Any]]


@attrs.define(kw_only=True, eq=False)
class HoldingAPIServer(EmbeddedAPIServer):
    """The embedded API server that holds the first request to ``held`` (method, path) until ``released``."""

    held: tuple[str, str] = ("", "")
    holding: asyncio.Event = attrs.field(init=False, factory=asyncio.Event)
    released: asyncio.Event = attrs.field(init=False, factory=asyncio.Event)

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        if (raw_request.method, raw_request.path) == self.held and not self.released.is_set():
            self.holding.set()
            await self.released.wait()
        return await super().__call__(raw_request)


async def test_a_grant_notice_sent_as_the_pause_lands_is_recorded_only_after_the_resume(
    cluster: Backend, unique: str, wait_until: Wait, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns = await make_namespace(cluster, unique, "held")

    async def token_issued() -> None:  # the token's writes are done: only the e-mail is under way
        assert (await status_of(cluster, "chair", ns, "Active")).get("tokenExpiresAt")

    await held_notice(cluster, unique, wait_until, monkeypatch, grant("chair", ns), "grant-activated", token_issued)


async def test_a_registration_notice_sent_as_the_pause_lands_is_recorded_only_after_the_resume(
    cluster: Backend, unique: str, wait_until: Wait, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns = await make_namespace(cluster, unique, "held")
    rejected = application("osi", ns, review={"decision": "Rejected", "reviewer": "aigerim",
                                              "reason": "эндпоинт вне Казахстана"})
    await held_notice(cluster, unique, wait_until, monkeypatch, rejected, "registration-rejected")


async def held_notice(cluster: Backend, unique: str, wait_until: Wait, monkeypatch: pytest.MonkeyPatch,
                      body: dict[str, Any], template: str,
                      settled: Callable[[], Awaitable[None]] | None = None) -> None:
    """Apply ``body``; hold its ``template`` e-mail; pause (nothing written after it), resume (sent again, recorded)."""
    kind, name, ns = body["kind"], body["metadata"]["name"], body["metadata"]["namespace"]
    async with HeldMail(template) as mail, \
            peered_operator(cluster, mail.port, f"held-{unique}", monkeypatch) as peering:
        await cluster.apply(body)
        if settled is not None:
            await wait_until(settled)
        after = await paused_mid_delivery(peering, mail, lambda: cluster.get(kind, name, ns), wait_until)
        assert notice(after, template)["state"] == "Pending"
        await peering.rival(False)
        entry = await wait_until(lambda: delivered(cluster, kind, name, ns, template))
    assert mail.keys() == [entry["id"]] * 2  # at least once, with one key


@contextlib.asynccontextmanager
async def peered_operator(cluster: Backend, smtp_port: int, name: str,
                          monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Peering]:
    """An operator running with kopf peering on (peering object ``name``, its own peer id), no rival yet."""
    monkeypatch.setenv("POD_ID", name)
    with Peering(cluster, name) as peering:
        await peering.create()
        config = dataclasses.replace(config_for(cluster, smtp_port), standalone=False, peering_name=peering.name)
        async with running(config):
            yield peering


async def held_grant(holding: HoldingAPIServer, what: str, unique: str) -> tuple[EmbeddedBackend, str]:
    """A namespace whose first ``POST`` of ``what`` (``secrets``, ``events``) the server will hold, and its name."""
    cluster = EmbeddedBackend(holding)
    ns = await make_namespace(cluster, unique, what)
    holding.held = ("POST", f"/api/v1/namespaces/{ns}/{what}")
    return cluster, ns


def notice(body: dict[str, Any] | None, template: str) -> dict[str, Any]:
    assert body is not None
    entries = [e for e in (body.get("status") or {}).get("outbox") or () if e["template"] == template]
    assert len(entries) == 1, entries
    return dict(entries[0])


async def delivered(cluster: Backend, kind: str, name: str, ns: str, template: str) -> dict[str, Any]:
    entry = notice(await cluster.get(kind, name, ns), template)
    assert entry["state"] == "Delivered", entry
    return entry


@pytest.fixture
async def holding() -> AsyncIterator[HoldingAPIServer]:
    async with HoldingAPIServer(crd_paths=project_crd_paths()) as server:
        yield server


async def test_a_token_issue_paused_between_its_writes_goes_on_only_after_the_resume(
    holding: HoldingAPIServer, mail: MailSink, unique: str, wait_until: Wait, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, ns = await held_grant(holding, "secrets", unique)  # the token's Secret (the keys live elsewhere)
    async with peered_operator(cluster, mail.port, f"tokens-{unique}", monkeypatch) as peering:
        await cluster.apply(grant("chair", ns))
        async with asyncio.timeout(60):
            await holding.holding.wait()  # tokenSecret is written; the Secret's creation waits here
        before = await cluster.get("AccessGrant", "chair", ns)
        assert before is not None and before["status"]["tokenSecret"], before["status"]
        await peering.rival(True)
        await wait_until(peering.paused)
        holding.released.set()

        async def created() -> None:
            assert await cluster.get("Secret", before["status"]["tokenSecret"], ns) is not None

        await wait_until(created)
        await asyncio.sleep(2.0)  # the next write of the plan, if made at all, follows at once
        after = await cluster.get("AccessGrant", "chair", ns)
        assert after is not None
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], (before, after)
        assert "tokenExpiresAt" not in after["status"]

        await peering.rival(False)

        async def issued() -> dict[str, Any]:
            status = await status_of(cluster, "chair", ns, "Active")
            assert status.get("tokenExpiresAt"), status
            return status

        status = await wait_until(issued, timeout=60)
        assert status["tokenSecret"] == before["status"]["tokenSecret"]


async def test_events_queued_before_the_pause_are_not_posted_after_it(
    holding: HoldingAPIServer, mail: MailSink, unique: str, wait_until: Wait, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kopf posts Events from a queue, one object's in order: the grant's first Event is held in the API server, so
    the next one (the activation e-mail's ``NotificationSent``) waits behind it when the pause lands."""
    cluster, ns = await held_grant(holding, "events", unique)
    async with peered_operator(cluster, mail.port, f"events-{unique}", monkeypatch) as peering:
        await cluster.apply(grant("chair", ns))
        async with asyncio.timeout(60):
            await holding.holding.wait()
        await wait_until(lambda: delivered(cluster, "AccessGrant", "chair", ns, "grant-activated"))
        await asyncio.sleep(0.5)  # its NotificationSent is queued behind the held Event by now
        await peering.rival(True)
        await wait_until(peering.paused)
        before = {e["reason"] for e in await cluster.events("chair")}
        holding.released.set()

        async def held_one_posted() -> None:
            assert {e["reason"] for e in await cluster.events("chair")} - before

        await wait_until(held_one_posted)  # the request already sent lands
        await asyncio.sleep(2.0)  # the queued ones, if posted at all, follow at once
        posted = {e["reason"] for e in await cluster.events("chair")}
        assert not {"Activated", "NotificationSent"} & posted, posted  # queued before the pause: dropped
