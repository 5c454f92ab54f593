"""Helpers of the web app's tests: people with passwords, leads in known stages, signing in with a test client."""

from __future__ import annotations

import re
import warnings
from typing import Any

from cli.server import create_app

with warnings.catch_warnings():  # this starlette asks for httpx2 instead of httpx, which the tests use too
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient

XSS = "<img src=x onerror=alert(1)>"
_CSRF = re.compile(r'name="csrf" value="([^"]*)"')
_VERSION = re.compile(r'name="version" value="(\d+)"')


def password_of(name: str) -> str:
    return f"{name} has a long password 42"


def with_passwords(team: Any, *names: str) -> None:
    """Each person sets their own password (so none must be changed at the next login)."""
    for name in names:
        team.as_(name).auth.set_password(name, password_of(name))


def to_send_offer(eng: Any, lead_id: int) -> None:
    """A photovoltaics lead through its first three stages (as its owner ``eng``): in send_offer, where the
    technician's and the analyst's tasks are."""
    eng.leads.complete_task(lead_id, "record_contact")
    eng.leads.advance(lead_id)
    for task in ("call_client", "book_meeting"):
        eng.leads.complete_task(lead_id, task)
    eng.leads.advance(lead_id)
    eng.leads.set_fields(lead_id, {"roof_type": "pitched", "roof_area_m2": "38", "financing": "leasing"})
    for task in ("meeting_notes", "consumption", "roof_photos", "bant", "next_contact"):
        eng.leads.complete_task(lead_id, task)
    eng.leads.advance(lead_id)


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def version_of(html: str) -> int:
    found = _VERSION.search(html)
    assert found, "the page has no version"
    return int(found.group(1))


def client(team: Any) -> TestClient:
    return TestClient(create_app(team.admin), follow_redirects=False)


def signed_in(team: Any, name: str) -> tuple[TestClient, str]:
    """A test client with ``name``'s session, and the session's CSRF token."""
    web = client(team)
    page = web.get("/login")
    answer = web.post("/login", data={"username": name, "password": password_of(name), "csrf": csrf_of(page.text)})
    assert answer.status_code == 303, answer.text
    day = web.get("/today")
    assert day.status_code == 200, day.text
    return web, csrf_of(day.text)


def import_ended(browser: TestClient, started: Any, *, timeout: float = 60) -> Any:
    """The page of the import job that ``started`` (the confirm's answer, a redirect to the job) began, once the
    job ended: its report or why it failed."""
    import time

    assert started.status_code == 303, started.text
    deadline = time.monotonic() + timeout
    while True:
        page = browser.get(started.headers["location"])
        if 'id="progress"' not in page.text or time.monotonic() > deadline:
            return page
        time.sleep(0.05)
