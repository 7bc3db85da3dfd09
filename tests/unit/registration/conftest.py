"""Fixtures of the registration tests (the data itself is in ``data.py``, importable by helpers)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.unit.registration.data import APPLICATION, DIRECTORY


@pytest.fixture
def directory() -> dict[str, Any]:
    return copy.deepcopy(DIRECTORY)


@pytest.fixture
def application() -> dict[str, Any]:
    return copy.deepcopy(APPLICATION)
