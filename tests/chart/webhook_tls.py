"""The admission webhook's TLS in the chart tests: reading the rendered pair, making an equivalent one, and calling
the operator's webhook server over HTTPS as the API server does (no pytest in here)."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import http.client
import ipaddress
import json
import socket
import ssl
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from .helpers import NAMESPACE, Obj, of_kind

WEBHOOK_SERVICE = "tksh-admission"  # release "tksh": <fullname>-admission
SERVICE_DNS_NAMES = [
    WEBHOOK_SERVICE,
    f"{WEBHOOK_SERVICE}.{NAMESPACE}",
    f"{WEBHOOK_SERVICE}.{NAMESPACE}.svc",
    f"{WEBHOOK_SERVICE}.{NAMESPACE}.svc.cluster.local",
]
SERVICE_HOSTNAME = f"{WEBHOOK_SERVICE}.{NAMESPACE}.svc"  # the name the API server verifies for a Service reference


@dataclasses.dataclass(frozen=True)
class TlsPair:
    """A serving certificate and key (PEM) and the CA bundle that verifies it (PEM)."""

    cert: bytes
    key: bytes
    ca: bytes

    def write(self, folder: Path) -> tuple[Path, Path]:
        """tls.crt and tls.key in ``folder``, as the operator pod gets them from the mounted Secret."""
        folder.mkdir(parents=True, exist_ok=True)
        cert, key = folder / "tls.crt", folder / "tls.key"
        cert.write_bytes(self.cert)
        key.write_bytes(self.key)
        key.chmod(0o600)
        return cert, key

    @property
    def ca_bundle(self) -> str:
        """The CA as a webhook configuration's caBundle (base64 of the PEM)."""
        return base64.b64encode(self.ca).decode()


def secret_pair(objs: Iterable[Obj], name: str = f"{WEBHOOK_SERVICE}-tls") -> TlsPair:
    """The pair in the rendered kubernetes.io/tls Secret."""
    (secret,) = [s for s in of_kind(objs, "Secret") if s["metadata"]["name"] == name]
    assert secret["type"] == "kubernetes.io/tls", secret["type"]
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    return TlsPair(cert=data["tls.crt"], key=data["tls.key"], ca=data["ca.crt"])


def certificate(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def dns_names(cert: x509.Certificate) -> list[str]:
    return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName))


def verify_server_certificate(pair: TlsPair, hostname: str, *, at: datetime.datetime | None = None) -> None:
    """Verifies the chain from the CA bundle to the serving certificate for ``hostname`` (a DNS name) at ``at`` as
    a TLS client would (signature, validity, CA constraints, server-auth usage, SAN); raises if it does not hold."""
    builder = PolicyBuilder().store(Store(x509.load_pem_x509_certificates(pair.ca)))
    if at is not None:
        builder = builder.time(at)
    builder.build_server_verifier(x509.DNSName(hostname)).verify(certificate(pair.cert), [])


def make_pair(dns: Sequence[str], ips: Sequence[str] = (), *, days: int = 30) -> TlsPair:
    """A CA and a serving certificate signed by it, for these names and addresses (ECDSA P-256)."""
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tksh-admission-test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0])]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return TlsPair(
        cert=cert.public_bytes(serialization.Encoding.PEM),
        key=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
        ca=ca.public_bytes(serialization.Encoding.PEM),
    )


def admission_review(
    *, uid: str, userinfo: Mapping[str, Any], new: Mapping[str, Any], old: Mapping[str, Any] | None,
    kind: str = "DigitalObject", plural: str = "digitalobjects",
) -> dict[str, Any]:
    """An AdmissionReview of a write of a tksh.kz object (a DigitalObject unless told), as the API server sends it."""
    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid, "operation": "UPDATE" if old else "CREATE", "userInfo": dict(userinfo),
            "kind": {"group": "tksh.kz", "version": "v1alpha1", "kind": kind},
            "resource": {"group": "tksh.kz", "version": "v1alpha1", "resource": plural},
            "namespace": new["metadata"]["namespace"], "name": new["metadata"]["name"],
            "object": dict(new), "oldObject": dict(old) if old else None,
        },
    }


def post_over_tls(
    port: int, path: str, body: Mapping[str, Any], *, ca: bytes, server_hostname: str, timeout: float = 10.0
) -> tuple[int, Any]:
    """POSTs JSON to 127.0.0.1:``port`` over TLS, verifying the server's certificate against ``ca`` for
    ``server_hostname`` (as the API server verifies <service>.<namespace>.svc); returns the status and the body."""
    context = ssl.create_default_context(cadata=ca.decode())
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        tls = context.wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise
    conn = http.client.HTTPConnection(server_hostname, port, timeout=timeout)
    conn.sock = tls  # already connected: http.client uses it as is
    try:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        text = response.read().decode()
        return response.status, (json.loads(text) if text.startswith("{") else text)
    finally:
        conn.close()
