"""Real local servers for the probe tests: a static resolver, a test CA and TLS servers, raw HTTP servers.

Everything listens on 127.0.0.1. Names ending in ``.test`` resolve to 127.0.0.1 through
:class:`StaticResolver`, injected into the prober (nothing is patched); other names are not found.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tksh.monitoring import Prober

LOCAL = "127.0.0.1"
NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
DAY = datetime.timedelta(days=1)


class StaticResolver(AbstractResolver):
    """``*.test`` (and the names given) resolve to 127.0.0.1; anything else is not found, at once."""

    def __init__(self, names: dict[str, str] | None = None) -> None:
        self.names = names or {}
        self.queries: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.queries.append(host)
        address = self.names.get(host, LOCAL if host.endswith(".test") else None)
        if address is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [{"hostname": host, "host": address, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        pass


@dataclasses.dataclass(frozen=True)
class Issued:
    """A certificate and its key, PEM."""

    cert: bytes
    key: bytes


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class TestCA:
    """A certificate authority made for the test run, issuing server certificates for chosen names and dates."""

    __test__ = False  # not a test class

    def __init__(self) -> None:
        self.key = _key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tksh test CA")])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - 10 * DAY)
            .not_valid_after(NOW + 3650 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        *names: str,
        not_before: datetime.datetime = NOW - DAY,
        not_after: datetime.datetime = NOW + 90 * DAY,
        self_signed: bool = False,
    ) -> Issued:
        key = _key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        alt: list[x509.GeneralName] = []
        for name in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt.append(x509.DNSName(name))
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject if self_signed else self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        if not self_signed:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        cert = builder.sign(key if self_signed else self.key, hashes.SHA256())
        return Issued(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))

    def client_context(self) -> ssl.SSLContext:
        """What the prober verifies with: trusts this CA only."""
        return ssl.create_default_context(cadata=self.pem.decode())


@pytest.fixture(scope="session")
def ca() -> TestCA:
    return TestCA()


@pytest.fixture
def resolver() -> StaticResolver:
    return StaticResolver()


@pytest.fixture
async def prober(ca: TestCA, resolver: StaticResolver) -> AsyncIterator[Prober]:
    prober = Prober(resolver=resolver, ssl_context=ca.client_context())
    yield prober
    await prober.close()


ServerContext = Callable[[Issued], ssl.SSLContext]


@pytest.fixture
def server_context(tmp_path: Path) -> ServerContext:
    """An SSL server context presenting ``issued`` (written to files: ``load_cert_chain`` reads files)."""
    counter = iter(range(1_000_000))

    def make(issued: Issued) -> ssl.SSLContext:
        n = next(counter)
        cert, key = tmp_path / f"cert{n}.pem", tmp_path / f"key{n}.pem"
        cert.write_bytes(issued.cert)
        key.write_bytes(issued.key)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        return context

    return make


TLSServer = Callable[[Issued], Awaitable[int]]


@pytest.fixture
async def tls_server(server_context: ServerContext) -> AsyncIterator[TLSServer]:
    """Starts a TLS server presenting a certificate that closes each connection after the handshake."""
    servers: list[asyncio.Server] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def start(issued: Issued) -> int:
        server = await asyncio.start_server(handle, LOCAL, 0, ssl=server_context(issued))
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def https_server(server_context: ServerContext) -> AsyncIterator[TLSServer]:
    """Starts an aiohttp HTTPS server presenting a certificate and answering 200 ``ok`` everywhere."""
    runners: list[web.AppRunner] = []

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def start(issued: Issued) -> int:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", ok)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, LOCAL, 0, ssl_context=server_context(issued)).start()
        return int(runner.addresses[0][1])

    yield start
    for runner in runners:
        await runner.cleanup()


@dataclasses.dataclass
class RawServer:
    """A TCP server that reads a request head and answers with fixed bytes (then closes)."""

    response: bytes
    requests: list[bytes] = dataclasses.field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(self.response)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


RawServerFactory = Callable[[bytes], Awaitable[RawServer]]


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServerFactory]:
    servers: list[asyncio.Server] = []

    async def start(response: bytes) -> RawServer:
        raw = RawServer(response)
        server = await asyncio.start_server(raw.handle, LOCAL, 0)
        servers.append(server)
        raw.port = int(server.sockets[0].getsockname()[1])
        return raw

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCAL, 0))
        return int(sock.getsockname()[1])
