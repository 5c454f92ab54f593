"""Files uploaded to the web app (``multipart/form-data``): a CSV on ``/import``, kept from its dry run for the
confirm, and a process file on ``/admin/processes``; each form's size cap (413), bytes that are not the text they
should be (a message naming the encoding problem), and the CSRF token still required (docs/web.md)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from cli.web import import_pages, process_pages, uploads
from engine.errors import NotFoundError
from tests.conftest import PROCESSES_DIR, Team
from tests.test_web import PEOPLE, _cheap_hashes  # noqa: F401  (the autouse fixture: cheap password hashes)
from tests.test_web_admin import CSV
from tests.web_fixtures import import_ended, signed_in, with_passwords

_UPLOAD = re.compile(r'name="upload" value="([^"]+)"')
FORM = {"process": "photovoltaics", "owner": "piotr", "on_error": "skip"}


@pytest.fixture
def people(team: Team) -> Team:
    with_passwords(team, *PEOPLE, "root")
    return team


def test_an_uploaded_csv_is_checked_then_imported_from_the_kept_file(people: Team) -> None:
    marta, csrf = signed_in(people, "marta")
    files = {"file": ("leads from the fair.csv", CSV.encode("cp1250"), "text/csv")}
    assert marta.post("/import/check", data=FORM, files=files).status_code == 403  # no CSRF token
    checked = marta.post("/import/check", data={"csrf": csrf, **FORM}, files=files)
    assert checked.status_code == 200 and "Checked: nothing was imported yet" in checked.text
    assert "leads from the fair.csv" in checked.text and "line 3:" in checked.text
    assert people.admin.search.find("Import") == []
    kept = _UPLOAD.search(checked.text)
    assert kept, checked.text
    radu, radu_csrf = signed_in(people, "radu")  # another manager cannot import marta's kept file
    assert radu.post("/import", data={"csrf": radu_csrf, **FORM, "upload": kept.group(1)}).status_code == 410
    done = import_ended(marta, marta.post("/import", data={"csrf": csrf, **FORM, "upload": kept.group(1)}))
    assert done.status_code == 200 and "Imported" in done.text
    assert {hit["name"] for hit in people.admin.search.find("Import")} >= {"Anna Import", "Jan Import"}
    again = marta.post("/import", data={"csrf": csrf, **FORM, "upload": kept.group(1)})
    assert again.status_code == 410 and "upload it again" in again.text  # dropped once imported


def test_a_salespersons_upload_is_refused_before_it_is_kept(people: Team, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Who may not import is answered 403 before the file is read or kept for a confirm (a kept file would wait an
    hour in the server's folder, holding what the person had no right to hand in)."""
    monkeypatch.setattr(uploads, "FOLDER", tmp_path / "kept")  # this test's own folder: others upload meanwhile
    anna, csrf = signed_in(people, "anna")
    files = {"file": ("leads.csv", CSV.encode(), "text/csv")}
    for path in ("/import/check", "/import"):
        answer = anna.post(path, data={"csrf": csrf, **FORM}, files=files)
        assert answer.status_code == 403 and "may not import leads" in answer.text, (path, answer.text[:300])
    assert not uploads.FOLDER.exists() or not any(uploads.FOLDER.iterdir())
    assert people.admin.search.find("Import") == []


def test_a_multipart_post_without_its_csrf_token_changes_nothing(people: Team) -> None:
    root, _csrf = signed_in(people, "root")
    text = (PROCESSES_DIR / "photovoltaics.yaml").read_text(encoding="utf-8").replace("title:", "title: v2 #", 1)
    before = len(people.admin.processes.list())
    answer = root.post("/admin/processes", files={"file": ("pv.yaml", text.encode(), "application/yaml")})
    assert answer.status_code == 403
    assert len(people.admin.processes.list()) == before


def test_a_process_file_is_uploaded_and_one_not_in_utf8_is_refused_naming_the_byte(people: Team) -> None:
    root, csrf = signed_in(people, "root")
    text = (PROCESSES_DIR / "photovoltaics.yaml").read_text(encoding="utf-8").replace("title:", "title: v2 #", 1)
    before = len(people.admin.processes.list())
    latin = text.replace("title: v2 #", "title: Zażółć v2 #", 1).encode("utf-8").replace("ż".encode(), b"\xbf")
    refused = root.post("/admin/processes", data={"csrf": csrf}, files={"file": ("pv.yaml", latin, "text/yaml")})
    assert refused.status_code == 422 and "not UTF-8" in refused.text and "0xbf" in refused.text
    assert "pv.yaml" in refused.text and len(people.admin.processes.list()) == before
    loaded = root.post("/admin/processes", data={"csrf": csrf},
                       files={"file": ("pv.yaml", text.encode(), "application/yaml")})
    assert loaded.status_code == 200 and "as version 2" in loaded.text
    assert len(people.admin.processes.list()) == before + 1


def test_a_file_over_the_forms_limit_is_413_and_changes_nothing(people: Team,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root, csrf = signed_in(people, "root")
    before = len(people.admin.processes.list())
    big = b"# " + b"x" * process_pages.MAX_YAML + b"\n"
    answer = root.post("/admin/processes", data={"csrf": csrf}, files={"file": ("big.yaml", big, "text/yaml")})
    assert answer.status_code == 413 and "larger than 1 MiB" in answer.text
    assert len(people.admin.processes.list()) == before
    marta, csrf = signed_in(people, "marta")
    rows = CSV + "".join(f"Osoba {i};;;1000;flat\n" for i in range(import_pages.MAX_CSV // 20))
    assert len(rows) > import_pages.MAX_CSV
    huge = marta.post("/import", data={"csrf": csrf, **FORM}, files={"file": ("huge.csv", rows.encode(), "text/csv")})
    assert huge.status_code == 413 and "larger than 20 MiB" in huge.text
    assert people.admin.search.find("Import") == []


def test_a_csv_that_is_not_text_gets_the_engines_message_on_its_encoding(people: Team) -> None:
    marta, csrf = signed_in(people, "marta")
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01" + bytes(range(128, 256))
    answer = marta.post("/import/check", data={"csrf": csrf, **FORM}, files={"file": ("photo.csv", png, "text/csv")})
    assert answer.status_code == 422, answer.text
    assert "utf-8" in answer.text.lower() or "encoding" in answer.text.lower()


HISTORY = (Path(__file__).parent.parent / "docs" / "examples" / "history.csv").read_text(encoding="utf-8")
HISTORY_FORM = {"process": "photovoltaics", "on_error": "skip", "history": "on",
                "map_reason": "Too expensive=price\nBudget cut=no_budget"}
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def test_an_admin_imports_deals_with_their_history_from_the_import_page(people: Team) -> None:
    """The history box (admins): the check shows the history's counts and keeps the box and the reasons for the
    confirm, whose job writes each deal as it stood: won, lost for the mapped reason, open in its stage."""
    root, csrf = signed_in(people, "root")
    form = root.get("/import").text
    assert 'name="history"' in form and 'name="map_reason"' in form
    files = {"file": ("crm.csv", HISTORY.encode(), "text/csv")}
    checked = root.post("/import/check", data={"csrf": csrf, **HISTORY_FORM}, files=files)
    assert checked.status_code == 200 and "Checked: nothing was imported yet" in checked.text
    assert "History: 0 deals moved on, 0 unchanged; of the deals written 2 open, 1 won, 1 lost" in checked.text
    assert "Import these deals with their history" in checked.text
    confirm = {name: html.unescape(value) for name, value in _HIDDEN.findall(checked.text)}
    assert confirm["history"] == "on" and confirm["map_reason"] == HISTORY_FORM["map_reason"]  # both lines kept
    with pytest.raises(NotFoundError):
        people.admin.leads.find_external("OPP-101")
    assert confirm["upload"] and not confirm.get("text")
    done = import_ended(root, root.post("/import", data=confirm))  # what the confirm button posts
    assert done.status_code == 200 and "Imported" in done.text and "1 won, 1 lost" in done.text
    won, lost, open_ = (people.admin.leads.get(people.admin.leads.find_external(f"OPP-10{k}")) for k in (1, 2, 3))
    assert (won["status"], lost["status"], lost["close_reason"]) == ("won", "lost", "price")
    assert (open_["status"], open_["stage"], open_["owner"]) == ("open", "first_meeting", "anna")
    assert won["created_at"].startswith("2025-01-06")


def test_a_managers_import_page_has_no_history_and_a_history_post_is_refused(people: Team) -> None:
    """Only an admin imports history: a manager's page has no box, and a post that ticks it anyway is refused with
    the engine's reason (403), nothing written; reasons mapped without a history are refused too (422)."""
    marta, csrf = signed_in(people, "marta")
    assert 'name="history"' not in marta.get("/import").text
    before = people.admin.leads.list(limit=100)
    refused = marta.post("/import/check", data={"csrf": csrf, **HISTORY_FORM, "text": HISTORY})
    assert refused.status_code == 403 and "import the history of deals" in refused.text
    confirmed = marta.post("/import", data={"csrf": csrf, **HISTORY_FORM, "text": HISTORY})
    assert confirmed.status_code == 403 and "import the history of deals" in confirmed.text
    root, root_csrf = signed_in(people, "root")
    plain = {**HISTORY_FORM, "history": "", "text": HISTORY}
    for browser, token in ((marta, csrf), (root, root_csrf)):
        answer = browser.post("/import/check", data={"csrf": token, **plain})
        assert answer.status_code == 422 and "closure reasons are mapped only for an import with history" in answer.text
    assert people.admin.leads.list(limit=100) == before


def test_a_history_file_checked_as_new_leads_says_what_its_columns_are(people: Team, tmp_path: Path) -> None:
    """An import of new leads meeting a history's columns goes on, and its report says which columns give the
    deals' stages and dates and that a history import brings them in (the engine's report has them)."""
    marta, csrf = signed_in(people, "marta")
    checked = marta.post("/import/check", data={"csrf": csrf, **FORM, "owner": "anna", "text": HISTORY})
    assert checked.status_code == 200, checked.text
    hint = ("The columns stage, status, created_at, reached_first_contact, reached_first_meeting, reached_send_offer, "
            "reached_close_contract, closed_at, close_reason give each deal's stage and dates")
    assert hint in html.unescape(checked.text)
    path = tmp_path / "history.csv"
    path.write_text(HISTORY, encoding="utf-8")
    report = people.as_("marta").intake.import_csv(path, process="photovoltaics", owner="anna", dry_run=True)
    assert report["history_columns"][:3] == ["stage", "status", "created_at"]
    assert people.admin.intake.import_csv(path, process="photovoltaics", history=True,
                                          map_reason="Too expensive=price", dry_run=True)["history_columns"] == []
