"""TLS and HTTPS probes against local TLS servers with certificates made by a test CA.

Certificates are verified by the prober as in production (the test CA is its only trust anchor):
expired, not yet valid, untrusted and hostname-mismatched certificates are ``tls`` failures; a
valid certificate close to its expiry passes with a warning.
"""

from __future__ import annotations

import pytest

from tests.unit.monitoring.conftest import DAY, LOCAL, NOW, StaticResolver, TestCA, TLSServer
from tksh.monitoring import Prober, ProbeSpec
from tksh.sandbox.targets import HTTPTarget


async def test_a_valid_certificate_passes_with_its_days_left(prober: Prober, ca: TestCA, tls_server: TLSServer) -> None:
    port = await tls_server(ca.issue("good.test", not_after=NOW + 90 * DAY))
    result = await prober.probe(ProbeSpec(f"https://good.test:{port}", type="tls"))
    assert result.ok, result
    assert list(result.phases) == ["dns", "connect", "tls"]
    assert result.tls_days_left is not None and 89 < result.tls_days_left <= 90
    assert not result.tls_expiring and result.warning is None


async def test_a_certificate_expiring_soon_is_a_warning_not_a_failure(
    ca: TestCA, resolver: StaticResolver, tls_server: TLSServer
) -> None:
    port = await tls_server(ca.issue("soon.test", not_after=NOW + 3 * DAY))
    prober = Prober(resolver=resolver, ssl_context=ca.client_context(), clock=lambda: NOW)  # expiry counted from NOW
    result = await prober.probe(ProbeSpec(f"https://soon.test:{port}", type="tls", tls_warn_days=14))
    assert result.ok and result.failure is None
    assert (result.tls_expiring, result.tls_days_left, result.warning) == (True, 3.0, "certificate expires in 3.0 days")
    calm = await prober.probe(ProbeSpec(f"https://soon.test:{port}", type="tls", tls_warn_days=3))
    assert calm.ok and not calm.tls_expiring and calm.warning is None and calm.tls_days_left == 3.0


@pytest.mark.parametrize(
    ("names", "dates", "self_signed", "probed", "reason"),
    [
        (("old.test",), (NOW - 30 * DAY, NOW - DAY), False, "old.test", "certificate has expired"),
        (("new.test",), (NOW + DAY, NOW + 30 * DAY), False, "new.test", "certificate is not yet valid"),
        (("good.test",), (NOW - DAY, NOW + 30 * DAY), False, "other.test", "hostname mismatch"),
        (("alone.test",), (NOW - DAY, NOW + 30 * DAY), True, "alone.test", "self-signed certificate"),
    ],
    ids=["expired", "not-yet-valid", "hostname-mismatch", "untrusted"],
)
async def test_a_bad_certificate_is_a_tls_failure(
    prober: Prober,
    ca: TestCA,
    tls_server: TLSServer,
    names: tuple[str, ...],
    dates: tuple[object, object],
    self_signed: bool,
    probed: str,
    reason: str,
) -> None:
    not_before, not_after = dates
    port = await tls_server(ca.issue(*names, not_before=not_before, not_after=not_after, self_signed=self_signed))  # type: ignore[arg-type]
    result = await prober.probe(ProbeSpec(f"https://{probed}:{port}", type="tls"))
    assert (result.ok, result.failure) == (False, "tls")
    assert result.message.startswith("certificate rejected: ")
    assert reason in result.message.lower()
    assert set(result.phases) == {"dns", "connect", "tls"}


async def test_the_server_name_overrides_the_host_for_verification(
    prober: Prober, ca: TestCA, tls_server: TLSServer
) -> None:
    port = await tls_server(ca.issue("api.test"))
    assert not (await prober.probe(ProbeSpec(f"https://{LOCAL}:{port}", type="tls"))).ok
    assert (await prober.probe(ProbeSpec(f"https://{LOCAL}:{port}", type="tls", server_name="api.test"))).ok


async def test_a_certificate_for_the_ip_address_verifies(prober: Prober, ca: TestCA, tls_server: TLSServer) -> None:
    port = await tls_server(ca.issue(LOCAL))
    result = await prober.probe(ProbeSpec(f"https://{LOCAL}:{port}", type="tls"))
    assert result.ok and list(result.phases) == ["connect", "tls"]


async def test_a_server_that_does_not_speak_tls_fails_the_handshake(prober: Prober) -> None:
    async with HTTPTarget("plain") as target:
        result = await prober.probe(ProbeSpec(f"http://{LOCAL}:{target.port}", type="tls"))
    assert (result.ok, result.failure) == (False, "tls")
    assert result.message.startswith("handshake failed: ")


async def test_https_measures_every_phase_and_reports_the_certificate(
    prober: Prober, ca: TestCA, https_server: TLSServer
) -> None:
    port = await https_server(ca.issue("web.test", not_after=NOW + 5 * DAY))
    result = await prober.probe(ProbeSpec(f"https://web.test:{port}", body_contains="ok"))
    assert result.ok, result
    assert result.http_status == 200
    assert list(result.phases) == ["dns", "connect", "tls", "processing", "transfer"]
    assert result.tls_expiring and result.tls_days_left is not None and 4 < result.tls_days_left <= 5


async def test_https_with_an_expired_certificate_is_tls(prober: Prober, ca: TestCA, https_server: TLSServer) -> None:
    port = await https_server(ca.issue("web.test", not_before=NOW - 10 * DAY, not_after=NOW - DAY))
    result = await prober.probe(ProbeSpec(f"https://web.test:{port}"))
    assert (result.ok, result.failure, result.http_status) == (False, "tls", None)
