"""Who may do what. Every refusal names who tried what and why.

- admin: everything, including loading processes and adding users;
- manager (the sales director): any lead of their team (every team when they have none): reassign, close,
  reopen, and the salesperson's work;
- salesperson: their own leads only, and only the tasks owned by the process's owner role;
- a department user (role = a process role such as analyst or technician): tasks owned by that role on the
  leads of their team (every team when they have none); reading those leads;
- an intake (a source of the HTTP intake, such as a website, made by ``leadflow token add``): adding leads
  without an owner, and reading every lead and board (the HTTP intake lets only tokens made with ``--read``
  read).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from engine.errors import PermissionDenied
from engine.spec import ProcessSpec, TaskSpec
from engine.state import LeadState
from engine.store import leads

MANAGERS = ("manager", "admin")
#: The role of a source of the HTTP intake (its technical user, the actor of the leads it sends).
INTAKE = "intake"
#: Who may add leads at all.
ADDERS = ("salesperson", *MANAGERS, INTAKE)


def _who(actor: Any) -> str:
    return f"user '{actor['name']}' ({actor['role']}{', team ' + actor['team'] if actor['team'] else ''})"


def require_admin(actor: Any, what: str) -> None:
    if actor["role"] != "admin":
        raise PermissionDenied(f"{_who(actor)} may not {what}: only an admin may")


def manages(actor: Any, team: str | None) -> bool:
    if actor["role"] == "admin":
        return True
    return actor["role"] == "manager" and (actor["team"] is None or actor["team"] == team)


def require_manager_of(actor: Any, team: str | None, what: str) -> None:
    if not manages(actor, team):
        scope = f"team {team}" if team else "leads without a team"
        raise PermissionDenied(f"{_who(actor)} may not {what}: only a manager of {scope} or an admin may")


def require_can_own(user: Any) -> None:
    if not user.get("active", True):
        raise PermissionDenied(f"user '{user['name']}' is deactivated and cannot own leads")
    if user["role"] not in ("salesperson", "manager"):
        raise PermissionDenied(f"user '{user['name']}' ({user['role']}) cannot own leads; "
                               "owners are salespeople or managers")


def _same_team(actor: Any, state: LeadState) -> bool:
    return actor["team"] is None or actor["team"] == state.team


def can_view(actor: Any, state: LeadState) -> bool:
    if manages(actor, state.team) or state.owner == actor["name"] or actor["role"] == INTAKE:
        return True
    return actor["role"] not in ("salesperson", *MANAGERS) and _same_team(actor, state)


def require_can_view(actor: Any, state: LeadState) -> None:
    if can_view(actor, state):
        return
    raise PermissionDenied(f"{_who(actor)} may not see lead {state.id}: it belongs to "
                           f"{state.owner or 'nobody'}{' of team ' + state.team if state.team else ''}")


def require_can_work(actor: Any, state: LeadState, verb: str) -> None:
    """Advance, edit, close, win: the owner or a manager of the lead's team."""
    if state.owner == actor["name"] and actor["role"] in ("salesperson", "manager"):
        return
    if manages(actor, state.team):
        return
    raise PermissionDenied(f"{_who(actor)} may not {verb} lead {state.id}: it belongs to {state.owner or 'nobody'}; "
                           "only its owner or a manager of its team may")


def require_can_do_task(actor: Any, state: LeadState, task: TaskSpec, spec: ProcessSpec) -> None:
    if manages(actor, state.team):
        return
    if task.owner == spec.owner_role:
        if state.owner == actor["name"]:
            return
        why = f"it is the {spec.owner_role}'s task and lead {state.id} belongs to {state.owner or 'nobody'}"
    else:
        if actor["role"] == task.owner and _same_team(actor, state):
            return
        role = spec.role(task.owner)
        why = f"it is owned by the {role.name if role else task.owner} ({task.owner})"
    raise PermissionDenied(f"{_who(actor)} may not complete task '{task.id}' of lead {state.id}: {why}")


def visible_leads(actor: Any, query: sa.Select[Any]) -> sa.Select[Any]:
    """Restrict a query over ``leads`` to what the actor may see."""
    if actor["role"] in ("admin", INTAKE) or (actor["role"] == "manager" and actor["team"] is None):
        return query
    if actor["role"] == "manager":
        return query.where(sa.or_(leads.c.team == actor["team"], leads.c.owner == actor["name"]))
    if actor["role"] == "salesperson":
        return query.where(leads.c.owner == actor["name"])
    return query.where(leads.c.team == actor["team"]) if actor["team"] else query
