"""What every service shares: the transaction, the acting user, the spec and machine caches, and a lead's
read-check-write cycle (read it by id, apply events, write it under its lock, return its view).

Each of these exists once, here; a service reaches them through ``self.ctx``. Nothing in this module knows
one service from another.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import actions, clock, i18n, notices, policy, results, rules, store, views
from engine.errors import (
    ConcurrentUpdateError,
    DatabaseBusy,
    InvalidInputError,
    LeadflowError,
    NotFoundError,
    PermissionDenied,
    RuleViolation,
    did_you_mean,
    unknown_user,
)
from engine.formats import upgrade_stored
from engine.i18n import N_, Message, Named
from engine.machine import ProcessMachine
from engine.policy import Actor
from engine.spec import ProcessSpec
from engine.state import Event, LeadState, apply
from engine.store import clients, events, process_versions, users
from engine.vocab import LeadStatus, Role, is_id

if TYPE_CHECKING:
    from engine.api import Engine
    from engine.board import Scope

#: A lead's JSON-able view (the shape of docs/cli.md), and a list of such rows.
Json = dict[str, Any]
JsonList = list[dict[str, Any]]

#: How a transition is asked of a process version: the machine's ``fire`` (one lead) or its table's ``allowed``.
Move = Callable[[str, str, dict[str, Any]], str | None]

#: One lead's check for a move (``leads.advancing``...): the event's kind and data, or the refusal. It gets the
#: acting user as a function, so that a refusal that needs no user reads none.
Check = Callable[[LeadState, ProcessSpec, Callable[[], Actor], Move], tuple[str, dict[str, Any]]]

#: The spec of a process version, as ``state.apply`` asks for it.
SpecLookup = Callable[[str, int], ProcessSpec]

_USER_BY_NAME = sa.select(users).where(users.c.name == sa.bindparam("name"))
_CLIENT_BY_ID = sa.select(clients).where(clients.c.id == sa.bindparam("id"))
_LAST_EVENT_AT = sa.select(sa.func.max(events.c.at)).where(events.c.lead_id == sa.bindparam("lead_id"))
_VERSIONS = sa.select(process_versions.c.version, process_versions.c.spec_json).where(
    process_versions.c.process == sa.bindparam("process"))
_NEWEST_NUMBER = sa.select(sa.func.max(process_versions.c.version).label("newest")).where(
    process_versions.c.process == sa.bindparam("process"))
_VERSION = _VERSIONS.where(process_versions.c.version == sa.bindparam("version"))


class Context:
    """One engine's database, acting user, open transaction and caches (shared by ``Engine.as_user``)."""

    def __init__(self, db: sa.Engine, user_name: str, specs: dict[tuple[str, int], ProcessSpec] | None = None,
                 machines: dict[tuple[str, int], ProcessMachine] | None = None):
        self.db = db
        self.user_name = user_name
        self.conn: Connection | None = None
        self.specs: dict[tuple[str, int], ProcessSpec] = {} if specs is None else specs
        self.machines: dict[tuple[str, int], ProcessMachine] = {} if machines is None else machines
        self.depth = 0  # operations running: a call made inside another one is not logged as refused twice
        # a new lead's client as its caller looked it up in this transaction (e-mail, phone, the client or None):
        # taken once by ``clients.client_for_new_lead`` for the same e-mail and phone, so it is not asked twice
        self.client_looked_up: tuple[str | None, str | None, int | None] | None = None

    def sharing_caches(self, user_name: str) -> Context:
        """A context over the same database and caches, acting as ``user_name``."""
        return Context(self.db, user_name, self.specs, self.machines)

    # -- the transaction -------------------------------------------------------------------------------
    @contextmanager
    def transaction(self, *, read_only: bool = False,
                    around: Callable[[Connection], AbstractContextManager[object]] | None = None,
                    ) -> Iterator[Connection]:
        """One transaction for everything inside; operations called inside join it.

        A ``read_only`` one (an operation that writes nothing: showing a lead, a list, a board) does not take
        SQLite's write lock: it reads the last committed snapshot (WAL) at once, however long a writer such as
        an import holds the lock (``store.create_db_engine``). A writer that waited out the busy timeout gets
        ``DatabaseBusy``, never a driver's traceback. ``around``: a context entered on the connection before the
        transaction begins and left after it ends (a bulk load's journal, ``store.loading.alone``)."""
        if self.conn is not None:
            yield self.conn
            return
        try:
            with self.db.connect() as conn:
                if read_only:
                    conn.execution_options(**{store.READ_ONLY: True})
                with around(conn) if around is not None else nullcontext(), conn.begin():
                    self.conn = conn
                    yield conn
        except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
            problem = self._schema_problem(exc)
            if problem is not None:
                raise LeadflowError(problem.template, **problem.params) from None
            if store.is_busy(exc):
                raise DatabaseBusy("the database is busy: another writer (such as an import) has held it longer "
                                   "than this one waits; nothing was written, try again when it has finished"
                                   ) from None
            raise
        finally:
            self.conn = None
            self.client_looked_up = None

    def reading(self) -> AbstractContextManager[Connection]:
        """``transaction(read_only=True)``: for the operations that write nothing."""
        return self.transaction(read_only=True)

    def _schema_problem(self, exc: Exception) -> Message | None:
        """What a missing table or column means for the user: no schema yet, or one an upgrade would fix."""
        text = str(exc)
        if not any(sign in text for sign in ("no such table", "no such column", "does not exist")):
            return None
        from engine import migrate

        current, head = migrate.current_revision(self.db), migrate.head_revision()
        if current is None:
            return Message(N_("the database has no leadflow schema; run 'leadflow init' first"))
        if current != head:
            return Message(N_("the database's schema is at revision {current}, this leadflow needs {head}; an admin "
                              "runs 'leadflow init' to upgrade it"), current=current, head=head)
        return None

    # -- who acts ----------------------------------------------------------------------------------------
    def event(self, kind: str, data: dict[str, Any]) -> Event:
        return Event(kind=kind, at=clock.now(), actor=self.user_name, data=data)

    def actor(self, conn: Connection) -> Actor:
        """The acting user, or the refusal for a user nobody registered."""
        rows = store.driver_rows(conn, _USER_BY_NAME, {"name": self.user_name})
        if not rows:
            raise self.not_registered()
        if not rows[0]["active"]:
            raise PermissionDenied(N_("user '{user}' is deactivated; an admin may reactivate them with "
                                      "'leadflow user set {user} --activate'"), user=self.user_name)
        actor = Actor.from_row(rows[0])
        i18n.set_user_language(actor.language)  # what the interfaces show this user is in their language
        return actor

    def not_registered(self) -> PermissionDenied:
        return PermissionDenied(N_("user '{user}' is not registered; an admin adds users with "
                                   "'leadflow user add {user} --role {salesperson}' "
                                   "(choose the acting user with --user or LEADFLOW_USER)"), user=self.user_name,
                                salesperson=Role.SALESPERSON)

    def actor_and_lead(self, conn: Connection, lead_id: int, if_version: int | None = None,
                       ) -> tuple[Actor, LeadState]:
        """The acting user and the lead to write: the user checked first, then that they may see the lead (so that
        no later refusal names the owner or team of a lead they may not see), then the version they last saw."""
        actor = self.actor(conn)
        return actor, self.lead_to_write(conn, lead_id, if_version, actor)

    def user(self, conn: Connection, name: str) -> Actor:
        """The user called ``name`` (an owner, a person whose work is asked for), as the rules see them."""
        return Actor.from_row(self.user_row(conn, name))

    def user_row(self, conn: Connection, name: str) -> sa.RowMapping:
        row = conn.execute(_USER_BY_NAME, {"name": name}).mappings().first()
        if row is None:
            raise unknown_user(name, [r[0] for r in conn.execute(sa.select(users.c.name))])
        return row

    def scope(self, conn: Connection, actor: Actor, *, owner: str | None, team: str | None) -> Scope:
        """Whose leads the actor asked to see (a board, stalled leads, revisits, reports), if they may
        (``policy.view_scope``); a named owner must be a user."""
        return policy.view_scope(actor, owner=owner, team=team, lookup=lambda name: self.user(conn, name))

    # -- process specs and their machines --------------------------------------------------------------------
    def spec(self, conn: Connection, process: str, version: int | None = None) -> ProcessSpec:
        """The spec of a stored process version (the newest when ``version`` is None), cached."""
        if version is not None and (process, version) in self.specs:
            return self.specs[(process, version)]
        if version is None:  # the newest version's number first: its text is read only when it is not cached
            version = store.driver_rows(conn, _NEWEST_NUMBER, {"process": process})[0]["newest"]
            if version is not None and (process, version) in self.specs:
                return self.specs[(process, version)]
        row = conn.execute(_VERSION, {"process": process, "version": version}).first() if (
            version is not None) else None
        if row is None:
            loaded = sorted({r[0] for r in conn.execute(sa.select(process_versions.c.process))})
            if version is not None and process in loaded:
                raise NotFoundError(N_("process '{process}' has no version {version}"), process=process,
                                    version=version)
            raise NotFoundError(N_("process '{process}' is not loaded{suggestion}; loaded processes: "
                                   "{loaded}"), process=process, suggestion=did_you_mean(process, loaded),
                                loaded=', '.join(loaded) or 'none (run leadflow process load PATH)')
        key = (process, row[0])
        if key not in self.specs:
            self.specs[key] = ProcessSpec.from_dict(upgrade_stored(json.loads(row[1])))
        return self.specs[key]

    def machine(self, spec: ProcessSpec, version: int) -> ProcessMachine:
        key = (spec.id, version)
        if key not in self.machines:
            self.machines[key] = ProcessMachine(spec)
        return self.machines[key]

    def specs_lookup(self, conn: Connection) -> SpecLookup:
        return lambda process, version: self.spec(conn, process, version)

    def all_specs(self, conn: Connection) -> list[tuple[int, ProcessSpec]]:
        """Every stored process version, with its number."""
        rows = conn.execute(sa.select(process_versions.c.process, process_versions.c.version)).all()
        return [(v, self.spec(conn, p, v)) for p, v in rows]

    def latest_specs(self, conn: Connection, process: str | None) -> list[ProcessSpec]:
        """The newest version of ``process``, or of every process by name."""
        if process is not None:
            return [self.spec(conn, process)]
        names = [r[0] for r in conn.execute(sa.select(process_versions.c.process).distinct()
                                            .order_by(process_versions.c.process))]
        return [self.spec(conn, n) for n in names]

    def version_of(self, conn: Connection, spec: ProcessSpec) -> int:
        # a spec read from an older format hashes as its upgraded self, not as the row it was read from
        read = next((v for (p, v), s in self.specs.items() if s is spec), None)
        if read is not None:
            return read
        return int(conn.execute(sa.select(process_versions.c.version).where(
            process_versions.c.process == spec.id,
            process_versions.c.content_hash == spec.content_hash)).scalar_one())

    # -- one lead: read, write, view ----------------------------------------------------------------------------
    def lead(self, conn: Connection, lead_id: int) -> LeadState:
        """The stored lead, or the error for an id that is not a whole number or names no lead."""
        if isinstance(lead_id, bool) or not isinstance(lead_id, int):
            raise InvalidInputError(N_("lead id must be a whole number, got {lead!r}"), lead=lead_id)
        state = store.read_lead(conn, lead_id) if is_id(lead_id) else None
        if state is None:
            raise NotFoundError(N_("lead {lead} does not exist"), lead=lead_id)
        return state

    def lead_to_write(self, conn: Connection, lead_id: int, if_version: int | None = None,
                      actor: Actor | None = None) -> LeadState:
        """The stored lead that an operation is about to change, if the acting user may see it: the one place where
        the version the client last saw (``if_version``) is checked; a stale one raises ``ConcurrentUpdateError``
        naming the current version.
        """
        actor = actor if actor is not None else self.actor(conn)
        state = self.lead(conn, lead_id)
        policy.require_can_view(actor, state)
        if if_version is not None and if_version != state.row_version:
            if isinstance(if_version, bool) or not isinstance(if_version, int):
                raise InvalidInputError(N_("if_version must be a whole number, got {if_version!r}"),
                                        if_version=if_version)
            raise ConcurrentUpdateError(
                N_("lead {lead} is at version {row_version}, not {if_version} as you last saw it; nothing "
                   "was written: read it again and retry"), lead=lead_id, row_version=state.row_version,
                if_version=if_version, lead_id=lead_id, current_version=state.row_version)
        return state

    def visible_lead(self, conn: Connection, lead_id: int) -> LeadState:
        """The lead, if the acting user may see it."""
        state = self.lead(conn, lead_id)
        policy.require_can_view(self.actor(conn), state)
        return state

    def lead_to_work(self, conn: Connection, lead_id: int, verb: str, if_version: int | None = None,
                     ) -> tuple[LeadState, ProcessSpec]:
        """The open lead and its spec, if the acting user may ``verb`` it (edit it, close it)."""
        actor, state = self.actor_and_lead(conn, lead_id, if_version)
        spec = self.spec(conn, state.process, state.process_version)
        require_open(state, verb)
        policy.require_can_work(actor, state, verb)
        return state, spec

    def commit(self, conn: Connection, state: LeadState, evs: list[Event]) -> results.Lead:
        """Apply events to the state, write it (optimistic lock) and append the events; return the view."""
        if not evs:
            return self.view(conn, state)
        require_forward(conn, state, evs)
        before = state.clone()
        lookup = self.specs_lookup(conn)
        entries = []
        for ev in evs:
            state = apply(state, ev, lookup)
            if ev.kind in actions.ENTERING:
                entry = actions.on_enter(lookup(state.process, state.process_version), state, ev.at)
                entry.record_on(ev)
                entries.append(entry)
        store.write_leads(conn, [store.LeadChange(before, state, evs)])
        actions.store(conn, entries)
        notices.queue(conn, notices.after(before, state, evs))
        return self.view(conn, state)

    def view(self, conn: Connection, state: LeadState) -> results.Lead:
        spec = self.spec(conn, state.process, state.process_version)
        (client_row,) = store.driver_rows(conn, _CLIENT_BY_ID, {"id": state.client_id})
        return views.lead(state, spec, client_row)


def require_forward(conn: Connection, state: LeadState, evs: list[Event]) -> None:
    """Refuse events earlier than the lead's last one: a lead's history never goes back in time, whatever a
    clock says (the one check, on the one path where a lead's events are written). A program backfilling
    history with ``clock.frozen`` (the demo, imports of old records) writes it in the order it chooses."""
    if clock.is_frozen():
        return
    last = conn.execute(_LAST_EVENT_AT, {"lead_id": state.id}).scalar()
    first = min(ev.at for ev in evs)
    if last is not None and first < last:
        raise _backwards(state.id, first, last)


def require_forward_all(conn: Connection, lead_ids: Sequence[int], at: dt.datetime) -> None:
    """``require_forward`` for many leads changed at one instant (a rotation), a query per 500 leads: refused,
    naming the first lead, when any of them has an event later than ``at``."""
    if clock.is_frozen():
        return
    ids = sorted(lead_ids)
    for start in range(0, len(ids), 500):
        last = sa.func.max(events.c.at)
        later = conn.execute(sa.select(events.c.lead_id, last).where(events.c.lead_id.in_(ids[start:start + 500]))
                             .group_by(events.c.lead_id).having(last > at).order_by(events.c.lead_id)).first()
        if later is not None:
            raise _backwards(later[0], at, later[1])


def _backwards(lead_id: int | None, at: dt.datetime, last: dt.datetime) -> RuleViolation:
    return RuleViolation(N_("can't change lead {lead} at {first}: its last event is at {last}, and a lead's history "
                            "never goes back in time"), lead=lead_id, first=views.iso(at), last=views.iso(last))


def require_open(state: LeadState, verb: str) -> None:
    """Refuse work on a won or lost lead."""
    if state.status != LeadStatus.OPEN:
        raise RuleViolation(N_("can't {verb} lead {lead}: it is {status} (closed {closed_at}); a manager may "
                               "reopen it"), verb=verb, lead=state.id, status=state.status,
                            closed_at=views.iso(state.closed_at))


def require_can_leave(state: LeadState, spec: ProcessSpec) -> None:
    """Refuse to leave the lead's stage while a mandatory task is open or a required field unset; the refusal
    names them by id in English and by their labels in the reader's language."""
    stage = spec.stage(state.stage)
    assert stage is not None
    open_tasks, unset = rules.missing_to_leave(stage, state.stage_tasks(), state.fields)
    if not (open_tasks or unset):
        return
    named = {"stage": spec_label(spec, stage.id, stage.name), "lead": state.id,
             "tasks": [spec_label(spec, t, next((x.name for x in stage.tasks if x.id == t), None))
                       for t in open_tasks],
             "fields": [spec_label(spec, f, next((x.label for x in spec.fields if x.id == f), None))
                        for f in unset]}
    if open_tasks and unset:
        raise RuleViolation(N_("can't leave stage '{stage}' of lead {lead}: mandatory tasks open: {tasks}; "
                               "required fields not set: {fields}"), **named)
    if open_tasks:
        raise RuleViolation(N_("can't leave stage '{stage}' of lead {lead}: mandatory tasks open: {tasks}"),
                            **named)
    raise RuleViolation(N_("can't leave stage '{stage}' of lead {lead}: required fields not set: {fields}"),
                        **named)


def spec_label(spec: ProcessSpec, ident: str, label: str | Mapping[str, str] | None) -> Named:
    """A stage, task or field of ``spec`` as a message names it (its id in English, its label otherwise)."""
    return Named(ident, label, spec.language)


class Service:
    """A group of the engine's operations (``engine.leads``, ``engine.reports``, ...) over the shared context.

    ``engine`` is the facade, through which a service calls another one's operations; ``name`` is the
    attribute the facade holds it under, and the first part of each operation's name in the log.
    """

    name = ""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.ctx = engine.context


P = ParamSpec("P")
R = TypeVar("R")


def operation(method: Callable[P, R]) -> Callable[P, R]:
    """Log the call of a service's public operation at DEBUG, and its refusal (a ``LeadflowError``) at INFO,
    once: an operation that another one calls is part of it. The logger is the service module's own."""

    @functools.wraps(method)
    def logged(*args: P.args, **kwargs: P.kwargs) -> R:
        service = args[0]
        assert isinstance(service, Service)
        ctx = service.ctx
        logger = logging.getLogger(type(service).__module__)
        logger.debug("%s: %s.%s", ctx.user_name, service.name, method.__name__)
        ctx.depth += 1
        try:
            return method(*args, **kwargs)
        except LeadflowError as exc:
            if ctx.depth == 1:
                logger.info("refused %s.%s for %s: %s", service.name, method.__name__, ctx.user_name, exc)
            raise
        finally:
            ctx.depth -= 1

    return logged
