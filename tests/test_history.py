"""The history cannot be rewritten (issue 15): the database refuses UPDATE and DELETE of ``events`` through raw
SQL on both databases, but for the one audited path of an erasure; and the least-privilege PostgreSQL roles of
docs/operations.md refuse the server's role any DELETE of a record."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine import migrate
from tests.conftest import ROOT, Team, build_team, snapshot

REFUSAL = "events are append-only"


def raw(url: str) -> sa.Engine:
    """A plain connection to the database, as any program (or attacker) with its URL would open."""
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


@pytest.fixture
def lead(team: Team) -> int:
    anna = team.as_("anna")
    lead = anna.leads.add(process="photovoltaics", name="Jan Kowalski", email="jan@example.pl")
    anna.leads.complete_task(lead["id"], "record_contact")
    return int(lead["id"])


@pytest.mark.parametrize("statement", [
    "DELETE FROM events",
    "DELETE FROM events WHERE kind = 'task_done'",
    "UPDATE events SET kind = 'won' WHERE kind = 'task_done'",
    "UPDATE events SET at = at",  # even an update that changes nothing is refused
    "UPDATE events SET data_json = '{}'",
    "UPDATE events SET actor = 'somebody_else'",
])
def test_raw_sql_cannot_change_or_delete_events(team: Team, lead: int, statement: str) -> None:
    before = snapshot(team.url)
    db = raw(team.url)
    try:
        with pytest.raises(sa.exc.DatabaseError, match=REFUSAL), db.begin() as conn:
            conn.exec_driver_sql(statement)
    finally:
        db.dispose()
    assert snapshot(team.url) == before


@pytest.mark.postgres
def test_truncate_of_events_is_refused(team: Team, lead: int) -> None:
    if not team.url.startswith("postgresql"):
        pytest.skip("TRUNCATE is PostgreSQL's")
    before = snapshot(team.url)
    db = raw(team.url)
    try:
        for table in ("events", "erasures"):
            with pytest.raises(sa.exc.DatabaseError, match=REFUSAL if table == "events" else "erasure"), \
                    db.begin() as conn:
                conn.exec_driver_sql(f"TRUNCATE {table} CASCADE")
    finally:
        db.dispose()
    assert snapshot(team.url) == before


def test_an_unfinished_erasure_is_the_one_way_to_rewrite_an_events_data(team: Team, lead: int) -> None:
    """The audited path: a row of erasures opened for the client allows rewriting data_json of that client's
    events, nothing else of them and no other client's; once finished, nothing; the row itself stays."""
    db = raw(team.url)
    other = team.as_("anna").leads.add(process="photovoltaics", name="Ewa Nowak")["client_id"]
    try:
        with db.begin() as conn:
            client = conn.execute(sa.text("SELECT client_id FROM leads WHERE id = :id"), {"id": lead}).scalar_one()
            conn.execute(sa.text("INSERT INTO erasures (client_id, requested_by, started_at) "
                                 "VALUES (:c, 'root', CURRENT_TIMESTAMP)"), {"c": client})
            changed = conn.execute(sa.text("UPDATE events SET data_json = '{\"erased\": true}' "
                                           "WHERE client_id = :c"), {"c": client}).rowcount
            assert changed >= 2
            for statement in ("UPDATE events SET kind = 'won' WHERE client_id = :c",
                              "DELETE FROM events WHERE client_id = :c",
                              "UPDATE events SET data_json = '{}' WHERE client_id = :o"):
                with pytest.raises(sa.exc.DatabaseError, match=REFUSAL), conn.begin_nested():
                    conn.execute(sa.text(statement), {"c": client, "o": other})
            conn.execute(sa.text("UPDATE erasures SET finished_at = CURRENT_TIMESTAMP WHERE client_id = :c"),
                         {"c": client})
        for statement in ("UPDATE events SET data_json = '{}' WHERE client_id = :c",
                          "UPDATE erasures SET finished_at = NULL", "UPDATE erasures SET requested_by = 'x'",
                          "DELETE FROM erasures"):
            with pytest.raises(sa.exc.DatabaseError, match=r"append-only|erasure"), db.begin() as conn:
                conn.execute(sa.text(statement), {"c": client})
        with db.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM erasures WHERE finished_at IS NOT NULL")).scalar() == 1
    finally:
        db.dispose()


def test_the_head_schema_has_the_triggers(team: Team) -> None:
    """A later migration that recreates ``events`` (SQLite's batch mode) must create the triggers again."""
    db = raw(team.url)
    try:
        with db.connect() as conn:
            if db.dialect.name == "sqlite":
                names = set(conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'").scalars())
                assert names >= {"events_no_delete", "events_no_update", "erasures_no_delete", "erasures_finish_once"}
            else:
                names = set(conn.exec_driver_sql(
                    "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D'").scalars())
                assert names >= {"events_append_only", "events_no_truncate", "erasures_finish_once"}
    finally:
        db.dispose()


def test_a_downgrade_removes_the_triggers_and_an_upgrade_restores_them(db_url: str) -> None:
    from alembic import command

    from engine.store import create_db_engine

    db = create_db_engine(db_url)
    try:
        migrate.upgrade(db)
        with db.begin() as conn:
            command.downgrade(migrate._config(conn), "0006")  # type: ignore[arg-type]
        assert not sa.inspect(db).has_table("erasures")
        migrate.upgrade(db)
        assert sa.inspect(db).has_table("erasures")
    finally:
        db.dispose()


# -- least privilege on PostgreSQL --------------------------------------------------------------------------


def grants_sql(owner: str, app: str) -> str:
    """The grants block of docs/operations.md, as written there, for these role names."""
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    block = re.search(r"```sql\n(-- leadflow: grants of the server's role\n.*?)```", text, flags=re.S)
    assert block, "docs/operations.md has no grants block"
    return block.group(1).replace("leadflow_app", app).replace("leadflow_owner", owner)


@pytest.fixture
def roles(postgres_databases: object) -> Iterator[tuple[str, str, str]]:
    """An owner role, the server's role and a database the owner owns, on the test server: their URLs."""
    pg_url = os.environ.get("LEADFLOW_TEST_PG_URL")
    if not pg_url:
        if os.environ.get("CI"):
            pytest.fail("CI must provide PostgreSQL: LEADFLOW_TEST_PG_URL is not set")
        pytest.skip("no PostgreSQL server: set LEADFLOW_TEST_PG_URL")
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    suffix = uuid.uuid4().hex[:8]
    owner, app, name = f"lf_owner_{suffix}", f"lf_app_{suffix}", f"lf_roles_{suffix}"
    with admin.connect() as conn:
        allowed = conn.exec_driver_sql(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user").scalar_one()
        if not allowed:
            if os.environ.get("CI"):
                pytest.fail("the CI role needs CREATEROLE (.ci/run gives it) to test the least-privilege roles")
            pytest.skip("the test server's role may not create roles")
        conn.exec_driver_sql(f"CREATE ROLE {owner} LOGIN PASSWORD 'pw'")
        conn.exec_driver_sql(f"CREATE ROLE {app} LOGIN PASSWORD 'pw'")
        conn.exec_driver_sql(f"GRANT {owner} TO current_user")  # to make a database it owns
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" OWNER {owner}')
    base = sa.engine.make_url(pg_url).set(database=name, password="pw")
    try:
        yield (base.set(username=owner).render_as_string(hide_password=False),
               base.set(username=app).render_as_string(hide_password=False), owner)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {app}")
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {owner}")
        admin.dispose()


@pytest.mark.postgres
def test_the_servers_role_works_leads_but_may_not_delete_or_disable_history(roles: tuple[str, str, str]) -> None:
    from engine.api import Engine

    owner_url, app_url, owner = roles
    build_team(owner_url)
    db = raw(owner_url)
    try:
        with db.begin() as conn:
            conn.exec_driver_sql(grants_sql(owner, sa.engine.make_url(app_url).username or ""))
    finally:
        db.dispose()
    # the server's daily work, as its role: a lead added, worked through a stage, closed, reopened
    eng = Engine.open(app_url, user="anna")
    try:
        lead = eng.leads.add(process="photovoltaics", name="Jan Kowalski", phone="+48 600 100 200")
        eng.leads.complete_task(lead["id"], "record_contact")
        eng.leads.advance(lead["id"])
        eng.as_user("marta").leads.close(lead["id"], "bad_timing")
        eng.as_user("marta").leads.reopen(lead["id"])
    finally:
        eng.close()
    before = snapshot(owner_url)
    db = raw(app_url)
    try:
        for statement in ("DELETE FROM events", "DELETE FROM leads", "DELETE FROM clients", "DELETE FROM closures",
                          "DELETE FROM users", "TRUNCATE events", "UPDATE events SET kind = 'won'",
                          "ALTER TABLE events DISABLE TRIGGER ALL", "DROP TRIGGER events_append_only ON events",
                          "DELETE FROM erasures", "UPDATE alembic_version SET version_num = '0001'"):
            with pytest.raises(sa.exc.DatabaseError, match=r"permission denied|must be owner"), db.begin() as conn:
                conn.exec_driver_sql(statement)
    finally:
        db.dispose()
    assert snapshot(owner_url) == before


def test_the_docs_grant_delete_only_on_replaced_state() -> None:
    deletes = re.findall(r"GRANT ([A-Z, ]*DELETE[A-Z, ]*) ON ([a-z_, ]+) TO", grants_sql("o", "a"))
    assert deletes == [("DELETE", "lead_tasks, sessions, rate_limits")]
    assert not Path(ROOT / "docs" / "operations.md").read_text(encoding="utf-8").count("GRANT ALL")
