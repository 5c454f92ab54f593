"""What assignment rules and stage actions cost a bulk import, and how fast run-due sends.

    python -m benchmarks.automation --leads 1000000 --mails 2000   # the figures in docs/performance.md
    python -m benchmarks.automation --leads 20000 --mails 200      # a quick look

Part 1, the bulk hooks the CSV import calls for every new lead (engine.assignment, engine.actions): on a
fresh SQLite database with 50 salespeople in 5 teams, a photovoltaics version whose rules place leads by
region (5 teams, a cap of 100,000) and whose first stage mails the client on entry. The new leads' states
are built first (the importer's own work, not timed), then timed separately:

- ``Assigner.load_for`` + ``place`` + ``Placement.apply_to`` for every lead, then ``save``;
- ``actions.on_enter`` for every lead (one outbox row each);
- ``actions.store`` of all those rows, in one transaction.

Part 2, ``Engine.run_due`` sending ``--mails`` welcome mails to a local aiosmtpd server (one SMTP session;
each mail is claimed, rendered, sent and marked in its own transactions).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from engine import actions, clock, paths, store
from engine.api import Engine
from engine.assignment import Assigner
from engine.state import Event, apply

NOW = dt.datetime(2026, 3, 2, 9, 0)
REGIONS = ["pomorskie", "mazowieckie", "malopolskie", "slaskie", "wielkopolskie"]


def process_file(folder: Path) -> Path:
    text = (paths.processes_dir() / "photovoltaics.yaml").read_text(encoding="utf-8")
    marker = "  - {id: offer_value,"
    text = text.replace(marker, "  - {id: region, label: Region, type: choice, options: [" + ", ".join(REGIONS)
                        + "]}\n" + marker)
    checks = ("      - {id: check_history, name: Check the client's earlier leads, owner: salesperson, "
              "mandatory: false}\n")
    text = text.replace(checks, checks + "    on_enter:\n      - send_email: {template: welcome, to: client}\n")
    rules = "".join(f"    - team: team{i}\n      when: {{field: region, op: eq, value: {r}}}\n"
                    for i, r in enumerate(REGIONS))
    path = folder / "photovoltaics.yaml"
    path.write_text(text + f"\nassignment:\n  max_open: 100000\n  rules:\n{rules}", encoding="utf-8")
    return path


def setup(db: Path) -> Engine:
    admin = Engine.open(f"sqlite:///{db}", user="root")
    with clock.frozen(NOW):
        admin.init()
        admin.load_process(process_file(db.parent))
        with admin.transaction():
            for t in range(5):
                admin.add_user(f"manager{t}", "manager", f"team{t}", email=f"manager{t}@example.pl")
            for i in range(50):
                admin.add_user(f"sales{i:02d}", "salesperson", f"team{i % 5}", email=f"sales{i:02d}@example.pl")
    return admin


def hooks(admin: Engine, leads: int) -> None:
    rng = random.Random(7)
    spec = admin.spec("photovoltaics")
    lookup = admin._specs_lookup  # the importer has its own lookup; the benchmark borrows the engine's
    started = time.perf_counter()
    with admin.transaction() as conn:
        specs = lookup(conn)
        states, events = [], []
        for i in range(leads):
            created = Event("created", NOW, "import", {
                "client_id": i + 1, "process": spec.id, "process_version": 1, "owner": None, "team": None,
                "source": "import", "product": None, "value_minor": None,
                "fields": {"region": REGIONS[rng.randrange(5)]}})
            state = apply(None, created, specs)
            state.id = i + 1  # the importer knows its ids after its executemany
            states.append(state)
            events.append(created)
        gc.freeze()  # the states built above are long-lived: keep the collector from rescanning them
        built = time.perf_counter()
        print(f"{leads:,} new lead states built in {built - started:.1f} s (the importer's work, not timed below)")

        t0 = time.perf_counter()
        assigner = Assigner.load_for(conn, spec)
        for state, created in zip(states, events, strict=True):
            assigner.place(state).apply_to(state, created)
        assigner.save(conn)
        t1 = time.perf_counter()
        entries = []
        for state, created in zip(states, events, strict=True):
            entry = actions.on_enter(spec, state, created.at)
            entry.record_on(created)
            entries.append(entry)
        t2 = time.perf_counter()
        # the outbox rows need their leads (a foreign key): the importer writes its leads first
        conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")  # checked at commit; rolled back below
        t3 = time.perf_counter()
        stored = actions.store(conn, entries)
        t4 = time.perf_counter()
        conn.rollback()
    owners = Counter(s.owner for s in states)
    print(f"assignment: {t1 - t0:.2f} s ({(t1 - t0) / leads * 1e6:.1f} us a lead); "
          f"{len(owners)} owners, {min(owners.values()):,} to {max(owners.values()):,} leads each")
    print(f"on_enter:   {t2 - t1:.2f} s ({(t2 - t1) / leads * 1e6:.1f} us a lead)")
    print(f"store:      {t4 - t3:.2f} s for {stored:,} outbox rows ({(t4 - t3) / max(stored, 1) * 1e6:.1f} us a row)")


def run_due(admin: Engine, mails: int) -> None:
    import os

    from tests.smtp import Inbox, Server, free_port

    anna = admin.as_user("manager0")
    with clock.frozen(NOW), anna.transaction():
        for i in range(mails):
            anna.add_lead(process="photovoltaics", name=f"Klient {i} Żółć", email=f"k{i}@example.pl",
                          fields={"region": "pomorskie"})
    inbox = Inbox()
    server = Server(inbox, free_port()).start()
    os.environ.update({"LEADFLOW_SMTP_HOST": "127.0.0.1", "LEADFLOW_SMTP_PORT": str(server.port),
                       "LEADFLOW_SMTP_SECURITY": "none", "LEADFLOW_SMTP_FROM": "Sales <sales@example.com>"})
    try:
        with clock.frozen(NOW):
            started = time.perf_counter()
            result = admin.run_due()
            took = time.perf_counter() - started
    finally:
        server.stop()
    print(f"run-due:    {result['sent']:,} mails sent in {took:.2f} s ({result['sent'] / took:.0f} mails/s); "
          f"the server received {len(inbox.received):,}")
    with admin.transaction() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.outbox)
                            .where(store.outbox.c.state == "sent")).scalar_one() == mails


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--mails", type=int, default=500)
    args = parser.parse_args()
    os_tz = "Europe/Warsaw"
    import os

    os.environ.setdefault("LEADFLOW_TZ", os_tz)
    with tempfile.TemporaryDirectory(prefix="leadflow-automation-") as folder:
        admin = setup(Path(folder) / "leadflow.db")
        try:
            hooks(admin, args.leads)
            run_due(admin, args.mails)
        finally:
            admin.close()


if __name__ == "__main__":
    main()
