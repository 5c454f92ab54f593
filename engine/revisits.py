"""Revisits: a client closed for a reason with ``revisit_after_days`` comes back on that date.

A revisit is due when a lost lead's reason asks for one, the days have passed since its closing (or since the end
of a rest, when that is later: for a deal of a history import, the import), and the client has had no newer lead
since (starting one is how a revisit is taken up).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa

from engine.spec import ProcessSpec
from engine.store import clients, leads
from engine.vocab import LeadStatus

if TYPE_CHECKING:
    from engine.store.sqltypes import Condition, Query


def due_revisits(specs: Iterable[tuple[int, ProcessSpec]], now: dt.datetime, where: Sequence[Condition],
                 limit: int) -> Query:
    """A select of the first ``limit`` lost leads, oldest closing first, whose revisit is due as of ``now``,
    among those ``where`` admits (an owner, a team, a process).

    One branch per process, each walking ``ix_leads_closed`` (process, status, owner, closed_at) in closing
    order and stopping at ``limit``: a salesperson with 16,000 lost leads over two years costs a few dozen
    rows, where one query over every process made SQLite visit all 16,000 and sort them."""
    due: dict[str, list[Condition]] = {}
    for version, spec in specs:
        for reason in spec.closure_reasons:
            if reason.revisit_after_days:
                since = now - dt.timedelta(days=reason.revisit_after_days)
                due.setdefault(spec.id, []).append(sa.and_(
                    leads.c.process_version == version, leads.c.close_reason == reason.id, leads.c.closed_at <= since,
                    sa.or_(leads.c.rest_until.is_(None), leads.c.rest_until <= since)))
    later = leads.alias("later")
    newer = sa.select(later.c.id).where(later.c.client_id == leads.c.client_id,
                                        later.c.created_at > leads.c.closed_at)
    columns = (leads.c.id, leads.c.client_id, clients.c.name, leads.c.process, leads.c.close_reason,
               leads.c.closed_at, leads.c.owner)
    branches = [
        sa.select(*columns).join(clients, clients.c.id == leads.c.client_id)
        .where(leads.c.process == process, leads.c.status == LeadStatus.LOST, sa.or_(*terms), ~sa.exists(newer), *where)
        .order_by(leads.c.closed_at, leads.c.id).limit(limit).subquery()
        for process, terms in sorted(due.items())]
    if not branches:
        return sa.select(*columns).join(clients, clients.c.id == leads.c.client_id).where(sa.false())
    found = sa.union_all(*(sa.select(*branch.c) for branch in branches)).subquery()
    return sa.select(found).order_by(found.c.closed_at, found.c.id).limit(limit)
