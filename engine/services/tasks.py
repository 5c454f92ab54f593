"""The to-do list: open tasks a person is expected to do, by deadline (``engine.tasks``)."""

from __future__ import annotations

import sqlalchemy as sa

from engine import clock, policy, results, views
from engine.services.context import Service, operation
from engine.store import clients, lead_tasks, leads
from engine.vocab import LeadStatus, TaskStatus


class TaskService(Service):
    """``engine.tasks``: whose work is due when."""

    name = "tasks"

    @operation
    def list(self, *, owner: str | None = None, include_all: bool = False) -> list[results.TaskRow]:
        """Open tasks of open leads that ``owner`` (default: the acting user) is expected to do, by deadline."""
        ctx = self.ctx
        with ctx.reading() as conn:
            actor = ctx.actor(conn)
            who = ctx.user(conn, owner) if owner else actor
            policy.require_can_see_work_of(actor, who, f"see the tasks of {who.name}")
            query = (
                sa.select(lead_tasks, leads.c.process, leads.c.process_version, leads.c.owner, leads.c.team,
                          clients.c.name.label("client_name"))
                .join(leads, leads.c.id == lead_tasks.c.lead_id)
                .join(clients, clients.c.id == leads.c.client_id)
                .where(lead_tasks.c.state == TaskStatus.OPEN, leads.c.status == LeadStatus.OPEN,
                       lead_tasks.c.stage == leads.c.stage)
                .order_by(lead_tasks.c.due_at, lead_tasks.c.lead_id)
            )
            query = query.where(*policy.task_list_leads(who, include_all=include_all))
            if not policy.lists_every_task(who):
                # Which tasks are theirs is a property of the process versions: select exactly those
                # (process, version, stage, task) in SQL instead of filtering every open task in Python.
                theirs = [(spec.id, version, stage.id, task.id) for version, spec in ctx.all_specs(conn)
                          for stage in spec.stages for task in stage.all_tasks if policy.is_task_of(who, task, spec)]
                if not theirs:
                    return []
                query = query.where(sa.tuple_(leads.c.process, leads.c.process_version, lead_tasks.c.stage,
                                              lead_tasks.c.task_id).in_(theirs))
            now = clock.now()
            out = []
            for row in conn.execute(query).mappings():
                spec = ctx.spec(conn, row["process"], row["process_version"])
                task = spec.stage(row["stage"]).task(row["task_id"])  # type: ignore[union-attr]
                assert task is not None
                out.append(views.task_row(row, task, spec, now))
            if policy.sees_reviews(who) and who.name == actor.name:
                # the director's refusal reviews are tasks too
                out.extend(views.review_task(r, now) for r in self.engine.recovery.reviews())
                out.sort(key=lambda t: (t["due_at"] or "", t["lead_id"]))
            return out
