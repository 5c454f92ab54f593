"""The manager's views: the board, the stand-up agenda, and whose leads a view may show (``engine.boards``).

``scope`` is the one answer to "whose leads did the actor ask to see, and may they"; the recovery loop and
the reports ask it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import access, clock, results
from engine.errors import InvalidInputError, PermissionDenied
from engine.services.context import Context, Service, operation
from engine.state import STATUS_OPEN
from engine.store import leads, process_versions, stage_counts, users

if TYPE_CHECKING:
    from engine.board import Scope


class BoardService(Service):
    """``engine.boards``: open leads by stage with their lights, and each salesperson's day."""

    name = "boards"

    @operation
    def board(self, *, process: str | None = None, owner: str | None = None, team: str | None = None,
              light: str | None = None, limit: int = 50) -> list[results.Board]:
        """One board per process (or only ``process``): open leads by stage with their lights, as of now.

        A salesperson sees their own leads; a manager their team (or ``team``/``owner`` within it).
        """
        from engine import board

        if light is not None and light not in board.LIGHTS:
            raise InvalidInputError(f"light '{light}' is not one of: red, yellow, green")
        if limit < 0:
            raise InvalidInputError("the number of leads listed per stage cannot be negative")
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            seen = scope(ctx, conn, actor, owner=owner, team=team)
            now = clock.now()
            if process is not None:
                names = [ctx.spec(conn, process).id]
            else:
                names = [r[0] for r in conn.execute(
                    sa.select(stage_counts.c.process).where(stage_counts.c.leads > 0, *seen.on_counts())
                    .distinct().order_by(stage_counts.c.process))]
            return [board.board(conn, ctx.spec(conn, name), now, seen, light=light, limit=limit)
                    for name in names]

    @operation
    def daily(self, *, owner: str | None = None, team: str | None = None) -> results.Daily:
        """The stand-up agenda per salesperson: red items, due today and next, revisits, new leads, done."""
        from engine import board

        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            now = clock.now()
            wanted: str | None = None
            if owner is not None:
                person = ctx.user(conn, owner)
                if person["name"] != actor["name"]:
                    access.require_manager_of(actor, person["team"], f"see the agenda of {owner}")
                people = [person["name"]]
            elif actor["role"] == "salesperson":
                people = [actor["name"]]
            else:
                wanted = team if team is not None else actor["team"]
                if wanted is not None:
                    access.require_manager_of(actor, wanted, f"see the agenda of team {wanted}")
                query = sa.select(users.c.name).where(users.c.role == "salesperson").order_by(users.c.name)
                if wanted is not None:
                    query = query.where(users.c.team == wanted)
                people = [r[0] for r in conn.execute(query)]
            specs = ctx.all_specs(conn)
            agenda: results.Daily = {
                "as_of": now.isoformat(),
                "people": [board.daily_for(conn, p, now, _main_calendar(ctx, conn, p), specs) for p in people]}
            if actor["role"] in access.MANAGERS and owner is None:
                agenda["reviews"] = self.engine.recovery.reviews()
                # leads no assignment rule could place wait for the manager to give them to someone
                agenda["unassigned"] = board.unassigned(conn, wanted, now)
            return agenda


def scope(ctx: Context, conn: Connection, actor: Any, *, owner: str | None, team: str | None) -> Scope:
    """Whose leads the actor asked to see, checked against what they may see."""
    from engine.board import Scope

    if actor["role"] == "salesperson":
        if owner not in (None, actor["name"]) or team not in (None, actor["team"]):
            raise PermissionDenied(f"user '{actor['name']}' (salesperson) sees only their own leads")
        return Scope(owner=actor["name"])
    if actor["role"] == access.INTAKE:  # an integrator's token made with --read: every lead
        if owner is not None:
            ctx.user(conn, owner)
        return Scope(team=team, owner=owner)
    if actor["role"] not in ("manager", "admin"):
        raise PermissionDenied(f"user '{actor['name']}' ({actor['role']}) has no board; boards are for "
                               "salespeople and managers")
    if owner is not None:
        person = ctx.user(conn, owner)
        access.require_manager_of(actor, person["team"], f"see the leads of {owner}")
    wanted = team if team is not None else (actor["team"] if actor["role"] == "manager" else None)
    if wanted is not None:
        access.require_manager_of(actor, wanted, f"see team {wanted}")
    return Scope(team=wanted, owner=owner)


def _main_calendar(ctx: Context, conn: Connection, owner: str) -> str:
    """The calendar of the process holding most of ``owner``'s open leads (their working days)."""
    row = conn.execute(sa.select(leads.c.process).where(leads.c.status == STATUS_OPEN, leads.c.owner == owner)
                       .group_by(leads.c.process).order_by(sa.func.count().desc(), leads.c.process)
                       .limit(1)).first()
    if row is None:
        row = conn.execute(sa.select(process_versions.c.process).limit(1)).first()
    return ctx.spec(conn, row[0]).calendar if row else "PL"
