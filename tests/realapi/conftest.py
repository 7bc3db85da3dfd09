"""Wiring for the real tier: one real kube-apiserver + etcd per test session (see docs/testing.md).

- ``TKSH_REALAPI=0`` skips the tier deliberately (also in CI).
- ``TKSH_REALAPI=1`` or ``CI=true`` makes it required: binaries that cannot be had are a failure, not a skip.
- Otherwise the tier is skipped with a clear message when the binaries are not cached and Go is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import BinariesUnavailable, RealCluster, cached_binaries, ensure_binaries

HERE = Path(__file__).resolve().parent
FALSY = ("0", "false", "no", "off")
TRUTHY = ("1", "true", "yes", "on")
BUILD_TIMEOUT = 3600  # seconds: the first build compiles kube-apiserver from source inside the first test's setup


def realapi_disabled() -> bool:
    return os.environ.get("TKSH_REALAPI", "").strip().lower() in FALSY


def realapi_required() -> bool:
    return (
        os.environ.get("TKSH_REALAPI", "").strip().lower() in TRUTHY
        or os.environ.get("CI", "").strip().lower() == "true"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [item for item in items if HERE in Path(str(item.path)).resolve().parents]
    if not mine:
        return
    # Only when a build is due: otherwise the suite's own per-test timeout keeps catching hangs.
    extend = not realapi_disabled() and config.pluginmanager.hasplugin("timeout") and cached_binaries() is None
    for item in mine:
        item.add_marker(pytest.mark.realapi)
        if extend:
            item.add_marker(pytest.mark.timeout(BUILD_TIMEOUT))


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[RealCluster]:
    """A started ``RealCluster`` shared by the whole session; stopped (and its data deleted) at the end."""
    if realapi_disabled():
        pytest.skip("real API server tier disabled by TKSH_REALAPI=0")
    try:
        binaries = ensure_binaries()
    except BinariesUnavailable as exc:
        if realapi_required():
            pytest.fail(f"the real API server tier is required here (CI=true or TKSH_REALAPI=1): {exc}", pytrace=False)
        pytest.skip(f"real API server tier unavailable: {exc}; set TKSH_REALAPI=0 to silence this")
    cluster = RealCluster(binaries=binaries)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
