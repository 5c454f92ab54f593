"""The one way a client row is made: its values checked elsewhere, its derived columns computed here (the e-mail
and phone that find the client again, the folded name and key that search reads: engine/search.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection

from engine.rules import normalise_email, normalise_phone
from engine.search import client_search_columns
from engine.store.driver import insert_rows
from engine.store.schema import clients

#: The columns of a client row as ``client_row`` orders them.
CLIENT_COLUMNS = ("id", "name", "company", "email", "phone", "tax_id", "email_norm", "phone_norm", "search_name",
                  "search_key", "created_at")


def client_row(client_id: int, *, name: str, company: str | None, email: str | None, phone: str | None,
               tax_id: str | None, created_at: dt.datetime) -> tuple[Any, ...]:
    """A new client's row in the order of ``CLIENT_COLUMNS``, from values already checked (``phone`` in E.164)."""
    search_name, search_key = client_search_columns(name, company, email, phone, tax_id)
    return (client_id, name, company, email, phone, tax_id, normalise_email(email), normalise_phone(phone),
            search_name, search_key, created_at)


def contact_values(*, name: str, company: str | None, email: str | None, phone: str | None,
                   tax_id: str | None) -> dict[str, Any]:
    """The columns to UPDATE when a client's contact data change (a merge, an edit, an erasure): the values and
    every column derived from them, so search and the duplicate checks never see stale data."""
    row = client_row(0, name=name, company=company, email=email, phone=phone, tax_id=tax_id,
                     created_at=dt.datetime.min)
    return dict(zip(CLIENT_COLUMNS[1:-1], row[1:-1], strict=True))


def insert_clients(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Write new clients' rows (``client_row``; ids reserved with ``reserve_ids``, ``created_at`` in the driver's
    form: ``driver_value``) in one driver-level statement: an import's clients."""
    insert_rows(conn, clients, list(CLIENT_COLUMNS), list(rows))
