"""Imports as jobs of the server: ``intake.start_import`` keeps a copy of the file, records a job in
``import_jobs`` and runs ``intake.import_csv`` in a thread of the server process, as its starter; every request
(a page reload, another worker) reads the job's state from the database (``intake.import_job``).

The import itself is today's, unchanged: one transaction, all or nothing. Its progress (rows read of the file's
rows, rejected so far) is written after every batch in a short transaction of its own, which PostgreSQL takes
while the import's is open; SQLite has one writer at a time and the import is it, so there the progress goes to
a small file in the machine's temporary folder, which every process of a server on that database finds (they
all run on the machine that has the database file). When the import ends, the job gets its report, or why it
failed (a bad file, a refusal, an internal error): never a half-done import, and the file copy is removed.

A job the database says is running whose progress has not moved for ``STALE`` is one whose server stopped (its
transaction rolled back with it): it is shown as failed, with that reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import clock, i18n, results, store
from engine.errors import InvalidInputError, LeadflowError
from engine.i18n import N_
from engine.store import import_jobs

if TYPE_CHECKING:
    from engine.api import Engine

log = logging.getLogger(__name__)

FOLDER = Path(tempfile.gettempdir()) / "leadflow-import-jobs"
#: How long a running job's progress may stand still before the job counts as stopped with its server.
STALE = dt.timedelta(minutes=15)
RUNNING = "running"
FAILED = "failed"
STOPPED = N_("the import stopped without finishing (its server was stopped or restarted); nothing was imported")
CRASHED = N_("the import stopped on an internal error; nothing was imported (the server's log has the details)")


def keep(source: Path) -> Path:
    """A copy of ``source`` for the job, in a folder of its own, under the file's name (its messages name it)."""
    FOLDER.mkdir(mode=0o700, exist_ok=True)
    folder = FOLDER / secrets.token_hex(12)
    folder.mkdir(mode=0o700)
    kept = folder / source.name
    try:
        shutil.copyfile(source, kept)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise InvalidInputError(N_("cannot read the file to import {name}: {strerror}"), name=source.name,
                                strerror=exc.strerror or exc) from None
    return kept


def count_rows(path: Path, encoding: str | None) -> int | None:
    """The file's records (what the import calls rows), or None when the file cannot be read as CSV: the import
    itself then says why, as it would have without a job."""
    from engine.intake.csv_file import CsvFile

    try:
        source = CsvFile(path, encoding=encoding)
    except LeadflowError:
        return None
    try:
        return sum(1 for _ in source.records())
    except LeadflowError:
        return None
    finally:
        source.close()


def create(conn: Connection, *, actor: str, process: str, file_name: str, size: int, at: dt.datetime) -> int:
    return store.new_id(conn.execute(sa.insert(import_jobs).values(
        actor=actor, process=process, file_name=file_name, status=RUNNING, rows_total=None, rows_read=0,
        rejected=0, bytes_read=0, bytes_total=size, started_at=at, updated_at=at)))


def run(engine: Engine, job_id: int, path: Path, options: dict[str, Any]) -> None:
    """The job's thread: count the rows, import, record how it ended; the file copy is removed in every case."""
    progress = Progress(engine.db, job_id)
    try:
        progress.total(count_rows(path, options.get("encoding")))
        report = engine.intake.import_csv(path, progress=progress, **options)
    except LeadflowError as exc:
        folder = str(path.parent) + os.sep
        _finish(engine.db, job_id, status=FAILED, error=str(exc).replace(folder, ""),
                message=i18n.error_text(exc).replace(folder, ""))
    except Exception:
        log.exception("import job %s failed", job_id)
        _finish(engine.db, job_id, status=FAILED, error=CRASHED, message=i18n._(CRASHED))
    else:
        report = {**report, "file": path.name}
        _finish(engine.db, job_id, status=report["status"], report=report)
    finally:
        progress.done()
        shutil.rmtree(path.parent, ignore_errors=True)


class Progress:
    """The import's progress callback (``progress(bytes_read, file_size, rows, rejected)``), written where every
    process of the server reads it: the job's row on PostgreSQL, a file on SQLite (see the module's docstring)."""

    def __init__(self, db: sa.Engine, job_id: int):
        self.db, self.job_id = db, job_id
        self.file = progress_file(db, job_id) if db.dialect.name == "sqlite" else None
        self.values: dict[str, Any] = {}

    def total(self, rows: int | None) -> None:
        self._write(rows_total=rows)

    def __call__(self, bytes_read: int, size: int, rows: int, rejected: int) -> None:
        self._write(bytes_read=bytes_read, bytes_total=size, rows_read=rows, rejected=rejected)

    def _write(self, **values: Any) -> None:
        self.values.update(values)
        now = clock.now()
        if self.file is None:
            with self.db.begin() as conn:
                conn.execute(sa.update(import_jobs).where(import_jobs.c.id == self.job_id)
                             .values(**values, updated_at=now))
            return
        FOLDER.mkdir(mode=0o700, exist_ok=True)
        partial = self.file.with_suffix(".tmp")
        partial.write_text(json.dumps({**self.values, "updated_at": now.isoformat()}), encoding="utf-8")
        partial.replace(self.file)  # a reader sees the old progress or the new one, never half of it

    def done(self) -> None:
        if self.file is not None:
            self.file.unlink(missing_ok=True)


def progress_file(db: sa.Engine, job_id: int) -> Path:
    """Where a job on a SQLite database keeps its progress: named by the database file and the job."""
    database = hashlib.sha256(str(db.url.database or "").encode()).hexdigest()[:16]
    return FOLDER / f"{database}-{job_id}.json"


def _finish(db: sa.Engine, job_id: int, *, status: str, report: results.ImportReport | None = None,
            error: str | None = None, message: str | None = None) -> None:
    counts: dict[str, Any] = {}
    if report is not None:
        counts = {"rows_read": report["rows"], "rows_total": report["rows"], "rejected": report["rejected"]}
    now = clock.now()
    with db.begin() as conn:
        conn.execute(sa.update(import_jobs).where(import_jobs.c.id == job_id).values(
            status=status, report_json=json.dumps(report) if report is not None else None, error=error,
            message=message, updated_at=now, finished_at=now, **counts))


def read(conn: Connection, job_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(import_jobs).where(import_jobs.c.id == job_id)).mappings().first()
    return dict(row) if row is not None else None


def view(db: sa.Engine, row: dict[str, Any], now: dt.datetime) -> results.ImportJob:
    """A job as ``intake.import_job`` answers it: its progress (from the file on SQLite while it runs), its
    report once imported or aborted, its error once failed."""
    row = dict(row)
    if row["status"] == RUNNING and db.dialect.name == "sqlite":
        try:
            found = json.loads(progress_file(db, row["id"]).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            found = {}
        if "updated_at" in found:
            found["updated_at"] = dt.datetime.fromisoformat(found["updated_at"])
        row.update({k: v for k, v in found.items() if k in row})
    if row["status"] == RUNNING and now - row["updated_at"] > STALE:
        row.update(status=FAILED, error=STOPPED, message=i18n._(STOPPED))
    report = json.loads(row["report_json"]) if row["report_json"] else None
    accepted = report["imported"] if report is not None else max(row["rows_read"] - row["rejected"], 0)
    return {
        "id": row["id"], "status": row["status"], "actor": row["actor"], "process": row["process"],
        "file_name": row["file_name"], "rows_total": row["rows_total"], "rows_read": row["rows_read"],
        "accepted": accepted, "rejected": row["rejected"], "bytes_read": row["bytes_read"],
        "bytes_total": row["bytes_total"],
        "percent": _percent(row), "started_at": row["started_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(), "finished_at": _iso(row["finished_at"]),
        "report": report, "error": row["error"], "message": row["message"],
    }


def _percent(row: dict[str, Any]) -> int:
    """How far the job is: its rows read of the file's rows (its bytes until they are counted)."""
    counted = row["rows_total"]
    done, total = (row["rows_read"], counted) if counted else (row["bytes_read"], row["bytes_total"])
    if row["status"] != RUNNING:
        return 100
    return min(100, int(done) * 100 // int(total)) if total else 0


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None

