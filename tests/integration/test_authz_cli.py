"""``tksh authz`` as a process: keys from a mounted folder, the embedded API server, decisions over HTTP."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from tksh.access import KeySet
from tksh.sandbox.apiserver import EmbeddedAPIServer, project_crd_paths

TKSH = Path(sys.executable).parent / "tksh"
OWNER = "140540001231"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_authz_process_serves_decisions_from_the_cluster(
    tmp_path: Path, wait_until: Callable[..., Awaitable[Any]]
) -> None:
    keys = KeySet.generate(issuer="tksh-operator", audience="tksh-authz")
    for name, data in keys.to_pem_files().items():
        (tmp_path / name).write_bytes(data)
    async with EmbeddedAPIServer(crd_paths=project_crd_paths()) as api:
        await api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "housing"}})
        await api.apply({
            "apiVersion": "tksh.kz/v1alpha1", "kind": "SubjectFunction", "metadata": {"name": "osi"},
            "spec": {"titles": {"kk": "a", "ru": "b", "en": "c"}, "subjectTypes": ["PropertyOwnersAssociation"],
                     "rights": [{"category": 2, "actions": ["read"]}]},
            "status": {"phase": "Active"},
        })
        await api.apply({
            "apiVersion": "tksh.kz/v1alpha1", "kind": "AccessGrant",
            "metadata": {"name": "g1", "namespace": "housing"},
            "spec": {"subject": {"id": "person:a1", "kind": "person"}, "onBehalfOf": {"bin": OWNER},
                     "functions": ["osi"],
                     "agreement": {"number": "1", "validFrom": "2020-01-01T00:00:00Z",
                                   "validUntil": "2099-01-01T00:00:00Z"}},
            "status": {"phase": "Active"},
        })
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            str(TKSH), "authz", "--port", str(port), "--server", api.url, "--keys-dir", str(tmp_path),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                async def ready() -> None:
                    assert process.returncode is None, "tksh authz exited"
                    try:
                        async with http.get(f"{base}/readyz") as response:
                            assert response.status == 200
                    except aiohttp.ClientConnectionError as exc:
                        raise AssertionError("not listening yet") from exc

                await wait_until(ready, timeout=60)
                body = {"subject": "person:a1", "action": "read", "resource": {"category": 2, "ownerBin": OWNER}}
                async with http.post(f"{base}/v1/decisions", json=body) as response:
                    answer = await response.json()
                assert (response.status, answer["allowed"], answer["grant"]) == (200, True, "housing/g1")
                async with http.get(f"{base}/.well-known/jwks.json") as response:
                    kids = {key["kid"] for key in (await response.json())["keys"]}
                assert kids == {keys.current.kid, keys.next.kid}
        finally:
            process.terminate()
            _, err = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0, err.decode()[-2000:]
        assert OWNER not in err.decode(), "the owner BIN must be masked in the decision log"
