"""What a stage's ``on_enter`` actions do when a lead enters it: tasks for a role, e-mails, reminders.

``on_enter`` is pure: from the spec, the lead's state just after it entered a stage, and the moment, it
returns what to record and what to queue, and touches no database. ``store`` writes the queued mails of
many leads in one statement. The engine uses both for every entry (``created``, ``advanced``,
``reopened``), and bulk jobs (the CSV import) use the same two, so an entry means the same everywhere.

- ``create_task``: the task is already part of the stage (``StageSpec.all_tasks``), created open or not
  applicable by ``state.enter_stage``; the action is recorded with its role and deadline.
- ``send_email``: one outbox row, due at once, or ``after_days`` business days later.
- ``remind``: one outbox row, due ``after_days`` business days later.

Mails are rendered and sent later by ``leadflow run-due`` (engine/outbox.py); the entering event keeps
the list under ``data["actions"]``, each mail with its outbox key.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import calendar
from engine.spec import ProcessSpec
from engine.state import Event, LeadState
from engine.store import clients, insert_many, leads, outbox
from engine.vocab import EventKind, OutboxState

#: The events by which a lead enters a stage (and so runs its actions).
ENTERING = frozenset({EventKind.CREATED, EventKind.ADVANCED, EventKind.REOPENED})
#: A delayed mail or reminder goes out at this time of its business day (the installation's zone).
SEND_AT = dt.time(9, 0)


@dataclass
class Entry:
    """The effects of one lead entering one stage."""

    records: list[dict[str, Any]] = field(default_factory=list)  # kept in the entering event
    mails: list[dict[str, Any]] = field(default_factory=list)  # outbox rows

    def record_on(self, event: Event) -> None:
        if self.records:
            event.data["actions"] = self.records

    def for_lead(self, lead_id: int) -> Entry:
        """The same entry for another lead entering the same stage at the same moment, with keys of its own
        (a bulk import plans a stage's actions once per outcome of its conditional tasks)."""
        keys = {mail["key"]: new_key() for mail in self.mails}
        return Entry(records=[{**r, "outbox": keys[r["outbox"]]} if "outbox" in r else r for r in self.records],
                     mails=[{**mail, "key": keys[mail["key"]], "lead_id": lead_id} for mail in self.mails])


def new_key() -> str:
    """A mail's idempotency key (and its Message-ID's left part): 48 bits of milliseconds, then 80 random
    bits. Unique without asking the database, and increasing, so a million new keys go to the end of the
    outbox's unique index instead of all over it."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def due_after(entered: dt.datetime, days: int, country: str) -> dt.datetime:
    """``days`` business days after the day of ``entered``, at ``SEND_AT``."""
    return dt.datetime.combine(calendar.add_business_days(entered.date(), days, country), SEND_AT)


def on_enter(spec: ProcessSpec, state: LeadState, at: dt.datetime) -> Entry:
    """The actions of the stage ``state`` has just entered (``state.id`` must be known)."""
    stage = spec.stage(state.stage)
    entry = Entry()
    if stage is None or not stage.on_enter:
        return entry
    assert state.id is not None, "a lead's actions are planned once it has an id"
    for action in stage.on_enter:
        if action.kind == "create_task":
            assert action.task is not None
            task = state.tasks.get((stage.id, action.task.id))
            entry.records.append({"action": "create_task", "task": action.task.id, "owner": action.task.owner,
                                  "state": task.state if task else None,
                                  "due_at": task.due_at.isoformat() if task and task.due_at else None})
            continue
        assert action.template is not None and action.to is not None
        due = due_after(at, action.after_days, spec.calendar) if action.after_days else at
        kind = "email" if action.kind == "send_email" else "reminder"
        key = new_key()
        entry.mails.append({
            "key": key, "lead_id": state.id, "kind": kind,
            "template": action.template, "recipient": action.to, "stage": stage.id,
            "entered_at": state.stage_entered_at, "due_at": due, "state": OutboxState.QUEUED, "attempts": 0,
            "next_attempt_at": due, "created_at": at,
        })
        entry.records.append({"action": action.kind, "template": action.template, "to": action.to,
                              "due_at": due.isoformat(), "outbox": key})
    return entry


def store(conn: Connection, entries: Iterable[Entry]) -> int:
    """Queue the mails of many entries in one statement; returns how many are queued. A mail to the client due at
    once, whose client has no e-mail address, is stored ``cancelled`` with that reason instead (its lead and client
    are written already): nothing could send it, and a phone-only client is no delivery failure to alarm anyone
    (docs/automation.md). A delayed one stays queued: the client may have an address by then."""
    rows = [mail for entry in entries for mail in entry.mails]
    now_to_client = [mail for mail in rows if mail["recipient"] == "client" and mail["due_at"] <= mail["created_at"]]
    if now_to_client:
        found = conn.execute(sa.select(leads.c.id, clients.c.id, clients.c.name).join(
            clients, clients.c.id == leads.c.client_id).where(
            leads.c.id.in_({mail["lead_id"] for mail in now_to_client}),
            sa.or_(clients.c.email.is_(None), clients.c.email == ""))).all()
        without = {lead_id: (client_id, name) for lead_id, client_id, name in found}
        for mail in now_to_client:
            if mail["lead_id"] in without:
                mail["state"], mail["last_error"] = OutboxState.CANCELLED, no_client_address(
                    mail["lead_id"], *without[mail["lead_id"]])
    if any("last_error" in mail for mail in rows):  # one executemany: the same keys in every row
        rows = [{"last_error": None, **mail} for mail in rows]
    insert_many(conn, outbox, rows)
    return sum(mail["state"] == OutboxState.QUEUED for mail in rows)


def no_client_address(lead_id: int, client_id: int, name: str) -> str:
    """Why a mail to the client is not sent (the outbox's ``last_error``; at queueing or when it falls due)."""
    return (f"not sent: client {client_id} ({name}) of lead {lead_id} has no e-mail address; give it one "
            f"(leadflow client edit {client_id} --email ADDRESS --reason ...), then leadflow outbox retry")
