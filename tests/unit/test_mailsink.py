"""The sandbox mail sink receives real SMTP traffic (aiosmtplib), keeps and writes it intact."""

from __future__ import annotations

import asyncio
import email.policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import aiosmtplib
import pytest

from tksh.sandbox.mailsink import MailSink, ReceivedMail

SUBJECT = "Өтінім мақұлданды"
BODY = "Здравствуйте! Ваша заявка на доступ к цифровому объекту одобрена.\nҚұрметпен, ТКШ"


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def approval(to: str = "asel@mail.kz") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "tksh@tksh.kz"
    message["To"] = to
    message["Subject"] = SUBJECT
    message.set_content(BODY)
    return message


async def test_kazakh_subject_and_russian_body_arrive_decoded_and_written(tmp_path: Path) -> None:
    async with MailSink(maildir=tmp_path / "mail") as sink:
        assert sink.host == "127.0.0.1" and sink.port > 0
        await aiosmtplib.send(approval(), hostname=sink.host, port=sink.port)
        mail = await sink.wait_for(lambda m: m.subject == SUBJECT, timeout=10)

    assert mail.envelope_from == "tksh@tksh.kz"
    assert mail.envelope_to == ("asel@mail.kz",)
    assert mail.text.strip() == BODY
    assert mail.message["To"] == "asel@mail.kz"
    assert sink.messages == [mail.message]

    assert mail.path == tmp_path / "mail" / "1.eml"
    written = BytesParser(policy=email.policy.default).parsebytes(mail.path.read_bytes())
    assert written["Subject"] == SUBJECT
    assert written.get_content().strip() == BODY
    assert written["Return-Path"] == "<tksh@tksh.kz>"
    assert written["X-Envelope-To"] == "asel@mail.kz"


async def test_smtputf8_raw_utf8_headers_and_address(tmp_path: Path) -> None:
    """With SMTPUTF8 the headers travel as raw UTF-8 (no RFC 2047), even the addresses."""
    raw = (
        "From: ТКШ <tksh@tksh.kz>\r\n"
        "To: Асель <асель@пошта.қаз>\r\n"
        f"Subject: {SUBJECT}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"{BODY}\r\n"
    ).encode()
    async with MailSink(maildir=tmp_path) as sink:
        await aiosmtplib.send(
            raw, sender="tksh@tksh.kz", recipients=["асель@пошта.қаз"], hostname=sink.host, port=sink.port,
            mail_options=["SMTPUTF8", "BODY=8BITMIME"],
        )
        mail = await sink.wait_for(timeout=10)
    assert mail.envelope_to == ("асель@пошта.қаз",)
    assert mail.subject == SUBJECT
    assert mail.message["To"].addresses[0].addr_spec == "асель@пошта.қаз"
    assert mail.text.strip() == BODY
    assert mail.path is not None and SUBJECT.encode() in mail.path.read_bytes()


async def test_two_recipients_one_message_both_envelope_recipients(tmp_path: Path) -> None:
    message = approval(to="asel@mail.kz")
    message["Cc"] = "nurlan@mail.kz"
    async with MailSink(maildir=tmp_path) as sink:
        await aiosmtplib.send(message, hostname=sink.host, port=sink.port)
        mail = await sink.wait_for(timeout=10)
        await asyncio.sleep(0)  # let any (wrong) second copy reach the sink too
        assert len(sink.received) == 1
    assert sorted(mail.envelope_to) == ["asel@mail.kz", "nurlan@mail.kz"]
    assert names(tmp_path) == ["1.eml"]


async def test_bcc_is_visible_only_in_the_envelope(tmp_path: Path) -> None:
    async with MailSink(maildir=tmp_path) as sink:
        await aiosmtplib.send(approval(), sender="tksh@tksh.kz", recipients=["asel@mail.kz", "audit@tksh.kz"],
                              hostname=sink.host, port=sink.port)
        mail = await sink.wait_for(timeout=10)
    assert "audit@tksh.kz" not in str(mail.message)
    assert mail.path is not None
    assert b"X-Envelope-To: asel@mail.kz, audit@tksh.kz" in mail.path.read_bytes()


async def test_wait_for_sees_earlier_mail_and_waits_for_later_mail() -> None:
    async with MailSink() as sink:
        await aiosmtplib.send(approval("first@mail.kz"), hostname=sink.host, port=sink.port)
        waiting = asyncio.create_task(sink.wait_for(lambda m: "second@mail.kz" in m.envelope_to, timeout=10))
        first = await sink.wait_for(lambda m: "first@mail.kz" in m.envelope_to, timeout=10)
        assert first.envelope_to == ("first@mail.kz",)
        assert not waiting.done()
        await aiosmtplib.send(approval("second@mail.kz"), hostname=sink.host, port=sink.port)
        second: ReceivedMail = await waiting
    assert second.envelope_to == ("second@mail.kz",)
    assert [m.envelope_to for m in sink.received] == [("first@mail.kz",), ("second@mail.kz",)]
    assert second.received_at >= first.received_at


async def test_wait_for_times_out_saying_what_arrived() -> None:
    async with MailSink() as sink:
        await aiosmtplib.send(approval("asel@mail.kz"), hostname=sink.host, port=sink.port)
        with pytest.raises(TimeoutError, match=r"asel@mail\.kz"):
            await sink.wait_for(lambda m: m.subject == "something else", timeout=0.2)


async def test_maildir_numbering_continues_after_existing_files(tmp_path: Path) -> None:
    (tmp_path / "1.eml").write_bytes(b"Subject: old\r\n\r\nold\r\n")
    (tmp_path / "7.eml").write_bytes(b"Subject: old\r\n\r\nold\r\n")
    (tmp_path / "notes.txt").write_text("not mail")
    async with MailSink(maildir=tmp_path) as sink:
        await aiosmtplib.send(approval(), hostname=sink.host, port=sink.port)
        mail = await sink.wait_for(timeout=10)
    assert mail.path == tmp_path / "8.eml"
    assert (tmp_path / "1.eml").read_bytes() == b"Subject: old\r\n\r\nold\r\n"


async def test_closing_with_a_client_still_connected_does_not_hang_and_frees_the_port() -> None:
    sink = MailSink()
    await sink.start()
    client = aiosmtplib.SMTP(hostname=sink.host, port=sink.port)
    await client.connect()
    await client.ehlo()
    await sink.close()
    with pytest.raises(aiosmtplib.SMTPException):
        await client.noop()
    with pytest.raises(OSError):
        await aiosmtplib.send(approval(), hostname=sink.host, port=sink.port, timeout=5)
    await sink.close()  # closing twice is harmless


async def test_a_busy_port_raises_oserror() -> None:
    async with MailSink() as first:
        with pytest.raises(OSError):
            async with MailSink(port=first.port):
                pass
