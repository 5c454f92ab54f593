"""An import's refused rows in the reader's language (docs/intake.md, docs/i18n.md, issue 17): the CLI's summary
(a CSV import and a history import, dry run and real, here and through a team server), the web import page and
its job page show each reason in the reader's language from its template, while ``--json`` keeps the same
English ``reason`` with its ``message_id`` and ``params`` in every language."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine import i18n
from tests.conftest import CliDatabase, Team, leadflow
from tests.test_cli_intake import PROSPECTS, build_floor, excel_file
from tests.test_history_import import deal, write
from tests.test_web import PEOPLE, _cheap_hashes  # noqa: F401  (the autouse fixture: cheap password hashes)
from tests.web_fixtures import import_ended, signed_in, with_passwords

PV = "photovoltaics"
#: PROSPECTS (line 4: a wrong e-mail) with a row of two refused values and a row of one cell.
ROWS = [*PROSPECTS, ["", "x@", "", "", "", ""], ["Jan"]]
#: The rejected rows' lines as each language prints them.
PRINTED = {
    "en": ["  line 4: e-mail 'zły-adres' is not an address such as name@example.com",
           "  line 5: a lead needs the client's name; e-mail 'x@' is not an address such as name@example.com",
           "  line 6: the row has 1 cells, the header 6"],
    "pl": ["  wiersz 4: e-mail 'zły-adres' nie jest adresem w rodzaju name@example.com",
           "  wiersz 5: lead wymaga nazwy klienta; e-mail 'x@' nie jest adresem w rodzaju name@example.com",
           "  wiersz 6: liczba komórek w wierszu: 1, w nagłówku: 6"],
    "ro": ["  rândul 4: e-mail 'zły-adres' nu este o adresă de forma name@example.com",
           "  rândul 5: un lead are nevoie de numele clientului; e-mail 'x@' nu este o adresă de forma "
           "name@example.com",
           "  rândul 6: numărul de celule: 1 în rând, 6 în antet"],
    "ru": ["  строка 4: e-mail 'zły-adres' не является адресом вида name@example.com",
           "  строка 5: лиду нужно имя клиента; e-mail 'x@' не является адресом вида name@example.com",
           "  строка 6: ячеек в строке: 1, в заголовке: 6"],
}
#: A history file: a good deal, one in a stage the process has not, one with a status that is none.
DEALS = [deal("H-1", name="Jan Kowalski", stage="register_lead", created_at="2025-01-06", owner="anna"),
         deal("H-2", name="Ewa Nowak", stage="nowhere", created_at="2025-01-06"),
         deal("H-3", name="Olga Smirnova", status="maybe", created_at="2025-01-06")]
STAGES = "register_lead, first_contact, first_meeting, send_offer, close_contract"
HISTORY_PRINTED = {
    "en": [f"  line 3: stage 'nowhere' is not a stage of process photovoltaics; stages: {STAGES}",
           "  line 4: status 'maybe' is not one of: open, won, lost"],
    "pl": [f"  wiersz 3: etap 'nowhere' nie jest etapem procesu photovoltaics; etapy: {STAGES}",
           "  wiersz 4: status 'maybe' nie jest jednym z: open, won, lost"],
    "ro": [f"  rândul 3: etapa 'nowhere' nu este o etapă a procesului photovoltaics; etape: {STAGES}",
           "  rândul 4: starea 'maybe' nu este una dintre: open, won, lost"],
    "ru": [f"  строка 3: этап 'nowhere' не является этапом процесса photovoltaics; этапы: {STAGES}",
           "  строка 4: статус 'maybe' не является одним из: open, won, lost"],
}


@pytest.fixture
def url(cli_db: CliDatabase) -> str:
    return cli_db.template("cli_intake", build_floor)


def rejected_lines(output: str, code: str) -> list[str]:
    word = PRINTED[code][0].split()[0]
    return [line for line in output.splitlines() if line.startswith(f"  {word} ")]


def neutral(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: r[k] for k in ("line", "reason", "message_id", "params")} for r in report["rejects"]]


@pytest.mark.parametrize("code", ["pl", "ro", "ru"])
def test_the_import_summary_gives_each_rejected_row_in_the_readers_language(
        url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    path = excel_file(tmp_path / "prospects.csv", ROWS)
    english = leadflow(url, "marta", ["import", str(path), "--process", PV, "--dry-run", "--json"])
    assert english.exit_code == 0, english.output
    monkeypatch.setenv("LEADFLOW_LANG", code)
    dry = leadflow(url, "marta", ["import", str(path), "--process", PV, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert rejected_lines(dry.output, code) == PRINTED[code]
    # --json is the same in every language: English reasons, their templates and parameters
    report = json.loads(english.stdout)
    translated = leadflow(url, "marta", ["import", str(path), "--process", PV, "--dry-run", "--json"])
    assert neutral(json.loads(translated.stdout)) == neutral(report)
    assert [r["reason"] for r in report["rejects"]] == [line.split(": ", 1)[1] for line in PRINTED["en"]]
    assert report["rejects"][0]["message_id"] == "{what} {email!r} is not an address such as name@example.com"
    assert report["rejects"][1]["message_id"] == i18n.SEVERAL
    assert [r["message_id"] for r in report["rejects"][1]["params"]["reasons"]] == [
        "a lead needs the client's name", "{what} {email!r} is not an address such as name@example.com"]
    assert report["rejects"][2]["params"] == {"cells": 1, "width": 6}
    real = leadflow(url, "marta", ["import", str(path), "--process", PV])
    assert real.exit_code == 0, real.output
    assert rejected_lines(real.output, code) == PRINTED[code]


@pytest.mark.parametrize("code", ["pl", "ro", "ru"])
def test_the_history_imports_refused_deals_in_the_readers_language(
        url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    path = write(tmp_path / "deals.csv", DEALS)
    command = ["import", str(path), "--process", PV, "--history"]
    english = leadflow(url, "root", [*command, "--dry-run", "--json"])
    assert english.exit_code == 0, english.output
    monkeypatch.setenv("LEADFLOW_LANG", code)
    for args in ([*command, "--dry-run"], command):
        result = leadflow(url, "root", args)
        assert result.exit_code == 0, result.output
        assert rejected_lines(result.output, code) == HISTORY_PRINTED[code]
    translated = leadflow(url, "root", [*command, "--dry-run", "--json"])
    assert neutral(json.loads(translated.stdout)) == neutral(json.loads(english.stdout))
    assert json.loads(english.stdout)["rejects"][1]["params"] == {"status": "maybe"}


@pytest.mark.parametrize("code", ["pl", "ro", "ru"])
def test_the_web_import_page_and_its_job_give_the_reasons_in_the_readers_language(team: Team, code: str) -> None:
    with_passwords(team, *PEOPLE)
    team.admin.users.set_language("marta", code)
    marta, csrf = signed_in(team, "marta")
    text = "name;email;roof_type\nAnna Import;anna.import@example.pl;flat\nZły Mail;zły-adres;flat\n"
    form = {"csrf": csrf, "process": PV, "owner": "piotr", "on_error": "skip", "text": text}
    reason = PRINTED[code][0].split(": ", 1)[1]
    line = {"pl": "wiersz", "ro": "linia", "ru": "строка"}[code]
    checked = marta.post("/import/check", data=form)  # the dry run's report, as the engine returned it
    assert checked.status_code == 200, checked.text
    assert f"{line} 3: {reason}" in checked.text.replace("&#39;", "'")
    done = import_ended(marta, marta.post("/import", data=form))  # the job's report, read back from its JSON
    assert done.status_code == 200, done.text
    assert f"{line} 3: {reason}" in done.text.replace("&#39;", "'")
