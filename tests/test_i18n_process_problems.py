"""Every located problem of a process file speaks the reader's language (issue 17): the YAML reader's, the JSON
Schema's (never jsonschema's own words), the semantic checks' and the format's, each at the same place as in
English, through ``leadflow process validate`` with ``LEADFLOW_LANG`` and through a team server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from engine import i18n
from engine.loader import check_bytes
from engine.process_schema import SCHEMA_DESCRIPTIONS, schema
from engine.process_yaml import YAML_WORDS
from tests.conftest import Team
from tests.server_fixtures import Served
from tests.test_i18n_cli_lines import _english_help_afterwards  # noqa: F401  (autouse: the help back in English)
from tests.test_i18n_process_files import served  # noqa: F401  (the fixture: a team server)
from tests.test_server_i18n import cli_as_anna, logged_in  # noqa: F401  (the fixture: anna logged in to it)
from tests.test_web import _cheap_hashes  # noqa: F401  (the autouse fixture: cheap password hashes)
from tests.test_web_admin import admin  # noqa: F401  (the fixture: an admin signed in to the web app)
from tests.web_fixtures import TestClient

BAD_PROCESS = """\
format: 2
id: bad
title: Bad
currency: PLN
calendar: XX
sales_cycle_days: 30
cool_off_days: 14
roles:
  - {id: salesperson, name: Salesperson}
fields:
  - {id: budget, type: number, label: Budget}
stages:
  - id: call
    name: Call the client
    deadline_days: 2
    dedline_days: 3
    next:
      - {stage: sing}
      - {stage: sign, when: {field: budget, op: contains, value: 5}}
  - {id: sign, name: Sign, deadline_days: five}
won_stage: sign
closure_reasons:
  - {id: spam, label: Spam, kind: removal}
"""

#: Each problem of BAD_PROCESS: where, and its message in each language.
PROBLEMS: dict[str, list[tuple[str, str]]] = {
    "en": [
        ("16:5: stages[0].dedline_days", "unknown key 'dedline_days'; did you mean 'deadline_days'? allowed keys here: "
         "id, name, description, deadline_days, warning_days, probability, required_fields, tasks, next, on_enter"),
        ("20:43: stages[1].deadline_days", "expected a whole number, got the text 'five'"),
        ("5:11: calendar", "calendar 'XX' is not a country the holidays package knows"),
        ("18:17: stages[0].next[0].stage", "stage 'sing' is not declared; did you mean 'sign'? declared stages: call, "
         "sign"),
        ("19:49: stages[0].next[1].when.op", "operator 'contains' does not apply to number field 'budget'; use one "
         "of: eq, ne, gt, gte, lt, lte, in, not_in, is_set, is_unset"),
    ],
    "pl": [
        ("16:5: stages[0].dedline_days", "nieznany klucz „dedline_days”; czy chodziło o „deadline_days”? dozwolone "
         "klucze w tym miejscu: id, name, description, deadline_days, warning_days, probability, required_fields, "
         "tasks, next, on_enter"),
        ("20:43: stages[1].deadline_days", "oczekiwano: liczba całkowita, podano: tekst 'five'"),
        ("5:11: calendar", "kalendarz „XX” nie jest krajem znanym pakietowi holidays"),
        ("18:17: stages[0].next[0].stage", "etap „sing” nie jest zadeklarowany; czy chodziło o „sign”? zadeklarowane "
         "etapy: call, sign"),
        ("19:49: stages[0].next[1].when.op", "operator „contains” nie ma zastosowania do: pole „budget” typu number; "
         "użyj jednego z: eq, ne, gt, gte, lt, lte, in, not_in, is_set, is_unset"),
    ],
    "ro": [
        ("16:5: stages[0].dedline_days", "cheie necunoscută „dedline_days”; vă referiți la „deadline_days”? chei "
         "permise aici: id, name, description, deadline_days, warning_days, probability, required_fields, tasks, "
         "next, on_enter"),
        ("20:43: stages[1].deadline_days", "se aștepta un număr întreg, s-a primit textul 'five'"),
        ("5:11: calendar", "calendarul „XX” nu este o țară cunoscută de pachetul holidays"),
        ("18:17: stages[0].next[0].stage", "etapa „sing” nu este declarată; vă referiți la „sign”? etape declarate: "
         "call, sign"),
        ("19:49: stages[0].next[1].when.op", "operatorul „contains” nu se aplică pentru câmpul number „budget”; "
         "folosește unul dintre: eq, ne, gt, gte, lt, lte, in, not_in, is_set, is_unset"),
    ],
    "ru": [
        ("16:5: stages[0].dedline_days", "неизвестный ключ «dedline_days»; возможно, имелось в виду «deadline_days»? "
         "допустимые здесь ключи: id, name, description, deadline_days, warning_days, probability, required_fields, "
         "tasks, next, on_enter"),
        ("20:43: stages[1].deadline_days", "ожидалось: целое число, получено: текст 'five'"),
        ("5:11: calendar", "календарь «XX» не является страной, известной пакету holidays"),
        ("18:17: stages[0].next[0].stage", "этап «sing» не объявлен; возможно, имелось в виду «sign»? объявленные "
         "этапы: call, sign"),
        ("19:49: stages[0].next[1].when.op", "оператор «contains» неприменим к: поле «budget» типа number; "
         "используйте один из: eq, ne, gt, gte, lt, lte, in, not_in, is_set, is_unset"),
    ],
}
SUMMARY = {"en": "0 files valid, 1 invalid (5 problems)", "pl": "0 plików poprawnych, 1 z błędami (5 problemów)",
           "ro": "0 fișiere valide, 1 invalide (5 probleme)", "ru": "0 файлов корректно, 1 с ошибками (5 проблем)"}


def run(args: list[str], language: str) -> Result:
    return CliRunner().invoke(cli, args, env={"LEADFLOW_LANG": language, "LEADFLOW_DB": None}, prog_name="leadflow")


@pytest.mark.parametrize("code", ["en", "pl", "ro", "ru"])
def test_process_validate_prints_each_problem_in_the_readers_language_at_its_place(tmp_path: Path, code: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_PROCESS, encoding="utf-8")
    result = run(["process", "validate", str(path)], code)
    assert result.exit_code == 1  # as in English
    assert result.stdout.splitlines() == [f"{path}:{where}: {message}" for where, message in PROBLEMS[code]]
    assert result.stderr == SUMMARY[code] + "\n"
    as_json = json.loads(run(["process", "validate", str(path), "--json"], code).stdout)
    assert [p["message"] for p in as_json[0]["problems"]] == [message for _where, message in PROBLEMS["en"]]


@pytest.mark.parametrize(("text", "english", "polish"), [
    ("id: x\nstages: a: b\n", "2:10: YAML syntax error: mapping values are not allowed here",
     "2:10: błąd składni YAML: wartości mapowania nie są tu dozwolone"),
    ("id: x\nstages:\n  - a\n - b\n", "4:2: YAML syntax error: while parsing a block mapping (started on line 1): "
     "expected <block end>, but found '<block sequence start>'", "4:2: błąd składni YAML: podczas analizy mapowania "
     "blokowego (początek w wierszu 1): oczekiwano <block end>, a znaleziono '<block sequence start>'"),
    ("id: x\nid: y\n", "2:1: id: duplicate key 'id' (first given on line 1); YAML would silently keep only the last "
     "one", "2:1: id: powtórzony klucz „id” (pierwszy raz podany w wierszu 1); YAML po cichu zachowałby tylko ostatni"),
    ("id: *nowhere\n", "1:5: YAML syntax error: found undefined alias 'nowhere'",
     "1:5: błąd składni YAML: znaleziono niezdefiniowany alias 'nowhere'"),
    ("- a\n", "1:1: expected a mapping of keys to values at the top, got a list",
     "1:1: na najwyższym poziomie oczekiwano mapowania kluczy na wartości, podano: lista"),
])
def test_the_yaml_readers_problems_speak_polish(text: str, english: str, polish: str) -> None:
    _spec, problems = check_bytes(text.encode(), "f.yaml")
    assert str(problems[0]) == f"f.yaml:{english}"
    assert problems[0].in_language("pl") == f"f.yaml:{polish}"


#: BAD_PROCESS put right: each case below breaks one thing of it.
GOOD_PROCESS = (BAD_PROCESS.replace("calendar: XX", "calendar: PL").replace("    dedline_days: 3\n", "")
                .replace("{stage: sing}", "{stage: sign}").replace("op: contains", "op: gt")
                .replace("deadline_days: five", "deadline_days: 5"))


@pytest.mark.parametrize(("old", "new", "english", "russian"), [
    ("currency: PLN", "currency: pln", "'pln' is not valid: write it in capitals, 'PLN'. ISO 4217 currency code of "
     "lead values and money fields, e.g. PLN, EUR, RON.", "'pln' — недопустимо: напишите заглавными буквами, 'PLN'. "
     "Код валюты ISO 4217 для стоимости лидов и денежных полей, например PLN, EUR, RON."),
    ("kind: removal", "kind: remval", "the text 'remval' is not allowed; did you mean 'removal'? expected one of: "
     "refusal, removal", "текст 'remval' не допускается; возможно, имелось в виду «removal»? ожидалось одно из: "
     "refusal, removal"),
    ("when: {field: budget, op: gt, value: 5}", "when: {alll: []}", "has alll; did you mean 'all'? expected one "
     "of these shapes: {field, op} or {attribute, op} or {all} or {any} or {not}", "содержит alll; возможно, имелось "
     "в виду «all»? ожидалась одна из этих форм: {field, op} или {attribute, op} или {all} или {any} или {not}"),
    ("op: gt, value: 5", "op: gt, value: true", "number field 'budget' compares with a number, got True",
     "поле «budget» типа number сравнивается с числом, получено True"),
    ("id: bad", "id: Bad Process", "'Bad Process' is not a valid id: use lowercase letters, digits and underscores, "
     "starting with a letter (e.g. 'bad_process')", "'Bad Process' — недопустимый id: используйте строчные буквы, "
     "цифры и подчёркивания, начиная с буквы (например 'bad_process')"),
])
def test_the_schema_and_semantic_problems_speak_russian(old: str, new: str, english: str, russian: str) -> None:
    assert check_bytes(GOOD_PROCESS.encode(), "p.yaml")[1] == []
    assert old in GOOD_PROCESS
    _spec, problems = check_bytes(GOOD_PROCESS.replace(old, new, 1).encode(), "p.yaml")
    assert [p.message for p in problems] == [english]
    assert i18n.localized(problems[0].message, "ru") == russian


def test_every_description_a_problem_quotes_is_in_the_catalogues() -> None:
    """A pattern's rule and a oneOf's description are quoted in a problem: each is marked for translation."""
    quoted: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            pattern = node.get("pattern")
            if ("oneOf" in node or (pattern and pattern != "^[a-z][a-z0-9_]*$")) and "description" in node:
                quoted.add(node["description"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema())
    quoted.discard(schema()["$defs"]["text"].get("description", ""))  # a label's problem never quotes it
    assert quoted <= set(SCHEMA_DESCRIPTIONS)
    for code in ("pl", "ro", "ru"):
        assert all(i18n.translations(code).gettext(text) != text for text in [*SCHEMA_DESCRIPTIONS, *YAML_WORDS])


def test_a_team_server_returns_the_problems_in_the_readers_language(team: Team, served: Served) -> None:  # noqa: F811
    checked = served.call("root", "POST", "/v1/processes/validate", params={"filename": "bad.yaml"},
                          content=BAD_PROCESS.encode(),
                          headers={"Accept-Language": "ro", "X-Leadflow-Labels": "reader"})
    assert checked.headers["Content-Language"] == "ro"
    assert [p["message"] for p in checked.json()[0]["problems"]] == [message for _where, message in PROBLEMS["ro"]]
    english = served.call("root", "POST", "/v1/processes/validate", params={"filename": "bad.yaml"},
                          content=BAD_PROCESS.encode(), headers={"Accept-Language": "ro"})
    assert [p["message"] for p in english.json()[0]["problems"]] == [message for _where, message in PROBLEMS["en"]]
    refused = served.call("root", "POST", "/v1/processes", params={"filename": "bad.yaml"},
                          content=BAD_PROCESS.encode(), headers={"Accept-Language": "ru"})
    assert refused.status_code == 422
    assert refused.json()["detail"].splitlines()[2] == f"bad.yaml:5:11: calendar: {PROBLEMS['ru'][2][1]}"



def test_the_remote_cli_prints_the_servers_problems_in_the_readers_language(
        team: Team, served: Served, logged_in: Path, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_PROCESS, encoding="utf-8")
    result = cli_as_anna(served, logged_in, ["process", "validate", str(path)], LEADFLOW_LANG="ro")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"{path}:{where}: {message}" for where, message in PROBLEMS["ro"]]
    assert result.stderr == SUMMARY["ro"] + "\n"
    as_json = cli_as_anna(served, logged_in, ["process", "validate", str(path), "--json"], LEADFLOW_LANG="ro")
    assert [p["message"] for p in json.loads(as_json.stdout)[0]["problems"]] == [m for _w, m in PROBLEMS["en"]]


def test_the_web_page_shows_the_problems_in_the_readers_language(
        team: Team, admin: tuple[TestClient, str]) -> None:  # noqa: F811
    web, csrf = admin
    answer = web.post("/admin/processes", data={"csrf": csrf, "text": BAD_PROCESS}, headers={"Accept-Language": "ru"})
    assert answer.status_code == 422
    assert PROBLEMS["ru"][2][1] in answer.text  # the calendar's problem, in Russian
    assert "not a country" not in answer.text
