"""Board and report timings over a large database of leads with realistic histories (issue 6: every report
answers in under 3 s over 1,000,000 leads; issue 8: the board and reports on SQLite and on PostgreSQL).

    python -m benchmarks.reports --leads 1000000          # builds reports-1000000.db in the data dir once
    python -m benchmarks.reports --leads 20000 --fresh    # a quick look
    python -m benchmarks.reports --leads 20000 --check    # also: rebuild lead_stages from the event log, compare
    python -m benchmarks.reports --leads 20000 --pg postgresql+psycopg://USER:PASSWORD@HOST/DATABASE
    python -m benchmarks.reports --leads 50000 --as-of 2026-02-16 --as-of 2025-03-16   # also as of past days

The database comes from ``benchmarks.data.build_history``: one process (photovoltaics), 50 salespeople in 5
teams, leads created over two years (a third in the last quarter), each with its whole event log (created,
tasks done, fields set, advanced, closed or won; some reopened, some rotated to a colleague), and every
projection the engine keeps (leads, tasks, lead_stages, closures, ownerships, stage_counts). Each report runs
as the engine API call the CLI makes (JSON-ready data), as the admin (every lead) and as a team's manager,
after the board's own calls (``benchmarks.board.board_timings``: stage counts, the full board JSON, a team's
board and stand-up); the figure is the median of ``--repeat`` runs after a warm-up. With ``--pg`` the SQLite
database is copied once into a schema of that PostgreSQL database (``benchmarks.data.copy_to_postgres``) and
every call is timed there too, printed beside SQLite's. The data dir is ``LEADFLOW_BENCH_DIR``, else
benchmarks/out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.board import board_timings, median_seconds, process_timing
from benchmarks.data import NOW, build_history, copy_to_postgres, out_dir, reusable
from engine import clock, store
from engine.api import Engine


def reports(admin: Engine, manager: Engine) -> list[tuple[str, Any]]:
    """(name, call) of every report the benchmark times."""
    return [
        ("funnel, all time (admin)", lambda: admin.report_funnel(period="all")),
        ("funnel, this month's cohort (admin)", lambda: admin.report_funnel(period="month")),
        ("funnel, all time, one team (manager)", lambda: manager.report_funnel(period="all")),
        ("cycle, all time (admin)", lambda: admin.report_cycle(period="all")),
        ("cycle, all time, one team (manager)", lambda: manager.report_cycle(period="all")),
        ("salespeople, all time (admin)", lambda: admin.report_salespeople(period="all")),
        ("salespeople, this month (manager)", lambda: manager.report_salespeople(period="month")),
        ("forecast, 6 months (admin)", lambda: admin.report_forecast(months=6)),
        ("forecast, 6 months, one team (manager)", lambda: manager.report_forecast(months=6)),
        ("refusals, all time (admin)", lambda: admin.report_refusals(period="all")),
        ("refusals, this month, matrix and trend (admin)",
         lambda: admin.report_refusals(period="month", matrix_by="reason", trend=True)),
        ("stalled leads (uses the measured cycle) (admin)", lambda: admin.stalled(limit=50)),
        ("revisits due, every team (admin)", admin.revisits),
        ("revisits due, one team (manager)", manager.revisits),
    ]


def as_of_reports(admin: Engine, manager: Engine, when: str) -> list[tuple[str, Any]]:
    """(name, call) of the reports and views timed as of ``when`` (docs/reports.md, "As of a past instant")."""
    return [
        (f"funnel, all time (admin), as of {when}", lambda: admin.reports.funnel(as_of=when)),
        (f"funnel, all time, one team (manager), as of {when}", lambda: manager.reports.funnel(as_of=when)),
        (f"salespeople, all time (admin), as of {when}", lambda: admin.reports.salespeople(as_of=when)),
        (f"forecast, 6 months (admin), as of {when}", lambda: admin.reports.forecast(months=6, as_of=when)),
        (f"refusals, all time (admin), as of {when}", lambda: admin.reports.refusals(period="all", as_of=when)),
        (f"board, whole process (admin), as of {when}", lambda: admin.boards.board(as_of=when)),
        (f"board, one team (manager), as of {when}", lambda: manager.boards.board(as_of=when)),
        (f"stand-up, one team (manager), as of {when}", lambda: manager.boards.daily(as_of=when)),
        (f"stalled leads (admin), as of {when}", lambda: admin.recovery.stalled(limit=50, as_of=when)),
    ]


def history_database(leads: int, *, fresh: bool = False, log: Callable[[str], None] = print) -> Path:
    """The SQLite database of ``leads`` leads with their histories in the data dir, built unless it is there."""
    path = out_dir() / f"reports-{leads}.db"
    if fresh or not reusable(path):
        log(f"building {leads:,} leads with their histories in {path} ...")
        info = build_history(path, leads, log=log)
        log(f"built in {info['build_seconds']:.0f} s: {info['events']:,} events, {info['lead_stages']:,} "
            f"lead_stages rows, {info['closures']:,} closings")
    return path


def measure(url: str, repeat: int, as_of: tuple[str, ...] = ()) -> dict[str, Any]:
    """Median seconds of the board's and every report's engine call over the database at ``url`` (and as of each
    day of ``as_of``), and of ``leadflow board --json``, ``report funnel --json`` and ``report forecast --json`` as
    whole processes (with their peak RSS)."""
    admin = Engine.open(url, user="admin")
    manager = admin.as_user("manager0")
    try:
        with admin.db.connect() as conn:
            statuses: dict[str, int] = dict(conn.execute(sa.select(store.leads.c.status, sa.func.count())
                                         .group_by(store.leads.c.status)).all())
            events = conn.execute(sa.select(sa.func.count()).select_from(store.events)).scalar_one()
        board = board_timings(admin, manager, repeat)
        with clock.frozen(NOW):
            calls = [*reports(admin, manager), *(c for when in as_of for c in as_of_reports(admin, manager, when))]
            seconds = {name: median_seconds(_as_json(call), repeat) for name, call in calls}
    finally:
        admin.close()
    processes = {" ".join(command): process_timing(url, command, repeat) for command in PROCESSES}
    return {"leads": sum(statuses.values()), "statuses": statuses, "events": events, "repeat": repeat,
            "board": board, "seconds": seconds, "processes": processes}


def _as_json(call: Callable[[], Any]) -> Callable[[], str]:
    return lambda: json.dumps(call())


#: The commands timed as whole processes.
PROCESSES = (["board", "--json", "--process", "photovoltaics"], ["report", "funnel", "--json"],
             ["report", "forecast", "--json"])


def print_table(results: dict[str, dict[str, Any]]) -> None:
    """One column per database (``results`` maps its name, e.g. SQLite, to ``measure``'s result)."""
    first = next(iter(results.values()))
    statuses = first["statuses"]
    print(f"\n{first['leads']:,} leads ({', '.join(f'{n:,} {s}' for s, n in sorted(statuses.items()))}), "
          f"{first['events']:,} events; as of {NOW:%Y-%m-%d %H:%M}, median of {first['repeat']} runs")
    print(f"  {'':<50}" + "".join(f"{name:>12}" for name in results))
    for part in ("board", "seconds"):
        for row in first[part]:
            print(f"  {row:<50}" + "".join(f"{r[part][row] * 1000:9.0f} ms" for r in results.values()))
    for row in first["processes"]:
        print(f"  {'`leadflow ' + row + '`':<50}" +
              "".join(f"{r['processes'][row]['median_s'] * 1000:9.0f} ms" for r in results.values()))
    for row in first["processes"]:
        print(f"  {'peak RSS of `' + row.split(' --')[0] + '`':<50}" +
              "".join(f"{r['processes'][row]['peak_rss_mib']:8.0f} MiB" for r in results.values()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="rebuild the database even if it exists")
    parser.add_argument("--check", action="store_true",
                        help="rebuild lead_stages from the event log and check it equals the built one (slow)")
    parser.add_argument("--pg", default=os.environ.get("LEADFLOW_BENCH_PG_URL"),
                        help="also copy the database into this PostgreSQL database (a schema of its own, made "
                             "once) and time the same calls there (default: $LEADFLOW_BENCH_PG_URL)")
    parser.add_argument("--pg-schema", default="bench", help="prefix of the PostgreSQL schema's name")
    parser.add_argument("--as-of", action="append", default=[], metavar="WHEN",
                        help="also time the reports, board, stand-up and stalled leads as of this past day or "
                             "instant (repeatable; the data's now is 2026-03-16 10:00)")
    args = parser.parse_args(argv)

    path = history_database(args.leads, fresh=args.fresh)
    url = f"sqlite:///{path}"
    results = {"SQLite": measure(url, args.repeat, tuple(args.as_of))}
    if args.pg:
        copy = copy_to_postgres(path, args.pg, f"{args.pg_schema}_reports_{args.leads}", fresh=args.fresh)
        results["PostgreSQL"] = measure(copy["url"], args.repeat, tuple(args.as_of))
    print_table(results)
    if args.check:
        admin = Engine.open(url, user="admin")
        check(admin)
        admin.close()
    slow = sorted({name for r in results.values() for name, seconds in r["seconds"].items() if seconds >= 3})
    # (the board's own targets are judged by benchmarks.board and the suite's summary)
    if slow:
        print(f"\nSLOWER THAN 3 s: {', '.join(slow)}")
        return 1
    return 0


def check(admin: Engine) -> None:
    """Rebuild lead_stages from the event log and compare it, row for row, with the one the build wrote."""
    table = store.lead_stages

    def rows() -> list[tuple[Any, ...]]:
        with admin.db.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.select(table).order_by(table.c.lead_id, table.c.stage))]

    built = rows()
    started = time.perf_counter()
    result = admin.rebuild_stages()
    print(f"  rebuild_stages from the event log: {result['rows']:,} rows in {time.perf_counter() - started:.1f} s",
          "- equal to the built projection" if rows() == built else "- DIFFERENT from the built projection")


if __name__ == "__main__":
    sys.exit(main())
