"""``report funnel``: over ``lead_stages`` (every stage each lead reached, once, with its time there), how far
a period's cohort of leads got."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import results
from engine.reports.aggregates import in_days, ratio
from engine.reports.asof import CURRENT, Sources
from engine.reports.periods import Period
from engine.spec import ProcessSpec
from engine.vocab import LeadStatus

if TYPE_CHECKING:
    from engine.store.sqltypes import Condition


def funnel(conn: Connection, spec: ProcessSpec, window: Period, scope: list[Condition],
           lead_scope: list[Condition], src: Sources = CURRENT) -> results.Funnel:
    """The cohort of ``spec``'s leads created in ``window``: how many reached each stage, moved on from it
    (advanced, or won from the won stage), the median days spent in it, and how many were won.

    ``scope`` filters ``lead_stages``, ``lead_scope`` the ``leads`` (the same team/owner conditions); ``src``
    where both are read (``asof.sources``: as they stood at an instant).
    """
    ls = src.lead_stages.c
    lc = src.leads.c
    cohort = [ls.process == spec.id, *window.conditions(ls.created_at), *scope]
    outcomes = {status: int(n) for status, n in src.tally(conn,
        sa.select(lc.status, sa.func.count())
        .where(lc.process == spec.id, *window.conditions(lc.created_at), *lead_scope)
        .group_by(lc.status), 1)}
    size = sum(outcomes.values())
    counted = {stage: (int(reached), int(now), int(moved or 0)) for stage, reached, now, moved in src.tally(
        conn, sa.select(ls.stage, sa.func.count(), sa.func.count(ls.stay_started_at),
                        sa.func.sum(sa.case((ls.moved_on, 1), else_=0)))
        .where(*cohort).group_by(ls.stage), 1)}
    names = {s.id: s.name for s in spec.stages}
    order = [*spec.stage_ids, *sorted(set(counted) - set(names))]  # stages an older version had, last
    stages: list[results.FunnelStage] = []
    for stage in order:
        reached, now, moved = counted.get(stage, (0, 0, 0))
        finished = reached - now
        (median,) = src.quantiles(conn, ls.seconds, [*cohort, ls.stage == stage, ls.stay_started_at.is_(None)],
                                  finished)
        stages.append({"stage": stage, "name": names.get(stage, stage), "retired": stage not in names,
                       "reached": reached, "share": ratio(reached, size), "in_stage": now, "moved_on": moved,
                       "conversion": ratio(moved, reached), "median_days": in_days(median), "measured": finished})
    won = outcomes.get(LeadStatus.WON, 0)
    return {"process": spec.id, "title": spec.title, "leads": size,
            "open": outcomes.get(LeadStatus.OPEN, 0), "won": won, "lost": outcomes.get(LeadStatus.LOST, 0),
            "conversion": ratio(won, size), "stages": stages}
