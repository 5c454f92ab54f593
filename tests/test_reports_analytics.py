"""The funnel, the sales cycle, the salespeople and the forecast: exact figures from a hand-built history at
fixed dates, on SQLite and PostgreSQL.

The history (photovoltaics; stages R register_lead, C first_contact, M first_meeting, O send_offer,
K close_contract; every move at 09:00 of the day given, in 2026):

- L0 piotr, 10,000, web_form, created Feb 20: R -> C Feb 23 -> M Feb 25 -> O Mar 2 -> K Mar 9, won Mar 18 (26 days)
- L1 anna, 20,000, web_form, created Mar 2: C Mar 3 (R 1 day), M Mar 5 (C 2), O Mar 9 (M 4), K Mar 13 (O 4),
  won Mar 20 (K 7): 18 days
- L2 anna, 30,000, referral, created Mar 2: C Mar 4 (R 2), lost for price Mar 6 (C 2), reopened Mar 10, M Mar 11
  (C 1 more: 3 in all), O Mar 17 (M 6), lost to a competitor Mar 20 (O 3)
- L3 piotr, 40,000, referral, created Mar 3: C Mar 4 (R 1), recalled Mar 5, rotated to anna Mar 6 12:00 (a
  30-day rest), M Apr 7 (C 34: a rotation does not end the stay), O Apr 8 (M 1), K Apr 10 (O 2), won Apr 14
  (K 4): 42 days
- L4 piotr, 50,000, web_form, created Mar 10, lost (no budget) Mar 12 in R (R 2)
- L5 anna, 60,000, revisit, L4's client, created Mar 20: C Mar 21 (R 1), M Mar 23 (C 2), O Mar 24 (M 1),
  K Mar 25 (O 1), won Mar 27 (K 2): 7 days
- L6 ioana (team south), 70,000, web_form, created Mar 16, still in R
- L7 anna, 80,000, web_form, created Mar 5 on version 1: C Mar 6 (R 1), migrated to version 2 on Mar 9,
  M Mar 12 (C 6), still in M
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine import clock
from engine.errors import InvalidInputError, NotFoundError, PermissionDenied
from engine.reports import forecast_report
from engine.store import lead_stages
from tests.conftest import PROCESSES_DIR, Team, Templates, refill

PV = "photovoltaics"
NOW = "2026-04-30T09:00"
FIELDS = {"roof_type": "pitched", "roof_area_m2": "40", "financing": "cash", "offer_value": "30000"}


def at(text: str) -> clock.frozen:  # type: ignore[valid-type]
    return clock.frozen(dt.datetime.fromisoformat(text if "T" in text else f"2026-{text}T09:00"))


def add(team: Team, when: str, owner: str, value: str, source: str, **kwargs: Any) -> int:
    with at(when):
        return int(team.admin.add_lead(process=PV, name=f"Client of {owner}", owner=owner, value=value,
                                       source=source, fields=FIELDS, **kwargs)["id"])


def finish(team: Team, lead_id: int) -> None:
    """Every open mandatory task of the lead's current stage, done by the admin."""
    lead = team.admin.get_lead(lead_id)
    for task in lead["tasks"]:
        if task["stage"] == lead["stage"] and task["state"] == "open" and task["mandatory"]:
            team.admin.complete_task(lead_id, task["id"])


def advance(team: Team, lead_id: int, *days: str) -> None:
    for when in days:
        with at(when):
            finish(team, lead_id)
            team.admin.advance(lead_id)


def win(team: Team, lead_id: int, when: str) -> None:
    with at(when):
        finish(team, lead_id)
        team.admin.win(lead_id)


def stage_rows(team: Team) -> list[tuple[Any, ...]]:
    with team.admin.transaction() as conn:
        return [tuple(r) for r in conn.execute(sa.select(lead_stages).order_by(lead_stages.c.lead_id,
                                                                               lead_stages.c.stage))]


def write_history(team: Team) -> dict[str, int]:
    """Eight photovoltaics leads from February to April: won, lost, reopened, rotated, migrated, open."""
    ids: dict[str, int] = {}
    ids["L0"] = add(team, "02-20", "piotr", "10000", "web_form")
    advance(team, ids["L0"], "02-23", "02-25", "03-02", "03-09")
    win(team, ids["L0"], "03-18")

    ids["L1"] = add(team, "03-02", "anna", "20000", "web_form")
    advance(team, ids["L1"], "03-03", "03-05", "03-09", "03-13")
    win(team, ids["L1"], "03-20")

    ids["L2"] = add(team, "03-02", "anna", "30000", "referral")
    advance(team, ids["L2"], "03-04")
    with at("03-06"):
        team.admin.close_lead(ids["L2"], "price")
    with at("03-10"):
        team.as_("marta").reopen(ids["L2"])
    advance(team, ids["L2"], "03-11", "03-17")
    with at("03-20"):
        team.admin.close_lead(ids["L2"], "competitor")

    ids["L3"] = add(team, "03-03", "piotr", "40000", "referral")
    advance(team, ids["L3"], "03-04")
    with at("03-05"):
        team.as_("marta").recall(ids["L3"])
    with at("2026-03-06T12:00"):
        moved = team.as_("marta").rotate()["moves"]
    assert [(m["lead_id"], m["from"], m["to"]) for m in moved] == [(ids["L3"], "piotr", "anna")]
    advance(team, ids["L3"], "04-07", "04-08", "04-10")
    win(team, ids["L3"], "04-14")

    ids["L4"] = add(team, "03-10", "piotr", "50000", "web_form")
    with at("03-12"):
        team.admin.close_lead(ids["L4"], "no_budget")
    client = team.admin.get_lead(ids["L4"])["client_id"]
    ids["L5"] = add(team, "03-20", "anna", "60000", "revisit", client_id=client)
    advance(team, ids["L5"], "03-21", "03-23", "03-24", "03-25")
    win(team, ids["L5"], "03-27")

    ids["L6"] = add(team, "03-16", "ioana", "70000", "web_form")

    ids["L7"] = add(team, "03-05", "anna", "80000", "web_form")
    advance(team, ids["L7"], "03-06")
    with tempfile.TemporaryDirectory() as folder, at("03-09"):
        changed = Path(folder) / "photovoltaics.yaml"
        changed.write_text((PROCESSES_DIR / "photovoltaics.yaml").read_text(encoding="utf-8").replace(
            "\ntitle: {en: ", "\ntitle: {en: New ", 1), encoding="utf-8")
        assert team.admin.load_process(changed)["version"] == 2
        # the leads still open at this point of the script (each lead's history is written in one go)
        assert team.admin.migrate_process(PV, 2)["leads"] == [ids["L6"], ids["L7"]]
    advance(team, ids["L7"], "03-12")
    return ids


@pytest.fixture
def history(team: Team, templates: Templates) -> dict[str, int]:
    """``team`` with ``write_history`` in it (written once per session and database, then copied)."""
    return dict(refill(team, templates, "analytics_history", write_history))


def stages(funnel: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    return {s["stage"]: (s["reached"], s["in_stage"], s["moved_on"], s["conversion"], s["median_days"])
            for s in funnel["stages"]}


# -- the funnel ----------------------------------------------------------------------------------------

def test_the_funnel_of_a_cohort_counts_reopened_rotated_and_migrated_leads_once(team: Team,
                                                                                 history: dict[str, int]) -> None:
    with at(NOW):
        report = team.admin.report_funnel(date_from="2026-03-01", date_to="2026-03-31", process=PV)
    (funnel,) = report["funnels"]
    assert report["period"] == {"name": "range", "from": "2026-03-01T00:00:00", "to": "2026-04-01T00:00:00"}
    # L1-L7 (L0 was created in February); L1, L3, L5 won, L2 and L4 lost, L6 and L7 open
    assert (funnel["leads"], funnel["won"], funnel["lost"], funnel["open"], funnel["conversion"]) == (
        7, 3, 2, 2, 0.4286)
    assert funnel["title"] == "New Photovoltaic installations"  # the latest version's names and order
    assert stages(funnel) == {
        # stage: reached, in it now, moved on, conversion, median days over the leads that left it
        "register_lead": (7, 1, 5, 0.7143, 1.0),    # L4 lost in it, L6 still there; stays 1,1,1,1,2,2
        "first_contact": (5, 0, 5, 1.0, 3.0),       # L2 once (lost, reopened, moved on: 2+1 days); L3 34 days
        "first_meeting": (5, 1, 4, 0.8, 2.5),       # L7 (migrated) in it now; stays 4, 6, 1, 1
        "send_offer": (4, 0, 3, 0.75, 2.5),         # L2 lost in it; stays 4, 3, 2, 1
        "close_contract": (3, 0, 3, 1.0, 4.0),      # won from it: 7, 4, 2
    }
    assert [s["share"] for s in funnel["stages"]] == [1.0, 0.7143, 0.7143, 0.5714, 0.4286]


def test_the_funnel_follows_the_scope_and_the_period(team: Team, history: dict[str, int]) -> None:
    with at(NOW):
        north = team.as_("marta").report_funnel(date_from="2026-03-01", date_to="2026-03-31")
        (anna,) = team.as_("anna").report_funnel(process=PV)["funnels"]
        (everything,) = team.admin.report_funnel(process=PV)["funnels"]
        (empty,) = team.admin.report_funnel(date_from="2025-01-01", date_to="2025-01-31", process=PV)["funnels"]
        with pytest.raises(PermissionDenied):
            team.as_("anna").report_funnel(owner="piotr")
        with pytest.raises(NotFoundError, match="process 'photovoltaic' is not loaded; did you mean"):
            team.admin.report_funnel(process="photovoltaic")
        with pytest.raises(InvalidInputError, match="is not a date written YYYY-MM-DD"):
            team.admin.report_funnel(date_from="2026-02-30")
    (pv,) = [f for f in north["funnels"] if f["process"] == PV]
    assert (pv["leads"], pv["won"], stages(pv)["register_lead"]) == (6, 3, (6, 0, 5, 0.8333, 1.0))  # no L6
    assert {f["process"] for f in north["funnels"]} == {"leasing", "life_insurance", "mortgage", PV, "saas_trial"}
    # anna's leads now: L1, L2, L3 (rotated to her), L5, L7
    assert (anna["leads"], anna["won"], stages(anna)["first_contact"]) == (5, 3, (5, 0, 5, 1.0, 3.0))
    assert (everything["leads"], everything["won"], stages(everything)["close_contract"]) == (
        8, 4, (4, 0, 4, 1.0, 5.5))  # L0 too: K 9 days
    assert (empty["leads"], empty["conversion"]) == (0, None)
    assert [(s["stage"], s["reached"], s["conversion"], s["median_days"]) for s in empty["stages"]] == [
        (s, 0, None, None) for s in ["register_lead", "first_contact", "first_meeting", "send_offer",
                                     "close_contract"]]


def test_a_process_with_no_wins_yet(team: Team, history: dict[str, int]) -> None:
    with at(NOW):
        (funnel,) = team.admin.report_funnel(process="mortgage")["funnels"]
        cycle = team.admin.report_cycle(process="mortgage")
        (forecast,) = team.admin.report_forecast(process="mortgage")["forecasts"]
    assert (funnel["leads"], funnel["won"], funnel["conversion"]) == (0, 0, None)
    assert all(s["reached"] == 0 for s in funnel["stages"])
    assert cycle["processes"] == [{"process": "mortgage", "won": 0, "mean_days": None, "median_days": None,
                                   "p25_days": None, "p75_days": None, "min_days": None, "max_days": None,
                                   "declared_days": 60,
                                   "stalled_cycle": {"days": 60.0, "basis": "declared in the process"}}]
    assert (cycle["by_salesperson"], cycle["by_source"]) == ([], [])
    assert [(e["probability"], e["probability_method"], e["history"]) for e in forecast["stages"]][:2] == [
        (0.05, "declared", 0), (0.1, "declared", 0)]
    assert all(m["leads"] == 0 for m in forecast["months"])


def test_the_projection_kept_by_the_writes_equals_the_one_rebuilt_from_the_event_log(
        team: Team, history: dict[str, int]) -> None:
    kept = stage_rows(team)
    assert len(kept) == 5 + 5 + 4 + 5 + 1 + 5 + 1 + 3  # L0..L7: every stage reached, once
    assert team.admin.rebuild_stages() == {"rows": len(kept)}
    assert stage_rows(team) == kept
    with pytest.raises(PermissionDenied):
        team.as_("marta").rebuild_stages()


# -- the sales cycle ----------------------------------------------------------------------------------------

def test_the_measured_cycle_per_process_salesperson_and_source(team: Team, history: dict[str, int]) -> None:
    with at(NOW):
        march = team.admin.report_cycle(date_from="2026-03-01", date_to="2026-03-31", process=PV)
        whole = team.admin.report_cycle(process=PV)
        north = team.as_("marta").report_cycle(process=PV, owner="anna")
    # wins in March: L0 26 days, L1 18, L5 7
    assert march["processes"] == [{
        "process": PV, "won": 3, "mean_days": 17.0, "median_days": 18.0, "p25_days": 12.5, "p75_days": 22.0,
        "min_days": 7.0, "max_days": 26.0, "declared_days": 60,
        "stalled_cycle": {"days": 60.0, "basis": "declared in the process"}}]
    # and L3's 42 days (won in April)
    (pv,) = whole["processes"]
    assert (pv["won"], pv["mean_days"], pv["median_days"], pv["p25_days"], pv["p75_days"]) == (
        4, 23.25, 22.0, 15.25, 30.0)
    assert [(r["owner"], r["won"], r["mean_days"], r["median_days"]) for r in whole["by_salesperson"]] == [
        ("anna", 3, 22.33, 18.0), ("piotr", 1, 26.0, 26.0)]
    assert [(r["source"], r["won"], r["mean_days"], r["median_days"]) for r in whole["by_source"]] == [
        ("web_form", 2, 22.0, 22.0), ("referral", 1, 42.0, 42.0), ("revisit", 1, 7.0, 7.0)]
    assert [(r["owner"], r["won"]) for r in north["by_salesperson"]] == [("anna", 3)]


# -- salespeople -------------------------------------------------------------------------------------------

def test_salespeople_and_the_clients_a_colleague_won_after_them(team: Team, history: dict[str, int]) -> None:
    with at(NOW):
        report = team.admin.report_salespeople(process=PV)
        april = team.as_("marta").report_salespeople(period="month")
        own = team.as_("piotr").report_salespeople()
    keys = ["held", "held_value", "won", "won_value", "lost", "conversion", "mean_cycle_days", "red", "gave_up",
            "won_by_colleague"]
    rows = {r["owner"]: [r[k] for k in keys] for r in report["salespeople"]}
    assert [r["owner"] for r in report["salespeople"]] == ["piotr", "anna", "ioana"]
    # piotr gave up L3 (rotated away, then won by anna) and L4 (closed; its client came back and anna won it)
    assert rows["piotr"] == [0, "0.00", 1, "10000.00", 1, 0.5, 26.0, 0, 2, 2]
    # anna holds L7 (red since its first-meeting deadline passed), won L1, L3, L5, lost L2 (closed twice: one lead)
    assert rows["anna"] == [1, "80000.00", 3, "120000.00", 1, 0.75, 22.33, 1, 1, 0]
    assert rows["ioana"] == [1, "70000.00", 0, "0.00", 0, None, None, 1, 0, 0]
    # April in team north: only L3's win; nothing given up
    assert {r["owner"]: (r["won"], r["lost"], r["gave_up"], r["won_by_colleague"]) for r in april["salespeople"]} == {
        "anna": (1, 0, 0, 0), "piotr": (0, 0, 0, 0)}
    assert [r["owner"] for r in own["salespeople"]] == ["piotr"]


# -- the forecast ------------------------------------------------------------------------------------------

def test_the_forecast_from_declared_probabilities_while_history_is_thin(team: Team,
                                                                       history: dict[str, int]) -> None:
    with at(NOW):
        (forecast,) = team.admin.report_forecast(months=3, process=PV)["forecasts"]
        (north,) = team.as_("marta").report_forecast(months=3, process=PV)["forecasts"]
        with pytest.raises(InvalidInputError, match="from 1 to 60"):
            team.admin.report_forecast(months=0)
    estimates = {e["stage"]: (e["probability"], e["probability_method"], e["history"], e["won"], e["days_to_win"],
                              e["days_method"], e["open"]) for e in forecast["stages"]}
    # closed history: L0, L1, L3, L5 won, L2 and L4 lost; all below 20 leads, so the declared figures
    assert estimates == {
        "register_lead": (0.05, "declared", 6, 4, 60.0, "declared", 1),
        "first_contact": (0.1, "declared", 5, 4, 48.0, "declared", 0),
        "first_meeting": (0.25, "declared", 5, 4, 36.0, "declared", 1),
        "send_offer": (0.45, "declared", 5, 4, 24.0, "declared", 0),
        "close_contract": (0.75, "declared", 4, 4, 12.0, "declared", 0),
    }
    # L7 entered first_meeting Mar 12: + 36 days is past, so expected now (April); L6 entered Mar 16: + 60 = May 15
    assert forecast["months"] == [
        {"month": "2026-04", "leads": 1, "value": "80000.00", "expected_wins": 0.25, "expected_value": "20000.00"},
        {"month": "2026-05", "leads": 1, "value": "70000.00", "expected_wins": 0.05, "expected_value": "3500.00"},
        {"month": "2026-06", "leads": 0, "value": "0.00", "expected_wins": 0.0, "expected_value": "0.00"}]
    assert forecast["later"] == {"leads": 0, "value": "0.00", "expected_wins": 0.0, "expected_value": "0.00"}
    assert [m["leads"] for m in north["months"]] == [1, 0, 0]  # L6 is team south's


def test_the_forecast_measures_probability_and_time_once_history_suffices(team: Team,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # 20 leads created Jan 5: 15 lost in register_lead on Jan 6, 5 won on Jan 15 + i days
    ids = [add(team, "01-05", "anna", "10000", "web_form") for _ in range(20)]
    for lead_id in ids[:15]:
        with at("01-06"):
            team.admin.close_lead(lead_id, "no_need")
    for i, lead_id in enumerate(ids[15:]):
        advance(team, lead_id, "01-06", "01-07", "01-08", "01-09")
        win(team, lead_id, f"01-{15 + i}")
    add(team, "04-01", "anna", "50000", "web_form")
    with at("2026-04-02T09:00"):
        (forecast,) = team.admin.report_forecast(months=2, process=PV)["forecasts"]
    first = forecast["stages"][0]
    assert (first["probability"], first["probability_method"], first["history"], first["won"]) == (
        0.25, "measured", 20, 5)
    assert (first["days_to_win"], first["days_method"]) == (60.0, "declared")  # 5 wins: too few for a time
    assert forecast["stages"][1]["probability_method"] == "declared"  # 5 closed leads reached first_contact
    # with a minimum of 5, the median time from entering register_lead to the win: 10, 11, 12, 13, 14 days
    monkeypatch.setattr(forecast_report, "MIN_HISTORY", 5)
    with at("2026-04-02T09:00"):
        (forecast,) = team.admin.report_forecast(months=2, process=PV)["forecasts"]
    first, second = forecast["stages"][:2]
    assert (first["days_to_win"], first["days_method"]) == (12.0, "measured")
    assert (second["probability"], second["probability_method"], second["days_to_win"]) == (1.0, "measured", 11.0)
    # the open lead entered register_lead Apr 1: + 12 days = Apr 13, at a probability of 0.25
    assert forecast["months"][0] == {"month": "2026-04", "leads": 1, "value": "50000.00", "expected_wins": 0.25,
                                     "expected_value": "12500.00"}


def test_upgrading_a_database_with_leads_fills_the_projection_from_the_event_log(team: Team,
                                                                                 history: dict[str, int]) -> None:
    from alembic import command

    from engine import migrate

    kept = stage_rows(team)
    with team.admin.db.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:  # alembic's batch mode recreates a table to drop a column: SQLite's foreign keys off, as its
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # docs say (outside a transaction)
        with conn.begin():
            command.downgrade(migrate._config(conn), "0001")  # type: ignore[arg-type]
        if sqlite:
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
    assert not sa.inspect(team.admin.db).has_table("lead_stages")
    team.admin.init()  # upgrades, then rebuilds lead_stages from the events
    assert stage_rows(team) == kept


@pytest.mark.parametrize("kept", [True, False], ids=["statistics kept", "none kept"])
def test_upgrading_to_the_reports_indexes_gives_them_statistics_where_the_database_keeps_some(
        team: Team, history: dict[str, int], kept: bool) -> None:
    """Migration 0018 makes an index on the forecast's days to a win: where the database keeps planner statistics,
    the upgrade gathers them for it (SQLite plans an index it has none of as the most selective of all: the funnel
    read it instead of its covering index, ten times slower at a million deals); where it keeps none, it makes none.
    The forecast is the same before and after."""
    from alembic import command

    from engine import migrate
    from engine.store import database

    if not kept and not team.url.startswith("sqlite"):
        pytest.skip("PostgreSQL's autovacuum may gather a table's statistics at any time")
    with at(NOW):
        before = team.admin.report_forecast(months=3, process=PV)
    with team.admin.db.begin() as conn:
        command.downgrade(migrate._config(conn), "0017")  # type: ignore[arg-type]
        sqlite = conn.dialect.name == "sqlite"
        if kept:
            database.analyse(conn, ["leads", "lead_stages", "lead_spans"])
        elif sqlite:
            conn.exec_driver_sql("DROP TABLE IF EXISTS sqlite_stat1")
    team.admin.init()
    with team.admin.db.connect() as conn:
        if sqlite:
            has_stat = conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first()
            indexes = set(conn.exec_driver_sql("SELECT idx FROM sqlite_stat1").scalars()) if has_stat else set()
            assert ({"ix_lead_stages_to_close", "ix_lead_spans_at"} <= indexes) is kept
            assert bool(has_stat) is kept
        else:  # the expression index's own statistics (pg_stats names them by the index)
            found = conn.exec_driver_sql("SELECT count(*) FROM pg_stats WHERE tablename = 'ix_lead_stages_to_close'")
            assert (found.scalar_one() > 0) is kept
    with at(NOW):
        assert team.admin.report_forecast(months=3, process=PV) == before


def test_todays_forecast_under_a_fixed_clock_does_not_count_the_closings_after_it(
        team: Team, history: dict[str, int]) -> None:
    """A fixed now (LEADFLOW_NOW, the tests' clock) does not see its own future (engine/reports/periods.py): the
    forecast's history is the leads closed before it, as in every other report."""
    def estimates(when: str) -> dict[str, tuple[int, int]]:
        with at(when):
            (forecast,) = team.admin.report_forecast(process=PV)["forecasts"]
        return {s["stage"]: (s["history"], s["won"]) for s in forecast["stages"]}

    before = estimates(NOW)
    with at("05-10"):
        team.admin.close_lead(history["L6"], "price")
    assert estimates(NOW) == before
    later = estimates("05-11")
    assert sum(n for n, _ in later.values()) == sum(n for n, _ in before.values()) + 1
