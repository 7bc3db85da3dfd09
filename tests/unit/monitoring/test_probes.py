"""HTTP and TCP probes against real local servers: each outcome and failure class, with its phases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.unit.monitoring.conftest import LOCAL, RawServerFactory, StaticResolver
from tksh.monitoring import Prober, ProbeSpec
from tksh.resources.common import Probe
from tksh.sandbox.targets import HTTPTarget


@pytest.fixture
async def target() -> AsyncIterator[HTTPTarget]:
    async with HTTPTarget("probed") as started:
        yield started


async def test_healthy_http_target_passes_with_phases(prober: Prober, target: HTTPTarget) -> None:
    result = await prober.probe(ProbeSpec(target.url))
    assert result.ok and result.failure is None
    assert result.http_status == 200
    assert set(result.phases) == {"connect", "processing", "transfer"}  # an IP literal: no dns, plain: no tls
    assert result.tls_days_left is None and not result.tls_expiring
    assert target.hits == 1


async def test_a_name_is_resolved_through_the_injected_resolver(
    prober: Prober, resolver: StaticResolver, target: HTTPTarget
) -> None:
    result = await prober.probe(ProbeSpec(f"http://probed.test:{target.port}"))
    assert result.ok
    assert list(result.phases) == ["dns", "connect", "processing", "transfer"]
    assert resolver.queries == ["probed.test"]


async def test_an_unexpected_status_is_http_status(prober: Prober, target: HTTPTarget) -> None:
    target.failing(503)
    result = await prober.probe(ProbeSpec(target.url))
    assert (result.ok, result.failure, result.http_status) == (False, "http_status", 503)
    assert result.message == "expected status 200, got 503"


async def test_the_expected_status_may_be_another_one(prober: Prober, target: HTTPTarget) -> None:
    target.failing(503)
    assert (await prober.probe(ProbeSpec(target.url, expected_status=503))).ok


@pytest.mark.parametrize(
    ("contains", "pattern", "ok"),
    [
        ("world", None, True),
        ("goodbye", None, False),
        (None, r"hel+o\s+w\w+", True),
        (None, r"^world", False),
        ("hello", r"world,", True),
        ("hello", r"^world", False),
    ],
)
async def test_the_body_is_matched_by_substring_and_regex(
    prober: Prober, target: HTTPTarget, contains: str | None, pattern: str | None, ok: bool
) -> None:
    target.body("hello world, secret 900101300123")
    result = await prober.probe(ProbeSpec(target.url, body_contains=contains, body_pattern=pattern))
    assert result.ok is ok
    if not ok:
        assert result.failure == "body"
        assert "hello" not in result.message and "9001" not in result.message  # the body is never quoted


async def test_the_status_is_checked_before_the_body(prober: Prober, target: HTTPTarget) -> None:
    target.body("maintenance", status=503)
    result = await prober.probe(ProbeSpec(target.url, body_contains="ok"))
    assert result.failure == "http_status"


@pytest.mark.looptime
async def test_a_slow_answer_is_a_timeout_in_processing(prober: Prober, target: HTTPTarget) -> None:
    target.slow(600)
    result = await prober.probe(ProbeSpec(target.url, timeout=5))
    assert (result.ok, result.failure) == (False, "timeout")
    assert result.message == "no answer within 5 s (during processing)"
    assert set(result.phases) == {"connect", "processing"}


async def test_a_closed_port_is_connect(prober: Prober, closed_port: int) -> None:
    result = await prober.probe(ProbeSpec(f"http://{LOCAL}:{closed_port}"))
    assert (result.ok, result.failure, result.message) == (False, "connect", "connection refused")
    assert set(result.phases) == {"connect"}


async def test_an_unknown_name_is_dns(prober: Prober) -> None:
    result = await prober.probe(ProbeSpec("http://nowhere.example:8080"))
    assert (result.ok, result.failure) == (False, "dns")
    assert result.message.startswith("name not resolved")
    assert set(result.phases) == {"dns"}


async def test_a_reserved_invalid_name_fails_as_dns_with_the_system_resolver() -> None:
    """RFC 6761 ``.invalid`` never resolves; the system resolver says so without the network."""
    prober = Prober()
    try:
        result = await prober.probe(ProbeSpec("http://tksh-probe.invalid/", timeout=5))
    finally:
        await prober.close()
    assert (result.ok, result.failure) == (False, "dns")


async def test_the_path_replaces_the_urls_path_and_the_host_header_is_sent(
    prober: Prober, raw_server: RawServerFactory
) -> None:
    server = await raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert (await prober.probe(ProbeSpec(f"http://app.test:{server.port}/base", path="/health?deep=1"))).ok
    assert (await prober.probe(ProbeSpec(f"http://app.test:{server.port}/base?x=1", path=None))).ok
    assert (await prober.probe(ProbeSpec(f"http://app.test:{server.port}", path="/здоровье"))).ok
    first, second, third = (request.decode().split("\r\n") for request in server.requests)
    assert first[0] == "GET /health?deep=1 HTTP/1.1"
    assert f"Host: app.test:{server.port}" in first
    assert "Connection: close" in first
    assert second[0] == "GET /base?x=1 HTTP/1.1"
    assert third[0] == "GET /%D0%B7%D0%B4%D0%BE%D1%80%D0%BE%D0%B2%D1%8C%D0%B5 HTTP/1.1"  # non-ASCII: percent-encoded


@pytest.mark.parametrize(
    ("response", "ok"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n7\r\n, probe\r\n0\r\n\r\n", True),
        (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello, probe (until the server closes)", True),
        (
            b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello, probe",
            True,
        ),
        (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\nhello, probe", True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", False),
    ],
    ids=["chunked", "until-close", "interim-1xx", "http10-charset", "no-match"],
)
async def test_bodies_of_every_framing_are_read(
    prober: Prober, raw_server: RawServerFactory, response: bytes, ok: bool
) -> None:
    server = await raw_server(response)
    result = await prober.probe(ProbeSpec(f"http://{LOCAL}:{server.port}", body_contains="hello, probe"))
    assert result.ok is ok, result
    assert result.http_status == 200


@pytest.mark.parametrize(
    ("response", "failure", "message"),
    [
        (b"", "connect", "connection closed before a response"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "unknown", "malformed HTTP response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ntoo short", "body", "the body was cut short"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "unknown", "malformed response framing"),
        (b"HTTP/1.1 200 OK\r\nContent-Len", "unknown", "incomplete response headers"),
    ],
    ids=["closed", "not-http", "truncated", "bad-chunk", "cut-headers"],
)
async def test_broken_responses_are_classified(
    prober: Prober, raw_server: RawServerFactory, response: bytes, failure: str, message: str
) -> None:
    server = await raw_server(response)
    result = await prober.probe(ProbeSpec(f"http://{LOCAL}:{server.port}"))
    assert (result.ok, result.failure, result.message) == (False, failure, message)


async def test_the_body_is_read_up_to_the_limit_only(prober: Prober, raw_server: RawServerFactory) -> None:
    server = await raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"a" * 10 + b"b" * 99_990)
    assert (await prober.probe(ProbeSpec(f"http://{LOCAL}:{server.port}", body_contains="a", body_limit=10))).ok
    assert not (await prober.probe(ProbeSpec(f"http://{LOCAL}:{server.port}", body_contains="b", body_limit=10))).ok


async def test_tcp_connects_or_is_refused(prober: Prober, target: HTTPTarget, closed_port: int) -> None:
    up = await prober.probe(ProbeSpec(f"http://probed.test:{target.port}", type="tcp"))
    assert up.ok and list(up.phases) == ["dns", "connect"] and up.http_status is None
    assert target.hits == 0  # a TCP probe sends nothing
    down = await prober.probe(ProbeSpec(f"http://{LOCAL}:{closed_port}", type="tcp"))
    assert (down.ok, down.failure) == (False, "connect")


def test_a_spec_comes_from_the_resource_probe() -> None:
    probe = Probe.model_validate(
        {"type": "tcp", "intervalSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 4, "expectedStatus": 204}
    )
    spec = ProbeSpec.from_probe("https://api.example.kz", probe, body_contains="ok")
    assert (spec.type, spec.interval, spec.timeout, spec.failure_threshold) == ("tcp", 10.0, 2.0, 4)
    assert (spec.expected_status, spec.path, spec.body_contains) == (204, "/healthz", "ok")
    assert (spec.host, spec.port, spec.uses_tls) == ("api.example.kz", 443, False)
    assert ProbeSpec("http://h.example", type="tls").port == 443
    assert ProbeSpec("https://h.example").uses_tls
    assert ProbeSpec("http://[::1]:81").host == "::1"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url": "ftp://host"},
        {"url": "http://"},
        {"url": "http://host:99999"},
        {"url": "http://host", "timeout": 0},
        {"url": "http://host", "body_pattern": "(unclosed"},
    ],
)
def test_a_bad_spec_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ProbeSpec(**kwargs)  # type: ignore[arg-type]
