"""``leadflow report ...``: the sales director's numbers, as tables, JSON or CSV."""

from __future__ import annotations

import csv
import datetime as dt
import sys
from typing import Any

import click

from cli.app import App, pass_app
from cli.output import console, json_option, plural, print_json, table

csv_option = click.option("--csv", "as_csv", is_flag=True, help="Print CSV (one table; see docs/reports.md).")


def _filters(f: Any) -> Any:
    for option in reversed([
        click.option("--process", "process_", help="Only this process."),
        click.option("--team", help="Only this team (managers)."),
        click.option("--owner", help="Only this salesperson."),
        click.option("--from", "date_from", metavar="YYYY-MM-DD", help="From this day (overrides --period)."),
        click.option("--to", "date_to", metavar="YYYY-MM-DD", help="Up to and including this day."),
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


@click.group("report")
def report() -> None:
    """Refusals, and more to come: the funnel, the sales cycle, a forecast."""


@report.command("refusals")
@click.option("--period", type=click.Choice(["day", "week", "month", "all"]), default="month", show_default=True)
@_filters
@click.option("--matrix", "matrix", is_flag=True, help="The salesperson x reason matrix with totals.")
@click.option("--by", "matrix_by", type=click.Choice(["reason", "product"]), default="reason", show_default=True,
              help="The matrix's columns.")
@click.option("--trend", is_flag=True, help="Counts day by day and week by week, with running totals.")
@json_option
@csv_option
@pass_app
def refusals(app: App, period: str, process_: str | None, team: str | None, owner: str | None,
             date_from: str | None, date_to: str | None, matrix: bool, matrix_by: str, trend: bool,
             as_json: bool, as_csv: bool) -> None:
    """Refusals received in the period: by reason, product and salesperson, and their value."""
    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    data = app.engine.report_refusals(period=period, date_from=date_from, date_to=date_to, process=process_,
                                      team=team, owner=owner, matrix_by=matrix_by if matrix else None, trend=trend)
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
    last_day = (dt.datetime.fromisoformat(p["to"]) - dt.timedelta(seconds=1)).date().isoformat() if p["to"] else "…"
    span = f"{(p['from'] or '…')[:10]} to {last_day}" if p["name"] != "all" else "all time"
    con.print(f"[bold]Refusals[/bold] ({p['name']}, {span}): {plural(data['total'], 'refusal')}, value "
              f"{data['value']}")
    if matrix:
        m = data["matrix"]
        con.print(table(f"Salesperson x {m['by']}", ["salesperson", *m["columns"], "total"],
                        [[r["owner"], *r["counts"], r["total"]] for r in m["rows"]]
                        + [["total", *m["totals"], m["total"]]]))
    if trend:
        con.print(table("Week by week", ["week", "refusals", "cumulative"],
                        [[w["week"], w["count"], w["cumulative"]] for w in data["trend"]["weeks"]]))
        con.print(table("Day by day", ["day", "refusals", "cumulative"],
                        [[d["day"], d["count"], d["cumulative"]] for d in data["trend"]["days"]]))
    if not matrix and not trend:
        con.print(table("By reason", ["process", "reason", "label", "BANT", "refusals", "value"],
                        [[r["process"], r["reason"], r["label"], r["bant"], r["count"], r["value"]]
                         for r in data["by_reason"]]))
        con.print(table("By product", ["product", "refusals", "value"],
                        [[r["product"], r["count"], r["value"]] for r in data["by_product"]]))
        con.print(table("By salesperson", ["salesperson", "refusals", "value"],
                        [[r["owner"], r["count"], r["value"]] for r in data["by_salesperson"]]))
