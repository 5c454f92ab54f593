"""A history import's deals (engine/intake/history_import.py): each row of the file checked and made the events that
would have produced its deal's state at its dates, without the database, so that a worker process of a parallel
import runs the same code (engine/intake/history_parallel.py)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from engine import clock, policy, rules, store, views, visits
from engine.errors import InvalidInputError, LeadflowError, did_you_mean
from engine.i18n import N_, Message, message_of_error, several
from engine.intake.bulk_import import cell
from engine.intake.columns import ColumnPlan, header_key
from engine.intake.history_clients import DealClient
from engine.intake.history_columns import ANY_REASON, HistoryPlan, company_inquiry, reason_lookup, stage_names
from engine.intake.inquiry import Inquiry, check_inquiry
from engine.spec import ClosureReason, ProcessSpec
from engine.state import Event, LeadState, apply, apply_all
from engine.store import closures, history
from engine.vocab import NAME_LENGTH, NOTE_LENGTH, ClosureKind, EventKind, LeadStatus, TaskStatus

NEEDS_NAME = "a lead needs the client's name"

#: The note of the tasks a historical deal did in the stages it passed.
IMPORTED_NOTE = "imported"
STATUSES = {"open": LeadStatus.OPEN, "won": LeadStatus.WON, "lost": LeadStatus.LOST}

Allowed = Callable[[str, str, dict[str, Any]], str | None]


@dataclass(slots=True)
class Deal:
    """A checked row: the inquiry, where the deal is and when it got there."""

    line: int
    inquiry: Inquiry
    external_id: str
    status: str
    stage: str
    created_at: dt.datetime
    reached: dict[str, dt.datetime]  # stage id -> when the deal reached it (as given)
    closed_at: dt.datetime | None
    reason: ClosureReason | None
    team: str | None
    contact_role: str | None
    owner: policy.Actor | None = None
    #: the closing's note: the old system's reason, when a mapping's ``*`` gave the deal its closure reason
    reason_note: str | None = None
    #: the client's tax id (NIP, CUI, INN): a company's rows with one are the client of that name and tax id
    tax_id: str | None = None
    #: what a new lead of this deal is: its events, its state and where it stood after each move
    built: tuple[list[Event], LeadState, list[visits.Step], list[history.Point]] | None = None

    def client(self) -> DealClient:
        q = self.inquiry
        return DealClient(q.company, q.name, q.email, q.phone, q.email_norm, q.phone_norm, self.contact_role,
                          self.tax_id)


class RowRefused(LeadflowError):
    """A row's refusal, reported with its line (its template and parameters, shown in the reader's language),
    never raised further."""


class DealReader:
    """Checks a history file's rows and builds each deal's events (no database: a worker process of a parallel
    import runs it too, engine/intake/history_parallel.py); ``teams`` are leadflow's users' teams by their
    folded names, ``user`` looks up an owner."""

    def __init__(self, *, actor: policy.Actor, spec: ProcessSpec, version: int, at: dt.datetime,
                 specs: Callable[[str, int], ProcessSpec], user: policy.UserLookup, allowed: Allowed,
                 reason_map: dict[str, str], teams: dict[str, str]):
        self.actor, self.spec, self.version, self.at = actor, spec, version, at
        self.specs, self._user, self.allowed, self.teams = _remembered(specs), user, allowed, teams
        self.reasons = reason_lookup(spec, reason_map)
        self.stages = stage_names(spec)
        self._owners: dict[str, policy.Actor | Message] = {}
        self._shared: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}

    def read(self, line: int, cells: list[str], plan: ColumnPlan, hplan: HistoryPlan, external: str) -> Deal:
        """The deal of a record whose id in the old system (``external``) passed, or ``RowRefused`` (or the rules'
        ``InvalidInputError``) with the reason."""
        values = [(c, cell(cells[c.index])) for c in plan.columns]
        inquiry, errors = check_inquiry(values, self.spec.calendar)
        company = any(c.target == "company" and v.strip() for c, v in values)
        if company and errors and errors[0].message == NEEDS_NAME:
            errors = errors[1:]  # a company's deal needs no person
            if not errors:
                inquiry = company_inquiry(values, self.spec.calendar)
        if errors:
            reason = several([e.message for e in errors])
            raise RowRefused(reason.template, **reason.params)
        assert inquiry is not None
        return self.check(line, cells, hplan, inquiry, external)

    # -- one row ---------------------------------------------------------------------------------------------
    def check(self, line: int, cells: list[str], plan: HistoryPlan, inquiry: Inquiry, external: str) -> Deal:
        """The deal of a row whose id (``external``) and inquiry passed, or ``RowRefused`` with the reason."""
        spec = self.spec

        def value(key: str) -> str:
            index = plan.columns.get(key)
            return cell(cells[index]).strip() if index is not None else ""
        status_text, stage_text = value("status").casefold(), value("stage")
        status = STATUSES.get(status_text) if status_text else None
        if status_text and status is None:
            raise RowRefused(N_("status {status!r} is not one of: open, won, lost"), status=value('status'))
        stage = self.stages.get(header_key(stage_text)) if stage_text else None
        if stage_text and stage is None:
            raise RowRefused(N_("stage {stage!r} is not a stage of process {process}{suggestion}; stages: {stages}"),
                             stage=stage_text, process=spec.id, suggestion=did_you_mean(stage_text, spec.stage_ids),
                             stages=', '.join(spec.stage_ids))
        if status is None:
            if stage is None:
                raise RowRefused(N_("a deal needs its stage or its status (open, won, lost)"))
            status = LeadStatus.OPEN
        if status == LeadStatus.WON:
            if stage is not None and stage != spec.won_stage:
                raise RowRefused(N_("a won deal was won from '{won}', the won stage of process {process}, not from "
                                    "'{stage}'"), won=spec.won_stage, process=spec.id, stage=stage)
            stage = spec.won_stage
        if stage is None:
            raise RowRefused(N_("an open deal needs the stage it is in") if status == LeadStatus.OPEN
                             else N_("a lost deal needs the stage it was lost in"))
        created = self._instant(value("created_at"), plan.headers.get("created_at", "created_at"), required=True)
        assert created is not None
        reached = {s: t for s, index in plan.reached.items()
                   if (t := self._instant(cell(cells[index]), plan.headers[s])) is not None}
        entered = self._instant(value("stage_entered_at"), "stage_entered_at")
        if entered is not None:
            if stage in reached and reached[stage] != entered:
                raise RowRefused(N_("stage_entered_at {entered} and {header} {reached} differ"),
                                 entered=views.iso(entered), header=plan.headers[stage],
                                 reached=views.iso(reached[stage]))
            reached[stage] = entered
        closed = self._instant(value("closed_at"), plan.headers.get("closed_at", "closed_at"))
        if status == LeadStatus.OPEN and closed is not None:
            raise RowRefused(N_("an open deal has no closed_at (got {closed}); give status won or lost"),
                             closed=views.iso(closed))
        if status != LeadStatus.OPEN and closed is None:
            raise RowRefused(N_("a won deal needs closed_at, the day it was won") if status == LeadStatus.WON
                             else N_("a lost deal needs closed_at, the day it was lost"))
        reason, note = None, None
        if status == LeadStatus.LOST:
            reason, note = self._reason(value("close_reason"))
        owner = None
        if inquiry.owner:
            found = self._owner(inquiry.owner)
            if isinstance(found, Message):
                raise RowRefused(found.template, **found.params)
            owner = found
        team = rules.clean_text(value("team") or None, "team", NAME_LENGTH)
        team = self._team(team) if team else (owner.team if owner else None)
        deal = Deal(line, inquiry, external, status, stage, created, reached, closed, reason, team,
                    rules.clean_text(value("contact_role") or None, "role", NAME_LENGTH), owner,
                    rules.clean_text(note, "note", NOTE_LENGTH), rules.check_tax_id(value("tax_id") or None))
        deal.built = self.new_deal(deal)  # its dates and moves checked now, so that refusals come in line order
        return deal

    def _instant(self, text: str, header: str, *, required: bool = False) -> dt.datetime | None:
        if not text:
            if required:
                raise RowRefused(N_("{header} is empty: a deal needs the date it was created"), header=header)
            return None
        try:
            value = clock.parse_datetime(text, what=header)
        except InvalidInputError as exc:
            raise RowRefused(exc.template, **exc.params) from None
        if value > self.at:
            raise RowRefused(N_("{header} {value} is in the future (now is {now})"), header=header,
                             value=views.iso(value), now=views.iso(self.at))
        return value

    def _reason(self, text: str) -> tuple[ClosureReason, str | None]:
        """A lost deal's closure reason, and the closing's note: the old system's own reason when the mapping's
        ``*`` took it."""
        if not text:
            raise RowRefused(N_("a lost deal needs its close_reason (a reason id or label of the process's "
                                "catalogue, or map the old system's with --map-reason OLD=NEW)"))
        found = self.reasons.get(header_key(text))
        if found is None and ANY_REASON in self.reasons:
            return self.reasons[ANY_REASON], text  # the old system's reason kept as the closing's note
        if found is None:
            ids = [r.id for r in self.spec.closure_reasons]
            raise RowRefused(N_("close_reason {reason!r} is not a closure reason of process {process}{suggestion}; "
                                "give one of {reasons} or map it with --map-reason {reason!r}=REASON"), reason=text,
                             process=self.spec.id, suggestion=did_you_mean(text, ids), reasons=', '.join(ids))
        return found, None

    def _team(self, text: str) -> str:
        """The team of the file as leadflow's users name it (case and accents aside); one that no user has is
        refused: the deal's managers would be nobody's, and the owner's manager would not see it."""
        found = self.teams.get(header_key(text))
        if found is None:
            teams = sorted(self.teams.values())
            raise RowRefused(N_("team {team!r} is no team of leadflow's users{suggestion} (teams: {teams}): no manager "
                                "would see the deal; give a user's team, or leave the cell empty and the deal counts "
                                "for its owner's team"), team=text, suggestion=did_you_mean(text, teams),
                             teams=', '.join(teams) or Message(N_("none")))
        return found

    def _owner(self, name: str) -> policy.Actor | Message:
        if name not in self._owners:
            try:
                owner = self._user(name)
                policy.require_can_own(owner)
                self._owners[name] = owner
            except LeadflowError as exc:
                self._owners[name] = Message(N_("owner: {reason}"), reason=message_of_error(exc))
        return self._owners[name]

    # -- a deal's events -------------------------------------------------------------------------------------
    def path(self, deal: Deal, start: str, *, strict: bool = True) -> list[str]:
        """The stages from ``start`` to the deal's stage, the process allowing each move with the deal's fields,
        through every stage the row gives a date for (``strict``: refused when one is off the way; a deal already
        stored has passed the earlier ones); refused when there is none."""
        spec, q, target = self.spec, deal.inquiry, deal.stage
        fields = rules.facts(q.fields, value_minor=q.value_minor, source=q.source, product=q.product, team=deal.team)
        wanted = set(deal.reached) - {start}
        best: list[str] | None = None
        best_key: tuple[int, int] | None = None
        stack: list[list[str]] = [[start]]
        while stack:
            way = stack.pop()
            here = way[-1]
            if here == target:
                key = (len(wanted & set(way)), -len(way))
                if best_key is None or key > best_key:
                    best, best_key = way, key
                continue
            stage = spec.stage(here)
            assert stage is not None
            for nxt in stage.next:
                if nxt.stage not in way and self.allowed(here, f"advance_to_{nxt.stage}", fields) == nxt.stage:
                    stack.append([*way, nxt.stage])
        if best is None:
            raise RowRefused(N_("process {process} does not lead from '{start}' to '{target}' for this deal's "
                                "fields"), process=spec.id, start=start, target=target)
        missed = sorted(wanted - set(best), key=spec.stage_index)
        if missed and strict:
            raise RowRefused(N_("{stages} is not on the deal's way from '{start}' to '{target}' ({way})")
                             if len(missed) == 1 else
                             N_("{stages} are not on the deal's way from '{start}' to '{target}' ({way})"),
                             stages=', '.join(missed), start=start, target=target, way=' -> '.join(best))
        return best

    def events(self, deal: Deal, state: LeadState, path: list[str], since: dt.datetime, since_column: str | None,
               ) -> tuple[list[Event], LeadState, list[visits.Step], list[history.Point]]:
        """The events that take ``state`` along ``path`` (``path[0]`` its stage) and close it as the deal says, each
        at its date (a stage without one: when the deal reached the stage before it); ``since`` is the earliest
        date allowed (the lead's last event; ``since_column`` the file's column that gave it, if one did); and where
        the lead stood after each event (``LeadChange.spans``)."""
        owner = deal.owner.name if deal.owner else self.actor.name
        importer = self.actor.name
        evs: list[Event] = []
        steps: list[visits.Step] = []
        spans: list[history.Point] = []
        at, column = since, since_column  # the latest date so far, and the file's column that gave it
        spec = self.spec

        def add(kind: str, when: dt.datetime, actor: str, data: dict[str, Any]) -> None:
            nonlocal state
            event = Event(kind, when, actor, data)
            state = apply(state, event, self.specs)
            evs.append(event)
            spans.append((when, store.span_values(state)))
            if kind in (EventKind.ADVANCED, EventKind.WON, EventKind.CLOSED):
                steps.append(visits.Step.of(state))

        def finish(stage: str, when: dt.datetime) -> None:
            # the stage's open tasks done at its exit, applied as one step: the move that follows at the same
            # instant leaves the one span of that instant (history.compact)
            nonlocal state
            stage_spec = spec.stage(stage)
            assert stage_spec is not None
            done = [Event(EventKind.TASK_DONE, when, importer,
                          self._data(("stage", stage), ("task", task.id), ("note", IMPORTED_NOTE)))
                    for task in stage_spec.all_tasks
                    if (current := state.tasks.get((stage, task.id))) is not None and current.state == TaskStatus.OPEN]
            if done:
                state = apply_all(state, done, self.specs)
                evs.extend(done)
                spans.append((when, store.span_values(state)))

        for previous, stage in itertools.pairwise(path):
            when = deal.reached.get(stage, at)
            if when < at:
                raise self._backwards(deal, stage, when, previous, at)
            finish(previous, when)
            add(EventKind.ADVANCED, when, owner, self._data(("from", previous), ("to", stage)))
            if stage in deal.reached:
                column = f"reached_{stage}"
            at = when
        if deal.status != LeadStatus.OPEN:
            assert deal.closed_at is not None
            if deal.closed_at < at and column is not None:  # name the date the file gave, not a stage it implied
                raise RowRefused(N_("closed_at {closed} is before {column} ({at}); dates go forward"),
                                 closed=views.iso(deal.closed_at), column=column, at=views.iso(at))
            if deal.closed_at < at:
                raise RowRefused(N_("closed_at {closed} is before the deal reached '{stage}' ({reached}); dates go "
                                    "forward"), closed=views.iso(deal.closed_at), stage=state.stage,
                                 reached=views.iso(at))
            if deal.status == LeadStatus.WON:
                finish(state.stage, deal.closed_at)
                if self.allowed(state.stage, "win", rules.lead_facts(state)) != "won":
                    raise RowRefused(N_("process {process} does not allow winning from '{stage}'"), process=spec.id,
                                     stage=state.stage)
                add(EventKind.WON, deal.closed_at, owner, self._data(("from", state.stage)))
            else:
                reason = deal.reason
                assert reason is not None
                if self.allowed(state.stage, "close", rules.lead_facts(state)) != "lost":
                    raise RowRefused(N_("process {process} does not allow closing from '{stage}'"),
                                     process=spec.id, stage=state.stage)
                # no refusal review for history: the director decided long ago, or never will
                add(EventKind.CLOSED, deal.closed_at, owner, self._data(
                    ("reason", reason.id), ("kind", reason.kind), ("note", deal.reason_note), ("from", state.stage),
                    ("review", False)))
        return evs, state, steps, spans

    def _data(self, *items: tuple[str, Any]) -> dict[str, Any]:
        """The data of an event alike in many deals (a task done at a stage's exit, a move, a win or a closing from a
        stage), one dict for all of them, never changed once made: the event log writes its JSON once a batch."""
        data = self._shared.get(items)
        if data is None:
            data = self._shared[items] = dict(items)
        return data

    def _backwards(self, deal: Deal, stage: str, when: dt.datetime, previous: str, at: dt.datetime) -> RowRefused:
        return RowRefused(N_("reached_{stage} {when} is before the deal reached '{previous}' or was last changed "
                             "({at}); dates go forward along the stages"), stage=stage, when=views.iso(when),
                          previous=previous, at=views.iso(at))

    def new_deal(self, deal: Deal) -> tuple[list[Event], LeadState, list[visits.Step], list[history.Point]]:
        q = deal.inquiry
        data = {"client_id": 0, "process": self.spec.id, "process_version": self.version,
                "owner": deal.owner.name if deal.owner else None, "team": deal.team, "source": q.source,
                "product": q.product, "value_minor": q.value_minor, "fields": q.fields,
                "external_id": deal.external_id, "imported": True,
                # leadflow did not hold the deal before: nothing counts the old system's idle time against it
                "rest_until": self.at.isoformat()}
        created = Event(EventKind.CREATED, deal.created_at, deal.owner.name if deal.owner else self.actor.name, data)
        state = apply(None, created, self.specs)
        path = self.path(deal, state.stage)
        first = visits.Step.of(state)
        created_at = (deal.created_at, store.span_values(state))
        evs, state, steps, spans = self.events(deal, state, path, deal.created_at, "created_at")
        return [created, *evs], state, [first, *steps], [created_at, *spans]

    def moved_deal(self, deal: Deal, state: LeadState, last: dt.datetime) -> store.LeadChange | None:
        if state.process != self.spec.id:
            raise RowRefused(N_("external_id {external!r} is lead {lead} of process {other}, not {process}"),
                             external=deal.external_id, lead=state.id, other=state.process, process=self.spec.id)
        if (state.status, state.stage) == (deal.status, deal.stage):
            return None
        if state.status != LeadStatus.OPEN:
            raise RowRefused(N_("lead {lead} (external_id {external!r}) is {status} in leadflow, the file has it "
                                "{file_status} in '{stage}': a deal's history does not go back (a manager may reopen "
                                "it)"), lead=state.id, external=deal.external_id, status=state.status,
                             file_status=deal.status, stage=deal.stage)
        try:
            path = self.path(deal, state.stage, strict=False)
        except RowRefused:
            raise RowRefused(N_("lead {lead} (external_id {external!r}) is in '{current}' in leadflow, the file has "
                                "it {status} in '{stage}', which does not follow from there: a deal's history does not "
                                "go back"), lead=state.id, external=deal.external_id, current=state.stage,
                             status=deal.status, stage=deal.stage) from None
        before = state.clone()
        evs, after, steps, spans = self.events(deal, state.clone(), path, last, None)
        for ev in evs:
            ev.lead_id = state.id
        return store.LeadChange(before, after, evs, steps=steps, spans=spans)


def new_changes(deals: list[Deal], ids: list[int], client_ids: list[int]) -> list[store.LeadChange]:
    """The writes of new deals (``Deal.built``) given their lead and client ids."""
    changes = []
    for deal, lead_id, client_id in zip(deals, ids, client_ids, strict=True):
        assert deal.built is not None
        evs, state, steps, spans = deal.built
        state.id, state.client_id = lead_id, client_id
        evs[0].data["client_id"] = client_id
        for ev in evs:
            ev.lead_id = lead_id
        changes.append(store.LeadChange(None, state, evs, steps=steps, spans=spans))
    return changes


def record_closings(conn: Connection | store.RecordedWrites, closings: list[tuple[Deal, LeadState]]) -> None:
    """The lost deals' ``closures`` rows (the removals and refusal reports count them at their dates), as
    ``recovery.record_closure`` writes a live closing's, without its review (``conn``: a worker's recorder too)."""

    def at(s: LeadState) -> Any:
        return store.driver_value(conn, closures.c.closed_at, s.closed_at)  # type: ignore[arg-type]

    rows = [(s.id, s.client_id, s.process, s.close_reason, d.reason.kind if d.reason else ClosureKind.REFUSAL,
             s.owner, s.team, s.product, s.value_minor, s.stage, at(s)) for d, s in closings]
    names = ["lead_id", "client_id", "process", "reason", "kind", "owner", "team", "product", "value_minor", "stage",
             "closed_at"]
    store.insert_rows(conn, closures, names, rows)  # type: ignore[arg-type]  # a RecordedWrites is a connection here


def _remembered(specs: Callable[[str, int], ProcessSpec]) -> Callable[[str, int], ProcessSpec]:
    """``specs`` asked once per process version: ``state.apply`` asks for every event, millions in an import."""
    known: dict[tuple[str, int], ProcessSpec] = {}

    def spec(process: str, version: int) -> ProcessSpec:
        found = known.get((process, version))
        if found is None:
            found = known[(process, version)] = specs(process, version)
        return found

    return spec
