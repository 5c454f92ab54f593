"""How long ``leadflow check`` takes on a large database, beside two references timed in the same run (issue 15:
fast enough to run nightly on a million leads).

    python -m benchmarks.check --leads 100000     # builds history-100000.db in the data dir once, then times
    python -m benchmarks.check --leads 20000 --fresh

The database is ``benchmarks.data.build_history``'s (the reports' data: one process, every lead with its whole
event log and every projection). Timed, each once after a warm-up read of the file (the page cache warm, as
on a server that runs all day):

- ``PRAGMA integrity_check`` alone, SQLite's own reading of every page (part of ``check``);
- a full read of the event log (every row of ``events``, its JSON parsed): the least any comparison of the leads
  with their histories must do;
- ``eng.admin.check()``, all of it: integrity, every lead replayed and compared, every projection recounted.

The data dir is ``LEADFLOW_BENCH_DIR``, else benchmarks/out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.data import build_history, out_dir, reusable
from engine.api import Engine


def timed(call: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = call()
    return time.perf_counter() - started, value


def read_events(db: sa.Engine) -> int:
    n = 0
    with db.connect() as conn:
        for row in conn.exec_driver_sql("SELECT lead_id, kind, at, actor, data_json FROM events ORDER BY lead_id, id"):
            json.loads(row[4])
            n += 1
    return n


def integrity_check(db: sa.Engine) -> str:
    with db.connect() as conn:
        return str(conn.exec_driver_sql("PRAGMA integrity_check").scalar())


def run(path: Path, leads: int, fresh: bool) -> dict[str, Any]:
    if fresh or not reusable(path):
        print(f"building {leads:,} leads with their histories in {path} ...")
        build_history(path, leads)
    admin = Engine.open(f"sqlite:///{path}", user="admin")
    try:
        read_events(admin.db)  # warm the page cache
        integrity_seconds, integrity = timed(lambda: integrity_check(admin.db))
        events_seconds, events = timed(lambda: read_events(admin.db))
        check_seconds, report = timed(admin.admin.check)
    finally:
        admin.close()
    return {"leads": report["leads"], "events": events, "file_mb": round(path.stat().st_size / 1e6),
            "integrity_check_seconds": round(integrity_seconds, 2), "integrity_check": integrity,
            "read_events_seconds": round(events_seconds, 2), "check_seconds": round(check_seconds, 2),
            "check_ok": report["ok"], "differences": len(report["differences"]) + report["more"],
            "first_differences": [d["message"] for d in report["differences"][:5]],
            "per_million_leads_minutes": round(check_seconds / report["leads"] * 1e6 / 60, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--fresh", action="store_true", help="build the database again")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    figures = run(out_dir() / f"history-{args.leads}.db", args.leads, args.fresh)
    for key, value in figures.items():
        print(f"{key:28} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0 if figures["check_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
