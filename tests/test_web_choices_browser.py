"""A multi-choice field (``type: choices``) on the web lead page, in a real browser (Playwright driving Debian's
chromium against a real ``leadflow serve``): a checkbox per option with its label in the reader's language, the
checked options saved as a list and checked again after a reload, none checked clears the field, and a forged
option refused in the person's language with nothing changed.

No shipped process has such a field (docs/process-format.md says why), so the test's floor is the shipped
processes with one added to photovoltaics: the extras a client wants with the installation.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import passwords
from engine.api import Engine
from tests.conftest import build_team, processes_with_extras
from tests.test_web_browser import ARGS, CHROMIUM, serving, sign_in
from tests.web_fixtures import with_passwords

playwright_sync = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists() and not shutil.which("chromium"),
                                 reason="no chromium at /usr/bin/chromium")]

def _floor(folder: Path) -> Callable[[str], int]:
    def build(db: str) -> int:
        """The team on the processes with extras, and anna's photovoltaics lead (its id)."""
        build_team(db, processes_with_extras(folder))
        passwords.configure(time_cost=1, memory_cost=8, parallelism=1)  # cheap hashes: the server checks them so
        eng = Engine.open(db, user="root")
        try:
            class Team:
                def as_(self, name: str) -> Any:
                    return eng.as_user(name)

            with_passwords(Team(), "anna")
            return int(eng.as_user("anna").leads.add(process="photovoltaics", name="Ewa Dodatkowa")["id"])
        finally:
            passwords.configure()
            eng.close()

    return build


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, int]]:
    """A server over the floor: its URL, its database and anna's photovoltaics lead."""
    tmp = tmp_path_factory.mktemp("choices")
    db = f"sqlite:///{tmp / 'leadflow.db'}"
    with serving(tmp, db, _floor(tmp / "processes")) as (url, lead_id):
        yield url, db, lead_id


def extras_of(db: str, lead_id: int) -> Any:
    eng = Engine.open(db, user="root")
    try:
        return eng.leads.get(lead_id)["fields"].get("extras")
    finally:
        eng.close()


def test_two_choices_are_saved_checked_again_and_a_forged_one_is_refused(site: tuple[str, str, int]) -> None:
    url, db, lead_id = site
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = chromium.new_context(base_url=url, locale="pl-PL")  # the browser asks for Polish
            context.set_default_timeout(15000)
            page = context.new_page()
            sign_in(page, "anna")
            page.goto(f"/leads/{lead_id}")
            boxes = page.locator("#f-extras input[type=checkbox]")
            assert page.text_content("#f-extras legend") == "Dodatki do instalacji"
            assert [t.strip() for t in page.locator("#f-extras label").all_text_contents()] == [
                "Magazyn energii", "Pompa ciepła", "Ładowarka do auta"]
            assert [boxes.nth(i).is_checked() for i in range(3)] == [False, False, False]
            page.check("#f-extras input[value=battery]")
            page.check("#f-extras input[value=charger]")
            page.click("#f-extras >> xpath=ancestor::form//button[@type='submit']")
            page.wait_for_load_state()
            assert page.locator("#refusal").count() == 0, page.text_content("#refusal")
            assert extras_of(db, lead_id) == ["battery", "charger"]  # a list, in the options' order
            page.goto(f"/leads/{lead_id}")  # a reload: both checked, the other not
            assert [boxes.nth(i).is_checked() for i in range(3)] == [True, False, True]

            # a value the page never offered (a forged form): refused in Polish, naming the field and its options
            page.evaluate("""() => {
                const box = document.querySelector("#f-extras input[value=heat_pump]");
                box.value = "solar_roof"; box.checked = true; }""")
            page.click("#f-extras >> xpath=ancestor::form//button[@type='submit']")
            page.wait_for_load_state()
            refusal = (page.text_content("#refusal") or "").strip()
            assert refusal == ("pole „extras” (choices) przyjmuje opcje spośród: battery, heat_pump, charger "
                               "(oddzielone przecinkami); podano 'solar_roof'"), refusal
            assert extras_of(db, lead_id) == ["battery", "charger"]  # nothing changed

            # none checked clears the field
            page.goto(f"/leads/{lead_id}")
            page.uncheck("#f-extras input[value=battery]")
            page.uncheck("#f-extras input[value=charger]")
            page.click("#f-extras >> xpath=ancestor::form//button[@type='submit']")
            page.wait_for_load_state()
            assert extras_of(db, lead_id) is None
        finally:
            chromium.close()
