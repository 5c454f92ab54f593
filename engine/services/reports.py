"""The sales director's reports (``engine.reports``): refusals, the funnel, the cycle, salespeople, the
forecast, and rebuilding the funnel's projection.

The figures are computed by engine/reports/ (a module per report); this service checks who asks and for whose leads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import clock, policy, results, store
from engine.errors import InvalidInputError
from engine.i18n import N_, Message
from engine.services.context import Context, Service, operation
from engine.store import closures, lead_spans, lead_stages, leads

if TYPE_CHECKING:
    from engine.reports.asof import Sources


class ReportService(Service):
    """``engine.reports``: what the period's figures say, within the acting user's scope."""

    name = "reports"

    @contextmanager
    def _reporting(self, owner: str | None, team: str | None, period: str, date_from: str | None,
                   date_to: str | None, as_of: str | None = None, *, then: bool = True, stages: bool = False,
                   ) -> Iterator[tuple[Connection, Any, dt.datetime, Any, Sources]]:
        """A report's transaction, the acting user's scope, the instant it is as of (``as_of``, else now), its
        period, and where it reads the leads (``asof.sources``: as they stood then; not ``then``: the tables, for
        the refusals, whose figures are the ``closures`` rows before ``as_of``, exact as they are; ``stages``: the
        report reads ``lead_stages`` as of then, added up once)."""
        from engine import reports
        from engine.reports import asof

        ctx = self.ctx
        past = asof.parse(as_of)
        # as of a past instant: a reader's transaction, which never holds SQLite's write lock
        with ctx.reading() if past is not None else ctx.transaction() as conn:
            seen = ctx.scope(conn, ctx.actor(conn), owner=owner, team=team)
            now = past or clock.now()
            window = reports.period(now, period, date_from, date_to)
            with asof.sources(conn, past if then else None, ctx.specs_lookup(conn), stages=stages) as src:
                yield conn, seen, now, window, src

    @operation
    def refusals(self, *, period: str = "month", date_from: str | None = None, date_to: str | None = None,
                 process: str | None = None, team: str | None = None, owner: str | None = None,
                 matrix_by: str | None = None, trend: bool = False, as_of: str | None = None,
                 ) -> results.RefusalsReport:
        """Refusals received in a period: by reason, product and salesperson; a matrix; the trend."""
        from engine import reports

        with self._reporting(owner, team, period, date_from, date_to, as_of,
                             then=False) as (conn, seen, now, window, _):
            specs = {s.id: s for s in self.ctx.latest_specs(conn, process)}
            return {"as_of": now.isoformat(), "process": process,
                    **reports.refusals(conn, specs, window, seen.on(closures), matrix_by=matrix_by, trend=trend)}

    @operation
    def funnel(self, *, period: str = "all", date_from: str | None = None, date_to: str | None = None,
               process: str | None = None, team: str | None = None, owner: str | None = None,
               as_of: str | None = None) -> results.FunnelReport:
        """Per process, the cohort of leads created in the period: how many reached each stage, moved on from
        it, their median days in it, and the lead-to-win conversion."""
        from engine import reports

        with self._reporting(owner, team, period, date_from, date_to, as_of,
                             stages=True) as (conn, seen, now, window, src):
            return {"as_of": now.isoformat(), "period": window.as_dict(),
                    "funnels": [reports.funnel(conn, spec, window, seen.on(src.lead_stages), seen.on(src.leads),
                                                  src)
                                for spec in self.ctx.latest_specs(conn, process)]}

    @operation
    def cycle(self, *, period: str = "all", date_from: str | None = None, date_to: str | None = None,
              process: str | None = None, team: str | None = None, owner: str | None = None,
              as_of: str | None = None) -> results.CycleReport:
        """The measured sales cycle of the leads won in the period: per process, salesperson and source."""
        from engine import reports

        with self._reporting(owner, team, period, date_from, date_to, as_of) as (conn, seen, now, window, src):
            return {"as_of": now.isoformat(),
                    **reports.cycle(conn, self.ctx.latest_specs(conn, process), window, seen.on(src.leads),
                                    window.cutoff if as_of else None, src)}

    @operation
    def products(self, *, period: str = "all", date_from: str | None = None, date_to: str | None = None,
                 process: str | None = None, team: str | None = None,
                 owner: str | None = None, as_of: str | None = None) -> results.ProductsReport:
        """Per product: won and lost in the period, the win rate, the won value and the cycle of the won."""
        from engine import reports

        with self._reporting(owner, team, period, date_from, date_to, as_of) as (conn, seen, now, window, src):
            return {"as_of": now.isoformat(),
                    **reports.products(conn, self.ctx.latest_specs(conn, process), window, seen.on(src.leads),
                                       src.leads)}

    @operation
    def salespeople(self, *, period: str = "all", date_from: str | None = None, date_to: str | None = None,
                    process: str | None = None, team: str | None = None,
                    owner: str | None = None, as_of: str | None = None) -> results.SalespeopleReport:
        """Per salesperson: held, won, lost, conversion, cycle, red leads, and clients a colleague won after them."""
        from engine import reports

        with self._reporting(owner, team, period, date_from, date_to, as_of) as (conn, seen, now, window, src):
            return {"as_of": now.isoformat(), "process": process,
                    **reports.salespeople(conn, self.ctx.latest_specs(conn, process), window, now, team=seen.team,
                                          owner=seen.owner, src=src)}

    @operation
    def forecast(self, *, months: int = 3, process: str | None = None, team: str | None = None,
                 owner: str | None = None, as_of: str | None = None) -> results.ForecastReport:
        """Expected wins and value per month for the next ``months`` months, from the open leads."""
        from engine import reports

        if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 60:
            raise InvalidInputError(N_("--months {months!r} is not a whole number of months from 1 to 60"),
                                    months=months)
        with self._reporting(owner, team, "all", None, None, as_of, stages=True) as (conn, seen, now, window, src):
            return {"as_of": now.isoformat(), "months": months,
                    "forecasts": [reports.forecast(conn, spec, now, months, seen.on(src.leads),
                                                   None if as_of else window.cutoff, src)
                                  for spec in self.ctx.latest_specs(conn, process)]}

    @operation
    def rebuild_stages(self) -> results.RebuiltStages:
        """Admins: rebuild the funnel's projection (which stages each lead reached, and for how long) from the
        event log, e.g. after a bulk load that bypassed the engine. Returns the number of rows written."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            policy.require_admin(ctx.actor(conn), Message(N_("rebuild the reports' projection")))
            return {"rows": store.rebuild_stages(conn, ctx.specs_lookup(conn))}


def complete_stages(ctx: Context, conn: Connection) -> None:
    """Give leads without their rows of the funnel's projection or of their past (a database from before them,
    or CSV imports before they wrote them) those rows, rebuilt from the event log."""
    if any(conn.execute(sa.select(leads.c.id).where(~sa.exists(
            sa.select(table.c.lead_id).where(table.c.lead_id == leads.c.id))).limit(1)).first()
           for table in (lead_stages, lead_spans)):
        store.rebuild_stages(conn, ctx.specs_lookup(conn))
