"""The to-do list: open tasks a person is expected to do, and the contacts they booked, by time (``engine.tasks``)."""

from __future__ import annotations

import builtins
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import clock, policy, results, views
from engine.errors import InvalidInputError
from engine.i18n import N_, Message
from engine.policy import Actor
from engine.services.context import Service, operation
from engine.store import clients, lead_tasks, leads
from engine.vocab import ID_END, LeadStatus, TaskStatus

#: ``task list``'s page when none is asked for: what fits a terminal screen.
PAGE = 20


class TaskService(Service):
    """``engine.tasks``: whose work is due when."""

    name = "tasks"

    @operation
    def list(self, *, owner: str | None = None, include_all: bool = False, limit: int | None = None,
             offset: int = 0) -> builtins.list[results.TaskRow]:
        """Open tasks of open leads that ``owner`` (default: the acting user) is expected to do, and the next
        contacts booked on their leads, by time; every one, or ``limit`` of them from ``offset``."""
        return self.page(owner=owner, include_all=include_all, limit=limit, offset=offset)["tasks"]

    @operation
    def page(self, *, owner: str | None = None, include_all: bool = False, limit: int | None = PAGE,
             offset: int = 0) -> results.TaskPage:
        """``list`` as a page: at most ``limit`` rows (None: all) from ``offset`` on, and how many there are."""
        for name, value, least in (("limit", limit, 1), ("offset", offset, 0)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least
                                      or value >= ID_END):
                raise InvalidInputError(N_("{name} must be a whole number of at least {least}, got {value!r}"),
                                        name=name, least=least, value=value)
        ctx = self.ctx
        with ctx.reading() as conn:
            actor = ctx.actor(conn)
            who = ctx.user(conn, owner) if owner else actor
            policy.require_can_see_work_of(actor, who, Message(N_("see the tasks of {name}"), name=who.name))
            now = clock.now()
            wanted = None if limit is None else offset + limit  # the first rows of each source are enough
            total = 0
            rows: builtins.list[results.TaskRow] = []
            tasks = self._tasks(conn, who, include_all)
            if tasks is not None:
                total += conn.execute(sa.select(sa.func.count()).select_from(tasks.subquery())).scalar_one()
                for row in conn.execute(tasks.limit(wanted)).mappings():
                    spec = ctx.spec(conn, row["process"], row["process_version"])
                    task = spec.stage(row["stage"]).task(row["task_id"])  # type: ignore[union-attr]
                    assert task is not None
                    rows.append(views.task_row(row, task, spec, now))
            if who.role in policy.CONTACT_HOLDERS:  # the contacts booked on the leads the list covers
                booked = _LEAD_CONTACT.where(*policy.task_list_leads(who, include_all=include_all))
                total += conn.execute(sa.select(sa.func.count()).select_from(booked.subquery())).scalar_one()
                rows.extend(views.next_contact_row(r, now) for r in conn.execute(
                    booked.order_by(leads.c.next_contact_at, leads.c.id).limit(wanted)).mappings())
            if policy.sees_reviews(who) and who.name == actor.name:
                # the director's refusal reviews are tasks too
                reviews = self.engine.recovery.reviews()
                total += len(reviews)
                rows.extend(views.review_task(r, now) for r in reviews)
            rows.sort(key=lambda t: (t["due_at"] or "", t["lead_id"]))
            end = None if limit is None else offset + limit
            return {"total": total, "offset": offset, "limit": limit if limit is not None else total,
                    "tasks": rows[offset:end]}

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
