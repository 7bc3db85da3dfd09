"""Wiring for the real tier (see docs/testing.md); the ``real_cluster`` fixture itself is in tests/conftest.py.

- ``TKSH_REALAPI=0`` skips the tier deliberately (also in CI).
- ``TKSH_REALAPI=1`` or ``CI=true`` makes it required: binaries that cannot be had are a failure, not a skip.
- Otherwise the tier is skipped with a clear message when the binaries are not cached and Go is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import realapi_disabled

from .cluster import cached_binaries

HERE = Path(__file__).resolve().parent
BUILD_TIMEOUT = 3600  # seconds: the first build compiles kube-apiserver from source inside the first test's setup


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
