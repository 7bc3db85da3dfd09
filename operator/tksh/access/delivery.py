"""Delivering an ``AccessGrant``'s pending e-mails: the one piece of I/O of the grant lifecycle.

``status.outbox`` entries were written by :func:`tksh.access.lifecycle.reconcile`; this sends the due ones
to the organisation's address as the spec gives it *now* (``spec.onBehalfOf.email``), rendered by
:mod:`tksh.access.messages`, and returns the outbox with every attempt recorded (the at-least-once contract
of :mod:`tksh.notify.outbox`: the caller read the outbox from the stored status and writes the result back).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from tksh.access import messages
from tksh.notify.email import SmtpSettings, send_entry
from tksh.notify.outbox import Backoff, Entry, due, record
from tksh.registration.delivery import Attempt

__all__ = ["deliver_due", "organisation_address"]


def organisation_address(spec: Mapping[str, Any]) -> str | None:
    """``spec.onBehalfOf.email`` as it is now; ``None`` without one (a permanent failure for the sender)."""
    behalf = spec.get("onBehalfOf")
    email = behalf.get("email") if isinstance(behalf, Mapping) else None
    return email.strip() if isinstance(email, str) and email.strip() else None


async def deliver_due(
    outbox: Sequence[Mapping[str, Any]] | None,
    spec: Mapping[str, Any],
    now: datetime.datetime,
    *,
    smtp: SmtpSettings,
    backoff: Backoff | None = None,
    limit: int = 10,
) -> tuple[list[Entry], list[Attempt]]:
    """Send up to ``limit`` due e-mail entries; the new outbox and what happened (never raises for a failure)."""
    result = [dict(e) for e in outbox or ()]
    attempts: list[Attempt] = []
    for entry in [e for e in due(result, now) if e.get("channel") == "email"][:limit]:
        outcome = await send_entry(entry, organisation_address(spec), smtp, messages.render, now)
        result = record(result, entry["id"], outcome, now, backoff)
        state = next(str(e.get("state")) for e in result if e["id"] == entry["id"])
        attempts.append(Attempt(entry["id"], str(entry.get("template")), str(entry.get("recipient") or ""),
                                outcome, state))
    return result, attempts
