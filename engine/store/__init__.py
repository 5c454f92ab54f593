"""Persistence: SQLAlchemy Core over SQLite (the embedded default, WAL mode) or PostgreSQL.

The package, by concern: ``schema`` (every table), ``database`` (connecting), ``codec`` (the JSON of stored
documents), ``lead_rows`` (a lead's ``leads`` and ``lead_tasks`` rows, read into a ``LeadState`` and written back),
``projections`` (``stage_counts``, ``lead_stages``, ``ownerships``), ``history`` (the leads' past: ``lead_spans``,
``lead_stays``), ``event_log`` (the append-only history),
``writes`` (the one write path of leads), ``client_rows`` (the one way a client row is made, its normalised and
search columns computed with it), ``driver`` (the driver-level executor) and ``sqltypes`` (the names that
annotate rows and SQL expressions: ``Record``, ``Mapping``, ``Condition``, ``Expr``, ``Query``,
``Values``). Schema changes go through Alembic
(``engine/migrations``).

**One write path.** ``write_leads(conn, [LeadChange(before, after, events), ...], groups)`` writes every change of
leads: new leads and changed ones, one lead (an engine operation) or many (the bulk calls, a rotation, a CSV
import). ``groups`` are new leads alike (``NewLeads``: an import's leads of one first-stage outcome), one template
state and each lead's own values, whose rows are built once per group and patched per lead.
It alone issues INSERT and UPDATE on ``leads``, ``lead_tasks``, ``stage_counts``, ``lead_stages``, ``lead_spans``,
``lead_stays`` and ``ownerships``, and appends the events through ``append_events``, the one INSERT into
``events`` (which the outbox also calls for its mail events, which change no lead). The rebuilds rewrite a
projection wholesale after a bulk load that bypassed the engine: ``recount`` (``stage_counts`` from the leads) and
``rebuild_stages`` (``lead_stages`` and the leads' past from the event log) delete the table, then write it with
the write path's own row-building code and statements (``add_counts``, ``visit_row``, ``history``). Migrations
change the schema and may move data in SQL of their own.
A write of many leads, and the rotation and the import while they build one, pause Python's cyclic garbage
collector (``collector_paused``): their few objects per lead live until the statements run and hold no cycles.

Three ways of running SQL, each for its case:

- **SQLAlchemy Core, ``conn.execute(statement)``**, for ordinary statements: a query of a report or a board, a
  user, a process version, a token. It is the readable default; its per-call work (~30 us) does not matter there.
- **The driver-level executor** (``driver_execute``, ``driver_executemany``, ``driver_executemany_tuples``,
  ``driver_rows``) for the hot paths: the reads of a one-lead operation and every statement of the write path.
  Core statements built once with bound parameters, compiled once per dialect and run on the driver's cursor with
  each type's own bind and result processors, so the values are exactly SQLAlchemy's at ~1.5 us a call. The write
  path hands its rows over as tuples in the order of named parameters (``driver_executemany_tuples``): no dict
  per row, the values of many rows converted a column at a time, each distinct value once (a rotation's or an
  import's rows repeat one instant, one deadline). Driver errors are re-raised as SQLAlchemy's.
- **The bulk helpers** (``insert_rows``, ``insert_many``) for rows written in bulk outside the write path (an
  import's clients, the outbox's mails, the benchmarks' data): one driver-level ``executemany`` of rows whose
  values are in the driver's form, each repeated value converted once.
- **Recorded writes** (``RecordedWrites``, ``replay``): the same driver-level statements recorded in one process
  (a history import's worker builds a batch's rows) and run in the one that holds the transaction.

Everything public is re-exported here: ``from engine import store; store.leads, store.write_leads(...)``.
"""

from engine.store.client_rows import CLIENT_COLUMNS, client_row, contact_values, insert_clients
from engine.store.codec import dumps, loads
from engine.store.database import (
    DEFAULT_URL,
    READ_ONLY,
    SQLITE_SUFFIXES,
    copy_sqlite_files,
    create_db_engine,
    is_busy,
    keep_statistics,
    postgres_schema,
    remove_sqlite_files,
    writing_now,
)
from engine.store.driver import (
    CHUNK,
    RecordedWrites,
    driver_execute,
    driver_executemany,
    driver_executemany_tuples,
    driver_rows,
    driver_value,
    insert_many,
    insert_rows,
    new_id,
    replay,
    rows_by_ids,
    sqlalchemy_error,
)
from engine.store.event_log import append_events, read_events
from engine.store.history import SPAN_ATTRS, History, span_values
from engine.store.lead_rows import LeadChange, NewLeads, changed_columns, lead_columns, read_lead, read_leads, task_row
from engine.store.loading import BulkLoad, alone, bulk_load
from engine.store.projections import (
    OWNERSHIP_EVENTS,
    add_counts,
    count_deltas,
    count_key,
    follow_stages,
    ownership_rows,
    read_logs,
    rebuild_stages,
    recount,
    visit_row,
)
from engine.store.schema import (
    api_tokens,
    assignment_cursors,
    clients,
    closures,
    contacts,
    erasures,
    events,
    import_jobs,
    imports,
    lead_spans,
    lead_stages,
    lead_stays,
    lead_tasks,
    leads,
    metadata,
    outbox,
    ownerships,
    process_versions,
    rate_limits,
    reviews,
    sessions,
    settings,
    stage_counts,
    users,
)
from engine.store.writes import collector_paused, reserve_ids, write_leads

__all__ = [
    "CHUNK",
    "CLIENT_COLUMNS",
    "DEFAULT_URL",
    "OWNERSHIP_EVENTS",
    "READ_ONLY",
    "SPAN_ATTRS",
    "SQLITE_SUFFIXES",
    "BulkLoad",
    "History",
    "LeadChange",
    "NewLeads",
    "RecordedWrites",
    "add_counts",
    "alone",
    "api_tokens",
    "append_events",
    "assignment_cursors",
    "bulk_load",
    "changed_columns",
    "client_row",
    "clients",
    "closures",
    "collector_paused",
    "contact_values",
    "contacts",
    "copy_sqlite_files",
    "count_deltas",
    "count_key",
    "create_db_engine",
    "driver_execute",
    "driver_executemany",
    "driver_executemany_tuples",
    "driver_rows",
    "driver_value",
    "dumps",
    "erasures",
    "events",
    "follow_stages",
    "import_jobs",
    "imports",
    "insert_clients",
    "insert_many",
    "insert_rows",
    "is_busy",
    "keep_statistics",
    "lead_columns",
    "lead_spans",
    "lead_stages",
    "lead_stays",
    "lead_tasks",
    "leads",
    "loads",
    "metadata",
    "new_id",
    "outbox",
    "ownership_rows",
    "ownerships",
    "postgres_schema",
    "process_versions",
    "rate_limits",
    "read_events",
    "read_lead",
    "read_leads",
    "read_logs",
    "rebuild_stages",
    "recount",
    "remove_sqlite_files",
    "replay",
    "reserve_ids",
    "reviews",
    "rows_by_ids",
    "sessions",
    "settings",
    "span_values",
    "sqlalchemy_error",
    "stage_counts",
    "task_row",
    "users",
    "visit_row",
    "write_leads",
    "writing_now",
]
