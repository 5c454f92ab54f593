"""Build a large, realistic leadflow database quickly, with the engine's own rules for dates and lights.

Rows are written with executemany (building a million leads through the API would take the better
part of an hour), but every derived column comes from the engine's code: the stage and task deadlines
from ``engine.calendar.due_at`` and the light thresholds from ``engine.state.refresh_signal``, so
the data is what the engine itself would have stored.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from pathlib import Path
from typing import Any

from engine import calendar, clock, paths
from engine.api import Engine
from engine.state import LeadState, TaskState, refresh_signal
from engine.store import recount, remove_sqlite_files

NOW = dt.datetime(2026, 3, 16, 10, 0)
FIRST_NAMES = ["Łukasz", "Zofia", "Ștefan", "Ioana", "Жанна", "Agnieszka", "Mihai", "Paweł", "Elena", "Grzegorz",
               "Małgorzata", "Andrei", "Ольга", "Tomasz", "Bogdan", "Dorota"]
LAST_NAMES = ["Żółć", "Kamińska", "Popescu", "Mărgărit", "Смирнова", "Wiśniewska", "Ionescu", "Nowak",
              "Vasilescu", "Brzęczyszczykiewicz", "Kowalczyk", "Dumitrescu", "Кузнецова", "Wójcik", "Lăcătuș"]
SOURCES = ["referral", "organic", "paid_campaign", "mailing", "import", "web_form"]


def reusable(path: Path) -> bool:
    """Whether a database built earlier can be used again: it exists and has the newest schema."""
    if not path.exists():
        return False
    import sqlalchemy as sa

    from engine import migrate

    db = sa.create_engine(f"sqlite:///{path}")
    try:
        return migrate.current_revision(db) == migrate.head_revision()
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        db.dispose()


def build(path: Path, leads: int, *, process: str = "photovoltaics", salespeople: int = 50, teams: int = 5,
          seed: int = 7, open_share: float = 1.0, log: Any = print) -> dict[str, Any]:
    """A fresh SQLite database at ``path`` with ``leads`` leads of ``process`` (``open_share`` of them open)."""
    remove_sqlite_files(path)
    url = f"sqlite:///{path}"
    rng = random.Random(seed)
    admin = Engine.open(url, user="admin")
    with clock.frozen(NOW - dt.timedelta(days=400)):
        admin.init()
        admin.load_process(paths.processes_dir() / f"{process}.yaml")
        people = [(f"sales{i:02d}", f"team{i % teams}") for i in range(salespeople)]
        with admin.transaction():
            for t in range(teams):
                admin.add_user(f"manager{t}", "manager", f"team{t}")
            for name, team in people:
                admin.add_user(name, "salesperson", team)
    spec = admin.spec(process)
    version = 1
    started = time.perf_counter()
    due_cache: dict[tuple[dt.date, int], dt.datetime] = {}

    def due(entered: dt.datetime, days: int) -> dt.datetime:
        key = (entered.date(), days)
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
                    id=lead_id, client_id=lead_id, process=process, process_version=version, stage=stage.id,
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
                closed = NOW - dt.timedelta(days=rng.randint(0, 30)) if status != "open" else None
                reason = rng.choice(spec.closure_reasons).id if status == "lost" else None
                lead_rows.append((lead_id, lead_id, process, version, stage.id, status, owner, team, state.source,
                                  state.product, state.value_minor, "{}", created, entered, state.stage_due_at,
                                  entered, created, closed, reason, None, stage.id if closed else None,
                                  state.red_at, 1))
                task_rows.extend((lead_id, t.stage, t.id, t.state, t.due_at, t.done_by, t.done_at, None)
                                 for t in state.tasks.values())
            cur.executemany("INSERT INTO clients (id, name, company, email, phone, email_norm, phone_norm, "
                            "created_at) VALUES (?,?,?,?,?,?,?,?)", _iso(clients_rows))
            cur.executemany(
                "INSERT INTO leads (id, client_id, process, process_version, stage, status, owner, team, source, "
                "product, value_minor, fields_json, created_at, stage_entered_at, stage_due_at, last_activity_at, "
                "owner_since, closed_at, close_reason, close_note, closed_from_stage, red_at, "
                "row_version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", _iso(lead_rows))
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
    return {"url": url, "process": process, "leads": leads, "build_seconds": time.perf_counter() - started}


def _iso(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Date-times as SQLAlchemy's SQLite dialect stores them."""
    return [tuple(v.isoformat(sep=" ", timespec="microseconds") if isinstance(v, dt.datetime) else v for v in r)
            for r in rows]

