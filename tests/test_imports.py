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
    check = Engine.open(url, user="anna")
    assert [t["state"] for t in check.get_lead(lead["id"])["tasks"] if t["id"] == "record_contact"] == ["done"]
    check.close()
