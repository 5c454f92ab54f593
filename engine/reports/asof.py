"""The leads and ``lead_stages`` as they stood at a past instant, for the reports given ``as_of``.

A lead created by the instant whose columns did not change after it stands now as it stood then, and a lead created
after it did not exist: so the reports read the tables themselves, as the leads created by then (``created_at``,
which ``lead_stages`` repeats and most of the reports' covering indexes hold: ``filtered``), but for the leads
created by then whose current span began after the instant (``changed``: one range of ``ix_lead_spans_at``). Those
are read from the past the write path keeps (``store.history``), once per report into temporary tables beside their
rows now: their columns then are their span going on at the instant (``started_at <= T AND (ended_at IS NULL OR
ended_at > T)``), their ``lead_stages`` then their stays begun by the instant (``lead_stays``), added up per stage
as ``engine.visits`` adds them (the first entry, the stay going on then, the seconds and moving on of those ended by
then), beside their columns then. The leads then are the ``leads`` rows of the others beside the spans then of
these, and ``lead_stages`` likewise (a ``UNION ALL`` each). The counts and sums a report groups (``Sources.tally``)
are computed as today's, on the tables, then corrected: the changed leads' rows now taken away and their rows then
added back, three queries of which only the first is large, and it reads the same covering index as today's report;
a median is read from a window of the table's sorted values around its position, merged with the changed leads' rows
now (taken out) and then (put in), less the values both share (``Sources.quantiles``). So a report as of an instant
costs about what today's does, plus the leads that existed then and changed since. Only the task rows are not kept
over time: a report asks for the tasks of the few leads it lists (``Sources.open_tasks``), replayed from their
events when they have one after the instant. Without ``as_of`` the reports read the tables themselves (``CURRENT``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import FromClause, visitors

from engine import clock
from engine.errors import InvalidInputError
from engine.i18n import N_
from engine.reports.aggregates import quantiles
from engine.state import SpecLookup
from engine.store import SPAN_ATTRS, History, events, lead_spans, lead_stages, lead_stays, lead_tasks, leads, read_logs
from engine.store.driver import CHUNK
from engine.vocab import TaskStatus

if TYPE_CHECKING:
    from engine.store.sqltypes import Condition, Expr

#: A lead's open tasks per (lead, stage), by deadline: (task id, due_at).
OpenTasks = dict[tuple[int, str], list[tuple[str, dt.datetime | None]]]


@dataclass(frozen=True)
class Sources:
    """Where a report reads the leads and the stages they reached: the tables, or their state at an instant."""

    leads: FromClause
    lead_stages: FromClause
    #: the instant (None: now, the tables themselves)
    at: dt.datetime | None = None
    specs: SpecLookup | None = None
    #: an instant's parts (``_sources_at``): per source above, the table itself, the rows in it of the leads
    #: changed after the instant, and their rows then
    parts: dict[FromClause, tuple[FromClause, FromClause, FromClause]] | None = None
    #: an instant's leads as the arms of their ``UNION ALL`` (``each``)
    arms: dict[FromClause, tuple[tuple[FromClause, tuple[Condition, ...]], ...]] | None = None

    def each(self, source: FromClause) -> list[tuple[FromClause, list[Condition]]]:
        """The tables ``source``'s rows are read from, each with the conditions keeping its share: as of an instant
        the table less the changed leads (and those created after it), and their rows then; else ``source`` alone. A
        statement that joins a few rows to the leads then (or groups a few of them) runs once per table, on its
        indexes, where SQLite would materialise the whole ``UNION ALL`` (a million leads) to join it."""
        found = (self.arms or {}).get(source)
        return [(source, [])] if found is None else [(table, list(keep)) for table, keep in found]

    def tally(self, conn: Connection, query: sa.Select[Any], keys: int) -> list[tuple[Any, ...]]:
        """The rows of ``query``, a GROUP BY of its first ``keys`` columns whose others are counts and sums (the
        first a count of the rows), by their keys. As of an instant it runs on the tables as they are now,
        the rows now of the leads changed after the instant taken away and their rows then added back (so
        it reads the tables' indexes as the report of today does): three queries, summed per group."""
        if self.parts is None:
            return [tuple(row) for row in conn.execute(query)]
        totals: dict[tuple[Any, ...], list[Any]] = {}
        for sign, part in ((1, 0), (-1, 1), (1, 2)):
            swapped = _swap(query, {source: parts[part] for source, parts in self.parts.items()})
            for row in conn.execute(swapped):
                sums = totals.setdefault(tuple(row[:keys]), [0] * (len(row) - keys))
                for k, value in enumerate(row[keys:]):
                    sums[k] += sign * (value or 0)
        rows = [(*key, *sums) for key, sums in totals.items() if sums[0]]  # a group of no rows is none
        return sorted(rows, key=lambda row: [(value is not None, value) for value in row[:keys]])

    def quantiles(self, conn: Connection, value: Expr, where: list[Condition], count: int,
                  qs: Iterable[float] = (0.5,)) -> list[float | None]:
        """``aggregates.quantiles`` of ``value`` over the ``count`` rows of these sources matching ``where``.

        As of an instant, as ``tally``: the rows then are the table's, less the changed leads' rows now, plus
        their rows then. The few of the second and the third are read whole; the table's are read as a window
        of its sorted values around the quantile's position, one ``ORDER BY value LIMIT OFFSET`` query as
        today's report makes (a top-N sort, or an index walked), and the window and the few are merged
        (``merged_window``). A median over the ``UNION ALL`` itself sorted every row of both arms into a
        temporary B-tree where ``value`` is an expression no index holds (the forecast's days to a win): 1.3 s
        a median against 0.24 s today at a million deals."""
        every = self.parts
        if every is None or count == 0:
            return quantiles(conn, value, where, count, qs)
        query = sa.select(value).where(*where).order_by(value)

        def part(index: int) -> sa.Select[Any]:
            return _swap(query, {source: parts[index] for source, parts in every.items()})

        gone, added = cancelled(*(_floats(conn, part(k)) for k in (1, 2)))
        table = part(0)

        def pair_at(low: int) -> list[float]:
            offset = max(low - len(added), 0)
            size = 2 * len(gone) + len(added) + 3
            window = _floats(conn, table.limit(size).offset(offset))
            pair = merged_window(window, offset, len(window) < size, gone, added, low, min(2, count - low))
            # never None with the window's size above; the union itself is right, only slower
            return pair if pair is not None else _floats(conn, query.limit(2).offset(low))

        return quantiles(conn, value, where, count, qs, pair_at)

    def open_tasks(self, conn: Connection, lead_ids: Sequence[int]) -> OpenTasks:
        """The listed leads' open tasks at the instant, per lead and stage, by deadline (a lead with no event
        after it has the task rows it has now; the others are replayed up to it)."""
        found: OpenTasks = {}
        if not lead_ids:
            return found
        ids = list(lead_ids)
        moved: set[int] = set()
        if self.at is not None:
            for start in range(0, len(ids), CHUNK):
                moved.update(r[0] for r in conn.execute(
                    sa.select(events.c.lead_id).where(events.c.lead_id.in_(ids[start:start + CHUNK]),
                                                      events.c.at > self.at).distinct()))
        tc = lead_tasks.c
        rows: list[tuple[int, str, str, dt.datetime | None]] = []
        kept = [i for i in ids if i not in moved]
        for start in range(0, len(kept), CHUNK):
            rows += [(r[0], r[1], r[2], r[3]) for r in conn.execute(
                sa.select(tc.lead_id, tc.stage, tc.task_id, tc.due_at)
                .where(tc.lead_id.in_(kept[start:start + CHUNK]), tc.state == TaskStatus.OPEN))]
        if moved:
            assert self.at is not None and self.specs is not None
            for lead_id, log in read_logs(conn, events.c.lead_id.in_(sorted(moved)), events.c.at <= self.at).items():
                rows += [(lead_id, t.stage, t.id, t.due_at) for t in History(log, self.specs).state.tasks.values()
                         if t.state == TaskStatus.OPEN]
        last = conn.dialect.name != "sqlite"  # where ORDER BY puts a task without a deadline, as the current board
        rows.sort(key=lambda r: (r[0], (r[3] is None) == last, r[3] or dt.datetime.min, r[2]))
        for lead_id, stage, task_id, due_at in rows:
            found.setdefault((lead_id, stage), []).append((task_id, due_at))
        return found


CURRENT = Sources(leads, lead_stages)


def _floats(conn: Connection, query: sa.Select[Any]) -> list[float]:
    """The values of a one-column query, fetched at once (a month back at a million deals, hundreds of thousands:
    row by row, fetching them took longer than the queries)."""
    return [float(v) for v in conn.execute(query).scalars().all()]


def cancelled(gone: list[float], added: list[float]) -> tuple[list[float], list[float]]:
    """``gone`` and ``added`` (sorted) less the values they share, copy for copy: taking a value out of the table
    and putting it back changes no quantile. Most of a changed lead's rows then and now are alike where a median
    reads them (a stage it left before the instant and was closed after it: the same seconds in that stage), and
    the window ``Sources.quantiles`` reads is as wide as the values left."""
    common = Counter(gone) & Counter(added)
    if not common:
        return gone, added

    def less(values: list[float]) -> list[float]:
        left = common.copy()
        kept = []
        for v in values:
            if left[v]:
                left[v] -= 1
            else:
                kept.append(v)
        return kept

    return less(gone), less(added)


def merged_window(window: list[float], offset: int, last: bool, gone: list[float], added: list[float],
                  first: int, n: int) -> list[float] | None:
    """Values ``first`` to ``first + n - 1`` (0-based, in order) of the multiset (T - ``gone``) + ``added``, where
    T is a sorted column of which ``window`` holds positions ``offset`` onwards (``last``: to its end), ``gone``
    is part of T and both lists are sorted; None when the window does not reach them.

    Every value of T before the window is at most ``window[0]`` and every one after it at least ``window[-1]``,
    so a value of ``gone`` or ``added`` below ``window[0]`` only moves the positions by one, one above
    ``window[-1]`` (T going on after the window) changes nothing there, and the others are taken out of or put
    into the window. Equal values are interchangeable: which copy of a value is taken out changes no value at
    any position."""
    if not window:  # past T's end; or T has no rows: the added ones are all
        return added[first:first + n] if offset == 0 and last and first + n <= len(added) else None
    start, end = window[0], math.inf if last else window[-1]
    take = Counter(v for v in gone if start <= v <= end)
    kept: list[float] = []
    for v in window:
        if take[v]:
            take[v] -= 1
        else:
            kept.append(v)
    early = [v for v in added if v < start]
    merged = sorted([*kept, *(v for v in added if start <= v <= end)])  # two sorted runs: one merge
    if offset:  # T's values before the window, less those taken out (copies of window[0] beyond the window's)
        before = offset - sum(1 for v in gone if v < start) - take[start] + len(early)
    else:  # nothing of T before the window: the added values before it lead
        before, merged = 0, [*early, *merged]
    at = first - before
    if at < 0 or at + n > len(merged):
        return None
    return merged[at:at + n]


def _swap(query: sa.Select[Any], sources: dict[FromClause, FromClause]) -> sa.Select[Any]:
    """``query`` with the columns of each of ``sources``' keys read from its value instead (by name)."""
    def replace(element: Any, **_: Any) -> Any:
        if element in sources:
            return sources[element]
        table = getattr(element, "table", None)
        if isinstance(element, sa.ColumnClause) and table is not None and table in sources:
            return sources[table].c[element.name]
        return None

    return cast("sa.Select[Any]", visitors.replacement_traverse(query, {}, replace))


def parse(text: str | None) -> dt.datetime | None:
    """``--as-of``: an ISO date (its end: everything recorded that day counts) or date-time; not in the future."""
    if text is None or not str(text).strip():
        return None
    value = str(text).strip()
    try:
        if len(value) == 10:
            at = dt.datetime.combine(dt.date.fromisoformat(value), dt.time.max)
        else:
            at = clock.parse_datetime(value, what="--as-of")
    except ValueError:
        raise InvalidInputError(N_("--as-of {value!r} is not a date (YYYY-MM-DD) or a date-time "
                                   "(YYYY-MM-DDTHH:MM)"), value=value) from None
    if at > clock.now():
        raise InvalidInputError(N_("--as-of {value} is in the future (now is {now})"), value=value,
                                now=clock.now().isoformat())
    return at


_temp = sa.MetaData()
#: the changed leads' ``lead_stages`` then, added up once for a report that reads it several times (the funnel's
#: medians), from their stays and the leads' columns it repeats, read once from their spans (``asof_leads_then``)
_stages = sa.Table("asof_lead_stages", _temp, *(sa.Column(c.name, c.type) for c in lead_stages.c),
                   sa.Index("ix_asof_lead_stages", "process", "stage", "stay_started_at", "seconds"),
                   prefixes=["TEMPORARY"])
_LEAD_KEYS = ("process", "created_at", "team", "owner", "status", "closed_at")
#: the leads changed after the instant (``changed``), and their ``lead_stages`` rows' ids (SQLite's
#: rowids, which every index of the table holds: leaving them out keeps ``ix_lead_stages_report`` covering)
_changed = sa.Table("asof_changed", _temp, sa.Column("id", sa.Integer, primary_key=True), prefixes=["TEMPORARY"])
_gone = sa.Table("asof_gone", _temp, sa.Column("id", sa.Integer, primary_key=True), prefixes=["TEMPORARY"])
#: their rows now and then, read once for every query of the report (as subqueries each query read them again:
#: a month back at a million deals, 77,000 leads' spans and stage rows for each count and each median)
_leads_now, _leads_then = (sa.Table(name, _temp, sa.Column("id", sa.Integer, primary_key=True),
                                    *(sa.Column(attr, leads.c[attr].type) for attr in SPAN_ATTRS),
                                    prefixes=["TEMPORARY"]) for name in ("asof_leads_now", "asof_leads_then"))
_stages_now = sa.Table("asof_stages_now", _temp, *(sa.Column(c.name, c.type) for c in lead_stages.c),
                       prefixes=["TEMPORARY"])
_TEMPORARY = (_changed, _gone, _stages, _leads_now, _leads_then, _stages_now)


@contextmanager
def sources(conn: Connection, at: dt.datetime | None, specs: SpecLookup, *, stages: bool = False,
            ) -> Iterator[Sources]:
    """The report's sources as of ``at`` (``CURRENT`` when None), for the time of the ``with`` block: the tables
    as the leads created by then, but for those changed after it (``changed``), whose rows then are read from
    their past and put in place of theirs (``_sources_at``); ``stages``: their ``lead_stages`` then is added up once
    into a temporary table (the funnel and the forecast read it several times).

    One way at every instant: reading every lead's rows then from its past, as an older instant once did, was the
    slower at every instant timed once the leads created after the instant were left out of the tables
    (docs/performance.md, "At a million migrated deals, session 12")."""
    if at is None:
        yield CURRENT
        return
    for table in _TEMPORARY:
        table.drop(conn, checkfirst=True)
    try:
        changed(conn, at)
        yield _sources_at(conn, at, specs, stages=stages)
    finally:
        for table in reversed(_TEMPORARY):
            table.drop(conn, checkfirst=True)


def changed(conn: Connection, at: dt.datetime) -> None:
    """Fill ``asof_changed`` with the leads there were at ``at`` whose columns changed after it: those created by then
    whose current span began after it (one range of ``ix_lead_spans_at``, a row a lead; those created after it
    are not in the sources at all, which read the tables as the leads created by then: ``_sources_at``). The others
    of those created by then stand now as they stood then: every change of a lead's columns or stays begins a
    span (``store.history``), and the reports read nothing else of a lead but its open tasks (``open_tasks``
    replays those of the leads with an event after the instant). The events after the instant, with a DISTINCT
    over them, read several rows a lead (their tasks done, their notes): 1.1-1.6 s six months back at a million
    deals."""
    _changed.create(conn)
    sc = lead_spans.c
    conn.execute(sa.insert(_changed).from_select(["id"], sa.select(sc.lead_id).where(
        sc.ended_at.is_(None), sc.started_at > at, sc.created_at <= at)))


def _sources_at(conn: Connection, at: dt.datetime, specs: SpecLookup, *, stages: bool) -> Sources:
    """The sources as of ``at`` (``changed`` filled): the tables' rows of the leads created by then and not changed
    after it, beside the rows then of the others (their spans and stays, as ``leads_at`` and ``stages_at`` read them),
    which are kept in temporary tables with their rows now for the report's queries (``lead_stages``' only when
    ``stages``: no other report reads it)."""
    moved = sa.select(_changed.c.id)
    born = (filtered(leads.c.created_at) <= at, filtered(lead_stages.c.created_at) <= at)  # the leads then
    lead_columns = ["id", *SPAN_ATTRS]
    for table in (_leads_now, _leads_then):
        table.create(conn)
    conn.execute(sa.insert(_leads_then).from_select(lead_columns, sa.select(leads_at(at, leads_of=moved))))
    conn.execute(sa.insert(_leads_now).from_select(lead_columns, sa.select(*(leads.c[name] for name in lead_columns))
                                                   .where(leads.c.id.in_(moved))))
    lead_rows = sa.union_all(
        sa.select(*(leads.c[name] for name in lead_columns)).where(_unchanged(conn, leads.c.id), born[0]),
        sa.select(_leads_then)).subquery("leads_as_of")
    stage_columns = [c.name for c in lead_stages.c]
    stages_then: FromClause = stages_at(at, _leads_then)
    stages_now: FromClause = sa.select(lead_stages).where(lead_stages.c.lead_id.in_(moved)).subquery("moved_stages_now")
    kept = _unchanged(conn, lead_stages.c.lead_id)
    if stages:
        for table in (_stages, _stages_now):
            table.create(conn)
        conn.execute(sa.insert(_stages).from_select(stage_columns, sa.select(stages_then)))
        conn.execute(sa.insert(_stages_now).from_select(stage_columns, sa.select(stages_now)))
        stages_then, stages_now = _stages, _stages_now
        if conn.dialect.name == "sqlite":
            _gone.create(conn)
            rowid: sa.ColumnClause[int] = sa.literal_column("rowid")
            conn.execute(sa.insert(_gone).from_select(["id"], sa.select(rowid).select_from(lead_stages)
                                                      .where(lead_stages.c.lead_id.in_(moved))))
            kept = rowid.not_in(sa.select(_gone.c.id))
    # without lead_id (which no report reads of them), the kept rows are read from the covering indexes
    names = [name for name in stage_columns if name != "lead_id"]
    stage_rows = sa.union_all(sa.select(*(lead_stages.c[name] for name in names)).where(kept, born[1]),
                              sa.select(*(stages_then.c[name] for name in names))).subquery("lead_stages_as_of")
    # the tables as the counts read them: the leads there were then, as they are now (the changed ones' rows now
    # taken away, their rows then added back); SQLite and PostgreSQL flatten the subqueries into their indexes
    tables = [sa.select(table).where(then).subquery(f"{table.name}_born") for table, then in
              zip((leads, lead_stages), born, strict=True)]
    return Sources(lead_rows, stage_rows, at, specs, {lead_rows: (tables[0], _leads_now, _leads_then),
                                                      stage_rows: (tables[1], stages_now, stages_then)},
                   {lead_rows: ((leads, (_unchanged(conn, leads.c.id), born[0])), (_leads_then, ()))})


def _unchanged(conn: Connection, column: sa.ColumnElement[int]) -> Condition:
    """That the lead whose id is in ``column`` is not one of the changed leads (``asof_changed``): on SQLite ``NOT
    IN`` the table (the plans timed at a million deals); on PostgreSQL ``NOT EXISTS``, an anti-join, as ``NOT IN``
    is hashed only while the changed leads' ids fit ``work_mem`` and is otherwise a scan of all of them for every
    lead read (docs/performance.md, "Reports as of an instant on PostgreSQL")."""
    if conn.dialect.name == "postgresql":
        return ~sa.exists().where(_changed.c.id == column)
    return column.not_in(sa.select(_changed.c.id))


class filtered(sa.sql.expression.FunctionElement[Any]):
    """A column compared row by row, never read as a range of an index: on SQLite ``+column`` (its documented way to
    keep a term from constraining an index). The leads created by an instant, added to every query of a report as
    of it, made SQLite read the stalled leads' closings as a range of ``ix_leads_age``'s creation, looking each row
    up for its closing (0.6 -> 2.0 s as of the day before at a million deals), where ``ix_leads_closed`` holds
    both; as a filter the creation is read from whichever index the query's own terms pick."""

    inherit_cache = True

    def __init__(self, column: sa.ColumnElement[Any]) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(filtered)
def _filtered_default(element: filtered, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(filtered, "sqlite")
def _filtered_sqlite(element: filtered, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.clauses, **kw))


def leads_at(at: dt.datetime, leads_of: sa.Select[tuple[int]]) -> sa.Subquery:
    """The leads ``leads_of`` as they stood at ``at``: their spans going on then (``id`` their lead's)."""
    sc = lead_spans.c
    return (sa.select(sc.lead_id.label("id"), *(sc[name] for name in SPAN_ATTRS))
            .where(sc.lead_id.in_(leads_of), sc.started_at <= at, sa.or_(sc.ended_at.is_(None), sc.ended_at > at))
            .subquery("moved_leads_as_of"))


def stages_at(at: dt.datetime, lead_rows: FromClause) -> sa.Subquery:
    """``lead_stages`` as it stood at ``at``: per lead then and stage, its stays begun by then added up
    (``lead_rows``: the leads then, their ``id`` and the columns ``lead_stages`` repeats). The stays are added up
    per lead and stage in the order of ``ix_lead_stays_lead``, before the lead's columns are joined to them."""
    st, lc = lead_stays.c, lead_rows.c
    ended = st.left_at <= at
    stays = (sa.select(st.lead_id, st.stage,
                       sa.func.min(st.entered_at).label("entered_at"),
                       sa.func.max(sa.case((sa.or_(st.left_at.is_(None), st.left_at > at), st.entered_at)))
                       .label("stay_started_at"),
                       sa.cast(sa.func.coalesce(sa.func.sum(sa.case((ended, st.seconds), else_=0)), 0), sa.BigInteger)
                       .label("seconds"),
                       (sa.func.max(sa.case((sa.and_(ended, st.moved_on), 1), else_=0)) == 1).label("moved_on"))
             .where(st.lead_id.in_(sa.select(lc.id)), st.entered_at <= at)
             .group_by(st.lead_id, st.stage)
             .subquery("stays_as_of"))
    sc = stays.c
    return (sa.select(sc.lead_id, sc.stage, *(lc[name] for name in _LEAD_KEYS), sc.entered_at, sc.stay_started_at,
                      sc.seconds, sc.moved_on)
            .select_from(stays.join(lead_rows, lc.id == sc.lead_id))
            .subquery("lead_stages_as_of"))
