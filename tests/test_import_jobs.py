"""Imports as jobs of the server (engine/intake/import_jobs.py): POST /v1/import-jobs answers 202 at once, and
GET /v1/import-jobs/{id} the progress while the import runs, then its report or why it failed; only whoever started
a job and admins see it. The import stays all or nothing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import engine.intake
from engine import clock
from engine.errors import NotFoundError
from engine.intake import import_jobs
from engine.store import import_jobs as jobs_table
from tests.conftest import Team
from tests.server_fixtures import Served, serving
from tests.test_web import _cheap_hashes  # noqa: F401  (the autouse fixture: cheap password hashes)
from tests.web_fixtures import import_ended, signed_in, with_passwords

PV = "photovoltaics"
ROWS = [f"Osoba Zadanie {i},zadanie{i}@example.pl,1000\n" for i in range(10)]
CSV = ("name,email,value\n" + "".join(ROWS[:4]) + "Zly Wiersz,not-an-address,1\n" + "".join(ROWS[4:])).encode()


@dataclasses.dataclass
class _SmallBatches(engine.intake.ImportOptions):
    batch_size: int = 3  # a progress report every three good rows: a small file shows progress that moves


@pytest.fixture
def served(team: Team) -> Iterator[Served]:
    with serving(team.admin) as server:
        yield server


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[queue.Queue[int], threading.Semaphore]]:
    """Each progress report of a job, once written, waits for the test to let it go on (``go.release()``); the
    rows it reported arrive in ``reported``."""
    monkeypatch.setattr(engine.intake, "ImportOptions", _SmallBatches)
    reported: queue.Queue[int] = queue.Queue()
    go = threading.Semaphore(0)
    write = import_jobs.Progress.__call__

    def report_then_wait(self: import_jobs.Progress, bytes_read: int, size: int, rows: int, rejected: int) -> None:
        write(self, bytes_read, size, rows, rejected)
        reported.put(rows)
        go.acquire(timeout=30)

    monkeypatch.setattr(import_jobs.Progress, "__call__", report_then_wait)
    yield reported, go
    for _ in range(100):
        go.release()  # a job still running ends on its own


def _imported(team: Team) -> int:
    """How many of the file's leads there are (read without waiting for SQLite's writer, the running import)."""
    return sum("Zadanie" in lead["name"] for lead in team.admin.leads.list(process=PV))


def _ended(served: Served, user: str, url: str) -> dict[str, Any]:
    for _ in range(600):
        answer = served.call(user, "GET", url)
        assert answer.status_code == 200, answer.text
        if answer.json()["status"] != "running":
            return dict(answer.json())
        time.sleep(0.05)
    pytest.fail(f"the job {url} did not end")


def test_an_import_job_shows_progress_that_moves_then_its_report(team: Team, served: Served, held: Any) -> None:
    reported, go = held
    started = served.call("marta", "POST", "/v1/import-jobs", params={"process": PV, "filename": "fair.csv"},
                          content=CSV)
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["status"] == "running" and job["file_name"] == "fair.csv" and job["actor"] == "marta"
    url = started.headers["location"]
    assert url == f"/v1/import-jobs/{job['id']}"
    seen = []
    while True:
        try:
            rows = reported.get(timeout=30)
        except queue.Empty:
            pytest.fail("the job reported no progress")
        now = served.call("marta", "GET", url).json()
        assert now["status"] == "running" and now["rows_read"] == rows and now["rows_total"] == 11
        assert now["accepted"] + now["rejected"] == rows and now["report"] is None
        assert _imported(team) == 0  # all or nothing: no lead is there before the end
        seen.append((now["rows_read"], now["accepted"], now["rejected"], now["percent"]))
        go.release()
        if rows == 11:
            break
    assert seen == [(3, 3, 0, 27), (7, 6, 1, 63), (10, 9, 1, 90), (11, 10, 1, 100)]
    ended = _ended(served, "marta", url)
    assert ended["status"] == "imported" and ended["finished_at"] is not None
    assert (ended["rows_read"], ended["accepted"], ended["rejected"]) == (11, 10, 1)
    report = ended["report"]
    assert (report["imported"], report["rejected"], report["file"]) == (10, 1, "fair.csv")
    assert report["rejects"][0]["line"] == 6
    assert _imported(team) == 10
    # whoever started it and admins see it; to anyone else it does not exist, as an id never used
    assert served.call("root", "GET", url).json()["report"] == report
    for other in ("radu", "anna"):
        hidden = served.call(other, "GET", url)
        assert hidden.status_code == 404 and hidden.json()["detail"] == f"import job {job['id']} does not exist"
    assert served.call("marta", "GET", "/v1/import-jobs/999999").status_code == 404


def test_who_may_not_import_starts_no_job(team: Team, served: Served) -> None:
    refused = served.call("anna", "POST", "/v1/import-jobs", params={"process": PV}, content=CSV)
    assert refused.status_code == 403 and "only a manager or an admin may" in refused.json()["detail"]
    unknown = served.call("marta", "POST", "/v1/import-jobs", params={"process": "nope"}, content=CSV)
    assert unknown.status_code == 404, unknown.text
    with team.admin.transaction() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(jobs_table)).scalar_one() == 0


def test_a_failing_import_ends_its_job_with_the_reason_and_imports_nothing(
        team: Team, served: Served, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(import_jobs, "FOLDER", tmp_path / "jobs")

    def start(csv: bytes, **params: str) -> dict[str, Any]:
        started = served.call("marta", "POST", "/v1/import-jobs", params={"process": PV, **params}, content=csv)
        assert started.status_code == 202, started.text
        return _ended(served, "marta", started.headers["location"])

    no_name = start(b"email,value\nx@example.pl,1\n", filename="nameless.csv")
    assert no_name["status"] == "failed" and no_name["report"] is None
    assert no_name["error"].startswith("nameless.csv has no column for the client's name")
    assert no_name["message"] == no_name["error"]  # marta speaks English
    aborted = start(CSV, on_error="abort", filename="fair.csv")
    assert aborted["status"] == "aborted" and aborted["report"]["imported"] == 0
    assert aborted["report"]["rejects"][0]["line"] == 6

    def crash(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(engine.intake, "run_import", crash)
    crashed = start(CSV, filename="fair.csv")
    assert crashed["status"] == "failed" and crashed["error"] == import_jobs.CRASHED
    assert _imported(team) == 0
    assert list((tmp_path / "jobs").iterdir()) == []  # every job removed its copy of the file (and progress)


def test_a_job_whose_server_stopped_shows_as_failed(team: Team) -> None:
    with team.admin.transaction() as conn:
        job_id = import_jobs.create(conn, actor="marta", process=PV, file_name="big.csv", size=100,
                                    at=clock.now() - import_jobs.STALE - dt.timedelta(seconds=1))
    job = team.as_("marta").intake.import_job(job_id)
    assert job["status"] == "failed" and job["error"] == import_jobs.STOPPED
    with pytest.raises(NotFoundError):
        team.as_("radu").intake.import_job(job_id)


def test_the_import_page_follows_its_job_then_shows_the_report(team: Team, held: Any) -> None:
    reported, go = held
    with_passwords(team, "marta", "radu", "root")
    marta, csrf = signed_in(team, "marta")
    radu, _csrf = signed_in(team, "radu")  # before: on SQLite, logging in writes, and waits for a running import
    root, _csrf = signed_in(team, "root")
    form = {"csrf": csrf, "process": PV, "on_error": "skip", "text": CSV.decode()}
    started = marta.post("/import", data=form)
    assert started.status_code == 303 and started.headers["location"].startswith("/import/jobs/")
    url = started.headers["location"]
    assert reported.get(timeout=30) == 3
    running = marta.get(url)
    assert running.status_code == 200, running.text
    assert "3 of 11 rows read: 3 accepted, 0 rejected" in running.text
    assert '<progress max="100" value="27">' in running.text
    assert f'hx-get="{url}" hx-trigger="every 1s" hx-select="#job"' in running.text  # htmx follows it
    assert '<noscript><meta http-equiv="refresh" content="1"></noscript>' in running.text  # and without JavaScript
    assert radu.get(url).status_code == 404
    assert "3 of 11 rows read" in root.get(url).text
    for _ in range(10):
        go.release()  # this job's progress, and the next jobs', goes on unheld
    ended = import_ended(marta, started)
    assert ended.status_code == 200 and "Imported" in ended.text and "line 6:" in ended.text
    assert "hx-trigger" not in ended.text and "http-equiv" not in ended.text  # nothing follows an ended job
    aborted = import_ended(marta, marta.post("/import", data={**form, "on_error": "abort", "text": CSV.decode()
                                                              .replace("Zadanie", "Inne")}))
    assert aborted.status_code == 422 and "Aborted: nothing was imported" in aborted.text
    again = marta.get(started.headers["location"].rsplit("/", 1)[0] + f"/{int(url.rsplit('/', 1)[1]) + 1}",
                      headers={"HX-Request": "true"})
    assert again.status_code == 200 and "Aborted: nothing was imported" in again.text  # htmx swaps a 2xx in only
    failed = import_ended(marta, marta.post("/import", data={**form, "text": "email\nx@example.pl\n"}))
    assert failed.status_code == 422
    assert "The import of pasted.csv failed: pasted.csv has no column for the client&#39;s name" in failed.text
