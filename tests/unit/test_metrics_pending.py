"""``tksh_notifications_pending`` sums every outbox owner's part: none overwrites another's (issue 7, item 3)."""

from __future__ import annotations

from tksh.metrics import OperatorMetrics


def test_each_owner_sets_its_part_and_the_gauge_is_the_sum() -> None:
    metrics = OperatorMetrics()
    metrics.set_pending("registration", 10)
    metrics.set_pending("grants", 8)
    metrics.set_pending("incidents", 4)
    assert metrics.value("tksh_notifications_pending") == 22
    metrics.set_pending("registration", 0)  # the registration daemons drained: the grants' backlog still shows
    assert metrics.value("tksh_notifications_pending") == 12
    metrics.set_pending("grants", 3)
    assert metrics.value("tksh_notifications_pending") == 7
