"""A real SMTP receiver that de-duplicates on the idempotency key, can go down, and can fire kill hooks.

It is :class:`tksh.sandbox.mailsink.MailSink` (a real aiosmtpd server on loopback) that also keeps:

- every raw message in arrival order (``raw``), and the first one per ``X-TKSH-Idempotency-Key``
  (``unique``): what a receiver that remembers keys would show its user;
- hooks called when a client connects (``on_connect``: "right before a delivery") and when a message
  has been received but before the ``250`` reply goes out (``on_data``: "mid-delivery"; a sender
  killed there never learns that the message arrived, and must send it again with the same key).

``down()`` closes the listening socket (clients get *connection refused*, a temporary failure),
``up()`` listens again on the same port.
"""

from __future__ import annotations

import collections
from collections.abc import Callable

from aiosmtpd.smtp import SMTP

from tksh.notify import IDEMPOTENCY_HEADER
from tksh.sandbox.mailsink import MailSink, ReceivedMail

Hook = Callable[[], None]


class DedupMailbox(MailSink):
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.on_connect: Hook | None = None
        self.on_data: Hook | None = None
        self.connections = 0
        self.is_up = False

    # --- serving ----------------------------------------------------------------------------------

    async def start(self) -> None:
        await super().start()
        self.is_up = True

    async def close(self) -> None:
        self.is_up = False
        await super().close()

    async def down(self) -> None:
        await self.close()

    async def up(self) -> None:
        await self.start()

    def _protocol(self) -> SMTP:
        self.connections += 1
        hook, self.on_connect = self.on_connect, None  # one-shot
        if hook is not None:
            hook()
        return super()._protocol()

    async def _store(self, envelope_from: str, envelope_to: tuple[str, ...], data: bytes) -> None:
        await super()._store(envelope_from, envelope_to, data)
        hook, self.on_data = self.on_data, None  # one-shot, after the message is kept, before the reply
        if hook is not None:
            hook()

    # --- what arrived -----------------------------------------------------------------------------

    @property
    def raw(self) -> list[ReceivedMail]:
        return list(self.received)

    @staticmethod
    def key(mail: ReceivedMail) -> str:
        return str(mail.message.get(IDEMPOTENCY_HEADER, "")).strip()

    def counts(self) -> collections.Counter[str]:
        """How many times each idempotency key arrived."""
        return collections.Counter(self.key(m) for m in self.received)

    def unique(self) -> list[ReceivedMail]:
        """The first message of each key, in arrival order (a de-duplicating receiver's view)."""
        seen: set[str] = set()
        result: list[ReceivedMail] = []
        for mail in self.received:
            key = self.key(mail)
            if key not in seen:
                seen.add(key)
                result.append(mail)
        return result

    @property
    def raw_duplicates(self) -> int:
        """Messages beyond the first of their key: what a receiver without de-duplication would see twice."""
        return sum(n - 1 for n in self.counts().values())
