"""Logging in with a kubeconfig: certificates, tokens and CA reach kopf's connection info."""

from __future__ import annotations

from pathlib import Path

import yaml

from tksh.handlers.login import connection_from_kubeconfig


def write(path: Path, user: dict[str, str], cluster: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }), encoding="utf-8")
    return path


def test_a_service_account_token_is_sent_as_a_bearer_token(tmp_path: Path) -> None:
    config = write(tmp_path / "kc", {"token": "abc.def.ghi"},
                   {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True})
    info = connection_from_kubeconfig(str(config))
    assert (info.server, info.scheme, info.token) == ("https://127.0.0.1:6443", "Bearer", "abc.def.ghi")
    assert info.insecure is True


def test_client_certificates_are_passed_on(tmp_path: Path) -> None:
    for name in ("ca.crt", "tls.crt", "tls.key"):
        (tmp_path / name).write_text("-----BEGIN X-----\n-----END X-----\n", encoding="utf-8")
    config = write(
        tmp_path / "kc",
        {"client-certificate": str(tmp_path / "tls.crt"), "client-key": str(tmp_path / "tls.key")},
        {"server": "https://127.0.0.1:6443", "certificate-authority": str(tmp_path / "ca.crt")},
    )
    info = connection_from_kubeconfig(str(config))
    assert info.token is None and info.insecure is False
    assert str(info.certificate_path).endswith("tls.crt") and str(info.private_key_path).endswith("tls.key")
    assert str(info.ca_path).endswith("ca.crt")
