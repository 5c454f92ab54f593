"""The board, the stand-up and the stalled leads as of a past instant (``as_of``; docs/reports.md, "As of a past
instant"), beside the current views of ``engine.board`` and ``engine.recovery``, which they leave untouched.

They read the leads and their tasks as they stood at the instant (``reports.asof.sources``): the open leads then,
in the stage they were in, with the deadlines (``red_at``, the open tasks) and booked contacts of that moment,
judged at that instant with the same rules as now (``board.light_of``, ``recovery.is_stalled``). Where the current
board sums the kept ``stage_counts`` and counts index ranges per light, these read the open leads in scope once, in
the board's order, and count them in Python: ``stage_counts`` holds only today's leads, and a past board is a
question asked rarely, over the few leads open at one instant.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import board, calendar, recovery, results, views
from engine.rules import minor_to_money
from engine.spec import ProcessSpec
from engine.store import clients, leads, users
from engine.vocab import LeadStatus

if TYPE_CHECKING:
    from engine.reports.asof import Sources
    from engine.store.sqltypes import Condition, Record


#: The order of a list of leads as the current views sort it (in SQL: where a null sorts is the database's).
BOARD_ORDER = ("red_at", "value_minor", "id")  # most urgent first
DUE_ORDER = ("red_at", "id")
WAITING_ORDER = ("created_at", "id")


def _open_leads(conn: Connection, src: Sources, where: Sequence[Condition], order: Sequence[str],
                *columns: str) -> list[Record]:
    """The leads open at the instant that ``where`` admits, with their client's name and ``columns``."""
    lc = src.leads.c
    return list(conn.execute(
        sa.select(lc.id, clients.c.name, *(lc[name] for name in columns))
        .select_from(src.leads.join(clients, clients.c.id == lc.client_id))
        .where(lc.status == LeadStatus.OPEN, *where)
        .order_by(*(lc[name] for name in order))))


def board_at(conn: Connection, spec: ProcessSpec, src: Sources, scope: board.Scope, *, light: str | None = None,
             limit: int = 50) -> results.Board:
    """``board.board`` as of ``src.at``: the same figures and lists, from the leads as they stood then."""
    assert src.at is not None
    now = src.at
    too_long_before = now - dt.timedelta(days=spec.sales_cycle_days)
    rows = _open_leads(conn, src, [src.leads.c.process == spec.id, *scope.on(src.leads)], BOARD_ORDER,
                       "owner", "value_minor",
                       "stage", "stage_entered_at", "created_at", "red_at", "stage_due_at", "next_contact_at")
    by_stage: dict[str, list[tuple[Record, str]]] = {}
    yellow: dict[str, dt.datetime] = {}
    for r in rows:
        if r.stage not in yellow:
            stage = spec.stage(r.stage)
            yellow[r.stage] = calendar.last_yellow_deadline(now, stage.warning_days if stage else 0, spec.calendar)
        by_stage.setdefault(r.stage, []).append((r, board.light_of(r.red_at, now, yellow[r.stage],
                                                                   r.next_contact_at)))
    known = [s.id for s in spec.stages]
    shown_rows = {stage_id: [(r, lamp) for r, lamp in in_stage if light in (None, lamp)][:limit]
                  for stage_id, in_stage in by_stage.items()}
    tasks = src.open_tasks(conn, [r.id for listed in shown_rows.values() for r, _ in listed])
    stages: list[results.BoardStage] = []
    for stage_id in [*known, *sorted(set(by_stage) - set(known))]:
        stage = spec.stage(stage_id)
        in_stage = by_stage.get(stage_id, [])
        counted = {lamp: [(r, lit) for r, lit in in_stage if lit == lamp] for lamp in board.LIGHTS}
        chosen = in_stage if light is None else counted[light]
        listed: list[results.Card] = []
        for r, lamp in shown_rows.get(stage_id, []):
            open_tasks = tasks.get((r.id, stage_id), [])
            listed.append({
                "id": r.id, "name": r.name, "owner": r.owner, "value": minor_to_money(r.value_minor),
                "light": lamp, "days_in_stage": (now - r.stage_entered_at).days,
                "days_in_process": (now - r.created_at).days, "too_long": r.created_at < too_long_before,
                "due_at": r.red_at.isoformat() if r.red_at else None,
                "next_contact": r.next_contact_at.isoformat() if r.next_contact_at else None,
                "next_task": board._next_task(stage, open_tasks),
                "overdue": board._overdue(stage, r, now, open_tasks) if lamp == "red" else None})
        stages.append({
            "id": stage_id, "name": stage.name if stage else stage_id, "count": len(chosen),
            "value": minor_to_money(sum(r.value_minor or 0 for r, _ in chosen)),
            "lights": {"green": len(counted["green"]) if light in (None, "green") else 0,
                       "yellow": len(counted["yellow"]) if light in (None, "yellow") else 0,
                       "red": len(counted["red"]) if light in (None, "red") else 0},
            "too_long": sum(1 for r, _ in chosen if r.created_at < too_long_before),
            "leads": listed if limit else []})
    value = sum(r.value_minor or 0 for in_stage in by_stage.values() for r, lamp in in_stage if light in (None, lamp))
    totals: results.BoardTotals = {
        "count": sum(s["count"] for s in stages), "value": minor_to_money(value),
        "red": sum(s["lights"]["red"] for s in stages), "yellow": sum(s["lights"]["yellow"] for s in stages),
        "green": sum(s["lights"]["green"] for s in stages), "too_long": sum(s["too_long"] for s in stages)}
    return {"process": spec.id, "title": spec.title, "currency": spec.currency, "as_of": now.isoformat(),
            "totals": totals, "stages": stages, "limit": limit,
            "unassigned": unassigned_at(conn, src, scope.team, cap=limit, process=spec.id) if scope.owner is None
            else None}


def _waiting(src: Sources) -> Condition:
    """``board.waiting_for_an_owner`` at the instant: no owner then, or an owner deactivated by then."""
    owner = src.leads.c.owner
    assert src.at is not None
    gone = sa.select(users.c.name).where(sa.not_(users.c.active), users.c.deactivated_at <= src.at)
    return sa.or_(owner.is_(None), owner.in_(gone))


def unassigned_at(conn: Connection, src: Sources, team: str | None, *, cap: int = 20,
                  process: str | None = None) -> results.Unassigned:
    """``board.unassigned`` as of ``src.at``: the open leads then waiting for an owner, oldest first."""
    assert src.at is not None
    lc = src.leads.c
    rows = _open_leads(conn, src, [_waiting(src), *([lc.team == team] if team else []),
                                   *([lc.process == process] if process else [])], WAITING_ORDER,
                       "process", "stage", "team", "created_at", "red_at", "value_minor", "owner")
    return {"count": len(rows), "leads": [
        {"lead_id": r.id, "name": r.name, "process": r.process, "stage": r.stage, "team": r.team,
         "created_at": r.created_at.isoformat(), "waiting_days": (src.at - r.created_at).days,
         "overdue": r.red_at is not None and r.red_at < src.at, "value": minor_to_money(r.value_minor),
         "deactivated_owner": r.owner}
        for r in rows[:cap]]}


def standup_at(conn: Connection, people: Sequence[str], src: Sources, calendar_of: Callable[[str, str | None], str],
               specs: list[tuple[int, ProcessSpec]], *, cap: int = 20) -> list[results.DailyPerson]:
    """``board.daily_for`` of each of ``people`` as of ``src.at``: their agendas that morning, from the leads as
    they stood then, read once for them all (their open leads, their lost leads due a revisit).
    ``calendar_of(person, process)``: a person's calendar, given the process holding most of their open leads (None
    without any: the caller's fallback, engine/services/boards.py)."""
    lc = src.leads.c
    mine: dict[str, list[Record]] = {person: [] for person in people}
    for r in _open_leads(conn, src, [lc.owner.in_(list(people))], DUE_ORDER, "owner", "process", "stage", "red_at",
                         "value_minor", "next_contact_at", "owner_since"):
        mine[r.owner].append(r)
    revisits = _revisits_at(conn, people, src, specs, cap)
    agendas = []
    for person in people:
        held = Counter(r.process for r in mine[person])
        main = min(held, key=lambda process: (-held[process], process)) if held else None
        agendas.append(_daily_at(conn, person, src, calendar_of(person, main), mine[person], revisits.get(person, []),
                                 cap))
    return agendas


def _daily_at(conn: Connection, person: str, src: Sources, country: str, mine: list[Record],
              revisits: list[results.RevisitDue], cap: int) -> results.DailyPerson:
    """One person's agenda as of ``src.at`` from their open leads then (``mine``, by deadline)."""
    assert src.at is not None
    now = src.at
    today = now.date()
    since = dt.datetime.combine(calendar.previous_business_day(today, country), dt.time(0, 0))
    end_today = dt.datetime.combine(today, calendar.END_OF_DAY)
    end_next = dt.datetime.combine(calendar.next_business_day(today, country), calendar.END_OF_DAY)

    def first(r: Record) -> dt.datetime:
        """The lead's earliest deadline or booked contact (``daily_for``'s windows are on either)."""
        return min(t for t in (r.red_at, r.next_contact_at, dt.datetime.max) if t is not None)

    def due(start: dt.datetime | None, end: dt.datetime) -> list[Record]:
        return [r for r in mine if first(r) <= end and (start is None or first(r) >= start)]

    red = [r for r in mine if first(r) < now]
    today_rows = due(now, end_today)
    next_rows = due(end_today + dt.timedelta(seconds=1), end_next)
    tasks = src.open_tasks(conn, [r.id for r in [*red[:cap], *today_rows[:cap], *next_rows[:cap]]])

    def listed(rows: list[Record], end: dt.datetime) -> results.DueLeads:
        return {"count": len(rows), "leads": [
            {"lead_id": r.id, "name": r.name, "process": r.process, "stage": r.stage,
             "due_at": r.red_at.isoformat() if r.red_at else None,
             "tasks": [task for task, due_at in tasks.get((r.id, r.stage), []) if due_at is not None and due_at <= end],
             "value": minor_to_money(r.value_minor),
             "next_contact": r.next_contact_at.isoformat() if r.next_contact_at else None}
            for r in rows[:cap]]}

    new = sorted((r for r in mine if r.owner_since >= since), key=lambda r: (r.owner_since, r.id))[:cap]
    return {
        "salesperson": person, "calendar": country, "since": since.isoformat(),
        "red": listed(red, now), "due_today": listed(today_rows, end_today),
        "due_next_business_day": listed(next_rows, end_next),
        "revisits_due": revisits,
        "new_leads": [{"lead_id": r.id, "name": r.name, "process": r.process, "stage": r.stage,
                       "assigned_at": r.owner_since.isoformat()} for r in new],
        "done": board.done_by(conn, person, since, now, cap)}


def _revisits_at(conn: Connection, people: Sequence[str], src: Sources, specs: list[tuple[int, ProcessSpec]],
                 cap: int) -> dict[str, list[results.RevisitDue]]:
    """Per person, their lost leads at the instant whose revisit was due then and whose client had no newer
    lead, oldest closing first."""
    assert src.at is not None
    lc = src.leads.c
    # a lead's client and creation never change: the later leads then are those of ``leads`` created by then
    later = leads.alias("later")
    due = [sa.and_(lc.process_version == version, lc.close_reason == reason.id,
                   lc.closed_at <= src.at - dt.timedelta(days=reason.revisit_after_days))
           for version, spec in specs for reason in spec.closure_reasons if reason.revisit_after_days]
    found: dict[str, list[results.RevisitDue]] = {}
    if not due or not people:
        return found
    rows = conn.execute(
        sa.select(lc.owner, lc.id, lc.client_id, clients.c.name, lc.process, lc.close_reason, lc.closed_at)
        .select_from(src.leads.join(clients, clients.c.id == lc.client_id))
        .where(lc.owner.in_(list(people)), lc.status == LeadStatus.LOST, sa.or_(*due),
               ~sa.exists(sa.select(later.c.id).where(later.c.client_id == lc.client_id,
                                                      later.c.created_at > lc.closed_at,
                                                      later.c.created_at <= src.at)))
        .order_by(lc.owner, lc.closed_at, lc.id))
    for r in rows:
        listed = found.setdefault(r.owner, [])
        if len(listed) < cap:
            listed.append({"lead_id": r.id, "client_id": r.client_id, "name": r.name, "process": r.process,
                           "reason": r.close_reason, "closed_at": r.closed_at.isoformat()})
    return found


def stalled_at(conn: Connection, spec: ProcessSpec, cycle: float, src: Sources, scope: board.Scope,
               limit: int) -> list[results.StalledLead]:
    """The stalled leads of ``spec`` as of ``src.at`` (``recovery.is_stalled`` on the leads as they stood then),
    by how long their owner had held them."""
    assert src.at is not None
    lc = src.leads.c
    rows = conn.execute(
        sa.select(lc.id, lc.client_id, clients.c.name, lc.process, lc.status, lc.stage, lc.owner, lc.owner_since,
                  lc.last_activity_at, lc.recalled_at, lc.extended_until, lc.last_report, lc.last_report_at,
                  lc.value_minor, lc.rest_until)
        .select_from(src.leads.join(clients, clients.c.id == lc.client_id))
        .where(lc.process == spec.id, lc.status == LeadStatus.OPEN, lc.owner.is_not(None), *scope.on(src.leads))
        .order_by(lc.owner_since, lc.id))
    stalled = [r for r in rows if recovery.is_stalled(r, spec, cycle, src.at)][:limit]
    return [views.stalled(r, recovery.stalled_reason(r, spec, cycle, src.at), src.at) for r in stalled]
