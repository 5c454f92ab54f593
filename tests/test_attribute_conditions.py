"""Conditions on the lead's own attributes (format 2: ``{attribute: value, op: gt, value: 100000}``): the loader's
located problems, and the engine reading the lead's value, source, product and team wherever it reads fields: a
task's condition, a move's, an assignment rule's, the rule that a stage once left keeps its rules, the CSV import
and the rebuild from the event log."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import rules
from engine.errors import RuleViolation
from engine.loader import check_bytes
from engine.spec import Condition
from tests.conftest import PROCESSES_DIR, Team
from tests.test_engine_rules import finish_stage, pv_lead
from tests.test_formats import V2, line_of, located, problems_of

# -- the loader ----------------------------------------------------------------------------------------------------

TASK_WHEN = "        when: {field: financing, op: eq, value: loan}\n"


def with_condition(condition: str, text: str = V2) -> str:
    assert TASK_WHEN in text
    return text.replace(TASK_WHEN, f"        when: {condition}\n")


def test_a_condition_on_each_attribute_loads() -> None:
    for condition, leaf in [
        ("{attribute: value, op: gt, value: 100000}", Condition(attribute="value", op="gt", value=100000)),
        ("{attribute: source, op: in, value: [web, fair]}",
         Condition(attribute="source", op="in", value=("web", "fair"))),
        ("{attribute: product, op: eq, value: heat_pump}", Condition(attribute="product", op="eq", value="heat_pump")),
        ("{attribute: team, op: ne, value: south}", Condition(attribute="team", op="ne", value="south")),
        ("{attribute: value, op: is_unset}", Condition(attribute="value", op="is_unset")),
    ]:
        spec, problems = check_bytes(with_condition(condition).encode(), "f.yaml")
        assert problems == [] and spec is not None, condition
        [when] = [t.when for s in spec.stages for t in s.tasks if t.when is not None]
        assert when == leaf
        assert Condition.from_dict(when.to_dict()) == when  # the stored spec keeps it


@pytest.mark.parametrize(("condition", "path", "message"), [
    ("{attribute: owner, op: eq, value: anna}", "stages[2].tasks[0].when.attribute",
     "the text 'owner' is not allowed; expected one of: value, source, product, team"),
    ("{attribute: value, op: in, value: [1, 2]}", "stages[2].tasks[0].when.op",
     "operator 'in' does not apply to the lead's value (money); use one of: eq, ne, gt, gte, lt, lte, is_set, "
     "is_unset"),
    ("{attribute: source, op: gt, value: web}", "stages[2].tasks[0].when.op",
     "operator 'gt' does not apply to the lead's source (text); use one of: eq, ne, in, not_in, is_set, is_unset"),
    ("{attribute: value, op: gt, value: lots}", "stages[2].tasks[0].when.value",
     "the lead's value compares with a number, got 'lots'"),
    ("{attribute: value, op: gt, value: -5}", "stages[2].tasks[0].when.value", "money must not be negative, got -5"),
    ("{attribute: product, op: eq, value: 12}", "stages[2].tasks[0].when.value",
     "the lead's product compares with text, got 12 (write it in quotes: '12')"),
    ("{attribute: team, op: is_set, value: north}", "stages[2].tasks[0].when.value",
     "operator 'is_set' takes no value"),
])
def test_conditions_on_attributes_that_are_refused(condition: str, path: str, message: str) -> None:
    text = with_condition(condition)
    [problem] = problems_of(text)
    assert (problem.line, problem.path, problem.message) == (line_of(text, "        when: {attribute"), path, message)


def test_a_field_and_an_attribute_in_one_leaf_are_refused() -> None:
    text = with_condition("{field: financing, attribute: value, op: gt, value: 1}")
    assert [(p.line, p.path, p.message) for p in problems_of(text)] == [
        (line_of(text, "        when: {field"), "stages[2].tasks[0].when.attribute",
         "unknown key 'attribute'; allowed keys here: field, op, value")]


def test_an_assignment_rule_may_test_the_value_but_not_the_team() -> None:
    text = V2 + ("assignment:\n  rules:\n    - {team: key_accounts, when: {attribute: value, op: gte, value: 500000}}\n"
                 "    - {team: north}\n")
    spec, problems = check_bytes(text.encode(), "f.yaml")
    assert problems == [] and spec is not None and spec.assignment is not None
    bad = text.replace("{attribute: value, op: gte, value: 500000}", "{attribute: team, op: eq, value: north}")
    assert located(problems_of(bad)) == [(
        line_of(bad, "{attribute: team"),
        bad.splitlines()[line_of(bad, "{attribute: team") - 1].index("attribute: team") + len("attribute: ") + 1,
        "assignment.rules[0].when.attribute",
        "an assignment rule cannot test the lead's team: the rules are what give the lead its team; test its fields, "
        "value, source or product")]


def test_an_attribute_is_a_key_of_format_2() -> None:
    text = with_condition("{all: [{field: financing, op: eq, value: loan}, {attribute: value, op: gt, value: 5}]}",
                          V2.replace("format: 2", "format: 1"))
    line = line_of(text, "        when: {all")
    assert located(problems_of(text)) == [(
        line, text.splitlines()[line - 1].index("attribute") + 1, "stages[2].tasks[0].when.all[1].attribute",
        "'attribute' is a key of format 2, and this file is written in format 1; write 'format: 2' at its top "
        "(leadflow process upgrade FILE does it)")]


# -- one rule for attributes and fields ----------------------------------------------------------------------------

OPS = ["eq", "ne", "gt", "gte", "lt", "lte", "is_set", "is_unset"]
amounts = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False)


@given(op=st.sampled_from(OPS), threshold=st.integers(min_value=0, max_value=10**6), value=st.none() | amounts)
def test_the_value_compares_as_a_money_field_would(op: str, threshold: int, value: Decimal | None) -> None:
    """The lead's value is compared exactly as a money field holding the same amount: the same typed operators."""
    spec = check_bytes(V2.encode(), "f.yaml")[0]
    assert spec is not None and spec.field_spec("budget") is not None
    minor = None if value is None else rules.money_to_minor(value)
    facts = rules.facts({"budget": rules.minor_to_money(minor)} if minor is not None else {}, value_minor=minor,
                        source=None, product=None, team=None)
    unary = op in ("is_set", "is_unset")
    on_value = Condition(attribute="value", op=op, value=None if unary else threshold)
    on_field = Condition(field="budget", op=op, value=None if unary else threshold)
    assert rules.evaluate(on_value, facts, spec) == rules.evaluate(on_field, facts, spec)


# -- the engine ----------------------------------------------------------------------------------------------------

APPROVAL = """\
      - id: director_approval
        name: Get the director's approval of a large order
        owner: manager
        when: {attribute: value, op: gt, value: 100000}
"""
LARGE = """\
      - id: large_order_call
        name: Call a large-order client back the same day
        owner: salesperson
        mandatory: false
        when: {attribute: value, op: gte, value: 100000}
"""
SOUTH = """\
      - id: regional_permit
        name: File the regional grid permit
        owner: salesperson
        when: {attribute: team, op: eq, value: south}
"""


@pytest.fixture
def processes_dir(tmp_path: Path) -> Path:
    """Photovoltaics with a same-day call for orders from 100,000 on registering, a director's approval of orders
    above 100,000 when sending the offer, and a permit that only the south team files in the first meeting."""
    folder = tmp_path / "processes"
    folder.mkdir()
    text = (PROCESSES_DIR / "photovoltaics.yaml").read_text(encoding="utf-8")
    offer = "      - {id: technical_check, name: Check the technical feasibility"
    meeting = "      - {id: next_contact, name: Book the next contact, owner: salesperson}\n"
    register = "      - {id: record_contact,"
    assert text.count(offer) == 1 and text.count(meeting) == 1 and text.count(register) == 1
    text = text.replace(offer, APPROVAL + offer).replace(meeting, meeting + SOUTH).replace(register,
                                                                                         LARGE + register)
    (folder / "photovoltaics.yaml").write_text(text, encoding="utf-8")
    return folder


def states(lead: dict, task: str) -> list[str]:
    return [t["state"] for t in lead["tasks"] if t["id"] == task]


def to_send_offer(team: Team, value: str) -> int:
    lead = pv_lead(team, value=value)
    team.as_("anna").set_fields(lead["id"], {"roof_type": "pitched", "roof_area_m2": "40", "financing": "cash"})
    for _ in range(3):
        finish_stage(team, lead["id"])
        team.as_("anna").advance(lead["id"])
    return int(lead["id"])


def test_a_large_order_needs_the_directors_approval(team: Team) -> None:
    small, large = to_send_offer(team, "60000"), to_send_offer(team, "150000")
    anna = team.as_("anna")
    assert states(anna.get_lead(small), "director_approval") == ["not_applicable"]
    assert states(anna.get_lead(large), "director_approval") == ["open"]
    for lead_id in (small, large):
        anna.set_fields(lead_id, {"offer_value": "1000"})
        for task, who in (("technical_check", "tomasz"), ("pricing", "olga"), ("send_offer", "anna"),
                          ("draft_contract", "anna")):
            team.as_(who).complete_task(lead_id, task)
    assert anna.advance(small)["stage"] == "close_contract"
    with pytest.raises(RuleViolation, match="director_approval"):
        anna.advance(large)
    # the value grows while the offer is prepared: the approval becomes owed, as a field's condition would make it
    grown = to_send_offer(team, "90000")
    anna.set_fields(grown, {"value": "120000"})
    assert states(anna.get_lead(grown), "director_approval") == ["open"]
    anna.set_fields(grown, {"value": "80000"})
    assert states(anna.get_lead(grown), "director_approval") == ["not_applicable"]
    team.as_("marta").complete_task(large, "director_approval")
    assert anna.advance(large)["stage"] == "close_contract"


def test_a_stage_once_left_keeps_the_value_it_was_left_with(team: Team) -> None:
    """Raising the value past the threshold after the offer went out would leave an approval never given."""
    anna = team.as_("anna")
    lead_id = to_send_offer(team, "60000")
    anna.set_fields(lead_id, {"offer_value": "1000"})
    finish_stage(team, lead_id)
    anna.advance(lead_id)
    before = anna.get_lead(lead_id)
    with pytest.raises(RuleViolation) as err:
        anna.set_fields(lead_id, {"value": "250000"})
    assert str(err.value) == (
        f"can't change the fields of lead {lead_id} that way: mandatory task 'director_approval' of the passed stage "
        "'send_offer' would apply and was never done; a stage once left keeps the rules it was left under (reopen "
        "the lead into that stage to redo its work)")
    assert anna.get_lead(lead_id) == before
    assert anna.set_fields(lead_id, {"value": "95000"})["value"] == "95000.00"  # below the threshold: allowed


def test_the_team_decides_a_task_and_a_reassignment_follows_it(team: Team) -> None:
    north = pv_lead(team)
    south = pv_lead(team, owner="ioana")
    for lead in (north, south):
        for _ in range(2):  # to the first meeting
            finish_stage(team, lead["id"], lead["owner"])
            team.as_(lead["owner"]).advance(lead["id"])
    assert states(team.as_("anna").get_lead(north["id"]), "regional_permit") == ["not_applicable"]
    assert states(team.as_("ioana").get_lead(south["id"]), "regional_permit") == ["open"]
    team.admin.assign(north["id"], "ioana")  # the lead moves to the south team in its first meeting
    moved = team.as_("ioana").get_lead(north["id"])
    assert (moved["team"], states(moved, "regional_permit")) == ("south", ["open"])
    for lead_id in (north["id"], south["id"]):
        assert team.admin.rebuild_lead(lead_id).comparable() == team.admin.stored_lead(lead_id).comparable()


def test_the_import_judges_each_row_by_its_value(team: Team, tmp_path: Path) -> None:
    """The CSV import builds the first stage once per outcome of its conditions; the value is one of them, so
    each imported lead has the tasks ``add_lead`` would have given it."""
    csv = tmp_path / "leads.csv"
    csv.write_text("name,phone,value\nAdam Nowak,+48601000001,50000\nEwa Lis,+48601000002,200000\n",
                   encoding="utf-8")
    report = team.as_("marta").intake.import_csv(csv, process="photovoltaics", owner="anna")
    assert report["imported"] == 2
    anna = team.as_("anna")
    by_name = {row["name"]: row["id"] for row in anna.leads.list()}
    assert states(anna.get_lead(by_name["Adam Nowak"]), "large_order_call") == ["not_applicable"]
    assert states(anna.get_lead(by_name["Ewa Lis"]), "large_order_call") == ["open"]
    for value, expected in (("50000", "not_applicable"), ("200000", "open")):
        assert states(pv_lead(team, value=value), "large_order_call") == [expected]
