"""Advance throughput, side by side: leadflow against SpiffWorkflow, a `transitions` machine per lead with
SQLAlchemy ORM saves, and raw `sqlite3` (the floor).

    python -m benchmarks.advance --leads 500 --rounds 5

Every contender walks the same leads through the same four stages with one mandatory task each
(benchmarks/data/four_stages.yaml; for SpiffWorkflow the four-user-task BPMN process built below), on
its own SQLite file with the same settings (WAL, synchronous=NORMAL). A *step* is the work of one stage:
complete its mandatory task and move the lead on (the last step wins it). The unit is steps per second.

- ``leadflow``: ``Engine.complete_task`` then ``Engine.advance`` (``win`` at the end), each its own
  transaction, as a salesperson at the terminal does it;
- ``leadflow batch``: the bulk API, ``Engine.complete_tasks_many`` then ``Engine.advance_many`` (``win_many``
  at the end) over 500 leads at a time, each call one transaction written set-based, as a bulk job does;
  its figure is leads per second per step (each lead takes the same four steps);
- ``SpiffWorkflow``: load the instance's JSON from SQLite, run the ready user task, do the engine steps,
  serialise it back (its persistence model), one transaction per step;
- ``transitions per lead``: load the ORM object, build a ``transitions.Machine`` for it, mark the task done,
  trigger the move (a condition checks the task), save through the ORM session, one transaction per step;
- ``sqlite3 floor``: only the writes leadflow makes for a step, by hand: UPDATE the task row and INSERT
  its event, commit; UPDATE the lead and INSERT its event, commit.

Contenders run alternately, round after round, each on fresh leads; the table shows the median.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

HERE = Path(__file__).resolve().parent
PROCESS = HERE / "data" / "four_stages.yaml"
STAGES = [("contact", "call"), ("meet", "meeting"), ("offer", "send"), ("close", "sign")]
BATCH = 500


def _sqlite(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    return con


# -- leadflow -------------------------------------------------------------------------------------

def _leadflow_setup(workdir: Path, leads: int) -> tuple[Any, list[int]]:
    from engine.api import Engine

    admin = Engine.open(f"sqlite:///{workdir / 'leadflow.db'}", user="admin")
    admin.init()
    admin.load_process(PROCESS)
    admin.add_user("anna", "salesperson", "north")
    anna = admin.as_user("anna")
    with anna.transaction():
        ids = [anna.add_lead(process="four_stages", name=f"Klient {i}", owner="anna")["id"] for i in range(leads)]
    return anna, ids


def _leadflow_walk(engine: Any, lead_id: int) -> None:
    for i, (_, task) in enumerate(STAGES):
        engine.complete_task(lead_id, task)
        if i < len(STAGES) - 1:
            engine.advance(lead_id)
        else:
            engine.win(lead_id)


def leadflow(workdir: Path, leads: int) -> float:
    engine, ids = _leadflow_setup(workdir, leads)
    started = time.perf_counter()
    for lead_id in ids:
        _leadflow_walk(engine, lead_id)
    seconds = time.perf_counter() - started
    _check(engine.get_lead(ids[-1])["status"] == "won", "leadflow did not win its lead")
    engine.close()
    return seconds


def leadflow_batch(workdir: Path, leads: int) -> float:
    engine, ids = _leadflow_setup(workdir, leads)
    started = time.perf_counter()
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        for i, (_, task) in enumerate(STAGES):
            engine.complete_tasks_many(batch, task)
            if i < len(STAGES) - 1:
                engine.advance_many(batch)
            else:
                engine.win_many(batch)
    seconds = time.perf_counter() - started
    _check(engine.get_lead(ids[-1])["status"] == "won", "leadflow batch did not win its lead")
    engine.close()
    return seconds


# -- SpiffWorkflow --------------------------------------------------------------------------------

def bpmn_xml(tasks: int = len(STAGES)) -> bytes:
    """A process of ``tasks`` user tasks in sequence between a start and an end event."""
    names = [name for name, _ in STAGES]
    user_tasks = "".join(
        f'<bpmn:userTask id="t{i}" name="{names[i - 1]}"><bpmn:incoming>f{i - 1}</bpmn:incoming>'
        f"<bpmn:outgoing>f{i}</bpmn:outgoing></bpmn:userTask>" for i in range(1, tasks + 1))
    flows = "".join(
        f'<bpmn:sequenceFlow id="f{i}" sourceRef="{"start" if i == 0 else f"t{i}"}" '
        f'targetRef="{"end" if i == tasks else f"t{i + 1}"}"/>' for i in range(tasks + 1))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="sale_definitions" '
        'targetNamespace="http://bpmn.io/schema/bpmn"><bpmn:process id="sale" isExecutable="true">'
        '<bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>'
        f'{user_tasks}<bpmn:endEvent id="end"><bpmn:incoming>f{tasks}</bpmn:incoming></bpmn:endEvent>'
        f"{flows}</bpmn:process></bpmn:definitions>").encode()


def spiff(workdir: Path, leads: int) -> float:
    from lxml import etree
    from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
    from SpiffWorkflow.util.task import TaskState

    parser = BpmnParser()
    parser.add_bpmn_xml(etree.fromstring(bpmn_xml()), filename="sale.bpmn")
    spec = parser.get_spec("sale")
    serializer = BpmnWorkflowSerializer()
    con = _sqlite(workdir / "spiff.db")
    con.execute("CREATE TABLE instances (id INTEGER PRIMARY KEY, workflow TEXT NOT NULL)")
    for i in range(leads):
        workflow = BpmnWorkflow(spec)
        workflow.do_engine_steps()
        con.execute("INSERT INTO instances VALUES (?, ?)", (i, serializer.serialize_json(workflow)))
    started = time.perf_counter()
    for i in range(leads):
        for _ in STAGES:
            con.execute("BEGIN IMMEDIATE")
            (text,) = con.execute("SELECT workflow FROM instances WHERE id = ?", (i,)).fetchone()
            workflow = serializer.deserialize_json(text)
            (task,) = [t for t in workflow.get_tasks(state=TaskState.READY) if t.task_spec.manual]
            task.run()
            workflow.do_engine_steps()
            con.execute("UPDATE instances SET workflow = ? WHERE id = ?", (serializer.serialize_json(workflow), i))
            con.execute("COMMIT")
    seconds = time.perf_counter() - started
    _check(workflow.is_completed(), "SpiffWorkflow did not complete its last instance")
    con.close()
    return seconds


# -- one transitions.Machine per lead, SQLAlchemy ORM ---------------------------------------------------

class Base(DeclarativeBase):
    pass


class Lead(Base):
    __tablename__ = "leads"
    id: Mapped[int] = mapped_column(primary_key=True)
    stage: Mapped[str]
    done: Mapped[str] = mapped_column(default="[]")  # the stage's completed tasks, as JSON

    def task_done(self) -> bool:
        return dict(STAGES)[self.stage] in json.loads(self.done)


class Event(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int]
    at: Mapped[dt.datetime]
    kind: Mapped[str]
    data: Mapped[str]


def transitions_per_lead(workdir: Path, leads: int) -> float:
    from transitions import Machine

    db = sa.create_engine(f"sqlite:///{workdir / 'transitions.db'}")
    with db.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")

    @sa.event.listens_for(db, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    Base.metadata.create_all(db)
    stages = [name for name, _ in STAGES] + ["won"]
    moves = [{"trigger": "advance", "source": stages[i], "dest": stages[i + 1], "conditions": "task_done"}
             for i in range(len(STAGES))]
    with Session(db) as session, session.begin():
        session.add_all([Lead(id=i, stage="contact") for i in range(leads)])
    started = time.perf_counter()
    for i in range(leads):
        for _ in STAGES:
            with Session(db) as session, session.begin():  # complete the task
                lead = session.get(Lead, i)
                assert lead is not None
                lead.done = json.dumps([*json.loads(lead.done), dict(STAGES)[lead.stage]])
                session.add(Event(lead_id=i, at=dt.datetime.now(), kind="task_done", data="{}"))
            with Session(db) as session, session.begin():  # move on, through a machine built for this lead
                lead = session.get(Lead, i)
                assert lead is not None
                Machine(model=lead, states=stages, transitions=moves, initial=lead.stage, auto_transitions=False,
                        model_attribute="stage")
                _check(lead.advance(), "the transitions machine refused a move")  # type: ignore[attr-defined]
                lead.done = "[]"
                session.add(Event(lead_id=i, at=dt.datetime.now(), kind="advanced", data="{}"))
    seconds = time.perf_counter() - started
    with Session(db) as session:
        last = session.get(Lead, leads - 1)
        _check(last is not None and last.stage == "won", "transitions per lead did not win its lead")
    db.dispose()
    return seconds


# -- the floor ------------------------------------------------------------------------------------

def sqlite_floor(workdir: Path, leads: int) -> float:
    con = _sqlite(workdir / "floor.db")
    con.executescript("""
        CREATE TABLE leads (id INTEGER PRIMARY KEY, stage TEXT NOT NULL, row_version INTEGER NOT NULL);
        CREATE TABLE lead_tasks (lead_id INTEGER, stage TEXT, task_id TEXT, state TEXT,
                                 PRIMARY KEY (lead_id, stage, task_id));
        CREATE TABLE events (id INTEGER PRIMARY KEY, lead_id INTEGER, at TEXT, actor TEXT, kind TEXT, data_json TEXT);
    """)
    con.execute("BEGIN")
    con.executemany("INSERT INTO leads VALUES (?, 'contact', 1)", [(i,) for i in range(leads)])
    con.executemany("INSERT INTO lead_tasks VALUES (?, ?, ?, 'open')",
                    [(i, stage, task) for i in range(leads) for stage, task in STAGES])
    con.execute("COMMIT")
    names = [name for name, _ in STAGES] + ["won"]
    started = time.perf_counter()
    for i in range(leads):
        for n, (stage, task) in enumerate(STAGES):
            now = dt.datetime.now().isoformat(" ")
            con.execute("BEGIN IMMEDIATE")
            con.execute("UPDATE lead_tasks SET state = 'done' WHERE lead_id = ? AND stage = ? AND task_id = ?",
                        (i, stage, task))
            con.execute("INSERT INTO events (lead_id, at, actor, kind, data_json) VALUES (?, ?, 'anna', "
                        "'task_done', ?)", (i, now, json.dumps({"task": task})))
            con.execute("COMMIT")
            con.execute("BEGIN IMMEDIATE")
            con.execute("UPDATE leads SET stage = ?, row_version = row_version + 1 WHERE id = ?", (names[n + 1], i))
            con.execute("INSERT INTO events (lead_id, at, actor, kind, data_json) VALUES (?, ?, 'anna', "
                        "'advanced', ?)", (i, now, json.dumps({"from": stage, "to": names[n + 1]})))
            con.execute("COMMIT")
    seconds = time.perf_counter() - started
    _check(con.execute("SELECT stage FROM leads WHERE id = ?", (leads - 1,)).fetchone() == ("won",),
           "the floor did not win its lead")
    con.close()
    return seconds


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise RuntimeError(message)


CONTENDERS: dict[str, Callable[[Path, int], float]] = {
    "leadflow": leadflow,
    "leadflow batch": leadflow_batch,
    "SpiffWorkflow": spiff,
    "transitions per lead": transitions_per_lead,
    "sqlite3 floor": sqlite_floor,
}


def measure(leads: int, rounds: int, log: Callable[[str], None] = print) -> dict[str, float]:
    """Median steps per second of each contender, run alternately (each round starts with another one)."""
    names = list(CONTENDERS)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            with tempfile.TemporaryDirectory(prefix="leadflow-advance-") as tmp:
                seconds = CONTENDERS[name](Path(tmp), leads)
            rates[name].append(leads * len(STAGES) / seconds)
            log(f"  round {r + 1}/{rounds} {name:<22} {rates[name][-1]:>10,.0f} steps/s")
    return {name: statistics.median(values) for name, values in rates.items()}


def print_table(medians: dict[str, float], leads: int, rounds: int) -> None:
    spiff_rate, own, floor = medians["SpiffWorkflow"], medians["transitions per lead"], medians["sqlite3 floor"]
    print(f"\nadvance throughput, {leads:,} leads x {len(STAGES)} steps, median of {rounds} rounds (steps/s):")
    print(f"  {'contender':<22} {'steps/s':>10} {'vs Spiff':>9} {'vs per-lead':>12} {'vs floor':>9}")
    for name, rate in medians.items():
        print(f"  {name:<22} {rate:>10,.0f} {rate / spiff_rate:>8.1f}x {rate / own:>11.1f}x {rate / floor:>8.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    medians = measure(args.leads, args.rounds)
    print_table(medians, args.leads, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
