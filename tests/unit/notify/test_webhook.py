"""Signed webhooks against a real local aiohttp receiver: signature, verification, idempotency key, outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import socket
import time
from collections.abc import AsyncIterator

import pytest

from tests.integration.monitoring_helpers import HTTPReceiver
from tksh.notify.webhook import (
    IDEMPOTENCY_KEY_HEADER,
    SIGNATURE_HEADER,
    SignatureError,
    classify_status,
    encode,
    send_webhook,
    sign,
    signature_header,
    verify,
)

SECRET = "whsec-0123456789abcdef"
BODY = b'{"incident":"heat-billing-1","transition":"Opened"}'
T = 1_783_846_800


@pytest.fixture
async def hook() -> AsyncIterator[HTTPReceiver]:
    async with HTTPReceiver() as receiver:
        yield receiver


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, SECRET, T) == expected
    assert signature_header(BODY, [SECRET], T) == f"t={T},v1={expected}"


def test_verify_accepts_a_fresh_signature_and_returns_its_timestamp() -> None:
    header = signature_header(BODY, [SECRET], T)
    assert verify(BODY, header, SECRET, now=T + 10) == T
    assert verify(BODY, header, SECRET.encode(), now=T - 10) == T  # a clock slightly behind the sender's


@pytest.mark.parametrize(
    ("body", "header", "secret", "now", "message"),
    [
        (BODY + b" ", None, SECRET, T, "header is missing"),
        (BODY, "", SECRET, T, "header is missing"),
        (BODY, "garbage", SECRET, T, "is not a name=value pair"),
        (BODY, "v1=abc", SECRET, T, "no t= timestamp"),
        (BODY, f"t={T}", SECRET, T, "no v1= signature"),
        (BODY, "t=yesterday,v1=abc", SECRET, T, "must be Unix seconds"),
        (BODY.replace(b"Opened", b"Closed"), None, SECRET, T, "no signature matches"),  # tampered body
        (BODY, None, "another-secret", T, "no signature matches"),
        (BODY, None, SECRET, T + 301, "stale or replayed"),
        (BODY, None, SECRET, T - 301, "stale or replayed"),
    ],
)
def test_verify_refuses_with_a_message_that_says_why(
    body: bytes, header: str | None, secret: str, now: float, message: str
) -> None:
    if header is None and message not in ("header is missing",):
        header = signature_header(BODY, [SECRET], T)
    with pytest.raises(SignatureError, match=message):
        verify(body, header, secret, now=now)


def test_rotation_two_signatures_either_secret_verifies() -> None:
    header = signature_header(BODY, ["old-secret", "new-secret"], T)
    assert header.count("v1=") == 2
    assert verify(BODY, header, "old-secret", now=T) == T
    assert verify(BODY, header, "new-secret", now=T) == T
    assert verify(BODY, signature_header(BODY, ["new-secret"], T), ["old-secret", "new-secret"], now=T) == T
    with pytest.raises(SignatureError):
        verify(BODY, header, ["third"], now=T)


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret is empty"):
        sign(BODY, "", T)


async def test_a_webhook_arrives_signed_with_its_idempotency_key(hook: HTTPReceiver) -> None:
    payload = {"type": "incident.opened", "incident": "heat-billing-1", "title": "Жылу Желісі"}
    result = await send_webhook(f"{hook.url}/hooks/tksh", payload, key="incident-opened-abc", secrets=[SECRET])
    assert result.delivered and result.code == 200
    (received,) = hook.requests
    assert received.path == "/hooks/tksh"
    assert received.headers[IDEMPOTENCY_KEY_HEADER] == "incident-opened-abc"
    assert received.headers["Content-Type"] == "application/json"
    assert received.body == encode(payload)
    assert received.json() == payload  # UTF-8 intact
    # The receiver's check, with its own clock.
    assert abs(verify(received.body, received.headers[SIGNATURE_HEADER], SECRET) - time.time()) < 300


async def test_a_retry_carries_the_same_idempotency_key_and_a_new_signature(hook: HTTPReceiver) -> None:
    hook.respond(503)
    first = await send_webhook(hook.url, {"n": 1}, key="k-1", secrets=[SECRET], now=T)
    second = await send_webhook(hook.url, {"n": 1}, key="k-1", secrets=[SECRET], now=T + 30)
    assert (first.delivered, first.temporary, first.code) == (False, True, 503)
    assert second.delivered
    keys = [r.headers[IDEMPOTENCY_KEY_HEADER] for r in hook.requests]
    signatures = [r.headers[SIGNATURE_HEADER] for r in hook.requests]
    assert keys == ["k-1", "k-1"] and signatures[0] != signatures[1]


@pytest.mark.parametrize(
    ("status", "delivered", "permanent"),
    [(200, True, False), (202, True, False), (204, True, False), (400, False, True), (401, False, True),
     (404, False, True), (410, False, True), (408, False, False), (429, False, False), (500, False, False),
     (503, False, False), (301, False, True), (302, False, True)],
)
async def test_answers_are_classified(hook: HTTPReceiver, status: int, delivered: bool, permanent: bool) -> None:
    hook.respond(status)
    result = await send_webhook(hook.url, {"n": 1}, key="k", secrets=[SECRET])
    assert (result.delivered, result.permanent, result.code) == (delivered, permanent, status)
    assert len(hook.requests) == 1  # a redirect is not followed
    assert classify_status(status) == result


async def test_network_failures_are_temporary_and_never_quote_the_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await send_webhook(f"http://127.0.0.1:{port}/h?token=s3cr3t", {"n": 1}, key="k", secrets=[SECRET])
    assert result.temporary and "s3cr3t" not in result.error and "127.0.0.1" in result.error


async def test_a_receiver_that_never_answers_times_out_as_temporary() -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await send_webhook(f"http://127.0.0.1:{port}/", {"n": 1}, key="k", secrets=[SECRET],
                                    request_timeout=0.3)
    finally:
        server.close()
    assert result.temporary and "within 0.3 s" in result.error


async def test_no_url_or_no_secret_is_permanent() -> None:
    assert (await send_webhook("", {}, key="k", secrets=[SECRET])).permanent
    no_secret = await send_webhook("http://127.0.0.1:9/", {}, key="k", secrets=[])
    assert no_secret.permanent and "secret" in no_secret.error
