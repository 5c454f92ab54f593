"""Real concurrent writers: several OS processes working on the same lead at once.

The engine's promise: every operation is one transaction that writes the lead's row only if nobody
changed it since it was read (``row_version``; on SQLite ``BEGIN IMMEDIATE`` queues the writers
before they read). So concurrent writers never lose an update: each either commits on top of the
latest state or gets ``ConcurrentUpdateError`` and writes nothing, and the event log is one serial
history. Runs on SQLite (a temp file) and PostgreSQL (``db_url``).
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import queue as queue_mod
from typing import Any

import pytest

from engine import store
from engine.api import Engine
from engine.errors import ConcurrentUpdateError, LeadflowError, RuleViolation
from tests.conftest import Team, snapshot

PV = "photovoltaics"
WORKERS = 4
OPS = 25
MAX_RETRIES = 200
TIMEOUT = 60

#: Each worker sets its own field (even steps), the shared ``need`` field (odd steps) and completes a task.
OWN_FIELDS = ["annual_consumption_kwh", "budget", "roof_area_m2", "offer_value"]
OWN_TASKS = ["meeting_notes", "consumption", "roof_photos", "bant"]
ACTORS = ["anna", "marta", "anna", "marta"]


def _own_value(worker: int, step: int) -> Any:
    return step + 1 if OWN_FIELDS[worker] in ("annual_consumption_kwh", "roof_area_m2") else f"{step + 1}.00"


def _plan(worker: int) -> list[tuple[str, str, Any]]:
    ops: list[tuple[str, str, Any]] = []
    for step in range(OPS):
        if step == 5:
            ops.append(("task", OWN_TASKS[worker], None))
        elif step == 15:
            ops.append(("task", OWN_TASKS[(worker + 1) % WORKERS], None))  # someone else's: done or racing
        elif step % 2 == 0:
            ops.append(("set", OWN_FIELDS[worker], _own_value(worker, step)))
        else:
            ops.append(("set", "need", f"w{worker}-s{step}"))
    return ops


# -- child processes (spawned: module-level functions, plain picklable arguments) -------------------------

def _writer(url: str, lead_id: int, worker: int, barrier: Any, results: Any) -> None:
    eng = Engine.open(url, user=ACTORS[worker])
    done: list[tuple[str, str, Any]] = []
    refused: list[tuple[str, str, str]] = []
    retries = 0
    try:
        barrier.wait(timeout=TIMEOUT)
        for kind, name, value in _plan(worker):
            for _ in range(MAX_RETRIES):
                try:
                    if kind == "set":
                        eng.set_fields(lead_id, {name: value})
                    else:
                        eng.complete_task(lead_id, name, note=f"by worker {worker}")
                except ConcurrentUpdateError:
                    retries += 1
                    continue
                except LeadflowError as exc:
                    refused.append((kind, name, f"{type(exc).__name__}: {exc}"))
                else:
                    done.append((kind, name, value))
                break
            else:
                raise AssertionError(f"worker {worker}: {kind} {name} conflicts after {MAX_RETRIES} tries")
        results.put({"worker": worker, "done": done, "refused": refused, "retries": retries})
    except BaseException as exc:
        results.put({"worker": worker, "error": f"{type(exc).__name__}: {exc}"})
    finally:
        eng.close()


def _advancer(url: str, lead_ids: list[int], worker: int, barrier: Any, results: Any) -> None:
    eng = Engine.open(url, user="anna" if worker == 0 else "marta")
    outcome: dict[int, str] = {}
    try:
        for lead_id in lead_ids:
            barrier.wait(timeout=TIMEOUT)  # both processes start each race together
            try:
                eng.advance(lead_id)
            except (RuleViolation, ConcurrentUpdateError) as exc:
                outcome[lead_id] = type(exc).__name__
            else:
                outcome[lead_id] = "advanced"
        results.put({"worker": worker, "outcome": outcome})
    except BaseException as exc:
        results.put({"worker": worker, "error": f"{type(exc).__name__}: {exc}"})
    finally:
        eng.close()


def _run(target: Any, arg_sets: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(arg_sets))
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, barrier, results)) for args in arg_sets]
    for p in procs:
        p.start()
    out = []
    try:
        for _ in procs:
            out.append(results.get(timeout=TIMEOUT * 2))
    except queue_mod.Empty:
        pytest.fail("a worker process did not report back in time")
    finally:
        for p in procs:
            p.join(timeout=TIMEOUT)
            if p.is_alive():
                p.kill()
                p.join()
        results.close()
        results.join_thread()
    errors = [r["error"] for r in out if "error" in r]
    assert not errors, errors
    assert [p.exitcode for p in procs] == [0] * len(procs)
    return sorted(out, key=lambda r: r["worker"])


# -- helpers ---------------------------------------------------------------------------------------------

def _to_first_meeting(team: Team) -> int:
    """A lead sitting in first_meeting, where there are many tasks and fields to work on at once."""
    anna = team.as_("anna")
    lead_id = anna.add_lead(process=PV, name="Concurrent Client")["id"]
    anna.complete_task(lead_id, "record_contact")
    anna.advance(lead_id)
    anna.complete_task(lead_id, "call_client")
    anna.complete_task(lead_id, "book_meeting")
    anna.advance(lead_id)
    assert team.admin.stored_lead(lead_id).stage == "first_meeting"
    return lead_id


# -- (a) many writers, one lead -------------------------------------------------------------------------

def test_concurrent_writers_lose_no_update(team: Team) -> None:
    lead_id = _to_first_meeting(team)
    start = team.admin.stored_lead(lead_id)
    baseline = len(team.admin.history(lead_id))

    reports = _run(_writer, [(team.url, lead_id, w) for w in range(WORKERS)])

    log = team.admin.history(lead_id)
    new = log[baseline:]
    successes = [op for r in reports for op in r["done"]]
    # one event per successful operation, none for a refused one
    assert len(log) == baseline + len(successes)
    assert sorted(e["kind"] for e in new) == sorted("field_set" if k == "set" else "task_done"
                                                     for k, _, _ in successes)
    # every refusal is a task somebody else had already completed
    for r in reports:
        for kind, _name, why in r["refused"]:
            assert kind == "task" and "is already done" in why, why
    # each task was completed exactly once, and all four were
    completed = [e["data"]["task"] for e in new if e["kind"] == "task_done"]
    assert sorted(completed) == sorted(OWN_TASKS)
    # the log is a serial history: for every field, each event's before is the previous event's after
    current = dict(start.fields)
    for e in new:
        if e["kind"] == "field_set":
            name = e["data"]["field"]
            assert e["data"]["before"] == current.get(name), (e, current.get(name))
            current[name] = e["data"]["after"]
    # every successful set is in the log, once, and each worker's own writes appear in its program order
    sets = [(e["data"]["field"], e["data"]["after"]) for e in new if e["kind"] == "field_set"]
    assert sorted(map(repr, sets)) == sorted(repr((n, v)) for k, n, v in successes if k == "set")
    for r in reports:
        mine = [(n, v) for k, n, v in r["done"] if k == "set"]
        assert [s for s in sets if s in mine] == mine
    # the stored state is the last write of every field, and equals its rebuild from the log
    stored = team.admin.stored_lead(lead_id)
    assert stored.fields == current
    last_need = [v for n, v in sets if n == "need"][-1]
    assert stored.fields["need"] == last_need
    assert stored.row_version == start.row_version + len(successes)
    assert stored.comparable() == team.admin.rebuild_lead(lead_id).comparable()
    assert {t for t in OWN_TASKS if stored.tasks[("first_meeting", t)].state == "done"} == set(OWN_TASKS)


# -- (b) the optimistic lock, deterministically --------------------------------------------------------

def _stale_write(url: str, lead_id: int, stale: Any) -> None:
    """Write a change computed from ``stale`` (a state read before someone else's commit)."""
    writer = Engine.open(url, user="anna")
    try:
        with writer.transaction() as conn:
            after = copy.deepcopy(stale)
            after.fields["need"] = "stale writer"
            after.stage = "first_contact"
            store.write_leads(conn, [store.LeadChange(stale, after, [])])
    finally:
        writer.close()


def test_a_write_from_a_stale_read_is_refused_and_writes_nothing(team: Team) -> None:
    anna = team.as_("anna")
    lead_id = anna.add_lead(process=PV, name="Stale Reader")["id"]
    reader = Engine.open(team.url, user="anna")
    other = Engine.open(team.url, user="marta")  # another Engine: its own connection pool
    try:
        with reader.transaction() as conn:
            stale = store.read_lead(conn, lead_id)
        assert stale is not None
        other.set_fields(lead_id, {"need": "a fresh write"})
        before = snapshot(team.url)
        with pytest.raises(ConcurrentUpdateError, match="changed since you read it") as err:
            _stale_write(team.url, lead_id, stale)
        assert str(err.value) == f"lead {lead_id} changed since you read it; nothing was written, try again"
        assert snapshot(team.url) == before
        assert team.admin.stored_lead(lead_id).fields == {"need": "a fresh write"}
        # with a fresh read the same write goes through
        with reader.transaction() as conn:
            fresh = store.read_lead(conn, lead_id)
            assert fresh is not None
            after = copy.deepcopy(fresh)
            after.fields["need"] = "fresh writer"
            store.write_leads(conn, [store.LeadChange(fresh, after, [])])
        assert team.admin.stored_lead(lead_id).row_version == stale.row_version + 2
    finally:
        reader.close()
        other.close()


def test_a_transaction_kept_open_across_another_commit_cannot_write(team: Team) -> None:
    """PostgreSQL: the reader's transaction stays open while another connection commits."""
    if not team.url.startswith("postgresql"):
        pytest.skip("SQLite takes the write lock at BEGIN IMMEDIATE: a second writer waits, not interleaves")
    anna = team.as_("anna")
    lead_id = anna.add_lead(process=PV, name="Open Transaction")["id"]
    reader = Engine.open(team.url, user="anna")
    other = Engine.open(team.url, user="marta")
    try:
        with pytest.raises(ConcurrentUpdateError, match="changed since you read it"), \
                reader.transaction() as conn:
            stale = store.read_lead(conn, lead_id)
            assert stale is not None
            other.set_fields(lead_id, {"need": "committed meanwhile"})  # commits on its own connection
            after = copy.deepcopy(stale)
            after.fields["need"] = "stale writer"
            store.write_leads(conn, [store.LeadChange(stale, after, [])])
        assert team.admin.stored_lead(lead_id).fields == {"need": "committed meanwhile"}
        assert [e["kind"] for e in anna.history(lead_id)] == ["created", "field_set"]
    finally:
        reader.close()
        other.close()


def test_a_stale_write_from_another_process_is_refused(team: Team) -> None:
    """The same conflict between two OS processes: the child read before the parent committed."""
    anna = team.as_("anna")
    lead_id = anna.add_lead(process=PV, name="Two Processes")["id"]
    with team.admin.transaction() as conn:
        stale = store.read_lead(conn, lead_id)
    anna.set_fields(lead_id, {"need": "parent wrote first"})
    before = snapshot(team.url)
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        message = pool.apply(_stale_write_reporting, (team.url, lead_id, stale))
    assert message == (f"ConcurrentUpdateError: lead {lead_id} changed since you read it; "
                       "nothing was written, try again")
    assert snapshot(team.url) == before


def _stale_write_reporting(url: str, lead_id: int, stale: Any) -> str:
    try:
        _stale_write(url, lead_id, stale)
    except LeadflowError as exc:
        return f"{type(exc).__name__}: {exc}"
    return "written"


# -- racing advances -----------------------------------------------------------------------------------

def test_two_processes_racing_advance_move_the_lead_exactly_one_stage(team: Team) -> None:
    anna = team.as_("anna")
    lead_ids = []
    for i in range(6):
        lead_id = anna.add_lead(process=PV, name=f"Race {i}")["id"]
        anna.complete_task(lead_id, "record_contact")
        lead_ids.append(lead_id)

    reports = _run(_advancer, [(team.url, lead_ids, 0), (team.url, lead_ids, 1)])

    for lead_id in lead_ids:
        outcomes = sorted(r["outcome"][lead_id] for r in reports)
        # the loser either lost the race for the row (PostgreSQL) or queued and found the new stage's
        # tasks open (SQLite, BEGIN IMMEDIATE)
        assert outcomes in (["ConcurrentUpdateError", "advanced"], ["RuleViolation", "advanced"]), outcomes
        stored = team.admin.stored_lead(lead_id)
        assert stored.stage == "first_contact"
        kinds = [e["kind"] for e in anna.history(lead_id)]
        assert kinds == ["created", "task_done", "advanced"]
        assert stored.comparable() == team.admin.rebuild_lead(lead_id).comparable()


def test_sqlite_writers_of_one_process_queue_and_an_invalidated_writer_frees_the_queue(tmp_path: Any) -> None:
    """engine/store/database.py's ``_WriterQueue``: threads that write at once all commit (none waits out SQLite's
    busy timeout), and a connection invalidated in the middle of its write transaction (closed without a ROLLBACK
    through the dialect) does not keep the next writer waiting."""
    import threading
    import time

    from engine.store.database import create_db_engine

    db = create_db_engine(f"sqlite:///{tmp_path / 'queue.db'}?timeout=20")
    try:
        with db.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        broken = db.connect()
        broken.begin()
        broken.exec_driver_sql("INSERT INTO t VALUES (0)")
        broken.invalidate()
        broken.close()
        started = time.monotonic()
        with db.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert time.monotonic() - started < 5, "the invalidated writer kept the queue"

        def write(n: int) -> None:
            for i in range(10):
                with db.begin() as conn:
                    conn.exec_driver_sql("INSERT INTO t VALUES (?)", (n * 100 + i,))

        threads = [threading.Thread(target=write, args=(n,)) for n in range(2, 18)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert time.monotonic() - started < 15, "writers waited on each other's sleeps"
        with db.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*), sum(x = 0) FROM t").one() == (1 + 16 * 10, 0)
    finally:
        db.dispose()
