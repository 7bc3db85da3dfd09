import datetime

import pytest

from tksh.conditions import get_condition, is_true, rfc3339, set_condition

T0 = datetime.datetime(2026, 3, 20, 9, 0, 0, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(hours=1)


def test_new_condition_is_appended_with_all_fields() -> None:
    result = set_condition([], "Ready", "True", "Accepted", "fine", observed_generation=3, now=T0)
    assert result == [{
        "type": "Ready", "status": "True", "reason": "Accepted", "message": "fine",
        "lastTransitionTime": "2026-03-20T09:00:00Z", "observedGeneration": 3,
    }]


def test_transition_time_kept_when_status_unchanged() -> None:
    first = set_condition(None, "Ready", "False", "Waiting", now=T0)
    second = set_condition(first, "Ready", "False", "StillWaiting", "new message", now=T1)
    assert second[0]["lastTransitionTime"] == "2026-03-20T09:00:00Z"
    assert second[0]["reason"] == "StillWaiting"
    assert second[0]["message"] == "new message"


def test_transition_time_moves_when_status_changes() -> None:
    first = set_condition(None, "Ready", "False", "Waiting", now=T0)
    second = set_condition(first, "Ready", "True", "Done", now=T1)
    assert second[0]["lastTransitionTime"] == "2026-03-20T10:00:00Z"


def test_other_conditions_keep_their_order_and_input_is_not_mutated() -> None:
    original = set_condition(set_condition(None, "A", "True", "X", now=T0), "B", "False", "Y", now=T0)
    snapshot = [dict(c) for c in original]
    updated = set_condition(original, "A", "False", "Z", now=T1)
    assert [c["type"] for c in updated] == ["A", "B"]
    assert original == snapshot
    assert is_true(original, "A") and not is_true(updated, "A")
    assert get_condition(updated, "missing") is None


@pytest.mark.parametrize("reason", ["", "not camel", "9Lives", "Trailing:"])
def test_reason_must_be_camel_case(reason: str) -> None:
    with pytest.raises(ValueError, match="CamelCase"):
        set_condition(None, "Ready", "True", reason)


def test_status_must_be_kubernetes_tristate() -> None:
    with pytest.raises(ValueError, match="True, False, Unknown"):
        set_condition(None, "Ready", "yes", "Reason")  # type: ignore[arg-type]


def test_rfc3339_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        rfc3339(datetime.datetime(2026, 1, 1))
    almaty = datetime.timezone(datetime.timedelta(hours=5))
    assert rfc3339(datetime.datetime(2026, 1, 1, 5, 0, 0, 999, tzinfo=almaty)) == "2026-01-01T00:00:00Z"
