"""``leadflow report funnel|cycle|salespeople|forecast`` and ``--chart``: tables, JSON, CSV, PNG charts and
refused input (exit codes, one-line errors, the database unchanged), over the history of
tests/test_reports_analytics.py."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cli.present import charts
from tests.conftest import Team, leadflow, snapshot
from tests.test_reports_analytics import NOW, history  # noqa: F401 - the shared hand-built history

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """The CLI's behaviour does not depend on the database: the engine tests run both, these SQLite only."""
    return sqlite_url


def run(team: Team, args: str | list[str], user: str = "root", code: int = 0) -> Any:
    """``leadflow report ARGS`` at the end of the history; exits ``code``."""
    result = leadflow(team.url, user, ["report", *(args.split() if isinstance(args, str) else args)], f"{NOW}:00")
    assert result.exit_code == code, (result.stdout, result.stderr)
    return result


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_funnel_as_a_table_json_and_csv(team: Team, history: dict[str, int]) -> None:  # noqa: F811
    period = "--process photovoltaics --from 2026-03-01 --to 2026-03-31"
    text = run(team, f"funnel {period}").stdout
    assert ("Funnel photovoltaics (New Photovoltaic installations), leads created 2026-03-01 to 2026-03-31: "
            "7 leads, 2 open, 3 won, 2 lost; lead-to-win 42.9%") in text
    assert "Make the first contact" in text
    data = json.loads(run(team, f"funnel {period} --json").stdout)
    assert [(s["stage"], s["reached"]) for s in data["funnels"][0]["stages"]] == [
        ("register_lead", 7), ("first_contact", 5), ("first_meeting", 5), ("send_offer", 4), ("close_contract", 3)]
    assert rows(run(team, f"funnel {period} --csv").stdout) == [
        ["process", "stage", "reached", "share", "in_stage", "moved_on", "conversion", "median_days"],
        ["photovoltaics", "register_lead", "7", "1.0", "1", "5", "0.7143", "1.0"],
        ["photovoltaics", "first_contact", "5", "0.7143", "0", "5", "1.0", "3.0"],
        ["photovoltaics", "first_meeting", "5", "0.7143", "1", "4", "0.8", "2.5"],
        ["photovoltaics", "send_offer", "4", "0.5714", "0", "3", "0.75", "2.5"],
        ["photovoltaics", "close_contract", "3", "0.4286", "0", "3", "1.0", "4.0"],
        ["photovoltaics", "won", "3", "0.4286", "", "", "", ""]]


def test_cycle_salespeople_and_forecast_as_tables_json_and_csv(team: Team,
                                                               history: dict[str, int]) -> None:  # noqa: F811
    cycle = run(team, "cycle --process photovoltaics").stdout
    assert "Sales cycle of the leads won all time" in cycle
    assert "60 (declared in the process)" in cycle
    assert rows(run(team, "cycle --process photovoltaics --csv").stdout)[:2] == [
        ["dimension", "process", "key", "won", "mean_days", "median_days", "p25_days", "p75_days", "min_days",
         "max_days"],
        ["process", "photovoltaics", "photovoltaics", "4", "23.25", "22.0", "15.25", "30.0", "7.0", "42.0"]]
    people = rows(run(team, "salespeople --process photovoltaics --csv").stdout)
    assert people[0][0] == "owner"
    assert people[1] == ["piotr", "0", "0.00", "1", "10000.00", "1", "0.5", "26.0", "0", "2", "2"]
    table = run(team, "salespeople", user="marta").stdout
    assert "then won by a colleague" in table
    assert "ioana" not in table  # team south is not marta's
    assert json.loads(run(team, "salespeople --json", user="anna").stdout)["salespeople"][0]["owner"] == "anna"
    forecast = run(team, "forecast --process photovoltaics --months 2").stdout
    assert "Estimates per stage" in forecast
    assert rows(run(team, "forecast --process photovoltaics --months 2 --csv").stdout) == [
        ["process", "month", "leads", "value", "expected_wins", "expected_value"],
        ["photovoltaics", "2026-04", "1", "80000.00", "0.25", "20000.00"],
        ["photovoltaics", "2026-05", "1", "70000.00", "0.05", "3500.00"],
        ["photovoltaics", "later", "0", "0.00", "0.0", "0.00"]]


@pytest.mark.parametrize(("args", "user", "code", "message"), [
    ("funnel --process photovoltaic", "root", 1,
     "Error: process 'photovoltaic' is not loaded; did you mean 'photovoltaics'?"),
    ("cycle --owner zofia", "root", 1, "Error: user 'zofia' does not exist"),
    ("salespeople --owner piotr", "anna", 1, "Error: user 'anna' (salesperson) sees only their own leads"),
    ("funnel --team south", "marta", 1, "may not see team south"),
    ("funnel --from 2026-02-30", "root", 1, "Error: --from '2026-02-30' is not a date written YYYY-MM-DD"),
    ("cycle --from 2026-03-10 --to 2026-03-01", "root", 1, "Error: --to 2026-03-01 is before --from 2026-03-10"),
    ("salespeople --from 2027-01-01", "root", 1, "after now"),
    ("forecast --months 0", "root", 2, "0 is not in the range 1<=x<=60"),
    ("forecast --months many", "root", 2, "'many' is not a valid integer"),
    ("funnel --period year", "root", 2, "'year' is not one of 'day', 'week', 'month', 'all'"),
    ("funnel --json --csv", "root", 2, "choose one of --json and --csv"),
    ("refusals --chart x.png", "root", 2, "--chart draws the trend: add --trend"),
    ("funnel --chart chart.svg", "root", 1, "must name a .png file"),
    ("funnel --chart /nonexistent/dir/funnel.png", "root", 1,
     "Error: can't write the chart to '/nonexistent/dir/funnel.png': No such file or directory"),
    ("forecast --owner [bold]x[/bold]", "root", 1, "Error: user '[bold]x[/bold]' does not exist"),
    ("funnel", "olga", 1, "Error: user 'olga' (analyst) has no board"),
])
def test_refused_input_changes_nothing(team: Team, history: dict[str, int], args: str, user: str,  # noqa: F811
                                       code: int, message: str) -> None:
    before = snapshot(team.url)
    result = run(team, args, user=user, code=code)
    assert message in result.stderr
    assert "Traceback" not in result.output
    if code == 1:
        assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(team.url) == before


def test_an_unwritable_chart_path_leaves_nothing_behind(team: Team, history: dict[str, int],  # noqa: F811
                                                        tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = tmp_path / "a-directory.png"
        target.mkdir()  # root may write anywhere, but not a file over a directory
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "funnel.png"
    result = run(team, ["cycle", "--chart", str(target)], code=1)
    assert result.stderr.startswith(f"Error: can't write the chart to '{target}'")
    assert result.stdout == ""


def colours(path: Path) -> int:
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == charts.SIZE
        return len(image.convert("RGB").getcolors(maxcolors=1 << 20) or [])


def test_every_chart_is_a_png_of_the_expected_size_with_content(team: Team, history: dict[str, int],  # noqa: F811
                                                                tmp_path: Path) -> None:
    for name, args in [("funnel", "funnel --process photovoltaics"), ("cycle", "cycle"),
                       ("forecast", "forecast --months 4"),
                       ("trend", "refusals --trend --from 2026-03-01 --to 2026-03-31")]:
        path = tmp_path / f"{name}.png"
        run(team, [*args.split(), "--chart", str(path)])
        assert colours(path) > 50, name  # bars, text and anti-aliased edges, not a blank canvas
    # an empty report still draws a chart that says so
    empty = tmp_path / "empty.png"
    run(team, ["funnel", "--process", "mortgage", "--chart", str(empty)])
    assert 2 < colours(empty) < colours(tmp_path / "funnel.png")


def test_a_chart_says_where_it_went_after_the_report_and_out_of_json(team: Team, history: dict[str, int],  # noqa: F811
                                                                      tmp_path: Path) -> None:
    path = tmp_path / "funnel.png"
    shown = run(team, ["funnel", "--chart", str(path)])
    assert shown.stdout.endswith(f"\nChart written to {path}\n")  # after the table, as board --html says
    assert shown.stderr == ""
    for output in ("--json", "--csv"):  # stdout stays the data alone
        data = run(team, ["funnel", output, "--force", "--chart", str(path)])
        assert "Chart written" not in data.stdout
        assert data.stderr == f"Chart written to {path}\n"
    assert json.loads(run(team, ["funnel", "--json", "--chart", str(path), "--force"]).stdout)
    assert path.exists()


def test_without_matplotlib_a_chart_is_a_clear_error_and_the_report_still_works(team: Team, tmp_path: Path) -> None:
    blocker = tmp_path / "no-matplotlib" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker.parent), str(ROOT)]), "LEADFLOW_DB": team.url,
           "LEADFLOW_USER": "root", "LEADFLOW_NOW": f"{NOW}:00"}
    command = [sys.executable, "-m", "cli.main", "report", "funnel"]
    proc = subprocess.run([*command, "--chart", str(tmp_path / "f.png")], env=env, capture_output=True, text=True,
                          check=False)
    assert (proc.returncode, proc.stderr) == (
        1, "Error: charts need matplotlib, which is not installed: pip install 'leadflow[charts]'\n")
    assert not (tmp_path / "f.png").exists()
    assert subprocess.run(command, env=env, capture_output=True, text=True, check=False).returncode == 0


def test_the_reports_do_not_load_matplotlib_unless_a_chart_is_drawn() -> None:
    out = subprocess.run([sys.executable, "-c", "import engine.reports, cli.present.charts, cli.report_cmds, sys; "
                          "print('matplotlib' in sys.modules)"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
