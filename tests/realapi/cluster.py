"""A real kube-apiserver + etcd on loopback, for tests and benchmarks (no pytest in here).

Typical use::

    with RealCluster() as cluster:          # builds the binaries once (hack/realapi/build.sh), then starts
        cluster.install_crds(["charts/tksh/crds/foo.yaml"])
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
        status, body = cluster.request("GET", "/api/v1/namespaces")

The API server runs with ``--authorization-mode=Node,RBAC``: the admin kubeconfig (``cluster.kubeconfig``)
authenticates with a client certificate in ``system:masters``; ``service_account_token()`` and
``kubeconfig_for_token()`` give a ServiceAccount's identity, for proving least-privilege roles.

There is no kube-controller-manager: nothing runs pods, namespaces never finish deleting, and ServiceAccount
admission is off (so pods can be created without the ``default`` ServiceAccount that controller would make).
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "hack" / "realapi" / "build.sh"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
FIELD_MANAGER = "tksh-realapi"
PORT_ATTEMPTS = 3


class RealClusterError(RuntimeError):
    """The real tier could not be built or started; the message carries the evidence (log tails)."""


class BinariesUnavailable(RealClusterError):
    """The binaries are not cached and cannot be built here (no Go toolchain)."""


@dataclass(frozen=True)
class Binaries:
    kube_apiserver: Path
    etcd: Path


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: Any  # the decoded JSON, or the raw text when the body is not JSON
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. "Warning" (names as the server sent them)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def pinned_versions() -> tuple[str, str]:
    """The (kubernetes, etcd) versions pinned in hack/realapi/go.mod, e.g. ("v1.37.2", "v3.7.0")."""
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-versions"], check=True, capture_output=True, text=True
    ).stdout.split()
    return out[0], out[1]


def cache_dir() -> Path:
    root = os.environ.get("TKSH_CACHE_DIR") or str(Path.home() / ".cache" / "tksh")
    k8s, etcd = pinned_versions()
    return Path(root) / "realapi" / f"{k8s}-{etcd}"


def cached_binaries() -> Binaries | None:
    """The binaries if the cache already holds both, without building anything."""
    bin_dir = cache_dir() / "bin"
    bins = Binaries(kube_apiserver=bin_dir / "kube-apiserver", etcd=bin_dir / "etcd")
    if all(os.access(p, os.X_OK) for p in (bins.kube_apiserver, bins.etcd)):
        return bins
    return None


def go_available() -> bool:
    return shutil.which("go") is not None


def ensure_binaries(*, log: Path | None = None) -> Binaries:
    """Find the cached binaries or build them with hack/realapi/build.sh (the first build takes minutes)."""
    cached = cached_binaries()
    if cached is not None:
        return cached
    if not go_available():
        k8s, etcd = pinned_versions()
        raise BinariesUnavailable(
            f"kube-apiserver {k8s} and etcd {etcd} are not in {cache_dir()} and Go is not installed to build them "
            f"(install Go and run {BUILD_SCRIPT.relative_to(REPO_ROOT)})"
        )
    stderr_target = log.open("ab") if log is not None else None
    try:
        proc = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, stderr=stderr_target, check=False)
    finally:
        if stderr_target is not None:
            stderr_target.close()
    if proc.returncode != 0:
        tail = _tail(log) if log is not None else "(see stderr)"
        raise RealClusterError(f"{BUILD_SCRIPT} failed with exit code {proc.returncode}:\n{tail}")
    lines = proc.stdout.decode().split()
    return Binaries(kube_apiserver=Path(lines[0]), etcd=Path(lines[1]))


# --- PKI ------------------------------------------------------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())  # fast to make, accepted everywhere (ES256 for tokens)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _make_ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    subject: x509.Name,
    *,
    server: bool,
    sans: Iterable[x509.GeneralName] = (),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    sans = list(sans)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files that the cluster uses (all inside the cluster's work folder)."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    front_proxy_ca_cert: Path
    front_proxy_client_cert: Path
    front_proxy_client_key: Path
    sa_key: Path  # signs ServiceAccount tokens
    sa_pub: Path  # verifies them


def make_pki(folder: Path) -> Pki:
    """A CA, a serving cert for 127.0.0.1/localhost, an admin client cert (O=system:masters), a front-proxy CA and
    client cert, and the ServiceAccount token signing keypair."""
    folder.mkdir(parents=True, exist_ok=True)

    def write(name: str, data: bytes) -> Path:
        path = folder / name
        path.write_bytes(data)
        path.chmod(0o600)
        return path

    ca = _make_ca("tksh-realapi-ca")
    serving = _make_leaf(
        ca,
        _name("kube-apiserver"),
        server=True,
        sans=[
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("10.0.0.1")),  # the `kubernetes` Service's ClusterIP
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes"),
            x509.DNSName("kubernetes.default"),
            x509.DNSName("kubernetes.default.svc"),
        ],
    )
    admin = _make_leaf(ca, _name("tksh-realapi-admin", "system:masters"), server=False)
    fp_ca = _make_ca("tksh-realapi-front-proxy-ca")
    fp_client = _make_leaf(fp_ca, _name("front-proxy-client"), server=False)
    sa_key = _key()
    return Pki(
        ca_cert=write("ca.crt", _cert_pem(ca[0])),
        ca_key=write("ca.key", _key_pem(ca[1])),
        serving_cert=write("apiserver.crt", _cert_pem(serving[0]) + _cert_pem(ca[0])),
        serving_key=write("apiserver.key", _key_pem(serving[1])),
        admin_cert=write("admin.crt", _cert_pem(admin[0])),
        admin_key=write("admin.key", _key_pem(admin[1])),
        front_proxy_ca_cert=write("front-proxy-ca.crt", _cert_pem(fp_ca[0])),
        front_proxy_client_cert=write("front-proxy-client.crt", _cert_pem(fp_client[0])),
        front_proxy_client_key=write("front-proxy-client.key", _key_pem(fp_client[1])),
        sa_key=write("sa.key", _key_pem(sa_key)),
        sa_pub=write(
            "sa.pub",
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        ),
    )


# --- helpers --------------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _stop_process(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass


def _finalize(procs: list[subprocess.Popen[bytes] | None], workdir: Path | None, keep: bool) -> None:
    """Stops the processes (API server first, then etcd) and removes the work folder: also run by the GC/atexit."""
    for proc in procs:
        _stop_process(proc, timeout=15)
    if workdir is not None and not keep:
        shutil.rmtree(workdir, ignore_errors=True)


# --- the cluster ----------------------------------------------------------------------------------------------------


class RealCluster:
    """One etcd and one kube-apiserver on free loopback ports, with a temporary data folder.

    ``start()`` / ``stop()`` (or a ``with`` block). ``stop()`` is idempotent and also runs at interpreter exit.
    Set ``keep=True`` (or ``TKSH_REALAPI_KEEP=1``) to keep the work folder with the logs after stopping; a
    ``workdir`` given by the caller is always kept (only what runs in it is stopped).
    """

    def __init__(
        self,
        *,
        binaries: Binaries | None = None,
        workdir: Path | None = None,
        keep: bool | None = None,
        extra_apiserver_args: Iterable[str] = (),
        startup_timeout: float = 120.0,
    ) -> None:
        self._binaries = binaries
        self._requested_workdir = workdir
        self.keep = keep if keep is not None else os.environ.get("TKSH_REALAPI_KEEP", "") in ("1", "true", "yes")
        self.extra_apiserver_args = list(extra_apiserver_args)
        self.startup_timeout = startup_timeout
        self.workdir: Path | None = None
        self.pki: Pki | None = None
        self.etcd_proc: subprocess.Popen[bytes] | None = None
        self.apiserver_proc: subprocess.Popen[bytes] | None = None
        self.etcd_url = ""
        self.server = ""
        self.port = 0
        self.kubeconfig = Path()
        self.startup_seconds = 0.0  # from spawning etcd to /readyz answering 200 (build time excluded)
        self._ssl: ssl.SSLContext | None = None
        self._resources: dict[tuple[str, str], tuple[str, bool]] = {}
        self._finalizer: weakref.finalize | None = None  # type: ignore[type-arg]

    # -- lifecycle --

    def __enter__(self) -> RealCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def binaries(self) -> Binaries:
        if self._binaries is None:
            raise RealClusterError("the cluster has not been started")
        return self._binaries

    @property
    def running(self) -> bool:
        return self.apiserver_proc is not None and self.apiserver_proc.poll() is None

    def start(self) -> RealCluster:
        if self.running:
            return self
        if self._requested_workdir is not None:
            self.workdir = self._requested_workdir
            self.workdir.mkdir(parents=True, exist_ok=True)
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix="tksh-realapi-"))
        self._finalizer = weakref.finalize(self, _finalize, [], self._disposable_workdir(), self.keep)
        (self.workdir / "logs").mkdir(exist_ok=True)
        try:
            if self._binaries is None:
                self._binaries = ensure_binaries(log=self.workdir / "logs" / "build.log")
            self.pki = make_pki(self.workdir / "pki")
            for attempt in range(1, PORT_ATTEMPTS + 1):
                started = time.monotonic()
                try:
                    self._start_etcd()
                    self._start_apiserver()
                except RealClusterError as exc:
                    # A free port is picked, then bound by the child: another process may take it in between.
                    if "address already in use" not in str(exc) or attempt == PORT_ATTEMPTS:
                        raise
                    self._stop_processes()
                    shutil.rmtree(self.workdir / "etcd", ignore_errors=True)  # its membership names the old ports
                    continue
                self.startup_seconds = time.monotonic() - started
                break
            self._write_admin_kubeconfig()
        except BaseException:
            self.stop()
            raise
        return self

    def _disposable_workdir(self) -> Path | None:
        """The work folder if it is ours to delete: a folder the caller chose is kept."""
        return self.workdir if self._requested_workdir is None else None

    def _stop_processes(self) -> None:
        for proc in (self.apiserver_proc, self.etcd_proc):
            _stop_process(proc, timeout=15)
        self.apiserver_proc = None
        self.etcd_proc = None

    def stop(self) -> None:
        """Terminates kube-apiserver, then etcd (SIGTERM, SIGKILL after 15 s) and deletes the work folder."""
        procs = [self.apiserver_proc, self.etcd_proc]
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        _finalize(procs, self._disposable_workdir(), self.keep)
        self.apiserver_proc = None
        self.etcd_proc = None
        self._resources.clear()

    def _spawn(self, argv: list[str], log_name: str) -> subprocess.Popen[bytes]:
        assert self.workdir is not None
        log = (self.workdir / "logs" / log_name).open("ab")
        try:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,  # a Ctrl-C in the terminal reaches only us, and we stop them in order
            )
        finally:
            log.close()
        # Re-arm the finalizer with every process spawned so far, so even a leaked cluster stops at exit.
        if self._finalizer is not None:
            self._finalizer.detach()
        self._finalizer = weakref.finalize(
            self, _finalize, [self.apiserver_proc, self.etcd_proc, proc], self._disposable_workdir(), self.keep
        )
        return proc

    def _wait(self, proc: subprocess.Popen[bytes], log_name: str, what: str, probe: Any) -> None:
        assert self.workdir is not None
        deadline = time.monotonic() + self.startup_timeout
        last_error = ""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RealClusterError(
                    f"{what} exited with code {proc.returncode} while starting; its log ends with:\n"
                    f"{_tail(self.workdir / 'logs' / log_name)}"
                )
            try:
                if probe():
                    return
            except (OSError, urllib.error.URLError, ssl.SSLError) as exc:
                last_error = repr(exc)
            time.sleep(0.1)
        raise RealClusterError(
            f"{what} was not ready within {self.startup_timeout:.0f}s (last error: {last_error}); its log ends with:\n"
            f"{_tail(self.workdir / 'logs' / log_name)}"
        )

    def _start_etcd(self) -> None:
        assert self.workdir is not None
        client_port, peer_port = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        argv = [
            str(self.binaries.etcd),
            "--name=tksh",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=tksh={peer_url}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync",  # a throw-away store: durability is not the point, speed is
            "--snapshot-count=100000",
            "--log-level=warn",
        ]
        self.etcd_proc = self._spawn(argv, "etcd.log")

        def healthy() -> bool:
            with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2) as resp:
                return bool(json.loads(resp.read()).get("health") == "true")

        self._wait(self.etcd_proc, "etcd.log", "etcd", healthy)

    def _start_apiserver(self) -> None:
        assert self.workdir is not None and self.pki is not None
        pki = self.pki
        self.port = free_port()
        self.server = f"https://127.0.0.1:{self.port}"
        argv = [
            str(self.binaries.kube_apiserver),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # Loopback may not be advertised through the `kubernetes` Service endpoints; nothing here needs them.
            "--endpoint-reconciler-type=none",
            f"--secure-port={self.port}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            f"--requestheader-client-ca-file={pki.front_proxy_ca_cert}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki.front_proxy_client_cert}",
            f"--proxy-client-key-file={pki.front_proxy_client_key}",
            # No kube-controller-manager here: it would create each namespace's `default` ServiceAccount.
            "--disable-admission-plugins=ServiceAccount",
            "--enable-priority-and-fairness=false",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
            *self.extra_apiserver_args,
        ]
        self.apiserver_proc = self._spawn(argv, "kube-apiserver.log")

        def ready() -> bool:
            return self.request("GET", "/readyz", timeout=5).status == 200

        self._wait(self.apiserver_proc, "kube-apiserver.log", "kube-apiserver", ready)

    # -- kubeconfigs --

    def _kubeconfig(self, user: dict[str, Any], name: str) -> dict[str, Any]:
        assert self.pki is not None
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "tksh-realapi",
                    "cluster": {"server": self.server, "certificate-authority-data": _b64(self.pki.ca_cert)},
                }
            ],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": {"cluster": "tksh-realapi", "user": name}}],
            "current-context": name,
        }

    def _write_admin_kubeconfig(self) -> None:
        assert self.workdir is not None and self.pki is not None
        config = self._kubeconfig(
            {"client-certificate-data": _b64(self.pki.admin_cert), "client-key-data": _b64(self.pki.admin_key)},
            "admin",
        )
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig.chmod(0o600)

    def kubeconfig_for_token(self, token: str, *, name: str = "token-user", path: Path | None = None) -> Path:
        """Writes a kubeconfig that authenticates with a bearer token (e.g. from ``service_account_token``)."""
        assert self.workdir is not None
        path = path or self.workdir / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump(self._kubeconfig({"token": token}, name), sort_keys=False))
        path.chmod(0o600)
        return path

    def env(self) -> dict[str, str]:
        """Environment for a subprocess (kopf, kubectl) that should talk to this cluster as admin."""
        return {"KUBECONFIG": str(self.kubeconfig)}

    # -- HTTP --

    def ssl_context(self, *, client_cert: bool = True) -> ssl.SSLContext:
        assert self.pki is not None
        if not client_cert:
            ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
            return ctx
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=str(self.pki.ca_cert))
            self._ssl.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return self._ssl

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        token: str | None = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> ApiResponse:
        """One HTTP call to the API server: as admin (client cert), or with ``token`` as that identity only.

        Never raises for HTTP error statuses: check ``.status``. ``body`` may be a dict (sent as JSON) or a str.
        """
        url = self.server + path
        if query:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(query)
        data: bytes | None = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        if token is not None:
            req.add_header("Authorization", f"Bearer {token}")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        ctx = self.ssl_context(client_cert=token is None)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
                status, raw, resp_headers = resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as exc:
            status, raw, resp_headers = exc.code, exc.read(), exc.headers
        text = raw.decode(errors="replace")
        try:
            decoded: Any = json.loads(text) if text else None
        except json.JSONDecodeError:
            decoded = text
        merged: dict[str, str] = {}
        for key, value in resp_headers.items():  # repeated headers (e.g. several warnings) joined as HTTP allows
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return ApiResponse(status=status, body=decoded, headers=merged)

    def checked(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """Like ``request`` but raises ``RealClusterError`` on a non-2xx status; returns the decoded body."""
        resp = self.request(method, path, body, **kwargs)
        if not resp.ok:
            raise RealClusterError(f"{method} {path} -> {resp.status}: {resp.body}")
        return resp.body

    # -- resources --

    def resource_path(
        self, api_version: str, kind: str, *, namespace: str | None = None, name: str | None = None
    ) -> str:
        """The REST path of a kind (found by discovery), e.g. ``/apis/example.test/v1/namespaces/ns/widgets/w``."""
        plural, namespaced = self._discover(api_version, kind)
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        if namespaced:
            if namespace is None and name is not None:
                raise RealClusterError(f"{kind} is namespaced: give a namespace")
            if namespace is not None:
                base += f"/namespaces/{namespace}"
        path = f"{base}/{plural}"
        return f"{path}/{name}" if name is not None else path

    def _discover(self, api_version: str, kind: str) -> tuple[str, bool]:
        key = (api_version, kind)
        if key not in self._resources:
            group_path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            listing = self.checked("GET", group_path)
            for res in listing.get("resources", []):
                if "/" not in res["name"]:
                    self._resources[(api_version, res["kind"])] = (res["name"], bool(res["namespaced"]))
            if key not in self._resources:
                raise RealClusterError(f"the API server does not serve {kind} in {api_version}")
        return self._resources[key]

    def apply(self, obj: Mapping[str, Any], *, field_manager: str = FIELD_MANAGER, force: bool = True) -> Any:
        """Server-side apply of one object (create or update); returns the object as stored."""
        meta = obj.get("metadata", {})
        path = self.resource_path(obj["apiVersion"], obj["kind"], namespace=meta.get("namespace"), name=meta["name"])
        return self.checked(
            "PATCH",
            path,
            dict(obj),
            content_type="application/apply-patch+yaml",
            query={"fieldManager": field_manager, "force": "true" if force else "false"},
        )

    def get(self, api_version: str, kind: str, name: str, *, namespace: str | None = None) -> ApiResponse:
        return self.request("GET", self.resource_path(api_version, kind, namespace=namespace, name=name))

    def delete(self, api_version: str, kind: str, name: str, *, namespace: str | None = None) -> ApiResponse:
        return self.request("DELETE", self.resource_path(api_version, kind, namespace=namespace, name=name))

    def ensure_namespace(self, name: str) -> None:
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def install_crds(self, paths: Iterable[Path | str], *, timeout: float = 60.0) -> list[str]:
        """Applies every CustomResourceDefinition in the YAML files and waits until each is Established.

        Returns the CRD names. Raises ``RealClusterError`` (with the conditions) if one is refused or never
        becomes Established.
        """
        names: list[str] = []
        for path in paths:
            for doc in yaml.safe_load_all(Path(path).read_text()):
                if not doc:
                    continue
                if doc.get("kind") != "CustomResourceDefinition":
                    raise RealClusterError(f"{path}: expected CustomResourceDefinition, found {doc.get('kind')}")
                names.append(self.install_crd(doc, wait=False)["metadata"]["name"])
        for name in names:
            self.wait_crd_established(name, timeout=timeout)
        return names

    def install_crd(self, crd: Mapping[str, Any], *, wait: bool = True, timeout: float = 60.0) -> Any:
        """Applies one CRD (a dict) and, by default, waits until it is Established."""
        name = crd["metadata"]["name"]
        stored = self.checked(
            "PATCH",
            f"{CRD_PATH}/{name}",
            dict(crd),
            content_type="application/apply-patch+yaml",
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
        )
        if wait:
            self.wait_crd_established(name, timeout=timeout)
        return stored

    def wait_crd_established(self, name: str, *, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        conditions: list[Any] = []
        while True:
            crd = self.checked("GET", f"{CRD_PATH}/{name}")
            conditions = (crd.get("status") or {}).get("conditions") or []
            established = any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)
            # Established comes before the storage is: a list answers 429 until the watch cache is ready, and the
            # first write waits for it. Wait for that here too, so that callers get a usable resource.
            if established and self._crd_served(crd):
                self._resources.clear()  # forget discovery results, so the new kinds are found
                return crd
            if time.monotonic() > deadline:
                raise RealClusterError(f"CRD {name} not Established within {timeout:.0f}s: {conditions}")
            time.sleep(0.1)

    def _crd_served(self, crd: Mapping[str, Any]) -> bool:
        spec = crd["spec"]
        versions = [v["name"] for v in spec.get("versions", []) if v.get("served")]
        return all(
            self.request("GET", f"/apis/{spec['group']}/{version}/{spec['names']['plural']}", query={"limit": "1"}).ok
            for version in versions
        )

    # -- identities (RBAC) --

    def service_account_token(
        self, name: str, *, namespace: str = "default", expiration_seconds: int = 3600, create: bool = True
    ) -> str:
        """A bearer token for ServiceAccount ``namespace/name`` via the TokenRequest API (creating the SA first)."""
        if create:
            self.ensure_namespace(namespace)
            self.apply(
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}
            )
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": expiration_seconds},
        }
        resp = self.checked("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", body)
        return str(resp["status"]["token"])

    def kubeconfig_for_service_account(self, name: str, *, namespace: str = "default") -> Path:
        """Creates the ServiceAccount if needed and writes a kubeconfig with its token."""
        token = self.service_account_token(name, namespace=namespace)
        return self.kubeconfig_for_token(token, name=f"sa-{namespace}-{name}")
