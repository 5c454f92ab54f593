"""The web app's views, server side (FastAPI's test client): signing in and out, each page for each role, a lead
nobody may see (404), a deactivated user, CSRF, escaping and the security headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from cli.server.identity import SESSION_COOKIE
from cli.web import security
from engine import passwords
from tests.conftest import Team
from tests.web_fixtures import (
    XSS,
    TestClient,
    client,
    csrf_of,
    password_of,
    signed_in,
    to_send_offer,
    version_of,
    with_passwords,
)

PEOPLE = ("marta", "anna", "piotr", "radu", "ioana", "olga")


@pytest.fixture(autouse=True)
def _cheap_hashes() -> Iterator[None]:
    """Argon2id at its smallest cost (as tests/test_auth.py): the rules are the same, the suite stays fast."""
    passwords.configure(time_cost=1, memory_cost=8, parallelism=1)
    yield
    passwords.configure()


@pytest.fixture
def floor(team: Team) -> dict[str, Any]:
    """The team with passwords and three leads: anna's (with a name that is markup), piotr's, ioana's (south)."""
    with_passwords(team, *PEOPLE)
    anna, piotr, ioana = (team.as_(n) for n in ("anna", "piotr", "ioana"))
    leads = {
        "anna": anna.leads.add(process="photovoltaics", name=XSS, phone="+48 600 100 200", email="x@example.pl",
                               value="45000"),
        "piotr": piotr.leads.add(process="photovoltaics", name="Jan Nowak", value="12000"),
        "ioana": ioana.leads.add(process="photovoltaics", name="Ion Popescu"),
    }
    return {"team": team, "leads": leads}


def test_pages_need_a_session_and_send_people_to_the_login(floor: dict[str, Any]) -> None:
    web = client(floor["team"])
    for path in ("/board", "/today", f"/leads/{floor['leads']['anna']['id']}", "/board/standup", "/search?q=x"):
        answer = web.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")
    assert web.get("/").headers["location"] == "/board"


def test_login_sets_an_httponly_lax_cookie_and_logout_ends_the_session(floor: dict[str, Any]) -> None:
    team = floor["team"]
    web = client(team)
    page = web.get("/login")
    assert 'name="username"' in page.text and 'name="password"' in page.text
    answer = web.post("/login", data={"username": "anna", "password": password_of("anna"),
                                      "csrf": csrf_of(page.text), "next": "/today"})
    assert answer.status_code == 303 and answer.headers["location"] == "/today"
    cookie = answer.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=lfs_" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http on loopback
    assert len(team.admin.auth.list_sessions("anna")) == 1
    csrf = csrf_of(web.get("/board").text)
    assert web.post("/logout", data={"csrf": csrf}).headers["location"] == "/login"
    assert team.admin.auth.list_sessions("anna") == []
    assert web.get("/board").status_code == 303


def test_a_login_elsewhere_never_leads_off_the_site(floor: dict[str, Any]) -> None:
    web = client(floor["team"])
    page = web.get("/login")
    answer = web.post("/login", data={"username": "anna", "password": password_of("anna"),
                                      "csrf": csrf_of(page.text), "next": "//evil.example/x"})
    assert answer.headers["location"] == "/board"


def test_the_cookie_is_secure_over_https_and_behind_a_trusted_proxy_only(floor: dict[str, Any]) -> None:
    from cli.server import create_app

    team = floor["team"]
    for trust, headers, secure in ((False, {"X-Forwarded-Proto": "https"}, False),
                                   (True, {"X-Forwarded-Proto": "https"}, True), (False, {}, False)):
        web = TestClient(create_app(team.admin, trust_proxy=trust), follow_redirects=False)
        page = web.get("/login", headers=headers)
        answer = web.post("/login", headers=headers, data={"username": "anna", "password": password_of("anna"),
                                                           "csrf": csrf_of(page.text)})
        assert ("Secure" in answer.headers["set-cookie"]) is secure
    https = TestClient(create_app(team.admin), base_url="https://testserver", follow_redirects=False)
    page = https.get("/login")
    answer = https.post("/login", data={"username": "anna", "password": password_of("anna"),
                                        "csrf": csrf_of(page.text)})
    assert "Secure" in answer.headers["set-cookie"]


def test_a_wrong_password_and_a_deactivated_user_do_not_get_in(floor: dict[str, Any]) -> None:
    team = floor["team"]
    web = client(team)
    page = web.get("/login")
    wrong = web.post("/login", data={"username": "anna", "password": "not it at all", "csrf": csrf_of(page.text)})
    assert wrong.status_code == 401 and "wrong user name or password" in wrong.text
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
    piotr, _csrf = signed_in(team, "piotr")
    team.admin.users.set("piotr", active=False)
    assert piotr.get("/board").headers["location"].startswith("/login?next=%2Fboard&ended=1")
    again = client(team)
    answer = again.post("/login", data={"username": "piotr", "password": password_of("piotr"),
                                        "csrf": csrf_of(again.get("/login").text)})
    assert answer.status_code == 401 and "deactivated" in answer.text


def test_the_login_form_needs_its_csrf_token(floor: dict[str, Any]) -> None:
    web = client(floor["team"])
    web.get("/login")
    answer = web.post("/login", data={"username": "anna", "password": password_of("anna"), "csrf": "forged"})
    assert answer.status_code == 403 and SESSION_COOKIE not in answer.headers.get("set-cookie", "")


def test_a_one_time_password_must_be_changed_then_the_person_is_in(floor: dict[str, Any]) -> None:
    team = floor["team"]
    given = team.admin.auth.one_time_password("piotr")["password"]
    web = client(team)
    answer = web.post("/login", data={"username": "piotr", "password": given, "csrf": csrf_of(web.get("/login").text)})
    assert answer.status_code == 403 and 'name="new_password"' in answer.text and "must change" in answer.text
    form = {"username": "piotr", "old_password": given, "new_password": "piotr's brand new secret",
            "repeat_password": "piotr's brand new secret", "csrf": csrf_of(answer.text)}
    changed = web.post("/password", data=form)
    assert changed.status_code == 303 and f"{SESSION_COOKIE}=lfs_" in changed.headers["set-cookie"]
    assert web.get("/board").status_code == 200
    assert team.admin.users.list()  # still there
    assert next(u for u in team.admin.users.list() if u["name"] == "piotr")["must_change_password"] is False


def test_a_signed_in_person_changes_their_password(floor: dict[str, Any]) -> None:
    team = floor["team"]
    web, csrf = signed_in(team, "anna")
    assert 'name="old_password"' in web.get("/password").text
    mismatch = web.post("/password", data={"csrf": csrf, "old_password": password_of("anna"),
                                           "new_password": "one new password here", "repeat_password": "another"})
    assert mismatch.status_code == 422
    done = web.post("/password", data={"csrf": csrf, "old_password": password_of("anna"),
                                       "new_password": "one new password here",
                                       "repeat_password": "one new password here"})
    assert done.status_code == 303
    assert web.get("/board").status_code == 200  # the new session
    team.admin.auth.login("anna", "one new password here", address="127.0.0.1")


@pytest.mark.parametrize("name", PEOPLE)
def test_every_page_opens_for_every_role(floor: dict[str, Any], name: str) -> None:
    web, _csrf = signed_in(floor["team"], name)
    for path in ("/board", "/board/standup", "/today", "/search?q=nowak", "/password",
                 "/board?light=red", "/board?process=photovoltaics&text=jan"):
        answer = web.get(path)
        if name == "olga" and path.startswith("/board"):  # a department has no board: the engine says so
            assert answer.status_code == 403 and "has no board" in answer.text
        else:
            assert answer.status_code == 200, (path, answer.text)
        assert "Traceback" not in answer.text


def test_the_board_shows_what_the_engines_scope_gives(floor: dict[str, Any]) -> None:
    team = floor["team"]
    anna, _ = signed_in(team, "anna")
    board = anna.get("/board").text
    assert "Jan Nowak" not in board and "Ion Popescu" not in board and "&lt;img src=x" in board
    marta, _ = signed_in(team, "marta")
    board = marta.get("/board").text
    assert "Jan Nowak" in board and "Ion Popescu" not in board
    refused = anna.get("/board?owner=piotr")
    assert refused.status_code == 403 and "sees only their own leads" in refused.text


def test_cards_are_capped_per_stage_while_the_counts_stay_complete(floor: dict[str, Any]) -> None:
    team = floor["team"]
    piotr = team.as_("piotr")
    for i in range(14):
        piotr.leads.add(process="photovoltaics", name=f"Client {i:02d}")
    marta, _ = signed_in(team, "marta")
    board = marta.get("/board?process=photovoltaics").text
    assert "and 4 more" in board  # 16 of the team in register_lead, 12 cards drawn
    assert board.count('class="card card-') == 12


def test_the_counts_at_the_top_stay_complete_when_the_cards_are_capped(floor: dict[str, Any]) -> None:
    """The board draws 12 cards a stage; its totals, its lights and each stage's count and value are still those
    of every lead (the engine's board with no cap), in the page's header as in its stages."""
    team = floor["team"]
    piotr = team.as_("piotr")
    for i in range(14):
        lead = piotr.leads.add(process="photovoltaics", name=f"Client {i:02d}", value=f"{1000 + i}")
        if i % 3 == 0:
            piotr.activities.add(lead["id"], kind="call", text="ring back", next_contact="2026-03-02T23:00")
    marta, _ = signed_in(team, "marta")
    html = marta.get("/board?process=photovoltaics").text
    full = team.as_("marta").boards.board(process="photovoltaics", limit=100_000)[0]
    totals = full["totals"]
    assert totals["count"] == 16
    assert f"{totals['count']} open leads" in html
    for lamp in ("red", "yellow", "green"):
        assert f'<span class="light light-{lamp}"><span aria-hidden="true">' in html
        header = html.split('class="totals"')[1].split("</p>")[0]
        assert f"{lamp}</span> {totals[lamp]}" in header
    for stage in full["stages"]:
        if stage["count"]:
            assert f'{stage["name"]} <span class="count">{stage["count"]}</span>' in html
    assert html.count('class="card card-') == 12
    assert "and 4 more" in html


def test_someone_elses_lead_is_not_found(floor: dict[str, Any]) -> None:
    team = floor["team"]
    anna, csrf = signed_in(team, "anna")
    for lead in (floor["leads"]["piotr"], floor["leads"]["ioana"]):
        assert anna.get(f"/leads/{lead['id']}").status_code == 404
        answer = anna.post(f"/leads/{lead['id']}/tasks/record_contact/done", data={"csrf": csrf, "version": "1"})
        assert answer.status_code == 404
    assert anna.get("/leads/999999").status_code == 404
    assert team.admin.leads.get(floor["leads"]["piotr"]["id"])["tasks"][0]["state"] == "open"
    radu, _ = signed_in(team, "radu")  # south's manager
    assert radu.get(f"/leads/{floor['leads']['anna']['id']}").status_code == 404
    marta, _ = signed_in(team, "marta")
    assert marta.get(f"/leads/{floor['leads']['piotr']['id']}").status_code == 200


def test_the_lead_page_escapes_and_links_and_offers_what_the_engine_allows(floor: dict[str, Any]) -> None:
    team = floor["team"]
    lead = floor["leads"]["anna"]
    anna, _ = signed_in(team, "anna")
    page = anna.get(f"/leads/{lead['id']}").text
    assert XSS not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'href="tel:+48600100200"' in page and 'href="mailto:x@example.pl"' in page
    assert "Done: Record the contact" in page or "/tasks/record_contact/done" in page
    assert f'/leads/{lead["id"]}/close' in page and f'/leads/{lead["id"]}/assign' not in page
    marta, _ = signed_in(team, "marta")
    page = marta.get(f"/leads/{lead['id']}").text
    assert f'/leads/{lead["id"]}/assign' in page and '<option value="piotr"' in page
    olga, _ = signed_in(team, "olga")  # an analyst: reads the team's leads, does none of the salesperson's tasks
    page = olga.get(f"/leads/{lead['id']}").text
    assert "/tasks/record_contact/done" not in page and "/advance" not in page and "/close" not in page


def test_the_lead_page_says_when_the_stage_is_overdue(floor: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """As ``lead show`` and the task list do: a passed stage deadline of an open lead is marked on its page."""
    lead = floor["leads"]["anna"]
    anna, _ = signed_in(floor["team"], "anna")
    assert "overdue since" not in anna.get(f"/leads/{lead['id']}").text
    monkeypatch.setenv("LEADFLOW_NOW", "2026-04-30T09:00:00")  # the first stage's business days long gone
    anna, _ = signed_in(floor["team"], "anna")  # the first session ended with the weeks of inactivity
    page = anna.get(f"/leads/{lead['id']}").text
    assert '<span class="flag">overdue since ' in page


def test_every_change_needs_the_csrf_token_and_changes_nothing_without_it(floor: dict[str, Any]) -> None:
    team = floor["team"]
    lead = floor["leads"]["anna"]
    anna, _csrf = signed_in(team, "anna")
    _marta, someone_elses = signed_in(team, "marta")  # a valid token, of another session
    before = team.admin.leads.get(lead["id"])
    forms = [(f"/leads/{lead['id']}/tasks/record_contact/done", {}), (f"/leads/{lead['id']}/advance", {}),
             (f"/leads/{lead['id']}/close", {"reason": "no_budget"}), (f"/leads/{lead['id']}/fields", {"value": "1"}),
             (f"/leads/{lead['id']}/win", {}), (f"/leads/{lead['id']}/reopen", {}),
             (f"/leads/{lead['id']}/assign", {"to": "piotr"}), ("/logout", {})]
    for path, data in forms:
        for token in (None, "wrong", someone_elses, csrf_of(client(team).get("/login").text)):
            sent = {**data, "version": str(before["version"]), **({"csrf": token} if token else {})}
            answer = anna.post(path, data=sent)
            assert answer.status_code == 403, (path, token, answer.status_code)
    assert team.admin.leads.get(lead["id"]) == before
    assert anna.get("/board").status_code == 200  # the logout was refused too


def test_the_api_takes_a_session_cookie_only_with_its_csrf_header(floor: dict[str, Any]) -> None:
    team = floor["team"]
    lead = floor["leads"]["anna"]
    anna, csrf = signed_in(team, "anna")
    assert anna.get(f"/v1/leads/{lead['id']}").status_code == 200
    path = f"/v1/leads/{lead['id']}/tasks/record_contact/done"
    refused = anna.post(path, json={})
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert anna.post(path, json={}, headers={"X-CSRF-Token": csrf}).status_code == 200


def test_a_stale_form_is_refused_and_the_page_shows_the_lead_as_it_is(floor: dict[str, Any]) -> None:
    team = floor["team"]
    lead = floor["leads"]["anna"]
    anna, csrf = signed_in(team, "anna")
    page = anna.get(f"/leads/{lead['id']}").text
    version = version_of(page)
    assert anna.post(f"/leads/{lead['id']}/fields", data={"csrf": csrf, "version": str(version),
                                                          "value": "50000"}).status_code == 303
    stale = anna.post(f"/leads/{lead['id']}/fields", data={"csrf": csrf, "version": str(version), "value": "1"})
    assert stale.status_code == 409 and 'id="stale"' in stale.text and 'value="50000.00"' in stale.text
    assert team.admin.leads.get(lead["id"])["value"] == "50000.00"
    missing = anna.post(f"/leads/{lead['id']}/fields", data={"csrf": csrf, "value": "1"})
    assert missing.status_code == 422 and team.admin.leads.get(lead["id"])["value"] == "50000.00"


def test_an_advance_is_refused_with_the_engines_message_then_done(floor: dict[str, Any]) -> None:
    team = floor["team"]
    lead = floor["leads"]["anna"]
    anna, csrf = signed_in(team, "anna")
    version = version_of(anna.get(f"/leads/{lead['id']}").text)
    refused = anna.post(f"/leads/{lead['id']}/advance", data={"csrf": csrf, "version": str(version)})
    assert refused.status_code == 422
    assert f"can&#39;t leave stage &#39;register_lead&#39; of lead {lead['id']}: mandatory tasks open: " \
           "record_contact" in refused.text
    done = anna.post(f"/leads/{lead['id']}/tasks/record_contact/done", data={"csrf": csrf, "version": str(version)})
    assert done.status_code == 303 and done.headers["location"] == f"/leads/{lead['id']}?done=task"
    version = version_of(anna.get(f"/leads/{lead['id']}").text)
    assert anna.post(f"/leads/{lead['id']}/advance", data={"csrf": csrf, "version": str(version)}).status_code == 303
    assert team.admin.leads.get(lead["id"])["stage"] == "first_contact"


def test_close_reopen_and_reassign(floor: dict[str, Any]) -> None:
    team = floor["team"]
    lead = floor["leads"]["anna"]
    anna, csrf = signed_in(team, "anna")
    version = version_of(anna.get(f"/leads/{lead['id']}").text)
    bad = anna.post(f"/leads/{lead['id']}/close", data={"csrf": csrf, "version": str(version), "reason": "whim"})
    assert bad.status_code == 422 and "is not a closure reason" in bad.text
    assert anna.post(f"/leads/{lead['id']}/close", data={"csrf": csrf, "version": str(version),
                                                         "reason": "no_budget", "note": "later"}).status_code == 303
    assert team.admin.leads.get(lead["id"])["status"] == "lost"
    marta, mcsrf = signed_in(team, "marta")
    page = marta.get(f"/leads/{lead['id']}").text
    assert f"/leads/{lead['id']}/reopen" in page
    assert marta.post(f"/leads/{lead['id']}/reopen", data={"csrf": mcsrf, "version": str(version_of(page)),
                                                           "stage": "register_lead"}).status_code == 303
    page = marta.get(f"/leads/{lead['id']}").text
    assert marta.post(f"/leads/{lead['id']}/assign", data={"csrf": mcsrf, "version": str(version_of(page)),
                                                           "to": "piotr"}).status_code == 303
    assert team.admin.leads.get(lead["id"])["owner"] == "piotr"
    assert anna.get(f"/leads/{lead['id']}").status_code == 404  # not hers any more


def test_fields_are_a_form_typed_by_the_process(floor: dict[str, Any]) -> None:
    team = floor["team"]
    lead = floor["leads"]["anna"]
    anna, csrf = signed_in(team, "anna")
    page = anna.get(f"/leads/{lead['id']}").text
    assert '<select id="f-roof_type" name="f_roof_type"' in page
    assert 'name="f_install_by" type="date"' in page
    assert 'name="f_budget" type="number" step="0.01"' in page and "Budget" in page
    answer = anna.post(f"/leads/{lead['id']}/fields", data={
        "csrf": csrf, "version": str(version_of(page)), "f_roof_type": "pitched", "f_wants_insurance": "true",
        "f_install_by": "2026-06-01", "f_roof_area_m2": "38", "f_budget": "", "value": "45000.00"})
    assert answer.status_code == 303, answer.text
    fields = team.admin.leads.get(lead["id"])["fields"]
    assert (fields["roof_type"], fields["wants_insurance"], fields["install_by"]) == ("pitched", True, "2026-06-01")
    wrong = anna.post(f"/leads/{lead['id']}/fields", data={
        "csrf": csrf, "version": str(version_of(anna.get(f"/leads/{lead['id']}").text)), "f_install_by": "soon"})
    assert wrong.status_code == 422 and "YYYY-MM-DD" in wrong.text


def test_my_day_lists_the_persons_tasks_and_a_departments_role(floor: dict[str, Any]) -> None:
    team = floor["team"]
    to_send_offer(team.as_("anna"), floor["leads"]["anna"]["id"])
    anna, _ = signed_in(team, "anna")
    day = anna.get("/today").text
    assert "Send the offer to the client" in day and "Price the installation" not in day
    olga, _ = signed_in(team, "olga")
    day = olga.get("/today").text
    assert "Price the installation" in day and "Acknowledge the pricing request" in day
    assert "Check the technical feasibility" not in day and "Send the offer to the client" not in day


def test_search_finds_leads_without_diacritics_in_the_persons_scope(floor: dict[str, Any]) -> None:
    team = floor["team"]
    team.as_("anna").leads.add(process="photovoltaics", name="Łukasz Żółć")
    anna, _ = signed_in(team, "anna")
    assert "Łukasz Żółć" in anna.get("/search?q=lukasz zolc").text
    assert "Jan Nowak" not in anna.get("/search?q=nowak").text
    marta, _ = signed_in(team, "marta")
    assert "Jan Nowak" in marta.get("/search?q=NOWAK").text


def test_every_page_has_a_strict_content_security_policy(floor: dict[str, Any]) -> None:
    team = floor["team"]
    anna, _ = signed_in(team, "anna")
    for path in ("/login", "/board", f"/leads/{floor['leads']['anna']['id']}", "/today", "/leads/424242",
                 "/assets/app.css"):
        answer = anna.get(path)
        assert answer.headers["content-security-policy"] == security.CSP, path
        assert "'unsafe-inline'" not in security.CSP and "script-src 'self'" in security.CSP
        assert "frame-ancestors 'none'" in security.CSP
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
    page = anna.get("/board").text
    assert "<script>" not in page and " on" + "click=" not in page and "style=" not in page
    assert '<script src="/assets/htmx.min.js" defer></script>' in page
    assert anna.get("/assets/htmx.min.js").status_code == 200


def test_every_answer_says_how_long_the_server_took(floor: dict[str, Any]) -> None:
    """``Server-Timing: app;dur=<ms>``: a browser's developer tools show it; benchmarks/web_pages.py reads it."""
    team = floor["team"]
    anna, _ = signed_in(team, "anna")
    for path in ("/login", "/board", f"/leads/{floor['leads']['anna']['id']}", "/leads/424242", "/assets/app.css",
                 "/v1/board"):
        timing = anna.get(path).headers["server-timing"]
        assert re.fullmatch(r"app;dur=\d+\.\d", timing), (path, timing)
        assert 0 < float(timing.split("=")[1]) < 60_000


def test_a_large_form_is_refused(floor: dict[str, Any]) -> None:
    anna, csrf = signed_in(floor["team"], "anna")
    answer = anna.post(f"/leads/{floor['leads']['anna']['id']}/fields",
                       data={"csrf": csrf, "version": "1", "f_need": "x" * (security.MAX_FORM + 1)})
    assert answer.status_code == 413


def test_texts_go_through_one_translation_hook(floor: dict[str, Any]) -> None:
    import gettext

    from cli.web import text

    class Marked(gettext.NullTranslations):
        def gettext(self, message: str) -> str:
            return f"»{message}"

    anna, _ = signed_in(floor["team"], "anna")
    text.install(lambda _code: Marked())
    try:
        assert "»Opportunities board" in anna.get("/board").text
        assert text._("Board") == "»Board"
    finally:
        text.install(None)
    assert "Opportunities board" in anna.get("/board").text
