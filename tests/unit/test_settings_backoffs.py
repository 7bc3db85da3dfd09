"""The operator's API retries never run out while it runs, and end as soon as it is told to stop."""

from __future__ import annotations

import itertools

from tksh.config import OperatorConfig
from tksh.handlers.settings import Unending, make_settings


def test_retries_go_on_past_the_listed_delays() -> None:
    backoffs = Unending((1, 2), then=30)
    assert list(itertools.islice(backoffs, 6)) == [1, 2, 30, 30, 30, 30]
    assert list(itertools.islice(backoffs, 2)) == [1, 2]  # iterated anew for every request


def test_stop_ends_new_and_running_iterations() -> None:
    backoffs = Unending((1, 2), then=30)
    running = iter(backoffs)
    assert next(running) == 1
    backoffs.stop()
    assert list(itertools.islice(running, 5)) == []
    assert list(itertools.islice(backoffs, 5)) == []


def test_both_modes_use_unending_retries() -> None:
    for fast in (False, True):
        assert isinstance(make_settings(OperatorConfig(fast=fast)).networking.error_backoffs, Unending)
