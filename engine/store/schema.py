"""The tables: every table of leadflow's database, in one ``MetaData`` with a naming convention, so constraints
have predictable names (the migrations in ``engine/migrations`` refer to them).

The current state of every lead lives in indexed columns (stage, status, owner, team, deadlines) so boards and
reports are SQL aggregates; the ``events`` table is the append-only history.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

SECONDS_PER_DAY = 86400


class seconds_between(sa.sql.expression.FunctionElement[int]):
    """SQL: whole seconds from ``start`` to ``end`` (two date-time expressions), ``seconds_between(start, end)``.

    One construct compiled per dialect, so that an index on it (``ix_lead_stages_to_close``: the forecast's days
    to a win) and the queries ordering by it hold the same expression, which is how SQLite and PostgreSQL match
    an expression to an index; the day's seconds are a literal for that (SQLite matches no bound parameter)."""

    type = sa.BigInteger()
    name = "seconds_between"
    inherit_cache = True


@compiles(seconds_between)
def _seconds_between_sqlite(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = element.clauses
    days = sa.func.julianday(end) - sa.func.julianday(start)
    return str(compiler.process(sa.cast(sa.func.round(days * sa.literal_column(str(SECONDS_PER_DAY))), sa.Integer),
                                **kw))


@compiles(seconds_between, "postgresql")
def _seconds_between_postgresql(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = element.clauses
    return str(compiler.process(sa.cast(sa.func.round(sa.func.extract("epoch", end - start)), sa.BigInteger), **kw))


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
    # the language the user reads leadflow in (engine/i18n.py); none: the environment's
    sa.Column("language", sa.String(8)),
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
    sa.Column("tax_id", sa.String(64), index=True),
    # a client merged into another (``client merge``): kept, with its own data, but searched and matched no more
    # (no index: "merged_into IS NULL" holds for nearly every client, and SQLite would read it as selective)
    sa.Column("merged_into", sa.Integer),
    # Search (engine/search.py): the folded name for exact and prefix matches, and the folded key (name, company,
    # e-mail, phone digits, tax id) for partial ones, through a trigram index the migration 0008 adds where the
    # database has one (SQLite's FTS5 table client_search, PostgreSQL's pg_trgm GIN index): not modelled here.
    sa.Column("search_name", sa.String(200), nullable=False, server_default=""),
    sa.Column("search_key", sa.Text, nullable=False, server_default=""),
    sa.Index("ix_clients_search_name", "search_name", postgresql_ops={"search_name": "varchar_pattern_ops"}),
    # B2B (docs/intake.md, "Companies and their people"): a company is a client of kind 'company' whose name is
    # the company's; its people are its ``contacts``. A person (B2C, the default) is a client as before.
    sa.Column("kind", sa.String(16), nullable=False, server_default="person"),
    # a company's name folded (case, spaces) so that rows naming it alike find one client
    sa.Column("company_key", sa.String(500), index=True),
    # the client's id in the system it was migrated from (unique; prefix ids of several systems: crm1:42)
    sa.Column("external_id", sa.String(200)),
    # the language of the client's mails (engine/i18n.py); none: the process's
    sa.Column("language", sa.String(8)),
    sa.Index("ix_clients_external_id", "external_id", unique=True),
)

# A company's people (a buyer, a site manager): a client of kind 'company' has any number of them.
contacts = sa.Table(
    "contacts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("client_id", sa.Integer, sa.ForeignKey("clients.id"), nullable=False, index=True),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("role", sa.String(200)),
    sa.Column("email", sa.String(320)),
    sa.Column("phone", sa.String(64)),
    sa.Column("email_norm", sa.String(320), index=True),
    sa.Column("phone_norm", sa.String(64), index=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

#: What the migrations add beside the modelled tables (compare_metadata skips them; tests/test_migrations.py).
UNMODELLED = ("client_search", "ix_clients_search_key_trgm")


def modelled(name: str | None, kind: str, parent_names: object) -> bool:
    """Alembic's ``include_name``: False for the search's trigram table and index, which migration 0008 makes
    where the database can (SQLite's FTS5 table and its shadow tables, PostgreSQL's pg_trgm index)."""
    return not (name and name.startswith(UNMODELLED))

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
    # the next contact the owner booked, and the calls that did not reach the client since the last that did
    sa.Column("next_contact_at", sa.DateTime),
    sa.Column("unanswered_calls", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("row_version", sa.Integer, nullable=False, default=1),
    # the deal's id in the system it was migrated from (unique; prefix ids of several systems: crm1:42)
    sa.Column("external_id", sa.String(200)),
    sa.Index("ix_leads_external_id", "external_id", unique=True),
    # The board: red and yellow leads of a stage are ranges of red_at in these covering indexes (with their
    # values), and a stage's most urgent leads are its first entries; too-long leads a range of ix_leads_age.
    sa.Index("ix_leads_board", "process", "status", "stage", "red_at", "value_minor"),
    sa.Index("ix_leads_owner_board", "owner", "status", "process", "stage", "red_at", "value_minor"),
    sa.Index("ix_leads_team_board", "team", "status", "process", "stage", "red_at", "value_minor"),
    sa.Index("ix_leads_age", "process", "status", "created_at", "stage", "team", "owner"),
    # The stand-up: a salesperson's red leads and those due today or next are ranges of red_at.
    sa.Index("ix_leads_owner_due", "owner", "status", "red_at"),
    sa.Index("ix_leads_owner_since", "owner", "status", "owner_since"),
    # The owner's booked contacts, in time order (the task list, the stand-up).
    sa.Index("ix_leads_owner_next_contact", "owner", "status", "next_contact_at"),
    # The board's lights of booked contacts: a stage's missed contacts and those due today are ranges of
    # next_contact_at here (covering); only leads with a booked contact are in it, so other writes never touch it.
    sa.Index("ix_leads_contact_board", "process", "status", "stage", "next_contact_at", "red_at", "value_minor",
             "team", "owner", sqlite_where=sa.text("next_contact_at IS NOT NULL"),
             postgresql_where=sa.text("next_contact_at IS NOT NULL")),
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
    # closings by someone else, covering (looked up in the table, the closings of a million migrated deals took
    # the salespeople report 1 s of its 3; migration 0017).
    sa.Index("ix_closures_report", "process", "kind", "closed_at", "owner", "team", "reason", "product",
             "value_minor", "lead_id"),
    sa.Index("ix_closures_client_id", "client_id", "closed_at", "owner", "process", "lead_id"),
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
    # The forecast's days to a win from a stage, in order: a median is an offset into a stage's won rows (sorting
    # the expression took 0.2 s a stage at a million deals: docs/performance.md, "At a million migrated deals,
    # session 12"); with their creation and closing, which the reports filter them by.
    sa.Index("ix_lead_stages_to_close", "process", "stage", "status",
             seconds_between(sa.column("entered_at"), sa.column("closed_at")), "created_at", "closed_at"),
)

# The leads' past for the reports as of an instant (engine.store.history): each lead's columns over time, one
# row per change of them (the fields and a few texts left out), and each stay in a stage, kept by every write in
# the same transaction. The leads changed after T are a range of ix_lead_spans_at (their current span begun after T).
lead_spans = sa.Table(
    "lead_spans", metadata,
    sa.Column("lead_id", sa.Integer, sa.ForeignKey("leads.id"), primary_key=True),
    sa.Column("started_at", sa.DateTime, primary_key=True),
    sa.Column("ended_at", sa.DateTime),
    *(sa.Column(c.name, c.type, nullable=c.nullable) for c in leads.c if c.name not in (
        "id", "row_version", "fields_json", "extension_reason", "external_id", "unanswered_calls")),
    # with the creation and the lead: the leads created by an instant and changed after it (their current span
    # begun after it) from the index alone (six months back at a million deals, 0.03 s; 0.8 s looked up in the table)
    sa.Index("ix_lead_spans_at", "ended_at", "started_at", "created_at", "lead_id"),
)

lead_stays = sa.Table(
    "lead_stays", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("lead_id", sa.Integer, sa.ForeignKey("leads.id"), nullable=False),
    sa.Column("stage", sa.String(64), nullable=False),
    sa.Column("entered_at", sa.DateTime, nullable=False),
    sa.Column("left_at", sa.DateTime),
    sa.Column("seconds", sa.BigInteger),
    sa.Column("moved_on", sa.Boolean, nullable=False),
    # a lead's stays by stage (the write path ends the open one), covering for the stays as of an instant
    sa.Index("ix_lead_stays_lead", "lead_id", "stage", "entered_at", "left_at", "seconds", "moved_on"),
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

# Facts about the database itself, one row each: ``purpose`` is ``demo`` or ``test`` for a database made by
# ``leadflow demo`` or ``leadflow init --test`` (only those honour LEADFLOW_NOW in local mode: engine/api.py,
# ``Engine.require_clock``); no row: a database for real work.
settings = sa.Table(
    "settings", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
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

# An import running as a job of the server (engine/intake/import_jobs.py): its progress while it runs (on SQLite,
# whose one writer is the import itself, the progress is a file beside the job: import_jobs.progress_file), then
# its report (``report_json``) or why it failed (``error`` in English, ``message`` in its starter's language).
import_jobs = sa.Table(
    "import_jobs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("process", sa.String(64), nullable=False),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # running, imported, aborted, failed
    sa.Column("rows_total", sa.Integer),  # None until known
    sa.Column("rows_read", sa.Integer, nullable=False),
    sa.Column("rejected", sa.Integer, nullable=False),
    sa.Column("bytes_read", sa.BigInteger, nullable=False),
    sa.Column("bytes_total", sa.BigInteger, nullable=False),
    sa.Column("report_json", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("message", sa.Text),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
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
    # the person an engine's notice is meant for (engine/notices.py): not sent once the lead is someone else's
    sa.Column("for_user", sa.String(200)),
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
