"""CSV import speed: ``leadflow import`` of a realistic generated file against raw ``executemany`` of the same rows.

    python -m benchmarks.import_csv --rows 1000000     # the figure in docs/performance.md
    python -m benchmarks.import_csv --rows 100000      # a quick look

The file is what a prospect database exported from Excel looks like: UTF-8 with a BOM, semicolons, CRLF,
Polish, Russian and Romanian names, amounts written '12 500,50', some multi-line cells, about 2% rows
repeating an earlier person's e-mail or phone and 0.5% bad rows. The import runs as a user would run it
(``python -m cli.main import ... --json``, a child process, so its peak RSS is its own). The baseline is raw
sqlite3 ``executemany`` of exactly the rows the import wrote (read back from its database) into the same
tables of a fresh database with the same schema and indexes, in one transaction. With ``--pg URL`` the same
file is also imported into a fresh schema of that PostgreSQL database (its time and peak RSS; no raw baseline).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.data import FIRST_NAMES, LAST_NAMES, drop_postgres_schema, out_dir
from engine import clock, paths, store
from engine.api import Engine
from engine.store import remove_sqlite_files

NOW = dt.datetime(2026, 3, 16, 10, 0)
ROOT = Path(__file__).resolve().parent.parent
TABLES = {
    "clients": "id, name, company, email, phone, email_norm, phone_norm, created_at",
    "leads": None,  # every column
    "lead_tasks": "lead_id, stage, task_id, state, due_at, done_by, done_at, note",
    "lead_stages": None,  # the reports' projection: one row per lead for the stage it starts in
    "events": "id, lead_id, client_id, at, actor, kind, data_json",
    "ownerships": "id, client_id, lead_id, owner, started_at, how",
    "stage_counts": "process, stage, team, owner, leads, value_minor",
}
COMPANIES = ["", "", "", "Żółć sp. z o.o.", "Agro-Mărgărit SRL", "ООО «Сибирь»", "PV Dom s.c.", 'Firma "Słońce"']


def generate(path: Path, rows: int, seed: int = 11) -> dict[str, int]:
    """The CSV file; returns how many rows repeat a person and how many are bad."""
    rng = random.Random(seed)
    repeated = bad = 0
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        out = csv.writer(f, delimiter=";", lineterminator="\r\n")
        out.writerow(["Imię i nazwisko", "E-mail", "Telefon", "Firma", "Wartość", "Roof type", "roof_area_m2",
                      "owner", "Uwagi"])
        for i in range(rows):
            person = i
            if i > 100 and rng.random() < 0.02:
                person = rng.randrange(i)
                repeated += 1
            name = f"{FIRST_NAMES[person % len(FIRST_NAMES)]} {LAST_NAMES[person * 7 % len(LAST_NAMES)]}"
            email = f"{'osoba'}.{person}@przyklad.pl" if person % 5 else ""
            phone = f"+48 {600 + person % 99} {person // 1000 % 1000:03d} {person % 1000:03d}" if person % 3 else ""
            if person % 15 == 0:
                email = f"client{person}@example.ro"
            company = rng.choice(COMPANIES)
            if rng.random() < 0.001:
                company = "Oddział\nKraków"
            value = f"{rng.randint(5, 120) * 1000:,}".replace(",", " ") + ",00" if rng.random() < 0.7 else ""
            roof = rng.choice(["pitched", "flat", "ground", ""])
            area = str(rng.randint(20, 300)) if roof else ""
            owner = f"sales{rng.randrange(50):02d}" if rng.random() < 0.5 else ""
            if rng.random() < 0.005:
                bad += 1
                if rng.random() < 0.5:
                    email = "brak-maila"
                else:
                    roof = "thatched"
            out.writerow([name, email, phone, company, value, roof, area, owner, "notatka" if i % 10 == 0 else ""])
    return {"repeated": repeated, "bad": bad}


def fresh_db(path: Path) -> str:
    """A fresh SQLite database at ``path`` ready for the import (see ``prepare``); returns its URL."""
    remove_sqlite_files(path)
    return prepare(f"sqlite:///{path}")


def prepare(url: str) -> str:
    """Initialise the empty database at ``url``: photovoltaics loaded, a manager per team and 50 salespeople."""
    admin = Engine.open(url, user="admin")
    with clock.frozen(NOW - dt.timedelta(days=1)):
        admin.init()
        admin.load_process(paths.processes_dir() / "photovoltaics.yaml")
        with admin.transaction():
            for t in range(5):
                admin.add_user(f"manager{t}", "manager", f"team{t}")
            for i in range(50):
                admin.add_user(f"sales{i:02d}", "salesperson", f"team{i % 5}")
    admin.close()
    return url


def run_import(csv_path: Path, url: str) -> tuple[float, dict[str, Any], int]:
    """Wall seconds, the import's JSON report and the peak RSS (KiB) of ``leadflow import`` as a process."""
    from benchmarks.cli_latency import run_once

    env = {**os.environ, "LEADFLOW_NOW": NOW.isoformat(), "PYTHONPATH": str(ROOT)}
    seconds, peak_kib, out = run_once([sys.executable, "-m", "cli.main", "--db", url, "--user", "admin", "import",
                                       str(csv_path), "--process", "photovoltaics", "--json"], env, output=True)
    return seconds, json.loads(out), peak_kib


def raw_executemany(source: Path, target: Path, batch: int = 50_000,
                    tables: dict[str, str | None] = TABLES, *, bulk: bool = False) -> float:
    """Seconds to executemany the rows (``raw_executemany_timed``'s wall-clock seconds)."""
    return raw_executemany_timed(source, target, batch, tables, bulk=bulk)[0]


def raw_executemany_timed(source: Path, target: Path, batch: int = 50_000,
                          tables: dict[str, str | None] = TABLES, *, bulk: bool = False,
                          journal: bool = False) -> tuple[float, float]:
    """Seconds (wall clock, this process's CPU) to executemany the rows the import wrote (of ``tables``: their
    columns, None for all of them) into the same tables of a fresh database. ``bulk``: as the history import loads
    a large file (engine/store/loading.py), the secondary indexes of its big tables dropped in the transaction and
    created again before the commit, with its page cache, so that both end with one schema. ``journal``: through a
    rollback journal, as a migration alone on its database (``loading.alone``); else in WAL mode, whose checkpoint
    at the close is not timed."""
    from engine.store import loading

    src = sqlite3.connect(source)
    dst = sqlite3.connect(target, isolation_level=None)
    pragmas = ["journal_mode=DELETE" if journal else "journal_mode=WAL", "synchronous=FULL" if journal else
               "synchronous=NORMAL", "foreign_keys=ON", "cache_size=-65536"]
    if bulk:
        pragmas += [f"{name}={value}" for name, value in loading.PRAGMAS.items()]
    for pragma in pragmas:
        dst.execute(f"PRAGMA {pragma}")
    spent = cpu = 0.0
    started, cpu_started = time.perf_counter(), time.process_time()
    dst.execute("BEGIN IMMEDIATE")
    indexes = []
    if bulk:
        big = [t.name for t in loading.BIG_TABLES]
        indexes = [(name, sql) for name, table, sql in dst.execute(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            if table in big and not loading.kept_while_loading(sql)]
        for name, _ in indexes:
            dst.execute(f'DROP INDEX "{name}"')
    spent += time.perf_counter() - started
    cpu += time.process_time() - cpu_started
    for table, columns in tables.items():
        names = columns or ", ".join(r[1] for r in src.execute(f"PRAGMA table_info({table})"))
        marks = ", ".join("?" * len(names.split(",")))
        cursor = src.execute(f"SELECT {names} FROM {table}")
        while rows := cursor.fetchmany(batch):
            started, cpu_started = time.perf_counter(), time.process_time()
            dst.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
            spent += time.perf_counter() - started
            cpu += time.process_time() - cpu_started
    started, cpu_started = time.perf_counter(), time.process_time()
    for _, sql in indexes:
        dst.execute(sql)
    dst.execute("COMMIT")
    spent += time.perf_counter() - started
    cpu += time.process_time() - cpu_started
    src.close()
    if journal:
        dst.execute("PRAGMA journal_mode=WAL")
    dst.close()
    return spent, cpu


def prospects(rows: int, log: Callable[[str], None] = print) -> Path:
    """The generated file of ``rows`` rows in the data dir (made once)."""
    csv_path = out_dir() / f"prospects-{rows}.csv"
    if not csv_path.exists():
        started = time.perf_counter()
        made = generate(csv_path, rows)
        log(f"generated {csv_path.name}: {rows:,} rows, {made['repeated']:,} repeating a person, "
            f"{made['bad']:,} bad ({csv_path.stat().st_size / 1e6:.0f} MB, {time.perf_counter() - started:.0f} s)")
    return csv_path


def measure(rows: int, *, pg_url: str | None = None, pg_rows: int | None = None, pg_schema: str = "bench",
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """The import of a ``rows``-row file (generated once in the data dir) against raw executemany of the same
    rows; with ``pg_url`` also the import of a ``pg_rows``-row file (default ``rows``) into a fresh schema of
    that PostgreSQL database."""
    csv_path = prospects(rows, log)
    imported_db, baseline_db = out_dir() / "import.db", out_dir() / "import-baseline.db"
    seconds, report, peak_kib = run_import(csv_path, fresh_db(imported_db))
    fresh_db(baseline_db)
    raw = raw_executemany(imported_db, baseline_db)
    result: dict[str, Any] = {
        "rows": rows, "import_s": seconds, "raw_s": raw, "ratio": seconds / raw, "peak_rss_mib": peak_kib / 1024,
        "report": {k: report[k] for k in ("rows", "imported", "new_clients", "repeated_clients", "rejected")}}
    if pg_url:
        schema = f"{pg_schema}_import"
        url = prepare(store.postgres_schema(pg_url, schema, reset=True))
        pg_seconds, pg_report, pg_kib = run_import(prospects(pg_rows or rows, log), url)
        drop_postgres_schema(pg_url, schema)
        if pg_report["rows"] == report["rows"] and pg_report["imported"] != report["imported"]:
            raise RuntimeError(f"PostgreSQL imported {pg_report['imported']} leads, SQLite {report['imported']}")
        result["postgres"] = {"rows": pg_report["rows"], "imported": pg_report["imported"], "import_s": pg_seconds,
                              "peak_rss_mib": pg_kib / 1024}
    return result


def print_table(result: dict[str, Any]) -> None:
    report = result["report"]
    print(f"\nleadflow import of {result['rows']:,} rows: {report['imported']:,} leads, {report['new_clients']:,} new "
          f"clients, {report['repeated_clients']:,} repeated in the file, {report['rejected']:,} rejected")
    print(f"  {'leadflow import (SQLite)':<46} {result['import_s']:8.1f} s  "
          f"({result['rows'] / result['import_s']:,.0f} rows/s), peak RSS {result['peak_rss_mib']:.0f} MiB")
    print(f"  {'raw sqlite3 executemany of the same rows':<46} {result['raw_s']:8.1f} s")
    print(f"  {'ratio':<46} {result['ratio']:8.1f}x")
    if "postgres" in result:
        pg = result["postgres"]
        print(f"  {'leadflow import (PostgreSQL), ' + format(pg['rows'], ',') + ' rows':<46} "
              f"{pg['import_s']:8.1f} s  ({pg['rows'] / pg['import_s']:,.0f} rows/s), "
              f"peak RSS {pg['peak_rss_mib']:.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pg", default=os.environ.get("LEADFLOW_BENCH_PG_URL"),
                        help="also import into this PostgreSQL database (default: $LEADFLOW_BENCH_PG_URL)")
    parser.add_argument("--pg-rows", type=int, help="rows of the file imported into PostgreSQL (default: --rows)")
    args = parser.parse_args(argv)
    print_table(measure(args.rows, pg_url=args.pg, pg_rows=args.pg_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
