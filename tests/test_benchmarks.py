"""The benchmark suite works: a small run of every section finishes and prints sane figures.

Timings are not judged here (a shared CI machine is noisy); docs/performance.md has the full run's figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_suite_runs_at_small_scale(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--scale", "small", "--json", str(out)], check=False,
                          cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    from benchmarks.__main__ import SECTIONS

    assert set(results["sections"]) == set(SECTIONS)
    advance = results["sections"]["advance"]["steps_per_s"]
    assert set(advance) == {"leadflow", "leadflow batch", "SpiffWorkflow", "transitions per lead", "sqlite3 floor"}
    assert all(rate > 0 for rate in advance.values())
    cli = results["sections"]["cli"]
    commands = {name: row for name, row in cli.items() if name != "seconds"}
    assert set(commands) == {"python -c pass (floor)", "python -c 'import sqlalchemy'", "lead show ID --json",
                             "task done ID TASK", "board --json"}
    assert all(row["median_s"] > 0 and row["peak_rss_mib"] > 0 for row in commands.values())
    assert "leadflow advance:" in proc.stdout
