"""The rules of the stages a lead has left: a change of its fields or attributes may not undo them
(docs/process-format.md, "Conditions after a stage is left"). ``leads.set_fields`` and every path that sets fields
ask ``require_path_kept`` with the moves ``passed_moves`` reads from the lead's history, when the change touches a
name that a condition of the process reads (``conditions_read``): a change no condition reads can undo no rule, and
reading the history, which grows with every change of the lead, cost most of a field change (docs/performance.md).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import Any

from engine import rules
from engine.condition_text import condition_text
from engine.errors import RuleViolation
from engine.i18n import N_, Message
from engine.spec import ProcessSpec, TransitionSpec, derived
from engine.state import ATTRIBUTES, Event, LeadState
from engine.vocab import EventKind, TaskStatus


def passed_moves(history: builtins.list[Event]) -> builtins.list[tuple[str, str]]:
    """The moves (from, to) that brought the lead where it is: its ``advanced`` events since it was created or
    migrated, less those after the stage a reopening went back to."""
    moves: builtins.list[tuple[str, str]] = []
    for ev in history:
        if ev.kind in (EventKind.CREATED, EventKind.MIGRATED):
            moves = []
        elif ev.kind == EventKind.ADVANCED:
            moves.append((ev.data["from"], ev.data["to"]))
        elif ev.kind == EventKind.REOPENED:
            back = next((i for i, (source, _) in enumerate(moves) if source == ev.data["to"]), len(moves))
            moves = moves[:back]
    return moves


def conditions_read(spec: ProcessSpec, names: Iterable[str]) -> bool:
    """Whether a condition that ``require_path_kept`` evaluates (a task's ``when``, a move's ``when``) reads any of
    ``names``, the fields and attributes (``value``, ``product``, ``source``) a change sets. When none does, every
    such condition answers after the change as before it, so the change undoes no rule of a stage left behind and
    the lead's history need not be read."""
    fields, attributes = _read_by_conditions(spec)
    return any((n in attributes) if n in ATTRIBUTES else (n in fields) for n in names)


@derived
def _read_by_conditions(spec: ProcessSpec) -> tuple[frozenset[str], frozenset[str]]:
    """The fields and the attributes the conditions of ``spec``'s tasks and moves read."""
    conditions = [c for stage in spec.stages
                  for c in (*(t.when for t in stage.all_tasks), *(t.when for t in stage.next)) if c is not None]
    return (frozenset(name for c in conditions for name in c.fields()),
            frozenset(name for c in conditions for name in c.attributes()))


def require_path_kept(state: LeadState, spec: ProcessSpec, moves: builtins.list[tuple[str, str]],
                      facts: dict[str, Any]) -> None:
    """Refuse a change of fields or attributes (``facts``: the lead's after it, ``rules.lead_facts``) that would
    undo a rule the lead already passed: one that makes a mandatory task of a stage it has left apply while it is
    not done, or makes false the condition of a move it took. (Otherwise ``financing=cash``, advance,
    ``financing=leasing`` would leave ``send_offer`` with ``leasing_offer`` never done.) docs/process-format.md,
    "Conditions after a stage is left"."""
    problems: builtins.list[Message] = []
    for source, target in moves:
        stage = spec.stage(source)
        if stage is None:
            continue
        for task in stage.all_tasks:
            held = state.tasks.get((source, task.id))
            if (task.mandatory and held is not None and held.state != TaskStatus.DONE
                    and rules.applies(task, facts, spec)):
                problems.append(Message(N_("mandatory task '{task}' of the passed stage '{stage}' would apply "
                                           "and was never done"), task=task.id, stage=source))
        into = [t for t in stage.next if t.stage == target]
        if into and not any(t.when is None or rules.evaluate(t.when, facts, spec) for t in into) and not (
                _fills_in(spec, target, into)):
            conditions = " or ".join(condition_text(t.when) for t in into if t.when is not None)
            problems.append(Message(N_("the lead moved from '{source}' to '{target}' because {conditions}"),
                                    source=source, target=target, conditions=conditions))
    if problems:
        raise RuleViolation(N_("can't change the fields of lead {lead} that way: {problems}; a stage "
                               "once left keeps the rules it was left under (reopen the lead into that stage to "
                               "redo its work)"), lead=state.id, problems=problems)


def _fills_in(spec: ProcessSpec, target: str, into: builtins.list[TransitionSpec]) -> bool:
    """Whether the conditions of the moves into ``target`` read only fields that ``target`` requires: fields the
    process has filled in the stage the move enters (saas_trial counts its extensions in ``trial_extensions``,
    which the move into ``extend_trial`` tests and ``extend_trial`` requires), so changing them later undoes no
    rule of a stage left behind."""
    entered = spec.stage(target)
    required = set(entered.required_fields) if entered is not None else set()
    return all(t.when.fields() <= required and not t.when.attributes() for t in into if t.when is not None)
