"""The import's progress in a real browser (Debian's chromium through Playwright): the confirm lands on the job's
page, which shows the rows read while the import runs and then, by itself, the report: with JavaScript (htmx
fetching ``#job`` again) and without (the page reloading itself). The server runs in this process, so the test
holds the import at its progress reports (tests/test_import_jobs.py's ``held``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Team
from tests.server_fixtures import serving
from tests.test_import_jobs import CSV, PV, held  # noqa: F401  (the fixture holding the import's progress)
from tests.test_web import _cheap_hashes  # noqa: F401  (the autouse fixture: cheap password hashes)
from tests.test_web_browser import ARGS, CHROMIUM
from tests.web_fixtures import password_of, with_passwords

playwright_sync = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists() and not shutil.which("chromium"),
                                 reason="no chromium at /usr/bin/chromium")]


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _import_page(browser: Any, url: str, name: str, *, javascript: bool = True) -> Any:
    """``name`` signed in on the import page, its process chosen."""
    context = browser.new_context(base_url=url, java_script_enabled=javascript)
    context.set_default_timeout(30000)
    page = context.new_page()
    page.goto("/login")
    page.fill("#username", name)
    page.fill("#password", password_of(name))
    page.click("button[type=submit]")
    page.goto("/import")
    page.select_option("select[name=process]", PV)
    return page


def _checked(browser: Any, url: str, *, javascript: bool, text: str) -> Any:
    """marta signed in, the CSV's text pasted and checked: the page with the dry run's report."""
    page = _import_page(browser, url, "marta", javascript=javascript)
    page.fill("#csv-text", text)
    page.click("form.check button[type=submit]")
    assert "Checked: nothing was imported yet" in page.text_content(".import-report h2")
    return page


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-javascript"])
def test_the_import_page_shows_the_progress_then_the_report(
        team: Team, held: Any, browser: Any, tmp_path: Path, javascript: bool) -> None:  # noqa: F811  (the fixture)
    reported, go = held
    with_passwords(team, "marta")
    with serving(team.admin) as served:
        page = _checked(browser, served.url, javascript=javascript, text=CSV.decode())
        page.click("button:has-text('Import these leads')")
        assert reported.get(timeout=30) == 3  # the import waits at its first progress report
        job_url = page.url
        assert "/import/jobs/" in job_url
        page.wait_for_selector("text=3 of 11 rows read: 3 accepted, 0 rejected")
        assert page.get_attribute("progress", "value") == "27"
        page.screenshot(path=str(tmp_path / f"import-progress-{'js' if javascript else 'nojs'}.png"), full_page=True)
        for _ in range(10):
            go.release()
        page.wait_for_selector(".import-report h2:has-text('Imported')")
        assert page.url == job_url
        assert "10 leads" in page.text_content(".import-report") and "line 6:" in page.text_content(".rejects")
        assert page.query_selector("progress") is None
        page.screenshot(path=str(tmp_path / f"import-report-{'js' if javascript else 'nojs'}.png"), full_page=True)
        page.context.close()


def test_an_admin_imports_another_crms_deals_with_their_history_in_the_browser(team: Team, browser: Any) -> None:
    """The history box in a real browser: root ticks it, pastes docs/examples/history.csv, maps the old reason,
    checks (the history's counts shown), imports as a job, and each deal stands as the file says."""
    history = (Path(__file__).resolve().parent.parent / "docs" / "examples" / "history.csv").read_text(encoding="utf-8")
    with_passwords(team, "root", "marta")
    with serving(team.admin) as served:
        managers = _import_page(browser, served.url, "marta")  # a manager imports leads, not history
        assert managers.query_selector("form.check input[name=history]") is None
        managers.context.close()
        page = _import_page(browser, served.url, "root")
        page.check("form.check input[name=history]")
        page.fill("#map-reason", "Too expensive=price")
        page.fill("#csv-text", history)
        page.click("form.check button[type=submit]")
        assert "Checked: nothing was imported yet" in page.text_content(".import-report h2")
        assert "2 open, 1 won, 1 lost" in page.text_content(".import-report p.history")
        assert page.is_checked("form.check input[name=history]")  # the form keeps what was asked, for a second check
        page.click("button:has-text('Import these deals with their history')")
        page.wait_for_selector(".import-report h2:has-text('Imported')")
        assert "2 open, 1 won, 1 lost" in page.text_content(".import-report p.history")
        page.context.close()
    lost = team.admin.leads.get(team.admin.leads.find_external("OPP-102"))
    assert (lost["status"], lost["stage"], lost["close_reason"], lost["owner"]) == ("lost", "send_offer", "price",
                                                                                     "piotr")
