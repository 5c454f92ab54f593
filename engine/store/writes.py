"""The one write path: ``write_leads`` writes changed leads (new ones too), their task rows, every projection
and their events, in the caller's transaction. The one-lead operations, the bulk calls, the rotation and the CSV
import all write through it."""

from __future__ import annotations

import contextlib
import functools
import gc
import operator
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.state import Event
from engine.store.driver import driver_rows
from engine.store.event_log import append_events
from engine.store.lead_rows import LeadChange, NewLeads, write_lead_rows, write_task_rows
from engine.store.projections import keep_projections


def write_leads(conn: Connection, changes: Sequence[LeadChange], groups: Sequence[NewLeads] = ()) -> None:
    """Write leads' new states, each a ``LeadChange`` of a different lead, and ``groups`` of new leads alike (an
    import's: ``NewLeads``, one template state and each lead's own values, its rows built once per group and
    patched per lead), in a few statements per kind of row:

    - ``leads``: new leads inserted (their ids reserved with ``reserve_ids``), the others updated under the
      optimistic lock (``WHERE id = ? AND row_version = ?``), leads whose changed columns are the same sharing
      one statement; if any lead changed since ``before`` was read, ``ConcurrentUpdateError`` and the caller's
      transaction rolls back, so nothing is written;
    - ``lead_tasks``: the rows that differ between the states (a restarted stage's rows replaced);
    - the projections: ``stage_counts``, ``lead_stages``, ``ownerships``, the leads' past (``lead_spans``,
      ``lead_stays``; ``red_at`` is a column of the lead);
    - ``events``: each change's events, appended.
    """
    leads = len(changes) + sum(len(group.values) for group in groups)
    if not leads:
        return
    with collector_paused(leads):
        write_lead_rows(conn, changes, groups)
        write_task_rows(conn, changes, groups)
        keep_projections(conn, changes, groups)
        evs = [(lead_id, change.after.client_id, ev) for change in changes
               for lead_id in [change.after.id] if lead_id is not None for ev in change.events]
        for group in groups:
            evs += _group_events(group)
        if len(groups) > 1 or (groups and changes):  # in order of the leads, as one list of changes would be
            evs.sort(key=operator.itemgetter(0))
        append_events(conn, evs)


def _group_events(group: NewLeads) -> list[tuple[int, int, Event]]:
    if "client_id" not in group.attrs:
        return [(values[0], group.template.client_id, ev) for values, lead_evs in zip(group.values, group.events,
                                                                                       strict=True) for ev in lead_evs]
    at = group.attrs.index("client_id")
    return [(values[0], values[at], ev) for values, lead_evs in zip(group.values, group.events, strict=True)
            for ev in lead_evs]


@contextlib.contextmanager
def collector_paused(leads: int) -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a write of many leads is built and written (``write_leads``
    itself; the rotation and the import around building their changes): a few objects per lead, all alive until
    their statement runs and none part of a cycle, which the collector would walk again and again (a sixth of a
    rotation's time). Reference counting frees memory as always; nothing happens for fewer than 100 leads."""
    if leads < 100 or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def reserve_ids(conn: Connection, table: sa.Table, n: int) -> list[int]:
    """``n`` ids for new rows of ``table`` (``leads``, ``clients``), taken before the rows are written (a new
    lead's events and mails name it): on PostgreSQL from its sequence (safe beside other writers), on SQLite
    after the largest (the transaction holds the database's write lock from ``BEGIN IMMEDIATE``)."""
    if n <= 0:
        return []
    if conn.dialect.name == "postgresql":
        return [int(i) for i in conn.execute(
            sa.text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": n}).scalars()]
    (row,) = driver_rows(conn, _largest_id(table), {})
    first = int(row["largest"] or 0) + 1
    return list(range(first, first + n))


@functools.cache
def _largest_id(table: sa.Table) -> sa.Select[Any]:
    return sa.select(sa.func.max(table.c.id).label("largest"))
