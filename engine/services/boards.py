"""The manager's views: the board and the stand-up agenda (``engine.boards``).

Whose leads a view shows is ``Context.scope`` (the rule: ``policy.view_scope``), which the recovery loop and
the reports ask too; whose agenda the stand-up shows is ``policy.agenda_scope``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import clock, policy, results
from engine.errors import InvalidInputError
from engine.i18n import N_
from engine.services.context import Context, Service, operation
from engine.services.recovery import reviews_seen
from engine.store import leads, process_versions, stage_counts, users
from engine.vocab import LeadStatus, Role

if TYPE_CHECKING:
    from engine.board import Scope


class BoardService(Service):
    """``engine.boards``: open leads by stage with their lights, and each salesperson's day."""

    name = "boards"

    @operation
    def board(self, *, process: str | None = None, owner: str | None = None, team: str | None = None,
              light: str | None = None, limit: int = 50, as_of: str | None = None) -> list[results.Board]:
        """One board per process (or only ``process``): open leads by stage with their lights, as of now (or
        ``as_of``: as they stood then, ``board_asof``).

        A salesperson sees their own leads; a manager their team (or ``team``/``owner`` within it).
        """
        from engine import board
        from engine.reports import asof

        if light is not None and light not in board.LIGHTS:
            raise InvalidInputError(N_("light '{light}' is not one of: red, yellow, green"), light=light)
        if limit < 0:
            raise InvalidInputError("the number of leads listed per stage cannot be negative")
        past = asof.parse(as_of)
        ctx = self.ctx
        with ctx.reading() as conn:
            actor = ctx.actor(conn)
            seen = ctx.scope(conn, actor, owner=owner, team=team)
            if past is not None:
                return self._board_at(conn, seen, past, process, light, limit)
            now = clock.now()
            if process is not None:
                names = [ctx.spec(conn, process).id]
            else:
                names = [r[0] for r in conn.execute(
                    sa.select(stage_counts.c.process).where(stage_counts.c.leads > 0, *seen.on_counts())
                    .distinct().order_by(stage_counts.c.process))]
            return [board.board(conn, ctx.spec(conn, name), now, seen, light=light, limit=limit)
                    for name in names]

    def _board_at(self, conn: Connection, seen: Scope, at: dt.datetime, process: str | None, light: str | None,
                  limit: int) -> list[results.Board]:
        """``board`` as of a past instant: the processes with open leads in scope then, each board as it stood."""
        from engine import board_asof
        from engine.reports import asof

        ctx = self.ctx
        with asof.sources(conn, at, ctx.specs_lookup(conn)) as src:
            lc = src.leads.c
            # the processes with open leads then: counted as the reports count (today's index, corrected by the
            # leads changed since), not a DISTINCT over every lead then
            names = [ctx.spec(conn, process).id] if process is not None else [r[0] for r in src.tally(
                conn, sa.select(lc.process, sa.func.count()).where(lc.status == LeadStatus.OPEN, *seen.on(src.leads))
                .group_by(lc.process), 1)]
            return [board_asof.board_at(conn, ctx.spec(conn, name), src, seen, light=light, limit=limit)
                    for name in names]

    @operation
    def daily(self, *, owner: str | None = None, team: str | None = None,
              as_of: str | None = None) -> results.Daily:
        """The stand-up agenda per salesperson: red items, due today and next, revisits, new leads, done; as of
        now, or ``as_of`` (the agenda of that moment, from the leads as they stood then: ``board_asof``)."""
        from engine import board, board_asof
        from engine.reports import asof

        past = asof.parse(as_of)
        ctx = self.ctx
        with ctx.reading() as conn, asof.sources(conn, past, ctx.specs_lookup(conn)) as src:
            actor = ctx.actor(conn)
            now = past or clock.now()
            seen = policy.agenda_scope(actor, person=ctx.user(conn, owner) if owner is not None else None, team=team)
            if seen.person is not None:
                people = [seen.person]
            else:
                query = sa.select(users.c.name).where(users.c.role == Role.SALESPERSON).order_by(users.c.name)
                if seen.team is not None:
                    query = query.where(users.c.team == seen.team)
                people = [r[0] for r in conn.execute(query)]
            specs = ctx.all_specs(conn)
            calendar_of = _Calendars(ctx, conn, src.leads)
            agenda: results.Daily = {
                "as_of": now.isoformat(),
                "people": [board.daily_for(conn, p, now, calendar_of(p, _main_process(conn, p)), specs)
                           for p in people]
                if past is None else board_asof.standup_at(conn, people, src, calendar_of, specs)}
            if seen.director:
                # the agenda's first item (cli/board_cmds.py): the leads waiting for an owner, which no rule placed
                # or whose owner was deactivated
                agenda["unassigned"] = (board.unassigned(conn, seen.team, now) if past is None
                                        else board_asof.unassigned_at(conn, src, seen.team))
                agenda["reviews"] = reviews_seen(ctx, conn, actor, past, src)
            return agenda


def _main_process(conn: Connection, owner: str) -> str | None:
    """The process holding most of ``owner``'s open leads (ties: the first by name), None without any."""
    row = conn.execute(sa.select(leads.c.process).where(leads.c.status == LeadStatus.OPEN, leads.c.owner == owner)
                       .group_by(leads.c.process).order_by(sa.func.count().desc(), leads.c.process)
                       .limit(1)).first()
    return row[0] if row else None


class _Calendars:
    """A salesperson's working days on the stand-up (docs/board.md): the calendar of the process holding most of
    their open leads; without any, of the process of their most recent lead; without one, of the process most of
    their team's open leads are in (read once a team), else of the first process by name; else Poland's.
    ``rows``: the leads (``leads``, or as they stood at a past instant: ``Sources.leads``)."""

    def __init__(self, ctx: Context, conn: Connection, rows: sa.FromClause):
        self.ctx, self.conn, self.lc = ctx, conn, rows.c
        self._teams: dict[str | None, str | None] = {}

    def __call__(self, person: str, main: str | None) -> str:
        process = main or self._latest(person) or self._of_team(person)
        return self.ctx.spec(self.conn, process).calendar if process else "PL"

    def _latest(self, person: str) -> str | None:
        lc = self.lc
        return self.conn.execute(sa.select(lc.process).where(lc.owner == person)
                                 .order_by(lc.owner_since.desc(), lc.id.desc()).limit(1)).scalar()

    def _of_team(self, person: str) -> str | None:
        team = self.conn.execute(sa.select(users.c.team).where(users.c.name == person)).scalar()
        if team not in self._teams:
            lc = self.lc
            self._teams[team] = (team is not None and self.conn.execute(
                sa.select(lc.process).where(lc.status == LeadStatus.OPEN, lc.team == team).group_by(lc.process)
                .order_by(sa.func.count().desc(), lc.process).limit(1)).scalar()) or self.conn.execute(
                sa.select(process_versions.c.process).order_by(process_versions.c.process).limit(1)).scalar()
        return self._teams[team]
