"""The recovery loop's rules at fixed instants, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa

from engine import clock, reports
from engine.errors import InvalidInputError, PermissionDenied, RuleViolation
from tests.conftest import Team, snapshot


def at(text: str) -> clock.frozen:  # type: ignore[valid-type]
    return clock.frozen(dt.datetime.fromisoformat(text))


def add(team: Team, when: str, owner: str = "anna", **kw: object) -> dict:
    with at(when):
        return team.as_(owner).add_lead(process=kw.pop("process", "photovoltaics"),
                                        name=kw.pop("name", "Zofia Kamińska"), **kw)


# -- refusals reach the sales director -----------------------------------------------------------

def test_a_refusal_opens_a_review_for_the_director_and_a_removal_does_not(team: Team) -> None:
    refused = add(team, "2026-03-02T09:00", name="Refused")
    duplicate = add(team, "2026-03-02T09:00", name="Duplicate")
    with at("2026-03-02T10:00"):
        team.as_("anna").close_lead(refused["id"], "price", note="found it 20% cheaper")
        team.as_("anna").close_lead(duplicate["id"], "duplicate")
        reviews = team.as_("marta").list_reviews()
        tasks = team.as_("marta").list_tasks()
        agenda = team.as_("marta").daily()
        with pytest.raises(PermissionDenied, match="they are the sales director's"):
            team.as_("anna").list_reviews()
        south = team.as_("radu").list_reviews()
    assert [(r["lead_id"], r["reason"], r["note"], r["due_at"]) for r in reviews] == [
        (refused["id"], "price", "found it 20% cheaper", "2026-03-04T23:59:59")]
    assert [(t["lead_id"], t["task"]) for t in tasks] == [(refused["id"], "review_refusal")]
    assert [r["lead_id"] for r in agenda["reviews"]] == [refused["id"]]
    assert south == []


def test_returning_a_refusal_reopens_the_lead_into_the_funnel(team: Team) -> None:
    lead = add(team, "2026-03-02T09:00")
    with at("2026-03-02T10:00"):
        team.as_("anna").complete_task(lead["id"], "record_contact")
        team.as_("anna").advance(lead["id"])
        team.as_("anna").close_lead(lead["id"], "price")
    with at("2026-03-03T09:00"):
        with pytest.raises(PermissionDenied):
            team.as_("anna").review_return(lead["id"])
        back = team.as_("marta").review_return(lead["id"], note="10% off and a free battery", to="piotr")
    assert (back["status"], back["stage"], back["owner"]) == ("open", "first_contact", "piotr")
    kinds = [e["kind"] for e in team.as_("marta").history(lead["id"])]
    assert kinds[-4:] == ["closed", "review_returned", "reopened", "assigned"]
    decided = team.as_("marta").list_reviews(state=None)
    assert [(r["state"], r["decided_by"], r["decision_note"]) for r in decided] == [
        ("returned", "marta", "10% off and a free battery")]
    with pytest.raises(RuleViolation, match="has no open refusal review"):
        team.as_("marta").review_confirm(lead["id"], "again")


def test_confirming_a_refusal_records_what_was_learned(team: Team) -> None:
    lead = add(team, "2026-03-02T09:00")
    with at("2026-03-02T10:00"):
        team.as_("anna").close_lead(lead["id"], "competitor")
    before = snapshot(team.url)
    with pytest.raises(InvalidInputError, match="needs a note"):
        team.as_("marta").review_confirm(lead["id"], "  ")
    assert snapshot(team.url) == before
    with at("2026-03-03T09:00"):
        confirmed = team.as_("marta").review_confirm(lead["id"], "called: SunCo offered a longer warranty")
    assert confirmed["status"] == "lost"
    last = team.as_("marta").history(lead["id"])[-1]
    assert (last["kind"], last["actor"], last["data"]) == (
        "review_confirmed", "marta", {"note": "called: SunCo offered a longer warranty"})
    assert team.as_("marta").list_reviews() == []


# -- revisits and the monthly summary ------------------------------------------------------------

def test_a_revisit_surfaces_on_its_date_and_a_new_lead_takes_it_up(team: Team) -> None:
    lead = add(team, "2026-03-02T09:00", name="Łukasz Żółć")
    with at("2026-03-02T10:00"):
        team.as_("anna").close_lead(lead["id"], "bad_timing")  # revisit after 90 days: May 31st, 10:00
    with at("2026-05-31T09:59"):
        assert team.as_("anna").revisits() == []
    with at("2026-05-31T10:00"):
        due = team.as_("anna").revisits()
        assert [(r["lead_id"], r["client_id"], r["reason"]) for r in due] == [
            (lead["id"], lead["client_id"], "bad_timing")]
        assert [r["lead_id"] for r in team.as_("anna").daily()["people"][0]["revisits_due"]] == [lead["id"]]
        new = team.as_("anna").start_revisit(lead["client_id"], process="photovoltaics")
        assert team.as_("anna").revisits() == []
    assert (new["client_id"], new["name"], new["source"]) == (lead["client_id"], "Łukasz Żółć", "revisit")
    assert [(x["id"], x["status"], x["close_reason"]) for x in new["client_leads"]] == [
        (lead["id"], "lost", "bad_timing")]


def test_the_monthly_removals_summary(team: Team) -> None:
    values = {"A": "10000", "B": "50000", "C": "80000", "D": "20000"}
    leads = {n: add(team, "2026-03-02T09:00", name=n, value=v, product="PV 10 kWp" if n != "D" else "PV 5 kWp")
             for n, v in values.items()}
    with at("2026-03-10T09:00"):
        team.as_("anna").close_lead(leads["A"]["id"], "price")       # revisit 120 d, below the median
        team.as_("anna").close_lead(leads["B"]["id"], "price")       # revisit, above the median
        team.as_("anna").close_lead(leads["C"]["id"], "no_need")     # no revisit
        team.as_("anna").close_lead(leads["D"]["id"], "duplicate")   # a removal
    with at("2026-04-02T09:00"):
        team.as_("marta").reopen(leads["C"]["id"])  # reopened in April: still a March closure
        summary = team.as_("marta").removals("2026-03")
        removals_only = team.as_("marta").removals("2026-03", kind="removal")
        empty = team.as_("marta").removals("2026-02")
        with pytest.raises(InvalidInputError, match="not written YYYY-MM"):
            team.as_("marta").removals("2026-13")
    assert (summary["total"], summary["value"], summary["median_value"]) == (4, "160000.00", "35000.00")
    assert {(r["reason"], r["kind"], r["count"]) for r in summary["by_reason"]} == {
        ("price", "refusal", 2), ("no_need", "refusal", 1), ("duplicate", "removal", 1)}
    assert summary["by_salesperson"] == [{"owner": "anna", "count": 4, "value": "160000.00"}]
    assert {(p["product"], p["count"]) for p in summary["by_product"]} == {("PV 10 kWp", 3), ("PV 5 kWp", 1)}
    names = [(c["name"], c["worth_returning"], c["taken_up"]) for c in summary["clients"]]
    assert names == [("B", True, False), ("C", False, True), ("D", False, False), ("A", False, False)]
    assert removals_only["total"] == 1
    assert (empty["total"], empty["clients"], empty["median_value"]) == (0, [], None)


# -- stalled leads -------------------------------------------------------------------------------

def test_stalled_by_cycle_by_idleness_and_by_recall(team: Team) -> None:
    old = add(team, "2026-01-02T09:00", name="Old")           # 60-day cycle: stalled from March 3rd
    idle = add(team, "2026-02-16T09:00", name="Idle")         # 21 idle days: stalled from March 9th
    busy = add(team, "2026-02-16T09:00", name="Busy")
    recalled = add(team, "2026-03-02T09:00", name="Recalled", owner="piotr")
    with at("2026-03-05T09:00"):
        team.as_("anna").report(busy["id"], "client waits for the bank's answer")
        team.as_("marta").recall(recalled["id"], note="piotr is overloaded")
    with at("2026-03-08T09:00"):
        stalled = {r["lead_id"]: r["why"] for r in team.as_("marta").stalled()["leads"]}
    assert stalled == {old["id"]: "held 65 days, longer than the 60-day sales cycle",
                       recalled["id"]: "recalled by a manager"}
    with at("2026-03-10T09:00"):
        listed = team.as_("marta").stalled()["leads"]
        mine = team.as_("anna").stalled()["leads"]
    assert {r["lead_id"] for r in listed} == {old["id"], idle["id"], recalled["id"]}
    assert next(r for r in listed if r["lead_id"] == idle["id"])["why"] == "no activity for 22 days"
    assert {r["lead_id"] for r in mine} == {old["id"], idle["id"]}


def test_an_extension_suppresses_a_stalled_lead_until_its_date(team: Team) -> None:
    lead = add(team, "2026-01-02T09:00")
    with at("2026-03-05T09:00"):
        with pytest.raises(PermissionDenied, match="may not extend"):
            team.as_("anna").report(lead["id"], "public funding decision in April", extend_until="2026-04-30",
                                    reason="public funding")
        team.as_("marta").report(lead["id"], "public funding decision in April", extend_until="2026-04-30",
                                 reason="waiting for the Mój Prąd grant")
        assert team.as_("marta").stalled()["leads"] == []
    with at("2026-04-30T23:00"):
        assert team.as_("marta").stalled()["leads"] == []
    with at("2026-05-01T00:00:01"):
        (row,) = team.as_("marta").stalled()["leads"]
    assert (row["lead_id"], row["latest_report"]) == (lead["id"], "public funding decision in April")


def test_the_measured_cycle_replaces_the_declared_one_once_enough_sales_exist(team: Team) -> None:
    spec = team.admin.spec("photovoltaics")
    with team.admin.transaction() as conn:
        assert reports.cycle_days(conn, spec) == (60.0, "declared in the process")
    import sqlalchemy as sa

    from engine.store import leads

    # twenty won leads that took 30 days each (written directly: only the figure is under test here)
    for i in range(reports.MIN_WON_FOR_MEASURED_CYCLE):
        lead = add(team, "2026-01-05T09:00", name=f"Won {i}")
        with team.admin.transaction() as conn:
            conn.execute(sa.update(leads).where(leads.c.id == lead["id"]).values(
                status="won", closed_at=dt.datetime(2026, 2, 4, 9, 0) + dt.timedelta(hours=i)))
    with team.admin.transaction() as conn:
        days, basis = reports.cycle_days(conn, spec)
    assert basis == "measured median of 20 won leads"
    assert days == pytest.approx(30 + 9.5 / 24)


# -- rotation ------------------------------------------------------------------------------------

def test_rotation_moves_stalled_leads_to_a_colleague_after_a_rest(team: Team) -> None:
    team.admin.add_user("pawel", "salesperson", "north")
    lead = add(team, "2026-01-02T09:00", name="Dead client", value="30000")
    with at("2026-03-05T09:00"):
        team.as_("anna").complete_task(lead["id"], "record_contact")
        team.as_("anna").advance(lead["id"])
    with at("2026-03-06T09:00"):
        before = snapshot(team.url)
        plan = team.as_("marta").rotate(dry_run=True)
        assert snapshot(team.url) == before  # the dry run changed nothing, row for row
        done = team.as_("marta").rotate()
        assert plan["moves"] == done["moves"]
        (move,) = done["moves"]
        assert (move["lead_id"], move["from"]) == (lead["id"], "anna")
        assert move["to"] in ("piotr", "pawel")
        rotated = team.as_("marta").get_lead(lead["id"])
    # the client rests 30 days (cool-off); the stage's two business days count from April 5th
    assert rotated["owner"] == move["to"]
    assert rotated["rest_until"] == "2026-04-05T09:00:00"
    assert rotated["stage"] == "first_contact"
    assert rotated["stage_due_at"] == "2026-04-08T23:59:59"  # Easter Monday (April 6th) is a holiday in PL
    assert [t["state"] for t in rotated["tasks"] if t["stage"] == "first_contact"] == ["open", "open"]
    assert [e["kind"] for e in team.as_("marta").history(lead["id"])][-1] == "rotated"
    assert team.admin.rebuild_lead(lead["id"]).comparable() == team.admin.stored_lead(lead["id"]).comparable()
    with at("2026-03-07T09:00"):
        assert team.as_("marta").stalled()["leads"] == []  # a fresh working period


def test_a_rotation_writes_every_lead_exactly_as_its_event_log_rebuilds_it(team: Team) -> None:
    """Rotation writes leads changed alike in groups (engine.recovery.write_rotation): whatever each lead held
    before (done tasks, a recall, an expired extension, tasks that apply to some leads and not others), the
    stored lead must be the one ``apply`` makes of its log."""
    team.admin.add_user("pawel", "salesperson", "north")
    leads = []
    for i, (asset, age) in enumerate([("car", 1), ("machinery", 5), ("truck", 5), ("it_equipment", 1)]):
        lead = add(team, "2026-01-05T09:00", process="leasing", name=f"Firma {i}",
                   fields={"asset_type": asset, "company_age_years": str(age)})
        with at("2026-01-05T10:00"):
            anna = team.as_("anna")
            anna.complete_task(lead["id"], "record_contact")
            anna.advance(lead["id"])
            anna.complete_task(lead["id"], "call_client")
            anna.complete_task(lead["id"], "book_meeting")
            anna.advance(lead["id"])
            anna.complete_task(lead["id"], "bant")  # done work in the stage that restarts
        leads.append(lead["id"])
    pv = add(team, "2026-01-05T09:00", name="Kowalski PV")["id"]
    with at("2026-01-20T09:00"):
        team.as_("marta").recall(leads[0])
        team.as_("marta").report(leads[1], "waiting for the board", extend_until="2026-02-01", reason="group decision")
    with at("2026-03-10T09:00"):
        done = team.as_("marta").rotate()
    assert sorted(m["lead_id"] for m in done["moves"]) == sorted([*leads, pv])
    for lead_id in [*leads, pv]:
        assert team.admin.stored_lead(lead_id).comparable() == team.admin.rebuild_lead(lead_id).comparable()
    kept = snapshot(team.url)["lead_stages"]  # the funnel's projection follows the new owners too
    assert any("'pawel'" in row or "'piotr'" in row for row in kept)
    # and the leads' past: each lead's own columns before, the rotated ones from the rotation on
    assert team.admin.admin.check()["differences"] == []
    past = snapshot(team.url)
    team.admin.rebuild_stages()
    assert snapshot(team.url)["lead_stages"] == kept
    rebuilt = snapshot(team.url)
    assert rebuilt["lead_spans"] == past["lead_spans"]
    assert sorted(r[1:] for r in rebuilt["lead_stays"]) == sorted(r[1:] for r in past["lead_stays"])  # but the ids
    shown = {lead_id: team.as_("marta").get_lead(lead_id) for lead_id in leads}
    stage_tasks = {lead_id: {t["id"]: t["state"] for t in lead["tasks"] if t["stage"] == "collect_requirements"}
                   for lead_id, lead in shown.items()}
    assert stage_tasks[leads[0]]["bant"] == "open"  # the stage restarts for the new owner
    assert [stage_tasks[i]["fleet_details"] for i in leads] == ["open", "not_applicable", "open", "not_applicable"]
    assert [stage_tasks[i]["startup_guarantees"] for i in leads] == [
        "open", "not_applicable", "not_applicable", "open"]
    assert [(shown[i]["recalled_at"], shown[i]["extended_until"]) for i in leads[:2]] == [(None, None)] * 2
    if team.url.startswith("sqlite"):  # date-times are text there: stored as SQLAlchemy writes them, or SQL compares
        stamp = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")
        db = sa.create_engine(team.url)
        with db.connect() as conn:  # the driver's rows: the stored text, not SQLAlchemy's date-times
            stored = [v for table in ("leads", "lead_tasks", "events", "ownerships", "lead_spans", "lead_stays")
                      for row in conn.exec_driver_sql(f"SELECT * FROM {table}") for v in row
                      if isinstance(v, str) and v[:4].isdigit() and v[4:5] == "-"]
        db.dispose()
        assert stored and [v for v in stored if not stamp.fullmatch(v)] == []


def test_rotation_never_returns_a_client_to_someone_who_worked_it(team: Team) -> None:
    team.admin.add_user("pawel", "salesperson", "north")
    lead = add(team, "2025-09-01T09:00", name="Hard client")
    # Each working period is the 60-day cycle after a 30-day rest, so the client is stalled again 90 days on.
    owners = ["anna"]
    for when in ("2025-11-03T09:00", "2026-02-05T09:00"):
        with at(when):
            (move,) = team.as_("marta").rotate()["moves"]
        owners.append(move["to"])
    assert owners == ["anna", "pawel", "piotr"]  # equal loads: by name; never back to an earlier owner
    with at("2026-05-11T09:00"):
        plan = team.as_("marta").rotate()
        # all three of the team worked the client within its last three ownerships: nobody is left
        assert plan["moves"] == []
        assert plan["unplaced"] == [{"lead_id": lead["id"], "owner": "piotr",
                                     "why": "every salesperson of team north worked this client recently"}]
        (move,) = team.as_("marta").rotate(memory=2)["moves"]  # remember only pawel and piotr
    assert move["to"] == "anna"
    owners_seen = [e["data"].get("to") for e in team.as_("marta").history(lead["id"]) if e["kind"] == "rotated"]
    assert owners_seen == ["pawel", "piotr", "anna"]


def test_the_rest_period_is_neither_idle_time_nor_working_time(team: Team) -> None:
    team.admin.add_user("pawel", "salesperson", "north")
    lead = add(team, "2026-01-02T09:00")
    with at("2026-03-06T09:00"):
        team.as_("marta").rotate()  # rests until April 5th
    with at("2026-04-20T09:00"):  # 45 days without activity, but only 15 since the rest ended
        assert team.as_("marta").stalled()["leads"] == []
    with at("2026-04-27T09:00"):  # 22 days after the rest: idle
        (row,) = team.as_("marta").stalled()["leads"]
    assert (row["lead_id"], row["why"]) == (lead["id"], "no activity for 22 days")


def test_rotation_spreads_leads_by_load_within_the_team(team: Team) -> None:
    team.admin.add_user("pawel", "salesperson", "north")
    for i in range(6):
        add(team, "2026-01-02T09:00", name=f"Stalled {i}", value=str(1000 * (i + 1)))
    for i in range(2):
        add(team, "2026-03-01T09:00", owner="piotr", name=f"Piotr's fresh {i}")
    add(team, "2026-01-02T09:00", owner="ioana", name="South stalled")
    with at("2026-03-06T09:00"):
        plan = team.as_("marta").rotate()
    moved_to = [m["to"] for m in plan["moves"]]
    assert all(m["from"] == "anna" for m in plan["moves"])  # the south lead is radu's team, not marta's
    # piotr starts with 2 open leads and pawel with 0: pawel gets leads until they are level, then they alternate
    assert sorted(moved_to) == ["pawel"] * 4 + ["piotr"] * 2
    assert moved_to[:2] == ["pawel", "pawel"]
    assert plan["moves"][0]["value"] == "6000.00"  # the most valuable lead is placed first


def test_rotation_is_for_managers(team: Team) -> None:
    with pytest.raises(PermissionDenied, match="may not rotate"):
        team.as_("anna").rotate(dry_run=True)


# -- regressions found in review -----------------------------------------------------------------

def test_a_managers_unassigned_lead_stays_in_their_team_and_a_refused_revisit_writes_nothing(team: Team) -> None:
    lead = add(team, "2026-03-02T09:00", owner="marta", name="Walk-in")
    assert (lead["owner"], lead["team"]) == (None, "north")
    assert [x["id"] for x in team.as_("marta").list_leads()] == [lead["id"]]
    lost = add(team, "2026-03-02T09:00", owner="ioana", name="South client")
    with at("2026-03-02T10:00"):
        team.as_("ioana").close_lead(lost["id"], "bad_timing")
    before = snapshot(team.url)
    with at("2026-06-15T10:00"), pytest.raises(PermissionDenied, match="may not see client"):
        team.as_("marta").start_revisit(lost["client_id"], process="photovoltaics")
    assert snapshot(team.url) == before


def test_a_client_is_seen_whole_by_whoever_may_see_one_of_its_leads(team: Team) -> None:
    south = add(team, "2026-03-02T09:00", owner="ioana", name="Shared client", value="50000")
    with pytest.raises(PermissionDenied, match="may not see client"):
        team.as_("marta").client(south["client_id"])
    with pytest.raises(PermissionDenied, match="may not see client"):
        team.as_("anna").add_lead(process="leasing", name="x", client_id=south["client_id"])
    mine = team.as_("radu").add_lead(process="leasing", name="x", client_id=south["client_id"], owner="ioana")
    assert [x["id"] for x in team.as_("radu").client(south["client_id"])["leads"]] == [south["id"], mine["id"]]
    assert [x["id"] for x in team.as_("ioana").get_lead(mine["id"])["client_leads"]] == [south["id"]]


def test_reopening_a_refusal_outside_the_review_supersedes_it(team: Team) -> None:
    lead = add(team, "2026-03-02T09:00")
    with at("2026-03-02T10:00"):
        team.as_("anna").close_lead(lead["id"], "price")
        team.as_("marta").reopen(lead["id"])
        assert team.as_("marta").list_reviews() == []
        assert [r["state"] for r in team.as_("marta").list_reviews(state=None)] == ["superseded"]
        with pytest.raises(RuleViolation, match="has no open refusal review"):
            team.as_("marta").review_confirm(lead["id"], "too late")


def test_rotation_from_the_company_pool_moves_the_lead_into_the_new_owners_team(team: Team) -> None:
    team.admin.add_user("solo", "salesperson")  # a salesperson without a team
    lead = add(team, "2026-01-02T09:00", owner="solo", name="Nobody's team")
    with at("2026-03-06T09:00"):
        (move,) = team.admin.rotate()["moves"]
    assert move["team"] in ("north", "south")
    rotated = team.admin.get_lead(lead["id"])
    assert (rotated["owner"], rotated["team"]) == (move["to"], move["team"])


def test_a_migration_keeps_the_rest_period_and_is_not_activity(team: Team, tmp_path, processes_dir) -> None:  # type: ignore[no-untyped-def]
    team.admin.add_user("pawel", "salesperson", "north")
    lead = add(team, "2026-01-02T09:00")
    with at("2026-03-06T09:00"):
        team.as_("marta").rotate()
    rested = team.admin.get_lead(lead["id"])
    changed = tmp_path / "photovoltaics.yaml"
    changed.write_text((processes_dir / "photovoltaics.yaml").read_text(encoding="utf-8").replace(
        "title: {en: Photovoltaic installations", "title: {en: Photovoltaic installations (v2)"), encoding="utf-8")
    with at("2026-03-07T09:00"):
        team.admin.load_process(changed)
        team.admin.migrate_process("photovoltaics", 2)
    migrated = team.admin.get_lead(lead["id"])
    assert migrated["process_version"] == 2
    assert migrated["stage_due_at"] == rested["stage_due_at"]  # still counted from the end of the rest
    assert migrated["last_activity_at"] == rested["last_activity_at"]
