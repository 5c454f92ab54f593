"""The CLI over the engine, end to end: the salesperson's journey, the JSON contract, hostile input.

Every command runs through click's CliRunner against a throw-away SQLite file; the key journey also
runs as a real program (a subprocess), to prove the entry point, stderr and exit codes outside the
runner. The contract (docs/cli.md): errors on stderr as one ``Error: ...`` line, exit code 1 for a
refused or invalid action, 2 for bad usage, 0 on success; never a traceback; a refused command
changes nothing (``snapshot`` before == after).

Commands are written as a shell would see them (``"lead set 1 roof_type=flat"``, split with shlex),
or as a list of arguments when an argument holds what a shell line cannot (control characters).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import cli
from cli.output import printable
from engine.api import Engine
from engine.errors import NotFoundError
from engine.services.leads import LeadService
from tests.conftest import (
    TEST_NOW,
    CliDatabase,
    Command,
    argv,
    cli_floor,
    js,
    leadflow,
    ok,
    printed,
    refused,
    user_add,
)
from tests.remote import server_for

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ROOT / "processes"
PV = "photovoltaics"
SHIPPED = sorted(p.stem for p in PROCESSES.glob("*.yaml"))

TEAM = [
    ("marta", "manager", "north"),
    ("anna", "salesperson", "north"),
    ("piotr", "salesperson", "north"),
    ("olga", "analyst", "north"),
    ("tomasz", "technician", None),
]
#: Who does a task owned by a role, on the north team's leads.
DOER = {"analyst": "olga", "technician": "tomasz", "manager": "marta"}
#: The required fields of photovoltaics stages, with values that satisfy them.
REQUIRED = {
    "first_meeting": "roof_type=pitched roof_area_m2=38 financing=leasing",
    "send_offer": "offer_value=48000",
}
# -- the documented JSON keys (docs/cli.md) ------------------------------------------------------

LEAD_KEYS = {
    "id", "client_id", "name", "company", "email", "phone", "process", "process_version", "stage",
    "stage_name", "status", "owner", "team", "source", "product", "value", "currency", "fields",
    "tasks", "created_at", "stage_entered_at", "stage_due_at", "last_activity_at", "closed_at",
    "close_reason", "close_note",
}
LEAD_TASK_KEYS = {
    "id", "stage", "name", "owner", "mandatory", "state", "due_at", "done_by", "done_at", "note",
}
LEAD_ROW_KEYS = {
    "id", "client_id", "name", "company", "process", "process_version", "stage", "status", "owner",
    "team", "source", "product", "value", "fields", "created_at", "stage_entered_at", "stage_due_at",
    "closed_at", "close_reason",
}
EVENT_KEYS = {"id", "lead_id", "at", "actor", "kind", "data"}
TASK_ROW_KEYS = {
    "lead_id", "name", "process", "stage", "task", "task_name", "owner", "lead_owner", "mandatory",
    "due_at", "overdue",
}
USER_KEYS = {"id", "name", "role", "team", "created_at"}
PROCESS_ROW_KEYS = {"process", "version", "title", "hash", "loaded_at", "loaded_by", "open_leads"}
CLIENT_KEYS = {"id", "name", "company", "email", "phone", "created_at", "leads"}
EVENT_DATA_KEYS = {
    "created": {"client_id", "process", "process_version", "owner", "team", "source", "product",
                "value_minor", "fields"},
    "assigned": {"from", "to", "team"},
    "field_set": {"field", "before", "after"},
    "task_done": {"stage", "task", "note"},
    "advanced": {"from", "to"},
    "closed": {"reason", "kind", "note", "from"},
    "won": {"from"},
    "reopened": {"to", "from_status", "resume"},
    "migrated": {"from_version", "to_version"},
}

# -- running the CLI (the helpers are tests/conftest.py's) ----------------------------------------


def finish_stage(url: str, lead_id: int, owner: str) -> None:
    """Set the stage's required fields and complete its open mandatory tasks, each as the right person."""
    lead = js(url, owner, f"lead show {lead_id}")
    if lead["stage"] in REQUIRED:
        ok(url, owner, f"lead set {lead_id} {REQUIRED[lead['stage']]}")
    for task in lead["tasks"]:
        if task["stage"] == lead["stage"] and task["state"] == "open" and task["mandatory"]:
            doer = owner if task["owner"] == "salesperson" else DOER[task["owner"]]
            ok(url, doer, f"task done {lead_id} {task['id']}")


def url_of(path: Path) -> str:
    return f"sqlite:///{path}"


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def url(cli_db: CliDatabase) -> str:
    """A fresh copy of the session's database of TEAM, set up through the CLI (in each mode of ``cli_db``)."""
    return cli_db.template("cli_team", cli_floor(TEAM))


@pytest.fixture
def lead1(url: str) -> str:
    """``url`` with lead 1: anna's photovoltaics lead for Łukasz Żółć, leasing, at the first stage."""
    out = ok(url, "anna", "lead add --process photovoltaics --name 'Łukasz Żółć' --phone '+48 600 100 200' "
                          "--value 45000 --set financing=leasing").stdout
    assert out.startswith("Lead 1 added for Łukasz Żółć")
    return url


# -- 1. the salesperson's journey, CLI only ------------------------------------------------------


def test_the_salesperson_journey(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # `process load processes/` as the issue writes it
    url = url_of(tmp_path / "journey.db")

    out = ok(url, "root", "init").stdout
    assert re.fullmatch(r"Database ready \(schema revision \w+\)\.\n"
                        r"You \(root\) are its first admin\. "
                        r"Next: leadflow process load --shipped\n", out), out
    assert "first admin" not in ok(url, "root", "init").stdout  # a second init upgrades, names nobody

    assert "photovoltaics: version 1 loaded\n" in ok(url, "root", "process load processes/").stdout
    again = ok(url, "root", "process load processes/").stdout
    assert again.count("unchanged, nothing to do") == len(SHIPPED)

    for name, role, team in TEAM:
        out = ok(url, "root", user_add(name, role, team)).stdout
        assert out == f"User {name} added as {role}" + (f" in team {team}" if team else "") + "\n"
    assert refused(url, "anna", "user add eve --role admin") == (
        "Error: user 'anna' (salesperson, team north) may not add users: only an admin may")

    out = ok(url, "anna", "lead add --process photovoltaics --name 'Łukasz Żółć' --phone '+48 600 100 200' "
                          "--value 45000 --set financing=leasing").stdout
    assert out == "Lead 1 added for Łukasz Żółć in photovoltaics, stage 'Register the lead', owner anna\n"

    # Register the lead
    assert refused(url, "anna", "lead advance 1") == (
        "Error: can't leave stage 'register_lead' of lead 1: mandatory tasks open: record_contact")
    assert ok(url, "anna", "task done 1 record_contact --note 'called back'").stdout == (
        "Task 'record_contact' of lead 1 done; the stage's mandatory tasks are all done\n")
    assert ok(url, "anna", "lead advance 1").stdout == (
        "Lead 1 advanced to 'Make the first contact' (first_contact), due 2026-03-04 23:59\n")

    # Make the first contact
    assert refused(url, "anna", "lead advance 1") == (
        "Error: can't leave stage 'first_contact' of lead 1: mandatory tasks open: call_client, book_meeting")
    assert ok(url, "anna", "task done 1 call_client").stdout == (
        "Task 'call_client' of lead 1 done; mandatory tasks still open: book_meeting\n")
    ok(url, "anna", "task done 1 book_meeting")
    assert ok(url, "anna", "lead advance 1").stdout == (
        "Lead 1 advanced to 'Hold the first meeting' (first_meeting), due 2026-03-16 23:59\n")

    # Hold the first meeting: tasks and required fields
    assert refused(url, "anna", "lead advance 1") == (
        "Error: can't leave stage 'first_meeting' of lead 1: mandatory tasks open: meeting_notes, "
        "consumption, roof_photos, bant, next_contact; required fields not set: roof_type, roof_area_m2")
    out = ok(url, "anna", "lead set 1 roof_type=flat roof_area_m2=45.5 install_by=2026-05-15").stdout
    assert out == "Lead 1: roof_type=flat, roof_area_m2=45.5, install_by=2026-05-15\n"
    for task in ("meeting_notes", "consumption", "roof_photos", "bant", "next_contact"):
        ok(url, "anna", f"task done 1 {task}")
    assert ok(url, "anna", "lead advance 1").stdout == (
        "Lead 1 advanced to 'Prepare and send the offer' (send_offer), due 2026-03-16 23:59\n")

    # Prepare and send the offer: the back office's tasks, each done by its department
    assert refused(url, "anna", "lead advance 1") == (
        "Error: can't leave stage 'send_offer' of lead 1: mandatory tasks open: technical_check, pricing, "
        "leasing_offer, send_offer, draft_contract; required fields not set: offer_value")
    assert refused(url, "anna", "task done 1 technical_check") == (
        "Error: user 'anna' (salesperson, team north) may not complete task 'technical_check' of lead 1: "
        "it is owned by the Technical department (technician)")
    assert refused(url, "olga", "task done 1 technical_check") == (
        "Error: user 'olga' (analyst, team north) may not complete task 'technical_check' of lead 1: "
        "it is owned by the Technical department (technician)")
    assert [t["task"] for t in js(url, "tomasz", "task list")] == ["technical_check"]
    assert {t["task"] for t in js(url, "olga", "task list")} == {"notify_analyst", "pricing", "leasing_offer"}
    ok(url, "tomasz", "task done 1 technical_check")
    ok(url, "olga", "task done 1 pricing")
    ok(url, "olga", "task done 1 leasing_offer")
    ok(url, "anna", "task done 1 send_offer")
    ok(url, "anna", "task done 1 draft_contract")
    assert ok(url, "anna", "lead set 1 'offer_value=52 000,00'").stdout == "Lead 1: offer_value=52000.00\n"
    assert refused(url, "anna", "lead win 1") == (
        "Error: can't win lead 1 in 'send_offer': a sale is won by completing 'close_contract' "
        "(Close the contract)")
    assert ok(url, "anna", "lead advance 1").stdout == (
        "Lead 1 advanced to 'Close the contract' (close_contract), due 2026-03-16 23:59\n")

    # Close the contract, and win
    assert refused(url, "anna", "lead advance 1") == (
        "Error: lead 1 is in 'close_contract', the last stage; win it with 'leadflow lead win 1' or close it "
        "with a reason")
    assert refused(url, "anna", "lead win 1") == (
        "Error: can't leave stage 'close_contract' of lead 1: mandatory tasks open: closing_call, "
        "signed_contract")
    ok(url, "anna", "task done 1 closing_call")
    ok(url, "anna", "task done 1 signed_contract")
    assert ok(url, "anna", "lead win 1").stdout == "Lead 1 won\n"
    assert refused(url, "anna", "task done 1 upsell") == (
        f"Error: can't complete tasks of lead 1: it is won (closed {TEST_NOW}); a manager may reopen it")

    lead = js(url, "anna", "lead show 1")
    assert (lead["status"], lead["stage"], lead["owner"], lead["value"]) == (
        "won", "close_contract", "anna", "45000.00")
    assert lead["fields"] == {"financing": "leasing", "roof_type": "flat", "roof_area_m2": 45.5,
                              "install_by": "2026-05-15", "offer_value": "52000.00"}
    assert lead["closed_at"] == TEST_NOW
    assert lead["close_reason"] is None
    done = {(t["stage"], t["id"]): t["done_by"] for t in lead["tasks"] if t["state"] == "done"}
    assert done[("send_offer", "technical_check")] == "tomasz"
    assert done[("send_offer", "pricing")] == "olga"
    assert done[("register_lead", "record_contact")] == "anna"
    kinds = [e["kind"] for e in js(url, "anna", "lead history 1")]
    assert kinds[0] == "created"
    assert kinds[-1] == "won"
    assert kinds.count("advanced") == 4
    assert kinds.count("field_set") == 4

    # The people's view tells the same story
    out = ok(url, "anna", "lead show 1").stdout
    assert out.startswith("Lead 1  Łukasz Żółć  won\n")
    assert "stage Close the contract (close_contract)" in out
    assert "value 45000.00 PLN" in out
    assert re.search(r"signed_contract .* done .* 2026-03-02 09:00 by anna", out)
    assert "register_lead -> first_contact" in out  # the history table


@pytest.mark.slow  # a program per command
def test_the_journey_runs_as_a_program(tmp_path: Path) -> None:
    """The key steps as a real program: the entry point, stdout/stderr and exit codes as a shell sees them."""
    env = {k: v for k, v in os.environ.items() if k not in ("LEADFLOW_USER", "COLUMNS", "FORCE_COLOR")}
    env.update(LEADFLOW_DB=url_of(tmp_path / "program.db"), LEADFLOW_NOW=TEST_NOW, PYTHONIOENCODING="utf-8")

    def run(command: Command, user: str = "anna", code: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "cli.main", "--user", user, *argv(command)],
                              cwd=ROOT, env=env, capture_output=True, text=True, encoding="utf-8",
                              timeout=120, check=False)
        assert proc.returncode == code, f"{command}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stdout + proc.stderr
        return proc

    assert "You (root) are its first admin" in run("init", user="root").stdout
    run("process load processes/", user="root")
    run("user add anna --role salesperson --team north", user="root")

    added = run("lead add --process photovoltaics --name 'Łukasz Żółć' --value 45000 --set financing=leasing")
    assert added.stdout == (
        "Lead 1 added for Łukasz Żółć in photovoltaics, stage 'Register the lead', owner anna\n")
    assert added.stderr == ""

    refusal = run("lead advance 1", code=1)
    assert refusal.stdout == ""
    assert refusal.stderr == (
        "Error: can't leave stage 'register_lead' of lead 1: mandatory tasks open: record_contact\n")

    usage = run("lead show abc", code=2)
    assert usage.stdout == ""
    assert usage.stderr.startswith("Usage: leadflow lead show [OPTIONS] LEAD_ID\n")
    assert usage.stderr.endswith("Error: Invalid value for 'LEAD_ID': 'abc' is not a valid integer.\n")

    unknown = run("lead show 1", user="nobody", code=1)
    assert unknown.stderr.startswith("Error: user 'nobody' is not registered;")

    run("task done 1 record_contact")
    assert "advanced to 'Make the first contact'" in run("lead advance 1").stdout
    lead = json.loads(run("lead show 1 --json").stdout)
    assert (lead["id"], lead["name"], lead["stage"], lead["value"]) == (
        1, "Łukasz Żółć", "first_contact", "45000.00")
    assert re.search(r"│ 1 +│ Łukasz Żółć +│ photovoltaics +│ first_contact", run("lead list").stdout)
    assert run("--version").stdout.startswith("leadflow, version ")

    # The installed console script, when this environment has one, is the same program.
    script = shutil.which("leadflow", path=str(Path(sys.executable).parent))
    if script:
        proc = subprocess.run([script, "--user", "anna", "lead", "show", "1", "--json"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, encoding="utf-8",
                              timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["stage"] == "first_contact"


# -- 2. JSON: every read command, every write command --------------------------------------------


def test_read_commands_print_the_documented_json(lead1: str) -> None:
    url = lead1
    ok(url, "anna", "lead set 1 source=web_form 'product=PV 6 kWp' roof_type=flat")
    ok(url, "anna", "task done 1 record_contact --note 'Żółć called back'")

    lead = js(url, "anna", "lead show 1")
    assert set(lead) >= LEAD_KEYS
    assert lead["value"] == "45000.00"  # a decimal string, never a float
    assert lead["fields"] == {"financing": "leasing", "roof_type": "flat"}
    assert (lead["process"], lead["process_version"], lead["stage"], lead["status"]) == (
        PV, 1, "register_lead", "open")
    assert (lead["owner"], lead["team"], lead["source"], lead["product"], lead["currency"]) == (
        "anna", "north", "web_form", "PV 6 kWp", "PLN")
    assert lead["created_at"] == lead["stage_entered_at"] == TEST_NOW
    assert lead["closed_at"] is None
    assert lead["close_reason"] is None
    for task in lead["tasks"]:
        assert set(task) >= LEAD_TASK_KEYS
    record = next(t for t in lead["tasks"] if t["id"] == "record_contact")
    assert record == {"id": "record_contact", "stage": "register_lead",
                      "name": "Record the contact details and the source", "owner": "salesperson",
                      "mandatory": True, "state": "done", "due_at": "2026-03-03T23:59:59", "done_by": "anna",
                      "done_at": TEST_NOW, "note": "Żółć called back"}

    rows = js(url, "anna", "lead list")
    assert [r["id"] for r in rows] == [1]
    assert set(rows[0]) >= LEAD_ROW_KEYS
    assert rows[0]["value"] == "45000.00"

    history = js(url, "anna", "lead history 1")
    assert [e["kind"] for e in history] == ["created", "field_set", "field_set", "field_set", "task_done"]
    for event in history:
        assert set(event) >= EVENT_KEYS
        assert set(event["data"]) >= EVENT_DATA_KEYS[event["kind"]], event
        assert (event["lead_id"], event["actor"], event["at"]) == (1, "anna", TEST_NOW)
    assert history[0]["data"]["value_minor"] == 4_500_000
    assert history[1]["data"] == {"field": "source", "before": None, "after": "web_form", "attribute": True}
    assert history[3]["data"] == {"field": "roof_type", "before": None, "after": "flat"}

    tasks = js(url, "anna", "task list")
    for row in tasks:
        assert set(row) >= TASK_ROW_KEYS
    assert [(r["lead_id"], r["task"], r["mandatory"], r["overdue"]) for r in tasks] == [
        (1, "check_history", False, False)]

    client = js(url, "anna", f"client show {lead['client_id']}")
    assert set(client) >= CLIENT_KEYS
    assert (client["name"], client["phone"]) == ("Łukasz Żółć", "+48600100200")  # stored in E.164 (issue 18)
    assert [x["id"] for x in client["leads"]] == [1]
    assert set(client["leads"][0]) >= LEAD_KEYS

    users = js(url, "anna", "user list")
    assert [u["name"] for u in users] == sorted(["root", *(name for name, _, _ in TEAM)])
    for user in users:
        assert set(user) >= USER_KEYS
    assert next(u for u in users if u["name"] == "root")["role"] == "admin"

    processes = js(url, "anna", "process list")
    assert sorted(p["process"] for p in processes) == SHIPPED
    for row in processes:
        assert set(row) >= PROCESS_ROW_KEYS
        assert re.fullmatch(r"[0-9a-f]{64}", row["hash"])
    assert next(p for p in processes if p["process"] == PV)["open_leads"] == 1


def test_write_commands_print_the_lead_as_json(url: str) -> None:
    added = js(url, "anna", "lead add --process photovoltaics --name 'Жанна Смирнова' --company 'ООО Север' "
                            "--value '12 500,50'")
    assert set(added) >= LEAD_KEYS
    assert (added["id"], added["name"], added["value"], added["owner"]) == (
        1, "Жанна Смирнова", "12500.50", "anna")

    lead = js(url, "anna", "lead set 1 financing=cash wants_insurance=tak budget=30000")
    assert lead["fields"] == {"financing": "cash", "wants_insurance": True, "budget": "30000.00"}

    lead = js(url, "anna", "task done 1 record_contact")
    assert next(t for t in lead["tasks"] if t["id"] == "record_contact")["state"] == "done"

    lead = js(url, "anna", "lead advance 1")
    assert (lead["stage"], lead["stage_name"]) == ("first_contact", "Make the first contact")

    lead = js(url, "marta", "lead assign 1 --to piotr")
    assert (lead["owner"], lead["team"]) == ("piotr", "north")

    lead = js(url, "piotr", "lead close 1 --reason price --note 'too dear'")
    assert (lead["status"], lead["close_reason"], lead["close_note"], lead["closed_at"]) == (
        "lost", "price", "too dear", TEST_NOW)

    lead = js(url, "marta", "lead reopen 1")
    assert (lead["status"], lead["stage"], lead["close_reason"], lead["closed_at"]) == (
        "open", "first_contact", None, None)

    while lead["stage"] != "close_contract":
        finish_stage(url, 1, owner="piotr")
        lead = js(url, "piotr", "lead advance 1")
    finish_stage(url, 1, owner="piotr")
    lead = js(url, "piotr", "lead win 1")
    assert set(lead) >= LEAD_KEYS
    assert (lead["status"], lead["stage"], lead["closed_at"]) == ("won", "close_contract", TEST_NOW)

    kinds = {e["kind"] for e in js(url, "marta", "lead history 1")}
    assert kinds == {"created", "field_set", "task_done", "advanced", "assigned", "closed", "reopened", "won"}


def test_set_up_commands_print_json(tmp_path: Path, lead1: str) -> None:
    fresh = url_of(tmp_path / "fresh.db")
    first = js(fresh, "root", "init")
    assert set(first) == {"revision", "admin_created"}
    assert first["admin_created"] == "root"
    assert js(fresh, "root", "init")["admin_created"] is None

    loaded = js(lead1, "root", ["process", "load", str(PROCESSES / "photovoltaics.yaml")])
    assert [(r["process"], r["version"], r["created"]) for r in loaded] == [(PV, 1, False)]
    assert set(loaded[0]) == {"process", "version", "created", "hash"}

    user = js(lead1, "root", "user add radu --role manager --team south")  # was a JSON string: a row's repr
    assert user == next(u for u in js(lead1, "root", "user list") if u["name"] == "radu")
    assert set(user) >= USER_KEYS
    assert (user["name"], user["role"], user["team"], user["created_at"]) == (
        "radu", "manager", "south", TEST_NOW)

    migrated = js(lead1, "root", "process migrate photovoltaics --to 1 --dry-run")
    assert migrated == {"process": PV, "to_version": 1, "leads": [], "dry_run": True}


def test_set_prints_the_stored_values_and_history_shows_amounts(lead1: str) -> None:
    command = "lead set 1 'value=46 000,5' 'budget=30 000' financing= wants_insurance=TAK"
    out = ok(lead1, "anna", command).stdout
    assert out == "Lead 1: value=46000.50, budget=30000.00, financing cleared, wants_insurance=True\n"
    history = ok(lead1, "anna", "lead history 1").stdout
    assert "value: 45000.00 -> 46000.50" in history  # not the minor units the event stores
    assert "financing: leasing -> -" in history
    event = js(lead1, "anna", "lead history 1")[1]
    assert event["data"] == {"field": "value", "before": 4_500_000, "after": 4_600_050, "attribute": True}


def test_lead_show_marks_a_passed_stage_deadline_overdue_as_the_task_list_does(lead1: str) -> None:
    shown = js(lead1, "anna", "lead show 1")
    due = shown["stage_due_at"][:16].replace("T", " ")
    assert shown["stage_overdue"] is False
    assert f"due {due}\n" in ok(lead1, "anna", "lead show 1").stdout
    later = "2026-03-20T09:00:00"
    out = leadflow(lead1, "anna", argv("lead show 1"), later)
    assert f"due {due} overdue\n" in out.stdout
    assert json.loads(leadflow(lead1, "anna", argv("lead show 1 --json"), later).stdout)["stage_overdue"] is True
    assert "overdue" in leadflow(lead1, "anna", argv("task list"), later).stdout  # the same words
    ok(lead1, "anna", "lead close 1 --reason no_budget")  # a closed lead owes its stage nothing
    assert js(lead1, "anna", "lead show 1")["stage_overdue"] is False


def test_json_output_keeps_non_ascii_text_as_written(lead1: str) -> None:
    out = ok(lead1, "anna", "lead show 1 --json").stdout
    assert '"name": "Łukasz Żółć"' in out
    assert "\\u" not in out  # ensure_ascii=False


def test_with_json_errors_are_still_text_on_stderr(lead1: str) -> None:
    assert refused(lead1, "anna", "lead advance 1 --json") == (
        "Error: can't leave stage 'register_lead' of lead 1: mandatory tasks open: record_contact")
    assert refused(lead1, "anna", "lead show 7 --json") == "Error: lead 7 does not exist"
    line = refused(lead1, "anna", "lead show abc --json", code=2)
    assert line.startswith("Error: Invalid value for 'LEAD_ID'")


# -- 3. bad and hostile input ---------------------------------------------------------------------

REASONS = ["no_budget", "no_authority", "no_need", "bad_timing", "competitor", "price", "unreachable",
           "duplicate", "not_a_client"]
ADD = ["lead", "add", "--process", PV, "--name"]


def bad(id_: str, user: str, command: Command, code: int, *fragments: str, local: str | None = None) -> Any:
    """A refused command; ``local``: why it is a local database's case only (the cli_db fixture skips it remotely)."""
    return pytest.param(user, command, code, fragments, id=id_,
                        marks=[pytest.mark.local_only(local)] if local else [])


#: Why a refusal about a lead the caller may not see reads otherwise through a server.
HIDDEN = ("through the server a lead the caller may not see is 'lead 1 does not exist' (404), so that ids cannot "
          "be probed (docs/server.md); tests/test_server.py checks it")
#: The same of a client (tests/test_refusal_paths.py checks it through a server).
HIDDEN_CLIENT = HIDDEN.replace("a lead", "a client").replace("'lead 1 does not exist'", "'client 1 does not exist'")
#: Why a user who is not registered meets another refusal through a server.
UNREGISTERED = ("through a server one who is not a user cannot log in, so no command runs as them "
                "(tests/test_cli_remote.py)")


HOSTILE = [
    # ids, processes, stages
    bad("unknown-lead", "anna", "lead show 999", 1, "Error: lead 999 does not exist"),
    bad("unknown-lead-task", "anna", "task done 999 record_contact", 1, "Error: lead 999 does not exist"),
    bad("lead-id-not-integer", "anna", "lead show abc", 2,
        "Error: Invalid value for 'LEAD_ID': 'abc' is not a valid integer."),
    bad("lead-id-fraction", "anna", "lead advance 1.5", 2, "Invalid value for 'LEAD_ID': '1.5'"),
    bad("lead-id-zero", "anna", "lead show 0", 2, "Invalid value for 'LEAD_ID': '0' is not a valid id"),
    bad("lead-id-too-big", "anna", "lead set 99999999999999999999999 roof_type=flat", 2,
        "Invalid value for 'LEAD_ID'", "is not a valid id: a whole number from 1 to"),
    bad("unknown-process", "anna", "lead add --process solar --name Jan", 1,
        "Error: process 'solar' is not loaded", "loaded processes: " + ", ".join(SHIPPED)),
    bad("process-typo", "anna", "lead add --process photovoltaic --name Jan", 1,
        "process 'photovoltaic' is not loaded", "did you mean 'photovoltaics'?"),
    bad("list-unknown-process", "anna", "lead list --process solar", 1, "process 'solar' is not loaded"),
    # typed fields
    bad("number-field", "anna", "lead set 1 roof_area_m2=lots", 1,
        "Error: field 'roof_area_m2' (number) takes a number, got 'lots'"),
    bad("number-below-min", "anna", "lead set 1 roof_area_m2=0", 1,
        "field 'roof_area_m2' (number) must be at least 1, got 0"),
    bad("choice-field", "anna", "lead set 1 financing=barter", 1,
        "Error: field 'financing' (choice) must be one of: cash, loan, leasing; got 'barter'"),
    bad("date-field", "anna", "lead set 1 install_by=31.02.2026", 1,
        "Error: field 'install_by' (date) takes a date written YYYY-MM-DD, got '31.02.2026'"),
    bad("impossible-date", "anna", "lead set 1 install_by=2026-02-31", 1,
        "field 'install_by' (date) takes a date written YYYY-MM-DD, got '2026-02-31'"),
    bad("bool-field", "anna", "lead set 1 wants_insurance=maybe", 1,
        "field 'wants_insurance' (bool) takes true or false (yes/no), got 'maybe'"),
    bad("unknown-field", "anna", "lead set 1 colour=red", 1,
        "Error: lead 1: 'colour' is not a field of process photovoltaics", "fields: roof_area_m2,"),
    bad("one-bad-field-sets-none", "anna", "lead set 1 roof_type=flat financing=barter", 1,
        "field 'financing' (choice)"),
    bad("add-bad-field", "anna", "lead add --process photovoltaics --name Jan --set financing=barter", 1,
        "must be one of: cash, loan, leasing; got 'barter'"),
    # FIELD=VALUE usage
    bad("assignment-without-equals", "anna", "lead set 1 novalue", 2,
        "Error: expected FIELD=VALUE, got 'novalue'"),
    bad("assignment-twice", "anna", "lead set 1 roof_type=flat roof_type=ground", 2,
        "Error: 'roof_type' is given twice"),
    bad("assignment-missing", "anna", "lead set 1", 2, "Error: Missing argument 'FIELD=VALUE...'."),
    bad("add-set-without-equals", "anna", "lead add --process photovoltaics --name Jan --set financing", 2,
        "Error: expected FIELD=VALUE, got 'financing'"),
    # closing
    bad("unknown-closure-reason", "anna", "lead close 1 --reason bad_timming", 1,
        "Error: can't close lead 1: 'bad_timming' is not a closure reason of process photovoltaics",
        "did you mean 'bad_timing'?", "valid reasons: no_budget (No budget or financing refused)", *REASONS),
    bad("close-without-reason", "anna", "lead close 1", 2, "Error: Missing option '--reason'."),
    bad("win-too-early", "anna", "lead win 1", 1, "Error: can't win lead 1 in 'register_lead'"),
    bad("reopen-open-lead", "marta", "lead reopen 1", 1,
        "Error: lead 1 is open in 'register_lead'; only won or lost leads reopen"),
    # tasks
    bad("task-of-another-stage", "anna", "task done 1 call_client", 1,
        "Error: lead 1 has no task 'call_client' in its current stage 'register_lead'",
        "tasks: record_contact, check_history"),
    bad("task-typo", "anna", "task done 1 record_contract", 1, "did you mean 'record_contact'?"),
    bad("task-missing", "anna", "task done 1", 2, "Error: Missing argument 'TASK_ID'."),
    # who may do what
    bad("unknown-user", "ghost", "lead show 1", 1,
        "Error: user 'ghost' is not registered; an admin adds users with 'leadflow user add ghost --role "
        "salesperson' (choose the acting user with --user or LEADFLOW_USER)", local=UNREGISTERED),
    bad("other-salesperson-edits", "piotr", "lead set 1 roof_type=flat", 1,
        "Error: user 'piotr' (salesperson, team north) may not see lead 1: only its owner, a manager of its "
        # (whose it is stays unsaid to who may not see it)
        "team, its team's departments or an admin may", local=HIDDEN),
    bad("other-salesperson-reads", "piotr", "lead show 1", 1,
        "Error: user 'piotr' (salesperson, team north) may not see lead 1: only its owner, a manager of its "
        "team, its team's departments or an admin may", local=HIDDEN),
    bad("other-salesperson-history", "piotr", "lead history 1 --json", 1, "may not see lead 1", local=HIDDEN),
    bad("other-salesperson-advances", "piotr", "lead advance 1", 1,
        "user 'piotr' (salesperson, team north) may not see lead 1", local=HIDDEN),
    bad("other-salesperson-task", "piotr", "task done 1 record_contact", 1,
        "Error: user 'piotr' (salesperson, team north) may not see lead 1: only its owner, a manager of its "
        "team, its team's departments or an admin may", local=HIDDEN),
    bad("other-salesperson-closes", "piotr", "lead close 1 --reason price", 1, "may not see lead 1", local=HIDDEN),
    bad("other-salesperson-client", "piotr", "client show 1", 1, "may not see client 1: none of its leads",
        local=HIDDEN_CLIENT),
    bad("salesperson-reassigns", "anna", "lead assign 1 --to piotr", 1,
        "user 'anna' (salesperson, team north) may not reassign lead 1: only a manager of team north"),
    bad("assign-to-analyst", "marta", "lead assign 1 --to olga", 1,
        "user 'olga' (analyst) cannot own leads; owners are salespeople or managers"),
    bad("assign-to-unknown", "marta", "lead assign 1 --to ghost", 1, "user 'ghost' does not exist"),
    bad("analyst-edits", "olga", "lead set 1 roof_type=flat", 1,
        "user 'olga' (analyst, team north) may not edit"),
    bad("analyst-adds", "olga", "lead add --process photovoltaics --name Jan", 1,
        "user 'olga' (analyst) may not add leads"),
    bad("tasks-of-another", "anna", "task list --owner piotr", 1, "may not see the tasks of piotr"),
    bad("salesperson-adds-user", "anna", "user add eve --role admin", 1,
        "may not add users: only an admin may"),
    bad("unknown-role", "root", "user add eve --role wizard", 1,
        "role 'wizard' is neither a user role (salesperson, manager, admin)"),
    bad("duplicate-user", "root", "user add anna --role salesperson", 1, "user 'anna' already exists"),
    bad("migrate-as-salesperson", "anna", "process migrate photovoltaics --to 1", 1,
        "may not migrate processes: only an admin"),
    # amounts
    bad("value-not-a-number", "anna", "lead add --process photovoltaics --name Jan --value abc", 1,
        "Error: value must be an amount such as 12500.50, got 'abc'"),
    bad("value-negative", "anna", "lead add --process photovoltaics --name Jan --value -5", 1,
        "value must not be negative, got '-5'"),
    bad("value-three-decimals", "anna", "lead add --process photovoltaics --name Jan --value 1.005", 1,
        "value has more than two decimals: '1.005'"),
    bad("value-nan", "anna", "lead add --process photovoltaics --name Jan --value NaN", 1,
        "value must be a finite amount, got 'NaN'"),
    bad("value-huge", "anna", "lead add --process photovoltaics --name Jan --value 1e30", 1,
        "value is too large: '1e30'"),
    bad("value-27-digits", "anna", "lead add --process photovoltaics --name Jan --value 100000000000000000000000000", 1,
        "value is too large: '100000000000000000000000000'"),
    bad("set-value-not-a-number", "anna", "lead set 1 value=lots", 1,
        "value must be an amount such as 12500.50"),
    # text
    bad("name-10000-chars", "anna", [*ADD, "x" * 10_000], 1, "Error: name is longer than 500 characters"),
    bad("name-bell", "anna", [*ADD, "Anna\x07Nowak"], 1, "Error: name contains control characters"),
    bad("name-ansi-escape", "anna", [*ADD, "\x1b[31mAnna\x1b[0m"], 1,
        "Error: name contains control characters"),
    bad("name-nul", "anna", [*ADD, "Anna\x00"], 1, "Error: name contains control characters"),
    bad("name-blank", "anna", [*ADD, "   "], 1, "Error: a lead needs the client's name (--name)"),
    bad("note-escape", "anna", ["task", "done", "1", "record_contact", "--note", "ok\x1b[2J"], 1,
        "Error: note contains control characters"),
    bad("bad-email", "anna", "lead add --process photovoltaics --name Jan --email 'jan at example'", 1,
        "e-mail 'jan at example' is not an address such as name@example.com"),
    bad("bad-phone", "anna", "lead add --process photovoltaics --name Jan --phone 'call me'", 1,
        "phone 'call me' may contain only digits, spaces and + ( ) . / -"),
    bad("unknown-client", "anna", "lead add --process photovoltaics --name Jan --client 999", 1,
        "client 999 does not exist"),
    # usage
    bad("unknown-status", "anna", "lead list --status maybe", 2,
        "Error: Invalid value for '--status': 'maybe' is not one of 'open', 'won', 'lost'."),
    bad("unknown-command", "anna", "lead frobnicate", 2, "Error: No such command 'frobnicate'."),
    bad("migrate-version-not-integer", "root", "process migrate photovoltaics --to seven", 2,
        "Invalid value for '--to'"),
    bad("migrate-unknown-version", "root", "process migrate photovoltaics --to 7", 1,
        "Error: process 'photovoltaics' has no version 7"),
    bad("load-missing-path", "root", "process load no/such/folder", 1,
        "no/such/folder", "cannot read the file",
        local="through a server the CLI reads the file and says so itself (cli/remote.py)"),
    # databases
    bad("db-not-a-url", "anna", "--db notaurl lead list", 1,
        "Error: database URL 'notaurl' is not a SQLAlchemy URL such as sqlite:///leadflow.db"),
    bad("db-after-the-command", "anna", "lead list --db x", 2, "Error: No such option '--db'."),
    bad("db-option-without-value", "anna", "--db", 2, "Error: Option '--db' requires an argument."),
]


@pytest.mark.parametrize(("user", "command", "code", "fragments"), HOSTILE)
def test_bad_input_is_refused_with_a_clear_error(lead1: str, user: str, command: Command, code: int,
                                                 fragments: tuple[str, ...]) -> None:
    line = refused(lead1, user, command, code=code, usage=command != "--db")  # the group's own option: no usage
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"


def test_advance_to_an_unknown_stage_names_the_stages(lead1: str) -> None:
    ok(lead1, "anna", "task done 1 record_contact")
    assert refused(lead1, "anna", "lead advance 1 --to nowhere") == (
        "Error: stage 'nowhere' does not exist in process photovoltaics; stages: register_lead, "
        "first_contact, first_meeting, send_offer, close_contract")
    assert refused(lead1, "anna", "lead advance 1 --to first_meeting") == (
        "Error: can't advance lead 1 from 'register_lead' to 'first_meeting': the process allows only "
        "first_contact")


def test_advance_to_an_unknown_stage_is_named_even_with_tasks_open(lead1: str) -> None:
    line = refused(lead1, "anna", "lead advance 1 --to nowhere")
    assert "stage 'nowhere' does not exist in process photovoltaics" in line


def test_a_closed_lead_refuses_changes(lead1: str) -> None:
    ok(lead1, "anna", "lead close 1 --reason bad_timing --note 'next spring'")
    shown = printed(lead1, "anna", "lead show 1")
    tasks = shown[shown.index("Tasks of"):shown.index("History")]
    assert "not done" in tasks and " open " not in tasks  # nobody is to do a closed lead's tasks
    for command in ("lead set 1 roof_type=flat", "lead advance 1", "lead win 1", "task done 1 record_contact",
                    "lead close 1 --reason price"):
        line = refused(lead1, "anna", command)
        assert re.fullmatch(rf"Error: can't [a-z ]+ lead 1: it is lost \(closed {TEST_NOW}\); a manager may "
                            "reopen it", line), line
    assert refused(lead1, "anna", "lead reopen 1") == (
        "Error: user 'anna' (salesperson, team north) may not reopen lead 1: only a manager of team north "
        "or an admin may")
    assert refused(lead1, "marta", "lead reopen 1 --stage nowhere").startswith(
        "Error: stage 'nowhere' does not exist in process photovoltaics")


def test_a_database_server_that_does_not_answer(lead1: str) -> None:
    pytest.importorskip("psycopg")
    with socket.socket() as s:  # a port of this machine where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = f"postgresql+psycopg://leadflow:secret@127.0.0.1:{port}/leadflow"
    line = refused(lead1, "anna", f"--db {server} lead list")
    assert line.startswith("Error: database error: ")
    assert f"port {port} failed" in line
    assert "secret" not in line


def test_a_database_without_the_schema_says_to_run_init(lead1: str, tmp_path: Path) -> None:
    (tmp_path / "empty.db").touch()  # an existing file: a missing one is refused before (test_firstday.py)
    empty = url_of(tmp_path / "empty.db")
    for command in ("lead list", "lead show 1", "task list", "user list --json",
                    "lead add --process photovoltaics --name Jan"):
        line = refused(lead1, "anna", f"--db {empty} {command}")
        assert line == "Error: the database has no leadflow schema; run 'leadflow init' first"


def test_a_file_that_is_not_a_database(lead1: str, tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database\n" * 100)
    assert refused(lead1, "anna", f"--db {url_of(junk)} lead list") == (
        "Error: database error: file is not a database")


def test_polish_russian_and_romanian_names_print_as_written(url: str) -> None:
    people = [("Łukasz Żółć", "Zakład Usług Żółć"), ("Жанна Смирнова", "ООО Север"),
              ("Ștefan Popescu", "Popescu Transport SRL")]
    need = "Счета за свет, ăâîșț, zażółć gęślą jaźń"
    for number, (name, company) in enumerate(people, start=1):
        out = ok(url, "anna", [*ADD, name, "--company", company, "--set", f"need={need}"]).stdout
        assert out.startswith(f"Lead {number} added for {name} in photovoltaics")

    table = ok(url, "anna", "lead list").stdout
    tasks = ok(url, "anna", "task list").stdout
    for number, (name, company) in enumerate(people, start=1):
        assert re.search(rf"│ {number} +│ {re.escape(name)} +│ photovoltaics", table), table
        assert re.search(rf"│ {number} +│ {re.escape(name)} +│ register_lead +│ record_contact", tasks), tasks
        shown = ok(url, "anna", f"lead show {number}").stdout
        assert shown.startswith(f"Lead {number}  {name} ({company})  open\n")
        assert f"need={need}" in shown
        client = ok(url, "anna", f"client show {number}").stdout
        assert client.startswith(f"Client {number}  {name} ({company})")
        raw = ok(url, "anna", f"lead show {number} --json").stdout
        assert f'"name": "{name}"' in raw
        assert f'"company": "{company}"' in raw
        assert json.loads(raw)["fields"]["need"] == need
    out = ok(url, "root", "user add Ștefan --role salesperson").stdout
    assert out == "User Ștefan added as salesperson\n"
    assert "│ Ștefan " in ok(url, "root", "user list").stdout


def test_names_are_printed_not_read_as_markup(url: str) -> None:
    """rich markup in data prints as written (a name with '[/bold]' crashed `lead show`: MarkupError)."""
    name, company = "Evil [/bold] [red]Corp", "[link=https://example.com]ACME[/link]"
    ok(url, "anna", [*ADD, name, "--company", company, "--set", "decision_maker=[bold]Boss[/]"])
    shown = ok(url, "anna", "lead show 1").stdout
    assert shown.startswith(f"Lead 1  {name} ({company})  open\n")
    assert "decision_maker=[bold]Boss[/]" in shown
    assert name in ok(url, "anna", "lead list").stdout
    assert name in ok(url, "anna", "task list").stdout
    assert ok(url, "anna", "client show 1").stdout.startswith(f"Client 1  {name} ({company})")


def test_control_characters_never_reach_the_terminal(lead1: str) -> None:
    """Whatever the engine stores, people's output shows control characters as \\x1b, never raw."""
    leadflow(lead1, "anna", ["lead", "set", "1", "need=bills\x1b[2J\x1b[31mred\x9b"])  # stored or refused
    for command in ("lead show 1", "lead list", "lead history 1"):
        out = ok(lead1, "anna", command).stdout
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", out), (command, out)
    assert printable("a\x1b[2Jb\x07\x9b\tc\nd") == "a\\x1b[2Jb\\x07\\x9b\tc\nd"


def test_text_fields_refuse_control_characters(lead1: str) -> None:
    line = refused(lead1, "anna", ["lead", "set", "1", "need=bills\x1b[2J"])
    assert "control characters" in line


def test_names_refuse_c1_control_characters(lead1: str) -> None:
    assert refused(lead1, "anna", [*ADD, "Ola\x9b31mX"]) == "Error: name contains control characters"


def test_the_engine_reports_a_huge_lead_id_as_not_found(lead1: str) -> None:
    engine = Engine.open(lead1, user="anna")
    try:
        with pytest.raises(NotFoundError):
            engine.get_lead(2**64)
    finally:
        engine.close()


def test_the_engine_returns_an_added_user_as_json_data(lead1: str) -> None:
    engine = Engine.open(lead1, user="root")
    try:
        user = engine.add_user("radu", "manager", "south")
        assert json.loads(json.dumps(user)) == next(u for u in engine.list_users() if u["name"] == "radu")
    finally:
        engine.close()


@pytest.mark.local_only("a bug in the server is a 500 with its log, not the local one line (tests/test_server.py)")
def test_an_unexpected_error_is_one_line_not_a_traceback(lead1: str, monkeypatch: pytest.MonkeyPatch,
                                                          runner: CliRunner) -> None:
    def broken(self: LeadService, lead_id: int) -> dict[str, Any]:
        raise KeyError("stage")

    monkeypatch.setattr(LeadService, "get", broken)
    line = refused(lead1, "anna", "lead show 1")
    assert line.startswith("Error: internal error (KeyError: 'stage'); this is a bug in leadflow")
    monkeypatch.setenv("LEADFLOW_DEBUG", "1")
    with pytest.raises(KeyError):  # a developer asked for the traceback
        runner.invoke(cli, ["lead", "show", "1"], catch_exceptions=False,
                      env={"LEADFLOW_DB": lead1, "LEADFLOW_USER": "anna"})


# -- 4. who is acting ----------------------------------------------------------------------------


def test_the_acting_user_falls_back_to_the_os_login(tmp_path: Path) -> None:
    login = getpass.getuser()
    admin = "boss-of-the-floor"
    assert login != admin
    url = url_of(tmp_path / "login.db")
    ok(url, admin, "init")
    ok(url, admin, ["process", "load", str(PROCESSES / "photovoltaics.yaml")])

    # neither --user nor LEADFLOW_USER: the OS login acts, and it is not registered
    assert refused(url, None, "lead list").startswith(
        f"Error: user '{login}' is not registered; an admin adds users with "
        f"'leadflow user add {login} --role salesperson'")

    ok(url, admin, ["user", "add", login, "--role", "salesperson", "--team", "north"])
    lead = js(url, None, "lead add --process photovoltaics --name 'Jan Kowalski'")
    assert lead["owner"] == login
    assert js(url, None, "lead history 1")[0]["actor"] == login


@pytest.mark.local_only(UNREGISTERED)
@pytest.mark.parametrize("command", ["user list", "process list --json"])
def test_an_unregistered_user_reads_nothing(lead1: str, command: str) -> None:
    assert refused(lead1, "ghost", command).startswith("Error: user 'ghost' is not registered")


@pytest.mark.local_only("--user is refused through a server (tests/test_cli_remote.py)")
def test_the_user_option_wins_over_the_environment(lead1: str) -> None:
    """--user beats LEADFLOW_USER (it was ignored: every command ran as LEADFLOW_USER or the OS login)."""
    assert refused(lead1, "anna", "--user piotr lead show 1").startswith(
        "Error: user 'piotr' (salesperson, team north) may not see lead 1")
    assert js(lead1, "anna", "--user marta lead assign 1 --to piotr")["owner"] == "piotr"
    assert js(lead1, "piotr", "lead history 1")[-1]["actor"] == "marta"
    assert js(lead1, None, "--user piotr lead show 1")["owner"] == "piotr"


# -- 5. the demo ----------------------------------------------------------------------------------


def test_demo_builds_a_database_the_cli_can_use(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    out = ok(None, None, ["demo", "--db", str(path)]).stdout
    assert out.startswith(f"leadflow demo: {path.as_posix()} as of ")
    assert "What salesperson anna sees (leadflow task list, as anna):" in out
    shown = re.search(r"^(\d+) open tasks?\b", out, flags=re.M)
    assert shown, out
    assert "Try it yourself:" in out

    url = url_of(path)
    leads = js(url, "marta", "lead list")
    assert leads
    for row in leads:
        assert set(row) >= LEAD_ROW_KEYS
        assert row["team"] == "north" or row["owner"] == "marta"  # marta manages team north
    everything = js(url, "admin", "lead list")
    assert {r["status"] for r in everything} == {"open", "won", "lost"}
    assert len(js(url, "anna", "task list")) == int(shown.group(1))  # the list the demo printed
    south = next(r["id"] for r in everything if r["owner"] == "ioana")
    assert refused(url, "anna", f"lead show {south}").startswith(
        f"Error: user 'anna' (salesperson, team north) may not see lead {south}: only its owner, a manager of its "
        "team")


def test_companies_contacts_and_languages_refuse_whoever_may_not(url: str) -> None:
    """``client company``, ``client contact``, ``client set --language`` and ``user set --language``: each refused
    for the user who may not, in every mode, with the database unchanged."""
    company = js(url, "anna", "client company 'Budimex SA' --json")
    ok(url, "anna", f"lead add --process photovoltaics --client {company['id']} --value 1000")
    assert refused(url, "olga", "client company 'Orlen SA'") == "Error: user 'olga' (analyst) may not add companies"
    hidden = (f"Error: client {company['id']} does not exist" if server_for(url) is not None else  # docs/server.md
              f"Error: user 'piotr' (salesperson) may not see client {company['id']}: none of its leads is theirs "
              "to see")
    assert refused(url, "piotr", f"client contact {company['id']} 'Jan Nowak'") == hidden
    assert refused(url, "piotr", f"client set {company['id']} --language pl") == hidden
    assert refused(url, "olga", f"client set {company['id']} --language pl") == (
        f"Error: user 'olga' (analyst, team north) may not set the language of client {company['id']} through lead 1: "
        "it belongs to anna; only its owner or a manager of its team may")
    assert refused(url, "anna", "user set piotr --language pl") == (
        "Error: user 'anna' (salesperson, team north) may not set the language of user 'piotr': only an admin may")
    assert refused(url, "anna", "client set 999 --language pl") == "Error: client 999 does not exist"
    assert refused(url, "anna", f"client set {company['id']} --language de").startswith(
        "Error: language 'de'")
    # what they may do
    assert js(url, "anna", f"client contact {company['id']} 'Jan Nowak' --json")["contacts"][0]["name"] == "Jan Nowak"
    assert js(url, "marta", f"client set {company['id']} --language pl --json")["language"] == "pl"


def test_every_lead_command_takes_an_external_id_and_a_reason_by_its_label(url: str) -> None:
    """A migrated team still calls its deals by the old system's ids and reads the reasons' labels: ``ext:ID`` works
    wherever a lead is taken (one or several), and ``--reason`` takes a reason's label in any of the process's
    languages (case and accents aside), the same rules refusing everything else."""
    for k in (1, 2, 3):
        ok(url, "anna", f"lead add --process photovoltaics --name 'Deal {k}' --external-id CRM-{k}")
    assert ok(url, "anna", "activity add ext:CRM-1 --kind call --text 'Talked about the roof'").exit_code == 0
    assert ok(url, "anna", "lead set ext:CRM-1 roof_type=flat").stdout.startswith("Lead 1: roof_type=flat")
    closed = ok(url, "anna", "lead close ext:CRM-1 --reason 'za WYSOKA cena'").stdout
    assert closed.startswith("Lead 1 closed (price)"), closed
    assert js(url, "anna", "lead show ext:CRM-1 --json")["close_reason"] == "price"
    assert ok(url, "anna", "lead close ext:CRM-2 ext:CRM-3 --reason 'Not now (timing)'").exit_code == 0
    assert [js(url, "anna", f"lead show {k} --json")["close_reason"] for k in (2, 3)] == ["bad_timing"] * 2
    assert ok(url, "marta", "lead reopen ext:CRM-2").exit_code == 0
    assert ok(url, "anna", "lead close ext:CRM-2 --reason PRICE").stdout.startswith("Lead 2 closed (price)")
    assert ok(url, "marta", "lead reopen ext:CRM-2").exit_code == 0  # an id folded as an import reads one
    assert refused(url, "anna", "lead close ext:CRM-2 --reason 'Too pricey'").startswith(
        "Error: can't close lead 2: 'Too pricey' is not a closure reason of process photovoltaics")
    assert refused(url, "anna", "lead show ext:CRM-9") == "Error: no lead has the external id 'CRM-9'"
    assert refused(url, "anna", "lead close 2 ext:CRM-9 --reason price") == "Error: no lead has the external id 'CRM-9'"
    assert js(url, "anna", "lead show 2 --json")["status"] == "open"  # nothing closed: the second was not found
    assert refused(url, "olga", "lead close ext:CRM-2 --reason price").startswith("Error: user 'olga'")
