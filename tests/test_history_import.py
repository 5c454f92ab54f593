"""The history import (``import FILE --history``): deals from another CRM written as the events that made them, on
SQLite and PostgreSQL. Every deal must be what the same events written live make of a lead (rebuild, lead_stages,
closures), re-importing changes nothing, later files move deals on, and every bad row is refused with its line."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine import store
from engine.errors import InvalidInputError, PermissionDenied
from tests.conftest import Team, js, leadflow, ok, refused, snapshot

PV = "photovoltaics"
HEADER = ["external_id", "company", "name", "email", "stage", "status", "created_at", "reached_first_contact",
          "reached_first_meeting", "reached_send_offer", "reached_close_contract", "closed_at", "close_reason",
          "owner", "team", "product", "value", "financing"]


def deal(external_id: str, **values: str) -> list[str]:
    row = {"external_id": external_id, **values}
    return [row.get(h, "") for h in HEADER]


def write(path: Path, rows: list[list[str]], header: list[str] = HEADER, encoding: str = "utf-8") -> Path:
    with path.open("w", newline="", encoding=encoding) as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


HISTORY = [
    # won, a company's deal with its contact person, every stage dated
    deal("D-1", company="Budimex SA", name="Jan Kowalski", email="jan@budimex.pl", status="won",
         created_at="2025-01-06", reached_first_contact="2025-01-07", reached_first_meeting="2025-01-10",
         reached_send_offer="2025-01-20", reached_close_contract="2025-02-03", closed_at="2025-02-10T15:30",
         owner="anna", product="pv-10", value="45000", financing="cash"),
    # lost in send_offer, the same company, another person; the reason by its label
    deal("D-2", company="budimex sa", name="Ewa Nowak", stage="send_offer", status="lost", created_at="2025-03-03",
         reached_first_contact="2025-03-04", reached_send_offer="2025-03-20", closed_at="2025-04-01",
         close_reason="Price too high", owner="piotr", product="pv-5", value="20000"),
    # open in first_meeting, only a company
    deal("D-3", company="Orlen SA", stage="first_meeting", created_at="2025-06-02", reached_first_contact="2025-06-03",
         reached_first_meeting="2025-06-10", owner="anna", team="north", value="15000"),
    # open, a person, only created
    deal("D-4", name="Łukasz Żółć", email="lukasz@example.pl", stage="register_lead", created_at="2026-02-27T10:00",
         owner="ioana"),
]


def history_file(tmp_path: Path, rows: list[list[str]] | None = None, name: str = "deals.csv") -> Path:
    return write(tmp_path / name, HISTORY if rows is None else rows)


def lead_of(team: Team, external_id: str) -> dict[str, Any]:
    return team.admin.leads.get(team.admin.leads.find_external(external_id))  # type: ignore[no-any-return]


def rows_of(url: str, table: sa.Table, *columns: str) -> list[tuple[Any, ...]]:
    db = sa.create_engine(url)
    try:
        with db.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.select(*(table.c[c] for c in columns)).order_by(
                *(table.c[c] for c in columns)))]
    finally:
        db.dispose()


def test_each_deal_becomes_the_events_that_made_it(team: Team, tmp_path: Path) -> None:
    report = team.admin.intake.import_csv(history_file(tmp_path), process=PV, history=True)
    assert (report["status"], report["imported"], report["rejected"], report["rejects"]) == ("imported", 4, 0, [])
    assert report["history"] == {"updated": 0, "unchanged": 0, "open": 2, "won": 1, "lost": 1}
    # a digest to each owner of an open deal (anna, ioana), none for closed deals (tests/test_import_digest.py)
    assert (report["new_clients"], report["repeated_clients"], report["mails_queued"]) == (3, 1, 2)
    won, lost, open_, person = (lead_of(team, f"D-{i}") for i in range(1, 5))
    assert (won["status"], won["stage"], won["closed_at"], won["owner"], won["team"], won["value"]) == (
        "won", "close_contract", "2025-02-10T15:30:00", "anna", "north", "45000.00")
    assert (won["created_at"], won["fields"], won["product"]) == ("2025-01-06T00:00:00", {"financing": "cash"}, "pv-10")
    assert (lost["status"], lost["stage"], lost["close_reason"], lost["closed_at"]) == (
        "lost", "send_offer", "price", "2025-04-01T00:00:00")
    assert (open_["status"], open_["stage"], open_["stage_entered_at"]) == ("open", "first_meeting",
                                                                          "2025-06-10T00:00:00")
    assert (person["stage"], person["owner"], person["team"], person["name"]) == (
        "register_lead", "ioana", "south", "Łukasz Żółć")
    # one company with its two people; the company-only deal's client is a company without people
    assert won["client_id"] == lost["client_id"]
    company = team.admin.clients.get(won["client_id"])
    assert (company["kind"], company["name"]) == ("company", "Budimex SA")
    assert [p["name"] for p in company["contacts"]] == ["Jan Kowalski", "Ewa Nowak"]
    assert team.admin.clients.get(open_["client_id"])["kind"] == "company"
    # the history: who did what when; tasks of passed stages done at the stage's exit by the importer
    history = team.admin.leads.history(won["id"])
    kinds = [(e["kind"], e["at"][:10], e["actor"]) for e in history if e["kind"] != "task_done"]
    assert kinds == [("created", "2025-01-06", "anna"), ("advanced", "2025-01-07", "anna"),
                     ("advanced", "2025-01-10", "anna"), ("advanced", "2025-01-20", "anna"),
                     ("advanced", "2025-02-03", "anna"), ("won", "2025-02-10", "anna")]
    done = [e for e in history if e["kind"] == "task_done"]
    assert done and all(e["actor"] == "root" and e["data"]["note"] == "imported" for e in done)
    assert {e["at"][:10] for e in done if e["data"]["stage"] == "first_meeting"} == {"2025-01-20"}
    assert [e["data"]["reason"] for e in team.admin.leads.history(lost["id"]) if e["kind"] == "closed"] == ["price"]
    for lead in (won, lost, open_, person):
        assert team.admin.leads.rebuild(lead["id"]).comparable() == team.admin.leads.stored(lead["id"]).comparable()
    # lead_stages as the event log makes them, closures for the lost deal, no review, no mail but the digests
    stages = rows_of(team.url, store.lead_stages, "lead_id", "stage", "entered_at", "seconds", "moved_on", "status")
    # the leads' past (lead_spans, lead_stays) as the rebuild makes it too, a span per instant of a move
    past = [rows_of(team.url, store.lead_spans, "lead_id", "started_at", "ended_at", *store.SPAN_ATTRS),
            rows_of(team.url, store.lead_stays, "lead_id", "stage", "entered_at", "left_at", "seconds", "moved_on")]
    assert [s[7] for s in past[0] if s[0] == lost["id"]][-2:] == ["open", "lost"]
    assert team.admin.reports.rebuild_stages() is not None
    assert [rows_of(team.url, store.lead_spans, "lead_id", "started_at", "ended_at", *store.SPAN_ATTRS),
            rows_of(team.url, store.lead_stays, "lead_id", "stage", "entered_at", "left_at", "seconds",
                    "moved_on")] == past
    assert team.admin.admin.check()["differences"] == []
    assert rows_of(team.url, store.lead_stages, "lead_id", "stage", "entered_at", "seconds", "moved_on",
                   "status") == stages
    assert next(s for s in stages if s[0] == won["id"])[1:] == ("close_contract", dt("2025-02-03"), 7 * 86400 + 55800,
                                                              True, "won")
    assert rows_of(team.url, store.closures, "lead_id", "reason", "kind", "owner", "stage", "closed_at") == [
        (lost["id"], "price", "refusal", "piotr", "send_offer", dt("2025-04-01"))]
    assert rows_of(team.url, store.reviews, "lead_id") == []
    assert rows_of(team.url, store.outbox, "lead_id", "kind") == sorted(
        [(open_["id"], "import_digest"), (person["id"], "import_digest")])  # the open deals' owners' digests
    funnel = next(f for f in team.admin.reports.funnel(period="all")["funnels"] if f["process"] == PV)
    assert [(s["stage"], s["reached"]) for s in funnel["stages"]] == [
        ("register_lead", 4), ("first_contact", 3), ("first_meeting", 3), ("send_offer", 2), ("close_contract", 1)]


def dt(text: str) -> Any:
    import datetime

    return datetime.datetime.fromisoformat(text)


def test_importing_the_same_file_again_changes_nothing_and_a_later_file_moves_deals_on(
        team: Team, tmp_path: Path) -> None:
    path = history_file(tmp_path)
    team.admin.intake.import_csv(path, process=PV, history=True)
    before = snapshot(team.url)
    again = team.admin.intake.import_csv(path, process=PV, history=True)
    assert (again["imported"], again["history"]["unchanged"], again["import_id"]) == (0, 4, None)
    assert snapshot(team.url) == before
    later = [row[:] for row in HISTORY]
    # D-3 was won since; D-4 moved on one stage
    later[2] = deal("D-3", company="Orlen SA", status="won", created_at="2025-06-02", reached_send_offer="2025-07-01",
                    reached_close_contract="2025-07-15", closed_at="2025-08-01", owner="anna", value="15000")
    later[3] = deal("D-4", name="Łukasz Żółć", email="lukasz@example.pl", stage="first_contact",
                    created_at="2026-02-27T10:00", reached_first_contact="2026-02-28", owner="ioana")
    report = team.admin.intake.import_csv(write(tmp_path / "later.csv", later), process=PV, history=True)
    assert report["history"] == {"updated": 2, "unchanged": 2, "open": 1, "won": 1, "lost": 0}
    assert report["imported"] == 0
    won = lead_of(team, "D-3")
    assert (won["status"], won["closed_at"]) == ("won", "2025-08-01T00:00:00")
    assert lead_of(team, "D-4")["stage"] == "first_contact"
    for ext in ("D-3", "D-4"):
        lead_id = team.admin.leads.find_external(ext)
        assert team.admin.leads.rebuild(lead_id).comparable() == team.admin.leads.stored(lead_id).comparable()
    # a deal that would go back is refused, the rest written
    back = [deal("D-1", company="Budimex SA", stage="first_contact", created_at="2025-01-06", owner="anna"),
            deal("D-5", name="Nowy", email="nowy@example.pl", stage="register_lead", created_at="2026-01-05",
                 owner="anna")]
    report = team.admin.intake.import_csv(write(tmp_path / "back.csv", back), process=PV, history=True)
    assert report["imported"] == 1
    assert [{"line": r["line"], "reason": r["reason"]} for r in report["rejects"]] == [{"line": 2, "reason": (
        f"lead {lead_of(team, 'D-1')['id']} (external_id 'D-1') is won in leadflow, the file has it open in "
        "'first_contact': a deal's history does not go back (a manager may reopen it)")}]


NOT_A_STAGE = ("is not a stage of process photovoltaics; stages: register_lead, first_contact, first_meeting, "
               "send_offer, close_contract")
BAD_ROWS = [
    (deal("B-1", name="A", stage="send_offer", created_at="2025-03-01", reached_first_contact="2025-03-05",
          reached_send_offer="2025-03-02"),
     "reached_send_offer 2025-03-02T00:00:00 is before the deal reached 'first_meeting' or was last changed "
     "(2025-03-05T00:00:00); dates go forward along the stages"),
    (deal("B-2", name="A", stage="first_contact", created_at="2027-01-01"),
     "created_at 2027-01-01T00:00:00 is in the future (now is 2026-03-02T09:00:00)"),
    (deal("B-3", name="A", stage="negotiation", created_at="2025-01-01"), f"stage 'negotiation' {NOT_A_STAGE}"),
    (deal("B-4", name="A", status="lost", stage="send_offer", created_at="2025-01-01", closed_at="2025-02-01",
          close_reason="Budget cut"),
     "close_reason 'Budget cut' is not a closure reason of process photovoltaics; give one of no_budget, "
     "no_authority, no_need, bad_timing, competitor, price, unreachable, duplicate, not_a_client or map it with "
     "--map-reason 'Budget cut'=REASON"),
    (deal("B-5", name="A", stage="first_contact", created_at="01/02/2025"),
     "created_at '01/02/2025' is not an ISO-8601 date-time such as 2026-03-02T09:30"),
    (deal("B-6", name="=HYPERLINK(\"http://evil\")", stage="=cmd|' /C calc'!A0", created_at="2025-01-01"),
     f"stage \"=cmd|' /C calc'!A0\" {NOT_A_STAGE}"),
    (deal("B-7", name="A", status="won", stage="send_offer", created_at="2025-01-01", closed_at="2025-02-01"),
     "a won deal was won from 'close_contract', the won stage of process photovoltaics, not from 'send_offer'"),
    (deal("B-8", name="A", stage="first_contact", created_at="2025-01-01", closed_at="2025-02-01"),
     "an open deal has no closed_at (got 2025-02-01T00:00:00); give status won or lost"),
    (deal("B-9", name="A", status="lost", stage="first_contact", created_at="2025-01-01", closed_at="2025-02-01"),
     "a lost deal needs its close_reason (a reason id or label of the process's catalogue, or map the old "
     "system's with --map-reason OLD=NEW)"),
    (deal("B-10", name="A", status="won", created_at="2025-03-01", closed_at="2025-02-01"),
     "closed_at 2025-02-01T00:00:00 is before created_at (2025-03-01T00:00:00); dates go forward"),
    (deal("B-15", name="A", status="lost", stage="first_meeting", created_at="2025-01-01",
          reached_first_contact="2025-03-01", closed_at="2025-02-01", close_reason="price"),
     "closed_at 2025-02-01T00:00:00 is before reached_first_contact (2025-03-01T00:00:00); dates go forward"),
    (deal("", name="A", stage="first_contact", created_at="2025-01-01"),
     "external_id is empty: a deal needs its id in the old system, so that importing the file again changes nothing"),
    (deal("B-12", stage="first_contact", created_at="2025-01-01"), "a lead needs the client's name"),
    (deal("B-13", name="A", stage="first_contact", created_at="2025-01-01", owner="nobody"),
     "owner: user 'nobody' does not exist"),
    (deal("B-14", name="A", stage="first_contact", created_at="2025-01-01", team="x" * 300),
     "team is longer than 200 characters"),
    (deal("B-16", name="A", stage="first_contact", created_at="2025-01-01", owner="anna", team="nort"),
     "team 'nort' is no team of leadflow's users; did you mean 'north'? (teams: north, south): no manager would see "
     "the deal; give a user's team, or leave the cell empty and the deal counts for its owner's team"),
    (deal("B-1", name="A", stage="first_contact", created_at="2025-01-01"),
     "external_id 'B-1' is on an earlier line too; each deal once"),
]


def test_every_bad_row_is_refused_with_its_line_and_reason_and_abort_writes_nothing(
        team: Team, tmp_path: Path) -> None:
    good = deal("G-1", name="Good", stage="first_contact", created_at="2025-01-01", owner="ioana", team="NORTH")
    # the last row is a second row of B-1, refused although the first was refused for its dates: a deal once a file
    path = write(tmp_path / "bad.csv", [*(row for row, _ in BAD_ROWS), good])
    before = snapshot(team.url)
    report = team.admin.intake.import_csv(path, process=PV, history=True, on_error="abort")
    assert report["status"] == "aborted"
    assert [(r["line"], r["reason"]) for r in report["rejects"]] == [
        (line, reason) for line, (_, reason) in enumerate(BAD_ROWS, start=2)]
    assert snapshot(team.url) == before
    report = team.admin.intake.import_csv(path, process=PV, history=True)
    assert (report["imported"], report["rejected"]) == (1, len(BAD_ROWS))
    assert (lead_of(team, "G-1")["owner"], lead_of(team, "G-1")["team"]) == ("ioana", "north")  # the users' name
    # a repeated id in one file; a reason mapped
    path = write(tmp_path / "more.csv", [BAD_ROWS[3][0], BAD_ROWS[3][0]])
    report = team.admin.intake.import_csv(path, process=PV, history=True, map_reason={"Budget cut": "no_budget"})
    assert report["imported"] == 1 and [{"line": r["line"], "reason": r["reason"]} for r in report["rejects"]] == [
        {"line": 3, "reason": "external_id 'B-4' is on an earlier line too; each deal once"}]
    assert report["rejects"][0]["params"] == {"external": "B-4"}  # and its template, for every language
    assert lead_of(team, "B-4")["close_reason"] == "no_budget"


def test_bad_files_and_options_are_refused_and_write_nothing(team: Team, tmp_path: Path) -> None:
    before = snapshot(team.url)
    no_id = write(tmp_path / "no_id.csv", [["A", "first_contact", "2025-01-01"]], header=["name", "stage", "created"])
    with pytest.raises(InvalidInputError, match=r"no_id\.csv has no external_id column"):
        team.admin.intake.import_csv(no_id, process=PV, history=True)
    cp1250 = write(tmp_path / "cp1250.csv", [deal("C-1", name="Żółć", stage="first_contact",
                                                   created_at="2025-01-01")], encoding="cp1250")
    with pytest.raises(InvalidInputError, match=r"cp1250\.csv"):
        team.admin.intake.import_csv(cp1250, process=PV, history=True)
    with pytest.raises(InvalidInputError, match="'nope' is not a closure reason of process photovoltaics"):
        team.admin.intake.import_csv(history_file(tmp_path), process=PV, history=True, map_reason="Old=nope")
    with pytest.raises(InvalidInputError, match="is not OLD=NEW"):
        team.admin.intake.import_csv(history_file(tmp_path), process=PV, history=True, map_reason="Old")
    with pytest.raises(PermissionDenied, match="only an admin may"):
        team.as_("marta").intake.import_csv(history_file(tmp_path), process=PV, history=True)
    for who in ("root", "marta"):  # reasons mapped for an import of new inquiries: refused, not left unused
        with pytest.raises(InvalidInputError, match="closure reasons are mapped only for an import with history"):
            team.as_(who).intake.import_csv(history_file(tmp_path), process=PV, map_reason="Old=price")
        with pytest.raises(InvalidInputError, match="closure reasons are mapped only for an import with history"):
            team.as_(who).intake.start_import(history_file(tmp_path), process=PV, map_reason="Old=price")
    with pytest.raises(InvalidInputError, match="an owner or an assignment for the whole file is for new inquiries"):
        team.admin.intake.import_csv(history_file(tmp_path), process=PV, history=True, owner="anna")
    assert snapshot(team.url) == before
    report = team.admin.intake.import_csv(cp1250, process=PV, history=True, encoding="cp1250")
    assert report["imported"] == 1 and lead_of(team, "C-1")["name"] == "Żółć"


def test_the_cli_imports_history_and_refuses_bad_usage(team: Team, tmp_path: Path) -> None:
    url = team.url
    path = history_file(tmp_path)
    refused(url, "root", ["import", str(path), "--process", PV, "--map-reason", "a=b"], code=2)
    refused(url, "marta", ["import", str(path), "--process", PV, "--history"])
    text = ok(url, "root", ["import", str(path), "--process", PV, "--history"]).output
    assert "Imported 4 leads" in text and "1 won, 1 lost" in text
    assert js(url, "root", "lead show ext:D-2 --json")["close_reason"] == "price"
    result = leadflow(url, "root", ["import", str(path), "--process", PV, "--history", "--json"])
    assert result.exit_code == 0


def lost(external_id: str, reason: str) -> list[str]:
    return deal(external_id, name=f"Client {external_id}", stage="first_contact", status="lost",
                created_at="2025-03-03", reached_first_contact="2025-03-04", closed_at="2025-04-01",
                close_reason=reason, owner="piotr")


def test_the_old_systems_reasons_mapped_by_a_mapping_file_and_the_rest_to_one_reason(team: Team,
                                                                                   tmp_path: Path) -> None:
    """A mapping file's ``reasons:`` maps the old system's reasons; ``*`` sends every reason neither the catalogue
    nor the mapping knows to the one the admin names, the old reason kept as the closing's note; the command
    line's ``--map-reason`` wins over the file's."""
    path = write(tmp_path / "reasons.csv", [lost("R-1", "Budget cut"), lost("R-2", "Gone fishing"),
                                            lost("R-3", "Price too high"), lost("R-4", "Moved abroad")])
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text('reasons:\n  Budget cut: no_budget\n  "*": not_a_client\n  Moved abroad: price\n',
                       encoding="utf-8")
    text = ok(team.url, "root", ["import", str(path), "--process", PV, "--history", "--mapping", str(mapping),
                                 "--map-reason", "Moved abroad=unreachable"]).output
    assert "Imported 4 leads" in text
    got = {e: (lead_of(team, e)["close_reason"], lead_of(team, e)["close_note"]) for e in ("R-1", "R-2", "R-3", "R-4")}
    assert got == {"R-1": ("no_budget", None), "R-2": ("not_a_client", "Gone fishing"), "R-3": ("price", None),
                   "R-4": ("unreachable", None)}
    assert sorted(rows_of(team.url, store.closures, "reason")) == [
        ("no_budget",), ("not_a_client",), ("price",), ("unreachable",)]


def test_reason_mappings_that_cannot_be_are_refused_and_write_nothing(team: Team, tmp_path: Path) -> None:
    path = write(tmp_path / "reasons.csv", [lost("R-1", "Budget cut")])
    before = snapshot(team.url)
    with pytest.raises(InvalidInputError, match="'nope' is not a closure reason of process photovoltaics"):
        team.admin.intake.import_csv(path, process=PV, history=True, map_reason="*=nope")
    for body, words in [("reasons: [Budget cut, no_budget]\n", "'reasons' maps each of the old system's"),
                        ("reasons:\n  Budget cut: 3\n", "'reasons' maps each of the old system's"),
                        ("reasons:\n  Budget cut: no_budget\nextra: 1\n", "unknown keys extra")]:
        mapping = tmp_path / "mapping.yaml"
        mapping.write_text(body, encoding="utf-8")
        with pytest.raises(InvalidInputError, match=words):
            team.admin.intake.import_csv(path, process=PV, history=True, mapping=mapping)
    mapping.write_text("reasons:\n  Budget cut: no_budget\n", encoding="utf-8")
    for who in ("root", "marta"):  # a mapping file's reasons for new inquiries: refused, as --map-reason is
        with pytest.raises(InvalidInputError, match="closure reasons are mapped only for an import with history"):
            team.as_(who).intake.import_csv(path, process=PV, mapping=mapping)
        with pytest.raises(InvalidInputError, match="closure reasons are mapped only for an import with history"):
            team.as_(who).intake.start_import(path, process=PV, mapping=mapping)
    with pytest.raises(PermissionDenied, match="only an admin may"):  # who may not: refused before the file is read
        team.as_("marta").intake.import_csv(path, process=PV, history=True, mapping=mapping)
    assert snapshot(team.url) == before
    report = team.admin.intake.import_csv(path, process=PV, history=True, mapping=mapping)
    assert report["imported"] == 1 and lead_of(team, "R-1")["close_reason"] == "no_budget"


def test_a_companys_rows_with_a_tax_id_are_the_client_of_that_name_and_tax_id(team: Team, tmp_path: Path) -> None:
    """Rows of one company name are one client; when rows give a tax id, the same name with another tax id is
    another company (its own client, its tax id stored), and the tax id is compared as letters and digits."""
    header = [*HEADER, "NIP"]

    def row(external_id: str, company: str, nip: str) -> list[str]:
        return [*deal(external_id, company=company, stage="first_contact", created_at="2025-03-03", owner="anna"),
                nip]

    path = write(tmp_path / "tax.csv", [row("T-1", "Budimex SA", "PL 526-025-09-95"),
                                        row("T-2", "budimex sa", "pl5260250995"),
                                        row("T-3", "Budimex SA", "PL1111111111"),
                                        row("T-4", "Budimex SA", ""),
                                        row("T-5", "Orlen SA", "PL<774>")], header=header)
    report = team.admin.intake.import_csv(path, process=PV, history=True)
    assert (report["imported"], report["new_clients"], report["repeated_clients"]) == (4, 2, 2)
    assert [(r["line"], r["params"].get("tax_id")) for r in report["rejects"]] == [(6, "PL<774>")]
    client = {e: lead_of(team, e)["client_id"] for e in ("T-1", "T-2", "T-3", "T-4")}
    assert client["T-1"] == client["T-2"] == client["T-4"] != client["T-3"]
    assert (team.admin.clients.get(client["T-1"])["tax_id"], team.admin.clients.get(client["T-3"])["tax_id"]) == (
        "PL 526-025-09-95", "PL1111111111")


def test_a_history_imported_as_new_leads_says_which_columns_a_history_import_reads(team: Team, tmp_path: Path) -> None:
    """A newcomer's first try: the history file without --history. Its deals come in as new inquiries (a form's
    export may have a created_at), and the summary names the columns that give the deals' stages and dates."""
    path = history_file(tmp_path)
    text = ok(team.url, "marta", ["import", str(path), "--process", PV, "--owner", "anna", "--dry-run"]).output
    assert "import the file with --history (an admin) to bring each deal in as it stood" in text
    hint = next(line for line in text.splitlines() if line.startswith("The columns "))
    assert hint.startswith("The columns stage, status, created_at,") and "closed_at, close_reason give" in hint
    plain = write(tmp_path / "plain.csv", [["Anna Nowak", "2025-01-01"]], header=["name", "created_at"])
    assert "--history" not in ok(team.url, "marta", ["import", str(plain), "--process", PV, "--dry-run"]).output
    team.as_("anna").leads.add(process=PV, name="Zofia Kowalska")  # leadflow's own export imports back, no hint
    export = tmp_path / "export.csv"
    assert leadflow(team.url, "marta", ["export", "--process", PV, "--output", str(export)]).exit_code == 0
    again = ok(team.url, "marta", ["import", str(export), "--process", PV, "--dry-run"]).output
    assert "1 lead would be imported" in again and "--history" not in again


def test_the_worked_example_of_the_docs(team: Team) -> None:
    example = Path(__file__).resolve().parent.parent / "docs" / "examples" / "history.csv"
    url = team.url
    first = ok(url, "root", ["import", str(example), "--process", PV, "--history", "--dry-run"]).output
    assert "line 3: close_reason 'Too expensive' is not a closure reason" in first
    assert "2 mails would be queued for run-due." in first  # anna's and ioana's digests of their open deals
    text = ok(url, "root", ["import", str(example), "--process", PV, "--history", "--map-reason",
                            "Too expensive=price"]).output
    assert "Imported 4 leads into photovoltaics from history.csv" in text
    assert "of the deals written 2 open, 1 won, 1 lost" in text and "2 mails queued for run-due." in text
    again = ok(url, "root", ["import", str(example), "--process", PV, "--history", "--map-reason",
                             "Too expensive=price"]).output
    assert again.splitlines()[:2] == [
        "Nothing changed in photovoltaics from history.csv, no import recorded: 0 new clients, 0 existing, 0 repeated "
        "in the file; 0 rows rejected.", "History: 0 deals moved on, 4 unchanged; of the deals written 0 open, 0 won, "
        "0 lost."], again
    assert "| external id OPP-102" in ok(url, "root", ["lead", "show", "ext:OPP-102"]).output
    lost = js(url, "root", "lead show ext:OPP-102 --json")
    assert (lost["status"], lost["stage"], lost["close_reason"], lost["owner"]) == ("lost", "send_offer", "price",
                                                                                     "piotr")
    company = js(url, "root", f"client show {lost['client_id']} --json")
    assert [p["name"] for p in company["contacts"]] == ["Jan Kowalski", "Ewa Nowak"]
    assert len(company["leads"]) == 2


def test_the_old_systems_idle_time_counts_against_no_one(team: Team, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Right after a migration nothing is stalled, rotated or due for a revisit for what happened before leadflow
    held the deals: D-3 has been idle in the old system since June 2025 and D-2 was lost for 'price' (revisit after
    120 days) in April 2025. Idle time, the working period and revisits count from the import, like after the
    rest of a rotation, and the lights stay true to the deals' real dates."""
    team.admin.intake.import_csv(history_file(tmp_path), process=PV, history=True)  # 2026-03-02 09:00
    open_, lost = lead_of(team, "D-3"), lead_of(team, "D-2")
    assert team.admin.stored_lead(open_["id"]).red_at < dt("2026-03-02T09:00")  # its deadlines passed long ago
    marta = team.as_("marta")

    def stalled() -> list[int]:
        return [lead["lead_id"] for lead in marta.recovery.stalled()["leads"]]

    def revisits() -> list[int]:
        return [r["lead_id"] for r in team.admin.recovery.revisits()]

    assert (stalled(), marta.recovery.rotate(dry_run=True)["moves"], revisits()) == ([], [], [])
    monkeypatch.setenv("LEADFLOW_NOW", "2026-03-23T10:00:00")  # 21 days after the import
    assert stalled() == [open_["id"]]
    assert revisits() == []
    monkeypatch.setenv("LEADFLOW_NOW", "2026-06-30T10:00:00")  # 120 days after the import
    assert revisits() == [lost["id"]]
    for external_id in ("D-2", "D-3"):
        lead_id = team.admin.leads.find_external(external_id)
        assert team.admin.rebuild_lead(lead_id).comparable() == team.admin.stored_lead(lead_id).comparable()


def test_stages_and_reasons_are_read_by_their_labels_in_any_of_the_processs_languages(
        team: Team, tmp_path: Path) -> None:
    """A Polish team's old CRM names the stages and the reasons as the process's Polish labels do (a Romanian one's
    as the Romanian): each is the same stage or reason as its id or its English label."""
    header = ["external_id", "name", "stage", "status", "created_at", "Reached Nawiąż pierwszy kontakt",
              "Reached Przygotuj i wyślij ofertę", "closed_at", "close_reason", "owner"]
    rows = [["PL-1", "Adam", "Przygotuj i wyślij ofertę", "lost", "2025-03-03", "2025-03-04", "2025-03-20",
             "2025-04-01", "za wysoka cena", "anna"],
            ["RO-1", "Ion", "Stabilește primul contact", "lost", "2025-03-03", "2025-03-05", "", "2025-03-10",
             "Preț prea mare", "anna"],
            ["EN-1", "Bob", "first_contact", "lost", "2025-03-03", "2025-03-06", "", "2025-03-11", "Price too high",
             "anna"]]
    report = team.admin.intake.import_csv(write(tmp_path / "pl.csv", rows, header=header), process=PV, history=True)
    assert (report["imported"], report["rejected"]) == (3, 0), report["rejects"]
    assert report["columns"]["Reached Przygotuj i wyślij ofertę"] == "reached_send_offer"
    pl, ro, en = (lead_of(team, external) for external in ("PL-1", "RO-1", "EN-1"))
    assert (pl["stage"], pl["close_reason"], pl["stage_entered_at"][:10]) == ("send_offer", "price", "2025-03-20")
    assert (ro["stage"], ro["close_reason"]) == (en["stage"], en["close_reason"]) == ("first_contact", "price")
    assert ro["stage_entered_at"][:10] == "2025-03-05"
