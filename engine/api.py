"""The engine's public API: every operation a person or a program may perform on leads.

The CLI, the HTTP intake and bulk jobs all call these methods, so each rule is
enforced in exactly one place. Every method runs in one database transaction
(or joins the one opened by ``Engine.transaction()``): it either commits
everything it did or leaves the database as before.

Example::

    from engine import api
    eng = api.Engine.open("sqlite:///leadflow.db", user="anna")
    lead = eng.add_lead(process="photovoltaics", name="Łukasz Żółć", phone="+48 600 100 200")
    eng.complete_task(lead["id"], "record_contact")
    eng.advance(lead["id"])
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import access, actions, clock, rules, store, views
from engine.assignment import AssignmentRules, check_named_owner, owner_of_new_lead
from engine.errors import (
    AuthenticationError,
    BatchRefused,
    InvalidInputError,
    LeadflowError,
    NotFoundError,
    PermissionDenied,
    RuleViolation,
    suggest,
)
from engine.machine import LOST, WON, ProcessMachine
from engine.rules import check_email, check_phone
from engine.rules import clean_text as _clean_text
from engine.spec import ProcessSpec
from engine.state import (
    ATTRIBUTES,
    DONE,
    OPEN,
    STATUS_LOST,
    STATUS_OPEN,
    STATUS_WON,
    Event,
    LeadState,
    apply,
    rebuild,
)
from engine.store import (
    api_tokens,
    clients,
    closures,
    lead_stages,
    lead_tasks,
    leads,
    process_versions,
    reviews,
    stage_counts,
    users,
)
from engine.store import outbox as outbox_table

USER_ROLES = ("salesperson", "manager", "admin")


def normalise_email(email: str | None) -> str | None:
    return email.strip().lower() or None if email else None


def normalise_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    digits = re.sub(r"\D", "", phone)
    if phone.strip().startswith("00"):
        digits = digits[2:]
    return digits or None


_USER_BY_NAME = sa.select(users).where(users.c.name == sa.bindparam("name"))
_CLIENT_BY_ID = sa.select(clients).where(clients.c.id == sa.bindparam("id"))


class Engine:
    """leadflow's engine over one database, acting as one user."""

    def __init__(self, db: sa.Engine, user: str | None = None):
        self.db = db
        self.user_name = user or os.environ.get("LEADFLOW_USER") or _os_login()
        self._conn: Connection | None = None
        self._specs: dict[tuple[str, int], ProcessSpec] = {}
        self._machines: dict[tuple[str, int], ProcessMachine] = {}

    @classmethod
    def open(cls, url: str | None = None, *, user: str | None = None) -> Engine:
        """Open the database at ``url`` (default ``LEADFLOW_DB`` or ``sqlite:///leadflow.db``)."""
        return cls(store.create_db_engine(url or os.environ.get("LEADFLOW_DB")), user=user)

    def close(self) -> None:
        """Release the database connections (closing a *lead* is ``close_lead``)."""
        self.db.dispose()

    def as_user(self, name: str) -> Engine:
        """The same database, acting as another user (shares the caches)."""
        other = Engine(self.db, user=name)
        other._specs = self._specs
        other._machines = self._machines
        return other

    # -- transactions ------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction for everything inside; engine calls made inside join it."""
        if self._conn is not None:
            yield self._conn
            return
        try:
            with self.db.begin() as conn:
                self._conn = conn
                yield conn
        except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
            problem = self._schema_problem(exc)
            if problem is not None:
                raise LeadflowError(problem) from None
            raise
        finally:
            self._conn = None

    def _schema_problem(self, exc: Exception) -> str | None:
        """What a missing table or column means for the user: no schema yet, or one an upgrade would fix."""
        text = str(exc)
        if not any(sign in text for sign in ("no such table", "no such column", "does not exist")):
            return None
        from engine import migrate

        current, head = migrate.current_revision(self.db), migrate.head_revision()
        if current is None:
            return "the database has no leadflow schema; run 'leadflow init' first"
        if current != head:
            return (f"the database's schema is at revision {current}, this leadflow needs {head}; an admin runs "
                    "'leadflow init' to upgrade it")
        return None

    # -- schema and users ----------------------------------------------------------------------
    def init(self) -> dict[str, Any]:
        """Create or upgrade the schema; on an empty database make the acting user its first admin."""
        from engine import migrate

        if migrate.current_revision(self.db) is not None:
            with self.transaction() as conn:
                if conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one():
                    # only the columns of the first schema: later revisions add some (users.email in 0004)
                    row = conn.execute(sa.select(users.c.name, users.c.role, users.c.team)
                                       .where(users.c.name == self.user_name)).mappings().first()
                    if row is None:
                        raise self._not_registered()
                    access.require_admin(row, "upgrade the database")
        migrate.upgrade(self.db)
        with self.transaction() as conn:
            first = conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one() == 0
            if first:
                conn.execute(sa.insert(users).values(name=self.user_name, role="admin", team=None,
                                                     created_at=clock.now()))
            # leads without their rows of the reports' projection (a database from before it, or CSV imports
            # before they wrote it): rebuild it from the event log
            if conn.execute(sa.select(leads.c.id).where(~sa.exists(
                    sa.select(lead_stages.c.lead_id).where(lead_stages.c.lead_id == leads.c.id))).limit(1)).first():
                store.rebuild_stages(conn, self._specs_lookup(conn))
        return {"revision": migrate.current_revision(self.db), "admin_created": self.user_name if first else None}

    def add_user(self, name: str, role: str, team: str | None = None, email: str | None = None) -> dict[str, Any]:
        """Register a user (admins); ``email`` is where their reminders and their role's e-mails go."""
        with self.transaction() as conn:
            access.require_admin(self._actor(conn), "add users")
            name_ = _clean_text(name, "user name", 200)
            if not name_:
                raise InvalidInputError("user name must not be empty")
            if role not in USER_ROLES:
                departments = self._declared_roles(conn)
                if role not in departments:
                    known = [*USER_ROLES, *sorted(departments)]
                    raise InvalidInputError(
                        f"role '{role}' is neither a user role ({', '.join(USER_ROLES)}) nor a department declared "
                        f"in a loaded process ({', '.join(sorted(departments)) or 'none loaded'})"
                        f"{suggest(role, known)}"
                    )
            if conn.execute(sa.select(users.c.id).where(users.c.name == name_)).first():
                raise RuleViolation(f"user '{name_}' already exists")
            conn.execute(sa.insert(users).values(name=name_, role=role, team=_clean_text(team, "team", 200),
                                                 email=check_email(email, f"e-mail of {name_}"),
                                                 created_at=clock.now()))
            return views.user(self._user(conn, name_))

    def set_user_email(self, name: str, email: str | None) -> dict[str, Any]:
        """Set (or, with None or an empty text, remove) a user's e-mail address (admins)."""
        with self.transaction() as conn:
            access.require_admin(self._actor(conn), "change users")
            person = self._user(conn, name)
            conn.execute(sa.update(users).where(users.c.id == person["id"]).values(
                email=check_email(email, f"e-mail of {person['name']}")))
            return views.user(self._user(conn, person["name"]))

    def list_users(self) -> list[dict[str, Any]]:
        with self.transaction() as conn:
            self._actor(conn)
            rows = conn.execute(sa.select(users).order_by(users.c.name)).mappings()
            return [views.user(r) for r in rows]

    def whoami(self) -> dict[str, Any]:
        with self.transaction() as conn:
            return views.user(self._actor(conn))

    # -- processes ------------------------------------------------------------------------------
    def load_process(self, path: str | Path) -> dict[str, Any]:
        """Validate and store a process file; a changed file becomes a new version, an unchanged one nothing."""
        from engine.loader import load_file

        spec = load_file(path)
        with self.transaction() as conn:
            access.require_admin(self._actor(conn), "load processes")
            existing = conn.execute(
                sa.select(process_versions.c.version).where(
                    process_versions.c.process == spec.id, process_versions.c.content_hash == spec.content_hash
                )
            ).first()
            if existing:
                return {"process": spec.id, "version": existing[0], "created": False, "hash": spec.content_hash}
            latest = conn.execute(
                sa.select(sa.func.max(process_versions.c.version)).where(process_versions.c.process == spec.id)
            ).scalar()
            version = (latest or 0) + 1
            conn.execute(sa.insert(process_versions).values(
                process=spec.id, version=version, content_hash=spec.content_hash, title=spec.title,
                spec_json=spec.canonical_json(), source_path=str(path), loaded_at=clock.now(),
                loaded_by=self.user_name))
            return {"process": spec.id, "version": version, "created": True, "hash": spec.content_hash}

    def list_processes(self) -> list[dict[str, Any]]:
        with self.transaction() as conn:
            self._actor(conn)
            counts = {
                (p, v): n
                for p, v, n in conn.execute(
                    sa.select(leads.c.process, leads.c.process_version, sa.func.count())
                    .where(leads.c.status == STATUS_OPEN)
                    .group_by(leads.c.process, leads.c.process_version)
                )
            }
            rows = conn.execute(
                sa.select(process_versions).order_by(process_versions.c.process, process_versions.c.version)
            ).mappings()
            return [
                {"process": r["process"], "version": r["version"], "title": r["title"], "hash": r["content_hash"],
                 "loaded_at": views.iso(r["loaded_at"]), "loaded_by": r["loaded_by"],
                 "open_leads": counts.get((r["process"], r["version"]), 0)}
                for r in rows
            ]

    def spec(self, process: str, version: int | None = None) -> ProcessSpec:
        """The spec of a stored process version (the newest when ``version`` is None)."""
        with self.transaction() as conn:
            return self._spec(conn, process, version)

    def _spec(self, conn: Connection, process: str, version: int | None = None) -> ProcessSpec:
        if version is not None and (process, version) in self._specs:
            return self._specs[(process, version)]
        query = sa.select(process_versions.c.version, process_versions.c.spec_json).where(
            process_versions.c.process == process)
        query = query.where(process_versions.c.version == version) if version is not None else query.order_by(
            process_versions.c.version.desc()).limit(1)
        row = conn.execute(query).first()
        if row is None:
            loaded = sorted({r[0] for r in conn.execute(sa.select(process_versions.c.process))})
            if version is not None and process in loaded:
                raise NotFoundError(f"process '{process}' has no version {version}")
            raise NotFoundError(f"process '{process}' is not loaded{suggest(process, loaded)}; loaded processes: "
                                f"{', '.join(loaded) or 'none (run leadflow process load PATH)'}")
        key = (process, row[0])
        if key not in self._specs:
            self._specs[key] = ProcessSpec.from_dict(json.loads(row[1]))
        return self._specs[key]

    def _machine(self, spec: ProcessSpec, version: int) -> ProcessMachine:
        key = (spec.id, version)
        if key not in self._machines:
            self._machines[key] = ProcessMachine(spec)
        return self._machines[key]

    def migrate_process(self, process: str, to_version: int, *, dry_run: bool = False) -> dict[str, Any]:
        """Move every open lead of ``process`` to ``to_version``; refuses (moving none) if any cannot move."""
        with self.transaction() as conn:
            access.require_admin(self._actor(conn), "migrate processes")
            target = self._spec(conn, process, to_version)
            ids = [r[0] for r in conn.execute(
                sa.select(leads.c.id).where(leads.c.process == process, leads.c.status == STATUS_OPEN,
                                            leads.c.process_version != to_version).order_by(leads.c.id))]
            blockers = []
            for lead_id in ids:
                state = self._lead(conn, lead_id)
                stage = target.stage(state.stage)
                if stage is None:
                    blockers.append(f"lead {lead_id} is in stage '{state.stage}', which version {to_version} lacks")
                    continue
                done = [tid for tid, st in state.stage_tasks().items() if st == DONE]
                lost = [tid for tid in done if stage.task(tid) is None]
                if lost:
                    blockers.append(f"lead {lead_id} has completed tasks {', '.join(lost)} that stage "
                                    f"'{stage.id}' of version {to_version} lacks")
            if blockers:
                raise RuleViolation(f"can't migrate {process} to version {to_version}: " + "; ".join(blockers))
            if not dry_run:
                for lead_id in ids:
                    state = self._lead(conn, lead_id)
                    self._commit(conn, state, [self._event("migrated", {
                        "from_version": state.process_version, "to_version": to_version})])
            return {"process": process, "to_version": to_version, "leads": ids, "dry_run": dry_run}

    # -- leads ---------------------------------------------------------------------------------
    def add_lead(
        self,
        *,
        process: str,
        name: str,
        company: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        source: str | None = None,
        product: str | None = None,
        value: str | float | int | None = None,
        owner: str | None = None,
        fields: dict[str, Any] | None = None,
        client_id: int | None = None,
    ) -> dict[str, Any]:
        """Register an inquiry as a lead at the process's first stage (every inquiry is a lead)."""
        with self.transaction() as conn:
            actor = self._actor(conn)
            spec = self._spec(conn, process)
            version = self._version_of(conn, spec)
            owner_name = owner if owner is not None else (actor["name"] if actor["role"] == "salesperson" else None)
            named = None
            if owner_name is not None:
                named = self._user(conn, owner_name)
                check_named_owner(actor, named, "add a lead")
            elif actor["role"] not in access.ADDERS:
                raise PermissionDenied(f"user '{actor['name']}' ({actor['role']}) may not add leads")
            typed = self._typed_fields(spec, fields or {})
            value_minor = rules.money_to_minor(rules.parse_money(value)) if value not in (None, "") else None
            if client_id is None:
                client_id = self._new_client(conn, name=name, company=company, email=email, phone=phone)
            else:
                self._visible_client_leads(conn, actor, client_id)  # may this user work with the client at all?
            product = _clean_text(product, "product", 200)
            assignment_rules = AssignmentRules(conn, spec)
            placed = owner_of_new_lead(actor, named, spec, product, typed, assignment_rules)
            created = self._event("created", {
                "client_id": client_id, "process": spec.id, "process_version": version, "owner": placed.owner,
                "team": placed.team, "source": _clean_text(source, "source", 200),
                "product": product, "value_minor": value_minor, "fields": typed})
            if placed.assignment is not None:
                created.data["assignment"] = placed.assignment
            assignment_rules.save()
            state = apply(None, created, self._specs_lookup(conn))
            (state.id,) = store.reserve_ids(conn, leads, 1)
            entry = actions.on_enter(spec, state, created.at)
            entry.record_on(created)
            store.write_leads(conn, [store.LeadChange(None, state, [created])])
            actions.store(conn, [entry])
            return self._view(conn, state)

    def get_lead(self, lead_id: int) -> dict[str, Any]:
        """The lead as JSON-able data (the shape documented in docs/cli.md), with the client's other leads."""
        with self.transaction() as conn:
            state = self._lead(conn, lead_id)
            access.require_can_view(self._actor(conn), state)
            view = self._view(conn, state)
            view["client_leads"] = [
                {"id": r.id, "process": r.process, "status": r.status, "stage": r.stage, "owner": r.owner,
                 "created_at": views.iso(r.created_at), "closed_at": views.iso(r.closed_at),
                 "close_reason": r.close_reason}
                for r in conn.execute(
                    sa.select(leads.c.id, leads.c.process, leads.c.status, leads.c.stage, leads.c.owner,
                              leads.c.created_at, leads.c.closed_at, leads.c.close_reason)
                    .where(leads.c.client_id == state.client_id, leads.c.id != lead_id).order_by(leads.c.id))
            ]
            return view

    def list_leads(self, *, process: str | None = None, stage: str | None = None, owner: str | None = None,
                   status: str | None = None, unassigned: bool = False, limit: int = 1000) -> list[dict[str, Any]]:
        """Leads the acting user may see; ``unassigned``: the manager's queue (open leads without an owner,
        unless ``status`` says otherwise)."""
        if unassigned and owner:
            raise InvalidInputError("a lead without an owner has no owner to filter by; give the owner or "
                                    "ask for unassigned leads, not both")
        with self.transaction() as conn:
            actor = self._actor(conn)
            query = sa.select(leads, clients.c.name.label("client_name"), clients.c.company).join(
                clients, clients.c.id == leads.c.client_id)
            if process:
                self._spec(conn, process)
                query = query.where(leads.c.process == process)
            if stage:
                query = query.where(leads.c.stage == stage)
            if status:
                if status not in (STATUS_OPEN, STATUS_WON, STATUS_LOST):
                    raise InvalidInputError(f"status '{status}' is not one of: open, won, lost")
                query = query.where(leads.c.status == status)
            if owner:
                query = query.where(leads.c.owner == owner)
            if unassigned:
                query = query.where(leads.c.owner.is_(None))
                if not status:
                    query = query.where(leads.c.status == STATUS_OPEN)
            query = access.visible_leads(actor, query)
            rows = conn.execute(query.order_by(leads.c.id).limit(limit)).mappings()
            return [views.lead_row(r) for r in rows]

    def set_fields(self, lead_id: int, values: dict[str, Any]) -> dict[str, Any]:
        """Set process fields (typed by the process) or the attributes value, product, source."""
        if not values:
            raise InvalidInputError("nothing to set; give FIELD=VALUE")
        with self.transaction() as conn:
            state = self._lead(conn, lead_id)
            spec = self._spec(conn, state.process, state.process_version)
            self._require_open(state, "edit")
            access.require_can_work(self._actor(conn), state, "edit")
            evs = []
            for name, raw in values.items():
                if name in ATTRIBUTES:
                    before = state.value_minor if name == "value" else getattr(state, name)
                    if name == "value":
                        after: Any = rules.money_to_minor(rules.parse_money(raw)) if raw not in (None, "") else None
                    else:
                        after = _clean_text(None if raw is None else str(raw), name, 200)
                else:
                    field = spec.field_spec(name)
                    if field is None:
                        known = [f.id for f in spec.fields]
                        raise InvalidInputError(
                            f"lead {lead_id}: '{name}' is not a field of process {spec.id}{suggest(name, known)}; "
                            f"fields: {', '.join(known) or 'none'} (and the attributes {', '.join(ATTRIBUTES)})")
                    before = state.fields.get(name)
                    after = rules.coerce_field(field, raw)
                if before != after:
                    evs.append(self._event("field_set", {"field": name, "before": before, "after": after,
                                                         **({"attribute": True} if name in ATTRIBUTES else {})}))
            return self._commit(conn, state, evs)

    def assign(self, lead_id: int, to: str) -> dict[str, Any]:
        with self.transaction() as conn:
            actor = self._actor(conn)
            state = self._lead(conn, lead_id)
            self._require_open(state, "reassign")
            target = self._user(conn, to)
            access.require_can_own(target)
            access.require_manager_of(actor, state.team, f"reassign lead {lead_id}")
            access.require_manager_of(actor, target["team"], f"assign a lead to {to}")
            if state.owner == to:
                return self._view(conn, state)
            return self._commit(conn, state, [self._event("assigned", {
                "from": state.owner, "to": to, "team": target["team"]})])

    def advance(self, lead_id: int, to: str | None = None) -> dict[str, Any]:
        """Move the lead to its next stage (or ``to``), if the process allows it now."""
        with self.transaction() as conn:
            state = self._lead(conn, lead_id)
            spec = self._spec(conn, state.process, state.process_version)
            move = self._machine(spec, state.process_version).fire
            kind, data = self._advancing(state, spec, lambda: self._actor(conn), to, move)
            return self._commit(conn, state, [self._event(kind, data)])

    def _advancing(self, state: LeadState, spec: ProcessSpec, actor: Callable[[], Any], to: str | None,
                   move: _Move) -> tuple[str, dict[str, Any]]:
        """The ``advanced`` event's kind and data, or the error that refuses the move (``advance``'s rules)."""
        lead_id = state.id
        self._require_open(state, "advance")
        access.require_can_work(actor(), state, "advance")
        stage = spec.stage(state.stage)
        assert stage is not None
        if not stage.next:
            raise RuleViolation(f"lead {lead_id} is in '{stage.id}', the last stage; "
                                f"win it with 'leadflow lead win {lead_id}' or close it with a reason")
        if to is not None:
            if spec.stage(to) is None:
                raise NotFoundError(f"stage '{to}' does not exist in process {spec.id}"
                                    f"{suggest(to, spec.stage_ids)}; stages: {', '.join(spec.stage_ids)}")
            targets = [n for n in stage.next if n.stage == to]
            if not targets:
                raise RuleViolation(f"can't advance lead {lead_id} from '{stage.id}' to '{to}': the process "
                                    f"allows only {', '.join(n.stage for n in stage.next)}")
        else:
            targets = list(stage.next)
        self._require_can_leave(state, spec)
        for nxt in targets:
            if move(state.stage, f"advance_to_{nxt.stage}", state.fields) == nxt.stage:
                return "advanced", {"from": stage.id, "to": nxt.stage}
        from engine.render import condition_text

        blocked = "; ".join(f"'{n.stage}' needs {condition_text(n.when)}" for n in targets if n.when)
        raise RuleViolation(f"can't advance lead {lead_id} from '{stage.id}': no allowed next stage applies "
                            f"to this lead's fields ({blocked})")

    def win(self, lead_id: int) -> dict[str, Any]:
        with self.transaction() as conn:
            state = self._lead(conn, lead_id)
            spec = self._spec(conn, state.process, state.process_version)
            move = self._machine(spec, state.process_version).fire
            kind, data = self._winning(state, spec, lambda: self._actor(conn), move)
            return self._commit(conn, state, [self._event(kind, data)])

    def _winning(self, state: LeadState, spec: ProcessSpec, actor: Callable[[], Any],
                 move: _Move) -> tuple[str, dict[str, Any]]:
        lead_id = state.id
        self._require_open(state, "win")
        access.require_can_work(actor(), state, "win")
        if state.stage != spec.won_stage:
            raise RuleViolation(f"can't win lead {lead_id} in '{state.stage}': a sale is won by completing "
                                f"'{spec.won_stage}' ({spec.stage(spec.won_stage).name})")  # type: ignore[union-attr]
        self._require_can_leave(state, spec)
        if move(state.stage, "win", state.fields) != WON:
            raise RuleViolation(f"the process does not allow winning lead {lead_id} from '{state.stage}'")
        return "won", {"from": state.stage}

    def close_lead(self, lead_id: int, reason: str, note: str | None = None) -> dict[str, Any]:
        """Close the lead as lost or removed, for a reason from the process's catalogue."""
        with self.transaction() as conn:
            state = self._lead(conn, lead_id)
            spec = self._spec(conn, state.process, state.process_version)
            self._require_open(state, "close")
            access.require_can_work(self._actor(conn), state, "close")
            entry = spec.reason(reason or "")
            if entry is None:
                listed = ", ".join(f"{r.id} ({r.label})" for r in spec.closure_reasons)
                raise RuleViolation(f"can't close lead {lead_id}: '{reason}' is not a closure reason of process "
                                    f"{spec.id}{suggest(reason or '', [r.id for r in spec.closure_reasons])}; "
                                    f"valid reasons: {listed}")
            if self._machine(spec, state.process_version).fire(state.stage, "close", state.fields) != LOST:
                raise RuleViolation(f"the process does not allow closing lead {lead_id} from '{state.stage}'")
            conn.execute(sa.insert(closures).values(
                lead_id=lead_id, client_id=state.client_id, process=state.process, reason=entry.id, kind=entry.kind,
                owner=state.owner, team=state.team, product=state.product, value_minor=state.value_minor,
                stage=state.stage, closed_at=clock.now()))
            if entry.review:
                conn.execute(sa.insert(reviews).values(lead_id=lead_id, team=state.team, reason=entry.id,
                                                       requested_at=clock.now(), state="open"))
            return self._commit(conn, state, [self._event("closed", {
                "reason": entry.id, "kind": entry.kind, "note": _clean_text(note, "note", 5000),
                "from": state.stage, "review": entry.review})])

    def reopen(self, lead_id: int, stage: str | None = None) -> dict[str, Any]:
        """Reopen a won or lost lead into ``stage`` (default: the stage it was closed in, work kept)."""
        with self.transaction() as conn:
            actor = self._actor(conn)
            state = self._lead(conn, lead_id)
            spec = self._spec(conn, state.process, state.process_version)
            if state.status == STATUS_OPEN:
                raise RuleViolation(f"lead {lead_id} is open in '{state.stage}'; only won or lost leads reopen")
            access.require_manager_of(actor, state.team, f"reopen lead {lead_id}")
            target = stage or state.closed_from_stage or state.stage
            if spec.stage(target) is None:
                raise NotFoundError(f"stage '{target}' does not exist in process {spec.id}"
                                    f"{suggest(target, spec.stage_ids)}; stages: {', '.join(spec.stage_ids)}")
            if self._machine(spec, state.process_version).fire(state.status, f"reopen_to_{target}",
                                                                state.fields) != target:
                raise RuleViolation(f"the process does not allow reopening lead {lead_id} into '{target}'")
            conn.execute(sa.update(closures).where(closures.c.lead_id == lead_id, closures.c.reopened_at.is_(None))
                         .values(reopened_at=clock.now()))
            # a refusal reopened by other means than the director's decision no longer waits for one
            conn.execute(sa.update(reviews).where(reviews.c.lead_id == lead_id, reviews.c.state == "open")
                         .values(state="superseded", decided_by=actor["name"], decided_at=clock.now(),
                                 note="the lead was reopened"))
            return self._commit(conn, state, [self._event("reopened", {
                "to": target, "from_status": state.status, "resume": target == state.stage})])

    def complete_task(self, lead_id: int, task_id: str, note: str | None = None) -> dict[str, Any]:
        with self.transaction() as conn:
            state = self._lead(conn, lead_id)
            spec = self._spec(conn, state.process, state.process_version)
            kind, data = self._completing(state, spec, lambda: self._actor(conn), task_id, note)
            return self._commit(conn, state, [self._event(kind, data)])

    def _completing(self, state: LeadState, spec: ProcessSpec, actor: Callable[[], Any], task_id: str,
                    note: str | None) -> tuple[str, dict[str, Any]]:
        lead_id = state.id
        self._require_open(state, "complete tasks of")
        stage = spec.stage(state.stage)
        assert stage is not None
        task = stage.task(task_id)
        if task is None or (state.stage, task_id) not in state.tasks:
            known = [t.id for t in stage.all_tasks]
            raise NotFoundError(f"lead {lead_id} has no task '{task_id}' in its current stage '{stage.id}'"
                                f"{suggest(task_id, known)}; tasks: {', '.join(known) or 'none'}")
        access.require_can_do_task(actor(), state, task, spec)
        current = state.tasks[(state.stage, task_id)]
        if current.state == DONE:
            raise RuleViolation(f"task '{task_id}' of lead {lead_id} is already done "
                                f"(by {current.done_by} at {views.iso(current.done_at)})")
        if current.state != OPEN:
            raise RuleViolation(f"task '{task_id}' does not apply to lead {lead_id}: its condition "
                                f"({_cond(task.when)}) is false for this lead's fields")
        return "task_done", {"stage": state.stage, "task": task_id, "note": _clean_text(note, "note", 5000)}

    # -- many leads at once ----------------------------------------------------------------------
    def complete_tasks_many(self, lead_ids: Sequence[int], task_id: str, *, note: str | None = None,
                            on_refusal: str = "abort") -> dict[str, Any]:
        """``complete_task`` for many leads in one transaction, written set-based (docs/api.md).

        Each lead is checked by exactly the rules of the one-lead call. ``on_refusal="abort"`` (the default)
        writes nothing if any lead is refused and raises ``BatchRefused`` listing every refusal;
        ``"skip"`` writes the others and reports the refused ones. Returns ``{"action", "done", "refused"}``.
        """
        note_ = _clean_text(note, "note", 5000)
        return self._many("complete_task", lead_ids, on_refusal, lambda state, spec, actor, _: self._completing(
            state, spec, actor, task_id, note_))

    def advance_many(self, lead_ids: Sequence[int], *, to: str | None = None,
                     on_refusal: str = "abort") -> dict[str, Any]:
        """``advance`` for many leads in one transaction, written set-based; see ``complete_tasks_many``."""
        return self._many("advance", lead_ids, on_refusal, lambda state, spec, actor, move: self._advancing(
            state, spec, actor, to, move))

    def win_many(self, lead_ids: Sequence[int], *, on_refusal: str = "abort") -> dict[str, Any]:
        """``win`` for many leads in one transaction, written set-based; see ``complete_tasks_many``."""
        return self._many("win", lead_ids, on_refusal, self._winning)

    def _many(self, action: str, lead_ids: Sequence[int], on_refusal: str,
              check: Callable[[LeadState, ProcessSpec, Callable[[], Any], _Move], tuple[str, dict[str, Any]]]
              ) -> dict[str, Any]:
        """Check every lead as the one-lead call does, apply each accepted event with ``apply``, and write all
        the leads and their events with ``store.write_leads``."""
        if on_refusal not in ("abort", "skip"):
            raise InvalidInputError(f"on_refusal '{on_refusal}' is not one of: abort, skip")
        ids = _batch_ids(lead_ids)
        with self.transaction() as conn:
            actor = self._actor(conn)
            states = store.read_leads(conn, ids)
            lookup = self._specs_lookup(conn)
            at = clock.now()
            changes: list[store.LeadChange] = []
            entries = []
            refused: list[dict[str, Any]] = []
            for lead_id in ids:
                state = states.get(lead_id)
                try:
                    if state is None:
                        raise NotFoundError(f"lead {lead_id} does not exist")
                    spec = lookup(state.process, state.process_version)
                    # the precomputed table of the process's machine: the same answers (tests/test_machine.py)
                    kind, data = check(state, spec, lambda: actor, self._machine(spec, state.process_version).allowed)
                except LeadflowError as exc:
                    refused.append({"lead_id": lead_id, "error": type(exc).__name__, "reason": str(exc)})
                    continue
                ev = Event(kind=kind, at=at, actor=self.user_name, data=data)
                after = apply(state.clone(), ev, lookup)
                if kind in actions.ENTERING:
                    entry = actions.on_enter(spec, after, at)
                    entry.record_on(ev)
                    entries.append(entry)
                changes.append(store.LeadChange(state, after, [ev]))
            if refused and on_refusal == "abort":
                raise BatchRefused(_VERBS[action], len(ids), refused)
            store.write_leads(conn, changes)
            actions.store(conn, entries)
            return {"action": action, "done": [change.after.id for change in changes], "refused": refused}

    def history(self, lead_id: int) -> list[dict[str, Any]]:
        with self.transaction() as conn:
            state = self._lead(conn, lead_id)
            access.require_can_view(self._actor(conn), state)
            return [views.event(e) for e in store.read_events(conn, lead_id)]

    def rebuild_lead(self, lead_id: int) -> LeadState:
        """The lead's state replayed from its event log (equal to the stored state)."""
        with self.transaction() as conn:
            self._lead(conn, lead_id)
            return rebuild(store.read_events(conn, lead_id), self._specs_lookup(conn))

    def rebuild_stages(self) -> dict[str, Any]:
        """Admins: rebuild the funnel's projection (which stages each lead reached, and for how long) from the
        event log, e.g. after a bulk load that bypassed the engine. Returns the number of rows written."""
        with self.transaction() as conn:
            access.require_admin(self._actor(conn), "rebuild the reports' projection")
            return {"rows": store.rebuild_stages(conn, self._specs_lookup(conn))}

    def stored_lead(self, lead_id: int) -> LeadState:
        with self.transaction() as conn:
            return self._lead(conn, lead_id)

    def list_tasks(self, *, owner: str | None = None, include_all: bool = False) -> list[dict[str, Any]]:
        """Open tasks of open leads that ``owner`` (default: the acting user) is expected to do, by deadline."""
        with self.transaction() as conn:
            actor = self._actor(conn)
            who = self._user(conn, owner) if owner else actor
            if who["name"] != actor["name"]:
                access.require_manager_of(actor, who["team"], f"see the tasks of {who['name']}")
            query = (
                sa.select(lead_tasks, leads.c.process, leads.c.process_version, leads.c.owner, leads.c.team,
                          clients.c.name.label("client_name"))
                .join(leads, leads.c.id == lead_tasks.c.lead_id)
                .join(clients, clients.c.id == leads.c.client_id)
                .where(lead_tasks.c.state == OPEN, leads.c.status == STATUS_OPEN,
                       lead_tasks.c.stage == leads.c.stage)
                .order_by(lead_tasks.c.due_at, lead_tasks.c.lead_id)
            )
            if who["role"] == "salesperson":
                query = query.where(leads.c.owner == who["name"])
            elif who["role"] in access.MANAGERS:
                if who["team"] and not include_all:
                    query = query.where(leads.c.team == who["team"])
            elif who["team"]:
                query = query.where(leads.c.team == who["team"])
            if who["role"] not in access.MANAGERS:
                # Which tasks are theirs is a property of the process versions: select exactly those
                # (process, version, stage, task) in SQL instead of filtering every open task in Python.
                theirs = [(spec.id, version, stage.id, task.id) for version, spec in self._all_specs(conn)
                          for stage in spec.stages for task in stage.all_tasks
                          if task.owner == who["role"]
                          or (who["role"] == "salesperson" and task.owner == spec.owner_role)]
                if not theirs:
                    return []
                query = query.where(sa.tuple_(leads.c.process, leads.c.process_version, lead_tasks.c.stage,
                                              lead_tasks.c.task_id).in_(theirs))
            now = clock.now()
            out = []
            for row in conn.execute(query).mappings():
                spec = self._spec(conn, row["process"], row["process_version"])
                task = spec.stage(row["stage"]).task(row["task_id"])  # type: ignore[union-attr]
                assert task is not None
                out.append(views.task_row(row, task, spec, now))
            if who["role"] in access.MANAGERS and who["name"] == actor["name"]:
                # the director's refusal reviews are tasks too
                out.extend(views.review_task(r, now) for r in self.list_reviews())
                out.sort(key=lambda t: (t["due_at"] or "", t["lead_id"]))
            return out

    def client(self, client_id: int) -> dict[str, Any]:
        """A client with all its leads the acting user may see, past and present."""
        with self.transaction() as conn:
            actor = self._actor(conn)
            row, states = self._visible_client_leads(conn, actor, client_id)
            return views.client(row, [self._view(conn, s) for s in states])

    def _visible_client_leads(self, conn: Connection, actor: Any, client_id: int) -> tuple[Any, list[LeadState]]:
        """The client and its whole history, for anyone who may see one of its leads (the salesperson who takes
        a client over sees everything that happened before); refused when they may see none. A client with no
        lead at all belongs to nobody yet."""
        row = conn.execute(sa.select(clients).where(clients.c.id == client_id)).mappings().first() if (
            0 < client_id < 2**63) else None
        if row is None:
            raise NotFoundError(f"client {client_id} does not exist")
        ids = [r[0] for r in conn.execute(sa.select(leads.c.id).where(leads.c.client_id == client_id)
                                            .order_by(leads.c.id))]
        states = [self._lead(conn, i) for i in ids]
        if states and not any(access.can_view(actor, s) for s in states):
            raise PermissionDenied(f"user '{actor['name']}' ({actor['role']}) may not see client {client_id}: "
                                   "none of its leads is theirs to see")
        return row, states

    # -- the manager's views ---------------------------------------------------------------------
    def board(self, *, process: str | None = None, owner: str | None = None, team: str | None = None,
              light: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """One board per process (or only ``process``): open leads by stage with their lights, as of now.

        A salesperson sees their own leads; a manager their team (or ``team``/``owner`` within it).
        """
        from engine import board

        if light is not None and light not in board.LIGHTS:
            raise InvalidInputError(f"light '{light}' is not one of: red, yellow, green")
        if limit < 0:
            raise InvalidInputError("the number of leads listed per stage cannot be negative")
        with self.transaction() as conn:
            actor = self._actor(conn)
            scope = self._scope(conn, actor, owner=owner, team=team)
            now = clock.now()
            if process is not None:
                names = [self._spec(conn, process).id]
            else:
                names = [r[0] for r in conn.execute(
                    sa.select(stage_counts.c.process).where(stage_counts.c.leads > 0, *scope.on_counts())
                    .distinct().order_by(stage_counts.c.process))]
            return [board.board(conn, self._spec(conn, name), now, scope, light=light, limit=limit)
                    for name in names]

    def daily(self, *, owner: str | None = None, team: str | None = None) -> dict[str, Any]:
        """The stand-up agenda per salesperson: red items, due today and next, revisits, new leads, done."""
        from engine import board

        with self.transaction() as conn:
            actor = self._actor(conn)
            now = clock.now()
            wanted: str | None = None
            if owner is not None:
                person = self._user(conn, owner)
                if person["name"] != actor["name"]:
                    access.require_manager_of(actor, person["team"], f"see the agenda of {owner}")
                people = [person["name"]]
            elif actor["role"] == "salesperson":
                people = [actor["name"]]
            else:
                wanted = team if team is not None else actor["team"]
                if wanted is not None:
                    access.require_manager_of(actor, wanted, f"see the agenda of team {wanted}")
                query = sa.select(users.c.name).where(users.c.role == "salesperson").order_by(users.c.name)
                if wanted is not None:
                    query = query.where(users.c.team == wanted)
                people = [r[0] for r in conn.execute(query)]
            specs = self._all_specs(conn)
            agenda: dict[str, Any] = {
                "as_of": now.isoformat(),
                "people": [board.daily_for(conn, p, now, self._main_calendar(conn, p), specs) for p in people]}
            if actor["role"] in access.MANAGERS and owner is None:
                agenda["reviews"] = self.list_reviews()
                # leads no assignment rule could place wait for the manager to give them to someone
                agenda["unassigned"] = board.unassigned(conn, wanted, now)
            return agenda

    def _scope(self, conn: Connection, actor: Any, *, owner: str | None, team: str | None) -> Any:
        """Whose leads the actor asked to see, checked against what they may see."""
        from engine.board import Scope

        if actor["role"] == "salesperson":
            if owner not in (None, actor["name"]) or team not in (None, actor["team"]):
                raise PermissionDenied(f"user '{actor['name']}' (salesperson) sees only their own leads")
            return Scope(owner=actor["name"])
        if actor["role"] == access.INTAKE:  # an integrator's token made with --read: every lead
            if owner is not None:
                self._user(conn, owner)
            return Scope(team=team, owner=owner)
        if actor["role"] not in ("manager", "admin"):
            raise PermissionDenied(f"user '{actor['name']}' ({actor['role']}) has no board; boards are for "
                                   "salespeople and managers")
        if owner is not None:
            person = self._user(conn, owner)
            access.require_manager_of(actor, person["team"], f"see the leads of {owner}")
        wanted = team if team is not None else (actor["team"] if actor["role"] == "manager" else None)
        if wanted is not None:
            access.require_manager_of(actor, wanted, f"see team {wanted}")
        return Scope(team=wanted, owner=owner)

    def _all_specs(self, conn: Connection) -> list[tuple[int, ProcessSpec]]:
        rows = conn.execute(sa.select(process_versions.c.process, process_versions.c.version)).all()
        return [(v, self._spec(conn, p, v)) for p, v in rows]

    def _main_calendar(self, conn: Connection, owner: str) -> str:
        """The calendar of the process holding most of ``owner``'s open leads (their working days)."""
        row = conn.execute(sa.select(leads.c.process).where(leads.c.status == STATUS_OPEN, leads.c.owner == owner)
                           .group_by(leads.c.process).order_by(sa.func.count().desc(), leads.c.process)
                           .limit(1)).first()
        if row is None:
            row = conn.execute(sa.select(process_versions.c.process).limit(1)).first()
        return self._spec(conn, row[0]).calendar if row else "PL"

    # -- the recovery loop ---------------------------------------------------------------------
    def list_reviews(self, *, state: str | None = "open") -> list[dict[str, Any]]:
        """Refusal reviews of the director's team (all teams for an admin or a manager without one)."""
        with self.transaction() as conn:
            actor = self._actor(conn)
            if actor["role"] not in access.MANAGERS:
                raise PermissionDenied(f"user '{actor['name']}' ({actor['role']}) may not see refusal reviews: "
                                       "they are the sales director's")
            query = (sa.select(reviews, leads.c.process, leads.c.owner, leads.c.value_minor, leads.c.close_note,
                               leads.c.closed_from_stage, clients.c.name)
                     .join(leads, leads.c.id == reviews.c.lead_id).join(clients, clients.c.id == leads.c.client_id)
                     .order_by(reviews.c.requested_at, reviews.c.id))
            if state is not None:
                query = query.where(reviews.c.state == state)
            if actor["role"] == "manager" and actor["team"] is not None:
                query = query.where(reviews.c.team == actor["team"])
            return [views.review(r, self._review_due(conn, r)) for r in conn.execute(query).mappings()]

    def _review_due(self, conn: Connection, row: Any) -> Any:
        """A review is due two business days after the refusal, in the lead's process calendar."""
        from engine import calendar

        spec = self._spec(conn, row["process"])
        return calendar.due_at(row["requested_at"], 2, spec.calendar)

    def _review_to_decide(self, conn: Connection, lead_id: int) -> tuple[Any, LeadState, Any]:
        """The acting director, the lost lead and its open review, or the reason they may not decide it."""
        actor = self._actor(conn)
        state = self._lead(conn, lead_id)
        review = conn.execute(sa.select(reviews).where(reviews.c.lead_id == lead_id, reviews.c.state == "open")
                              .order_by(reviews.c.id.desc()).limit(1)).mappings().first()
        if review is None:
            raise RuleViolation(f"lead {lead_id} has no open refusal review")
        access.require_manager_of(actor, state.team, f"decide the review of lead {lead_id}")
        if state.status != STATUS_LOST:
            raise RuleViolation(f"lead {lead_id} is {state.status}; only a lost lead's refusal is reviewed")
        return actor, state, review

    def review_return(self, lead_id: int, *, stage: str | None = None, note: str | None = None,
                      to: str | None = None) -> dict[str, Any]:
        """The director sends the client back into the funnel: the lead reopens (and may change hands)."""
        with self.transaction() as conn:
            actor, state, review = self._review_to_decide(conn, lead_id)
            note_ = _clean_text(note, "note", 5000)
            self._commit(conn, state, [self._event("review_returned", {"note": note_, "stage": stage, "to": to})])
            self.reopen(lead_id, stage)
            if to is not None and to != state.owner:
                self.assign(lead_id, to)
            conn.execute(sa.update(reviews).where(reviews.c.id == review["id"]).values(
                state="returned", decided_by=actor["name"], decided_at=clock.now(), note=note_))
            return self._view(conn, self._lead(conn, lead_id))

    def review_confirm(self, lead_id: int, note: str) -> dict[str, Any]:
        """The director validates the refusal; the note records what was learned."""
        with self.transaction() as conn:
            actor, state, review = self._review_to_decide(conn, lead_id)
            note_ = _clean_text(note, "note", 5000)
            if not note_:
                raise InvalidInputError("confirming a refusal needs a note: what did the client say?")
            view = self._commit(conn, state, [self._event("review_confirmed", {"note": note_})])
            conn.execute(sa.update(reviews).where(reviews.c.id == review["id"]).values(
                state="confirmed", decided_by=actor["name"], decided_at=clock.now(), note=note_))
            return view

    def report(self, lead_id: int, text: str, *, extend_until: str | None = None,
               reason: str | None = None) -> dict[str, Any]:
        """The owner's short report on a lead; with ``extend_until`` (managers) the lead is not stalled until then."""
        with self.transaction() as conn:
            actor = self._actor(conn)
            state = self._lead(conn, lead_id)
            self._require_open(state, "report on")
            access.require_can_work(actor, state, "report on")
            text_ = _clean_text(text, "report", 5000)
            if not text_:
                raise InvalidInputError("the report is empty; say what happened with the client")
            evs = [self._event("reported", {"text": text_})]
            if extend_until is not None:
                access.require_manager_of(actor, state.team, f"extend lead {lead_id}")
                until = clock.parse_datetime(extend_until, what="--extend-until")
                if until.time() == dt.time(0, 0) and "T" not in extend_until:
                    until = dt.datetime.combine(until.date(), dt.time(23, 59, 59))  # a date means its whole day
                if until <= clock.now():
                    raise InvalidInputError(f"--extend-until {extend_until} is not in the future")
                reason_ = _clean_text(reason, "reason", 1000)
                if not reason_:
                    raise InvalidInputError("an extension needs an objective reason (--reason), such as a "
                                            "purchase cycle, public funding or a group decision")
                evs.append(self._event("extended", {"until": until.isoformat(), "reason": reason_}))
            elif reason is not None:
                raise InvalidInputError("--reason goes with --extend-until")
            return self._commit(conn, state, evs)

    def recall(self, lead_id: int, note: str | None = None) -> dict[str, Any]:
        """A manager takes a lead back from its owner early: the next rotation gives it to a colleague."""
        with self.transaction() as conn:
            actor = self._actor(conn)
            state = self._lead(conn, lead_id)
            self._require_open(state, "recall")
            access.require_manager_of(actor, state.team, f"recall lead {lead_id}")
            return self._commit(conn, state, [self._event("recalled", {
                "from": state.owner, "note": _clean_text(note, "note", 5000)})])

    def stalled(self, *, process: str | None = None, owner: str | None = None, team: str | None = None,
                limit: int = 1000) -> dict[str, Any]:
        """Open leads held longer than the sales cycle, idle too long, or recalled, and not extended."""
        from engine import recovery, reports

        with self.transaction() as conn:
            actor = self._actor(conn)
            scope = self._scope(conn, actor, owner=owner, team=team)
            now = clock.now()
            out: list[dict[str, Any]] = []
            cycles = {}
            for spec in self._latest_specs(conn, process):
                cycle, basis = reports.cycle_days(conn, spec)
                cycles[spec.id] = {"days": round(cycle, 1), "basis": basis}
                rows = conn.execute(
                    sa.select(leads.c.id, leads.c.client_id, clients.c.name, leads.c.process, leads.c.stage,
                              leads.c.owner, leads.c.owner_since, leads.c.last_activity_at, leads.c.recalled_at,
                              leads.c.last_report, leads.c.last_report_at, leads.c.value_minor, leads.c.rest_until)
                    .join(clients, clients.c.id == leads.c.client_id)
                    .where(recovery.stalled_conditions(spec, cycle, now), *scope.on_leads())
                    .order_by(leads.c.owner_since, leads.c.id).limit(limit)).all()
                out.extend(views.stalled(r, recovery.stalled_reason(r, spec, cycle, now), now) for r in rows)
            return {"as_of": now.isoformat(), "cycles": cycles, "leads": out}

    def rotate(self, *, process: str | None = None, team: str | None = None, dry_run: bool = False,
               memory: int | None = None) -> dict[str, Any]:
        """Give every stalled lead in scope to a colleague for a new working period (managers).

        One transaction; every move is a ``rotated`` event applied like any other. With ``dry_run``
        the plan is computed and nothing is written.
        """
        from engine import recovery, reports

        with self.transaction() as conn:
            actor = self._actor(conn)
            if actor["role"] not in access.MANAGERS:
                raise PermissionDenied(f"user '{actor['name']}' ({actor['role']}) may not rotate leads: only "
                                       "a manager or an admin may")
            scope = self._scope(conn, actor, owner=None, team=team)
            now = clock.now()
            stalled_rows: list[Any] = []
            for spec in self._latest_specs(conn, process):
                cycle, _ = reports.cycle_days(conn, spec)
                stalled_rows += conn.execute(
                    sa.select(leads.c.id, leads.c.client_id, clients.c.name, leads.c.process, leads.c.owner,
                              leads.c.team, leads.c.value_minor, *recovery.ROTATION_READS)
                    .join(clients, clients.c.id == leads.c.client_id)
                    .where(recovery.stalled_conditions(spec, cycle, now), *scope.on_leads())).all()
            moves, unplaced = recovery.plan_rotation(
                conn, stalled_rows, memory=recovery.DEFAULT_OWNER_MEMORY if memory is None else memory)
            if not dry_run and moves:
                recovery.write_rotation(conn, moves, {row.id: row for row in stalled_rows},
                                        self._specs_lookup(conn), now, self.user_name)
            return {"as_of": now.isoformat(), "dry_run": dry_run,
                    "moves": [views.move(m) for m in moves],
                    "unplaced": [{"lead_id": u.lead_id, "owner": u.from_owner, "why": u.why} for u in unplaced]}

    def revisits(self, *, process: str | None = None, owner: str | None = None,
                 team: str | None = None) -> list[dict[str, Any]]:
        """Lost leads whose revisit date has come and whose client has no newer lead."""
        from engine import revisits

        with self.transaction() as conn:
            actor = self._actor(conn)
            scope = self._scope(conn, actor, owner=owner, team=team)
            where = list(scope.on_leads())
            if process is not None:
                where.append(leads.c.process == self._spec(conn, process).id)
            query = revisits.due_revisits(self._all_specs(conn), clock.now(), where, 1000)
            return [{"lead_id": r.id, "client_id": r.client_id, "name": r.name, "process": r.process,
                     "reason": r.close_reason, "closed_at": views.iso(r.closed_at), "owner": r.owner}
                    for r in conn.execute(query)]

    def start_revisit(self, client_id: int, *, process: str, owner: str | None = None) -> dict[str, Any]:
        """A new lead for a client coming back; ``lead show`` lists the client's earlier leads."""
        with self.transaction() as conn:
            row = conn.execute(sa.select(clients.c.name).where(clients.c.id == client_id)).first() if (
                0 < client_id < 2**63) else None
            if row is None:
                raise NotFoundError(f"client {client_id} does not exist")
            lead = self.add_lead(process=process, name=row[0], client_id=client_id, owner=owner, source="revisit")
            return self.get_lead(lead["id"])

    def removals(self, month: str, *, process: str | None = None, kind: str = "all",
                 team: str | None = None, owner: str | None = None) -> dict[str, Any]:
        """The monthly summary of leads closed without a sale (refusals and removals)."""
        from engine import recovery

        match = re.fullmatch(r"(\d{4})-(\d{2})", month.strip())
        if not match or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1:
            raise InvalidInputError(f"month {month!r} is not written YYYY-MM, e.g. 2026-03")
        if kind not in ("all", "refusal", "removal"):
            raise InvalidInputError(f"kind '{kind}' is not one of: all, refusal, removal")
        start = dt.datetime(int(match[1]), int(match[2]), 1)
        end = dt.datetime.max if (start.year, start.month) == (9999, 12) else dt.datetime(
            start.year + start.month // 12, start.month % 12 + 1, 1)
        with self.transaction() as conn:
            actor = self._actor(conn)
            scope = self._scope(conn, actor, owner=owner, team=team)
            specs = [s for _, s in self._all_specs(conn) if process is None or s.id == process]
            if process is not None and not specs:
                self._spec(conn, process)  # raises the not-found error with suggestions
            kinds = ("refusal", "removal") if kind == "all" else (kind,)
            return {"month": f"{start:%Y-%m}", "kind": kind,
                    **recovery.removals(conn, specs, start, end, scope.on(closures), kinds)}

    # -- automation: the outbox -------------------------------------------------------------------
    def run_due(self, *, limit: int | None = None) -> dict[str, Any]:
        """Send the mails and reminders that are due (admins; ``leadflow run-due``), one transaction per mail.

        SMTP settings come from the environment (engine/mailer.py); the summary counts what was sent,
        retried, failed and cancelled, and says when the next mail falls due.
        """
        from engine import mailer, outbox

        if self._conn is not None:
            raise RuleViolation("run_due commits mail by mail; call it outside Engine.transaction()")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidInputError(f"the number of mails to send must be a whole number from 1, got {limit!r}")
        with self.transaction() as conn:
            access.require_admin(self._actor(conn), "send the due mail")
        config = mailer.SmtpConfig.from_environment()
        return outbox.run_due(self.transaction, self._spec, self.user_name, config, limit=limit)

    def list_outbox(self, *, state: str | None = None, lead_id: int | None = None,
                    limit: int = 1000) -> list[dict[str, Any]]:
        """Mails and reminders of the leads the acting user may see, by next attempt (``outbox list``)."""
        from engine import outbox

        if state is not None and state not in outbox.STATES:
            raise InvalidInputError(f"state '{state}' is not one of: {', '.join(outbox.STATES)}")
        with self.transaction() as conn:
            actor = self._actor(conn)
            if lead_id is not None:
                access.require_can_view(actor, self._lead(conn, lead_id))
            return list(outbox.rows(conn, lambda q: access.visible_leads(actor, q), state=state, lead_id=lead_id,
                                    limit=limit))

    def retry_outbox(self, mail_id: int) -> dict[str, Any]:
        """Queue a failed or cancelled mail again, due now, its attempts counted afresh (managers)."""
        from engine import outbox

        with self.transaction() as conn:
            actor = self._actor(conn)
            row = conn.execute(sa.select(outbox_table).where(outbox_table.c.id == mail_id)).mappings().first() if (
                isinstance(mail_id, int) and not isinstance(mail_id, bool) and 0 < mail_id < 2**63) else None
            if row is None:
                raise NotFoundError(f"mail {mail_id} is not in the outbox")
            state = self._lead(conn, row["lead_id"])
            access.require_manager_of(actor, state.team, f"retry mail {mail_id}")
            if row["state"] not in (outbox.FAILED, outbox.CANCELLED):
                when = f" at {views.iso(row['sent_at'])}" if row["sent_at"] else ""
                raise RuleViolation(f"mail {mail_id} is {row['state']}{when}; only a failed or cancelled mail is "
                                    "queued again")
            conn.execute(sa.update(outbox_table).where(outbox_table.c.id == mail_id).values(
                state=outbox.QUEUED, attempts=0, next_attempt_at=clock.now(), claimed_by=None, lease_until=None))
            return outbox.view(conn.execute(sa.select(outbox_table).where(outbox_table.c.id == mail_id))
                               .mappings().one())

    # -- reports --------------------------------------------------------------------------------
    @contextmanager
    def _reporting(self, owner: str | None, team: str | None, period: str, date_from: str | None,
                   date_to: str | None) -> Iterator[tuple[Connection, Any, dt.datetime, Any]]:
        """A report's transaction, the acting user's scope, the instant it is as of, and its period."""
        from engine import reports

        with self.transaction() as conn:
            scope = self._scope(conn, self._actor(conn), owner=owner, team=team)
            now = clock.now()
            yield conn, scope, now, reports.period(now, period, date_from, date_to)

    def report_refusals(self, *, period: str = "month", date_from: str | None = None, date_to: str | None = None,
                        process: str | None = None, team: str | None = None, owner: str | None = None,
                        matrix_by: str | None = None, trend: bool = False) -> dict[str, Any]:
        """Refusals received in a period: by reason, product and salesperson; a matrix; the trend."""
        from engine import reports

        with self._reporting(owner, team, period, date_from, date_to) as (conn, scope, now, window):
            specs = {s.id: s for s in self._latest_specs(conn, process)}
            return {"as_of": now.isoformat(), "process": process,
                    **reports.refusals(conn, specs, window, scope.on(closures), matrix_by=matrix_by, trend=trend)}

    def report_funnel(self, *, period: str = "all", date_from: str | None = None, date_to: str | None = None,
                      process: str | None = None, team: str | None = None,
                      owner: str | None = None) -> dict[str, Any]:
        """Per process, the cohort of leads created in the period: how many reached each stage, moved on from
        it, their median days in it, and the lead-to-win conversion."""
        from engine import reports

        with self._reporting(owner, team, period, date_from, date_to) as (conn, scope, now, window):
            return {"as_of": now.isoformat(), "period": window.as_dict(),
                    "funnels": [reports.funnel(conn, spec, window, scope.on(lead_stages), scope.on_leads())
                                for spec in self._latest_specs(conn, process)]}

    def report_cycle(self, *, period: str = "all", date_from: str | None = None, date_to: str | None = None,
                     process: str | None = None, team: str | None = None,
                     owner: str | None = None) -> dict[str, Any]:
        """The measured sales cycle of the leads won in the period: per process, salesperson and source."""
        from engine import reports

        with self._reporting(owner, team, period, date_from, date_to) as (conn, scope, now, window):
            return {"as_of": now.isoformat(),
                    **reports.cycle(conn, self._latest_specs(conn, process), window, scope.on_leads())}

    def report_salespeople(self, *, period: str = "all", date_from: str | None = None,
                           date_to: str | None = None, process: str | None = None, team: str | None = None,
                           owner: str | None = None) -> dict[str, Any]:
        """Per salesperson: held, won, lost, conversion, cycle, red leads, and clients a colleague won after them."""
        from engine import reports

        with self._reporting(owner, team, period, date_from, date_to) as (conn, scope, now, window):
            return {"as_of": now.isoformat(), "process": process,
                    **reports.salespeople(conn, self._latest_specs(conn, process), window, now, team=scope.team,
                                          owner=scope.owner)}

    def report_forecast(self, *, months: int = 3, process: str | None = None, team: str | None = None,
                        owner: str | None = None) -> dict[str, Any]:
        """Expected wins and value per month for the next ``months`` months, from the open leads."""
        from engine import reports

        if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 60:
            raise InvalidInputError(f"--months {months!r} is not a whole number of months from 1 to 60")
        with self.transaction() as conn:
            actor = self._actor(conn)
            scope = self._scope(conn, actor, owner=owner, team=team)
            now = clock.now()
            cutoff = now + dt.timedelta(microseconds=1)
            return {"as_of": now.isoformat(), "months": months,
                    "forecasts": [reports.forecast(conn, spec, now, months, scope.on_leads(), cutoff)
                                  for spec in self._latest_specs(conn, process)]}

    def _latest_specs(self, conn: Connection, process: str | None) -> list[ProcessSpec]:
        if process is not None:
            return [self._spec(conn, process)]
        names = [r[0] for r in conn.execute(sa.select(process_versions.c.process).distinct()
                                            .order_by(process_versions.c.process))]
        return [self._spec(conn, n) for n in names]

    # -- intake: CSV import and export, API tokens, the HTTP intake -----------------------------------
    def import_csv(self, path: str | Path, *, process: str, mapping: str | Path | None = None,
                   owner: str | None = None, assign: str | None = None, dry_run: bool = False,
                   on_error: str = "skip", encoding: str | None = None, rejects: str | Path | None = None,
                   again: bool = False, progress: Callable[[int, int, int], None] | None = None) -> dict[str, Any]:
        """Import the leads of a CSV file into ``process`` (managers and admins), in one transaction.

        Every row is checked like ``add_lead``'s input; rows whose e-mail or phone belongs to an existing client
        (or to an earlier row) become new leads of that client. ``on_error="skip"`` imports the good rows and
        reports the others (``rejects``: also as a CSV file); ``"abort"`` imports nothing if any row is bad;
        ``dry_run`` checks everything and imports nothing. The report is documented in docs/intake.md.
        """
        from engine import intake

        if self._conn is not None:
            raise RuntimeError("import_csv runs in a transaction of its own; call it outside Engine.transaction()")
        options = intake.ImportOptions(
            process=process, mapping=intake.load_mapping(mapping) if mapping is not None else None, owner=owner,
            assign=assign, dry_run=dry_run, on_error=on_error, encoding=encoding, rejects=rejects, again=again,
            progress=progress)
        try:
            with self.transaction() as conn:
                actor = self._actor(conn)
                if actor["role"] not in access.MANAGERS:
                    raise PermissionDenied(f"user '{actor['name']}' ({actor['role']}) may not import leads: only a "
                                           "manager or an admin may")
                spec = self._spec(conn, process)
                report = intake.run_import(
                    conn, path, actor=actor, spec=spec, version=self._version_of(conn, spec), at=clock.now(),
                    specs=self._specs_lookup(conn), user=lambda name: self._user(conn, name), options=options)
                if report["status"] != "imported":
                    raise _Undo(report)
        except _Undo as undo:
            report = undo.report
        return report

    def export_csv(self, out: IO[str], *, process: str | None = None, excel: bool = False) -> int:
        """Write the leads the acting user may see (of ``process``, else of every process) as CSV; returns how
        many. Cells a spreadsheet would run as formulas are neutralised; the file imports back as it is."""
        from engine import intake

        with self.transaction() as conn:
            actor = self._actor(conn)
            return intake.export_csv(conn, out, actor=actor, specs=self._latest_specs(conn, process), excel=excel)

    def submit_lead(self, values: Mapping[str, Any], *, process: str | None = None) -> dict[str, Any]:
        """A lead from a web form, acting as its source (the HTTP intake's ``POST /v1/leads``).

        ``values`` are named like an import's columns (attributes, field ids or labels; fields may also come as
        a ``fields`` object) with ``process`` among them or as the default. Every refused value is reported at
        once (``InquiryErrors.errors``); an e-mail or phone of an existing client adds the lead to that client;
        the owner is left to ``add_lead`` (the assignment rules). Returns ``{"lead": ..., "client_existed": ...}``.
        """
        from engine import intake

        values = dict(values)
        chosen = values.pop("process", None) or process
        if not isinstance(chosen, str) or not chosen.strip():
            raise intake.InquiryErrors([intake.FieldError(
                "process", "which process the lead is for is missing: send 'process' or use a token with a "
                           "default process" if chosen in (None, "") else f"process must be a name, got {chosen!r}")])
        with self.transaction() as conn:
            try:
                spec = self._spec(conn, chosen.strip())
            except NotFoundError as exc:
                raise intake.InquiryErrors([intake.FieldError("process", str(exc))]) from None
            inquiry = intake.check_submission(spec, values)
            client_id = intake.find_client(conn, inquiry.email_norm, inquiry.phone_norm)
            lead = self.add_lead(
                process=spec.id, name=inquiry.name, company=inquiry.company, email=inquiry.email,
                phone=inquiry.phone, source=inquiry.source or self.user_name, product=inquiry.product,
                value=rules.minor_to_money(inquiry.value_minor), owner=None, fields=inquiry.fields,
                client_id=client_id)
            return {"lead": lead, "client_existed": client_id is not None}

    def add_token(self, source: str, *, process: str | None = None, read: bool = False) -> dict[str, Any]:
        """A new API token for ``source`` (admins). The token is in the result, and nowhere else ever again.

        The source becomes a technical user (role ``intake``): the actor of the leads it sends. ``process`` is
        the default for requests that name none; ``read`` lets the token read leads and boards too."""
        from engine import tokens

        with self.transaction() as conn:
            access.require_admin(self._actor(conn), "manage API tokens")
            name = _clean_text(source, "source", 200)
            if not name or not re.fullmatch(r"[\w][\w.@-]*", name):
                raise InvalidInputError(f"source {source!r} must be a name of letters, digits and . _ - @, "
                                        "such as website or partner-form")
            default = self._spec(conn, process).id if process is not None else None
            row = conn.execute(sa.select(users).where(users.c.name == name)).mappings().first()
            if row is None:
                conn.execute(sa.insert(users).values(name=name, role=access.INTAKE, team=None, created_at=clock.now()))
            elif row["role"] != access.INTAKE:
                raise RuleViolation(f"'{name}' is already the name of a user ({row['role']}); a source needs a name "
                                    "of its own")
            token = tokens.new_token()
            token_id = store.new_id(conn.execute(sa.insert(api_tokens).values(
                source=name, token_hash=tokens.token_hash(token), hint=tokens.hint(token), process=default,
                can_read=read, created_at=clock.now(), created_by=self.user_name)))
            return {**self._token_view(conn, token_id), "token": token}

    def list_tokens(self) -> list[dict[str, Any]]:
        """Every API token, revoked ones too, without the tokens themselves (admins)."""
        with self.transaction() as conn:
            access.require_admin(self._actor(conn), "manage API tokens")
            ids = conn.execute(sa.select(api_tokens.c.id).order_by(api_tokens.c.id)).scalars().all()
            return [self._token_view(conn, i) for i in ids]

    def revoke_token(self, token_id: int) -> dict[str, Any]:
        """Stop accepting a token (admins); it stays listed, with who revoked it when."""
        with self.transaction() as conn:
            access.require_admin(self._actor(conn), "manage API tokens")
            view = self._token_view(conn, token_id)
            if view["revoked_at"] is not None:
                raise RuleViolation(f"token {token_id} ({view['source']}) was already revoked on "
                                    f"{view['revoked_at'][:16].replace('T', ' ')} by {view['revoked_by']}")
            conn.execute(sa.update(api_tokens).where(api_tokens.c.id == token_id)
                         .values(revoked_at=clock.now(), revoked_by=self.user_name))
            return self._token_view(conn, token_id)

    def authenticate(self, token: str | None, *, read: bool = False) -> dict[str, Any]:
        """The source a token belongs to: ``{id, source, process, read}``; reads only, writes nothing.

        Raises ``AuthenticationError`` for a missing, unknown or revoked token, and ``PermissionDenied`` when
        ``read`` is asked of a token made without it."""
        from engine import tokens

        if not token:
            raise AuthenticationError("no API token: send the header 'Authorization: Bearer <token>'")
        with self.transaction() as conn:
            row = conn.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == tokens.token_hash(token),
                                                           api_tokens.c.revoked_at.is_(None))).mappings().first()
        if row is None:
            raise AuthenticationError("the API token is not valid (unknown or revoked)")
        if read and not row["can_read"]:
            raise PermissionDenied(f"the token of source '{row['source']}' may send leads but not read them; "
                                   "reading needs a token made with --read")
        return {"id": row["id"], "source": row["source"], "process": row["process"], "read": row["can_read"]}

    def _token_view(self, conn: Connection, token_id: int) -> dict[str, Any]:
        row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)).mappings().first() if (
            isinstance(token_id, int) and 0 < token_id < 2**63) else None
        if row is None:
            raise NotFoundError(f"API token {token_id} does not exist")
        return {"id": row["id"], "source": row["source"], "hint": row["hint"] + "...", "process": row["process"],
                "read": row["can_read"], "created_at": views.iso(row["created_at"]), "created_by": row["created_by"],
                "revoked_at": views.iso(row["revoked_at"]), "revoked_by": row["revoked_by"]}

    # -- internals -----------------------------------------------------------------------------
    def _event(self, kind: str, data: dict[str, Any]) -> Event:
        return Event(kind=kind, at=clock.now(), actor=self.user_name, data=data)

    def _actor(self, conn: Connection) -> Any:
        rows = store.driver_rows(conn, _USER_BY_NAME, {"name": self.user_name})
        if not rows:
            raise self._not_registered()
        return rows[0]

    def _not_registered(self) -> PermissionDenied:
        return PermissionDenied(f"user '{self.user_name}' is not registered; an admin adds users with "
                                f"'leadflow user add {self.user_name} --role salesperson' "
                                "(choose the acting user with --user or LEADFLOW_USER)")

    def _user(self, conn: Connection, name: str) -> Any:
        row = conn.execute(_USER_BY_NAME, {"name": name}).mappings().first()
        if row is None:
            known = [r[0] for r in conn.execute(sa.select(users.c.name))]
            raise NotFoundError(f"user '{name}' does not exist{suggest(name, known)}")
        return row

    def _declared_roles(self, conn: Connection) -> set[str]:
        roles: set[str] = set()
        for (spec_json,) in conn.execute(sa.select(process_versions.c.spec_json)):
            roles.update(r["id"] for r in json.loads(spec_json)["roles"])
        return roles

    def _version_of(self, conn: Connection, spec: ProcessSpec) -> int:
        return int(conn.execute(sa.select(process_versions.c.version).where(
            process_versions.c.process == spec.id,
            process_versions.c.content_hash == spec.content_hash)).scalar_one())

    def _specs_lookup(self, conn: Connection) -> Any:
        return lambda process, version: self._spec(conn, process, version)

    def _lead(self, conn: Connection, lead_id: int) -> LeadState:
        if isinstance(lead_id, bool) or not isinstance(lead_id, int):
            raise InvalidInputError(f"lead id must be a whole number, got {lead_id!r}")
        state = store.read_lead(conn, lead_id) if 0 < lead_id < 2**63 else None
        if state is None:
            raise NotFoundError(f"lead {lead_id} does not exist")
        return state

    def _typed_fields(self, spec: ProcessSpec, values: dict[str, Any]) -> dict[str, Any]:
        typed = {}
        for name, raw in values.items():
            field = spec.field_spec(name)
            if field is None:
                known = [f.id for f in spec.fields]
                raise InvalidInputError(f"'{name}' is not a field of process {spec.id}{suggest(name, known)}; "
                                        f"fields: {', '.join(known) or 'none'}")
            value = rules.coerce_field(field, raw)
            if value is not None:
                typed[name] = value
        return typed

    def _new_client(self, conn: Connection, *, name: str, company: str | None, email: str | None,
                    phone: str | None) -> int:
        name_ = _clean_text(name, "name")
        if not name_:
            raise InvalidInputError("a lead needs the client's name (--name)")
        email_ = check_email(email)
        phone_ = check_phone(phone)
        return store.new_id(conn.execute(sa.insert(clients).values(
            name=name_, company=_clean_text(company, "company"), email=email_, phone=phone_,
            email_norm=normalise_email(email_), phone_norm=normalise_phone(phone_), created_at=clock.now(),
        )))

    def _require_open(self, state: LeadState, verb: str) -> None:
        if state.status != STATUS_OPEN:
            raise RuleViolation(f"can't {verb} lead {state.id}: it is {state.status} "
                                f"(closed {views.iso(state.closed_at)}); a manager may reopen it")

    def _require_can_leave(self, state: LeadState, spec: ProcessSpec) -> None:
        lead_id = state.id
        stage = spec.stage(state.stage)
        assert stage is not None
        open_tasks, unset = rules.missing_to_leave(stage, state.stage_tasks(), state.fields)
        if open_tasks or unset:
            parts = []
            if open_tasks:
                parts.append(f"mandatory tasks open: {', '.join(open_tasks)}")
            if unset:
                parts.append(f"required fields not set: {', '.join(unset)}")
            raise RuleViolation(f"can't leave stage '{stage.id}' of lead {lead_id}: {'; '.join(parts)}")

    def _commit(self, conn: Connection, state: LeadState, evs: list[Event]) -> dict[str, Any]:
        """Apply events to the state, write it (optimistic lock) and append the events; return the view."""
        if not evs:
            return self._view(conn, state)
        before = state.clone()
        lookup = self._specs_lookup(conn)
        entries = []
        for ev in evs:
            state = apply(state, ev, lookup)
            if ev.kind in actions.ENTERING:
                entry = actions.on_enter(lookup(state.process, state.process_version), state, ev.at)
                entry.record_on(ev)
                entries.append(entry)
        store.write_leads(conn, [store.LeadChange(before, state, evs)])
        actions.store(conn, entries)
        return self._view(conn, state)

    def _view(self, conn: Connection, state: LeadState) -> dict[str, Any]:
        spec = self._spec(conn, state.process, state.process_version)
        (client_row,) = store.driver_rows(conn, _CLIENT_BY_ID, {"id": state.client_id})
        return views.lead(state, spec, client_row)


class _Undo(Exception):  # the way out of a transaction that must not commit, not an error
    """Rolls back a transaction that ran to its end but must not commit (a dry run), carrying its result."""

    def __init__(self, report: dict[str, Any]):
        super().__init__("rolled back")
        self.report = report


#: How a refused batch names what it could not do ("can't advance 2 of 500 leads").
_VERBS = {"complete_task": "complete the task of", "advance": "advance", "win": "win"}

#: How a transition is asked of a process version: the machine's ``fire`` (one lead) or its table's ``allowed``.
_Move = Callable[[str, str, dict[str, Any]], str | None]


def _batch_ids(lead_ids: Sequence[int]) -> list[int]:
    """The ids of a bulk call: whole numbers, each listed once (an unknown id is refused per lead later)."""
    if isinstance(lead_ids, (str, bytes)) or not isinstance(lead_ids, Sequence):
        raise InvalidInputError(f"lead ids must be a list of whole numbers, got {lead_ids!r}")
    seen: set[int] = set()
    for lead_id in lead_ids:
        if isinstance(lead_id, bool) or not isinstance(lead_id, int):
            raise InvalidInputError(f"lead id must be a whole number, got {lead_id!r}; nothing was written")
        if lead_id in seen:
            raise InvalidInputError(f"lead {lead_id} is listed twice; list each lead once (nothing was written)")
        seen.add(lead_id)
    return list(lead_ids)


def _cond(cond: Any) -> str:
    from engine.render import condition_text

    return condition_text(cond) if cond else "none"


def _os_login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (e.g. a container without /etc/passwd entry)
        return "unknown"

