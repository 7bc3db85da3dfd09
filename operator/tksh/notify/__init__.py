"""Durable notifications: the outbox kept in an object's status, and the channels that deliver it.

- :mod:`tksh.notify.outbox`: pure functions over ``status.outbox`` (enqueue, due, mark, backoff,
  compact, merge) and the at-least-once contract;
- :mod:`tksh.notify.email`: one outbox e-mail over real SMTP, with the idempotency key as
  ``Message-ID`` and ``X-TKSH-Idempotency-Key``, and errors classified temporary or permanent;
- :mod:`tksh.notify.webhook`: signed webhooks (HMAC-SHA256 over timestamp and body, ``X-TKSH-Signature``,
  ``Idempotency-Key``) and :func:`verify` for receivers;
- :mod:`tksh.notify.alertmanager`: alerts over Alertmanager's v2 API, fired, re-posted and resolved.
"""

from __future__ import annotations

from tksh.notify.alertmanager import Alert, alerts_url, post_alerts
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
from tksh.notify.webhook import (
    IDEMPOTENCY_KEY_HEADER,
    SIGNATURE_HEADER,
    SignatureError,
    send_webhook,
    signature_header,
    verify,
)

__all__ = [
    "CHANNELS",
    "IDEMPOTENCY_HEADER",
    "IDEMPOTENCY_KEY_HEADER",
    "SIGNATURE_HEADER",
    "Alert",
    "Backoff",
    "Channel",
    "DeliveryResult",
    "Entry",
    "Outbox",
    "RenderedMail",
    "Renderer",
    "SignatureError",
    "SmtpSettings",
    "alerts_url",
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
    "post_alerts",
    "record",
    "send_email",
    "send_entry",
    "send_webhook",
    "signature_header",
    "verify",
]
