"""The checks a JSON Schema cannot express, and the resolution of defaults into a spec.

The checks of conditions and of the values they compare with are in ``engine.condition_checks``.

Runs on data that already passed the schema, so shapes and types are known.
Every problem is located through the parsed ``Document``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from engine.condition_checks import ConditionChecks
from engine.document import Document, Path_, format_path
from engine.errors import Problem, did_you_mean, either
from engine.formats import LABEL_SLOTS, matches
from engine.i18n import LANGUAGES, N_, Message
from engine.process_graph import cycle_through, next_ids, reachable
from engine.spec import DEFAULT_LANGUAGE, ProcessSpec
from engine.vocab import ClosureKind, LeadStatus, Role

#: Plain strings, as the document they go into holds them.
DEFAULT_OWNER_ROLE = Role.SALESPERSON.value
#: The roles leadflow gives its own users besides the process roles (engine.vocab): a process role
#: of one of these names would merge with it. (salesperson and manager are meant to be process roles
#: too: the owner role and the sales director who may do any task.)
SYSTEM_ROLES = {Role.ADMIN: N_("its administrators"), Role.INTAKE: N_("the sources of the HTTP intake")}
#: The states a closed lead is in (engine.machine.WON, LOST); a stage of the same name would merge with one.
RESERVED_STAGE_IDS = (LeadStatus.WON.value, LeadStatus.LOST.value)
#: An id given twice in one list of the file, by what it names.
USED_TWICE = {
    "role": N_("role id '{id}' is used twice (first on line {line})"),
    "field": N_("field id '{id}' is used twice (first on line {line})"),
    "stage": N_("stage id '{id}' is used twice (first on line {line})"),
    "closure reason": N_("closure reason id '{id}' is used twice (first on line {line})"),
}


@cache
def supported_calendars() -> frozenset[str]:
    import holidays

    return frozenset(holidays.list_supported_countries())


def semantic_problems(doc: Document, template_dirs: list[Path] | None = None,
                      refused: Iterable[Path_] = ()) -> list[Problem]:
    """Every broken rule of section 6 of docs/process-format.md; templates are looked up in ``template_dirs``
    (default: the folders ``engine.messages.template_dirs`` names for the document's file).

    ``refused`` names values already reported as unreadable (by the YAML reader or the schema): every
    check that would read one of them is skipped, the others run, so one run reports what can be known.
    """
    refused = set(refused)
    view = _with_refused(doc.data, refused)
    return [p for p in _Checker(doc, view, template_dirs).run() if not _about_refused(p, refused)]


class Unreadable(Exception):
    """A check needed a value that was already refused; it says nothing rather than guess."""


class _Refused:
    """Stands in for a refused value: any use of it stops the check that reads it."""

    def _stop(self, *_: Any, **__: Any) -> Any:
        raise Unreadable

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = _stop
    __iter__ = __len__ = __contains__ = __getitem__ = __bool__ = _stop
    __str__ = __repr__ = __format__ = __int__ = __float__ = __index__ = _stop

    def __getattr__(self, name: str) -> Any:
        raise Unreadable


def _with_refused(data: Any, refused: set[Path_]) -> Any:
    """A copy of ``data`` with a ``_Refused`` at every refused path (missing required keys included)."""
    view = copy.deepcopy(data)
    for path in sorted(refused, key=len):
        if not path:
            return _Refused()
        parent: Any = view
        for part in path[:-1]:
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError, Unreadable):
                break
        else:
            last = path[-1]
            in_list = isinstance(parent, list) and isinstance(last, int) and last < len(parent)
            if isinstance(parent, dict) or in_list:
                parent[last] = _Refused()
    return view


def _about_refused(problem: Problem, refused: set[Path_]) -> bool:
    shown = {format_path(path) for path in refused}
    return any(problem.path == p or problem.path.startswith((p + ".", p + "[")) for p in shown)


def _readable(make: Callable[[], Any]) -> Any:
    try:
        return make()
    except Unreadable:
        return _Refused()


class _Checker(ConditionChecks):
    def __init__(self, doc: Document, data: dict[str, Any], template_dirs: list[Path] | None = None):
        from engine import messages

        self.doc = doc
        self.template_dirs = template_dirs if template_dirs is not None else messages.template_dirs(doc.file)
        self.data = data
        self.language = _readable(lambda: data.get("language", DEFAULT_LANGUAGE))
        self.roles: list[str] = _readable(lambda: [r["id"] for r in data["roles"]])
        self.fields: dict[str, Any] = _readable(lambda: {f["id"]: f for f in data.get("fields", [])})
        self.stages: list[str] = _readable(lambda: [s["id"] for s in data["stages"]])

    def run(self) -> Iterator[Problem]:
        """Each check in turn; one that meets a refused value stops, and the next one runs."""
        d = self.data
        checks: list[Callable[[], Iterator[Problem]]] = [
            lambda: self._unique(("roles",), d["roles"], "role"),
            lambda: self._unique(("fields",), d.get("fields", []), "field"),
            lambda: self._unique(("stages",), d["stages"], "stage"),
            lambda: self._unique(("closure_reasons",), d["closure_reasons"], "closure reason"),
            self._check_roles,
            self._check_calendar,
            self._check_owner_role,
            lambda: self._each(("fields",), d.get("fields", []), self._check_field),
            lambda: self._each(("stages",), d["stages"], self._check_stage),
            lambda: self._check_assignment(("assignment",), d["assignment"]) if "assignment" in d else iter(()),
            self._check_won_stage,
            lambda: self._each(("closure_reasons",), d["closure_reasons"], self._check_reason),
            *(lambda path=path: self._check_label(path) for slot in LABEL_SLOTS for path in matches(d, slot)),
        ]
        for check in checks:
            yield from _guarded(check)

    def _each(self, path: Path_, items: list[Any],
              check: Callable[[Path_, Any], Iterator[Problem]]) -> Iterator[Problem]:
        for i, item in enumerate(items):
            yield from _guarded(lambda: check((*path, i), item))  # noqa: B023 - consumed at once

    # -- pieces ------------------------------------------------------------------------------
    def _check_roles(self) -> Iterator[Problem]:
        for i, role in enumerate(self.data["roles"]):
            if role["id"] in SYSTEM_ROLES:
                yield self.at(("roles", i, "id"), Message(
                    N_("'{role}' is leadflow's own role ({whose}), so a process role of that name would give its "
                       "users the system's rights; name the role for the work, e.g. 'back_office'"),
                    role=role["id"], whose=Message(SYSTEM_ROLES[role["id"]])))

    def _check_calendar(self) -> Iterator[Problem]:
        d = self.data
        hours = d.get("business_hours")
        if hours is not None and hours["start"] >= hours["end"]:
            yield self.at(("business_hours", "end"), Message(
                N_("the working day ends at {end}, not after it starts ({start}); write e.g. {example}"),
                end=hours["end"], start=hours["start"], example="{start: 9, end: 17}"))
        if d["calendar"] not in supported_calendars():
            yield self.at(("calendar",), Message(
                N_("calendar '{calendar}' is not a country the holidays package knows{hint}"), calendar=d["calendar"],
                hint=did_you_mean(d["calendar"], supported_calendars())))

    def _check_owner_role(self) -> Iterator[Problem]:
        d = self.data
        owner_role = d.get("owner_role", DEFAULT_OWNER_ROLE)
        if "owner_role" in d and owner_role not in self.roles:
            yield self.at(("owner_role",), Message(
                N_("the lead owner's role '{role}' is not a declared role{hint} declared roles: {roles}"),
                role=owner_role, hint=did_you_mean(owner_role, self.roles) or ";", roles=", ".join(self.roles)))
        elif owner_role not in self.roles:
            yield self.at(("roles",), Message(
                N_("the lead owner's role defaults to '{role}', which is not a declared role; declare it or set "
                   "owner_role to one of: {roles}"), role=owner_role, roles=", ".join(self.roles)))

    def _check_won_stage(self) -> Iterator[Problem]:
        d = self.data
        if d["won_stage"] not in self.stages:
            yield self.at(("won_stage",), self._unknown("stage", d["won_stage"], self.stages))
        else:
            won_index = self.stages.index(d["won_stage"])
            if "next" in d["stages"][won_index]:
                yield self.at(("stages", won_index, "next"), Message(
                    N_("stage '{stage}' is the won stage: completing it wins the sale, so it cannot list next "
                       "stages"), stage=d["won_stage"]))
            yield from self._check_graph()


    # -- pieces ------------------------------------------------------------------------------
    def _unique(self, path: Path_, items: list[dict[str, Any]], what: str) -> Iterator[Problem]:
        first: dict[str, int] = {}
        for i, item in enumerate(items):
            ident = item["id"]
            if ident in first:
                line = self.doc.problem((*path, first[ident], "id"), "").line
                yield self.at((*path, i, "id"), Message(USED_TWICE[what], id=ident, line=line))
            else:
                first[ident] = i

    def _check_label(self, path: Path_) -> Iterator[Problem]:
        """A label in several languages names languages leadflow speaks, and the process's own among them."""
        text: Any = self.data
        for part in path:
            text = text[part]
        if not isinstance(text, dict):
            return
        for code in text:
            if code not in LANGUAGES:
                yield self.doc.problem((*path, code), Message(
                    N_("'{code}' is not a language leadflow speaks{hint} a label's languages are: {languages}"),
                    code=code, hint=did_you_mean(code, LANGUAGES) or ";", languages=", ".join(LANGUAGES)), at_key=True)
        if self.language not in text:
            yield self.at(path, Message(
                N_("this label in several languages ({given}) has no text in the process's language '{language}' "
                   "(the process's 'language', default en); add {language}: ..."),
                given=", ".join(text), language=self.language))

    def _check_field(self, path: Path_, f: dict[str, Any]) -> Iterator[Problem]:
        if "option_labels" in f:
            options = list(f.get("options", ()))
            if f["type"] not in ("choice", "choices"):
                yield self.doc.problem((*path, "option_labels"), Message(
                    N_("'option_labels' label the options of a choice or choices field, and this field is of type "
                       "{type}"), type=f["type"]), at_key=True)
            for option in f["option_labels"]:
                if options and option not in options:
                    yield self.doc.problem((*path, "option_labels", option), Message(
                        N_("'{option}' is not an option of field '{field}'{hint} its options: {options}"),
                        option=option, field=f["id"], hint=did_you_mean(option, options) or ";",
                        options=", ".join(options)), at_key=True)
                else:
                    yield from self._check_label((*path, "option_labels", option))
        for j, role in enumerate(f.get("written_by", [])):
            if role not in self.roles:
                yield self.at((*path, "written_by", j), self._unknown("role", role, self.roles))
        kind = f["type"]
        for bound in ("min", "max"):
            if bound in f and kind not in ("number", "money"):
                yield self.at((*path, bound), Message(
                    N_("'{bound}' applies only to number and money fields, not {type}"), bound=bound, type=kind))
        if kind == "money" and f.get("min", 0) < 0:
            yield self.at((*path, "min"), Message(N_("money must not be negative, got min {min}"), min=f["min"]))
        if "min" in f and "max" in f and f["min"] > f["max"]:
            yield self.at((*path, "max"), Message(N_("max {max} is below min {min}"), max=f["max"], min=f["min"]))

    def _check_stage(self, path: Path_, stage: dict[str, Any]) -> Iterator[Problem]:
        if stage["id"] in RESERVED_STAGE_IDS:
            yield self.at((*path, "id"), Message(N_("'{stage}' is reserved for the state of a closed lead; name the "
                                                    "stage for its action, e.g. 'sign_contract'"), stage=stage["id"]))
        deadline = stage["deadline_days"]
        warning = stage.get("warning_days", 0)
        if warning >= deadline:
            yield self.at((*path, "warning_days"), Message(
                N_("the warning window ({warning} business days) must be shorter than the stage's deadline "
                   "({deadline})"), warning=warning, deadline=deadline))
        for j, name in enumerate(stage.get("required_fields", [])):
            if name not in self.fields:
                yield self.at((*path, "required_fields", j), self._unknown("field", name, list(self.fields)))

        tasks = list(stage.get("tasks", []))
        task_paths: list[Path_] = [(*path, "tasks", j) for j in range(len(tasks))]
        for j, action in enumerate(stage.get("on_enter", [])):
            if "create_task" in action:
                tasks.append(action["create_task"])
                task_paths.append((*path, "on_enter", j, "create_task"))
            else:
                kind, body = next(iter(action.items()))
                to = body["to"]
                if to not in ("client", "owner") and to not in self.roles:
                    yield self.at((*path, "on_enter", j, kind, "to"), Message(
                        N_("'{to}' is neither client, owner nor a declared role; declared roles: {roles}"),
                        to=to, roles=", ".join(self.roles)))
                yield from self._check_template((*path, "on_enter", j, kind, "template"), body["template"],
                                                stage, "email" if kind == "send_email" else "reminder", to)
        yield from self._check_chases(path, stage, tasks)
        seen: dict[str, Path_] = {}
        for task, tpath in zip(tasks, task_paths, strict=True):
            if task["id"] in seen:
                line = self.doc.problem((*seen[task["id"]], "id"), "").line
                yield self.at((*tpath, "id"), Message(N_("task id '{task}' is used twice in stage '{stage}' (first on "
                                                         "line {line})"), task=task["id"], stage=stage["id"],
                                                      line=line))
            seen.setdefault(task["id"], tpath)
            if "deadline_hours" in task and "deadline_days" in task:
                yield self.at((*tpath, "deadline_hours"), Message(N_(
                    "task '{task}' has a deadline in days and one in hours; keep one of deadline_days and "
                    "deadline_hours"), task=task["id"]))
            if task["owner"] not in self.roles:
                yield self.at((*tpath, "owner"), Message(
                    N_("owner '{owner}' is not a declared role{hint} declared roles: {roles}"), owner=task["owner"],
                    hint=did_you_mean(task["owner"], self.roles) or ";", roles=", ".join(self.roles)))
            if "when" in task:
                yield from self._check_condition((*tpath, "when"), task["when"])
        yield from self._check_task_order(stage["id"], tasks, task_paths)
        if self.data.get("format") != 1:  # format 1 could not say who writes a field
            yield from self._check_writers(path, stage, tasks)

        for j, transition in enumerate(stage.get("next", [])):
            target = transition["stage"]
            if target not in self.stages:
                yield self.at((*path, "next", j, "stage"), self._unknown("stage", target, self.stages))
            elif target == stage["id"]:
                yield self.at((*path, "next", j, "stage"), Message(N_("stage '{stage}' cannot lead to itself"),
                                                                   stage=target))
            if "when" in transition:
                yield from self._check_condition((*path, "next", j, "when"), transition["when"])

    def _check_task_order(self, stage_id: str, tasks: list[dict[str, Any]], paths: list[Path_]
                          ) -> Iterator[Problem]:
        ids = [t["id"] for t in tasks]
        after = {t["id"]: t.get("after", []) for t in tasks}
        for task, tpath in zip(tasks, paths, strict=True):
            for k, earlier in enumerate(task.get("after", [])):
                if earlier == task["id"]:
                    yield self.at((*tpath, "after", k), Message(N_("task '{task}' cannot come after itself"),
                                                                task=earlier))
                elif earlier not in ids:
                    yield self.at((*tpath, "after", k), self._not_a_task(earlier, stage_id, ids))
            cycle = cycle_through(task["id"], after)
            if cycle and task["id"] == min(cycle):  # each cycle once, where its first task (by id) is written
                yield self.at((*tpath, "after"), Message(
                    N_("the tasks wait for each other in a circle: {circle}, so none of them can ever be done"),
                    circle=" -> ".join([*cycle, cycle[0]])))

    def _not_a_task(self, task: str, stage: str, ids: list[str]) -> Message:
        return Message(N_("task '{task}' is not a task of stage '{stage}'{hint} its tasks: {tasks}"), task=task,
                       stage=stage, hint=did_you_mean(task, ids) or ";", tasks=", ".join(ids) or Message(N_("none")))

    def _check_chases(self, path: Path_, stage: dict[str, Any], tasks: list[dict[str, Any]]) -> Iterator[Problem]:
        """A reminder chases a task of its stage, and no other reminder of the stage shares its template and
        recipient (the outbox tells the reminders of a stage apart by those two)."""
        ids = [t["id"] for t in tasks]
        first: dict[tuple[str, str], int] = {}
        for j, action in enumerate(stage.get("on_enter", [])):
            body = action.get("remind")
            if body is None:
                continue
            chased = body.get("chases")
            if chased is not None and chased not in ids:
                yield self.at((*path, "on_enter", j, "remind", "chases"), self._not_a_task(chased, stage["id"], ids))
            key = (body["template"], body["to"])
            if key in first and (chased is not None or stage["on_enter"][first[key]]["remind"].get("chases")):
                line = self.doc.problem((*path, "on_enter", first[key]), "").line
                yield self.at((*path, "on_enter", j, "remind"), Message(
                    N_("another reminder of stage '{stage}' (line {line}) sends template '{template}' to {to}, so "
                       "leadflow could not tell which task each one chases; give this one a template of its own"),
                    stage=stage["id"], line=line, template=key[0], to=key[1]))
            first.setdefault(key, j)

    def _check_writers(self, path: Path_, stage: dict[str, Any], tasks: list[dict[str, Any]]) -> Iterator[Problem]:
        """Every required field can be written by a role that works the stage (owns one of its tasks; the lead
        owner's role when it has none): a required field nobody there may write stops every lead in it."""
        owner_role = self.data.get("owner_role", DEFAULT_OWNER_ROLE)
        workers = sorted({t["owner"] for t in tasks} or {owner_role})
        for j, name in enumerate(stage.get("required_fields", [])):
            field_ = self.fields.get(name)
            if field_ is None:
                continue
            writers = [owner_role, *field_.get("written_by", [])]
            if not set(writers) & set(workers):
                yield self.at((*path, "required_fields", j), Message(
                    N_("required field '{field}' can be written by nobody who works stage '{stage}': its tasks belong "
                       "to {workers}, the field is written by {writers}; add written_by: [{role}] to field "
                       "'{field}'"), field=name, stage=stage["id"], workers=", ".join(workers),
                    writers=", ".join(writers), role=workers[0]))

    def _check_reason(self, path: Path_, reason: dict[str, Any]) -> Iterator[Problem]:
        for k, stage in enumerate(reason.get("stages", [])):
            if stage not in self.stages:
                yield self.at((*path, "stages", k), self._unknown("stage", stage, self.stages))
        for k, name in enumerate(reason.get("requires", [])):
            if name not in self.fields:
                yield self.at((*path, "requires", k), self._unknown("field", name, list(self.fields)))

    def _check_template(self, path: Path_, name: str, stage: dict[str, Any], kind: str, to: str
                        ) -> Iterator[Problem]:
        from engine import messages

        found = messages.find(name, self.language, self.template_dirs)
        if found is None:
            looked = either(messages.candidates(name, self.language))
            hint = did_you_mean(name, messages.available(self.template_dirs))
            yield self.at(path, Message(N_("template '{name}' not found (no {looked} in {folders}){hint}"), name=name,
                                        looked=looked, folders=", ".join(str(d) for d in self.template_dirs),
                                        hint=hint))
            return
        trouble = messages.problem(found)
        if trouble:
            yield self.at(path, Message(N_("{problem} ({file})"), problem=trouble, file=str(found)))
            return
        try:
            messages.render_file(found, messages.sample_context(self.data, stage, kind, to))
        except messages.TemplateError as exc:
            yield self.at(path, Message(N_("{problem}, with a sample lead of this process ({file})"),
                                        problem=str(exc), file=str(found)))

    def _check_assignment(self, path: Path_, section: dict[str, Any]) -> Iterator[Problem]:
        catch_all: int | None = None
        for i, rule in enumerate(section["rules"]):
            if "when" in rule:
                yield from self._check_condition((*path, "rules", i, "when"), rule["when"])
            if catch_all is not None:
                yield self.at((*path, "rules", i), Message(
                    N_("rule {rule} can never apply: rule {catch_all} (no 'when', no 'products') already places every "
                       "lead; put the catch-all last"), rule=i + 1, catch_all=catch_all + 1))
            elif "when" not in rule and "products" not in rule:
                catch_all = i

    def _check_graph(self) -> Iterator[Problem]:
        """Every stage reachable from the first, and the won stage reachable from every stage."""
        named = (n["stage"] for s in self.data["stages"] for n in s.get("next", ()))
        if any(target not in self.stages for target in named):
            return  # unknown targets are already reported; the graph would only add noise
        edges = {sid: next_ids(self.data["stages"], i, self.data["won_stage"])
                 for i, sid in enumerate(self.stages)}
        from_first = reachable(self.stages[0], edges)
        reverse: dict[str, list[str]] = {s: [] for s in self.stages}
        for source, targets in edges.items():
            for target in targets:
                reverse[target].append(source)
        can_win = reachable(self.data["won_stage"], reverse)
        for i, sid in enumerate(self.stages):
            if sid not in from_first:
                yield self.at(("stages", i, "id"), Message(
                    N_("stage '{stage}' is unreachable: no stage leads to it from '{first}'"), stage=sid,
                    first=self.stages[0]))
            elif sid not in can_win:
                if not edges[sid]:
                    yield self.at(("stages", i, "id"), Message(
                        N_("stage '{stage}' is a dead end: it has no next stage and is not the won stage '{won}'"),
                        stage=sid, won=self.data["won_stage"]))
                else:
                    yield self.at(("stages", i, "id"), Message(
                        N_("from stage '{stage}' no path leads to the won stage '{won}'"), stage=sid,
                        won=self.data["won_stage"]))


def _guarded(check: Callable[[], Iterable[Problem]]) -> Iterator[Problem]:
    try:
        yield from check()
    except Unreadable:
        return


# -- building the spec -----------------------------------------------------------------------

def build_spec(d: dict[str, Any]) -> ProcessSpec:
    """Resolve the defaults of schema- and semantically-valid data, then freeze it into a spec."""
    resolved = _whole_numbers(copy.deepcopy(d))
    resolved.setdefault("owner_role", DEFAULT_OWNER_ROLE)
    resolved.setdefault("language", DEFAULT_LANGUAGE)
    for i, stage in enumerate(resolved["stages"]):
        stage.setdefault("warning_days", 0)
        stage.setdefault("next", [{"stage": s} for s in next_ids(d["stages"], i, d["won_stage"])])
    for reason in resolved["closure_reasons"]:
        reason.setdefault("review", reason["kind"] == ClosureKind.REFUSAL)
    return ProcessSpec.from_dict(resolved)


def _whole_numbers(value: Any) -> Any:
    """``2.0`` -> ``2`` throughout: JSON Schema counts 2.0 as an integer, and equal specs must hash equal."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value
