"""Clients: the people and companies behind leads (``engine.clients``), and the one place a client is written."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import clock, i18n, policy, results, store, views
from engine.errors import InvalidInputError, NotFoundError
from engine.policy import Actor
from engine.rules import check_email, check_phone, clean_text, normalise_email, normalise_phone
from engine.services.context import Context, Service, operation
from engine.state import LeadState
from engine.store import clients, leads
from engine.vocab import is_id


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
            return views.client(row, [ctx.view(conn, s) for s in states])

    @operation
    def set_language(self, client_id: int, language: str | None) -> results.Client:
        """Set the language of the client's mails (one of ``i18n.LANGUAGES``; None or empty: each lead's process's
        ``language``), for anyone who may work one of the client's leads."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            _row, states = visible_client_leads(ctx, conn, actor, client_id)
            if states and not any(policy.can_work(actor, s) for s in states):
                policy.require_can_work(actor, states[-1], f"set the language of client {client_id} through")
            chosen = i18n.chosen_language(language)
            conn.execute(sa.update(clients).where(clients.c.id == client_id).values(language=chosen))
            row, states = visible_client_leads(ctx, conn, actor, client_id)
            return views.client(row, [ctx.view(conn, s) for s in states])


def visible_client_leads(ctx: Context, conn: Connection, actor: Actor, client_id: int
                         ) -> tuple[Any, list[LeadState]]:
    """The client and its whole history, for anyone who may see one of its leads (the salesperson who takes
    a client over sees everything that happened before); refused when they may see none. A client with no
    lead at all belongs to nobody yet."""
    row = conn.execute(sa.select(clients).where(clients.c.id == client_id)).mappings().first() if (
        is_id(client_id)) else None
    if row is None:
        raise NotFoundError(f"client {client_id} does not exist")
    ids = [r[0] for r in conn.execute(sa.select(leads.c.id).where(leads.c.client_id == client_id)
                                        .order_by(leads.c.id))]
    states = [ctx.lead(conn, i) for i in ids]
    policy.require_can_view_client(actor, client_id, states)
    return row, states


def client_name(conn: Connection, client_id: int) -> str:
    """The client's name, or the error for an id that names no client."""
    row = conn.execute(sa.select(clients.c.name).where(clients.c.id == client_id)).first() if (
        is_id(client_id)) else None
    if row is None:
        raise NotFoundError(f"client {client_id} does not exist")
    return str(row[0])


def insert_client(conn: Connection, *, name: str, company: str | None, email: str | None,
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
