"""One probe of one target: HTTP(S), TCP connect or TLS handshake, timed by phase and classified (§33–34).

The probe is a small raw-asyncio client rather than a full HTTP client, for two reasons:

* every phase is measured where it really happens: ``dns`` (the resolver call), ``connect`` (the TCP
  handshake), ``tls`` (the TLS handshake, on its own even for ``https``), ``processing`` (request
  sent until the response headers are in: the time to first byte and the server's work) and
  ``transfer`` (the body, up to ``body_limit``). A phase that did not happen is absent (no ``dns``
  for an IP literal, no ``tls`` for plain HTTP); a failed probe carries the phases it got through,
  the failing one included;
* a probe costs about half the CPU of an ``aiohttp.ClientSession`` request on a fresh connection,
  which matters at 10k targets (the benchmark compares with Prometheus' blackbox_exporter).

Each probe opens a fresh connection (``Connection: close``) so connect and TLS are checked every
time, and follows no redirects: the status is compared as the server sent it.

The transport is injected: a resolver with aiohttp's :class:`~aiohttp.abc.AbstractResolver`
interface (``ThreadedResolver`` by default, ``AsyncResolver`` with aiodns, or a static map in
tests) and the :class:`ssl.SSLContext` the certificates are verified with. Tests point probes at
real local servers with a resolver that maps test names to 127.0.0.1; nothing is patched.

Failures are classified exactly as an Incident's ``failure.class``: ``dns`` (not resolved),
``connect`` (refused, unreachable, reset or closed before a response), ``tls`` (handshake failed,
certificate expired, not yet valid, untrusted or for another name), ``timeout`` (no complete
answer within ``timeout``; the message names the phase), ``http_status`` (not the expected
status), ``body`` (the expected text is missing, or the body is cut short) and ``unknown``.
Messages are short and fixed in form; they never quote the response body, which may carry personal
data. A certificate that verifies but expires within ``tls_warn_days`` is not a failure: the
result carries ``tls_days_left`` and a ``warning``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import ipaddress
import logging
import re
import socket
import ssl
import string
from collections.abc import Callable, Mapping
from typing import Final, Literal
from urllib.parse import quote, urlsplit

from aiohttp.abc import AbstractResolver
from aiohttp.resolver import ThreadedResolver
from cryptography import x509

from tksh.resources.common import Probe
from tksh.resources.incident import FailureClass

__all__ = ["PHASES", "Phase", "ProbeResult", "ProbeSpec", "ProbeType", "Prober"]

logger = logging.getLogger(__name__)

ProbeType = Literal["http", "tcp", "tls"]
Phase = Literal["dns", "connect", "tls", "processing", "transfer"]
PHASES: Final[tuple[Phase, ...]] = ("dns", "connect", "tls", "processing", "transfer")
USER_AGENT: Final = "tksh-probe/1"
MAX_HEADER_BYTES: Final = 64 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeSpec:
    """What to probe and how; the scheduler also reads ``interval``, ``timeout`` and ``failure_threshold``.

    ``url`` is the endpoint's base URL. ``http`` requests ``path`` (replacing the URL's path; ``None``
    keeps it) and expects ``expected_status``, then, if given, ``body_contains`` (a substring) and/or
    ``body_pattern`` (a regular expression, ``re.search``) in the first ``body_limit`` bytes. ``tcp``
    and ``tls`` use the URL's host and port (default 443 for ``https`` or ``tls``, else 80).
    ``server_name`` overrides the name used for SNI and certificate verification.
    """

    url: str
    type: ProbeType = "http"
    path: str | None = "/healthz"
    interval: float = float(Probe.model_fields["interval_seconds"].default)  # the CRD's defaults
    timeout: float = float(Probe.model_fields["timeout_seconds"].default)
    failure_threshold: int = Probe.model_fields["failure_threshold"].default
    expected_status: int = 200
    body_contains: str | None = None
    body_pattern: str | None = None
    body_limit: int = 64 * 1024
    tls_warn_days: float = 14.0
    server_name: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the URL must be http:// or https:// with a host")
        parts.port  # noqa: B018 -- raises ValueError on a bad port
        if self.timeout <= 0 or self.interval <= 0 or self.failure_threshold < 1 or self.body_limit < 0:
            raise ValueError("timeout and interval must be positive, failure_threshold at least 1")
        if self.body_pattern is not None:
            try:
                re.compile(self.body_pattern)  # refuse a bad pattern now, not at every probe
            except re.error as exc:
                raise ValueError(f"bad body_pattern: {exc}") from exc

    @classmethod
    def from_probe(
        cls,
        url: str,
        probe: Probe,
        *,
        body_contains: str | None = None,
        body_pattern: str | None = None,
        tls_warn_days: float = 14.0,
    ) -> ProbeSpec:
        """The spec of a resource's ``probe`` (an object's ``spec.probe``) against its endpoint URL."""
        return cls(
            url=url,
            type=probe.type,
            path=probe.path,
            interval=float(probe.interval_seconds),
            timeout=float(probe.timeout_seconds),
            failure_threshold=probe.failure_threshold,
            expected_status=probe.expected_status,
            body_contains=body_contains,
            body_pattern=body_pattern,
            tls_warn_days=tls_warn_days,
        )

    @property
    def host(self) -> str:
        """The host name or IP literal (no brackets) the probe connects to."""
        hostname = urlsplit(self.url).hostname
        assert hostname is not None  # checked in __post_init__
        return hostname

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        if parts.port is not None:
            return parts.port
        return 443 if parts.scheme == "https" or self.type == "tls" else 80

    @property
    def uses_tls(self) -> bool:
        return self.type == "tls" or (self.type == "http" and urlsplit(self.url).scheme == "https")

    @property
    def request_target(self) -> str:
        """The request line's target: ``path``, or the URL's own path and query."""
        if self.path is not None:
            return self.path
        parts = urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of one probe. ``failure`` is ``None`` exactly when ``ok``; ``duration`` and the
    ``phases`` are seconds; ``warning`` is set (with ``tls_expiring``) when a valid certificate
    expires within the spec's ``tls_warn_days``."""

    ok: bool
    failure: FailureClass | None = None
    message: str = ""
    duration: float = 0.0
    phases: Mapping[Phase, float] = dataclasses.field(default_factory=dict)
    http_status: int | None = None
    tls_days_left: float | None = None
    tls_expiring: bool = False
    warning: str | None = None


class _Failed(Exception):
    """Raised inside a probe with the failure's class and short message."""

    def __init__(self, failure: FailureClass, message: str) -> None:
        super().__init__(message)
        self.failure: FailureClass = failure
        self.message = message


class _Run:
    """Phase bookkeeping and the facts gathered by one probe."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.started = self.mark_at = loop.time()
        self.phase: Phase | None = None
        self.phases: dict[Phase, float] = {}
        self.http_status: int | None = None
        self.tls_days_left: float | None = None

    def enter(self, phase: Phase | None) -> None:
        """Close the current phase (recording its duration) and start ``phase``."""
        now = self.loop.time()
        if self.phase is not None:
            self.phases[self.phase] = now - self.mark_at
        self.phase, self.mark_at = phase, now

    def result(self, failure: FailureClass | None, message: str, warning: str | None = None) -> ProbeResult:
        self.enter(None)
        return ProbeResult(
            ok=failure is None,
            failure=failure,
            message=message[:256],
            duration=self.loop.time() - self.started,
            phases=self.phases,
            http_status=self.http_status,
            tls_days_left=self.tls_days_left,
            tls_expiring=warning is not None,
            warning=warning,
        )


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _authority(spec: ProbeSpec) -> str:
    """The ``Host`` header: the host (IDNA-encoded, IPv6 in brackets) and the URL's explicit port."""
    host = spec.host if spec.host.isascii() else spec.host.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    port = urlsplit(spec.url).port
    return host if port is None else f"{host}:{port}"


def _os_message(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    return (exc.strerror or type(exc).__name__).lower()


class Prober:
    """Runs probes; one instance serves any number of concurrent probes.

    ``resolver`` (default: aiohttp's ``ThreadedResolver``, i.e. the system's ``getaddrinfo``, no
    cache, so ``dns`` is measured each time), ``ssl_context`` (default: the system trust store) and
    ``clock`` (the wall clock for certificate expiry) are the injectable parts.
    """

    def __init__(
        self,
        *,
        resolver: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        family: socket.AddressFamily = socket.AF_UNSPEC,
        clock: Callable[[], datetime.datetime] = _utcnow,
    ) -> None:
        self._resolver = resolver if resolver is not None else ThreadedResolver()
        self._ssl = ssl_context if ssl_context is not None else ssl.create_default_context()
        self._family = family
        self._clock = clock

    async def close(self) -> None:
        """Release the resolver's resources."""
        await self._resolver.close()

    async def probe(self, spec: ProbeSpec) -> ProbeResult:
        """Probe once; never raises (but for cancellation): every failure is a classified result."""
        run = _Run(asyncio.get_running_loop())
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(spec.timeout):
                address = await self._resolve(spec, run)
                run.enter("connect")
                reader, writer = await asyncio.open_connection(address, spec.port)
                warning = await self._handshake(spec, writer, run) if spec.uses_tls else None
                if spec.type == "http":
                    await self._http(spec, reader, writer, run)
            return run.result(None, "ok", warning)
        except _Failed as exc:
            return run.result(exc.failure, exc.message)
        except TimeoutError:
            return run.result("timeout", f"no answer within {spec.timeout:g} s (during {run.phase or 'probe'})")
        except ssl.SSLCertVerificationError as exc:
            return run.result("tls", f"certificate rejected: {exc.verify_message or exc.reason or 'unverified'}")
        except ssl.SSLError as exc:
            return run.result("tls", f"handshake failed: {(exc.reason or type(exc).__name__).lower()}")
        except (OSError, asyncio.IncompleteReadError) as exc:
            message = _os_message(exc) if isinstance(exc, OSError) else "connection closed early"
            return run.result("connect", message if run.phase == "connect" else f"{message} (during {run.phase})")
        except Exception as exc:  # a probe must not take its scheduler down
            logger.exception("probe failed unexpectedly")
            return run.result("unknown", f"unexpected error: {type(exc).__name__}")
        finally:
            if writer is not None:
                writer.close()

    async def _resolve(self, spec: ProbeSpec, run: _Run) -> str:
        host = spec.host
        if _is_ip(host):
            return host
        run.enter("dns")
        try:
            addresses = await self._resolver.resolve(host, spec.port, family=self._family)
        except TimeoutError:
            raise
        except OSError as exc:
            raise _Failed("dns", f"name not resolved: {(exc.strerror or type(exc).__name__).lower()}") from exc
        if not addresses:
            raise _Failed("dns", "name not resolved: no addresses")
        return addresses[0]["host"]

    async def _handshake(self, spec: ProbeSpec, writer: asyncio.StreamWriter, run: _Run) -> str | None:
        """The TLS handshake on the open connection; the leaf certificate's days left; a warning if few."""
        run.enter("tls")
        await writer.start_tls(self._ssl, server_hostname=spec.server_name or spec.host)
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if isinstance(ssl_object, ssl.SSLObject) else None
        if not der:
            return None
        not_after = x509.load_der_x509_certificate(der).not_valid_after_utc
        days = (not_after - self._clock()).total_seconds() / 86400
        run.tls_days_left = days
        if days < spec.tls_warn_days:
            return f"certificate expires in {days:.1f} days"
        return None

    async def _http(
        self, spec: ProbeSpec, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, run: _Run
    ) -> None:
        """One ``GET``: status, then the body (up to the limit) against the expected text."""
        run.enter("processing")
        writer.write(
            f"GET {quote(spec.request_target, safe=string.punctuation)} HTTP/1.1\r\nHost: {_authority(spec)}\r\n"
            f"User-Agent: {USER_AGENT}\r\nAccept: */*\r\nConnection: close\r\n\r\n".encode("ascii")
        )
        status, headers = await _read_head(reader)
        run.http_status = status
        run.enter("transfer")
        body = b"" if status in (204, 304) else await _read_body(reader, headers, spec.body_limit)
        if status != spec.expected_status:
            raise _Failed("http_status", f"expected status {spec.expected_status}, got {status}")
        if spec.body_contains is None and spec.body_pattern is None:
            return
        text = body.decode(_charset(headers.get("content-type", "")), errors="replace")
        if spec.body_contains is not None and spec.body_contains not in text:
            raise _Failed("body", "the expected text is not in the body")
        if spec.body_pattern is not None and re.search(spec.body_pattern, text) is None:
            raise _Failed("body", "the body does not match the expected pattern")


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """The status and headers (lower-case names) of the final response, skipping 1xx interim ones."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise _Failed("connect", "connection closed before a response") from exc
            raise _Failed("unknown", "incomplete response headers") from exc
        except asyncio.LimitOverrunError as exc:
            raise _Failed("unknown", "response headers too large") from exc
        status_line, *lines = head.decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not (code.isdigit() and len(code) == 3):
            raise _Failed("unknown", "malformed HTTP response")
        if not 100 <= int(code) < 200 or int(code) == 101:
            break
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(code), headers


async def _read_body(reader: asyncio.StreamReader, headers: Mapping[str, str], limit: int) -> bytes:
    """Up to ``limit`` bytes of the body: chunked, by ``Content-Length``, or until the server closes."""
    body = bytearray()
    try:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while len(body) < limit:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    break
                wanted = min(size, limit - len(body))
                body += await reader.readexactly(wanted)
                if wanted == size:
                    await reader.readexactly(2)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            body += await reader.readexactly(min(length, limit))
        else:
            while len(body) < limit and (chunk := await reader.read(limit - len(body))):
                body += chunk
    except asyncio.IncompleteReadError as exc:
        raise _Failed("body", "the body was cut short") from exc
    except (ValueError, asyncio.LimitOverrunError) as exc:
        raise _Failed("unknown", "malformed response framing") from exc
    return bytes(body)


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
            try:
                "".encode(charset)
            except LookupError:
                break
            return charset
    return "utf-8"
