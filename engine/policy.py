"""Who may do what: every permission rule of the engine, and the acting user it is asked about.

- admin: everything, and alone loads and migrates processes, manages users and API tokens, sends the due mail
  and rebuilds projections;
- manager (the sales director): any lead of their team (every team when they have none): reassign, close,
  reopen, recall, extend, decide refusal reviews, rotate, import, and the salesperson's work;
- salesperson: their own leads only, and only the tasks owned by the process's owner role;
- a department user (role = a process role such as analyst or technician): tasks owned by that role on the
  leads of their team (every team when they have none); reading those leads;
- an intake (a source of the HTTP intake, such as a website, made by ``leadflow token add``): adding leads
  without an owner, and reading every lead and board (the HTTP intake lets only tokens made with ``--read``
  read).

A rule that decides both one lead (a Python predicate such as ``can_view``) and many (an SQL filter such as
``visible_leads``) is written here in both forms, side by side; tests/test_policy.py proves on random users and
leads, against a real database, that the two forms agree. Every refusal names who tried what and why, and never
the owner or team of a lead the actor may not see (the engine checks ``require_can_view`` before any other rule on
a lead).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.board import Scope
from engine.errors import PermissionDenied
from engine.i18n import N_, Message
from engine.spec import ProcessSpec, TaskSpec
from engine.state import LeadState, OwnedLead
from engine.store import clients, leads
from engine.vocab import ADDERS, MANAGERS, OWNERS, Role


@dataclass(frozen=True)
class Actor:
    """A user as the rules see them: the acting user, or one a lead is given to.

    ``role`` is a ``Role`` or a department role a process declares (such as ``analyst``)."""

    name: str
    role: str
    team: str | None = None
    email: str | None = None
    id: int | None = None
    #: a deactivated user cannot log in, act or own leads (their leads stay theirs until reassigned)
    active: bool = True
    #: the language they read leadflow in (None: the environment's, engine/i18n.py)
    language: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Actor:
        """From a ``users`` row (a database from before revision 0004 has no ``email``)."""
        return cls(name=row["name"], role=row["role"], team=row["team"], email=row.get("email"), id=row.get("id"),
                   active=bool(row.get("active", True)), language=row.get("language"))

    @property
    def who(self) -> str:
        """How a refusal names them: ``user 'anna' (salesperson, team north)``."""
        if self.team:
            return Message(N_("user '{name}' ({role}, team {team})"), name=self.name, role=self.role, team=self.team)
        return Message(N_("user '{name}' ({role})"), name=self.name, role=self.role)


# -- admins ---------------------------------------------------------------------------------------

def require_admin(actor: Actor, what: str) -> None:
    """Load or migrate processes, manage users and tokens, send the due mail, upgrade the schema..."""
    if actor.role != Role.ADMIN:
        raise PermissionDenied(N_("{who} may not {what}: only an admin may"), who=actor.who, what=what)


def require_self_or_admin(actor: Actor, person: Actor, what: str) -> None:
    """A user's own settings (their language): theirs, or an admin's to change."""
    if person.name != actor.name:
        require_admin(actor, what)


def may_see_job(actor: Actor, starter: str) -> bool:
    """An import job (``intake.import_job``): whoever started it, and admins."""
    return actor.role == Role.ADMIN or actor.name == starter


# -- managers -------------------------------------------------------------------------------------

def manages(actor: Actor, team: str | None) -> bool:
    if actor.role == Role.ADMIN:
        return True
    return actor.role == Role.MANAGER and (actor.team is None or actor.team == team)


def require_manager_of(actor: Actor, team: str | None, what: str) -> None:
    """Reassign, reopen, recall, extend, retry a mail, decide a review, see another's work: a manager of ``team``."""
    if not manages(actor, team):
        scope = Message(N_("team {team}"), team=team) if team else Message(N_("leads without a team"))
        raise PermissionDenied(N_("{who} may not {what}: only a manager of {scope} or an admin may"), who=actor.who,
                               what=what, scope=scope)


def _require_role(actor: Actor, roles: tuple[str, ...], refusal: str) -> None:
    if actor.role not in roles:
        raise PermissionDenied(N_("user '{name}' ({role}) {refusal}"), name=actor.name, role=actor.role,
                               refusal=refusal)


def require_manager(actor: Actor, what: str) -> None:
    """Rotate, import: any manager or an admin (their scope is checked where they name it)."""
    _require_role(actor, MANAGERS, Message(N_("may not {what}: only a manager or an admin may"), what=what))


def require_can_import(actor: Actor, *, history: bool = False) -> None:
    """Import leads from a file (``intake.import_csv``, ``start_import``): a manager or an admin; the history of
    deals only an admin, since every event of a deal is recorded as its owner's (an admin speaks for everyone)."""
    if history:
        require_admin(actor, Message(N_("import the history of deals")))
    else:
        require_manager(actor, Message(N_("import leads")))


# -- owners ---------------------------------------------------------------------------------------

def can_own(actor: Actor) -> bool:
    return actor.role in OWNERS


def require_can_own(actor: Actor) -> None:
    if not actor.active:
        raise PermissionDenied(N_("user '{name}' is deactivated and cannot own leads"), name=actor.name)
    _require_role(actor, OWNERS, Message(N_("cannot own leads; owners are salespeople or managers")))


def default_owner(actor: Actor) -> str | None:
    """Who owns a lead its adder names no owner for: a salesperson their own; anyone else's waits unassigned."""
    return actor.name if actor.role == Role.SALESPERSON else None


def require_can_add(actor: Actor) -> None:
    """Add a lead without naming its owner."""
    _require_role(actor, ADDERS, Message(N_("may not add leads")))


def require_can_add_company(actor: Actor) -> None:
    """Add a company as a client: whoever may add leads, since a company exists to have leads."""
    _require_role(actor, ADDERS, Message(N_("may not add companies")))


def require_can_give(actor: Actor, owner: Actor, what: str) -> None:
    """Add or import a lead for ``owner``: one who may own leads, the actor themself or one of their team."""
    require_can_own(owner)
    if owner.name != actor.name:
        require_manager_of(actor, owner.team, what)


def require_can_assign(actor: Actor, lead: OwnedLead, to: Actor) -> None:
    """Give ``lead`` to ``to``: a manager of the lead's team and of the new owner's."""
    require_can_own(to)
    require_manager_of(actor, lead.team, Message(N_("reassign lead {lead}"), lead=lead.id))
    require_manager_of(actor, to.team, Message(N_("assign a lead to {name}"), name=to.name))


# -- seeing leads ---------------------------------------------------------------------------------

def _owns(actor: Actor, lead: OwnedLead) -> bool:
    """Owning counts for the roles that may own leads (a name on a lead makes no one else its owner)."""
    return lead.owner == actor.name and actor.role in OWNERS


def can_view(actor: Actor, lead: OwnedLead) -> bool:
    """The Python form of ``visible_leads``."""
    if manages(actor, lead.team) or _owns(actor, lead) or actor.role == Role.INTAKE:
        return True
    return actor.role not in (Role.SALESPERSON, *MANAGERS) and (actor.team is None or actor.team == lead.team)


def visible_leads(actor: Actor, query: sa.Select[Any]) -> sa.Select[Any]:
    """Restrict a query over ``leads`` to what the actor may see: the SQL form of ``can_view``."""
    condition = _visible_lead_condition(actor)
    return query if condition is None else query.where(condition)


def _visible_lead_condition(actor: Actor) -> sa.ColumnElement[bool] | None:
    if actor.role in (Role.ADMIN, Role.INTAKE) or (actor.role == Role.MANAGER and actor.team is None):
        return None
    if actor.role == Role.MANAGER:
        return sa.or_(leads.c.team == actor.team, leads.c.owner == actor.name)
    if actor.role == Role.SALESPERSON:
        return leads.c.owner == actor.name
    return leads.c.team == actor.team if actor.team else None


def visible_clients(actor: Actor, query: sa.Select[Any]) -> sa.Select[Any]:
    """Restrict a query over ``clients`` to the clients the actor may see: the SQL form of
    ``require_can_view_client`` (one of its leads is theirs to see, or it has no lead yet)."""
    condition = _visible_lead_condition(actor)
    if condition is None:
        return query
    its_leads = sa.select(leads.c.id).where(leads.c.client_id == clients.c.id)
    return query.where(sa.or_(its_leads.where(condition).exists(), ~its_leads.exists()))


def require_can_view(actor: Actor, lead: OwnedLead) -> None:
    if can_view(actor, lead):
        return
    # whose it is stays unsaid: the refusal is the same for every lead the actor may not see
    raise PermissionDenied(N_("{who} may not see lead {lead}: only its owner, a manager of its team, its "
                              "team's departments or an admin may"), who=actor.who, lead=lead.id)


def require_can_view_client(actor: Actor, client_id: int, its_leads: Iterable[OwnedLead]) -> None:
    """A client and its whole history, for anyone who may see one of its leads (the salesperson who takes a
    client over sees everything that happened before). A client with no lead at all belongs to nobody yet."""
    listed = list(its_leads)
    if listed and not any(can_view(actor, lead) for lead in listed):
        raise PermissionDenied(N_("user '{name}' ({role}) may not see client {client}: "
                                  "none of its leads is theirs to see"), name=actor.name, role=actor.role,
                               client=client_id)


def may_join_client(actor: Actor, its_leads: Iterable[LeadState], *, team: str | None) -> bool:
    """Whether a new lead the actor adds (waiting in ``team``) may join an existing client its e-mail or phone
    names, rather than get a client of its own beside it (``possible_duplicate_of``). A person joins a client they
    may see (``require_can_view_client``). An intake (a web form) sees every lead, yet what anyone types into a
    form must not attach a lead to, and so pollute, any client: it joins only a client all of whose leads are in
    the new lead's team (its token's, else the process's ``default_team``; no team: leads of no team), whatever
    their process. A client with no lead at all belongs to nobody yet: anyone joins it."""
    listed = list(its_leads)
    if actor.role == Role.INTAKE:
        return all(lead.team == team for lead in listed)
    return not listed or any(can_view(actor, lead) for lead in listed)


def joinable_client(actor: Actor, *, team: str | None) -> sa.Select[Any]:
    """The SQL form of ``may_join_client``: one boolean row for the client whose id is bound as ``client_id``
    (executed with ``{"client_id": id, "team": team}``). It reads the client's leads' team and owner by the index
    of their client id, never a lead in full: a client with many leads costs no Python per lead."""
    if actor.role == Role.INTAKE:
        return _INTAKE_JOINS_NO_TEAM if team is None else _INTAKE_JOINS_TEAM
    condition = _visible_lead_condition(actor)
    if condition is None:
        return _ANYONE_JOINS
    return sa.select(sa.or_(~_ITS_LEADS.exists(), _ITS_LEADS.where(condition).exists()))


_ITS_LEADS = sa.select(leads.c.id).where(leads.c.client_id == sa.bindparam("client_id"))
_ANYONE_JOINS = sa.select(sa.true())
# built once (an intake post asks one): no lead of another team, NULL (no team) compared as a value
_INTAKE_JOINS_NO_TEAM = sa.select(~_ITS_LEADS.where(leads.c.team.is_not(None)).exists())
_INTAKE_JOINS_TEAM = sa.select(~_ITS_LEADS.where(
    sa.or_(leads.c.team.is_(None), leads.c.team != sa.bindparam("team"))).exists())


def require_can_edit_client(actor: Actor, client_id: int, its_leads: Iterable[OwnedLead]) -> None:
    """Correct a client's contact data (GDPR art. 16): whoever may work one of its leads (its owner, a manager of
    its team, an admin); a client with no lead, any manager or admin."""
    listed = list(its_leads)
    if any(can_work(actor, lead) for lead in listed) or (not listed and actor.role in MANAGERS):
        return
    raise PermissionDenied(N_("user '{user}' ({role}) may not correct client {client}: only the owner of one of its "
                              "leads, a manager of their team or an admin may"), user=actor.name, role=actor.role,
                           client=client_id)


# -- working leads --------------------------------------------------------------------------------

def can_work(actor: Actor, lead: OwnedLead) -> bool:
    """Advance, edit, close, win, report on: the owner or a manager of the lead's team."""
    return _owns(actor, lead) or manages(actor, lead.team)


def require_can_work(actor: Actor, lead: OwnedLead, verb: str) -> None:
    if not can_work(actor, lead):
        raise PermissionDenied(N_("{who} may not {verb} lead {lead}: it belongs to "
                                  "{owner}; only its owner or a manager of its team may"), who=actor.who, verb=verb,
                               lead=lead.id, owner=lead.owner or Message(N_("nobody")))


def require_can_write(actor: Actor, lead: OwnedLead, spec: ProcessSpec, names: Iterable[str]) -> None:
    """Set fields: whoever works the lead (``can_work``) any of them; a department user only the fields whose
    ``written_by`` names their role, on the leads of their team (every team when they have none)."""
    if can_work(actor, lead):
        return
    names = list(names)
    if actor.team is None or actor.team == lead.team:
        theirs = {f.id for f in spec.fields if actor.role in f.written_by}
        if theirs and all(name in theirs for name in names):
            return
        if theirs:
            others = ", ".join(n for n in names if n not in theirs)
            raise PermissionDenied(N_("{who} may not edit {others} of lead {lead}: the {role} writes "
                                      "only {theirs}; the rest is its owner's or a manager's"), who=actor.who,
                                   others=others, lead=lead.id, role=actor.role, theirs=', '.join(sorted(theirs)))
    raise PermissionDenied(N_("{who} may not edit lead {lead}: it belongs to {owner}; "
                              "only its owner or a manager of its team may"), who=actor.who, lead=lead.id,
                           owner=lead.owner or Message(N_("nobody")))


def require_can_do_task(actor: Actor, lead: OwnedLead, task: TaskSpec, spec: ProcessSpec) -> None:
    """Complete a task: a task of the process's owner role is the lead owner's, a department's task is that
    department's (on the leads of its team); a manager of the lead's team may do either."""
    if manages(actor, lead.team):
        return
    if task.owner == spec.owner_role:
        if lead.owner == actor.name:
            return
        why = (Message(N_("it is the {role}'s task and lead {lead} belongs to {owner}"), role=spec.owner_role,
                       lead=lead.id, owner=lead.owner) if lead.owner else
               Message(N_("it is the {role}'s task and lead {lead} belongs to nobody"), role=spec.owner_role,
                       lead=lead.id))
    elif actor.role == Role.SALESPERSON and lead.owner != actor.name:
        # a task of the salesperson role in a process whose leads are owned by another role is still no
        # colleague's to do: a salesperson works on their own leads only
        why = (Message(N_("lead {lead} belongs to {owner}; a salesperson works only on their own leads"),
                       lead=lead.id, owner=lead.owner) if lead.owner else
               Message(N_("lead {lead} belongs to nobody; a salesperson works only on their own leads"), lead=lead.id))
    else:
        if actor.role == task.owner and (actor.team is None or actor.team == lead.team):
            return
        role = spec.role(task.owner)
        why = Message(N_("it is owned by the {name} ({role})"), name=role.name if role else task.owner, role=task.owner)
    raise PermissionDenied(N_("{who} may not complete task '{task}' of lead {lead}: {why}"), who=actor.who,
                           task=task.id, lead=lead.id, why=why)


def require_can_see_work_of(actor: Actor, person: Actor, what: str) -> None:
    """Another person's tasks or agenda: their manager's (one's own: anyone's)."""
    if person.name != actor.name:
        require_manager_of(actor, person.team, what)


def lists_lead(who: Actor, lead: OwnedLead, *, include_all: bool) -> bool:
    """Whether ``who``'s task list covers ``lead``: a salesperson's own leads; a manager's or admin's team's
    (every team's with ``include_all`` or without a team); a department's team's. The Python form of
    ``task_list_leads``; among the leads it covers, the list holds exactly the tasks ``who`` may complete."""
    if who.role == Role.SALESPERSON:
        return lead.owner == who.name
    if who.team and not (include_all and who.role in MANAGERS):
        return lead.team == who.team
    return True


def task_list_leads(who: Actor, *, include_all: bool) -> list[Any]:
    """SQL conditions on ``leads``: the leads ``who``'s task list covers (the SQL form of ``lists_lead``)."""
    if who.role == Role.SALESPERSON:
        return [leads.c.owner == who.name]
    if who.team and not (include_all and who.role in MANAGERS):
        return [leads.c.team == who.team]
    return []


#: The roles whose task list holds the next contacts booked on the leads it covers (a department's does not).
CONTACT_HOLDERS = (Role.SALESPERSON, *MANAGERS)


def lists_every_task(who: Actor) -> bool:
    """A manager's task list holds every task of the leads it covers; anyone else's only the tasks of their role."""
    return who.role in MANAGERS


def is_task_of(who: Actor, task: TaskSpec, spec: ProcessSpec) -> bool:
    """Whether a non-manager's task list shows ``task`` of ``spec``: their role's tasks (a salesperson's: the
    tasks of the process's owner role)."""
    return task.owner == who.role or (who.role == Role.SALESPERSON and task.owner == spec.owner_role)


# -- views over many leads: the board, the stand-up, the stalled leads, the reports -------------

#: How a rule that names a user (by a name the actor typed) looks them up; raises ``NotFoundError``.
UserLookup = Callable[[str], Actor]


def view_scope(actor: Actor, *, owner: str | None, team: str | None, lookup: UserLookup) -> Scope:
    """Whose leads the actor asked to see (the board, stalled leads, revisits, reports), checked against what
    they may see: every lead the scope covers is one they may see (tests/test_policy.py)."""
    if actor.role == Role.SALESPERSON:
        if owner not in (None, actor.name) or team not in (None, actor.team):
            raise PermissionDenied(N_("user '{name}' (salesperson) sees only their own leads"), name=actor.name)
        return Scope(owner=actor.name)
    if actor.role == Role.INTAKE:  # an integrator's token made with --read: every lead
        if owner is not None:
            lookup(owner)
        return Scope(team=team, owner=owner)
    if actor.role not in MANAGERS:
        raise PermissionDenied(N_("user '{name}' ({role}) has no board; boards are for "
                                  "salespeople and managers"), name=actor.name, role=actor.role)
    if owner is not None:
        require_manager_of(actor, lookup(owner).team, Message(N_("see the leads of {owner}"), owner=owner))
    wanted = team if team is not None else (actor.team if actor.role == Role.MANAGER else None)
    if wanted is not None:
        require_manager_of(actor, wanted, Message(N_("see team {wanted}"), wanted=wanted))
    return Scope(team=wanted, owner=owner)


@dataclass(frozen=True)
class Agenda:
    """Whose stand-up agenda the actor sees: one person's, or every salesperson's of ``team`` (of every team
    when None); ``director``: with the refusal reviews and the unassigned leads."""

    person: str | None
    team: str | None
    director: bool


def agenda_scope(actor: Actor, *, person: Actor | None, team: str | None) -> Agenda:
    if person is not None:
        require_can_see_work_of(actor, person, Message(N_("see the agenda of {name}"), name=person.name))
        return Agenda(person=person.name, team=None, director=False)
    if actor.role == Role.SALESPERSON:
        return Agenda(person=actor.name, team=None, director=False)
    wanted = team if team is not None else actor.team
    if wanted is not None:
        require_manager_of(actor, wanted, Message(N_("see the agenda of team {wanted}"), wanted=wanted))
    return Agenda(person=None, team=wanted, director=actor.role in MANAGERS)


# -- refusal reviews ------------------------------------------------------------------------------

def sees_reviews(actor: Actor) -> bool:
    """Refusal reviews are the sales director's: managers and admins."""
    return actor.role in MANAGERS


def reviews_team(actor: Actor) -> str | None:
    """The team whose refusal reviews the (reviewing) actor sees; None: every team's."""
    return actor.team if actor.role == Role.MANAGER else None


def require_sees_reviews(actor: Actor) -> None:
    _require_role(actor, MANAGERS, Message(N_("may not see refusal reviews: they are the sales director's")))


# -- what an actor may open -----------------------------------------------------------------------

def _allowed(check: Callable[[], object]) -> bool:
    try:
        check()
    except PermissionDenied:
        return False
    return True


def _nobody(name: str) -> Actor:  # pragma: no cover - a scope without an owner looks nobody up
    raise PermissionDenied(N_("no user named '{user}' is looked up here"), user=name)


def capabilities(actor: Actor) -> dict[str, bool]:
    """What the actor may open, each answered by the very rule its operation checks (an interface shows only
    what is allowed: the web app's menu): ``board`` (the board, the stand-up screen, stalled leads, revisits,
    removals and the reports: ``view_scope``), ``daily`` (``agenda_scope``), ``reviews``, ``rotate``,
    ``import`` (leads from a file), ``import_history`` (deals from another CRM with their history), ``users`` (the
    list: anyone), ``manage_users``, ``tokens``,
    ``load_processes``."""
    return {
        "board": _allowed(lambda: view_scope(actor, owner=None, team=None, lookup=_nobody)),
        "daily": _allowed(lambda: agenda_scope(actor, person=None, team=None)),
        "reviews": _allowed(lambda: require_sees_reviews(actor)),
        "rotate": _allowed(lambda: require_manager(actor, "rotate leads")),
        "import": _allowed(lambda: require_can_import(actor)),
        "import_history": _allowed(lambda: require_can_import(actor, history=True)),
        "users": True,
        "manage_users": _allowed(lambda: require_admin(actor, "change users")),
        "tokens": _allowed(lambda: require_admin(actor, "manage API tokens")),
        "load_processes": _allowed(lambda: require_admin(actor, "load processes")),
    }


# -- API tokens -----------------------------------------------------------------------------------

def require_token_reads(source: str, can_read: bool) -> None:
    """Reading through the HTTP intake needs a token made with ``--read``."""
    if not can_read:
        raise PermissionDenied(N_("the token of source '{source}' may send leads but not read them; "
                                  "reading needs a token made with --read"), source=source)
