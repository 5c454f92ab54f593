"""A team server answers a person in their language (cli/server/language.py, docs/i18n.md): a refusal's ``detail``
in the user's own language, else ``Accept-Language``'s, else English, with a machine part that is the same in
every language; labels in the reader's language when the client asks (the CLI printing for a person); and the
remote CLI sending its local language and printing what the server says, on a real server with a real login."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import cli
from tests.conftest import Team
from tests.server_fixtures import Served, serving
from tests.test_i18n_cli_lines import _english_help_afterwards  # noqa: F401  (autouse: the help back in English)

PV = "photovoltaics"
PASSWORD = "correct horse battery staple"
POLISH_REFUSAL = "nie można opuścić etapu „{stage}” leada {lead}: otwarte zadania obowiązkowe: {tasks}"
POLISH_TASK = "Zapisz dane kontaktowe i źródło leada"


@pytest.fixture
def served(team: Team) -> Iterator[Served]:
    with serving(team.admin) as server:
        yield server


def new_lead(served: Served) -> dict[str, Any]:
    answer = served.call("anna", "POST", "/v1/leads", json={"process": PV, "name": "Jan Kowalski"})
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def advance(served: Served, lead: dict[str, Any], **headers: str) -> Any:
    return served.call("anna", "POST", f"/v1/leads/{lead['id']}/advance", json={}, headers=headers)


def test_a_polish_user_is_refused_in_polish_with_the_same_machine_part(team: Team, served: Served) -> None:
    lead = new_lead(served)
    english = advance(served, lead)
    team.admin.users.set_language("anna", "pl")
    polish = advance(served, lead, **{"Accept-Language": "ro"})  # her own language wins over the request's
    assert english.status_code == polish.status_code == 422
    assert english.headers["content-language"] == "en" and polish.headers["content-language"] == "pl"
    stage = lead["stage"]
    assert english.json()["detail"] == (f"can't leave stage '{stage}' of lead {lead['id']}: mandatory tasks open: "
                                        "record_contact")
    stage_pl = team.admin.processes.show(PV)["stages"][0]["name"]["pl"]
    assert polish.json()["detail"] == POLISH_REFUSAL.format(stage=stage_pl, lead=lead["id"], tasks=POLISH_TASK)
    machine = ("message_id", "params", "error", "status", "title", "errors")
    assert {k: polish.json()[k] for k in machine} == {k: english.json()[k] for k in machine}
    assert polish.json()["message_id"] == "can't leave stage '{stage}' of lead {lead}: mandatory tasks open: {tasks}"
    assert polish.json()["params"] == {"stage": stage, "lead": lead["id"], "tasks": ["record_contact"],
                                     "fields": []}
    assert polish.json()["error"] == english.json()["detail"]  # the 0.1 intake clients' member stays English


def test_before_log_in_the_request_s_accept_language_is_spoken(served: Served) -> None:
    refused = served.call(None, "POST", "/v1/auth/login", json={"name": "anna", "password": "not her password"},
                          headers={"Accept-Language": "de-DE, ro;q=0.8, en;q=0.5"})
    assert refused.status_code == 401
    assert refused.headers["content-language"] == "ro"
    assert refused.json()["detail"] == "nume de utilizator sau parolă greșite"
    assert refused.json()["message_id"] == refused.json()["error"] == "wrong user name or password"
    plain = served.call(None, "POST", "/v1/auth/login", json={"name": "anna", "password": "not her password"},
                        headers={"Accept-Language": "de"})
    assert plain.json()["detail"] == "wrong user name or password"  # a language leadflow lacks: English


def test_a_hidden_lead_is_not_found_in_the_readers_language(team: Team, served: Served) -> None:
    lead = new_lead(served)
    answer = served.call("ioana", "POST", f"/v1/leads/{lead['id']}/advance", json={},
                         headers={"Accept-Language": "ru"})
    assert answer.status_code == 404
    assert answer.json()["error"] == f"lead {lead['id']} does not exist"
    assert answer.json()["detail"] != answer.json()["error"] and str(lead["id"]) in answer.json()["detail"]
    assert answer.json()["params"] == {"lead": lead["id"]}


def test_labels_come_in_the_readers_language_only_when_asked(team: Team, served: Served) -> None:
    lead = new_lead(served)
    team.admin.users.set_language("anna", "pl")
    neutral = served.call("anna", "GET", f"/v1/leads/{lead['id']}")
    assert neutral.json() == team.as_("anna").leads.get(lead["id"])  # the API's JSON: --json's, in English
    assert "content-language" not in neutral.headers
    spoken = served.call("anna", "GET", f"/v1/leads/{lead['id']}", headers={"X-Leadflow-Labels": "reader"})
    assert spoken.headers["content-language"] == "pl"
    stages = team.admin.processes.show(PV)["stages"]
    assert spoken.json()["stage_name"] == stages[0]["name"]["pl"] != neutral.json()["stage_name"]
    assert [t["name"] for t in spoken.json()["tasks"] if t["id"] == "record_contact"] == [POLISH_TASK]
    assert {k: v for k, v in spoken.json().items() if k not in ("stage_name", "tasks")} == {
        k: v for k, v in neutral.json().items() if k not in ("stage_name", "tasks")}


# -- the remote CLI on a real server ----------------------------------------------------------------------------

def cli_as_anna(served: Served, home: Path, args: list[str], **env: str | None) -> Any:
    return CliRunner().invoke(cli, args, env={"XDG_CONFIG_HOME": str(home), "LEADFLOW_SERVER": None,
                                              "LEADFLOW_TOKEN": None, "LEADFLOW_DB": None, "LEADFLOW_USER": None,
                                              "LC_ALL": None, "LC_MESSAGES": None, "LANG": None, **env},
                              input=PASSWORD + "\n", catch_exceptions=False, prog_name="leadflow")


@pytest.fixture
def logged_in(team: Team, served: Served, tmp_path: Path) -> Path:
    team.as_("anna").auth.set_password("anna", PASSWORD)
    result = cli_as_anna(served, tmp_path, ["login", served.url, "--user", "anna", "--password-stdin"])
    assert result.exit_code == 0, result.output
    return tmp_path


def test_the_remote_cli_is_refused_in_the_local_language(team: Team, served: Served, logged_in: Path) -> None:
    lead = new_lead(served)
    result = cli_as_anna(served, logged_in, ["lead", "advance", str(lead["id"])], LEADFLOW_LANG="pl")
    assert result.exit_code == 1
    stage_pl = team.admin.processes.show(PV)["stages"][0]["name"]["pl"]
    assert result.stderr.strip() == "Błąd: " + POLISH_REFUSAL.format(stage=stage_pl, lead=lead["id"],
                                                                     tasks=POLISH_TASK)
    english = cli_as_anna(served, logged_in, ["lead", "advance", str(lead["id"]), "--json"], LEADFLOW_LANG="en")
    assert english.stderr.strip().startswith("Error: can't leave stage")


def test_the_remote_cli_speaks_the_users_own_language_and_json_stays_neutral(
        team: Team, served: Served, logged_in: Path) -> None:
    lead = new_lead(served)
    team.admin.users.set_language("anna", "pl")
    shown = cli_as_anna(served, logged_in, ["lead", "show", str(lead["id"])], LEADFLOW_LANG="en")
    assert shown.exit_code == 0, shown.output
    assert POLISH_TASK in " ".join(shown.stdout.split())
    assert "Zadania etapu" in shown.stdout  # her language (the server says it), not the terminal's
    team.as_("anna").leads.set_fields(lead["id"], {"roof_type": "flat"})
    fields = cli_as_anna(served, logged_in, ["lead", "show", str(lead["id"])], LEADFLOW_LANG="en")
    assert "roof_type=Płaski" in fields.stdout  # a choice's option by its label, the server's in her language
    as_json = cli_as_anna(served, logged_in, ["lead", "show", str(lead["id"]), "--json"], LEADFLOW_LANG="pl")
    assert "Record the contact details and the source" in as_json.stdout and POLISH_TASK not in as_json.stdout


# -- the remote CLI's own words, against a stub server ------------------------------------------------------------

def test_the_remote_cli_says_its_language_and_asks_for_labels_only_for_a_person(tmp_path: Path) -> None:
    from tests.remote import problem, stub_server

    with stub_server() as stub:
        stub.answer("GET", "/v1/leads/7", body={"id": 7})
        status, body, headers = problem(401, "token wygasł")
        stub.answer("GET", "/v1/tasks", status, body, headers)
        env = {"XDG_CONFIG_HOME": str(tmp_path), "LEADFLOW_SERVER": stub.url, "LEADFLOW_TOKEN": "lfp_anna",
               "LEADFLOW_DB": None, "LEADFLOW_USER": None, "LC_ALL": None, "LC_MESSAGES": None, "LANG": None,
               "LEADFLOW_LANG": "pl"}
        CliRunner().invoke(cli, ["lead", "show", "7", "--json"], env=env, prog_name="leadflow")
        refused = CliRunner().invoke(cli, ["task", "list"], env=env, prog_name="leadflow")
        [as_json, for_a_person] = stub.sent
    assert as_json.headers["accept-language"] == for_a_person.headers["accept-language"] == "pl"
    assert "x-leadflow-labels" not in as_json.headers and for_a_person.headers["x-leadflow-labels"] == "reader"
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (f"Błąd: token wygasł (serwer {stub.url}); zaloguj się: leadflow login "
                                      f"{stub.url}")


def test_the_remote_cli_speaks_the_language_the_server_names(tmp_path: Path) -> None:
    from tests.remote import stub_server

    with stub_server() as stub:
        stub.answer("POST", "/v1/leads/7/advance", 422, {"status": 422, "detail": "lead-ul 7 este închis"},
                    {"Content-Type": "application/problem+json", "Content-Language": "ro"})
        refused = CliRunner().invoke(cli, ["lead", "advance", "7"], prog_name="leadflow", env={
            "XDG_CONFIG_HOME": str(tmp_path), "LEADFLOW_SERVER": stub.url, "LEADFLOW_TOKEN": "lfp_anna",
            "LEADFLOW_DB": None, "LEADFLOW_USER": None, "LEADFLOW_LANG": "en"})
    assert refused.stderr.strip() == "Eroare: lead-ul 7 este închis"  # the user's own language, as the server says
