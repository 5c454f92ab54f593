"""The mails the engine queues on its own, whatever the process says: the owner's reminder of a booked next contact,
the notice to a salesperson that a lead was given to them (by a rule, a manager or a rotation), and the digest of
an import: one mail per salesperson for all the leads an import gave them, instead of one a lead.

Like a stage's actions (engine/actions.py) they are outbox rows written in the transaction of the change that
causes them, and delivered by ``leadflow run-due`` (engine/outbox.py), so a refused change queues nothing. Each row
keeps, in ``entered_at``, the moment it is about (the booked contact, or the start of the ownership) and in
``for_user`` the owner it is meant for. ``run-due`` sends it only while both still hold (``still_current``), so a
contact booked again, or a lead given to someone else in between, cancels the earlier mail: nobody is reminded
twice of one appointment, nor told of a lead that is no longer theirs.

An import's digest is one row per salesperson, on the first lead the import gave them (``lead_id``); its ``key``
ends with the id range of the import's leads (``<key>-<first>-<last>``) and ``entered_at`` is the import's instant.
``run-due`` lists, when it sends it, the leads of that range that are still theirs since before the import's end
(``owner_since`` at or before it) and open: their number, and the first ``DIGEST_LEADS`` with the client's contact
details and the link to each lead's page. A digest none of whose leads is still theirs is cancelled.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.state import Event, LeadState
from engine.store import clients, insert_many, leads, outbox
from engine.vocab import EventKind, LeadStatus, OutboxState

#: The outbox kinds and their templates (processes/templates/, beside the stage actions' ones).
NEXT_CONTACT = "next_contact"
ASSIGNED = "assigned"
TEMPLATES = {NEXT_CONTACT: "next_contact_reminder", ASSIGNED: "lead_assigned"}
#: An import's digest to one salesperson, and how many of its leads it lists (the count says how many in all).
DIGEST, DIGEST_TEMPLATE = "import_digest", "import_digest"
DIGEST_LEADS = 20
#: How long before a booked contact its reminder goes out (at once when it is booked closer than that).
REMIND_BEFORE = dt.timedelta(hours=1)
#: The environment variable with the address of the team server's web app, for links to a lead's page.
PUBLIC_URL = "LEADFLOW_PUBLIC_URL"


def lead_url(lead_id: int | None) -> str | None:
    """The link to the lead's page when the server's public address is configured (``LEADFLOW_PUBLIC_URL``)."""
    base = os.environ.get(PUBLIC_URL, "").strip().rstrip("/")
    return f"{base}/leads/{lead_id}" if base and lead_id is not None else None


def _row(kind: str, state: LeadState, about: dt.datetime, due: dt.datetime, at: dt.datetime) -> dict[str, Any]:
    from engine.actions import new_key

    return {"key": new_key(), "lead_id": state.id, "kind": kind, "template": TEMPLATES[kind], "recipient": "owner",
            "stage": state.stage, "entered_at": about, "due_at": due, "state": OutboxState.QUEUED, "attempts": 0,
            "next_attempt_at": due, "created_at": at, "for_user": state.owner}


def after(before: LeadState | None, state: LeadState, evs: list[Event]) -> list[dict[str, Any]]:
    """The notices a change of one lead queues (``before`` None: a new lead), from the events that made it."""
    if state.status != LeadStatus.OPEN or not evs:
        return []
    mails = []
    last = evs[-1]
    booked = state.next_contact_at
    if (booked is not None and booked > last.at and (before is None or before.next_contact_at != booked)
            and any(ev.kind == EventKind.NEXT_CONTACT_SET for ev in evs)):
        mails.append(_row(NEXT_CONTACT, state, booked, max(booked - REMIND_BEFORE, last.at), last.at))
    given = next((ev for ev in reversed(evs) if ev.kind in (EventKind.CREATED, EventKind.ASSIGNED,
                                                            EventKind.ROTATED)), None)
    if given is not None and state.owner is not None and state.owner != given.actor and (
            before is None or before.owner != state.owner):
        mails.append(_row(ASSIGNED, state, state.owner_since, last.at, last.at))
    return mails


def still_current(state: LeadState, row: dict[str, Any]) -> str | None:
    """Why a queued notice is no longer to be sent (None: send it)."""
    what = "next-contact reminder" if row["kind"] == NEXT_CONTACT else "assignment notice"
    if state.status != LeadStatus.OPEN:
        return f"{what} not sent: lead {state.id} is {state.status}"
    if row["kind"] == NEXT_CONTACT and state.next_contact_at != row["entered_at"]:
        now = f"booked for {state.next_contact_at:%Y-%m-%d %H:%M}" if state.next_contact_at else "no longer booked"
        return f"{what} not sent: the next contact of lead {state.id} is {now}"
    if state.owner != row["for_user"] or (row["kind"] == ASSIGNED and state.owner_since != row["entered_at"]):
        return f"{what} not sent: lead {state.id} was given to {state.owner or 'nobody'} since"
    return None


def queue(conn: Connection, mails: list[dict[str, Any]]) -> None:
    """Write the notices of one change or many, in one statement."""
    if mails:
        insert_many(conn, outbox, mails)


# -- an import's digest ------------------------------------------------------------------------------------

class Given:
    """The leads an import gives to each salesperson other than the importer, for their digests."""

    def __init__(self, importer: str):
        self.importer = importer
        self.leads: dict[str, list[tuple[int, str]]] = {}  # owner -> [first (lead id, stage), last (lead id)]

    def add(self, owner: str | None, lead_id: int, stage: str) -> None:
        if owner is None or owner == self.importer:
            return
        mine = self.leads.get(owner)
        if mine is None:
            self.leads[owner] = [(lead_id, stage), (lead_id, stage)]
        else:
            mine[1] = (lead_id, stage)

    def queue(self, conn: Connection, at: dt.datetime) -> int:
        """One digest per salesperson, in the import's transaction; returns how many."""
        from engine.actions import new_key

        mails = [{"key": f"{new_key()}-{first}-{last}", "lead_id": first, "kind": DIGEST, "template": DIGEST_TEMPLATE,
                  "recipient": "owner", "stage": stage, "entered_at": at, "due_at": at, "state": OutboxState.QUEUED,
                  "attempts": 0, "next_attempt_at": at, "created_at": at, "for_user": owner}
                 for owner, ((first, stage), (last, _)) in sorted(self.leads.items())]
        queue(conn, mails)
        return len(mails)


def digest_leads(conn: Connection, row: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    """How many of a digest's leads are still its salesperson's (and open), and the first ``DIGEST_LEADS`` of them
    with their client's contact details."""
    first, last = (int(part) for part in row["key"].rsplit("-", 2)[1:])
    theirs = (leads.c.id.between(first, last), leads.c.owner == row["for_user"], leads.c.status == LeadStatus.OPEN,
              leads.c.owner_since <= row["entered_at"])
    count = conn.execute(sa.select(sa.func.count()).select_from(leads).where(*theirs)).scalar_one()
    listed = conn.execute(
        sa.select(leads.c.id, leads.c.process, leads.c.process_version, leads.c.stage, leads.c.product, clients.c.name,
                  clients.c.company, clients.c.phone, clients.c.email)
        .join(clients, clients.c.id == leads.c.client_id).where(*theirs).order_by(leads.c.id).limit(DIGEST_LEADS)
    ).mappings().all()
    return int(count), [dict(r) for r in listed]
