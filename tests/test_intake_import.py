"""CSV import at the engine level, on SQLite and PostgreSQL: real files as people have them (Excel's BOM,
semicolons, CRLF, multi-line cells, Polish/Russian/Romanian text, Windows code pages), the same leads as
``add_lead`` makes, duplicates, bad rows, dry runs and aborts that change nothing."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.errors import InvalidInputError, PermissionDenied
from engine.store import (
    clients,
    events,
    imports,
    lead_stages,
    leads,
    ownerships,
    rebuild_stages,
    recount,
    stage_counts,
)
from tests.conftest import Team, snapshot

PV = "photovoltaics"
HEADER = "Imię i nazwisko;E-MAIL;Telefon;Firma;Wartość;Roof type;roof_area_m2;owner;Uwagi"
ROWS = [
    "Łukasz Żółć;lukasz@example.pl;+48 600 100 200;Żółć sp. z o.o.;12 500,50;flat;45;anna;pilne",
    "Ольга Смирнова;olga@example.ru;;;;pitched;;;",
    '"Ștefan Mărgărit\nLăcătuș";stefan@example.ro;0040 721 000 111;;;ground;120,5;piotr;"wielo-\nliniowa"',
    "Zofia Wiśniewska;ZOFIA@Example.PL;;;3000;;;;",
]


def write(path: Path, lines: list[str], *, bom: bool = True, crlf: bool = True, encoding: str = "utf-8") -> Path:
    text = ("\r\n" if crlf else "\n").join(lines) + ("\r\n" if crlf else "\n")
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + text.encode(encoding))
    return path


def count(url: str, table: sa.Table) -> int:
    db = sa.create_engine(url)
    try:
        with db.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
    finally:
        db.dispose()


@pytest.fixture
def excel_csv(tmp_path: Path) -> Path:
    return write(tmp_path / "prospects.csv", [HEADER, *ROWS])


def test_an_excel_file_imports_with_its_headers_recognised(team: Team, excel_csv: Path) -> None:
    report = team.as_("marta").import_csv(excel_csv, process=PV)
    assert report["status"] == "imported"
    assert (report["encoding"], report["delimiter"]) == ("utf-8-sig", ";")
    assert report["columns"] == {"Imię i nazwisko": "name", "E-MAIL": "email", "Telefon": "phone",
                                 "Firma": "company", "Wartość": "value", "Roof type": "roof_type",
                                 "roof_area_m2": "roof_area_m2", "owner": "owner"}
    assert report["unknown_columns"] == [{"column": "Uwagi", "did_you_mean": None}]
    assert (report["rows"], report["imported"], report["new_clients"], report["rejected"]) == (4, 4, 4, 0)
    first, last = report["first_lead_id"], report["last_lead_id"]
    assert last - first == 3
    lukasz = team.admin.get_lead(first)
    assert (lukasz["name"], lukasz["owner"], lukasz["team"], lukasz["value"]) == ("Łukasz Żółć", "anna", "north",
                                                                                   "12500.50")
    assert lukasz["fields"] == {"roof_type": "flat", "roof_area_m2": 45}
    stefan = team.admin.get_lead(first + 2)
    assert stefan["name"] == "Ștefan Mărgărit Lăcătuș"  # the multi-line cell: a name is one line (rules.one_line_text)
    assert stefan["fields"] == {"roof_type": "ground", "roof_area_m2": 120.5}
    olga = team.admin.get_lead(first + 1)
    assert (olga["owner"], olga["team"]) == (None, "north")  # unowned: waits in the importing manager's team
    assert team.admin.get_lead(first + 3)["email"] == "ZOFIA@Example.PL"


def test_an_imported_lead_is_what_add_lead_makes_and_what_its_events_rebuild(
        team: Team, excel_csv: Path, tmp_path: Path) -> None:
    marta = team.as_("marta")
    report = marta.import_csv(excel_csv, process=PV)
    imported = range(report["first_lead_id"], report["last_lead_id"] + 1)
    by_hand = [
        marta.add_lead(process=PV, name="Łukasz Żółć", email="lukasz+2@example.pl", phone="+48 600 100 201",
                       company="Żółć sp. z o.o.", value="12 500,50", owner="anna",
                       fields={"roof_type": "flat", "roof_area_m2": "45"}),
        marta.add_lead(process=PV, name="Ольга Смирнова", email="olga+2@example.ru",
                       fields={"roof_type": "pitched"}),
        marta.add_lead(process=PV, name="Ștefan Mărgărit\nLăcătuș", email="stefan+2@example.ro",
                       phone="0040 721 000 112", owner="piotr",
                       fields={"roof_type": "ground", "roof_area_m2": "120,5"}),
        marta.add_lead(process=PV, name="Zofia Wiśniewska", email="zofia+2@example.pl", value="3000"),
    ]

    def same(state: Any) -> dict[str, Any]:
        return {k: v for k, v in state.comparable().items() if k not in ("id", "client_id")}

    for lead_id, hand in zip(imported, by_hand, strict=True):
        stored = marta.stored_lead(lead_id)
        assert stored.comparable() == marta.rebuild_lead(lead_id).comparable()
        assert same(stored) == same(marta.stored_lead(hand["id"]))
        imported_events = [{k: v for k, v in e.items() if k not in ("id", "lead_id")} for e in marta.history(lead_id)]
        hand_events = [{k: v for k, v in e.items() if k not in ("id", "lead_id")} for e in marta.history(hand["id"])]
        for e in (*imported_events, *hand_events):
            e["data"].pop("client_id")
        assert imported_events == hand_events
    specs = {(PV, 1): marta.spec(PV, 1)}
    db = sa.create_engine(team.url)
    try:
        with db.begin() as conn:
            counted = sorted(conn.execute(sa.select(stage_counts)).all())
            recount(conn)
            assert counted == sorted(conn.execute(sa.select(stage_counts)).all())
            owners = conn.execute(sa.select(ownerships.c.lead_id, ownerships.c.owner, ownerships.c.how)
                                  .where(ownerships.c.lead_id.in_(list(imported))).order_by(ownerships.c.lead_id)).all()
            assert [tuple(r) for r in owners] == [(imported[0], "anna", "created"), (imported[2], "piotr", "created")]
            # the reports' projection: each imported lead has the stage row add_lead writes, and a rebuild agrees
            def stage_row(lead_id: int) -> tuple[Any, ...]:
                (row,) = conn.execute(sa.select(lead_stages).where(lead_stages.c.lead_id == lead_id)).all()
                return tuple(row)[1:]
            for lead_id, hand in zip(imported, by_hand, strict=True):
                assert stage_row(lead_id) == stage_row(hand["id"])
            stored = sorted(tuple(r) for r in conn.execute(sa.select(lead_stages)))
            rebuild_stages(conn, lambda process, version: specs[(process, version)])
            assert sorted(tuple(r) for r in conn.execute(sa.select(lead_stages))) == stored
    finally:
        db.dispose()


def test_duplicates_attach_new_leads_to_the_existing_client(team: Team, tmp_path: Path) -> None:
    marta = team.as_("marta")
    known = marta.add_lead(process=PV, name="Łukasz Żółć", email="Lukasz@Example.pl", phone="+48 600 100 200")
    path = write(tmp_path / "dups.csv", [
        "name,email,phone",
        "Łukasz Ż.,LUKASZ@example.pl ,",             # the known client, by e-mail (case and spaces aside)
        "Ł. Żółć,,0048 600-100-200",                  # the known client, by phone (00 and dashes aside)
        "Nowa Osoba,nowa@example.pl,+40 721 000 111",  # new
        "Nowa O.,,+40 (721) 000 111",                 # the row above, by phone
        "Nowa,NOWA@example.pl,",                       # the row above, by e-mail
    ], bom=False, crlf=False)
    report = marta.import_csv(path, process=PV)
    assert (report["imported"], report["new_clients"], report["existing_clients"], report["repeated_clients"]) == (
        5, 1, 2, 2)
    ids = range(report["first_lead_id"], report["last_lead_id"] + 1)
    client_of = [marta.stored_lead(i).client_id for i in ids]
    assert client_of[:2] == [known["client_id"]] * 2
    assert client_of[2] == client_of[3] == client_of[4] != known["client_id"]
    assert count(team.url, clients) == 2


def test_duplicates_across_batches_are_one_client(team: Team, tmp_path: Path) -> None:
    lines = ["name,email"] + [f"Osoba {i},osoba{i % 7}@example.pl" for i in range(40)]
    path = write(tmp_path / "many.csv", lines, bom=False)
    from engine import intake

    marta = team.as_("marta")
    original = intake.ImportOptions.batch_size
    intake.ImportOptions.batch_size = 3  # rows repeat across many batches
    try:
        report = marta.import_csv(path, process=PV)
    finally:
        intake.ImportOptions.batch_size = original
    assert (report["imported"], report["new_clients"], report["repeated_clients"]) == (40, 7, 33)
    assert count(team.url, clients) == 7


BAD_ROWS = [
    "name,email,value,roof_type,install_by,owner",
    "Anna Dobra,anna.dobra@example.pl,100,flat,2026-05-01,",
    ",bez@example.pl,,,,",                                 # no name
    "Zły Email,not-an-email,,,,",
    "Zła Kwota,,12.345,,,",
    "Zły Typ,,,thatched,,",
    "Zła Data,,,,31.02.2026,",
    "Obcy Opiekun,,,,,ioana",                              # south's salesperson: not marta's team
    "Nieznany,,,,,nobody",
    "Za Dużo Komórek,,,,,,extra",
    "Ioan Bun,ioan@example.ro,,,,piotr",
]


def test_skip_imports_the_good_rows_and_reports_each_bad_one(team: Team, tmp_path: Path) -> None:
    path = write(tmp_path / "bad.csv", BAD_ROWS, bom=False)
    rejects = tmp_path / "rejects.csv"
    report = team.as_("marta").import_csv(path, process=PV, rejects=rejects)
    assert (report["rows"], report["imported"], report["rejected"]) == (10, 2, 8)
    assert [(r["line"], r["reason"]) for r in report["rejects"]] == [
        (3, "a lead needs the client's name"),
        (4, "e-mail 'not-an-email' is not an address such as name@example.com"),
        (5, "value has more than two decimals: '12.345'"),
        (6, "field 'roof_type' (choice) must be one of: pitched, flat, ground; got 'thatched'"),
        (7, "field 'install_by' (date) takes a date written YYYY-MM-DD, got '31.02.2026'"),
        (8, "user 'marta' (manager, team north) may not import leads for ioana: only a manager of team south or "
            "an admin may"),
        (9, "user 'nobody' does not exist"),
        (10, "the row has 7 cells, the header 6"),
    ]
    written = rejects.read_bytes()
    assert written.startswith(codecs.BOM_UTF8)
    lines = written.decode("utf-8-sig").splitlines()
    assert lines[0] == "name,email,value,roof_type,install_by,owner,line,reason"
    assert lines[1] == ",bez@example.pl,,,,,3,a lead needs the client's name"
    assert len(lines) == 9
    # the rejects file, fixed, imports as it is: its line and reason columns are read past
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(written.decode("utf-8-sig").replace(",bez@", "Bez Imienia,bez@", 1), encoding="utf-8")
    again = team.as_("marta").import_csv(fixed, process=PV)
    assert again["ignored_columns"] == ["line", "reason"]
    assert (again["imported"], again["rejected"]) == (1, 7)


def test_abort_imports_nothing_when_a_row_is_bad(team: Team, tmp_path: Path) -> None:
    path = write(tmp_path / "bad.csv", BAD_ROWS, bom=False)
    before = snapshot(team.url)
    report = team.as_("marta").import_csv(path, process=PV, on_error="abort")
    assert (report["status"], report["imported"], report["rejected"]) == ("aborted", 0, 8)
    assert {k: report["rejects"][0][k] for k in ("line", "reason")} == {"line": 3,
                                                                       "reason": "a lead needs the client's name"}
    assert (report["rejects"][0]["message_id"], report["rejects"][0]["params"]) == (
        "a lead needs the client's name", {})
    assert snapshot(team.url) == before


def test_a_dry_run_reports_the_import_and_changes_nothing(team: Team, excel_csv: Path) -> None:
    before = snapshot(team.url)
    report = team.as_("marta").import_csv(excel_csv, process=PV, dry_run=True)
    assert (report["status"], report["imported"], report["new_clients"], report["import_id"]) == ("dry_run", 4, 4, None)
    assert snapshot(team.url) == before


def test_the_same_file_is_not_imported_twice_unless_asked(team: Team, excel_csv: Path) -> None:
    marta = team.as_("marta")
    first = marta.import_csv(excel_csv, process=PV)
    with pytest.raises(InvalidInputError) as refused:
        marta.import_csv(excel_csv, process=PV)
    assert str(refused.value) == (
        f"prospects.csv was already imported into photovoltaics (import {first['import_id']} by marta on "
        "2026-03-02 09:00: 4 leads); importing it again would add every lead a second time (to do it anyway: --again)")
    assert count(team.url, leads) == 4
    second = marta.import_csv(excel_csv, process=PV, again=True)
    assert (second["imported"], second["new_clients"], second["existing_clients"]) == (4, 0, 4)
    assert count(team.url, imports) == 2


@pytest.mark.parametrize(("text", "codec", "named"), [
    ("name;company\nŁukasz Żółć;Pszczółka\n", "cp1250", "Windows-1250 (Central European: Polish, Romanian, ...)"),
    ("name;company\nОльга Смирнова;Рога и копыта\n", "cp1251", "Windows-1251 (Cyrillic)"),
])
def test_a_windows_code_page_file_is_named_and_imports_with_its_encoding(
        team: Team, tmp_path: Path, text: str, codec: str, named: str) -> None:
    path = tmp_path / "legacy.csv"
    path.write_bytes(text.encode(codec))
    before = snapshot(team.url)
    with pytest.raises(InvalidInputError) as refused:
        team.as_("marta").import_csv(path, process=PV)
    bad = text.split("\n")[1].encode(codec)
    byte = next(b for b in bad if b >= 0x80)
    assert str(refused.value) == (f"legacy.csv: line 2 is not UTF-8 (byte 0x{byte:02x}); the file looks like "
                                  f"{named}: save it as 'CSV UTF-8' or pass --encoding {codec}")
    assert snapshot(team.url) == before
    report = team.as_("marta").import_csv(path, process=PV, encoding=codec)
    assert team.admin.get_lead(report["first_lead_id"])["name"] == text.split("\n")[1].split(";", maxsplit=1)[0]


def test_a_mapping_file_names_other_headers(team: Team, tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text('columns:\n  "Kontakt": name\n  "Nr tel.": phone\n  "Dach": roof_type\n  "Notatki": ignore\n',
                       encoding="utf-8")
    path = write(tmp_path / "crm.csv", ["Kontakt\tNr tel.\tDach\tNotatki", "Jan Kowalski\t600 100 200\tflat\tx"],
                 bom=False)
    report = team.as_("marta").import_csv(path, process=PV, mapping=mapping)
    assert report["delimiter"] == "\t"
    assert report["columns"] == {"Kontakt": "name", "Nr tel.": "phone", "Dach": "roof_type"}
    assert report["ignored_columns"] == ["Notatki"]
    lead = team.admin.get_lead(report["first_lead_id"])
    # a national number, read in the process's calendar country (PL) and stored in E.164 (issue 18)
    assert (lead["name"], lead["phone"], lead["fields"]) == ("Jan Kowalski", "+48600100200", {"roof_type": "flat"})


@pytest.mark.parametrize(("mapping", "message"), [
    ('columns:\n  "Kontakt": nme\n', "the mapping sends column 'Kontakt' to 'nme', which is neither a lead attribute "
     "nor a field of process photovoltaics; did you mean 'name'?; use one of: name, company, email, phone, source, "
     "product, value, owner, roof_area_m2, roof_type, annual_consumption_kwh, financing, wants_insurance, budget, "
     "decision_maker, need, install_by, offer_value, or ignore"),
    ('columns:\n  "Telefon komórkowy": phone\n', "the mapping names columns the file does not have: 'Telefon "
     "komórkowy'; the file's columns are: 'Kontakt', 'Nr tel.'"),
    ("columns: [a, b]\n", "the mapping file {path} must hold 'columns:', a mapping of the file's headers to lead "
     "attributes or field ids, e.g. columns: {{\"Nr tel.\": phone}}"),
    ('columns:\n  "Kontakt": name\ndelimiter: "|"\n',
     "the mapping file {path}: delimiter '|' is not one of , ; or a tab"),
])
def test_a_bad_mapping_file_is_refused_with_the_reason(team: Team, tmp_path: Path, mapping: str, message: str) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text(mapping, encoding="utf-8")
    data = write(tmp_path / "crm.csv", ["Kontakt;Nr tel.", "Jan;600"], bom=False)
    with pytest.raises(InvalidInputError) as refused:
        team.as_("marta").import_csv(data, process=PV, mapping=path)
    assert str(refused.value) == message.format(path=path)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty.csv is empty: a CSV file starts with a header line naming its columns"),
    (b"email,phone\nx@example.pl,600\n", "empty.csv has no column for the client's name (a header such as 'name'); "
     "its columns are 'email', 'phone': map one to name in a mapping file"),
    (b"name,Email,E-mail\nJan,a@b.pl,c@d.pl\n", "columns 'Email' and 'E-mail' both give the lead's email; send one "
     "of them to 'ignore' in a mapping file"),
    (b'name,email\nJan,"a@b.pl\nEwa,e@b.pl\n', "empty.csv: line 2: the CSV is malformed: a quoted cell is never closed "
     '(a " missing)'),
])
def test_a_file_that_cannot_be_imported_changes_nothing(team: Team, tmp_path: Path, content: bytes,
                                                        message: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    before = snapshot(team.url)
    with pytest.raises(InvalidInputError) as refused:
        team.as_("marta").import_csv(path, process=PV, rejects=tmp_path / "rejects.csv")
    assert str(refused.value) == message
    assert snapshot(team.url) == before
    assert not (tmp_path / "rejects.csv").exists()


def test_only_managers_and_admins_import(team: Team, excel_csv: Path) -> None:
    with pytest.raises(PermissionDenied, match="user 'anna' \\(salesperson\\) may not import leads"):
        team.as_("anna").import_csv(excel_csv, process=PV)


def test_owner_option_and_assign_auto(team: Team, tmp_path: Path) -> None:
    path = write(tmp_path / "owners.csv", ["name,owner", "Jan,", "Ewa,anna"], bom=False)
    marta = team.as_("marta")
    report = marta.import_csv(path, process=PV, owner="piotr")
    assert [marta.get_lead(i)["owner"] for i in (report["first_lead_id"], report["last_lead_id"])] == ["piotr", "anna"]
    report = marta.import_csv(path, process=PV, assign="auto", again=True)
    assert [marta.get_lead(i)["owner"] for i in (report["first_lead_id"], report["last_lead_id"])] == [None, "anna"]
    with pytest.raises(InvalidInputError, match=r"--owner: user 'olga' \(analyst\) cannot own leads"):
        marta.import_csv(path, process=PV, owner="olga", again=True)


def test_events_name_the_importing_user(team: Team, excel_csv: Path) -> None:
    team.as_("marta").import_csv(excel_csv, process=PV)
    db = sa.create_engine(team.url)
    try:
        with db.connect() as conn:
            assert conn.execute(sa.select(events.c.actor, events.c.kind).distinct()).all() == [("marta", "created")]
    finally:
        db.dispose()


def test_bulk_written_instants_are_stored_as_sqlalchemy_stores_them(sqlite_url: str, tmp_path: Path) -> None:
    """Driver-level writes convert date-times with the dialect's own type (a generic DateTime has no
    converter: the driver's default wrote '... 23:59:59', which sorts before '... 23:59:59.000000')."""
    from engine.api import Engine

    admin = Engine.open(sqlite_url, user="root")
    admin.init()
    admin.load_process(Path(__file__).resolve().parent.parent / "processes" / "photovoltaics.yaml")
    by_hand = admin.add_lead(process=PV, name="Jan")
    report = admin.import_csv(write(tmp_path / "one.csv", ["name", "Ewa"]), process=PV)
    db = sa.create_engine(sqlite_url)
    try:
        with db.connect() as conn:
            texts = {lead_id: conn.exec_driver_sql(
                "SELECT created_at || '|' || stage_due_at || '|' || red_at FROM leads WHERE id = ?",
                (lead_id,)).scalar_one() for lead_id in (by_hand["id"], report["first_lead_id"])}
            tasks = conn.exec_driver_sql("SELECT DISTINCT due_at FROM lead_tasks").scalars().all()
            at = conn.exec_driver_sql("SELECT DISTINCT at FROM events").scalars().all()
    finally:
        db.dispose()
        admin.close()
    assert texts[by_hand["id"]] == texts[report["first_lead_id"]] == (
        "2026-03-02 09:00:00.000000|2026-03-03 23:59:59.000000|2026-03-03 23:59:59.000000")
    assert tasks == ["2026-03-03 23:59:59.000000"]
    assert at == ["2026-03-02 09:00:00.000000"]


# -- assignment rules and the first stage's actions ------------------------------------------------------

WELCOME = ("      - {id: check_history, name: {en: \"Check the client's earlier leads\", pl: Sprawdź wcześniejsze "
           "leady klienta, ro: Verifică lead-urile anterioare ale clientului}, owner: salesperson, "
           "mandatory: false}\n")


def ruled_with_welcome(processes_dir: Path, tmp_path: Path) -> Path:
    """photovoltaics with assignment rules (tests/test_assignment.py) whose first stage mails the client."""
    from tests.test_assignment import ruled_text

    text = ruled_text(processes_dir)
    assert WELCOME in text
    path = tmp_path / "photovoltaics.yaml"
    action = "    on_enter:\n      - send_email: {template: welcome, to: client}\n"
    path.write_text(text.replace(WELCOME, WELCOME + action), encoding="utf-8")
    return path


def test_imported_leads_are_placed_by_the_rules_and_queue_their_first_stages_mail(
        team: Team, processes_dir: Path, tmp_path: Path) -> None:
    team.admin.load_process(ruled_with_welcome(processes_dir, tmp_path))
    marta = team.as_("marta")
    path = write(tmp_path / "regions.csv", [
        "name;email;region;product;owner",
        "Łukasz Żółć;lukasz@example.pl;pomorskie;;",
        "Ольга Смирнова;olga@example.ru;warminsko_mazurskie;;",
        "Ștefan Mărgărit;stefan@example.ro;pomorskie;;",
        "Zofia Wiśniewska;zofia@example.pl;malopolskie;;",  # no rule matches: the manager's queue
        "Jan Kowalski;jan@example.pl;pomorskie;;anna",  # the row's owner wins over the rules
    ])
    before = snapshot(team.url)
    dry = marta.import_csv(path, process=PV, dry_run=True)
    # five welcome mails, and a digest each to anna and piotr, whom the import gives leads (engine/notices.py)
    assert (dry["assigned_by_rules"], dry["unassigned"], dry["mails_queued"]) == (3, 1, 7)
    assert snapshot(team.url) == before  # the cursors and the outbox too

    report = marta.import_csv(path, process=PV)
    assert (report["imported"], report["assigned_by_rules"], report["unassigned"], report["mails_queued"]) == (
        5, 3, 1, 7)
    ids = list(range(report["first_lead_id"], report["last_lead_id"] + 1))
    owners = [marta.get_lead(i)["owner"] for i in ids]
    assert owners == ["anna", "piotr", "anna", None, "anna"]  # round robin in the north team, by name
    created = [marta.history(i)[0]["data"] for i in ids]
    assert [c.get("assignment") for c in created] == [
        {"rule": 1, "why": "rule 1 (team north): round robin"}, {"rule": 1, "why": "rule 1 (team north): round robin"},
        {"rule": 1, "why": "rule 1 (team north): round robin"},
        {"rule": None, "why": "no assignment rule matches; waiting in the manager's queue"}, None]
    # the round robin goes on where the import left it, in add_lead as in the next import
    after = marta.add_lead(process=PV, name="Ewa Nowak", fields={"region": "pomorskie"})
    assert after["owner"] == "piotr"

    queued = team.admin.list_outbox()
    digests = [m for m in queued if m["kind"] == "import_digest"]  # on the first lead the import gave each
    assert sorted((m["lead_id"], m["template"], m["to"]) for m in digests) == [
        (ids[0], "import_digest", "owner"), (ids[1], "import_digest", "owner")]
    queued = [m for m in queued if m["kind"] != "import_digest"]
    # add_lead's lead queued one too, and the notice to piotr, whom the rules gave it (engine/notices.py)
    assert sorted(m["lead_id"] for m in queued) == [*ids, after["id"], after["id"]]
    assert sorted(m["kind"] for m in queued if m["lead_id"] == after["id"]) == ["assigned", "email"]
    queued = [m for m in queued if m["kind"] != "assigned"]
    for lead_id, data in zip(ids, created, strict=True):
        (mail,) = [m for m in queued if m["lead_id"] == lead_id]
        assert (mail["template"], mail["to"], mail["stage"], mail["state"]) == ("welcome", "client", "register_lead",
                                                                               "queued")
        assert data["actions"] == [{"action": "send_email", "template": "welcome", "to": "client",
                                    "due_at": data["actions"][0]["due_at"], "outbox": mail["key"]}]
        assert marta.stored_lead(lead_id).comparable() == marta.rebuild_lead(lead_id).comparable()
    assert len({m["key"] for m in queued}) == len(queued)



def test_the_cap_counts_the_leads_the_same_file_gives_by_name(team: Team, processes_dir: Path, tmp_path: Path) -> None:
    """Rows naming anna count towards her cap before the rules place the rows without an owner, as they would
    lead by lead through add_lead: with a cap of 3, anna's three named leads leave the rest to piotr."""
    from tests.test_assignment import with_rules

    team.admin.load_process(with_rules(processes_dir, tmp_path))  # max_open: 3, pomorskie -> team north
    path = write(tmp_path / "capped.csv", ["name;region;owner", *[f"Klient {i};pomorskie;anna" for i in range(3)],
                                           *[f"Klient {i};pomorskie;" for i in range(3, 7)]])
    report = team.as_("marta").import_csv(path, process=PV)
    owners = [team.admin.get_lead(i)["owner"] for i in range(report["first_lead_id"], report["last_lead_id"] + 1)]
    assert owners == ["anna", "anna", "anna", "piotr", "piotr", "piotr", None]
    assert (report["assigned_by_rules"], report["unassigned"]) == (3, 1)


def test_init_rebuilds_the_projection_of_leads_imported_without_it(team: Team, excel_csv: Path) -> None:
    """Leads imported before the import wrote their `lead_stages` rows get them back from `leadflow init`."""
    marta = team.as_("marta")
    report = marta.import_csv(excel_csv, process=PV)
    marta.add_lead(process=PV, name="Ewa Nowak")
    with team.admin.transaction() as conn:
        kept = sorted(tuple(r) for r in conn.execute(sa.select(lead_stages)))
        conn.execute(sa.delete(lead_stages).where(lead_stages.c.lead_id <= report["last_lead_id"]))
    team.admin.init()
    with team.admin.transaction() as conn:
        assert sorted(tuple(r) for r in conn.execute(sa.select(lead_stages))) == kept


def _planner_knows_leads(team: Team) -> bool:
    """Whether the database holds the query planner's statistics of ``leads`` (SQLite: rows of sqlite_stat1;
    PostgreSQL: ``pg_class.reltuples``, -1 until the table is first analysed, updated with the transaction)."""
    with team.admin.db.connect() as conn:
        if conn.dialect.name == "sqlite":
            if conn.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").scalar_one() == 0:
                return False
            return bool(conn.exec_driver_sql("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'leads'").scalar_one())
        tuples = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = to_regclass('leads')").scalar_one()
        return bool(tuples >= 0)


def test_an_import_and_run_due_keep_the_planners_statistics(team: Team, excel_csv: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner's statistics are gathered once the leads reach ``STATISTICS_AFTER`` and again when they have
    doubled since, after an import or by ``run-due`` (SQLite keeps none by itself, and some report joins were
    quadratic without them: docs/intake.md); a dry run and a database that has not grown leave them as they are."""
    from engine.store import database

    marta = team.as_("marta")
    sqlite = team.admin.db.dialect.name == "sqlite"
    monkeypatch.setattr(database, "STATISTICS_AFTER", len(ROWS) + 1)
    assert marta.import_csv(excel_csv, process=PV)["imported"] == len(ROWS)
    if sqlite:  # PostgreSQL's autovacuum may analyse a table at any time
        assert not _planner_knows_leads(team)
        assert marta.import_csv(excel_csv, process=PV, dry_run=True, again=True)["status"] == "dry_run"
        assert not _planner_knows_leads(team)
    assert marta.import_csv(excel_csv, process=PV, again=True)["imported"] == len(ROWS)
    assert _planner_knows_leads(team)
    with team.admin.db.begin() as conn:
        assert not database.keep_statistics(conn)  # 8 leads, counted 8: not doubled
    team.admin.leads.add(process=PV, name="Jan Nowy")
    assert marta.import_csv(excel_csv, process=PV, again=True)["imported"] == len(ROWS)
    with team.admin.db.begin() as conn:
        assert not database.keep_statistics(conn)  # 13 leads: not twice the 8 counted
    for again in range(3):
        team.admin.leads.add(process=PV, name=f"Anna Nowa {again}")
    monkeypatch.setenv("LEADFLOW_SMTP_HOST", "127.0.0.1")  # no mail is due: no server is asked
    monkeypatch.setenv("LEADFLOW_SMTP_FROM", "crm@example.pl")
    team.admin.outbox.run_due()  # 16 leads, twice the 8 counted: gathered anew
    with team.admin.db.begin() as conn:
        assert not database.keep_statistics(conn)


def test_a_fields_label_in_any_of_the_processs_languages_names_its_column(team: Team, tmp_path: Path) -> None:
    """A Polish team's file heads the process's fields as its Polish labels do (a Romanian one's as the Romanian):
    each is the field, as its id and its English label are."""
    path = write(tmp_path / "pl.csv", ["Imię i nazwisko;Rodzaj dachu;Powierzchnia użytkowa dachu (m²);Finanțare",
                                       "Anna Nowak;flat;45;loan"])
    report = team.admin.intake.import_csv(path, process="photovoltaics")
    assert report["columns"] == {"Imię i nazwisko": "name", "Rodzaj dachu": "roof_type",
                                 "Powierzchnia użytkowa dachu (m²)": "roof_area_m2", "Finanțare": "financing"}
    assert report["unknown_columns"] == [] and report["imported"] == 1
    lead = team.admin.leads.get(report["first_lead_id"])
    assert lead["fields"] == {"roof_type": "flat", "roof_area_m2": 45, "financing": "loan"}
