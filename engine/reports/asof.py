"""The leads and ``lead_stages`` as they stood at a past instant, for the reports given ``as_of``.

They are read from the leads' past that the write path keeps (``store.history``): the leads then are the spans
of ``lead_spans`` going on at the instant (``started_at <= T AND (ended_at IS NULL OR ended_at > T)``, a range
of ``ix_lead_spans_at``), and ``lead_stages`` then is each lead's stays begun by the instant (``lead_stays``),
added up per stage as ``engine.visits`` adds them (the first entry, the stay going on then, the seconds and
moving on of those ended by then), beside the lead's columns then. Leads created after the instant do not exist.
Only the task rows are not kept over time: a report asks for the tasks of the few leads it lists
(``Sources.open_tasks``), replayed from their events when they have one after the instant. Without ``as_of`` the
reports read the tables themselves (``CURRENT``), as they always did.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import FromClause

from engine import clock
from engine.errors import InvalidInputError
from engine.i18n import N_
from engine.state import SpecLookup
from engine.store import SPAN_ATTRS, History, events, lead_spans, lead_stages, lead_stays, lead_tasks, leads, read_logs
from engine.store.driver import CHUNK
from engine.vocab import TaskStatus

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
#: ``lead_stages`` as of an instant, added up once for a report that reads it several times (the funnel's medians),
#: from the stays and the leads' columns it repeats, read once from their spans (``_leads``)
_stages = sa.Table("asof_lead_stages", _temp, *(sa.Column(c.name, c.type) for c in lead_stages.c),
                   sa.Index("ix_asof_lead_stages", "process", "stage", "stay_started_at", "seconds"),
                   prefixes=["TEMPORARY"])
_LEAD_KEYS = ("process", "created_at", "team", "owner", "status", "closed_at")
_leads = sa.Table("asof_leads", _temp, sa.Column("id", sa.Integer, primary_key=True),
                  *(sa.Column(name, leads.c[name].type) for name in _LEAD_KEYS), prefixes=["TEMPORARY"])


@contextmanager
def sources(conn: Connection, at: dt.datetime | None, specs: SpecLookup, *, stages: bool = False,
            ) -> Iterator[Sources]:
    """The report's sources as of ``at`` (``CURRENT`` when None), for the time of the ``with`` block; ``stages``:
    ``lead_stages`` as of ``at`` is added up once into a temporary table (else it is a subquery)."""
    if at is None:
        yield CURRENT
        return
    lead_rows = leads_at(at)
    if not stages:
        yield Sources(lead_rows, stages_at(at, lead_rows), at, specs)
        return
    for table in (_leads, _stages):
        table.drop(conn, checkfirst=True)
        table.create(conn)
    try:
        conn.execute(sa.insert(_leads).from_select(["id", *_LEAD_KEYS], sa.select(
            lead_rows.c.id, *(lead_rows.c[name] for name in _LEAD_KEYS))))
        at_then = stages_at(at, _leads)
        conn.execute(sa.insert(_stages).from_select([c.name for c in at_then.c], sa.select(at_then)))
        yield Sources(lead_rows, _stages, at, specs)
    finally:
        for table in (_stages, _leads):
            table.drop(conn, checkfirst=True)


def leads_at(at: dt.datetime) -> sa.Subquery:
    """The leads as they stood at ``at``: their spans going on then (``id`` their lead's)."""
    sc = lead_spans.c
    return (sa.select(sc.lead_id.label("id"), *(sc[name] for name in SPAN_ATTRS))
            .where(sc.started_at <= at, sa.or_(sc.ended_at.is_(None), sc.ended_at > at)).subquery("leads_as_of"))


def stages_at(at: dt.datetime, lead_rows: FromClause) -> sa.Subquery:
    """``lead_stages`` as it stood at ``at``: per lead then and stage, its stays begun by then added up
    (``lead_rows``: the leads then, their ``id`` and the columns ``lead_stages`` repeats)."""
    st, lc = lead_stays.c, lead_rows.c
    ended = st.left_at <= at
    lead_keys = tuple(lc[name] for name in _LEAD_KEYS)
    return (sa.select(st.lead_id, st.stage, *lead_keys,
                      sa.func.min(st.entered_at).label("entered_at"),
                      sa.func.max(sa.case((sa.or_(st.left_at.is_(None), st.left_at > at), st.entered_at)))
                      .label("stay_started_at"),
                      sa.cast(sa.func.coalesce(sa.func.sum(sa.case((ended, st.seconds), else_=0)), 0), sa.BigInteger)
                      .label("seconds"),
                      (sa.func.max(sa.case((sa.and_(ended, st.moved_on), 1), else_=0)) == 1).label("moved_on"))
            .select_from(lead_stays.join(lead_rows, lc.id == st.lead_id))
            .where(st.entered_at <= at)
            .group_by(st.lead_id, st.stage, *lead_keys)
            .subquery("lead_stages_as_of"))
