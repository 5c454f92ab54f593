"""What the salesperson does with the client between the process's steps: calls, meetings, e-mails and notes,
and the next contact they book (``engine.activities``).

An activity is an ``activity`` event of the lead (its history, its rebuild, its idle time); booking the next
contact is a ``next_contact_set`` event, which the lead's light follows (engine/board.py) and which queues the
owner's reminder (engine/notices.py). Who may log either is ``policy.require_can_work``: the owner, a manager of
the lead's team, an admin; not a colleague.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from engine import clock, policy, results, store, views
from engine.errors import InvalidInputError
from engine.i18n import N_, Message
from engine.rules import clean_text
from engine.services.context import Service, operation
from engine.store import clients, events, leads
from engine.vocab import NOTE_LENGTH, ActivityKind, CallOutcome, EventKind

if TYPE_CHECKING:
    from engine.store.sqltypes import Record

#: The longest way ahead a next contact may be booked: a typo in the year is refused, not booked.
FURTHEST = dt.timedelta(days=3 * 366)


class ActivityService(Service):
    """``engine.activities``: logging work with the client, and booking the next contact."""

    name = "activities"

    @operation
    def add(self, lead_id: int, *, kind: str, text: str, outcome: str | None = None,
            next_contact: str | None = None, if_version: int | None = None) -> results.Lead:
        """Log a call, meeting, e-mail or note on the lead (a call's ``outcome`` counts unanswered attempts), and
        book the next contact when ``next_contact`` is given."""
        if kind not in tuple(ActivityKind):
            raise InvalidInputError(N_("activity kind '{kind}' is not one of: {kinds}"), kind=kind,
                                    kinds=', '.join(ActivityKind))
        if outcome is not None and outcome not in tuple(CallOutcome):
            raise InvalidInputError(N_("outcome '{outcome}' is not one of: {outcomes}"), outcome=outcome,
                                    outcomes=', '.join(CallOutcome))
        if outcome is not None and kind != ActivityKind.CALL:
            raise InvalidInputError(N_("an outcome goes with a call, not with a {kind}"), kind=kind)
        text_ = clean_text(text, "the activity's text", NOTE_LENGTH)
        if not text_:
            raise InvalidInputError("the activity's text is empty; say what happened with the client")
        ctx = self.ctx
        with ctx.transaction() as conn:
            state, _ = ctx.lead_to_work(conn, lead_id, Message(N_("log an activity on")),
                                         if_version)
            data: dict[str, Any] = {"kind": kind, "text": text_}
            if outcome is not None:
                data["outcome"] = outcome
            evs = [ctx.event(EventKind.ACTIVITY, data)]
            if next_contact is not None:
                evs.append(ctx.event(EventKind.NEXT_CONTACT_SET, {"at": _booked(next_contact, evs[0].at)}))
            return ctx.commit(conn, state, evs)

    @operation
    def set_next_contact(self, lead_id: int, at: str | None = None, *, if_version: int | None = None
                         ) -> results.Lead:
        """Book the next contact with the lead's client at a date and time (None or "": clear it)."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            state, _ = ctx.lead_to_work(conn, lead_id, Message(N_("book a contact on")),
                                         if_version)
            now = clock.now()
            booked = _booked(at, now) if at else None
            if booked == (state.next_contact_at.isoformat() if state.next_contact_at else None):
                return ctx.view(conn, state)
            return ctx.commit(conn, state, [ctx.event(EventKind.NEXT_CONTACT_SET, {"at": booked})])

    @operation
    def list(self, lead_id: int | None = None, *, mine: bool = False, limit: int = 100) -> list[results.Activity]:
        """Activities, newest first: of one lead, or of every lead the acting user may see (``mine``: those the
        acting user logged)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInputError(N_("limit must be a whole number of at least 1, got {limit!r}"), limit=limit)
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            query: sa.Select[Any] = (
                sa.select(events.c.id, events.c.lead_id, events.c.at, events.c.actor, events.c.data_json,
                          clients.c.name)
                .join(leads, leads.c.id == events.c.lead_id).join(clients, clients.c.id == leads.c.client_id)
                .where(events.c.kind == EventKind.ACTIVITY))
            if lead_id is not None:
                ctx.visible_lead(conn, lead_id)
                query = query.where(events.c.lead_id == lead_id)
            else:
                query = policy.visible_leads(actor, query)
            if mine:
                query = query.where(events.c.actor == actor.name)
            rows = conn.execute(query.order_by(events.c.at.desc(), events.c.id.desc()).limit(limit)).all()
            return [_activity(r, store.loads(r.data_json)) for r in rows]


def _booked(text: str, now: dt.datetime) -> str:
    """A next contact as written (an ISO date-time; a date alone is 9:00 that day), if it lies ahead, not too far."""
    if not isinstance(text, str):
        raise InvalidInputError(N_("the next contact must be a date and time such as 2026-03-02T09:30, got {text!r}"),
                                text=text)
    when = clock.parse_datetime(text, what="next contact")
    if "T" not in text and " " not in text.strip() and when.time() == dt.time(0, 0):
        when = dt.datetime.combine(when.date(), dt.time(9, 0))
    if when <= now:
        raise InvalidInputError(N_("the next contact {when} is not in the future (it is "
                                   "{now}); book a time ahead"), when=views.iso(when), now=views.iso(now))
    if when > now + FURTHEST:
        raise InvalidInputError(N_("the next contact {when} is more than three years ahead; "
                                   "check the year"), when=views.iso(when))
    return when.replace(microsecond=0).isoformat()


def _activity(row: Record, data: dict[str, Any]) -> results.Activity:
    return {"id": row.id, "lead_id": row.lead_id, "name": row.name, "at": views.iso(row.at), "actor": row.actor,
            "kind": data["kind"], "outcome": data.get("outcome"), "text": data["text"]}
