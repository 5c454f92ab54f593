"""Clients: the people and companies behind leads (``engine.clients``), and the one place a client is written."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import clock, policy, results, store, views
from engine.errors import InvalidInputError, NotFoundError
from engine.policy import Actor
from engine.rules import check_email, check_phone, clean_text, normalise_email, normalise_phone
from engine.services.context import Context, Service, operation
from engine.state import LeadState
from engine.store import clients, contacts, leads
from engine.vocab import NAME_LENGTH, ClientKind, is_id


class ClientService(Service):
    """``engine.clients``: a client with its leads."""

    name = "clients"

    @operation
    def get(self, client_id: int) -> results.Client:
        """A client with all its leads the acting user may see, past and present."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            row, states = visible_client_leads(ctx, conn, actor, client_id)
            people = conn.execute(sa.select(contacts).where(contacts.c.client_id == client_id)
                                  .order_by(contacts.c.id)).mappings()
            return views.client(row, [ctx.view(conn, s) for s in states], people)

    @operation
    def add_company(self, name: str, *, external_id: str | None = None) -> results.Client:
        """A company as a client (B2B): its leads are the company's, its people its contacts (``add_contact``).
        A company of the same name (case and spaces aside) is refused: add its leads to that one."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            policy.require_can_add(ctx.actor(conn))
            name_ = clean_text(name, "company")
            if not name_:
                raise InvalidInputError("a company needs its name")
            existing = find_company(conn, name_)
            if existing is not None:
                raise InvalidInputError(f"company '{name_}' is already client {existing}; add its leads with "
                                        f"--client {existing}")
            client_id = insert_company(conn, name_, external_id=external_id, at=clock.now())
            return views.client(client_row(conn, client_id), [], [])

    @operation
    def add_contact(self, client_id: int, name: str, *, role: str | None = None, email: str | None = None,
                    phone: str | None = None) -> results.Client:
        """A person of a company (a buyer, a site manager), for anyone who may work with the company."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            row = client_row(conn, client_id)
            if row["kind"] != ClientKind.COMPANY:
                raise InvalidInputError(f"client {client_id} is a person, not a company; contact persons belong "
                                        "to a company (leadflow client company NAME)")
            visible_client_leads(ctx, conn, actor, client_id)
            insert_contact(conn, client_id, name, role=role, email=email, phone=phone, at=clock.now())
        return self.get(client_id)


def visible_client_leads(ctx: Context, conn: Connection, actor: Actor, client_id: int
                         ) -> tuple[Any, list[LeadState]]:
    """The client and its whole history, for anyone who may see one of its leads (the salesperson who takes
    a client over sees everything that happened before); refused when they may see none. A client with no
    lead at all belongs to nobody yet."""
    row = client_row(conn, client_id)
    ids = [r[0] for r in conn.execute(sa.select(leads.c.id).where(leads.c.client_id == client_id)
                                        .order_by(leads.c.id))]
    states = [ctx.lead(conn, i) for i in ids]
    policy.require_can_view_client(actor, client_id, states)
    return row, states


def company_key(name: str) -> str:
    """A company's name as rows that name it alike share it: case and runs of spaces aside."""
    return " ".join(name.casefold().split())


def find_company(conn: Connection, name: str) -> int | None:
    """The company client called ``name`` (case and spaces aside), the oldest if several."""
    return conn.execute(sa.select(sa.func.min(clients.c.id)).where(
        clients.c.company_key == company_key(name), clients.c.kind == ClientKind.COMPANY)).scalar()


def insert_company(conn: Connection, name: str, *, external_id: str | None, at: dt.datetime) -> int:
    """A new company client (its name checked by the caller); returns its id."""
    external = clean_text(external_id, "external_id", NAME_LENGTH)
    if external and conn.execute(sa.select(clients.c.id).where(clients.c.external_id == external)).first():
        raise InvalidInputError(f"external id '{external}' is already another client's")
    return store.new_id(conn.execute(sa.insert(clients).values(
        name=name, company=name, kind=ClientKind.COMPANY, company_key=company_key(name), external_id=external,
        created_at=at)))


def insert_contact(conn: Connection, client_id: int, name: str, *, role: str | None, email: str | None,
                   phone: str | None, at: dt.datetime) -> int:
    """A new person of company ``client_id``, e-mail and phone checked and normalised as a client's."""
    name_ = clean_text(name, "name")
    if not name_:
        raise InvalidInputError("a contact person needs a name")
    email_, phone_ = check_email(email), check_phone(phone)
    return store.new_id(conn.execute(sa.insert(contacts).values(
        client_id=client_id, name=name_, role=clean_text(role, "role", NAME_LENGTH), email=email_, phone=phone_,
        email_norm=normalise_email(email_), phone_norm=normalise_phone(phone_), created_at=at)))


def client_row(conn: Connection, client_id: int) -> sa.RowMapping:
    """The client's row, or the error for an id that names no client."""
    row = conn.execute(sa.select(clients).where(clients.c.id == client_id)).mappings().first() if (
        is_id(client_id)) else None
    if row is None:
        raise NotFoundError(f"client {client_id} does not exist")
    return row


def client_name(conn: Connection, client_id: int) -> str:
    """The client's name, or the error for an id that names no client."""
    row = conn.execute(sa.select(clients.c.name).where(clients.c.id == client_id)).first() if (
        is_id(client_id)) else None
    if row is None:
        raise NotFoundError(f"client {client_id} does not exist")
    return str(row[0])


def insert_client(conn: Connection, *, name: str | None, company: str | None, email: str | None,
                  phone: str | None) -> int:
    """A new client for a lead, its e-mail and phone checked and normalised; returns its id."""
    name_ = clean_text(name, "name")
    if not name_:
        raise InvalidInputError("a lead needs the client's name (--name)")
    email_ = check_email(email)
    phone_ = check_phone(phone)
    return store.new_id(conn.execute(sa.insert(clients).values(
        name=name_, company=clean_text(company, "company"), email=email_, phone=phone_,
        email_norm=normalise_email(email_), phone_norm=normalise_phone(phone_), created_at=clock.now(),
    )))
