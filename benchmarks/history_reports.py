"""The reports, the board and the views today and as of past days over a migrated history (issue 20): a database
made by ``benchmarks.history_import`` (its people and its now), each call timed after a warm-up.

    python -m benchmarks.history_import --deals 1000000 --no-raw --mix funnel   # then keep its database
    python -m benchmarks.history_reports benchmarks/out/history.db [--repeat N]
    python -m benchmarks.history_reports benchmarks/out/history.db --pg postgresql+psycopg://USER:PASSWORD@HOST/DB \
        --pg-work-mem 64kB

With ``--pg`` the database is copied once into a schema of that PostgreSQL database (``--pg-schema``, else
``bench_history``; ``benchmarks.data.copy_to_postgres``) and every call is timed there too, beside SQLite's;
``--pg-work-mem`` sets PostgreSQL's ``work_mem`` for the calls: the memory a plan may take for a hash or a sort
decides between plans, so a small one shows at this size the plans a larger database would meet at the default.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import sqlalchemy as sa

from benchmarks.board import median_seconds
from benchmarks.data import copy_to_postgres
from benchmarks.history_data import NOW
from benchmarks.reports import as_of_reports, reports
from engine import clock
from engine.api import Engine

#: The instants timed: the day before the generator's now, a month back, six months back.
AS_OF = ("2026-03-01", "2026-02-01", "2025-09-02")
TODAY = ("funnel, all time (admin)", "funnel, all time, one team (manager)", "salespeople, all time (admin)",
         "forecast, 6 months (admin)")


def timings(url: str, repeat: int) -> dict[str, float]:
    """The median seconds of every call on the database at ``url``, printed as each is timed."""
    admin = Engine.open(url, user="admin", create=False)
    manager = admin.as_user("manager1")
    out: dict[str, float] = {}
    try:
        with clock.frozen(NOW):
            calls = [(name, call) for name, call in reports(admin, manager) if name in TODAY]
            calls += [call for when in AS_OF for call in as_of_reports(admin, manager, when)]
            for name, call in calls:  # after a warm-up, as benchmarks.reports times them
                out[name] = median_seconds(lambda call=call: json.dumps(call()), repeat)
                print(f"{out[name]:7.2f} s  {name}", flush=True)
    finally:
        admin.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database", help="the SQLite file benchmarks.history_import made")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each call after its warm-up (median)")
    parser.add_argument("--pg", help="also on a copy of the database in this PostgreSQL database")
    parser.add_argument("--pg-schema", default="bench_history", help="the PostgreSQL schema of the copy")
    parser.add_argument("--pg-work-mem", help="PostgreSQL's work_mem for the calls there (e.g. 64kB)")
    args = parser.parse_args()
    if args.pg:
        print("SQLite:", flush=True)
    sqlite = timings(f"sqlite:///{args.database}", args.repeat)
    if not args.pg:
        return
    copy = copy_to_postgres(Path(args.database), args.pg, args.pg_schema,
                            log=lambda line: print(line, file=sys.stderr))  # stdout: the timings alone
    url = sa.engine.make_url(copy["url"])
    if args.pg_work_mem:
        url = url.update_query_dict({"options": f"{url.query['options']} -cwork_mem={args.pg_work_mem}"})
    print(f"PostgreSQL (work_mem {args.pg_work_mem or 'as the server has it'}):", flush=True)
    pg = timings(url.render_as_string(hide_password=False), args.repeat)
    print(f"\n{'SQLite':>8} {'PostgreSQL':>11}")
    for name, seconds in sqlite.items():
        print(f"{seconds:8.2f} {pg[name]:11.2f}  {name}")


if __name__ == "__main__":
    main()
