"""Persistence: the tables, the database engine, and reading/writing a lead's state.

SQLAlchemy Core over SQLite (the embedded default, WAL mode) or PostgreSQL.
The current state of every lead lives in indexed columns (stage, status,
owner, team, deadlines) so boards and reports are SQL aggregates; the
``events`` table is the append-only history. Schema changes go through Alembic
(``engine/migrations``).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError

from engine.errors import ConcurrentUpdateError, InvalidInputError
from engine.state import Event, LeadState, TaskState

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
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return db
    try:
        return sa.create_engine(parsed, pool_pre_ping=True)
    except ImportError as exc:
        raise InvalidInputError(f"the driver for {parsed.drivername} is not installed ({exc.name}); "
                                "for PostgreSQL: pip install 'leadflow[postgres]'") from None


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    raise TypeError(f"not JSON-serialisable: {value!r}")


# -- leads -----------------------------------------------------------------------------------

def _lead_columns(state: LeadState) -> dict[str, Any]:
    return {
        "client_id": state.client_id,
        "process": state.process,
        "process_version": state.process_version,
        "stage": state.stage,
        "status": state.status,
        "owner": state.owner,
        "team": state.team,
        "source": state.source,
        "product": state.product,
        "value_minor": state.value_minor,
        "fields_json": dumps(state.fields),
        "created_at": state.created_at,
        "stage_entered_at": state.stage_entered_at,
        "stage_due_at": state.stage_due_at,
        "last_activity_at": state.last_activity_at,
        "owner_since": state.owner_since,
        "closed_at": state.closed_at,
        "close_reason": state.close_reason,
        "close_note": state.close_note,
        "closed_from_stage": state.closed_from_stage,
        "red_at": state.red_at,
        "last_report": state.last_report,
        "last_report_at": state.last_report_at,
        "extended_until": state.extended_until,
        "extension_reason": state.extension_reason,
        "recalled_at": state.recalled_at,
        "rest_until": state.rest_until,
    }


def _state_of(row: Any) -> LeadState:
    return LeadState(
        id=row["id"],
        row_version=row["row_version"],
        fields=json.loads(row["fields_json"]),
        **{k: row[k] for k in _LEAD_KEYS},
    )


def read_lead(conn: Connection, lead_id: int) -> LeadState | None:
    row = conn.execute(sa.select(leads).where(leads.c.id == lead_id)).mappings().first()
    if row is None:
        return None
    state = _state_of(row)
    for t in conn.execute(sa.select(lead_tasks).where(lead_tasks.c.lead_id == lead_id)).mappings():
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
    old, new = (_count_key(before) if before else None), _count_key(after)
    old_value = (before.value_minor or 0) if before else 0
    new_value = after.value_minor or 0
    if old == new and old_value == new_value:
        return
    if old is not None:
        _add_count(conn, old, -1, -old_value)
    if new is not None:
        _add_count(conn, new, 1, new_value)


def _add_count(conn: Connection, key: tuple[str, str, str, str], leads_: int, value: int) -> None:
    process, stage, team, owner = key
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    statement = insert(stage_counts).values(process=process, stage=stage, team=team, owner=owner, leads=leads_,
                                            value_minor=value)
    conn.execute(statement.on_conflict_do_update(
        index_elements=["process", "stage", "team", "owner"],
        set_={"leads": stage_counts.c.leads + leads_, "value_minor": stage_counts.c.value_minor + value}))


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


def _new_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def insert_lead(conn: Connection, state: LeadState) -> int:
    lead_id = _new_id(conn.execute(sa.insert(leads).values(row_version=1, **_lead_columns(state))))
    bump_counts(conn, None, state)
    state.id = lead_id
    state.row_version = 1
    if state.tasks:
        conn.execute(sa.insert(lead_tasks), [_task_row(lead_id, t) for t in state.tasks.values()])
    return lead_id


def update_lead(conn: Connection, before: LeadState, after: LeadState) -> None:
    """Write ``after`` if nobody changed the row since ``before`` was read (optimistic locking)."""
    assert after.id is not None
    result = conn.execute(
        sa.update(leads)
        .where(leads.c.id == after.id, leads.c.row_version == before.row_version)
        .values(row_version=before.row_version + 1, **_lead_columns(after))
    )
    if result.rowcount != 1:
        raise ConcurrentUpdateError(f"lead {after.id} changed since you read it; nothing was written, try again")
    after.row_version = before.row_version + 1
    bump_counts(conn, before, after)
    old = {k: _task_row(after.id, t) for k, t in before.tasks.items()}
    for key, task in after.tasks.items():
        row = _task_row(after.id, task)
        if key not in old:
            conn.execute(sa.insert(lead_tasks).values(**row))
        elif old[key] != row:
            conn.execute(
                sa.update(lead_tasks)
                .where(lead_tasks.c.lead_id == after.id, lead_tasks.c.stage == key[0], lead_tasks.c.task_id == key[1])
                .values(state=task.state, due_at=task.due_at, done_by=task.done_by, done_at=task.done_at,
                        note=task.note)
            )
    # Task rows are the current-state projection (the history is in events): a stage's rows are overwritten
    # when the lead enters it again, and a migration drops the open tasks its target version no longer has.
    for key in old.keys() - after.tasks.keys():
        conn.execute(sa.delete(lead_tasks).where(lead_tasks.c.lead_id == after.id, lead_tasks.c.stage == key[0],
                                                 lead_tasks.c.task_id == key[1]))


OWNERSHIP_EVENTS = {"created": "owner", "assigned": "to", "rotated": "to"}


def insert_events(conn: Connection, lead_id: int, client_id: int, evs: list[Event]) -> None:
    for ev in evs:
        ev.lead_id = lead_id
        ev.id = _new_id(conn.execute(
            sa.insert(events).values(lead_id=lead_id, client_id=client_id, at=ev.at, actor=ev.actor,
                                     kind=ev.kind, data_json=dumps(ev.data))))
    rows = _ownership_rows(lead_id, client_id, evs)
    if rows:
        conn.execute(sa.insert(ownerships), rows)


def _ownership_rows(lead_id: int, client_id: int, evs: list[Event]) -> list[dict[str, Any]]:
    return [{"client_id": client_id, "lead_id": lead_id, "owner": ev.data[key], "started_at": ev.at, "how": ev.kind}
            for ev in evs for key in [OWNERSHIP_EVENTS.get(ev.kind)] if key and ev.data.get(key)]


def write_many(conn: Connection, changes: list[tuple[LeadState, LeadState, list[Event]]]) -> None:
    """``update_lead`` + ``insert_events`` for many leads in a few statements (bulk jobs such as rotation).

    The same optimistic lock: if any lead changed since it was read, nothing is written.
    """
    if not changes:
        return
    # Only the columns that changed are written; leads changed alike (a rotation) share one statement.
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for before, after, _ in changes:
        old_cols, new_cols = _lead_columns(before), _lead_columns(after)
        changed = tuple(k for k, v in new_cols.items() if old_cols[k] != v)
        groups.setdefault(changed, []).append({"b_id": after.id, "b_version": before.row_version,
                                               "new_version": before.row_version + 1,
                                               **{k: new_cols[k] for k in changed}})
        after.row_version = before.row_version + 1
    written = 0
    for columns, rows in groups.items():
        sets = ", ".join([*(f"{c} = {{}}" for c in columns), "row_version = {}"])
        written += _executemany(
            conn, f"UPDATE leads SET {sets} WHERE id = {{}} AND row_version = {{}}",
            [*(leads.c[c] for c in columns), leads.c.row_version, leads.c.id, leads.c.row_version],
            [(*(r[c] for c in columns), r["new_version"], r["b_id"], r["b_version"]) for r in rows])
    if written != len(changes):
        raise ConcurrentUpdateError(f"{len(changes) - written} of {len(changes)} leads changed since they "
                                    "were read; nothing was written, try again")
    new_tasks, changed_tasks = [], []
    deltas: dict[tuple[str, str, str, str], list[int]] = {}
    event_rows, owner_rows = [], []
    for before, after, evs in changes:
        assert after.id is not None
        old = {k: _task_row(after.id, t) for k, t in before.tasks.items()}
        for key, task in after.tasks.items():
            row = _task_row(after.id, task)
            if key not in old:
                new_tasks.append(row)
            elif old[key] != row:
                changed_tasks.append({f"t_{k}" if k in ("lead_id", "stage", "task_id") else k: v
                                      for k, v in row.items()})
        for count_key, sign, value in ((_count_key(before), -1, before.value_minor or 0),
                                       (_count_key(after), 1, after.value_minor or 0)):
            if count_key is not None:
                entry = deltas.setdefault(count_key, [0, 0])
                entry[0] += sign
                entry[1] += sign * value
        for ev in evs:
            ev.lead_id = after.id
            event_rows.append({"lead_id": after.id, "client_id": after.client_id, "at": ev.at, "actor": ev.actor,
                               "kind": ev.kind, "data_json": dumps(ev.data)})
        owner_rows.extend(_ownership_rows(after.id, after.client_id, evs))
    if new_tasks:
        conn.execute(sa.insert(lead_tasks), new_tasks)
    if changed_tasks:
        t = lead_tasks.c
        _executemany(
            conn, "UPDATE lead_tasks SET state = {}, due_at = {}, done_by = {}, done_at = {}, note = {} "
                  "WHERE lead_id = {} AND stage = {} AND task_id = {}",
            [t.state, t.due_at, t.done_by, t.done_at, t.note, t.lead_id, t.stage, t.task_id],
            [(r["state"], r["due_at"], r["done_by"], r["done_at"], r["note"], r["t_lead_id"], r["t_stage"],
              r["t_task_id"]) for r in changed_tasks])
    for count_key, (n, value) in deltas.items():
        if n or value:
            _add_count(conn, count_key, n, value)
    if event_rows:
        conn.execute(sa.insert(events), event_rows)
    if owner_rows:
        conn.execute(sa.insert(ownerships), owner_rows)


def insert_many(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """``INSERT`` of many rows with the same keys through ``_executemany`` (bulk jobs: a million outbox rows)."""
    if not rows:
        return
    names = list(rows[0])
    quote = conn.dialect.identifier_preparer.quote
    _executemany(conn, f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
                       f"VALUES ({', '.join('{}' for _ in names)})",
                 [table.c[n] for n in names], [tuple(r[n] for n in names) for r in rows], repeated=True)


def _executemany(conn: Connection, sql: str, columns: list[sa.Column[Any]], rows: list[tuple[Any, ...]], *,
                 repeated: bool = False) -> int:
    """One statement for many rows, handed to the driver as is (SQLAlchemy's per-row parameter handling
    costs more than the database's own work on a 100,000-lead rotation). Values go through each column
    type's own bind processor, so they are stored exactly as SQLAlchemy stores them; with ``repeated``
    (values that recur, such as one instant for a whole batch) each distinct value is converted once.
    Returns the rows matched."""
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    processors = [c.type.bind_processor(conn.dialect) for c in columns]
    if repeated:
        processors = [_memoised(p) if p is not None else None for p in processors]
    converted = [tuple(p(v) if p is not None else v for p, v in zip(processors, row, strict=True)) for row in rows]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql.format(*[marker] * len(columns)), converted)
        return int(cursor.rowcount)
    finally:
        cursor.close()


def _memoised(processor: Any) -> Any:
    seen: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            seen[value] = out = processor(value)
            return out
        except TypeError:  # not hashable
            return processor(value)

    return convert


def read_leads(conn: Connection, lead_ids: list[int]) -> dict[int, LeadState]:
    """Many leads at once (two queries per 500 ids), for bulk jobs; rows are unpacked by position."""
    out: dict[int, LeadState] = {}
    names = [c.key for c in leads.c]
    at = {name: i for i, name in enumerate(names)}
    keys = [(k, at[k]) for k in _LEAD_KEYS]
    task_cols = [lead_tasks.c.lead_id, lead_tasks.c.stage, lead_tasks.c.task_id, lead_tasks.c.state,
                 lead_tasks.c.due_at, lead_tasks.c.done_by, lead_tasks.c.done_at, lead_tasks.c.note]
    for start in range(0, len(lead_ids), 500):
        chunk = lead_ids[start : start + 500]
        for row in conn.execute(sa.select(leads).where(leads.c.id.in_(chunk))):
            state = LeadState(id=row[at["id"]], row_version=row[at["row_version"]],
                              fields=json.loads(row[at["fields_json"]]), **{k: row[i] for k, i in keys})
            out[state.id] = state  # type: ignore[index]
        for lead_id, stage, task_id, state_, due_at, done_by, done_at, note in conn.execute(
                sa.select(*task_cols).where(lead_tasks.c.lead_id.in_(chunk))):
            out[lead_id].tasks[(stage, task_id)] = TaskState(stage, task_id, state_, due_at, done_by, done_at, note)
    return out


def read_events(conn: Connection, lead_id: int) -> list[Event]:
    rows = conn.execute(sa.select(events).where(events.c.lead_id == lead_id).order_by(events.c.id)).mappings()
    return [Event(kind=r["kind"], at=r["at"], actor=r["actor"], data=json.loads(r["data_json"]),
                  lead_id=r["lead_id"], id=r["id"]) for r in rows]
