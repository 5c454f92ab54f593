"""A migration's history import on every core (engine/intake/history_import.py, docs/intake.md "A large migration").

SQLite writes on one connection, and a history import's own Python (checking each row, building its deal's events
and states and the rows they make) is about two thirds of its time: on one core it is the import's limit. When a
large file goes into a database without leads, worker processes do that part and the import's own process keeps
what must happen once and in order:

- it reads the records, refuses a row of the wrong width or a repeated ``external_id`` (which needs every earlier
  row), and sends each batch of records to a worker;
- the worker checks them (``DealReader.read``: the same code as one process's import), keeps the deals and answers
  with the refusals and what each deal says of its client (``DealClient``);
- in the order of the file, the import's process finds or makes the clients, gives the deals their ids, and sends
  them back to the worker that holds them;
- the worker builds the batch's rows through the one write path (``store.write_leads`` and the closings) on a
  ``store.RecordedWrites`` and answers with its statements, which the import's process runs (``store.replay``) in
  the order of the file.

The database it leaves is the one a single process writes, row for row and id for id
(tests/test_history_parallel.py). A deal already stored (a later file of a migration) is read and moved on in one
process: the workers run only when the database holds no lead. Workers that cannot start leave the import to its own
process; one that fails or dies mid-way fails the import, which then writes nothing (its transaction rolls back).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
import os
import queue
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from multiprocessing.connection import Connection as Connection_
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import i18n, policy, store
from engine.errors import InvalidInputError, LeadflowError, unknown_user
from engine.i18n import N_, message_of_error
from engine.intake.history_deals import DealReader, RowRefused, new_changes, record_closings
from engine.machine import ProcessMachine
from engine.spec import ProcessSpec
from engine.store import leads, users
from engine.vocab import LeadStatus

if TYPE_CHECKING:
    from engine.intake.bulk_import import ImportOptions, Rejects
    from engine.intake.columns import ColumnPlan
    from engine.intake.csv_file import CsvFile
    from engine.intake.history_columns import HistoryPlan
    from engine.intake.history_import import HistoryImport

#: Fewer deals than this (estimated from the file's start): one process; starting the workers (about half a second
#: each) would not pay.
MIN_ROWS = 20_000
#: The worker processes: None for one per core this process may run on, up to ``MOST_WORKERS``.
WORKERS: int | None = None
#: The import's own process (reading, the clients, SQLite's inserts) keeps about this many workers busy.
MOST_WORKERS = 4
#: Seconds a worker has to start (import the engine, read its setup); past them the import runs in one process.
START_SECONDS = 60.0
#: Seconds without an answer from any worker, while batches are out, before the import gives up on them.
STUCK_SECONDS = 300.0
#: Batches sent and not yet written, per worker: enough that no worker waits for the next, few enough to keep the
#: memory of a batch's deals and rows (a few megabytes each) bounded.
AHEAD = 2
#: Seconds between looks at whether every worker is still alive, while waiting for an answer.
PATIENCE = 1.0


def workers_for(conn: Connection, incoming: int) -> int:
    """How many worker processes a history import of about ``incoming`` deals runs beside its own (0: none): on
    SQLite (PostgreSQL writes in a server process of its own already), a file of at least ``MIN_ROWS`` deals, more
    than one core, and a database without leads."""
    if os.name != "posix" or not sys.executable:  # a worker's pipes are inherited descriptors
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if conn.dialect.name != "sqlite" or incoming < MIN_ROWS or cores < 2:
        return 0
    if conn.execute(sa.select(leads.c.id).limit(1)).first() is not None:
        return 0
    return WORKERS or min(cores, MOST_WORKERS)


@dataclasses.dataclass(frozen=True)
class Setup:
    """What a worker needs to check rows and build their rows, sent once at its start."""

    spec: ProcessSpec
    version: int
    at: dt.datetime
    actor: policy.Actor
    users: dict[str, policy.Actor]  # every user, by name: the owners a worker looks up
    teams: dict[str, str]
    reason_map: dict[str, str]
    plan: ColumnPlan
    hplan: HistoryPlan
    variable_limit: int  # SQLite's most parameters in a statement (the multi-row INSERTs)
    language: str  # the importing user's (``i18n.language``): it reads a row's numbers and dates

    @classmethod
    def of(cls, conn: Connection, reader: DealReader, plan: ColumnPlan, hplan: HistoryPlan,
           reason_map: dict[str, str]) -> Setup:
        driver = conn.connection.dbapi_connection
        assert driver is not None
        return cls(reader.spec, reader.version, reader.at, reader.actor,
                   {row["name"]: policy.Actor.from_row(row) for row in conn.execute(sa.select(users)).mappings()},
                   reader.teams, reason_map, plan, hplan, driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER),
                   i18n.language())

    def reader(self) -> DealReader:
        spec, version, known = self.spec, self.version, self.users

        def specs(process: str, number: int) -> ProcessSpec:
            assert (process, number) == (spec.id, version), (process, number)
            return spec

        def user(name: str) -> policy.Actor:
            found = known.get(name)
            if found is None:
                raise unknown_user(name, list(known))
            return found

        return DealReader(actor=self.actor, spec=spec, version=version, at=self.at, specs=specs, user=user,
                          allowed=ProcessMachine(spec).allowed, reason_map=self.reason_map, teams=self.teams)


@dataclasses.dataclass
class _Batch:
    """A batch sent to a worker and not yet written."""

    records: dict[int, list[str]]  # line -> cells, for the rejects file
    refused: list[tuple[int, Any]]  # the lines refused here (width, external_id), with their reasons
    rows: int  # records read up to the batch's end
    bytes_read: int
    ids: list[int] = dataclasses.field(default_factory=list)
    rejected: int = 0  # rows refused up to the batch's end


def start(setup: Setup, workers: int) -> list[_Worker]:
    """``workers`` worker processes, each started and ready (its engine imported, its setup read); none when one
    of them cannot start or answer within ``START_SECONDS`` (an interpreter that is not a Python able to import
    this engine, a process limit): the import then runs in one process."""
    started: list[_Worker] = []
    try:
        for _ in range(workers):
            started.append(_Worker.start(setup))
        deadline = time.monotonic() + START_SECONDS
        if all(worker.ready(deadline) for worker in started):
            return started
    except OSError:
        pass
    stop(started, failed=True)
    return []


def stop(workers: list[_Worker], *, failed: bool) -> None:
    """End the workers: after a finished import each ends by itself; after a failure they are killed (their work
    is rolled back with the import's transaction)."""
    for worker in workers:
        worker.stop(kill=failed)


def read(records: Iterable[tuple[int, list[str]]], source: CsvFile, setup: Setup, history: HistoryImport,
         rejects: Rejects, options: ImportOptions, load: store.BulkLoad, incoming: int, workers: list[_Worker],
         ) -> int:
    """``history_import._read`` on ``workers`` (``start``): check every record, write the good deals; returns the
    number of records. The workers are ended whatever happens."""
    try:
        rows = _run(iter(records), source, setup, history, rejects, options, load, incoming, workers)
    except BaseException:
        stop(workers, failed=True)
        raise
    stop(workers, failed=False)
    return rows


#: The code a worker runs: the import's own module search path, exactly (the same engine and libraries, wherever
#: they were imported from; nothing of the worker's working directory), then its loop on the two pipes.
_BOOT = "import sys; sys.path[:] = sys.argv[3:]; from engine.intake.history_parallel import main; main()"


class _Worker:
    """A worker process (a program of its own, not ``multiprocessing``'s, whose way of starting a process imports
    the caller's main script again) and its two pipes; a thread sends its tasks, so that the import's process never
    waits for a busy worker to read."""

    def __init__(self, process: subprocess.Popen[bytes], tasks: Connection_, answers: Connection_):
        self.process, self.answers = process, answers
        self._tasks, self._outbox = tasks, queue.SimpleQueue[Any]()
        self._sender = threading.Thread(target=_send_all, args=(self._outbox, tasks), daemon=True)
        self._sender.start()

    @classmethod
    def start(cls, setup: Setup) -> _Worker:
        task_read, task_write = os.pipe()
        answer_read, answer_write = os.pipe()
        command = [sys.executable, *subprocess._args_from_interpreter_flags(),  # type: ignore[attr-defined]
                   "-P", "-c", _BOOT, str(task_read), str(answer_write), *sys.path]
        try:
            process = subprocess.Popen(
                command, pass_fds=(task_read, answer_write), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True)  # an interrupt at the terminal is the import's
        except BaseException:
            os.close(task_write)
            os.close(answer_read)
            raise
        finally:
            os.close(task_read)
            os.close(answer_write)
        worker = cls(process, Connection_(task_write, readable=False), Connection_(answer_read, writable=False))
        worker.send(setup)
        return worker

    def ready(self, deadline: float) -> bool:
        """Whether the worker says it is ready before ``deadline`` (``time.monotonic``)."""
        try:
            if not self.answers.poll(max(deadline - time.monotonic(), 0)):
                return False
            return bool(self.answers.recv() == ("ready",))
        except (EOFError, OSError):
            return False

    def send(self, task: Any) -> None:
        self._outbox.put(task)

    def failed(self) -> LeadflowError:
        """The error of a worker that stopped answering."""
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        return LeadflowError(N_("a worker process of the import stopped (exit code {code}); nothing was imported"),
                             code=code)

    def stop(self, *, kill: bool) -> None:
        if kill and self.process.poll() is None:
            self.process.kill()
        self._outbox.put(None)
        self._sender.join(timeout=5)
        self._tasks.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.answers.close()


def _send_all(outbox: queue.SimpleQueue[Any], channel: Connection_) -> None:
    """Send what ``outbox`` holds until None; on any failure the channel is closed, so that the other side sees
    its end (and fails the import) rather than waiting."""
    for message in iter(outbox.get, None):
        try:
            channel.send(message)
        except BaseException:
            with contextlib.suppress(OSError):
                channel.close()
            return


def _run(records: Iterator[tuple[int, list[str]]], source: CsvFile, setup: Setup, history: HistoryImport,
         rejects: Rejects, options: ImportOptions, load: store.BulkLoad, incoming: int, workers_: list[_Worker],
         ) -> int:
    width = len(source.header)
    workers = len(workers_)
    batches: dict[int, _Batch] = {}
    checked: dict[int, tuple[Any, ...]] = {}
    written: dict[int, tuple[Any, ...]] = {}
    sent = next_checked = next_written = rows = 0
    writing, more, decided = True, True, False
    while True:
        while more and sent - next_written < AHEAD * workers:
            batch = _Batch({}, [], rows, 0)
            sending = []
            for line, cells in records:
                batch.rows += 1
                batch.records[line] = cells
                try:
                    sending.append((line, cells, history.external(cells, width, setup.hplan)))
                except LeadflowError as exc:
                    batch.refused.append((line, message_of_error(exc)))
                if batch.rows - rows >= options.batch_size:
                    break
            else:
                more = False
            if batch.rows == rows:
                break
            rows, batch.bytes_read = batch.rows, source.bytes_read
            batches[sent] = batch
            workers_[sent % workers].send(("check", sent, sending))
            sent += 1
        if next_written == sent:
            break
        answer = _answer(workers_)
        (checked if answer[0] == "checked" else written)[answer[1]] = answer
        while next_checked in checked:
            _, k, refused, clients = checked.pop(next_checked)
            batch = batches[k]
            for line, reason in sorted([*batch.refused, *refused], key=lambda lr: lr[0]):
                rejects.add(line, batch.records[line], reason)
                writing = writing and options.on_error == "skip"
            batch.records, batch.rejected = {}, rejects.count
            if writing and clients:
                if not decided:  # at the first batch written, as in one process
                    decided = True
                    if load.worth_it(incoming):
                        load.begin()
                batch.ids, client_ids = history.new_ids(clients)
                workers_[k % workers].send(("write", k, (batch.ids, client_ids)))
            else:
                workers_[k % workers].send(("drop", k, None))
                written[k] = ("written", k, [], [])
            next_checked += 1
        while next_written in written:
            _, k, statements, outcomes = written.pop(next_written)
            batch = batches.pop(k)
            store.replay(history.conn, statements)
            for lead_id, (status, owner, stage) in zip(batch.ids, outcomes, strict=True):
                history.counted(lead_id, status, owner, stage)
            next_written += 1
            if options.progress is not None and (more or next_written < sent):
                options.progress(batch.bytes_read, source.size, batch.rows, batch.rejected)
    if options.progress is not None:
        options.progress(source.size, source.size, rows, rejects.count)
    return rows


def _answer(workers: list[_Worker]) -> tuple[Any, ...]:
    """The next answer of any worker; a worker's failure, its death or ``STUCK_SECONDS`` of silence fail the
    import."""
    by_channel = {worker.answers: worker for worker in workers}
    silent_since = time.monotonic()
    while True:
        for channel in wait(list(by_channel), timeout=PATIENCE):
            try:
                answer: tuple[Any, ...] = channel.recv()  # type: ignore[union-attr,call-arg,assignment]
            except (EOFError, OSError):  # its end of the pipe closed, before or during an answer
                raise by_channel[channel].failed() from None  # type: ignore[index]
            if answer[0] == "failed":
                raise RuntimeError(f"a worker process of the import failed:\n{answer[2]}")
            return answer
        for worker in workers:
            if worker.process.poll() is not None:
                raise worker.failed()
        if time.monotonic() - silent_since > STUCK_SECONDS:
            raise LeadflowError(N_("the import's worker processes gave no answer for {seconds} seconds; nothing was "
                                   "imported"), seconds=int(STUCK_SECONDS))


def _work(tasks: Connection_, answers: Connection_) -> None:
    """A worker's loop: its ``Setup`` (answered ``("ready",)``), then ``("check", k, records)``, ``("write", k,
    (ids, client_ids))`` and ``("drop", k, None)``; ``None`` or the end of its pipe ends it. Answers go out on a
    thread, so that the next batch is built while the import's process is busy."""
    gc.disable()  # a batch's objects are alive until its rows are sent, none part of a cycle (store.collector_paused)
    outbox = queue.SimpleQueue[Any]()
    sender = threading.Thread(target=_send_all, args=(outbox, answers))
    sender.start()
    try:
        setup: Setup = tasks.recv()
        with i18n.using(setup.language):  # the importing user's, which reads their numbers and dates
            _serve(setup, tasks, outbox)
    except EOFError:
        pass  # the import's process is gone
    except BaseException:
        outbox.put(("failed", None, traceback.format_exc()))
    finally:
        outbox.put(None)
        sender.join()


def _serve(setup: Setup, tasks: Connection_, outbox: queue.SimpleQueue[Any]) -> None:
    reader = setup.reader()
    engine = sa.create_engine("sqlite://")
    with engine.connect():  # the dialect as a connection sets it up
        dialect = engine.dialect
    outbox.put(("ready",))
    held: dict[int, list[Any]] = {}
    while (task := tasks.recv()) is not None:
        kind, k, payload = task
        if kind == "check":
            deals, refused = [], []
            for line, cells, external in payload:
                try:
                    deals.append(reader.read(line, cells, setup.plan, setup.hplan, external))
                except (RowRefused, InvalidInputError) as exc:
                    refused.append((line, message_of_error(exc)))
            held[k] = deals
            outbox.put(("checked", k, refused, [deal.client() for deal in deals]))
        elif kind == "write":
            ids, client_ids = payload
            deals = held.pop(k)
            changes = new_changes(deals, ids, client_ids)
            recorder = store.RecordedWrites(dialect, setup.variable_limit)
            store.write_leads(recorder, changes)  # type: ignore[arg-type]
            record_closings(recorder, [(deal, change.after) for deal, change in zip(deals, changes, strict=True)
                                       if change.after.status == LeadStatus.LOST])
            outbox.put(("written", k, recorder.statements,
                        [(c.after.status, c.after.owner, c.after.stage) for c in changes]))
        else:
            held.pop(k, None)


def main() -> None:
    """A worker's program (``_BOOT``): its pipes' descriptors are its first two arguments."""
    _work(Connection_(int(sys.argv[1]), writable=False), Connection_(int(sys.argv[2]), readable=False))
