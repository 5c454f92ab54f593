"""The engine is a library: importing it pulls in no CLI, and cheap commands stay cheap."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_engine_does_not_import_the_cli() -> None:
    loaded = modules_after("import engine.api, engine.loader, engine.state, engine.machine")
    assert not {"click", "cli", "rich"} & loaded


def test_lead_show_path_does_not_load_heavy_modules() -> None:
    loaded = modules_after("import cli.main")
    assert not {"jsonschema", "rich", "matplotlib", "fastapi", "alembic"} & loaded
