"""Analytics for the sales director, as SQL aggregates over indexed projections.

- ``refusals``: over ``closures`` (every closing without a sale, kept when the lead is reopened), so a
  period's figures count what happened in it;
- ``funnel``: over ``lead_stages`` (every stage each lead reached, once, with its time there);
- ``cycle``: creation to win of won leads; ``measured_cycle`` is also the stalled-lead detection's cycle;
- ``salespeople``: held, won, lost, red, and the clients a colleague won after them;
- ``forecast``: open leads x the probability and time to a win measured from the closed history.

Medians and quartiles are read by the database too (``quantiles``), never by pulling rows into Python.
Definitions, formulas and minimums: docs/reports.md.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import results
from engine.errors import InvalidInputError
from engine.rules import minor_to_money
from engine.spec import ProcessSpec
from engine.store import closures, lead_stages, leads, ownerships, stage_counts, users
from engine.vocab import CLOSED_STATUSES, ClosureKind, EventKind, LeadStatus, Role

#: Won leads a process needs before its measured median cycle replaces the declared one (the stalled-lead
#: detection and ``report cycle``'s ``stalled_cycle``).
MIN_WON_FOR_MEASURED_CYCLE = 20
#: Closed leads (won or lost) that reached a stage before the forecast trusts their win rate over the
#: declared probability; won leads from a stage before it trusts their median time to the win.
MIN_HISTORY = 20
SECONDS_PER_DAY = 86400

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
            raise InvalidInputError(f"the matrix is by reason or by product, not '{matrix_by}'")
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


def _trend(conn: Connection, where: list[Any], window: Period) -> results.Trend:
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


# -- shared SQL: durations and quantiles ----------------------------------------------------------

def seconds_between(conn: Connection, start: Any, end: Any) -> Any:
    """SQL: whole seconds from ``start`` to ``end`` (two date-time expressions)."""
    if conn.dialect.name == "postgresql":
        return sa.cast(sa.func.round(sa.func.extract("epoch", end - start)), sa.BigInteger)
    return sa.cast(sa.func.round((sa.func.julianday(end) - sa.func.julianday(start)) * SECONDS_PER_DAY),
                   sa.Integer)


def _interpolate(low: float, high: float | None, fraction: float) -> float:
    return low if high is None or fraction == 0 else low + (high - low) * fraction


def quantiles(conn: Connection, value: Any, where: list[Any], count: int,
              qs: Iterable[float] = (0.5,)) -> list[float | None]:
    """The ``qs`` quantiles of ``value`` over the ``count`` rows matching ``where`` (linear interpolation, as
    PostgreSQL's ``percentile_cont``: the median of an even count is the mean of the middle two).

    Each is one ``ORDER BY value LIMIT 2 OFFSET k`` query: with an index ordered by ``value`` after the
    equality conditions the database walks k index entries and sorts nothing.
    """
    out: list[float | None] = []
    for q in qs:
        if count == 0:
            out.append(None)
            continue
        position = q * (count - 1)
        low = math.floor(position)
        pair = [float(v) for v in conn.execute(sa.select(value).where(*where).order_by(value)
                                               .limit(2).offset(low)).scalars()]
        out.append(_interpolate(pair[0], pair[1] if len(pair) > 1 else None, position - low))
    return out


def grouped_quantiles(conn: Connection, value: Any, group: Any, where: list[Any],
                      qs: Iterable[float] = (0.5,)) -> dict[Any, tuple[int, list[float]]]:
    """Per value of ``group``: the row count and the ``qs`` quantiles of ``value``, in one query.

    Window functions number each group's rows by ``value`` and only the rows at the quantiles' positions leave
    the database (SQLite >= 3.25 and PostgreSQL).
    """
    qs = list(qs)
    rn = sa.func.row_number().over(partition_by=group, order_by=value).label("rn")
    n = sa.func.count().over(partition_by=group).label("n")
    ranked = sa.select(group.label("g"), value.label("v"), rn, n).where(*where).subquery()
    wanted = []
    for q in qs:
        # the 1-based row of floor(q * (n - 1)), in integer arithmetic: casting a fraction rounds on PostgreSQL
        share = Fraction(q).limit_denominator(1000)
        first = (ranked.c.n - 1) * share.numerator // share.denominator + 1
        wanted += [first, first + 1]
    rows: dict[Any, dict[int, float]] = {}
    sizes: dict[Any, int] = {}
    for g, v, rank, size in conn.execute(sa.select(ranked.c.g, ranked.c.v, ranked.c.rn, ranked.c.n)
                                         .where(sa.or_(*(ranked.c.rn == w for w in wanted)))):
        rows.setdefault(g, {})[int(rank)] = float(v)
        sizes[g] = int(size)
    out: dict[Any, tuple[int, list[float]]] = {}
    for g, at in rows.items():
        size = sizes[g]
        values = []
        for q in qs:
            position = q * (size - 1)
            low = math.floor(position)
            values.append(_interpolate(at[low + 1], at.get(low + 2), position - low))
        out[g] = (size, values)
    return out


def _days(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / SECONDS_PER_DAY, 2)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# -- the funnel --------------------------------------------------------------------------------------

def funnel(conn: Connection, spec: ProcessSpec, window: Period, scope: list[Any],
           lead_scope: list[Any]) -> results.Funnel:
    """The cohort of ``spec``'s leads created in ``window``: how many reached each stage, moved on from it
    (advanced, or won from the won stage), the median days spent in it, and how many were won.

    ``scope`` filters ``lead_stages``, ``lead_scope`` the ``leads`` (the same team/owner conditions).
    """
    ls = lead_stages.c
    cohort = [ls.process == spec.id, *window.conditions(ls.created_at), *scope]
    outcomes = {status: int(n) for status, n in conn.execute(
        sa.select(leads.c.status, sa.func.count())
        .where(leads.c.process == spec.id, *window.conditions(leads.c.created_at), *lead_scope)
        .group_by(leads.c.status))}
    size = sum(outcomes.values())
    counted = {stage: (int(reached), int(now), int(moved or 0)) for stage, reached, now, moved in conn.execute(
        sa.select(ls.stage, sa.func.count(), sa.func.count(ls.stay_started_at),
                  sa.func.sum(sa.case((ls.moved_on, 1), else_=0)))
        .where(*cohort).group_by(ls.stage))}
    names = {s.id: s.name for s in spec.stages}
    order = [*spec.stage_ids, *sorted(set(counted) - set(names))]  # stages an older version had, last
    stages: list[results.FunnelStage] = []
    for stage in order:
        reached, now, moved = counted.get(stage, (0, 0, 0))
        finished = reached - now
        (median,) = quantiles(conn, ls.seconds, [*cohort, ls.stage == stage, ls.stay_started_at.is_(None)],
                              finished)
        stages.append({"stage": stage, "name": names.get(stage, stage), "retired": stage not in names,
                       "reached": reached, "share": _ratio(reached, size), "in_stage": now, "moved_on": moved,
                       "conversion": _ratio(moved, reached), "median_days": _days(median), "measured": finished})
    won = outcomes.get(LeadStatus.WON, 0)
    return {"process": spec.id, "title": spec.title, "leads": size,
            "open": outcomes.get(LeadStatus.OPEN, 0), "won": won, "lost": outcomes.get(LeadStatus.LOST, 0),
            "conversion": _ratio(won, size), "stages": stages}


# -- the sales cycle ---------------------------------------------------------------------------------

QUARTILES = (0.25, 0.5, 0.75)


def _won(process: str) -> list[Any]:
    return [leads.c.process == process, leads.c.status == LeadStatus.WON]


def _cycle_seconds(conn: Connection, where: list[Any], qs: Iterable[float] = QUARTILES
                   ) -> tuple[int, float, float, float, list[float | None]]:
    days = seconds_between(conn, leads.c.created_at, leads.c.closed_at)
    n, total, low, high = conn.execute(sa.select(sa.func.count(), sa.func.sum(days), sa.func.min(days),
                                                 sa.func.max(days)).where(*where)).one()
    return int(n), float(total or 0), float(low or 0), float(high or 0), quantiles(conn, days, where, int(n), qs)


def cycle_stats(conn: Connection, where: list[Any]) -> results.CycleStats:
    """Days from creation to win of the won leads matching ``where`` (which includes the won condition):
    their count, mean, quartiles (median in the middle), minimum and maximum."""
    n, total, low, high, (p25, median, p75) = _cycle_seconds(conn, where)
    return {"won": n, "mean_days": _days(total / n) if n else None, "median_days": _days(median),
            "p25_days": _days(p25), "p75_days": _days(p75), "min_days": _days(low) if n else None,
            "max_days": _days(high) if n else None}


def measured_cycle(conn: Connection, process: str) -> tuple[float | None, int]:
    """The median days from creation to win of ``process``'s won leads (unrounded), and how many there are."""
    n, _, _, _, (median,) = _cycle_seconds(conn, _won(process), (0.5,))
    return (None if median is None else median / SECONDS_PER_DAY), n


def cycle_days(conn: Connection, spec: ProcessSpec) -> tuple[float, str]:
    """The cycle that marks a lead stalled: measured once enough sales exist, else declared."""
    median, won = measured_cycle(conn, spec.id)
    if median is not None and won >= MIN_WON_FOR_MEASURED_CYCLE:
        return median, f"measured median of {won} won leads"
    return float(spec.sales_cycle_days), "declared in the process"


def cycle(conn: Connection, specs: list[ProcessSpec], window: Period, scope: list[Any]) -> results.Cycles:
    """The measured sales cycle of the leads won in ``window``: per process, per salesperson, per source."""
    days = seconds_between(conn, leads.c.created_at, leads.c.closed_at)
    out: results.Cycles = {"period": window.as_dict(), "processes": [], "by_salesperson": [], "by_source": []}
    for spec in specs:
        where = [*_won(spec.id), *window.conditions(leads.c.closed_at), *scope]
        stalled, basis = cycle_days(conn, spec)
        out["processes"].append({"process": spec.id, **cycle_stats(conn, where),
                                 "declared_days": spec.sales_cycle_days,
                                 "stalled_cycle": {"days": round(stalled, 1), "basis": basis}})
        out["by_salesperson"] += [{"process": spec.id, "owner": g, **stats}
                                  for g, stats in _cycles_by(conn, days, leads.c.owner, where)]
        out["by_source"] += [{"process": spec.id, "source": g, **stats}
                             for g, stats in _cycles_by(conn, days, leads.c.source, where)]
    return out


def _cycles_by(conn: Connection, days: Any, column: Any,
               where: list[Any]) -> list[tuple[str | None, results.GroupCycle]]:
    """The cycle of the won leads matching ``where`` per value of ``column``: most wins first, then by name."""
    totals = {g: float(t) for g, t in conn.execute(sa.select(column, sa.func.sum(days)).where(*where)
                                                     .group_by(column))}
    rows: list[tuple[str | None, results.GroupCycle]] = [
        (g, {"won": n, "mean_days": _days(totals[g] / n), "median_days": _days(median)})
        for g, (n, [median]) in grouped_quantiles(conn, days, column, where).items()]
    return sorted(rows, key=lambda row: (-row[1]["won"], str(row[0] or "")))


# -- salespeople ---------------------------------------------------------------------------------------

def salespeople(conn: Connection, specs: list[ProcessSpec], window: Period, now: dt.datetime, *,
                team: str | None, owner: str | None) -> results.Salespeople:
    """Per salesperson: open leads held now, leads won and lost in ``window``, the conversion and the average
    cycle of those, red leads now, and the leads they gave up in ``window`` (closed without a sale, or rotated
    away) whose client a colleague won afterwards."""
    processes = [s.id for s in specs]

    def scoped(table: sa.Table, *, owner_column: Any = None) -> list[Any]:
        column = table.c.owner if owner_column is None else owner_column
        return [*([table.c.team == team] if team is not None and "team" in table.c else []),
                *([column == owner] if owner is not None else []), table.c.process.in_(processes)]

    people: dict[str, Counter[str]] = {}  # per salesperson, the figures the queries add up

    def row(name: str) -> Counter[str]:
        return people.setdefault(name, Counter())

    query = sa.select(users.c.name).where(users.c.role == Role.SALESPERSON)
    if team is not None:
        query = query.where(users.c.team == team)
    if owner is not None:
        query = query.where(users.c.name == owner)
    for (name,) in conn.execute(query):
        row(name)
    for name, n, value in conn.execute(
            sa.select(stage_counts.c.owner, sa.func.sum(stage_counts.c.leads), sa.func.sum(stage_counts.c.value_minor))
            .where(stage_counts.c.owner != "", *scoped(stage_counts)).group_by(stage_counts.c.owner)):
        if n:
            tally = row(name)
            tally["held"] += int(n)
            tally["held_value"] += int(value)
    # won and lost per owner in the order of ix_leads_closed (process, status, owner): no sort
    days = sa.case((leads.c.status == LeadStatus.WON, seconds_between(conn, leads.c.created_at, leads.c.closed_at)))
    for _, status, name, n, value, total_seconds in conn.execute(
            sa.select(leads.c.process, leads.c.status, leads.c.owner, sa.func.count(),
                      sa.func.sum(leads.c.value_minor), sa.func.sum(days))
            .where(leads.c.status.in_(CLOSED_STATUSES), leads.c.owner.is_not(None),
                   *window.conditions(leads.c.closed_at), *scoped(leads))
            .group_by(leads.c.process, leads.c.status, leads.c.owner)):
        tally = row(name)
        if status == LeadStatus.WON:
            tally["won"] += int(n)
            tally["won_value"] += int(value or 0)
            tally["cycle_seconds"] += int(total_seconds)
        else:
            tally["lost"] += int(n)
    for name, n in conn.execute(
            sa.select(leads.c.owner, sa.func.count())
            .where(leads.c.status == LeadStatus.OPEN, leads.c.red_at <= now, leads.c.owner.is_not(None), *scoped(leads))
            .group_by(leads.c.owner)):
        row(name)["red"] = int(n)
    for name, (gave_up, won_by_colleague) in _given_up(conn, window, scoped, processes).items():
        tally = row(name)
        tally["gave_up"], tally["won_by_colleague"] = gave_up, won_by_colleague
    return {"period": window.as_dict(),
            "salespeople": sorted((_salesperson(name, t) for name, t in people.items()),
                                  key=lambda p: (-p["won_by_colleague"], p["owner"]))}


def _salesperson(owner: str, t: Counter[str]) -> results.Salesperson:
    won = t["won"]
    return {"owner": owner, "held": t["held"], "held_value": minor_to_money(t["held_value"]), "won": won,
            "won_value": minor_to_money(t["won_value"]), "lost": t["lost"], "conversion": _ratio(won, won + t["lost"]),
            "mean_cycle_days": _days(t["cycle_seconds"] / won) if won else None, "red": t["red"],
            "gave_up": t["gave_up"], "won_by_colleague": t["won_by_colleague"]}


def _given_up(conn: Connection, window: Period, scoped: Any, processes: list[str]) -> dict[str, list[int]]:
    """Per salesperson, [leads given up, of which a colleague won the client afterwards], given up in ``window``.

    Giving up is closing a lead without a sale, or having it rotated to a colleague (a recalled lead leaves with
    the next rotation); a manager's plain reassignment is not. Each lead counts once per way (a lead both closed
    by them and, another time, rotated away from them counts twice in the first figure).

    "A colleague won the client" is a lead of the same client (the same lead, or a later one) won by a different
    salesperson after that moment. That count starts from the wins (a small share of the leads) and looks up each
    won client's earlier closings and rotations by client (there is deliberately no index on ``ownerships.how``:
    with one, a database without planner statistics looked up every win for every rotation).
    """
    lead_of = leads.alias("rotated_lead")
    winner = leads.alias("winner")
    previous = ownerships.alias("previous")
    earlier_owner = (sa.select(previous.c.owner)
                     .where(previous.c.client_id == ownerships.c.client_id, previous.c.lead_id == ownerships.c.lead_id,
                            previous.c.id < ownerships.c.id)
                     .order_by(previous.c.id.desc()).limit(1).scalar_subquery())
    closed = [closures.c.owner.is_not(None), *window.conditions(closures.c.closed_at), *scoped(closures)]
    rotated = [ownerships.c.how == EventKind.ROTATED, *window.conditions(ownerships.c.started_at),
               *scoped(lead_of, owner_column=earlier_owner)]
    # The wins, materialised first so that every plan starts from them (with planner statistics SQLite otherwise
    # walked all closings and looked a winner up for each: 5.5 s at a million leads instead of 0.4 s).
    wins = (sa.select(winner.c.client_id, winner.c.owner, winner.c.closed_at)
            .where(winner.c.process.in_(processes), winner.c.status == LeadStatus.WON,
                   *([winner.c.closed_at < window.cutoff] if window.cutoff else []))
            .cte("wins"))
    if _materialized_ctes(conn):
        wins = wins.prefix_with("MATERIALIZED")
    closings = closures.c.owner.label("owner"), closures.c.lead_id.label("lead_id")
    rotations = earlier_owner.label("owner"), ownerships.c.lead_id.label("lead_id")
    # leads closed by each owner: distinct leads in the order of ix_closures_owner (process, owner, lead_id), no sort
    per_lead = (sa.select(closures.c.process, closures.c.owner, closures.c.lead_id).where(*closed)
                .group_by(closures.c.process, closures.c.owner, closures.c.lead_id).subquery())
    closed_leads = sa.select(per_lead.c.owner, sa.func.count()).group_by(per_lead.c.owner)
    rotated_away = sa.select(*rotations).select_from(
        ownerships.join(lead_of, lead_of.c.id == ownerships.c.lead_id)).where(*rotated).subquery()
    rotated_leads = (sa.select(rotated_away.c.owner, sa.func.count(sa.distinct(rotated_away.c.lead_id)))
                     .where(rotated_away.c.owner.is_not(None)).group_by(rotated_away.c.owner))
    out: dict[str, list[int]] = {}
    for query in (closed_leads, rotated_leads):
        for name, n in conn.execute(query):
            out.setdefault(name, [0, 0])[0] += int(n)
    won_after = (
        sa.select(*closings).select_from(wins.join(closures, closures.c.client_id == wins.c.client_id))
        .where(*closed, closures.c.owner != wins.c.owner, closures.c.closed_at < wins.c.closed_at),
        sa.select(*rotations).select_from(
            wins.join(ownerships, ownerships.c.client_id == wins.c.client_id)
            .join(lead_of, lead_of.c.id == ownerships.c.lead_id))
        .where(*rotated, earlier_owner != wins.c.owner, ownerships.c.started_at < wins.c.closed_at))
    given = sa.union_all(*won_after).subquery()
    for name, n in conn.execute(sa.select(given.c.owner, sa.func.count(sa.distinct(given.c.lead_id)))
                                .where(given.c.owner.is_not(None)).group_by(given.c.owner)):
        out.setdefault(name, [0, 0])[1] = int(n)
    return out


def _materialized_ctes(conn: Connection) -> bool:
    """``WITH x AS MATERIALIZED``: PostgreSQL 12+ and SQLite 3.35+ (older SQLite plans without the hint)."""
    if conn.dialect.name == "postgresql":
        return True
    version = getattr(conn.dialect.dbapi, "sqlite_version_info", (0,))
    return bool(version >= (3, 35))


# -- the forecast --------------------------------------------------------------------------------------

def _prior(spec: ProcessSpec, stage: str) -> float:
    """Where neither history nor the process gives a probability: by position, 1/(n+1) at the first of n stages
    up to n/(n+1) at the last (a stage the latest version no longer has counts as a first stage)."""
    index = spec.stage_ids.index(stage) if stage in spec.stage_ids else 0
    return (index + 1) / (len(spec.stages) + 1)


def _declared_days(spec: ProcessSpec, stage: str) -> float:
    """The declared cycle's share still ahead of a lead in ``stage``: all of it from the first of n stages,
    (n - i) / n of it from the i-th (0-based)."""
    index = spec.stage_ids.index(stage) if stage in spec.stage_ids else 0
    return spec.sales_cycle_days * (len(spec.stages) - index) / len(spec.stages)


def estimates(conn: Connection, spec: ProcessSpec, cutoff: dt.datetime | None) -> dict[str, results.Estimate]:
    """Per stage of ``spec`` (and any stage an open lead is in): the probability of winning from it and the days
    from entering it to the win, each with its method and the number of historical leads it rests on."""
    ls = lead_stages.c
    closed = [ls.process == spec.id, ls.status.in_(CLOSED_STATUSES), *([ls.closed_at < cutoff] if cutoff else [])]
    history: dict[str, dict[str, int]] = {}
    for stage, status, n in conn.execute(sa.select(ls.stage, ls.status, sa.func.count()).where(*closed)
                                         .group_by(ls.stage, ls.status)):
        history.setdefault(stage, {})[status] = int(n)
    to_win = seconds_between(conn, ls.entered_at, ls.closed_at)
    out: dict[str, results.Estimate] = {}
    for stage in [*spec.stage_ids, *sorted(set(history) - set(spec.stage_ids))]:
        won = history.get(stage, {}).get(LeadStatus.WON, 0)
        n = won + history.get(stage, {}).get(LeadStatus.LOST, 0)
        # one small sort per stage (its won rows are one range of ix_lead_stages_outcome): cheaper than a window
        (median,) = quantiles(conn, to_win, [*closed, ls.stage == stage, ls.status == LeadStatus.WON],
                              won if won >= MIN_HISTORY else 0)
        declared = spec.stage(stage).probability if spec.stage(stage) else None  # type: ignore[union-attr]
        if n >= MIN_HISTORY:
            probability, method = won / n, "measured"
        elif declared is not None:
            probability, method = declared, "declared"
        else:
            probability, method = _prior(spec, stage), "prior"
        if median is not None:
            days, days_method = median / SECONDS_PER_DAY, "measured"
        else:
            days, days_method = _declared_days(spec, stage), "declared"
        out[stage] = {"stage": stage, "probability": round(probability, 4), "probability_method": method,
                      "history": n, "won": won, "days_to_win": round(days, 2), "days_method": days_method}
    return out


def _month(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def forecast(conn: Connection, spec: ProcessSpec, now: dt.datetime, months: int, scope: list[Any],
             cutoff: dt.datetime | None) -> results.Forecast:
    """Expected wins and value per month for ``months`` months from this one, from the open leads in ``scope``.

    A lead in stage S counts ``p(S)`` wins and ``p(S) x value``, in the month of the day it entered S plus S's
    days to the win (rounded to whole days); a lead already past that day is expected this month.
    """
    per_stage = estimates(conn, spec, cutoff)
    first = now.date().replace(day=1)
    labels = [_month(_add_months(first, i)) for i in range(months)]
    buckets = {label: _Bucket() for label in [*labels, "later"]}
    held = {stage: _Bucket() for stage in per_stage}
    entered = sa.func.date(leads.c.stage_entered_at)
    for stage, day, n, value in conn.execute(
            sa.select(leads.c.stage, entered, sa.func.count(), sa.func.coalesce(sa.func.sum(leads.c.value_minor), 0))
            .where(leads.c.process == spec.id, leads.c.status == LeadStatus.OPEN, *scope)
            .group_by(leads.c.stage, entered)):
        if stage not in per_stage:
            per_stage[stage] = _unknown_stage(spec, stage)
            held[stage] = _Bucket()
        estimate = per_stage[stage]
        start = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day)[:10])
        label = _month(max(start + dt.timedelta(days=round(estimate["days_to_win"])), now.date()))
        p = estimate["probability"]
        buckets[label if label in buckets else "later"].add(int(n), int(value), p)
        held[stage].add(int(n), int(value), p)
    return {"process": spec.id, "title": spec.title, "currency": spec.currency,
            "stages": [{**e, "open": held[s].leads, **held[s].expected()} for s, e in per_stage.items()],
            "months": [{"month": label, "leads": buckets[label].leads, **buckets[label].expected()}
                       for label in labels],
            "later": {"leads": buckets["later"].leads, **buckets["later"].expected()}}


@dataclass
class _Bucket:
    leads: int = 0
    value: int = 0
    wins: float = 0.0
    expected_minor: float = 0.0

    def add(self, n: int, value: int, probability: float) -> None:
        self.leads += n
        self.value += value
        self.wins += n * probability
        self.expected_minor += value * probability

    def expected(self) -> results.Expected:
        return {"value": minor_to_money(self.value), "expected_wins": round(self.wins, 2),
                "expected_value": minor_to_money(round(self.expected_minor))}


def _unknown_stage(spec: ProcessSpec, stage: str) -> results.Estimate:
    """An open lead in a stage with neither history nor a place in the latest version: the prior."""
    return {"stage": stage, "probability": round(_prior(spec, stage), 4), "probability_method": "prior",
            "history": 0, "won": 0, "days_to_win": round(_declared_days(spec, stage), 2), "days_method": "declared"}
