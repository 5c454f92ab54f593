"""Reports as of a past instant are true (issue 20): each report given ``as_of=T`` on the whole history equals the
same report without ``as_of``, at a clock frozen at T, on a database that holds only what happened up to T.

The history is a script of operations at fixed instants, in time order; the database "up to T" is a fresh one
that ran the script's operations up to T, through the same engine (so its events, ``lead_stages``, ``closures``
and ``ownerships`` are exactly those written up to T, and its leads' columns their state then). Leads are created
in the same order in both, so their ids agree.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import clock
from engine.api import Engine
from engine.errors import InvalidInputError, LeadflowError
from tests.conftest import Team, build_team

PV = "photovoltaics"
FIELDS = {"roof_type": "pitched", "roof_area_m2": "40", "financing": "cash", "offer_value": "30000"}
END = "2026-04-30T09:00"

Op = Callable[[Engine, dict[str, int]], None]


def instant(text: str) -> dt.datetime:
    """``MM-DD`` (09:00), ``MM-DDTHH:MM`` (of 2026) or a full ISO date-time."""
    full = text if text.startswith("2026") else f"2026-{text}"
    return dt.datetime.fromisoformat(full if "T" in full else f"{full}T09:00")


def add(name: str, owner: str, value: str, source: str = "web_form", revisit_of: str | None = None) -> Op:
    def op(admin: Engine, ids: dict[str, int]) -> None:
        extra = {"client_id": admin.get_lead(ids[revisit_of])["client_id"]} if revisit_of else {}
        ids[name] = int(admin.add_lead(process=PV, name=f"Client {name}", owner=owner, value=value, source=source,
                                       fields=FIELDS, **extra)["id"])
    return op


def advance(name: str, by: str | None = None) -> Op:
    """Advance the lead (as the admin, or ``by``: the stand-up lists their work), its mandatory tasks done first."""
    def op(admin: Engine, ids: dict[str, int]) -> None:
        _finish(admin, ids[name])
        (admin.as_user(by) if by else admin).advance(ids[name])
    return op


def win(name: str) -> Op:
    def op(admin: Engine, ids: dict[str, int]) -> None:
        _finish(admin, ids[name])
        admin.win(ids[name])
    return op


def close(name: str, reason: str) -> Op:
    return lambda admin, ids: admin.close_lead(ids[name], reason)


def reopen(name: str) -> Op:
    return lambda admin, ids: admin.as_user("marta").reopen(ids[name])


def recall(name: str) -> Op:
    return lambda admin, ids: admin.as_user("marta").recall(ids[name])


def rotate() -> Op:
    return lambda admin, ids: admin.as_user("marta").rotate()


def _finish(admin: Engine, lead_id: int) -> None:
    lead = admin.get_lead(lead_id)
    for task in lead["tasks"]:
        if task["stage"] == lead["stage"] and task["state"] == "open" and task["mandatory"]:
            admin.complete_task(lead_id, task["id"])


#: (instant, operation), in time order: won, lost, reopened, recalled and rotated, revisited, open leads.
SCRIPT: list[tuple[str, Op]] = [
    ("02-20", add("A", "piotr", "10000")),
    ("02-23", advance("A")),
    ("02-25", advance("A")),
    ("03-02", add("B", "anna", "20000")),
    ("03-02T09:30", add("C", "anna", "30000", "referral")),
    ("03-02T10:00", advance("A")),
    ("03-03", add("D", "piotr", "40000", "referral")),
    ("03-03T10:00", advance("B")),
    ("03-04", advance("C")),
    ("03-04T10:00", advance("D", by="piotr")),
    ("03-05", recall("D")),
    ("03-06", close("C", "price")),
    ("03-06T12:00", rotate()),
    ("03-09", advance("A", by="piotr")),
    ("03-09T10:00", advance("B")),
    ("03-10", reopen("C")),
    ("03-10T10:00", add("E", "piotr", "50000")),
    ("03-11", advance("C")),
    ("03-12", close("E", "no_budget")),
    ("03-13", advance("B")),
    ("03-15", advance("B")),
    ("03-16", add("F", "ioana", "70000")),
    ("03-17", advance("C")),
    ("03-18", win("A")),
    ("03-20", win("B")),
    ("03-20T10:00", close("C", "competitor")),
    ("03-21", add("G", "anna", "60000", "revisit", revisit_of="E")),
    ("03-23", advance("G")),
    ("03-24", advance("G")),
    ("04-07", advance("D")),
    ("04-08", advance("D")),
    ("04-10", advance("D")),
    ("04-14", win("D")),
    ("04-20", add("H", "anna", "80000")),
]

#: Instants inside the history: the first days (new leads on the stand-up), before the first closing, the day of
#: the rotation and reopening, between the wins, and after the last stage moves but before the last win.
INSTANTS = ["2026-03-03T12:00", "2026-03-05T12:00", "2026-03-10T09:30", "2026-03-19T00:00", "2026-04-09T00:00",
            "2026-04-14T09:00"]


def play(admin: Engine, until: dt.datetime | None = None) -> dict[str, int]:
    ids: dict[str, int] = {}
    for when, op in SCRIPT:
        if until is not None and instant(when) > until:
            break
        with clock.frozen(instant(when)):
            op(admin, ids)
    return ids


def reports(admin: Engine, as_of: str | None = None) -> dict[str, Any]:
    """Every report and view that takes ``as_of``, by name (in several scopes and filters)."""
    kw: dict[str, Any] = {"as_of": as_of} if as_of else {}
    return {
        "funnel": admin.reports.funnel(**kw),
        "funnel_north": admin.reports.funnel(team="north", **kw),
        "salespeople": admin.reports.salespeople(**kw),
        "salespeople_month": admin.reports.salespeople(period="month", **kw),
        "forecast": admin.reports.forecast(**kw),
        "refusals": admin.reports.refusals(period="all", **kw),
        "cycle": admin.reports.cycle(**kw),
        "products": admin.reports.products(**kw),
        "board": admin.boards.board(**kw),
        "board_red_first": admin.boards.board(light="red", limit=1, **kw),
        "board_yellow": admin.boards.board(light="yellow", **kw),
        "board_north": admin.as_user("marta").boards.board(**kw),
        "board_anna": admin.as_user("anna").boards.board(**kw),
        "daily": admin.boards.daily(**kw),
        "daily_piotr": admin.as_user("piotr").boards.daily(**kw),
        "stalled": admin.recovery.stalled(**kw),
        "reviews": admin.recovery.reviews(state=None, **kw),
    }


def history_up_to(url: str, at: str, take: Callable[[Engine], dict[str, Any]]) -> dict[str, Any]:
    """``take``'s reports, without ``as_of``, of a fresh database at ``url`` that ran the history up to ``at``,
    with its clock at ``at``."""
    build_team(url)
    upto = Engine.open(url, user="root")
    try:
        play(upto, instant(at))
        with clock.frozen(instant(at)):
            return take(upto)
    finally:
        upto.close()


def test_every_report_as_of_an_instant_equals_the_report_of_the_history_up_to_it(team: Team,
                                                                                   tmp_path: Path) -> None:
    play(team.admin)
    with clock.frozen(instant(END)):
        today = reports(team.admin)
        past = {at: reports(team.admin, at) for at in INSTANTS}
        assert reports(team.admin) == today  # the as-of path leaves nothing behind
    for k, at in enumerate(INSTANTS):
        expected = history_up_to(f"sqlite:///{tmp_path / f'upto{k}.db'}", at, reports)
        for name, report in expected.items():
            assert past[at][name] == report, f"{name} as of {at}"
    # the instants do differ from today and from each other (the comparison is not between empty reports)
    assert past[INSTANTS[1]]["funnel"] != today["funnel"]
    assert len({str(past[at]["salespeople"]["salespeople"]) for at in INSTANTS}) == len(INSTANTS) - 1
    lights = {light for at in INSTANTS for light in ("red", "yellow") if past[at]["board"][0]["totals"][light]}
    assert lights == {"red", "yellow"}
    assert any(past[at]["reviews"] for at in INSTANTS) and any(past[at]["stalled"]["leads"] for at in INSTANTS)
    agendas = [p for at in INSTANTS for p in past[at]["daily"]["people"]]
    assert all(any(p[key] for p in agendas) for key in ("new_leads", "done"))
    assert all(any(p[key]["count"] for p in agendas) for key in ("red", "due_today", "due_next_business_day"))


def test_cycle_and_products_as_of_count_the_leads_closed_then_and_reopened_since(team: Team, tmp_path: Path) -> None:
    """A lead won (A, 03-18) or lost (E, 03-12) before the instant and reopened since was won or lost then: the
    cycle and the per-product figures as of the instant count it, as the history up to the instant does."""
    ids = play(team.admin)
    for when, name in (("04-21", "A"), ("04-21T10:00", "E")):
        with clock.frozen(instant(when)):
            team.admin.reopen(ids[name])
    at = "2026-03-19T00:00"
    with clock.frozen(instant(END)):
        past = {"cycle": team.admin.reports.cycle(as_of=at), "products": team.admin.reports.products(as_of=at),
                "cycle_anna": team.admin.reports.cycle(owner="anna", as_of=at),
                "stalled": team.admin.recovery.stalled(as_of=at)}
    assert past == history_up_to(f"sqlite:///{tmp_path / 'upto.db'}", at, lambda upto: {
        "cycle": upto.reports.cycle(), "products": upto.reports.products(),
        "cycle_anna": upto.reports.cycle(owner="anna"), "stalled": upto.recovery.stalled()})
    assert [p["won"] for p in past["cycle"]["processes"] if p["process"] == PV] == [1]
    assert [(p["won"], p["lost"]) for p in past["products"]["products"]] == [(1, 1)]


def test_as_of_is_a_date_or_a_date_time_in_the_past(team: Team) -> None:
    play(team.admin, instant("03-10"))
    with clock.frozen(instant("03-20")):
        day = team.admin.reports.funnel(as_of="2026-03-06")
        assert day["as_of"] == "2026-03-06T23:59:59.999999"
        assert day == team.admin.reports.funnel(as_of="2026-03-06T23:59:59.999999")
        for bad, message in [("2026-03-21", "--as-of 2026-03-21 is in the future"),
                             ("yesterday", "--as-of 'yesterday' is not")]:
            with pytest.raises(InvalidInputError, match=message):
                team.admin.reports.funnel(as_of=bad)


def test_the_cli_the_http_api_and_the_web_reports_take_as_of(team: Team) -> None:
    from tests.conftest import js, refused
    from tests.test_web import PEOPLE, _cheap_hashes  # noqa: F401  (the autouse fixture: cheap password hashes)
    from tests.web_fixtures import signed_in, with_passwords

    play(team.admin)
    when = "2026-03-10T09:30"
    with clock.frozen(instant(END)):
        expected = reports(team.admin, when)
    for command, name in [("report funnel", "funnel"), ("report salespeople", "salespeople"),
                          ("report forecast", "forecast"), ("report refusals --period all", "refusals"),
                          ("report cycle", "cycle"), ("board --limit 50", "board"), ("daily", "daily"),
                          ("stalled", "stalled")]:
        assert js(team.url, "root", f"{command} --as-of {when}", END) == expected[name], command
    assert js(team.url, "root", "report funnel --as-of 2026-03-10", END)["as_of"] == "2026-03-10T23:59:59.999999"
    line = refused(team.url, "root", "report funnel --as-of 2026-05-01", END)
    assert line == "Error: --as-of 2026-05-01 is in the future (now is 2026-04-30T09:00:00)"
    with_passwords(team, *PEOPLE)
    with clock.frozen(instant(END)):
        marta, _csrf = signed_in(team, "marta")
        page = marta.get(f"/reports/funnel?process={PV}&as_of=2026-03-05").text
        north = team.as_("marta").reports.funnel(process=PV, as_of="2026-03-05")["funnels"][0]
    assert 'name="as_of" type="date" value="2026-03-05"' in page
    assert north["leads"] == 4 and north["won"] == 0
    first = next(s for s in north["stages"] if s["stage"] == "register_lead")
    assert f"<td>{first['reached']}</td><td>100.0%</td><td>{first['in_stage']}</td>" in page


def test_the_http_routes_take_as_of(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from tests.server_fixtures import serving

    play(team.admin)
    monkeypatch.setenv("LEADFLOW_NOW", END)  # the server's clock, and this process's
    when = "2026-03-10T09:30"
    marta = team.as_("marta")
    expected = {"/v1/reports/funnel": marta.reports.funnel(as_of=when),
                "/v1/reports/forecast": marta.reports.forecast(as_of=when),
                "/v1/board": marta.boards.board(limit=20, as_of=when),
                "/v1/daily": marta.boards.daily(as_of=when), "/v1/stalled": marta.recovery.stalled(as_of=when)}
    with serving(team.admin) as served:
        for path, report in expected.items():
            answer = served.call("marta", "GET", path, params={"as_of": when})
            assert answer.status_code == 200, (path, answer.text)
            assert answer.json() == json.loads(json.dumps(report)), path
        refused = served.call("marta", "GET", "/v1/reports/funnel", params={"as_of": "someday"})
        assert refused.status_code == 422 and "--as-of 'someday' is not" in refused.text


# -- random histories (hypothesis) --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def empty_floor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The team database (processes and users, no leads) as a file to copy for each history."""
    path = tmp_path_factory.mktemp("asof") / "floor.db"
    build_team(f"sqlite:///{path}")
    return path


def _random_op(kind: str, k: int, choice: int) -> Op:
    """One operation of a random history on the k-th lead (modulo the leads there are); refused ones change
    nothing, in the full history and in its prefixes alike."""
    def op(admin: Engine, ids: dict[str, int]) -> None:
        name = sorted(ids, key=ids.__getitem__)[k % len(ids)] if ids else None
        moves: dict[str, Op] = {
            "add": add(f"L{len(ids)}", ("anna", "piotr", "ioana")[choice % 3], str(5000 * (choice % 7 + 1))),
            **({"advance": advance(name, by=("piotr" if choice % 2 else None)), "win": win(name),
                "close": close(name, ("price", "no_budget", "competitor")[choice % 3]), "reopen": reopen(name),
                "recall": recall(name)} if name else {}),
            "rotate": rotate()}
        with contextlib.suppress(LeadflowError):
            moves.get(kind, moves["add"])(admin, ids)
    return op


#: A random history's steps: (operation, which lead, which choice, hours after the step before).
STEPS = st.lists(st.tuples(st.sampled_from(["add", "add", "advance", "advance", "advance", "win", "close", "reopen",
                                            "recall", "rotate"]),
                           st.integers(0, 50), st.integers(0, 50), st.integers(1, 24 * 12)), min_size=4, max_size=24)


def random_script(start: dt.datetime, steps: list[tuple[str, int, int, int]]) -> list[tuple[dt.datetime, Op]]:
    """A random history's operations at their instants: each step ``hours`` after the one before."""
    script, at = [], start
    for kind, k, choice, hours in steps:
        at += dt.timedelta(hours=hours)
        script.append((at, _random_op(kind, k, choice)))
    return script


def run_script(script: list[tuple[dt.datetime, Op]], url: str, until: dt.datetime | None = None) -> Engine:
    """An engine on ``url`` that ran ``script`` (up to ``until``)."""
    engine = Engine.open(url, user="root")
    ids: dict[str, int] = {}
    for when, op in script:
        if until is not None and when > until:
            break
        with clock.frozen(when):
            op(engine, ids)
    return engine


def fresh_copy(floor: Path, folder: Path, name: str) -> str:
    """The URL of a new copy of the ``floor`` database in ``folder``."""
    path = folder / f"{name}-{uuid.uuid4().hex}.db"
    shutil.copyfile(floor, path)
    return f"sqlite:///{path}"


@pytest.mark.slow  # eight random histories, each compared at two instants
@settings(max_examples=8, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(steps=STEPS,
       cuts=st.lists(st.floats(0, 1), min_size=2, max_size=2))
def test_a_random_history_as_of_any_instant_is_its_prefix(empty_floor: Path, tmp_path: Path,
                                                          steps: list[tuple[str, int, int, int]],
                                                          cuts: list[float]) -> None:
    start = instant("2026-02-02T09:00")
    script = random_script(start, steps)
    at = script[-1][0]

    def run(url: str, until: dt.datetime | None = None) -> Engine:
        return run_script(script, url, until)

    def fresh(name: str) -> str:
        return fresh_copy(empty_floor, tmp_path, name)

    whole = run(fresh("whole"))
    try:
        for cut in cuts:
            then = start + (at - start) * cut
            with clock.frozen(at + dt.timedelta(days=1)):
                past = reports(whole, then.isoformat())
            upto = run(fresh("upto"), then)
            try:
                with clock.frozen(then):
                    assert past == reports(upto), then
            finally:
                upto.close()
    finally:
        whole.close()
