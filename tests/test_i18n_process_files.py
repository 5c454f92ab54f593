"""A process file's located problems in the reader's language (issue 17): the loader writes its messages as
templates (``i18n.Message``), so ``process validate`` and ``process load`` print them translated with the same
``file:line:col: path:`` place, and a team server's refusal of a file speaks the person's language."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import cli
from engine import i18n
from engine.errors import ProcessFileError
from engine.loader import check_bytes, load_file
from tests.conftest import Team
from tests.server_fixtures import Served, serving
from tests.test_cli_process import BROKEN_PROCESS
from tests.test_i18n_cli_lines import _english_help_afterwards  # noqa: F401  (autouse: the help back in English)

RUSSIAN_OWNER = ("владелец «salesman» не является объявленной ролью; возможно, имелось в виду «salesperson»? "
                 "объявленные роли: salesperson")


def run(args: list[str], language: str) -> Result:
    return CliRunner().invoke(cli, args, env={"LEADFLOW_LANG": language, "LEADFLOW_DB": None}, prog_name="leadflow")


def test_a_problem_keeps_its_place_and_english_and_speaks_russian(tmp_path: Path) -> None:
    _spec, [problem] = check_bytes(BROKEN_PROCESS.encode(), "broken.yaml")
    assert str(problem) == ("broken.yaml:15:39: stages[0].tasks[0].owner: owner 'salesman' is not a declared role; "
                            "did you mean 'salesperson'? declared roles: salesperson")
    assert problem.in_language("ru") == f"broken.yaml:15:39: stages[0].tasks[0].owner: {RUSSIAN_OWNER}"


def test_the_files_own_troubles_and_twice_used_ids_speak_polish() -> None:
    tabbed = BROKEN_PROCESS.replace("\n  - {id: salesperson", "\n\t- {id: salesperson", 1)
    _spec, [tab] = check_bytes(tabbed.encode(), "tabbed.yaml")
    assert tab.in_language("pl") == "tabbed.yaml:9:1: znak tabulacji we wcięciu; YAML wcina tylko spacjami"
    assert str(tab) == "tabbed.yaml:9:1: tab character in indentation; YAML indents with spaces only"
    sign = "  - {id: sign, name: Sign, deadline_days: 5}\n"
    twice = BROKEN_PROCESS.replace("owner: salesman", "owner: salesperson").replace(sign, sign + sign)
    _spec, [again] = check_bytes(twice.encode(), "twice.yaml")
    assert again.in_language("pl") == (
        "twice.yaml:17:10: stages[2].id: id etapu „sign” użyto dwa razy (pierwszy raz w wierszu 16)")


def test_process_validate_prints_russian_problems_with_their_location(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN_PROCESS, encoding="utf-8")
    result = run(["process", "validate", str(path)], "ru")
    assert result.exit_code == 1
    assert result.stdout == f"{path}:15:39: stages[0].tasks[0].owner: {RUSSIAN_OWNER}\n"
    assert result.stderr == "0 файлов корректно, 1 с ошибками (1 проблема)\n"
    as_json = run(["process", "validate", str(path), "--json"], "ru")
    assert "owner 'salesman' is not a declared role" in as_json.stdout


def test_a_refused_load_speaks_the_readers_language(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN_PROCESS, encoding="utf-8")
    with pytest.raises(ProcessFileError) as err:
        load_file(path)
    assert i18n.error_text(err.value, "ru").splitlines()[-1].endswith(RUSSIAN_OWNER)
    assert str(err.value).splitlines()[-1].endswith("declared roles: salesperson")


@pytest.fixture
def served(team: Team) -> Iterator[Served]:
    with serving(team.admin) as server:
        yield server


def test_the_server_refuses_a_process_file_in_russian(team: Team, served: Served) -> None:
    refused = served.call("root", "POST", "/v1/processes", params={"filename": "broken.yaml"},
                          content=BROKEN_PROCESS.encode(), headers={"Accept-Language": "ru"})
    assert refused.status_code == 422
    assert refused.json()["detail"] == f"broken.yaml:15:39: stages[0].tasks[0].owner: {RUSSIAN_OWNER}"
    assert refused.json()["error"].endswith("did you mean 'salesperson'? declared roles: salesperson")
    assert "leadflow-upload" not in refused.text
    checked = served.call("root", "POST", "/v1/processes/validate", params={"filename": "broken.yaml"},
                          content=BROKEN_PROCESS.encode(), headers={"Accept-Language": "ru"})
    assert checked.json()[0]["problems"][0]["message"].startswith("owner 'salesman'")  # the API's JSON: English
    spoken = served.call("root", "POST", "/v1/processes/validate", params={"filename": "broken.yaml"},
                         content=BROKEN_PROCESS.encode(),
                         headers={"Accept-Language": "ru", "X-Leadflow-Labels": "reader"})
    assert spoken.json()[0]["problems"][0]["message"] == RUSSIAN_OWNER  # for the remote CLI printing for a person
