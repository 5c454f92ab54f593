"""The reports, the board and the views today and as of past days over a migrated history (issue 20): a database
made by ``benchmarks.history_import`` (its people and its now), each call timed after a warm-up.

    python -m benchmarks.history_import --deals 1000000 --no-raw --mix funnel   # then keep its database
    python -m benchmarks.history_reports benchmarks/out/history.db [--repeat N]

The calls are ``benchmarks.reports``' (``reports`` for today's funnel, salespeople and forecast; ``as_of_reports``
as of the day before the generator's now, a month back and six months back), as the admin and ``manager1``;
the median of ``--repeat`` runs is printed per call. Figures: docs/performance.md, "At a million migrated deals".
"""

from __future__ import annotations

import argparse
import json

from benchmarks.board import median_seconds
from benchmarks.history_data import NOW
from benchmarks.reports import as_of_reports, reports
from engine import clock
from engine.api import Engine

#: The instants timed: the day before the generator's now, a month back, six months back.
AS_OF = ("2026-03-01", "2026-02-01", "2025-09-02")
TODAY = ("funnel, all time (admin)", "funnel, all time, one team (manager)", "salespeople, all time (admin)",
         "forecast, 6 months (admin)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("database", help="the SQLite file benchmarks.history_import made")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each call after its warm-up (median)")
    args = parser.parse_args()
    admin = Engine.open(f"sqlite:///{args.database}", user="admin", create=False)
    manager = admin.as_user("manager1")
    try:
        with clock.frozen(NOW):
            calls = [(name, call) for name, call in reports(admin, manager) if name in TODAY]
            calls += [call for when in AS_OF for call in as_of_reports(admin, manager, when)]
            for name, call in calls:  # after a warm-up, as benchmarks.reports times them
                seconds = median_seconds(lambda call=call: json.dumps(call()), args.repeat)
                print(f"{seconds:7.2f} s  {name}", flush=True)
    finally:
        admin.close()


if __name__ == "__main__":
    main()
