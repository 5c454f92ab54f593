"""The intake commands end to end: ``import`` and ``export`` through the CLI, the round trip between them,
spreadsheet formula injection, tokens, and an import killed half way (a real process, SIGKILL)."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine.api import Engine
from tests.conftest import LOGIN_TOKENS, REJECTS_FILE, CliDatabase, leadflow, snapshot

ROOT = Path(__file__).resolve().parent.parent
PV = "photovoltaics"
TEAM = [("marta", "manager", "north"), ("anna", "salesperson", "north"), ("piotr", "salesperson", "north")]


def build_floor(url: str) -> None:
    """Schema, photovoltaics and mortgage, and a manager with two salespeople."""
    admin = Engine.open(url, user="root")
    try:
        admin.init()
        admin.load_process(ROOT / "processes" / f"{PV}.yaml")
        admin.load_process(ROOT / "processes" / "mortgage.yaml")
        for name, role, team in TEAM:
            admin.add_user(name, role, team)
    finally:
        admin.close()


@pytest.fixture
def url(cli_db: CliDatabase) -> str:
    """A fresh copy of ``build_floor``'s database, built once per session (in each mode of ``cli_db``)."""
    return cli_db.template("cli_intake", build_floor)


def excel_file(path: Path, rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerows(rows)
    path.write_bytes(codecs.BOM_UTF8 + buffer.getvalue().encode("utf-8"))
    return path


PROSPECTS = [
    ["Imię i nazwisko", "E-mail", "Telefon", "Wartość", "Roof type", "Notatki"],
    ["Łukasz Żółć", "lukasz@example.pl", "+48 600 100 200", "12 500,50", "flat", ""],
    ["Ольга Смирнова", "olga@example.ru", "", "", "pitched", "oddzwonić"],
    ["Ștefan Mărgărit", "zły-adres", "", "", "", ""],
]


def test_lead_add_warns_on_stderr_of_a_client_the_user_may_not_see_and_names_no_one(url: str) -> None:
    first = leadflow(url, "anna", ["lead", "add", "--process", PV, "--name", "Zofia Wójcik", "--phone", "601 555 001",
                                   "--json"])
    assert first.exit_code == 0 and first.stderr == "", first.output
    theirs = json.loads(first.stdout)
    again = leadflow(url, "anna", ["lead", "add", "--process", PV, "--name", "Zofia W.", "--phone", "+48601555001"])
    assert again.exit_code == 0 and again.stderr == "", again.output  # hers to see: joined, nothing to say
    other = leadflow(url, "piotr", ["lead", "add", "--process", PV, "--name", "Zofia Wójcik", "--phone",
                                    "601-555-001", "--json"])
    assert other.exit_code == 0, other.output
    assert other.stderr.startswith("Warning: a client with this phone already exists"), other.stderr
    assert "leadflow client duplicates" in other.stderr
    for private in ("anna", str(theirs["client_id"]), f"lead {theirs['id']}"):
        assert private not in other.stderr
    lead = json.loads(other.stdout)  # stdout stays the JSON alone
    assert lead["possible_duplicate"] == "phone" and lead["client_id"] != theirs["client_id"]
    assert leadflow(url, "anna", ["lead", "add", "--process", PV, "--name", "Ewa Lis", "--email",
                                  "ewa@example.pl"]).exit_code == 0
    by_email = leadflow(url, "piotr", ["lead", "add", "--process", PV, "--name", "Ewa Lis", "--email",
                                       "EWA@example.pl"])
    assert by_email.exit_code == 0 and by_email.stdout.startswith("Lead "), by_email.output
    assert by_email.stderr.startswith("Warning: a client with this e-mail already exists"), by_email.stderr
    groups = json.loads(leadflow(url, "marta", ["client", "duplicates", "--json"]).stdout)
    assert any(g["reason"] == "phone" and len(g["clients"]) == 2 for g in groups)


@pytest.mark.local_only(REJECTS_FILE)
def test_import_prints_a_summary_and_each_rejected_row(url: str, tmp_path: Path) -> None:
    path = excel_file(tmp_path / "prospects.csv", PROSPECTS)
    result = leadflow(url, "marta", ["import", str(path), "--process", PV, "--rejects", str(tmp_path / "rejects.csv")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Imported 2 leads into photovoltaics from prospects.csv (import 1, leads 1-2): 2 new clients, 0 existing, "
        "0 repeated in the file; 1 row rejected.",
        "2 leads without an owner wait in the manager's queue (leadflow lead list --unassigned).",
        "Columns not recognised, ignored (map them with --mapping): Notatki",
        "  line 4: e-mail 'zły-adres' is not an address such as name@example.com",
        f"Rejected rows written to {tmp_path / 'rejects.csv'}",
    ]
    assert result.stderr == ""  # no progress bar when the output is not a terminal


@pytest.mark.local_only(REJECTS_FILE)
def test_import_summary_speaks_polish_with_its_plural_forms(url: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = excel_file(tmp_path / "prospects.csv", PROSPECTS)
    monkeypatch.setenv("LEADFLOW_LANG", "pl")
    result = leadflow(url, "marta", ["import", str(path), "--process", PV, "--rejects", str(tmp_path / "rejects.csv")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:3] == [
        "Zaimportowano 2 leady do photovoltaics z prospects.csv (import 1, leady 1-2): 2 nowi klienci, "
        "istniejących: 0, powtórzonych w pliku: 0; 1 wiersz odrzucony.",
        "2 leady bez właściciela czekają w kolejce kierownika (leadflow lead list --unassigned).",
        "Nierozpoznane kolumny, pominięte (przypisz je przez --mapping): Notatki",
    ]
    assert lines[3].startswith("  wiersz 4: ")
    assert lines[4] == f"Odrzucone wiersze zapisano w {tmp_path / 'rejects.csv'}"
    token = leadflow(url, "root", ["token", "add", "--source", "www"])
    assert token.exit_code == 0 and token.output.startswith("Token 1 dla www:"), token.output
    assert token.output.rstrip().endswith("Zachowaj go teraz: nie zostanie pokazany ponownie.")


def test_import_abort_exits_1_and_imports_nothing(url: str, tmp_path: Path) -> None:
    path = excel_file(tmp_path / "prospects.csv", PROSPECTS)
    before = snapshot(url)
    result = leadflow(url, "marta", ["import", str(path), "--process", PV, "--on-error", "abort", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["status"], report["imported"], report["rejected"]) == ("aborted", 0, 1)
    assert snapshot(url) == before


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--owner", "anna", "--assign", "auto"], 2, "Error: give either --owner or --assign auto, not both"),
    (["--on-error", "ignore"], 2, "Invalid value for '--on-error'"),
    (["--process", "nope"], 1, "Error: process 'nope' is not loaded"),
])
def test_import_usage_and_refusals(url: str, tmp_path: Path, args: list[str], code: int, message: str) -> None:
    path = excel_file(tmp_path / "prospects.csv", PROSPECTS)
    result = leadflow(url, "marta", ["import", str(path), "--process", PV, *args])
    assert result.exit_code == code
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_import_of_a_missing_file_is_one_line(url: str, tmp_path: Path) -> None:
    result = leadflow(url, "marta", ["import", str(tmp_path / "nope.csv"), "--process", PV])
    assert result.exit_code == 1
    assert result.stderr == f"Error: cannot read {tmp_path / 'nope.csv'}: No such file or directory\n"


HOSTILE = ["=HYPERLINK(\"http://evil\",\"x\")", "+48 600 100 200", "-2+3", "@SUM(A1)", "Zwykła Nazwa"]


def test_export_neutralises_formulas_and_reimports_as_it_was(url: str, tmp_path: Path) -> None:
    marta = Engine.open(url, user="marta")
    try:
        for i, name in enumerate(HOSTILE):
            marta.add_lead(process=PV, name=name, phone="+48 600 100 20" + str(i), email=f"p{i}@example.pl",
                           value="1000" if i % 2 else None, owner="anna" if i % 2 else None, source="targi",
                           fields={"decision_maker": "=cmd|' /C calc'!A0", "roof_area_m2": "-1" if False else "40",
                                   "wants_insurance": "tak", "install_by": "2026-06-01", "budget": "45 000"})
        marta.add_lead(process="mortgage", name="Hipoteka Nowak")
    finally:
        marta.close()
    result = leadflow(url, "marta", ["export", "--process", PV])
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 5
    assert [r["name"] for r in rows] == ["'" + HOSTILE[0], "'" + HOSTILE[1], "'" + HOSTILE[2], "'" + HOSTILE[3],
                                         "Zwykła Nazwa"]
    assert {r["phone"][:2] for r in rows} == {"'+"}
    assert {r["decision_maker"] for r in rows} == {"'=cmd|' /C calc'!A0"}
    assert rows[1]["value"] == "1000.00" and rows[1]["owner"] == "anna"
    assert (rows[0]["wants_insurance"], rows[0]["install_by"], rows[0]["budget"]) == ("true", "2026-06-01", "45000.00")
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r.values())

    # the export imports into another database as it was
    exported = tmp_path / "export.csv"
    assert leadflow(url, "marta", ["export", "--process", PV, "--output", str(exported)]).exit_code == 0
    other = tmp_path / "other.db"
    other_url = f"sqlite:///{other}"
    admin = Engine.open(other_url, user="root")
    admin.init()
    admin.load_process(ROOT / "processes" / f"{PV}.yaml")
    for name, role, team in TEAM:
        admin.add_user(name, role, team)
    admin.close()
    result = leadflow(other_url, "marta", ["import", str(exported), "--process", PV, "--json"])
    report = json.loads(result.stdout)
    assert (report["imported"], report["rejected"], report["unknown_columns"]) == (5, 0, [])
    assert report["ignored_columns"] == ["id", "process", "stage", "status", "team", "created_at"]

    def inquiries(db: str) -> list[tuple[Any, ...]]:
        eng = Engine.open(db, user="root")
        try:
            return [(lead["name"], lead["company"], lead["email"], lead["phone"], lead["source"], lead["product"],
                     lead["value"], lead["owner"], lead["fields"])
                    for lead in (eng.get_lead(r["id"]) for r in eng.list_leads(process=PV))]
        finally:
            eng.close()

    assert inquiries(other_url) == inquiries(url)


def test_export_for_excel_and_what_a_salesperson_sees(url: str, tmp_path: Path) -> None:
    marta = Engine.open(url, user="marta")
    try:
        marta.add_lead(process=PV, name="Anny", owner="anna")
        marta.add_lead(process=PV, name="Piotra", owner="piotr")
    finally:
        marta.close()
    result = leadflow(url, "anna", ["export", "--excel"])
    text = result.stdout_bytes.decode("utf-8")  # (click's .stdout turns CRLF into LF)
    assert text.startswith("\ufeffid;process;stage;status;owner;")
    lines = text.split("\r\n")
    assert len(lines) == 3 and lines[1].split(";")[6] == "Anny" and lines[2] == ""


@pytest.mark.local_only(LOGIN_TOKENS)
def test_tokens_are_shown_once_and_managed_by_admins(url: str) -> None:
    result = leadflow(url, "root", ["token", "add", "--source", "website", "--process", PV, "--json"])
    made = json.loads(result.stdout)
    assert made["token"].startswith("lf_") and len(made["token"]) > 40
    listed = json.loads(leadflow(url, "root", ["token", "list", "--json"]).stdout)
    assert listed == [{k: v for k, v in made.items() if k != "token"}]
    assert made["token"] not in leadflow(url, "root", ["token", "list"]).stdout
    db = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        stored = db.execute("SELECT * FROM api_tokens").fetchall()
    finally:
        db.close()
    assert made["token"] not in repr(stored) and made["token"][3:20] not in repr(stored)
    refused = leadflow(url, "marta", ["token", "add", "--source", "partner"])
    assert refused.exit_code == 1
    assert refused.stderr == "Error: user 'marta' (manager, team north) may not manage API tokens: only an admin may\n"
    assert leadflow(url, "root", ["token", "revoke", str(made["id"])]).stdout == "Token 1 (website) revoked\n"
    again = leadflow(url, "root", ["token", "revoke", str(made["id"])])
    assert again.exit_code == 1 and "was already revoked on 2026-03-02 09:00 by root" in again.stderr
    taken = leadflow(url, "root", ["token", "add", "--source", "anna"])
    assert taken.stderr == ("Error: 'anna' is already the name of a user (salesperson); a source needs a name of "
                            "its own\n")


@pytest.mark.slow  # a large import, killed and run again as programs
@pytest.mark.local_only("it kills an import process of its own, which works on the database itself")
def test_a_killed_import_leaves_nothing_and_a_rerun_imports_each_row_once(url: str, tmp_path: Path) -> None:
    from benchmarks.import_csv import generate

    path = tmp_path / "big.csv"
    made = generate(path, 40_000)
    admin = Engine.open(url, user="root")
    with admin.transaction():
        for i in range(50):  # the owners the generated file names
            admin.add_user(f"sales{i:02d}", "salesperson", "north")
    admin.close()
    db_file = url.removeprefix("sqlite:///")
    before = snapshot(url)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "cli.main", "--db", url, "--user", "root", "import", str(path), "--process", PV,
               "--json"]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wal = Path(db_file + "-wal")
    deadline = time.monotonic() + 120
    # batches are being written when the write-ahead log grows past a few batches' worth
    while (not wal.exists() or wal.stat().st_size < 4_000_000) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    assert proc.poll() is None, "the import finished before it could be killed; use a bigger file"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(url) == before
    check = sqlite3.connect(db_file)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        check.close()
    rerun = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["rows"] == 40_000
    assert report["imported"] == 40_000 - made["bad"]
    db = sqlite3.connect(db_file)
    try:
        leads, clients = (db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("leads", "clients"))
        emails = db.execute("SELECT count(*), count(DISTINCT email_norm) FROM clients WHERE email_norm IS NOT NULL")
        total, distinct = emails.fetchone()
    finally:
        db.close()
    assert (leads, clients) == (report["imported"], report["new_clients"])
    assert total == distinct  # one client per person
