"""The mails the engine queues on its own, whatever the process says: the owner's reminder of a booked next contact,
and the notice to a salesperson that a lead was given to them (by a rule, a manager or a rotation).

Like a stage's actions (engine/actions.py) they are outbox rows written in the transaction of the change that
causes them, and delivered by ``leadflow run-due`` (engine/outbox.py), so a refused change queues nothing. Each row
keeps, in ``entered_at``, the moment it is about (the booked contact, or the start of the ownership) and in
``for_user`` the owner it is meant for. ``run-due`` sends it only while both still hold (``still_current``), so a
contact booked again, or a lead given to someone else in between, cancels the earlier mail: nobody is reminded
twice of one appointment, nor told of a lead that is no longer theirs.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from sqlalchemy.engine import Connection

from engine.state import Event, LeadState
from engine.store import insert_many, outbox
from engine.vocab import EventKind, LeadStatus, OutboxState

#: The outbox kinds and their templates (processes/templates/, beside the stage actions' ones).
NEXT_CONTACT = "next_contact"
ASSIGNED = "assigned"
TEMPLATES = {NEXT_CONTACT: "next_contact_reminder", ASSIGNED: "lead_assigned"}
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
