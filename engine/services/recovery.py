"""The recovery loop (``engine.recovery``): refusal reviews, the owner's reports, recall, stalled leads and
their rotation, revisits of lost clients, and the monthly removals.

It owns the ``closures`` and ``reviews`` tables: closing and reopening a lead (engine/services/leads.py)
record themselves here through ``record_closure`` and ``record_reopening``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import clock, policy, results, views
from engine.errors import InvalidInputError, RuleViolation
from engine.i18n import N_, Message
from engine.policy import Actor
from engine.rules import clean_text, one_line_text
from engine.services.clients import client_name
from engine.services.context import Context, Service, operation, require_forward_all, require_open
from engine.spec import ClosureReason
from engine.state import LeadState
from engine.store import clients, closures, leads, reviews
from engine.vocab import NOTE_LENGTH, REASON_LENGTH, ClosureKind, EventKind, LeadStatus, ReviewState

if TYPE_CHECKING:
    from engine.reports.asof import Sources
    from engine.store.sqltypes import Mapping, Record


class RecoveryService(Service):
    """``engine.recovery``: bringing lost and stuck clients back into the funnel."""

    name = "recovery"

    @operation
    def reviews(self, *, state: str | None = ReviewState.OPEN, as_of: str | None = None) -> list[results.Review]:
        """Refusal reviews of the director's team (all teams for an admin or a manager without one); ``as_of``: as
        they stood then (requested by then; one decided later was still open)."""
        from engine.reports import asof

        past = asof.parse(as_of)
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            policy.require_sees_reviews(actor)  # before any past is read
            with asof.sources(conn, past, ctx.specs_lookup(conn)) as src:
                return reviews_seen(ctx, conn, actor, past, src, state)

    def _review_to_decide(self, conn: Connection, lead_id: int, if_version: int | None,
                          ) -> tuple[Actor, LeadState, Mapping]:
        """The acting director, the lost lead and its open review, or the reason they may not decide it."""
        actor, state = self.ctx.actor_and_lead(conn, lead_id, if_version)
        review = conn.execute(sa.select(reviews)
                              .where(reviews.c.lead_id == lead_id, reviews.c.state == ReviewState.OPEN)
                              .order_by(reviews.c.id.desc()).limit(1)).mappings().first()
        if review is None:
            raise RuleViolation(N_("lead {lead} has no open refusal review"), lead=lead_id)
        policy.require_manager_of(actor, state.team, Message(N_("decide the review of lead {lead}"), lead=lead_id))
        if state.status != LeadStatus.LOST:
            raise RuleViolation(N_("lead {lead} is {status}; only a lost lead's refusal is reviewed"), lead=lead_id,
                                status=state.status)
        return actor, state, review

    @operation
    def review_return(self, lead_id: int, *, stage: str | None = None, note: str | None = None,
                      to: str | None = None, if_version: int | None = None) -> results.Lead:
        """The director sends the client back into the funnel: the lead reopens (and may change hands)."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor, state, review = self._review_to_decide(conn, lead_id, if_version)
            note_ = clean_text(note, "note", NOTE_LENGTH)
            ctx.commit(conn, state, [ctx.event(EventKind.REVIEW_RETURNED, {"note": note_, "stage": stage, "to": to})])
            self.engine.leads.reopen(lead_id, stage)
            if to is not None and to != state.owner:
                self.engine.leads.assign(lead_id, to)
            _decide(conn, review["id"], ReviewState.RETURNED, actor.name, note_)
            return ctx.view(conn, ctx.lead(conn, lead_id))

    @operation
    def review_confirm(self, lead_id: int, note: str, *, if_version: int | None = None) -> results.Lead:
        """The director validates the refusal; the note records what was learned."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor, state, review = self._review_to_decide(conn, lead_id, if_version)
            note_ = clean_text(note, "note", NOTE_LENGTH)
            if not note_:
                raise InvalidInputError("confirming a refusal needs a note: what did the client say?")
            view = ctx.commit(conn, state, [ctx.event(EventKind.REVIEW_CONFIRMED, {"note": note_})])
            _decide(conn, review["id"], ReviewState.CONFIRMED, actor.name, note_)
            return view

    @operation
    def report(self, lead_id: int, text: str, *, extend_until: str | None = None,
               reason: str | None = None, if_version: int | None = None) -> results.Lead:
        """The owner's short report on a lead; with ``extend_until`` (managers) the lead is not stalled until then."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor, state = ctx.actor_and_lead(conn, lead_id, if_version)
            require_open(state, Message(N_("report on")))
            policy.require_can_work(actor, state, Message(N_("report on")))
            text_ = clean_text(text, "report", NOTE_LENGTH)
            if not text_:
                raise InvalidInputError("the report is empty; say what happened with the client")
            evs = [ctx.event(EventKind.REPORTED, {"text": text_})]
            if extend_until is not None:
                policy.require_manager_of(actor, state.team, Message(N_("extend lead {lead}"), lead=lead_id))
                until = clock.parse_datetime(extend_until, what="--extend-until")
                if until.time() == dt.time(0, 0) and "T" not in extend_until:
                    until = dt.datetime.combine(until.date(), dt.time(23, 59, 59))  # a date means its whole day
                if until <= clock.now():
                    raise InvalidInputError(N_("--extend-until {extend_until} is not in the future"),
                                            extend_until=extend_until)
                reason_ = one_line_text(reason, "reason", REASON_LENGTH)
                if not reason_:
                    raise InvalidInputError("an extension needs an objective reason (--reason), such as a "
                                            "purchase cycle, public funding or a group decision")
                evs.append(ctx.event(EventKind.EXTENDED, {"until": until.isoformat(), "reason": reason_}))
            elif reason is not None:
                raise InvalidInputError("--reason goes with --extend-until")
            return ctx.commit(conn, state, evs)

    @operation
    def recall(self, lead_id: int, note: str | None = None, *, if_version: int | None = None) -> results.Lead:
        """A manager takes a lead back from its owner early: the next rotation gives it to a colleague."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor, state = ctx.actor_and_lead(conn, lead_id, if_version)
            require_open(state, Message(N_("recall")))
            policy.require_manager_of(actor, state.team, Message(N_("recall lead {lead}"), lead=lead_id))
            return ctx.commit(conn, state, [ctx.event(EventKind.RECALLED, {
                "from": state.owner, "note": clean_text(note, "note", NOTE_LENGTH)})])

    @operation
    def stalled(self, *, process: str | None = None, owner: str | None = None, team: str | None = None,
                limit: int = 1000, as_of: str | None = None) -> results.Stalled:
        """Open leads held longer than the sales cycle, idle too long, or recalled, and not extended; as of now, or
        ``as_of`` (the leads as they stood then, judged then: ``board_asof.stalled_at``)."""
        from engine import board_asof, recovery, reports
        from engine.reports import asof

        past = asof.parse(as_of)
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            seen = ctx.scope(conn, actor, owner=owner, team=team)
            now = past or clock.now()
            out: list[results.StalledLead] = []
            cycles: dict[str, results.CycleBasis] = {}
            if past is not None:
                with asof.sources(conn, past, ctx.specs_lookup(conn)) as src:
                    for spec in ctx.latest_specs(conn, process):
                        cycle, basis = reports.cycle_days(conn, spec, past + dt.timedelta(microseconds=1), src)
                        cycles[spec.id] = {"days": round(cycle, 1), "basis": basis}
                        out.extend(board_asof.stalled_at(conn, spec, cycle, src, seen, limit))
                return {"as_of": now.isoformat(), "cycles": cycles, "leads": out}
            for spec in ctx.latest_specs(conn, process):
                cycle, basis = reports.cycle_days(conn, spec)
                cycles[spec.id] = {"days": round(cycle, 1), "basis": basis}
                rows = conn.execute(
                    sa.select(leads.c.id, leads.c.client_id, clients.c.name, leads.c.process, leads.c.stage,
                              leads.c.owner, leads.c.owner_since, leads.c.last_activity_at, leads.c.recalled_at,
                              leads.c.last_report, leads.c.last_report_at, leads.c.value_minor, leads.c.rest_until)
                    .join(clients, clients.c.id == leads.c.client_id)
                    .where(recovery.stalled_conditions(spec, cycle, now), *seen.on_leads())
                    .order_by(leads.c.owner_since, leads.c.id).limit(limit)).all()
                out.extend(views.stalled(r, recovery.stalled_reason(r, spec, cycle, now), now) for r in rows)
            return {"as_of": now.isoformat(), "cycles": cycles, "leads": out}

    @operation
    def rotate(self, *, process: str | None = None, team: str | None = None, dry_run: bool = False,
               memory: int | None = None) -> results.Rotation:
        """Give every stalled lead in scope to a colleague for a new working period (managers).

        One transaction; every move is a ``rotated`` event applied like any other. With ``dry_run``
        the plan is computed and nothing is written.
        """
        from engine import recovery, reports

        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            policy.require_manager(actor, Message(N_("rotate leads")))
            seen = ctx.scope(conn, actor, owner=None, team=team)
            now = clock.now()
            stalled_rows: list[Record] = []
            for spec in ctx.latest_specs(conn, process):
                cycle, _ = reports.cycle_days(conn, spec)
                stalled_rows += conn.execute(
                    sa.select(leads.c.id, leads.c.client_id, clients.c.name, leads.c.process, leads.c.owner,
                              leads.c.team, leads.c.value_minor, *recovery.ROTATION_READS)
                    .join(clients, clients.c.id == leads.c.client_id)
                    .where(recovery.stalled_conditions(spec, cycle, now), *seen.on_leads())).all()
            moves, unplaced = recovery.plan_rotation(
                conn, stalled_rows, memory=recovery.DEFAULT_OWNER_MEMORY if memory is None else memory)
            require_forward_all(conn, [m.lead_id for m in moves], now)  # a dry run says so too
            if not dry_run and moves:
                recovery.write_rotation(conn, moves, {row.id: row for row in stalled_rows},
                                        ctx.specs_lookup(conn), now, ctx.user_name)
            return {"as_of": now.isoformat(), "dry_run": dry_run,
                    "moves": [views.move(m) for m in moves],
                    "unplaced": [{"lead_id": u.lead_id, "owner": u.from_owner, "why": u.why} for u in unplaced]}

    @operation
    def revisits(self, *, process: str | None = None, owner: str | None = None,
                 team: str | None = None) -> list[results.Revisit]:
        """Lost leads whose revisit date has come and whose client has no newer lead."""
        from engine import revisits

        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            where = list(ctx.scope(conn, actor, owner=owner, team=team).on_leads())
            if process is not None:
                where.append(leads.c.process == ctx.spec(conn, process).id)
            query = revisits.due_revisits(ctx.all_specs(conn), clock.now(), where, 1000)
            return [{"lead_id": r.id, "client_id": r.client_id, "name": r.name, "process": r.process,
                     "reason": r.close_reason, "closed_at": views.iso(r.closed_at), "owner": r.owner}
                    for r in conn.execute(query)]

    @operation
    def start_revisit(self, client_id: int, *, process: str, owner: str | None = None) -> results.LeadShown:
        """A new lead for a client coming back; ``lead show`` lists the client's earlier leads."""
        with self.ctx.transaction() as conn:
            name = client_name(conn, client_id)
            lead = self.engine.leads.add(process=process, name=name, client_id=client_id, owner=owner,
                                         source="revisit")
            return self.engine.leads.get(lead["id"])

    @operation
    def removals(self, month: str, *, process: str | None = None, kind: str = "all",
                 team: str | None = None, owner: str | None = None) -> results.Removals:
        """The monthly summary of leads closed without a sale (refusals and removals)."""
        from engine import recovery

        match = re.fullmatch(r"(\d{4})-(\d{2})", month.strip())
        if not match or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1:
            raise InvalidInputError(N_("month {month!r} is not written YYYY-MM, e.g. 2026-03"), month=month)
        if kind != "all" and kind not in tuple(ClosureKind):
            raise InvalidInputError(N_("kind '{kind}' is not one of: all, {kinds}"), kind=kind,
                                    kinds=', '.join(ClosureKind))
        start = dt.datetime(int(match[1]), int(match[2]), 1)
        end = dt.datetime.max if (start.year, start.month) == (9999, 12) else dt.datetime(
            start.year + start.month // 12, start.month % 12 + 1, 1)
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            seen = ctx.scope(conn, actor, owner=owner, team=team)
            specs = [s for _, s in ctx.all_specs(conn) if process is None or s.id == process]
            if process is not None and not specs:
                ctx.spec(conn, process)  # raises the not-found error with suggestions
            kinds = tuple(ClosureKind) if kind == "all" else (kind,)
            return {"month": f"{start:%Y-%m}", "kind": kind,
                    **recovery.removals(conn, specs, start, end, seen.on(closures), kinds)}


def record_closure(conn: Connection, state: LeadState, reason: ClosureReason) -> None:
    """A lead closing without a sale: its row for the removals and refusal reports, and, when the reason asks
    for it, a refusal review for the director."""
    now = clock.now()
    conn.execute(sa.insert(closures).values(
        lead_id=state.id, client_id=state.client_id, process=state.process, reason=reason.id, kind=reason.kind,
        owner=state.owner, team=state.team, product=state.product, value_minor=state.value_minor,
        stage=state.stage, closed_at=now))
    if reason.review:
        conn.execute(sa.insert(reviews).values(lead_id=state.id, team=state.team, reason=reason.id,
                                               requested_at=now, state=ReviewState.OPEN))


def record_reopening(conn: Connection, lead_id: int, actor: str) -> None:
    """A lead reopening: its closure is marked reopened, and its open refusal review (reopened by other means
    than the director's decision) no longer waits for one."""
    now = clock.now()
    conn.execute(sa.update(closures).where(closures.c.lead_id == lead_id, closures.c.reopened_at.is_(None))
                 .values(reopened_at=now))
    conn.execute(sa.update(reviews).where(reviews.c.lead_id == lead_id, reviews.c.state == ReviewState.OPEN)
                 .values(state=ReviewState.SUPERSEDED, decided_by=actor, decided_at=now, note="the lead was reopened"))


def _decide(conn: Connection, review_id: int, state: str, actor: str, note: str | None) -> None:
    conn.execute(sa.update(reviews).where(reviews.c.id == review_id).values(
        state=state, decided_by=actor, decided_at=clock.now(), note=note))


def reviews_seen(ctx: Context, conn: Connection, actor: Actor, past: dt.datetime | None, src: Sources,
                 state: str | None = ReviewState.OPEN) -> list[results.Review]:
    """``RecoveryService.reviews`` on an open connection, as of ``past`` from its sources ``src`` (the stand-up's
    own, read once for both: six months back at a million deals they take a second and more to read)."""
    policy.require_sees_reviews(actor)
    if past is None:
        return [views.review(r, _review_due(ctx, conn, r))
                for r in conn.execute(_reviews_query(src.leads, actor, state)).mappings()]
    query = _reviews_query(src.leads, actor, None).where(reviews.c.requested_at <= past)
    rows = [r if r["decided_at"] is not None and r["decided_at"] <= past else  # undecided then
            {**r, "state": ReviewState.OPEN.value, "decided_by": None, "decided_at": None, "note": None}
            for r in conn.execute(query).mappings()]
    return [views.review(r, _review_due(ctx, conn, r)) for r in rows if state is None or r["state"] == state]


def _reviews_query(lead_rows: sa.FromClause, actor: Actor, state: str | None) -> sa.Select[Any]:
    """The reviews the actor sees (of ``state``), with their lead's columns from ``lead_rows``."""
    lc = lead_rows.c
    query = (sa.select(reviews, lc.process, lc.owner, lc.value_minor, lc.close_note, lc.closed_from_stage,
                       clients.c.name)
             .join(lead_rows, lc.id == reviews.c.lead_id).join(clients, clients.c.id == lc.client_id)
             .order_by(reviews.c.requested_at, reviews.c.id))
    if state is not None:
        query = query.where(reviews.c.state == state)
    team = policy.reviews_team(actor)
    if team is not None:
        query = query.where(reviews.c.team == team)
    return query


def _review_due(ctx: Context, conn: Connection, row: Mapping) -> dt.datetime:
    """A review is due two business days after the refusal, in the lead's process calendar."""
    from engine import calendar

    spec = ctx.spec(conn, row["process"])
    return calendar.due_at(row["requested_at"], 2, spec.calendar)
