"""``report forecast``: open leads x the probability and time to a win measured from the closed history (or
declared in the process, or a prior by position where there is too little history)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import results
from engine.reports.aggregates import SECONDS_PER_DAY, seconds_between
from engine.reports.asof import CURRENT, Sources, filtered
from engine.rules import minor_to_money
from engine.spec import ProcessSpec
from engine.vocab import CLOSED_STATUSES, LeadStatus

if TYPE_CHECKING:
    from engine.store.sqltypes import Condition

#: Closed leads (won or lost) that reached a stage before the forecast trusts their win rate over the
#: declared probability; won leads from a stage before it trusts their median time to the win.
MIN_HISTORY = 20
#: Below every duration in seconds (10,000 years are 3.2e11). A median of the days to a win reads a stage's won
#: rows in their order from ``ix_lead_stages_to_close``; SQLite 3.40 counts that index as not covering its
#: expression and sorts the rows of ``ix_lead_stages_outcome`` instead (0.2 s a stage at a million deals against
#: 0.01 s), unless the query holds a range of the expression, which only that index serves: this one, true of
#: every row (docs/performance.md, "At a million migrated deals, session 12").
_EVERY_DURATION = -(2 ** 62)


def _prior(spec: ProcessSpec, stage: str) -> float:
    """Where neither history nor the process gives a probability: by position, 1/(n+1) at the first of n stages
    up to n/(n+1) at the last (a stage the latest version no longer has counts as a first stage)."""
    index = spec.stage_ids.index(stage) if stage in spec.stage_ids else 0
    return (index + 1) / (len(spec.stages) + 1)


def _declared_days(spec: ProcessSpec, stage: str) -> float:
    """The declared cycle's share still ahead of a lead in ``stage``: all of it from the first of n stages,
    (n - i) / n of it from the i-th (0-based)."""
    index = spec.stage_ids.index(stage) if stage in spec.stage_ids else 0
    return spec.sales_cycle_days * (len(spec.stages) - index) / len(spec.stages)


def estimates(conn: Connection, spec: ProcessSpec, cutoff: dt.datetime | None,
              src: Sources = CURRENT) -> dict[str, results.Estimate]:
    """Per stage of ``spec`` (and any stage an open lead is in): the probability of winning from it and the days
    from entering it to the win, each with its method and the number of historical leads it rests on.

    The history is every lead of ``src`` closed before ``cutoff`` (now: a fixed ``LEADFLOW_NOW`` does not see its
    own future; as of an instant None, the leads then being closed by then). The closing is compared row by row
    (``asof.filtered``): as a range SQLite read the median's rows by their closing in ``ix_lead_stages_outcome``
    and sorted them, where ``ix_lead_stages_to_close`` holds them in order."""
    ls = src.lead_stages.c
    closed = [ls.process == spec.id, ls.status.in_(CLOSED_STATUSES),
              *([filtered(ls.closed_at) < cutoff] if cutoff else [])]
    history: dict[str, dict[str, int]] = {}
    for stage, status, n in src.tally(conn, sa.select(ls.stage, ls.status, sa.func.count()).where(*closed)
                                      .group_by(ls.stage, ls.status), 2):
        history.setdefault(stage, {})[status] = int(n)
    to_win = seconds_between(ls.entered_at, ls.closed_at)
    out: dict[str, results.Estimate] = {}
    for stage in [*spec.stage_ids, *sorted(set(history) - set(spec.stage_ids))]:
        won = history.get(stage, {}).get(LeadStatus.WON, 0)
        n = won + history.get(stage, {}).get(LeadStatus.LOST, 0)
        # one small sort per stage (its won rows are one range of ix_lead_stages_outcome): cheaper than a window
        (median,) = src.quantiles(conn, to_win, [*closed, ls.stage == stage, ls.status == LeadStatus.WON,
                                                 to_win > _EVERY_DURATION], won if won >= MIN_HISTORY else 0)
        declared = spec.stage(stage).probability if spec.stage(stage) else None  # type: ignore[union-attr]
        if n >= MIN_HISTORY:
            probability, method = won / n, "measured"
        elif declared is not None:
            probability, method = declared, "declared"
        else:
            probability, method = _prior(spec, stage), "prior"
        if median is not None:
            days, days_method = median / SECONDS_PER_DAY, "measured"
        else:
            days, days_method = _declared_days(spec, stage), "declared"
        out[stage] = {"stage": stage, "probability": round(probability, 4), "probability_method": method,
                      "history": n, "won": won, "days_to_win": round(days, 2), "days_method": days_method}
    return out


def _month(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def forecast(conn: Connection, spec: ProcessSpec, now: dt.datetime, months: int, scope: list[Condition],
             cutoff: dt.datetime | None, src: Sources = CURRENT) -> results.Forecast:
    """Expected wins and value per month for ``months`` months from this one, from the open leads in ``scope``.

    A lead in stage S counts ``p(S)`` wins and ``p(S) x value``, in the month of the day it entered S plus S's
    days to the win (rounded to whole days); a lead already past that day is expected this month.
    """
    per_stage = estimates(conn, spec, cutoff, src)
    leads = src.leads
    first = now.date().replace(day=1)
    labels = [_month(_add_months(first, i)) for i in range(months)]
    buckets = {label: _Bucket() for label in [*labels, "later"]}
    held = {stage: _Bucket() for stage in per_stage}
    entered = sa.func.date(leads.c.stage_entered_at)
    for stage, day, n, value in src.tally(conn,
            sa.select(leads.c.stage, entered, sa.func.count(), sa.func.coalesce(sa.func.sum(leads.c.value_minor), 0))
            .where(leads.c.process == spec.id, leads.c.status == LeadStatus.OPEN, *scope)
            .group_by(leads.c.stage, entered), 2):
        if stage not in per_stage:
            per_stage[stage] = _unknown_stage(spec, stage)
            held[stage] = _Bucket()
        estimate = per_stage[stage]
        start = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day)[:10])
        label = _month(max(start + dt.timedelta(days=round(estimate["days_to_win"])), now.date()))
        p = estimate["probability"]
        buckets[label if label in buckets else "later"].add(int(n), int(value), p)
        held[stage].add(int(n), int(value), p)
    return {"process": spec.id, "title": spec.title, "currency": spec.currency,
            "stages": [{**e, "open": held[s].leads, **held[s].expected()} for s, e in per_stage.items()],
            "months": [{"month": label, "leads": buckets[label].leads, **buckets[label].expected()}
                       for label in labels],
            "later": {"leads": buckets["later"].leads, **buckets["later"].expected()}}


@dataclass
class _Bucket:
    leads: int = 0
    value: int = 0
    wins: float = 0.0
    expected_minor: float = 0.0

    def add(self, n: int, value: int, probability: float) -> None:
        self.leads += n
        self.value += value
        self.wins += n * probability
        self.expected_minor += value * probability

    def expected(self) -> results.Expected:
        return {"value": minor_to_money(self.value), "expected_wins": round(self.wins, 2),
                "expected_value": minor_to_money(round(self.expected_minor))}


def _unknown_stage(spec: ProcessSpec, stage: str) -> results.Estimate:
    """An open lead in a stage with neither history nor a place in the latest version: the prior."""
    return {"stage": stage, "probability": round(_prior(spec, stage), 4), "probability_method": "prior",
            "history": 0, "won": 0, "days_to_win": round(_declared_days(spec, stage), 2), "days_method": "declared"}
