"""Random operation sequences through the real Engine API, on a real SQLite database.

A hypothesis ``RuleBasedStateMachine`` plays a sales floor: a salesperson who owns leads, her manager,
the analyst and the technician of the back office, a customer-success manager and a solutions engineer
(the SaaS process's departments), salespeople and a manager of another team who must be refused, and a
stranger who is not registered. Each rule predicts from a small model whether the engine must accept
or refuse the call (and with which error class); every call either succeeds or raises a
``LeadflowError`` - anything else fails the test. Time moves forward between steps across business
days, weekends and public holidays.

After every step the invariants check that:
  (a) a won or lost lead never changes stage or gets any event until it is reopened;
  (b) every stage a lead left had no mandatory applicable task open and its required fields set at
      that moment (checked on the shadow state before each move, and again by replaying the log);
  (c) the event log rebuilds the stored state;
  (d) nothing is ever deleted: clients, leads, events, closures and ownerships only grow, and earlier
      event rows never change;
  (e) a refused operation changes nothing (the whole database, on a sample of refusals);
and that the stored leads match the model, task applicability follows the fields, and the board's
stage_counts equal a recount of the leads.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from engine import clock, rules, store
from engine.api import Engine
from engine.errors import (
    InvalidInputError,
    LeadflowError,
    NotFoundError,
    PermissionDenied,
    RuleViolation,
)
from engine.i18n import every_text
from engine.spec import FieldSpec, ProcessSpec, StageSpec, TaskSpec
from engine.state import LeadState, apply
from engine.vocab import TaskStatus
from tests.conftest import Team, snapshot

PROCESSES_DIR = Path(__file__).resolve().parent.parent / "processes"
PROCESSES = ("photovoltaics", "saas_trial")

#: name -> (role, team); "mallory" is deliberately not registered.
USERS: dict[str, tuple[str, str | None]] = {
    "root": ("admin", None),
    "marta": ("manager", "north"),
    "anna": ("salesperson", "north"),
    "piotr": ("salesperson", "north"),
    "radu": ("manager", "south"),
    "ioana": ("salesperson", "south"),
    "olga": ("analyst", "north"),
    "tomasz": ("technician", None),
    "celina": ("customer_success", "north"),
    "sam": ("solutions_engineer", None),
}
STRANGER = "mallory"

#: Monday morning; before May Day and Constitution Day (PL); Thanksgiving week (US); before Christmas.
STARTS = [dt.datetime(2026, 3, 2, 9), dt.datetime(2026, 4, 29, 16), dt.datetime(2026, 11, 24, 10),
          dt.datetime(2026, 12, 23, 15)]
TIME_STEPS = [dt.timedelta(minutes=20), dt.timedelta(hours=5), dt.timedelta(hours=20), dt.timedelta(days=1),
              dt.timedelta(days=2, hours=3), dt.timedelta(days=6)]

INVALID = object()  # the engine must refuse this value
MAX_LEADS = 4  # few leads, worked on for longer: sequences get deep into the processes
SNAPSHOT_EVERY = 4  # compare the whole database around every 4th refusal (it is slow)


# -- values: (what the user types, what the engine must store or INVALID) ---------------------------------

def _in_bounds(f: FieldSpec, number: float) -> bool:
    return (f.min is None or number >= f.min) and (f.max is None or number <= f.max)


def field_values(f: FieldSpec, valid: bool = True, clear: bool = True) -> st.SearchStrategy[tuple[Any, Any]]:
    """Values for one field as typed by a user: good ones (``valid``) or mistakes. Absurd magnitudes and
    text with lone surrogates have their own tests at the end of this file."""
    good: list[st.SearchStrategy[tuple[Any, Any]]] = []
    bad: list[tuple[Any, Any]] = []
    if f.type == "choice":
        option = st.sampled_from(f.options)
        good += [option.map(lambda o: (o, o)), option.map(lambda o: (f" {o} ", o))]
        bad += [("barter", INVALID), (f.options[0].upper(), INVALID)]
    elif f.type == "bool":
        good.append(st.sampled_from([("yes", True), ("tak", True), ("Da", True), ("nie", False), (True, True),
                                     (False, False), ("0", False), ("NO", False)]))
        bad += [("maybe", INVALID), (2, INVALID)]
    elif f.type == "number":
        lo = int(f.min) if f.min is not None else -10
        hi = int(f.max) if f.max is not None else 300_000
        ints = st.integers(lo, min(lo + 5, hi)) | st.integers(lo, min(hi, 300_000))
        good += [ints.map(lambda n: (str(n), n)), ints.map(lambda n: (n, n)),
                 st.sampled_from([(t, v) for t, v in [("2,25", 2.25), ("1e1", 10), ("0.5", 0.5)]
                                  if _in_bounds(f, v)] or [(str(lo), lo)])]
        bad += [("abc", INVALID), ("NaN", INVALID), ("-Infinity", INVALID), (True, INVALID)]
        bad += [(str(lo - 1), INVALID)] if f.min is not None else []
        bad += [(str(hi + 1), INVALID)] if f.max is not None else []
    elif f.type == "money":
        cents = st.integers(0, 10**9)
        good += [cents.map(lambda c: (f"{c // 100}.{c % 100:02d}", f"{c // 100}.{c % 100:02d}")),
                 st.sampled_from([("12 500,50", "12500.50"), ("100", "100.00")])]
        bad += [("1.234", INVALID), ("-5", INVALID), ("lots", INVALID), ("1e20", INVALID)]
    elif f.type == "date":
        day = st.dates(dt.date(2025, 1, 1), dt.date(2027, 12, 31))
        good += [day.map(lambda d: (d.isoformat(), d.isoformat())), day.map(lambda d: (d, d.isoformat()))]
        bad += [("2026-02-30", INVALID), ("31.12.2026", INVALID), ("soon", INVALID)]
    else:
        good += [st.text(min_size=1, max_size=16).filter(lambda t: t.strip() and not control(t)).map(
                     lambda t: (t, t)),
                 st.just(("Łukasz Żółć\twith a tab\nand a line", "Łukasz Żółć\twith a tab\nand a line"))]
        bad += [("x" * 10_001, INVALID), (42, INVALID), ("bell \x07", INVALID), ("esc \x1b[31m", INVALID),
                ("c1 \x9b", INVALID), ("del \x7f", INVALID)]
        if not valid:  # any text at all: the model decides
            return st.one_of(st.sampled_from(bad), st.text(max_size=16).map(lambda t: (t, expected_text(t))))
    if not valid:
        return st.sampled_from(bad)
    if clear:
        good.append(st.sampled_from([("", None), ("   ", None), (None, None)]))
    return st.one_of(good)


def control(text: str) -> bool:
    """C0 controls but tab and newline, DEL and the C1 controls: refused in text (docs: rules.py)."""
    return any((ord(ch) < 32 and ch not in "\t\n") or 0x7F <= ord(ch) <= 0x9F for ch in text)


def expected_text(text: str) -> Any:
    if not text.strip():
        return None  # blank clears the field (str.strip also strips \x1c-\x1f and \x85)
    return INVALID if control(text) or len(text) > 10_000 else text


def mostly(data: st.DataObject, good: list[Any], bad: list[Any], label: str) -> Any:
    """Three times in four a choice that should work (when there is one), otherwise a mistake."""
    if good and (not bad or data.draw(st.sampled_from([True, True, True, False]), label=f"{label} ok?")):
        return data.draw(st.sampled_from(good), label=label)
    return data.draw(st.sampled_from(bad), label=label)


ATTRIBUTE_VALUES: dict[str, list[tuple[Any, Any]]] = {
    "value": [("45 000,50", 4_500_050), ("100", 10_000), ("0", 0), ("", None), ("-1", INVALID),
              ("1.001", INVALID), ("a lot", INVALID)],
    "product": [("PV 6 kWp", "PV 6 kWp"), ("  Team plan  ", "Team plan"), ("", None), ("bad\x07", INVALID),
                ("p" * 201, INVALID)],
    "source": [("web", "web"), ("fair\tstand", "fair stand"), ("", None), ("\x00", INVALID)],
}
NOTES: list[tuple[Any, Any]] = [(None, None), ("called, all fine", "called, all fine"), ("", None),
                                ("bell\x07", INVALID), ("n" * 5001, INVALID)]


# -- the model ------------------------------------------------------------------------------------------

@dataclass
class Expected:
    """What the engine must have stored for one lead."""

    process: str
    owner: str | None
    team: str | None
    stage: str
    status: str = "open"
    fields: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=lambda: {"value": None, "product": None, "source": None})


def role(name: str) -> str | None:
    return USERS[name][0] if name in USERS else None


def team_of(name: str) -> str | None:
    return USERS[name][1] if name in USERS else None


def manages(name: str, team: str | None) -> bool:
    if role(name) == "admin":
        return True
    return role(name) == "manager" and (team_of(name) is None or team_of(name) == team)


def can_see(name: str, lead: Expected) -> bool:
    """The model's view of policy.can_view: the owner, the team's managers, a department of the team."""
    if can_work(name, lead):
        return True
    return role(name) not in (None, "salesperson", "manager", "admin") and team_of(name) in (None, lead.team)


def can_work(name: str, lead: Expected) -> bool:
    return (lead.owner == name and role(name) in ("salesperson", "manager")) or manages(name, lead.team)


def blockers(stage: StageSpec, shadow: LeadState, fields: dict[str, Any]) -> list[str]:
    """What keeps a lead in ``stage`` (computed here, not by the engine's rules.missing_to_leave)."""
    tasks = [t.id for t in stage.all_tasks
             if t.mandatory and shadow.tasks.get((stage.id, t.id)) is not None
             and shadow.tasks[(stage.id, t.id)].state == TaskStatus.OPEN]
    return tasks + [f for f in stage.required_fields if fields.get(f) is None]


def stage_condition_fields(stage: StageSpec) -> set[str]:
    """Fields read by the conditions of the stage's transitions and tasks (worth changing often)."""
    names: set[str] = set()
    for cond in [*(n.when for n in stage.next), *(t.when for t in stage.all_tasks)]:
        if cond is not None:
            names |= cond.fields()
    return names


def _copy_database(source: Path, target: Path) -> None:
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def build_template(path: Path) -> None:
    """Schema, both processes and the users, once; every example starts from a copy."""
    url = f"sqlite:///{path}"
    admin = Engine.open(url, user="root")
    try:
        with clock.frozen(STARTS[0] - dt.timedelta(days=7)):
            admin.init()
            for process in PROCESSES:
                admin.load_process(PROCESSES_DIR / f"{process}.yaml")
            for name, (role_, team) in USERS.items():
                if name != "root":
                    admin.add_user(name, role_, team)
    finally:
        admin.close()


class LeadflowMachine(RuleBasedStateMachine):
    template: ClassVar[Path]
    leads = Bundle("leads")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="leadflow-stateful-"))
        path = self.dir / "leadflow.db"
        _copy_database(self.template, path)
        self.url = f"sqlite:///{path}"
        self.root = Engine.open(self.url, user="root")
        self.engines = {name: self.root.as_user(name) for name in [*USERS, STRANGER]}
        self.specs: dict[str, ProcessSpec] = {p: self.root.spec(p) for p in PROCESSES}
        self.now = STARTS[0]
        self.model: dict[int, Expected] = {}
        self.closed: dict[int, tuple[str, int]] = {}  # lead -> (stage, events) when it was won or lost
        self.refusals = 0
        self.seen_events: list[tuple[Any, ...]] = []
        self.counts = {"clients": 0, "leads": 0, "events": 0, "closures": 0, "ownerships": 0}

    def teardown(self) -> None:
        self.root.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- calling the engine ------------------------------------------------------------------------------
    def call(self, expected: type[LeadflowError] | None, actor: str, method: str, *args: Any,
             **kw: Any) -> Any:
        """Call ``Engine.method`` as ``actor`` at the next minute; check the outcome the model predicts. Whoever
        may not see a lead is refused that first, whatever else would refuse them (engine/policy.py)."""
        if method != "add_lead" and args and args[0] in self.model and not can_see(actor, self.model[args[0]]):
            expected = PermissionDenied
        self.now += dt.timedelta(minutes=1)
        before = None
        if expected is not None:
            self.refusals += 1
            if self.refusals % SNAPSHOT_EVERY == 0:
                before = snapshot(self.url)
        with clock.frozen(self.now):
            try:
                result = getattr(self.engines[actor], method)(*args, **kw)
            except LeadflowError as exc:  # anything else is a bug and fails the test
                event(f"{method}: {type(exc).__name__}")
                assert expected is not None, f"{actor}: unexpected refusal {type(exc).__name__}: {exc}"
                assert isinstance(exc, expected), f"{actor}: expected {expected.__name__}, got {exc!r}"
                assert str(exc)
                if before is not None:
                    assert snapshot(self.url) == before, "a refused operation changed the database"
                return None
        assert expected is None, f"{actor}: expected {expected.__name__}, but the engine accepted"
        event(f"{method}: ok")
        return result

    def shadow(self, lead_id: int) -> LeadState:
        return self.root.stored_lead(lead_id)

    def events_of(self, lead_id: int) -> int:
        return len(self.root.history(lead_id))

    # -- who may do what (the model's view of engine/policy.py) -----------------------------------------
    def workers(self, lead: Expected) -> tuple[list[str], list[str]]:
        """(users who may advance/edit/close/win the lead, users who must be refused)."""
        everyone = [*USERS, STRANGER]
        good = [n for n in everyone if can_work(n, lead)]
        # the owner and the team's manager are the usual actors; root (an admin) only now and then
        good = [n for n in good if n != "root"] or good
        return good, [n for n in everyone if not can_work(n, lead)]

    def doers(self, lead: Expected, task: TaskSpec, spec: ProcessSpec) -> list[str]:
        """Users who may complete ``task`` of ``lead``: its owner or the department, else a manager."""
        if task.owner == spec.owner_role:
            people = [lead.owner] if lead.owner else []
        else:
            people = [n for n, (r, t) in USERS.items() if r == task.owner and (t is None or t == lead.team)]
        return people or [n for n in USERS if manages(n, lead.team) and n != "root"] or ["root"]

    @staticmethod
    def may_not_add(actor: str, owner: str | None) -> bool:
        if owner is None:  # a lead nobody owns yet: a manager's or an admin's (a salesperson owns it)
            return role(actor) not in ("manager", "admin", "salesperson")
        if role(owner) not in ("salesperson", "manager"):
            return True
        return owner != actor and not manages(actor, team_of(owner))

    # -- rules ------------------------------------------------------------------------------------------
    @initialize(start=st.sampled_from(STARTS))
    def start_the_clock(self, start: dt.datetime) -> None:
        self.now = start

    @rule(delta=st.sampled_from(TIME_STEPS))
    def time_passes(self, delta: dt.timedelta) -> None:
        self.now += delta

    @precondition(lambda self: len(self.model) < MAX_LEADS)
    @rule(target=leads, data=st.data())
    def add_lead(self, data: st.DataObject) -> Any:
        process = data.draw(st.sampled_from(PROCESSES), label="process")
        spec = self.specs[process]
        actor, owner = mostly(data, [("anna", None), ("anna", "anna"), ("marta", "piotr"), ("radu", "ioana"),
                                     ("root", None), ("marta", None)],
                              [(STRANGER, None), ("olga", None), ("piotr", "anna"), ("radu", "anna"),
                               ("marta", "olga"), ("marta", "nobody"), ("tomasz", None)], "actor, owner")
        names = data.draw(st.lists(st.sampled_from([f.id for f in spec.fields]), max_size=2, unique=True),
                          label="fields")
        valid = data.draw(st.sampled_from([True, True, True, True, False]), label="valid?")
        typed = {n: data.draw(field_values(spec.field_spec(n), valid), label=n)  # type: ignore[arg-type]
                 for n in names}
        name = data.draw(st.sampled_from(["Łukasz Żółć", "Жанна Смирнова", "Ștefan Lăcătuș", "O'Brien",
                                          "  "]), label="name")

        owner_name = owner if owner is not None else (actor if role(actor) == "salesperson" else None)
        expected: type[LeadflowError] | None = None
        if role(actor) is None:
            expected = PermissionDenied
        elif owner_name is not None and owner_name not in USERS:
            expected = NotFoundError
        elif self.may_not_add(actor, owner_name):
            expected = PermissionDenied
        elif any(v is INVALID for _, v in typed.values()) or not name.strip():
            expected = InvalidInputError

        view = self.call(expected, actor, "add_lead", process=process, name=name, owner=owner,
                         fields={n: raw for n, (raw, _) in typed.items()})
        if view is None:
            return multiple()
        lead_id = view["id"]
        self.model[lead_id] = Expected(
            # a lead added without an owner waits in the adding manager's team
            process=process, owner=owner_name, team=team_of(owner_name) if owner_name else team_of(actor),
            stage=spec.first_stage.id, fields={n: v for n, (_, v) in typed.items() if v is not None})
        return lead_id

    @rule(lead_id=leads, data=st.data())
    def set_fields(self, lead_id: int, data: st.DataObject) -> None:
        lead = self.model[lead_id]
        spec = self.specs[lead.process]
        actor = mostly(data, *self.workers(lead), "actor")
        stage = spec.stage(lead.stage)
        assert stage is not None
        interesting = [*stage.required_fields, *sorted(stage_condition_fields(stage))]
        choices = [f.id for f in spec.fields] + interesting * 3 + list(ATTRIBUTE_VALUES) + ["no_such_field"]
        names = data.draw(st.lists(st.sampled_from(choices), min_size=1, max_size=2, unique=True),
                          label="names")
        values: dict[str, tuple[Any, Any]] = {}
        for name in names:
            if name in ATTRIBUTE_VALUES:
                values[name] = data.draw(st.sampled_from(ATTRIBUTE_VALUES[name]), label=name)
            elif name == "no_such_field":
                values[name] = ("1", INVALID)
            else:
                valid = data.draw(st.sampled_from([True, True, True, True, False]), label="valid?")
                values[name] = data.draw(field_values(spec.field_spec(name), valid),  # type: ignore[arg-type]
                                         label=name)

        expected: type[LeadflowError] | None = None
        if lead.status != "open":
            expected = RuleViolation
        elif not can_work(actor, lead):
            expected = PermissionDenied
        elif any(v is INVALID for _, v in values.values()):
            expected = InvalidInputError
        elif self.breaks_passed_rules(lead_id, lead, values):
            expected = RuleViolation
        if self.call(expected, actor, "set_fields", lead_id, {n: raw for n, (raw, _) in values.items()}):
            self.record_set(lead, values)

    def breaks_passed_rules(self, lead_id: int, lead: Expected, values: dict[str, tuple[Any, Any]]) -> bool:
        """Whether the new fields would undo a rule of a stage the lead has left (docs/process-format.md,
        "Conditions after a stage is left"): asked of the engine's own check on the stored state and history."""
        from engine.services.passed import conditions_read, passed_moves, require_path_kept
        from engine.store import read_events

        changed = [n for n, (_, v) in values.items()
                   if (lead.attrs.get(n) if n in ATTRIBUTE_VALUES else lead.fields.get(n)) != v]
        if not conditions_read(self.specs[lead.process], changed):
            return False  # no condition reads what changed: it undoes no rule, even of a lead that broke one before
        fields = dict(lead.fields)
        for name, (_, value) in values.items():
            if name not in ATTRIBUTE_VALUES:
                if value is None:
                    fields.pop(name, None)
                else:
                    fields[name] = value
        with self.root.transaction() as conn:
            moves = passed_moves(read_events(conn, lead_id))
        try:
            require_path_kept(self.shadow(lead_id), self.specs[lead.process], moves, fields)
        except RuleViolation:
            return True
        return False

    def record_set(self, lead: Expected, values: dict[str, tuple[Any, Any]]) -> None:
        for name, (_, value) in values.items():
            if name in ATTRIBUTE_VALUES:
                lead.attrs[name] = value
            elif value is None:
                lead.fields.pop(name, None)
            else:
                lead.fields[name] = value

    @rule(lead_id=leads, data=st.data())
    def complete_task(self, lead_id: int, data: st.DataObject) -> None:
        lead = self.model[lead_id]
        spec = self.specs[lead.process]
        shadow = self.shadow(lead_id)
        stage = spec.stage(lead.stage)
        assert stage is not None
        open_here = [t.id for t in stage.all_tasks if shadow.tasks[(stage.id, t.id)].state == TaskStatus.OPEN]
        elsewhere = sorted({t.id for s in spec.stages for t in s.all_tasks} - set(open_here))
        task_id = mostly(data, open_here, [*elsewhere, "no_such_task"], "task")
        task = stage.task(task_id)
        good = self.doers(lead, task, spec) if task is not None else []
        actor = mostly(data, good, [n for n in [*USERS, STRANGER] if n not in good], "actor")
        note, note_ok = data.draw(st.sampled_from(NOTES), label="note")

        expected: type[LeadflowError] | None = None
        if lead.status != "open":
            expected = RuleViolation
        elif task is None or (stage.id, task_id) not in shadow.tasks:
            expected = NotFoundError
        elif not (manages(actor, lead.team)
                  or (task.owner == spec.owner_role and lead.owner == actor and role(actor) is not None)
                  or (task.owner != spec.owner_role and role(actor) == task.owner
                      and (team_of(actor) is None or team_of(actor) == lead.team))):
            expected = PermissionDenied
        elif (shadow.tasks[(stage.id, task_id)].state in (TaskStatus.DONE, TaskStatus.NOT_APPLICABLE)
              or any(shadow.tasks[(stage.id, t)].state == TaskStatus.OPEN for t in task.after
                     if (stage.id, t) in shadow.tasks)):  # done, not applicable, or after a task still open
            expected = RuleViolation
        elif note_ok is INVALID:
            expected = InvalidInputError
        if self.call(expected, actor, "complete_task", lead_id, task_id, note=note):
            done = self.shadow(lead_id).tasks[(stage.id, task_id)]
            assert (done.state, done.done_by, done.done_at, done.note) == (TaskStatus.DONE, actor, self.now, note_ok)

    @rule(lead_id=leads, data=st.data())
    def work_the_stage(self, lead_id: int, data: st.DataObject) -> None:
        """What a diligent owner does for a while: fill in each stage's required fields, get its mandatory
        tasks done, move on (or win at the won stage). Every call must succeed; it lets random
        sequences get deep into the processes."""
        for _ in range(data.draw(st.integers(1, 6), label="stages")):
            lead = self.model[lead_id]
            if lead.status != "open":
                return
            spec = self.specs[lead.process]
            stage = spec.stage(lead.stage)
            assert stage is not None
            good, _ = self.workers(lead)
            missing = [f for f in stage.required_fields if f not in lead.fields]
            if missing:
                values = {f: data.draw(field_values(spec.field_spec(f), clear=False),  # type: ignore[arg-type]
                                       label=f) for f in missing}
                self.call(None, data.draw(st.sampled_from(good), label="actor"), "set_fields", lead_id,
                          {f: raw for f, (raw, _) in values.items()})
                self.record_set(lead, values)
            shadow = self.shadow(lead_id)
            for task in stage.all_tasks:
                if task.mandatory and shadow.tasks[(stage.id, task.id)].state == TaskStatus.OPEN:
                    doer = data.draw(st.sampled_from(self.doers(lead, task, spec)), label=task.id)
                    self.call(None, doer, "complete_task", lead_id, task.id)
            if not data.draw(st.sampled_from([True, True, True, False]), label="and move on?"):
                return
            actor = data.draw(st.sampled_from(good), label="actor")
            if stage.id == spec.won_stage:
                self.try_win(lead_id, actor)
            else:
                self.try_advance(lead_id, actor, None)
            if self.model[lead_id].stage == stage.id:  # stuck: a transition's condition does not hold
                return

    @rule(lead_id=leads, data=st.data())
    def advance(self, lead_id: int, data: st.DataObject) -> None:
        lead = self.model[lead_id]
        stage = self.specs[lead.process].stage(lead.stage)
        assert stage is not None
        neighbours = [n.stage for n in stage.next]
        actor = mostly(data, *self.workers(lead), "actor")
        others = [s for s in self.specs[lead.process].stage_ids if s not in neighbours]
        to = mostly(data, [None, None, *neighbours], [*others, "nowhere"], "to")
        self.try_advance(lead_id, actor, to)

    def try_advance(self, lead_id: int, actor: str, to: str | None) -> None:
        lead = self.model[lead_id]
        spec = self.specs[lead.process]
        shadow = self.shadow(lead_id)
        stage = spec.stage(lead.stage)
        assert stage is not None
        expected: type[LeadflowError] | None = None
        dest = None
        targets = [n for n in stage.next if to is None or n.stage == to]
        if lead.status != "open":
            expected = RuleViolation
        elif not can_work(actor, lead):
            expected = PermissionDenied
        elif not stage.next:
            expected = RuleViolation
        elif to is not None and spec.stage(to) is None:
            expected = NotFoundError
        elif not targets or blockers(stage, shadow, lead.fields):
            expected = RuleViolation
        else:
            dest = next((n.stage for n in targets
                         if n.when is None or rules.evaluate(n.when, lead.fields, spec)), None)
            if dest is None:
                expected = RuleViolation
        view = self.call(expected, actor, "advance", lead_id, to=to)
        if view is not None:
            # (b) on the shadow copy: the stage it left had nothing open and nothing unset
            assert shadow.status == "open" and shadow.stage == stage.id
            assert not blockers(stage, shadow, shadow.fields)
            assert view["stage"] == dest
            lead.stage = dest  # type: ignore[assignment]

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def win(self, data: st.DataObject) -> None:
        ready = [i for i, x in self.model.items()
                 if x.status == "open" and x.stage == self.specs[x.process].won_stage]
        lead_id = mostly(data, ready, sorted(self.model), "lead")
        self.try_win(lead_id, mostly(data, *self.workers(self.model[lead_id]), "actor"))

    def try_win(self, lead_id: int, actor: str) -> None:
        lead = self.model[lead_id]
        spec = self.specs[lead.process]
        shadow = self.shadow(lead_id)
        stage = spec.stage(lead.stage)
        assert stage is not None
        expected: type[LeadflowError] | None = None
        if lead.status != "open":
            expected = RuleViolation
        elif not can_work(actor, lead):
            expected = PermissionDenied
        elif lead.stage != spec.won_stage or blockers(stage, shadow, lead.fields):
            expected = RuleViolation
        if self.call(expected, actor, "win", lead_id):
            assert shadow.status == "open" and shadow.stage == spec.won_stage
            assert not blockers(stage, shadow, shadow.fields)
            lead.status = "won"
            self.closed[lead_id] = (lead.stage, self.events_of(lead_id))

    @rule(lead_id=leads, data=st.data())
    def close(self, lead_id: int, data: st.DataObject) -> None:
        lead = self.model[lead_id]
        spec = self.specs[lead.process]
        actor = mostly(data, *self.workers(lead), "actor")
        labels = [text for r in spec.closure_reasons for text in every_text(r.label)]
        reason = mostly(data, [r.id for r in spec.closure_reasons],
                        ["client was rude", "", "Competitor", *labels[:2], labels[-1].upper()], "reason")
        # a reason is named by its id or by a label in any language, case aside (docs/cli.md, "Commands")
        meant = spec.reason(reason) or next((r for r in spec.closure_reasons if reason.casefold() in {
            r.id.casefold(), *(text.casefold() for text in every_text(r.label))}), None)
        note, note_ok = data.draw(st.sampled_from(NOTES), label="note")
        expected: type[LeadflowError] | None = None
        if lead.status != "open":
            expected = RuleViolation
        elif not can_work(actor, lead):
            expected = PermissionDenied
        elif meant is None:
            expected = RuleViolation
        elif note_ok is INVALID:
            expected = InvalidInputError
        view = self.call(expected, actor, "close_lead", lead_id, reason, note=note)
        if view is not None:
            assert meant is not None
            assert (view["status"], view["close_reason"], view["close_note"]) == ("lost", meant.id, note_ok)
            lead.status = "lost"
            self.closed[lead_id] = (lead.stage, self.events_of(lead_id))

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def reopen(self, data: st.DataObject) -> None:
        lead_id = mostly(data, sorted(self.closed), sorted(self.model), "lead")
        lead = self.model[lead_id]
        spec = self.specs[lead.process]
        shadow = self.shadow(lead_id)
        everyone = [*USERS, STRANGER]
        actor = mostly(data, [n for n in everyone if manages(n, lead.team)],
                       [n for n in everyone if not manages(n, lead.team)], "actor")
        stage = mostly(data, [None, None, "", *spec.stage_ids], ["nowhere"], "stage")
        target = stage or lead.stage
        expected: type[LeadflowError] | None = None
        if role(actor) is None:
            expected = PermissionDenied
        elif lead.status == "open":
            expected = RuleViolation
        elif not manages(actor, lead.team):
            expected = PermissionDenied
        elif spec.stage(target) is None:
            expected = NotFoundError
        elif spec.stage_ids.index(target) > spec.stage_ids.index(lead.stage):  # never past where it was closed
            expected = RuleViolation
        view = self.call(expected, actor, "reopen", lead_id, stage=stage)
        if view is not None:
            assert (view["status"], view["stage"], view["closed_at"]) == ("open", target, None)
            after = self.shadow(lead_id)
            here = {tid: t.state for (sid, tid), t in after.tasks.items() if sid == target}
            if target == lead.stage:  # resumed where it was closed: the work done there stays done
                assert here == {tid: t.state for (sid, tid), t in shadow.tasks.items() if sid == target}
            else:  # a fresh start in another stage
                assert TaskStatus.DONE not in here.values()
            lead.status, lead.stage = "open", target
            del self.closed[lead_id]

    @rule(lead_id=leads, data=st.data())
    def assign(self, lead_id: int, data: st.DataObject) -> None:
        lead = self.model[lead_id]
        everyone = [*USERS, STRANGER]
        actor = mostly(data, [n for n in everyone if manages(n, lead.team)],
                       [n for n in everyone if not manages(n, lead.team)], "actor")
        owners = [n for n in USERS if role(n) in ("salesperson", "manager")]
        allowed = [n for n in owners if manages(actor, team_of(n))]
        to = mostly(data, allowed, [*(n for n in everyone if n not in allowed), "nobody"], "to")
        expected: type[LeadflowError] | None = None
        if role(actor) is None:
            expected = PermissionDenied
        elif lead.status != "open":
            expected = RuleViolation
        elif to not in USERS:
            expected = NotFoundError
        elif role(to) not in ("salesperson", "manager") or not manages(actor, lead.team) \
                or not manages(actor, team_of(to)):
            expected = PermissionDenied
        if self.call(expected, actor, "assign", lead_id, to):
            lead.owner, lead.team = to, team_of(to)

    # -- invariants -------------------------------------------------------------------------------------
    @invariant()
    def the_model_matches_the_stored_leads(self) -> None:
        for lead_id, lead in self.model.items():
            stored = self.shadow(lead_id)
            assert (stored.process, stored.status, stored.stage, stored.owner, stored.team) == (
                lead.process, lead.status, lead.stage, lead.owner, lead.team), lead_id
            assert stored.fields == lead.fields
            assert (stored.value_minor, stored.product, stored.source) == (
                lead.attrs["value"], lead.attrs["product"], lead.attrs["source"])
            if stored.status == "open":
                # applicability follows the fields: an undone task of the current stage is open iff it applies
                spec = self.specs[lead.process]
                stage = spec.stage(stored.stage)
                assert stage is not None
                for task in stage.all_tasks:
                    state = stored.tasks[(stage.id, task.id)].state
                    if state != TaskStatus.DONE:
                        assert state == (TaskStatus.OPEN if rules.applies(task, stored.fields, spec)
                                         else TaskStatus.NOT_APPLICABLE)

    @invariant()
    def closed_leads_stay_where_they_closed(self) -> None:  # (a)
        for lead_id, (stage, count) in self.closed.items():
            stored = self.shadow(lead_id)
            assert stored.status in ("won", "lost")
            assert stored.stage == stage == stored.closed_from_stage
            assert self.events_of(lead_id) == count, f"lead {lead_id} changed after it closed"

    @invariant()
    def every_stage_left_was_finished(self) -> None:  # (b), replaying the log
        with self.root.transaction() as conn:
            for lead_id in self.model:
                state: LeadState | None = None
                for event in store.read_events(conn, lead_id):
                    if event.kind in ("advanced", "won"):
                        assert state is not None and state.status == "open"
                        spec = self.specs[state.process]
                        stage = spec.stage(state.stage)
                        assert stage is not None
                        assert not blockers(stage, state, state.fields), (lead_id, event)
                        if event.kind == "advanced":
                            assert event.data["from"] == state.stage
                            assert any(n.stage == event.data["to"] for n in stage.next)
                        else:
                            assert state.stage == spec.won_stage
                    state = apply(state, event, lambda p, _v: self.specs[p])

    @invariant()
    def the_log_rebuilds_the_state(self) -> None:  # (c)
        for lead_id in self.model:
            assert self.root.rebuild_lead(lead_id).comparable() == self.root.stored_lead(lead_id).comparable()

    @invariant()
    def the_board_counts_follow_the_leads(self) -> None:
        """stage_counts, kept by every write in the same transaction, equals a recount from the leads."""
        with self.root.transaction() as conn:
            kept = {(r.process, r.stage, r.team, r.owner): (r.leads, r.value_minor)
                    for r in conn.execute(sa.select(store.stage_counts)) if r.leads or r.value_minor}
            leads = store.leads
            team, owner = sa.func.coalesce(leads.c.team, ""), sa.func.coalesce(leads.c.owner, "")
            counted = {(r[0], r[1], r[2], r[3]): (r[4], r[5]) for r in conn.execute(
                sa.select(leads.c.process, leads.c.stage, team, owner, sa.func.count(),
                          sa.func.coalesce(sa.func.sum(leads.c.value_minor), 0))
                .where(leads.c.status == "open").group_by(leads.c.process, leads.c.stage, team, owner))}
        assert kept == counted

    @invariant()
    def nothing_is_ever_deleted(self) -> None:  # (d)
        with self.root.transaction() as conn:
            counts = {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                      for t in (store.clients, store.leads, store.events, store.closures, store.ownerships)}
            rows = [tuple(r) for r in conn.execute(sa.select(store.events).order_by(store.events.c.id))]
        for name, count in counts.items():
            assert count >= self.counts[name], f"{name} went from {self.counts[name]} to {count}"
        assert counts["leads"] == len(self.model)
        assert rows[:len(self.seen_events)] == self.seen_events, "an earlier event row changed or vanished"
        ats = [r[store.events.c.keys().index("at")] for r in rows]
        assert ats == sorted(ats), "events must carry increasing times"
        self.counts, self.seen_events = counts, rows


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stateful") / "template.db"
    build_template(path)
    return path


@pytest.mark.slow  # 50 random sequences of 30 steps
def test_random_operation_sequences_keep_every_rule(template: Path) -> None:
    LeadflowMachine.template = template
    run_state_machine_as_test(LeadflowMachine, settings=settings(
        max_examples=50,
        stateful_step_count=30,
        deadline=None,
        database=None,  # nothing written into the checkout
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    ))


# -- values that once crashed the engine (found while writing the machine above) ---------------------

def test_an_absurdly_large_number_is_refused_cleanly(team: Team) -> None:
    anna = team.as_("anna")
    lead = anna.add_lead(process="photovoltaics", name="Big Numbers")
    before = snapshot(team.url)
    with pytest.raises(InvalidInputError):
        anna.set_fields(lead["id"], {"annual_consumption_kwh": "1e5000"})
    assert snapshot(team.url) == before


@pytest.mark.parametrize("where", ["field", "name", "note"])
def test_text_that_is_not_unicode_is_refused_cleanly(team: Team, where: str) -> None:
    anna = team.as_("anna")
    lead = anna.add_lead(process="photovoltaics", name="Surrogates")
    before = snapshot(team.url)
    with pytest.raises(InvalidInputError):
        if where == "field":
            anna.set_fields(lead["id"], {"need": "cheaper bills \udcff"})
        elif where == "name":
            anna.add_lead(process="photovoltaics", name="Bad \udcff Name")
        else:
            anna.complete_task(lead["id"], "record_contact", note="note \udcff")
    assert snapshot(team.url) == before
