"""``leadflow process validate`` and ``leadflow process show``: no database, problems located, exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from cli.present.mermaid import mermaid
from engine import paths
from engine.condition_text import condition_text
from engine.loader import load_file
from engine.spec import Condition, ProcessSpec

PROCESSES = paths.processes_dir()

# A small valid process with conditional transitions and text in Polish, Russian and Romanian.
UNICODE_PROCESS = """\
format: 1
id: unicode_demo
title: "Proces Łukasz Żółć: Жанна & Ștefan"
currency: PLN
calendar: PL
sales_cycle_days: 30
cool_off_days: 14
roles:
  - {id: salesperson, name: Handlowiec Łukasz}
  - {id: analyst, name: Аналитик Жанна}
fields:
  - {id: financing, label: Finansowanie, type: choice, options: [cash, loan, leasing]}
  - {id: budget, label: Budżet, type: money, min: 0}
stages:
  - id: first_call
    name: "Zadzwoń do klienta: Łukasz Żółć"
    deadline_days: 2
    warning_days: 1
    tasks:
      - {id: call, name: Zadzwoń, owner: salesperson}
    next:
      - {stage: offer, when: {field: financing, op: eq, value: leasing}}
      - stage: big_offer
        when: {all: [{field: financing, op: in, value: [cash, loan]}, {field: budget, op: gte, value: 50000}]}
  - id: offer
    name: Предложение для Жанна
    deadline_days: 5
    tasks:
      - {id: price, name: Wyceń ofertę, owner: analyst, deadline_days: 3,
         when: {field: budget, op: is_set}}
  - id: big_offer
    name: 'Oferta "mare" pentru Ștefan'
    deadline_days: 5
    next: [{stage: offer}]
won_stage: offer
closure_reasons:
  - {id: no_budget, label: Brak budżetu, kind: refusal, bant: B, revisit_after_days: 90}
  - {id: spam, label: Spam, kind: removal}
"""

BROKEN_PROCESS = """\
format: 1
id: broken
title: Broken
currency: PLN
calendar: PL
sales_cycle_days: 30
cool_off_days: 14
roles:
  - {id: salesperson, name: Salesperson}
stages:
  - id: call
    name: Call the client
    deadline_days: 2
    tasks:
      - {id: call, name: Call, owner: salesman}
  - {id: sign, name: Sign, deadline_days: 5}
won_stage: sign
closure_reasons:
  - {id: spam, label: Spam, kind: removal}
"""


@pytest.fixture
def unicode_file(tmp_path: Path) -> Path:
    path = tmp_path / "unicode_demo.yaml"
    path.write_text(UNICODE_PROCESS, encoding="utf-8")
    return path


@pytest.fixture
def broken_file(tmp_path: Path) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN_PROCESS, encoding="utf-8")
    return path


def shipped_names() -> list[str]:
    return sorted(p.stem for p in PROCESSES.glob("*.yaml"))


def no_traceback(text: str) -> None:
    assert "Traceback" not in text


# -- validate -----------------------------------------------------------------------------------


def test_validate_shipped_processes_folder(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["process", "validate", str(PROCESSES)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    count = len(shipped_names())
    assert count >= 1
    assert re.search(rf"\b{count} files? valid, 0 invalid", result.stderr)


def test_validate_never_opens_the_database(runner: CliRunner, unicode_file: Path, tmp_path: Path) -> None:
    db = tmp_path / "never.db"
    result = runner.invoke(cli, ["--db", f"sqlite:///{db}", "process", "validate", str(unicode_file)])
    assert result.exit_code == 0, result.output
    assert not db.exists()


def test_validate_broken_file_prints_located_problem(runner: CliRunner, broken_file: Path) -> None:
    result = runner.invoke(cli, ["process", "validate", str(broken_file)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines, result.output
    # file:line:col: path: message; the unknown owner is on line 15, column 39
    assert any(
        re.match(rf"{re.escape(str(broken_file))}:15:39: stages\[0\]\.tasks\[0\]\.owner: .*salesman", ln)
        for ln in lines
    ), lines
    assert "0 files valid, 1 invalid (1 problem)" in result.stderr
    no_traceback(result.output)


def test_validate_yaml_syntax_error(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "syntax.yaml"
    bad.write_text("format: 1\nid: [unclosed\n", encoding="utf-8")
    result = runner.invoke(cli, ["process", "validate", str(bad)])
    assert result.exit_code == 1
    assert re.match(rf"{re.escape(str(bad))}:\d+:\d+: ", result.stdout)
    no_traceback(result.output)


def test_validate_missing_path(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = runner.invoke(cli, ["process", "validate", str(missing)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{missing}:1:1: no such file or folder" in result.stdout
    assert "0 files valid, 1 invalid (1 problem)" in result.stderr
    no_traceback(result.output)


def test_validate_empty_folder_is_a_problem(runner: CliRunner, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(cli, ["process", "validate", str(empty)])
    assert result.exit_code == 1
    assert "holds no process files" in result.stdout


def test_validate_folder_and_file_mix(
    runner: CliRunner, broken_file: Path, unicode_file: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "a.yaml").write_text(UNICODE_PROCESS, encoding="utf-8")
    (folder / "b.yml").write_text(UNICODE_PROCESS, encoding="utf-8")
    (folder / "notes.txt").write_text("not a process", encoding="utf-8")
    args = [str(PROCESSES), str(folder), str(unicode_file), str(broken_file)]
    result = runner.invoke(cli, ["process", "validate", *args])
    assert result.exit_code == 1
    valid = len(shipped_names()) + 3
    assert f"{valid} files valid, 1 invalid (1 problem)" in result.stderr
    assert all(line.startswith(str(broken_file)) for line in result.stdout.splitlines())


def test_validate_same_file_twice_is_checked_once(runner: CliRunner, unicode_file: Path) -> None:
    result = runner.invoke(cli, ["process", "validate", str(unicode_file), str(unicode_file.parent)])
    assert result.exit_code == 0, result.output
    assert "1 file valid, 0 invalid" in result.stderr


def test_validate_json(runner: CliRunner, broken_file: Path, unicode_file: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    result = runner.invoke(
        cli, ["process", "validate", "--json", str(unicode_file), str(broken_file), str(missing)]
    )
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert [entry["file"] for entry in data] == [str(unicode_file), str(broken_file), str(missing)]
    assert [entry["valid"] for entry in data] == [True, False, False]
    assert data[0]["problems"] == []
    (problem,) = data[1]["problems"]
    assert set(problem) == {"line", "column", "path", "message"}
    assert problem["line"] == 15
    assert problem["path"] == "stages[0].tasks[0].owner"
    assert "salesman" in problem["message"]
    assert data[2]["problems"][0]["message"] == "no such file or folder"


def test_validate_json_all_valid(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["process", "validate", "--json", str(PROCESSES)])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert {Path(entry["file"]).stem for entry in data} == set(shipped_names())
    assert all(entry["valid"] and entry["problems"] == [] for entry in data)


def test_validate_needs_a_path(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["process", "validate"])
    assert result.exit_code == 2


# -- show ---------------------------------------------------------------------------------------


def test_show_by_name(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["process", "show", "photovoltaics"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    spec = load_file(PROCESSES / "photovoltaics.yaml")
    assert spec.title in out
    for word in ("photovoltaics", "PLN", "PL", "60 days", "30 days"):
        assert word in out
    positions = [out.index(f"{n}. {stage.name} [{stage.id}]") for n, stage in enumerate(spec.stages, start=1)]
    assert positions == sorted(positions)
    assert "deadline 10 business days, due soon 3 business days before" in out
    assert "only when financing = leasing" in out
    assert "Pricing analyst, mandatory" in out
    assert "Salesperson, optional" in out
    assert "own deadline 4 business days" in out
    assert "Usable roof area (m²) (roof_area_m2)" in out
    assert "send e-mail 'welcome' to the client" in out
    assert (
        "No budget or financing refused [no_budget] - refusal, BANT B (Budget), revisit after 180 days" in out
    )


@pytest.mark.parametrize("name", shipped_names())
def test_show_every_shipped_process(runner: CliRunner, name: str) -> None:
    result = runner.invoke(cli, ["process", "show", name])
    assert result.exit_code == 0, result.output
    assert load_file(PROCESSES / f"{name}.yaml").title in result.stdout


def test_show_by_file_with_unicode(runner: CliRunner, unicode_file: Path) -> None:
    result = runner.invoke(cli, ["process", "show", str(unicode_file)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Proces Łukasz Żółć: Жанна & Ștefan" in out
    assert "1. Zadzwoń do klienta: Łukasz Żółć [first_call]" in out
    assert "2. Предложение для Жанна [offer]" in out
    assert '3. Oferta "mare" pentru Ștefan [big_offer]' in out
    assert "when financing = leasing" in out
    assert "when financing in (cash, loan) and budget >= 50000" in out
    assert "Аналитик Жанна, mandatory, own deadline 3 business days, only when budget is set" in out
    assert "Brak budżetu [no_budget]" in out


def test_show_unknown_name(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["process", "show", "x"])
    assert result.exit_code == 1
    expected = f"Error: no process file or shipped process named 'x'; shipped: {', '.join(shipped_names())}"
    assert expected in result.stderr
    assert "photovoltaics" in result.stderr
    no_traceback(result.output)


def test_show_invalid_file(runner: CliRunner, broken_file: Path) -> None:
    result = runner.invoke(cli, ["process", "show", str(broken_file)])
    assert result.exit_code == 1
    assert f"{broken_file}:15:" in result.stderr
    assert "not a valid process file" in result.stderr
    assert result.stdout == ""


def test_show_mermaid(runner: CliRunner, unicode_file: Path) -> None:
    result = runner.invoke(cli, ["process", "show", "--mermaid", str(unicode_file)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("stateDiagram-v2\n")
    for stage_id in ("first_call", "offer", "big_offer"):
        assert re.search(rf"^\s*state \".+\" as {stage_id}$", out, re.M), stage_id
        assert re.search(rf"^\s*{stage_id} --> Lost : close$", out, re.M), stage_id
    assert "[*] --> first_call" in out
    assert "first_call --> offer : financing = leasing" in out
    assert "first_call --> big_offer : financing in (cash, loan) and budget #gt;= 50000" in out
    assert re.search(r"^\s*big_offer --> offer$", out, re.M)
    assert re.search(r"^\s*offer --> Won\b", out, re.M)
    assert re.search(r"^\s*Won --> \[\*\]$", out, re.M)
    # characters Mermaid chokes on are escaped inside labels
    assert 'state "Zadzwoń do klienta#58; Łukasz Żółć" as first_call' in out
    assert 'state "Oferta #quot;mare#quot; pentru Ștefan" as big_offer' in out


def test_show_mermaid_shipped(runner: CliRunner) -> None:
    spec = load_file(PROCESSES / "photovoltaics.yaml")
    result = runner.invoke(cli, ["process", "show", "photovoltaics", "--mermaid"])
    assert result.exit_code == 0, result.output
    assert "stateDiagram-v2" in result.stdout
    for stage in spec.stages:
        assert stage.id in result.stdout
    assert f"{spec.won_stage} --> Won" in result.stdout


def test_show_json_round_trips(runner: CliRunner, unicode_file: Path) -> None:
    result = runner.invoke(cli, ["process", "show", "--json", str(unicode_file)])
    assert result.exit_code == 0, result.output
    assert "Łukasz Żółć" in result.stdout  # ensure_ascii=False
    data = json.loads(result.stdout)
    spec = load_file(unicode_file)
    assert data["content_hash"] == spec.content_hash
    rebuilt = ProcessSpec.from_dict(data)
    assert rebuilt == spec
    assert rebuilt.content_hash == spec.content_hash


@pytest.mark.parametrize("name", shipped_names())
def test_show_json_shipped_round_trips(runner: CliRunner, name: str) -> None:
    result = runner.invoke(cli, ["process", "show", name, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert ProcessSpec.from_dict(data) == load_file(PROCESSES / f"{name}.yaml")


def test_show_mermaid_and_json_exclusive(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["process", "show", "photovoltaics", "--json", "--mermaid"])
    assert result.exit_code == 2


def test_process_commands_do_not_import_rich_or_jsonschema_at_load() -> None:
    code = (
        "import sys, cli.main, cli.process_cmds; "
        "print(sorted(m for m in ('rich', 'jsonschema') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.stdout.strip() == "[]"


# -- engine.condition_text and cli.present.mermaid ----------------------------------------------


@pytest.mark.parametrize(
    ("cond", "text"),
    [
        (Condition(field="financing", op="eq", value="leasing"), "financing = leasing"),
        (Condition(field="financing", op="ne", value="cash"), "financing != cash"),
        (Condition(field="wants_insurance", op="eq", value=True), "wants_insurance = true"),
        (Condition(field="budget", op="lt", value=1500.5), "budget < 1500.5"),
        (Condition(field="n", op="not_in", value=(1, 2)), "n not in (1, 2)"),
        (Condition(field="who", op="eq", value="Jan Kowalski"), 'who = "Jan Kowalski"'),
        (Condition(field="who", op="eq", value="true"), 'who = "true"'),
        (Condition(field="install_by", op="gte", value="2025-01-01"), 'install_by >= "2025-01-01"'),
        (Condition(field="need", op="is_unset"), "need is not set"),
        (Condition(not_=Condition(field="need", op="is_set")), "need is not set"),
        (Condition(not_=Condition(field="a", op="eq", value=1)), "not (a = 1)"),
        (
            Condition(
                any=(
                    Condition(field="a", op="eq", value=1),
                    Condition(
                        all=(Condition(field="b", op="gt", value=2), Condition(field="c", op="is_set"))
                    ),
                )
            ),
            "a = 1 or (b > 2 and c is set)",
        ),
    ],
)
def test_condition_text(cond: Condition, text: str) -> None:
    assert condition_text(cond) == text


def test_mermaid_escapes_and_reserved_ids() -> None:
    spec = load_file(PROCESSES / "photovoltaics.yaml")
    data = spec.to_dict()
    data["stages"][0]["id"] = "end"
    data["stages"][0]["name"] = 'Say "hi": now; #1 <b>'
    text = mermaid(ProcessSpec.from_dict(data))
    assert 'state "Say #quot;hi#quot;#58; now#59; #35;1 #lt;b#gt;" as stage_end' in text
    assert "[*] --> stage_end" in text
