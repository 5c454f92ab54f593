"""The event log: appending a lead's events, reading them back."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.state import Event
from engine.store.codec import dumps
from engine.store.driver import driver_execute, driver_value, insert_rows
from engine.store.projections import ownership_rows
from engine.store.schema import events, ownerships

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
    for row in ownership_rows(lead_id, client_id, evs):
        driver_execute(conn, _INSERT_OWNERSHIP, row)


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
                          for r in ownership_rows(lead.id, lead.client_id, [ev]))
    insert_rows(conn, events, ["lead_id", "client_id", "at", "actor", "kind", "data_json"], rows)
    insert_rows(conn, ownerships, ["client_id", "lead_id", "owner", "started_at", "how"], owner_rows)


def read_events(conn: Connection, lead_id: int) -> list[Event]:
    rows = conn.execute(sa.select(events).where(events.c.lead_id == lead_id).order_by(events.c.id)).mappings()
    return [Event(kind=r["kind"], at=r["at"], actor=r["actor"], data=json.loads(r["data_json"]),
                  lead_id=r["lead_id"], id=r["id"]) for r in rows]
