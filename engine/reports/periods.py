"""The period a report covers: today, this week, this month, everything, or --from/--to dates."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine import results
from engine.errors import InvalidInputError
from engine.i18n import N_

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement

    from engine.store.sqltypes import Condition

PERIODS = ("day", "week", "month", "all")


@dataclass(frozen=True)
class Period:
    """A half-open interval [start, end) of instants; ``None`` ends are open."""

    name: str
    start: dt.datetime | None
    end: dt.datetime | None
    #: Nothing after the report's "now" counts, whatever the period's nominal end.
    cutoff: dt.datetime | None = None

    @property
    def effective_end(self) -> dt.datetime | None:
        ends = [e for e in (self.end, self.cutoff) if e is not None]
        return min(ends) if ends else None

    def conditions(self, column: ColumnElement[dt.datetime]) -> list[Condition]:
        end = self.effective_end
        return [*([column >= self.start] if self.start else []), *([column < end] if end else [])]

    def as_dict(self) -> results.Period:
        return {"name": self.name, "from": self.start.isoformat() if self.start else None,
                "to": self.end.isoformat() if self.end else None}


def period(now: dt.datetime, name: str = "month", date_from: str | None = None,
           date_to: str | None = None) -> Period:
    """The period a report covers: today, this ISO week, this month or everything; or --from/--to dates.

    Whatever the period, a report is as of ``now``: nothing after it counts (a backfilled history or a
    fixed LEADFLOW_NOW must not see its own future).
    """
    window = _window(now, name, date_from, date_to)
    if window.start is not None and window.start > now:
        raise InvalidInputError(N_("the period starts {date}, after now ({now})"), date=window.start.date(),
                                now=now.isoformat())
    return Period(window.name, window.start, window.end, cutoff=now + dt.timedelta(microseconds=1))


def _window(now: dt.datetime, name: str, date_from: str | None, date_to: str | None) -> Period:
    if date_from or date_to:
        start = _date(date_from, "--from") if date_from else None
        end = _date(date_to, "--to") + dt.timedelta(days=1) if date_to else None
        if start and end and end <= start:
            raise InvalidInputError(N_("--to {date_to} is before --from {date_from}"), date_to=date_to,
                                    date_from=date_from)
        return Period("range", start, end)
    today = dt.datetime.combine(now.date(), dt.time(0, 0))
    if name == "day":
        return Period(name, today, today + dt.timedelta(days=1))
    if name == "week":
        monday = today - dt.timedelta(days=today.weekday())
        return Period(name, monday, monday + dt.timedelta(days=7))
    if name == "month":
        first = today.replace(day=1)
        return Period(name, first, (first + dt.timedelta(days=32)).replace(day=1))
    if name == "all":
        return Period(name, None, None)
    raise InvalidInputError(N_("period '{name}' is not one of: {periods}"), name=name, periods=', '.join(PERIODS))


def _date(text: str, what: str) -> dt.datetime:
    try:
        return dt.datetime.combine(dt.date.fromisoformat(text.strip()), dt.time(0, 0))
    except ValueError:
        raise InvalidInputError(N_("{what} {text!r} is not a date written YYYY-MM-DD"), what=what, text=text) from None
