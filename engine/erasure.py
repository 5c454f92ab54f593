"""Erasing a client's personal data (GDPR article 17): what is personal, how each copy of it is replaced, and the one
audited path that may rewrite the events (``erase``; the triggers of migration 0007 let it through while its
``erasures`` row is unfinished).

What stays: the client and its leads, their stages, statuses, owners, values, reasons, dates and task states, so
every report counts alike afterwards. What goes: the names, e-mail addresses, phone numbers, company names and tax
ids of the client and its contact persons, every free text written about them (activities, reports, notes of
tasks, closings, extensions and reviews, the reasons of corrections), the values of fields the process marks
``personal``, and every other copy of those strings (event data, the outbox's addresses and subjects).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import store
from engine.spec import ProcessSpec
from engine.state import Event, SpecLookup, rebuild
from engine.store import clients, contacts, erasures, events, leads, outbox, reviews
from engine.vocab import EventKind

log = logging.getLogger(__name__)

#: What every erased text becomes.
PLACEHOLDER = "[erased]"

#: The free texts of each kind of event: written about the client, erased whatever they say.
FREE_TEXTS: dict[str, tuple[str, ...]] = {
    EventKind.TASK_DONE: ("note",), EventKind.CLOSED: ("note",), EventKind.REPORTED: ("text",),
    EventKind.EXTENDED: ("reason",), EventKind.ACTIVITY: ("text",), EventKind.REVIEW_CONFIRMED: ("note",),
    EventKind.REVIEW_RETURNED: ("note",), EventKind.CLIENT_EDITED: ("reason",), EventKind.MAIL_SENT: ("address",),
    EventKind.MAIL_FAILED: ("error",), EventKind.RECALLED: ("note",),
}
_SEPARATORS = r"[\s./()-]*"


def covered_clients(conn: Connection, client_id: int) -> list[int]:
    """The client and every client merged into it (the same person, whose leads and events it holds), at any depth."""
    found, todo = {client_id}, [client_id]
    while todo:
        merged = [int(r[0]) for r in conn.execute(sa.select(clients.c.id).where(clients.c.merged_into.in_(todo)))]
        todo = [m for m in merged if m not in found]
        found.update(todo)
    return sorted(found)


def personal_strings(conn: Connection, client_ids: list[int]) -> list[str]:
    """The strings to erase wherever they occur: names, companies, addresses, phones and tax ids of the clients and
    their contact persons (a name also folded, as search stores it)."""
    found: set[str] = set()
    for table, columns in ((clients, ("name", "company", "email", "phone", "tax_id", "email_norm", "search_name")),
                           (contacts, ("name", "email", "phone", "email_norm"))):
        key = table.c.id if table is clients else table.c.client_id
        for row in conn.execute(sa.select(*[table.c[c] for c in columns]).where(key.in_(client_ids))):
            found.update(str(v) for v in row if v)
    return sorted((s for s in found if len(s) >= 3), key=len, reverse=True)


def _pattern(strings: list[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern of every string; a phone number also as typed (spaces, dashes, a trunk 0 or
    the 00 of its country code)."""
    parts = []
    for s in strings:
        if re.fullmatch(r"\+\d{6,}", s):
            digits = s[1:]
            national = [_SEPARATORS.join(digits[i:]) for i in range(1, 4)]  # the country code is 1-3 digits
            parts.append(rf"(?:(?:\+|00){_SEPARATORS.join(digits)}|0?(?:{'|'.join(national)}))")
        else:
            parts.append(re.escape(s))
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


class Scrubber:
    """Replaces the personal data of one erasure in the values that may hold them. The ids and names an event's
    data uses to rebuild the lead (stages, tasks, owners, reasons, options) are never touched, whatever the
    client is called: a client named Anna does not erase the salesperson anna."""

    def __init__(self, strings: list[str]):
        self.pattern = _pattern(strings)

    def text(self, value: str | None) -> str | None:
        """A text that may quote the client (a subject, an error): every personal string in it replaced."""
        if value is None or self.pattern is None:
            return value
        return self.pattern.sub(PLACEHOLDER, value)

    def event(self, kind: str, data: dict[str, Any], spec: ProcessSpec) -> dict[str, Any]:
        """An event's data with its free texts and its personal fields' values replaced, and the personal strings
        in its other text fields' values."""
        data = dict(data)
        for key in FREE_TEXTS.get(kind, ()):
            if data.get(key) is not None:
                data[key] = PLACEHOLDER
        if kind == EventKind.CREATED and data.get("fields"):
            values = {k: self.field(spec, k, v) for k, v in data["fields"].items()}
            data["fields"] = {k: v for k, v in values.items() if v is not None}
        if kind == EventKind.FIELD_SET and not data.get("attribute"):
            for key in ("before", "after"):
                data[key] = self.field(spec, data["field"], data.get(key))
        return data

    def field(self, spec: ProcessSpec, name: str, value: Any) -> Any:
        """A field's value: a personal one's text becomes the placeholder and any other value of it goes; a text
        field's value has the personal strings in it replaced; the rest (numbers, options, dates) stays."""
        declared = next((f for f in spec.fields if f.id == name), None)
        if value is None or declared is None:
            return value
        if declared.personal:
            return PLACEHOLDER if isinstance(value, str) else None
        return self.text(value) if declared.type == "text" and isinstance(value, str) else value


def erase(conn: Connection, client_id: int, *, by: str, at: dt.datetime, reason: str, specs: SpecLookup) -> int:
    """Erase the personal data of ``client_id`` and the clients merged into it, in the caller's transaction;
    returns the number of its leads. The erasure is recorded (``erasures``: who, when) and a ``client_erased``
    event on each lead says so (who, when, why), never what."""
    ids = covered_clients(conn, client_id)
    strings = personal_strings(conn, ids)
    lead_ids = [int(r[0]) for r in conn.execute(sa.select(leads.c.id).where(leads.c.client_id.in_(ids))
                                                .order_by(leads.c.id))]
    event_leads = sorted({int(r[0]) for r in conn.execute(
        sa.select(events.c.lead_id).where(events.c.client_id.in_(ids)).distinct())} | set(lead_ids))
    scrub = Scrubber(strings)
    opened = [store.new_id(conn.execute(sa.insert(erasures).values(client_id=i, requested_by=by, started_at=at)))
              for i in ids]
    changes = []
    pasts: list[store.History] = []
    for lead_id in event_leads:
        before = store.read_lead(conn, lead_id)
        assert before is not None
        history = store.read_events(conn, lead_id)
        process, version = None, None
        for ev in history:
            if ev.kind == EventKind.CREATED:
                process, version = ev.data["process"], ev.data["process_version"]
            elif ev.kind == EventKind.MIGRATED:
                version = ev.data["to_version"]
            assert process is not None and version is not None
            data = scrub.event(ev.kind, ev.data, specs(process, version))
            if data != ev.data:
                conn.execute(sa.update(events).where(events.c.id == ev.id).values(data_json=store.dumps(data)))
                ev.data = data
        after = rebuild(history, specs)
        after.id, after.row_version = before.id, before.row_version
        mark = Event(kind=EventKind.CLIENT_ERASED, at=at, actor=by, data={"reason": reason})
        changes.append(store.LeadChange(before, after, [mark]))
        pasts.append(store.History([*history, mark], specs, lead_id))
    store.write_leads(conn, changes)
    store.history.rebuild_rows(conn, event_leads, pasts)  # the lead's past spans hold its texts too
    _erase_rows(conn, ids, event_leads, scrub)
    conn.execute(sa.update(erasures).where(erasures.c.id.in_(opened)).values(finished_at=at))
    return len(lead_ids)


def _erase_rows(conn: Connection, ids: list[int], lead_ids: list[int], scrub: Scrubber) -> None:
    """The copies outside the event log: the clients' and contacts' rows (and the search columns computed from
    them), the outbox's addresses and subjects, the reviews' notes."""
    name = PLACEHOLDER
    for client in ids:
        conn.execute(sa.update(clients).where(clients.c.id == client).values(
            **store.contact_values(name=name, company=None, email=None, phone=None, tax_id=None),
            company_key=None))
    conn.execute(sa.update(contacts).where(contacts.c.client_id.in_(ids)).values(
        name=name, role=None, email=None, phone=None, email_norm=None, phone_norm=None))
    if lead_ids:
        for row in conn.execute(sa.select(outbox.c.id, outbox.c.to_address, outbox.c.subject, outbox.c.last_error)
                                .where(outbox.c.lead_id.in_(lead_ids))).all():
            conn.execute(sa.update(outbox).where(outbox.c.id == row.id).values(
                to_address=PLACEHOLDER if row.to_address else None, subject=scrub.text(row.subject),
                last_error=scrub.text(row.last_error)))
        conn.execute(sa.update(reviews).where(reviews.c.lead_id.in_(lead_ids), reviews.c.note.is_not(None))
                     .values(note=PLACEHOLDER))
    if conn.dialect.name == "sqlite" and conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE name = 'client_search'").first() is not None:
        # FTS5 keeps a deleted row's trigrams in its segments until they are merged: merge them all now
        conn.exec_driver_sql("INSERT INTO client_search(client_search) VALUES ('optimize')")


def erased(conn: Connection, client_id: int) -> Any:
    """The finished erasure of the client, if any (its row: who, when)."""
    return conn.execute(sa.select(erasures).where(erasures.c.client_id == client_id,
                                                  erasures.c.finished_at.is_not(None))
                        .order_by(erasures.c.id)).mappings().first()


def checkpoint(db: sa.Engine) -> None:
    """After an erasure on SQLite: copy the write-ahead log into the file and empty it (its older frames hold the
    erased text); a reader holding an old snapshot (a long report) may keep it from finishing, which is logged."""
    raw = db.raw_connection()  # outside any transaction: a checkpoint cannot run inside one
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        busy = (cursor.fetchone() or (0,))[0]
    finally:
        raw.close()
    if busy:
        log.warning("after an erasure the write-ahead log could not be emptied: a reader still holds it; run "
                    "'leadflow check' or any write later, or 'PRAGMA wal_checkpoint(TRUNCATE)'")
