"""Analytics for the sales director, as SQL aggregates over indexed projections.

So far: the refusal report (``refusals``), over ``closures`` (every closing without a sale, kept when
the lead is reopened), so a period's figures count what happened in it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.errors import InvalidInputError
from engine.rules import minor_to_money
from engine.spec import ProcessSpec
from engine.store import closures

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

    def conditions(self, column: Any) -> list[Any]:
        end = self.effective_end
        return [*([column >= self.start] if self.start else []), *([column < end] if end else [])]

    def as_dict(self) -> dict[str, Any]:
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
        raise InvalidInputError(f"the period starts {window.start.date()}, after now ({now.isoformat()})")
    return Period(window.name, window.start, window.end, cutoff=now + dt.timedelta(microseconds=1))


def _window(now: dt.datetime, name: str, date_from: str | None, date_to: str | None) -> Period:
    if date_from or date_to:
        start = _date(date_from, "--from") if date_from else None
        end = _date(date_to, "--to") + dt.timedelta(days=1) if date_to else None
        if start and end and end <= start:
            raise InvalidInputError(f"--to {date_to} is before --from {date_from}")
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
    raise InvalidInputError(f"period '{name}' is not one of: {', '.join(PERIODS)}")


def _date(text: str, what: str) -> dt.datetime:
    try:
        return dt.datetime.combine(dt.date.fromisoformat(text.strip()), dt.time(0, 0))
    except ValueError:
        raise InvalidInputError(f"{what} {text!r} is not a date written YYYY-MM-DD") from None


def refusals(conn: Connection, specs: dict[str, ProcessSpec], window: Period, scope: list[Any], *,
             matrix_by: str | None = None, trend: bool = False) -> dict[str, Any]:
    """Refusals received in ``window``: totals, by reason, product and salesperson, optionally the
    salesperson x reason (or x product) matrix and the day-by-day and week-by-week trend."""
    where = [closures.c.kind == "refusal", *window.conditions(closures.c.closed_at), *scope]
    if specs:
        where.append(closures.c.process.in_(list(specs)))
    value = sa.func.coalesce(sa.func.sum(closures.c.value_minor), 0)

    def grouped(*columns: Any) -> list[Any]:
        return list(conn.execute(
            sa.select(*columns, sa.func.count(), value).where(*where).group_by(*columns)
            .order_by(sa.func.count().desc(), *(c.nulls_last() for c in columns))).all())

    total, total_value = conn.execute(sa.select(sa.func.count(), value).where(*where)).one()
    labels = {(p, r.id): (r.label, r.bant) for p, s in specs.items() for r in s.closure_reasons}
    out: dict[str, Any] = {
        "period": window.as_dict(),
        "total": int(total),
        "value": minor_to_money(int(total_value)),
        "by_reason": [
            {"process": p, "reason": r, "label": labels.get((p, r), (r, None))[0],
             "bant": labels.get((p, r), (r, None))[1], "count": int(n), "value": minor_to_money(int(v))}
            for p, r, n, v in grouped(closures.c.process, closures.c.reason)],
        "by_product": [{"product": k, "count": int(n), "value": minor_to_money(int(v))}
                       for k, n, v in grouped(closures.c.product)],
        "by_salesperson": [{"owner": k, "count": int(n), "value": minor_to_money(int(v))}
                           for k, n, v in grouped(closures.c.owner)],
    }
    if matrix_by is not None:
        column = {"reason": closures.c.reason, "product": closures.c.product}.get(matrix_by)
        if column is None:
            raise InvalidInputError(f"the matrix is by reason or by product, not '{matrix_by}'")
        cells = grouped(closures.c.owner, column)
        owners = sorted({c[0] or "" for c in cells})
        keys = sorted({c[1] or "" for c in cells})
        grid = {(o or "", k or ""): int(n) for o, k, n, _ in cells}
        out["matrix"] = {
            "by": matrix_by,
            "columns": keys,
            "rows": [{"owner": o, "counts": [grid.get((o, k), 0) for k in keys],
                      "total": sum(grid.get((o, k), 0) for k in keys)} for o in owners],
            "totals": [sum(grid.get((o, k), 0) for o in owners) for k in keys],
            "total": int(total),
        }
    if trend:
        out["trend"] = _trend(conn, where, window)
    return out


def _trend(conn: Connection, where: list[Any], window: Period) -> dict[str, Any]:
    """Counts per day and per ISO week with running totals; every day/week of the window is listed."""
    day = sa.func.date(closures.c.closed_at)
    per_day = {str(d)[:10]: int(n) for d, n in conn.execute(
        sa.select(day, sa.func.count()).where(*where).group_by(day).order_by(day))}
    if not per_day and window.start is None:
        return {"days": [], "weeks": []}
    end = window.effective_end
    first = window.start.date() if window.start else dt.date.fromisoformat(min(per_day))
    last = (end - dt.timedelta(seconds=1)).date() if end else dt.date.fromisoformat(max(per_day))
    days: list[dict[str, Any]] = []
    weeks: list[dict[str, Any]] = []
    running = 0
    week_running = 0
    current = first
    while current <= last:
        n = per_day.get(current.isoformat(), 0)
        running += n
        days.append({"day": current.isoformat(), "count": n, "cumulative": running})
        iso = current.isocalendar()
        label = f"{iso.year}-W{iso.week:02d}"
        if not weeks or weeks[-1]["week"] != label:
            weeks.append({"week": label, "count": 0, "cumulative": week_running})
        weeks[-1]["count"] += n
        week_running += n
        weeks[-1]["cumulative"] = week_running
        current += dt.timedelta(days=1)
    return {"days": days, "weeks": weeks}
