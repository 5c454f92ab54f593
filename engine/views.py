"""The JSON shapes the CLI's ``--json`` and the HTTP API print (documented in docs/cli.md)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, overload

from engine import clock, results
from engine.rules import minor_to_money
from engine.spec import ProcessSpec, TaskSpec
from engine.state import Event, LeadState, TaskState
from engine.vocab import LeadStatus, Role

if TYPE_CHECKING:
    from engine.recovery import Move
    from engine.store.sqltypes import Mapping, Record

#: The ``task`` of a task-list row that is a lead's booked next contact, not a task of its process.
NEXT_CONTACT = "next_contact"
#: The ``task`` of a refusal review on the director's task list.
REVIEW_TASK = "review_refusal"

# ``row`` below is a database row (a SQLAlchemy ``RowMapping`` or ``Row``): its columns' types are the schema's,
# which the type checker does not see; the result types say what comes out.


@overload
def iso(value: dt.datetime) -> str: ...
@overload
def iso(value: None) -> None: ...
@overload
def iso(value: dt.datetime | None) -> str | None: ...
def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def user(row: Mapping) -> results.User:
    return {"id": row["id"], "name": row["name"], "role": row["role"], "team": row["team"], "email": row["email"],
            "created_at": iso(row["created_at"]), "active": row["active"],
            "password_set": row["password_hash"] is not None, "must_change_password": row["must_change_password"],
            "deactivated_at": iso(row["deactivated_at"]), "language": row.get("language")}


def choice_labels(fields: dict[str, Any], spec: ProcessSpec) -> dict[str, Any]:
    """The labels of the options chosen in the set choice fields (a list for ``choices``), as a person reads them;
    an option without a label is its id."""
    shown: dict[str, Any] = {}
    for field_id, value in fields.items():
        field = spec.field_spec(field_id)
        if field is None or field.type not in ("choice", "choices") or value is None:
            continue
        shown[field_id] = ([field.option_label(v) for v in value] if isinstance(value, list)
                           else field.option_label(value))
    return shown


def lead(state: LeadState, spec: ProcessSpec, client_row: Mapping, now: dt.datetime | None = None) -> results.Lead:
    assert state.id is not None, "a lead is shown once it is stored"
    stage = spec.stage(state.stage)
    placed: list[tuple[tuple[int, int], str, str, TaskState, TaskSpec | None]] = []
    for (stage_id, task_id), task in state.tasks.items():
        place = spec.task_place(stage_id, task_id)
        if place is not None:
            placed.append((place[0], stage_id, task_id, task, place[1]))
        else:  # a task this version no longer has: after its stage's tasks, or last
            known = spec.stage(stage_id)
            key = (spec.stage_index(stage_id), len(known.all_tasks)) if known else (99, 0)
            placed.append((key, stage_id, task_id, task, None))
    placed.sort(key=lambda p: p[0])
    tasks: list[results.LeadTask] = [{
        "id": task_id,
        "stage": stage_id,
        "name": task_spec.name if task_spec else task_id,
        "owner": task_spec.owner if task_spec else None,
        "mandatory": task_spec.mandatory if task_spec else False,
        "state": task.state,
        "due_at": iso(task.due_at),
        "done_by": task.done_by,
        "done_at": iso(task.done_at),
        "note": task.note,
    } for _, stage_id, task_id, task, task_spec in placed]
    return {
        "id": state.id,
        "client_id": state.client_id,
        "name": client_row["name"],
        "company": client_row["company"],
        "email": client_row["email"],
        "phone": client_row["phone"],
        "process": state.process,
        "process_version": state.process_version,
        "stage": state.stage,
        "stage_name": stage.name if stage else state.stage,
        "status": state.status,
        "owner": state.owner,
        "team": state.team,
        "source": state.source,
        "product": state.product,
        "value": minor_to_money(state.value_minor),
        "currency": spec.currency,
        "fields": dict(state.fields),
        "choice_labels": choice_labels(state.fields, spec),
        "tasks": tasks,
        "created_at": iso(state.created_at),
        "stage_entered_at": iso(state.stage_entered_at),
        "stage_due_at": iso(state.stage_due_at),
        # as a task row's ``overdue``: the deadline has passed while the lead is open (``lead show`` says so)
        "stage_overdue": (state.status == LeadStatus.OPEN and state.stage_due_at is not None
                          and state.stage_due_at < (now or clock.now())),
        "last_activity_at": iso(state.last_activity_at),
        "closed_at": iso(state.closed_at),
        "close_reason": state.close_reason,
        "close_note": state.close_note,
        "last_report": state.last_report,
        "last_report_at": iso(state.last_report_at),
        "extended_until": iso(state.extended_until),
        "extension_reason": state.extension_reason,
        "recalled_at": iso(state.recalled_at),
        "rest_until": iso(state.rest_until),
        "next_contact": iso(state.next_contact_at),
        "unanswered_calls": state.unanswered_calls,
        "external_id": state.external_id,
        "version": state.row_version,
    }


def client_lead(row: Record) -> results.ClientLead:
    """One of the client's other leads, as ``lead show`` lists them."""
    return {"id": row.id, "process": row.process, "status": row.status, "stage": row.stage, "owner": row.owner,
            "created_at": iso(row.created_at), "closed_at": iso(row.closed_at), "close_reason": row.close_reason}


def lead_row(row: Mapping) -> results.LeadRow:
    """A lead as listed (no tasks): from a ``leads`` row joined with the client's name."""
    return {
        "id": row["id"],
        "client_id": row["client_id"],
        "name": row["client_name"],
        "company": row["company"],
        "process": row["process"],
        "process_version": row["process_version"],
        "stage": row["stage"],
        "status": row["status"],
        "owner": row["owner"],
        "team": row["team"],
        "source": row["source"],
        "product": row["product"],
        "value": minor_to_money(row["value_minor"]),
        "fields": json.loads(row["fields_json"]),
        "created_at": iso(row["created_at"]),
        "stage_entered_at": iso(row["stage_entered_at"]),
        "stage_due_at": iso(row["stage_due_at"]),
        "closed_at": iso(row["closed_at"]),
        "close_reason": row["close_reason"],
        "next_contact": iso(row["next_contact_at"]),
        "external_id": row["external_id"],
    }


def event(ev: Event) -> results.HistoryEvent:
    return {"id": ev.id, "lead_id": ev.lead_id, "at": iso(ev.at), "actor": ev.actor, "kind": ev.kind,
            "data": ev.data}


def task_row(row: Mapping, task: TaskSpec, spec: ProcessSpec, now: dt.datetime) -> results.TaskRow:
    due = row["due_at"]
    return {
        "lead_id": row["lead_id"],
        "name": row["client_name"],
        "process": row["process"],
        "stage": row["stage"],
        "task": row["task_id"],
        "task_name": task.name,
        "owner": task.owner,
        "lead_owner": row["owner"],
        "mandatory": task.mandatory,
        "due_at": iso(due),
        "overdue": bool(due is not None and due < now),
        "phone": row["phone"],
        "email": row["email"],
        "next_contact": iso(row["next_contact_at"]),
    }


def next_contact_row(row: Mapping, now: dt.datetime) -> results.TaskRow:
    """A lead's booked next contact as a row of its owner's task list (``task`` is ``next_contact``)."""
    due = row["next_contact_at"]
    return {"lead_id": row["id"], "name": row["client_name"], "process": row["process"], "stage": row["stage"],
            "task": NEXT_CONTACT, "task_name": "Contact the client (booked)", "owner": row["owner"],
            "lead_owner": row["owner"], "mandatory": False, "due_at": iso(due), "overdue": due < now,
            "phone": row["phone"], "email": row["email"], "next_contact": iso(due)}


def client(row: Mapping, lead_views: list[results.Lead], contact_rows: Iterable[Mapping] = ()) -> results.Client:
    return {
        "id": row["id"],
        "name": row["name"],
        "company": row["company"],
        "email": row["email"],
        "phone": row["phone"],
        "tax_id": row["tax_id"],
        "created_at": iso(row["created_at"]),
        "language": row.get("language"),
        "merged_into": row["merged_into"],
        "kind": row["kind"],
        "external_id": row["external_id"],
        "contacts": [{"id": c["id"], "name": c["name"], "role": c["role"], "email": c["email"],
                      "phone": c["phone"]} for c in contact_rows],
        "leads": lead_views,
    }


def review(row: Mapping, due: dt.datetime) -> results.Review:
    return {"id": row["id"], "lead_id": row["lead_id"], "name": row["name"], "process": row["process"],
            "owner": row["owner"], "team": row["team"], "reason": row["reason"], "note": row["close_note"],
            "stage": row["closed_from_stage"], "value": minor_to_money(row["value_minor"]),
            "requested_at": iso(row["requested_at"]), "due_at": iso(due), "state": row["state"],
            "decided_by": row["decided_by"], "decided_at": iso(row["decided_at"]), "decision_note": row["note"]}


def stalled(row: Record, why: str, now: dt.datetime) -> results.StalledLead:
    return {"lead_id": row.id, "client_id": row.client_id, "name": row.name, "process": row.process,
            "stage": row.stage, "owner": row.owner, "days_held": (now - row.owner_since).days,
            "last_activity_at": iso(row.last_activity_at), "why": why, "latest_report": row.last_report,
            "latest_report_at": iso(row.last_report_at), "value": minor_to_money(row.value_minor)}


def move(m: Move) -> results.Move:
    return {"lead_id": m.lead_id, "client_id": m.client_id, "name": m.name, "value": minor_to_money(m.value_minor),
            "from": m.from_owner, "to": m.to_owner, "team": m.team}


def review_task(review: results.Review, now: dt.datetime) -> results.TaskRow:
    """An open refusal review as a row of the director's task list."""
    return {"lead_id": review["lead_id"], "name": review["name"], "process": review["process"],
            "stage": review["stage"], "task": REVIEW_TASK,
            "task_name": f"Review the refusal ({review['reason']})", "owner": Role.MANAGER,
            "lead_owner": review["owner"], "mandatory": True, "due_at": review["due_at"],
            "overdue": review["due_at"] < now.isoformat(), "phone": None, "email": None, "next_contact": None}
