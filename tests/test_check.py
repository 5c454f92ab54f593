"""``leadflow check`` finds every kind of damage (issue 15): each is made by raw SQL, on both databases, and
reported with the lead, the column, the stored and the rebuilt value; a healthy database passes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.conftest import Team, check_error, leadflow, ok, refused


@pytest.fixture
def worked(team: Team) -> Iterator[dict[str, int]]:
    """Leads with a history: one advanced, one closed and reopened, one closed."""
    anna, marta = team.as_("anna"), team.as_("marta")
    ids = {}
    for name in ("advanced", "reopened", "closed"):
        lead = anna.leads.add(process="photovoltaics", name=f"Client {name}", phone="+48 600 100 200",
                              value="1000.00")
        ids[name] = int(lead["id"])
    anna.leads.complete_task(ids["advanced"], "record_contact")
    anna.leads.advance(ids["advanced"])
    marta.leads.close(ids["reopened"], "bad_timing")
    marta.leads.reopen(ids["reopened"])
    marta.leads.close(ids["closed"], "bad_timing")
    yield ids


def corrupt(url: str, statement: str, **params: object) -> None:
    db = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with db.begin() as conn:
            if db.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
            elif "999999" in statement:  # PostgreSQL keeps its constraints: the damage is one dropped by hand
                conn.exec_driver_sql("ALTER TABLE closures DROP CONSTRAINT fk_closures_lead_id_leads")
            assert conn.execute(sa.text(statement), params).rowcount != 0, statement
    finally:
        db.dispose()


def test_a_healthy_database_passes(team: Team, worked: dict[str, int]) -> None:
    report = team.admin.admin.check()
    assert report["differences"] == []
    assert report["ok"] and report["leads"] == 3
    out = ok(team.url, "root", "check").stdout
    assert out.startswith("Checked 3 leads on ") and out.endswith("everything agrees.\n")


DAMAGE = [
    # (what, the statement, the kind, the table, the column reported)
    ("a lead's stage", "UPDATE leads SET stage = 'close_contract' WHERE id = :advanced", "lead", "leads", "stage"),
    ("a lead's owner", "UPDATE leads SET owner = 'piotr' WHERE id = :advanced", "lead", "leads", "owner"),
    ("a lead's fields", "UPDATE leads SET fields_json = '{\"roof_type\": \"flat\"}' WHERE id = :advanced", "lead",
     "leads", "fields"),
    ("the light", "UPDATE leads SET red_at = NULL WHERE id = :advanced", "projection", "leads.red_at", "red_at"),
    ("a task", "UPDATE lead_tasks SET state = 'done' WHERE lead_id = :advanced AND state = 'open' "
     "AND task_id = (SELECT min(task_id) FROM lead_tasks WHERE lead_id = :advanced AND state = 'open')", "lead",
     "lead_tasks", None),
    ("a task row gone", "DELETE FROM lead_tasks WHERE lead_id = :closed", "lead", "lead_tasks", None),
    ("stage_counts", "UPDATE stage_counts SET leads = leads + 5", "projection", "stage_counts", "leads"),
    ("stage_counts' value", "UPDATE stage_counts SET value_minor = 7", "projection", "stage_counts", "value_minor"),
    ("lead_stages", "UPDATE lead_stages SET seconds = seconds + 3600 WHERE lead_id = :advanced AND NOT moved_on",
     "projection", "lead_stages", None),
    ("a lead_stages row gone", "DELETE FROM lead_stages WHERE lead_id = :reopened", "projection", "lead_stages", None),
    ("ownerships", "UPDATE ownerships SET owner = 'piotr' WHERE lead_id = :closed", "projection", "ownerships", None),
    ("a lead's past", "UPDATE lead_spans SET status = 'open' WHERE lead_id = :closed AND ended_at IS NULL",
     "projection", "lead_spans", None),
    ("its past gone", "DELETE FROM lead_spans WHERE lead_id = :reopened",
     "projection", "lead_spans", None),
    ("a stay", "UPDATE lead_stays SET left_at = NULL, seconds = NULL WHERE lead_id = :advanced", "projection",
     "lead_stays", None),
    ("a closure's reason", "UPDATE closures SET reason = 'no_budget' WHERE lead_id = :closed", "projection",
     "closures", "reason"),
    ("a closure's reopening", "UPDATE closures SET reopened_at = NULL WHERE lead_id = :reopened", "projection",
     "closures", "reopened_at"),
    ("a closure gone", "DELETE FROM closures WHERE lead_id = :closed", "projection", "closures", "count"),
    ("a foreign key", "UPDATE closures SET lead_id = 999999 WHERE lead_id = :closed", "database", "closures", None),
    ("an unfinished erasure", "INSERT INTO erasures (client_id, requested_by, started_at) "
     "SELECT client_id, 'root', CURRENT_TIMESTAMP FROM leads WHERE id = :closed", "erasure", "erasures", None),
]


@pytest.mark.parametrize(("what", "statement", "kind", "table", "column"), DAMAGE, ids=[d[0] for d in DAMAGE])
def test_each_kind_of_damage_is_reported(team: Team, worked: dict[str, int], what: str, statement: str, kind: str,
                                         table: str, column: str | None) -> None:
    corrupt(team.url, statement, **worked)
    report = team.admin.admin.check()
    assert not report["ok"]
    assert any(d["kind"] == kind and d["table"] == table and (column is None or d["column"] == column)
               for d in report["differences"]), report["differences"]
    result = leadflow(team.url, "root", "check --json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["differences"] == report["differences"]
    text = leadflow(team.url, "root", "check")
    assert text.exit_code == 1 and f"{kind}: " in text.stdout and "difference" in text.stdout.splitlines()[-1]


def test_a_difference_names_the_lead_the_column_and_both_values(team: Team, worked: dict[str, int]) -> None:
    corrupt(team.url, "UPDATE leads SET stage = 'close_contract' WHERE id = :advanced", **worked)
    (difference,) = [d for d in team.admin.admin.check()["differences"] if d["column"] == "stage"]
    lead = worked["advanced"]
    assert difference["lead_id"] == lead
    assert difference["stored"] == "close_contract"
    assert difference["rebuilt"] == team.admin.leads.rebuild(lead).stage
    assert difference["message"] == (f"lead {lead}: stage is \"close_contract\", its history says "
                                     f"\"{difference['rebuilt']}\"")


def test_a_disabled_history_trigger_is_reported(team: Team) -> None:
    drop = ("DROP TRIGGER events_no_delete" if team.url.startswith("sqlite")
            else "ALTER TABLE events DISABLE TRIGGER events_append_only")
    db = sa.create_engine(team.url, poolclass=sa.pool.NullPool)
    try:
        with db.begin() as conn:
            conn.exec_driver_sql(drop)
    finally:
        db.dispose()
    (difference,) = team.admin.admin.check()["differences"]
    assert difference["kind"] == "database" and "is missing or disabled" in difference["message"]


def test_sqlite_page_damage_is_reported(sqlite_url: str, tmp_path: object) -> None:
    """integrity_check reads every page: an index whose entries no longer match its table is found."""
    from tests.conftest import build_team

    build_team(sqlite_url)
    db = sa.create_engine(sqlite_url, poolclass=sa.pool.NullPool)
    try:
        with db.begin() as conn:
            conn.exec_driver_sql("PRAGMA writable_schema = ON")
            # the index of users.team now claims to index users.role: its entries no longer match the rows
            conn.exec_driver_sql("UPDATE sqlite_master SET sql = replace(sql, '(team)', '(role)') "
                                 "WHERE type = 'index' AND tbl_name = 'users' AND sql LIKE '%(team)%'")
    finally:
        db.dispose()
    result = leadflow(sqlite_url, "root", "check --json")
    assert result.exit_code == 1
    assert any(d["kind"] == "database" and d["message"].startswith("integrity_check: ")
               for d in json.loads(result.stdout)["differences"])


def test_only_admins_check(team: Team) -> None:
    assert refused(team.url, "marta", "check") == ("Error: user 'marta' (manager, team north) may not check the "
                                                 "database: only an admin may")
    check_error(leadflow(team.url, "nobody", "check"), 1)


@pytest.mark.parametrize("code", ["pl", "ro", "ru"])
def test_differences_are_shown_in_the_readers_language(team: Team, worked: dict[str, int], code: str) -> None:
    """Each kind of damage is told in the admin's language; ``--json`` keeps the English sentence and gives the
    template and its parameters (the same in every language, docs/i18n.md)."""
    from engine.i18n import message_text

    for what, statement, *_ in DAMAGE:
        if what not in ("a closure gone", "a task row gone", "its past gone"):  # others need those rows
            corrupt(team.url, statement, **worked)
    english = team.admin.admin.check()["differences"]
    assert {d["kind"] for d in english} == {"lead", "projection", "database", "erasure"}
    ok(team.url, "root", f"user set root --language {code}")
    shown = leadflow(team.url, "root", "check")
    assert shown.exit_code == 1
    lines = shown.stdout.splitlines()
    for d in english:
        assert d["message"] == message_text(d, "en")
        told = message_text(d, code)
        assert told != d["message"], d["message_id"]  # translated, not the English sentence
        assert f"{d['kind']}: {told}" in lines
    assert json.loads(leadflow(team.url, "root", "check --json").stdout)["differences"] == english
