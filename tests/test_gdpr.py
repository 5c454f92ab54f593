"""GDPR: correcting a client's data (article 16, ``client edit``) and erasing it (article 17, ``client erase``), on
SQLite and PostgreSQL, through the engine and the CLI in every mode."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine import store
from engine.erasure import PLACEHOLDER
from engine.errors import InvalidInputError, NotFoundError, PermissionDenied, RuleViolation
from engine.state import Event
from tests.conftest import PROCESSES_DIR, USERS, Team, cli_floor, js, ok, printed, refused, snapshot
from tests.test_rebuild import assert_rebuilds

PV = "photovoltaics"
NAME, EMAIL, PHONE, TYPED = "Zofia Wymazalska", "zofia.wymaz@example.pl", "+48601234987", "601 234 987"
COMPANY, TAX, WITNESS = "Wymaz Sp. z o.o.", "5250007788", "Józef Świadek"
#: What must be nowhere after the erasure: as stored, as typed, folded as search keeps it.
NEEDLES = [NAME, EMAIL, PHONE, TYPED, "601234987", "zofia wymazalska", COMPANY, TAX, WITNESS, "wymazalsk"]


@pytest.fixture
def personal_team(team: Team, tmp_path: Path) -> Team:
    """The team, with photovoltaics' ``decision_maker`` marked personal (a new version of the process)."""
    text = (PROCESSES_DIR / f"{PV}.yaml").read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith("  - {id: decision_maker, "))
    assert line.endswith(", type: text, bant: A}")
    marked = text.replace(line, line[:-1] + ", personal: true}")
    assert marked != text
    (tmp_path / f"{PV}.yaml").write_text(marked, encoding="utf-8")
    team.admin.processes.load(tmp_path / f"{PV}.yaml")
    return team


def a_history(team: Team) -> tuple[int, list[int]]:
    """A client with two leads, one lost and one open, whose every free text names the client."""
    anna = team.as_("anna")
    first = anna.leads.add(process=PV, name=NAME, email=EMAIL, phone=TYPED, company=COMPANY, tax_id=TAX,
                           fields={"decision_maker": WITNESS, "roof_type": "flat"})
    client = first["client_id"]
    second = anna.leads.add(process=PV, client_id=client, fields={"decision_maker": f"{NAME}'s husband"})
    anna.activities.add(first["id"], kind="call", text=f"Called {NAME} on {TYPED}, she wrote from {EMAIL}",
                        outcome="reached")
    anna.leads.set_fields(first["id"], {"decision_maker": f"{WITNESS} (brother)", "roof_area_m2": "40"})
    anna.recovery.report(first["id"], f"{NAME} asks for a call at 0048 601-234-987")
    anna.leads.complete_task(first["id"], "record_contact", note=f"talked with {NAME.upper()}")
    anna.leads.advance(first["id"])  # first_contact: queues the welcome mail to the client
    with team.admin.transaction() as conn:  # as run-due leaves a sent mail (tests/test_outbox.py sends real ones)
        (mail,) = conn.execute(sa.select(store.outbox.c.id).where(store.outbox.c.lead_id == first["id"])).all()
        conn.execute(sa.update(store.outbox).where(store.outbox.c.id == mail.id).values(
            state="sent", to_address=EMAIL, subject=f"Welcome, {NAME}", last_error=f"refused: {EMAIL}"))
        store.append_events(conn, [(first["id"], client, Event(kind="mail_sent", at=dt.datetime(2026, 3, 2, 9),
                                                                actor="run-due", data={
            "outbox": mail.id, "kind": "email", "template": "welcome", "to": "client", "address": EMAIL,
            "message_id": "<1@leadflow>"}))])
    anna.leads.close(first["id"], "no_budget", note=f"{NAME} ({COMPANY}) has no money")
    team.as_("marta").recovery.review_confirm(first["id"], f"{NAME} really has no budget")
    return client, [first["id"], second["id"]]


def reports(team: Team) -> list[Any]:
    admin = team.admin
    removals = admin.recovery.removals("2026-03")
    for row in removals["clients"]:  # the one report that names the clients: its counts, not their names
        row.update(name=None, note=None)
    return [admin.reports.funnel(), admin.reports.refusals(period="all"), admin.reports.cycle(),
            admin.reports.salespeople(), removals]


def text_columns_holding(team: Team, needles: list[str]) -> list[str]:
    """Every text column of every table (and the search's FTS table) that holds one of ``needles``."""
    found = []
    with team.admin.db.connect() as conn:
        for table in store.metadata.sorted_tables:
            for column in table.columns:
                if isinstance(column.type, (sa.String, sa.Text)):
                    for needle in needles:
                        if conn.execute(sa.select(sa.func.count()).select_from(table).where(
                                sa.func.lower(column).contains(needle.lower()))).scalar():
                            found.append(f"{table.name}.{column.name}: {needle}")
    return found


def test_erasure_leaves_no_personal_string_and_every_count(personal_team: Team) -> None:
    team = personal_team
    client, lead_ids = a_history(team)
    before = reports(team)
    assert text_columns_holding(team, NEEDLES)  # the test's needles are there to be found
    shown = team.admin.clients.erase(client, reason="art. 17 request, ticket 4711")
    assert shown["name"] == PLACEHOLDER and shown["email"] is None and shown["phone"] is None
    assert shown["company"] is None and shown["tax_id"] is None
    assert [(lead["id"], lead["status"], lead["stage"]) for lead in shown["leads"]] == [
        (lead_ids[0], "lost", "first_contact"), (lead_ids[1], "open", "register_lead")]
    assert text_columns_holding(team, NEEDLES) == []
    assert reports(team) == before
    for lead_id in lead_ids:
        assert_rebuilds(team, lead_id)
        history = team.admin.leads.history(lead_id)
        assert history[-1]["kind"] == "client_erased" and history[-1]["actor"] == "root"
        assert history[-1]["data"] == {"reason": "art. 17 request, ticket 4711"}
    assert team.admin.stored_lead(lead_ids[0]).close_reason == "no_budget"
    assert team.admin.stored_lead(lead_ids[0]).fields["decision_maker"] == PLACEHOLDER
    assert team.admin.stored_lead(lead_ids[0]).fields["roof_area_m2"] == 40  # not personal: kept
    assert team.admin.search.find("Wymazalska") == [] and team.admin.search.find(TYPED) == []
    assert team.admin.admin.check()["differences"] == []
    with pytest.raises(RuleViolation, match=f"can't erase client {client}: its personal data were erased at .* by "
                                            "root"):
        team.admin.clients.erase(client, reason="again")
    with pytest.raises(RuleViolation, match="were erased"):
        team.admin.clients.edit(client, name="Someone", reason="typo")


def test_erasure_leaves_no_trace_in_the_sqlite_file(personal_team: Team, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the raw bytes of a file: SQLite's (PostgreSQL: the text columns above, VACUUM is the operator's)")
    team = personal_team
    client, _ = a_history(team)
    path = Path(db_url.removeprefix("sqlite:///"))

    def raw_bytes() -> bytes:
        return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())

    assert all(needle.encode() in raw_bytes() for needle in (NAME, EMAIL, PHONE, TYPED, WITNESS))  # there before
    team.admin.clients.erase(client, reason="request")
    team.admin.close()
    data = raw_bytes()
    for needle in NEEDLES:
        for form in {needle, needle.lower()}:
            assert form.encode() not in data, f"{form!r} is still in the database file"


def test_erasure_of_a_merged_client_and_refusals(team: Team) -> None:
    anna = team.as_("anna")
    first = anna.leads.add(process=PV, name=NAME, email=EMAIL)
    second = anna.leads.add(process=PV, name=NAME, phone=TYPED)
    team.as_("marta").clients.merge(first["client_id"], second["client_id"])
    before = snapshot(team.url)
    for who, error in (("anna", PermissionDenied), ("marta", PermissionDenied), ("olga", PermissionDenied)):
        with pytest.raises(error, match="only an admin may"):
            team.as_(who).clients.erase(first["client_id"], reason="x")
    with pytest.raises(InvalidInputError, match=f"merged into client {first['client_id']}; erase that one"):
        team.admin.clients.erase(second["client_id"], reason="x")
    with pytest.raises(InvalidInputError, match="needs its reason"):
        team.admin.clients.erase(first["client_id"], reason="  ")
    with pytest.raises(NotFoundError, match="client 999 does not exist"):
        team.admin.clients.erase(999, reason="x")
    assert snapshot(team.url) == before
    team.admin.clients.erase(first["client_id"], reason="request")
    assert text_columns_holding(team, [NAME, EMAIL, PHONE]) == []
    for lead in (first, second):
        assert_rebuilds(team, lead["id"])
    assert team.admin.admin.check()["differences"] == []


def test_erasure_touches_no_id_the_history_rebuilds_with(team: Team) -> None:
    """A client called like a salesperson, a team, a stage or an option: only texts about the client go."""
    anna = team.as_("anna")
    lead = anna.leads.add(process=PV, name="Anna", company="north", source="first_contact",
                          fields={"roof_type": "flat", "need": "Anna of north wants it flat"})
    anna.leads.complete_task(lead["id"], "record_contact")
    anna.leads.advance(lead["id"])
    team.admin.clients.erase(lead["client_id"], reason="request")
    stored = team.admin.stored_lead(lead["id"])
    assert (stored.owner, stored.team, stored.source, stored.stage) == ("anna", "north", "first_contact",
                                                                         "first_contact")
    assert stored.fields["roof_type"] == "flat"
    assert stored.fields["need"] == f"{PLACEHOLDER} of {PLACEHOLDER} wants it flat"
    assert_rebuilds(team, lead["id"])
    assert team.admin.admin.check()["differences"] == []


def test_correction_updates_search_events_and_refuses_duplicates(team: Team) -> None:
    anna = team.as_("anna")
    lead = anna.leads.add(process=PV, name="Jan Kowalsky", email="jan@example.pl")
    other = anna.leads.add(process=PV, name="Ewa Nowak", phone="602 111 222")
    client = lead["client_id"]
    edited = anna.clients.edit(client, name="Jan Kowalski", phone="601 333 444", email="", reason="typo in the name")
    assert (edited["name"], edited["phone"], edited["email"]) == ("Jan Kowalski", "+48601333444", None)
    assert [h["client_id"] for h in anna.search.find("Kowalski")] == [client]
    assert anna.search.find("Kowalsky") == [] and anna.search.find("jan@example.pl") == []
    assert [h["client_id"] for h in anna.search.find("601333444")] == [client]
    event = team.admin.leads.history(lead["id"])[-1]
    assert (event["kind"], event["actor"]) == ("client_edited", "anna")
    assert event["data"] == {"changed": ["email", "name", "phone"], "reason": "typo in the name"}
    assert_rebuilds(team, lead["id"])
    before = snapshot(team.url)
    with pytest.raises(InvalidInputError, match=f"phone \\+48602111222 is client {other['client_id']}'s; .*"
                                                f"leadflow client merge {client} {other['client_id']}"):
        anna.clients.edit(client, phone="602-111-222", reason="new number")
    with pytest.raises(InvalidInputError, match="needs its reason"):
        anna.clients.edit(client, name="X", reason="")
    with pytest.raises(InvalidInputError, match="nothing to correct"):
        anna.clients.edit(client, reason="why")
    with pytest.raises(InvalidInputError, match="already has these values"):
        anna.clients.edit(client, name="Jan Kowalski", reason="why")
    with pytest.raises(InvalidInputError, match="cannot be cleared"):
        anna.clients.edit(client, name=" ", reason="why")
    with pytest.raises(InvalidInputError, match="bidirectional"):
        anna.clients.edit(client, name="Invoice \u202egpj.exe", reason="why")
    with pytest.raises(InvalidInputError, match="not an address"):
        anna.clients.edit(client, email="nobody", reason="why")
    with pytest.raises(PermissionDenied, match="may not correct client"):
        team.as_("olga").clients.edit(client, name="Jan K.", reason="why")  # sees the lead, does not work it
    with pytest.raises(PermissionDenied, match="may not see client"):
        team.as_("piotr").clients.edit(client, name="Jan K.", reason="why")  # a colleague's client
    with pytest.raises(PermissionDenied):
        team.as_("radu").clients.edit(client, name="Jan K.", reason="why")  # another team's manager
    with pytest.raises(NotFoundError):
        anna.clients.edit(12345, name="Jan K.", reason="why")
    assert snapshot(team.url) == before
    assert team.as_("marta").clients.edit(client, company="Kowalski PV", reason="he has a firm")["company"] == (
        "Kowalski PV")
    # a line break in a one-line text becomes a space
    assert anna.clients.edit(client, name="Jan\nKowalski Jr", reason="why")["name"] == "Jan Kowalski Jr"


def test_a_personal_field_may_not_decide_a_condition(tmp_path: Path) -> None:
    from engine.loader import load_file

    text = (PROCESSES_DIR / f"{PV}.yaml").read_text(encoding="utf-8")
    marked = text.replace("type: choice\n    options: [cash, loan, leasing]",
                          "type: choice\n    personal: true\n    options: [cash, loan, leasing]")
    assert marked != text
    (tmp_path / "pv.yaml").write_text(marked, encoding="utf-8")
    with pytest.raises(Exception, match="field 'financing' is personal"):
        load_file(tmp_path / "pv.yaml")


# -- the CLI, local and through the server -------------------------------------------------------------------

def people_db(cli_db: Any) -> str:
    return cli_db.template("gdpr", cli_floor(USERS))


def test_cli_edit_and_erase_with_refusals_per_role(cli_db: Any) -> None:
    url = people_db(cli_db)
    lead = js(url, "anna", ["lead", "add", "--process", PV, "--name", NAME, "--email", EMAIL, "--phone", TYPED])
    client = str(lead["client_id"])
    # through a server a client the caller may not see reads as a missing one (docs/server.md)
    hidden = f"client {client} does not exist" if cli_db.remote else "may not see client"
    for user in ("piotr", "radu", "ioana", "olga"):
        assert re.search(f"may not correct client|{hidden}", refused(url, user, ["client", "edit", client, "--name",
                                                                             "X", "--reason", "why"]))
    for user in ("anna", "marta", "radu", "olga"):
        assert "only an admin may" in refused(url, user, ["client", "erase", client, "--reason", "asked"])
    assert "needs its reason" in refused(url, "root", ["client", "erase", client, "--reason", ""])
    assert "client 999 does not exist" in refused(url, "root", ["client", "erase", "999", "--reason", "asked"])
    assert "Missing option '--reason'" in refused(url, "anna", ["client", "edit", client, "--name", "X"], code=2)
    assert "bidirectional" in refused(url, "anna", ["client", "edit", client, "--name", "a\u202eb",
                                                    "--reason", "why"])
    edited = js(url, "anna", ["client", "edit", client, "--name", "Zofia Wymazalska-Nowak", "--reason", "married"])
    assert edited["name"] == "Zofia Wymazalska-Nowak"
    assert "Client" in printed(url, "marta", ["client", "edit", client, "--company", "ZW", "--reason", "firm"])
    out = printed(url, "root", ["client", "erase", client, "--reason", "art. 17"])
    assert f"Client {client}" in out and "erased" in out
    shown = js(url, "root", ["client", "show", client])
    assert shown["name"] == PLACEHOLDER and shown["email"] is None and shown["company"] is None
    assert "were erased at" in refused(url, "root", ["client", "erase", client, "--reason", "again"])
    ok(url, "root", "check") if not cli_db.remote else None


# -- the clock: LEADFLOW_NOW only on a demo or test database (local mode) -------------------------------------

def test_leadflow_now_is_refused_on_a_database_for_real_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    from tests.conftest import check_error, leadflow

    monkeypatch.delenv("LEADFLOW_TEST_DATABASE")
    real, test = f"sqlite:///{tmp_path / 'real.db'}", f"sqlite:///{tmp_path / 'test.db'}"
    ok(real, "root", "init")  # no schema yet: init may run whatever the clock
    ok(test, "root", "init --test")
    ok(test, "root", "init --test")  # again: it already is one
    ok(test, "root", ["process", "load", str(PROCESSES_DIR / f"{PV}.yaml")])
    ok(real, "root", ["process", "load", str(PROCESSES_DIR / f"{PV}.yaml")], now="")  # the real clock: fine
    before = snapshot(real)
    line = check_error(leadflow(real, "root", ["lead", "add", "--process", PV, "--name", "Jan"],
                                now="2020-01-01T09:00"), 1)
    assert line == ("Error: LEADFLOW_NOW is set (2020-01-01T09:00:00), but this database is for real work, not a "
                    "demo or a test database: its history is written at the real time; unset LEADFLOW_NOW (a test "
                    "database is made with 'leadflow init --test')")
    assert snapshot(real) == before
    assert "only a new database can be made a test database" in check_error(
        leadflow(real, "root", "init --test", now=""), 1)
    assert snapshot(real) == before
    added = js(test, "root", ["lead", "add", "--process", PV, "--name", "Jan"], now="2020-01-01T09:00")
    assert added["created_at"] == "2020-01-01T09:00:00"  # a test database honours it
    added = js(real, "root", ["lead", "add", "--process", PV, "--name", "Jan"], now="")
    assert added["created_at"] > "2026-12-01"


def test_a_demo_database_honours_leadflow_now(tmp_path: Path) -> None:
    demo = tmp_path / "demo.db"
    ok(None, None, ["demo", "--db", str(demo)])
    shown = js(f"sqlite:///{demo}", "anna", ["lead", "list"], now="2026-03-16T09:00:00")
    assert shown
