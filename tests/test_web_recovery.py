"""The web app's stand-up and refusal-review pages (FastAPI's test client): each role allowed or refused, the
decisions through their forms, CSRF and stale versions refused without a change."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Team
from tests.test_web import PEOPLE, _cheap_hashes  # noqa: F401  (the autouse fixture: cheap password hashes)
from tests.web_fixtures import XSS, csrf_of, signed_in, version_of, with_passwords


@pytest.fixture
def refused_lead(team: Team) -> dict[str, Any]:
    """anna's lead (a name that is markup) lost to a competitor: a refusal waiting for marta's review."""
    with_passwords(team, *PEOPLE)
    anna = team.as_("anna")
    lead = anna.leads.add(process="photovoltaics", name=XSS, value="45000")
    anna.leads.close(lead["id"], "competitor", "SunCo was cheaper")
    return {"team": team, "lead": lead}


def test_the_daily_standup_is_the_engines_agenda_in_each_roles_scope(refused_lead: dict[str, Any]) -> None:
    team = refused_lead["team"]
    team.as_("piotr").leads.add(process="photovoltaics", name="Jan Nowak")
    marta, _csrf = signed_in(team, "marta")
    page = marta.get("/daily")
    assert page.status_code == 200
    assert "anna" in page.text and "piotr" in page.text and "ioana" not in page.text  # north only
    assert "Refusals to review" in page.text and "&lt;img src=x" in page.text and XSS not in page.text
    assert 'href="/reviews"' in page.text
    anna, _csrf = signed_in(team, "anna")
    mine = anna.get("/daily")
    assert mine.status_code == 200 and "Refusals to review" not in mine.text and "Jan Nowak" not in mine.text
    assert anna.get("/daily?owner=piotr").status_code == 403  # someone else's agenda: the engine's refusal
    olga, _csrf = signed_in(team, "olga")
    assert olga.get("/daily").status_code == 403


def test_a_salesperson_and_an_analyst_may_not_see_the_reviews(refused_lead: dict[str, Any]) -> None:
    team, lead = refused_lead["team"], refused_lead["lead"]
    marta, _csrf = signed_in(team, "marta")
    version = version_of(marta.get("/reviews").text)
    for name in ("anna", "olga"):
        web, csrf = signed_in(team, name)
        assert web.get("/reviews").status_code == 403
        answer = web.post(f"/reviews/{lead['id']}/confirm", data={"csrf": csrf, "version": str(version),
                                                                  "note": "no"})
        assert answer.status_code in (403, 404)
    radu, csrf = signed_in(team, "radu")  # the south's director: not his team's refusal
    assert f"/reviews/{lead['id']}/" not in radu.get("/reviews").text
    answer = radu.post(f"/reviews/{lead['id']}/return", data={"csrf": csrf, "version": str(version)})
    assert answer.status_code == 404
    assert [r["state"] for r in team.as_("marta").recovery.reviews()] == ["open"]


def test_a_director_returns_a_refusal_to_another_salesperson_with_a_note(refused_lead: dict[str, Any]) -> None:
    team, lead = refused_lead["team"], refused_lead["lead"]
    marta, csrf = signed_in(team, "marta")
    page = marta.get("/reviews").text
    assert "SunCo was cheaper" in page and "competitor" in page and XSS not in page
    version = version_of(page)
    answer = marta.post(f"/reviews/{lead['id']}/return", data={
        "csrf": csrf, "version": str(version), "to": "piotr", "stage": "", "note": "a leasing offer"})
    assert answer.status_code == 303 and answer.headers["location"] == "/reviews?done=returned"
    shown = team.as_("marta").leads.get(lead["id"])
    assert (shown["status"], shown["owner"]) == ("open", "piotr")
    (decided,) = team.as_("marta").recovery.reviews(state=None)
    assert (decided["state"], decided["decided_by"], decided["decision_note"]) == (
        "returned", "marta", "a leasing offer")
    after = marta.get("/reviews?done=returned").text
    assert "Returned to the funnel." in after and "No refusal waits for a review." in after
    assert "a leasing offer" in marta.get("/reviews?all=1").text
    again = marta.post(f"/reviews/{lead['id']}/confirm", data={"csrf": csrf, "version": str(version + 10),
                                                               "note": "twice"})
    assert again.status_code in (409, 422)


def test_confirming_needs_a_note_and_the_csrf_token_and_a_current_version(refused_lead: dict[str, Any]) -> None:
    team, lead = refused_lead["team"], refused_lead["lead"]
    marta, csrf = signed_in(team, "marta")
    version = version_of(marta.get("/reviews").text)
    url = f"/reviews/{lead['id']}/confirm"
    for data in ({"version": str(version), "note": "x"}, {"csrf": "forged", "version": str(version), "note": "x"}):
        assert marta.post(url, data=data).status_code == 403
    assert marta.post(url, data={"csrf": csrf, "note": "x"}).status_code == 422
    assert marta.post(url, data={"csrf": csrf, "version": str(version - 1), "note": "x"}).status_code == 409
    empty = marta.post(url, data={"csrf": csrf, "version": str(version), "note": " "})
    assert empty.status_code == 422 and "needs a note" in empty.text
    assert [r["state"] for r in team.as_("marta").recovery.reviews()] == ["open"]
    done = marta.post(url, data={"csrf": csrf, "version": str(version), "note": "SunCo offered a longer warranty"})
    assert done.status_code == 303
    (decided,) = team.as_("marta").recovery.reviews(state=None)
    assert (decided["state"], decided["decision_note"]) == ("confirmed", "SunCo offered a longer warranty")
    assert team.as_("marta").leads.get(lead["id"])["status"] == "lost"
    assert csrf_of(marta.get("/reviews").text) == csrf


@pytest.fixture
def recalled(team: Team) -> dict[str, Any]:
    """piotr's lead, recalled by marta: stalled, and the next rotation gives it to a colleague."""
    with_passwords(team, *PEOPLE)
    lead = team.as_("piotr").leads.add(process="photovoltaics", name="Jan Nowak", value="12000")
    team.as_("marta").recovery.recall(lead["id"], "piotr is overloaded")
    return {"team": team, "lead": lead}


def test_stalled_leads_take_reports_and_a_managers_extension(recalled: dict[str, Any]) -> None:
    team, lead = recalled["team"], recalled["lead"]
    piotr, csrf = signed_in(team, "piotr")
    page = piotr.get("/stalled").text
    assert "Jan Nowak" in page and "recalled by a manager" in page
    url, version = f"/stalled/{lead['id']}/report", version_of(page)
    assert piotr.post(url, data={"version": str(version), "text": "called"}).status_code == 403  # no CSRF token
    refused = piotr.post(url, data={"csrf": csrf, "version": str(version), "text": "called",
                                    "extend_until": "2027-06-30", "reason": "public funding"})
    assert refused.status_code == 403 and f"extend lead {lead['id']}" in refused.text
    assert team.as_("piotr").leads.get(lead["id"])["version"] == version  # nothing written
    ok = piotr.post(url, data={"csrf": csrf, "version": str(version), "text": "called, waits for the bank"})
    assert ok.status_code == 303 and "waits for the bank" in piotr.get("/stalled").text
    marta, csrf = signed_in(team, "marta")
    page = marta.get("/stalled").text
    extended = marta.post(url, data={"csrf": csrf, "version": str(version_of(page)), "text": "agreed",
                                     "extend_until": "2027-06-30", "reason": "public funding"})
    assert extended.status_code == 303
    assert "Jan Nowak" not in marta.get("/stalled").text  # extended: no longer stalled
    ioana, _csrf = signed_in(team, "ioana")
    assert "Jan Nowak" not in ioana.get("/stalled").text
    assert ioana.post(url, data={"csrf": _csrf, "version": str(version), "text": "x"}).status_code == 404


def test_rotation_shows_its_plan_and_writes_only_when_confirmed(recalled: dict[str, Any]) -> None:
    team, lead = recalled["team"], recalled["lead"]
    anna, csrf = signed_in(team, "anna")
    assert anna.get("/stalled/rotate").status_code == 403
    assert anna.post("/stalled/rotate", data={"csrf": csrf, "plan": ""}).status_code == 403
    marta, csrf = signed_in(team, "marta")
    plan_page = marta.get("/stalled/rotate").text
    assert "Jan Nowak" in plan_page and "Nothing is written until you confirm" in plan_page
    assert team.as_("marta").leads.get(lead["id"])["owner"] == "piotr"  # the dry run wrote nothing
    plan = plan_page.split('name="plan" value="')[1].split('"')[0]
    assert plan.startswith(f"{lead['id']}:")
    assert marta.post("/stalled/rotate", data={"plan": plan}).status_code == 403  # no CSRF token
    stale = marta.post("/stalled/rotate", data={"csrf": csrf, "plan": "1:nobody"})
    assert stale.status_code == 409 and "nothing was written" in stale.text
    assert team.as_("marta").leads.get(lead["id"])["owner"] == "piotr"
    done = marta.post("/stalled/rotate", data={"csrf": csrf, "plan": plan})
    assert done.status_code == 303 and done.headers["location"] == "/stalled?done=rotated"
    assert team.as_("marta").leads.get(lead["id"])["owner"] == plan.split(":")[1] != "piotr"


def test_revisits_start_a_new_lead_and_removals_sum_up_a_month(team: Team) -> None:
    import datetime as dt

    from engine import clock

    with_passwords(team, *PEOPLE)
    anna = team.as_("anna")
    with clock.frozen(clock.now() - dt.timedelta(days=40)):
        lost = anna.leads.add(process="photovoltaics", name="Ewa Wraca", value="8000")
        anna.leads.close(lost["id"], "no_authority", "the husband decides")
    web, csrf = signed_in(team, "anna")
    page = web.get("/revisits").text
    assert "Ewa Wraca" in page and "no_authority" in page
    start = f"/revisits/{lost['client_id']}/start"
    assert web.post(start, data={"process": "photovoltaics"}).status_code == 403  # no CSRF token
    assert "Ewa Wraca" in web.get("/revisits").text
    answer = web.post(start, data={"csrf": csrf, "process": "photovoltaics"})
    assert answer.status_code == 303 and answer.headers["location"] != f"/leads/{lost['id']}"
    assert "Ewa Wraca" in web.get(answer.headers["location"]).text
    assert "Ewa Wraca" not in web.get("/revisits").text  # the client has a newer lead
    month = f"{clock.now() - dt.timedelta(days=40):%Y-%m}"
    summary = web.get(f"/removals?month={month}").text
    assert "Ewa Wraca" in summary and "no_authority" in summary and "8 000.00" in summary
    assert "Ewa Wraca" not in web.get(f"/removals?month={month}&kind=removal").text
    bad = web.get("/removals?month=March")
    assert bad.status_code == 422 and "is not written YYYY-MM" in bad.text
    ioana, _csrf = signed_in(team, "ioana")
    assert "Ewa Wraca" not in ioana.get(f"/removals?month={month}").text
    assert "Ewa Wraca" not in ioana.get("/revisits").text
