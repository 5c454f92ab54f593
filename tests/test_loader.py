"""The loader: every broken file in tests/data/broken is refused with its problems located and explained,
and a valid file becomes a frozen, fully resolved spec whose hash does not depend on the file's layout."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from engine import process_yaml
from engine.errors import Problem, ProcessFileError
from engine.loader import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    check_bytes,
    check_file,
    expand_paths,
    format_path,
    load_file,
    path_problem,
    suggest,
)
from engine.spec import ProcessSpec

BROKEN = Path(__file__).resolve().parent / "data" / "broken"
PHOTOVOLTAICS = Path(__file__).resolve().parent.parent / "processes" / "photovoltaics.yaml"
WHEN_LINE = "        when: {field: financing, op: eq, value: loan}\n"

# The skeleton every broken file is a copy of (each with exactly one defect, plus a first comment line).
MINI = """\
format: 1
id: mini
title: Mini process
currency: PLN
calendar: PL
sales_cycle_days: 30
cool_off_days: 10

roles:
  - {id: salesperson, name: Salesperson}
  - {id: analyst, name: Pricing analyst}

fields:
  - {id: budget, label: Budget, type: money, bant: B, min: 0}
  - {id: area_m2, label: Area (m²), type: number}
  - {id: financing, label: Financing, type: choice, options: [cash, loan]}
  - {id: note, label: Note, type: text}

stages:
  - id: register_lead
    name: Register the lead
    deadline_days: 1
    tasks:
      - {id: record_contact, name: Record the contact, owner: salesperson}
  - id: first_contact
    name: Make the first contact
    deadline_days: 2
    warning_days: 1
    tasks:
      - {id: call_client, name: Call the client, owner: salesperson}
  - id: send_offer
    name: Send the offer
    deadline_days: 5
    tasks:
      - id: pricing
        name: Price the offer
        owner: analyst
        when: {field: financing, op: eq, value: loan}

won_stage: send_offer

closure_reasons:
  - {id: no_budget, label: No budget, kind: refusal, bant: B}
  - {id: duplicate, label: Duplicate of another lead, kind: removal}
"""

ALLOWED_TOP = (
    "$schema, format, id, title, description, maintainer, currency, calendar, business_hours, owner_role, "
    "sales_cycle_days, cool_off_days, stalled_after_days, language, default_team, assignment, roles, fields, stages, "
    "won_stage, closure_reasons"
)
WHEN = "stages[2].tasks[0].when"

# file stem -> (line, column, document path, fragments the message must contain).
# A path ending in "*" is a prefix. Every file here yields exactly this one problem.
EXPECTED: dict[str, tuple[int, int, str, tuple[str, ...]]] = {
    # -- reading and parsing ------------------------------------------------------------------
    "empty_file": (1, 1, "", ("the file is empty; a process file holds one YAML mapping",)),
    "comments_only": (1, 1, "", ("the file is empty",)),
    "top_level_list": (2, 1, "", ("expected a mapping of keys to values at the top, got a list",)),
    "two_documents": (47, 1, "", ("a second YAML document starts here; a process file holds exactly one",)),
    "tab_indentation": (34, 1, "", ("tab character in indentation; YAML indents with spaces only",)),
    "latin1": (16, 33, "", ("not valid UTF-8 (byte 0xB2); save the file as UTF-8",)),
    "utf16": (1, 1, "", ("file is UTF-16 encoded; save it as UTF-8",)),
    "utf16_no_bom": (1, 1, "", ("file is UTF-16 encoded; save it as UTF-8",)),
    "control_character": (4, 12, "", ("control character U+0007 is not allowed", "delete it")),
    "yaml_syntax_error": (20, 7, "", ("YAML syntax error", "flow mapping (started on line 18)",
                                      "expected ',' or '}'")),
    "duplicate_key": (35, 5, "stages[2].deadline_days",
                      ("duplicate key 'deadline_days' (first given on line 34)", "keep only the last one")),
    "key_not_text": (9, 1, "", ("key '2024' is not text", "quote it if you mean text")),
    "alias_bomb": (6, 9, "description.lol*", ("expands to more than 100,000 nodes (an alias bomb?)",)),
    "recursive_alias": (9, 14, "description[1]", ("an alias refers to a collection that contains it",)),
    "python_tag": (4, 8, "title", ("unsupported YAML tag !!python/object/apply:os.system",
                                   "plain YAML without tags")),
    "binary_tag": (33, 11, "stages[2].name", ("unsupported YAML tag !!binary",)),
    "merge_key": (27, 5, "stages[1]", ("merge keys (<<) are not supported; write the keys out",)),
    "nan_probability": (35, 18, "stages[2].probability", ("'.nan' is not a finite number",)),
    # -- the schema ---------------------------------------------------------------------------
    "unknown_key_typo": (20, 1, "stgaes", ("unknown key 'stgaes'; did you mean 'stages'?",
                                           f"allowed keys here: {ALLOWED_TOP}")),
    "stage_typo_key": (34, 5, "stages[2].deadline_dasy",
                       ("unknown key 'deadline_dasy'; did you mean 'deadline_days'?",)),
    "task_condition_typo_key": (39, 16, f"{WHEN}.feild", ("unknown key 'feild'; did you mean 'field'?",
                                                          "allowed keys here: field, op, value")),
    "action_typo": (31, 9, "stages[1].on_enter[0]",
                    ("has send_mail; did you mean 'send_email'?",
                     "expected one of these shapes: {create_task} or {send_email} or {remind}")),
    "missing_required_key": (2, 1, "", ("missing required key 'currency'",)),
    "id_with_spaces": (26, 9, "stages[1].id", ("'first contact' is not a valid id",
                                               "lowercase letters, digits and underscores",
                                               "(e.g. 'first_contact')")),
    "no_as_id": (44, 10, "closure_reasons[0].id",
                 ("expected text, got false (YAML 1.1 reads an unquoted no as false);",
                  "write it in quotes: 'no'")),
    "octal_title": (4, 8, "title",
                    ("expected text, got the number 8 (YAML reads 010 as the number 8); "
                     "write it in quotes: '010'",)),
    "yes_as_option": (17, 75, "fields[2].options[2]",
                      ("expected text, got true (YAML 1.1 reads an unquoted yes as true)", "'yes'")),
    "empty_title": (4, 7, "title", ("expected text, got nothing; give a value or remove the key",)),
    "zero_deadline": (34, 20, "stages[2].deadline_days", ("must be at least 1, got 0",)),
    "bad_currency": (5, 11, "currency", ("'pln' is not valid: write it in capitals, 'PLN'", "ISO 4217")),
    "bad_calendar_case": (6, 11, "calendar", ("'pl' is not valid: write it in capitals, 'PL'", "ISO 3166")),
    "bad_email_format": (11, 10, "maintainer.email", ("'jan.kowalski.example.com' is not a valid email",)),
    "options_on_text_field": (18, 41, "fields[3].options",
                              ("'options' are allowed only on fields of type choice",)),
    "choice_without_options": (17, 5, "fields[2]",
                               ("missing required key 'options' (a choice field lists its options)",)),
    "remind_role": (31, 47, "stages[1].on_enter[0].remind.to",  # a format-2 reminder in a format-1 file
                    ("a reminder to a role is new in format 2", "write 'format: 2' at its top")),
    # -- the semantic checks ------------------------------------------------------------------
    "unknown_role": (38, 16, "stages[2].tasks[0].owner",
                     ("owner 'analist' is not a declared role; did you mean 'analyst'?",
                      "declared roles: salesperson, analyst")),
    "unknown_owner_role": (9, 13, "owner_role",
                           ("the lead owner's role 'salesman' is not a declared role;",
                            "did you mean 'salesperson'?")),
    "unknown_default_owner_role": (11, 3, "roles",
                                   ("the lead owner's role defaults to 'salesperson', which is not",
                                    "set owner_role to one of: seller, analyst")),
    "bad_condition_field": (39, 23, f"{WHEN}.field",
                            ("field 'financng' is not declared; did you mean 'financing'?",
                             "declared fields: budget, area_m2, financing, note")),
    "bad_condition_operator_for_type": (39, 38, f"{WHEN}.op",
                                        ("operator 'gt' does not apply to choice field 'financing'",
                                         "use one of: eq, ne, in, not_in, is_set, is_unset")),
    "bad_condition_value_type": (39, 47, f"{WHEN}.value",
                                 ("number field 'area_m2' compares with a number, got 'large'",)),
    "bool_value_not_bool": (40, 47, f"{WHEN}.value", ("bool field 'insured' compares with true or false",)),
    "date_value_not_a_date": (40, 50, f"{WHEN}.value",
                              ("date field 'install_by' compares with a date written YYYY-MM-DD",
                               "got '2024-02-30'", ": a date that does not exist: February 2024 has 29 days")),
    "date_value_without_dashes": (40, 50, f"{WHEN}.value", ("written YYYY-MM-DD, got '20240301'",)),
    "choice_value_not_an_option": (39, 49, f"{WHEN}.value",
                                   ("'lease' is not an option of choice field 'financing'",
                                    "options: cash, loan")),
    "unary_operator_with_value": (39, 48, f"{WHEN}.value", ("operator 'is_set' takes no value",)),
    "list_operator_with_scalar": (39, 49, f"{WHEN}.value", ("operator 'in' takes a list of values",)),
    "required_field_unknown": (35, 31, "stages[2].required_fields[1]",
                               ("field 'are_m2' is not declared; did you mean 'area_m2'?",)),
    "send_email_to_unknown_role": (31, 45, "stages[1].on_enter[0].send_email.to",
                                   ("'accountant' is neither client, owner nor a declared role",
                                    "declared roles: salesperson, analyst")),
    "unreachable_stage": (28, 9, "stages[1].id",
                          ("stage 'first_contact' is unreachable:",
                           "no stage leads to it from 'register_lead'")),
    "dead_end_stage": (41, 9, "stages[3].id",
                       ("stage 'archive' is a dead end: it has no next stage",
                        "and is not the won stage 'send_offer'")),
    "next_stage_unknown": (31, 16, "stages[1].next[0].stage",
                           ("stage 'send_ofer' is not declared; did you mean 'send_offer'?",
                            "declared stages: register_lead, first_contact, send_offer")),
    "stage_leads_to_itself": (32, 16, "stages[1].next[1].stage",
                              ("stage 'first_contact' cannot lead to itself",)),
    "won_stage_with_next": (36, 7, "stages[2].next",
                            ("stage 'send_offer' is the won stage", "cannot list next stages")),
    "won_stage_unknown": (41, 12, "won_stage", ("stage 'sign_contract' is not declared",
                                                "declared stages: register_lead, first_contact, send_offer")),
    "stage_named_won": (32, 9, "stages[2].id", ("'won' is reserved for the state of a closed lead",)),
    "duplicate_stage_id": (32, 9, "stages[2].id",
                           ("stage id 'first_contact' is used twice (first on line 26)",)),
    "duplicate_task_id": (32, 14, "stages[1].tasks[1].id",
                          ("task id 'call_client' is used twice in stage 'first_contact'",
                           "(first on line 31)")),
    "duplicate_reason_id": (46, 10, "closure_reasons[2].id",
                            ("closure reason id 'no_budget' is used twice (first on line 44)",)),
    "duplicate_field_id": (19, 10, "fields[4].id", ("field id 'budget' is used twice (first on line 15)",)),
    "warning_not_shorter_than_deadline": (29, 19, "stages[1].warning_days",
                                          ("the warning window (2 business days) must be shorter",
                                           "than the stage's deadline (2)")),
    "negative_money_min": (15, 60, "fields[0].min", ("money must not be negative, got min -100",)),
    "min_above_max": (16, 66, "fields[1].max", ("max 20 is below min 500",)),
    "min_on_text_field": (18, 46, "fields[3].min",
                          ("'min' applies only to number and money fields, not text",)),
    "unknown_calendar": (6, 11, "calendar", ("calendar 'XX' is not a country the holidays package knows",)),
    # -- automation: templates, delays, language, assignment rules -----------------------------
    "unknown_template": (31, 32, "stages[1].on_enter[0].send_email.template",
                         ("template 'welcom' not found (no welcom.en.txt.j2 or welcom.txt.j2 in",
                          "processes/templates); did you mean 'welcome'?")),
    "delayed_email_zero_days": (31, 65, "stages[1].on_enter[0].send_email.after_days", ("must be at least 1, got 0",)),
    "language_in_capitals": (9, 11, "language", ("'PL' is not valid: write it in lowercase, 'pl'.",)),
    "assignment_condition_unknown_field": (48, 21, "assignment.rules[0].when.field",
                                           ("field 'regoin' is not declared; did you mean 'region'?",)),
    "assignment_rule_after_catch_all": (47, 7, "assignment.rules[1]",
                                        ("rule 2 can never apply: rule 1 (no 'when', no 'products') already "
                                         "places every lead; put the catch-all last",)),
    "assignment_zero_cap": (46, 31, "assignment.rules[0].max_open", ("must be at least 1, got 0",)),
    "assignment_empty_products": (46, 31, "assignment.rules[0].products", ("needs at least 1 item, got 0",)),
    # -- what the loader let through (issue 19) -------------------------------------------------
    # one rule for every slot: YAML 1.1 and 1.2 read an unquoted value alike, and numbers are decimal
    "yes_as_mandatory": (25, 87, "stages[0].tasks[0].mandatory",
                         ("YAML 1.1 reads an unquoted yes as true, YAML 1.2 as the text 'yes'; write true, "
                          "or 'yes' in quotes if you mean the text",)),
    "capital_on_as_mandatory": (25, 87, "stages[0].tasks[0].mandatory",
                                ("YAML 1.1 reads an unquoted On as true, YAML 1.2 as the text 'On'; write true",)),
    "off_as_review": (45, 78, "closure_reasons[1].review",
                      ("YAML 1.1 reads an unquoted off as false, YAML 1.2 as the text 'off'; write false",)),
    "octal_deadline": (34, 20, "stages[2].deadline_days",
                       ("010 has a leading zero: YAML 1.1 reads it as the octal number 8, YAML 1.2 as the "
                        "number 10; write 10 without the leading zero, or '010' in quotes if you mean the text",)),
    "hex_deadline": (34, 20, "stages[2].deadline_days",
                     ("0x0A is a hexadecimal number; write it in decimal, 10, or '0x0A' in quotes",)),
    "underscore_deadline": (34, 20, "stages[2].deadline_days",
                            ("YAML 1.1 reads 1_0 as the number 10 (it skips the underscores), YAML 1.2 as the "
                             "text '1_0'; write 10",)),
    "sexagesimal_deadline": (34, 20, "stages[2].deadline_days",
                             ("YAML 1.1 reads 1:30 as the base-60 number 90, YAML 1.2 as the text '1:30'; "
                              "write 90",)),
    "exponent_deadline": (34, 20, "stages[2].deadline_days",
                          ("expected a whole number, got the number 10.0 (written 1.0e+1); write 10",)),
    "float_deadline": (34, 20, "stages[2].deadline_days", ("expected a whole number, got the number 5.0; write 5",)),
    "leading_zero_value": (39, 48, f"{WHEN}.value",
                           ("08 has a leading zero: YAML 1.1 reads it as the text '08', YAML 1.2 as the number 8; "
                            "write 8 without the leading zero",)),
    "exponent_without_dot_value": (39, 48, f"{WHEN}.value",
                                   ("YAML 1.2 reads 1e3 as the number 1000, YAML 1.1 as the text '1e3'; "
                                    "write 1000",)),
    # control characters and bidi controls, however written, in any text
    "escape_in_task_name": (25, 36, "stages[0].tasks[0].name",
                            ("contains the control character U+001B, which a terminal would act on;",
                             "delete it")),
    "bidi_override_in_label": (44, 28, "closure_reasons[0].label",
                               ("contains the bidirectional control U+202E, which shows the text around it "
                                "in another order than it is written",)),
    "nul_in_title": (4, 8, "title", ("contains the control character U+0000",)),
    # the system's own roles
    "role_named_admin": (12, 10, "roles[1].id", ("'admin' is leadflow's own role (its administrators)",
                                                 "name the role for the work")),
    "role_named_intake": (12, 10, "roles[1].id", ("'intake' is leadflow's own role (the sources of the HTTP "
                                                  "intake)",)),
}

# Files with more than one problem: every problem, in the order reported (best first: see rank()).
EXPECTED_MANY: dict[str, list[tuple[int, int, str, str]]] = {
    "several_errors": [
        (6, 11, "calendar", "calendar 'XX' is not a country the holidays package knows"),
        (29, 19, "stages[1].warning_days", "the warning window (3 business days) must be shorter"),
        (38, 16, "stages[2].tasks[0].owner", "owner 'analist' is not a declared role; did you mean"),
        (41, 12, "won_stage", "stage 'sign_contract' is not declared"),
        (46, 10, "closure_reasons[2].id", "closure reason id 'duplicate' is used twice (first on line 45)"),
    ],
    "several_schema_errors": [
        (5, 11, "currency", "'pln' is not valid: write it in capitals, 'PLN'"),
        (29, 5, "stages[1].warnings", "unknown key 'warnings'; did you mean 'warning_days'?"),
        (34, 20, "stages[2].deadline_days", "must be at least 1, got 0"),
        (45, 61, "closure_reasons[1].kind", "the text 'deleted' is not allowed; expected one of: refusal,"),
    ],
    "three_missing_keys": [  # each missing key once (it was each key once per missing key: 3 x 3)
        (26, 5, "stages[1]", "missing required key 'id'"),
        (26, 5, "stages[1]", "missing required key 'name'"),
        (26, 5, "stages[1]", "missing required key 'deadline_days'"),
    ],
    "schema_and_semantic_errors": [  # in one run, best first: the shape, then the meaning, each by line
        (5, 11, "currency", "'pln' is not valid: write it in capitals, 'PLN'"),
        (21, 9, "stages[0].id", "from stage 'register_lead' no path leads to the won stage 'send_offer'"),
        (26, 9, "stages[1].id", "from stage 'first_contact' no path leads to the won stage 'send_offer'"),
        (31, 16, "stages[1].next[0].stage", "stage 'first_contact' cannot lead to itself"),
        (34, 9, "stages[2].id", "stage 'send_offer' is unreachable: no stage leads to it from 'register_lead'"),
    ],
    "no_path_to_won_stage": [
        (41, 9, "stages[3].id", "from stage 'nurture' no path leads to the won stage 'send_offer'"),
        (45, 9, "stages[4].id", "from stage 'recall' no path leads to the won stage 'send_offer'"),
    ],
}


@pytest.fixture(autouse=True, params=sorted(process_yaml.YAML_READERS))
def yaml_reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs with each YAML reader PyYAML has (libyaml's and its own): same problems, same
    lines, columns, paths and messages, same specs."""
    monkeypatch.setattr(process_yaml, "yaml_reader", request.param)
    return str(request.param)


def test_libyaml_is_used_when_pyyaml_has_it() -> None:
    assert ("libyaml" in process_yaml.YAML_READERS) == yaml.__with_libyaml__
    assert next(iter(process_yaml.YAML_READERS)) == ("libyaml" if yaml.__with_libyaml__ else "python")


def broken(name: str) -> Path:
    return BROKEN / f"{name}.yaml"


def mini_file(tmp_path: Path, text: str = MINI, name: str = "mini.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the broken files -----------------------------------------------------------------------------


def test_every_broken_file_has_an_expectation() -> None:
    on_disk = {p.stem for p in BROKEN.iterdir() if p.is_file()}
    assert all(p.suffix == ".yaml" for p in BROKEN.iterdir())
    assert on_disk == set(EXPECTED) | set(EXPECTED_MANY)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_file_is_refused_with_one_located_problem(name: str) -> None:
    path = broken(name)
    line, column, where, fragments = EXPECTED[name]

    spec, problems = check_file(path)

    assert spec is None
    assert len(problems) == 1, problems
    (problem,) = problems
    assert problem.file == str(path)
    assert Path(problem.file).name == f"{name}.yaml"
    assert (problem.line, problem.column) == (line, column), str(problem)
    if where.endswith("*"):
        assert problem.path.startswith(where[:-1]), problem.path
    else:
        assert problem.path == where
    for fragment in fragments:
        assert fragment in problem.message, problem.message


@pytest.mark.parametrize("name", sorted(EXPECTED_MANY))
def test_every_problem_of_a_file_is_reported_at_once(name: str) -> None:
    path = broken(name)

    spec, problems = check_file(path)

    assert spec is None
    assert len(problems) == len(EXPECTED_MANY[name]), problems
    for problem, (line, column, where, fragment) in zip(problems, EXPECTED_MANY[name], strict=True):
        assert problem.file == str(path)
        assert (problem.line, problem.column, problem.path) == (line, column, where)
        assert fragment in problem.message


@pytest.mark.parametrize("name", sorted([*EXPECTED, *EXPECTED_MANY]))
def test_load_file_raises_with_every_problem(name: str) -> None:
    path = broken(name)
    _, problems = check_file(path)

    with pytest.raises(ProcessFileError) as info:
        load_file(path)

    assert info.value.problems == problems
    assert str(info.value) == "\n".join(str(p) for p in problems)


def test_several_errors_loads_nothing_and_lists_every_problem() -> None:
    path = broken("several_errors")

    with pytest.raises(ProcessFileError) as info:
        load_file(path)

    text = str(info.value)
    assert text.count(f"{path}:") == 5
    assert f"{path}:38:16: stages[2].tasks[0].owner: owner 'analist'" in text
    lines = [p.line for p in info.value.problems]
    assert lines == sorted(lines)


def test_a_file_over_the_size_limit_is_refused_with_its_real_size(tmp_path: Path) -> None:
    path = tmp_path / "huge_file.yaml"
    padding = "# padding\n" * (MAX_FILE_BYTES // 10 + 500)
    path.write_text(MINI + padding, encoding="utf-8")
    size = path.stat().st_size
    assert size > MAX_FILE_BYTES

    spec, problems = check_file(path)

    assert spec is None
    message = f"file is {size:,} bytes; a process file may be at most {MAX_FILE_BYTES:,} bytes"
    assert problems == [Problem(str(path), 1, 1, "", message)]
    # check_bytes refuses it too, without looking inside
    spec, problems = check_bytes(path.read_bytes(), "huge_file.yaml")
    assert spec is None
    assert [p.message for p in problems] == [message]


def test_a_file_at_the_size_limit_is_read(tmp_path: Path) -> None:
    padding = "#" * (MAX_FILE_BYTES - len(MINI.encode()) - 1) + "\n"
    path = mini_file(tmp_path, MINI + padding)
    assert path.stat().st_size == MAX_FILE_BYTES

    spec, problems = check_file(path)

    assert problems == []
    assert spec is not None


@pytest.mark.parametrize(("depth", "column"), [(MAX_DEPTH, 375), (150, 375), (5_000, None)])
def test_deep_nesting_of_conditions_is_refused_not_a_crash(
    tmp_path: Path, depth: int, column: int | None
) -> None:
    condition = "{field: financing, op: eq, value: loan}"
    for _ in range(depth):
        condition = "{not: " + condition + "}"
    text = MINI.replace(WHEN_LINE, f"        when: {condition}\n")
    path = mini_file(tmp_path, text, "deep_nesting.yaml")

    spec, problems = check_file(path)

    assert spec is None
    assert len(problems) == 1, problems
    (problem,) = problems
    assert problem.message == f"the document nests too deeply (more than {MAX_DEPTH} levels)"
    assert problem.line == 38
    if column is not None:  # the first mapping nested too deep: "        when: " + 60 times "{not: "
        assert (problem.column, problem.path) == (column, WHEN + ".not" * 60)
    else:  # so deep that YAML's own parser gives up; located where it stopped reading
        assert problem.column > 375


@pytest.mark.parametrize(
    "text",
    [
        "x: " + "[" * 100_000 + "]" * 100_000,
        "x: " + "[" * 100_000,
        "".join(" " * i + f"k{i}:\n" for i in range(1_300)),
    ],
    ids=["closed_flow", "unclosed_flow", "block"],
)
def test_absurd_nesting_is_refused_not_a_crash(tmp_path: Path, text: str) -> None:
    path = mini_file(tmp_path, text, "deep_nesting.yaml")

    spec, problems = check_file(path)

    assert spec is None
    assert [p.message for p in problems] == [f"the document nests too deeply (more than {MAX_DEPTH} levels)"]
    assert problems[0].line >= 1
    assert problems[0].column > 1


@pytest.mark.parametrize("wrap", ["{not: %s}", "{all: [%s]}", "{not: {any: [%s]}}"])
def test_nesting_up_to_the_limit_loads(tmp_path: Path, wrap: str) -> None:
    condition = "{field: financing, op: eq, value: loan}"
    levels = len(("stages", 2, "tasks", 0, "when", "field"))
    while levels + wrap.count("{") + wrap.count("[") <= MAX_DEPTH:
        condition = wrap % condition
        levels += wrap.count("{") + wrap.count("[")
    text = MINI.replace(WHEN_LINE, f"        when: {condition}\n")

    spec = load_file(mini_file(tmp_path, text))

    when = spec.stages[2].tasks[0].when
    assert when is not None
    assert when.fields() == {"financing"}
    assert levels > MAX_DEPTH - 4


def test_missing_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"

    spec, problems = check_file(path)

    assert spec is None
    assert len(problems) == 1
    assert problems[0].file == str(path)
    assert problems[0].message.startswith("cannot read the file: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("title: =\n", None),  # a lone '=' is text, not PyYAML's "value" tag
        ("title: !!timestamp 2024-01-01\n", "unsupported YAML tag !!timestamp"),
        ("title: !Ref other\n", "unsupported YAML tag !Ref"),
        ("title: !!set {a, b}\n", "unsupported YAML tag !!set"),
    ],
)
def test_only_plain_yaml_values(tmp_path: Path, text: str, message: str | None) -> None:
    path = mini_file(tmp_path, MINI.replace("title: Mini process\n", text))

    spec, problems = check_file(path)

    if message is None:
        assert problems == []
        assert spec is not None
        assert spec.title == "="
    else:
        assert spec is None
        assert [(p.line, p.column, p.path) for p in problems] == [(3, 8, "title")]
        assert message in problems[0].message


def test_a_missing_key_is_reported_unless_an_unknown_key_is_its_misspelling(tmp_path: Path) -> None:
    text = MINI.replace("    name: Send the offer\n", "    colour: blue\n")

    spec, problems = check_file(mini_file(tmp_path, text))

    assert spec is None
    located = [(p.line, p.column, p.path) for p in problems]
    assert located == [(31, 5, "stages[2]"), (32, 5, "stages[2].colour")]
    assert problems[0].message == "missing required key 'name'"
    assert problems[1].message.startswith("unknown key 'colour'; allowed keys here: id, name,")


def test_utf32_is_named() -> None:
    spec, problems = check_bytes(MINI.encode("utf-32"), "mini.yaml")

    assert spec is None
    assert [p.message for p in problems] == ["file is UTF-32 encoded; save it as UTF-8"]


def test_binary_file_is_refused() -> None:
    spec, problems = check_bytes(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)), "leads.zip")

    assert spec is None
    assert len(problems) == 1
    assert problems[0].file == "leads.zip"


def test_utf8_column_counts_characters_not_bytes() -> None:
    raw = "title: Żółć ".encode() + b"\xff\n"

    _, problems = check_bytes(raw, "x.yaml")

    assert [(p.line, p.column) for p in problems] == [(1, 13)]


# -- a valid file ---------------------------------------------------------------------------------


def test_mini_loads(tmp_path: Path) -> None:
    spec, problems = check_file(mini_file(tmp_path))

    assert problems == []
    assert isinstance(spec, ProcessSpec)
    assert spec.id == "mini"
    assert spec.stage_ids == ("register_lead", "first_contact", "send_offer")


def test_utf8_bom_file_loads(tmp_path: Path) -> None:
    plain = load_file(mini_file(tmp_path))
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + MINI.encode("utf-8"))

    spec = load_file(path)

    assert spec == plain
    assert spec.fields[1].label == "Area (m²)"
    assert spec.content_hash == plain.content_hash


def test_crlf_file_loads_the_same(tmp_path: Path) -> None:
    plain = load_file(mini_file(tmp_path))
    path = tmp_path / "crlf.yaml"
    path.write_bytes(MINI.replace("\n", "\r\n").encode("utf-8"))

    assert load_file(path).content_hash == plain.content_hash


def test_spec_is_frozen(tmp_path: Path) -> None:
    spec = load_file(mini_file(tmp_path))

    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.title = "Changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.stages[0].deadline_days = 99  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.stages[2].tasks[0].owner = "salesperson"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        spec.stages.append(spec.stages[0])  # type: ignore[attr-defined]
    assert isinstance(spec.stages[0].tasks, tuple)
    assert isinstance(spec.fields[2].options, tuple)


def test_defaults_are_resolved(tmp_path: Path) -> None:
    text = MINI.replace(
        "  - {id: duplicate, label: Duplicate of another lead, kind: removal}\n",
        "  - {id: duplicate, label: Duplicate of another lead, kind: removal}\n"
        "  - {id: competitor, label: Chose a competitor, kind: refusal, review: false}\n"
        "  - {id: spam, label: Spam, kind: removal, review: true}\n",
    )
    spec = load_file(mini_file(tmp_path, text))

    assert spec.owner_role == "salesperson"  # not given in the file
    assert [[n.stage for n in s.next] for s in spec.stages] == [["first_contact"], ["send_offer"], []]
    assert all(n.when is None for s in spec.stages for n in s.next)
    assert [s.warning_days for s in spec.stages] == [0, 1, 0]
    review = {r.id: r.review for r in spec.closure_reasons}
    assert review == {"no_budget": True, "duplicate": False, "competitor": False, "spam": True}
    task = spec.stages[0].tasks[0]
    assert (task.mandatory, task.deadline_days, task.when) == (True, None, None)
    assert spec.stages[0].required_fields == ()
    assert spec.stages[0].on_enter == ()
    assert spec.format == 2  # the file says format: 1; its spec is the upgraded one (engine.formats)
    assert (task.after, spec.fields[0].written_by, spec.closure_reasons[0].stages,
            spec.closure_reasons[0].requires) == ((), (), (), ())


def test_explicit_next_is_kept(tmp_path: Path) -> None:
    text = MINI.replace("    deadline_days: 1\n", "    deadline_days: 1\n"
                        "    next:\n"
                        "      - stage: first_contact\n"
                        "      - stage: send_offer\n"
                        "        when: {field: budget, op: gte, value: 1000}\n")
    spec = load_file(mini_file(tmp_path, text))

    first = spec.stages[0]
    assert [n.stage for n in first.next] == ["first_contact", "send_offer"]
    assert first.next[1].when is not None
    assert first.next[1].when.to_dict() == {"field": "budget", "op": "gte", "value": 1000}


def test_content_hash_is_stable_across_loads(tmp_path: Path) -> None:
    path = mini_file(tmp_path)

    first, second = load_file(path), load_file(path)

    assert first == second
    assert first is not second
    assert first.content_hash == second.content_hash
    assert len(first.content_hash) == 64


def _reformatted(text: str, *, flow: bool | None, sort_keys: bool) -> str:
    """The same data, laid out differently: other whitespace, flow style and key order."""
    data = yaml.safe_load(text)
    if not sort_keys:  # reverse the key order of every mapping
        def reverse(value: object) -> object:
            if isinstance(value, dict):
                return {k: reverse(v) for k, v in reversed(list(value.items()))}
            if isinstance(value, list):
                return [reverse(v) for v in value]
            return value
        data = reverse(data)
    return yaml.safe_dump(data, default_flow_style=flow, sort_keys=sort_keys, allow_unicode=True,
                          indent=4, width=60)


@pytest.mark.parametrize(("flow", "sort_keys"), [(False, True), (True, False), (None, False)])
def test_content_hash_ignores_the_layout(tmp_path: Path, flow: bool | None, sort_keys: bool) -> None:
    original = load_file(mini_file(tmp_path))
    text = _reformatted(MINI, flow=flow, sort_keys=sort_keys)
    assert text != MINI

    again = load_file(mini_file(tmp_path, text, "again.yaml"))

    assert again == original
    assert again.content_hash == original.content_hash


def test_content_hash_of_json_written_as_yaml(tmp_path: Path) -> None:
    original = load_file(mini_file(tmp_path))
    text = json.dumps(yaml.safe_load(MINI), indent=1, ensure_ascii=True)  # JSON is YAML

    assert load_file(mini_file(tmp_path, text, "json.yaml")).content_hash == original.content_hash


def test_content_hash_counts_spelled_out_defaults_as_equal(tmp_path: Path) -> None:
    original = load_file(mini_file(tmp_path))
    text = MINI.replace("cool_off_days: 10\n", "cool_off_days: 10\nowner_role: salesperson\n").replace(
        "    deadline_days: 1\n",
        "    deadline_days: 1\n    warning_days: 0\n    next: [{stage: first_contact}]\n",
    )

    assert load_file(mini_file(tmp_path, text, "explicit.yaml")).content_hash == original.content_hash


def test_whole_numbers_written_as_floats_hash_equal(tmp_path: Path) -> None:
    """In a number slot 0.0 is 0; a whole-number slot refuses 5.0 (issue 19: see float_deadline.yaml)."""
    original = load_file(mini_file(tmp_path))
    text = MINI.replace("min: 0}", "min: 0.0}").replace(
        "        when: {field: financing, op: eq, value: loan}\n",
        "        when: {field: area_m2, op: gte, value: 40}\n")
    floats = text.replace("value: 40}", "value: 40.0}")

    again = load_file(mini_file(tmp_path, floats, "floats.yaml"))

    assert again.content_hash == load_file(mini_file(tmp_path, text, "ints.yaml")).content_hash
    assert again.fields[0].min == original.fields[0].min == 0
    assert type(again.fields[0].min) is int
    assert type(again.stages[2].deadline_days) is int
    _, problems = check_bytes(MINI.replace("    deadline_days: 5\n", "    deadline_days: 5.0\n").encode(), "x")
    assert [p.message for p in problems] == ["expected a whole number, got the number 5.0; write 5"]


def test_content_hash_changes_with_a_deadline(tmp_path: Path) -> None:
    original = load_file(mini_file(tmp_path))
    changed = MINI.replace("    deadline_days: 5\n", "    deadline_days: 6\n")

    other = load_file(mini_file(tmp_path, changed, "changed.yaml"))

    assert other != original
    assert other.stages[2].deadline_days == 6
    assert other.content_hash != original.content_hash


def test_content_hash_changes_with_a_comment_free_word(tmp_path: Path) -> None:
    original = load_file(mini_file(tmp_path))
    commented = "# a comment changes nothing\n" + MINI.replace("Mini process", "Mini process  # nor here")
    renamed = MINI.replace("Mini process", "Mini processes")

    assert load_file(mini_file(tmp_path, commented, "c.yaml")).content_hash == original.content_hash
    assert load_file(mini_file(tmp_path, renamed, "r.yaml")).content_hash != original.content_hash


@pytest.mark.parametrize("source", ["mini", "photovoltaics"])
def test_round_trip_through_json(tmp_path: Path, source: str) -> None:
    path = mini_file(tmp_path) if source == "mini" else PHOTOVOLTAICS
    spec = load_file(path)

    stored = json.dumps(spec.to_dict())
    again = ProcessSpec.from_dict(json.loads(stored))

    assert again == spec
    assert again.content_hash == spec.content_hash
    assert again.canonical_json() == spec.canonical_json()
    assert again.to_dict() == spec.to_dict()
    # the resolved dict is itself a valid process file that loads to the same spec
    resolved = yaml.safe_dump(spec.to_dict(), allow_unicode=True)
    reloaded = load_file(mini_file(tmp_path, resolved, "resolved.yaml"))
    assert reloaded == spec
    assert reloaded.content_hash == spec.content_hash


def test_lookups_after_round_trip(tmp_path: Path) -> None:
    spec = ProcessSpec.from_dict(json.loads(json.dumps(load_file(mini_file(tmp_path)).to_dict())))

    assert spec.stage("send_offer") is spec.stages[2]
    assert spec.field_spec("financing") is spec.fields[2]
    assert spec.reason("duplicate") is spec.closure_reasons[1]
    assert spec.role("analyst") is spec.roles[1]
    assert spec.stage_index("first_contact") == 1
    assert spec.stage("nowhere") is None


# -- expand_paths, format_path, suggest, Problem ------------------------------------------------


def test_expand_paths_on_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "processes"
    folder.mkdir()
    for name in ("b.yml", "a.yaml", "c.txt", "d.YAML.bak"):
        (folder / name).write_text(MINI, encoding="utf-8")
    (folder / "sub.yaml").mkdir()  # a folder named like a process file is not one
    (folder / "sub.yaml" / "inner.yaml").write_text(MINI, encoding="utf-8")
    single = tmp_path / "single.yaml"
    missing = tmp_path / "missing.yaml"

    paths = expand_paths([folder, str(single), missing])

    assert paths == [folder / "a.yaml", folder / "b.yml", single, missing]
    assert expand_paths([]) == []


def test_expand_paths_on_the_broken_folder() -> None:
    paths = expand_paths([BROKEN])

    assert [p.stem for p in paths] == sorted(p.stem for p in BROKEN.glob("*.yaml"))


@pytest.mark.parametrize(
    ("parts", "text"),
    [
        ((), ""),
        (("title",), "title"),
        (("stages", 2, "tasks", 0, "owner"), "stages[2].tasks[0].owner"),
        ((0, "id"), "[0].id"),
        (("a", "b", 1, 2), "a.b[1][2]"),
    ],
)
def test_format_path(parts: tuple[str | int, ...], text: str) -> None:
    assert format_path(parts) == text


def test_suggest() -> None:
    assert suggest("analist", ["salesperson", "analyst"]) == "; did you mean 'analyst'?"
    assert suggest("zzz", ["salesperson", "analyst"]) == ""
    assert suggest("x", []) == ""


def test_problem_text() -> None:
    assert str(Problem("p.yaml", 3, 5, "stages[0].id", "bad")) == "p.yaml:3:5: stages[0].id: bad"
    assert str(Problem("p.yaml", 1, 1, "", "empty")) == "p.yaml:1:1: empty"


def test_the_semantic_checks_do_not_import_the_loader() -> None:
    """loader -> semantics only: the checks locate problems through engine.document, not the loader (nor its
    reading and schema steps)."""
    import subprocess
    import sys

    steps = ("engine.loader", "engine.process_yaml", "engine.process_schema")
    code = f"import sys, engine.semantics; print(any(m in sys.modules for m in {steps!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert out.strip() == "False"


# -- paths that lead nowhere --------------------------------------------------------------------


def test_a_pair_of_looping_symlinks_is_named_a_loop(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    loop = "cannot read the file: it is a symbolic link loop (following its links leads back to it)"

    spec, problems = check_file(tmp_path / "a.yaml")

    assert spec is None
    assert problems == [Problem(str(tmp_path / "a.yaml"), 1, 1, "", loop)]
    assert path_problem(str(tmp_path / "b.yaml")) == Problem(str(tmp_path / "b.yaml"), 1, 1, "", loop)
    assert expand_paths([tmp_path]) == [tmp_path / "a.yaml", tmp_path / "b.yaml"]


def test_a_broken_link_in_a_folder_is_reported_not_skipped(tmp_path: Path) -> None:
    mini_file(tmp_path, MINI, "good.yaml")
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "deleted.yaml")

    paths = expand_paths([tmp_path])

    assert paths == [tmp_path / "gone.yaml", tmp_path / "good.yaml"]
    message = f"cannot read the file: it is a symbolic link to '{tmp_path / 'deleted.yaml'}', which does not exist"
    assert check_file(paths[0]) == (None, [Problem(str(paths[0]), 1, 1, "", message)])
    assert path_problem(str(paths[0])) == Problem(str(paths[0]), 1, 1, "", message)


def test_path_problem(tmp_path: Path) -> None:
    assert path_problem(str(mini_file(tmp_path))) is None
    assert path_problem(str(tmp_path)) is None
    assert path_problem(str(tmp_path / "nowhere.yaml")) == Problem(
        str(tmp_path / "nowhere.yaml"), 1, 1, "", "no such file or folder")
    assert path_problem(f"{tmp_path}/nowhere/") == Problem(f"{tmp_path}/nowhere/", 1, 1, "", "no such folder")
