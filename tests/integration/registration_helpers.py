"""Shared pieces of the registration suites (test_registration, test_registration_timers, test_grants): the application
manifest, the operator's configuration, small readers of status, conditions, Events and mail, and the admission
webhook's answer."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.backends import Backend, EmbeddedBackend, RealBackend
from tksh.config import OperatorConfig
from tksh.sandbox.mailsink import ReceivedMail

API = "tksh.kz/v1alpha1"
OWNER_EMAIL = "board@dostyk12.example.kz"
OWNER_BIN = "140540001231"
ADMIN_EMAIL = "admin@tksh.example.kz"
FUNCTION: dict[str, Any] = {
    "apiVersion": API,
    "kind": "SubjectFunction",
    "metadata": {"name": "owners-association"},
    "spec": {
        "titles": {"kk": "ПИБ", "ru": "ОСИ", "en": "Owners' association"},
        "subjectTypes": ["PropertyOwnersAssociation"],
        "rights": [{"category": 2, "actions": ["read", "write"]},
                   {"category": 5, "actions": ["read", "write", "sign"]}],
    },
}
AGREEMENT = {"number": "ЦЖ-2026/0042", "signedAt": "2026-01-20T09:00:00Z", "validUntil": "2099-07-20T00:00:00Z"}


async def admission_answer(http: Any, url: str, body: dict[str, Any]) -> dict[str, Any]:
    """The ``response`` of AdmissionReview ``body`` POSTed to the webhook at ``url`` (an ``aiohttp`` session's
    ``http``); an AssertionError, which ``eventually`` retries, while the webhook server is not up yet."""
    import aiohttp

    try:
        async with http.post(url, json=body) as response:
            assert response.status == 200, await response.text()
            answer: dict[str, Any] = (await response.json())["response"]
    except aiohttp.ClientConnectionError as error:
        raise AssertionError(f"the webhook server is not up yet: {error}") from error
    return answer


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_for(cluster: Backend, smtp_port: int, **changes: Any) -> OperatorConfig:
    """The backend's operator configuration with the mail relay, the Administrator's mailbox and a short test."""
    return dataclasses.replace(
        cluster.operator_config(), smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_sender="tksh@tksh.example.kz",
        administrator_mailbox=ADMIN_EMAIL, test_probes=2, test_time_limit=1.5, test_retry=3600,
        test_probe_interval=0.1, **changes,
    )


async def make_namespace(cluster: Backend, unique: str, prefix: str = "reg") -> str:
    """A fresh namespace for the test, and the function directory the applications (and grants) refer to."""
    name = f"{prefix}-{unique}"
    await cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    await cluster.apply(copy.deepcopy(FUNCTION))
    return name


def application(name: str, ns: str, url: str = "http://127.0.0.1:9/", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": API,
        "kind": "DigitalObject",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "owner": {"bin": OWNER_BIN, "name": "ОСИ «Достық 12»", "subjectType": "PropertyOwnersAssociation",
                      "email": OWNER_EMAIL},
            "functions": ["owners-association"],
            "categories": [2, 5],
            "endpoint": {"url": url},
            "probe": {"type": "http", "path": "/healthz", "intervalSeconds": 5, "timeoutSeconds": 1},
        },
    }
    body["spec"].update(spec)
    return body


async def patch_status(cluster: Backend, name: str, ns: str, status: dict[str, Any]) -> dict[str, Any]:
    """Merge-patch the ``status`` subresource of a DigitalObject, as an earlier operator would have written it."""
    if isinstance(cluster, EmbeddedBackend):
        return await cluster.api.apply(
            {"apiVersion": API, "kind": "DigitalObject", "metadata": {"name": name, "namespace": ns},
             "status": status})
    assert isinstance(cluster, RealBackend), cluster
    real = cluster.cluster
    path = real.resource_path(API, "DigitalObject", namespace=ns, name=name) + "/status"
    patched: dict[str, Any] = await asyncio.to_thread(
        real.checked, "PATCH", path, {"status": status}, content_type="application/merge-patch+json")
    return patched


async def phase(cluster: Backend, name: str, ns: str, expected: str) -> dict[str, Any]:
    obj = await cluster.get("DigitalObject", name, ns)
    assert obj is not None
    status: dict[str, Any] = obj.get("status") or {}
    assert status.get("phase") == expected, status
    return status


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = [c for c in status["conditions"] if c["type"] == kind]
    return dict(found)


async def reasons(cluster: Backend, name: str, ns: str | None = None) -> dict[str, str]:
    """The Events' reasons (and types) of the object ``name`` (in ``ns``, if given: the real cluster is shared)."""
    return {e["reason"]: e["type"] for e in await cluster.events(name)
            if ns is None or (e.get("involvedObject") or {}).get("namespace") == ns}


async def event_type(cluster: Backend, name: str, reason: str, ns: str | None = None) -> str:
    """The type (Normal, Warning) of the object's Event with ``reason``; fails while there is none."""
    found = await reasons(cluster, name, ns)
    assert reason in found, found
    return found[reason]


def to_owner(template: str) -> Callable[[ReceivedMail], bool]:
    return lambda m: m.message["X-TKSH-Template"] == template and m.envelope_to == (OWNER_EMAIL,)


def to_admin(template: str) -> Callable[[ReceivedMail], bool]:
    return lambda m: m.message["X-TKSH-Template"] == template and m.envelope_to == (ADMIN_EMAIL,)


def kubectl_env(cluster: Backend, tmp_path: Path) -> dict[str, str]:
    """The environment to run the real ``kubectl`` (and its ``kubectl-tksh`` plugin) against ``cluster``."""
    if isinstance(cluster, EmbeddedBackend):
        kubeconfig = cluster.api.write_kubeconfig(tmp_path / "kubeconfig")
    else:
        assert isinstance(cluster, RealBackend), cluster
        kubeconfig = Path(cluster.cluster.kubeconfig)
    bin_dir = Path(sys.executable).parent
    return {**os.environ, "KUBECONFIG": str(kubeconfig), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


async def kubectl_tksh(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """``kubectl tksh ARGS``: exit code, stdout, stderr."""
    kubectl = Path(sys.executable).parent / "kubectl"
    proc = await asyncio.create_subprocess_exec(str(kubectl), "tksh", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()
