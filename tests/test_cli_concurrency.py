"""Eight shell loops doing ``lead show`` then ``lead set --if-version`` on one lead, as real ``leadflow`` processes,
on a local database and through the team server (``cli_db``): no increment is lost; each set either succeeds or is
told it was stale (exit 1, "... as you last saw it"), and the lead's value counts exactly the successes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from tests.conftest import TEST_NOW, CliDatabase, cli_floor, js, ok
from tests.remote import server_for

ROOT = Path(__file__).resolve().parent.parent
LOOPS, ROUNDS = 8, 2
FLOOR = [("anna", "salesperson", "north")]


def process_env(url: str, user: str) -> dict[str, str]:
    """A ``leadflow`` process's environment as ``user``: on the database, or through the server that serves it."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env.update({"PYTHONPATH": str(ROOT), "LEADFLOW_NOW": TEST_NOW, "LEADFLOW_TZ": "Europe/Warsaw"})
    server = server_for(url)
    if server is None:
        env.update({"LEADFLOW_DB": url, "LEADFLOW_USER": user})
    else:
        assert server.login(user)
        env["XDG_CONFIG_HOME"] = str(server.config(user))
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, capture_output=True, text=True,
                          check=False,
                          timeout=300)


def test_eight_show_then_set_loops_lose_no_increment(cli_db: CliDatabase) -> None:
    url = cli_db.template("cli_concurrency", cli_floor(FLOOR))
    lead = js(url, "anna", "lead add --process photovoltaics --name 'Jan Kowalski' --set roof_area_m2=1")
    ok(url, "anna", f"lead show {lead['id']}")  # logged in before the processes start
    env = process_env(url, "anna")
    outcomes: list[str] = []
    errors: list[str] = []

    def loop() -> None:
        for _ in range(ROUNDS):
            shown = run(env, "lead", "show", str(lead["id"]), "--json")
            if shown.returncode != 0:
                errors.append(shown.stderr)
                return
            now = json.loads(shown.stdout)
            area, version = now["fields"]["roof_area_m2"], now["version"]
            done = run(env, "lead", "set", str(lead["id"]), f"roof_area_m2={area + 1}", "--if-version", str(version))
            if done.returncode == 0:
                outcomes.append("ok")
            elif done.returncode == 1 and ("as you last saw it" in done.stderr  # a stale --if-version, or a
                                            or "changed since you read it" in done.stderr  # a writer in between
                                            ) and "Traceback" not in done.stderr:
                outcomes.append("stale")
            else:
                errors.append(f"exit {done.returncode}: {done.stderr}")

    threads = [threading.Thread(target=loop) for _ in range(LOOPS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert errors == []
    assert len(outcomes) == LOOPS * ROUNDS and "ok" in outcomes
    final = js(url, "anna", f"lead show {lead['id']}")
    assert final["fields"]["roof_area_m2"] == 1 + outcomes.count("ok")  # every success counted, none lost
    assert final["version"] == lead["version"] + outcomes.count("ok")
