"""``report products``: per product, the deals won and lost in a period, the win rate, the won value and the
cycle (creation to win) of the won ones."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import results
from engine.reports.aggregates import grouped_quantiles, in_days, ratio, seconds_between
from engine.reports.periods import Period
from engine.rules import minor_to_money
from engine.spec import ProcessSpec
from engine.store import leads as store_leads
from engine.vocab import CLOSED_STATUSES, LeadStatus


def products(conn: Connection, specs: list[ProcessSpec], window: Period, scope: list[Any],
             leads: sa.FromClause = store_leads) -> results.Products:
    """Per process and product (None: leads without one), the leads won and lost in ``window``: the win rate
    won / (won + lost), the won value, and the mean and median days from creation to win; most won first.
    ``leads``: where they are read (``asof.sources``: as they stood at an instant, won or lost then)."""
    days = seconds_between(leads.c.created_at, leads.c.closed_at)
    figures: list[results.ProductFigures] = []
    for spec in specs:
        closed = [leads.c.process == spec.id, *window.conditions(leads.c.closed_at), *scope]
        tally: dict[str | None, dict[str, Any]] = {}
        for product, status, n, value, seconds in conn.execute(
                sa.select(leads.c.product, leads.c.status, sa.func.count(),
                          sa.func.coalesce(sa.func.sum(leads.c.value_minor), 0), sa.func.sum(days))
                .where(*closed, leads.c.status.in_(CLOSED_STATUSES)).group_by(leads.c.product, leads.c.status)):
            entry = tally.setdefault(product, {"won": 0, "lost": 0, "value": 0, "seconds": 0.0})
            entry[status] = int(n)
            if status == LeadStatus.WON:
                entry["value"], entry["seconds"] = int(value), float(seconds or 0)
        medians = grouped_quantiles(conn, days, leads.c.product, [*closed, leads.c.status == LeadStatus.WON])
        for product, t in tally.items():
            won = t["won"]
            figures.append({"process": spec.id, "product": product, "won": won, "lost": t["lost"],
                         "conversion": ratio(won, won + t["lost"]), "won_value": minor_to_money(t["value"]),
                         "mean_cycle_days": in_days(t["seconds"] / won) if won else None,
                         "median_cycle_days": in_days(medians[product][1][0]) if product in medians else None})
    figures.sort(key=lambda r: (r["process"], -r["won"], str(r["product"] or "")))
    return {"period": window.as_dict(), "products": figures}
