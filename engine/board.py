"""The opportunities board and the daily stand-up, computed by the database.

A lead's light needs no per-row computation. Every write stores ``red_at``, the
lead's earliest open mandatory deadline, and keeps ``stage_counts`` (open leads
and value per process, stage, team and owner) up to date in the same
transaction. At an instant ``now``, within one stage:

- red leads are those with ``red_at < now``;
- yellow leads are those with ``now <= red_at <= last_yellow_deadline(now)``,
  because a deadline's warning window opens at a time that grows with the
  deadline (``engine.calendar.last_yellow_deadline``);
- green leads are the rest;

and a lead whose booked next contact (``next_contact_at``) is missed is red, due today yellow, whatever its
deadlines say (``light_of`` and ``_light_range``, the Python and SQL forms, which tests/test_board.py compares).

So a board is a sum over ``stage_counts`` plus two index range counts per
stage, and the leads it lists are the first entries of an index.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import calendar, results, revisits
from engine.rules import minor_to_money
from engine.spec import ProcessSpec, StageSpec
from engine.state import OwnedLead
from engine.store import clients, events, lead_tasks, leads, stage_counts, users
from engine.vocab import EventKind, LeadStatus, TaskStatus

if TYPE_CHECKING:
    from engine.store.sqltypes import Condition, Record

LIGHTS = ("red", "yellow", "green")
#: The work a stand-up lists as done.
DONE_KINDS = (EventKind.TASK_DONE, EventKind.ADVANCED, EventKind.WON, EventKind.CLOSED)


@dataclass(frozen=True)
class Scope:
    """Whose leads a view covers: everyone's, a team's, or one owner's."""

    team: str | None = None
    owner: str | None = None

    def on(self, table: sa.FromClause) -> list[Condition]:
        """Conditions on any table with ``team`` and ``owner`` columns (the SQL form of ``covers``)."""
        return [*([table.c.team == self.team] if self.team is not None else []),
                *([table.c.owner == self.owner] if self.owner is not None else [])]

    def on_leads(self) -> list[Condition]:
        return self.on(leads)

    def on_counts(self) -> list[Condition]:
        return self.on(stage_counts)

    def covers(self, lead: OwnedLead) -> bool:
        """The Python form of ``on``."""
        return (self.team is None or lead.team == self.team) and (self.owner is None or lead.owner == self.owner)


def light_of(red_at: dt.datetime | None, now: dt.datetime, yellow_until: dt.datetime,
             next_contact: dt.datetime | None = None) -> str:
    """The lead's light: red once a deadline or the booked next contact is missed; yellow when a deadline is in
    its warning window or the next contact is due today; green otherwise (the Python form of ``_light_range``)."""
    end_of_today = _end_of_day(now)
    if (red_at is not None and red_at < now) or (next_contact is not None and next_contact < now):
        return "red"
    if (red_at is not None and red_at <= yellow_until) or (next_contact is not None and next_contact <= end_of_today):
        return "yellow"
    return "green"


def _end_of_day(now: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(now.date(), calendar.END_OF_DAY)


def _light_range(light: str, now: Any, yellow_until: Any, end_of_today: Any = None) -> list[Condition]:
    """The SQL form of ``light_of``: the conditions on ``leads`` of the leads with ``light`` (the instants as
    values, or as bound parameters with ``end_of_today`` then given)."""
    contact = leads.c.next_contact_at
    end_of_today = _end_of_day(now) if end_of_today is None else end_of_today
    missed = [leads.c.red_at < now, contact < now]
    if light == "red":
        return [sa.or_(*missed)]
    not_red = [sa.or_(leads.c.red_at >= now, leads.c.red_at.is_(None)), sa.or_(contact >= now, contact.is_(None))]
    soon = sa.or_(leads.c.red_at <= yellow_until, contact <= end_of_today)
    if light == "yellow":
        return [*not_red, soon]
    return [*not_red, sa.or_(leads.c.red_at > yellow_until, leads.c.red_at.is_(None)),
            sa.or_(contact > end_of_today, contact.is_(None))]


def board(conn: Connection, spec: ProcessSpec, now: dt.datetime, scope: Scope, *,
          light: str | None = None, limit: int = 50) -> results.Board:
    """One process's board as of ``now``: a few statements whatever the number of stages and leads (the counts,
    the lights of every stage, the listed leads of every stage, their open tasks)."""
    open_leads = [leads.c.process == spec.id, leads.c.status == LeadStatus.OPEN, *scope.on_leads()]
    totals_by_stage = {
        stage: (int(n), int(v)) for stage, n, v in conn.execute(
            sa.select(stage_counts.c.stage, sa.func.sum(stage_counts.c.leads),
                      sa.func.sum(stage_counts.c.value_minor))
            .where(stage_counts.c.process == spec.id, *scope.on_counts())
            .group_by(stage_counts.c.stage))
        if n
    }
    too_long_before = now - dt.timedelta(days=spec.sales_cycle_days)
    # Grouping by an expression keeps SQLite's planner on the age index (a range of old leads) instead of
    # walking the stage index for its grouping order.
    stage_key = leads.c.stage.op("||")(sa.literal_column("''"))
    too_long: dict[str, int] = {} if light is not None else dict(conn.execute(
        sa.select(stage_key, sa.func.count())
        .where(*open_leads, leads.c.created_at < too_long_before)
        .group_by(stage_key)).all())

    known = [s.id for s in spec.stages]
    stage_ids = [*known, *sorted(set(totals_by_stage) - set(known))]
    # a stage of an older version (leads not migrated yet) has no warning window here
    yellow_until = {stage_id: calendar.last_yellow_deadline(
        now, stage.warning_days if (stage := spec.stage(stage_id)) else 0, spec.calendar) for stage_id in stage_ids}
    occupied = [stage_id for stage_id in stage_ids if stage_id in totals_by_stage]
    if light is not None:  # the leads too long in the process among those of the light: every stage at once
        too_long = _too_long_with_light(conn, spec.id, scope, light, now, too_long_before,
                                        {stage_id: yellow_until[stage_id] for stage_id in occupied})
    lit = _light_counts(conn, spec.id, scope, now, {stage_id: yellow_until[stage_id] for stage_id in occupied})
    stages: list[results.BoardStage] = []
    value_minor = 0
    listed: dict[str, int] = {}
    for stage_id in stage_ids:
        stage = spec.stage(stage_id)
        count, value = totals_by_stage.get(stage_id, (0, 0))
        by_light = {"green": [count, value]}
        for lamp in ("red", "yellow"):
            n, v = lit.get((stage_id, lamp), (0, 0))
            by_light[lamp] = [n, v]
            by_light["green"][0] -= n
            by_light["green"][1] -= v
        if light is not None:
            count, value = by_light[light]
        value_minor += value
        shown = {lamp: (by_light[lamp][0] if light in (None, lamp) else 0) for lamp in LIGHTS}
        stages.append({
            "id": stage_id, "name": stage.name if stage else stage_id, "count": count,
            "value": minor_to_money(value),
            "lights": {"green": shown["green"], "yellow": shown["yellow"], "red": shown["red"]},
            "too_long": too_long.get(stage_id, 0),
            "leads": [],
        })
        if count and limit:
            listed[stage_id] = len(stages) - 1
    rows = _first_leads(conn, spec.id, scope, light, now, {stage_id: yellow_until[stage_id] for stage_id in listed},
                        limit)
    open_tasks = _open_tasks(conn, [(r.id, r.stage) for r in rows])
    for r in rows:
        stage = spec.stage(r.stage)
        lamp = light_of(r.red_at, now, yellow_until[r.stage], r.next_contact_at)
        tasks = open_tasks.get(r.id, [])
        stages[listed[r.stage]]["leads"].append({
            "id": r.id, "name": r.name, "owner": r.owner, "value": minor_to_money(r.value_minor),
            "light": lamp, "days_in_stage": (now - r.stage_entered_at).days,
            "days_in_process": (now - r.created_at).days, "too_long": r.created_at < too_long_before,
            "due_at": r.red_at.isoformat() if r.red_at else None,
            "next_contact": r.next_contact_at.isoformat() if r.next_contact_at else None,
            "next_task": _next_task(stage, tasks),
            "overdue": _overdue(stage, r, now, tasks) if lamp == "red" else None})
    totals: results.BoardTotals = {
        "count": sum(s["count"] for s in stages),
        "value": minor_to_money(value_minor),
        "red": sum(s["lights"]["red"] for s in stages),
        "yellow": sum(s["lights"]["yellow"] for s in stages),
        "green": sum(s["lights"]["green"] for s in stages),
        "too_long": sum(s["too_long"] for s in stages),
    }
    return {"process": spec.id, "title": spec.title, "currency": spec.currency, "as_of": now.isoformat(),
            "totals": totals, "stages": stages, "limit": limit,
            # the manager's lane: the leads of this board's team waiting for an owner (none on one person's board)
            "unassigned": unassigned(conn, scope.team, now, cap=limit, process=spec.id) if scope.owner is None
            else None}


def _light_counts(conn: Connection, spec_id: str, scope: Scope, now: dt.datetime,
                  yellow_until: dict[str, dt.datetime]) -> dict[tuple[str, str], tuple[int, int]]:
    """The red and yellow leads (number, value) of each stage of ``yellow_until`` (the stage's end of its warning
    window): one statement whose parts are each a range of one index, never a walk over a stage's leads.

    ``light_of``'s red is a missed deadline (A: ``red_at < now``) or a missed contact (B: ``next_contact_at <
    now``); its yellow is, short of red, a deadline in its window (C: ``red_at <= yellow_until``) or a contact due
    today (D). So red = A + (B but not A), yellow = (C but not A nor B) + (D but not C nor B): parts that do not
    overlap, the ones of A and C ranges of ``red_at`` in the board's indexes, those of B and D ranges of
    ``next_contact_at`` in the index of booked contacts (ix_leads_contact_board).
    """
    if not yellow_until:
        return {}
    found: dict[tuple[str, str], tuple[int, int]] = {}
    stage_ids = list(yellow_until)
    params = _stage_params(spec_id, scope, now, yellow_until)
    for part, n, v in conn.execute(_lights_statement(len(stage_ids), scope.team is not None,
                                                     scope.owner is not None), params):
        key = (stage_ids[int(part) // 4], "red" if int(part) % 4 < 2 else "yellow")
        had = found.get(key, (0, 0))
        found[key] = (had[0] + int(n), had[1] + int(v))
    return found


def _stage_params(spec_id: str, scope: Scope, now: dt.datetime, yellow_until: dict[str, dt.datetime]
                  ) -> dict[str, Any]:
    """The values of ``_open_in_stage``'s parameters for the stages of ``yellow_until``, in order."""
    params: dict[str, Any] = {"process": spec_id, "status": LeadStatus.OPEN, "team": scope.team,
                              "owner": scope.owner, "now": now, "end_of_today": _end_of_day(now)}
    for i, (stage_id, until) in enumerate(yellow_until.items()):
        params[f"stage{i}"], params[f"until{i}"] = stage_id, until
    return params


def _open_in_stage(i: int, team: bool, owner: bool) -> list[Condition]:
    """The open leads of the ``i``-th stage of a board (its id, and the scope's team and owner, bound later
    by ``_stage_params``): the statements built of it are built once and reused for every board."""
    return [leads.c.process == sa.bindparam("process"), leads.c.status == sa.bindparam("status"),
            *([leads.c.team == sa.bindparam("team")] if team else []),
            *([leads.c.owner == sa.bindparam("owner")] if owner else []),
            leads.c.stage == sa.bindparam(f"stage{i}")]


def _instant(name: str) -> sa.BindParameter[dt.datetime]:
    return sa.bindparam(name, type_=leads.c.red_at.type)


@functools.cache
def _lights_statement(stages: int, team: bool, owner: bool) -> sa.CompoundSelect[Any]:
    """``_light_counts``' statement for a board of ``stages`` occupied stages: part ``4 * i + k`` counts the
    ``i``-th stage's A, B-not-A, C-not-A-nor-B or D-not-C-nor-B."""
    red_at, contact = leads.c.red_at, leads.c.next_contact_at
    now, end_of_today = _instant("now"), _instant("end_of_today")
    selects = []
    for i in range(stages):
        until = _instant(f"until{i}")
        for k, window in enumerate((
                [red_at < now],
                [contact < now, sa.or_(red_at >= now, red_at.is_(None))],
                [red_at >= now, red_at <= until, sa.or_(contact >= now, contact.is_(None))],
                [contact >= now, contact <= end_of_today, sa.or_(red_at > until, red_at.is_(None))])):
            selects.append(sa.select(sa.literal_column(str(4 * i + k)).label("part"), sa.func.count().label("n"),
                                     sa.func.coalesce(sa.func.sum(leads.c.value_minor), 0).label("v"))
                           .where(*_open_in_stage(i, team, owner), *window))
    return sa.union_all(*selects)


def _first_leads(conn: Connection, spec_id: str, scope: Scope, light: str | None, now: dt.datetime,
                 yellow_until: dict[str, dt.datetime], limit: int) -> list[Record]:
    """The first ``limit`` leads (of ``light``) of each stage of ``yellow_until``, most urgent first: each stage's
    first entries of the board's index, in one statement."""
    if not yellow_until:
        return []
    statement = _first_leads_statement(len(yellow_until), scope.team is not None, scope.owner is not None, light)
    rows = list(conn.execute(statement, {**_stage_params(spec_id, scope, now, yellow_until), "limit": limit}))
    # each stage's leads in the order its ORDER BY gave (a compound statement promises no order of its own);
    # NULLs sort first in SQLite and last in PostgreSQL
    null_rank = 0 if conn.dialect.name == "sqlite" else 2

    def urgency(value: Any) -> tuple[Any, ...]:
        return (null_rank,) if value is None else (1, value)

    rows.sort(key=lambda r: (urgency(r.red_at), urgency(r.value_minor), r.id))
    return rows


@functools.cache
def _first_leads_statement(stages: int, team: bool, owner: bool, light: str | None) -> sa.CompoundSelect[Any]:
    now, end_of_today = _instant("now"), _instant("end_of_today")
    firsts = [
        sa.select(leads.c.id, clients.c.name, leads.c.stage, leads.c.owner, leads.c.value_minor,
                  leads.c.stage_entered_at, leads.c.created_at, leads.c.red_at, leads.c.stage_due_at,
                  leads.c.next_contact_at)
        .join(clients, clients.c.id == leads.c.client_id)
        .where(*_open_in_stage(i, team, owner),
               *(_light_range(light, now, _instant(f"until{i}"), end_of_today) if light else []))
        .order_by(leads.c.red_at, leads.c.value_minor, leads.c.id)  # most urgent first
        .limit(sa.bindparam("limit", type_=sa.Integer)).subquery()
        for i in range(stages)]
    return sa.union_all(*(sa.select(first) for first in firsts))


OpenTasks = list[tuple[str, dt.datetime | None]]


def _open_tasks(conn: Connection, listed: list[tuple[int, str]]) -> dict[int, OpenTasks]:
    """The listed leads' (id, stage) open tasks of their stage, by deadline: one lookup for a whole board."""
    stage_of = dict(listed)
    found: dict[int, OpenTasks] = {}
    if not listed:
        return found
    for lead_id, stage_id, task_id, due_at in conn.execute(
            sa.select(lead_tasks.c.lead_id, lead_tasks.c.stage, lead_tasks.c.task_id, lead_tasks.c.due_at)
            .where(lead_tasks.c.lead_id.in_(list(stage_of)), lead_tasks.c.state == TaskStatus.OPEN)
            .order_by(lead_tasks.c.lead_id, lead_tasks.c.due_at, lead_tasks.c.task_id)):
        if stage_of[lead_id] == stage_id:
            found.setdefault(lead_id, []).append((task_id, due_at))
    return found


def _next_task(stage: StageSpec | None, tasks: OpenTasks) -> results.NextTask | None:
    """The first open task by deadline (one without a deadline comes last)."""
    if not tasks:
        return None
    task_id, due_at = min(tasks, key=lambda t: (t[1] is None, t[1] or dt.datetime.min, t[0]))
    task = stage.task(task_id) if stage else None
    return {"id": task_id, "name": task.name if task else task_id, "due_at": due_at.isoformat() if due_at else None}


def _overdue(stage: StageSpec | None, row: Record, now: dt.datetime, tasks: OpenTasks) -> results.Overdue | None:
    """What made a red lead red: its earliest passed deadline (``red_at``, state.refresh_signal: a mandatory
    task's or the stage's), or else its missed next contact."""
    red_at, stage_due_at, contact = row.red_at, row.stage_due_at, row.next_contact_at
    if red_at is not None and red_at < now and stage is not None:
        for task_id, due_at in tasks:
            task = stage.task(task_id)
            if due_at == red_at and task is not None and task.mandatory:
                return {"kind": "task", "id": task_id, "name": task.name, "due_at": red_at.isoformat()}
        if stage_due_at == red_at:
            return {"kind": "stage", "id": stage.id, "name": stage.name, "due_at": red_at.isoformat()}
    if contact is not None and contact < now:
        return {"kind": "contact", "id": "next_contact", "name": "next contact", "due_at": contact.isoformat()}
    return None


def _too_long_with_light(conn: Connection, spec_id: str, scope: Scope, light: str, now: dt.datetime,
                         too_long_before: dt.datetime, yellow_until: dict[str, dt.datetime]) -> dict[str, int]:
    """The leads of ``light`` created before ``too_long_before``, by stage of ``yellow_until``: one statement."""
    if not yellow_until:
        return {}
    stage_ids = list(yellow_until)
    params = {**_stage_params(spec_id, scope, now, yellow_until), "too_long_before": too_long_before}
    statement = _too_long_statement(len(stage_ids), scope.team is not None, scope.owner is not None, light)
    return {stage_ids[int(part)]: int(n) for part, n in conn.execute(statement, params)}


@functools.cache
def _too_long_statement(stages: int, team: bool, owner: bool, light: str) -> sa.CompoundSelect[Any]:
    """``_too_long_with_light``'s statement for a board of ``stages`` occupied stages: part ``i`` counts the
    ``i``-th stage's."""
    now, end_of_today = _instant("now"), _instant("end_of_today")
    return sa.union_all(*(
        sa.select(sa.literal_column(str(i)).label("part"), sa.func.count().label("n"))
        .where(*_open_in_stage(i, team, owner), *_light_range(light, now, _instant(f"until{i}"), end_of_today),
               leads.c.created_at < _instant("too_long_before"))
        for i in range(stages)))


def daily_for(conn: Connection, person: str, now: dt.datetime, country: str,
              specs: list[tuple[int, ProcessSpec]], *, cap: int = 20) -> results.DailyPerson:
    """One salesperson's stand-up agenda, in priority order of its sections (``specs``: every process
    version, for the revisits due)."""
    today = now.date()
    since = dt.datetime.combine(calendar.previous_business_day(today, country), dt.time(0, 0))
    end_today = dt.datetime.combine(today, calendar.END_OF_DAY)
    end_next = dt.datetime.combine(calendar.next_business_day(today, country), calendar.END_OF_DAY)
    mine = [leads.c.owner == person, leads.c.status == LeadStatus.OPEN]

    def leads_due(*window: Condition) -> tuple[int, list[Record]]:
        """Leads whose earliest open mandatory deadline (red_at) lies in ``window``: a range of one index."""
        count = conn.execute(sa.select(sa.func.count()).select_from(leads).where(*mine, *window)).scalar_one()
        rows = conn.execute(
            sa.select(leads.c.id, clients.c.name, leads.c.process, leads.c.stage, leads.c.red_at,
                      leads.c.value_minor, leads.c.next_contact_at)
            .join(clients, clients.c.id == leads.c.client_id)
            .where(*mine, *window).order_by(leads.c.red_at, leads.c.id).limit(cap)).all()
        return int(count), list(rows)

    def with_tasks(rows: list[Record], end: dt.datetime) -> list[results.DueLead]:
        """The listed leads with the open tasks of their stage due by ``end`` (a few leads: a few lookups)."""
        due: dict[int, list[str]] = {}
        if rows:
            for lead_id, task_id in conn.execute(
                sa.select(lead_tasks.c.lead_id, lead_tasks.c.task_id)
                .join(leads, sa.and_(leads.c.id == lead_tasks.c.lead_id, leads.c.stage == lead_tasks.c.stage))
                .where(lead_tasks.c.lead_id.in_([r.id for r in rows]), lead_tasks.c.state == TaskStatus.OPEN,
                       lead_tasks.c.due_at <= end)
                .order_by(lead_tasks.c.due_at, lead_tasks.c.task_id)):
                due.setdefault(lead_id, []).append(task_id)
        return [{"lead_id": r.id, "name": r.name, "process": r.process, "stage": r.stage,
                 "due_at": r.red_at.isoformat() if r.red_at else None, "tasks": due.get(r.id, []),
                 "value": minor_to_money(r.value_minor),
                 "next_contact": r.next_contact_at.isoformat() if r.next_contact_at else None}
                for r in rows]

    contact = leads.c.next_contact_at

    def after(instant: dt.datetime) -> list[Any]:
        """Neither a deadline nor the next contact before ``instant``."""
        return [sa.or_(leads.c.red_at >= instant, leads.c.red_at.is_(None)),
                sa.or_(contact >= instant, contact.is_(None))]

    red_count, red = leads_due(sa.or_(leads.c.red_at < now, contact < now))
    today_count, today_rows = leads_due(*after(now), sa.or_(leads.c.red_at <= end_today, contact <= end_today))
    next_count, next_rows = leads_due(*after(end_today + dt.timedelta(seconds=1)),
                                      sa.or_(leads.c.red_at <= end_next, contact <= end_next))

    new = conn.execute(
        sa.select(leads.c.id, clients.c.name, leads.c.process, leads.c.stage, leads.c.owner_since)
        .join(clients, clients.c.id == leads.c.client_id)
        .where(*mine, leads.c.owner_since >= since).order_by(leads.c.owner_since).limit(cap)).all()

    return {
        "salesperson": person,
        "calendar": country,
        "since": since.isoformat(),
        "red": {"count": red_count, "leads": with_tasks(red, now)},
        "due_today": {"count": today_count, "leads": with_tasks(today_rows, end_today)},
        "due_next_business_day": {"count": next_count, "leads": with_tasks(next_rows, end_next)},
        "revisits_due": [
            {"lead_id": r.id, "client_id": r.client_id, "name": r.name, "process": r.process,
             "reason": r.close_reason, "closed_at": r.closed_at.isoformat()}
            for r in conn.execute(revisits.due_revisits(specs, now, [leads.c.owner == person], cap))],
        "new_leads": [{"lead_id": r.id, "name": r.name, "process": r.process, "stage": r.stage,
                       "assigned_at": r.owner_since.isoformat()} for r in new],
        "done": done_by(conn, person, since, now, cap),
    }


def done_by(conn: Connection, person: str, since: dt.datetime, now: dt.datetime, cap: int) -> list[results.DoneItem]:
    """The stand-up's work done: what ``person`` did from ``since`` to ``now`` (tasks, moves, closings)."""
    done = conn.execute(
        sa.select(events.c.lead_id, events.c.kind, events.c.at, events.c.data_json, clients.c.name)
        .join(leads, leads.c.id == events.c.lead_id)
        .join(clients, clients.c.id == leads.c.client_id)
        .where(events.c.actor == person, events.c.at >= since, events.c.at <= now,
               events.c.kind.in_(DONE_KINDS))
        .order_by(events.c.at).limit(cap * 3)).all()
    return [{"lead_id": r.lead_id, "name": r.name, "kind": r.kind, "at": r.at.isoformat(),
             "detail": _done_detail(r.kind, json.loads(r.data_json))} for r in done]


def _done_detail(kind: str, data: dict[str, Any]) -> str:
    if kind == EventKind.TASK_DONE:
        return str(data["task"])
    if kind == EventKind.ADVANCED:
        return f"{data['from']} -> {data['to']}"
    if kind == EventKind.CLOSED:
        return str(data["reason"])
    return str(data.get("from", ""))


def waiting_for_an_owner() -> Condition:
    """The SQL condition of the manager's queue on ``leads``: no owner, or an owner who was deactivated (their open
    leads wait to be reassigned). ``lead list --unassigned``, the board's unassigned lane and the stand-up ask it."""
    return sa.or_(leads.c.owner.is_(None), leads.c.owner.in_(sa.select(users.c.name).where(sa.not_(users.c.active))))


def unassigned(conn: Connection, team: str | None, now: dt.datetime, *, cap: int = 20,
               process: str | None = None) -> results.Unassigned:
    """The manager's queue: open leads waiting for an owner (of ``team``, or every team; of ``process``, or every
    process), oldest first. A lead waiting longer than its stage's deadline is ``overdue`` (and red on the board)."""
    # The team as an expression keeps SQLite's planner on the owner indexes (a few unassigned leads) instead of
    # walking the team's leads in its board index and reading each one's owner.
    team_key = leads.c.team.op("||")(sa.literal_column("''"))
    where = [waiting_for_an_owner(), leads.c.status == LeadStatus.OPEN, *([team_key == team] if team else []),
             *([leads.c.process == process] if process else [])]
    count = conn.execute(sa.select(sa.func.count()).select_from(leads).where(*where)).scalar_one()
    # (an empty queue, the usual one, needs no list: SQLite walks the age index for its order)
    rows = [] if not count else conn.execute(
        sa.select(leads.c.id, clients.c.name, leads.c.process, leads.c.stage, leads.c.team, leads.c.created_at,
                  leads.c.red_at, leads.c.value_minor, leads.c.owner)
        .join(clients, clients.c.id == leads.c.client_id)
        .where(*where).order_by(leads.c.created_at, leads.c.id).limit(cap)).all()
    return {"count": int(count), "leads": [
        {"lead_id": r.id, "name": r.name, "process": r.process, "stage": r.stage, "team": r.team,
         "created_at": r.created_at.isoformat(), "waiting_days": (now - r.created_at).days,
         "overdue": r.red_at is not None and r.red_at < now, "value": minor_to_money(r.value_minor),
         "deactivated_owner": r.owner}
        for r in rows]}
