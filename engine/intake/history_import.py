"""The history import (``leadflow import FILE --history``): deals from another CRM with their real dates.

A row is a deal as the old system knows it now: its stage or status (open, won, lost), when it was created, when it
reached its stages, when it was closed and why, its owner, team, product, value, company and contact person, and its
id in the old system (``external_id``). Each deal becomes the events that would have produced that state at those
dates (``created``; at each stage's exit its open tasks ``task_done`` "imported" and ``advanced``; ``won`` or
``closed``), applied by ``state.apply`` and written by the one write path (``store.write_leads``), so that the
history, the rebuild, ``lead_stages``, ``closures`` and every report treat them as leads worked live.

Re-importing changes nothing for a deal whose stage and status leadflow already has; a deal that moved on gets the
events from where leadflow has it to where the file has it; a deal that would go back is refused. Historical
deals queue no mail or reminder and no refusal review, but the salespeople given new open deals get one digest mail
each (engine/notices.py); see docs/intake.md ("Migrating from another CRM").
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import notices, policy, results, store
from engine.errors import InvalidInputError
from engine.i18n import N_, message_of_error
from engine.intake import history_parallel
from engine.intake.bulk_import import ROW_WIDTH, ImportOptions, Rejects, cell, outcome, read_rows
from engine.intake.columns import IGNORE, ColumnPlan, header_key, plan_columns
from engine.intake.csv_file import CsvFile, file_sha256
from engine.intake.history_clients import DealClient, DealClients
from engine.intake.history_columns import HistoryPlan, plan_history
from engine.intake.history_deals import Allowed, Deal, DealReader, RowRefused, new_changes, record_closings
from engine.spec import ProcessSpec
from engine.state import LeadState
from engine.store import events, imports, leads, users
from engine.vocab import NAME_LENGTH, LeadStatus


class HistoryImport:
    """One history import inside the caller's transaction: the deals its ``reader`` checked written in batches."""

    def __init__(self, conn: Connection, reader: DealReader):
        self.conn, self.reader = conn, reader
        self.stats = {"imported": 0, "updated": 0, "unchanged": 0, "new_clients": 0, "existing_clients": 0,
                      "repeated_clients": 0, "open": 0, "won": 0, "lost": 0}
        self.clients = DealClients(conn, reader.at, self.stats)
        self.lead_ids: list[int] = []
        self._seen: set[str] = set()
        self.given = notices.Given(reader.actor.name)  # the open deals given to others: a digest each

    def external(self, cells: list[str], width: int, plan: HistoryPlan) -> str:
        """A record's deal id in the old system, or ``RowRefused`` (a record of another width than the header's
        too); remembered whatever becomes of the row, so that a second row of the same deal is refused too."""
        if len(cells) != width and not (len(cells) > width and not any(c.strip() for c in cells[width:])):
            raise RowRefused(ROW_WIDTH, cells=len(cells), width=width)
        index = plan.columns.get("external_id")
        external = cell(cells[index]).strip() if index is not None else ""
        if not external:
            raise RowRefused(N_("{header} is empty: a deal needs its id in the old system, so that importing the "
                                "file again changes nothing"), header=plan.headers.get('external_id', 'external_id'))
        if len(external) > NAME_LENGTH:
            raise RowRefused(N_("external_id is longer than {length} characters"), length=NAME_LENGTH)
        if external in self._seen:
            raise RowRefused(N_("external_id {external!r} is on an earlier line too; each deal once"),
                             external=external)
        self._seen.add(external)
        return external

    # -- a batch ---------------------------------------------------------------------------------------------
    def flush(self, batch: list[Deal], refuse: Callable[[Deal, str], None]) -> None:
        if batch:
            with store.collector_paused(len(batch)):
                self._write(batch, refuse)

    def _write(self, batch: list[Deal], refuse: Callable[[Deal, str], None]) -> None:
        conn = self.conn
        found = dict(conn.execute(sa.select(leads.c.external_id, leads.c.id).where(
            leads.c.external_id.in_([d.external_id for d in batch]))).all())
        stored = store.read_leads(conn, list(found.values())) if found else {}
        last = dict(conn.execute(sa.select(events.c.lead_id, sa.func.max(events.c.at)).where(
            events.c.lead_id.in_(list(found.values()))).group_by(events.c.lead_id)).all()) if found else {}
        changes: list[store.LeadChange] = []
        closings: list[tuple[Deal, LeadState]] = []
        new: list[Deal] = []
        for deal in batch:
            try:
                lead_id = found.get(deal.external_id)
                if lead_id is None:
                    new.append(deal)
                    continue
                change = self.reader.moved_deal(deal, stored[lead_id], last[lead_id])
            except RowRefused as exc:
                refuse(deal, message_of_error(exc))
                continue
            if change is None:
                self.stats["unchanged"] += 1
                continue
            changes.append(change)
            self.stats["updated"] += 1
            self.stats[change.after.status] += 1
            if change.after.status == LeadStatus.LOST:
                closings.append((deal, change.after))
        ids, client_ids = self.new_ids([deal.client() for deal in new])
        made = new_changes(new, ids, client_ids)
        for change, lead_id in zip(made, ids, strict=True):
            self.counted(lead_id, change.after.status, change.after.owner, change.after.stage)
        changes += made
        closings += [(deal, change.after) for deal, change in zip(new, made, strict=True)
                     if change.after.status == LeadStatus.LOST]
        store.write_leads(conn, changes)
        record_closings(conn, closings)

    def new_ids(self, clients: list[DealClient]) -> tuple[list[int], list[int]]:
        """The ids of a batch's new deals and of their clients (found, or made now), in order."""
        client_ids = self.clients.resolve(clients)
        if self.lead_ids and self.conn.dialect.name == "sqlite":
            # the transaction holds SQLite's write lock: the ids after this import's last, whose rows a parallel
            # import may not have written yet (engine/intake/history_parallel.py)
            ids = list(range(self.lead_ids[-1] + 1, self.lead_ids[-1] + 1 + len(clients)))
        else:
            ids = store.reserve_ids(self.conn, leads, len(clients))
        if ids:
            if not self.lead_ids:
                self.lead_ids.append(ids[0])
            self.lead_ids[1:] = [ids[-1]]
        return ids, client_ids

    def counted(self, lead_id: int, status: str, owner: str | None, stage: str) -> None:
        """A new deal written: counted, and an open one given to its owner (a closed deal is history: nobody is
        told of it)."""
        self.stats["imported"] += 1
        self.stats[status] += 1
        if status == LeadStatus.OPEN:
            self.given.add(owner, lead_id, stage)


def user_teams(conn: Connection) -> dict[str, str]:
    """The teams of leadflow's users, by their folded names: a deal counts for one of them."""
    return {header_key(t): t for t in conn.execute(
        sa.select(users.c.team).where(users.c.team.is_not(None)).distinct()).scalars()}


def run_history_import(conn: Connection, path: str | Path, *, actor: policy.Actor, spec: ProcessSpec, version: int,
                       at: dt.datetime, specs: Callable[[str, int], ProcessSpec], user: policy.UserLookup,
                       allowed: Allowed, options: ImportOptions, reason_map: dict[str, str],
                       ) -> results.ImportReport:
    """Import the deals of ``path`` with their history into the transaction of ``conn`` (see the module's
    docstring); the caller commits when the report's status is ``imported``, and has refused the options a history
    does not take (an owner or an assignment for the whole file: ``IntakeService``)."""
    path = Path(path)
    if options.on_error not in ("skip", "abort"):
        raise InvalidInputError(N_("on_error {on_error!r} is not one of: skip, abort"), on_error=options.on_error)
    sha256 = file_sha256(path)
    mapping = options.mapping or {}
    source = CsvFile(path, encoding=options.encoding or mapping.get("encoding"), delimiter=mapping.get("delimiter"))
    try:
        reader = DealReader(actor=actor, spec=spec, version=version, at=at, specs=specs, user=user, allowed=allowed,
                            reason_map=reason_map, teams=user_teams(conn))
        history = HistoryImport(conn, reader)
        hplan = plan_history(spec, source.header)
        for needed in ("external_id", "created_at"):
            if needed not in hplan.columns:
                raise InvalidInputError(N_("{name} has no {needed} column, which a history import needs; its "
                                           "columns are {columns}"), name=path.name, needed=needed,
                                        columns=', '.join(map(repr, source.header)))
        if "stage" not in hplan.columns and "status" not in hplan.columns:
            raise InvalidInputError(N_("{name} has neither a stage nor a status column; a history import needs "
                                       "where each deal is"), name=path.name)
        taken = {source.header[i] for i in [*hplan.columns.values(), *hplan.reached.values()]}
        plan = plan_columns(spec, source.header, {**mapping.get("columns", {}), **dict.fromkeys(taken, IGNORE)})
        plan.ignored = [h for h in plan.ignored if h not in taken]
        for first, second, target in plan.duplicates:
            raise InvalidInputError(N_("columns {first!r} and {second!r} both give the lead's {target}; send one of "
                                       "them to 'ignore' in a mapping file"), first=first, second=second, target=target)
        if not any(c.target in ("name", "company") for c in plan.columns):
            raise InvalidInputError(N_("{name} has no column for the client (a company or a person's name); its "
                                       "columns are {columns}"), name=path.name,
                                    columns=', '.join(map(repr, source.header)))
        records = source.records()
        head = list(itertools.islice(records, options.batch_size))  # how many deals the file brings, from its start
        incoming = len(head) * source.size // max(source.bytes_read, 1)
        records = itertools.chain(head, records)
        workers = history_parallel.workers_for(conn, incoming)
        setup = history_parallel.Setup.of(conn, reader, plan, hplan, reason_map) if workers else None

        def read(rejects: Rejects) -> int:
            started = history_parallel.start(setup, workers) if setup is not None else []
            if started:  # a migration on every core, else in this process (engine/intake/history_parallel.py)
                assert setup is not None
                return history_parallel.read(records, source, setup, history, rejects, options, load, incoming,
                                             started)
            return _read(records, source, plan, hplan, history, rejects, options, load, incoming)

        # a large import into a (nearly) empty database (see its module); the collector paused while the batches
        # are built and written, as the write path pauses it (a row is a hundred bytes or more)
        with store.bulk_load(conn) as load, store.collector_paused(source.size // 100):
            rows, rejects = read_rows(source, options, read)
    finally:
        source.close()
    status = outcome(options, rejects)
    stats = history.stats
    report: results.ImportReport = {
        "status": status, "file": str(path), "sha256": sha256, "process": spec.id, "process_version": version,
        "encoding": source.encoding, "delimiter": source.delimiter,
        "columns": {**{c.header: c.target for c in plan.columns}, **{hplan.headers[k]: k for k in hplan.columns},
                    **{hplan.headers[s]: f"reached_{s}" for s in hplan.reached}},
        "ignored_columns": plan.ignored,
        "unknown_columns": [{"column": h, "did_you_mean": plan.closest(spec, h)} for h in plan.unknown],
        "history_columns": [],
        "rows": rows, "imported": stats["imported"], "new_clients": stats["new_clients"],
        "existing_clients": stats["existing_clients"], "repeated_clients": stats["repeated_clients"],
        "possible_duplicates": 0,
        "assigned_by_rules": 0, "unassigned": 0, "mails_queued": 0, "rejected": rejects.count,
        "rejects": rejects.first, "rejects_file": str(options.rejects) if options.rejects else None,
        "first_lead_id": history.lead_ids[0] if history.lead_ids else None,
        "last_lead_id": history.lead_ids[-1] if history.lead_ids else None, "import_id": None,
        "history": {"updated": stats["updated"], "unchanged": stats["unchanged"], "open": stats["open"],
                    "won": stats["won"], "lost": stats["lost"]},
    }
    if status == "dry_run":  # the digests it would queue, as the plain import's dry run counts them
        report["mails_queued"] = len(history.given.leads)
    if status != "imported" or not (stats["imported"] or stats["updated"]):
        return report  # the same file again: nothing changed, nothing to record
    report["import_id"] = store.new_id(conn.execute(sa.insert(imports).values(
        sha256=sha256, process=spec.id, file_name=path.name, actor=actor.name, started_at=at,
        finished_at=at, rows=rows, imported=stats["imported"], new_clients=stats["new_clients"],
        rejected=rejects.count)))
    report["mails_queued"] = history.given.queue(conn, at)  # a digest to each salesperson given open deals
    return report


def _read(records: Iterable[tuple[int, list[str]]], source: CsvFile, plan: ColumnPlan, hplan: HistoryPlan,
          history: HistoryImport, rejects: Rejects, options: ImportOptions, load: store.BulkLoad, incoming: int) -> int:
    """Check every record, batch the good deals, flush full batches; returns the number of records. ``incoming``:
    the deals the file brings, estimated from its start (a bulk load begins at the first batch when it pays)."""
    width = len(source.header)
    batch: list[Deal] = []
    rows = 0
    cells_of: dict[int, list[str]] = {}
    writing = [True]
    flushed: list[int] = []

    def refuse(deal: Deal, reason: str) -> None:
        rejects.add(deal.line, cells_of.get(deal.line, []), reason)
        writing[0] = writing[0] and options.on_error == "skip"

    def flush() -> None:
        if not flushed and batch and load.worth_it(incoming):
            load.begin()
        flushed.append(len(batch))
        history.flush(batch, refuse)
        batch.clear()
        cells_of.clear()

    for line, cells in records:
        rows += 1
        try:
            external = history.external(cells, width, hplan)
            deal = history.reader.read(line, cells, plan, hplan, external)
        except (RowRefused, InvalidInputError) as exc:  # a value refused by the rules (a team too long...)
            rejects.add(line, cells, message_of_error(exc))
            writing[0] = writing[0] and options.on_error == "skip"
            continue
        if writing[0]:
            batch.append(deal)
            cells_of[line] = cells
            if len(batch) >= options.batch_size:
                flush()
                if options.progress is not None:
                    options.progress(source.bytes_read, source.size, rows, rejects.count)
    if writing[0]:
        flush()
    if options.progress is not None:
        options.progress(source.size, source.size, rows, rejects.count)
    return rows
