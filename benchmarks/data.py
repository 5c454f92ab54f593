"""Build a large, realistic leadflow database quickly, with the engine's own rules for dates and lights.

Rows are written with executemany (building a million leads through the API would take the better
part of an hour), but every derived column comes from the engine's code: the stage and task deadlines
from ``engine.calendar.due_at`` and the light thresholds from ``engine.state.refresh_signal``, so
the data is what the engine itself would have stored.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from pathlib import Path
from typing import Any

from engine import calendar, clock, paths, store
from engine.api import Engine
from engine.state import LeadState, TaskState, refresh_signal
from engine.store import recount, remove_sqlite_files
from engine.store.schema import UNMODELLED

NOW = dt.datetime(2026, 3, 16, 10, 0)
FIRST_NAMES = ["Łukasz", "Zofia", "Ștefan", "Ioana", "Жанна", "Agnieszka", "Mihai", "Paweł", "Elena", "Grzegorz",
               "Małgorzata", "Andrei", "Ольга", "Tomasz", "Bogdan", "Dorota"]
LAST_NAMES = ["Żółć", "Kamińska", "Popescu", "Mărgărit", "Смирнова", "Wiśniewska", "Ionescu", "Nowak",
              "Vasilescu", "Brzęczyszczykiewicz", "Kowalczyk", "Dumitrescu", "Кузнецова", "Wójcik", "Lăcătuș"]
SOURCES = ["referral", "organic", "paid_campaign", "mailing", "import", "web_form"]


def out_dir() -> Path:
    """Where the benchmarks keep their databases and generated files: ``LEADFLOW_BENCH_DIR`` (``python -m
    benchmarks --data-dir``), else ``benchmarks/out``. Large data built once is reused from there."""
    path = Path(os.environ.get("LEADFLOW_BENCH_DIR") or Path(__file__).resolve().parent / "out")
    path.mkdir(parents=True, exist_ok=True)
    return path


def reusable(path: Path) -> bool:
    """Whether a database built earlier can be used again: it exists and has a leadflow schema. One built at an
    older revision is upgraded in place, as ``leadflow init`` upgrades a user's database (migrations keep the
    data), rather than rebuilt: a million leads with their histories take most of an hour to build."""
    if not path.exists():
        return False
    import sqlalchemy as sa

    from engine import migrate

    db = sa.create_engine(f"sqlite:///{path}")
    try:
        current = migrate.current_revision(db)
        if current is None:
            return False
        if current != migrate.head_revision():
            migrate.upgrade(db)
        return True
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        db.dispose()


def _fresh_database(path: Path, process: str | tuple[str, ...], salespeople: int, teams: int, *,
                    since: dt.datetime) -> tuple[Engine, list[tuple[str, str]]]:
    """An initialised SQLite database at ``path`` (replacing any), the process (or processes) loaded, a manager per
    team and the salespeople spread over the teams, all as of ``since``; returns the admin's engine and
    (salesperson, team)."""
    remove_sqlite_files(path)
    admin = Engine.open(f"sqlite:///{path}", user="admin")
    people = [(f"sales{i:02d}", f"team{i % teams}") for i in range(salespeople)]
    with clock.frozen(since):
        admin.init()
        for name in (process,) if isinstance(process, str) else process:
            admin.load_process(paths.processes_dir() / f"{name}.yaml")
        with admin.transaction():
            for t in range(teams):
                admin.add_user(f"manager{t}", "manager", f"team{t}")
            for name, team in people:
                admin.add_user(name, "salesperson", team)
    return admin, people


def build(path: Path, leads: int, *, process: str | tuple[str, ...] = "photovoltaics", salespeople: int = 50,
          teams: int = 5, seed: int = 7, open_share: float = 1.0, contact_share: float = 0.0,
          log: Any = print) -> dict[str, Any]:
    """A fresh SQLite database at ``path`` with ``leads`` leads of ``process`` (``open_share`` of them open); of
    several processes (a tuple), each lead of one drawn at random; ``contact_share`` of the open leads with a
    booked next contact within a week either side of NOW (a missed one makes a lead red, one due today yellow)."""
    admin, people = _fresh_database(path, process, salespeople, teams, since=NOW - dt.timedelta(days=400))
    rng = random.Random(seed)
    specs = [admin.spec(name) for name in ((process,) if isinstance(process, str) else process)]
    spec = specs[0]
    version = 1
    started = time.perf_counter()
    due_cache: dict[tuple[str, dt.date, int], dt.datetime] = {}

    def due(entered: dt.datetime, days: int) -> dt.datetime:
        key = (spec.id, entered.date(), days)
        if key not in due_cache:
            due_cache[key] = calendar.due_at(entered, days, spec.calendar)
        return due_cache[key]

    raw = admin.db.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("BEGIN")
        batch = 50_000
        for start in range(0, leads, batch):
            n = min(batch, leads - start)
            clients_rows, lead_rows, task_rows = [], [], []
            for i in range(start, start + n):
                lead_id = i + 1
                if len(specs) > 1:  # one process keeps the sequence (and so the data) of earlier runs
                    spec = specs[rng.randrange(len(specs))]
                owner, team = people[rng.randrange(salespeople)]
                # Time in the current stage: mostly within its deadline, a third or so past it (red);
                # before that, a plausible time in each earlier stage.
                stage_index = min(int(rng.expovariate(0.7)), len(spec.stages) - 1)
                stage = spec.stages[stage_index]
                span = stage.deadline_days * 1.4  # business days -> calendar days
                entered = (NOW - dt.timedelta(days=rng.uniform(0, 1.5 * span))).replace(microsecond=0)
                earlier = sum(rng.uniform(0.3, 1.3) * s.deadline_days * 1.4 for s in spec.stages[:stage_index])
                created = entered - dt.timedelta(days=earlier + rng.choice([0, 0, 0, 5, 20, 60]))
                status = "open" if rng.random() < open_share else rng.choice(["won", "lost", "lost", "lost"])
                name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
                clients_rows.append((lead_id, name, None, f"c{lead_id}@example.pl", None, f"c{lead_id}@example.pl",
                                     None, created))
                state = LeadState(
                    id=lead_id, client_id=lead_id, process=spec.id, process_version=version, stage=stage.id,
                    status=status, owner=owner, team=team, source=rng.choice(SOURCES), product=spec.title,
                    value_minor=rng.randint(5, 120) * 100_000, fields={}, created_at=created,
                    stage_entered_at=entered, stage_due_at=due(entered, stage.deadline_days),
                    last_activity_at=entered, owner_since=created)
                for task in stage.all_tasks:
                    done = rng.random() < 0.4
                    state.tasks[(stage.id, task.id)] = TaskState(
                        stage.id, task.id, "done" if done else "open",
                        due(entered, task.deadline_days or stage.deadline_days),
                        done_by=owner if done else None, done_at=entered if done else None)
                refresh_signal(state, spec)
                if contact_share and status == "open" and rng.random() < contact_share:
                    state.next_contact_at = (NOW + dt.timedelta(hours=rng.uniform(-7 * 24, 7 * 24))).replace(
                        second=0, microsecond=0)
                closed = NOW - dt.timedelta(days=rng.randint(0, 30)) if status != "open" else None
                reason = rng.choice(spec.closure_reasons).id if status == "lost" else None
                lead_rows.append((lead_id, lead_id, spec.id, version, stage.id, status, owner, team, state.source,
                                  state.product, state.value_minor, "{}", created, entered, state.stage_due_at,
                                  entered, created, closed, reason, None, stage.id if closed else None,
                                  state.red_at, state.next_contact_at, 1))
                task_rows.extend((lead_id, t.stage, t.id, t.state, t.due_at, t.done_by, t.done_at, None)
                                 for t in state.tasks.values())
            cur.executemany("INSERT INTO clients (id, name, company, email, phone, email_norm, phone_norm, "
                            "created_at) VALUES (?,?,?,?,?,?,?,?)", _iso(clients_rows))
            cur.executemany(
                "INSERT INTO leads (id, client_id, process, process_version, stage, status, owner, team, source, "
                "product, value_minor, fields_json, created_at, stage_entered_at, stage_due_at, last_activity_at, "
                "owner_since, closed_at, close_reason, close_note, closed_from_stage, red_at, "
                "next_contact_at, row_version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                _iso(lead_rows))
            cur.executemany("INSERT INTO lead_tasks (lead_id, stage, task_id, state, due_at, done_by, done_at, note) "
                            "VALUES (?,?,?,?,?,?,?,?)", _iso(task_rows))
            log(f"  {start + n:,} leads written ({time.perf_counter() - started:.0f} s)")
        cur.execute("COMMIT")
        cur.execute("ANALYZE")
    finally:
        raw.close()
    with admin.db.begin() as conn:
        recount(conn)
    admin.close()
    return {"url": f"sqlite:///{path}", "process": process, "leads": leads,
            "build_seconds": time.perf_counter() - started}


def _iso(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Date-times as SQLAlchemy's SQLite dialect stores them."""
    return [tuple(v.isoformat(sep=" ", timespec="microseconds") if isinstance(v, dt.datetime) else v for v in r)
            for r in rows]



# -- leads with histories (the reports' benchmark) -----------------------------------------------------------

#: Chance that a lead leaves each photovoltaics stage by being closed (else it advances; from the last stage
#: it is won): about 14% of the leads that close are won.
LOSS_BY_STAGE = (0.3, 0.35, 0.4, 0.35, 0.3)
REOPEN_SHARE = 0.05  # of the lost leads, reopened by a manager into the stage they were lost in
ROTATE_SHARE = 0.04  # of the leads, rotated once to a colleague of the same team
FIELDS = {"roof_type": ["pitched", "flat"], "roof_area_m2": [25, 40, 60], "financing": ["cash", "loan", "leasing"]}


def simulate(lead_id: int, rng: random.Random, spec: Any, version: int, people: list[tuple[str, str]],
             by_team: dict[str, list[str]], specs: Any) -> tuple[list[Any], Any, list[dict[str, Any]], Any]:
    """One lead's life as events, from its creation (within the two years before NOW) until it is won, lost
    for good or NOW comes: tasks done, fields set, stages advanced, closings, reopenings, rotations. Returns
    the events, the final state (``state.apply``, as the engine applies them), its closures rows and its stage
    visits (``engine.visits``, as the write path follows them)."""
    from engine import visits
    from engine.state import Event, apply
    from engine.vocab import LeadStatus

    owner, team = people[rng.randrange(len(people))]
    # two years of inquiries, a third of them in the last quarter (a growing business): most of the older ones
    # are closed by now, the recent ones still in the funnel
    at = (NOW - dt.timedelta(days=rng.uniform(0, 90 if rng.random() < 0.3 else 730))).replace(microsecond=0)
    created = Event("created", at, owner, {
        "client_id": lead_id, "process": spec.id, "process_version": version, "owner": owner, "team": team,
        "source": rng.choice(SOURCES), "product": spec.title, "value_minor": rng.randint(5, 120) * 100_000,
        "fields": {}}, lead_id=lead_id)
    evs = [created]
    state = apply(None, created, specs)
    stays: dict[str, Any] = {}
    visits.follow(stays, visits.moves(None, state))
    closings: list[dict[str, Any]] = []
    rotate_at = rng.randrange(len(spec.stages)) if rng.random() < ROTATE_SHARE else None

    def emit(kind: str, when: dt.datetime, actor: str, data: dict[str, Any]) -> bool:
        nonlocal state
        if when > NOW:
            return False
        ev = Event(kind, when, actor, data, lead_id=lead_id)
        evs.append(ev)
        before = visits.position(state)
        state = apply(state, ev, specs)
        visits.follow(stays, visits.moves(before, state))
        return True

    while True:
        index = spec.stage_ids.index(state.stage)
        stage = spec.stages[index]
        stay = dt.timedelta(days=rng.uniform(0.3, 1.5) * stage.deadline_days * 1.4)
        end = at + stay
        if rotate_at == index:
            rotate_at = None
            colleagues = [p for p in by_team[state.team or ""] if p != state.owner]
            when = at + stay / 3
            rest = when + dt.timedelta(days=spec.cool_off_days)
            if colleagues and not emit("rotated", when, "manager0", {
                    "from": state.owner, "to": rng.choice(colleagues), "team": state.team,
                    "rest_until": rest.isoformat()}):
                return evs, state, closings, stays
            at, end = rest, rest + stay  # the new owner starts the stage afresh after the rest
        todo = [tid for (sid, tid), task in sorted(state.tasks.items())
                if sid == stage.id and task.state == "open" and stage.task(tid).mandatory]  # type: ignore[union-attr]
        for tid, share in zip(todo, sorted(rng.uniform(0.05, 0.9) for _ in todo), strict=True):
            if not emit("task_done", at + (end - at) * share, state.owner or owner,
                        {"stage": stage.id, "task": tid, "note": None}):
                return evs, state, closings, stays
        for name in stage.required_fields:
            if name not in state.fields:
                value = rng.choice(FIELDS.get(name, ["x"]))
                if not emit("field_set", at + (end - at) * 0.95, state.owner or owner,
                            {"field": name, "before": None, "after": value}):
                    return evs, state, closings, stays
        if rng.random() < LOSS_BY_STAGE[index]:
            reason = rng.choice(spec.closure_reasons)
            if not emit("closed", end, state.owner or owner, {"reason": reason.id, "kind": reason.kind, "note": None,
                                                              "from": stage.id, "review": reason.review}):
                return evs, state, closings, stays
            closings.append({"lead_id": lead_id, "client_id": lead_id, "process": spec.id, "reason": reason.id,
                             "kind": reason.kind, "owner": state.owner, "team": state.team,
                             "product": state.product, "value_minor": state.value_minor, "stage": stage.id,
                             "closed_at": end, "reopened_at": None})
            back = end + dt.timedelta(days=rng.uniform(10, 40))
            if rng.random() < REOPEN_SHARE and emit("reopened", back, "manager0", {
                    "to": stage.id, "from_status": "lost", "resume": True}):
                closings[-1]["reopened_at"] = back
                at = back
                continue
            return evs, state, closings, stays
        if stage.id == spec.won_stage:
            emit("won", end, state.owner or owner, {"from": stage.id})
            return evs, state, closings, stays
        if not emit("advanced", end, state.owner or owner, {"from": stage.id, "to": stage.next[0].stage}):
            return evs, state, closings, stays
        assert state.status == LeadStatus.OPEN
        at = end


def build_history(path: Path, leads: int, *, process: str = "photovoltaics", salespeople: int = 50,
                  teams: int = 5, seed: int = 11, log: Any = print) -> dict[str, Any]:
    """A fresh SQLite database at ``path`` with ``leads`` leads of ``process``, each with a realistic history
    (``simulate``): every row the engine would write for those events, written in bulk. The lead rows are
    ``state.apply``'s, the ``lead_stages`` rows ``engine.visits``' (the write path's moves) and the ownerships
    ``store``'s own, so the reports read what the engine itself would have stored. ``rebuild_stages`` run on the
    result writes the same ``lead_stages`` (``python -m benchmarks.reports --check``)."""

    admin, people = _fresh_database(path, process, salespeople, teams, since=NOW - dt.timedelta(days=800))
    rng = random.Random(seed)
    spec = admin.spec(process)
    version = 1
    by_team: dict[str, list[str]] = {}
    for name, team in people:
        by_team.setdefault(team, []).append(name)
    specs = lambda _p, _v: spec  # noqa: E731 - one process version
    lead_keys = [c.key for c in store.leads.c if c.key != "id"]
    started = time.perf_counter()
    counts = {"events": 0, "lead_stages": 0, "closures": 0}
    with admin.db.begin() as conn:
        for start in range(0, leads, 20_000):
            n = min(20_000, leads - start)
            rows: dict[str, list[dict[str, Any]]] = {k: [] for k in
                                                     ("clients", "leads", "lead_tasks", "events", "lead_stages",
                                                      "closures", "ownerships", "lead_spans", "lead_stays")}
            for lead_id in range(start + 1, start + n + 1):
                evs, state, closings, stays = simulate(lead_id, rng, spec, version, people, by_team, specs)
                state.id, state.row_version = lead_id, 1
                created = evs[0].at
                rows["clients"].append({"id": lead_id, "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                                        "email": f"c{lead_id}@example.pl", "email_norm": f"c{lead_id}@example.pl",
                                        "created_at": created})
                columns = store.lead_columns(state)
                rows["leads"].append({"id": lead_id, "row_version": 1, **{k: columns[k] for k in lead_keys
                                                                          if k in columns}})
                rows["lead_tasks"] += [store.task_row(lead_id, t) for t in state.tasks.values()]
                rows["events"] += [{"lead_id": lead_id, "client_id": lead_id, "at": e.at, "actor": e.actor,
                                    "kind": e.kind, "data_json": store.dumps(e.data)} for e in evs]
                rows["lead_stages"] += [store.visit_row(state, v) for v in stays.values()]
                # the leads' past as the rebuild makes it (its own replay of the events)
                past = store.History(evs, specs, lead_id)
                rows["lead_spans"] += [dict(zip(store.history.SPAN_NAMES, row, strict=True)) for row in past.spans]
                rows["lead_stays"] += [dict(zip(store.history.STAY_NAMES, row, strict=True)) for row in past.stay_rows]
                rows["closures"] += closings
                rows["ownerships"] += store.ownership_rows(lead_id, lead_id, evs)
            for name, table_rows in rows.items():
                store.insert_many(conn, store.metadata.tables[name], table_rows)
            for key in counts:
                counts[key] += len(rows[key])
            log(f"  {start + n:,} leads written ({time.perf_counter() - started:.0f} s)")
        store.recount(conn)
    with admin.db.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    admin.close()
    return {"url": f"sqlite:///{path}", "process": process, "leads": leads, **counts,
            "build_seconds": time.perf_counter() - started}


# -- the same data on PostgreSQL -------------------------------------------------------------------------------

def drop_postgres_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa

    db = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with db.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        db.dispose()


def _size(url: str) -> tuple[str | None, int, int]:
    """(schema revision, number of leads, highest event id) of a database, or (None, 0, 0) without a schema."""
    import sqlalchemy as sa

    from engine import migrate

    db = sa.create_engine(url)
    try:
        revision = migrate.current_revision(db)
        if revision is None:
            return None, 0, 0
        with db.connect() as conn:
            leads = conn.execute(sa.select(sa.func.count()).select_from(store.leads)).scalar_one()
            events = conn.execute(sa.select(sa.func.max(store.events.c.id))).scalar_one() or 0
        return revision, leads, events
    except sa.exc.SQLAlchemyError:
        return None, 0, 0
    finally:
        db.dispose()


def copy_to_postgres(source: Path, url: str, schema: str, *, fresh: bool = False, log: Any = print
                     ) -> dict[str, Any]:
    """The benchmark database ``source`` (SQLite, at the newest revision) copied into ``schema`` of the
    PostgreSQL database at ``url``, unless an equal copy is there already. The schema comes from the migrations;
    the rows go in with COPY while the secondary indexes and foreign keys are dropped (each is built once
    afterwards, which also checks every reference), then the sequences are moved past the copied ids and the
    tables ANALYZEd. Returns the URL of the copy and the seconds the copy took (0 when it was reused)."""
    import sqlalchemy as sa

    from engine import migrate

    target = store.postgres_schema(url, schema, reset=False)
    wanted = _size(f"sqlite:///{source}")
    if not fresh and _size(target) == wanted:
        return {"url": target, "copy_seconds": 0.0, "reused": True}
    target = store.postgres_schema(url, schema, reset=True)
    started = time.perf_counter()
    db = sa.create_engine(target)
    migrate.upgrade(db)
    tables = list(store.metadata.sorted_tables)
    source_db = sa.create_engine(f"sqlite:///{source}")
    try:
        with db.begin() as conn:
            conn.exec_driver_sql("SET maintenance_work_mem = '512MB'")
            for table in reversed(tables):
                for fk in table.foreign_key_constraints:
                    conn.execute(sa.schema.DropConstraint(fk))
            for table in tables:
                for index in table.indexes:
                    conn.execute(sa.schema.DropIndex(index))
            # indexes the metadata does not model (search's pg_trgm GIN index) are dropped and made again alike
            unmodelled = conn.exec_driver_sql(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname IN "
                f"({', '.join(repr(name) for name in UNMODELLED)})").all()
            for name, _definition in unmodelled:
                conn.exec_driver_sql(f'DROP INDEX "{name}"')
            raw = conn.connection.driver_connection
            with source_db.connect() as src:
                for table in tables:
                    names = [c.name for c in table.c]
                    rows = src.exec_driver_sql(f"SELECT {', '.join(names)} FROM {table.name}")
                    copied = 0
                    with raw.cursor() as cursor, cursor.copy(  # type: ignore[union-attr]
                            f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
                        while batch := rows.fetchmany(50_000):
                            for row in batch:
                                copy.write_row(row)
                            copied += len(batch)
                    log(f"  {table.name}: {copied:,} rows ({time.perf_counter() - started:.0f} s)")
            for table in tables:
                for index in table.indexes:
                    index.create(conn)
                for fk in table.foreign_key_constraints:
                    conn.execute(sa.schema.AddConstraint(fk))
                if "id" in table.c and table.c.id.autoincrement in (True, "auto") and table.c.id.primary_key:
                    conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), max(id)) "
                                         f"FROM {table.name}")
            for _name, definition in unmodelled:
                conn.exec_driver_sql(definition)
            log(f"  indexes and keys built ({time.perf_counter() - started:.0f} s)")
        with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    finally:
        db.dispose()
        source_db.dispose()
    return {"url": target, "copy_seconds": time.perf_counter() - started, "reused": False}
