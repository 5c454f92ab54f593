"""The immutable process specification.

A ``ProcessSpec`` is what the loader produces from a process file once the file
has passed the JSON Schema and the semantic checks. It is fully resolved (every
default filled in, every reference checked) and frozen, so the engine can trust
it without checking again. Specs round-trip through plain JSON-able dicts
(``to_dict`` / ``ProcessSpec.from_dict``); that dict is what the database stores
for each process version, and its hash is the version's identity.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from engine.formats import FORMAT
from engine.i18n import Text
from engine.vocab import ClosureKind

FIELD_TYPES = ("text", "number", "money", "date", "choice", "choices", "bool")

#: Operators a condition may use, per field type.
OPERATORS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "text": ("eq", "ne", "in", "not_in", "is_set", "is_unset"),
    "choice": ("eq", "ne", "in", "not_in", "is_set", "is_unset"),
    "choices": ("contains", "not_contains", "is_set", "is_unset"),
    "bool": ("eq", "ne", "is_set", "is_unset"),
    "number": ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "is_set", "is_unset"),
    "money": ("eq", "ne", "gt", "gte", "lt", "lte", "is_set", "is_unset"),
    "date": ("eq", "ne", "gt", "gte", "lt", "lte", "is_set", "is_unset"),
}
ALL_OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "not_contains", "is_set",
                 "is_unset")
UNARY_OPERATORS = ("is_set", "is_unset")
#: The lead's own attributes a condition may test (format 2: ``{attribute: value, op: gt, value: 100000}``), each
#: with the field type it compares as: the value in the process's currency, the source and product as text, and
#: the team the lead is in (its owner's).
LEAD_ATTRIBUTES: dict[str, str] = {"value": "money", "source": "text", "product": "text", "team": "text"}
LIST_OPERATORS = ("in", "not_in")

CLOSURE_KINDS = tuple(ClosureKind)
BANT_LETTERS = ("B", "A", "N", "T")


@dataclass(frozen=True)
class Condition:
    """A declarative test on a lead's fields and attributes.

    Either a leaf (``field``/``op``/``value``, or ``attribute``/``op``/``value`` for one of ``LEAD_ATTRIBUTES``)
    or a combination: ``all`` / ``any`` of sub-conditions, or ``not`` of one.
    """

    field: str | None = None
    op: str | None = None
    value: Any = None
    all: tuple[Condition, ...] = ()
    any: tuple[Condition, ...] = ()
    not_: Condition | None = None
    attribute: str | None = None

    def fields(self) -> set[str]:
        """Every field this condition reads."""
        names = {self.field} if self.field else set()
        for sub in (*self.all, *self.any, *((self.not_,) if self.not_ else ())):
            names |= sub.fields()
        return names

    def attributes(self) -> set[str]:
        """Every lead attribute this condition reads."""
        names = {self.attribute} if self.attribute else set()
        for sub in (*self.all, *self.any, *((self.not_,) if self.not_ else ())):
            names |= sub.attributes()
        return names

    def to_dict(self) -> dict[str, Any]:
        if self.all:
            return {"all": [c.to_dict() for c in self.all]}
        if self.any:
            return {"any": [c.to_dict() for c in self.any]}
        if self.not_ is not None:
            return {"not": self.not_.to_dict()}
        out: dict[str, Any] = ({"attribute": self.attribute} if self.attribute else {"field": self.field})
        out["op"] = self.op
        if self.op not in UNARY_OPERATORS:
            out["value"] = list(self.value) if isinstance(self.value, tuple) else self.value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Condition:
        if "all" in data:
            return cls(all=tuple(cls.from_dict(c) for c in data["all"]))
        if "any" in data:
            return cls(any=tuple(cls.from_dict(c) for c in data["any"]))
        if "not" in data:
            return cls(not_=cls.from_dict(data["not"]))
        value = data.get("value")
        if isinstance(value, list):
            value = tuple(value)
        return cls(field=data.get("field"), attribute=data.get("attribute"), op=data["op"], value=value)


@dataclass(frozen=True)
class RoleSpec:
    id: str
    name: str


@dataclass(frozen=True)
class FieldSpec:
    id: str
    label: str
    type: str
    options: tuple[str, ...] = ()
    bant: str | None = None
    min: float | None = None
    max: float | None = None
    description: str | None = None
    #: Department roles whose users may write the field besides the lead's owner and managers (format 2).
    written_by: tuple[str, ...] = ()
    #: Personal data of the client, erased with the client's name (``client erase``, GDPR art. 17; format 2).
    personal: bool = False
    #: (option, its label) for the options that have one (format 2); an option without one shows its id.
    option_labels: tuple[tuple[str, str], ...] = ()

    def option_label(self, option: str) -> str:
        """An option's label (plain, or a ``Text`` in several languages), or the option's id when it has none."""
        return next((text for key, text in self.option_labels if key == option), option)


@dataclass(frozen=True)
class TaskSpec:
    id: str
    name: str
    owner: str
    mandatory: bool = True
    deadline_days: int | None = None
    when: Condition | None = None
    description: str | None = None
    #: Tasks of the same stage to be done (or not applying) before this one may be (format 2).
    after: tuple[str, ...] = ()
    #: Own deadline in business hours of the process's ``business_hours`` (format 2); never with deadline_days.
    deadline_hours: int | None = None


@dataclass(frozen=True)
class TransitionSpec:
    """An allowed move to ``stage``; ``when`` (if any) must hold on the lead's fields."""

    stage: str
    when: Condition | None = None


@dataclass(frozen=True)
class ActionSpec:
    """Something that happens when a lead enters a stage.

    ``kind`` is ``create_task`` (``task`` is set), ``send_email`` (``template``, ``to``, and
    ``after_days`` when it is delayed) or ``remind`` (``template``, ``to``, ``after_days``, and ``chases``: the
    task of the stage whose completion cancels it, format 2).
    """

    kind: str
    task: TaskSpec | None = None
    template: str | None = None
    to: str | None = None
    after_days: int | None = None
    chases: str | None = None


@dataclass(frozen=True)
class StageSpec:
    id: str
    name: str
    deadline_days: int
    warning_days: int
    tasks: tuple[TaskSpec, ...]
    required_fields: tuple[str, ...]
    next: tuple[TransitionSpec, ...]
    on_enter: tuple[ActionSpec, ...] = ()
    probability: float | None = None
    description: str | None = None

    @functools.cached_property
    def all_tasks(self) -> tuple[TaskSpec, ...]:
        """Declared tasks plus the tasks that ``create_task`` actions add on entry (computed once: every applied
        event reads them)."""
        created = tuple(a.task for a in self.on_enter if a.kind == "create_task" and a.task)
        return self.tasks + created

    @functools.cached_property
    def mandatory_ids(self) -> frozenset[str]:
        """The ids of the stage's mandatory tasks (the lead's light follows their deadlines)."""
        return frozenset(t.id for t in self.all_tasks if t.mandatory)

    def task(self, task_id: str) -> TaskSpec | None:
        return next((t for t in self.all_tasks if t.id == task_id), None)


@dataclass(frozen=True)
class ClosureReason:
    id: str
    label: str
    kind: str  # "refusal" (the client said no) or "removal" (we took the lead out)
    bant: str | None = None
    revisit_after_days: int | None = None
    review: bool = False
    #: The stages a lead may be closed from for this reason; empty: every stage (format 2).
    stages: tuple[str, ...] = ()
    #: Fields that must be filled when a lead is closed for this reason (format 2).
    requires: tuple[str, ...] = ()
    #: Logged contact attempts a lead needs before it may be closed for this reason (format 2).
    min_attempts: int | None = None

    def allowed_in(self, stage: str) -> bool:
        return not self.stages or stage in self.stages


@dataclass(frozen=True)
class AssignmentRule:
    """Leads matching ``when`` and ``products`` (each optional) go to a salesperson of ``team`` in turn."""

    team: str
    when: Condition | None = None
    products: tuple[str, ...] = ()
    max_open: int | None = None


@dataclass(frozen=True)
class AssignmentSpec:
    """The admin's placement of new leads without an owner; the first matching rule decides."""

    rules: tuple[AssignmentRule, ...]
    max_open: int | None = None


#: The language of a process's e-mails when the file names none.
DEFAULT_LANGUAGE = "en"
#: The working hours of a business day (start, end) when the file names none: 9 to 17.
DEFAULT_BUSINESS_HOURS = (9, 17)


@dataclass(frozen=True)
class ProcessSpec:
    id: str
    title: str
    currency: str
    calendar: str
    owner_role: str
    sales_cycle_days: int
    cool_off_days: int
    roles: tuple[RoleSpec, ...]
    fields: tuple[FieldSpec, ...]
    stages: tuple[StageSpec, ...]
    won_stage: str
    closure_reasons: tuple[ClosureReason, ...]
    description: str | None = None
    stalled_after_days: int | None = None
    language: str = DEFAULT_LANGUAGE
    assignment: AssignmentSpec | None = None
    #: the team whose manager gets the leads nobody else places (``default_team:``; engine/assignment.py)
    default_team: str | None = None
    format: int = FORMAT
    business_hours: tuple[int, int] = DEFAULT_BUSINESS_HOURS
    _index: dict[str, Any] = field(default_factory=dict, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        # Lookups by id are hot in the engine; the frozen spec indexes itself once.
        self._index.update(
            stages={s.id: s for s in self.stages},
            fields={f.id: f for f in self.fields},
            reasons={r.id: r for r in self.closure_reasons},
            roles={r.id: r for r in self.roles},
            order={s.id: i for i, s in enumerate(self.stages)},
            # (stage, task) -> (position in the process, the task): a lead's tasks as shown, in order
            tasks={(s.id, t.id): ((i, j), t) for i, s in enumerate(self.stages) for j, t in enumerate(s.all_tasks)},
        )

    # -- lookups ---------------------------------------------------------
    def stage(self, stage_id: str) -> StageSpec | None:
        return self._index["stages"].get(stage_id)  # type: ignore[no-any-return]

    def field_spec(self, field_id: str) -> FieldSpec | None:
        return self._index["fields"].get(field_id)  # type: ignore[no-any-return]

    def reason(self, reason_id: str) -> ClosureReason | None:
        return self._index["reasons"].get(reason_id)  # type: ignore[no-any-return]

    def role(self, role_id: str) -> RoleSpec | None:
        return self._index["roles"].get(role_id)  # type: ignore[no-any-return]

    def task_place(self, stage_id: str, task_id: str) -> tuple[tuple[int, int], TaskSpec] | None:
        """Where a stage's task stands in the process (stage order, then task order), and its spec."""
        return self._index["tasks"].get((stage_id, task_id))  # type: ignore[no-any-return]

    def stage_index(self, stage_id: str) -> int:
        return self._index["order"][stage_id]  # type: ignore[no-any-return]

    @property
    def first_stage(self) -> StageSpec:
        return self.stages[0]

    @property
    def stage_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.stages)

    # -- serialisation ---------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The resolved spec as plain JSON-able data (every default spelled out)."""

        def task(t: TaskSpec) -> dict[str, Any]:
            return _drop_none(
                {
                    "id": t.id,
                    "name": _stored(t.name),
                    "owner": t.owner,
                    "mandatory": t.mandatory,
                    "deadline_days": t.deadline_days,
                    "when": t.when.to_dict() if t.when else None,
                    "description": _stored(t.description),
                    "after": list(t.after),
                    "deadline_hours": t.deadline_hours,
                }
            )

        def action(a: ActionSpec) -> dict[str, Any]:
            if a.kind == "create_task":
                assert a.task is not None
                return {"create_task": task(a.task)}
            return {a.kind: _drop_none({"template": a.template, "to": a.to, "after_days": a.after_days,
                                        "chases": a.chases})}

        def rule(r: AssignmentRule) -> dict[str, Any]:
            return _drop_none({"team": r.team, "when": r.when.to_dict() if r.when else None,
                               "products": list(r.products), "max_open": r.max_open})

        assignment = None if self.assignment is None else _drop_none(
            {"max_open": self.assignment.max_open, "rules": [rule(r) for r in self.assignment.rules]})

        return _drop_none(
            {
                "format": self.format,
                "id": self.id,
                "title": _stored(self.title),
                "description": _stored(self.description),
                "currency": self.currency,
                "calendar": self.calendar,
                "owner_role": self.owner_role,
                "sales_cycle_days": self.sales_cycle_days,
                "cool_off_days": self.cool_off_days,
                "stalled_after_days": self.stalled_after_days,
                # the default language is left out, so that spelling it out does not change the hash
                "language": None if self.language == DEFAULT_LANGUAGE else self.language,
                "business_hours": None if self.business_hours == DEFAULT_BUSINESS_HOURS else dict(
                    zip(("start", "end"), self.business_hours, strict=True)),
                "assignment": assignment,
                "default_team": self.default_team,
                "roles": [{"id": r.id, "name": _stored(r.name)} for r in self.roles],
                "fields": [
                    _drop_none(
                        {
                            "id": f.id,
                            "label": _stored(f.label),
                            "type": f.type,
                            "options": list(f.options) or None,
                            "bant": f.bant,
                            "min": f.min,
                            "max": f.max,
                            "description": _stored(f.description),
                            "option_labels": {k: _stored(v) for k, v in f.option_labels} or None,
                            "written_by": list(f.written_by),
                            "personal": True if f.personal else None,
                        }
                    )
                    for f in self.fields
                ],
                "stages": [
                    _drop_none(
                        {
                            "id": s.id,
                            "name": _stored(s.name),
                            "description": _stored(s.description),
                            "deadline_days": s.deadline_days,
                            "warning_days": s.warning_days,
                            "probability": s.probability,
                            "required_fields": list(s.required_fields),
                            "tasks": [task(t) for t in s.tasks],
                            "next": [
                                _drop_none({"stage": n.stage, "when": n.when.to_dict() if n.when else None})
                                for n in s.next
                            ],
                            "on_enter": [action(a) for a in s.on_enter],
                        }
                    )
                    for s in self.stages
                ],
                "won_stage": self.won_stage,
                "closure_reasons": [
                    _drop_none(
                        {
                            "id": r.id,
                            "label": _stored(r.label),
                            "kind": r.kind,
                            "bant": r.bant,
                            "revisit_after_days": r.revisit_after_days,
                            "review": r.review,
                            "stages": list(r.stages),
                            "requires": list(r.requires),
                            "min_attempts": r.min_attempts,
                        }
                    )
                    for r in self.closure_reasons
                ],
            }
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProcessSpec:
        """Rebuild a spec from ``to_dict`` output of the current format (trusted data: no validation).

        A stored spec of an older format is brought to this one by ``engine.formats.upgrade_stored`` first;
        given one here, this refuses it rather than read it with the current format's defaults.
        """
        if data.get("format") != FORMAT:
            raise ValueError(f"a spec of format {data.get('format')!r} is not of the current format {FORMAT}; "
                             "read it through engine.formats.upgrade_stored")

        language = data.get("language", DEFAULT_LANGUAGE)

        def text(value: Any) -> Any:
            return Text(value, language) if isinstance(value, dict) else value

        def cond(d: dict[str, Any] | None) -> Condition | None:
            return Condition.from_dict(d) if d else None

        def task(d: dict[str, Any]) -> TaskSpec:
            return TaskSpec(
                id=d["id"],
                name=text(d["name"]),
                owner=d["owner"],
                mandatory=d.get("mandatory", True),
                deadline_days=d.get("deadline_days"),
                when=cond(d.get("when")),
                description=text(d.get("description")),
                after=tuple(d.get("after", ())),
                deadline_hours=d.get("deadline_hours"),
            )

        def action(d: dict[str, Any]) -> ActionSpec:
            ((kind, body),) = d.items()
            if kind == "create_task":
                return ActionSpec(kind=kind, task=task(body))
            return ActionSpec(kind=kind, template=body.get("template"), to=body.get("to"),
                              after_days=body.get("after_days"), chases=body.get("chases"))

        assignment = data.get("assignment")
        return cls(
            format=data["format"],
            id=data["id"],
            title=text(data["title"]),
            description=text(data.get("description")),
            currency=data["currency"],
            calendar=data["calendar"],
            owner_role=data["owner_role"],
            sales_cycle_days=data["sales_cycle_days"],
            cool_off_days=data["cool_off_days"],
            stalled_after_days=data.get("stalled_after_days"),
            language=language,
            default_team=data.get("default_team"),
            business_hours=(data["business_hours"]["start"], data["business_hours"]["end"])
            if "business_hours" in data else DEFAULT_BUSINESS_HOURS,
            assignment=None if assignment is None else AssignmentSpec(
                max_open=assignment.get("max_open"),
                rules=tuple(AssignmentRule(team=r["team"], when=cond(r.get("when")),
                                           products=tuple(r.get("products", ())), max_open=r.get("max_open"))
                            for r in assignment["rules"])),
            roles=tuple(RoleSpec(r["id"], text(r["name"])) for r in data["roles"]),
            fields=tuple(
                FieldSpec(
                    id=f["id"],
                    label=text(f["label"]),
                    type=f["type"],
                    options=tuple(f.get("options", ())),
                    bant=f.get("bant"),
                    min=f.get("min"),
                    max=f.get("max"),
                    description=text(f.get("description")),
                    option_labels=tuple(sorted((k, text(v)) for k, v in f.get("option_labels", {}).items())),
                    written_by=tuple(f.get("written_by", ())),
                    personal=bool(f.get("personal", False)),
                )
                for f in data.get("fields", ())
            ),
            stages=tuple(
                StageSpec(
                    id=s["id"],
                    name=text(s["name"]),
                    description=text(s.get("description")),
                    deadline_days=s["deadline_days"],
                    warning_days=s.get("warning_days", 0),
                    probability=s.get("probability"),
                    required_fields=tuple(s.get("required_fields", ())),
                    tasks=tuple(task(t) for t in s.get("tasks", ())),
                    next=tuple(TransitionSpec(n["stage"], cond(n.get("when"))) for n in s.get("next", ())),
                    on_enter=tuple(action(a) for a in s.get("on_enter", ())),
                )
                for s in data["stages"]
            ),
            won_stage=data["won_stage"],
            closure_reasons=tuple(
                ClosureReason(
                    id=r["id"],
                    label=text(r["label"]),
                    kind=r["kind"],
                    bant=r.get("bant"),
                    revisit_after_days=r.get("revisit_after_days"),
                    review=r.get("review", False),
                    stages=tuple(r.get("stages", ())),
                    requires=tuple(r.get("requires", ())),
                    min_attempts=r.get("min_attempts"),
                )
                for r in data["closure_reasons"]
            ),
        )

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @property
    def content_hash(self) -> str:
        """A stable hash of the resolved spec: equal specs hash equal, whatever the file's layout."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()


D = TypeVar("D")


def derived(compute: Callable[[ProcessSpec], D]) -> Callable[[ProcessSpec], D]:
    """``compute(spec)``, computed once per spec and kept in its index beside the lookups by id: for what a module
    derives from a process on every request (the names its conditions read, the keys a web form may use)."""
    key = f"{compute.__module__}.{compute.__qualname__}"

    @functools.wraps(compute)
    def once(spec: ProcessSpec) -> D:
        try:
            return spec._index[key]  # type: ignore[no-any-return]
        except KeyError:
            value = spec._index[key] = compute(spec)
            return value

    return once


def _stored(value: str | None) -> str | dict[str, str] | None:
    """A label as the stored spec holds it: a plain text, or its mapping of language to text."""
    return value.as_dict() if isinstance(value, Text) else value


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v != []}
