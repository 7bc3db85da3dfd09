"""Fixtures: the embedded API server with the small test CRDs (``widgets.example.test``, ``gadgets...``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tksh.sandbox.apiserver import EmbeddedAPIServer

from .helpers import TEST_CRDS


@pytest.fixture
def crd_file(tmp_path: Path) -> Path:
    path = tmp_path / "crds.yaml"
    path.write_text(TEST_CRDS, encoding="utf-8")
    return path


@pytest.fixture
async def embedded_api(crd_file: Path) -> AsyncIterator[EmbeddedAPIServer]:
    async with EmbeddedAPIServer(crd_paths=[crd_file]) as api:
        yield api
