"""The to-do list: open tasks a person is expected to do, and the contacts they booked, by time (``engine.tasks``)."""

from __future__ import annotations

import builtins
import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import clock, policy, results, views
from engine.errors import InvalidInputError
from engine.i18n import N_, Message
from engine.policy import Actor
from engine.services.context import Service, operation
from engine.store import clients, lead_tasks, leads
from engine.views import iso
from engine.vocab import ID_END, LeadStatus, TaskStatus

#: ``task list``'s page when none is asked for: what fits a terminal screen.
PAGE = 20


class TaskService(Service):
    """``engine.tasks``: whose work is due when."""

    name = "tasks"

    @operation
    def list(self, *, owner: str | None = None, include_all: bool = False, limit: int | None = None,
             offset: int = 0, after: str | None = None) -> builtins.list[results.TaskRow]:
        """Open tasks of open leads that ``owner`` (default: the acting user) is expected to do, and the next
        contacts booked on their leads, by time; every one, or ``limit`` of them from ``offset`` (or ``after`` a
        page's ``next``)."""
        return self.page(owner=owner, include_all=include_all, limit=limit, offset=offset, after=after)["tasks"]

    @operation
    def page(self, *, owner: str | None = None, include_all: bool = False, limit: int | None = PAGE,
             offset: int = 0, after: str | None = None) -> results.TaskPage:
        """``list`` as a page: at most ``limit`` rows (None: all) from ``offset`` on, or the rows after the cursor
        ``after`` (a page's ``next``: keyset paging, whose cost does not grow with the page's position); ``total``
        is how many rows the whole list has (counted in SQL) and ``next`` the cursor of the following page (None
        on the last). Each source of rows is read in SQL up to the page's end, never the whole list."""
        for name, value, least in (("limit", limit, 1), ("offset", offset, 0)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least
                                      or value >= ID_END):
                raise InvalidInputError(N_("{name} must be a whole number of at least {least}, got {value!r}"),
                                        name=name, least=least, value=value)
        cursor = None if after is None else _cursor(after)
        if cursor is not None and offset:
            raise InvalidInputError(N_("give offset or after, not both (after is already a position in the list)"))
        ctx = self.ctx
        with ctx.reading() as conn:
            actor = ctx.actor(conn)
            who = ctx.user(conn, owner) if owner else actor
            policy.require_can_see_work_of(actor, who, Message(N_("see the tasks of {name}"), name=who.name))
            now = clock.now()
            # one row more than the page's end from each source, enough to cut the page and know if more follow; of the
            # tasks, also the rest of a lead's tasks due together (SQL orders them by lead, the list by their place in
            # the stage, as the process file lists them)
            wanted = None if limit is None else offset + limit + 1
            total = 0
            keyed: builtins.list[tuple[Key, results.TaskRow]] = []
            tasks = self._tasks(conn, who, include_all)
            if tasks is not None:
                total += conn.execute(sa.select(sa.func.count()).select_from(tasks.subquery())).scalar_one()
                if cursor is not None:
                    tasks = tasks.where(_after(cursor, lead_tasks.c.due_at, lead_tasks.c.lead_id, _TASK))
                most = None if wanted is None else wanted + max(
                    (len(stage.all_tasks) for _, spec in ctx.all_specs(conn) for stage in spec.stages), default=0)
                for row in conn.execute(tasks.limit(most)).mappings():
                    spec = ctx.spec(conn, row["process"], row["process_version"])
                    stage = spec.stage(row["stage"])
                    assert stage is not None
                    place, task = next((i, t) for i, t in enumerate(stage.all_tasks) if t.id == row["task_id"])
                    keyed.append(((iso(row["due_at"]) or "", row["lead_id"], _TASK, place),
                                  views.task_row(row, task, spec, now)))
            if who.role in policy.CONTACT_HOLDERS:  # the contacts booked on the leads the list covers
                booked = _LEAD_CONTACT.where(*policy.task_list_leads(who, include_all=include_all))
                total += conn.execute(sa.select(sa.func.count()).select_from(booked.subquery())).scalar_one()
                if cursor is not None:
                    booked = booked.where(_after(cursor, leads.c.next_contact_at, leads.c.id, _CONTACT))
                for r in conn.execute(booked.order_by(leads.c.next_contact_at, leads.c.id).limit(wanted)).mappings():
                    contact = views.next_contact_row(r, now)
                    keyed.append(((contact["due_at"] or "", r["id"], _CONTACT, 0), contact))
            if policy.sees_reviews(who) and who.name == actor.name:
                # the director's refusal reviews are tasks too (a few: read whole)
                reviews = [views.review_task(r, now) for r in self.engine.recovery.reviews()]
                total += len(reviews)
                keyed.extend(((r["due_at"] or "", r["lead_id"], _REVIEW, 0), r) for r in reviews)
            if cursor is not None:
                keyed = [(key, row) for key, row in keyed if key > cursor]
            keyed.sort(key=lambda item: item[0])
            end = None if limit is None else offset + limit
            shown = keyed[offset:end]
            more = end is not None and len(keyed) > end
            return {"total": total, "offset": offset, "limit": limit if limit is not None else total,
                    "tasks": [row for _, row in shown],
                    "next": _cursor_text(shown[-1][0]) if more and shown else None}

    def _tasks(self, conn: Connection, who: Actor, include_all: bool) -> sa.Select[Any] | None:
        """The open tasks ``who`` is expected to do, earliest deadline first (None: none can be theirs)."""
        query = (
            sa.select(lead_tasks, leads.c.process, leads.c.process_version, leads.c.owner, leads.c.team,
                      leads.c.next_contact_at, clients.c.name.label("client_name"), clients.c.phone, clients.c.email)
            .join(leads, leads.c.id == lead_tasks.c.lead_id)
            .join(clients, clients.c.id == leads.c.client_id)
            .where(lead_tasks.c.state == TaskStatus.OPEN, leads.c.status == LeadStatus.OPEN,
                   lead_tasks.c.stage == leads.c.stage, *policy.task_list_leads(who, include_all=include_all))
            .order_by(lead_tasks.c.due_at.asc().nulls_first(), lead_tasks.c.lead_id)
        )
        if not policy.lists_every_task(who):
            # Which tasks are theirs is a property of the process versions: select exactly those
            # (process, version, stage, task) in SQL instead of filtering every open task in Python.
            theirs = [(spec.id, version, stage.id, task.id) for version, spec in self.ctx.all_specs(conn)
                      for stage in spec.stages for task in stage.all_tasks if policy.is_task_of(who, task, spec)]
            if not theirs:
                return None
            query = query.where(sa.tuple_(leads.c.process, leads.c.process_version, lead_tasks.c.stage,
                                          lead_tasks.c.task_id).in_(theirs))
        return query


_LEAD_CONTACT = (
    sa.select(leads.c.id, leads.c.process, leads.c.stage, leads.c.owner, leads.c.next_contact_at,
              clients.c.name.label("client_name"), clients.c.phone, clients.c.email)
    .join(clients, clients.c.id == leads.c.client_id)
    .where(leads.c.status == LeadStatus.OPEN, leads.c.next_contact_at.is_not(None)))


#: A row's place in the list: (due, lead id, source, the task's place in its stage); the sources in the order a tie
#: lists them (a lead's tasks, then its booked contact, then a refusal review).
Key = tuple[str, int, int, int]
_TASK, _CONTACT, _REVIEW = 0, 1, 2
_CURSOR_SEP = "~"


def _cursor_text(key: Key) -> str:
    """A page's ``next``: the last row's place, ``2026-03-16T10:00:00~42~0~1`` (URL-safe once encoded)."""
    return _CURSOR_SEP.join(str(part) for part in key)


def _cursor(text: str) -> Key:
    """The place ``after`` names (a page's ``next``), or a clear refusal."""
    parts = text.split(_CURSOR_SEP) if isinstance(text, str) else []
    try:
        due, lead_id, source, place = parts
        key = (due, int(lead_id), int(source), int(place))
        if due:
            dt.datetime.fromisoformat(due)
    except ValueError:
        raise InvalidInputError(N_("after must be the 'next' of a task list page, such as "
                                   "'2026-03-16T10:00:00~42~0~1', got {value!r}"), value=text) from None
    return key


def _after(cursor: Key, due: sa.ColumnElement[Any], lead_id: sa.ColumnElement[Any],
           source: int) -> sa.ColumnElement[bool]:
    """SQL for "this source's row may come after ``cursor``" in the list's order (a missing due first): by due and
    lead only, so a lead's tasks due together are read whole and their places compared in Python."""
    at, lead, their_source, _place = cursor
    same_due = lead_id >= lead if source > their_source or (source == their_source == _TASK) else lead_id > lead
    if not at:
        return sa.or_(due.is_not(None), sa.and_(due.is_(None), same_due))
    when = dt.datetime.fromisoformat(at)
    return sa.or_(due > when, sa.and_(due == when, same_due))
