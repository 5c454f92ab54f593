"""The one write path: ``write_leads`` writes changed leads (new ones too), their task rows, every projection
and their events, in the caller's transaction. The one-lead operations, the bulk calls, the rotation and the CSV
import all write through it."""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.store.driver import driver_rows
from engine.store.event_log import append_events
from engine.store.lead_rows import LeadChange, write_lead_rows, write_task_rows
from engine.store.projections import keep_projections


def write_leads(conn: Connection, changes: Sequence[LeadChange]) -> None:
    """Write leads' new states, each a ``LeadChange`` of a different lead, in a few statements per kind of row:

    - ``leads``: new leads inserted (their ids reserved with ``reserve_ids``), the others updated under the
      optimistic lock (``WHERE id = ? AND row_version = ?``), leads whose changed columns are the same sharing
      one statement; if any lead changed since ``before`` was read, ``ConcurrentUpdateError`` and the caller's
      transaction rolls back, so nothing is written;
    - ``lead_tasks``: the rows that differ between the states (a restarted stage's rows replaced);
    - the projections: ``stage_counts``, ``lead_stages``, ``ownerships`` (``red_at`` is a column of the lead);
    - ``events``: each change's events, appended.
    """
    if not changes:
        return
    with collector_paused(len(changes)):
        write_lead_rows(conn, changes)
        write_task_rows(conn, changes)
        keep_projections(conn, changes)
        append_events(conn, [(lead_id, change.after.client_id, ev) for change in changes
                             for lead_id in [change.after.id] if lead_id is not None for ev in change.events])


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
