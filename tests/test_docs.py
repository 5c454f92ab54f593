"""The documentation's runnable examples run, so the docs cannot drift from the code."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

DOCS = Path(__file__).resolve().parent.parent / "docs"
ROOT = DOCS.parent


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def test_api_example_runs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks((DOCS / "api.md").read_text(encoding="utf-8"))
    example = next(b for b in blocks if "Engine.open" in b and "admin.init()" in b)
    monkeypatch.delenv("LEADFLOW_NOW", raising=False)  # the example sets it itself
    exec(compile(example, "docs/api.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "can't leave stage 'register_lead' of lead 1: mandatory tasks open: record_contact" in printed


def test_the_import_of_the_shipped_example_prints_what_intake_md_shows(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/intake.md's run of docs/examples/prospects.csv (the README tour's file) is the real one, line for
    line: on a fresh database with the shipped processes, as root, from the checkout."""
    from cli.main import cli

    text = (DOCS / "intake.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```\n(.*?)```", text, flags=re.S)
                 if "$ leadflow import docs/examples/prospects.csv" in b)
    runs: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            runs.append((line[2:], []))
        else:
            runs[-1][1].append(line)
    assert [command for command, _ in runs] == [
        "leadflow import docs/examples/prospects.csv --process photovoltaics --dry-run",
        "leadflow import docs/examples/prospects.csv --process photovoltaics"]
    monkeypatch.chdir(ROOT)
    env = {"LEADFLOW_DB": f"sqlite:///{tmp_path / 'docs.db'}", "LEADFLOW_USER": "root", "LEADFLOW_NOW": None,
           "LEADFLOW_LANG": "en", "NO_COLOR": "1", "COLUMNS": "200"}
    runner = CliRunner()
    for setup in (["init"], ["process", "load", "--shipped"]):
        assert runner.invoke(cli, setup, env=env, catch_exceptions=False).exit_code == 0
    for command, expected in runs:
        result = runner.invoke(cli, shlex.split(command)[1:], env=env, catch_exceptions=False)
        assert (result.exit_code, result.stderr) == (0, ""), result.output
        assert result.stdout.splitlines() == expected, command
