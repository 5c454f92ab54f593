"""The team server's API (cli/server/) on a real uvicorn on loopback, on SQLite and PostgreSQL: every operation
family answers the JSON the engine returns (the CLI's --json), refusals are problems with the status of their
kind and change nothing, identity comes only from credentials, and If-Match loses no update."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import clock
from tests.conftest import PROCESSES_DIR, TEST_NOW, Team, snapshot
from tests.server_fixtures import Served, serving

PV = "photovoltaics"


@pytest.fixture
def served(team: Team) -> Iterator[Served]:
    with serving(team.admin) as server:
        yield server


def _without_client_leads(shown: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in shown.items() if k != "client_leads"}


def add(served: Served, user: str = "anna", **values: Any) -> dict[str, Any]:
    answer = served.call(user, "POST", "/v1/leads", json={"process": PV, "name": "Jan Kowalski", **values})
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_every_operation_family_answers_the_engines_json(team: Team, served: Served) -> None:
    anna, marta = team.as_("anna"), team.as_("marta")
    lead = add(served, phone="+48 600 100 200", value="45000")
    lead_id = lead["id"]
    assert lead == _without_client_leads(anna.leads.get(lead_id))
    shown = served.call("anna", "GET", f"/v1/leads/{lead_id}")
    assert shown.json() == anna.leads.get(lead_id)
    assert shown.headers["etag"] == f'"{shown.json()["version"]}"' == '"1"'
    done = served.call("anna", "POST", f"/v1/leads/{lead_id}/tasks/record_contact/done", json={"note": "called"})
    assert done.status_code == 200, done.text
    advanced = served.call("anna", "POST", f"/v1/leads/{lead_id}/advance", json={})
    assert advanced.json() == _without_client_leads(anna.leads.get(lead_id))
    assert advanced.json()["version"] == 3
    changed = served.call("anna", "PATCH", f"/v1/leads/{lead_id}", json={"values": {"roof_type": "flat"}})
    assert changed.json()["fields"]["roof_type"] == "flat"
    reads: list[tuple[str, str, dict[str, Any], Any]] = [
        ("anna", f"/v1/leads/{lead_id}/history", {}, anna.leads.history(lead_id)),
        ("anna", "/v1/leads", {"process": PV}, anna.leads.list(process=PV)),
        ("anna", "/v1/tasks", {}, anna.tasks.list()),
        ("anna", f"/v1/clients/{lead['client_id']}", {}, anna.clients.get(lead["client_id"])),
        ("anna", "/v1/whoami", {}, anna.users.whoami()),
        ("marta", "/v1/board", {}, marta.boards.board(limit=20)),
        ("marta", "/v1/board", {"process": PV}, marta.boards.board(process=PV, limit=20)[0]),
        ("marta", "/v1/daily", {}, marta.boards.daily()),
        ("marta", "/v1/reviews", {"state": "all"}, marta.recovery.reviews(state=None)),
        ("marta", "/v1/revisits", {}, marta.recovery.revisits()),
        ("marta", "/v1/removals", {"month": "2026-03"}, marta.recovery.removals("2026-03")),
        ("marta", "/v1/stalled", {}, marta.recovery.stalled()),
        ("marta", "/v1/reports/funnel", {"period": "month"}, marta.reports.funnel(period="month")),
        ("marta", "/v1/reports/cycle", {}, marta.reports.cycle()),
        ("marta", "/v1/reports/salespeople", {}, marta.reports.salespeople()),
        ("marta", "/v1/reports/refusals", {"matrix_by": "reason", "trend": "true"},
         marta.reports.refusals(matrix_by="reason", trend=True)),
        ("marta", "/v1/reports/forecast", {"months": "2"}, marta.reports.forecast(months=2)),
        ("root", "/v1/users", {}, team.admin.users.list()),
        ("root", "/v1/processes", {}, team.admin.processes.list()),
        ("root", f"/v1/processes/{PV}", {}, team.admin.processes.show(PV)),
        ("root", "/v1/tokens", {}, team.admin.tokens.list()),
        ("marta", "/v1/outbox", {"lead": str(lead_id)}, marta.outbox.list(lead_id=lead_id)),
    ]
    for user, path, params, expected in reads:
        answer = served.call(user, "GET", path, params=params)
        assert answer.status_code == 200, (path, answer.text)
        assert answer.json() == json.loads(json.dumps(expected)), path
    plan = served.call("marta", "POST", "/v1/rotation", json={"dry_run": True})
    assert plan.json() == marta.recovery.rotate(dry_run=True)
    exported = served.call("marta", "GET", "/v1/export", params={"process": PV})
    assert exported.headers["content-type"].startswith("text/csv")
    assert "Jan Kowalski" in exported.text
    closed = served.call("anna", "POST", f"/v1/leads/{lead_id}/close", json={"reason": "bad_timing"})
    assert closed.json()["status"] == "lost"
    reopened = served.call("marta", "POST", f"/v1/leads/{lead_id}/reopen", json={})
    assert reopened.json()["status"] == "open"
    assigned = served.call("marta", "POST", f"/v1/leads/{lead_id}/assign", json={"to": "piotr"})
    assert assigned.json()["owner"] == "piotr"
    reported = served.call("piotr", "POST", f"/v1/leads/{lead_id}/reports", json={"text": "called again"})
    assert reported.json()["last_report"] == "called again"
    recalled = served.call("marta", "POST", f"/v1/leads/{lead_id}/recall", json={})
    assert recalled.json()["recalled_at"] is not None
    second = add(served)
    bulk = served.call("anna", "POST", "/v1/leads/bulk/advance", json={"lead_ids": [second["id"]],
                                                                        "on_refusal": "skip"})
    assert bulk.status_code == 200, bulk.text
    assert bulk.json()["refused"][0]["lead_id"] == second["id"]


def test_a_csv_import_dry_run_then_for_real(team: Team, served: Served) -> None:
    csv = b"name,email\nEwa Nowak,ewa@example.pl\nbad,not-an-address\n"
    params = {"process": PV, "dry_run": "true", "filename": "../../prospects.csv"}
    dry = served.call("marta", "POST", "/v1/imports", params=params, content=csv)
    assert dry.status_code == 200, dry.text
    assert (dry.json()["status"], dry.json()["imported"], dry.json()["rejected"]) == ("dry_run", 1, 1)
    assert Path(dry.json()["file"]).name == "prospects.csv"  # saved under its own name, never above the folder
    real = served.call("marta", "POST", "/v1/imports", params={**params, "dry_run": "false"}, content=csv)
    assert real.json()["status"] == "imported"
    assert [r["name"] for r in team.as_("marta").leads.list(process=PV)] == ["Ewa Nowak"]


def test_a_history_import_through_the_api_with_its_reasons_mapped(team: Team, served: Served) -> None:
    csv = (b"external_id,name,status,stage,created_at,closed_at,close_reason,owner\n"
           b"X-1,Ewa Nowak,lost,first_contact,2025-01-06,2025-02-01,Too expensive,anna\n"
           b"X-2,Jan Lis,won,,2025-01-06,2025-03-01,,anna\n")
    params = {"process": PV, "history": "true", "filename": "deals.csv", "map_reason": "Too expensive=price"}
    refused = served.call("marta", "POST", "/v1/imports", params=params, content=csv)
    assert refused.status_code == 403, refused.text  # only an admin speaks for every owner
    done = served.call("root", "POST", "/v1/imports", params=params, content=csv)
    assert done.status_code == 200, done.text
    assert (done.json()["imported"], done.json()["history"]["lost"], done.json()["history"]["won"]) == (2, 1, 1)
    found = served.call("root", "GET", "/v1/leads/external/X-1")
    assert team.admin.leads.get(found.json())["close_reason"] == "price"


def test_a_process_file_is_validated_and_loaded_through_the_api(team: Team, served: Served) -> None:
    text = (PROCESSES_DIR / "mortgage.yaml").read_bytes()
    valid = served.call("root", "POST", "/v1/processes/validate", params={"filename": "mortgage.yaml"}, content=text)
    assert valid.json() == [{"file": "mortgage.yaml", "valid": True, "problems": []}]
    broken = served.call("root", "POST", "/v1/processes/validate", params={"filename": "x.yaml"}, content=b"id: [")
    assert broken.json()[0]["valid"] is False
    loaded = served.call("root", "POST", "/v1/processes", params={"filename": "mortgage.yaml"}, content=text)
    assert loaded.json()["created"] is False  # the same file as the fixture loaded: nothing to do
    refused = served.call("root", "POST", "/v1/processes", params={"filename": "x.yaml"}, content=b"id: [")
    assert refused.status_code == 422
    assert "leadflow-upload" not in refused.json()["detail"]


@pytest.mark.parametrize(("user", "method", "path", "body", "status"), [
    ("anna", "GET", "/v1/leads/999", None, 404),
    ("anna", "GET", "/v1/leads/abc", None, 422),
    ("anna", "POST", "/v1/users", {"name": "mallory", "role": "admin"}, 403),
    ("anna", "POST", "/v1/leads/{lead}/advance", {}, 422),
    ("anna", "POST", "/v1/leads/{lead}/advance", {"to": 5}, 422),
    ("anna", "POST", "/v1/leads/{lead}/close", {"reason": "bad_timing", "colour": "red"}, 422),
    ("anna", "POST", "/v1/leads/{lead}/close", {"reason": "nonsense"}, 422),
    ("ioana", "GET", "/v1/leads/{lead}", None, 404),  # another team's lead: as if it did not exist
    ("ioana", "POST", "/v1/leads/{lead}/advance", {}, 404),
    (None, "GET", "/v1/tasks", None, 401),
    ("anna", "GET", "/v1/nowhere", None, 404),
    ("anna", "DELETE", "/v1/tasks", None, 405),
])
def test_refusals_are_problems_with_their_status_and_change_nothing(
        team: Team, served: Served, user: str | None, method: str, path: str, body: Any, status: int) -> None:
    lead = add(served)
    before = snapshot(team.url)
    answer = served.call(user, method, path.replace("{lead}", str(lead["id"])),
                         **({"json": body} if body is not None else {}))
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == status and problem["detail"] and problem["title"]
    assert "Traceback" not in answer.text
    assert snapshot(team.url) == before
    if status == 404 and "leads/" in path and user == "ioana":
        assert problem["detail"] == f"lead {lead['id']} does not exist"  # the same words as for no lead at all


def test_a_stale_if_match_is_409_with_the_current_lead(team: Team, served: Served) -> None:
    lead = add(served)
    path = f"/v1/leads/{lead['id']}"
    etag = served.call("anna", "GET", path).headers["etag"]
    moved = served.call("anna", "PATCH", path, json={"values": {"roof_type": "flat"}}, headers={"If-Match": etag})
    assert moved.status_code == 200 and moved.headers["etag"] == '"2"'
    before = snapshot(team.url)
    stale = served.call("anna", "PATCH", path, json={"values": {"roof_type": "ground"}}, headers={"If-Match": etag})
    assert stale.status_code == 409
    assert stale.json()["current_version"] == 2 and stale.json()["lead"]["fields"]["roof_type"] == "flat"
    assert stale.json()["detail"].startswith(f"lead {lead['id']} is at version 2, not 1")
    in_body = served.call("anna", "POST", f"{path}/advance", json={"if_version": 1})
    assert in_body.status_code == 409
    assert snapshot(team.url) == before


def test_eight_show_then_set_loops_with_if_match_lose_no_increment(team: Team, served: Served) -> None:
    lead = add(served, fields={"roof_area_m2": 1})
    path = f"/v1/leads/{lead['id']}"
    outcomes: list[str] = []
    lock = threading.Lock()

    def loop() -> None:
        for _ in range(5):
            shown = served.call("anna", "GET", path)
            area = shown.json()["fields"]["roof_area_m2"]
            answer = served.call("anna", "PATCH", path, json={"values": {"roof_area_m2": area + 1}},
                                 headers={"If-Match": shown.headers["etag"]})
            assert answer.status_code in (200, 409), answer.text
            with lock:
                outcomes.append("ok" if answer.status_code == 200 else "stale")

    threads = [threading.Thread(target=loop) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    final = team.as_("anna").leads.get(lead["id"])
    assert len(outcomes) == 40
    assert final["fields"]["roof_area_m2"] == 1 + outcomes.count("ok")  # every success counted, none lost
    assert final["version"] == 1 + outcomes.count("ok")


def test_identity_comes_only_from_credentials(team: Team, served: Served) -> None:
    token = team.admin.tokens.add("website", process=PV)["token"]
    before = snapshot(team.url)
    # a --user-style header is ignored: no credentials is still 401
    assert served.call(None, "GET", "/v1/tasks", headers={"X-Leadflow-User": "root"}).status_code == 401
    # a token in the query string: 400, and its value is not echoed
    answer = served.call(None, "GET", "/v1/tasks", params={"access_token": token})
    assert answer.status_code == 400 and token not in answer.text
    # an integration token may only send leads (and read, with --read)
    web = {"Authorization": f"Bearer {token}"}
    assert served.call(None, "POST", "/v1/users", json={"name": "mallory", "role": "admin"},
                       headers=web).status_code == 403
    assert served.call(None, "GET", "/v1/tasks", headers=web).status_code == 403
    revoked = team.admin.tokens.add("old-site", process=PV)
    team.admin.tokens.revoke(revoked["id"])
    before = snapshot(team.url)
    gone = served.call(None, "POST", "/v1/leads", json={"name": "X"},
                       headers={"Authorization": f"Bearer {revoked['token']}"})
    assert gone.status_code == 401 and gone.headers["www-authenticate"] == "Bearer"
    assert snapshot(team.url) == before
    sent = served.call(None, "POST", "/v1/leads", json={"name": "Web Form"}, headers=web)
    assert sent.status_code == 201 and set(sent.json()) == {"id", "client_id", "client_existed", "process",
                                                            "stage", "owner", "url"}


def test_a_client_clock_is_ignored_and_the_test_clock_announced(team: Team, served: Served) -> None:
    answer = served.call("anna", "POST", "/v1/leads", json={"process": PV, "name": "Clock"},
                         headers={"Date": "Mon, 01 Jan 2001 00:00:00 GMT", "X-Leadflow-Now": "2001-01-01T00:00"})
    assert answer.json()["created_at"] == TEST_NOW
    assert answer.headers["x-leadflow-test-clock"] == TEST_NOW


def test_the_engine_clock_ignores_leadflow_now_when_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_NOW", "2020-01-01T00:00")
    try:
        clock.honour_environment(False)
        assert clock.now().year >= 2026 and clock.pinned() is None
    finally:
        clock.honour_environment(True)
    assert clock.now().year == 2020 and clock.pinned() == "2020-01-01T00:00:00"


def test_a_lead_never_goes_back_in_time(team: Team, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    lead = add(served)
    before = snapshot(team.url)
    monkeypatch.setenv("LEADFLOW_NOW", "2026-03-01T09:00:00")  # a day before the lead was added
    answer = served.call("anna", "PATCH", f"/v1/leads/{lead['id']}", json={"values": {"roof_type": "flat"}})
    assert answer.status_code == 422
    assert "never goes back in time" in answer.json()["detail"]
    assert snapshot(team.url) == before


def _raw(served: Served, request: bytes) -> bytes:
    """Send ``request`` (or the start of one) and read what the server answers until it closes the connection."""
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def test_limits_body_size_and_both_length_headers(team: Team, served: Served) -> None:
    big = served.call("anna", "POST", "/v1/leads", json={"process": PV, "name": "x" * 70_000})
    assert big.status_code == 413
    before = snapshot(team.url)
    smuggled = _raw(served, b"POST /v1/leads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-user:anna\r\n"
                            b"Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"
                            b"\r\n0\r\n\r\n")
    assert smuggled.startswith(b"HTTP/1.1 400 "), smuggled[:200]
    assert b"both Content-Length and Transfer-Encoding" in smuggled
    assert snapshot(team.url) == before


def test_the_docs_page_works_offline(served: Served) -> None:
    page = served.client.get("/docs")
    assert page.status_code == 200
    import re

    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/") for a in assets), assets
    assert "validatorUrl\": null" in page.text
    for asset in assets:
        body = served.client.get(asset)
        assert body.status_code == 200, asset
        if asset.endswith(".css"):
            assert not re.findall(r"url\((?!\"?data:)", body.text)
        if asset.endswith(".js"):
            assert not re.search(r"unpkg\.com|jsdelivr|cdnjs|googleapis", body.text)
    assert "https://" not in page.text and "http://" not in page.text
    doc = served.client.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"] == {"bearer": {
        "type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearer"][
            "description"]}}


def test_the_static_folder_is_the_vendored_swagger_ui() -> None:
    static = Path(__file__).resolve().parent.parent / "cli" / "server" / "static"
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "VERSION"} <= {p.name for p in static.iterdir()}


def test_slow_clients_are_cut_off(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.server import run

    monkeypatch.setattr(run, "HEADER_TIMEOUT", 0.5)
    with serving(team.admin, body_timeout=0.5) as served:
        head = _raw(served, b"GET /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthoriz")
        assert head.startswith(b"HTTP/1.1 408 ")
        body = _raw(served, b"POST /v1/leads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-user:anna\r\n"
                                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"na")
        assert body.startswith(b"HTTP/1.1 408 "), body[:200]
        assert b"did not arrive within 0.5 seconds" in body
        assert served.call("anna", "GET", "/v1/tasks").status_code == 200  # the server is still serving


def test_a_client_that_disconnects_mid_request_leaves_no_traceback(
        team: Team, served: Served, caplog: pytest.LogCaptureFixture) -> None:
    before = snapshot(team.url)
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /v1/leads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-user:anna\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"process\": ")
    assert served.call("anna", "GET", "/v1/tasks").status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert snapshot(team.url) == before


def test_a_password_an_admin_set_is_changed_through_the_api_before_the_first_login(
        team: Team, served: Served) -> None:
    team.admin.auth.set_password("anna", "first-day secret 1")
    refused = served.call(None, "POST", "/v1/auth/login", json={"name": "anna", "password": "first-day secret 1"})
    assert refused.status_code == 401 and refused.json()["code"] == "password_change_required"
    before = snapshot(team.url)
    wrong = served.call(None, "POST", "/v1/auth/password", json={
        "name": "anna", "old_password": "not the one", "new_password": "anna chooses her own"})
    assert wrong.status_code == 401 and "code" not in wrong.json()
    same = served.call(None, "POST", "/v1/auth/password", json={
        "name": "anna", "old_password": "first-day secret 1", "new_password": "first-day secret 1"})
    assert same.status_code == 422 and "differ" in same.json()["detail"]
    assert served.call(None, "POST", "/v1/auth/password", json={"name": "anna"}).status_code == 422
    assert snapshot(team.url) == {**before, "rate_limits": snapshot(team.url)["rate_limits"]}  # failures counted
    changed = served.call(None, "POST", "/v1/auth/password", json={
        "name": "anna", "old_password": "first-day secret 1", "new_password": "anna chooses her own"})
    assert changed.status_code == 200 and changed.json()["must_change_password"] is False
    login = served.call(None, "POST", "/v1/auth/login", json={"name": "anna", "password": "anna chooses her own"})
    assert login.status_code == 200 and login.json()["user"]["name"] == "anna"


def test_search_and_a_bad_phone_over_http(team: Team, served: Served) -> None:
    lead = add(served, phone="601 222 333", name="Łukasz Żółć")
    found = served.call("anna", "GET", "/v1/search", params={"text": "zolc"})
    assert found.status_code == 200 and found.json() == team.as_("anna").search.find("zolc")
    assert [h["lead_id"] for h in found.json()] == [lead["id"]]
    assert served.call("ioana", "GET", "/v1/search", params={"text": "601-222-333"}).json() == []
    empty = served.call("anna", "GET", "/v1/search", params={"text": " "})
    assert empty.status_code == 422 and "empty" in empty.text
    before = snapshot(team.url)
    bad = served.call("anna", "POST", "/v1/leads", json={"process": PV, "name": "X", "phone": "601 22"})
    assert bad.status_code == 422 and "not a valid number" in bad.text
    assert snapshot(team.url) == before
    listed = served.call("anna", "GET", "/v1/leads", params={"search": "ZÓŁĆ"})
    assert [r["id"] for r in listed.json()] == [lead["id"]]
