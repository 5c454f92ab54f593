"""Analytics for the sales director, as SQL aggregates over indexed projections.

- ``refusals``: over ``closures`` (every closing without a sale, kept when the lead is reopened), so a
  period's figures count what happened in it;
- ``funnel``: over ``lead_stages`` (every stage each lead reached, once, with its time there);
- ``cycle``: creation to win of won leads; ``measured_cycle`` is also the stalled-lead detection's cycle;
- ``salespeople``: held, won, lost, red, and the clients a colleague won after them;
- ``forecast``: open leads x the probability and time to a win measured from the closed history;
- ``products``: per product, won and lost, the win rate, the won value and the cycle.

Medians and quartiles are read by the database too (``quantiles``), never by pulling rows into Python.
Definitions, formulas and minimums: docs/reports.md.

A module per report (``refusals_report``, ``funnel_report``, ``cycle_report``, ``salespeople_report``,
``forecast_report``, ``products_report``), beside what they share: ``periods`` (the period a report covers) and
``aggregates`` (the SQL of durations and quantiles). Every public name is here too (``reports.funnel(...)``); a
test that changes a module's constant changes it in the module that reads it.
"""

from __future__ import annotations

from engine.reports.aggregates import SECONDS_PER_DAY, grouped_quantiles, in_days, quantiles, ratio, seconds_between
from engine.reports.cycle_report import (
    MIN_WON_FOR_MEASURED_CYCLE,
    QUARTILES,
    cycle,
    cycle_days,
    cycle_stats,
    measured_cycle,
)
from engine.reports.forecast_report import MIN_HISTORY, estimates, forecast
from engine.reports.funnel_report import funnel
from engine.reports.periods import PERIODS, Period, period
from engine.reports.products_report import products
from engine.reports.refusals_report import refusals
from engine.reports.salespeople_report import salespeople

__all__ = [
    "MIN_HISTORY",
    "MIN_WON_FOR_MEASURED_CYCLE",
    "PERIODS",
    "QUARTILES",
    "SECONDS_PER_DAY",
    "Period",
    "cycle",
    "cycle_days",
    "cycle_stats",
    "estimates",
    "forecast",
    "funnel",
    "grouped_quantiles",
    "in_days",
    "measured_cycle",
    "period",
    "products",
    "quantiles",
    "ratio",
    "refusals",
    "salespeople",
    "seconds_between",
]
