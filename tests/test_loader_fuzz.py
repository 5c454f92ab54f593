"""Property tests: whatever is done to a valid process file, the loader never raises.

It returns either a spec and no problems, or no spec and at least one problem, every problem
located (file, line >= 1, column >= 1) and explained (a non-empty message).
"""

from __future__ import annotations

import copy
import json
import os
import re
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from engine import process_yaml
from engine.loader import check_bytes, schema
from engine.spec import ProcessSpec

FILE = "fuzz.yaml"

# A small process using most of the format: every field type, conditions with all/any/not,
# explicit next lists with conditions, on_enter actions, a maintainer, reasons of both kinds, and the keys of
# format 2 (written_by, after, a closure reason's stages, requires and min_attempts, a choices field and contains,
# deadline_hours in business_hours, a reminder to a role that chases a task, conditions on the lead's attributes).
BASE = """\
# A valid process the fuzzer mutates.
format: 2
id: fuzz_demo
title: Fuzz demo — Łódź
description: A process for the property tests.
maintainer: {name: Jan Kowalski, email: jan@example.com}
currency: EUR
calendar: DE
owner_role: salesperson
sales_cycle_days: 45
cool_off_days: 14
stalled_after_days: 10
business_hours: {start: 8, end: 16}

roles:
  - {id: salesperson, name: Salesperson}
  - {id: analyst, name: Analyst}
  - {id: manager, name: Manager}

fields:
  - {id: budget, label: Budget, type: money, bant: B, min: 0, max: 1000000}
  - {id: seats, label: Seats, type: number, min: 1}
  - {id: plan, label: Plan, type: choice, options: [basic, pro, enterprise], written_by: [analyst]}
  - {id: decision_maker, label: Decision maker, type: text, bant: A}
  - {id: urgent, label: Urgent, type: bool, bant: N}
  - {id: start_by, label: Start by, type: date, bant: T}
  - {id: extras, label: Extras, type: choices, options: [training, support]}

stages:
  - id: register_lead
    name: Register the lead
    deadline_days: 1
    probability: 0.05
    tasks:
      - {id: record, name: Record the contact, owner: salesperson}
  - id: first_contact
    name: Make the first contact
    deadline_days: 2
    warning_days: 1
    tasks:
      - {id: call, name: Call the client, owner: salesperson, deadline_hours: 4}
      - id: qualify_web
        name: Qualify the web inquiry
        owner: salesperson
        when: {attribute: source, op: eq, value: web}
      - id: escalate
        name: Tell the manager
        owner: manager
        mandatory: false
        when: {all: [{field: urgent, op: eq, value: true}, {field: seats, op: gte, value: 50}]}
    on_enter:
      - send_email: {template: welcome, to: client}
      - remind: {template: offer_follow_up, to: owner, after_days: 1}
    next:
      - stage: send_offer
      - stage: negotiate
        when: {any: [{field: plan, op: in, value: [pro, enterprise]}, {not: {field: budget, op: is_unset}},
                     {field: extras, op: contains, value: support}, {attribute: value, op: gte, value: 250000}]}
  - id: send_offer
    name: Send the offer
    deadline_days: 5
    warning_days: 2
    required_fields: [plan, seats]
    tasks:
      - {id: price, name: Price the offer, owner: analyst, deadline_days: 3}
      - {id: send, name: Send the offer, owner: salesperson, after: [price]}
    on_enter:
      - create_task: {id: ack, name: Acknowledge the request, owner: analyst, mandatory: false}
      - remind: {template: offer_follow_up, to: analyst, after_days: 1, chases: price}
  - id: negotiate
    name: Negotiate and sign
    deadline_days: 10
    warning_days: 3
    probability: 0.6
    tasks:
      - id: sign
        name: Collect the signature
        owner: salesperson
        when: {field: start_by, op: lte, value: '2030-12-31'}

won_stage: negotiate

closure_reasons:
  - {id: no_budget, label: No budget, kind: refusal, bant: B, revisit_after_days: 90, requires: [budget],
     stages: [send_offer, negotiate]}
  - {id: no_authority, label: Not the decision maker, kind: refusal, bant: A}
  - {id: no_need, label: No need, kind: refusal, bant: N, review: false}
  - {id: bad_timing, label: Not now, kind: refusal, bant: T}
  - {id: duplicate, label: Duplicate, kind: removal}
  - {id: unreachable, label: Never answered, kind: removal, min_attempts: 3}
"""
BASE_BYTES = BASE.encode("utf-8")
BASE_LINES = BASE.splitlines(keepends=True)
BASE_DATA: dict[str, Any] = yaml.safe_load(BASE)

# Modest by default (the whole file in well under a minute on two cores); raise it to hunt.
EXAMPLES = int(os.environ.get("LEADFLOW_FUZZ_EXAMPLES", "200"))
_fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fuzz(test: Any) -> Any:
    """A hypothesis run of EXAMPLES examples: a long one, so outside the fast lane (``-m "not slow"``)."""
    return pytest.mark.slow(_fuzz_settings(test))

_VALIDATOR = Draft202012Validator(schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)
_BREAKS = (b"\n", b"\r", "\x85".encode(), "\u2028".encode(), "\u2029".encode())


def assert_loads_or_explains(raw: bytes) -> ProcessSpec | None:
    """The loader's contract on any input."""
    spec, problems = check_bytes(raw, FILE)
    if spec is not None:
        assert problems == []
        assert isinstance(spec, ProcessSpec)
        again = ProcessSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
        assert again == spec
        assert again.content_hash == spec.content_hash
        return spec
    assert problems, "no spec and no problem"
    most_lines = sum(raw.count(b) for b in _BREAKS) + 1
    for problem in problems:
        assert problem.file == FILE
        assert isinstance(problem.line, int)
        assert isinstance(problem.column, int)
        assert 1 <= problem.line <= most_lines, str(problem)
        assert problem.column >= 1, str(problem)
        assert isinstance(problem.path, str)
        assert problem.message.strip(), str(problem)
        assert "Traceback" not in problem.message
    return None


def test_the_base_file_is_valid() -> None:
    spec = assert_loads_or_explains(BASE_BYTES)

    assert spec is not None
    assert spec.id == "fuzz_demo"


# -- mutations of the text ------------------------------------------------------------------------

line_index = st.integers(min_value=0, max_value=len(BASE_LINES) - 1)

SCALAR = re.compile(
    r"(?<=: )[^{}\[\],\n#]+|(?<=[\[{,] )[^{}\[\],:\n#]+|(?<=- )[^{}\[\],:\n#]+$", re.MULTILINE
)
SCALAR_SPANS = [m.span() for m in SCALAR.finditer(BASE) if m.group().strip()]

# Words YAML 1.1 reads as something else than text, indicators, and characters the reader refuses.
# fmt: off
YAML_WORDS = [
    "yes", "no", "on", "off", "~", "null", "true", "False", "0x1F", "010", "0o17", "1e3", "1.5e3", ".inf",
    "-.inf", ".nan", "''", '""', "2024-02-30", "12:30:00", "!!binary aGk=", "!!python/name:os.system",
    "&a x", "*a", "*nowhere", "<<", "=", "|", ">", "-", "?", ":", "[", "{", "}", "]", "'", '"', "#", "%",
    "@", "`", "!", "&", "*", "\t", "---", "...", "- x", "a: b", "{a: 1}", "[1, 2]", "[]", "{}", "é",
    "\u2028", "\x85", "\ufeff", "\u0000", "\x07", "-1", "0", "3651", "99999999999999999999999", "1.0",
]
# fmt: on
yaml_words = st.sampled_from(YAML_WORDS)
scalars = st.one_of(
    yaml_words,
    st.text(max_size=20),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.booleans().map(str),
)


TEXT_MUTATIONS = ["delete", "duplicate", "swap", "indent", "insert_text", "scalar"]
MUTATIONS = [*TEXT_MUTATIONS, "insert_bytes", "truncate", "several"]


@st.composite
def text_mutation(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(MUTATIONS))
    rounds = draw(st.integers(min_value=2, max_value=6)) if kind == "several" else 1
    text = BASE
    for _ in range(rounds):
        lines = text.splitlines(keepends=True) or [""]
        index = st.integers(min_value=0, max_value=len(lines) - 1)
        step = kind if kind != "several" else draw(st.sampled_from(TEXT_MUTATIONS))
        if step == "delete":
            del lines[draw(index)]
        elif step == "duplicate":
            i = draw(index)
            lines.insert(i, lines[i])
        elif step == "swap":
            i, j = draw(index), draw(index)
            lines[i], lines[j] = lines[j], lines[i]
        elif step == "indent":
            i = draw(index)
            stripped = lines[i].lstrip(" ")
            lines[i] = " " * draw(st.integers(min_value=0, max_value=12)) + stripped
        elif step == "insert_text":
            text = "".join(lines)
            at = draw(st.integers(min_value=0, max_value=len(text)))
            lines = [text[:at] + draw(st.one_of(st.text(max_size=8), yaml_words)) + text[at:]]
        elif step == "scalar":
            if text == BASE:
                start, end = draw(st.sampled_from(SCALAR_SPANS))
            else:
                spans = [m.span() for m in SCALAR.finditer(text) if m.group().strip()] or [(0, 0)]
                start, end = draw(st.sampled_from(spans))
            lines = [text[:start] + draw(scalars) + text[end:]]
        text = "".join(lines)
    raw = text.encode("utf-8", errors="surrogatepass")
    if kind == "insert_bytes":
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    elif kind == "truncate":
        raw = raw[: draw(st.integers(min_value=0, max_value=len(raw)))]
    return raw


@fuzz
@given(raw=text_mutation())
def test_text_mutations_never_crash(raw: bytes) -> None:
    assert_loads_or_explains(raw)


@fuzz
@given(i=line_index, j=line_index)
def test_swapping_two_lines(i: int, j: int) -> None:
    lines = list(BASE_LINES)
    lines[i], lines[j] = lines[j], lines[i]
    assert_loads_or_explains("".join(lines).encode())


@fuzz
@given(at=st.integers(min_value=0, max_value=len(BASE_BYTES)), junk=st.binary(min_size=1, max_size=16))
def test_inserting_random_bytes(at: int, junk: bytes) -> None:
    assert_loads_or_explains(BASE_BYTES[:at] + junk + BASE_BYTES[at:])


@fuzz
@given(raw=st.binary(max_size=300))
def test_random_bytes(raw: bytes) -> None:
    assert_loads_or_explains(raw)


@fuzz
@given(at=st.integers(min_value=0, max_value=len(BASE_BYTES)))
def test_truncating(at: int) -> None:
    assert_loads_or_explains(BASE_BYTES[:at])


@pytest.mark.parametrize("i", range(len(BASE_LINES)))
def test_every_single_line_deleted_or_duplicated(i: int) -> None:
    assert_loads_or_explains("".join(BASE_LINES[:i] + BASE_LINES[i + 1 :]).encode())
    assert_loads_or_explains("".join(BASE_LINES[: i + 1] + BASE_LINES[i:]).encode())


# -- mutations of the data ------------------------------------------------------------------------


def _property_names(node: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(node, dict):
        names |= set(node.get("properties", {}))
        for value in node.values():
            names |= _property_names(value)
    elif isinstance(node, list):
        for value in node:
            names |= _property_names(value)
    return names


KEYS_OF_THE_FORMAT = _property_names(schema())
FORMAT_KEYS = sorted(KEYS_OF_THE_FORMAT)


def _words(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set().union(*map(_words, node.values()))
    if isinstance(node, list):
        return set().union(*map(_words, node))
    return {node} if isinstance(node, str) else set()


BASE_WORDS = sorted(_words(BASE_DATA) | {"eq", "in", "is_set", "gt", "choice", "money", "client", "owner"})


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**12), max_value=10**12),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
        st.sampled_from(BASE_WORDS),  # ids, operators, kinds: valid words in the wrong places
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=8), children, max_size=3),
    ),
    max_leaves=6,
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*path, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(_paths(value, (*path, i)))
    return out


BASE_PATHS = _paths(BASE_DATA)


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


MAPPINGS = [path for path in BASE_PATHS if isinstance(_get(BASE_DATA, path), dict)]


@st.composite
def data_mutation(draw: st.DrawFn) -> Any:
    data = copy.deepcopy(BASE_DATA)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["drop", "replace", "add_key", "retype", "duplicate", "copy_from"]))
        if not path:
            if op == "replace":
                data = draw(json_values)
            continue
        parent, last = _get(data, path[:-1]), path[-1]
        if op == "drop":
            del parent[last]
        elif op == "replace":
            parent[last] = draw(json_values)
        elif op == "add_key":
            target = parent[last] if isinstance(parent[last], dict) else parent
            if isinstance(target, dict):
                key = draw(st.one_of(st.sampled_from(FORMAT_KEYS), st.text(max_size=10)))
                target[key] = draw(json_values)
        elif op == "retype":
            value = parent[last]
            if isinstance(value, str):
                parent[last] = draw(
                    st.one_of(st.integers(), st.booleans(), st.just([value]), st.just({value: 1}))
                )
            elif isinstance(value, bool):
                parent[last] = str(value).lower()
            elif isinstance(value, (int, float)):
                parent[last] = draw(st.sampled_from([str(value), -value, float(value), float(value) + 0.5]))
            elif isinstance(value, list):
                parent[last] = {str(i): v for i, v in enumerate(value)}
            elif isinstance(value, dict):
                parent[last] = list(value.values())
            else:
                parent[last] = "text"
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(last, copy.deepcopy(parent[last]))
        elif op == "copy_from":
            other = draw(st.sampled_from(BASE_PATHS))
            if other:
                parent[last] = copy.deepcopy(_get(BASE_DATA, other))
    return data


@fuzz
@given(data=data_mutation(), flow=st.sampled_from([None, False, True]))
def test_data_mutations_never_crash(data: Any, flow: bool | None) -> None:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=flow)

    spec = assert_loads_or_explains(text.encode("utf-8"))

    if spec is not None:  # what loads is schema-valid, and loads to what the data says
        assert list(_VALIDATOR.iter_errors(data)) == []
        assert spec.id == data["id"]
        assert [s.id for s in spec.stages] == [s["id"] for s in data["stages"]]
        # the same data laid out otherwise is the same spec with the same hash
        other = yaml.safe_dump(
            data, sort_keys=True, allow_unicode=False, default_flow_style=not flow, indent=3
        )
        again, problems = check_bytes(other.encode("utf-8"), FILE)
        assert problems == []
        assert again == spec
        assert again is not None
        assert again.content_hash == spec.content_hash


@fuzz
@given(
    key=st.one_of(st.text(min_size=1, max_size=12), st.sampled_from(["stgaes", "Id", "owner ", "nxet"])),
    value=json_values,
    where=st.sampled_from(MAPPINGS),
)
def test_unknown_keys_are_always_refused(key: str, value: Any, where: tuple[Any, ...]) -> None:
    assume(key not in KEYS_OF_THE_FORMAT)
    data = copy.deepcopy(BASE_DATA)
    _get(data, where)[key] = value

    spec = assert_loads_or_explains(yaml.safe_dump(data, allow_unicode=True).encode("utf-8"))

    assert spec is None


# -- every typed value is what YAML 1.2 reads --------------------------------------------------------

# The YAML 1.2 core schema's resolution of a plain scalar, from the spec (1.2.2, section 10.3.2),
# written here independently of the loader so that it can be the oracle.
_YAML12 = [
    (r"null|Null|NULL|~|", lambda s: None),
    (r"true|True|TRUE", lambda s: True),
    (r"false|False|FALSE", lambda s: False),
    (r"[-+]?[0-9]+", int),
    (r"0o[0-7]+", lambda s: int(s, 8)),
    (r"0x[0-9a-fA-F]+", lambda s: int(s, 16)),
    (r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", float),
    (r"[-+]?\.(inf|Inf|INF)", float),
    (r"\.(nan|NaN|NAN)", float),
]


def yaml12(plain: str) -> Any:
    for pattern, convert in _YAML12:
        if re.fullmatch(pattern, plain):
            return convert(plain)
    return plain


def _same_json_value(a: Any, b: Any) -> bool:
    """Equal as JSON values: 5 and 5.0 are one number, true is not 1, "5" is not 5."""
    kinds = (bool, str, type(None))
    return all(isinstance(a, k) == isinstance(b, k) for k in kinds) and a == b


# slot: (what BASE says there, the same line with {} for the value, where the spec keeps it)
TYPED_SLOTS: dict[str, tuple[str, str, Any]] = {
    "integer": ("    deadline_days: 5\n", "    deadline_days: {}\n", lambda s: s.stages[2].deadline_days),
    "boolean": ("        mandatory: false\n", "        mandatory: {}\n", lambda s: s.stages[1].tasks[2].mandatory),
    "boolean_in_flow": ("review: false}", "review: {}}}", lambda s: s.closure_reasons[2].review),
    "number": ("    probability: 0.05\n", "    probability: {}\n", lambda s: s.stages[0].probability),
    "number_in_flow": ("min: 1}", "min: {}}}", lambda s: s.fields[1].min),
    "text": ("title: Fuzz demo — Łódź\n", "title: {}\n", lambda s: s.title),
    "condition_value": ("{field: seats, op: gte, value: 50}", "{{field: seats, op: gte, value: {}}}",
                        lambda s: s.stages[1].tasks[2].when.all[1].value),
    "deadline_hours": ("deadline_hours: 4}", "deadline_hours: {}}}", lambda s: s.stages[1].tasks[0].deadline_hours),
    "business_hours": ("{start: 8, end: 16}", "{{start: 8, end: {}}}", lambda s: s.business_hours[1]),
    "min_attempts": ("min_attempts: 3}", "min_attempts: {}}}", lambda s: s.closure_reasons[5].min_attempts),
    "attribute_value": ("{attribute: value, op: gte, value: 250000}", "{{attribute: value, op: gte, value: {}}}",
                        lambda s: s.stages[1].next[1].when.any[3].value),
    "attribute_text": ("{attribute: source, op: eq, value: web}", "{{attribute: source, op: eq, value: {}}}",
                       lambda s: s.stages[1].tasks[1].when.value),
}
plain_scalars = st.one_of(
    yaml_words,
    st.sampled_from(["Yes", "ON", "Off", "n", "y", "NULL", "Null", "TRUE", "08", "0b101", "0o10", "0x0A",
                     "1_0", "1:30", "190:20:30", "1.0e+1", "1e3", "1.5e3", "+.5", ".5", "5.", "-0", "+12",
                     "0.0", "3.0", "010", "007", "0", "1", "12", "0.25"]),
    st.from_regex(r"[-+]?[0-9_]{0,4}[.:xobeE]?[0-9a-fA-F_]{0,4}([eE][-+]?[0-9]{1,2})?", fullmatch=True),
)


def _is_plain_scalar(text: str) -> bool:
    """Whether YAML reads ``text`` after "key: " as one unquoted scalar, exactly as written."""
    try:
        node = yaml.compose(f"key: {text}\n")
    except yaml.YAMLError:
        return False
    value = node.value[0][1] if node is not None else None
    return isinstance(value, yaml.ScalarNode) and value.style is None and value.value == text


@fuzz
@given(slot=st.sampled_from(sorted(TYPED_SLOTS)), plain=plain_scalars)
def test_no_typed_value_differs_from_its_yaml12_reading(slot: str, plain: str) -> None:
    old, template, read = TYPED_SLOTS[slot]
    assume(_is_plain_scalar(plain))
    text = BASE.replace(old, template.format(plain), 1)

    spec = assert_loads_or_explains(text.encode("utf-8"))

    if spec is not None:
        assert _same_json_value(read(spec), yaml12(plain)), (slot, plain, read(spec))


def test_the_typed_slots_are_where_the_test_looks() -> None:
    spec = assert_loads_or_explains(BASE_BYTES)

    assert spec is not None
    for old, _, read in TYPED_SLOTS.values():
        assert BASE.count(old) >= 1
        assert str(read(spec)).lower() in old.lower().replace("fuzz demo — łódź", "Fuzz demo — Łódź".lower())


# -- libyaml's reader and PyYAML's own report alike ---------------------------------------------------


@pytest.mark.skipif(len(process_yaml.YAML_READERS) < 2, reason="PyYAML was built without libyaml")
@fuzz
@given(data=data_mutation(), flow=st.sampled_from([None, False, True]), cut=st.integers(0, 3000))
def test_both_yaml_readers_give_the_same_result(data: Any, flow: bool | None, cut: int) -> None:
    """On any well-formed YAML (and any prefix of it). Hand-mangled text can still split them: libyaml
    takes a few plain scalars PyYAML's scanner refuses (``j?an`` in a flow mapping), see docs/performance.md."""
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=flow)
    raw = text.encode("utf-8")[: cut if cut else None]
    results = {}
    for name in process_yaml.YAML_READERS:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(process_yaml, "yaml_reader", name)
            results[name] = check_bytes(raw, FILE)

    first, *others = results.values()
    assert all(other == first for other in others), results
