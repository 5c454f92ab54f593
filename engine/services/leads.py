"""One lead's life: add it, read it, set its fields, move it, win or close it, reopen it (``engine.leads``).

The checks of advancing, winning and completing a task are functions of this module (``advancing``,
``winning``, ``completing``) because the bulk calls (engine/services/bulk.py) check every lead with exactly
the same code.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import actions, board, clock, notices, policy, results, rules, store, views
from engine.assignment import AssignmentRules, owner_of_new_lead, waiting_team
from engine.condition_text import condition_text
from engine.errors import InvalidInputError, NotFoundError, RuleViolation, did_you_mean
from engine.i18n import N_, Message
from engine.machine import LOST, WON
from engine.policy import Actor
from engine.rules import clean_text, one_line_text
from engine.services import clients as client_records
from engine.services.context import (
    Check,
    Move,
    Service,
    operation,
    require_can_leave,
    require_open,
)
from engine.services.options import lead_options, reopen_stages
from engine.services.passed import conditions_read, passed_moves, require_path_kept
from engine.spec import ClosureReason, ProcessSpec
from engine.state import ATTRIBUTES, Event, LeadState, apply, rebuild
from engine.store import clients, leads, users
from engine.vocab import NAME_LENGTH, NOTE_LENGTH, EventKind, LeadStatus, TaskStatus


class LeadService(Service):
    """``engine.leads``: the operations on one lead."""

    name = "leads"

    @operation
    def add(
        self,
        *,
        process: str,
        name: str | None = None,
        company: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        source: str | None = None,
        product: str | None = None,
        value: str | float | int | None = None,
        owner: str | None = None,
        fields: dict[str, Any] | None = None,
        client_id: int | None = None,
        tax_id: str | None = None,
        external_id: str | None = None,
    ) -> results.AddedLead:
        """Register an inquiry as a lead at the process's first stage (every inquiry is a lead). Its e-mail or
        phone (national numbers read in the process's calendar country) may name a client the user may see: the
        lead is that client's; one they may not see (for a web form's intake: one with a lead out of its scope,
        ``policy.may_join_client``) is recorded in the ``created`` event as ``possible_duplicate_of`` beside a
        new client, and the answer says which value they share (``possible_duplicate``: "email" or "phone").
        Without a person's ``name`` but with a ``company``, the client is that company (B2B, found by its name or
        made); ``external_id`` is the deal's id in another system, unique among leads."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            spec = ctx.spec(conn, process)
            version = ctx.version_of(conn, spec)
            owner_name = owner if owner is not None else policy.default_owner(actor)
            named = None
            if owner_name is not None:
                named = ctx.user(conn, owner_name)
                policy.require_can_give(actor, named, Message(N_("add a lead for {owner_name}"), owner_name=owner_name))
            else:
                policy.require_can_add(actor)
            typed = typed_fields(spec, fields or {})
            value_minor = rules.money_to_minor(rules.parse_money(value)) if value not in (None, "") else None
            external = require_new_external_id(conn, actor, external_id)
            duplicate_of = shared = None
            if client_id is None and not (name or "").strip() and (company or "").strip():
                company_ = clean_text(company, "company")
                assert company_ is not None
                client_id = client_records.find_company(conn, company_) or client_records.insert_company(
                    conn, company_, external_id=None, at=clock.now())
            elif client_id is None:
                client_id, duplicate_of, shared = client_records.client_for_new_lead(
                    ctx, conn, actor, name=name, company=company, email=email, phone=phone, tax_id=tax_id,
                    region=spec.calendar, team=waiting_team(actor, spec))
            else:  # may this user work with the client at all?
                client_records.visible_client_leads(ctx, conn, actor, client_id)
            product = one_line_text(product, "product", NAME_LENGTH)
            source = one_line_text(source, "source", NAME_LENGTH)
            assignment_rules = AssignmentRules(conn, spec)
            placed = owner_of_new_lead(actor, named, spec, product, rules.facts(
                typed, value_minor=value_minor, source=source, product=product, team=None), assignment_rules)
            created = ctx.event(EventKind.CREATED, {
                "client_id": client_id, "process": spec.id, "process_version": version, "owner": placed.owner,
                "team": placed.team, "source": source,
                "product": product, "value_minor": value_minor, "fields": typed})
            if placed.assignment is not None:
                created.data["assignment"] = placed.assignment
            if duplicate_of is not None:
                created.data["possible_duplicate_of"] = duplicate_of
            if external is not None:
                created.data["external_id"] = external
            assignment_rules.save()
            state = apply(None, created, ctx.specs_lookup(conn))
            (state.id,) = store.reserve_ids(conn, leads, 1)
            entry = actions.on_enter(spec, state, created.at)
            entry.record_on(created)
            store.write_leads(conn, [store.LeadChange(None, state, [created])])
            actions.store(conn, [entry])
            notices.queue(conn, notices.after(None, state, [created]))
            shown = cast("results.AddedLead", ctx.view(conn, state))  # the lead object, and possibly one key
            if shared is not None:
                shown["possible_duplicate"] = shared
            return shown

    @operation
    def get(self, lead_id: int) -> results.LeadShown:
        """The lead as JSON-able data (the shape documented in docs/cli.md), with the client's other leads."""
        ctx = self.ctx
        with ctx.reading() as conn:
            state = ctx.visible_lead(conn, lead_id)
            return {**ctx.view(conn, state), "client_leads": [views.client_lead(r) for r in conn.execute(
                sa.select(leads.c.id, leads.c.process, leads.c.status, leads.c.stage, leads.c.owner,
                          leads.c.created_at, leads.c.closed_at, leads.c.close_reason)
                .where(leads.c.client_id == state.client_id, leads.c.id != lead_id).order_by(leads.c.id))]}

    @operation
    def find_external(self, external_id: str) -> int:
        """The id of the lead whose ``external_id`` (its id in the system it was migrated from) is given, if the
        acting user may see that lead: one they may not see is answered as an external id no lead has, so that
        nobody learns which deals exist, nor their ids, by trying external ids."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            found = conn.execute(sa.select(leads.c.id).where(leads.c.external_id == str(external_id))).scalar()
            if found is None or not policy.can_view(ctx.actor(conn), ctx.lead(conn, int(found))):
                raise NotFoundError(N_("no lead has the external id '{external_id}'"), external_id=external_id)
            return int(found)

    @operation
    def list(self, *, process: str | None = None, stage: str | None = None, owner: str | None = None,
             status: str | None = None, unassigned: bool = False, limit: int = 1000,
             search: str | None = None) -> list[results.LeadRow]:
        """Leads the acting user may see; ``unassigned``: the manager's queue (open leads without an owner,
        unless ``status`` says otherwise); ``search``: of the clients that text finds (``search.find``'s rules)."""
        if unassigned and owner:
            raise InvalidInputError("a lead without an owner has no owner to filter by; give the owner or "
                                    "ask for unassigned leads, not both")
        ctx = self.ctx
        with ctx.reading() as conn:
            actor = ctx.actor(conn)
            query = sa.select(leads, clients.c.name.label("client_name"), clients.c.company).join(
                clients, clients.c.id == leads.c.client_id)
            if process:
                ctx.spec(conn, process)
                query = query.where(leads.c.process == process)
            if stage:
                query = query.where(leads.c.stage == stage)
            if status:
                if status not in tuple(LeadStatus):
                    raise InvalidInputError(N_("status '{status}' is not one of: {statuses}"), status=status,
                                            statuses=', '.join(LeadStatus))
                query = query.where(leads.c.status == status)
            if owner:
                query = query.where(leads.c.owner == owner)
            if unassigned:  # the manager's queue (engine.board): no owner, or a deactivated one
                query = query.where(board.waiting_for_an_owner())
                if not status:
                    query = query.where(leads.c.status == LeadStatus.OPEN)
            if search is not None:
                from engine.search import parse_query
                from engine.services.search import client_ids_matching

                query = query.where(leads.c.client_id.in_(client_ids_matching(conn, parse_query(search))))
            query = policy.visible_leads(actor, query)
            rows = conn.execute(query.order_by(leads.c.id).limit(limit)).mappings()
            return [views.lead_row(r) for r in rows]

    @operation
    def set_fields(self, lead_id: int, values: dict[str, Any], *, if_version: int | None = None) -> results.Lead:
        """Set process fields (typed by the process) or the attributes value, product, source."""
        if not values:
            raise InvalidInputError("nothing to set; give FIELD=VALUE")
        ctx = self.ctx
        with ctx.transaction() as conn:
            state = ctx.lead_to_write(conn, lead_id, if_version)  # seen first; who may write what: _field_events
            spec = ctx.spec(conn, state.process, state.process_version)
            require_open(state, Message(N_("edit")))
            return ctx.commit(conn, state, self._field_events(conn, state, spec, values))

    def _field_events(self, conn: Connection, state: LeadState, spec: ProcessSpec, values: dict[str, Any],
                      ) -> builtins.list[Event]:
        """The ``field_set`` events that set ``values`` on the lead, if the acting user may write them."""
        ctx, lead_id = self.ctx, state.id
        policy.require_can_write(ctx.actor(conn), state, spec, values)
        evs = []
        for name, raw in values.items():
            if name in ATTRIBUTES:
                before = state.value_minor if name == "value" else getattr(state, name)
                if name == "value":
                    after: Any = rules.money_to_minor(rules.parse_money(raw)) if raw not in (None, "") else None
                else:
                    after = one_line_text(None if raw is None else str(raw), name, NAME_LENGTH)
            else:
                field = spec.field_spec(name)
                if field is None:
                    known = [f.id for f in spec.fields]
                    raise InvalidInputError(
                        N_("lead {lead}: '{name}' is not a field of process {process}{suggestion}; "
                           "fields: {known} (and the attributes {attributes})"), lead=lead_id, name=name,
                        process=spec.id,
                        suggestion=did_you_mean(name, known), known=', '.join(known) or Message(N_("none")),
                        attributes=', '.join(ATTRIBUTES))
                before = state.fields.get(name)
                after = rules.coerce_field(field, raw)
            if before != after:
                evs.append(ctx.event(EventKind.FIELD_SET, {"field": name, "before": before, "after": after,
                                                           **({"attribute": True} if name in ATTRIBUTES else {})}))
        if evs and conditions_read(spec, (ev.data["field"] for ev in evs)):
            changed = state.clone()
            for ev in evs:
                changed = apply(changed, ev, ctx.specs_lookup(conn))
            require_path_kept(state, spec, passed_moves(store.read_events(conn, int(lead_id or 0))),
                              rules.lead_facts(changed))
        return evs

    @operation
    def assign(self, lead_id: int, to: str, *, if_version: int | None = None) -> results.Lead:
        """Give the lead to another owner (managers)."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            actor, state = ctx.actor_and_lead(conn, lead_id, if_version)
            require_open(state, Message(N_("reassign")))
            target = ctx.user(conn, to)
            policy.require_can_assign(actor, state, target)
            if state.owner == to:
                return ctx.view(conn, state)
            return ctx.commit(conn, state, [ctx.event(EventKind.ASSIGNED, {
                "from": state.owner, "to": to, "team": target.team})])

    @operation
    def advance(self, lead_id: int, to: str | None = None, *, if_version: int | None = None) -> results.Lead:
        """Move the lead to its next stage (or ``to``), if the process allows it now."""
        return self._move(lead_id, lambda state, spec, actor, move: advancing(state, spec, actor, to, move),
                          if_version)

    @operation
    def win(self, lead_id: int, *, if_version: int | None = None) -> results.Lead:
        """Win the sale from the process's won stage."""
        return self._move(lead_id, winning, if_version)

    def _move(self, lead_id: int, check: Check, if_version: int | None) -> results.Lead:
        """Read the lead, check it as ``check`` says, and write the event it makes."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            state = ctx.lead_to_write(conn, lead_id, if_version)
            spec = ctx.spec(conn, state.process, state.process_version)

            def move(source: str, trigger: str, fields: dict[str, Any]) -> str | None:
                # the machine is built (and the transitions library imported) only for a check that moves
                return ctx.machine(spec, state.process_version).fire(source, trigger, fields)

            kind, data = check(state, spec, lambda: ctx.actor(conn), move)
            return ctx.commit(conn, state, [ctx.event(kind, data)])

    @operation
    def close(self, lead_id: int, reason: str, note: str | None = None, *, values: dict[str, Any] | None = None,
              if_version: int | None = None) -> results.Lead:
        """Close the lead as lost or removed, for a reason from the process's catalogue; ``values``: fields set
        with the closing (those the reason requires), in the same transaction."""
        from engine.services import recovery

        ctx = self.ctx
        with ctx.transaction() as conn:
            state, spec = ctx.lead_to_work(conn, lead_id, Message(N_("close")), if_version)
            entry = closure_reason(state, spec, reason, lambda source, trigger, fields: ctx.machine(
                spec, state.process_version).fire(source, trigger, fields))
            setting = self._field_events(conn, state, spec, values or {})
            require_reason_applies(state, entry, {e.data["field"]: e.data["after"] for e in setting},
                                   contact_attempts(state))
            recovery.record_closure(conn, state, entry)
            return ctx.commit(conn, state, [*setting, ctx.event(EventKind.CLOSED, {
                "reason": entry.id, "kind": entry.kind, "note": clean_text(note, "note", NOTE_LENGTH),
                "from": state.stage, "review": entry.review})])

    @operation
    def reopen(self, lead_id: int, stage: str | None = None, *, if_version: int | None = None) -> results.Lead:
        """Reopen a won or lost lead into ``stage`` (default: the stage it was closed in, work kept)."""
        from engine.services import recovery

        ctx = self.ctx
        with ctx.transaction() as conn:
            actor, state = ctx.actor_and_lead(conn, lead_id, if_version)
            spec = ctx.spec(conn, state.process, state.process_version)
            if state.status == LeadStatus.OPEN:
                raise RuleViolation(N_("lead {lead} is open in '{stage}'; only won or lost leads reopen"), lead=lead_id,
                                    stage=state.stage)
            policy.require_manager_of(actor, state.team, Message(N_("reopen lead {lead}"), lead=lead_id))
            closed_in = state.closed_from_stage or state.stage
            target = stage or closed_in
            if spec.stage(target) is None:
                raise NotFoundError(N_("stage '{target}' does not exist in process {process}"
                                       "{suggestion}; stages: {stage_ids}"), target=target, process=spec.id,
                                    suggestion=did_you_mean(target, spec.stage_ids),
                                    stage_ids=', '.join(spec.stage_ids))
            require_not_later(spec, lead_id, target, closed_in)
            if ctx.machine(spec, state.process_version).fire(state.status, f"reopen_to_{target}",
                                                              rules.lead_facts(state)) != target:
                raise RuleViolation(N_("the process does not allow reopening lead {lead} into '{target}'"),
                                    lead=lead_id, target=target)
            recovery.record_reopening(conn, lead_id, actor.name)
            return ctx.commit(conn, state, [ctx.event(EventKind.REOPENED, {
                "to": target, "from_status": state.status, "resume": target == state.stage})])

    @operation
    def complete_task(self, lead_id: int, task_id: str, note: str | None = None, *,
                      values: dict[str, Any] | None = None, if_version: int | None = None) -> results.Lead:
        """Mark a task of the lead's current stage done; ``values``: fields its doer records with it (each one
        they may write: ``written_by``), in the same transaction."""
        if not values:
            return self._move(lead_id, lambda state, spec, actor, _: completing(state, spec, actor, task_id, note),
                              if_version)
        ctx = self.ctx
        with ctx.transaction() as conn:
            state = ctx.lead_to_write(conn, lead_id, if_version)
            spec = ctx.spec(conn, state.process, state.process_version)
            kind, data = completing(state, spec, lambda: ctx.actor(conn), task_id, note)
            return ctx.commit(conn, state, [*self._field_events(conn, state, spec, values), ctx.event(kind, data)])

    @operation
    def complete_tasks(self, lead_id: int, task_ids: builtins.list[str], note: str | None = None, *,
                       values: dict[str, Any] | None = None, if_version: int | None = None) -> results.Lead:
        """Mark several tasks of the lead's current stage done in one transaction: all of them, or none (the
        refusal names the task that could not be done); ``values``: fields recorded with them first, as
        ``complete_task`` records them."""
        if not isinstance(task_ids, builtins.list) or not task_ids:
            raise InvalidInputError("name at least one task to complete")
        if len(set(task_ids)) != len(task_ids):
            twice = sorted({t for t in task_ids if task_ids.count(t) > 1})
            raise InvalidInputError(N_("task {task} is named twice; name each task once"),
                                    task=', '.join(map(repr, twice)))
        ctx = self.ctx
        with ctx.transaction() as conn:
            state = ctx.lead_to_write(conn, lead_id, if_version)
            spec = ctx.spec(conn, state.process, state.process_version)
            actor = ctx.actor(conn)
            evs = self._field_events(conn, state, spec, values) if values else []
            current = state.clone()
            for ev in evs:
                current = apply(current, ev, ctx.specs_lookup(conn))
            for task_id in task_ids:  # each checked against the lead as the ones before it left it
                kind, data = completing(current, spec, lambda: actor, task_id, note)
                evs.append(ctx.event(kind, data))
                current = apply(current, evs[-1], ctx.specs_lookup(conn))
            return ctx.commit(conn, state, evs)

    @operation
    def options(self, lead_id: int) -> results.LeadOptions:
        """What the acting user may do with the lead now, by the same rules that check each action (a web page
        shows these buttons; pressing one still runs the action's own checks)."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            state = ctx.visible_lead(conn, lead_id)
            actor = ctx.actor(conn)
            spec = ctx.spec(conn, state.process, state.process_version)
            return lead_options(state, spec, actor, lambda: [Actor.from_row(r) for r in conn.execute(
                sa.select(users).where(users.c.active.is_(True)).order_by(users.c.name)).mappings()])

    @operation
    def history(self, lead_id: int) -> builtins.list[results.HistoryEvent]:
        """The lead's events, oldest first."""
        with self.ctx.reading() as conn:
            self.ctx.visible_lead(conn, lead_id)
            return [views.event(e) for e in store.read_events(conn, lead_id)]

    @operation
    def rebuild(self, lead_id: int) -> LeadState:
        """The lead's state replayed from its event log (equal to the stored state)."""
        ctx = self.ctx
        with ctx.reading() as conn:
            ctx.visible_lead(conn, lead_id)
            return rebuild(store.read_events(conn, lead_id), ctx.specs_lookup(conn))

    @operation
    def stored(self, lead_id: int) -> LeadState:
        """The lead's state as stored, if the acting user may see it."""
        with self.ctx.reading() as conn:
            return self.ctx.visible_lead(conn, lead_id)


def require_not_later(spec: ProcessSpec, lead_id: int, target: str, closed_in: str) -> None:
    """Refuse to reopen a lead into a stage after the one it was closed in (in the process's order of stages):
    reopening is never a way past a stage's mandatory tasks."""
    allowed = reopen_stages(spec, closed_in)
    if target not in allowed:
        in_order = ", ".join(sorted(allowed, key=spec.stage_ids.index))
        raise RuleViolation(N_("can't reopen lead {lead} into '{target}': it was closed in '{closed_in}', and a "
                               "lead reopens only into that stage or an earlier one: {in_order}"), lead=lead_id,
                            target=target, closed_in=closed_in, in_order=in_order)


def require_new_external_id(conn: sa.Connection, actor: Actor, external_id: str | None) -> str | None:
    """A new lead's external id, cleaned, or the refusal when another lead has it (naming that lead only to one who
    may see it: its id is not told to anyone else)."""
    external = clean_text(external_id, "external_id", NAME_LENGTH)
    if not external:
        return None
    other = conn.execute(sa.select(leads.c.id, leads.c.owner, leads.c.team)
                         .where(leads.c.external_id == external)).first()
    if other is None:
        return external
    if policy.can_view(actor, other):  # its owner and team
        raise InvalidInputError(N_("external id '{external}' is already lead {other}'s; each deal has its own"),
                                external=external, other=other.id)
    raise InvalidInputError(N_("external id '{external}' is already another lead's; each deal has its own"),
                            external=external)


def advancing(state: LeadState, spec: ProcessSpec, actor: Callable[[], Actor], to: str | None,
              move: Move) -> tuple[str, dict[str, Any]]:
    """The ``advanced`` event's kind and data, or the error that refuses the move (``advance``'s rules)."""
    lead_id = state.id
    require_open(state, Message(N_("advance")))
    policy.require_can_work(actor(), state, Message(N_("advance")))
    stage = spec.stage(state.stage)
    assert stage is not None
    if not stage.next:
        raise RuleViolation(N_("lead {lead} is in '{stage}', the last stage; "
                               "win it with 'leadflow lead win {lead}' or close it with a reason"), lead=lead_id,
                            stage=stage.id)
    if to is not None:
        if spec.stage(to) is None:
            raise NotFoundError(N_("stage '{to}' does not exist in process {process}"
                                   "{suggestion}; stages: {stage_ids}"), to=to, process=spec.id,
                                suggestion=did_you_mean(to, spec.stage_ids), stage_ids=', '.join(spec.stage_ids))
        targets = [n for n in stage.next if n.stage == to]
        if not targets:
            raise RuleViolation(N_("can't advance lead {lead} from '{stage_id}' to '{to}': the process "
                                   "allows only {stage}"), lead=lead_id, stage_id=stage.id, to=to,
                                stage=', '.join(n.stage for n in stage.next))
    else:
        targets = list(stage.next)
    require_can_leave(state, spec)
    facts = rules.lead_facts(state)
    for nxt in targets:
        if move(state.stage, f"advance_to_{nxt.stage}", facts) == nxt.stage:
            return EventKind.ADVANCED, {"from": stage.id, "to": nxt.stage}
    blocked = "; ".join(f"'{n.stage}' needs {condition_text(n.when)}" for n in targets if n.when)
    raise RuleViolation(N_("can't advance lead {lead} from '{stage}': no allowed next stage applies "
                           "to this lead's fields ({blocked})"), lead=lead_id, stage=stage.id, blocked=blocked)


def winning(state: LeadState, spec: ProcessSpec, actor: Callable[[], Actor], move: Move
            ) -> tuple[str, dict[str, Any]]:
    """The ``won`` event's kind and data, or the error that refuses the win (``win``'s rules)."""
    lead_id = state.id
    require_open(state, Message(N_("win")))
    policy.require_can_work(actor(), state, Message(N_("win")))
    if state.stage != spec.won_stage:
        raise RuleViolation(N_("can't win lead {lead} in '{stage}': a sale is won by completing "
                               "'{won_stage}' ({name})"), lead=lead_id, stage=state.stage, won_stage=spec.won_stage,
                            name=spec.stage(spec.won_stage).name)  # type: ignore[union-attr]
    require_can_leave(state, spec)
    if move(state.stage, "win", rules.lead_facts(state)) != WON:
        raise RuleViolation(N_("the process does not allow winning lead {lead} from '{stage}'"), lead=lead_id,
                            stage=state.stage)
    return EventKind.WON, {"from": state.stage}


def closure_reason(state: LeadState, spec: ProcessSpec, reason: str, move: Move) -> ClosureReason:
    """The catalogue's reason ``reason``: its id, or its label in one of the process's languages as a salesperson
    reads it (``Za wysoka cena``), read as a history import reads a file's reasons (``reason_lookup``); if the
    process allows closing the lead from its stage."""
    from engine.intake.columns import header_key
    from engine.intake.history_columns import reason_lookup

    entry = spec.reason(reason or "") or reason_lookup(spec, {}).get(header_key(reason or ""))
    if entry is None:
        listed = ", ".join(f"{r.id} ({r.label})" for r in spec.closure_reasons)
        raise RuleViolation(N_("can't close lead {lead}: '{reason}' is not a closure reason of process "
                               "{process}{suggestion}; "
                               "valid reasons: {listed}"), lead=state.id, reason=reason, process=spec.id,
                            suggestion=did_you_mean(reason or '', [r.id for r in spec.closure_reasons]), listed=listed)
    if move(state.stage, "close", rules.lead_facts(state)) != LOST:
        raise RuleViolation(N_("the process does not allow closing lead {lead} from '{stage}'"), lead=state.id,
                            stage=state.stage)
    return entry


def closing(state: LeadState, spec: ProcessSpec, actor: Callable[[], Actor], reason: str, note: str | None,
            move: Move) -> tuple[str, dict[str, Any]]:
    """The ``closed`` event's kind and data, or the error that refuses the closing (``close``'s rules, the note
    checked last)."""
    require_open(state, Message(N_("close")))
    policy.require_can_work(actor(), state, Message(N_("close")))
    entry = closure_reason(state, spec, reason, move)
    require_reason_applies(state, entry, {}, contact_attempts(state))
    return EventKind.CLOSED, {"reason": entry.id, "kind": entry.kind, "note": clean_text(note, "note", NOTE_LENGTH),
                              "from": state.stage, "review": entry.review}


def completing(state: LeadState, spec: ProcessSpec, actor: Callable[[], Actor], task_id: str,
               note: str | None) -> tuple[str, dict[str, Any]]:
    """The ``task_done`` event's kind and data, or the error that refuses it (``complete_task``'s rules)."""
    lead_id = state.id
    require_open(state, Message(N_("complete tasks of")))
    stage = spec.stage(state.stage)
    assert stage is not None
    task = stage.task(task_id)
    if task is None or (state.stage, task_id) not in state.tasks:
        known = [t.id for t in stage.all_tasks]
        raise NotFoundError(N_("lead {lead} has no task '{task}' in its current stage '{stage}'"
                               "{suggestion}; tasks: {known}"), lead=lead_id, task=task_id, stage=stage.id,
                            suggestion=did_you_mean(task_id, known), known=', '.join(known) or Message(N_("none")))
    policy.require_can_do_task(actor(), state, task, spec)
    current = state.tasks[(state.stage, task_id)]
    if current.state == TaskStatus.DONE:
        raise RuleViolation(N_("task '{task}' of lead {lead} is already done "
                               "(by {done_by} at {done_at})"), task=task_id, lead=lead_id, done_by=current.done_by,
                            done_at=views.iso(current.done_at))
    if current.state != TaskStatus.OPEN:
        condition = condition_text(task.when) if task.when else "none"
        raise RuleViolation(N_("task '{task}' does not apply to lead {lead}: its condition "
                               "({condition}) is false for this lead's fields"), task=task_id, lead=lead_id,
                            condition=condition)
    waiting = [t for t in task.after if (lead_task := state.tasks.get((state.stage, t))) is not None
               and lead_task.state == TaskStatus.OPEN]
    if waiting:
        raise RuleViolation(N_("can't complete task '{task}' of lead {lead} yet: it comes after "
                               "{waiting}, not done yet"), task=task_id, lead=lead_id, waiting=', '.join(waiting))
    return EventKind.TASK_DONE, {"stage": state.stage, "task": task_id, "note": clean_text(note, "note", NOTE_LENGTH)}


def contact_attempts(state: LeadState) -> int:
    """The contact attempts logged on a lead, which ``min_attempts`` of a closure reason counts: its calls
    without an answer since the client last answered (``activity add --kind call --outcome no_answer``)."""
    return state.unanswered_calls


def require_reason_applies(state: LeadState, reason: ClosureReason, setting: dict[str, Any], attempts: int,
                           ) -> None:
    """A closure reason's own conditions (format 2): the stages it is for, the fields it requires filled, the
    contact attempts it needs logged (``attempts``: those of the lead)."""
    if not reason.allowed_in(state.stage):
        raise RuleViolation(N_("can't close lead {lead} for '{reason}' from '{stage}': that reason is "
                               "for the stages {stages} only"), lead=state.id, reason=reason.id, stage=state.stage,
                            stages=', '.join(reason.stages))
    if reason.min_attempts and attempts < reason.min_attempts:
        raise RuleViolation(N_("can't close lead {lead} for '{reason}': it needs {min_attempts} logged "
                               "contact attempts, the lead has {attempts}"), lead=state.id, reason=reason.id,
                            min_attempts=reason.min_attempts, attempts=attempts)
    filled = {**state.fields, **setting}
    missing = [name for name in reason.requires if filled.get(name) in (None, "")]
    if missing:
        sets = " ".join(f"--set {name}=..." for name in missing)
        if len(missing) == 1:
            raise RuleViolation(N_("can't close lead {lead} for '{reason}': it requires {missing} filled; give it "
                                   "with the closing ({sets})"), lead=state.id, reason=reason.id, missing=missing[0],
                                sets=sets)
        raise RuleViolation(N_("can't close lead {lead} for '{reason}': it requires {missing} filled; give them with "
                               "the closing ({sets})"), lead=state.id, reason=reason.id, missing=", ".join(missing),
                            sets=sets)


def typed_fields(spec: ProcessSpec, values: dict[str, Any]) -> dict[str, Any]:
    """A new lead's process fields, each typed by the process; unknown names refused."""
    typed = {}
    for name, raw in values.items():
        field = spec.field_spec(name)
        if field is None:
            known = [f.id for f in spec.fields]
            raise InvalidInputError(N_("'{name}' is not a field of process {process}{suggestion}; "
                                       "fields: {known}"), name=name, process=spec.id,
                                    suggestion=did_you_mean(name, known),
                                    known=', '.join(known) or Message(N_("none")))
        value = rules.coerce_field(field, raw)
        if value is not None:
            typed[name] = value
    return typed
