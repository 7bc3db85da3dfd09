"""Alerts to Prometheus Alertmanager over its v2 API (``POST /api/v2/alerts``).

An open incident is one alert, identified by its ``labels`` (Alertmanager groups, silences and
de-duplicates by them, so they never change during the incident's life):

- **firing**: posted when the incident opens, with ``startsAt`` = the outage's start and no
  ``endsAt``. Alertmanager then considers the alert resolved after its ``resolve_timeout`` (5 minutes
  by default) unless it is posted again, so the operator re-posts it while the incident is open, every
  ``repost_interval`` (default 60 s, well within that timeout). Reminders and the breach re-post it
  with updated ``annotations`` (the SLA verdict);
- **resolved**: posted once more with ``endsAt`` = the recovery time.

Every post is idempotent for Alertmanager (same labels: same alert), which fits the outbox's
at-least-once delivery. Outcomes are classified like webhooks (:func:`tksh.notify.webhook.classify_status`):
2xx delivered, 400 and other 4xx permanent (a malformed alert), 5xx and network errors temporary.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import aiohttp

from tksh.conditions import rfc3339
from tksh.notify.outbox import DeliveryResult
from tksh.notify.webhook import post_json

__all__ = ["ALERTS_PATH", "Alert", "alerts_url", "post_alerts"]

ALERTS_PATH: Final = "/api/v2/alerts"


@dataclasses.dataclass(frozen=True)
class Alert:
    """One alert of the v2 API (``postableAlert``)."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    starts_at: datetime.datetime | None = None
    ends_at: datetime.datetime | None = None
    """``None`` while firing; the recovery time to resolve it."""
    generator_url: str | None = None

    def __post_init__(self) -> None:
        if not self.labels:
            raise ValueError("an alert needs at least one label")
        for name in self.labels:
            if not name or not (name[0].isalpha() or name[0] == "_") or not all(c.isalnum() or c == "_" for c in name):
                raise ValueError(f"alert label {name!r} must match [a-zA-Z_][a-zA-Z0-9_]*")

    @property
    def resolved(self) -> bool:
        return self.ends_at is not None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"labels": dict(self.labels), "annotations": dict(self.annotations)}
        if self.starts_at is not None:
            body["startsAt"] = rfc3339(self.starts_at)
        if self.ends_at is not None:
            body["endsAt"] = rfc3339(self.ends_at)
        if self.generator_url:
            body["generatorURL"] = self.generator_url
        return body


def alerts_url(base: str) -> str:
    """``<base>/api/v2/alerts`` for Alertmanager's base URL (with or without a trailing slash)."""
    return base.rstrip("/") + ALERTS_PATH


async def post_alerts(
    base_url: str,
    alerts: Sequence[Alert],
    *,
    session: aiohttp.ClientSession | None = None,
    request_timeout: float = 10.0,
) -> DeliveryResult:
    """Post ``alerts`` to the Alertmanager at ``base_url``; the classified outcome (never raises)."""
    if not base_url:
        return DeliveryResult(False, permanent=True, error="no Alertmanager URL")
    body = json.dumps([alert.to_json() for alert in alerts], ensure_ascii=False).encode("utf-8")
    return await post_json(alerts_url(base_url), body, {}, session=session, request_timeout=request_timeout)
