"""The leads and ``lead_stages`` as they stood at a past instant, for the reports given ``as_of``.

A lead with no event after ``as_of`` stands as it does now: its current ``leads`` row and ``lead_stages`` rows
are its state at ``as_of`` (nothing has changed it since). The others are the few leads that moved since (for a
recent instant) or, for an old one, the leads then alive that moved on: their events up to ``as_of`` are replayed
through ``state.apply`` and the write path's stage moves (``store.replay_stages``, the rebuild's own code) into
two temporary tables. A report reads the union of the two: the unchanged leads' rows (created by ``as_of``, not
in the replayed set) and the replayed ones. Leads created after ``as_of`` do not exist.

Finding the leads that moved since is a range of ``ix_events_at`` (migration 0018). Without ``as_of`` the reports
read the tables themselves (``CURRENT``), as they always did.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import FromClause

from engine import clock
from engine.errors import InvalidInputError
from engine.i18n import N_
from engine.state import Event, SpecLookup
from engine.store import events, lead_columns, lead_stages, lead_tasks, leads, replay_stages, task_row, visit_row
from engine.store.driver import CHUNK

#: The replayed leads' ids (those with an event after ``as_of``), and their rows as of then.
_temp = sa.MetaData()
_changed = sa.Table("asof_changed", _temp, sa.Column("lead_id", sa.Integer, primary_key=True),
                    prefixes=["TEMPORARY"])
_leads = sa.Table("asof_leads", _temp, *(sa.Column(c.name, c.type) for c in leads.c), prefixes=["TEMPORARY"])
_stages = sa.Table("asof_lead_stages", _temp, *(sa.Column(c.name, c.type) for c in lead_stages.c),
                   prefixes=["TEMPORARY"])
_tasks = sa.Table("asof_lead_tasks", _temp, *(sa.Column(c.name, c.type) for c in lead_tasks.c),
                  prefixes=["TEMPORARY"])
_TABLES = (_changed, _leads, _stages, _tasks)


@dataclass(frozen=True)
class Sources:
    """Where a report reads the leads, the stages they reached and their tasks: the tables, or their state at an
    instant."""

    leads: FromClause
    lead_stages: FromClause
    lead_tasks: FromClause
    #: the instant (None: now, the tables themselves)
    at: dt.datetime | None = None


CURRENT = Sources(leads, lead_stages, lead_tasks)


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


@contextmanager
def sources(conn: Connection, at: dt.datetime | None, specs: SpecLookup) -> Iterator[Sources]:
    """The report's sources as of ``at`` (``CURRENT`` when None), for the time of the ``with`` block."""
    if at is None:
        yield CURRENT
        return
    for table in _TABLES:
        table.drop(conn, checkfirst=True)
        table.create(conn)
    try:
        _replay(conn, at, specs)
        replayed = sa.select(_changed.c.lead_id)
        lead_rows = sa.union_all(sa.select(leads).where(leads.c.created_at <= at, leads.c.id.not_in(replayed)),
                                 sa.select(_leads)).subquery("leads_as_of")
        stage_rows = sa.union_all(
            sa.select(lead_stages).where(lead_stages.c.created_at <= at, lead_stages.c.lead_id.not_in(replayed)),
            sa.select(_stages)).subquery("lead_stages_as_of")
        # a task row of a lead created after ``at`` is never asked for: the tasks are read for listed leads
        task_rows = sa.union_all(sa.select(lead_tasks).where(lead_tasks.c.lead_id.not_in(replayed)),
                                 sa.select(_tasks)).subquery("lead_tasks_as_of")
        yield Sources(lead_rows, stage_rows, task_rows, at)
    finally:
        for table in reversed(_TABLES):
            table.drop(conn, checkfirst=True)


def _replay(conn: Connection, at: dt.datetime, specs: SpecLookup) -> None:
    """Replay the leads that existed at ``at`` and have an event after it into the temporary tables."""
    moved = sa.select(events.c.lead_id).where(events.c.at > at).distinct()
    conn.execute(sa.insert(_changed).from_select(["lead_id"], moved))
    alive = [r[0] for r in conn.execute(
        sa.select(leads.c.id).where(leads.c.id.in_(sa.select(_changed.c.lead_id)), leads.c.created_at <= at)
        .order_by(leads.c.id))]
    for start in range(0, len(alive), CHUNK):
        ids = alive[start:start + CHUNK]
        logs: dict[int, list[Event]] = {}
        for r in conn.execute(sa.select(events.c.lead_id, events.c.kind, events.c.at, events.c.actor,
                                        events.c.data_json, events.c.id)
                              .where(events.c.lead_id.in_(ids), events.c.at <= at)
                              .order_by(events.c.lead_id, events.c.id)):
            logs.setdefault(r[0], []).append(Event(kind=r[1], at=r[2], actor=r[3], data=json.loads(r[4]),
                                                   lead_id=r[0], id=r[5]))
        lead_rows: list[dict[str, Any]] = []
        stage_rows: list[dict[str, Any]] = []
        task_rows: list[dict[str, Any]] = []
        for lead_id, log in logs.items():
            state, stays = replay_stages(log, specs)
            state.id = lead_id
            lead_rows.append({"id": lead_id, "row_version": 0, **lead_columns(state)})
            stage_rows.extend(visit_row(state, v) for v in stays.values())
            task_rows.extend(task_row(lead_id, t) for t in state.tasks.values())
        for table, rows in ((_leads, lead_rows), (_stages, stage_rows), (_tasks, task_rows)):
            if rows:
                conn.execute(sa.insert(table), rows)
