"""The clients of a history import's deals (engine/intake/history_import.py): a deal with a company belongs to
the company (one client a company, its person a contact of it); a deal without one to the person, found by e-mail
or phone. Each is looked up once an import and remembered, so an account's thousand deals cost one lookup."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import store
from engine.intake.bulk_import import first_ids
from engine.store import clients, contacts
from engine.vocab import ClientKind


class DealClient(NamedTuple):
    """What a deal's row says of its client (``Deal.client``): all that finding or making the client needs, a
    few strings a worker process hands over (engine/intake/history_parallel.py)."""

    company: str | None
    name: str | None
    email: str | None
    phone: str | None
    email_norm: str | None
    phone_norm: str | None
    role: str | None
    tax_id: str | None = None


class DealClients:
    """The client of every deal of one history import, inside its transaction; ``stats`` counts new, existing and
    repeated clients."""

    def __init__(self, conn: Connection, at: dt.datetime, stats: dict[str, int]):
        self.conn, self.at, self.stats = conn, at, stats
        # (company key, folded tax id or "") -> client id, found or made by this import; (key, "") is the first
        # client of that name, which a row without a tax id joins
        self._companies: dict[tuple[str, str], int] = {}
        self._people: dict[str, int] = {}  # e-mail or phone key -> client id
        self._contacts: set[tuple[int, str]] = set()  # (company, folded name) known
        self._known_contacts: set[int] = set()  # companies whose stored contacts were read
        self._made: set[int] = set()  # the clients this import made

    def _count(self, client_id: int) -> None:
        """A deal of a client found: one that existed before the import, or one an earlier row made (in this batch,
        a negative id still, or in an earlier one)."""
        self.stats["existing_clients" if client_id > 0 and client_id not in self._made else "repeated_clients"] += 1

    def resolve(self, deals: Sequence[DealClient]) -> list[int]:
        """Each deal's client id, in order: found, or made (the new ones inserted in one statement)."""
        from engine.services.clients import company_key

        conn = self.conn
        keys = {company_key(d.company) for d in deals if d.company} - {key for key, _ in self._companies}
        if keys:
            for key, tax_id, client_id in conn.execute(sa.select(
                    clients.c.company_key, clients.c.tax_id, clients.c.id).where(
                    clients.c.company_key.in_(keys), clients.c.kind == ClientKind.COMPANY).order_by(clients.c.id)):
                self._companies.setdefault((key, ""), client_id)
                if tax_id:
                    self._companies.setdefault((key, _folded_tax_id(tax_id)), client_id)
        people = {k for d in deals if not d.company
                  for k in (_key("e", d.email_norm), _key("p", d.phone_norm)) if k} - set(self._people)
        for column, kind in ((clients.c.email_norm, "e"), (clients.c.phone_norm, "p")):
            wanted = [k[2:] for k in people if k[0] == kind]
            if wanted:
                found = conn.execute(sa.select(column, clients.c.id).where(column.in_(wanted)).order_by(clients.c.id))
                for norm, client_id in first_ids([(r[0], r[1]) for r in found]).items():
                    self._people.setdefault(f"{kind}:{norm}", client_id)
        out: list[int] = []
        new_rows: list[list[Any]] = []
        pending: dict[tuple[str, str], int] = {}  # this batch's new companies, its people by e-mail and phone key
        pending_people: dict[str, int] = {}
        at = store.driver_value(conn, clients.c.created_at, self.at)
        for q in deals:
            if q.company:
                key = company_key(q.company)
                company = (key, _folded_tax_id(q.tax_id) if q.tax_id else "")
                client_id = self._companies.get(company) or pending.get(company)
                if client_id is None:
                    client_id = pending[company] = -len(new_rows) - 1
                    pending.setdefault((key, ""), client_id)
                    new_rows.append([q.company, q.company, None, None, q.tax_id, ClientKind.COMPANY, key])
                    self.stats["new_clients"] += 1
                else:
                    self._count(client_id)
            else:
                keys_ = [k for k in (_key("e", q.email_norm), _key("p", q.phone_norm)) if k]
                client_id = next((self._people.get(k) or pending_people.get(k) for k in keys_
                                  if self._people.get(k) or pending_people.get(k)), None)
                if client_id is None:
                    client_id = -len(new_rows) - 1
                    new_rows.append([q.name, q.company, q.email, q.phone, q.tax_id, ClientKind.PERSON, None])
                    self.stats["new_clients"] += 1
                else:
                    self._count(client_id)
                for k in keys_:
                    pending_people.setdefault(k, client_id)
            out.append(client_id)
        ids = store.reserve_ids(conn, clients, len(new_rows))
        self._made.update(ids)
        rows = [(*store.client_row(client_id, name=name, company=company, email=email, phone=phone, tax_id=tax_id,
                                   created_at=at), kind, key)
                for (name, company, email, phone, tax_id, kind, key), client_id in zip(new_rows, ids, strict=True)]
        resolved = [ids[-c - 1] if c < 0 else c for c in out]
        for company, client_id in pending.items():
            self._companies.setdefault(company, ids[-client_id - 1] if client_id < 0 else client_id)
        for person, client_id in pending_people.items():
            self._people.setdefault(person, ids[-client_id - 1] if client_id < 0 else client_id)
        store.insert_rows(conn, clients, [*store.CLIENT_COLUMNS, "kind", "company_key"], rows)
        self._add_contacts(deals, resolved)
        return resolved

    def _add_contacts(self, deals: Sequence[DealClient], client_ids: list[int]) -> None:
        """A company deal's person becomes a contact of the company, once per name."""
        conn = self.conn
        companies = {c for d, c in zip(deals, client_ids, strict=True) if d.company and d.name}
        unread = companies - self._known_contacts
        if unread:
            for client_id, name in conn.execute(sa.select(contacts.c.client_id, contacts.c.name).where(
                    contacts.c.client_id.in_(unread))):
                self._contacts.add((client_id, name.casefold()))
            self._known_contacts |= unread
        at = store.driver_value(conn, contacts.c.created_at, self.at)
        rows = []
        for q, client_id in zip(deals, client_ids, strict=True):
            if not (q.company and q.name) or (client_id, q.name.casefold()) in self._contacts:
                continue
            self._contacts.add((client_id, q.name.casefold()))
            rows.append((client_id, q.name, q.role, q.email, q.phone, q.email_norm, q.phone_norm, at))
        store.insert_rows(conn, contacts, ["client_id", "name", "role", "email", "phone", "email_norm", "phone_norm",
                                           "created_at"], rows)


def _folded_tax_id(tax_id: str) -> str:
    """A tax id as compared: its letters and digits, in capitals (``PL 526-025-09-95`` is ``PL5260250995``)."""
    return "".join(c for c in tax_id if c.isalnum()).upper()


def _key(kind: str, norm: str | None) -> str | None:
    return f"{kind}:{norm}" if norm else None
