"""Report timings over a large SQLite database of leads with realistic histories (issue 6: every report answers
in under 3 s over 1,000,000 leads).

    python -m benchmarks.reports --leads 1000000          # builds benchmarks/out/reports-1000000.db once
    python -m benchmarks.reports --leads 20000 --fresh    # a quick look
    python -m benchmarks.reports --leads 20000 --check    # also: rebuild lead_stages from the event log, compare

The database comes from ``benchmarks.data.build_history``: one process (photovoltaics), 50 salespeople in 5
teams, leads created over two years (a third in the last quarter), each with its whole event log (created,
tasks done, fields set, advanced, closed or won; some reopened, some rotated to a colleague), and every
projection the engine keeps (leads, tasks, lead_stages, closures, ownerships, stage_counts). Each report runs
as the engine API call the CLI makes (JSON-ready data), as the admin (every lead) and as a team's manager;
the figure is the median of ``--repeat`` runs after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.board import median_seconds
from benchmarks.data import NOW, build_history
from engine import clock, store
from engine.api import Engine

OUT = Path(__file__).resolve().parent / "out"


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
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="rebuild the database even if it exists")
    parser.add_argument("--check", action="store_true",
                        help="rebuild lead_stages from the event log and check it equals the built one (slow)")
    args = parser.parse_args(argv)

    OUT.mkdir(exist_ok=True)
    path = OUT / f"reports-{args.leads}.db"
    if args.fresh or not path.exists():
        print(f"building {args.leads:,} leads with their histories in {path} ...")
        info = build_history(path, args.leads)
        print(f"built in {info['build_seconds']:.0f} s: {info['events']:,} events, {info['lead_stages']:,} "
              f"lead_stages rows, {info['closures']:,} closings")
    url = f"sqlite:///{path}"
    admin = Engine.open(url, user="admin")
    manager = admin.as_user("manager0")
    with admin.db.connect() as conn:
        statuses = dict(conn.execute(sa.select(store.leads.c.status, sa.func.count()).group_by(store.leads.c.status))
                        .all())
        events = conn.execute(sa.select(sa.func.count()).select_from(store.events)).scalar_one()
    print(f"\n{sum(statuses.values()):,} leads ({', '.join(f'{n:,} {s}' for s, n in sorted(statuses.items()))}), "
          f"{events:,} events; as of {NOW:%Y-%m-%d %H:%M}, median of {args.repeat} runs, SQLite")
    slow = []
    with clock.frozen(NOW):
        for name, call in reports(admin, manager):
            seconds = median_seconds(lambda c=call: json.dumps(c()), args.repeat)
            print(f"  {name:<50} {seconds * 1000:8.0f} ms")
            if seconds >= 3:
                slow.append(name)
    env = {**os.environ, "LEADFLOW_DB": url, "LEADFLOW_USER": "admin", "LEADFLOW_NOW": NOW.isoformat()}
    for command in (["report", "funnel", "--json"], ["report", "forecast", "--json"]):
        seconds = median_seconds(lambda c=command: subprocess.run(  # type: ignore[misc]
            [sys.executable, "-m", "cli.main", *c], env=env, check=True, capture_output=True), args.repeat)
        print(f"  {'`leadflow ' + ' '.join(command) + '` as a process':<50} {seconds * 1000:8.0f} ms")
    if args.check:
        check(admin)
    admin.close()
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
