"""The event log: appending events (``append_events``, the one INSERT into ``events``), reading them back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.state import Event
from engine.store.codec import dumps
from engine.store.driver import driver_executemany_tuples
from engine.store.schema import events

_EVENT_NAMES = ("lead_id", "client_id", "at", "actor", "kind", "data_json")
_INSERT_EVENT = sa.insert(events).values({name: sa.bindparam(name) for name in _EVENT_NAMES})


def append_events(conn: Connection, evs: Sequence[tuple[int, int, Event]]) -> None:
    """Append events, each ``(lead_id, client_id, event)``, in one statement (their ids stay unread: the log is
    read back ordered by id). Events that share one ``data`` dict are serialised once.

    The write path (``engine.store.writes.write_leads``) appends the events of every change; the outbox appends
    the mail events, which change no lead."""
    texts: dict[int, str] = {}
    rows: list[tuple[Any, ...]] = []
    for lead_id, client_id, ev in evs:
        ev.lead_id = lead_id
        text = texts.get(id(ev.data))
        if text is None:
            text = texts[id(ev.data)] = dumps(ev.data)
        rows.append((lead_id, client_id, ev.at, ev.actor, ev.kind, text))
    driver_executemany_tuples(conn, _INSERT_EVENT, _EVENT_NAMES, rows)


def read_events(conn: Connection, lead_id: int) -> list[Event]:
    rows = conn.execute(sa.select(events).where(events.c.lead_id == lead_id).order_by(events.c.id)).mappings()
    return [Event(kind=r["kind"], at=r["at"], actor=r["actor"], data=json.loads(r["data_json"]),
                  lead_id=r["lead_id"], id=r["id"]) for r in rows]
