"""``leadflow report ...``: the sales director's numbers, as tables, JSON or CSV."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import click

from cli.app import App, pass_app
from cli.files import force_option, writable
from cli.output import amount, as_of_option, console, esc, json_option, print_json, table
from cli.present import formats
from engine import i18n
from engine.i18n import _, label, ngettext

if TYPE_CHECKING:  # the results' types only: the remote path imports no engine module
    from engine import results

csv_option = click.option("--csv", "as_csv", is_flag=True, help="Print CSV (one table; see docs/reports.md).")


def _filters(f: Any) -> Any:
    for option in reversed([
        click.option("--process", "process_", help="Only this process."),
        click.option("--team", help="Only this team (managers)."),
        click.option("--owner", help="Only this salesperson."),
        click.option("--from", "date_from", metavar="YYYY-MM-DD", help="From this day (overrides --period)."),
        click.option("--to", "date_to", metavar="YYYY-MM-DD", help="Up to and including this day."),
        as_of_option,
    ]):
        f = option(f)
    return f


def _write_csv(header: list[str], rows: list[list[Any]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[_safe(v) for v in row] for row in rows])


def _safe(value: Any) -> Any:
    """A cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _number(text) else text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _pct(ratio: float | None) -> str:
    return formats.percent(ratio)


def _values(row: Mapping[str, object], keys: list[str]) -> list[object]:
    """The values of ``keys`` in ``row``, in that order (a report's columns)."""
    return [row[k] for k in keys]


def _num(value: object) -> str:
    if value is None:
        return ""
    return f"{value:g}" if i18n.language() == i18n.SOURCE else formats.number(value)


def _span(p: results.Period) -> str:
    if p["name"] == "all" and not p["from"] and not p["to"]:
        return _("all time")
    last_day = formats.date((dt.datetime.fromisoformat(p["to"]) - dt.timedelta(seconds=1)).date()) if p["to"] else "…"
    return _("{start} to {end}", start=formats.date(p["from"][:10]) if p["from"] else "…", end=last_day)


_chart = click.option("--chart", "chart", metavar="FILE.png", default=None,
                      help="Also draw the report as a PNG chart (needs the 'charts' extra: matplotlib).")


def chart_option(f: Callable[..., None]) -> Callable[..., None]:
    """``--chart FILE.png`` and ``--force`` (replace the chart's file if it exists). Once the report is out, a
    line says where the chart went, as ``board --html`` does: on stdout after a table, on stderr after JSON or
    CSV (which stdout keeps to itself). ``f`` takes its options as keywords (under ``pass_app``)."""
    @functools.wraps(f)
    def report_and_chart(*args: Any, **kwargs: Any) -> None:
        f(*args, **kwargs)
        if kwargs.get("chart") is not None:
            click.echo(_("Chart written to {file}", file=kwargs["chart"]),
                       err=bool(kwargs.get("as_json") or kwargs.get("as_csv")))
    return _chart(force_option(report_and_chart))
period_option = click.option("--period", type=click.Choice(["day", "week", "month", "all"]), default="all",
                             show_default=True, help="The period (see docs/reports.md).")


def _period_report(*, chart: bool) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The options every report over a period takes: the period and filters, a chart if it draws one, the
    output format; and the app."""
    options: list[Callable[[Any], Any]] = [period_option, _filters, *([chart_option] if chart else []),
                                           json_option, csv_option, pass_app]

    def apply(f: Callable[..., None]) -> Callable[..., None]:
        decorated: Callable[..., None] = f
        for option in reversed(options):
            decorated = option(decorated)
        return decorated
    return apply


def _one_output(as_json: bool, as_csv: bool) -> None:
    if as_json and as_csv:
        raise click.UsageError(_("choose one of --json and --csv"))


def _draw(kind: str, data: Mapping[str, Any], chart: str | None, force: bool) -> None:
    if chart is not None:
        from cli.present import charts

        getattr(charts, kind)(data, writable(chart, force=force, option="--chart"))


@click.group("report")
def report() -> None:
    """The sales director's numbers: refusals, the funnel, the sales cycle, salespeople, products, a forecast."""


@report.command("refusals")
@click.option("--period", type=click.Choice(["day", "week", "month", "all"]), default="month", show_default=True)
@_filters
@click.option("--matrix", "matrix", is_flag=True, help="The salesperson x reason matrix with totals.")
@click.option("--by", "matrix_by", type=click.Choice(["reason", "product"]), default="reason", show_default=True,
              help="The matrix's columns.")
@click.option("--trend", is_flag=True, help="Counts day by day and week by week, with running totals.")
@chart_option
@json_option
@csv_option
@pass_app
def refusals(app: App, period: str, process_: str | None, team: str | None, owner: str | None,
             date_from: str | None, date_to: str | None, matrix: bool, matrix_by: str, trend: bool,
             as_of: str | None, chart: str | None, force: bool, as_json: bool, as_csv: bool) -> None:
    """Refusals received in the period: by reason, product and salesperson, and their value."""
    _one_output(as_json, as_csv)
    if chart is not None and not trend:
        raise click.UsageError(_("--chart draws the trend: add --trend"))
    data = app.engine.reports.refusals(period=period, date_from=date_from, date_to=date_to, process=process_,
                                      team=team, owner=owner, matrix_by=matrix_by if matrix else None, trend=trend,
                                      as_of=as_of)
    _draw("refusal_trend", data, chart, force)
    if as_json:
        print_json(data)
        return
    if as_csv:
        if matrix:
            m = data["matrix"]
            _write_csv(["owner", *m["columns"], "total"],
                       [[r["owner"], *r["counts"], r["total"]] for r in m["rows"]] + [["total", *m["totals"],
                                                                                      m["total"]]])
        elif trend:
            _write_csv(["day", "count", "cumulative"], [[d["day"], d["count"], d["cumulative"]]
                                                        for d in data["trend"]["days"]])
        else:
            _write_csv(["dimension", "key", "count", "value"],
                       [["reason", f"{r['process']}:{r['reason']}", r["count"], r["value"]] for r in data["by_reason"]]
                       + [["product", r["product"], r["count"], r["value"]] for r in data["by_product"]]
                       + [["salesperson", r["owner"], r["count"], r["value"]] for r in data["by_salesperson"]])
        return
    con = console(pipe_width=160)
    p = data["period"]
    con.print(ngettext("[bold]Refusals[/bold] ({period}, {span}): {count} refusal, value {value}",
                       "[bold]Refusals[/bold] ({period}, {span}): {count} refusals, value {value}", data["total"],
                       period=p["name"], span=_span(p), value=formats.amount(data["value"])))
    if matrix:
        m = data["matrix"]
        con.print(table(_("Salesperson x {by}", by=m["by"]), [_("salesperson"), *m["columns"], _("total")],
                        [[r["owner"], *r["counts"], r["total"]] for r in m["rows"]]
                        + [[_("total"), *m["totals"], m["total"]]]))
    if trend:
        con.print(table(_("Week by week"), [_("week"), _("refusals"), _("cumulative")],
                        [[w["week"], w["count"], w["cumulative"]] for w in data["trend"]["weeks"]]))
        con.print(table(_("Day by day"), [_("day"), _("refusals"), _("cumulative")],
                        [[formats.date(d["day"]), d["count"], d["cumulative"]] for d in data["trend"]["days"]]))
    if not matrix and not trend:
        con.print(table(_("By reason"), [_("process"), _("reason"), _("label"), "BANT", _("refusals"), _("value")],
                        [[r["process"], r["reason"], r["label"], r["bant"], r["count"], formats.amount(r["value"])]
                         for r in data["by_reason"]]))
        con.print(table(_("By product"), [_("product"), _("refusals"), _("value")],
                        [[r["product"], r["count"], formats.amount(r["value"])] for r in data["by_product"]]))
        con.print(table(_("By salesperson"), [_("salesperson"), _("refusals"), _("value")],
                        [[r["owner"], r["count"], formats.amount(r["value"])] for r in data["by_salesperson"]]))


@report.command("funnel")
@_period_report(chart=True)
def funnel(app: App, period: str, process_: str | None, team: str | None, owner: str | None,
           date_from: str | None, date_to: str | None, as_of: str | None, chart: str | None, force: bool, as_json: bool,
           as_csv: bool) -> None:
    """The leads created in the period: how many reached each stage and moved on, the median days spent in
    each, and the lead-to-win conversion."""
    _one_output(as_json, as_csv)
    data = app.engine.reports.funnel(period=period, date_from=date_from, date_to=date_to, process=process_,
                                    team=team, owner=owner, as_of=as_of)
    _draw("funnel", data, chart, force)
    if as_json:
        print_json(data)
        return
    if as_csv:
        _write_csv(["process", "stage", "reached", "share", "in_stage", "moved_on", "conversion", "median_days"],
                   [[f["process"], s["stage"], s["reached"], s["share"], s["in_stage"], s["moved_on"],
                     s["conversion"], s["median_days"]] for f in data["funnels"] for s in f["stages"]]
                   + [[f["process"], "won", f["won"], f["conversion"], "", "", "", ""] for f in data["funnels"]])
        return
    con = console(pipe_width=160)
    for f in data["funnels"]:
        con.print(ngettext("[bold]Funnel[/bold] {process} ({title}), leads created {span}: {count} lead, {open} "
                           "open, {won} won, {lost} lost; lead-to-win {conversion}",
                           "[bold]Funnel[/bold] {process} ({title}), leads created {span}: {count} leads, {open} "
                           "open, {won} won, {lost} lost; lead-to-win {conversion}", f["leads"],
                           process=esc(f["process"]), title=esc(f["title"]), span=_span(data["period"]),
                           open=f["open"], won=f["won"], lost=f["lost"], conversion=_pct(f["conversion"]) or _("n/a")))
        rows = [[label(s["name"]) + (_(" (retired)") if s["retired"] else ""), s["reached"], _pct(s["share"]),
                 s["in_stage"], s["moved_on"], _pct(s["conversion"]), _num(s["median_days"])] for s in f["stages"]]
        rows.append([_("Won"), f["won"], _pct(f["conversion"]), "", "", "", ""])
        con.print(table(None, [_("stage"), _("reached"), _("of cohort"), _("in it now"), _("moved on"),
                               _("conversion"), _("median days in it")], rows))


@report.command("cycle")
@_period_report(chart=True)
def cycle(app: App, period: str, process_: str | None, team: str | None, owner: str | None,
          date_from: str | None, date_to: str | None, as_of: str | None, chart: str | None, force: bool, as_json: bool,
          as_csv: bool) -> None:
    """The measured sales cycle of the leads won in the period: days from lead to win per process,
    per salesperson and per source, and the cycle the stalled-lead detection uses."""
    _one_output(as_json, as_csv)
    data = app.engine.reports.cycle(period=period, date_from=date_from, date_to=date_to, process=process_,
                                   team=team, owner=owner, as_of=as_of)
    _draw("cycle", data, chart, force)
    if as_json:
        print_json(data)
        return
    stats = ["won", "mean_days", "median_days", "p25_days", "p75_days", "min_days", "max_days"]
    if as_csv:
        _write_csv(["dimension", "process", "key", *stats],
                   [["process", p["process"], p["process"], *_values(p, stats)] for p in data["processes"]]
                   + [["salesperson", r["process"], r["owner"], r["won"], r["mean_days"], r["median_days"],
                       "", "", "", ""] for r in data["by_salesperson"]]
                   + [["source", r["process"], r["source"], r["won"], r["mean_days"], r["median_days"],
                       "", "", "", ""] for r in data["by_source"]])
        return
    con = console(pipe_width=160)
    con.print(_("[bold]Sales cycle[/bold] of the leads won {span}, in days from lead to win",
                span=_span(data["period"])))
    con.print(table(_("Per process"), [_("process"), _("won"), _("mean"), _("median"), "25%", "75%", _("min"),
                                       _("max"), _("declared"), _("stalled after")],
                    [[p["process"], p["won"], *map(_num, _values(p, stats[1:])), p["declared_days"],
                      f"{_num(p['stalled_cycle']['days'])} ({p['stalled_cycle']['basis']})"]
                     for p in data["processes"]]))
    con.print(table(_("Per salesperson"), [_("process"), _("salesperson"), _("won"), _("mean"), _("median")],
                    [[r["process"], r["owner"], r["won"], _num(r["mean_days"]), _num(r["median_days"])]
                     for r in data["by_salesperson"]]))
    con.print(table(_("Per source"), [_("process"), _("source"), _("won"), _("mean"), _("median")],
                    [[r["process"], r["source"], r["won"], _num(r["mean_days"]), _num(r["median_days"])]
                     for r in data["by_source"]]))


@report.command("salespeople")
@_period_report(chart=False)
def salespeople(app: App, period: str, process_: str | None, team: str | None, owner: str | None,
                date_from: str | None, date_to: str | None, as_of: str | None, as_json: bool, as_csv: bool) -> None:
    """Per salesperson: leads held, won, lost, conversion, average cycle, red leads, and the leads they gave up
    that a colleague won afterwards."""
    _one_output(as_json, as_csv)
    data = app.engine.reports.salespeople(period=period, date_from=date_from, date_to=date_to, process=process_,
                                         team=team, owner=owner, as_of=as_of)
    if as_json:
        print_json(data)
        return
    keys = ["owner", "held", "held_value", "won", "won_value", "lost", "conversion", "mean_cycle_days", "red",
            "gave_up", "won_by_colleague"]
    if as_csv:
        _write_csv(keys, [_values(r, keys) for r in data["salespeople"]])
        return
    con = console(pipe_width=160)
    con.print(_("[bold]Salespeople[/bold], won and lost {span}; held and red as of {as_of}",
                span=_span(data["period"]), as_of=formats.short_time(data["as_of"])))
    con.print(table(None, [_("salesperson"), _("held"), _("value held"), _("won"), _("value won"), _("lost"),
                           _("conversion"), _("avg cycle (days)"), _("red"), _("gave up"),
                           _("then won by a colleague")],
                    [[r["owner"], r["held"], amount(r["held_value"]), r["won"], amount(r["won_value"]), r["lost"],
                      _pct(r["conversion"]), _num(r["mean_cycle_days"]), r["red"], r["gave_up"],
                      r["won_by_colleague"]] for r in data["salespeople"]]))


@report.command("products")
@_period_report(chart=False)
def products(app: App, period: str, process_: str | None, team: str | None, owner: str | None,
             date_from: str | None, date_to: str | None, as_of: str | None, as_json: bool, as_csv: bool) -> None:
    """Per product: leads won and lost in the period, the win rate, the value won and the cycle of the won."""
    _one_output(as_json, as_csv)
    data = app.engine.reports.products(period=period, date_from=date_from, date_to=date_to, process=process_,
                                      team=team, owner=owner, as_of=as_of)
    if as_json:
        print_json(data)
        return
    keys = ["process", "product", "won", "lost", "conversion", "won_value", "mean_cycle_days", "median_cycle_days"]
    if as_csv:
        _write_csv(keys, [_values(r, keys) for r in data["products"]])
        return
    con = console(pipe_width=160)
    con.print(_("[bold]Products[/bold], won and lost {span}", span=_span(data["period"])))
    con.print(table(None, [_("process"), _("product"), _("won"), _("lost"), _("win rate"), _("value won"),
                           _("mean cycle (days)"), _("median cycle (days)")],
                    [[r["process"], r["product"] or "-", r["won"], r["lost"], _pct(r["conversion"]),
                      amount(r["won_value"]),
                      _num(r["mean_cycle_days"]), _num(r["median_cycle_days"])] for r in data["products"]]))


@report.command("forecast")
@click.option("--months", type=click.IntRange(1, 60), default=3, show_default=True,
              help="How many months, from this one.")
@click.option("--process", "process_", help="Only this process.")
@click.option("--team", help="Only this team (managers).")
@click.option("--owner", help="Only this salesperson.")
@as_of_option
@chart_option
@json_option
@csv_option
@pass_app
def forecast(app: App, months: int, process_: str | None, team: str | None, owner: str | None, as_of: str | None,
             chart: str | None, force: bool, as_json: bool, as_csv: bool) -> None:
    """Expected wins and value per month from the open leads, with the estimate per stage it rests on."""
    _one_output(as_json, as_csv)
    data = app.engine.reports.forecast(months=months, process=process_, team=team, owner=owner, as_of=as_of)
    _draw("forecast", data, chart, force)
    if as_json:
        print_json(data)
        return
    if as_csv:
        _write_csv(["process", "month", "leads", "value", "expected_wins", "expected_value"],
                   [[f["process"], m["month"], m["leads"], m["value"], m["expected_wins"], m["expected_value"]]
                    for f in data["forecasts"] for m in [*f["months"], {"month": "later", **f["later"]}]])
        return
    con = console(pipe_width=160)
    for f in data["forecasts"]:
        con.print(_("[bold]Forecast[/bold] {process} ({title}), as of {as_of}, values in {currency}",
                    process=esc(f["process"]), title=esc(f["title"]), as_of=formats.short_time(data["as_of"]),
                    currency=esc(f["currency"])))
        con.print(table(None, [_("month"), _("open leads"), _("their value"), _("expected wins"),
                               _("expected value")],
                        [[_("later") if m["month"] == "later" else m["month"], m["leads"], amount(m["value"]),
                          _num(m["expected_wins"]), amount(m["expected_value"])]
                         for m in [*f["months"], {"month": "later", **f["later"]}]]))
        con.print(table(_("Estimates per stage"), [_("stage"), _("open"), _("win probability"), _("method"),
                                                   _("history (leads)"), _("days to win"), _("method"),
                                                   _("won (leads)")],
                        [[e["stage"], e["open"], _pct(e["probability"]), e["probability_method"], e["history"],
                          _num(e["days_to_win"]), e["days_method"], e["won"]] for e in f["stages"]]))
