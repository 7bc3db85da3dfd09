"""Kazakhstan's working-day calendar and the §16 review term: 5 working days after submission.

Which days are working days comes from the maintained ``holidays`` library (country ``KZ``), not
from a list written here: weekends (Saturday, Sunday), public holidays including the moving ones
(Kurban Ait by the Islamic calendar, Orthodox Christmas by the Julian one), holidays that fall on
a weekend and move to the next working day, and the Government's one-off transfers (a bridge
Friday made a day off, the Saturday made a working day in exchange). Upgrading the library
updates the calendar; nothing here needs to change.

Days are counted in the Administrator's timezone (``Asia/Almaty`` by default, since 1 March 2024
UTC+5): an application submitted at 23:59 on Thursday in Almaty is a Thursday submission even
though it is 18:59 UTC.

The convention (a term in days, as the Civil Code of Kazakhstan counts them, art. 173 and 175):

* the submission day itself does not count, whether or not it is a working day; the term runs
  from the next day;
* the term is the 5 working days that follow; it ends at 24:00 local time of the 5th working day;
* :func:`review_deadline` returns that instant as an *exclusive* bound, an aware UTC datetime:
  00:00 local of the calendar day after the 5th working day. The review is on time while
  ``now < deadline`` and overdue from ``now >= deadline``. Exclusive midnights are exact at the
  one-second precision of Kubernetes timestamps (``status.reviewDeadline`` round-trips without
  loss, unlike 23:59:59.999999) and half-open intervals never overlap or leave a gap;
  :func:`last_day_of_term` gives the local date people should read ("by the end of 31 March");
* :func:`reminder_due` is 00:00 local at the start of the 4th working day after submission.

Example: submitted Thursday 20 March 2025 10:00 Almaty. Nauryz is 21–23 March and, falling on a
weekend, moves to 24 and 25 March; the working days after the submission day are 26, 27, 28, 31
March and 1 April. The deadline is 2 April 2025 00:00 Almaty (= 1 April 19:00 UTC); the reminder
is due 31 March 00:00 Almaty (the 4th working day).
"""

from __future__ import annotations

import datetime
import functools
from zoneinfo import ZoneInfo

import holidays

__all__ = [
    "DEFAULT_TIMEZONE",
    "REMINDER_WORKING_DAY",
    "REVIEW_WORKING_DAYS",
    "WorkingCalendar",
    "calendar_for",
    "last_day_of_term",
    "reminder_due",
    "review_deadline",
    "working_days_between",
]

DEFAULT_TIMEZONE = "Asia/Almaty"
"""The Administrator's timezone unless configured otherwise."""
REVIEW_WORKING_DAYS = 5
"""§16: the Administrator reviews an application within 5 working days."""
REMINDER_WORKING_DAY = 4
"""The working day on whose morning the Administrator's mailbox gets a reminder."""

_ONE_DAY = datetime.timedelta(days=1)
_MAX_SCAN_DAYS = 366  # no run of non-working days comes close; a guard against an endless loop


class WorkingCalendar:
    """Working days of one country in one timezone.

    Holds one ``holidays`` instance that fills in years lazily as dates are asked about; the
    instance is not thread-safe, so use a calendar from one thread (the operator's event loop).
    """

    def __init__(self, timezone: str | datetime.tzinfo = DEFAULT_TIMEZONE, country: str = "KZ") -> None:
        self.tz: datetime.tzinfo = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
        self.country = country
        self._holidays = holidays.country_holidays(country)

    # --- days --------------------------------------------------------------------------------------------------------

    def is_working_day(self, day: datetime.date) -> bool:
        """Neither a weekend (unless the Government moved a working day onto it) nor a public holiday."""
        return bool(self._holidays.is_working_day(_as_date(day)))

    def holiday_name(self, day: datetime.date) -> str | None:
        """The library's name of the holiday on ``day`` (``None`` on ordinary days), for explanations."""
        name = self._holidays.get(_as_date(day))
        return None if name is None else str(name)

    def local_date(self, moment: datetime.datetime) -> datetime.date:
        """The calendar date of an aware instant in this calendar's timezone."""
        return _aware(moment).astimezone(self.tz).date()

    def start_of_day(self, day: datetime.date) -> datetime.datetime:
        """00:00 local of ``day``, as an aware UTC datetime."""
        local = datetime.datetime.combine(_as_date(day), datetime.time(0), tzinfo=self.tz)
        return local.astimezone(datetime.UTC)

    def end_of_day(self, day: datetime.date) -> datetime.datetime:
        """24:00 local of ``day`` (= 00:00 of the next day), the exclusive end of the day, in UTC."""
        return self.start_of_day(_as_date(day) + _ONE_DAY)

    def nth_working_day_after(self, day: datetime.date, n: int) -> datetime.date:
        """The ``n``-th working day strictly after ``day`` (``day`` itself never counts); ``n >= 1``."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        current, found = _as_date(day), 0
        for _ in range(n * 7 + _MAX_SCAN_DAYS):
            current += _ONE_DAY
            if self.is_working_day(current):
                found += 1
                if found == n:
                    return current
        raise RuntimeError(f"no {n} working days within a year after {day}")  # pragma: no cover

    def working_days_between(self, start: datetime.date, end: datetime.date) -> int:
        """Working days ``d`` with ``start < d <= end``: how many working days of the term have begun
        by ``end`` for a term that started the day after ``start``. Negative when ``end < start``."""
        first, last = _as_date(start), _as_date(end)
        if last < first:
            return -self.working_days_between(last, first)
        count, current = 0, first
        while current < last:
            current += _ONE_DAY
            count += self.is_working_day(current)
        return count

    # --- the review term (§16) ----------------------------------------------------------------------------------------

    def review_deadline(self, submitted_at: datetime.datetime, days: int = REVIEW_WORKING_DAYS) -> datetime.datetime:
        """The exclusive end of the review term: 24:00 local of the ``days``-th working day after the
        submission day, in UTC (see the module description)."""
        last = self.nth_working_day_after(self.local_date(submitted_at), days)
        return self.end_of_day(last)

    def reminder_due(self, submitted_at: datetime.datetime, day: int = REMINDER_WORKING_DAY) -> datetime.datetime:
        """00:00 local at the start of the ``day``-th working day after the submission day, in UTC."""
        return self.start_of_day(self.nth_working_day_after(self.local_date(submitted_at), day))

    def last_day_of_term(self, deadline: datetime.datetime) -> datetime.date:
        """The local date on which a term ending (exclusively) at ``deadline`` has its last day."""
        return self.local_date(_aware(deadline) - datetime.timedelta(microseconds=1))


@functools.lru_cache(maxsize=8)
def calendar_for(timezone: str = DEFAULT_TIMEZONE, country: str = "KZ") -> WorkingCalendar:
    """A shared calendar per timezone and country (one ``holidays`` instance fills years once)."""
    return WorkingCalendar(timezone, country)


def review_deadline(submitted_at: datetime.datetime, timezone: str = DEFAULT_TIMEZONE) -> datetime.datetime:
    """The §16 review deadline in Kazakhstan's calendar; see :meth:`WorkingCalendar.review_deadline`."""
    return calendar_for(timezone).review_deadline(submitted_at)


def reminder_due(submitted_at: datetime.datetime, timezone: str = DEFAULT_TIMEZONE) -> datetime.datetime:
    """When the Administrator is reminded; see :meth:`WorkingCalendar.reminder_due`."""
    return calendar_for(timezone).reminder_due(submitted_at)


def last_day_of_term(deadline: datetime.datetime, timezone: str = DEFAULT_TIMEZONE) -> datetime.date:
    """The local last day of a term ending at ``deadline``; see :meth:`WorkingCalendar.last_day_of_term`."""
    return calendar_for(timezone).last_day_of_term(deadline)


def working_days_between(
    start: datetime.date | datetime.datetime,
    end: datetime.date | datetime.datetime,
    timezone: str = DEFAULT_TIMEZONE,
) -> int:
    """Working days ``d`` with ``start < d <= end``; aware datetimes are taken as their local date."""
    cal = calendar_for(timezone)
    first = cal.local_date(start) if isinstance(start, datetime.datetime) else start
    last = cal.local_date(end) if isinstance(end, datetime.datetime) else end
    return cal.working_days_between(first, last)


def _as_date(day: datetime.date) -> datetime.date:
    if isinstance(day, datetime.datetime):
        raise TypeError("give a date; convert an instant with WorkingCalendar.local_date() first")
    return day


def _aware(moment: datetime.datetime) -> datetime.datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the instant must be timezone-aware")
    return moment
