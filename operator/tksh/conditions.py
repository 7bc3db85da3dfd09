"""Status conditions in the Kubernetes convention, as pure functions.

A condition is ``{type, status, reason, message, lastTransitionTime, observedGeneration}``.
``lastTransitionTime`` changes only when ``status`` changes (as in cert-manager and the
Prometheus Operator), so a reconcile that re-asserts the same state does not look like a
transition. The functions never mutate their input: they return a new list, which the
handlers write back to ``status.conditions`` in one patch.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

ConditionStatus = Literal["True", "False", "Unknown"]

_REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")


def rfc3339(moment: datetime.datetime) -> str:
    """Format an aware datetime as the API server does: UTC, seconds precision, ``Z``."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(datetime.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339() -> str:
    return rfc3339(datetime.datetime.now(datetime.UTC))


def read_time(value: object) -> datetime.datetime | None:
    """A time field of an object (RFC 3339) as an aware datetime, without an offset taken as UTC; ``None`` when
    it is missing or not a time (a reader of what others wrote does not fail on it)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.UTC)


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str = "",
    observed_generation: int | None = None,
    now: datetime.datetime | None = None,
) -> list[dict[str, Any]]:
    """Return ``conditions`` with the condition ``type`` set to the given values.

    The order of existing conditions is kept; a new type is appended.
    """
    if not _REASON.match(reason):
        raise ValueError(f"condition reason {reason!r} must be CamelCase (pattern {_REASON.pattern})")
    if status not in ("True", "False", "Unknown"):
        raise ValueError(f"condition status {status!r} must be one of True, False, Unknown")
    stamp = rfc3339(now or datetime.datetime.now(datetime.UTC))
    result: list[dict[str, Any]] = []
    found = False
    for existing in conditions or ():
        item = dict(existing)
        if item.get("type") == type:
            found = True
            transition = item.get("lastTransitionTime") if item.get("status") == status else None
            item = _condition(type, status, reason, message, transition or stamp, observed_generation)
        result.append(item)
    if not found:
        result.append(_condition(type, status, reason, message, stamp, observed_generation))
    return result


def get_condition(conditions: Sequence[Mapping[str, Any]] | None, type: str) -> dict[str, Any] | None:
    for item in conditions or ():
        if item.get("type") == type:
            return dict(item)
    return None


def is_true(conditions: Sequence[Mapping[str, Any]] | None, type: str) -> bool:
    found = get_condition(conditions, type)
    return found is not None and found.get("status") == "True"


def _condition(
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    transition: str,
    observed_generation: int | None,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": type,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if observed_generation is not None:
        item["observedGeneration"] = observed_generation
    return item
