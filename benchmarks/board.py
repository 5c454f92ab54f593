"""Board and stand-up timings over a large SQLite database (issue 4's figures).

    python -m benchmarks.board --leads 1000000            # builds benchmarks/out/board-1000000.db once
    python -m benchmarks.board --leads 20000 --fresh      # a quick look

Prints the median of several runs of: the stage counts (board with no lead lists), the full board
JSON (20 leads listed per stage), the same as a team manager, the daily stand-up of a team, and
``leadflow board --json`` as a whole process (Python start-up included) with its peak memory (RSS).
The database is kept in the data dir (``LEADFLOW_BENCH_DIR``, else benchmarks/out).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.data import NOW, build, out_dir, reusable
from engine import clock
from engine.api import Engine

ROOT = Path(__file__).resolve().parent.parent


def median_seconds(run: Callable[[], Any], repeat: int) -> float:
    run()  # warm the caches (the OS page cache, SQLite's, the engine's spec cache)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def board_timings(admin: Engine, manager: Engine, repeat: int) -> dict[str, float]:
    """Median seconds of the board's engine calls (what ``leadflow board`` and ``daily`` run), as of NOW."""
    with clock.frozen(NOW):
        return {
            "stage counts, all leads (admin)": median_seconds(
                lambda: admin.board(process="photovoltaics", limit=0), repeat),
            "full board JSON, all leads (admin)": median_seconds(
                lambda: json.dumps(admin.board(process="photovoltaics", limit=20)), repeat),
            "full board JSON, one team (manager)": median_seconds(
                lambda: json.dumps(manager.board(process="photovoltaics", limit=20)), repeat),
            "daily stand-up, one team (manager)": median_seconds(lambda: json.dumps(manager.daily()), repeat),
        }


def process_timing(url: str, command: list[str], repeat: int) -> dict[str, float]:
    """Median wall seconds and peak RSS (MiB) of ``leadflow COMMAND`` as a whole process, as the admin."""
    from benchmarks.cli_latency import run_once

    env = {**os.environ, "PYTHONPATH": str(ROOT), "LEADFLOW_DB": url, "LEADFLOW_USER": "admin",
           "LEADFLOW_NOW": NOW.isoformat()}
    argv = [sys.executable, "-m", "cli.main", *command]
    run_once(argv, env)  # warm-up
    runs = [run_once(argv, env) for _ in range(repeat)]
    return {"median_s": statistics.median(r[0] for r in runs), "peak_rss_mib": max(r[1] for r in runs) / 1024}


def measure(leads: int, repeat: int, *, fresh: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The board's figures over ``leads`` open leads (``benchmarks.data.build``, made once in the data dir)."""
    path = out_dir() / f"board-{leads}.db"
    if fresh or not reusable(path):
        log(f"building {leads:,} open leads in {path} ...")
        info = build(path, leads, log=log)
        log(f"built in {info['build_seconds']:.1f} s")
    url = f"sqlite:///{path}"
    admin = Engine.open(url, user="admin")
    try:
        seconds = board_timings(admin, admin.as_user("manager0"), repeat)
        with clock.frozen(NOW):
            totals = admin.board(process="photovoltaics", limit=0)[0]["totals"]
    finally:
        admin.close()
    board_process = process_timing(url, ["board", "--json", "--process", "photovoltaics"], repeat)
    return {"leads": leads, "repeat": repeat, "seconds": seconds, "board_process": board_process,
            "totals": {k: totals[k] for k in ("count", "red", "yellow", "green")}}


def print_table(result: dict[str, Any]) -> None:
    totals = result["totals"]
    print(f"\n{result['leads']:,} leads: {totals['count']:,} open ({totals['red']:,} red, {totals['yellow']:,} yellow, "
          f"{totals['green']:,} green), median of {result['repeat']} runs, SQLite")
    for name, seconds in result["seconds"].items():
        print(f"  {name:<42} {seconds * 1000:8.0f} ms")
    process = result["board_process"]
    print(f"  {'`leadflow board --json` process (admin)':<42} {process['median_s'] * 1000:8.0f} ms, "
          f"peak RSS {process['peak_rss_mib']:.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--fresh", action="store_true", help="rebuild the database even if it exists")
    args = parser.parse_args(argv)
    print_table(measure(args.leads, args.repeat, fresh=args.fresh))
    return 0


if __name__ == "__main__":
    sys.exit(main())
