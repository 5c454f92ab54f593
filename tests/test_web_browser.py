"""The web app in a real browser: Playwright for Python driving Debian's chromium against a real ``leadflow serve``
on a loopback port. The journeys of issue 16, few and fast; screenshots of the board, a lead page and my day are
written under the test's temporary folder for a person to look at.

Playwright's own browser download is never used (``executable_path``); without chromium or playwright the module
is skipped with the reason.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from engine import clock, passwords
from engine.api import Engine
from tests.conftest import TEST_NOW, build_team
from tests.web_fixtures import password_of, to_send_offer, with_passwords

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists() and not shutil.which("chromium"),
                                 reason="no chromium at /usr/bin/chromium")]


@dataclass
class Site:
    url: str
    db: str
    leads: dict[str, int]

    def lead(self, key: str) -> dict[str, Any]:
        eng = Engine.open(self.db, user="root")
        try:
            return dict(eng.leads.get(self.leads[key]))
        finally:
            eng.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until the server accepts connections on ``port`` (at most 30 s; its log if it stopped)."""
    import socket

    for _attempt in range(300):
        if proc.poll() is not None:
            pytest.fail(f"leadflow serve stopped: {log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail("leadflow serve did not start within 30 s")


def _floor(db: str) -> dict[str, int]:
    """The team, with passwords, and the leads the journeys work on."""
    build_team(db)
    passwords.configure(time_cost=1, memory_cost=8, parallelism=1)  # cheap hashes: the server checks them so too
    now = clock.parse_datetime(TEST_NOW)
    eng = Engine.open(db, user="root")
    try:
        class Team:
            def as_(self, name: str) -> Any:
                return eng.as_user(name)

        with_passwords(Team(), "anna", "marta", "olga", "piotr")
        anna, piotr = eng.as_user("anna"), eng.as_user("piotr")
        with clock.frozen(now - dt.timedelta(days=12)):  # its first deadlines passed long ago: red
            late = piotr.leads.add(process="photovoltaics", name="Zofia Spóźniona", value="30000")["id"]
        with clock.frozen(now - dt.timedelta(hours=1)):
            leads = {
                "zolc": anna.leads.add(process="photovoltaics", name="Łukasz Żółć", phone="+48 600 100 200",
                                       email="lukasz@example.pl", value="45000")["id"],
                "other": anna.leads.add(process="photovoltaics", name="Jan Kowalski", value="9000")["id"],
                "shared": anna.leads.add(process="photovoltaics", name="Ewa Wspólna", value="1000")["id"],
                "offer": anna.leads.add(process="photovoltaics", name="Adam Oferta", value="60000")["id"],
                "late": late,
                "refused": anna.leads.add(process="photovoltaics", name="Marek Odmowa", value="20000")["id"],
            }
            anna.leads.close(leads["refused"], "competitor", "SunCo was cheaper")  # waits for marta's review
            for i in range(3):
                piotr.leads.add(process="mortgage", name=f"Kredyt {i}", value="400000")
            to_send_offer(anna, leads["offer"])
        return leads
    finally:
        passwords.configure()
        eng.close()


@contextmanager
def serving(tmp: Path, db: str, floor: Callable[[str], T]) -> Iterator[tuple[str, T]]:
    """``floor(db)`` built in the tests' environment, then ``leadflow serve`` over ``db`` until the block ends: its
    URL, and what ``floor`` returned."""
    saved = {k: os.environ.get(k) for k in ("LEADFLOW_NOW", "LEADFLOW_TZ", "LEADFLOW_TEST_DATABASE")}
    # a module's fixture runs before the test's environment: it makes its test database itself
    os.environ.update({"LEADFLOW_NOW": TEST_NOW, "LEADFLOW_TZ": "Europe/Warsaw", "LEADFLOW_TEST_DATABASE": "1"})
    try:
        built = floor(db)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    env = {**os.environ, "LEADFLOW_NOW": TEST_NOW, "LEADFLOW_TZ": "Europe/Warsaw", "PYTHONPATH": str(ROOT)}
    env.pop("LEADFLOW_DB", None)
    port = _free_port()
    log = tmp / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "--db", db, "serve", "--port", str(port),
                                 "--test-clock"], cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT)
    _wait_until_listening(port, proc, log)
    try:
        yield f"http://127.0.0.1:{port}", built
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("web")
    db = f"sqlite:///{tmp / 'leadflow.db'}"
    with serving(tmp, db, _floor) as (url, leads):
        yield Site(url, db, leads)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any, site: Site) -> Iterator[Any]:
    contexts: list[Any] = []

    def make(width: int = 1366, height: int = 900) -> Any:
        context = browser.new_context(viewport={"width": width, "height": height}, base_url=site.url)
        context.set_default_timeout(15000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def sign_in(page: Any, name: str) -> None:
    page.goto("/login")
    page.fill("#username", name)
    page.fill("#password", password_of(name))
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url, page.content()


def test_a_salesperson_finds_works_advances_and_closes(new_page: Any, site: Site, tmp_path: Path) -> None:
    page = new_page()
    sign_in(page, "anna")
    page.fill("#q", "zolc")  # no diacritics
    page.press("#q", "Enter")
    page.click("text=Łukasz Żółć")
    lead_id = site.leads["zolc"]
    assert page.url.endswith(f"/leads/{lead_id}")
    assert page.get_attribute("a[href^='tel:']", "href") == "tel:+48600100200"
    page.click("button:has-text('Advance')")  # the mandatory task is still open
    refusal = page.text_content("#refusal")
    cli = subprocess.run([sys.executable, "-m", "cli.main", "--db", site.db, "--user", "anna", "lead", "advance",
                          str(lead_id)], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "LEADFLOW_NOW": TEST_NOW}, check=False)
    assert cli.returncode == 1
    assert refusal and refusal.strip() in cli.stderr, (refusal, cli.stderr)
    page.click("button:has-text('Done: Record the contact')")
    assert "Task done." in page.text_content("main")
    page.click("button:has-text('Advance')")
    assert "Advanced." in page.text_content("main")
    assert site.lead("zolc")["stage"] == "first_contact"
    page.screenshot(path=str(tmp_path / "lead.png"), full_page=True)

    page.goto(f"/leads/{site.leads['other']}")
    page.select_option("#reason", "no_budget")
    page.fill("#close-note", "next year")
    page.click("button:has-text('Close the lead')")
    assert "Closed." in page.text_content("main")
    closed = site.lead("other")
    assert (closed["status"], closed["close_reason"]) == ("lost", "no_budget")
    page.goto("/today")
    page.screenshot(path=str(tmp_path / "today.png"), full_page=True)
    assert (tmp_path / "lead.png").stat().st_size > 0 and (tmp_path / "today.png").stat().st_size > 0


def test_a_manager_filters_the_board_to_red_and_reassigns_a_card(new_page: Any, site: Site, tmp_path: Path) -> None:
    page = new_page()
    sign_in(page, "marta")
    page.goto("/board?process=photovoltaics")
    page.screenshot(path=str(tmp_path / "board.png"), full_page=True)
    page.select_option("select[name=light]", "red")
    page.click("button:has-text('Filter')")
    assert "light=red" in page.url
    cards = page.locator(".card a.client")
    assert cards.all_text_contents() == ["Zofia Spóźniona"]
    assert "Red:" in page.text_content(".card .why")
    cards.first.click()
    assert page.url.endswith(f"/leads/{site.leads['late']}")
    page.select_option("#assign-to", "anna")
    page.click("button:has-text('Reassign')")
    assert "Reassigned." in page.text_content("main")
    assert site.lead("late")["owner"] == "anna"
    page.goto("/board/standup")
    assert page.locator(".person h2").count() >= 1


def test_an_analyst_sees_only_the_tasks_of_their_role(new_page: Any, site: Site) -> None:
    page = new_page()
    sign_in(page, "olga")
    page.goto("/today")
    day = page.text_content("main") or ""
    assert "Price the installation" in day and "Adam Oferta" in day
    assert "Send the offer to the client" not in day and "Check the technical feasibility" not in day


def test_two_browsers_edit_one_lead_and_the_second_is_told_it_is_stale(new_page: Any, site: Site) -> None:
    first, second = new_page(), new_page()
    for page in (first, second):
        sign_in(page, "anna")
        page.goto(f"/leads/{site.leads['shared']}")
    first.fill("#a-value", "2000")
    first.click("button:has-text('Save fields')")
    assert "Saved." in first.text_content("main")
    second.fill("#a-value", "3000")
    second.click("button:has-text('Save fields')")
    assert second.is_visible("#stale")
    assert second.input_value("#a-value") == "2000.00"  # the lead as it is now
    assert site.lead("shared")["value"] == "2000.00"


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1366, 768)])
def test_every_stage_of_the_board_is_visible_without_scrolling_sideways(new_page: Any, site: Site, width: int,
                                                                        height: int, tmp_path: Path) -> None:
    page = new_page(width, height)
    sign_in(page, "marta")
    page.goto("/board?process=mortgage")
    stages = page.locator("li.stage")
    assert stages.count() == 8
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for i in range(stages.count()):
        box = stages.nth(i).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (i, box)
    page.screenshot(path=str(tmp_path / f"board-{width}.png"), full_page=True)
    assert re.search(r"Kredyt \d", page.text_content("main") or "")


def test_the_standup_screen_refreshes_itself_without_breaking_the_policy(new_page: Any, site: Site) -> None:
    page = new_page(1920, 1080)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if m.type == "error" else None)
    page.clock.install()
    sign_in(page, "marta")
    page.goto("/board/standup?process=photovoltaics")
    assert page.evaluate("typeof htmx") == "object"
    assert "Nowy Klient" not in (page.text_content("#board") or "")
    eng = Engine.open(site.db, user="piotr")
    try:
        with clock.frozen(clock.parse_datetime(TEST_NOW)):
            eng.leads.add(process="photovoltaics", name="Nowy Klient")
    finally:
        eng.close()
    with page.expect_response(lambda r: "/board/standup" in r.url):
        page.clock.run_for(21_000)  # the screen polls every 20 s
    page.wait_for_function("document.querySelector('#board').textContent.includes('Nowy Klient')")
    assert refused == []  # no Content-Security-Policy violation, no script error


def test_a_manager_returns_a_refusal_to_the_funnel_from_the_review_page(new_page: Any, site: Site,
                                                                       tmp_path: Path) -> None:
    page = new_page()
    sign_in(page, "marta")
    page.click("nav >> text=Reviews")
    review = page.locator("section.review", has_text="Marek Odmowa")
    assert "SunCo was cheaper" in (review.text_content() or "")
    page.screenshot(path=str(tmp_path / "reviews.png"), full_page=True)
    review.locator("input[name=to]").fill("piotr")
    review.locator("form.return input[name=note]").fill("a leasing offer")
    review.locator("button:has-text('Return to the funnel')").click()
    assert "Returned to the funnel." in (page.text_content("main") or "")
    assert page.locator("section.review", has_text="Marek Odmowa").count() == 0
    lead = site.lead("refused")
    assert (lead["status"], lead["owner"]) == ("open", "piotr")


def test_a_salesperson_chooses_polish_and_reads_the_board_in_it(new_page: Any, site: Site, tmp_path: Path) -> None:
    """piotr's browser asks for English; he chooses Polski on his settings page, and every page then speaks Polish
    with Polish money, and his menu has only what the engine lets a salesperson open."""
    page = new_page()
    page.context.set_extra_http_headers({"Accept-Language": "en-GB,en;q=0.9"})
    sign_in(page, "piotr")
    assert page.get_attribute("html", "lang") == "en"
    page.click("header a[href='/settings']")
    page.select_option("#language", "pl")
    page.click("main button[type=submit]")
    assert "Zapisano." in page.text_content("main")
    assert page.get_attribute("html", "lang") == "pl"
    page.click("nav li a[href='/board']")
    assert page.text_content("nav li a[href='/board']") == "Tablica"
    assert page.get_attribute("#q", "placeholder") == "Szukaj leadów i klientów"
    board = page.text_content("main").replace("\xa0", " ").replace("\u202f", " ")
    assert re.search(r"\d{1,3}(?: \d{3})+,00 zł", board), board  # e.g. 400 000,00 zł: his mortgages
    menu = page.eval_on_selector_all("nav li a", "links => links.map(a => a.getAttribute('href'))")
    assert "/reviews" not in menu and "/import" not in menu and "/today" in menu
    page.screenshot(path=str(tmp_path / "board-pl.png"), full_page=True)
    page.goto("/settings")
    page.select_option("#language", "")  # back to the browser's, for the other journeys
    page.click("main button[type=submit]")
    assert page.get_attribute("html", "lang") == "en"


def test_a_manager_uploads_a_csv_checks_it_and_imports_it(new_page: Any, site: Site, tmp_path: Path) -> None:
    csv = tmp_path / "targi.csv"
    csv.write_text("name;email;value;roof_type\nOla Targowa;ola.targ@example.pl;15000;flat\n"
                   "Bez Wartości;;x;flat\nEdek Targowy;edek.targ@example.pl;25000;pitched\n", encoding="utf-8")
    page = new_page()
    sign_in(page, "marta")
    page.click("nav li a[href='/import']")
    page.select_option("select[name=process]", "photovoltaics")
    page.fill("input[name=owner]", "anna")
    page.set_input_files("#csv-file", str(csv))
    page.click("form.check button[type=submit]")
    report = page.text_content(".import-report")
    assert report and "Checked: nothing was imported yet" in report and "targi.csv" in report
    assert "line 3:" in report
    page.click("button:has-text('Import these leads')")
    assert "Imported" in page.text_content(".import-report h2")
    eng = Engine.open(site.db, user="root")
    try:
        found = {hit["name"] for hit in eng.search.find("Targow")}
    finally:
        eng.close()
    assert {"Ola Targowa", "Edek Targowy"} <= found
