"""Working-day arithmetic in Kazakhstan's calendar: the §16 review term across holidays and timezones.

Expected values are worked out by hand from the published calendars (the comments show the count),
not computed with the code under test.
"""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tksh.registration.calendar import (
    WorkingCalendar,
    calendar_for,
    last_day_of_term,
    reminder_due,
    review_deadline,
    working_days_between,
)

ALMATY = calendar_for().tz
UTC = datetime.UTC
D = datetime.date


def almaty(y: int, mo: int, d: int, h: int = 10, mi: int = 0) -> datetime.datetime:
    return datetime.datetime(y, mo, d, h, mi, tzinfo=ALMATY)


# (case, submitted (Almaty local), last day of the term, day the reminder is due)
TERMS = [
    # Nauryz 21–23 March 2025 (Fri–Sun), moved to Mon 24 and Tue 25: 26,27,28,31 Mar, 1 Apr
    ("nauryz-2025", almaty(2025, 3, 20), D(2025, 4, 1), D(2025, 3, 31)),
    # Nauryz 2026 on Sat–Mon, moved to Tue 24 and Wed 25: 26,27,30,31 Mar, 1 Apr
    ("nauryz-2026", almaty(2026, 3, 20, 12), D(2026, 4, 1), D(2026, 3, 31)),
    # 1 May (Fri), 7 May (Thu), 9 May (Sat -> Mon 11): 4,5,6,8,12 May
    ("may-2026", almaty(2026, 4, 30, 9), D(2026, 5, 12), D(2026, 5, 8)),
    # 2024: Sat 4 May a working day, Wed 8 May the day off in exchange; 1,7,9 May holidays: 2,3,4(Sat),6,10
    ("may-2024-transfer", almaty(2024, 4, 30), D(2024, 5, 10), D(2024, 5, 6)),
    # year end 2025: 1–2 Jan holidays, 7 Jan Orthodox Christmas: 5,6,8,9,12 Jan
    ("year-end-2025", almaty(2025, 12, 31, 15), D(2026, 1, 12), D(2026, 1, 9)),
    # year end 2024: Fri 3 Jan a day off, Sun 5 Jan a working day, 7 Jan Christmas: 5(Sun),6,8,9,10 Jan
    ("year-end-2024-transfer", almaty(2024, 12, 31), D(2025, 1, 10), D(2025, 1, 9)),
    # 16–17 December 2021 (Thu, Fri): 20,21,22,23,24
    ("independence-2021", almaty(2021, 12, 15), D(2021, 12, 24), D(2021, 12, 23)),
    # 16 December 2023 is a Saturday: moved to Mon 18: 19,20,21,22,25
    ("independence-2023-on-weekend", almaty(2023, 12, 15), D(2023, 12, 25), D(2023, 12, 22)),
    # 16 December 2026 (Wed) only, since 2022: 17,18,21,22,23
    ("independence-2026", almaty(2026, 12, 15), D(2026, 12, 23), D(2026, 12, 22)),
    # Kurban Ait by the Islamic calendar: Fri 6 June 2025: 5,9,10,11,12
    ("kurban-ait-2025", almaty(2025, 6, 4), D(2025, 6, 12), D(2025, 6, 11)),
    # a Saturday submission: the term starts on Monday
    ("saturday", almaty(2026, 6, 6), D(2026, 6, 12), D(2026, 6, 11)),
    ("sunday-late", almaty(2026, 6, 7, 23, 59), D(2026, 6, 12), D(2026, 6, 11)),
    # Thursday 23:59 in Almaty is 18:59 UTC Thursday: the term is Fri..Thu
    ("thursday-23:59", almaty(2026, 6, 4, 23, 59), D(2026, 6, 11), D(2026, 6, 10)),
    # Friday 00:01 in Almaty is still Thursday in UTC (19:01): but a Friday submission, Mon..Fri
    ("friday-00:01", almaty(2026, 6, 5, 0, 1), D(2026, 6, 12), D(2026, 6, 11)),
    # before 1 March 2024 Almaty was UTC+6
    ("utc+6-thursday-23:59", almaty(2023, 6, 1, 23, 59), D(2023, 6, 8), D(2023, 6, 7)),
    ("utc+6-friday-00:01", almaty(2023, 6, 2, 0, 1), D(2023, 6, 9), D(2023, 6, 8)),
]


@pytest.mark.parametrize(("submitted", "last_day", "reminder_day"), [t[1:] for t in TERMS], ids=[t[0] for t in TERMS])
def test_review_term(submitted: datetime.datetime, last_day: datetime.date, reminder_day: datetime.date) -> None:
    deadline = review_deadline(submitted.astimezone(UTC))
    assert deadline.tzinfo is UTC
    # the deadline is 24:00 of the last day (00:00 of the next), exclusive
    assert deadline == datetime.datetime.combine(last_day + datetime.timedelta(days=1), datetime.time(0), ALMATY)
    assert last_day_of_term(deadline) == last_day
    assert reminder_due(submitted) == datetime.datetime.combine(reminder_day, datetime.time(0), ALMATY)
    assert working_days_between(submitted, last_day) == 5
    assert working_days_between(submitted, reminder_day) == 4


@pytest.mark.parametrize(
    ("submitted_utc", "deadline_utc"),
    [
        # the UTC instants of the table's 23:59 / 00:01 pair: same UTC day, different terms
        (datetime.datetime(2026, 6, 4, 18, 59, tzinfo=UTC), datetime.datetime(2026, 6, 11, 19, 0, tzinfo=UTC)),
        (datetime.datetime(2026, 6, 4, 19, 1, tzinfo=UTC), datetime.datetime(2026, 6, 12, 19, 0, tzinfo=UTC)),
        (datetime.datetime(2023, 6, 1, 17, 59, tzinfo=UTC), datetime.datetime(2023, 6, 8, 18, 0, tzinfo=UTC)),
        (datetime.datetime(2023, 6, 1, 18, 1, tzinfo=UTC), datetime.datetime(2023, 6, 9, 18, 0, tzinfo=UTC)),
        (datetime.datetime(2025, 3, 20, 5, 0, tzinfo=UTC), datetime.datetime(2025, 4, 1, 19, 0, tzinfo=UTC)),
    ],
)
def test_deadline_in_utc(submitted_utc: datetime.datetime, deadline_utc: datetime.datetime) -> None:
    assert review_deadline(submitted_utc) == deadline_utc


def test_timezone_is_a_parameter() -> None:
    # 19:01 UTC on Thursday is Friday in Almaty but Thursday in UTC
    submitted = datetime.datetime(2026, 6, 4, 19, 1, tzinfo=UTC)
    assert last_day_of_term(review_deadline(submitted, "UTC"), "UTC") == D(2026, 6, 11)
    assert review_deadline(submitted, "UTC") == datetime.datetime(2026, 6, 12, 0, 0, tzinfo=UTC)
    assert last_day_of_term(review_deadline(submitted)) == D(2026, 6, 12)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (D(2024, 5, 4), True),  # a Saturday made a working day
        (D(2025, 1, 5), True),  # a Sunday made a working day
        (D(2024, 5, 8), False),  # the Wednesday made a day off in exchange
        (D(2023, 7, 7), False),  # a bridge Friday
        (D(2025, 6, 6), False),  # Kurban Ait
        (D(2026, 1, 7), False),  # Orthodox Christmas
        (D(2026, 3, 25), False),  # Nauryz moved off the weekend
        (D(2026, 3, 26), True),
        (D(2026, 6, 6), False),  # an ordinary Saturday
        (D(2022, 12, 17), False),  # a Saturday (no longer a holiday since 2022)
        (D(2021, 12, 17), False),  # Independence Day, second day
    ],
)
def test_is_working_day(day: datetime.date, working: bool) -> None:
    assert calendar_for().is_working_day(day) is working


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [
        (D(2025, 3, 20), D(2025, 4, 1), 5),
        (D(2025, 3, 20), D(2025, 3, 25), 0),  # Nauryz and the weekend between
        (D(2024, 5, 3), D(2024, 5, 6), 2),  # the working Saturday and Monday
        (D(2026, 6, 1), D(2026, 6, 1), 0),
        (D(2025, 4, 1), D(2025, 3, 20), -5),
        (D(2025, 12, 31), D(2026, 1, 12), 5),
    ],
)
def test_working_days_between(start: datetime.date, end: datetime.date, count: int) -> None:
    assert working_days_between(start, end) == count


def test_working_days_between_takes_instants_as_local_dates() -> None:
    # Thursday 23:59 Almaty .. Saturday 00:01 Almaty: only Friday is a working day
    assert working_days_between(almaty(2026, 6, 4, 23, 59), almaty(2026, 6, 6, 0, 1).astimezone(UTC)) == 1


def test_holiday_names_come_from_the_library() -> None:
    cal = WorkingCalendar()
    assert cal.holiday_name(D(2026, 3, 22))
    assert cal.holiday_name(D(2026, 6, 10)) is None


def test_naive_instants_and_datetimes_as_dates_are_refused() -> None:
    cal = calendar_for()
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.review_deadline(datetime.datetime(2026, 6, 4, 10, 0))
    with pytest.raises(TypeError):
        cal.is_working_day(datetime.datetime(2026, 6, 4, tzinfo=UTC))
    with pytest.raises(ValueError):
        cal.nth_working_day_after(D(2026, 6, 4), 0)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime.datetime(2015, 1, 1), max_value=datetime.datetime(2030, 12, 1),
                    timezones=st.just(UTC)))
def test_term_properties(submitted: datetime.datetime) -> None:
    cal = calendar_for()
    deadline = cal.review_deadline(submitted)
    local = deadline.astimezone(ALMATY)
    assert (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0)
    last = cal.last_day_of_term(deadline)
    assert cal.is_working_day(last)
    assert cal.working_days_between(cal.local_date(submitted), last) == 5
    assert submitted < cal.reminder_due(submitted) < deadline
    assert deadline - submitted >= datetime.timedelta(days=5)
