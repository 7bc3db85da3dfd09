"""Delivering a ``DigitalObject``'s pending e-mails: the one piece of I/O of the registration core.

``status.outbox`` entries were written by :func:`tksh.registration.reconcile`; this sends the
ones due, each to the address resolved *now* (:func:`recipient_address`: the owner's e-mail from
the spec, or the Administrator's mailbox), rendered by :mod:`tksh.registration.messages`, and
returns the outbox with every attempt recorded. The caller must have read ``outbox`` from the
stored status (entries are written before they are sent) and must write the result back (after
sending): see the at-least-once contract in :mod:`tksh.notify.outbox`.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from tksh.notify.email import Renderer, SmtpSettings, send_entry
from tksh.notify.outbox import Backoff, DeliveryResult, Entry, due, record
from tksh.registration import messages
from tksh.registration.plan import LifecycleConfig, recipient_address

__all__ = ["Attempt", "deliver_due"]


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One delivery attempt, for metrics, Events and logs (no personal data: the recipient is masked)."""

    id: str
    template: str
    recipient: str
    result: DeliveryResult
    state: str
    """The entry's state after the attempt: ``Delivered``, ``Pending`` (will retry) or ``Failed``."""


async def deliver_due(
    outbox: Sequence[Mapping[str, Any]] | None,
    spec: Mapping[str, Any],
    now: datetime.datetime,
    *,
    smtp: SmtpSettings,
    config: LifecycleConfig,
    backoff: Backoff | None = None,
    limit: int = 10,
    render: Renderer = messages.render,
) -> tuple[list[Entry], list[Attempt]]:
    """Send up to ``limit`` due e-mail entries of ``outbox``; the new outbox and what happened.

    Entries of other channels are left for their own senders. Never raises for a delivery failure:
    temporary ones are re-scheduled by ``backoff``, permanent ones end ``Failed``.
    """
    result = [dict(e) for e in outbox or ()]
    attempts: list[Attempt] = []
    for entry in [e for e in due(result, now) if e.get("channel") == "email"][:limit]:
        to = recipient_address(entry, spec, config)
        outcome = await send_entry(entry, to, smtp, render, now)
        result = record(result, entry["id"], outcome, now, backoff)
        state = next(str(e.get("state")) for e in result if e["id"] == entry["id"])
        attempts.append(Attempt(entry["id"], str(entry.get("template")), str(entry.get("recipient") or ""),
                                outcome, state))
    return result, attempts
