"""Each rule the engine enforces, on SQLite and PostgreSQL (the ``team`` fixture runs on both)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine import clock
from engine.errors import InvalidInputError, NotFoundError, PermissionDenied, RuleViolation
from tests.conftest import Team, snapshot

PV = "photovoltaics"


def pv_lead(team: Team, owner: str = "anna", **kw: object) -> dict:
    return team.as_(owner).add_lead(process=PV, name=kw.pop("name", "Łukasz Żółć"), **kw)


def finish_stage(team: Team, lead_id: int, owner: str = "anna") -> dict:
    """Complete every open mandatory task of the current stage as the right person."""
    lead = team.as_(owner).get_lead(lead_id)
    for task in lead["tasks"]:
        if task["stage"] == lead["stage"] and task["state"] == "open" and task["mandatory"]:
            doer = owner if task["owner"] == "salesperson" else {"analyst": "olga", "technician": "tomasz"}.get(
                task["owner"], "marta")
            team.as_(doer).complete_task(lead_id, task["id"])
    return team.as_(owner).get_lead(lead_id)


def test_every_inquiry_becomes_a_lead_at_the_first_stage(team: Team) -> None:
    lead = pv_lead(team, email="lukasz@example.pl", value="45 000,50")
    assert lead["stage"] == "register_lead"
    assert lead["status"] == "open"
    assert lead["owner"] == "anna"
    assert lead["value"] == "45000.50"
    assert lead["created_at"] == "2026-03-02T09:00:00"
    # Monday entry + 1 business day = end of Tuesday
    assert lead["stage_due_at"] == "2026-03-03T23:59:59"
    assert {t["id"]: t["state"] for t in lead["tasks"]} == {"record_contact": "open", "check_history": "open"}


def test_the_lead_json_has_the_documented_keys(team: Team) -> None:
    lead = pv_lead(team)
    for key in ("id", "client_id", "process", "process_version", "stage", "status", "owner", "source", "product",
                "value", "fields", "tasks", "created_at", "stage_entered_at", "closed_at", "close_reason"):
        assert key in lead
    for key in ("id", "stage", "name", "owner", "mandatory", "state", "due_at"):
        assert key in lead["tasks"][0]


def test_a_stage_is_not_left_with_a_mandatory_task_open(team: Team) -> None:
    lead = pv_lead(team)
    before = snapshot(team.url)
    with pytest.raises(RuleViolation) as err:
        team.as_("anna").advance(lead["id"])
    assert str(err.value) == (f"can't leave stage 'register_lead' of lead {lead['id']}: "
                              "mandatory tasks open: record_contact")
    assert snapshot(team.url) == before


def test_optional_tasks_do_not_block(team: Team) -> None:
    lead = pv_lead(team)
    team.as_("anna").complete_task(lead["id"], "record_contact")
    moved = team.as_("anna").advance(lead["id"])
    assert moved["stage"] == "first_contact"
    assert moved["stage_due_at"] == "2026-03-04T23:59:59"  # 2 business days


def test_required_fields_block_leaving_and_are_listed(team: Team) -> None:
    lead = pv_lead(team)
    for _ in range(2):
        finish_stage(team, lead["id"])
        team.as_("anna").advance(lead["id"])
    finish_stage(team, lead["id"])
    with pytest.raises(RuleViolation, match="required fields not set: roof_type, roof_area_m2, financing"):
        team.as_("anna").advance(lead["id"])


def test_task_conditions_decide_applicability_and_follow_field_changes(team: Team) -> None:
    lead = pv_lead(team, fields={"roof_type": "flat", "roof_area_m2": "40", "financing": "cash"})
    for _ in range(3):
        finish_stage(team, lead["id"])
        team.as_("anna").advance(lead["id"])
    tasks = {t["id"]: t["state"] for t in team.as_("anna").get_lead(lead["id"])["tasks"] if t["stage"] == "send_offer"}
    assert tasks["leasing_offer"] == "not_applicable"
    changed = team.as_("anna").set_fields(lead["id"], {"financing": "leasing"})
    tasks = {t["id"]: t["state"] for t in changed["tasks"] if t["stage"] == "send_offer"}
    assert tasks["leasing_offer"] == "open"
    with pytest.raises(RuleViolation, match="does not apply"):
        team.as_("olga").complete_task(lead["id"], "loan_offer")


def saas_lead_at_run_trial(team: Team) -> int:
    """A SaaS trial lead at 'run_trial', its tasks done, whose fields let no next stage apply."""
    anna = team.as_("anna")
    lead = anna.add_lead(process="saas_trial", name="Mihai Ionescu", fields={"plan": "team", "seats": "12"})
    spec = team.admin.spec("saas_trial")
    while anna.get_lead(lead["id"])["stage"] != "run_trial":
        stage = spec.stage(anna.get_lead(lead["id"])["stage"])
        missing = {f: _sample(spec, f) for f in stage.required_fields}
        if missing:
            anna.set_fields(lead["id"], missing)
        finish_stage(team, lead["id"])
        anna.advance(lead["id"])
    anna.set_fields(lead["id"], {f: _sample(spec, f) for f in spec.stage("run_trial").required_fields})
    finish_stage(team, lead["id"])
    anna.set_fields(lead["id"], {"activated": "no", "trial_extensions": "2"})
    return int(lead["id"])


def test_only_declared_transitions_and_conditions_on_them(team: Team) -> None:
    anna = team.as_("anna")
    lead_id = saas_lead_at_run_trial(team)
    before = snapshot(team.url)
    with pytest.raises(RuleViolation, match="the process allows only convert_to_paid, send_quote, extend_trial"):
        anna.advance(lead_id, to="register_lead")
    with pytest.raises(RuleViolation, match="no allowed next stage applies to this lead's fields"):
        anna.advance(lead_id)
    with pytest.raises(RuleViolation, match="'convert_to_paid' needs"):
        anna.advance(lead_id, to="convert_to_paid")
    with pytest.raises(NotFoundError, match="does not exist in process saas_trial"):
        anna.advance(lead_id, to="nowhere")
    assert snapshot(team.url) == before
    anna.set_fields(lead_id, {"trial_extensions": "1"})
    assert anna.advance(lead_id)["stage"] == "extend_trial"  # the only branch that applies now
    anna.set_fields(lead_id, {"activated": "yes"})
    finish_stage(team, lead_id)
    assert anna.advance(lead_id, to="convert_to_paid")["stage"] == "convert_to_paid"


def _sample(spec, field_id: str) -> object:  # type: ignore[no-untyped-def]
    f = spec.field_spec(field_id)
    return {"choice": f.options[0] if f.options else None, "bool": "yes", "number": "1", "money": "100",
            "date": "2026-04-01", "text": "x"}[f.type]


def test_closing_needs_a_catalogue_reason(team: Team) -> None:
    lead = pv_lead(team)
    before = snapshot(team.url)
    with pytest.raises(RuleViolation) as err:
        team.as_("anna").close_lead(lead["id"], "client was rude")
    assert "'client was rude' is not a closure reason of process photovoltaics" in str(err.value)
    assert "competitor (Chose a competitor)" in str(err.value)
    assert snapshot(team.url) == before
    closed = team.as_("anna").close_lead(lead["id"], "competitor", note="went with SunCo")
    assert closed["status"] == "lost"
    assert closed["close_reason"] == "competitor"
    assert closed["close_note"] == "went with SunCo"


def test_a_closed_lead_cannot_be_advanced_or_edited_but_can_be_reopened(team: Team) -> None:
    lead = pv_lead(team)
    team.as_("anna").complete_task(lead["id"], "record_contact")
    team.as_("anna").close_lead(lead["id"], "price")
    for action in (lambda: team.as_("anna").advance(lead["id"]),
                   lambda: team.as_("anna").set_fields(lead["id"], {"roof_type": "flat"}),
                   lambda: team.as_("anna").complete_task(lead["id"], "check_history"),
                   lambda: team.as_("marta").close_lead(lead["id"], "price")):
        with pytest.raises(RuleViolation, match="it is lost"):
            action()
    with pytest.raises(PermissionDenied, match="only a manager of team north or an admin may"):
        team.as_("anna").reopen(lead["id"])
    reopened = team.as_("marta").reopen(lead["id"])
    assert reopened["status"] == "open"
    assert reopened["stage"] == "register_lead"
    # reopened into the stage it left: the work done there is kept
    assert {t["id"]: t["state"] for t in reopened["tasks"]}["record_contact"] == "done"
    kinds = [e["kind"] for e in team.as_("anna").history(lead["id"])]
    assert kinds == ["created", "task_done", "closed", "reopened"]


def test_reopen_into_another_stage_starts_it_fresh(team: Team) -> None:
    lead = pv_lead(team)
    finish_stage(team, lead["id"])
    team.as_("anna").advance(lead["id"])
    team.as_("anna").close_lead(lead["id"], "bad_timing")
    reopened = team.as_("marta").reopen(lead["id"], stage="register_lead")
    assert reopened["stage"] == "register_lead"
    assert {t["id"]: t["state"] for t in reopened["tasks"] if t["stage"] == "register_lead"}["record_contact"] == "open"
    with pytest.raises(RuleViolation, match="only won or lost leads reopen"):
        team.as_("marta").reopen(lead["id"])


def test_a_sale_is_won_only_from_the_won_stage_with_its_tasks_done(team: Team) -> None:
    lead = pv_lead(team, fields={"roof_type": "pitched", "roof_area_m2": "35", "financing": "loan"})
    with pytest.raises(RuleViolation, match="a sale is won by completing 'close_contract'"):
        team.as_("anna").win(lead["id"])
    for _ in range(3):
        finish_stage(team, lead["id"])
        team.as_("anna").advance(lead["id"])
    team.as_("anna").set_fields(lead["id"], {"offer_value": "38000"})
    finish_stage(team, lead["id"])
    team.as_("anna").advance(lead["id"])
    with pytest.raises(RuleViolation, match="mandatory tasks open: closing_call, signed_contract"):
        team.as_("anna").win(lead["id"])
    with pytest.raises(RuleViolation, match="the last stage"):
        team.as_("anna").advance(lead["id"])
    finish_stage(team, lead["id"])
    won = team.as_("anna").win(lead["id"])
    assert won["status"] == "won"
    with pytest.raises(RuleViolation, match="it is won"):
        team.as_("anna").advance(lead["id"])


def test_typed_fields_refuse_wrong_values_and_change_nothing(team: Team) -> None:
    lead = pv_lead(team)
    before = snapshot(team.url)
    cases = {
        "roof_area_m2": ("lots", "takes a number"),
        "financing": ("barter", "must be one of: cash, loan, leasing"),
        "wants_insurance": ("maybe", "takes true or false"),
        "install_by": ("31.02.2026", "takes a date written YYYY-MM-DD"),
        "budget": ("12.345", "more than two decimals"),
        "nonexistent": ("1", "is not a field of process photovoltaics"),
    }
    for field, (value, message) in cases.items():
        with pytest.raises(InvalidInputError, match=message):
            team.as_("anna").set_fields(lead["id"], {field: value})
    # one bad value in a batch: none of the batch is written
    with pytest.raises(InvalidInputError):
        team.as_("anna").set_fields(lead["id"], {"roof_type": "flat", "roof_area_m2": "-5"})
    assert snapshot(team.url) == before
    ok = team.as_("anna").set_fields(lead["id"], {"budget": "45 000,50", "wants_insurance": "tak",
                                                  "install_by": "2026-06-01", "roof_area_m2": "42.5"})
    assert ok["fields"] == {"budget": "45000.50", "wants_insurance": True, "install_by": "2026-06-01",
                            "roof_area_m2": 42.5}
    assert Decimal(ok["fields"]["budget"]) == Decimal("45000.50")


def test_salespeople_act_only_on_their_own_leads_and_their_role_tasks(team: Team) -> None:
    lead = pv_lead(team)
    before = snapshot(team.url)
    with pytest.raises(PermissionDenied, match="user 'piotr' \\(salesperson, team north\\) may not see lead"):
        team.as_("piotr").advance(lead["id"])
    with pytest.raises(PermissionDenied, match="may not see lead"):
        team.as_("ioana").get_lead(lead["id"])
    with pytest.raises(PermissionDenied, match="only a manager of team north"):
        team.as_("anna").assign(lead["id"], "piotr")
    with pytest.raises(PermissionDenied, match="may not see lead"):  # a manager of the other team: no more said
        team.as_("radu").assign(lead["id"], "piotr")
    with pytest.raises(PermissionDenied, match="only an admin"):
        team.as_("marta").add_user("eve", "salesperson")
    with pytest.raises(PermissionDenied, match="is not registered"):
        team.as_("mallory").get_lead(lead["id"])
    assert snapshot(team.url) == before
    moved = team.as_("marta").assign(lead["id"], "piotr")
    assert moved["owner"] == "piotr"
    assert team.as_("piotr").complete_task(lead["id"], "record_contact")["owner"] == "piotr"


def test_department_tasks_belong_to_the_department(team: Team) -> None:
    lead = pv_lead(team, fields={"roof_type": "flat", "roof_area_m2": "40", "financing": "cash"})
    for _ in range(3):
        finish_stage(team, lead["id"])
        team.as_("anna").advance(lead["id"])
    with pytest.raises(PermissionDenied, match="owned by the Pricing analyst"):
        team.as_("anna").complete_task(lead["id"], "pricing")
    with pytest.raises(PermissionDenied, match="owned by the Pricing analyst"):
        team.as_("tomasz").complete_task(lead["id"], "pricing")
    done = team.as_("olga").complete_task(lead["id"], "pricing", note="38 400 PLN incl. VAT")
    task = next(t for t in done["tasks"] if t["id"] == "pricing")
    assert (task["state"], task["done_by"], task["note"]) == ("done", "olga", "38 400 PLN incl. VAT")
    assert [t["task"] for t in team.as_("olga").list_tasks()] == ["notify_analyst"]  # the optional acknowledgement
    anna_tasks = {t["task"] for t in team.as_("anna").list_tasks()}
    assert "technical_check" not in anna_tasks
    assert {"send_offer", "draft_contract"} <= anna_tasks


def test_unknown_ids_give_clear_errors(team: Team) -> None:
    with pytest.raises(NotFoundError, match="lead 999 does not exist"):
        team.as_("anna").get_lead(999)
    with pytest.raises(NotFoundError, match=r"process 'photovoltaic' is not loaded; did you mean 'photovoltaics'\?"):
        team.as_("anna").add_lead(process="photovoltaic", name="X")
    lead = pv_lead(team)
    with pytest.raises(NotFoundError, match=r"no task 'record' .*did you mean 'record_contact'"):
        team.as_("anna").complete_task(lead["id"], "record")
    with pytest.raises(NotFoundError, match="user 'pitor' does not exist; did you mean 'piotr'"):
        team.as_("marta").assign(lead["id"], "pitor")
    with pytest.raises(NotFoundError, match="client 4242 does not exist"):
        team.as_("anna").client(4242)


@pytest.mark.parametrize("name", ["Łukasz Żółć", "Жанна Смирнова", "Ștefan Lăcătuș", "O'Brien & Söhne GmbH"])
def test_foreign_names_round_trip(team: Team, name: str) -> None:
    lead = pv_lead(team, name=name, company=name)
    again = team.as_("anna").get_lead(lead["id"])
    assert (again["name"], again["company"]) == (name, name)
    assert team.as_("anna").client(lead["client_id"])["name"] == name


def test_closing_keeps_client_lead_and_history_and_a_client_may_start_again(team: Team) -> None:
    lead = pv_lead(team)
    team.as_("anna").close_lead(lead["id"], "bad_timing")
    again = team.as_("anna").add_lead(process="leasing", name="ignored", client_id=lead["client_id"])
    client = team.as_("anna").client(lead["client_id"])
    assert [x["id"] for x in client["leads"]] == [lead["id"], again["id"]]
    assert [x["status"] for x in client["leads"]] == ["lost", "open"]
    assert len(team.as_("anna").history(lead["id"])) == 2


def test_time_honours_leadflow_now(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    # The installation's zone is Europe/Warsaw (tests/conftest.py): instants are Warsaw wall-clock time.
    monkeypatch.setenv("LEADFLOW_NOW", "2026-05-01T10:00:00+00:00")  # May 1st: a holiday in Poland, a Friday
    lead = pv_lead(team)
    assert lead["created_at"] == "2026-05-01T12:00:00"
    # next business days: Mon May 4th (May 3rd, Constitution Day, is a Sunday)
    assert lead["stage_due_at"] == "2026-05-04T23:59:59"
    with clock.frozen(clock.parse_datetime("2026-05-04T08:00")):
        team.as_("anna").complete_task(lead["id"], "record_contact")
    assert team.as_("anna").history(lead["id"])[-1]["at"] == "2026-05-04T08:00:00"


def test_business_days_are_those_of_the_installations_zone(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    # 23:30 UTC on Sunday is 00:30 on Monday in Warsaw: the lead counts from Monday, due end of Tuesday
    monkeypatch.setenv("LEADFLOW_NOW", "2026-03-01T23:30:00Z")
    lead = pv_lead(team)
    assert (lead["created_at"], lead["stage_due_at"]) == ("2026-03-02T00:30:00", "2026-03-03T23:59:59")
    monkeypatch.setenv("LEADFLOW_TZ", "Mars/Olympus")
    with pytest.raises(InvalidInputError, match="is not a time zone name"):
        pv_lead(team)


def test_process_versions_pin_leads_and_migration_is_explicit(team: Team, tmp_path, processes_dir) -> None:  # type: ignore[no-untyped-def]
    lead = pv_lead(team)
    text = (processes_dir / "photovoltaics.yaml").read_text(encoding="utf-8")
    changed = tmp_path / "photovoltaics.yaml"
    changed.write_text(text.replace("Înregistrează lead-ul}\n    deadline_days: 1",
                                    "Înregistrează lead-ul}\n    deadline_days: 3"), encoding="utf-8")
    assert team.admin.load_process(changed)["version"] == 2
    assert team.admin.load_process(changed)["created"] is False
    assert team.as_("anna").get_lead(lead["id"])["process_version"] == 1
    newer = pv_lead(team, name="Nowy Klient")
    assert newer["process_version"] == 2
    assert newer["stage_due_at"] == "2026-03-05T23:59:59"
    team.admin.migrate_process(PV, 2)
    migrated = team.as_("anna").get_lead(lead["id"])
    assert migrated["process_version"] == 2
    assert migrated["stage_due_at"] == "2026-03-05T23:59:59"
    assert team.as_("anna").history(lead["id"])[-1]["kind"] == "migrated"


def test_migration_refuses_when_a_stage_or_done_task_is_missing(team: Team, tmp_path, processes_dir) -> None:  # type: ignore[no-untyped-def]
    lead = pv_lead(team)
    team.as_("anna").complete_task(lead["id"], "record_contact")
    text = (processes_dir / "photovoltaics.yaml").read_text(encoding="utf-8")
    changed = tmp_path / "photovoltaics.yaml"
    changed.write_text(text.replace("id: record_contact,", "id: record_contact_details,"), encoding="utf-8")
    team.admin.load_process(changed)
    before = snapshot(team.url)
    with pytest.raises(RuleViolation, match=f"lead {lead['id']} has completed tasks record_contact"):
        team.admin.migrate_process(PV, 2)
    assert snapshot(team.url) == before
    with pytest.raises(PermissionDenied):
        team.as_("marta").migrate_process(PV, 2)


def test_user_roles_must_be_known(team: Team) -> None:
    assert team.admin.add_user("celina", "analyst")["role"] == "analyst"
    with pytest.raises(InvalidInputError, match="did you mean 'salesperson'"):
        team.admin.add_user("eve", "salesprson")
    with pytest.raises(RuleViolation, match="already exists"):
        team.admin.add_user("anna", "salesperson")
