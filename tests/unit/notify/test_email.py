"""One outbox e-mail over real SMTP into the in-process MailSink: content, headers, error classes."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any, ClassVar

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from tksh.notify import email as em
from tksh.notify import outbox as ob
from tksh.registration import messages
from tksh.sandbox.mailsink import MailSink, _Handler

T0 = datetime.datetime(2026, 7, 21, 5, 0, tzinfo=datetime.UTC)
OWNER = "board@dostyk12.example.kz"
REASON = "Ақпараттық жүйе тіркелімде жоқ; сведения о системе отсутствуют в реестре"


class RefusingSink(MailSink):
    """The mail sink with a mailbox that does not exist (550) and one that is over quota (452)."""

    refused: ClassVar[dict[str, str]] = {"nobody@example.kz": "550 5.1.1 <nobody@example.kz>: mailbox unavailable",
               "full@example.kz": "452 4.2.2 <full@example.kz>: mailbox full, try later"}

    def _protocol(self) -> SMTP:
        sink = self

        class Handler(_Handler):
            async def handle_RCPT(
                self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
            ) -> str:
                if address in sink.refused:
                    return sink.refused[address]
                envelope.rcpt_tos.append(address)
                return "250 OK"

        smtp = SMTP(Handler(self), hostname="tksh-mailsink", enable_SMTPUTF8=True, decode_data=False,
                    loop=asyncio.get_running_loop())
        self._protocols.add(smtp)
        return smtp


def settings_for(sink: MailSink, **kw: Any) -> em.SmtpSettings:
    return em.SmtpSettings(host=sink.host, port=sink.port, sender="tksh@tksh.example.kz", timeout=10, **kw)


def rejection() -> ob.Entry:
    key = ob.make_key(messages.REJECTED, "uid-1", "owner", "rejected", 2)
    return ob.new_entry(id=key, channel="email", template=messages.REJECTED, now=T0, recipient=OWNER,
                        params={"to": "owner", "name": "osi-portal", "namespace": "housing", "reason": REASON,
                                "decidedAt": "2026-07-21T05:00:00Z"})


async def test_kazakh_and_russian_arrive_intact_with_the_idempotency_key() -> None:
    entry = rejection()
    async with MailSink() as sink:
        result = await em.send_entry(entry, OWNER, settings_for(sink), messages.render, now=T0)
        assert result == ob.DeliveryResult(True)
        mail = await sink.wait_for(timeout=10)
    expected = messages.render(entry["template"], entry["params"])
    assert mail.subject == expected.subject
    assert "Өтінім қабылданбады / В заявке отказано" in mail.subject
    assert mail.text == expected.body
    assert f"Себебі: {REASON}" in mail.text and f"Причина: {REASON}" in mail.text
    assert mail.text.index("Себебі") < mail.text.index("Причина")  # Kazakh first
    assert mail.message[em.IDEMPOTENCY_HEADER] == entry["id"]
    assert mail.message["Message-ID"] == f"<{entry['id']}@tksh.example.kz>"
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert mail.message["X-TKSH-Template"] == messages.REJECTED
    assert mail.message.get_content_charset() == "utf-8"
    assert mail.message["Content-Transfer-Encoding"] == "base64"  # 7-bit safe on any relay
    assert mail.envelope_from == "tksh@tksh.example.kz" and mail.envelope_to == (OWNER,)


async def test_a_resend_after_a_crash_is_the_same_message() -> None:
    entry = rejection()
    async with MailSink() as sink:
        settings = settings_for(sink)
        for at in (T0, T0 + datetime.timedelta(minutes=5)):
            assert (await em.send_entry(entry, OWNER, settings, messages.render, now=at)).delivered
        await sink.wait_for(lambda m: len(sink.received) == 2, timeout=10)
    first, second = sink.messages
    assert first["Message-ID"] == second["Message-ID"]
    assert first[em.IDEMPOTENCY_HEADER] == second[em.IDEMPOTENCY_HEADER] == entry["id"]
    assert first.get_content() == second.get_content()


async def test_a_non_ascii_address_is_delivered_with_smtputf8() -> None:
    async with MailSink() as sink:
        result = await em.send_entry(rejection(), "асель@пошта.қаз", settings_for(sink), messages.render)
        assert result.delivered, result
        mail = await sink.wait_for(timeout=10)
    assert mail.envelope_to == ("асель@пошта.қаз",)


async def test_a_refused_recipient_is_permanent() -> None:
    async with RefusingSink() as sink:
        result = await em.send_entry(rejection(), "nobody@example.kz", settings_for(sink), messages.render)
    assert not result.delivered and result.permanent and result.code == 550
    assert "nobody@example.kz" not in result.error  # masked
    box = ob.record([rejection()], rejection()["id"], result, T0)
    assert box[0]["state"] == "Failed" and box[0]["lastError"]


async def test_a_4xx_recipient_reply_is_temporary() -> None:
    async with RefusingSink() as sink:
        result = await em.send_entry(rejection(), "full@example.kz", settings_for(sink), messages.render)
    assert result.temporary and result.code == 452
    box = ob.record([rejection()], rejection()["id"], result, T0)
    assert box[0]["state"] == "Pending" and box[0]["attempts"] == 1 and box[0]["nextAttemptAt"] > box[0]["createdAt"]


async def test_a_stopped_server_is_temporary() -> None:
    sink = MailSink()
    await sink.start()
    settings = settings_for(sink)
    await sink.close()
    result = await em.send_entry(rejection(), OWNER, settings, messages.render)
    assert result.temporary and not result.delivered and result.error


async def test_no_address_and_unknown_template_are_permanent() -> None:
    settings = em.SmtpSettings(port=1)  # never contacted
    assert (await em.send_entry(rejection(), None, settings, messages.render)).permanent
    unknown = rejection() | {"template": "no-such-template"}
    assert (await em.send_entry(unknown, OWNER, settings, messages.render)).permanent
    webhook = rejection() | {"channel": "webhook"}
    assert (await em.send_entry(webhook, OWNER, settings, messages.render)).permanent


@pytest.mark.parametrize(
    ("error", "permanent"),
    [
        (aiosmtplib.SMTPResponseException(554, "transaction failed"), True),
        (aiosmtplib.SMTPResponseException(421, "service not available"), False),
        (aiosmtplib.SMTPSenderRefused(553, "sender refused", "tksh@x.kz"), True),
        (aiosmtplib.SMTPDataError(552, "message too big"), True),
        (aiosmtplib.SMTPDataError(451, "local error"), False),
        (aiosmtplib.SMTPAuthenticationError(535, "bad credentials"), False),  # our settings, not the message
        (aiosmtplib.SMTPConnectError("connection refused"), False),
        (aiosmtplib.SMTPServerDisconnected("dropped"), False),
        (aiosmtplib.SMTPReadTimeoutError("timed out"), False),
        (aiosmtplib.SMTPNotSupported("SMTPUTF8 not supported"), True),
        (ConnectionRefusedError(111, "refused"), False),
        (ValueError("bad address"), True),
    ],
)
def test_error_classes(error: BaseException, permanent: bool) -> None:
    result = em.classify_error(error)
    assert not result.delivered and result.permanent is permanent


def test_long_keys_are_not_folded() -> None:
    key = ob.make_key("incident-reminder-30-minutes-after-the-outage-began", "uid-1", "owner")
    message = em.build_message({"id": key, "template": "t"}, OWNER, "Тақырып / Тема", "Мәтін", em.SmtpSettings())
    raw = em.flatten(message)
    assert f"Message-ID: <{key}@localhost>\r\n".encode() in raw
    assert f"X-TKSH-Idempotency-Key: {key}\r\n".encode() in raw


def test_message_id_domain() -> None:
    assert em.message_id("k-1", "tksh@tksh.example.kz") == "<k-1@tksh.example.kz>"
    idna = em.message_id("k-1", "tksh@пошта.қаз")
    assert idna.isascii() and idna.startswith("<k-1@xn--") and idna.endswith(">")
    assert em.message_id("k-1", "nobody") == "<k-1@tksh.local>"
