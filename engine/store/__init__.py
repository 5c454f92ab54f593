"""Persistence: SQLAlchemy Core over SQLite (the embedded default, WAL mode) or PostgreSQL.

The package, by concern: ``schema`` (every table), ``database`` (connecting), ``codec`` (the JSON of stored
documents), ``lead_rows`` (a lead's ``leads`` and ``lead_tasks`` rows read into a ``LeadState``), ``projections``
(``stage_counts``, ``lead_stages``, ``ownerships``, kept by every write), ``event_log`` (the append-only history)
and ``driver`` (the driver-level executor). Schema changes go through Alembic (``engine/migrations``).

Three ways of running SQL, each for its case:

- **SQLAlchemy Core, ``conn.execute(statement)``**, for ordinary statements: a query of a report or a board, a
  user, a process version, a token. It is the readable default; its per-call work (~30 us) does not matter there.
- **The driver-level executor** (``driver_execute``, ``driver_executemany``, ``driver_rows``) for the statements
  every one-lead operation runs (read the lead and its tasks, the write under the optimistic lock): Core
  statements built once with bound parameters, compiled once per dialect and run on the driver's cursor with each
  type's own bind and result processors, so the values are exactly SQLAlchemy's at ~1.5 us a call. Driver errors
  are re-raised as SQLAlchemy's.
- **The bulk helpers** (``insert_rows``, ``insert_many``) for imports and bulk loads: one driver-level
  ``executemany`` of rows whose values are already in the driver's form, each repeated value converted once.

Everything here is re-exported: ``from engine import store; store.leads, store.read_lead(...)``.
"""

from engine.store.codec import dumps, loads
from engine.store.database import (
    DEFAULT_URL,
    SQLITE_SUFFIXES,
    copy_sqlite_files,
    create_db_engine,
    postgres_schema,
    remove_sqlite_files,
)
from engine.store.driver import (
    CHUNK,
    driver_execute,
    driver_executemany,
    driver_rows,
    driver_value,
    insert_many,
    insert_rows,
    new_id,
    rows_by_ids,
    run_many,
    sqlalchemy_error,
)
from engine.store.event_log import insert_events, insert_events_bulk, read_events
from engine.store.lead_rows import (
    AlikeLead,
    changed_columns,
    insert_lead,
    lead_columns,
    read_lead,
    read_leads,
    task_row,
    update_lead,
    update_leads,
    write_alike,
)
from engine.store.projections import (
    OWNERSHIP_EVENTS,
    add_counts,
    bump_counts,
    count_deltas,
    follow_stages,
    new_lead_visits,
    ownership_rows,
    rebuild_stages,
    recount,
    replay_stages,
    visit_row,
)
from engine.store.schema import (
    api_tokens,
    assignment_cursors,
    clients,
    closures,
    events,
    imports,
    lead_stages,
    lead_tasks,
    leads,
    metadata,
    outbox,
    ownerships,
    process_versions,
    reviews,
    stage_counts,
    users,
)

__all__ = [
    "CHUNK", "DEFAULT_URL", "OWNERSHIP_EVENTS", "SQLITE_SUFFIXES", "AlikeLead", "add_counts", "api_tokens",
    "assignment_cursors", "bump_counts", "changed_columns", "clients", "closures", "copy_sqlite_files",
    "count_deltas", "create_db_engine", "driver_execute", "driver_executemany", "driver_rows", "driver_value",
    "dumps", "events", "follow_stages", "imports", "insert_events", "insert_events_bulk", "insert_lead",
    "insert_many", "insert_rows", "lead_columns", "lead_stages", "lead_tasks", "leads", "loads", "metadata",
    "new_id", "new_lead_visits", "outbox", "ownership_rows", "ownerships", "postgres_schema", "process_versions",
    "read_events", "read_lead", "read_leads", "rebuild_stages", "recount", "remove_sqlite_files", "replay_stages",
    "reviews", "rows_by_ids", "run_many", "sqlalchemy_error", "stage_counts", "task_row", "update_lead",
    "update_leads", "users", "visit_row", "write_alike",
]
