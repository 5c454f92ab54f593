"""Search at a million clients: ``python -m benchmarks.search [--clients N] [--pg URL] [--data-dir DIR]``.

Builds N clients (default 1,000,000: names from PL, RO and RU name lists with their diacritics, companies,
e-mails, phones of the three countries) with the store's bulk helper (``store.insert_clients``, the rows an import
writes), then times typical searches through ``eng.search.find`` as an admin (every client searched): exact
name, prefix, diacritics forgotten, a phone in another format, and a partial match, each the median of 15 runs
beside the 50 ms target. With ``--pg URL`` (or $LEADFLOW_TEST_PG_URL) also on PostgreSQL, in a schema of its own:
the SQLite database copied there with COPY (``benchmarks.data.copy_to_postgres``), indexes built after the rows.
On SQLite the FTS5 table of partial matches is filled once after the rows (its trigger is dropped while they go
in, then made again), not row by row.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import time
from pathlib import Path

from benchmarks import data
from engine import store
from engine.api import Engine

TARGET_MS = 50.0
FIRST = ["Łukasz", "Jan", "Anna", "Żaneta", "Ștefan", "Ioana", "Mihai", "Andreea", "Жанна", "Иван", "Ольга",
         "Сергей", "Grzegorz", "Małgorzata", "Radu", "Elena"]
LAST = ["Żółć", "Kowalski", "Nowak", "Wiśniewska", "Popescu", "Ionescu", "Țurcanu", "Dumitrescu", "Иванова",
        "Петров", "Смирнова", "Brzęczyszczykiewicz", "Lewandowska", "Constantinescu", "Кузнецов", "Szymańska"]
QUERIES = {"exact": "Grzegorz Brzęczyszczykiewicz 4711", "prefix": "grzegorz brz", "diacritics": "zolc",
           "phone": "601-222-333", "partial": "czykiewicz 471"}


def build(url: str, clients: int, seed: int = 18) -> None:
    """The schema and ``clients`` clients, in batches of 20,000 through the bulk helper."""
    admin = Engine.open(url, user="root")
    admin.init()
    rng = random.Random(seed)
    at = store.driver_value
    with admin.db.begin() as conn:
        fts_trigger = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'client_search_insert'").scalar()
        if fts_trigger is not None:  # the index is filled once after the rows, not row by row
            conn.exec_driver_sql("DROP TRIGGER client_search_insert")
        created = at(conn, store.clients.c.created_at, dt.datetime(2026, 1, 5, 9, 0))
        ids = store.reserve_ids(conn, store.clients, clients + 2)  # from the sequence on PostgreSQL
        batch = []
        for i in range(1, clients + 1):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            name = f"{first} {last} {i}"
            country = i % 3
            phone = (f"+48{600_000_000 + i}" if country == 0 else f"+40{721_000_000 + i}" if country == 1
                     else f"+7{9_120_000_000 + i}")
            company = f"{last} Solar {i % 5000}" if i % 4 == 0 else None
            batch.append(store.client_row(ids[i - 1], name=name, company=company, email=f"client{i}@example.com",
                                          phone=phone, tax_id=None, created_at=created))
            if len(batch) == 20_000:
                store.insert_clients(conn, batch)
                batch = []
        store.insert_clients(conn, batch)
        # the searched-for ones, as a salesperson would type them
        store.insert_clients(conn, [
            store.client_row(ids[-2], name="Łukasz Żółć", company=None, email=None, phone="+48601222333",
                             tax_id=None, created_at=created),
            store.client_row(ids[-1], name="Grzegorz Brzęczyszczykiewicz 4711", company=None, email=None,
                             phone=None, tax_id=None, created_at=created)])
        if fts_trigger is not None:
            conn.exec_driver_sql("INSERT INTO client_search(client_search) VALUES ('rebuild')")
            conn.exec_driver_sql(fts_trigger)
    admin.close()


def measure(url: str, runs: int = 15) -> dict[str, tuple[float, int]]:
    """Each query's median time in ms and its number of hits."""
    admin = Engine.open(url, user="root")
    out = {}
    for kind, text in QUERIES.items():
        admin.search.find(text)  # warm the caches, as a server would be
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            hits = admin.search.find(text)
            times.append((time.perf_counter() - started) * 1000)
        out[kind] = (statistics.median(times), len(hits))
    admin.close()
    return out


def report(label: str, figures: dict[str, tuple[float, int]]) -> None:
    for kind, (ms, hits) in figures.items():
        verdict = "met" if ms <= TARGET_MS else "NOT met"
        print(f"{label:10} {kind:10} {QUERIES[kind]!r:40} {ms:8.1f} ms  ({hits} hits)  target {TARGET_MS:.0f} ms: "
              f"{verdict}", flush=True)


def run(clients: int, *, data_dir: Path, pg_url: str | None = None, pg_schema: str = "bench_search",
        reuse: bool = False) -> dict[str, dict[str, dict[str, float]]]:
    """Build and measure on SQLite (in ``data_dir``), and on PostgreSQL at ``pg_url`` in ``pg_schema`` (dropped
    after); prints each figure beside the target and returns them by database and query."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"search_{clients}.db"
    if not (reuse and path.exists()):
        store.remove_sqlite_files(path)
    url = f"sqlite:///{path}"
    out: dict[str, dict[str, dict[str, float]]] = {}
    if not (reuse and path.exists()):
        started = time.perf_counter()
        build(url, clients)
        print(f"built {clients:,} clients on sqlite in {time.perf_counter() - started:.0f} s", flush=True)
    figures = measure(url)
    report("sqlite", figures)
    out["sqlite"] = {kind: {"median_ms": ms, "hits": hits} for kind, (ms, hits) in figures.items()}
    if pg_url:
        try:
            copied = data.copy_to_postgres(path, pg_url, pg_schema, fresh=True, log=lambda line: None)
            print(f"copied {clients:,} clients to postgresql in {copied['copy_seconds']:.0f} s", flush=True)
            figures = measure(copied["url"])
            report("postgresql", figures)
            out["postgresql"] = {kind: {"median_ms": ms, "hits": hits} for kind, (ms, hits) in figures.items()}
        finally:
            data.drop_postgres_schema(pg_url, pg_schema)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--pg", default=os.environ.get("LEADFLOW_TEST_PG_URL"), metavar="URL")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("LEADFLOW_BENCH_DIR", "benchmarks/out")))
    parser.add_argument("--reuse", action="store_true", help="measure the SQLite database an earlier run built")
    args = parser.parse_args(argv)
    run(args.clients, data_dir=args.data_dir, pg_url=args.pg or None, reuse=args.reuse)


if __name__ == "__main__":
    main()
