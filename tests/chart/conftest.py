"""Fixtures of the chart tests: helm and promtool (see hack/tools/install.sh), rendered manifests.

A missing tool skips the tests that need it with the command that installs it; in CI (``CI=true``) the tools are
installed by ``hack/tools/install.sh`` on first need, and a tool that still cannot be had is a failure, not a skip.
The tests against the real API server use the session's ``real_cluster`` (tests/conftest.py) and carry the
``realapi`` marker.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.realapi.cluster import cached_binaries

from .helpers import HERE, INSTALL_SCRIPT, VALUES_ALL, Obj, ci, find_tool, render

BUILD_TIMEOUT = 3600  # as tests/realapi: the first realapi test's setup may compile kube-apiserver
_install_attempted: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if cached_binaries() is not None or not config.pluginmanager.hasplugin("timeout"):
        return
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents and item.get_closest_marker("realapi"):
            item.add_marker(pytest.mark.timeout(BUILD_TIMEOUT), append=False)  # wins over the test's own


def _install_once() -> str:
    if not _install_attempted:
        proc = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900, check=False)
        _install_attempted.append(f"exit {proc.returncode}: {proc.stderr[-2000:]}")
    return _install_attempted[0]


def require_tool(name: str) -> Path:
    path = find_tool(name)
    if path is not None:
        return path
    if ci():
        outcome = _install_once()
        path = find_tool(name)
        if path is not None:
            return path
        pytest.fail(f"{name} is required in CI and {INSTALL_SCRIPT.name} could not provide it ({outcome})",
                    pytrace=False)
    pytest.skip(f"{name} not found (TKSH_{name.upper()}, the tools cache, PATH): run hack/tools/install.sh")


@pytest.fixture(scope="session")
def helm() -> Path:
    return require_tool("helm")


@pytest.fixture(scope="session")
def promtool() -> Path:
    return require_tool("promtool")


@pytest.fixture(scope="session")
def rendered_default(helm: Path) -> list[Obj]:
    """The chart with its default values, release "tksh" in namespace "tksh-system"."""
    return render(helm)


@pytest.fixture(scope="session")
def rendered_all(helm: Path) -> list[Obj]:
    """The chart with everything on (tests/chart/values-all.yaml)."""
    return render(helm, [VALUES_ALL])


@pytest.fixture(scope="session")
def kubernetes_validate() -> object:
    """The kubernetes-validate module (offline OpenAPI schemas of Kubernetes releases)."""
    import importlib

    try:
        return importlib.import_module("kubernetes_validate")
    except ImportError:
        if not ci():
            pytest.skip("kubernetes-validate is not installed: run hack/tools/install.sh (or pip install it)")
    outcome = _install_once()
    importlib.invalidate_caches()
    try:
        return importlib.import_module("kubernetes_validate")
    except ImportError:
        pytest.fail(f"kubernetes-validate is required in CI and could not be installed ({outcome})", pytrace=False)
