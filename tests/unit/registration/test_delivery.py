"""The registration e-mails through the outbox over real SMTP, across an operator restart."""

from __future__ import annotations

import datetime
from typing import Any

from tests.unit.registration.sim import ADMIN, REF, REMINDER, SUBMITTED, Sim, apply, approve
from tksh.notify.email import IDEMPOTENCY_HEADER, SmtpSettings
from tksh.notify.outbox import Backoff, next_attempt_at
from tksh.registration import messages as m
from tksh.registration.delivery import deliver_due
from tksh.registration.lifecycle import reconcile
from tksh.sandbox.mailsink import MailSink

DAY = datetime.timedelta(days=1)
OWNER = "board@dostyk12.example.kz"


def smtp(sink: MailSink) -> SmtpSettings:
    return SmtpSettings(host=sink.host, port=sink.port, sender="tksh@tksh.example.kz", timeout=10)


def approved() -> Sim:
    sim = Sim()
    sim.run()
    sim.edit(approve)
    sim.run(SUBMITTED + DAY)
    return sim


async def test_a_crash_after_sending_resends_once_with_the_same_key_then_never_again() -> None:
    sim = approved()
    stored: dict[str, Any] = sim.status  # what the API server holds
    at = SUBMITTED + DAY
    async with MailSink() as sink:
        # operator A sends, then dies before writing the result
        _lost, attempts = await deliver_due(stored["outbox"], sim.spec, at, smtp=smtp(sink), config=sim.config)
        assert [(a.template, a.state, a.recipient) for a in attempts] == [(m.APPROVED, "Delivered", "b***@d***.kz")]
        # operator B starts, reads the stored status: the entry is still pending, so it is sent again
        outbox, attempts = await deliver_due(stored["outbox"], sim.spec, at + 60 * datetime.timedelta(seconds=1),
                                             smtp=smtp(sink), config=sim.config)
        assert [a.state for a in attempts] == ["Delivered"]
        stored = apply(stored, {"outbox": outbox})
        # and now nothing is due; reconciling again enqueues nothing
        assert (await deliver_due(stored["outbox"], sim.spec, at + DAY, smtp=smtp(sink), config=sim.config))[1] == []
        plan = reconcile(sim.spec, stored, sim.generation, sim.directory, at + DAY, sim.config, ref=REF)
        assert plan.notifications == ()
        await sink.wait_for(lambda _: len(sink.received) == 2, timeout=10)
    first, second = sink.received
    assert first.message["Message-ID"] == second.message["Message-ID"]
    assert first.message[IDEMPOTENCY_HEADER] == second.message[IDEMPOTENCY_HEADER] == stored["outbox"][0]["id"]
    assert first.envelope_to == (OWNER,)
    assert "Өтінім мақұлданды" in first.subject and "Заявка одобрена" in first.subject
    assert "интеграция туралы шарт" in first.text and "договор об интеграции" in first.text


async def test_a_mail_server_down_is_retried_later() -> None:
    sim = approved()
    at = SUBMITTED + DAY
    down = MailSink()
    await down.start()
    settings = smtp(down)
    await down.close()
    backoff = Backoff(initial=datetime.timedelta(seconds=30), max_attempts=3)
    outbox, attempts = await deliver_due(sim.status["outbox"], sim.spec, at, smtp=settings, config=sim.config,
                                         backoff=backoff)
    assert [a.state for a in attempts] == ["Pending"] and attempts[0].result.temporary
    retry_at = next_attempt_at(outbox)
    assert retry_at is not None and retry_at > at
    assert (await deliver_due(outbox, sim.spec, retry_at - datetime.timedelta(seconds=1), smtp=settings,
                              config=sim.config, backoff=backoff))[1] == []
    async with MailSink(port=settings.port) as sink:
        outbox, attempts = await deliver_due(outbox, sim.spec, retry_at, smtp=settings, config=sim.config,
                                             backoff=backoff)
        assert [a.state for a in attempts] == ["Delivered"]
        await sink.wait_for(timeout=10)
    assert outbox[0]["attempts"] == 2


async def test_the_reminder_goes_to_the_administrators_mailbox() -> None:
    sim = Sim()
    sim.run()
    sim.run(REMINDER)
    async with MailSink() as sink:
        _, attempts = await deliver_due(sim.status["outbox"], sim.spec, REMINDER, smtp=smtp(sink),
                                        config=sim.config)
        mail = await sink.wait_for(timeout=10)
    assert [a.template for a in attempts] == [m.REVIEW_REMINDER]
    assert mail.envelope_to == (ADMIN,)
    assert "kubectl tksh approve osi-portal -n housing" in mail.text


async def test_a_removed_owner_address_fails_the_entry_permanently() -> None:
    sim = approved()
    del sim.spec["owner"]["email"]
    outbox, attempts = await deliver_due(sim.status["outbox"], sim.spec, SUBMITTED + DAY,
                                         smtp=SmtpSettings(port=1), config=sim.config)
    assert [a.state for a in attempts] == ["Failed"] and outbox[0]["lastError"] == "no recipient address"
