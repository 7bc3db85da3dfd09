"""Delivering an incident's due outbox entries over their channels: the I/O of the monitoring notices.

One entry, one attempt, one classified :class:`~tksh.notify.outbox.DeliveryResult`:

* ``email`` — rendered by :mod:`tksh.monitoring.messages`, sent over SMTP to the address resolved now
  (the owner's ``spec.owner.email``, or the Administrator's mailbox);
* ``webhook`` — :func:`tksh.monitoring.incidents.webhook_payload`, signed with the owner's secret read
  now (:mod:`tksh.notify.webhook`);
* ``alertmanager`` — the incident's alert, firing, or resolved for ``Recovered``;
* ``event`` — a Kubernetes Event on the target and on the incident (posted by the caller's function).

The resolvers are injected by the caller (the operator's glue reads its indexes and Secrets), so this
module knows nothing of Kubernetes. :func:`deliver_due` returns the new outbox and every attempt (for
metrics and Events), each with its record if delivered (for ``status.notifications``); the caller must
have read the outbox from the stored status and must store the result (see :mod:`tksh.notify.outbox`).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp

from tksh.monitoring import messages
from tksh.monitoring.fanout import is_fanout
from tksh.monitoring.incidents import delivered_record, incident_alert, transition_of, webhook_payload
from tksh.notify.alertmanager import post_alerts
from tksh.notify.email import SmtpSettings, send_entry
from tksh.notify.outbox import Backoff, DeliveryResult, Entry, due, record
from tksh.notify.webhook import send_webhook

__all__ = ["Attempt", "Channels", "WebhookTarget", "deliver", "deliver_due"]


@dataclasses.dataclass(frozen=True)
class WebhookTarget:
    """Where a webhook goes and the secrets it is signed with."""

    url: str
    secrets: Sequence[str | bytes]


@dataclasses.dataclass(frozen=True)
class Channels:
    """How to reach the recipients of one incident's notices."""

    smtp: SmtpSettings
    email_address: Callable[[Mapping[str, Any]], str | None]
    """The real address of an e-mail entry's recipient, or ``None`` (permanent failure: nobody to send to)."""
    webhook_target: Callable[[Mapping[str, Any]], Awaitable[WebhookTarget | DeliveryResult]]
    """The URL and secret of a webhook entry's recipient, or why it cannot be sent now."""
    post_event: Callable[[Mapping[str, Any]], None]
    """Posts the Events of an ``event`` entry."""
    alertmanager_url: str = ""
    generator_url: str = ""
    critical: bool = False
    """The alert's severity: ``critical`` for a critical central component, else ``warning``."""
    session: aiohttp.ClientSession | None = None
    request_timeout: float = 10.0
    stopped: Callable[[], bool] = lambda: False
    """Whether to stop delivering (the task is stopping: its replica pauses for a peer, or exits); checked before
    each entry, so the entries not attempted stay due for the next writer."""


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One delivery attempt, for metrics, Events and logs (the recipient is masked)."""

    id: str
    channel: str
    template: str
    recipient: str
    result: DeliveryResult
    state: str
    """``Delivered``, ``Pending`` (will be retried) or ``Failed`` after the attempt."""
    record: dict[str, Any] | None = None
    """Its ``status.notifications`` record, if it was delivered."""
    fanout: bool = False
    """A notice to an owner about a central failure (:mod:`tksh.monitoring.fanout`)."""


async def deliver(entry: Mapping[str, Any], channels: Channels, now: datetime.datetime) -> DeliveryResult:
    """Attempt one entry over its channel; never raises for a delivery failure."""
    channel = entry.get("channel")
    if transition_of(entry) is None:
        return DeliveryResult(False, permanent=True, error=f"unknown template {entry.get('template')!r}")
    if channel == "email":
        return await send_entry(entry, channels.email_address(entry), channels.smtp, messages.render, now)
    if channel == "webhook":
        target = await channels.webhook_target(entry)
        if isinstance(target, DeliveryResult):
            return target
        return await send_webhook(target.url, webhook_payload(entry), key=str(entry["id"]), secrets=target.secrets,
                                  session=channels.session, request_timeout=channels.request_timeout)
    if channel == "alertmanager":
        params = entry.get("params") or {}
        alert = incident_alert(params, resolved=transition_of(entry) == "Recovered", critical=channels.critical,
                               generator_url=channels.generator_url)
        return await post_alerts(channels.alertmanager_url, [alert], session=channels.session,
                                 request_timeout=channels.request_timeout)
    if channel == "event":
        channels.post_event(entry)
        return DeliveryResult(True)
    return DeliveryResult(False, permanent=True, error=f"unknown channel {channel!r}")


async def deliver_due(
    outbox: Sequence[Mapping[str, Any]] | None,
    channels: Channels,
    now: datetime.datetime,
    *,
    backoff: Backoff | None = None,
    limit: int = 50,
) -> tuple[list[Entry], list[Attempt]]:
    """Attempt up to ``limit`` due entries; the new outbox and the attempts (each with its delivered record)."""
    result = [dict(e) for e in outbox or ()]
    attempts: list[Attempt] = []
    for entry in due(result, now)[:limit]:
        if channels.stopped():
            break
        outcome = await deliver(entry, channels, now)
        result = record(result, entry["id"], outcome, now, backoff)
        state = next(str(e.get("state")) for e in result if e["id"] == entry["id"])
        attempts.append(Attempt(str(entry["id"]), str(entry.get("channel")), str(entry.get("template")),
                                str(entry.get("recipient") or ""), outcome, state,
                                delivered_record(entry, now) if state == "Delivered" else None, is_fanout(entry)))
    return result, attempts
