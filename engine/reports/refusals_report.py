"""``report refusals``: the refusals of a period, over ``closures`` (every closing without a sale, kept when
the lead is reopened), so a period's figures count what happened in it; optionally a matrix and the trend."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import results
from engine.errors import InvalidInputError
from engine.i18n import N_
from engine.reports.periods import Period
from engine.rules import minor_to_money
from engine.spec import ProcessSpec
from engine.store import closures
from engine.vocab import ClosureKind

if TYPE_CHECKING:
    from engine.store.sqltypes import Condition


def refusals(conn: Connection, specs: dict[str, ProcessSpec], window: Period, scope: list[Condition], *,
             matrix_by: str | None = None, trend: bool = False) -> results.RefusalCounts:
    """Refusals received in ``window``: totals, by reason, product and salesperson, optionally the
    salesperson x reason (or x product) matrix and the day-by-day and week-by-week trend."""
    where = [closures.c.kind == ClosureKind.REFUSAL, *window.conditions(closures.c.closed_at), *scope]
    if specs:
        where.append(closures.c.process.in_(list(specs)))
    # One scan of the covering index: counts and values per (process, reason, product, owner), a few hundred
    # groups at most, from which every breakdown below is summed.
    keys = (closures.c.process, closures.c.reason, closures.c.product, closures.c.owner)
    cells = [(p, r, prod, o, int(n), int(v)) for p, r, prod, o, n, v in conn.execute(
        sa.select(*keys, sa.func.count(), sa.func.coalesce(sa.func.sum(closures.c.value_minor), 0))
        .where(*where).group_by(*keys))]

    def grouped(*index: int) -> list[tuple[Any, ...]]:
        sums: dict[tuple[Any, ...], list[int]] = {}
        for cell in cells:
            entry = sums.setdefault(tuple(cell[i] for i in index), [0, 0])
            entry[0] += cell[4]
            entry[1] += cell[5]
        return [(*k, n, v) for k, (n, v) in sorted(sums.items(), key=lambda kv: (
            -kv[1][0], *((k is None, k or "") for k in kv[0])))]

    total, total_value = sum(c[4] for c in cells), sum(c[5] for c in cells)
    labels = {(p, r.id): (r.label, r.bant) for p, s in specs.items() for r in s.closure_reasons}
    out: results.RefusalCounts = {
        "period": window.as_dict(),
        "total": total,
        "value": minor_to_money(total_value),
        "by_reason": [
            {"process": p, "reason": r, "label": labels.get((p, r), (r, None))[0],
             "bant": labels.get((p, r), (r, None))[1], "count": n, "value": minor_to_money(v)}
            for p, r, n, v in grouped(0, 1)],
        "by_product": [{"product": k, "count": n, "value": minor_to_money(v)} for k, n, v in grouped(2)],
        "by_salesperson": [{"owner": k, "count": n, "value": minor_to_money(v)} for k, n, v in grouped(3)],
    }
    if matrix_by is not None:
        column = {"reason": 1, "product": 2}.get(matrix_by)
        if column is None:
            raise InvalidInputError(N_("the matrix is by reason or by product, not '{matrix_by}'"), matrix_by=matrix_by)
        matrix = grouped(3, column)
        owners = sorted({c[0] or "" for c in matrix})
        columns = sorted({c[1] or "" for c in matrix})
        grid: dict[tuple[str, str], int] = {}
        for o, k, n, _ in matrix:
            grid[(o or "", k or "")] = grid.get((o or "", k or ""), 0) + n
        out["matrix"] = {
            "by": matrix_by,
            "columns": columns,
            "rows": [{"owner": o, "counts": [grid.get((o, k), 0) for k in columns],
                      "total": sum(grid.get((o, k), 0) for k in columns)} for o in owners],
            "totals": [sum(grid.get((o, k), 0) for o in owners) for k in columns],
            "total": total,
        }
    if trend:
        out["trend"] = _trend(conn, where, window)
    return out


def _trend(conn: Connection, where: list[Condition], window: Period) -> results.Trend:
    """Counts per day and per ISO week with running totals; every day/week of the window is listed."""
    day = sa.func.date(closures.c.closed_at)
    per_day = {str(d)[:10]: int(n) for d, n in conn.execute(
        sa.select(day, sa.func.count()).where(*where).group_by(day).order_by(day))}
    if not per_day and window.start is None:
        return {"days": [], "weeks": []}
    end = window.effective_end
    first = window.start.date() if window.start else dt.date.fromisoformat(min(per_day))
    last = (end - dt.timedelta(seconds=1)).date() if end else dt.date.fromisoformat(max(per_day))
    days: list[results.TrendDay] = []
    weeks: list[results.TrendWeek] = []
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
