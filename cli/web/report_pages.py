"""The sales director's reports (``/reports/<kind>``: refusals, funnel, cycle, salespeople, forecast from
``eng.reports``): their tables, each downloadable as CSV (``/reports/<kind>.csv?table=N``), and the chart
cli/present/charts.py draws of it as a PNG (``/reports/<kind>.png``; the forecast's one currency per chart)."""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.responses import Response

from cli.server.problems import status_of
from cli.web.text import _
from cli.web.views import NAV, NavItem, Visit, not_found, page, render
from engine.errors import LeadflowError
from engine.i18n import N_

NAV.append(NavItem("/reports/refusals", N_("Reports"), "board"))

#: The filters a period report takes (query parameters, so a report is a link to share).
PERIOD_FILTERS = ("period", "from", "to", "process", "team", "owner", "as_of")


@dataclass(frozen=True)
class Table:
    title: str
    header: list[str]
    rows: list[list[Any]]


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def _refusal_tables(data: Any) -> list[Table]:
    return [Table(_("By reason"), ["process", "reason", "label", "BANT", "refusals", "value"],
                  [[r["process"], r["reason"], r["label"], r["bant"] or "", r["count"], r["value"]]
                   for r in data["by_reason"]]),
            Table(_("By product"), ["product", "refusals", "value"],
                  [[r["product"] or "", r["count"], r["value"]] for r in data["by_product"]]),
            Table(_("By salesperson"), ["salesperson", "refusals", "value"],
                  [[r["owner"] or "", r["count"], r["value"]] for r in data["by_salesperson"]]),
            Table(_("Day by day"), ["day", "refusals", "cumulative"],
                  [[d["day"], d["count"], d["cumulative"]] for d in data["trend"]["days"]])]


def _funnel_tables(data: Any) -> list[Table]:
    return [Table(f"{f['title']} ({f['process']})", ["stage", "reached", "of cohort", "in it now", "moved on",
                                                     "conversion", "median days"],
                  [[s["name"], s["reached"], _pct(s["share"]), s["in_stage"], s["moved_on"], _pct(s["conversion"]),
                    "" if s["median_days"] is None else s["median_days"]] for s in f["stages"]]
                  + [["won", f["won"], _pct(f["conversion"]), "", "", "", ""]]) for f in data["funnels"]]


def _cycle_tables(data: Any) -> list[Table]:
    stats = ["won", "mean_days", "median_days", "p25_days", "p75_days", "min_days", "max_days", "declared_days"]
    return [Table(_("Per process"), ["process", *stats], [[p["process"], *(p[k] for k in stats)]
                                                          for p in data["processes"]]),
            Table(_("Per salesperson"), ["process", "salesperson", "won", "mean_days", "median_days"],
                  [[r["process"], r["owner"] or "", r["won"], r["mean_days"], r["median_days"]]
                   for r in data["by_salesperson"]]),
            Table(_("Per source"), ["process", "source", "won", "mean_days", "median_days"],
                  [[r["process"], r["source"] or "", r["won"], r["mean_days"], r["median_days"]]
                   for r in data["by_source"]])]


def _salespeople_tables(data: Any) -> list[Table]:
    keys = ["owner", "held", "held_value", "won", "won_value", "lost", "conversion", "mean_cycle_days", "red",
            "gave_up", "won_by_colleague"]
    return [Table(_("Salespeople"), keys, [[r[k] if r[k] is not None else "" for k in keys]
                                           for r in data["salespeople"]])]


def _forecast_tables(data: Any) -> list[Table]:
    return [Table(f"{f['title']} ({f['process']}, {f['currency']})",
                  ["month", "open leads", "their value", "expected wins", "expected value"],
                  [[m["month"], m["leads"], m["value"], m["expected_wins"], m["expected_value"]]
                   for m in [*f["months"], {"month": "later", **f["later"]}]]) for f in data["forecasts"]]


@dataclass(frozen=True)
class Report:
    title: str
    read: Callable[[Visit, dict[str, str | None]], Any]
    tables: Callable[[Any], list[Table]]
    chart: str | None  # the function of cli/present/charts.py that draws it


def _period(visit: Visit, f: dict[str, str | None], default: str = "all") -> dict[str, Any]:
    return {"period": f["period"] or default, "date_from": f["from"], "date_to": f["to"], "process": f["process"],
            "team": f["team"], "owner": f["owner"], "as_of": f["as_of"]}


def _months(raw: str | None) -> Any:
    """The forecast's months as a number; anything else goes to the engine as written, which refuses it."""
    return 3 if raw is None else int(raw) if raw.isdigit() else raw


REPORTS: dict[str, Report] = {
    "refusals": Report("Refusals", lambda v, f: v.eng.reports.refusals(**_period(v, f, "month"), trend=True),
                       _refusal_tables, "refusal_trend"),
    "funnel": Report("Funnel", lambda v, f: v.eng.reports.funnel(**_period(v, f)), _funnel_tables, "funnel"),
    "cycle": Report("Sales cycle", lambda v, f: v.eng.reports.cycle(**_period(v, f)), _cycle_tables, "cycle"),
    "salespeople": Report("Salespeople", lambda v, f: v.eng.reports.salespeople(**_period(v, f)),
                          _salespeople_tables, None),
    "forecast": Report("Forecast", lambda v, f: v.eng.reports.forecast(
        months=_months(f["months"]), process=f["process"], team=f["team"], owner=f["owner"], as_of=f["as_of"]),
        _forecast_tables, "forecast"),
}


def _filters(visit: Visit) -> dict[str, str | None]:
    return {name: visit.arg(name) for name in (*PERIOD_FILTERS, "months")}


def _currencies(kind: str, data: Any) -> list[str]:
    """The charts of a report: one per currency of the forecast (never two currencies on one axis), else one."""
    if kind == "forecast":
        return sorted({f["currency"] for f in data["forecasts"]})
    return [""]


@page("/reports/{kind}.csv")
def report_csv(visit: Visit, kind: str) -> Response:
    """One table of the report (``table``, from 0) as CSV, with the same filters."""
    if kind not in REPORTS:
        return not_found(visit, _("There is no report '%(kind)s'.", kind=kind))
    spec = REPORTS[kind]
    tables = spec.tables(spec.read(visit, _filters(visit)))
    number = visit.arg("table") or "0"
    if not number.isdigit() or int(number) >= len(tables):
        return not_found(visit, _("The report '%(kind)s' has no table %(n)s.", kind=kind, n=number))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(tables[int(number)].header)
    writer.writerows(tables[int(number)].rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{kind}-{number}.csv"'})


@page("/reports/{kind}.png")
def report_chart(visit: Visit, kind: str) -> Response:
    """The report's chart, drawn by cli/present/charts.py from the same data as its tables."""
    from cli.present import charts

    spec = REPORTS.get(kind)
    if spec is None or spec.chart is None:
        return not_found(visit, _("The report '%(kind)s' has no chart.", kind=kind))
    data = dict(spec.read(visit, _filters(visit)))
    currency = visit.arg("currency")
    if kind == "forecast" and currency:
        data["forecasts"] = [f for f in data["forecasts"] if f["currency"] == currency]
    with tempfile.TemporaryDirectory() as folder:
        path = getattr(charts, spec.chart)(data, Path(folder) / "chart.png")
        return Response(path.read_bytes(), media_type="image/png")


#: after the .csv and .png routes, which its pattern would match too
@page("/reports/{kind}")
def report(visit: Visit, kind: str) -> Response:
    if kind not in REPORTS:
        return not_found(visit, _("There is no report '%(kind)s'.", kind=kind))
    spec, filters = REPORTS[kind], _filters(visit)
    try:
        data = spec.read(visit, filters)
    except LeadflowError as exc:
        return render(visit, "report.html", status=status_of(exc), kind=kind, title=_(spec.title), tables=[],
                      filters=filters, reports=REPORTS, charts=[], error=str(exc))
    return render(visit, "report.html", kind=kind, title=_(spec.title), tables=spec.tables(data), filters=filters,
                  reports=REPORTS, charts=_currencies(kind, data) if spec.chart else [], error=None)
