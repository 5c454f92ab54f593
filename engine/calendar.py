"""Business days: weekends and the public holidays of a country (the ``holidays`` package) do not count.

Convention: a deadline of N business days from a moment falls at the *end* of the
N-th business day after that moment's day (the entry day itself never counts, so
a lead entering a 1-day stage on Friday afternoon is due at the end of Monday, or
of Tuesday when Monday is a holiday). "End of the day" is 23:59:59 of that date.
"""

from __future__ import annotations

import datetime as dt
from functools import cache, lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from holidays import HolidayBase

END_OF_DAY = dt.time(23, 59, 59)


@cache
def _holidays(country: str) -> HolidayBase:
    import holidays

    return holidays.country_holidays(country)


def is_business_day(day: dt.date, country: str) -> bool:
    return day.weekday() < 5 and day not in _holidays(country)


@lru_cache(maxsize=65536)
def add_business_days(day: dt.date, days: int, country: str) -> dt.date:
    """The date ``days`` business days after ``day`` (before it when negative; 0 gives ``day`` itself)."""
    current = day
    step = dt.timedelta(days=1 if days >= 0 else -1)
    remaining = abs(days)
    while remaining > 0:
        current += step
        if is_business_day(current, country):
            remaining -= 1
    return current


def next_business_day(day: dt.date, country: str) -> dt.date:
    return add_business_days(day, 1, country)


def previous_business_day(day: dt.date, country: str) -> dt.date:
    return add_business_days(day, -1, country)


def add_business_hours(start: dt.datetime, hours: int, country: str, opens: int, closes: int) -> dt.datetime:
    """The moment ``hours`` working hours after ``start``, counting only the hours ``opens``-``closes`` of business
    days (a start outside them counts from the next opening). Four hours from Friday 15:00 with 9-17 is Monday
    11:00."""
    day, hour = start.date(), start.hour + start.minute / 60 + start.second / 3600
    if not is_business_day(day, country) or hour >= closes:
        day, hour = next_business_day(day, country), float(opens)
    hour = max(hour, float(opens))
    remaining = float(hours)
    while remaining > closes - hour:
        remaining -= closes - hour
        day, hour = next_business_day(day, country), float(opens)
    return dt.datetime.combine(day, dt.time(0, 0)) + dt.timedelta(hours=hour + remaining)


def warning_starts(deadline: dt.datetime, warning_days: int, country: str) -> dt.datetime:
    """When a deadline turns yellow: the start of its last ``warning_days`` business days.

    A deadline at the end of Wednesday with one warning day is yellow from Wednesday 00:00; with a
    weekend in between (due Monday), from Saturday 00:00, i.e. after the last business day before it.
    With no warning window it is yellow only at the deadline itself.
    """
    if warning_days <= 0:
        return deadline
    before = add_business_days(deadline.date(), -warning_days, country)
    return dt.datetime.combine(before + dt.timedelta(days=1), dt.time(0, 0))


def due_at(start: dt.datetime, days: int, country: str) -> dt.datetime:
    """The end of the ``days``-th business day after ``start``."""
    return _due_on(start.date(), days, country)


@lru_cache(maxsize=65536)
def _due_on(day: dt.date, days: int, country: str) -> dt.datetime:
    # a history import enters millions of stages over a few hundred days: each deadline is computed once
    return dt.datetime.combine(add_business_days(day, days, country), END_OF_DAY)


def last_yellow_deadline(now: dt.datetime, warning_days: int, country: str) -> dt.datetime:
    """The latest deadline that is already within its warning window at ``now``.

    For deadlines at the end of a business day (every deadline leadflow computes),
    ``warning_starts(d, w) <= now`` exactly when ``d <= last_yellow_deadline(now, w)``; the board
    uses this to count yellow leads with an index range instead of a per-row test.
    """
    if warning_days <= 0:
        return now
    day = now.date() - dt.timedelta(days=1)
    while not is_business_day(day, country):
        day -= dt.timedelta(days=1)
    return dt.datetime.combine(add_business_days(day, warning_days, country), END_OF_DAY)


def business_days_between(start: dt.date, end: dt.date, country: str) -> int:
    """Business days after ``start`` up to and including ``end`` (negative when ``end`` is earlier)."""
    if end < start:
        return -business_days_between(end, start, country)
    count = 0
    current = start
    while current < end:
        current += dt.timedelta(days=1)
        if is_business_day(current, country):
            count += 1
    return count
