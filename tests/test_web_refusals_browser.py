"""Refusals in a real browser (chromium against ``leadflow serve``, tests/test_web_browser.py's site): a page or a
form someone may not use, even sent by hand from a signed-in page with its valid CSRF token, or a form whose token
was taken out, is refused with its words, and the database stays as it was."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import snapshot
from tests.test_web_browser import Site, browser, new_page, sign_in, site  # noqa: F401  (the module's fixtures)

pytestmark = pytest.mark.browser

#: A form posted from the signed-in page itself, as a script on it could: its status and its text.
POST_FORM = """async ([path, fields]) => {
    const csrf = document.querySelector("input[name=csrf]").value;
    const body = new URLSearchParams({csrf, ...fields});
    const answer = await fetch(path, {method: "POST", body, redirect: "manual"});
    return [answer.status, await answer.text()];
}"""


def _data(site: Site) -> dict[str, list[tuple[Any, ...]]]:  # noqa: F811
    """The database without the sessions, whose last_seen_at every page of a signed-in person writes."""
    return {k: v for k, v in snapshot(site.db).items() if k not in ("sessions", "rate_limits")}


def test_a_colleagues_lead_is_not_found_and_its_forms_change_nothing(new_page: Any, site: Site) -> None:  # noqa: F811
    page = new_page()
    sign_in(page, "piotr")
    lead = site.leads["zolc"]  # anna's
    before = _data(site)
    answer = page.goto(f"/leads/{lead}")
    assert answer.status == 404 and "does not exist" in page.text_content("main")
    page.goto("/today")
    for path, fields in ((f"/leads/{lead}/tasks/record_contact/done", {"version": "1"}),
                         (f"/leads/{lead}/fields", {"version": "1", "value": "1000"})):
        status, text = page.evaluate(POST_FORM, [path, fields])
        assert status == 404 and "does not exist" in text, (path, status)
    assert _data(site) == before


def test_a_salesperson_gets_no_import_form_and_a_hand_made_one_starts_no_job(
        new_page: Any, site: Site) -> None:  # noqa: F811
    page = new_page()
    sign_in(page, "anna")
    before = _data(site)
    answer = page.goto("/import")
    assert answer.status == 403 and "You may not import leads" in page.text_content("main")
    for path in ("/import/check", "/import"):
        status, text = page.evaluate(POST_FORM, [path, {"process": "photovoltaics",
                                                        "text": "name,email\nNowy Klient,nowy@example.pl\n"}])
        assert status == 403 and "may not import leads" in text, (path, status)
    assert _data(site) == before and not before["import_jobs"]


def test_a_settings_form_without_its_token_is_refused(new_page: Any, site: Site) -> None:  # noqa: F811
    page = new_page()
    sign_in(page, "olga")
    page.goto("/settings")
    before = _data(site)
    page.evaluate("document.querySelector('form[action=\"/settings\"] input[name=csrf]').remove()")
    page.select_option("select[name=language]", "pl")
    with page.expect_navigation():
        page.click("form[action='/settings'] button[type=submit]")
    assert "security token is missing or wrong" in page.text_content("main")
    assert _data(site) == before
