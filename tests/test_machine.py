"""The shared state machine (``ProcessMachine.fire``) and the plain table (``.allowed``) answer alike.

For every shipped process: every (state, trigger) the table knows, plus triggers that must be refused
(advancing to a stage that is not a neighbour, winning from a stage that is not the won stage,
reopening an open stage, closing a closed lead, unknown names), under field values generated from the
process's own field types. The machine is shared by all leads of a process version, so moves must never
leave models behind: whether it attaches a model per move or reuses one, the number of attached models
does not grow.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sys
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import ProcessFileError
from engine.loader import load_file
from engine.machine import LOST, WON, ProcessMachine, build_table
from engine.spec import FieldSpec, ProcessSpec

PROCESS_FILES = sorted((Path(__file__).resolve().parent.parent / "processes").glob("*.yaml"))
UNSET = object()

checked = settings(
    max_examples=25,  # each example fires every probe (~300 moves); the guards get exhaustive witnesses below
    deadline=None,
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.too_slow],
)

_SPECS: dict[Path, ProcessSpec] = {}
_MACHINES: dict[Path, ProcessMachine] = {}


def spec_of(path: Path) -> ProcessSpec:
    if path not in _SPECS:
        _SPECS[path] = load_file(path)
    return _SPECS[path]


def machine_of(path: Path) -> ProcessMachine:
    if path not in _MACHINES:
        _MACHINES[path] = ProcessMachine(spec_of(path))
    return _MACHINES[path]


def test_every_shipped_process_is_covered() -> None:
    assert {p.stem for p in PROCESS_FILES} >= {"photovoltaics", "saas_trial", "leasing", "life_insurance",
                                               "mortgage"}


# -- field values as the engine stores them (typed, JSON-able), or unset -----------------------------------

def _bounded(field: FieldSpec, lo: float, hi: float) -> tuple[float, float]:
    return (field.min if field.min is not None else lo), (field.max if field.max is not None else hi)


def field_value(field: FieldSpec) -> st.SearchStrategy[Any]:
    if field.type == "choice":
        return st.sampled_from(field.options)
    if field.type == "bool":
        return st.booleans()
    if field.type == "number":
        lo, hi = _bounded(field, -1_000, 1_000_000)
        # around the bounds and the small literals conditions compare against, plus fractions
        ints = st.integers(int(lo) - 2, int(lo) + 15) | st.integers(int(lo), int(hi))
        return ints | st.floats(min_value=lo - 1, max_value=hi + 1, allow_nan=False).map(
            lambda x: round(x, 2))
    if field.type == "money":
        lo, hi = _bounded(field, 0, 10_000_000)
        return st.decimals(min_value=Decimal(str(lo)), max_value=Decimal(str(hi)), places=2,
                           allow_nan=False, allow_infinity=False).map(str)
    if field.type == "date":
        return st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 31)).map(dt.date.isoformat)
    return st.text(max_size=12)


def field_dicts(spec: ProcessSpec) -> st.SearchStrategy[dict[str, Any]]:
    parts = {f.id: st.one_of(st.just(UNSET), field_value(f)) for f in spec.fields}
    return st.fixed_dictionaries(parts).map(lambda d: {k: v for k, v in d.items() if v is not UNSET})


def probes(spec: ProcessSpec) -> list[tuple[str, str]]:
    """Every (state, trigger) of the table, and the moves that must be refused."""
    table = build_table(spec)
    states = [*spec.stage_ids, WON, LOST]
    triggers = {trigger for _, trigger in table}
    triggers |= {f"advance_to_{s}" for s in spec.stage_ids}  # non-neighbours, backwards, to itself
    triggers |= {f"reopen_to_{s}" for s in spec.stage_ids}
    triggers |= {"win", "close", "advance_to_nowhere", "advance_to_won", "reopen_to_nowhere", "nonsense"}
    pairs = [(state, trigger) for state in states for trigger in sorted(triggers)]
    assert set(table) <= set(pairs)
    return pairs


# -- fire == allowed -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", PROCESS_FILES, ids=lambda p: p.stem)
@checked
@given(data=st.data())
def test_fire_and_allowed_agree_on_every_move(path: Path, data: st.DataObject) -> None:
    spec = spec_of(path)
    machine = machine_of(path)
    fields = data.draw(field_dicts(spec), label="fields")
    table = build_table(spec)
    attached = len(machine.machine.models)
    for state, trigger in probes(spec):
        fired = machine.fire(state, trigger, fields)
        assert fired == machine.allowed(state, trigger, fields), (state, trigger, fields)
        if (state, trigger) not in table:
            assert fired is None, (state, trigger)
        elif table[(state, trigger)].when is None:
            assert fired == table[(state, trigger)].dest, (state, trigger)
    assert len(machine.machine.models) == attached <= 1


@pytest.mark.parametrize("path", PROCESS_FILES, ids=lambda p: p.stem)
def test_guarded_transitions_are_taken_and_refused(path: Path) -> None:
    """Both answers follow the guard, in both directions (not merely agree on always-None)."""
    spec = spec_of(path)
    machine = machine_of(path)
    for (state, trigger), edge in build_table(spec).items():
        if edge.when is None:
            continue
        cond_fields = sorted(edge.when.fields())
        seen = set()
        for fields in _guard_witnesses(spec, cond_fields):
            answer = machine.fire(state, trigger, fields)
            assert answer == machine.allowed(state, trigger, fields)
            seen.add(answer)
        assert seen == {edge.dest, None}, (spec.id, state, trigger, seen)


def _guard_witnesses(spec: ProcessSpec, names: list[str]) -> list[dict[str, Any]]:
    """Small exhaustive-ish combinations of values for the fields a guard reads."""
    options: list[list[Any]] = []
    for name in names:
        f = spec.field_spec(name)
        assert f is not None
        values: list[Any] = [UNSET]
        if f.type == "choice":
            values += list(f.options)
        elif f.type == "bool":
            values += [True, False]
        elif f.type == "number":
            lo = int(f.min) if f.min is not None else 0
            values += [lo, lo + 1, lo + 2, lo + 10, lo + 500]
        elif f.type == "money":
            values += ["0.00", "1000.00", "1000000.00"]
        elif f.type == "date":
            values += ["2020-01-01", "2030-01-01"]
        else:
            values += ["", "x"]
        options.append(values)
    return [{n: v for n, v in zip(names, combo, strict=True) if v is not UNSET}
            for combo in itertools.product(*options)]


# -- the machine does not keep leads ---------------------------------------------------------------------

@pytest.mark.parametrize("path", PROCESS_FILES, ids=lambda p: p.stem)
def test_models_do_not_accumulate(path: Path) -> None:
    spec = spec_of(path)
    machine = ProcessMachine(spec)  # a fresh one
    attached = len(machine.machine.models)
    assert attached <= 1  # none, or the one model every move reuses
    pairs = probes(spec)
    moved = refused = 0
    for i in range(1_000):
        state, trigger = pairs[(i * 7) % len(pairs)]
        if machine.fire(state, trigger, {}) is None:
            refused += 1
        else:
            moved += 1
    assert moved and refused  # both paths (a move made and a move refused) were taken
    assert len(machine.machine.models) == attached


# -- the machine's shape ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", PROCESS_FILES, ids=lambda p: p.stem)
def test_states_are_exactly_the_stages_plus_won_and_lost(path: Path) -> None:
    """No implicit 'initial' state of the transitions library (fixed in aa12dcc)."""
    spec = spec_of(path)
    machine = machine_of(path)
    assert list(machine.machine.states) == [*spec.stage_ids, WON, LOST]
    assert machine.machine.initial is None


@pytest.mark.parametrize("path", PROCESS_FILES, ids=lambda p: p.stem)
def test_win_exists_only_from_the_won_stage(path: Path) -> None:
    spec = spec_of(path)
    machine = machine_of(path)
    wins = machine.machine.get_transitions(trigger="win")
    assert [(t.source, t.dest) for t in wins] == [(spec.won_stage, WON)]
    for state in [*spec.stage_ids, WON, LOST]:
        expected = WON if state == spec.won_stage else None
        assert machine.fire(state, "win", {}) == expected
        assert machine.allowed(state, "win", {}) == expected


@pytest.mark.parametrize("path", PROCESS_FILES, ids=lambda p: p.stem)
def test_close_from_every_stage_and_reopen_only_from_won_or_lost(path: Path) -> None:
    spec = spec_of(path)
    machine = machine_of(path)
    closes = {t.source for t in machine.machine.get_transitions(trigger="close")}
    assert closes == set(spec.stage_ids)
    for stage in spec.stage_ids:
        sources = {t.source for t in machine.machine.get_transitions(trigger=f"reopen_to_{stage}")}
        assert sources == {WON, LOST}


@pytest.mark.parametrize("state", ["no_such_stage", "initial", ""])
def test_fire_and_allowed_agree_on_an_unknown_state(state: str) -> None:
    """A stage a version does not have allows no move, in both answers (it used to raise ValueError)."""
    machine = machine_of(PROCESS_FILES[0])
    attached = len(machine.machine.models)
    for trigger in ("close", "win", "advance_to_first_contact", f"reopen_to_{machine.spec.first_stage.id}"):
        assert machine.allowed(state, trigger, {}) is None
        assert machine.fire(state, trigger, {}) is None
    assert len(machine.machine.models) == attached


@pytest.mark.parametrize("name", [WON, LOST])
def test_a_stage_may_not_take_the_name_of_a_terminal_state(name: str, tmp_path: Path) -> None:
    """Were it accepted, the stage and the terminal state would be one state of the machine."""
    source = next(p for p in PROCESS_FILES if p.stem == "photovoltaics").read_text(encoding="utf-8")
    path = tmp_path / "photovoltaics.yaml"
    path.write_text(source.replace("first_contact", name), encoding="utf-8")
    with pytest.raises(ProcessFileError, match=f"'{name}' is reserved"):
        load_file(path)


def test_threads_sharing_one_machine_get_the_answers_of_the_table() -> None:
    """The engine caches one machine per process version for every caller (an HTTP server's threads too)."""
    path = next(p for p in PROCESS_FILES if p.stem == "saas_trial")
    spec = spec_of(path)
    machine = ProcessMachine(spec)
    pairs = probes(spec)
    field_sets = [{}, {"activated": True, "plan": "team"}, {"activated": True, "plan": "enterprise"},
                  {"trial_extensions": 2}, {"trial_extensions": 1, "activated": False}]
    wrong: list[tuple[str, str, dict[str, Any], str | None]] = []

    def work(offset: int) -> None:
        for i in range(600):
            state, trigger = pairs[(i * 11 + offset) % len(pairs)]
            fields = field_sets[(i + offset) % len(field_sets)]
            answer = machine.fire(state, trigger, fields)
            if answer != machine.allowed(state, trigger, fields):
                wrong.append((state, trigger, fields, answer))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so an unguarded shared model would be caught
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert wrong == []
