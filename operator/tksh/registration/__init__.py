"""Registration and integration of digital objects (§14–17): the pure core the kopf handlers call.

- :mod:`~tksh.registration.calendar`: Kazakhstan's working days and the §16 review term;
- :mod:`~tksh.registration.completeness`: §16 completeness of an application against the directory;
- :mod:`~tksh.registration.lifecycle`: the state machine, :func:`reconcile` -> :class:`Plan`;
- :mod:`~tksh.registration.plan`: its inputs and output (config, object ref, test result, plan);
- :mod:`~tksh.registration.messages`: the e-mails in Kazakh and Russian;
- :mod:`~tksh.registration.delivery`: sending the due e-mails of an object's outbox (the only I/O);
- :mod:`~tksh.registration.state`: internal bookkeeping of a lifecycle run.

No Kubernetes imports: everything but delivery is a pure function of its arguments.
"""

from __future__ import annotations

from tksh.registration.calendar import (
    DEFAULT_TIMEZONE,
    REMINDER_WORKING_DAY,
    REVIEW_WORKING_DAYS,
    WorkingCalendar,
    calendar_for,
    last_day_of_term,
    reminder_due,
    review_deadline,
    working_days_between,
)
from tksh.registration.completeness import (
    Completeness,
    DirectoryEntry,
    Problem,
    bin_checksum_valid,
    check_application,
    directory_from_objects,
)
from tksh.registration.delivery import Attempt, deliver_due
from tksh.registration.lifecycle import CONDITION_TYPES, reconcile
from tksh.registration.messages import TEMPLATES, Rendered, render
from tksh.registration.plan import (
    EventSpec,
    LifecycleConfig,
    ObjectRef,
    Plan,
    TestRequest,
    TestResult,
    recipient_address,
)

__all__ = [
    "CONDITION_TYPES",
    "DEFAULT_TIMEZONE",
    "REMINDER_WORKING_DAY",
    "REVIEW_WORKING_DAYS",
    "TEMPLATES",
    "Attempt",
    "Completeness",
    "DirectoryEntry",
    "EventSpec",
    "LifecycleConfig",
    "ObjectRef",
    "Plan",
    "Problem",
    "Rendered",
    "TestRequest",
    "TestResult",
    "WorkingCalendar",
    "bin_checksum_valid",
    "calendar_for",
    "check_application",
    "deliver_due",
    "directory_from_objects",
    "last_day_of_term",
    "recipient_address",
    "reconcile",
    "reminder_due",
    "render",
    "review_deadline",
    "working_days_between",
]
