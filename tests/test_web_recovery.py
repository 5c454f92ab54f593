"""The web app's stand-up and refusal-review pages (FastAPI's test client): each role allowed or refused, the
decisions through their forms, CSRF and stale versions refused without a change."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from engine import passwords
from tests.conftest import Team
from tests.web_fixtures import XSS, csrf_of, signed_in, version_of, with_passwords

PEOPLE = ("marta", "anna", "piotr", "radu", "ioana", "olga")


@pytest.fixture(autouse=True)
def _cheap_hashes() -> Iterator[None]:
    passwords.configure(time_cost=1, memory_cost=8, parallelism=1)
    yield
    passwords.configure()


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
