"""What the acting user may do with a lead, asked of the same rules the actions ask (``eng.leads.options``: the
web page's buttons, with no rule decided in a view), and the stages a closed lead may reopen into."""

from __future__ import annotations

from collections.abc import Callable

from engine import policy, results
from engine.errors import PermissionDenied
from engine.policy import Actor
from engine.spec import ProcessSpec
from engine.state import LeadState
from engine.vocab import LeadStatus, TaskStatus


def reopen_stages(spec: ProcessSpec, closed_in: str) -> list[str]:
    """The stages a lead closed in ``closed_in`` may reopen into: that stage first, then the earlier ones (a reopen
    is never a way past a stage's mandatory tasks); any stage when ``closed_in`` is no longer in the process."""
    order = list(spec.stage_ids)
    if closed_in not in order:
        return order
    return [closed_in, *order[:order.index(closed_in)]]


def lead_options(state: LeadState, spec: ProcessSpec, actor: Actor, people: Callable[[], list[Actor]],
                 ) -> results.LeadOptions:
    """``options``: each answer is the policy function that the action itself asks (``people``: the active users,
    asked only when the actor may reassign)."""
    assert state.id is not None  # a stored lead
    is_open = state.status == LeadStatus.OPEN
    stage = spec.stage(state.stage)
    edit = is_open and stage is not None and policy.can_work(actor, state)
    tasks: list[str] = []
    if is_open and stage is not None:
        for task in stage.all_tasks:
            current = state.tasks.get((stage.id, task.id))
            if current is None or current.state != TaskStatus.OPEN:
                continue
            try:
                policy.require_can_do_task(actor, state, task, spec)
            except PermissionDenied:
                continue
            tasks.append(task.id)
    manager = policy.manages(actor, state.team)

    def named(stage_id: str) -> results.StageChoice:
        found = spec.stage(stage_id)
        return {"id": stage_id, "name": found.name if found else stage_id}

    reopen = [named(s) for s in reopen_stages(spec, state.closed_from_stage or state.stage)] \
        if not is_open and manager else []
    return {
        "lead_id": state.id, "version": state.row_version, "edit": edit, "tasks": tasks,
        "advance": [named(n.stage) for n in stage.next] if edit and stage is not None else [],
        "win": edit and state.stage == spec.won_stage,
        "close": [{"id": r.id, "label": r.label, "kind": r.kind} for r in spec.closure_reasons
                  if r.allowed_in(state.stage)] if edit else [],
        "reopen": reopen,
        "assign": [p.name for p in people() if policy.can_own(p) and policy.manages(actor, p.team)]
        if is_open and manager else [],
        "fields": [{"id": f.id, "label": f.label, "type": f.type, "options": list(f.options),
                    "option_labels": {o: f.option_label(o) for o in f.options}, "min": f.min,
                    "max": f.max, "required": stage is not None and f.id in stage.required_fields}
                   for f in spec.fields],
    }
