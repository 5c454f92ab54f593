"""``report cycle``: days from creation to win of won leads; ``cycle_days`` is also the cycle the stalled-lead
detection uses (measured once enough sales exist, else declared)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import results
from engine.reports.aggregates import SECONDS_PER_DAY, grouped_quantiles, in_days, quantiles, seconds_between
from engine.reports.asof import CURRENT, Sources
from engine.reports.periods import Period
from engine.spec import ProcessSpec
from engine.store import leads
from engine.vocab import LeadStatus

if TYPE_CHECKING:
    from engine.store.sqltypes import Condition, Expr

#: Won leads a process needs before its measured median cycle replaces the declared one (the stalled-lead
#: detection and ``report cycle``'s ``stalled_cycle``).
MIN_WON_FOR_MEASURED_CYCLE = 20

QUARTILES = (0.25, 0.5, 0.75)


def _won(process: str, rows: sa.FromClause = leads) -> list[Condition]:
    return [rows.c.process == process, rows.c.status == LeadStatus.WON]


def cycle_stats(conn: Connection, where: list[Condition], rows: sa.FromClause = leads) -> results.CycleStats:
    """Days from creation to win of the won leads matching ``where`` (which includes the won condition):
    their count, mean, quartiles (median in the middle), minimum and maximum."""
    days = seconds_between(rows.c.created_at, rows.c.closed_at)
    n, total, low, high = conn.execute(sa.select(sa.func.count(), sa.func.sum(days), sa.func.min(days),
                                                 sa.func.max(days)).where(*where)).one()
    n = int(n)
    p25, median, p75 = quantiles(conn, days, where, n, QUARTILES)
    return {"won": n, "mean_days": in_days(float(total) / n) if n else None, "median_days": in_days(median),
            "p25_days": in_days(p25), "p75_days": in_days(p75), "min_days": in_days(float(low)) if n else None,
            "max_days": in_days(float(high)) if n else None}


def measured_cycle(conn: Connection, process: str, before: dt.datetime | None = None,
                   src: Sources = CURRENT) -> tuple[float | None, int]:
    """The median days from creation to win of ``process``'s won leads (unrounded; those won ``before`` an
    instant), and how many there are; ``src``: the leads as of an instant (``asof.sources``), whose count and
    median are read as ``Sources.tally`` and ``Sources.quantiles`` read them."""
    rows = src.leads
    where = [*_won(process, rows), *([rows.c.closed_at < before] if before is not None else [])]
    counted = src.tally(conn, sa.select(sa.func.count()).where(*where), 0)
    n = int(counted[0][0]) if counted else 0
    (median,) = src.quantiles(conn, seconds_between(rows.c.created_at, rows.c.closed_at), where, n)
    return (None if median is None else median / SECONDS_PER_DAY), n


def cycle_days(conn: Connection, spec: ProcessSpec, before: dt.datetime | None = None,
               src: Sources = CURRENT) -> tuple[float, str]:
    """The cycle that marks a lead stalled: measured once enough sales exist (``before`` an instant: as of it,
    from ``src``, the leads then), else declared."""
    median, won = measured_cycle(conn, spec.id, before, src)
    if median is not None and won >= MIN_WON_FOR_MEASURED_CYCLE:
        return median, f"measured median of {won} won leads"
    return float(spec.sales_cycle_days), "declared in the process"


def cycle(conn: Connection, specs: list[ProcessSpec], window: Period, scope: list[Any],
          before: dt.datetime | None = None, src: Sources = CURRENT) -> results.Cycles:
    """The measured sales cycle of the leads won in ``window``: per process, per salesperson, per source; the
    stalled-lead detection's cycle of the wins ``before`` an instant (a report as of it), else of every win.
    ``src``: where the leads are read (``asof.sources``: as they stood at an instant, the wins then)."""
    rows = src.leads
    days = seconds_between(rows.c.created_at, rows.c.closed_at)
    out: results.Cycles = {"period": window.as_dict(), "processes": [], "by_salesperson": [], "by_source": []}
    for spec in specs:
        where = [*_won(spec.id, rows), *window.conditions(rows.c.closed_at), *scope]
        stalled, basis = cycle_days(conn, spec, before, src)
        out["processes"].append({"process": spec.id, **cycle_stats(conn, where, rows),
                                 "declared_days": spec.sales_cycle_days,
                                 "stalled_cycle": {"days": round(stalled, 1), "basis": basis}})
        out["by_salesperson"] += [{"process": spec.id, "owner": g, **stats}
                                  for g, stats in _cycles_by(conn, days, rows.c.owner, where)]
        out["by_source"] += [{"process": spec.id, "source": g, **stats}
                             for g, stats in _cycles_by(conn, days, rows.c.source, where)]
    return out


def _cycles_by(conn: Connection, days: Expr, column: Expr,
               where: list[Condition]) -> list[tuple[str | None, results.GroupCycle]]:
    """The cycle of the won leads matching ``where`` per value of ``column``: most wins first, then by name."""
    totals = {g: float(t) for g, t in conn.execute(sa.select(column, sa.func.sum(days)).where(*where)
                                                     .group_by(column))}
    rows: list[tuple[str | None, results.GroupCycle]] = [
        (g, {"won": n, "mean_days": in_days(totals[g] / n), "median_days": in_days(median)})
        for g, (n, [median]) in grouped_quantiles(conn, days, column, where).items()]
    return sorted(rows, key=lambda row: (-row[1]["won"], str(row[0] or "")))
