"""Clients: the people and companies behind leads (``engine.clients``), and the one place a client is written."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import clock, erasure, policy, results, store, views
from engine.errors import InvalidInputError, NotFoundError, RuleViolation
from engine.i18n import N_, Message
from engine.policy import Actor
from engine.rules import (
    check_email,
    check_phone,
    check_tax_id,
    chosen_language,
    clean_text,
    normalise_email,
    normalise_phone,
    one_line_text,
)
from engine.services.context import Context, Service, operation
from engine.state import LeadState
from engine.store import clients, contacts, events, leads
from engine.vocab import NAME_LENGTH, NOTE_LENGTH, ClientKind, EventKind, is_id

log = logging.getLogger(__name__)


class ClientService(Service):
    """``engine.clients``: a client with its leads; likely duplicates, and merging them."""

    name = "clients"

    @operation
    def duplicates(self, *, limit: int = 200) -> list[results.Duplicates]:
        """Groups of clients that are likely one person (managers and admins, among the clients they may see):
        the same phone, e-mail or tax id, or the same name and company once folded (case, diacritics and
        punctuation aside). Merged clients are left out; largest groups first, at most ``limit``."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            policy.require_manager(actor, Message(N_("list duplicate clients")))
            return likely_duplicates(conn, actor, limit)

    @operation
    def merge(self, keep: int, other: int) -> results.Client:
        """Merge client ``other`` into ``keep`` (managers and admins who may see both): every lead of ``other``
        moves to ``keep`` with a ``client_merged`` event in its history, ``keep`` takes the contact data it lacks
        (e-mail, phone, company, tax id), and ``other`` stays, marked ``merged_into``, its history listed with
        ``client show`` as before. Nothing is deleted. Returns ``keep``."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            policy.require_manager(actor, Message(N_("merge clients")))
            if keep == other:
                raise InvalidInputError(N_("client {keep} cannot be merged into itself; give two different clients"),
                                        keep=keep)
            keep_row, _ = visible_client_leads(ctx, conn, actor, keep)
            other_row, other_states = visible_client_leads(ctx, conn, actor, other)
            for row in (keep_row, other_row):
                if row["merged_into"] is not None:
                    raise InvalidInputError(N_("client {client} was already merged into client "
                                               "{merged_into}; merge into that one instead"), client=row['id'],
                                            merged_into=row['merged_into'])
            for state in other_states:
                if state.client_id == other:
                    ctx.commit(conn, state, [ctx.event(EventKind.CLIENT_MERGED, {"from": other, "to": keep})])
            merged = {k: keep_row[k] or other_row[k] for k in ("company", "email", "phone", "tax_id")}
            conn.execute(sa.update(clients).where(clients.c.id == keep).values(
                store.contact_values(name=keep_row["name"], **merged)))
            conn.execute(sa.update(clients).where(clients.c.id == other).values(merged_into=keep))
            for table in (store.ownerships, store.closures):  # rotation's memory and the revisits follow the leads
                conn.execute(sa.update(table).where(table.c.client_id == other).values(client_id=keep))
            row, states = visible_client_leads(ctx, conn, actor, keep)
            return views.client(row, [ctx.view(conn, s) for s in states])

    @operation
    def edit(self, client_id: int, *, reason: str, name: str | None = None, email: str | None = None,
             phone: str | None = None, company: str | None = None, tax_id: str | None = None) -> results.Client:
        """Correct a client's contact data (GDPR article 16): each value given replaces the stored one (an empty
        one clears it; the name cannot be cleared), checked as ``lead add`` checks it, the search columns with it.
        For the owner of one of its leads, a manager of their team or an admin; a ``client_edited`` event on each
        of its leads records who, why and which values changed (not the values). An e-mail or phone that is
        another client's is refused: the same person is one client (``client merge``)."""
        ctx = self.ctx
        reason_ = required_reason(reason, "a correction needs its reason (--reason): who asked for it, or what was "
                                          "wrong")
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            row, states = visible_client_leads(ctx, conn, actor, client_id)
            policy.require_can_edit_client(actor, client_id, states)
            require_not_erased(conn, client_id, "correct")
            if row["merged_into"] is not None:
                raise InvalidInputError(N_("client {client} was merged into client {into}; correct that one "
                                           "instead"), client=client_id, into=row["merged_into"])
            region = ctx.spec(conn, states[-1].process, states[-1].process_version).calendar if states else None
            given = {"name": name, "email": email, "phone": phone, "company": company, "tax_id": tax_id}
            if all(v is None for v in given.values()):
                raise InvalidInputError("nothing to correct: give --name, --email, --phone, --company or --tax-id")
            checked = {"name": one_line_text(name, "name"), "email": check_email(email),
                       "phone": check_phone(phone, region), "company": one_line_text(company, "company"),
                       "tax_id": check_tax_id(tax_id)}
            if name is not None and not checked["name"]:
                raise InvalidInputError("a client's name cannot be cleared; give the corrected name")
            new = {k: checked[k] if given[k] is not None else row[k] for k in given}
            changed = sorted(k for k in given if new[k] != row[k])
            if not changed:
                raise InvalidInputError(N_("client {client} already has these values; nothing was changed"),
                                        client=client_id)
            require_no_other_client(conn, client_id, new["email"], new["phone"])
            for state in states:
                if state.client_id == client_id:
                    ctx.commit(conn, state, [ctx.event(EventKind.CLIENT_EDITED,
                                                       {"changed": changed, "reason": reason_})])
            values = store.contact_values(**new)  # type: ignore[arg-type]
            if row["kind"] == ClientKind.COMPANY and "name" in changed:
                values["company_key"] = company_key(str(new["name"]))
            conn.execute(sa.update(clients).where(clients.c.id == client_id).values(values))
            row, states = visible_client_leads(ctx, conn, actor, client_id)
            return views.client(row, [ctx.view(conn, s) for s in states], client_contacts(conn, client_id))

    @operation
    def erase(self, client_id: int, *, reason: str) -> results.Client:
        """Erase a client's personal data (GDPR article 17; admins): its and its contact persons' names, e-mails,
        phones, company and tax id, the free texts written about it, its leads' personal fields and every copy in
        the event log, the outbox and the reviews become ``[erased]`` (engine/erasure.py; docs/operations.md says
        what stays). The client, its leads, stages, values, reasons and dates stay. Recorded in ``erasures`` and
        as a ``client_erased`` event on each lead (who, when, why; not what). On SQLite the freed space is
        overwritten (``secure_delete``) and the write-ahead log emptied, so no erased string is left in the file."""
        ctx = self.ctx
        reason_ = required_reason(reason, "an erasure needs its reason (--reason), such as the request it answers")
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            policy.require_admin(actor, "erase a client's personal data")
            row = client_row(conn, client_id)
            require_not_erased(conn, client_id, "erase")
            if row["merged_into"] is not None:
                raise InvalidInputError(N_("client {client} was merged into client {into}; erase that one, which "
                                           "erases both"), client=client_id, into=row["merged_into"])
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:  # the pages this transaction frees or rewrites are zeroed, not left with the old text
                conn.exec_driver_sql("PRAGMA secure_delete = ON")
            try:
                erasure.erase(conn, client_id, by=actor.name, at=clock.now(), reason=reason_,
                              specs=ctx.specs_lookup(conn))
            finally:
                if sqlite:
                    conn.exec_driver_sql("PRAGMA secure_delete = OFF")
            log.info("client %d erased by %s", client_id, actor.name)
        if sqlite:
            erasure.checkpoint(ctx.db)
        return self.get(client_id)

    @operation
    def get(self, client_id: int) -> results.Client:
        """A client with all its leads the acting user may see, past and present."""
        ctx = self.ctx
        with ctx.reading() as conn:
            actor = ctx.actor(conn)
            row, states = visible_client_leads(ctx, conn, actor, client_id)
            return views.client(row, [ctx.view(conn, s) for s in states], client_contacts(conn, client_id))

    @operation
    def add_company(self, name: str, *, external_id: str | None = None) -> results.Client:
        """A company as a client (B2B): its leads are the company's, its people its contacts (``add_contact``).
        A company of the same name (case and spaces aside) is refused: add its leads to that one."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            policy.require_can_add_company(ctx.actor(conn))
            name_ = one_line_text(name, "company")
            if not name_:
                raise InvalidInputError("a company needs its name")
            existing = find_company(conn, name_)
            if existing is not None:
                raise InvalidInputError(N_("company '{name}' is already client {existing}; add its leads with "
                                           "--client {existing}"), name=name_, existing=existing)
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
                raise InvalidInputError(N_("client {client} is a person, not a company; contact persons belong "
                                           "to a company (leadflow client company NAME)"), client=client_id)
            visible_client_leads(ctx, conn, actor, client_id)
            insert_contact(conn, client_id, name, role=role, email=email, phone=phone, at=clock.now())
        return self.get(client_id)

    @operation
    def set_language(self, client_id: int, language: str | None) -> results.Client:
        """Set the language of the client's mails (one of ``i18n.LANGUAGES``; None or empty: each lead's process's
        ``language``), for anyone who may work one of the client's leads."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            _row, states = visible_client_leads(ctx, conn, actor, client_id)
            if states and not any(policy.can_work(actor, s) for s in states):
                policy.require_can_work(actor, states[-1], Message(N_("set the language of client {client_id} through"),
                                                                   client_id=client_id))
            chosen = chosen_language(language)
            conn.execute(sa.update(clients).where(clients.c.id == client_id).values(language=chosen))
            row, states = visible_client_leads(ctx, conn, actor, client_id)
            return views.client(row, [ctx.view(conn, s) for s in states])


def visible_client_leads(ctx: Context, conn: Connection, actor: Actor, client_id: int
                         ) -> tuple[Any, list[LeadState]]:
    """The client and its whole history, for anyone who may see one of its leads (the salesperson who takes
    a client over sees everything that happened before); refused when they may see none. A client with no
    lead at all belongs to nobody yet."""
    row, states = _client_and_leads(ctx, conn, client_id)
    policy.require_can_view_client(actor, client_id, states)
    return row, states


def _client_and_leads(ctx: Context, conn: Connection, client_id: int) -> tuple[Any, list[LeadState]]:
    row = client_row(conn, client_id)
    ids = [r[0] for r in conn.execute(sa.select(leads.c.id).where(leads.c.client_id == client_id)
                                        .order_by(leads.c.id))]
    if row["merged_into"] is not None:  # its leads moved to the client it was merged into: their events say so
        ids = sorted({int(r[0]) for r in conn.execute(
            sa.select(events.c.lead_id).where(events.c.client_id == client_id).distinct())} | set(ids))
    return row, [ctx.lead(conn, i) for i in ids]


def client_contacts(conn: Connection, client_id: int) -> list[sa.RowMapping]:
    """A company's contact persons, oldest first."""
    return list(conn.execute(sa.select(contacts).where(contacts.c.client_id == client_id)
                             .order_by(contacts.c.id)).mappings())


def required_reason(reason: str, missing: str) -> str:
    """The reason of a correction or an erasure, checked as a note; ``missing`` when it is empty."""
    reason_ = clean_text(reason, "reason", NOTE_LENGTH)
    if not reason_:
        raise InvalidInputError(missing)
    return reason_


def require_not_erased(conn: Connection, client_id: int, verb: str) -> None:
    """Refuse to correct or erase again a client whose data were erased."""
    done = erasure.erased(conn, client_id)
    if done is not None:
        template = (N_("can't correct client {client}: its personal data were erased at {at} by {by}; nothing is "
                       "left to correct") if verb == "correct" else
                    N_("can't erase client {client}: its personal data were erased at {at} by {by}; nothing is left "
                       "to erase"))
        raise RuleViolation(template, client=client_id, at=views.iso(done["finished_at"]), by=done["requested_by"])


def require_no_other_client(conn: Connection, client_id: int, email: str | None, phone: str | None) -> None:
    """Refuse an e-mail or phone that another client has: the same person is one client."""
    for what, column, value in (("e-mail", clients.c.email_norm, normalise_email(email)),
                                ("phone", clients.c.phone_norm, normalise_phone(phone))):
        if value:
            other = conn.execute(sa.select(sa.func.min(clients.c.id)).where(
                column == value, clients.c.id != client_id, clients.c.merged_into.is_(None))).scalar()
            if other is not None:
                raise InvalidInputError(
                    N_("e-mail {value} is client {other}'s; if they are one person, merge them: leadflow client "
                       "merge {client} {other}") if what == "e-mail" else
                    N_("phone {value} is client {other}'s; if they are one person, merge them: leadflow client "
                       "merge {client} {other}"), value=value, other=other, client=client_id)


def company_key(name: str) -> str:
    """A company's name as rows that name it alike share it: case and runs of spaces aside."""
    return " ".join(name.casefold().split())


def find_company(conn: Connection, name: str) -> int | None:
    """The company client called ``name`` (case and spaces aside), the oldest if several."""
    return conn.execute(sa.select(sa.func.min(clients.c.id)).where(
        clients.c.company_key == company_key(name), clients.c.kind == ClientKind.COMPANY)).scalar()


def insert_company(conn: Connection, name: str, *, external_id: str | None, at: dt.datetime) -> int:
    """A new company client (its name checked by the caller); returns its id."""
    external = one_line_text(external_id, "external_id", NAME_LENGTH)
    if external and conn.execute(sa.select(clients.c.id).where(clients.c.external_id == external)).first():
        raise InvalidInputError(N_("external id '{external}' is already another client's"), external=external)
    row = store.client_row(store.reserve_ids(conn, clients, 1)[0], name=name, company=name, email=None, phone=None,
                           tax_id=None, created_at=at)
    conn.execute(sa.insert(clients).values({**dict(zip(store.CLIENT_COLUMNS, row, strict=True)),
                                            "kind": ClientKind.COMPANY, "company_key": company_key(name),
                                            "external_id": external}))
    return int(row[0])


def insert_contact(conn: Connection, client_id: int, name: str, *, role: str | None, email: str | None,
                   phone: str | None, at: dt.datetime) -> int:
    """A new person of company ``client_id``, e-mail and phone checked and normalised as a client's."""
    name_ = one_line_text(name, "name")
    if not name_:
        raise InvalidInputError("a contact person needs a name")
    email_, phone_ = check_email(email), check_phone(phone)
    return store.new_id(conn.execute(sa.insert(contacts).values(
        client_id=client_id, name=name_, role=one_line_text(role, "role", NAME_LENGTH), email=email_, phone=phone_,
        email_norm=normalise_email(email_), phone_norm=normalise_phone(phone_), created_at=at)))


def client_row(conn: Connection, client_id: int) -> sa.RowMapping:
    """The client's row, or the error for an id that names no client."""
    row = conn.execute(sa.select(clients).where(clients.c.id == client_id)).mappings().first() if (
        is_id(client_id)) else None
    if row is None:
        raise NotFoundError(N_("client {client} does not exist"), client=client_id)
    return row


def client_name(conn: Connection, client_id: int) -> str:
    """The client's name, or the error for an id that names no client."""
    row = conn.execute(sa.select(clients.c.name).where(clients.c.id == client_id)).first() if (
        is_id(client_id)) else None
    if row is None:
        raise NotFoundError(N_("client {client} does not exist"), client=client_id)
    return str(row[0])


def insert_client(conn: Connection, *, name: str | None, company: str | None, email: str | None,
                  phone: str | None, tax_id: str | None = None, region: str | None = None) -> int:
    """A new client for a lead, its e-mail and phone checked and normalised (national phone numbers read in
    ``region``, the process's calendar country); returns its id."""
    name_ = one_line_text(name, "name")
    if not name_:
        raise InvalidInputError("a lead needs the client's name (--name)")
    row = store.client_row(
        store.reserve_ids(conn, clients, 1)[0], name=name_, company=one_line_text(company, "company"),
        email=check_email(email), phone=check_phone(phone, region), tax_id=check_tax_id(tax_id),
        created_at=clock.now())
    store.driver_executemany_tuples(conn, _INSERT_CLIENT, store.CLIENT_COLUMNS, [row])
    return int(row[0])


#: Built once, its values given on each execution (a statement made with them was a sixth of an intake post), run
#: on the driver's cursor (``conn.execute``'s own work was as much again).
_INSERT_CLIENT = sa.insert(clients).values({name: sa.bindparam(name) for name in store.CLIENT_COLUMNS})


def client_for_new_lead(ctx: Context, conn: Connection, actor: Actor, *, name: str | None, company: str | None,
                        email: str | None, phone: str | None, tax_id: str | None, region: str | None,
                        team: str | None) -> tuple[int, int | None, str | None]:
    """The client a new lead (waiting in ``team``) belongs to, the id of an existing client it may
    duplicate, and what the two share ("email" or "phone"): one person is one client. An existing client with
    this e-mail (else phone) gets the lead when the actor may join it (``policy.joinable_client``); otherwise a
    new client is made and the other one returned, for the lead's ``created`` event to record (``client
    duplicates`` lists such pairs for a manager)."""
    from engine.intake.inquiry import find_client

    email_, phone_ = check_email(email), check_phone(phone, region)
    email_norm = normalise_email(email_)
    looked_up, ctx.client_looked_up = ctx.client_looked_up, None
    if looked_up is not None and looked_up[:2] == (email_norm, phone_):  # the caller's lookup (intake.submit)
        found = looked_up[2]
    else:
        found = find_client(conn, email_norm, phone_) if email_ or phone_ else None
    if found is None:
        return insert_client(conn, name=name, company=company, email=email_, phone=phone_, tax_id=tax_id,
                             region=region), None, None
    if conn.execute(policy.joinable_client(actor, team=team), {"client_id": found, "team": team}).scalar():
        return found, None, None
    shared = "email" if email_norm is not None and client_row(conn, found)["email_norm"] == email_norm else "phone"
    return insert_client(conn, name=name, company=company, email=email_, phone=phone_, tax_id=tax_id,
                         region=region), found, shared


def likely_duplicates(conn: Connection, actor: Actor, limit: int) -> list[results.Duplicates]:
    """``ClientService.duplicates``: one GROUP BY per shared value, over the clients the actor may see."""
    folded_pair = clients.c.search_name + "|" + sa.func.coalesce(clients.c.company, "")
    groups: list[results.Duplicates] = []
    for reason, column in (("phone", clients.c.phone_norm), ("email", clients.c.email_norm),
                           ("tax_id", clients.c.tax_id), ("name", folded_pair)):
        query = policy.visible_clients(actor, sa.select(column.label("value"), sa.func.count().label("n"))
                                       .where(column.is_not(None), clients.c.merged_into.is_(None)))
        found = conn.execute(query.group_by(column).having(sa.func.count() > 1)
                             .order_by(sa.func.count().desc(), column).limit(limit)).all()
        for value, _n in found:
            members = conn.execute(policy.visible_clients(actor, sa.select(clients).where(
                column == value, clients.c.merged_into.is_(None))).order_by(clients.c.id)).mappings().all()
            counts: dict[int, int] = dict(conn.execute(sa.select(leads.c.client_id, sa.func.count()).where(
                leads.c.client_id.in_([m["id"] for m in members])).group_by(leads.c.client_id)).all())
            groups.append({"reason": reason, "value": str(value).split("|")[0] if reason == "name" else str(value),
                           "clients": [{"id": m["id"], "name": m["name"], "company": m["company"],
                                        "email": m["email"], "phone": m["phone"], "tax_id": m["tax_id"],
                                        "leads": int(counts.get(m["id"], 0))} for m in members]})
    groups.sort(key=lambda g: -len(g["clients"]))
    return groups[:limit]
