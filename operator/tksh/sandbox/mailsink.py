"""A local SMTP server that keeps every message it receives: the sandbox's and the tests' mailbox.

Runs ``aiosmtpd``'s SMTP protocol directly on the current asyncio loop (``loop.create_server``)
instead of aiosmtpd's threaded ``Controller``: tests that use one loop stay deterministic, and
nothing outlives the ``async with``. SMTPUTF8 and 8BITMIME are offered, so Kazakh and Russian
subjects, bodies and even addresses arrive intact. Nothing is relayed anywhere.

With a ``maildir`` each message is also written to ``<maildir>/<n>.eml`` (n counts on after the
files already there, so a restarted sandbox does not overwrite earlier mail), prefixed with
``Return-Path`` and ``X-Envelope-To`` so that Bcc recipients are visible to whoever opens it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import email.policy
import re
import weakref
from collections.abc import Callable
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, cast

from aiosmtpd.smtp import SMTP, Envelope, Session

from tksh.aio import Service

__all__ = ["MailSink", "ReceivedMail"]

_EML_NAME = re.compile(r"(\d+)\.eml")


class _SMTPUTF8Policy(email.policy.EmailPolicy):
    """``email.policy.default`` that also reads raw UTF-8 headers (RFC 6532, sent with SMTPUTF8).

    The bytes parser hands header lines over with undecodable bytes as surrogates; the stock
    policy keeps those in address headers, so ``асель@пошта.қаз`` would come out as garbage.
    """

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = super().header_source_parse(sourcelines)
        if not value.isascii():
            value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return name, value


_POLICY = _SMTPUTF8Policy()


@dataclasses.dataclass(frozen=True)
class ReceivedMail:
    """One accepted message with its SMTP envelope (which may differ from the To/Cc headers)."""

    envelope_from: str
    envelope_to: tuple[str, ...]
    message: EmailMessage
    received_at: datetime.datetime
    path: Path | None = None  # the .eml file, when the sink has a maildir

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def text(self) -> str:
        """The plain-text body (or the HTML one if there is no plain part), decoded."""
        part = self.message.get_body(preferencelist=("plain", "html"))
        return "" if part is None else cast(EmailMessage, part).get_content()


class _Handler:
    """aiosmtpd handler: accepts everything and hands the message to the sink."""

    def __init__(self, sink: MailSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        await self._sink._store(envelope.mail_from or "", tuple(envelope.rcpt_tos), data)
        return "250 Message accepted for delivery"


class MailSink(Service):
    """``async with MailSink(port=0) as sink: ... await sink.wait_for(lambda m: ..., timeout=5)``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, maildir: Path | None = None) -> None:
        self.host = host
        self.port = port
        self.maildir = maildir
        self.received: list[ReceivedMail] = []
        self._server: asyncio.AbstractServer | None = None
        self._protocols: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self._arrived = asyncio.Condition()
        self._next_number = 1

    @property
    def messages(self) -> list[EmailMessage]:
        """The parsed messages in arrival order (see :attr:`received` for envelopes)."""
        return [mail.message for mail in self.received]

    async def start(self) -> None:
        if self.maildir is not None:
            self.maildir.mkdir(parents=True, exist_ok=True)
            taken = [int(m.group(1)) for p in self.maildir.iterdir() if (m := _EML_NAME.fullmatch(p.name))]
            self._next_number = max(taken, default=0) + 1
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def _protocol(self) -> SMTP:
        smtp = SMTP(
            _Handler(self),
            hostname="tksh-mailsink",  # not socket.getfqdn(): that may wait for DNS
            ident="tksh mail sink",
            enable_SMTPUTF8=True,  # 8BITMIME is always offered by aiosmtpd
            decode_data=False,
            loop=asyncio.get_running_loop(),
        )
        self._protocols.add(smtp)
        return smtp

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for smtp in list(self._protocols):  # drop clients still connected, so closing never hangs
            transport = getattr(smtp, "transport", None)
            if transport is not None:
                transport.close()
        await server.wait_closed()

    async def _store(self, envelope_from: str, envelope_to: tuple[str, ...], data: bytes) -> None:
        # SMTP lines end in CRLF; parsed text parts should read like text (the .eml keeps the bytes).
        message = cast(EmailMessage, BytesParser(policy=_POLICY).parsebytes(data.replace(b"\r\n", b"\n")))
        path: Path | None = None
        if self.maildir is not None:
            path = self.maildir / f"{self._next_number}.eml"
            self._next_number += 1
            trace = f"Return-Path: <{envelope_from}>\r\nX-Envelope-To: {', '.join(envelope_to)}\r\n"
            await asyncio.to_thread(path.write_bytes, trace.encode("utf-8") + data)
        mail = ReceivedMail(
            envelope_from=envelope_from,
            envelope_to=envelope_to,
            message=message,
            received_at=datetime.datetime.now(datetime.UTC),
            path=path,
        )
        async with self._arrived:
            self.received.append(mail)
            self._arrived.notify_all()

    async def wait_for(
        self,
        predicate: Callable[[ReceivedMail], Any] | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 (a deadline argument reads best in tests)
    ) -> ReceivedMail:
        """The first received message (already here or still to come) for which ``predicate`` is true.

        Raises ``TimeoutError`` after ``timeout`` seconds, saying what did arrive.
        """
        check = predicate or (lambda _: True)
        seen = 0
        try:
            async with asyncio.timeout(timeout), self._arrived:
                while True:
                    for mail in self.received[seen:]:
                        if check(mail):
                            return mail
                    seen = len(self.received)
                    await self._arrived.wait()
        except TimeoutError:
            got = "; ".join(f"{m.envelope_to} {m.subject!r}" for m in self.received) or "nothing"
            raise TimeoutError(f"no matching mail within {timeout} s; received: {got}") from None
