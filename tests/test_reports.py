"""The refusal report: exact figures from hand-built histories at fixed dates, on both databases."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from click.testing import CliRunner

from cli.main import cli
from engine import clock
from engine.errors import InvalidInputError, PermissionDenied
from tests.conftest import Team, Templates, refill


def at(text: str) -> clock.frozen:  # type: ignore[valid-type]
    return clock.frozen(dt.datetime.fromisoformat(text))


def refuse(team: Team, when: str, owner: str, reason: str, value: str, product: str, process: str = "photovoltaics",
           name: str = "Klient") -> dict:
    with at(when):
        lead = team.as_(owner).add_lead(process=process, name=name, value=value, product=product)
        return team.as_(owner).close_lead(lead["id"], reason)


def write_refusals(team: Team) -> None:
    """March 2026 in the north team, plus one refusal in February and one in the south team."""
    refuse(team, "2026-02-27T10:00", "anna", "price", "9000", "PV 5 kWp")                  # February
    refuse(team, "2026-03-02T10:00", "anna", "price", "20000", "PV 10 kWp")               # Mon, week 10
    refuse(team, "2026-03-03T10:00", "anna", "competitor", "30000", "PV 10 kWp")          # Tue, week 10
    refuse(team, "2026-03-09T10:00", "piotr", "price", "15000", "PV 5 kWp")                # Mon, week 11
    refuse(team, "2026-03-10T10:00", "piotr", "duplicate", "50000", "PV 5 kWp")            # a removal: not a refusal
    refuse(team, "2026-03-11T10:00", "ioana", "price", "70000", "PV 10 kWp")               # team south
    twice = refuse(team, "2026-03-04T10:00", "anna", "bad_timing", "40000", "PV 10 kWp")   # week 10 ...
    with at("2026-03-05T10:00"):
        team.as_("marta").reopen(twice["id"])
    with at("2026-03-12T10:00"):
        team.as_("anna").close_lead(twice["id"], "competitor")                             # ... refused again, week 11


@pytest.fixture
def history(team: Team, templates: Templates) -> Team:
    """``team`` with ``write_refusals`` in it (written once per session and database, then copied)."""
    refill(team, templates, "refusal_history", write_refusals)
    return team


def test_refusals_of_a_month_by_reason_product_and_salesperson(history: Team) -> None:
    with at("2026-03-20T12:00"):
        report = history.as_("marta").report_refusals(period="month")
    assert report["period"] == {"name": "month", "from": "2026-03-01T00:00:00", "to": "2026-04-01T00:00:00"}
    # north only (marta's team); the removal and February do not count; the twice-refused lead counts twice
    assert (report["total"], report["value"]) == (5, "145000.00")
    assert [(r["reason"], r["count"], r["value"], r["bant"]) for r in report["by_reason"]] == [
        ("competitor", 2, "70000.00", None), ("price", 2, "35000.00", "B"), ("bad_timing", 1, "40000.00", "T")]
    assert [(r["product"], r["count"]) for r in report["by_product"]] == [("PV 10 kWp", 4), ("PV 5 kWp", 1)]
    assert [(r["owner"], r["count"], r["value"]) for r in report["by_salesperson"]] == [
        ("anna", 4, "130000.00"), ("piotr", 1, "15000.00")]


def test_the_matrix_and_its_totals(history: Team) -> None:
    with at("2026-03-20T12:00"):
        by_reason = history.admin.report_refusals(period="month", matrix_by="reason")["matrix"]
        by_product = history.admin.report_refusals(period="month", matrix_by="product")["matrix"]
    assert by_reason["columns"] == ["bad_timing", "competitor", "price"]
    assert [(r["owner"], r["counts"], r["total"]) for r in by_reason["rows"]] == [
        ("anna", [1, 2, 1], 4), ("ioana", [0, 0, 1], 1), ("piotr", [0, 0, 1], 1)]
    assert (by_reason["totals"], by_reason["total"]) == ([1, 2, 3], 6)
    assert by_product["columns"] == ["PV 10 kWp", "PV 5 kWp"]
    assert [r["counts"] for r in by_product["rows"]] == [[4, 0], [1, 0], [0, 1]]


def test_the_trend_day_by_day_and_week_by_week(history: Team) -> None:
    with at("2026-03-20T12:00"):
        trend = history.as_("marta").report_refusals(date_from="2026-03-02", date_to="2026-03-15",
                                                     trend=True)["trend"]
    days = {d["day"]: (d["count"], d["cumulative"]) for d in trend["days"]}
    assert len(days) == 14
    assert days["2026-03-02"] == (1, 1)
    assert days["2026-03-04"] == (1, 3)
    assert days["2026-03-08"] == (0, 3)
    assert days["2026-03-12"] == (1, 5)
    assert days["2026-03-15"] == (0, 5)
    assert trend["weeks"] == [{"week": "2026-W10", "count": 3, "cumulative": 3},
                              {"week": "2026-W11", "count": 2, "cumulative": 5}]


def test_periods_filters_and_empty_periods(history: Team) -> None:
    with at("2026-03-03T18:00"):
        today = history.as_("marta").report_refusals(period="day")
        week = history.as_("marta").report_refusals(period="week")
    assert (today["total"], week["total"]) == (1, 2)
    with at("2026-03-20T12:00"):
        assert history.as_("marta").report_refusals(period="all")["total"] == 6
        assert history.as_("marta").report_refusals(period="month", owner="piotr")["total"] == 1
        assert history.as_("anna").report_refusals(period="month")["total"] == 4  # a salesperson: their own
        empty = history.as_("marta").report_refusals(date_from="2026-01-01", date_to="2026-01-31", trend=True)
        assert (empty["total"], empty["value"], empty["by_reason"]) == (0, "0.00", [])
        assert len(empty["trend"]["days"]) == 31
        assert history.as_("marta").report_refusals(process="leasing")["total"] == 0
        with pytest.raises(InvalidInputError, match="is not a date written YYYY-MM-DD"):
            history.as_("marta").report_refusals(date_from="03/01/2026")
        with pytest.raises(InvalidInputError, match="is before --from"):
            history.as_("marta").report_refusals(date_from="2026-03-10", date_to="2026-03-01")
        with pytest.raises(PermissionDenied):
            history.as_("marta").report_refusals(team="south")


def test_the_cli_prints_tables_json_and_csv(history: Team, runner: CliRunner) -> None:
    env = {"LEADFLOW_DB": history.url, "LEADFLOW_USER": "root", "LEADFLOW_NOW": "2026-03-20T12:00:00"}
    text = runner.invoke(cli, ["report", "refusals"], env=env)
    assert text.exit_code == 0, text.output
    assert "6 refusals, value 215000.00" in text.stdout
    matrix = runner.invoke(cli, ["report", "refusals", "--matrix", "--csv"], env=env)
    assert list(csv.reader(io.StringIO(matrix.stdout))) == [
        ["owner", "bad_timing", "competitor", "price", "total"], ["anna", "1", "2", "1", "4"],
        ["ioana", "0", "0", "1", "1"], ["piotr", "0", "0", "1", "1"], ["total", "1", "2", "3", "6"]]
    both = runner.invoke(cli, ["report", "refusals", "--json", "--csv"], env=env)
    assert both.exit_code == 2
    bad = runner.invoke(cli, ["report", "refusals", "--from", "yesterday"], env=env)
    assert (bad.exit_code, bad.stderr.strip()) == (1, "Error: --from 'yesterday' is not a date written YYYY-MM-DD")
