"""Board and stand-up timings over a large SQLite database (issue 4's figures).

    python -m benchmarks.board --leads 1000000            # builds benchmarks/out/board-1000000.db once
    python -m benchmarks.board --leads 20000 --fresh      # a quick look

Prints the median of several runs of: the stage counts (board with no lead lists), the full board
JSON (20 leads listed per stage), the same as a team manager, the daily stand-up of a team, and
``leadflow board --json`` as a whole process (Python start-up included).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.data import NOW, build, reusable
from engine import clock
from engine.api import Engine

OUT = Path(__file__).resolve().parent / "out"


def median_seconds(run: Callable[[], Any], repeat: int) -> float:
    run()  # warm the caches (the OS page cache, SQLite's, the engine's spec cache)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--fresh", action="store_true", help="rebuild the database even if it exists")
    args = parser.parse_args(argv)

    OUT.mkdir(exist_ok=True)
    path = OUT / f"board-{args.leads}.db"
    if args.fresh or not reusable(path):
        print(f"building {args.leads:,} open leads in {path} ...")
        info = build(path, args.leads)
        print(f"built in {info['build_seconds']:.1f} s")
    url = f"sqlite:///{path}"
    admin = Engine.open(url, user="admin")
    manager = admin.as_user("manager0")
    results: list[tuple[str, float]] = []
    with clock.frozen(NOW):
        results.append(("stage counts, all leads (admin)", median_seconds(
            lambda: admin.board(process="photovoltaics", limit=0), args.repeat)))
        results.append(("full board JSON, all leads (admin)", median_seconds(
            lambda: json.dumps(admin.board(process="photovoltaics", limit=20)), args.repeat)))
        results.append(("full board JSON, one team (manager)", median_seconds(
            lambda: json.dumps(manager.board(process="photovoltaics", limit=20)), args.repeat)))
        results.append(("daily stand-up, one team (manager)", median_seconds(
            lambda: json.dumps(manager.daily()), args.repeat)))
        board = admin.board(process="photovoltaics", limit=0)[0]
    env = {**os.environ, "LEADFLOW_DB": url, "LEADFLOW_USER": "admin", "LEADFLOW_NOW": NOW.isoformat()}
    command = [sys.executable, "-m", "cli.main", "board", "--json", "--process", "photovoltaics"]
    results.append(("`leadflow board --json` process (admin)", median_seconds(
        lambda: subprocess.run(command, env=env, check=True, capture_output=True), args.repeat)))
    admin.close()

    totals = board["totals"]
    print(f"\n{args.leads:,} leads: {totals['count']:,} open ({totals['red']:,} red, {totals['yellow']:,} yellow, "
          f"{totals['green']:,} green), median of {args.repeat} runs, SQLite")
    for name, seconds in results:
        print(f"  {name:<42} {seconds * 1000:8.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
