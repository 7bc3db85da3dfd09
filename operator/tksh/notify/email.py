"""Sending one outbox e-mail over real SMTP (aiosmtplib), with its idempotency key in the headers.

The key of the outbox entry (its ``id``) becomes the ``Message-ID`` (``<id@sender-domain>``) and the
``X-TKSH-Idempotency-Key`` header, so a message re-sent after a crash between sending and marking it
delivered (see ``tksh.notify.outbox``) is recognisably the same message. Subject and body are UTF-8
(Kazakh and Russian arrive intact); ``Auto-Submitted: auto-generated`` keeps vacation responders
from answering (RFC 3834).

Failures are classified for the outbox's retry policy:

- **temporary** (retry with backoff): a 4xx reply, a connection refused or dropped, a timeout, a
  TLS or authentication failure (the operator's SMTP settings are wrong: fixable without touching
  the message, so not the message's fault);
- **permanent** (``Failed`` at once): a 5xx reply (mailbox refused, sender refused, message
  refused), a server that cannot carry the message (no SMTPUTF8 for a non-ASCII address), no
  recipient address, an unknown template.

Error texts are masked (:func:`tksh.logs.mask_text`): SMTP replies often quote the address.
"""

from __future__ import annotations

import dataclasses
import datetime
import email.generator
import email.policy
import email.utils
import io
from collections.abc import Callable, Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any, Protocol

import aiosmtplib

from tksh.logs import mask_text
from tksh.notify.outbox import DeliveryResult

__all__ = [
    "IDEMPOTENCY_HEADER",
    "RenderedMail",
    "Renderer",
    "SmtpSettings",
    "build_message",
    "classify_error",
    "flatten",
    "message_id",
    "send_email",
    "send_entry",
]

IDEMPOTENCY_HEADER = "X-TKSH-Idempotency-Key"


class RenderedMail(Protocol):
    """What a renderer returns (e.g. ``tksh.registration.messages.Rendered``)."""

    @property
    def subject(self) -> str: ...

    @property
    def body(self) -> str: ...


Renderer = Callable[[str, Mapping[str, str]], RenderedMail]
"""Turns an outbox entry's ``template`` and ``params`` into a subject and a body."""


@dataclasses.dataclass(frozen=True)
class SmtpSettings:
    """How to reach the mail relay."""

    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "tksh@localhost"
    """The envelope sender and ``From`` address; its domain also names the ``Message-ID``s."""
    sender_name: str = "ТКШ / ЖКХ"
    """The display name in ``From``."""
    use_tls: bool = False
    """Implicit TLS from the first byte (SMTPS, usually port 465)."""
    starttls: bool | None = None
    """``None``: upgrade with STARTTLS when the server offers it; ``True``: require it; ``False``: never."""
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    validate_certs: bool = True
    timeout: float = 30.0
    """Seconds for connecting and for each SMTP command."""
    local_hostname: str | None = None
    """The name sent in EHLO (default: aiosmtplib's, from the local host name)."""


def message_id(key: str, sender: str) -> str:
    """``<key@domain-of-sender>``: one ``Message-ID`` per idempotency key, whoever sends it and when."""
    domain = sender.rpartition("@")[2].strip().rstrip(">") if "@" in sender else ""
    domain = domain or "tksh.local"
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        domain = "tksh.local"
    return f"<{key}@{domain}>"


def build_message(
    entry: Mapping[str, Any],
    to: str,
    subject: str,
    body: str,
    settings: SmtpSettings,
    now: datetime.datetime | None = None,
) -> EmailMessage:
    """The e-mail for an outbox entry, addressed to ``to`` (the real address, resolved at send time)."""
    key = str(entry["id"])
    message = EmailMessage()
    message["From"] = Address(display_name=settings.sender_name, addr_spec=settings.sender)
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = email.utils.format_datetime(now or datetime.datetime.now(datetime.UTC))
    message["Message-ID"] = message_id(key, settings.sender)
    message[IDEMPOTENCY_HEADER] = key
    message["X-TKSH-Template"] = str(entry.get("template", ""))
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = "kk, ru, en"
    message.set_content(body, subtype="plain", charset="utf-8", cte="base64")  # 7-bit safe on any relay
    return message


def flatten(message: EmailMessage, utf8: bool = False) -> bytes:
    """The message as sent: CRLF lines, headers unfolded up to RFC 5322's 998 characters.

    Not folding at 78 keeps ``Message-ID: <long-key@domain>`` on one line: some receivers compare
    it as a string, and a folded one arrives with leading whitespace. ``utf8``: raw UTF-8 headers
    (SMTPUTF8, for non-ASCII addresses) instead of RFC 2047 encoded words.
    """
    policy = (email.policy.SMTPUTF8 if utf8 else email.policy.SMTP).clone(max_line_length=998)
    with io.BytesIO() as buffer:
        email.generator.BytesGenerator(buffer, policy=policy).flatten(message)
        return buffer.getvalue()


def classify_error(error: BaseException) -> DeliveryResult:
    """Whether a failed attempt may be retried (see the module description)."""
    text = mask_text(f"{type(error).__name__}: {error}")
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in error.recipients]
        permanent = bool(codes) and all(500 <= c < 600 for c in codes)
        return DeliveryResult(False, permanent=permanent, error=text, code=codes[0] if codes else None)
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return DeliveryResult(False, permanent=False, error=text, code=error.code)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return DeliveryResult(False, permanent=500 <= error.code < 600, error=text, code=error.code)
    if isinstance(error, aiosmtplib.SMTPNotSupported):
        return DeliveryResult(False, permanent=True, error=text)
    if isinstance(error, ValueError):  # a malformed address or header: the message itself is wrong
        return DeliveryResult(False, permanent=True, error=text)
    return DeliveryResult(False, permanent=False, error=text)  # connection, timeout, TLS: try again later


async def send_email(message: EmailMessage, to: str, settings: SmtpSettings) -> DeliveryResult:
    """Send ``message`` to ``to`` and classify the outcome; never raises for delivery failures."""
    utf8 = not (settings.sender + to).isascii()
    try:
        await aiosmtplib.send(
            flatten(message, utf8),
            sender=settings.sender,
            recipients=[to],
            mail_options=["SMTPUTF8"] if utf8 else None,
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password,
            use_tls=settings.use_tls,
            start_tls=settings.starttls,
            validate_certs=settings.validate_certs,
            timeout=settings.timeout,
            local_hostname=settings.local_hostname,
        )
    except (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError) as error:
        return classify_error(error)
    return DeliveryResult(True)


async def send_entry(
    entry: Mapping[str, Any],
    to: str | None,
    settings: SmtpSettings,
    render: Renderer,
    now: datetime.datetime | None = None,
) -> DeliveryResult:
    """Render and send one ``email`` outbox entry to ``to``; the result goes to ``outbox.record``."""
    if entry.get("channel", "email") != "email":
        return DeliveryResult(False, permanent=True, error=f"channel {entry.get('channel')!r} is not e-mail")
    if not to:
        return DeliveryResult(False, permanent=True, error="no recipient address")
    try:
        rendered = render(str(entry["template"]), dict(entry.get("params") or {}))
    except KeyError as error:
        return DeliveryResult(False, permanent=True, error=f"unknown template or parameter: {error}")
    message = build_message(entry, to, rendered.subject, rendered.body, settings, now)
    return await send_email(message, to, settings)
