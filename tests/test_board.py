"""Deadlines on business days, the lights, the board and the daily stand-up, at fixed instants."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import calendar, clock
from engine.errors import PermissionDenied
from tests.conftest import Team, leadflow, snapshot


def at(text: str) -> clock.frozen:  # type: ignore[valid-type]
    return clock.frozen(dt.datetime.fromisoformat(text))


def light_of(team: Team, lead_id: int, when: str, process: str = "photovoltaics") -> str:
    with at(when):
        board = team.as_("marta").board(process=process, limit=1000)[0]
    return next(lead["light"] for s in board["stages"] for lead in s["leads"] if lead["id"] == lead_id)


def add(team: Team, when: str, process: str = "photovoltaics", owner: str = "anna", **kw: object) -> dict:
    with at(when):
        return team.as_(owner).add_lead(process=process, name=kw.pop("name", "Zofia Kamińska"), **kw)


# -- business days -------------------------------------------------------------------------------

def test_business_days_skip_weekends_and_each_countrys_holidays() -> None:
    friday = dt.date(2026, 5, 29)
    assert calendar.add_business_days(friday, 1, "PL") == dt.date(2026, 6, 1)  # Monday
    assert calendar.add_business_days(friday, 1, "RO") == dt.date(2026, 6, 2)  # June 1st: Children's Day in RO
    thursday = dt.date(2026, 4, 30)
    assert calendar.add_business_days(thursday, 1, "PL") == dt.date(2026, 5, 4)  # May 1st holiday + weekend
    assert calendar.add_business_days(dt.date(2026, 4, 2), 1, "GB") == dt.date(2026, 4, 6)  # Good Friday
    assert calendar.add_business_days(dt.date(2026, 4, 2), 1, "PL") == dt.date(2026, 4, 3)
    assert calendar.add_business_days(dt.date(2026, 6, 2), -1, "RO") == dt.date(2026, 5, 29)
    assert calendar.due_at(dt.datetime(2026, 5, 29, 16, 0), 1, "RO") == dt.datetime(2026, 6, 2, 23, 59, 59)


def test_warning_window_opens_after_the_last_business_days_before_the_deadline() -> None:
    wednesday_end = dt.datetime(2026, 3, 4, 23, 59, 59)
    assert calendar.warning_starts(wednesday_end, 1, "PL") == dt.datetime(2026, 3, 4, 0, 0)
    monday_end = dt.datetime(2026, 3, 9, 23, 59, 59)
    assert calendar.warning_starts(monday_end, 1, "PL") == dt.datetime(2026, 3, 7, 0, 0)  # after Friday
    assert calendar.warning_starts(monday_end, 0, "PL") == monday_end


# -- lights --------------------------------------------------------------------------------------

def test_stage_light_across_a_polish_holiday_weekend(team: Team) -> None:
    # Thursday April 30th; May 1st (Friday) is a holiday, then the weekend: due end of Monday May 4th.
    lead = add(team, "2026-04-30T10:00")
    assert lead["stage_due_at"] == "2026-05-04T23:59:59"
    assert light_of(team, lead["id"], "2026-05-01T12:00") == "green"
    assert light_of(team, lead["id"], "2026-05-04T23:00") == "green"  # register_lead has no warning window
    assert light_of(team, lead["id"], "2026-05-05T00:00:01") == "red"


def test_first_contact_is_green_for_a_day_yellow_on_the_second_red_after(team: Team) -> None:
    lead = add(team, "2026-03-05T09:00")  # Thursday
    with at("2026-03-06T09:00"):  # Friday: record the contact, move to first contact
        team.as_("anna").complete_task(lead["id"], "record_contact")
        moved = team.as_("anna").advance(lead["id"])
    assert moved["stage_due_at"] == "2026-03-10T23:59:59"  # two business days: Monday, Tuesday
    assert light_of(team, lead["id"], "2026-03-07T12:00") == "green"  # Saturday
    assert light_of(team, lead["id"], "2026-03-09T17:00") == "green"  # Monday: within one business day
    assert light_of(team, lead["id"], "2026-03-10T08:00") == "yellow"  # Tuesday: the last day
    assert light_of(team, lead["id"], "2026-03-11T08:00") == "red"


def test_the_same_dates_differ_by_calendar(team: Team) -> None:
    pl = add(team, "2026-05-29T10:00", process="photovoltaics", name="Paweł Nowak")
    ro = add(team, "2026-05-29T10:00", process="leasing", name="Ștefan Popescu")
    assert pl["stage_due_at"] == "2026-06-01T23:59:59"
    assert ro["stage_due_at"] == "2026-06-02T23:59:59"
    assert light_of(team, pl["id"], "2026-06-02T09:00") == "red"
    assert light_of(team, ro["id"], "2026-06-02T09:00", process="leasing") == "green"


def test_an_overdue_task_turns_the_lead_red_before_its_stage(team: Team) -> None:
    lead = add(team, "2026-03-02T09:00", fields={"roof_type": "flat", "roof_area_m2": "40", "financing": "cash"})
    anna = team.as_("anna")
    with at("2026-03-02T10:00"):
        anna.complete_task(lead["id"], "record_contact")
        anna.advance(lead["id"])
        anna.complete_task(lead["id"], "call_client")
        anna.complete_task(lead["id"], "book_meeting")
        anna.advance(lead["id"])
        for task in ("meeting_notes", "consumption", "roof_photos", "bant", "next_contact"):
            anna.complete_task(lead["id"], task)
        moved = anna.advance(lead["id"])  # send_offer: stage 10 business days, technical check 4, pricing 6
    assert moved["stage_due_at"] == "2026-03-16T23:59:59"
    technical = next(t for t in moved["tasks"] if t["id"] == "technical_check")
    assert technical["due_at"] == "2026-03-06T23:59:59"
    # the stage's 3-day warning window applies to the task's deadline too: yellow from Wednesday
    assert light_of(team, lead["id"], "2026-03-03T12:00") == "green"
    assert light_of(team, lead["id"], "2026-03-04T12:00") == "yellow"
    assert light_of(team, lead["id"], "2026-03-07T12:00") == "red"  # the task is overdue, the stage is not
    with at("2026-03-07T12:00"):
        team.as_("tomasz").complete_task(lead["id"], "technical_check")
    # pricing (6 business days: due Tuesday March 10th) is the earliest open deadline now
    assert light_of(team, lead["id"], "2026-03-07T13:00") == "yellow"
    with at("2026-03-07T13:00"):
        team.as_("olga").complete_task(lead["id"], "pricing")
    # the optional acknowledgement (due March 3rd) is overdue but never colours the lead; the remaining
    # mandatory deadline is the stage's own (March 16th, yellow from the 12th)
    assert light_of(team, lead["id"], "2026-03-07T14:00") == "green"
    assert light_of(team, lead["id"], "2026-03-12T09:00") == "yellow"


def test_too_long_flags_a_lead_older_than_the_sales_cycle_whatever_its_light(team: Team) -> None:
    old = add(team, "2026-01-02T09:00", name="Stary Klient")
    young = add(team, "2026-03-02T09:00", name="Nowy Klient")
    with at("2026-01-02T09:30"):
        team.as_("anna").complete_task(old["id"], "record_contact")
    with at("2026-03-02T09:10"):  # photovoltaics: 60-day sales cycle; the old lead is 59 days old
        team.as_("anna").advance(old["id"])
        board = team.as_("anna").board(process="photovoltaics")[0]
    flags = {lead["id"]: lead["too_long"] for s in board["stages"] for lead in s["leads"]}
    assert flags == {old["id"]: False, young["id"]: False}
    with at("2026-03-04T09:00"):
        board = team.as_("anna").board(process="photovoltaics")[0]
    flags = {lead["id"]: (lead["too_long"], lead["light"]) for s in board["stages"] for lead in s["leads"]}
    assert flags[old["id"]] == (True, "yellow")
    assert flags[young["id"]] == (False, "red")
    assert board["totals"]["too_long"] == 1


def test_a_board_of_one_light_counts_the_too_long_leads_of_that_light_in_each_stage(team: Team) -> None:
    old = add(team, "2026-01-02T09:00", name="Stary Klient")
    add(team, "2026-01-02T10:00", name="Stary Czerwony")  # too long and red (its first task long overdue)
    add(team, "2026-03-02T09:00", name="Nowy Klient")
    with at("2026-01-02T09:30"):
        team.as_("anna").complete_task(old["id"], "record_contact")
    with at("2026-03-02T09:10"):
        team.as_("anna").advance(old["id"])
    for lamp, by_stage in (("yellow", [0, 1, 0, 0, 0]), ("red", [1, 0, 0, 0, 0]), ("green", [0, 0, 0, 0, 0])):
        with at("2026-03-04T09:00"):
            board = team.as_("anna").board(process="photovoltaics", light=lamp)[0]
        assert [s["too_long"] for s in board["stages"]] == by_stage, lamp
        assert board["totals"]["too_long"] == sum(by_stage)
        cards = [c for s in board["stages"] for c in s["leads"]]
        assert sum(c["too_long"] for c in cards) == sum(by_stage) and {c["light"] for c in cards} <= {lamp}


# -- the board -----------------------------------------------------------------------------------

def test_board_json_shape_counts_values_and_caps(team: Team) -> None:
    for i in range(3):
        add(team, "2026-03-02T09:00", name=f"Klient {i}", value=f"{10_000 * (i + 1)}")
    add(team, "2026-03-02T09:00", owner="piotr", name="Piotra klient", value="5000")
    add(team, "2026-03-02T09:00", owner="ioana", name="South client", value="7000")  # team south
    with at("2026-03-04T09:00"):
        board = team.as_("marta").board(process="photovoltaics", limit=2)[0]
    assert set(board) >= {"process", "as_of", "totals", "stages"}
    assert board["as_of"] == "2026-03-04T09:00:00"
    assert board["totals"] == {"count": 4, "value": "65000.00", "red": 4, "yellow": 0, "green": 0, "too_long": 0}
    assert [s["id"] for s in board["stages"]] == ["register_lead", "first_contact", "first_meeting", "send_offer",
                                                 "close_contract"]
    first = board["stages"][0]
    assert (first["count"], first["value"], first["lights"]) == (4, "65000.00", {"green": 0, "yellow": 0, "red": 4})
    assert len(first["leads"]) == 2  # capped; the counts stay complete
    lead = first["leads"][0]
    assert set(lead) >= {"id", "name", "owner", "value", "light", "days_in_stage", "days_in_process", "too_long"}
    assert (lead["days_in_stage"], lead["days_in_process"]) == (2, 2)


def test_a_salesperson_sees_their_own_leads_and_a_manager_the_team(team: Team) -> None:
    add(team, "2026-03-02T09:00", name="Anny klient")
    add(team, "2026-03-02T09:00", owner="piotr", name="Piotra klient")
    add(team, "2026-03-02T09:00", owner="ioana", name="South client")
    with at("2026-03-02T12:00"):
        mine = team.as_("anna").board(process="photovoltaics")[0]
        north = team.as_("marta").board(process="photovoltaics")[0]
        everyone = team.admin.board(process="photovoltaics")[0]
        only_piotr = team.as_("marta").board(process="photovoltaics", owner="piotr")[0]
        with pytest.raises(PermissionDenied, match="sees only their own leads"):
            team.as_("anna").board(owner="piotr")
        with pytest.raises(PermissionDenied, match="only a manager of team south"):
            team.as_("marta").board(team="south")
    assert (mine["totals"]["count"], north["totals"]["count"], everyone["totals"]["count"]) == (1, 2, 3)
    assert [lead["name"] for lead in only_piotr["stages"][0]["leads"]] == ["Piotra klient"]


def test_light_filter(team: Team) -> None:
    late = add(team, "2026-02-02T09:00", name="Late")
    add(team, "2026-03-02T09:00", name="Fresh")
    with at("2026-03-02T12:00"):
        red = team.as_("anna").board(process="photovoltaics", light="red")[0]
        green = team.as_("anna").board(process="photovoltaics", light="green")[0]
    assert [lead["id"] for s in red["stages"] for lead in s["leads"]] == [late["id"]]
    assert red["totals"]["count"] == 1
    assert green["totals"]["count"] == 1


def test_light_counts_equal_the_lights_of_the_cards_with_deadlines_and_contacts_of_every_kind(team: Team) -> None:
    """The counts come from index ranges (engine.board._light_counts), the cards' lights from ``light_of``: with
    every mix of a deadline (passed, in its warning window, ahead) and a booked contact (missed, due today,
    later, none) they agree, stage by stage and in value, and capping the cards changes no count."""
    anna = team.as_("anna")
    contacts = [None, "2026-03-04T08:00", "2026-03-04T18:00", "2026-03-06T10:00"]  # missed, today, later
    for day in ("2026-02-25", "2026-03-02", "2026-03-03", "2026-03-04"):
        for advanced in (False, True):
            for n, contact in enumerate(contacts):
                lead = add(team, f"{day}T09:00", name=f"Klient {day} {n}", value=f"{1000 * (n + 1)}")
                with at(f"{day}T09:30"):
                    if advanced:  # first_contact has a warning window, register_lead none
                        anna.complete_task(lead["id"], "record_contact")
                        anna.advance(lead["id"])
                    if contact is not None and contact > f"{day}T09:30":
                        anna.activities.set_next_contact(lead["id"], contact)
    with at("2026-03-04T12:00"):
        full = team.as_("marta").board(process="photovoltaics", limit=1000)[0]
        capped = team.as_("marta").board(process="photovoltaics", limit=1)[0]
        only = {lamp: team.as_("marta").board(process="photovoltaics", light=lamp, limit=1000)[0]
                for lamp in ("red", "yellow", "green")}
    seen = set()
    for stage, one in zip(full["stages"], capped["stages"], strict=True):
        cards = stage["leads"]
        assert len(cards) == stage["count"]
        for lamp in ("red", "yellow", "green"):
            mine = [c for c in cards if c["light"] == lamp]
            assert stage["lights"][lamp] == len(mine), (stage["id"], lamp)
            filtered = next(s for s in only[lamp]["stages"] if s["id"] == stage["id"])
            assert filtered["count"] == len(mine)
            assert float(filtered["value"]) == sum(float(c["value"]) for c in mine)
            assert sorted(c["id"] for c in filtered["leads"]) == sorted(c["id"] for c in mine)
            seen |= {(lamp, (c["overdue"] or {}).get("kind")) for c in mine}
        assert {k: v for k, v in one.items() if k != "leads"} == {k: v for k, v in stage.items() if k != "leads"}
        assert len(one["leads"]) == min(1, stage["count"])
    assert full["totals"] == capped["totals"]
    # the data has every kind: red by a deadline and by a missed contact, yellow and green
    assert {("red", "task"), ("red", "contact"), ("yellow", None), ("green", None)} <= seen


# -- the daily stand-up --------------------------------------------------------------------------

def test_daily_agenda_lists_red_due_new_done_and_revisits(team: Team) -> None:
    overdue = add(team, "2026-02-23T09:00", name="Overdue")
    fresh = add(team, "2026-03-05T15:00", name="Fresh")  # Thursday afternoon
    lost = add(team, "2025-11-03T09:00", name="Came back")
    with at("2025-11-03T10:00"):
        team.as_("anna").close_lead(lost["id"], "bad_timing")  # revisit after 90 days: February 1st
    with at("2026-03-05T16:00"):
        team.as_("anna").complete_task(fresh["id"], "record_contact", note="called")
    with at("2026-03-06T09:00"):  # Friday stand-up
        agenda = team.as_("marta").daily()
        own = team.as_("anna").daily()
    people = {p["salesperson"]: p for p in agenda["people"]}
    assert set(people) == {"anna", "piotr"}  # the north team's salespeople
    anna = people["anna"]
    assert own["people"] == [anna]
    assert anna["since"] == "2026-03-05T00:00:00"  # the previous business day
    assert anna["red"]["count"] == 1
    assert [(r["lead_id"], r["tasks"]) for r in anna["red"]["leads"]] == [(overdue["id"], ["check_history",
                                                                                "record_contact"])]
    # fresh: its stage is due at the end of Friday; the optional task due with it is listed
    assert anna["due_today"]["count"] == 1
    assert [(t["lead_id"], t["tasks"]) for t in anna["due_today"]["leads"]] == [(fresh["id"], ["check_history"])]
    assert anna["due_next_business_day"] == {"count": 0, "leads": []}
    assert [n["lead_id"] for n in anna["new_leads"]] == [fresh["id"]]
    assert [(d["lead_id"], d["kind"], d["detail"]) for d in anna["done"]] == [(fresh["id"], "task_done",
                                                                              "record_contact")]
    assert [r["lead_id"] for r in anna["revisits_due"]] == [lost["id"]]
    # once a new lead is started for that client, the revisit is no longer due
    with at("2026-03-06T10:00"):
        team.as_("anna").add_lead(process="photovoltaics", name="x", client_id=lost["client_id"])
        assert team.as_("anna").daily()["people"][0]["revisits_due"] == []


def test_a_salesperson_without_open_leads_keeps_the_calendar_of_their_work(team: Team) -> None:
    """docs/board.md: no open leads, so no process holds most of them: their most recent lead's process, else
    the one most of their team's open leads are in (not whichever process happens to come first)."""
    def calendars(when: str) -> dict[str, str]:
        with at(when):
            return {p["salesperson"]: p["calendar"] for p in team.as_("marta").daily()["people"]}

    for _ in range(3):  # the deployment's open leads are mostly the south team's leasing (RO)
        add(team, "2026-03-02T09:00", process="leasing", owner="ioana")
    add(team, "2026-03-02T10:00", owner="piotr")  # north works photovoltaics (PL)
    assert calendars("2026-03-03T09:00") == {"anna": "PL", "piotr": "PL"}
    insured = add(team, "2026-03-03T10:00", process="life_insurance")  # GB
    with at("2026-03-03T11:00"):
        team.as_("anna").close_lead(insured["id"], "no_need")
    assert calendars("2026-03-04T09:00") == {"anna": "GB", "piotr": "PL"}  # her last lead's, closed or not
    with at("2026-03-04T09:00"):  # the agenda as of a moment before that lead: the leads as they stood then
        people = team.as_("marta").daily(as_of="2026-03-03T09:30")["people"]
    assert {p["salesperson"]: p["calendar"] for p in people} == {"anna": "PL", "piotr": "PL"}


def test_board_and_daily_change_nothing(team: Team) -> None:
    add(team, "2026-03-02T09:00")
    before = snapshot(team.url)
    with at("2026-03-09T09:00"):
        team.as_("marta").board()
        team.as_("marta").daily()
    assert snapshot(team.url) == before


# -- the HTML page -------------------------------------------------------------------------------

def _html_board(team: Team, tmp_path: Path) -> Path:
    add(team, "2026-02-02T09:00", name="Red Rudolf")
    yellow = add(team, "2026-03-03T09:00", name="Yellow <Ylva> & Co")
    green = add(team, "2026-03-04T09:00", name="Green Grażyna")
    for lead, when in ((yellow, "2026-03-03T10:00"), (green, "2026-03-04T10:00")):
        with at(when):  # into first contact: due after two business days, yellow on the second
            team.as_("anna").complete_task(lead["id"], "record_contact")
            team.as_("anna").advance(lead["id"])
    page = tmp_path / "board.html"
    result = leadflow(team.url, "marta", ["board", "--html", str(page)], "2026-03-05T08:00:00")
    assert result.exit_code == 0, result.output
    return page


def test_html_board_is_self_contained_and_escaped(team: Team, tmp_path: Path) -> None:
    html = _html_board(team, tmp_path).read_text(encoding="utf-8")
    assert "Red Rudolf" in html and "Green Grażyna" in html
    assert "Yellow &lt;Ylva&gt; &amp; Co" in html  # escaped, not markup
    assert html.count('data-light="red"') == 1
    assert html.count('data-light="yellow"') == 1
    assert html.count('data-light="green"') == 1
    for remote in ("http://", "https://", "<script", "<link"):
        assert remote not in html


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_html_board_lights_are_visible_in_headless_chromium(team: Team, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install chromium (.ci/run does it with apt-get)")
        pytest.skip("chromium is not installed here (apt-get install chromium); CI runs this check")
    from PIL import Image

    page = _html_board(team, tmp_path)
    shot = tmp_path / "board.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,900", f"--screenshot={shot}",
         page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    image = Image.open(shot).convert("RGB")
    assert image.size == (1400, 900)
    raw = image.tobytes()
    pixels = [tuple(raw[i : i + 3]) for i in range(0, len(raw), 3)]
    colours = {"red": (0xD9, 0x30, 0x25), "yellow": (0xF2, 0xB6, 0x00), "green": (0x1E, 0x8E, 0x3E)}
    seen = {name: sum(1 for p in pixels if all(abs(a - b) <= 8 for a, b in zip(p, rgb, strict=True)))
            for name, rgb in colours.items()}
    for name, count in seen.items():
        assert count > 200, f"the {name} light is not visible in the rendered page ({count} pixels)"


# -- the precomputations the board relies on -----------------------------------------------------

def test_stage_counts_always_equal_a_fresh_count_of_the_leads(team: Team) -> None:
    import sqlalchemy as sa

    from engine.store import create_db_engine, recount, stage_counts

    a = add(team, "2026-03-02T09:00", value="1000")
    b = add(team, "2026-03-02T09:00", owner="piotr", value="2500.50")
    add(team, "2026-03-02T09:00", process="leasing", owner="ioana")
    with at("2026-03-02T10:00"):
        team.as_("anna").complete_task(a["id"], "record_contact")
        team.as_("anna").advance(a["id"])
        team.as_("anna").set_fields(a["id"], {"value": "1200"})
        team.as_("marta").assign(b["id"], "anna")
        team.as_("anna").close_lead(b["id"], "price")
        team.as_("marta").reopen(b["id"])

    def rows() -> list[tuple[object, ...]]:
        db = create_db_engine(team.url)
        try:
            with db.connect() as conn:
                return sorted(tuple(r) for r in conn.execute(sa.select(stage_counts)) if r.leads)
        finally:
            db.dispose()

    kept = rows()
    db = create_db_engine(team.url)
    with db.begin() as conn:
        recount(conn)
    db.dispose()
    assert kept == rows()
    assert ("photovoltaics", "first_contact", "north", "anna", 1, 120000) in kept
    assert ("photovoltaics", "register_lead", "north", "anna", 1, 250050) in kept


@settings(max_examples=300, deadline=None)
@given(
    due_day=st.dates(min_value=dt.date(2026, 1, 1), max_value=dt.date(2026, 12, 31)),
    offset_hours=st.integers(min_value=-24 * 12, max_value=24 * 3),
    warning=st.integers(min_value=0, max_value=5),
    country=st.sampled_from(["PL", "RO", "GB", "US"]),
)
def test_yellow_range_matches_the_warning_window(due_day: dt.date, offset_hours: int, warning: int,
                                                 country: str) -> None:
    # deadlines always fall at the end of a business day
    deadline = calendar.due_at(dt.datetime.combine(due_day, dt.time(9)), 1, country)
    now = deadline + dt.timedelta(hours=offset_hours)
    in_window = calendar.warning_starts(deadline, warning, country) <= now
    assert in_window == (deadline <= calendar.last_yellow_deadline(now, warning, country)) or deadline < now


def test_the_stand_up_of_a_team_of_ten_fits_on_one_screen(team: Team, runner: CliRunner) -> None:
    from cli.main import cli

    for i in range(8):
        team.admin.add_user(f"sales{i}", "salesperson", "north")
    for person in ["anna", "piotr", *(f"sales{i}" for i in range(8))]:
        for j in range(6):  # red, due today and new leads for everybody
            add(team, "2026-02-02T09:00" if j < 3 else "2026-03-06T08:00", owner=person, name=f"{person} {j}")
    result = runner.invoke(cli, ["--db", team.url, "--user", "marta", "daily"],
                           env={"LEADFLOW_NOW": "2026-03-06T09:00:00", "COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert sum(1 for line in lines if ": " in line and " red, " in line) == 10
    assert len(lines) <= 50, len(lines)
