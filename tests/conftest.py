"""Shared pytest fixtures."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine import store


@pytest.fixture
def processes_dir() -> Path:
    """The shipped process files of this checkout."""
    return Path(__file__).resolve().parent.parent / "processes"


# -- databases ----------------------------------------------------------------------------------
# Every engine test runs on SQLite and on a real PostgreSQL server (LEADFLOW_TEST_PG_URL, started by
# .ci/run). Locally without PostgreSQL the postgres half is skipped; in CI it must be there.
PG_URL = os.environ.get("LEADFLOW_TEST_PG_URL")
TEST_NOW = "2026-03-02T09:00:00"  # a Monday morning


def reset_postgres(url: str) -> str:
    """A fresh schema of this test run's own (so two runs on one server never touch each other's tables);
    returns the URL whose connections use it."""
    return store.postgres_schema(url, f"leadflow_test_{os.getpid()}", reset=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'leadflow.db'}"
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("CI must provide PostgreSQL: LEADFLOW_TEST_PG_URL is not set")
        pytest.skip("no PostgreSQL server: set LEADFLOW_TEST_PG_URL to run the postgres half")
    return reset_postgres(PG_URL)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'leadflow.db'}"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's own database, user or clock."""
    for name in ("LEADFLOW_DB", "LEADFLOW_USER", "LEADFLOW_TEMPLATES", "LEADFLOW_SMTP_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.startswith("LEADFLOW_SMTP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LEADFLOW_TZ", "Europe/Warsaw")
    monkeypatch.setenv("LEADFLOW_NOW", TEST_NOW)


USERS = [
    ("marta", "manager", "north"),
    ("anna", "salesperson", "north"),
    ("piotr", "salesperson", "north"),
    ("radu", "manager", "south"),
    ("ioana", "salesperson", "south"),
    ("olga", "analyst", "north"),
    ("tomasz", "technician", None),
]


@dataclass
class Team:
    """An initialised database with the shipped processes loaded and a two-team sales floor."""

    url: str
    admin: Any

    def as_(self, name: str) -> Any:
        return self.admin.as_user(name)


@pytest.fixture
def team(db_url: str, processes_dir: Path) -> Iterator[Team]:
    from engine.api import Engine

    admin = Engine.open(db_url, user="root")
    admin.init()
    for path in sorted(processes_dir.glob("*.yaml")):
        admin.load_process(path)
    for name, role, team_name in USERS:
        admin.add_user(name, role, team_name)
    yield Team(db_url, admin)
    admin.close()


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every leadflow table, to prove that a refused command changed nothing."""
    from engine.store import metadata

    db = sa.create_engine(url)
    try:
        with db.connect() as conn:
            return {
                t.name: sorted(tuple(map(repr, r)) for r in conn.execute(sa.select(t)))
                for t in metadata.sorted_tables
            }
    finally:
        db.dispose()


def at_once(url: str, user: str, work: Callable[[Any, int], Any], n: int) -> list[Any]:
    """Run ``work(engine, i)`` in ``n`` threads, each with an Engine of its own (another program on the same
    database), started together at a barrier; returns their results, and fails the test if any raised."""
    from engine.api import Engine

    barrier = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        eng = Engine.open(url, user=user)
        try:
            barrier.wait(timeout=60)
            results.append(work(eng, i))
        except BaseException as exc:
            errors.append(exc)
        finally:
            eng.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    return results
