"""Signed webhooks: one outbox notification as a JSON ``POST``, signed so the receiver can trust it.

The signature (in the manner of Stripe's) is an HMAC-SHA256, keyed with the secret shared with the
receiver, over ``<unix timestamp>.`` followed by the exact body bytes; it travels in one header::

    X-TKSH-Signature: t=1783846800,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd
    Idempotency-Key: incident-opened-3f1c...   (the outbox entry's id: the same for every retry)

While a secret is rotated the header carries one ``v1=`` per secret; a receiver accepts the request
when any of them matches one of its secrets. :func:`verify` is what a receiver runs: it parses the
header, refuses a timestamp outside the tolerance window (default 5 minutes: a captured request
cannot be replayed later) and compares in constant time (:func:`hmac.compare_digest`). Receivers
de-duplicate by ``Idempotency-Key``: delivery is at least once (see :mod:`tksh.notify.outbox`).

Outcomes, classified for the outbox's retry policy (:class:`~tksh.notify.outbox.DeliveryResult`):

- a **2xx** answer delivers the notification;
- **408, 425, 429** and **5xx**, a refused or dropped connection, a timeout: *temporary*, retried with
  the outbox's backoff;
- any other **4xx**, and **3xx** (redirects are not followed: the signed request must reach the URL
  the owner registered): *permanent*; the entry ends ``Failed`` with the status in ``lastError``.

Bodies never carry personal data (object and incident names, times, the failure class); the
error texts stored in the outbox name the status, never the URL's query (it may hold a token).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp

from tksh.logs import mask_text
from tksh.notify.outbox import DeliveryResult

__all__ = [
    "IDEMPOTENCY_KEY_HEADER",
    "SIGNATURE_HEADER",
    "TOLERANCE",
    "SignatureError",
    "classify_status",
    "encode",
    "post_json",
    "send_webhook",
    "sign",
    "signature_header",
    "verify",
]

SIGNATURE_HEADER: Final = "X-TKSH-Signature"
IDEMPOTENCY_KEY_HEADER: Final = "Idempotency-Key"
TOLERANCE: Final = 300.0
"""Seconds a signature's timestamp may differ from the receiver's clock."""
USER_AGENT: Final = "tksh-notify/1"
RETRYABLE_4XX: Final = frozenset({408, 425, 429})


class SignatureError(ValueError):
    """The request's signature is missing, malformed, stale or does not match; the message says which."""


def _key(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def sign(body: bytes, secret: str | bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    return hmac.new(_key(secret), str(int(timestamp)).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def signature_header(body: bytes, secrets: Iterable[str | bytes], timestamp: int) -> str:
    """``t=<timestamp>,v1=<hex>[,v1=<hex>...]``: one signature per secret (several while rotating)."""
    signatures = [f"v1={sign(body, secret, timestamp)}" for secret in secrets]
    if not signatures:
        raise ValueError("at least one secret is needed to sign")
    return ",".join([f"t={int(timestamp)}", *signatures])


def verify(
    body: bytes,
    header: str | None,
    secrets: str | bytes | Iterable[str | bytes],
    *,
    tolerance: float = TOLERANCE,
    now: float | None = None,
) -> int:
    """Check a received request; return its timestamp, or raise :class:`SignatureError`.

    ``body`` is the raw request body (verify before parsing it), ``header`` the value of
    ``X-TKSH-Signature``, ``secrets`` the receiver's secret (or several, while rotating), ``now`` the
    receiver's clock in Unix seconds (default: the system clock).
    """
    if not header:
        raise SignatureError(f"the {SIGNATURE_HEADER} header is missing")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError(f"{SIGNATURE_HEADER}: {part.strip()!r} is not a name=value pair")
        if name == "t":
            if not value.isdigit():
                raise SignatureError(f"{SIGNATURE_HEADER}: t={value!r} must be Unix seconds")
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None:
        raise SignatureError(f"{SIGNATURE_HEADER}: no t= timestamp")
    if not candidates:
        raise SignatureError(f"{SIGNATURE_HEADER}: no v1= signature")
    clock = time.time() if now is None else now
    if abs(clock - timestamp) > tolerance:
        raise SignatureError(
            f"{SIGNATURE_HEADER}: timestamp {timestamp} is {abs(clock - timestamp):.0f} s away from now "
            f"(tolerance {tolerance:g} s): stale or replayed"
        )
    keys = [secrets] if isinstance(secrets, str | bytes) else list(secrets)
    expected = [sign(body, key, timestamp) for key in keys]
    matched = False
    for candidate in candidates:  # compare every pair, so timing does not tell which one matched
        for signature in expected:
            matched |= hmac.compare_digest(candidate.encode("ascii", "replace"), signature.encode("ascii"))
    if not matched:
        raise SignatureError(f"{SIGNATURE_HEADER}: no signature matches the body and the secret")
    return timestamp


def encode(payload: Mapping[str, Any]) -> bytes:
    """The body as sent: compact UTF-8 JSON with sorted keys (the bytes the signature covers)."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def classify_status(status: int) -> DeliveryResult:
    """A receiver's HTTP status as a delivery outcome (see the module description)."""
    if 200 <= status < 300:
        return DeliveryResult(True, code=status)
    if status >= 500 or status in RETRYABLE_4XX:
        return DeliveryResult(False, permanent=False, error=f"HTTP {status} from the receiver", code=status)
    what = "a redirect (not followed)" if 300 <= status < 400 else "refused"
    return DeliveryResult(False, permanent=True, error=f"HTTP {status} from the receiver: {what}", code=status)


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{':' + str(parts.port) if parts.port else ''}"


async def post_json(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    session: aiohttp.ClientSession | None = None,
    request_timeout: float = 10.0,
) -> DeliveryResult:
    """``POST`` ``body`` (JSON) to ``url``; the classified outcome. Never raises for delivery failures.

    ``session`` is injectable (tests, connection reuse); without one a session is opened for the call.
    """
    sent = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    try:
        if session is None:
            async with aiohttp.ClientSession() as own:
                return await _post(own, url, body, sent, request_timeout)
        return await _post(session, url, body, sent, request_timeout)
    except TimeoutError:
        return DeliveryResult(False, error=f"no answer from {_where(url)} within {request_timeout:g} s")
    except aiohttp.InvalidURL:
        return DeliveryResult(False, permanent=True, error="the URL is not valid")
    except (aiohttp.ClientError, OSError) as error:
        return DeliveryResult(False, error=mask_text(f"{_where(url)}: {type(error).__name__}"))


async def _post(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: Mapping[str, str], request_timeout: float
) -> DeliveryResult:
    limit = aiohttp.ClientTimeout(total=request_timeout)
    async with session.post(url, data=body, headers=dict(headers), allow_redirects=False, timeout=limit) as response:
        await response.read()  # let the connection be reused
        return classify_status(response.status)


async def send_webhook(
    url: str,
    payload: Mapping[str, Any],
    *,
    key: str,
    secrets: Iterable[str | bytes],
    session: aiohttp.ClientSession | None = None,
    request_timeout: float = 10.0,
    now: float | None = None,
) -> DeliveryResult:
    """Sign and ``POST`` one notification; ``key`` is its idempotency key (the outbox entry's id)."""
    if not url:
        return DeliveryResult(False, permanent=True, error="no webhook URL")
    body = encode(payload)
    try:
        signature = signature_header(body, secrets, int(time.time() if now is None else now))
    except ValueError as error:
        return DeliveryResult(False, permanent=True, error=str(error))
    return await post_json(url, body, {SIGNATURE_HEADER: signature, IDEMPOTENCY_KEY_HEADER: key},
                           session=session, request_timeout=request_timeout)
