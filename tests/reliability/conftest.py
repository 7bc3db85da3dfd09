"""Fixtures of the reliability suite. Long variants carry the ``reliability_long`` marker."""

from __future__ import annotations

import os

import pytest


def seed() -> int:
    """The kill and fault plans' seed: ``$TKSH_RELIABILITY_SEED`` or a fixed default (reproducible plans)."""
    return int(os.environ.get("TKSH_RELIABILITY_SEED", "7"))


@pytest.fixture
def reliability_seed() -> int:
    return seed()
