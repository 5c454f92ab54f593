"""Process format 2: the upgrade steps (engine.formats), ``process upgrade``, and each key format 2 adds, from the
loader's located problems to the rule the engine enforces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import PermissionDenied, Problem, RuleViolation
from engine.formats import FORMAT, stored_1_to_2, upgrade_document, upgrade_stored
from engine.i18n import LANGUAGES
from engine.loader import check_bytes, load_file, upgrade_file
from engine.spec import ProcessSpec
from tests.conftest import Team, leadflow
from tests.test_engine_rules import finish_stage, pv_lead
from tests.test_loader import MINI
from tests.test_outbox import EMAILS, inbox, new_lead, smtp  # noqa: F401 - the fixtures of a local SMTP server
from tests.test_outbox import to_send_offer as to_send_offer_with_mail

HERE = Path(__file__).parent
FORMAT1 = HERE / "data" / "format1"
PROCESSES = HERE.parent / "processes"
SHIPPED = sorted(p.stem for p in PROCESSES.glob("*.yaml"))
ADDED = {"written_by", "after", "stages", "requires", "option_labels"}


def _without_added(value: object) -> object:
    if isinstance(value, dict) and value and set(value) <= set(LANGUAGES):  # a label in several languages
        return value["en"]
    if isinstance(value, dict):
        return {k: _without_added(v) for k, v in value.items() if k not in ADDED}
    if isinstance(value, list):
        return [_without_added(v) for v in value]
    return value


# -- format 1 files, stored specs and the upgrade ------------------------------------------------------------

def test_every_shipped_process_is_written_in_the_current_format() -> None:
    assert sorted(p.stem for p in FORMAT1.glob("*.yaml")) == SHIPPED
    for name in SHIPPED:
        assert load_file(PROCESSES / f"{name}.yaml").format == FORMAT == 2


@pytest.mark.parametrize("name", SHIPPED)
def test_a_format_1_file_loads_to_its_format_2_rewrite_less_the_new_keys(name: str) -> None:
    """Today's format-1 file and the shipped format-2 file differ only in the keys format 2 added."""
    old, new = load_file(FORMAT1 / f"{name}.yaml"), load_file(PROCESSES / f"{name}.yaml")
    assert old.format == new.format == FORMAT
    assert _without_added(old.to_dict()) == _without_added(new.to_dict())


@pytest.mark.parametrize("name", SHIPPED)
def test_process_upgrade_rewrites_a_format_1_file_to_the_same_spec(name: str, tmp_path: Path) -> None:
    source = FORMAT1 / f"{name}.yaml"
    text, problems = upgrade_file(source)
    if name in ("leasing", "mortgage"):  # a required field only a department works on: format 2 asks who writes it
        assert text is None
        [problem] = problems
        assert "in format 2: required field" in problem.message and "add written_by: [" in problem.message
        return
    assert problems == [] and text is not None
    original = source.read_text(encoding="utf-8")
    assert text.decode("utf-8") == original.replace("\nformat: 1\n", "\nformat: 2\n", 1)  # comments kept
    assert check_bytes(text, "x.yaml")[0] == load_file(source)


@pytest.mark.parametrize("name", SHIPPED)
def test_a_stored_format_1_spec_reads_through_its_step(name: str) -> None:
    spec = load_file(FORMAT1 / f"{name}.yaml")
    stored = {**json.loads(spec.canonical_json()), "format": 1}  # as a format-1 leadflow stored it
    with pytest.raises(ValueError, match="format 1 is not of the current format 2; read it through"):
        ProcessSpec.from_dict(stored)
    assert stored_1_to_2(stored)["format"] == 2
    assert ProcessSpec.from_dict(upgrade_stored(stored)) == spec


def test_unknown_formats_are_refused_by_the_steps() -> None:
    with pytest.raises(ValueError, match="stored spec of format 3: this leadflow reads formats 1, 2"):
        upgrade_stored({"format": 3})
    data = {"format": 1, "id": "x"}
    assert upgrade_document(data) == {"format": 2, "id": "x"} and data["format"] == 1  # a copy


def test_a_format_1_file_may_not_use_the_keys_of_format_2() -> None:
    text = MINI.replace("      - {id: record_contact, name: Record the contact, owner: salesperson}",
                        "      - {id: record_contact, name: Record the contact, owner: salesperson, after: [x]}")
    assert text != MINI
    spec, problems = check_bytes(text.encode(), "f.yaml")
    assert spec is None
    assert any(p.path == "stages[0].tasks[0].after" and p.message.startswith(
        "'after' is a key of format 2, and this file is written in format 1; write 'format: 2' at its top "
        "(leadflow process upgrade FILE does it)") for p in problems)


def test_upgrade_cli(tmp_path: Path) -> None:
    source = tmp_path / "pv.yaml"
    source.write_bytes((FORMAT1 / "photovoltaics.yaml").read_bytes())
    printed = leadflow(None, None, ["process", "upgrade", str(source)])
    assert printed.exit_code == 0 and "\nformat: 2\n" in printed.stdout and "# " in printed.stdout
    out = tmp_path / "out.yaml"
    assert leadflow(None, None, ["process", "upgrade", str(source), "--output", str(out)]).exit_code == 0
    assert out.read_text(encoding="utf-8") == printed.stdout
    again = leadflow(None, None, ["process", "upgrade", str(source), "--output", str(out)])
    assert again.exit_code == 1 and "exists; add --force to replace it" in again.output
    assert leadflow(None, None, ["process", "upgrade", str(source), "--in-place"]).exit_code == 0
    assert source.read_text(encoding="utf-8") == printed.stdout
    done = leadflow(None, None, ["process", "upgrade", str(source), "--in-place"])
    assert done.exit_code == 1
    assert f"{source}:6:9: format: the file is in format 2 already, the current one; there is nothing to upgrade" \
        in done.output
    assert source.read_text(encoding="utf-8") == printed.stdout


# -- the loader's problems with the new keys ------------------------------------------------------------------

V2 = MINI.replace("format: 1", "format: 2")


def problems_of(text: str) -> list[Problem]:
    spec, problems = check_bytes(text.encode(), "f.yaml")
    assert spec is None
    return problems


def located(problems: list[Problem]) -> list[tuple[int, int, str, str]]:
    return [(p.line, p.column, p.path, p.message) for p in problems]


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def test_mini_is_what_these_tests_edit() -> None:
    assert "      - {id: record_contact, name: Record the contact, owner: salesperson}\n" in V2
    assert "  - {id: budget, label: Budget, type: money, bant: B, min: 0}\n" in V2


def with_tasks(*tasks: str) -> str:
    return V2.replace("      - {id: record_contact, name: Record the contact, owner: salesperson}\n",
                      "".join(f"      - {t}\n" for t in tasks))


def test_after_happy_path() -> None:
    spec, problems = check_bytes(with_tasks("{id: a, name: A, owner: salesperson}",
                                            "{id: b, name: B, owner: salesperson, after: [a]}").encode(), "f.yaml")
    assert problems == [] and spec is not None and spec.stages[0].task("b").after == ("a",)  # type: ignore[union-attr]


@pytest.mark.parametrize(("tasks", "column", "path", "message"), [
    (["{id: a, name: A, owner: salesperson, after: [b]}"], 54, "stages[0].tasks[0].after[0]",
     "task 'b' is not a task of stage 'register_lead'; its tasks: a"),
    (["{id: a, name: A, owner: salesperson, after: [record_contac]}", "{id: record_contact, name: R, owner: analyst}"],
     54, "stages[0].tasks[0].after[0]",
     "task 'record_contac' is not a task of stage 'register_lead'; did you mean 'record_contact'? its tasks: a, "
     "record_contact"),
    (["{id: a, name: A, owner: salesperson, after: [a]}"], 54, "stages[0].tasks[0].after[0]",
     "task 'a' cannot come after itself"),
    (["{id: a, name: A, owner: salesperson, after: [b]}", "{id: b, name: B, owner: salesperson, after: [a]}"],
     53, "stages[0].tasks[0].after",
     "the tasks wait for each other in a circle: a -> b -> a, so none of them can ever be done"),
])
def test_after_refusals(tasks: list[str], column: int, path: str, message: str) -> None:
    text = with_tasks(*tasks)
    found = located(problems_of(text))
    assert (line_of(text, "{id: a,"), column, path, message) in found, found
    assert len(found) == 1


def test_written_by_names_declared_roles() -> None:
    text = V2.replace("  - {id: budget, label: Budget, type: money, bant: B, min: 0}\n",
                      "  - {id: budget, label: Budget, type: money, bant: B, min: 0, written_by: [anlyst]}\n")
    assert located(problems_of(text)) == [(line_of(text, "{id: budget"), 76, "fields[0].written_by[0]",
                                           "role 'anlyst' is not declared; did you mean 'analyst'? declared roles: "
                                           "salesperson, analyst")]


def test_a_required_field_someone_working_the_stage_can_write() -> None:
    text = with_tasks("{id: a, name: A, owner: analyst}").replace(
        "    deadline_days: 1\n", "    deadline_days: 1\n    required_fields: [budget]\n", 1)
    message = ("required field 'budget' can be written by nobody who works stage 'register_lead': its tasks belong "
               "to analyst, the field is written by salesperson; add written_by: [analyst] to field 'budget'")
    assert located(problems_of(text)) == [(line_of(text, "required_fields: [budget]"), 23,
                                           "stages[0].required_fields[0]", message)]
    assert check_bytes(text.replace("format: 2", "format: 1").encode(), "f.yaml")[1] == []  # format 1: as before
    fixed = text.replace("min: 0}", "min: 0, written_by: [analyst]}", 1)
    assert check_bytes(fixed.encode(), "f.yaml")[1] == []


REASON = "  - {id: duplicate, label: Duplicate of another lead, kind: removal}\n"
CONTACT = "    tasks:\n      - {id: call_client, name: Call the client, owner: salesperson}\n"


@pytest.mark.parametrize(("old", "new", "needle", "expected"), [
    (REASON, REASON.replace("}", ", stages: [first_contac], requires: [budgett]}"), "{id: duplicate", [
        (0, 79, "closure_reasons[1].stages[0]",
         "stage 'first_contac' is not declared; did you mean 'first_contact'? declared stages: register_lead, "
         "first_contact, send_offer"),
        (0, 105, "closure_reasons[1].requires[0]",
         "field 'budgett' is not declared; did you mean 'budget'? declared fields: budget, area_m2, financing, note"),
    ]),
    (CONTACT, CONTACT + "    on_enter:\n      - remind: {template: offer_follow_up, to: owner, after_days: 1, "
     "chases: call_clint}\n      - remind: {template: offer_follow_up, to: owner, after_days: 2}\n",
     "chases: call_clint", [
         (0, 79, "stages[1].on_enter[0].remind.chases",
          "task 'call_clint' is not a task of stage 'first_contact'; did you mean 'call_client'? its tasks: "
          "call_client"),
         (1, 17, "stages[1].on_enter[1].remind",
          "another reminder of stage 'first_contact' (line {line}) sends template 'offer_follow_up' to owner, so "
          "leadflow could not tell which task each one chases; give this one a template of its own"),
     ]),
], ids=["closure_reason_stages_and_requires", "chases_names_a_task_of_its_stage"])
def test_references_of_the_new_keys(old: str, new: str, needle: str,
                                    expected: list[tuple[int, int, str, str]]) -> None:
    text = V2.replace(old, new)
    line = line_of(text, needle)
    assert located(problems_of(text)) == [(line + below, column, path, message.format(line=line))
                                          for below, column, path, message in expected]


# -- the engine's rules -------------------------------------------------------------------------------------

@pytest.fixture
def v2_processes(tmp_path: Path) -> Path:
    """The shipped photovoltaics process, with a closure reason limited to a stage and one that requires a field."""
    folder = tmp_path / "processes"
    folder.mkdir()
    text = (PROCESSES / "photovoltaics.yaml").read_text(encoding="utf-8")
    text = text.replace("ro: A ales un concurent}, kind: refusal, revisit_after_days: 365}",
                        "ro: A ales un concurent}, kind: refusal, revisit_after_days: 365, "
                        "requires: [offer_value]}\n"
                        "  - {id: too_late, label: Came too late, kind: removal, stages: [register_lead]}\n"
                        "  - {id: no_answer, label: No answer to three calls, kind: removal, min_attempts: 3}")
    assert "too_late" in text
    (folder / "photovoltaics.yaml").write_text(text, encoding="utf-8")
    return folder


def to_send_offer(team: Team) -> int:
    lead = pv_lead(team)
    team.as_("anna").set_fields(lead["id"], {"roof_type": "pitched", "roof_area_m2": "40", "financing": "leasing"})
    for _ in range(3):
        finish_stage(team, lead["id"])
        team.as_("anna").advance(lead["id"])
    assert team.as_("anna").get_lead(lead["id"])["stage"] == "send_offer"
    return int(lead["id"])


def test_a_task_after_others_waits_for_them(team: Team) -> None:
    lead_id = to_send_offer(team)
    with pytest.raises(RuleViolation) as err:
        team.as_("anna").complete_task(lead_id, "send_offer")
    assert str(err.value) == (f"can't complete task 'send_offer' of lead {lead_id} yet: it comes after "
                              "technical_check, pricing, leasing_offer, not done yet")
    team.as_("tomasz").complete_task(lead_id, "technical_check")
    team.as_("olga").complete_task(lead_id, "pricing")
    team.as_("olga").complete_task(lead_id, "leasing_offer")  # loan_offer does not apply: it does not wait
    assert team.as_("anna").complete_task(lead_id, "send_offer")["version"]


def test_a_department_writes_its_fields_with_its_task(team: Team) -> None:
    lead_id = to_send_offer(team)
    done = team.as_("olga").complete_task(lead_id, "pricing", values={"offer_value": "42000"})
    assert done["fields"]["offer_value"] == "42000.00"
    assert [t["state"] for t in done["tasks"] if t["id"] == "pricing"] == ["done"]
    team.as_("olga").set_fields(lead_id, {"offer_value": "41000"})
    with pytest.raises(PermissionDenied) as err:
        team.as_("olga").set_fields(lead_id, {"offer_value": "1", "roof_type": "flat"})
    assert str(err.value) == (f"user 'olga' (analyst, team north) may not edit roof_type of lead {lead_id}: the "
                              "analyst writes only offer_value; the rest is its owner's or a manager's")
    with pytest.raises(PermissionDenied, match="may not edit roof_type"):  # nothing done: one transaction
        team.as_("olga").complete_task(lead_id, "leasing_offer", values={"roof_type": "flat"})
    lead = team.as_("anna").get_lead(lead_id)
    assert lead["fields"]["offer_value"] == "41000.00"
    assert [t["state"] for t in lead["tasks"] if t["id"] == "leasing_offer"] == ["open"]
    with pytest.raises(PermissionDenied, match="may not edit lead"):
        team.as_("tomasz").set_fields(lead_id, {"offer_value": "1"})


def test_closure_reasons_of_some_stages_and_with_required_fields(db_url: str, v2_processes: Path) -> None:
    from engine.api import Engine
    from tests.conftest import build_team

    build_team(db_url, v2_processes)
    team = Team(db_url, Engine.open(db_url, user="root"))
    try:
        lead_id = pv_lead(team)["id"]
        finish_stage(team, lead_id)
        team.as_("anna").advance(lead_id)
        with pytest.raises(RuleViolation) as err:
            team.as_("anna").close_lead(lead_id, "too_late")
        assert str(err.value) == (f"can't close lead {lead_id} for 'too_late' from 'first_contact': that reason is "
                                  "for the stages register_lead only")
        with pytest.raises(RuleViolation) as err:
            team.as_("anna").close_lead(lead_id, "competitor")
        assert str(err.value) == (f"can't close lead {lead_id} for 'competitor': it requires offer_value filled; "
                                  "give it with the closing (--set offer_value=...)")
        anna = team.as_("anna")
        for outcome in ("no_answer", "no_answer", "reached", "no_answer", "no_answer"):  # an answer starts over
            anna.activities.add(lead_id, kind="call", text="called", outcome=outcome)
        with pytest.raises(RuleViolation) as err:
            anna.close_lead(lead_id, "no_answer")
        assert str(err.value) == (f"can't close lead {lead_id} for 'no_answer': it needs 3 logged contact attempts, "
                                  "the lead has 2")
        anna.activities.add(lead_id, kind="call", text="called again", outcome="no_answer")
        assert anna.close_lead(lead_id, "no_answer")["status"] == "lost"
        lead_id = pv_lead(team)["id"]
        finish_stage(team, lead_id)
        anna.advance(lead_id)
        closed = team.as_("anna").close_lead(lead_id, "competitor", values={"offer_value": "30000"})
        assert (closed["status"], closed["fields"]["offer_value"]) == ("lost", "30000.00")
    finally:
        team.admin.close()


# -- choices ---------------------------------------------------------------------------------------------------

CHOICES = V2.replace("  - {id: note, label: Note, type: text}\n",
                     "  - {id: note, label: Note, type: text}\n"
                     "  - {id: products, label: Products wanted, type: choices, options: [rebar, cement, tools]}\n")


def with_products_condition(condition: str) -> str:
    return CHOICES.replace("        when: {field: financing, op: eq, value: loan}\n", f"        when: {condition}\n")


def test_choices_happy_path() -> None:
    from engine import rules

    text = with_products_condition("{field: products, op: contains, value: tools}")
    spec, problems = check_bytes(text.encode(), "f.yaml")
    assert problems == [] and spec is not None
    field = spec.field_spec("products")
    assert field is not None and field.type == "choices" and field.options == ("rebar", "cement", "tools")
    assert rules.coerce_field(field, " tools, rebar,tools ") == ["rebar", "tools"]  # the options' order, once
    assert rules.coerce_field(field, ["cement"]) == ["cement"]
    assert rules.coerce_field(field, ",") is None
    when = spec.stages[2].tasks[0].when
    assert when is not None
    assert [rules.evaluate(when, {"products": v}, spec) for v in (["rebar", "tools"], ["cement"], None)] == [
        True, False, False]
    negated = check_bytes(with_products_condition("{field: products, op: not_contains, value: tools}").encode(),
                          "f.yaml")[0]
    assert negated is not None
    cond = negated.stages[2].tasks[0].when
    assert cond is not None
    assert [rules.evaluate(cond, {"products": v}, negated) for v in (["rebar", "tools"], ["cement"], None)] == [
        False, True, True]
    from engine.condition_text import condition_text
    assert condition_text(cond) == "products does not contain tools"


def test_a_choices_value_outside_its_options_is_refused() -> None:
    from engine import rules
    from engine.errors import InvalidInputError

    spec = check_bytes(CHOICES.encode(), "f.yaml")[0]
    assert spec is not None
    field = spec.field_spec("products")
    assert field is not None
    with pytest.raises(InvalidInputError) as err:
        rules.coerce_field(field, "rebar,bricks")
    assert str(err.value) == ("field 'products' (choices) takes options from: rebar, cement, tools (separated by "
                              "commas); got 'bricks'")


@pytest.mark.parametrize(("condition", "path", "message"), [
    ("{field: products, op: eq, value: tools}", "stages[2].tasks[0].when.op",
     "operator 'eq' does not apply to choices field 'products'; use one of: contains, not_contains, is_set, "
     "is_unset"),
    ("{field: products, op: contains, value: toolz}", "stages[2].tasks[0].when.value",
     "'toolz' is not an option of choices field 'products'; did you mean 'tools'? options: rebar, cement, tools"),
    ("{field: products, op: contains, value: [tools]}", "stages[2].tasks[0].when.value",
     "operator 'contains' takes one value, not a list"),
    ("{field: financing, op: contains, value: loan}", "stages[2].tasks[0].when.op",
     "operator 'contains' does not apply to choice field 'financing'; use one of: eq, ne, in, not_in, is_set, "
     "is_unset"),
])
def test_choices_conditions_that_are_refused(condition: str, path: str, message: str) -> None:
    text = with_products_condition(condition)
    [problem] = problems_of(text)
    line = line_of(text, "        when: {field: ")
    assert (problem.line, problem.path, problem.message) == (line, path, message)
    assert problem.column == text.splitlines()[line - 1].index(
        "value" if path.endswith("value") else "op") + (8 if path.endswith("value") else 5)


def test_choices_without_options_and_in_format_1() -> None:
    text = CHOICES.replace(", options: [rebar, cement, tools]}", "}")
    assert located(problems_of(text)) == [(line_of(text, "{id: products"), 5, "fields[4]",
                                           "missing required key 'options' (a choices field lists its options)")]
    old = with_products_condition("{field: products, op: contains, value: tools}").replace("format: 2", "format: 1")
    assert located(problems_of(old)) == [
        (line_of(old, "{id: products"), 50, "fields[4].type",
         "type 'choices' is new in format 2, and this file is written in format 1; write 'format: 2' at its top "
         "(leadflow process upgrade FILE does it)"),
        (line_of(old, "when: {field: products"), 37, "stages[2].tasks[0].when.op",
         "op 'contains' is new in format 2, and this file is written in format 1; write 'format: 2' at its top "
         "(leadflow process upgrade FILE does it)"),
    ]


def test_a_choices_field_through_the_cli(tmp_path: Path) -> None:
    """Set as text separated by commas, shown and exported the same way, tested by contains in a condition."""
    from tests.conftest import ok, printed

    folder = tmp_path / "processes"
    folder.mkdir()
    (folder / "mini.yaml").write_text(with_products_condition("{field: products, op: contains, value: tools}"),
                                      encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    ok(url, None, ["init"])
    ok(url, None, ["process", "load", str(folder / "mini.yaml")])
    ok(url, None, ["user", "add", "anna", "--role", "salesperson"])
    ok(url, "anna", ["lead", "add", "--process", "mini", "--name", "Jan"])
    assert "products=rebar,tools" in printed(url, "anna", ["lead", "set", "1", "products=tools,rebar"])
    assert "products=rebar,tools" in printed(url, "anna", ["lead", "show", "1"])
    assert leadflow(url, None, ["export", "--output", str(tmp_path / "out.csv")]).exit_code == 0
    assert '"rebar,tools"' in (tmp_path / "out.csv").read_text(encoding="utf-8")


def test_min_attempts_is_a_key_of_format_2() -> None:
    text = MINI.replace("  - {id: duplicate, label: Duplicate of another lead, kind: removal}\n",
                        "  - {id: duplicate, label: Duplicate of another lead, kind: removal, min_attempts: 3}\n")
    assert located(problems_of(text)) == [
        (line_of(text, "{id: duplicate"), 70, "closure_reasons[1].min_attempts",
         "'min_attempts' is a key of format 2, and this file is written in format 1; write 'format: 2' at its top "
         "(leadflow process upgrade FILE does it)")]
    assert check_bytes(text.replace("format: 1", "format: 2").encode(), "f.yaml")[1] == []
    zero = text.replace("format: 1", "format: 2").replace("min_attempts: 3", "min_attempts: 0")
    assert located(problems_of(zero))[0][2:] == ("closure_reasons[1].min_attempts", "must be at least 1, got 0")


# -- deadline_hours ----------------------------------------------------------------------------------------------

def test_business_hours_are_counted_on_business_days_only() -> None:
    import datetime as dt

    from engine.calendar import add_business_hours

    at = dt.datetime
    assert add_business_hours(at(2026, 3, 6, 15, 0), 4, "PL", 9, 17) == at(2026, 3, 9, 11, 0)  # Friday -> Monday
    assert add_business_hours(at(2026, 3, 2, 7, 30), 4, "PL", 9, 17) == at(2026, 3, 2, 13, 0)  # before opening
    assert add_business_hours(at(2026, 3, 2, 18, 0), 1, "PL", 9, 17) == at(2026, 3, 3, 10, 0)  # after closing
    assert add_business_hours(at(2026, 3, 2, 9, 0), 8, "PL", 9, 17) == at(2026, 3, 2, 17, 0)  # the whole day
    assert add_business_hours(at(2026, 4, 3, 16, 0), 2, "PL", 9, 17) == at(2026, 4, 7, 10, 0)  # Easter Monday
    assert add_business_hours(at(2026, 3, 2, 10, 15), 3, "PL", 8, 12) == at(2026, 3, 3, 9, 15)


def test_deadline_hours_refusals() -> None:
    both = with_tasks("{id: a, name: A, owner: salesperson, deadline_days: 1, deadline_hours: 4}")
    assert located(problems_of(both)) == [
        (line_of(both, "{id: a,"), 80, "stages[0].tasks[0].deadline_hours",
         "task 'a' has a deadline in days and one in hours; keep one of deadline_days and deadline_hours")]
    backwards = V2.replace("calendar: PL\n", "calendar: PL\nbusiness_hours: {start: 17, end: 9}\n")
    assert located(problems_of(backwards)) == [
        (line_of(backwards, "business_hours"), 34, "business_hours.end",
         "the working day ends at 9, not after it starts (17); write e.g. {start: 9, end: 17}")]
    old = with_tasks("{id: a, name: A, owner: salesperson, deadline_hours: 4}").replace("format: 2", "format: 1")
    assert [p.path for p in problems_of(old)] == ["stages[0].tasks[0].deadline_hours"]


def test_a_task_due_in_working_hours(tmp_path: Path) -> None:
    import datetime as dt

    text = with_tasks("{id: a, name: A, owner: salesperson, deadline_hours: 4}").replace(
        "calendar: PL\n", "calendar: PL\nbusiness_hours: {start: 8, end: 16}\n")
    spec = check_bytes(text.encode(), "f.yaml")[0]
    assert spec is not None and spec.business_hours == (8, 16)
    assert ProcessSpec.from_dict(json.loads(spec.canonical_json())) == spec
    from engine.state import task_due_at

    stage = spec.stages[0]
    task = stage.task("a")
    assert task is not None and task.deadline_hours == 4
    assert task_due_at(dt.datetime(2026, 3, 6, 14, 0), task, stage, spec) == dt.datetime(2026, 3, 9, 10, 0)


def test_the_insurer_calls_back_within_four_working_hours(team: Team) -> None:
    lead = team.as_("anna").add_lead(process="life_insurance", name="Jan")  # Monday 2026-03-02 09:00
    team.as_("anna").complete_task(lead["id"], "record_contact")
    moved = team.as_("anna").advance(lead["id"])
    due = {t["id"]: t["due_at"] for t in moved["tasks"] if t["stage"] == "first_contact"}
    assert due == {"call_client": "2026-03-02T13:00:00", "book_meeting": "2026-03-04T23:59:59"}


# -- reminders that chase a task ---------------------------------------------------------------------------------

def test_chases_is_a_key_of_format_2() -> None:
    text = V2.replace(CONTACT, CONTACT + "    on_enter:\n      - remind: {template: offer_follow_up, to: owner, "
                      "after_days: 1, chases: call_client}\n")
    assert check_bytes(text.encode(), "f.yaml")[1] == []
    old = text.replace("format: 2", "format: 1")
    assert [p.path for p in problems_of(old)] == ["stages[1].on_enter[0].remind.chases"]


@pytest.mark.usefixtures("smtp")
def test_a_reminder_is_cancelled_once_the_task_it_chases_is_done(db_url: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.api import Engine
    from tests.conftest import build_team

    folder = tmp_path / "processes"
    folder.mkdir()
    text = (PROCESSES / "photovoltaics.yaml").read_text(encoding="utf-8").replace(
        "      - remind: {template: offer_follow_up, to: owner, after_days: 5}",
        "      - remind: {template: offer_follow_up, to: owner, after_days: 5, chases: draft_contract}")
    (folder / "photovoltaics.yaml").write_text(text, encoding="utf-8")
    build_team(db_url, folder)
    team = Team(db_url, Engine.open(db_url, user="root"))
    try:
        for name, address in EMAILS.items():
            team.admin.set_user_email(name, address)
        chased, open_ = (new_lead(team.as_("anna"), name=n) for n in ("Jan Nowak", "Ewa Lis"))
        for lead in (chased, open_):
            to_send_offer_with_mail(team, lead["id"])
        team.as_("anna").complete_task(chased["id"], "draft_contract")
        monkeypatch.setenv("LEADFLOW_NOW", "2026-03-09T09:00:00")
        team.admin.run_due()
        follow_ups = {m["lead_id"]: (m["state"], m["last_error"]) for m in team.admin.list_outbox()
                      if m["template"] == "offer_follow_up"}
        assert follow_ups == {
            chased["id"]: ("cancelled", f"reminder not sent: task 'draft_contract' of lead {chased['id']} is done"),
            open_["id"]: ("sent", None)}
    finally:
        team.admin.close()


def test_a_reminder_to_a_department_is_format_2() -> None:
    text = V2.replace("    tasks:\n      - {id: call_client, name: Call the client, owner: salesperson}\n",
                      "    tasks:\n      - {id: call_client, name: Call the client, owner: salesperson}\n"
                      "    on_enter:\n      - remind: {template: offer_follow_up, to: analyst, after_days: 1}\n")
    spec, problems = check_bytes(text.encode(), "f.yaml")
    assert problems == [] and spec is not None and spec.stages[1].on_enter[0].to == "analyst"
    old = text.replace("format: 2", "format: 1")
    assert located(problems_of(old)) == [
        (line_of(old, "to: analyst"), 49, "stages[1].on_enter[0].remind.to",
         "a reminder to a role is new in format 2, and this file is written in format 1; write 'format: 2' at its "
         "top (leadflow process upgrade FILE does it)")]
    unknown = text.replace("to: analyst", "to: analist")
    assert located(problems_of(unknown))[0][2:] == (
        "stages[1].on_enter[0].remind.to",
        "'analist' is neither client, owner nor a declared role; declared roles: salesperson, analyst")
