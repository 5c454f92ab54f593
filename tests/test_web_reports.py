"""The web app's reports (FastAPI's test client): each report's tables from eng.reports, a CSV of each table, the
charts as PNG, and each role's scope."""

from __future__ import annotations

import csv
import io

import pytest

from tests.conftest import Team
from tests.test_web import PEOPLE, _cheap_hashes  # noqa: F401  (the autouse fixture: cheap password hashes)
from tests.web_fixtures import signed_in, with_passwords

KINDS = ("refusals", "funnel", "cycle", "salespeople", "forecast")


@pytest.fixture
def sales(team: Team) -> Team:
    with_passwords(team, *PEOPLE)
    anna, ioana = team.as_("anna"), team.as_("ioana")
    lost = anna.leads.add(process="photovoltaics", name="Ewa Odmowa", value="8000")
    anna.leads.close(lost["id"], "no_authority")
    anna.leads.add(process="photovoltaics", name="Jan Otwarty", value="12000")
    ioana.leads.add(process="photovoltaics", name="Ion Sud", value="5000")
    return team


@pytest.mark.parametrize("kind", KINDS)
def test_every_report_shows_its_tables_a_csv_of_each_and_its_chart(sales: Team, kind: str) -> None:
    marta, _csrf = signed_in(sales, "marta")
    page = marta.get(f"/reports/{kind}")
    assert page.status_code == 200, page.text
    assert f'href="/reports/{kind}.csv?table=0"' in page.text
    answer = marta.get(f"/reports/{kind}.csv?table=0")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert f'filename="{kind}-0.csv"' in answer.headers["content-disposition"]
    header, *_rows = list(csv.reader(io.StringIO(answer.text)))
    assert header and all(h in page.text for h in header)
    assert marta.get(f"/reports/{kind}.csv?table=99").status_code == 404
    if kind == "salespeople":
        assert marta.get(f"/reports/{kind}.png").status_code == 404  # it draws no chart
        return
    pytest.importorskip("matplotlib")
    assert f'src="/reports/{kind}.png' in page.text
    chart = marta.get(f"/reports/{kind}.png")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(b"\x89PNG")


def test_the_reports_numbers_are_the_engines_in_each_persons_scope(sales: Team) -> None:
    marta, _csrf = signed_in(sales, "marta")
    rows = list(csv.reader(io.StringIO(marta.get("/reports/refusals.csv?table=0").text)))
    expected = sales.as_("marta").reports.refusals(trend=True)["by_reason"]
    assert rows[1:] == [[r["process"], r["reason"], r["label"], r["bant"] or "", str(r["count"]), r["value"]]
                        for r in expected]
    assert rows[1][1] == "no_authority"
    people = marta.get("/reports/salespeople").text
    assert "anna" in people and "ioana" not in people  # north only
    assert marta.get("/reports/salespeople?team=south").status_code == 403
    assert marta.get("/reports/forecast?months=x").status_code == 422
    assert marta.get("/reports/nothing").status_code == 404
    anna, _csrf = signed_in(sales, "anna")
    assert anna.get("/reports/salespeople?owner=piotr").status_code == 403


#: Every page the stand-up, reviews, stalled, reports, admin and import modules add: each role gets the page, or
#: the engine's refusal (403; an analyst has no agenda, board or reports), never an error.
SALESPEOPLE, EVERYONE = ("anna", "piotr", "ioana"), PEOPLE
PAGES: dict[str, tuple[str, ...]] = {  # the page, and who is refused it
    "/daily": ("olga",), "/reviews": (*SALESPEOPLE, "olga"), "/stalled": ("olga",),
    "/stalled/rotate": (*SALESPEOPLE, "olga"), "/revisits": ("olga",), "/removals": ("olga",),
    "/reports/refusals": ("olga",), "/reports/forecast": ("olga",), "/admin/users": (),
    "/admin/tokens": EVERYONE, "/admin/processes": (), "/import": (*SALESPEOPLE, "olga"),  # only who may import
}


@pytest.mark.parametrize("name", PEOPLE)
def test_every_added_page_answers_each_role_with_the_page_or_the_engines_refusal(sales: Team, name: str) -> None:
    web, _csrf = signed_in(sales, name)
    for path, refused in PAGES.items():
        answer = web.get(path)
        assert answer.status_code == (403 if name in refused else 200), (path, answer.text[-300:])
        assert "Traceback" not in answer.text
