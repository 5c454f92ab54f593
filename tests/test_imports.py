"""The engine is a library: importing it pulls in no CLI, and cheap commands stay cheap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def modules_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        cwd=ROOT, capture_output=True, text=True, check=True, env={**os.environ, **(env or {})},
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_engine_does_not_import_the_cli() -> None:
    loaded = modules_after("import engine.api, engine.loader, engine.state, engine.machine")
    assert not {"click", "cli", "rich"} & loaded


def test_lead_show_path_does_not_load_heavy_modules() -> None:
    loaded = modules_after("import cli.main")
    assert not {"jsonschema", "rich", "matplotlib", "fastapi", "alembic"} & loaded


#: What the salesperson's everyday commands must not pay for at start-up (issue 8: under 300 ms wall).
HEAVY = {"yaml", "jsonschema", "rich", "matplotlib", "fastapi", "uvicorn", "alembic", "holidays", "jinja2",
         "transitions"}


def test_lead_show_and_task_done_run_without_heavy_modules(tmp_path: Path) -> None:
    from engine.api import Engine

    url = f"sqlite:///{tmp_path / 'leadflow.db'}"
    admin = Engine.open(url, user="root")
    admin.init()
    admin.load_process(ROOT / "processes" / "photovoltaics.yaml")
    admin.add_user("anna", "salesperson", "north")
    lead = admin.as_user("anna").add_lead(process="photovoltaics", name="Zofia Kamińska")
    admin.close()
    for argv in (["lead", "show", str(lead["id"]), "--json"], ["task", "done", str(lead["id"]), "record_contact"]):
        loaded = modules_after(
            f"from cli.main import cli\ncli.main({argv!r}, prog_name='leadflow', standalone_mode=False)",
            env={"LEADFLOW_DB": url, "LEADFLOW_USER": "anna", "PYTHONPATH": str(ROOT)})
        assert "engine.api" in loaded, argv  # the command ran
        assert HEAVY & loaded == set(), argv
        # only the modules of the command that runs: not the reports, the import, the HTTP service, ...
        assert {m for m in loaded if m.startswith("cli.") and m.endswith("_cmds")} == {
            "cli.lead_cmds", *(["cli.recovery_cmds"] if argv[0] == "lead" else [])}, argv
    check = Engine.open(url, user="anna")
    assert [t["state"] for t in check.get_lead(lead["id"])["tasks"] if t["id"] == "record_contact"] == ["done"]
    check.close()


def test_every_command_is_listed_and_loads_under_its_name() -> None:
    """The command table of cli/main.py names each command's module: a typo would surface only when run."""
    import click

    from cli.main import COMMANDS, SUBCOMMANDS, cli

    context = click.Context(cli)
    assert cli.list_commands(context) == sorted(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(context, name)
        assert command is not None and command.name == name
    for group, subcommands in SUBCOMMANDS.items():
        loaded = cli.get_command(context, group)
        assert isinstance(loaded, click.Group)
        assert {sub for _, sub in subcommands} <= {c.callback.__name__ for c in loaded.commands.values()
                                                   if c.callback is not None}
