"""A process version as a state machine (the ``transitions`` library), shared by all its leads.

States are the stage ids plus ``won`` and ``lost``. Triggers:
``advance_to_<stage>`` along each declared transition (guarded by its ``when``),
``win`` from the won stage, ``close`` from every stage, ``reopen_to_<stage>``
from ``won``/``lost``.

One ``transitions.Machine(model=None)`` is built per process version and cached
by the engine, with a single model object attached for its whole life: a move
sets that model's state to the lead's stage and fires the trigger. Attaching
and detaching a model per move (``add_model``/``remove_model``) costs 170 us,
as it binds every trigger again; setting the state costs 23 us
(benchmarks/machine.py). A lock serialises the moves of one version, so threads
(an HTTP server) can share it. Bulk jobs use ``table``, a plain dict computed
from the same spec; tests/test_machine.py proves that both answer alike.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine import rules
from engine.spec import Condition, ProcessSpec
from engine.vocab import LeadStatus

# The states of a closed lead, plain strings: transitions names a state given as an Enum by its member name.
WON, LOST = LeadStatus.WON.value, LeadStatus.LOST.value


if TYPE_CHECKING:
    from collections.abc import Callable

    from transitions import EventData

@dataclass(frozen=True)
class Edge:
    dest: str
    when: Condition | None = None


def build_table(spec: ProcessSpec) -> dict[tuple[str, str], Edge]:
    """(state, trigger) -> edge, straight from the spec."""
    table: dict[tuple[str, str], Edge] = {}
    for stage in spec.stages:
        for nxt in stage.next:
            table[(stage.id, f"advance_to_{nxt.stage}")] = Edge(nxt.stage, nxt.when)
        table[(stage.id, "close")] = Edge(LOST)
        for closed in (WON, LOST):
            table[(closed, f"reopen_to_{stage.id}")] = Edge(stage.id)
    table[(spec.won_stage, "win")] = Edge(WON)
    return table


class _Lead:
    """The model a machine moves: only the state and the fields its conditions read."""

    def __init__(self, state: str, fields: dict[str, Any]):
        self.state = state
        self.fields = fields


class ProcessMachine:
    def __init__(self, spec: ProcessSpec):
        from transitions import Machine

        self.spec = spec
        self.table = build_table(spec)
        transitions = []
        for (source, trigger), edge in self.table.items():
            item: dict[str, Any] = {"trigger": trigger, "source": source, "dest": edge.dest}
            if edge.when is not None:
                item["conditions"] = [self._guard(edge.when)]
            transitions.append(item)
        self._lock = threading.Lock()
        self.machine = Machine(
            model=None,
            initial=None,  # no implicit 'initial' state: the states are exactly the stages, won and lost
            states=[*spec.stage_ids, WON, LOST],
            transitions=transitions,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )
        self._model = _Lead(spec.first_stage.id, {})
        self.machine.add_model(self._model, initial=spec.first_stage.id)

    def _guard(self, when: Condition) -> Callable[[EventData], bool]:
        spec = self.spec

        def guard(event: EventData) -> bool:
            model = event.model
            assert isinstance(model, _Lead), "every machine moves a _Lead"
            return rules.evaluate(when, model.fields, spec)

        return guard

    def fire(self, state: str, trigger: str, fields: dict[str, Any]) -> str | None:
        """The state after ``trigger`` from ``state``, or None when the machine refuses the move."""
        from transitions import MachineError

        if state not in self.machine.states:
            return None  # a stage this version does not have: no move is allowed from it
        with self._lock:
            model = self._model
            self.machine.set_state(state, model=model)
            model.fields = fields
            try:
                moved = model.trigger(trigger)  # type: ignore[attr-defined]
            except (MachineError, AttributeError):
                moved = False
            finally:
                model.fields = {}
            return model.state if moved else None

    def allowed(self, state: str, trigger: str, fields: dict[str, Any]) -> str | None:
        """The same answer as ``fire``, from the precomputed table (for bulk loops)."""
        edge = self.table.get((state, trigger))
        if edge is None or (edge.when is not None and not rules.evaluate(edge.when, fields, self.spec)):
            return None
        return edge.dest
