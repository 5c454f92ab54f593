"""The opportunities board and the daily stand-up, computed by the database.

A lead's light needs no Python: every write stores ``red_at`` (its earliest open
deadline) and ``yellow_at`` (when that deadline's warning window opens), so at
any instant ``now`` the light is a ``CASE`` over two indexed columns. Counts
and sums per stage and light are one ``GROUP BY``; the leads listed per stage
are a capped top-N query per stage.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import calendar
from engine.rules import minor_to_money
from engine.spec import ProcessSpec
from engine.store import clients, events, lead_tasks, leads

LIGHTS = ("red", "yellow", "green")


def light_expr(now: dt.datetime) -> Any:
    return sa.case(
        (leads.c.red_at < now, "red"),
        (leads.c.yellow_at <= now, "yellow"),
        else_="green",
    )


def light_filter(light: str, now: dt.datetime) -> Any:
    red = leads.c.red_at < now
    yellow = sa.and_(sa.or_(leads.c.red_at.is_(None), leads.c.red_at >= now), leads.c.yellow_at <= now)
    if light == "red":
        return red
    if light == "yellow":
        return yellow
    return sa.and_(sa.not_(sa.func.coalesce(red, False)), sa.not_(sa.func.coalesce(yellow, False)))


def board(conn: Connection, spec: ProcessSpec, now: dt.datetime, scope: list[Any], *,
          light: str | None = None, limit: int = 50) -> dict[str, Any]:
    """One process's board as of ``now``, restricted by ``scope`` (SQL conditions on ``leads``)."""
    where = [leads.c.process == spec.id, leads.c.status == "open", *scope]
    if light:
        where.append(light_filter(light, now))
    light_col = light_expr(now).label("light")
    counts = conn.execute(
        sa.select(leads.c.stage, light_col, sa.func.count(), sa.func.coalesce(sa.func.sum(leads.c.value_minor), 0))
        .where(*where)
        .group_by(leads.c.stage, light_col)
    ).all()
    too_long_before = now - dt.timedelta(days=spec.sales_cycle_days)
    too_long = dict(conn.execute(
        sa.select(leads.c.stage, sa.func.count()).where(*where, leads.c.created_at < too_long_before)
        .group_by(leads.c.stage)).all())

    per_stage: dict[str, dict[str, Any]] = {
        s.id: {"id": s.id, "name": s.name, "count": 0, "value_minor": 0,
               "lights": dict.fromkeys(("green", "yellow", "red"), 0), "too_long": too_long.get(s.id, 0),
               "leads": []}
        for s in spec.stages
    }
    for stage_id, lamp, count, value in counts:
        if stage_id not in per_stage:  # a stage of an older version, for leads not migrated yet
            per_stage[stage_id] = {"id": stage_id, "name": stage_id, "count": 0, "value_minor": 0,
                                   "lights": dict.fromkeys(("green", "yellow", "red"), 0),
                                   "too_long": too_long.get(stage_id, 0), "leads": []}
        entry = per_stage[stage_id]
        entry["count"] += count
        entry["value_minor"] += int(value)
        entry["lights"][lamp] += count

    rank = sa.case((leads.c.red_at < now, 0), (leads.c.yellow_at <= now, 1), else_=2)
    for entry in per_stage.values():
        if not entry["count"] or limit == 0:
            continue
        rows = conn.execute(
            sa.select(leads.c.id, clients.c.name, leads.c.owner, leads.c.value_minor, light_col,
                      leads.c.stage_entered_at, leads.c.created_at, leads.c.red_at)
            .join(clients, clients.c.id == leads.c.client_id)
            .where(*where, leads.c.stage == entry["id"])
            .order_by(rank, leads.c.red_at, leads.c.id)
            .limit(limit)
        ).all()
        entry["leads"] = [
            {"id": r.id, "name": r.name, "owner": r.owner, "value": minor_to_money(r.value_minor),
             "light": r.light, "days_in_stage": (now - r.stage_entered_at).days,
             "days_in_process": (now - r.created_at).days, "too_long": r.created_at < too_long_before,
             "due_at": r.red_at.isoformat() if r.red_at else None}
            for r in rows
        ]
    stages = list(per_stage.values())
    totals = {
        "count": sum(s["count"] for s in stages),
        "value": minor_to_money(sum(s["value_minor"] for s in stages)),
        **{lamp: sum(s["lights"][lamp] for s in stages) for lamp in LIGHTS},
        "too_long": sum(s["too_long"] for s in stages),
    }
    for entry in stages:
        entry["value"] = minor_to_money(entry.pop("value_minor"))
    return {"process": spec.id, "title": spec.title, "currency": spec.currency, "as_of": now.isoformat(),
            "totals": totals, "stages": stages, "limit": limit}


def daily_for(conn: Connection, person: str, now: dt.datetime, country: str, revisits: Any, *,
              cap: int = 20) -> dict[str, Any]:
    """One salesperson's stand-up agenda, in priority order of its sections."""
    today = now.date()
    since = dt.datetime.combine(calendar.previous_business_day(today, country), dt.time(0, 0))
    end_today = dt.datetime.combine(today, calendar.END_OF_DAY)
    end_next = dt.datetime.combine(calendar.next_business_day(today, country), calendar.END_OF_DAY)
    mine = [leads.c.owner == person, leads.c.status == "open"]

    red = conn.execute(
        sa.select(leads.c.id, clients.c.name, leads.c.process, leads.c.stage, leads.c.red_at, leads.c.value_minor)
        .join(clients, clients.c.id == leads.c.client_id)
        .where(*mine, leads.c.red_at < now).order_by(leads.c.red_at).limit(cap)).all()
    red_count = conn.execute(sa.select(sa.func.count()).select_from(leads).where(*mine, leads.c.red_at < now)).scalar()

    def tasks_due(start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
        rows = conn.execute(
            sa.select(lead_tasks.c.lead_id, lead_tasks.c.task_id, lead_tasks.c.due_at, clients.c.name,
                      leads.c.process, leads.c.stage)
            .join(leads, leads.c.id == lead_tasks.c.lead_id)
            .join(clients, clients.c.id == leads.c.client_id)
            .where(*mine, lead_tasks.c.stage == leads.c.stage, lead_tasks.c.state == "open",
                   lead_tasks.c.due_at >= start, lead_tasks.c.due_at <= end)
            .order_by(lead_tasks.c.due_at, lead_tasks.c.lead_id).limit(cap)).all()
        return [{"lead_id": r.lead_id, "name": r.name, "process": r.process, "stage": r.stage, "task": r.task_id,
                 "due_at": r.due_at.isoformat()} for r in rows]

    new = conn.execute(
        sa.select(leads.c.id, clients.c.name, leads.c.process, leads.c.stage, leads.c.owner_since)
        .join(clients, clients.c.id == leads.c.client_id)
        .where(*mine, leads.c.owner_since >= since).order_by(leads.c.owner_since).limit(cap)).all()
    done = conn.execute(
        sa.select(events.c.lead_id, events.c.kind, events.c.at, events.c.data_json, clients.c.name)
        .join(leads, leads.c.id == events.c.lead_id)
        .join(clients, clients.c.id == leads.c.client_id)
        .where(events.c.actor == person, events.c.at >= since, events.c.at <= now,
               events.c.kind.in_(("task_done", "advanced", "won", "closed")))
        .order_by(events.c.at).limit(cap * 3)).all()

    return {
        "salesperson": person,
        "calendar": country,
        "since": since.isoformat(),
        "red": {"count": red_count, "leads": [
            {"lead_id": r.id, "name": r.name, "process": r.process, "stage": r.stage,
             "overdue_since": r.red_at.isoformat(), "value": minor_to_money(r.value_minor)} for r in red]},
        "due_today": tasks_due(now, end_today),
        "due_next_business_day": tasks_due(end_today + dt.timedelta(seconds=1), end_next),
        "revisits_due": [
            {"lead_id": r.id, "client_id": r.client_id, "name": r.name, "process": r.process,
             "reason": r.close_reason, "closed_at": r.closed_at.isoformat()}
            for r in conn.execute(revisits.where(leads.c.owner == person).limit(cap))],
        "new_leads": [{"lead_id": r.id, "name": r.name, "process": r.process, "stage": r.stage,
                       "assigned_at": r.owner_since.isoformat()} for r in new],
        "done": [{"lead_id": r.lead_id, "name": r.name, "kind": r.kind, "at": r.at.isoformat(),
                  "detail": _done_detail(r.kind, json.loads(r.data_json))} for r in done],
    }


def _done_detail(kind: str, data: dict[str, Any]) -> str:
    if kind == "task_done":
        return str(data["task"])
    if kind == "advanced":
        return f"{data['from']} -> {data['to']}"
    if kind == "closed":
        return str(data["reason"])
    return str(data.get("from", ""))
