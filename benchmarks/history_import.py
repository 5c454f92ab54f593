"""History import speed: ``import FILE --history`` of a generated CRM history (benchmarks/history_data.py) against
raw ``executemany`` of the same rows.

    python -m benchmarks.history_import --deals 100000
    python -m benchmarks.history_import --deals 1000000    # issue 20's target: under 5 minutes on SQLite
    python -m benchmarks.history_import --deals 1000000 --mix funnel    # about 10 events a deal, as the issue says
    python -m benchmarks.history_import --deals 1000000 --mix funnel --raw-last    # only the faster raw way

The import runs in this process as ``leadflow import --history`` runs it (``Engine.intake.import_csv`` with
``history=True``), printing its progress after each batch; the baseline is raw sqlite3 ``executemany`` of exactly
the rows the import wrote (read back from its database: clients, contacts, leads, their tasks, the projections,
the events, the closures and the leads' past) into the same tables of a fresh database with the same schema and
indexes, in one transaction, both ways: the indexes kept while inserting, and the big tables' secondary indexes
dropped and made again before the commit, as the import's bulk load does (engine/store/loading.py). A migration
runs worker processes beside its own (engine/intake/history_parallel.py): its CPU is theirs and its own.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import resource
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from benchmarks.data import out_dir
from benchmarks.history_data import FLOOR, MIXES, NOW, PROCESS, generate
from benchmarks.import_csv import raw_executemany_timed
from engine import clock, paths, store
from engine.api import Engine
from engine.intake import history_parallel
from engine.store import loading, remove_sqlite_files

TABLES: dict[str, str | None] = dict.fromkeys(("clients", "contacts", "leads", "lead_tasks", "lead_stages", "events",
                                                "ownerships", "stage_counts", "closures", "lead_spans", "lead_stays"))


def fresh_db(path: Path) -> str:
    """A fresh SQLite database: photovoltaics loaded and the history's sales floor."""
    remove_sqlite_files(path)
    url = f"sqlite:///{path}"
    admin = Engine.open(url, user="admin")
    with clock.frozen(NOW):
        admin.init()
        admin.load_process(paths.processes_dir() / f"{PROCESS}.yaml")
        with admin.transaction():
            for name, role, team in FLOOR:
                admin.add_user(name, role, team)
    admin.close()
    return url


def cpu_seconds() -> float:
    """The CPU time of this process and of its children that ended (the import's workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def measure(deals: int, *, raw: bool = True, mix: str = "even", raw_ways: tuple[bool, ...] = (False, True),
            ) -> dict[str, Any]:
    csv_path = out_dir() / (f"history-{deals}.csv" if mix == "even" else f"history-{deals}-{mix}.csv")
    if not csv_path.exists():
        started = time.perf_counter()
        generate(csv_path, deals, mix=mix)
        print(f"generated {csv_path.name}: {deals:,} deals ({csv_path.stat().st_size / 1e6:.0f} MB, "
              f"{time.perf_counter() - started:.0f} s)", file=sys.stderr)
    imported_db, baseline_db = out_dir() / "history.db", out_dir() / "history-baseline.db"
    admin = Engine.open(fresh_db(imported_db), user="admin")
    os.environ["LEADFLOW_NOW"] = NOW.isoformat()
    started = time.perf_counter()

    def progress(done: int, total: int, rows: int, rejected: int) -> None:
        spent = time.perf_counter() - started
        print(f"  {rows:>9,} deals  {100 * done / max(total, 1):5.1f}%  {spent:7.1f} s  "
              f"({rows / max(spent, 1e-9):,.0f} deals/s)", file=sys.stderr)

    bulk: list[bool] = []
    begin = loading.BulkLoad.begin

    def begin_told(load: loading.BulkLoad) -> None:
        bulk.append(True)
        print("  (a bulk load: the big tables' secondary indexes are made again at the end)", file=sys.stderr)
        begin(load)

    end = loading.BulkLoad.end

    def end_told(load: loading.BulkLoad) -> None:
        made = time.perf_counter()
        end(load)
        print(f"  (the indexes made again in {time.perf_counter() - made:.1f} s)", file=sys.stderr)

    alone = store.alone
    journal: list[bool] = []

    @contextlib.contextmanager
    def alone_told(conn: Connection, incoming_bytes: int) -> Iterator[bool]:
        with alone(conn, incoming_bytes) as took:
            journal.append(took)
            if took:
                print("  (alone on the database: a rollback journal, not the WAL)", file=sys.stderr)
            yield took

    parallel = history_parallel.read
    workers: list[int] = []

    def parallel_told(*args: Any) -> int:
        workers.append(len(args[-1]))
        print(f"  ({workers[-1]} worker processes check the rows and build the deals' rows)", file=sys.stderr)
        return parallel(*args)

    history_parallel.read = parallel_told  # type: ignore[assignment]
    loading.BulkLoad.begin = begin_told  # type: ignore[method-assign]
    loading.BulkLoad.end = end_told  # type: ignore[method-assign]
    store.alone = alone_told
    cpu = cpu_seconds()  # this process's CPU (SQLite's too) and its workers': fairer than the wall clock under load
    try:
        report = admin.intake.import_csv(csv_path, process=PROCESS, history=True, progress=progress)
    finally:
        loading.BulkLoad.begin = begin  # type: ignore[method-assign]
        loading.BulkLoad.end = end  # type: ignore[method-assign]
        store.alone = alone
        history_parallel.read = parallel
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    admin.close()
    raws, raw_cpu = {False: float("nan"), True: float("nan")}, {False: float("nan"), True: float("nan")}
    for way in raw_ways if raw else ():  # the same rows and final schema, the indexes kept / made at the end
        fresh_db(baseline_db)
        raws[way], raw_cpu[way] = raw_executemany_timed(imported_db, baseline_db, tables=TABLES, bulk=way,
                                                        journal=way and any(journal))
    with sqlite3.connect(imported_db) as db:
        events = db.execute("SELECT count(*) FROM events").fetchone()[0]
    measured = [seconds_ for seconds_ in raws.values() if not math.isnan(seconds_)]
    fastest = min(measured) if measured else float("nan")
    return {"deals": deals, "mix": mix, "import_s": seconds, "bulk": bool(bulk), "journal": any(journal),
            "workers": workers[0] if workers else 0,
            "raw_s": fastest, "raw_indexed_s": raws[False],
            "raw_bulk_s": raws[True], "ratio": seconds / fastest,
            "import_cpu_s": cpu, "raw_indexed_cpu_s": raw_cpu[False], "raw_bulk_cpu_s": raw_cpu[True], "events": events,
            "report": {k: report[k] for k in ("rows", "imported", "new_clients", "rejected")},
            "history": report["history"]}


def print_table(result: dict[str, Any]) -> None:
    report, h = result["report"], result["history"]
    print(f"\nleadflow import --history of {result['deals']:,} deals: {report['imported']:,} leads "
          f"({h['open']:,} open, {h['won']:,} won, {h['lost']:,} lost), {result['events']:,} events "
          f"({result['events'] / max(report['imported'], 1):.1f} per deal, {result['mix']} mix), "
          f"{report['new_clients']:,} new clients, {report['rejected']:,} rejected")
    way = "bulk load" if result["bulk"] else "indexes kept"
    if result["journal"]:
        way += ", rollback journal"
    if result["workers"]:
        way += f", {result['workers']} workers"
    print(f"  {'':<72} {'wall':>8}    {'CPU':>8}")
    print(f"  {f'leadflow import --history (SQLite, {way})':<72} {result['import_s']:8.1f} s  "
          f"{result['import_cpu_s']:8.1f} s  ({result['deals'] / result['import_s']:,.0f} deals/s)")
    print(f"  {'raw sqlite3 executemany of the same rows, indexes kept':<72} {result['raw_indexed_s']:8.1f} s  "
          f"{result['raw_indexed_cpu_s']:8.1f} s")
    print(f"  {'raw sqlite3 executemany of the same rows, indexes made last':<72} {result['raw_bulk_s']:8.1f} s  "
          f"{result['raw_bulk_cpu_s']:8.1f} s")
    print(f"  {'ratio (to the faster raw way measured)':<72} {result['ratio']:8.1f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--no-raw", action="store_true",
                        help="only the import (the raw baselines need two more copies of the database and their time)")
    parser.add_argument("--raw-last", action="store_true",
                        help="only the raw way with the indexes made at the end (the import's own, the faster one)")
    parser.add_argument("--mix", choices=sorted(MIXES), default="even",
                        help="the deals' way through the funnel (benchmarks/history_data.py): even (14.3 events a "
                             "deal, the earlier measurements) or funnel (most lost early: about 10, issue 20's figure)")
    args = parser.parse_args(argv)
    print_table(measure(args.deals, raw=not args.no_raw, mix=args.mix,
                        raw_ways=(True,) if args.raw_last else (False, True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
