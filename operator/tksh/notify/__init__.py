"""Durable notifications: the outbox kept in an object's status, and the channels that deliver it.

- :mod:`tksh.notify.outbox`: pure functions over ``status.outbox`` (enqueue, due, mark, backoff,
  compact, merge) and the at-least-once contract;
- :mod:`tksh.notify.email`: one outbox e-mail over real SMTP, with the idempotency key as
  ``Message-ID`` and ``X-TKSH-Idempotency-Key``, and errors classified temporary or permanent.
"""

from __future__ import annotations

from tksh.notify.email import (
    IDEMPOTENCY_HEADER,
    RenderedMail,
    Renderer,
    SmtpSettings,
    build_message,
    classify_error,
    message_id,
    send_email,
    send_entry,
)
from tksh.notify.outbox import (
    CHANNELS,
    Backoff,
    Channel,
    DeliveryResult,
    Entry,
    Outbox,
    compact,
    due,
    enqueue,
    enqueue_all,
    find,
    make_key,
    mark_delivered,
    mark_failed,
    merge,
    new_entry,
    next_attempt_at,
    parse_time,
    record,
)

__all__ = [
    "CHANNELS",
    "IDEMPOTENCY_HEADER",
    "Backoff",
    "Channel",
    "DeliveryResult",
    "Entry",
    "Outbox",
    "RenderedMail",
    "Renderer",
    "SmtpSettings",
    "build_message",
    "classify_error",
    "compact",
    "due",
    "enqueue",
    "enqueue_all",
    "find",
    "make_key",
    "mark_delivered",
    "mark_failed",
    "merge",
    "message_id",
    "new_entry",
    "next_attempt_at",
    "parse_time",
    "record",
    "send_email",
    "send_entry",
]
