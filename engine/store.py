"""Persistence: the tables, the database engine, and reading/writing a lead's state.

SQLAlchemy Core over SQLite (the embedded default, WAL mode) or PostgreSQL.
The current state of every lead lives in indexed columns (stage, status,
owner, team, deadlines) so boards and reports are SQL aggregates; the
``events`` table is the append-only history. Schema changes go through Alembic
(``engine/migrations``).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError

from engine import visits
from engine.errors import ConcurrentUpdateError, InvalidInputError
from engine.state import Event, LeadState, SpecLookup, TaskState, apply

DEFAULT_URL = "sqlite:///leadflow.db"

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("role", sa.String(64), nullable=False),
    sa.Column("team", sa.String(200), index=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    # where the owner's reminders and a role's e-mails go (docs/automation.md)
    sa.Column("email", sa.String(320)),
    # logging in (docs/server.md): an Argon2id hash, none for a user who never had a password (local mode)
    sa.Column("password_hash", sa.String(200)),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("password_changed_at", sa.DateTime),
    sa.Column("deactivated_at", sa.DateTime),
)

process_versions = sa.Table(
    "process_versions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("process", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("spec_json", sa.Text, nullable=False),
    sa.Column("source_path", sa.Text),
    sa.Column("loaded_at", sa.DateTime, nullable=False),
    sa.Column("loaded_by", sa.String(200), nullable=False),
    sa.UniqueConstraint("process", "version"),
    sa.UniqueConstraint("process", "content_hash"),
)

clients = sa.Table(
    "clients", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("company", sa.String(500)),
    sa.Column("email", sa.String(320)),
    sa.Column("phone", sa.String(64)),
    sa.Column("email_norm", sa.String(320), index=True),
    sa.Column("phone_norm", sa.String(64), index=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

leads = sa.Table(
    "leads", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("client_id", sa.Integer, sa.ForeignKey("clients.id"), nullable=False, index=True),
    sa.Column("process", sa.String(64), nullable=False),
    sa.Column("process_version", sa.Integer, nullable=False),
    sa.Column("stage", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(200)),
    sa.Column("team", sa.String(200)),
    sa.Column("source", sa.String(200)),
    sa.Column("product", sa.String(200)),
    sa.Column("value_minor", sa.BigInteger),
    sa.Column("fields_json", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("stage_entered_at", sa.DateTime, nullable=False),
    sa.Column("stage_due_at", sa.DateTime),
    sa.Column("last_activity_at", sa.DateTime, nullable=False),
    sa.Column("owner_since", sa.DateTime, nullable=False),
    sa.Column("closed_at", sa.DateTime),
    sa.Column("close_reason", sa.String(64)),
    sa.Column("close_note", sa.Text),
    sa.Column("closed_from_stage", sa.String(64)),
    sa.Column("red_at", sa.DateTime),
    sa.Column("last_report", sa.Text),
    sa.Column("last_report_at", sa.DateTime),
    sa.Column("extended_until", sa.DateTime),
    sa.Column("extension_reason", sa.Text),
    sa.Column("recalled_at", sa.DateTime),
    sa.Column("rest_until", sa.DateTime),
    sa.Column("row_version", sa.Integer, nullable=False, default=1),
    # The board: red and yellow leads of a stage are ranges of red_at in these covering indexes (with their
    # values), and a stage's most urgent leads are its first entries; too-long leads a range of ix_leads_age.
    sa.Index("ix_leads_board", "process", "status", "stage", "red_at", "value_minor"),
    sa.Index("ix_leads_owner_board", "owner", "status", "process", "stage", "red_at", "value_minor"),
    sa.Index("ix_leads_team_board", "team", "status", "process", "stage", "red_at", "value_minor"),
    sa.Index("ix_leads_age", "process", "status", "created_at", "stage", "team", "owner"),
    # The stand-up: a salesperson's red leads and those due today or next are ranges of red_at.
    sa.Index("ix_leads_owner_due", "owner", "status", "red_at"),
    sa.Index("ix_leads_owner_since", "owner", "status", "owner_since"),
    # The cycle and salespeople reports: won and lost leads by owner, covering (grouped in index order).
    sa.Index("ix_leads_closed", "process", "status", "owner", "closed_at", "team", "source", "created_at",
             "value_minor", "client_id"),
    # Revisits, oldest closing first (revisit list, a team's or everyone's): lost leads only, so only a close
    # or a reopening writes to it.
    sa.Index("ix_leads_lost_closed", "process", "closed_at", sqlite_where=sa.text("status = 'lost'"),
             postgresql_where=sa.text("status = 'lost'")),
)

# Who worked which client when: one row per ownership (a lead created with an owner, assigned, rotated).
# Rotation reads it to never hand a client back to someone who worked it recently.
ownerships = sa.Table(
    "ownerships", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("client_id", sa.Integer, nullable=False),
    sa.Column("lead_id", sa.Integer, sa.ForeignKey("leads.id"), nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("how", sa.String(16), nullable=False),
    sa.Index("ix_ownerships_client_id", "client_id", "id"),
)

# Every closing of a lead without a sale, kept even when the lead is reopened later: the monthly removals
# summary and the refusal reports count what happened in a period, whatever became of the lead since.
closures = sa.Table(
    "closures", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("lead_id", sa.Integer, sa.ForeignKey("leads.id"), nullable=False, index=True),
    sa.Column("client_id", sa.Integer, nullable=False),
    sa.Column("process", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(200)),
    sa.Column("team", sa.String(200)),
    sa.Column("product", sa.String(200)),
    sa.Column("value_minor", sa.BigInteger),
    sa.Column("stage", sa.String(64), nullable=False),
    sa.Column("closed_at", sa.DateTime, nullable=False),
    sa.Column("reopened_at", sa.DateTime),
    sa.Index("ix_closures_closed_at", "closed_at"),
    # The refusal and salespeople reports: one covering range per process and kind; a won client's earlier
    # closings by someone else.
    sa.Index("ix_closures_report", "process", "kind", "closed_at", "owner", "team", "reason", "product",
             "value_minor", "lead_id"),
    sa.Index("ix_closures_client_id", "client_id", "closed_at"),
    sa.Index("ix_closures_owner", "process", "owner", "lead_id", "closed_at", "team"),
)

# The sales director's review of a refusal: opened when a lead is closed for a reason that asks for it.
reviews = sa.Table(
    "reviews", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("lead_id", sa.Integer, sa.ForeignKey("leads.id"), nullable=False, index=True),
    sa.Column("team", sa.String(200)),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("requested_at", sa.DateTime, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("decided_by", sa.String(200)),
    sa.Column("decided_at", sa.DateTime),
    sa.Column("note", sa.Text),
    sa.Index("ix_reviews_state_team", "state", "team"),
)

# Open leads and their value per process, stage, team and owner, kept by every write to ``leads`` in the
# same transaction, so a board's counts never scan the leads. '' stands for "no team" / "no owner".
stage_counts = sa.Table(
    "stage_counts", metadata,
    sa.Column("process", sa.String(64), primary_key=True),
    sa.Column("stage", sa.String(64), primary_key=True),
    sa.Column("team", sa.String(200), primary_key=True),
    sa.Column("owner", sa.String(200), primary_key=True),
    sa.Column("leads", sa.Integer, nullable=False),
    sa.Column("value_minor", sa.BigInteger, nullable=False),
)

# Every stage each lead reached, once (engine.visits): the funnel, the measured time in a stage and the
# forecast's history are index scans of it. Besides the stay columns, a row repeats the lead's process,
# creation (its cohort), team, owner, status and closing instant, kept by every write in the same transaction.
lead_stages = sa.Table(
    "lead_stages", metadata,
    sa.Column("lead_id", sa.Integer, sa.ForeignKey("leads.id"), primary_key=True),
    sa.Column("stage", sa.String(64), primary_key=True),
    sa.Column("process", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("team", sa.String(200)),
    sa.Column("owner", sa.String(200)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("closed_at", sa.DateTime),
    sa.Column("entered_at", sa.DateTime, nullable=False),
    sa.Column("stay_started_at", sa.DateTime),
    sa.Column("seconds", sa.BigInteger, nullable=False),
    sa.Column("moved_on", sa.Boolean, nullable=False),
    # One covering index for every report: a stage's rows are one range; those not in the stage now
    # (stay_started_at IS NULL) are ordered by their time in it, so a median is an offset into the range.
    sa.Index("ix_lead_stages_report", "process", "stage", "stay_started_at", "seconds", "created_at",
             "entered_at", "moved_on", "status", "closed_at", "team", "owner"),
    # The forecast's history: the closed leads that reached a stage, by outcome, in order. Covering for the
    # funnel's counts too: with planner statistics SQLite prefers it there, and a lookup per row took 7 s.
    sa.Index("ix_lead_stages_outcome", "process", "stage", "status", "closed_at", "entered_at", "created_at",
             "stay_started_at", "moved_on", "team", "owner"),
)

lead_tasks = sa.Table(
    "lead_tasks", metadata,
    sa.Column("lead_id", sa.Integer, sa.ForeignKey("leads.id"), primary_key=True),
    sa.Column("stage", sa.String(64), primary_key=True),
    sa.Column("task_id", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("due_at", sa.DateTime),
    sa.Column("done_by", sa.String(200)),
    sa.Column("done_at", sa.DateTime),
    sa.Column("note", sa.Text),
    sa.Index("ix_lead_tasks_state_due_at", "state", "due_at"),
)

events = sa.Table(
    "events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("lead_id", sa.Integer, sa.ForeignKey("leads.id"), nullable=False, index=True),
    sa.Column("client_id", sa.Integer, nullable=False, index=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("data_json", sa.Text, nullable=False),
    sa.Index("ix_events_kind_at", "kind", "at"),
    sa.Index("ix_events_actor_at", "actor", "at"),
)


# The one audited path that may rewrite history: an erasure of a client's personal data (GDPR art. 17) opens a
# row here, replaces the personal strings in that client's events, and finishes the row, in one transaction. The
# database's triggers (migration 0007, docs/operations.md) refuse every DELETE of events and every UPDATE but one of
# ``data_json`` while an unfinished erasure of the event's client exists; rows here are never deleted, and only
# ``finished_at`` is ever set, once. Who erased whom when stays; what was erased does not.
erasures = sa.Table(
    "erasures", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("client_id", sa.Integer, sa.ForeignKey("clients.id"), nullable=False, index=True),
    sa.Column("requested_by", sa.String(200), nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
)

# The HTTP intake's API tokens, one or more per source (a website, a partner's form). Only a hash of a token is
# stored: the token itself is shown once, when it is made. A revoked token stays, for the record.
api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source", sa.String(200), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("hint", sa.String(16), nullable=False),
    sa.Column("process", sa.String(64)),
    sa.Column("can_read", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("revoked_at", sa.DateTime),
    sa.Column("revoked_by", sa.String(200)),
    # personal access tokens share the table (docs/server.md): for them ``source`` is the owner, the user the
    # token acts as, as it is the technical user for an integration token
    sa.Column("kind", sa.String(16), nullable=False, server_default="integration"),  # or personal
    sa.Column("name", sa.String(200)),
    sa.Column("expires_at", sa.DateTime),
    sa.Column("last_used_at", sa.DateTime),  # touched at most once a minute
    sa.Column("rate_limit", sa.Integer),  # requests per minute; None: the kind's default
)

# Every committed CSV import, keyed by the file's SHA-256: the record of who imported what, and the guard that
# refuses to import the same file into the same process twice.
imports = sa.Table(
    "imports", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("process", sa.String(64), nullable=False),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("imported", sa.Integer, nullable=False),
    sa.Column("new_clients", sa.Integer, nullable=False),
    sa.Column("rejected", sa.Integer, nullable=False),
    sa.Index("ix_imports_process_sha256", "process", "sha256"),
)


# Round robin within a team survives across processes: the last salesperson a new lead went to, per team.
# Updated in the transaction that assigns, under a row lock (PostgreSQL) or the write lock (SQLite).
assignment_cursors = sa.Table(
    "assignment_cursors", metadata,
    sa.Column("team", sa.String(200), primary_key=True),
    sa.Column("last_owner", sa.String(200)),
    sa.Column("updated_at", sa.DateTime),
)

# One row per e-mail or reminder a stage action queued; ``leadflow run-due`` claims, sends and marks it
# (engine/outbox.py, docs/automation.md for the states and the delivery guarantee).
outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(64), nullable=False, unique=True),  # the idempotency key, in the Message-ID
    sa.Column("lead_id", sa.Integer, sa.ForeignKey("leads.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),  # email or reminder
    sa.Column("template", sa.String(64), nullable=False),
    sa.Column("recipient", sa.String(64), nullable=False),  # client, owner or a role id
    sa.Column("stage", sa.String(64), nullable=False),  # the stage whose entry queued it
    sa.Column("entered_at", sa.DateTime, nullable=False),  # ... at that moment
    sa.Column("due_at", sa.DateTime, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # queued, sending, sent, failed, cancelled
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.DateTime, nullable=False),
    sa.Column("lease_until", sa.DateTime),  # a 'sending' row whose lease passed is claimed again
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("last_error", sa.Text),
    sa.Column("to_address", sa.Text),
    sa.Column("subject", sa.Text),
    sa.Column("message_id", sa.String(300)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("sent_at", sa.DateTime),
    sa.Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),
)


# Logged-in browser sessions (docs/server.md): only the SHA-256 of the session token is stored.
sessions = sa.Table(
    "sessions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_seen_at", sa.DateTime, nullable=False),  # touched at most once a minute
    sa.Column("expires_at", sa.DateTime, nullable=False),  # the absolute end, whatever the activity
    sa.Column("revoked_at", sa.DateTime),
    sa.Column("revoked_by", sa.String(200)),
    sa.Column("address", sa.String(64)),
    sa.Column("user_agent", sa.String(500)),
)

# Fixed-window counters of the rate limits (failed logins per user and per address, requests per token), in the
# database so that every server process counts together. ``key`` is e.g. login:user:anna or token:17.
rate_limits = sa.Table(
    "rate_limits", metadata,
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("window_start", sa.DateTime, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
)


#: A SQLite database is its file plus, in WAL mode, these two beside it.
SQLITE_SUFFIXES = ("", "-wal", "-shm")


def remove_sqlite_files(path: Path) -> None:
    for suffix in SQLITE_SUFFIXES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def copy_sqlite_files(source: Path, target: Path) -> None:
    """Copy a closed SQLite database (with its WAL files, if any) to ``target``, replacing it."""
    remove_sqlite_files(target)
    for suffix in SQLITE_SUFFIXES:
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")


def postgres_schema(url: str, schema: str, *, reset: bool) -> str:
    """The URL whose connections work in ``schema`` of the PostgreSQL database at ``url`` (created, or with
    ``reset`` dropped and created empty): several leadflow databases on one server, such as each test run's
    and each benchmark's, never touching each other's tables."""
    db = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with db.connect() as conn:
            if reset:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        db.dispose()
    return str(sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
               .render_as_string(hide_password=False))


def create_db_engine(url: str | None) -> sa.Engine:
    """A SQLAlchemy engine for ``url``; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    url = url or DEFAULT_URL
    try:
        parsed = sa.engine.make_url(url)
    except ArgumentError:
        raise InvalidInputError(f"database URL {url!r} is not a SQLAlchemy URL such as "
                                "sqlite:///leadflow.db or postgresql+psycopg://user:pw@host/db") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("sqlite"):
        db = sa.create_engine(parsed, connect_args={"timeout": 30})

        @sa.event.listens_for(db, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, open transactions, so BEGIN IMMEDIATE takes the write lock
            # at the start of every operation and two writers queue instead of failing mid-way.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # Boards and reports scan large covering indexes: a bigger page cache and memory-mapped reads
            # save a system call per page.
            cur.execute("PRAGMA cache_size=-65536")
            cur.execute("PRAGMA mmap_size=1073741824")
            cur.close()

        @sa.event.listens_for(db, "begin")
        def _begin_immediate(conn: Connection) -> None:
            # on the driver's cursor: through exec_driver_sql it cost a third of a one-lead operation
            try:
                conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
            except conn.dialect.loaded_dbapi.Error as exc:
                raise _sqlalchemy_error(conn, "BEGIN IMMEDIATE", exc) from exc

        return db
    try:
        return sa.create_engine(parsed, pool_pre_ping=True)
    except ImportError as exc:
        raise InvalidInputError(f"the driver for {parsed.drivername} is not installed ({exc.name}); "
                                "for PostgreSQL: pip install 'leadflow[postgres]'") from None


def loads(text: str) -> Any:
    return json.loads(text)


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    raise TypeError(f"not JSON-serialisable: {value!r}")


# One encoder for every call: json.dumps with options builds a new one each time (a bulk import calls this
# twice per lead).
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=_json_default)


def dumps(data: Any) -> str:
    return _ENCODER.encode(data)


# -- leads -----------------------------------------------------------------------------------

#: The lead's columns, each the LeadState attribute of the same name (but ``fields_json``).
_COLUMN_ATTRS = tuple(c.key for c in leads.c if c.key not in ("id", "row_version"))


def lead_columns(state: LeadState) -> dict[str, Any]:
    return {name: getattr(state, name) if name != "fields_json" else dumps(state.fields) for name in _COLUMN_ATTRS}


def changed_columns(before: LeadState, after: LeadState) -> dict[str, Any]:
    """The ``lead_columns`` whose values differ between two states of a lead, with ``after``'s values (in
    ``lead_columns``' order), without building both rows: the fields are serialised only when they changed."""
    out: dict[str, Any] = {}
    for name in _COLUMN_ATTRS:
        if name == "fields_json":
            old, new = before.fields, after.fields
            # equal dicts may still serialise apart (1 == True == 1.0): compare the types too
            if old != new or any(type(v) is not type(new[k]) for k, v in old.items()):
                out[name] = dumps(new)
        elif (value := getattr(after, name)) != getattr(before, name):
            out[name] = value
    return out


def _state_of(row: Any) -> LeadState:
    return LeadState(
        id=row["id"],
        row_version=row["row_version"],
        fields=json.loads(row["fields_json"]),
        **{k: row[k] for k in _LEAD_KEYS},
    )


# Statements run by every operation are built once, with bound parameters: building and hashing a new
# statement per call cost more than the database's own work for a single lead.
_LEAD_BY_ID = sa.select(leads).where(leads.c.id == sa.bindparam("lead_id"))
_TASKS_OF_LEAD = sa.select(lead_tasks).where(lead_tasks.c.lead_id == sa.bindparam("lead_id"))
_TASK_KEY = (lead_tasks.c.lead_id == sa.bindparam("k_lead_id"), lead_tasks.c.stage == sa.bindparam("k_stage"),
             lead_tasks.c.task_id == sa.bindparam("k_task_id"))
_UPDATE_TASK = sa.update(lead_tasks).where(*_TASK_KEY).values(
    {name: sa.bindparam(f"v_{name}") for name in ("state", "due_at", "done_by", "done_at", "note")})
_DELETE_TASK = sa.delete(lead_tasks).where(*_TASK_KEY)
_INSERT_TASK = sa.insert(lead_tasks).values({c.key: sa.bindparam(c.key) for c in lead_tasks.c})


def read_lead(conn: Connection, lead_id: int) -> LeadState | None:
    rows = driver_rows(conn, _LEAD_BY_ID, {"lead_id": lead_id})
    if not rows:
        return None
    state = _state_of(rows[0])
    for t in driver_rows(conn, _TASKS_OF_LEAD, {"lead_id": lead_id}):
        state.tasks[(t["stage"], t["task_id"])] = TaskState(
            stage=t["stage"], id=t["task_id"], state=t["state"], due_at=t["due_at"],
            done_by=t["done_by"], done_at=t["done_at"], note=t["note"],
        )
    return state


_LEAD_KEYS = [c.key for c in leads.c if c.key not in ("id", "row_version", "fields_json")]


def _task_row(lead_id: int, t: TaskState) -> dict[str, Any]:
    return {"lead_id": lead_id, "stage": t.stage, "task_id": t.id, "state": t.state, "due_at": t.due_at,
            "done_by": t.done_by, "done_at": t.done_at, "note": t.note}


def _count_key(state: LeadState) -> tuple[str, str, str, str] | None:
    if state.status != "open":
        return None
    return (state.process, state.stage, state.team or "", state.owner or "")


def bump_counts(conn: Connection, before: LeadState | None, after: LeadState) -> None:
    """Move a lead's contribution in ``stage_counts`` from where ``before`` had it to where ``after`` has it."""
    deltas: dict[tuple[str, str, str, str], list[int]] = {}
    count_deltas(deltas, before, after)
    add_counts(conn, deltas)


def count_deltas(deltas: dict[tuple[str, str, str, str], list[int]], before: LeadState | None,
                 after: LeadState) -> None:
    """Add a lead's move in ``stage_counts`` to ``deltas`` (``add_counts`` writes them, summed per key)."""
    old, new = (_count_key(before) if before else None), _count_key(after)
    old_value = (before.value_minor or 0) if before else 0
    new_value = after.value_minor or 0
    if old == new and old_value == new_value:
        return
    for key, sign, value in ((old, -1, old_value), (new, 1, new_value)):
        if key is not None:
            entry = deltas.setdefault(key, [0, 0])
            entry[0] += sign
            entry[1] += sign * value


def _add_count(conn: Connection, key: tuple[str, str, str, str], leads_: int, value: int) -> None:
    process, stage, team, owner = key
    driver_execute(conn, _count_upsert(conn.dialect.name), {
        "process": process, "stage": stage, "team": team, "owner": owner, "d_leads": leads_, "d_value": value})


@functools.cache
def _count_upsert(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(stage_counts).values(
        process=sa.bindparam("process"), stage=sa.bindparam("stage"), team=sa.bindparam("team"),
        owner=sa.bindparam("owner"), leads=sa.bindparam("d_leads"), value_minor=sa.bindparam("d_value"))
    return statement.on_conflict_do_update(
        index_elements=["process", "stage", "team", "owner"],
        set_={"leads": stage_counts.c.leads + sa.bindparam("d_leads"),
              "value_minor": stage_counts.c.value_minor + sa.bindparam("d_value")})


def add_counts(conn: Connection, deltas: dict[tuple[str, str, str, str], list[int]]) -> None:
    """Apply the summed ``stage_counts`` changes of a bulk write, ``{(process, stage, team, owner): [n, value]}``."""
    for count_key, (n, value) in deltas.items():
        if n or value:
            _add_count(conn, count_key, n, value)


def recount(conn: Connection) -> None:
    """Rebuild ``stage_counts`` from the leads (after a bulk load that bypassed the engine)."""
    conn.execute(sa.delete(stage_counts))
    team = sa.func.coalesce(leads.c.team, "")
    owner = sa.func.coalesce(leads.c.owner, "")
    conn.execute(sa.insert(stage_counts).from_select(
        ["process", "stage", "team", "owner", "leads", "value_minor"],
        sa.select(leads.c.process, leads.c.stage, team, owner, sa.func.count(),
                  sa.func.coalesce(sa.func.sum(leads.c.value_minor), 0))
        .where(leads.c.status == "open").group_by(leads.c.process, leads.c.stage, team, owner)))


# -- the stages each lead reached (engine.visits) ------------------------------------------------

#: The lead's own columns that ``lead_stages`` repeats on each of its rows.
_STAGE_LEAD_KEYS = ("team", "owner", "status", "closed_at")


def _stage_lead_columns(state: LeadState) -> dict[str, Any]:
    return {"team": state.team, "owner": state.owner, "status": state.status, "closed_at": state.closed_at}


def _visit_row(state: LeadState, visit: visits.Visit) -> dict[str, Any]:
    return {"lead_id": state.id, "stage": visit.stage, "process": state.process, "created_at": state.created_at,
            **_stage_lead_columns(state), "entered_at": visit.entered_at, "stay_started_at": visit.stay_started_at,
            "seconds": visit.seconds, "moved_on": visit.moved_on}


def new_lead_visits(state: LeadState) -> list[dict[str, Any]]:
    """The ``lead_stages`` rows of a lead just created: the stage it starts in (what ``follow_stages`` writes
    for a new lead; bulk loads build their rows from it)."""
    stays: dict[str, visits.Visit] = {}
    visits.follow(stays, visits.moves(None, state))
    return [_visit_row(state, stays[stage]) for stage in sorted(stays)]


_VISITS_OF_LEAD = sa.select(lead_stages.c.stage, lead_stages.c.entered_at, lead_stages.c.stay_started_at,
                            lead_stages.c.seconds, lead_stages.c.moved_on).where(
    lead_stages.c.lead_id == sa.bindparam("lead_id"))
_UPDATE_VISIT = sa.update(lead_stages).where(
    lead_stages.c.lead_id == sa.bindparam("k_lead_id"), lead_stages.c.stage == sa.bindparam("k_stage")).values(
    {name: sa.bindparam(f"v_{name}") for name in ("stay_started_at", "seconds", "moved_on")})
_INSERT_VISIT = sa.insert(lead_stages).values({c.key: sa.bindparam(c.key) for c in lead_stages.c})


@functools.lru_cache(maxsize=16)
def _visits_of_leads(n: int) -> sa.Select[Any]:
    return sa.select(lead_stages.c.lead_id, *_VISITS_OF_LEAD.selected_columns).where(
        lead_stages.c.lead_id.in_([sa.bindparam(f"id{k}") for k in range(n)]))


def _read_visits(conn: Connection, lead_ids: list[int]) -> dict[int, dict[str, visits.Visit]]:
    """The stages each lead reached (one row per stage, a short range of the primary key per lead)."""
    if len(lead_ids) == 1:
        rows = driver_rows(conn, _VISITS_OF_LEAD, {"lead_id": lead_ids[0]})
        for row in rows:
            row["lead_id"] = lead_ids[0]
    else:
        rows = _rows_by_ids(conn, _visits_of_leads, lead_ids)
    out: dict[int, dict[str, visits.Visit]] = {}
    for r in rows:
        out.setdefault(r["lead_id"], {})[r["stage"]] = visits.Visit(
            r["stage"], r["entered_at"], r["stay_started_at"], int(r["seconds"]), bool(r["moved_on"]))
    return out


@functools.lru_cache(maxsize=64)
def _update_stage_leads_statement(columns: tuple[str, ...]) -> sa.Update:
    return sa.update(lead_stages).where(lead_stages.c.lead_id == sa.bindparam("k_lead_id")).values(
        {name: sa.bindparam(f"v_{name}") for name in columns})


def follow_stages(conn: Connection, changes: list[tuple[LeadState | None, LeadState]]) -> None:
    """Keep ``lead_stages`` in step with a write of leads, each as (before, after); before is None for a new
    lead. Rows changed alike are written by one statement."""
    updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    moved: list[tuple[LeadState, bool, list[tuple[str, str, dt.datetime]]]] = []
    for before, after in changes:
        assert after.id is not None
        if before is not None:
            old, new = _stage_lead_columns(before), _stage_lead_columns(after)
            changed = {k: v for k, v in new.items() if old[k] != v}
            if changed:
                updates.setdefault(tuple(changed), []).append(
                    {"k_lead_id": after.id, **{f"v_{name}": value for name, value in changed.items()}})
        moves = visits.moves(visits.position(before), after)
        if moves:
            moved.append((after, before is None, moves))
    for columns, rows in updates.items():
        driver_executemany(conn, _update_stage_leads_statement(columns), rows)
    if not moved:
        return
    known = [after.id for after, new, _ in moved if not new and after.id is not None]
    current = _read_visits(conn, known) if known else {}
    changed_rows: list[dict[str, Any]] = []
    new_rows: list[dict[str, Any]] = []
    for after, _, moves in moved:
        assert after.id is not None
        stays = current.get(after.id, {})
        existing = set(stays)
        for stage in sorted(visits.follow(stays, moves)):
            visit = stays[stage]
            if stage in existing:
                changed_rows.append({"k_lead_id": after.id, "k_stage": stage, "v_seconds": visit.seconds,
                                     "v_stay_started_at": visit.stay_started_at, "v_moved_on": visit.moved_on})
            else:
                new_rows.append(_visit_row(after, visit))
    driver_executemany(conn, _UPDATE_VISIT, changed_rows)
    driver_executemany(conn, _INSERT_VISIT, new_rows)


def replay_stages(evs: list[Event], specs: SpecLookup) -> tuple[LeadState, dict[str, visits.Visit]]:
    """A lead's state and stage visits from its complete event log (the write path's moves, event by event)."""
    state: LeadState | None = None
    stays: dict[str, visits.Visit] = {}
    for event in evs:
        before = visits.position(state)
        state = apply(state, event, specs)
        visits.follow(stays, visits.moves(before, state))
    assert state is not None, "no events"
    return state, stays


def rebuild_stages(conn: Connection, specs: SpecLookup, *, batch: int = 2000) -> int:
    """Rebuild ``lead_stages`` from the event log (after an upgrade, or a bulk load that bypassed the engine).

    Returns the rows written. Every lead's events are replayed through ``state.apply``, ``batch`` leads at a time.
    """
    conn.execute(sa.delete(lead_stages))
    written = 0
    last = 0
    while True:
        ids = [r[0] for r in conn.execute(sa.select(leads.c.id).where(leads.c.id > last).order_by(leads.c.id)
                                          .limit(batch))]
        if not ids:
            return written
        last = ids[-1]
        logs: dict[int, list[Event]] = {}
        for r in conn.execute(sa.select(events.c.lead_id, events.c.kind, events.c.at, events.c.actor,
                                        events.c.data_json, events.c.id)
                              .where(events.c.lead_id >= ids[0], events.c.lead_id <= last)
                              .order_by(events.c.lead_id, events.c.id)):
            logs.setdefault(r[0], []).append(Event(kind=r[1], at=r[2], actor=r[3], data=json.loads(r[4]),
                                                   lead_id=r[0], id=r[5]))
        rows: list[dict[str, Any]] = []
        for lead_id, log in logs.items():
            state, stays = replay_stages(log, specs)
            state.id = lead_id
            rows.extend(_visit_row(state, v) for v in stays.values())
        if rows:
            conn.execute(sa.insert(lead_stages), rows)
            written += len(rows)


def _new_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def insert_lead(conn: Connection, state: LeadState) -> int:
    lead_id = _new_id(conn.execute(sa.insert(leads).values(row_version=1, **lead_columns(state))))
    bump_counts(conn, None, state)
    state.id = lead_id
    state.row_version = 1
    follow_stages(conn, [(None, state)])
    if state.tasks:
        conn.execute(sa.insert(lead_tasks), [_task_row(lead_id, t) for t in state.tasks.values()])
    return lead_id


def update_lead(conn: Connection, before: LeadState, after: LeadState) -> None:
    """Write ``after`` if nobody changed the row since ``before`` was read (optimistic locking)."""
    update_leads(conn, [(before, after)])


def update_leads(conn: Connection, changes: list[tuple[LeadState, LeadState]]) -> None:
    """Write leads' new states, each ``(before, after)`` of a different lead, in a few statements: leads whose
    changed columns are the same ones share one UPDATE (each with its own values), and so do their task and
    stage rows. Every lead under the optimistic lock: if any changed since ``before`` was read,
    ``ConcurrentUpdateError`` and the caller's transaction rolls back, so nothing is written.
    """
    updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for before, after in changes:
        assert after.id is not None
        changed = changed_columns(before, after)
        updates.setdefault(tuple(changed), []).append({
            "b_id": after.id, "b_version": before.row_version, "new_version": before.row_version + 1,
            **{f"v_{name}": value for name, value in changed.items()}})
    written = sum(driver_executemany(conn, _update_lead_statement(columns), rows) for columns, rows in updates.items())
    if written != len(changes):
        if len(changes) == 1:
            raise ConcurrentUpdateError(f"lead {changes[0][1].id} changed since you read it; nothing was written, "
                                        "try again")
        raise ConcurrentUpdateError(f"{len(changes) - written} of {len(changes)} leads changed since they were "
                                    "read; nothing was written, try again")
    deltas: dict[tuple[str, str, str, str], list[int]] = {}
    inserts: list[dict[str, Any]] = []
    task_updates: list[dict[str, Any]] = []
    deletes: list[dict[str, Any]] = []
    for before, after in changes:
        assert after.id is not None
        after.row_version = before.row_version + 1
        count_deltas(deltas, before, after)
        old = before.tasks
        for key, task in after.tasks.items():
            if key not in old:
                inserts.append(_task_row(after.id, task))
            elif old[key] != task:  # the dataclasses compare every column of the row
                task_updates.append({"k_lead_id": after.id, "k_stage": key[0], "k_task_id": key[1],
                                     **{f"v_{name}": getattr(task, name) for name in _TASK_VALUES}})
        # Task rows are the current-state projection (the history is in events): a stage's rows are overwritten
        # when the lead enters it again, and a migration drops the open tasks its target version no longer has.
        deletes.extend({"k_lead_id": after.id, "k_stage": key[0], "k_task_id": key[1]}
                       for key in old.keys() - after.tasks.keys())
    add_counts(conn, deltas)
    follow_stages(conn, list(changes))
    driver_executemany(conn, _INSERT_TASK, inserts)
    driver_executemany(conn, _UPDATE_TASK, task_updates)
    driver_executemany(conn, _DELETE_TASK, deletes)


#: Leads per statement when a bulk operation reads or writes by lists of ids.
_CHUNK = 500


@functools.lru_cache(maxsize=16)
def _leads_by_ids(n: int) -> sa.Select[Any]:
    return sa.select(leads).where(leads.c.id.in_([sa.bindparam(f"id{k}") for k in range(n)]))


@functools.lru_cache(maxsize=16)
def _tasks_of_leads(n: int) -> sa.Select[Any]:
    return sa.select(lead_tasks).where(lead_tasks.c.lead_id.in_([sa.bindparam(f"id{k}") for k in range(n)]))


def _rows_by_ids(conn: Connection, statement: Callable[[int], sa.Select[Any]], ids: list[int]
                 ) -> list[dict[str, Any]]:
    """``driver_rows`` of a select by a list of ids, ``_CHUNK`` ids per statement. The statements take one
    parameter per id: one per list length, built and compiled once, rather than an expanding IN rebuilt for
    every call."""
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows += driver_rows(conn, statement(len(chunk)), {f"id{k}": i for k, i in enumerate(chunk)})
    return rows


def read_leads(conn: Connection, lead_ids: list[int]) -> dict[int, LeadState]:
    """The stored states of many leads by id (those that exist), a few queries per 500 leads."""
    states: dict[int, LeadState] = {}
    lead_ids = [i for i in lead_ids if 0 < i < 2**63]  # no other id is stored (nor may be bound as BIGINT)
    for start in range(0, len(lead_ids), _CHUNK):
        chunk = lead_ids[start : start + _CHUNK]
        for row in _rows_by_ids(conn, _leads_by_ids, chunk):
            states[row["id"]] = _state_of(row)
        for t in _rows_by_ids(conn, _tasks_of_leads, chunk):
            states[t["lead_id"]].tasks[(t["stage"], t["task_id"])] = TaskState(
                stage=t["stage"], id=t["task_id"], state=t["state"], due_at=t["due_at"],
                done_by=t["done_by"], done_at=t["done_at"], note=t["note"])
    return states


_TASK_VALUES = ("state", "due_at", "done_by", "done_at", "note")


@functools.lru_cache(maxsize=1024)
def _update_lead_statement(columns: tuple[str, ...]) -> sa.Update:
    """UPDATE of the given lead columns (and the row version) under the optimistic lock."""
    return sa.update(leads).where(leads.c.id == sa.bindparam("b_id"), leads.c.row_version == sa.bindparam("b_version")
                                  ).values({"row_version": sa.bindparam("new_version"),
                                            **{name: sa.bindparam(f"v_{name}") for name in columns}})


OWNERSHIP_EVENTS = {"created": "owner", "assigned": "to", "rotated": "to"}


_INSERT_EVENT = sa.insert(events).values(
    {name: sa.bindparam(name) for name in ("lead_id", "client_id", "at", "actor", "kind", "data_json")})
_INSERT_OWNERSHIP = sa.insert(ownerships).values(
    {name: sa.bindparam(name) for name in ("client_id", "lead_id", "owner", "started_at", "how")})


def insert_events(conn: Connection, lead_id: int, client_id: int, evs: list[Event]) -> None:
    """Append one lead's events (their ids stay unread: the log is read back ordered by id)."""
    for ev in evs:
        ev.lead_id = lead_id
        driver_execute(conn, _INSERT_EVENT, {"lead_id": lead_id, "client_id": client_id, "at": ev.at,
                                             "actor": ev.actor, "kind": ev.kind, "data_json": dumps(ev.data)})
    for row in _ownership_rows(lead_id, client_id, evs):
        driver_execute(conn, _INSERT_OWNERSHIP, row)


def _ownership_rows(lead_id: int, client_id: int, evs: list[Event]) -> list[dict[str, Any]]:
    return [{"client_id": client_id, "lead_id": lead_id, "owner": ev.data[key], "started_at": ev.at, "how": ev.kind}
            for ev in evs for key in [OWNERSHIP_EVENTS.get(ev.kind)] if key and ev.data.get(key)]


class AlikeLead(NamedTuple):
    """One lead of a change written by ``write_alike``: who held it before and who holds it after."""

    id: int
    client_id: int
    row_version: int
    process: str
    value_minor: int | None
    owner_before: str | None
    team_before: str | None
    owner: str | None
    team: str | None


def write_alike(conn: Connection, stage: str, columns: dict[str, Any], tasks: list[TaskState],
                changed: list[AlikeLead], evs: list[tuple[AlikeLead, Event]]) -> None:
    """Many open leads of one stage changed alike, in a few statements (a rotation of 100,000 leads).

    Each lead gets its own owner and team; every other column in ``columns`` takes the same value, and the
    stage's task rows are replaced by ``tasks``. The same optimistic lock as ``update_lead``: if any lead
    changed since it was read, nothing is written (the caller's transaction rolls back).
    """
    if not changed:
        return
    names = list(columns)
    constants = [driver_value(conn, leads.c[name], columns[name]) for name in names]
    sets = ", ".join(f"{name} = {{}}" for name in ["owner", "team", *names])
    written = _executemany(
        conn, f"UPDATE leads SET {sets}, row_version = row_version + 1 WHERE id = {{}} AND row_version = {{}}",
        [leads.c.owner, leads.c.team, *([None] * len(names)), None, None],
        [(lead.owner, lead.team, *constants, lead.id, lead.row_version) for lead in changed])
    if written != len(changed):
        raise ConcurrentUpdateError(f"{len(changed) - written} of {len(changed)} leads changed since they "
                                    "were read; nothing was written, try again")
    _executemany(conn, "DELETE FROM lead_tasks WHERE lead_id = {} AND stage = {}", [None, None],
                 [(lead.id, stage) for lead in changed])
    t = lead_tasks.c
    task_values = [tuple(driver_value(conn, column, value) for column, value in zip(
        (t.stage, t.task_id, t.state, t.due_at, t.done_by, t.done_at, t.note),
        (task.stage, task.id, task.state, task.due_at, task.done_by, task.done_at, task.note), strict=True))
        for task in tasks]
    insert_rows(conn, lead_tasks, ["lead_id", "stage", "task_id", "state", "due_at", "done_by", "done_at", "note"],
                [(lead.id, *values) for lead in changed for values in task_values])
    # lead_stages repeats the owner and team on each stage row of the lead (the stage and status stay as they were)
    _executemany(conn, "UPDATE lead_stages SET owner = {}, team = {} WHERE lead_id = {}", [None, None, None],
                 [(lead.owner, lead.team, lead.id) for lead in changed
                  if (lead.owner, lead.team) != (lead.owner_before, lead.team_before)])
    deltas: dict[tuple[str, str, str, str], list[int]] = {}
    for lead in changed:
        for key, sign in (((lead.process, stage, lead.team_before or "", lead.owner_before or ""), -1),
                          ((lead.process, stage, lead.team or "", lead.owner or ""), 1)):
            entry = deltas.setdefault(key, [0, 0])
            entry[0] += sign
            entry[1] += sign * (lead.value_minor or 0)
    add_counts(conn, deltas)
    insert_events_bulk(conn, evs)


class _LeadKey(Protocol):
    @property
    def id(self) -> int | None: ...
    @property
    def client_id(self) -> int: ...


def insert_events_bulk(conn: Connection, evs: Sequence[tuple[_LeadKey, Event]]) -> None:
    """Append many leads' events (and the ownerships they start) in two statements.

    Events that share one ``data`` dict are serialised once.
    """
    texts: dict[int, str] = {}
    stamps: dict[dt.datetime, Any] = {}
    rows: list[tuple[Any, ...]] = []
    owner_rows: list[tuple[Any, ...]] = []
    for lead, ev in evs:
        assert lead.id is not None
        ev.lead_id = lead.id
        text = texts.get(id(ev.data))
        if text is None:
            text = texts[id(ev.data)] = dumps(ev.data)
        at = stamps.get(ev.at)
        if at is None:
            at = stamps[ev.at] = driver_value(conn, events.c.at, ev.at)
        rows.append((lead.id, lead.client_id, at, ev.actor, ev.kind, text))
        owner_rows.extend((r["client_id"], r["lead_id"], r["owner"], at, r["how"])
                          for r in _ownership_rows(lead.id, lead.client_id, [ev]))
    insert_rows(conn, events, ["lead_id", "client_id", "at", "actor", "kind", "data_json"], rows)
    insert_rows(conn, ownerships, ["client_id", "lead_id", "owner", "started_at", "how"], owner_rows)


def _executemany(conn: Connection, sql: str, columns: list[sa.Column[Any] | None],
                 rows: list[tuple[Any, ...]]) -> int:
    """One statement for many rows, handed to the driver as is (SQLAlchemy's per-row parameter handling
    costs more than the database's own work on a 100,000-lead rotation). Values go through each column
    type's own bind processor, so they are stored exactly as SQLAlchemy stores them; a None column passes
    its value as it is (integers, strings, or values already converted). Returns the rows matched."""
    if not rows:
        return 0
    processors = [_processor(conn, c) if c is not None else None for c in columns]
    converted = rows if not any(processors) else [
        tuple(p(v) if p is not None else v for p, v in zip(processors, row, strict=True)) for row in rows]
    return _driver_executemany(conn, sql.format(*[_marker(conn)] * len(columns)), converted)


def _marker(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _driver_executemany(conn: Connection, sql: str, rows: list[tuple[Any, ...]] | list[list[Any]]) -> int:
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        try:
            cursor.executemany(sql, rows)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _sqlalchemy_error(conn, sql, exc) from exc
        return int(cursor.rowcount)
    finally:
        cursor.close()


def _sqlalchemy_error(conn: Connection, sql: str, exc: Exception) -> sa.exc.StatementError:
    """A driver's error as SQLAlchemy raises it (``sa.exc.OperationalError``...), as if run by ``conn.execute``:
    callers and the CLI handle one family of database errors."""
    return sa.exc.DBAPIError.instance(sql, None, exc, conn.dialect.loaded_dbapi.Error)


def _processor(conn: Connection, column: sa.Column[Any]) -> Any:
    # the dialect's own type: a generic DateTime has no bind processor, SQLite's DATETIME writes the stored text
    return column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)


def driver_value(conn: Connection, column: sa.Column[Any], value: Any) -> Any:
    """``value`` as the driver receives it for ``column`` (a SQLite date-time becomes its stored text)."""
    processor = _processor(conn, column)
    return processor(value) if processor is not None and value is not None else value


class _DriverStatement(NamedTuple):
    sql: str
    positional: bool  # the driver takes the parameters as a sequence in ``params``' order, else by name
    params: tuple[tuple[str, Any], ...]  # (name, the bind processor of its type or None), in order
    keys: tuple[str, ...]  # the selected columns
    results: tuple[Any, ...]  # ... and their result processors (None: as the driver returns it)


@functools.lru_cache(maxsize=1024)
def _driver_statement(statement: sa.Executable, dialect: sa.Dialect) -> _DriverStatement:
    assert isinstance(statement, sa.ClauseElement)
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, sa.sql.compiler.SQLCompiler)
    names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
    selected: list[Any] = list(statement.selected_columns) if isinstance(statement, sa.Select) else []
    return _DriverStatement(
        compiled.string, compiled.positional,
        tuple((name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names),
        tuple(str(c.key) for c in selected),
        tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in selected))


def _driver_run(conn: Connection, statement: sa.Executable, params: dict[str, Any]) -> tuple[Any, _DriverStatement]:
    compiled = _driver_statement(statement, conn.dialect)
    values = [p(params[name]) if p is not None else params[name] for name, p in compiled.params]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(compiled.sql, values if compiled.positional else dict(zip(
            (name for name, _ in compiled.params), values, strict=True)))
    except conn.dialect.loaded_dbapi.Error as exc:
        cursor.close()
        raise _sqlalchemy_error(conn, compiled.sql, exc) from exc
    except BaseException:
        cursor.close()
        raise
    return cursor, compiled


def driver_execute(conn: Connection, statement: sa.Executable, params: dict[str, Any]) -> int:
    """Run a statement built once (with bound parameters) on the driver's cursor, as ``conn.execute`` would
    but without its per-call work, which cost more than the database's own for one lead; returns the rows
    matched. Values go through each bound type's processor, exactly as SQLAlchemy stores them."""
    cursor, _ = _driver_run(conn, statement, params)
    try:
        return int(cursor.rowcount)
    finally:
        cursor.close()


def driver_executemany(conn: Connection, statement: sa.Executable, rows: list[dict[str, Any]]) -> int:
    """``driver_execute`` for many parameter sets in one call; returns the rows matched by all of them."""
    if not rows:
        return 0
    compiled = _driver_statement(statement, conn.dialect)
    values = [[p(row[name]) if p is not None else row[name] for name, p in compiled.params] for row in rows]
    names = [name for name, _ in compiled.params]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(compiled.sql, values if compiled.positional else [
            dict(zip(names, v, strict=True)) for v in values])
        return int(cursor.rowcount)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _sqlalchemy_error(conn, compiled.sql, exc) from exc
    finally:
        cursor.close()


def driver_rows(conn: Connection, statement: sa.Select[Any], params: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a select built once, read on the driver's cursor, each value as SQLAlchemy returns it."""
    cursor, compiled = _driver_run(conn, statement, params)
    try:
        rows = cursor.fetchall()
    finally:
        cursor.close()
    keys, results = compiled.keys, compiled.results
    if not any(results):
        return [dict(zip(keys, row, strict=True)) for row in rows]
    return [{k: (p(v) if p is not None else v) for k, p, v in zip(keys, results, row, strict=True)} for row in rows]


def insert_many(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows with the same keys in one driver-level executemany, each distinct value of a column
    converted once (a batch's rows repeat one instant): the outbox rows of a million imported leads."""
    if not rows:
        return
    names = list(rows[0])
    converters: list[tuple[Any, dict[Any, Any]]] = [(_processor(conn, table.c[name]), {}) for name in names]
    values = []
    for row in rows:
        out = []
        for name, (processor, seen) in zip(names, converters, strict=True):
            value = row[name]
            if processor is not None and value is not None:
                try:
                    value = seen[value]
                except KeyError:
                    value = seen[value] = processor(value)
            out.append(value)
        values.append(out)
    insert_rows(conn, table, names, values)


def insert_rows(conn: Connection, table: sa.Table, names: list[str],
                rows: list[tuple[Any, ...]] | list[list[Any]]) -> None:
    """Insert rows that already hold driver values (``driver_value``), in one driver-level executemany:
    for bulk loads whose repeated values (the same instant, the same stage) are converted once, not per row."""
    if rows:
        quote = conn.dialect.identifier_preparer.quote
        sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
               f"VALUES ({', '.join([_marker(conn)] * len(names))})")
        _driver_executemany(conn, sql, rows)


def read_events(conn: Connection, lead_id: int) -> list[Event]:
    rows = conn.execute(sa.select(events).where(events.c.lead_id == lead_id).order_by(events.c.id)).mappings()
    return [Event(kind=r["kind"], at=r["at"], actor=r["actor"], data=json.loads(r["data_json"]),
                  lead_id=r["lead_id"], id=r["id"]) for r in rows]
