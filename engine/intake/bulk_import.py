"""The bulk CSV import: one pass over the file, batches through the one write path, in ONE transaction."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import actions, i18n, notices, policy, results, rules, store
from engine.assignment import Assigner, owner_of_new_lead
from engine.errors import InvalidInputError, LeadflowError
from engine.i18n import N_, Message, message_of_error, several
from engine.intake.columns import ColumnPlan, plan_columns
from engine.intake.csv_file import CsvFile, file_sha256, unneutralise
from engine.intake.history_columns import history_headers
from engine.intake.inquiry import FieldError, Inquiry, check_inquiry
from engine.spec import ProcessSpec
from engine.state import Event, LeadState, apply
from engine.store import clients, imports, leads
from engine.vocab import EventKind

#: A row with more or fewer cells than the header.
ROW_WIDTH = N_("the row has {cells} cells, the header {width}")

# -- the import ------------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Pending:
    """A checked row waiting in a batch."""

    line: int
    inquiry: Inquiry
    owner: str | None = None
    team: str | None = None
    assignment: dict[str, Any] | None = None  # the assignment rules' decision, kept in the created event
    client_id: int = 0
    lead_id: int = 0
    duplicate_of: int | None = None  # an existing client with its e-mail or phone that the importer may not see


@dataclass
class ImportOptions:
    process: str
    mapping: dict[str, Any] | None = None
    owner: str | None = None
    assign: str | None = None  # "auto": leave owners to the assignment rules
    dry_run: bool = False
    on_error: str = "skip"
    encoding: str | None = None
    rejects: str | Path | None = None
    again: bool = False
    batch_size: int = 5000
    progress: Callable[[int, int, int, int], None] | None = None  # (bytes read, file size, rows read, rejected)


class Rejects:
    """The rejected rows: counted, the first ``keep`` kept for the report, all written to a CSV if asked."""

    keep = 1000

    def __init__(self, path: str | Path | None, header: list[str], delimiter: str):
        self.count = 0
        self.first: list[results.RejectedRow] = []
        self.path = Path(path) if path is not None else None
        self._file: IO[str] | None = None
        if self.path is not None:
            try:
                fd, tmp = tempfile.mkstemp(prefix=".rejects-", suffix=".csv", dir=self.path.parent or ".")
            except OSError as exc:
                raise InvalidInputError(N_("cannot write the rejects file {path}: {strerror}"), path=self.path,
                                        strerror=exc.strerror or exc) from None
            self._tmp = Path(tmp)
            # UTF-8 with a BOM, the input's delimiter: Excel opens it as it opened the input
            self._file = open(fd, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115 (closed in finish/discard)
            self._writer = csv.writer(self._file, delimiter=delimiter)
            self._writer.writerow([*header, "line", "reason"])

    def add(self, line: int, cells: list[str], reason: str) -> None:
        """A rejected row and why: its ``reason`` (a ``Message``: its English text, with ``message_id`` and
        ``params`` beside it in the report, shown in the reader's language); the rejects file has it in the
        language of the one who imports."""
        self.count += 1
        if not isinstance(reason, Message):
            reason = Message(reason)
        if len(self.first) < self.keep:
            machine = i18n.message_json(reason)
            self.first.append({"line": line, "reason": str(reason), "message_id": machine["message_id"],
                               "params": machine["params"]})
        if self._file is not None:
            self._writer.writerow([*cells, line, i18n.message_text(reason)])

    def finish(self) -> None:
        if self._file is not None and self.path is not None:
            self._file.close()
            self._tmp.replace(self.path)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._tmp.unlink(missing_ok=True)


class BulkImport:
    """One CSV import inside the caller's transaction (see the module's docstring)."""

    def __init__(self, conn: Connection, *, actor: policy.Actor, spec: ProcessSpec, version: int, at: dt.datetime,
                 specs: Callable[[str, int], ProcessSpec], options: ImportOptions, user: policy.UserLookup):
        self.conn = conn
        self.actor = actor
        self.spec = spec
        self.version = version
        self.at = at
        self.specs = specs
        self.options = options
        self._user = user
        self._owners: dict[str, policy.Actor | Message] = {}  # owner name -> the user, or why they cannot own
        self.default_owner = self._owner_row(options.owner) if options.owner else None
        if isinstance(self.default_owner, str):
            raise InvalidInputError(N_("--owner: {default_owner}"), default_owner=self.default_owner)
        self.stats = _no_counts()
        self._templates: dict[tuple[bool, ...], tuple[LeadState, actions.Entry | None]] = {}
        self._conditional = [t for t in spec.first_stage.all_tasks if t.when is not None]
        self._at = store.driver_value(conn, leads.c.created_at, at)
        self._postgres = conn.dialect.name == "postgresql"
        self.first_client_id: int | None = None
        self.lead_ids: list[int] = []  # first and last lead id of the import
        # ONE Assigner for the whole import, made at the first row the rules place (it locks the teams'
        # round-robin cursors until the import ends): it reads the teams and loads once and counts what it places
        self.assigner: Assigner | None = None
        self._owned: dict[str, int] = {}  # leads this batch gave an owner by name: not yet in stage_counts
        self.given = notices.Given(actor.name)  # the leads given to others: one digest mail each (engine/notices.py)

    # -- owners: assignment.owner_of_new_lead decides, as for leads.add ---------------------------
    def _owner_row(self, name: str) -> policy.Actor | Message:
        """The owner named in the file or by --owner, or why they cannot own this lead."""
        if name not in self._owners:
            try:
                owner = self._user(name)
                policy.require_can_give(self.actor, owner, Message(N_("import leads for {name}"), name=name))
                self._owners[name] = owner
            except LeadflowError as exc:
                self._owners[name] = message_of_error(exc)
        return self._owners[name]

    def place(self, batch: list[_Pending]) -> None:
        """Who owns each new lead: the row's owner column, else ``--owner``, else nobody yet (``--assign auto``:
        the assignment rules); an unowned lead waits in the importing manager's team, as with ``add_lead``."""
        for item in batch:
            q = item.inquiry
            named = self._owners[q.owner] if q.owner else self.default_owner
            assert not isinstance(named, str)  # a refused owner's rows were rejected when read
            item.owner, item.team, item.assignment = owner_of_new_lead(
                self.actor, named, self.spec, q.product, rules.facts(
                    q.fields, value_minor=q.value_minor, source=q.source, product=q.product, team=None),
                self._assigner)
            if named is not None:
                self._owned[named.name] = self._owned.get(named.name, 0) + 1
                if self.assigner is not None and item.owner in self.assigner.load:
                    self.assigner.load[item.owner] += 1  # the cap counts them, as add_lead's would
            if item.assignment is not None and item.owner is not None:
                self.stats["assigned_by_rules"] += 1
            elif item.owner is None:
                self.stats["unassigned"] += 1

    def _assigner(self) -> Assigner:
        if self.assigner is None:
            self.assigner = Assigner.load_for(self.conn, self.spec)
            for name, count in self._owned.items():  # this batch's leads so far are not in stage_counts yet
                if name in self.assigner.load:
                    self.assigner.load[name] += count
        return self.assigner

    # -- clients: the same person is one client -------------------------------------------------------
    def _resolve_clients(self, batch: list[_Pending]) -> list[tuple[Any, ...]]:
        """Attach each row to the client with its normalised e-mail (else phone): one who existed before, one an
        earlier row created; new clients get ids. Returns the new client rows."""
        emails = {p.inquiry.email_norm for p in batch} - {None}
        phones = {p.inquiry.phone_norm for p in batch} - {None}
        by_email = self._lookup(clients.c.email_norm, emails)  # type: ignore[arg-type]
        by_phone = self._lookup(clients.c.phone_norm, phones)  # type: ignore[arg-type]
        hidden = self._hidden({*by_email.values(), *by_phone.values()})
        new: list[_Pending] = []
        for item in batch:
            e, ph = item.inquiry.email_norm, item.inquiry.phone_norm
            found = (by_email.get(e) if e else None) or (by_phone.get(ph) if ph else None)
            if found in hidden:  # another's client: a new one, and the possible duplicate recorded for a manager
                item.duplicate_of, found = found, None
                self.stats["possible_duplicates"] += 1
            if found is None:
                new.append(item)
                item.client_id = -len(new)  # a client this batch creates, numbered when ids are reserved
            else:
                item.client_id = found
                earlier_row = found < 0 or (self.first_client_id is not None and found >= self.first_client_id)
                if earlier_row:
                    self.stats["repeated_clients"] += 1
                else:
                    self.stats["existing_clients"] += 1
            if e and by_email.setdefault(e, item.client_id) in hidden:
                by_email[e] = item.client_id
            if ph and by_phone.setdefault(ph, item.client_id) in hidden:
                by_phone[ph] = item.client_id
        ids = store.reserve_ids(self.conn, clients, len(new))
        if ids and self.first_client_id is None:
            self.first_client_id = ids[0]
        for item in batch:
            if item.client_id < 0:
                item.client_id = ids[-item.client_id - 1]
        self.stats["new_clients"] += len(new)
        return [store.client_row(item.client_id, name=q.name, company=q.company, email=q.email, phone=q.phone,
                                 tax_id=None, created_at=self._at) for item in new for q in [item.inquiry]]

    def _hidden(self, found: set[int]) -> set[int]:
        """Those of the existing clients ``found`` that the importing user may not see (``policy.visible_clients``)."""
        existing = sorted(i for i in found if i > 0)
        everything = sa.select(clients.c.id)
        if not existing or policy.visible_clients(self.actor, everything) is everything:
            return set()
        visible: set[int] = set()
        for start in range(0, len(existing), store.CHUNK):
            chunk = existing[start:start + store.CHUNK]
            visible.update(self.conn.execute(policy.visible_clients(
                self.actor, everything.where(clients.c.id.in_(chunk)))).scalars())
        return set(existing) - visible

    def _lookup(self, column: sa.Column[Any], keys: set[str]) -> dict[str, int]:
        if not keys:
            return {}
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if self._postgres:
                cursor.execute(f"SELECT {column.name}, id FROM clients WHERE {column.name} = ANY(%s) "
                               "AND merged_into IS NULL ORDER BY id",
                               (list(keys),))
            else:
                found: list[tuple[str, int]] = []
                ordered = list(keys)
                for start in range(0, len(ordered), 30_000):  # SQLite allows 32,766 parameters
                    chunk = ordered[start:start + 30_000]
                    cursor.execute(f"SELECT {column.name}, id FROM clients WHERE {column.name} IN "
                                   f"({','.join('?' * len(chunk))}) AND merged_into IS NULL ORDER BY id", chunk)
                    found += cursor.fetchall()
                return first_ids(found)
            return first_ids(list(cursor.fetchall()))
        finally:
            cursor.close()

    # -- leads -----------------------------------------------------------------------------------------
    def _template(self, item: _Pending, data: dict[str, Any]) -> tuple[LeadState, actions.Entry | None]:
        """A new lead's state from ``state.apply`` of its ``created`` event, and the first stage's ``on_enter``.

        What the event does at the first stage (its tasks, deadlines and light) depends only on the instant
        and on which of the stage's conditional tasks apply, so it is computed once per such outcome."""
        facts = rules.facts(data["fields"], value_minor=data["value_minor"], source=data["source"],
                            product=data["product"], team=data["team"]) if self._conditional else {}
        key = tuple(rules.applies(t, facts, self.spec) for t in self._conditional)
        if key not in self._templates:
            state = apply(None, Event(EventKind.CREATED, self.at, self.actor.name, data), self.specs)
            # the first stage's on_enter actions, planned once for the outcome and given to each lead with its keys
            entry = actions.on_enter(self.spec, dataclasses.replace(state, id=0), self.at)
            self._templates[key] = (state, entry if entry.records or entry.mails else None)
        return self._templates[key]

    def flush(self, batch: list[_Pending]) -> None:
        """Write a batch: its new clients, then its leads through the write path (``store.write_leads``: the lead
        rows, the first stage's tasks, the projections, the ``created`` events), then the mails they queue."""
        if batch:
            with store.collector_paused(len(batch)):
                self._write(batch)

    def _write(self, batch: list[_Pending]) -> None:
        self.place(batch)
        client_rows = self._resolve_clients(batch)
        store.insert_clients(self.conn, client_rows)
        # the leads of one first-stage outcome: its template with each lead's own values (``_OWN_ATTRS``)
        groups: dict[int, store.NewLeads] = {}
        entries: list[actions.Entry] = []
        process, version, actor = self.spec.id, self.version, self.actor.name
        for item, lead_id in zip(batch, store.reserve_ids(self.conn, leads, len(batch)), strict=True):
            q = item.inquiry
            item.lead_id = lead_id
            data = {"client_id": item.client_id, "process": process, "process_version": version,
                    "owner": item.owner, "team": item.team, "source": q.source, "product": q.product,
                    "value_minor": q.value_minor, "fields": q.fields}
            if item.assignment is not None:
                data["assignment"] = item.assignment
            if item.duplicate_of is not None:
                data["possible_duplicate_of"] = item.duplicate_of
            template, on_enter = self._template(item, data)
            if on_enter is not None:
                entry = on_enter.for_lead(lead_id)
                data["actions"] = entry.records
                entries.append(entry)
            # what apply makes of this lead's event: the template with the lead's own values (its tasks alike)
            group = groups.get(id(template))
            if group is None:
                group = groups[id(template)] = store.NewLeads(template, _OWN_ATTRS, [], [])
            own, evs = group.values, group.events
            assert isinstance(own, list) and isinstance(evs, list)
            own.append((lead_id, item.client_id, item.owner, item.team, q.source, q.product, q.value_minor, q.fields))
            self.given.add(item.owner, lead_id, template.stage)
            evs.append([Event(EventKind.CREATED, self.at, actor, data)])
        store.write_leads(self.conn, (), list(groups.values()))
        self._owned.clear()  # counted in stage_counts now
        self.stats["mails_queued"] += actions.store(self.conn, entries)
        self.stats["imported"] += len(batch)
        if not self.lead_ids:
            self.lead_ids.append(batch[0].lead_id)
        self.lead_ids[1:] = [batch[-1].lead_id]

    def finish(self) -> None:
        if self.assigner is not None:
            self.assigner.save(self.conn)


#: A new lead's own values, in the order of ``BulkImport._write``'s tuples; the rest is its outcome's template.
_OWN_ATTRS = ("id", "client_id", "owner", "team", "source", "product", "value_minor", "fields")


def first_ids(rows: list[tuple[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, client_id in rows:
        out.setdefault(key, client_id)
    return out


def run_import(conn: Connection, path: str | Path, *, actor: policy.Actor, spec: ProcessSpec, version: int,
               at: dt.datetime, specs: Callable[[str, int], ProcessSpec], user: policy.UserLookup,
               options: ImportOptions) -> results.ImportReport:
    """Import ``path`` into the transaction of ``conn``; returns the report (see docs/intake.md).

    The caller commits when ``report["status"] == "imported"`` and rolls back otherwise (a dry run, an
    aborted import); a problem with the file as a whole raises ``InvalidInputError``."""
    path = Path(path)
    if options.on_error not in ("skip", "abort"):
        raise InvalidInputError(N_("on_error {on_error!r} is not one of: skip, abort"), on_error=options.on_error)
    if options.assign not in (None, "auto"):
        raise InvalidInputError(N_("assign {assign!r} is not 'auto' (the assignment rules)"), assign=options.assign)
    if options.owner and options.assign:
        raise InvalidInputError("give either an owner for every lead or --assign auto, not both")
    sha256 = file_sha256(path)
    earlier = conn.execute(sa.select(imports).where(imports.c.process == spec.id, imports.c.sha256 == sha256)
                           .order_by(imports.c.id.desc()).limit(1)).mappings().first()
    if earlier is not None and not options.again:
        raise InvalidInputError(
            N_("{name} was already imported into {process} (import {earlier_id} by {actor} on "
               "{finished_at:%Y-%m-%d %H:%M}: {imported} leads); importing it again would "
               "add every lead a second time (to do it anyway: --again)"), name=path.name, process=spec.id,
            earlier_id=earlier['id'], actor=earlier['actor'], finished_at=earlier['finished_at'],
            imported=earlier['imported'])
    mapping = options.mapping or {}
    source = CsvFile(path, encoding=options.encoding or mapping.get("encoding"), delimiter=mapping.get("delimiter"))
    try:
        plan = plan_columns(spec, source.header, mapping.get("columns"))
        for first, second, target in plan.duplicates:
            raise InvalidInputError(N_("columns {first!r} and {second!r} both give the lead's {target}; send one of "
                                       "them to 'ignore' in a mapping file"), first=first, second=second, target=target)
        if not any(c.target == "name" for c in plan.columns):
            raise InvalidInputError(
                N_("{name} has no column for the client's name (a header such as 'name'); its columns are "
                   "{columns}: map one to name in a mapping file"), name=path.name,
                columns=', '.join(map(repr, source.header)))
        bulk = BulkImport(conn, actor=actor, spec=spec, version=version, at=at, specs=specs, options=options,
                          user=user)
        rows, rejects = read_rows(source, options, lambda rejects: _read(source, plan, bulk, rejects, options))
    finally:
        source.close()
    status = outcome(options, rejects)
    report: results.ImportReport = {
        "status": status, "file": str(path), "sha256": sha256, "process": spec.id, "process_version": version,
        "encoding": source.encoding, "delimiter": source.delimiter,
        "columns": {c.header: c.target for c in plan.columns}, "ignored_columns": plan.ignored,
        "unknown_columns": [{"column": h, "did_you_mean": plan.closest(spec, h)} for h in plan.unknown],
        "history_columns": history_headers(spec, source.header, [*plan.unknown, *plan.ignored]),
        "rows": rows, **bulk.stats, "rejected": rejects.count,
        "rejects": rejects.first, "rejects_file": str(options.rejects) if options.rejects else None,
        "first_lead_id": bulk.lead_ids[0] if bulk.lead_ids else None,
        "last_lead_id": bulk.lead_ids[-1] if bulk.lead_ids else None, "import_id": None, "history": None,
    }
    if status == "aborted":  # nothing was written: none of the batches written before the bad row counts
        report = {**report, **_no_counts(), "first_lead_id": None, "last_lead_id": None}
    if status == "dry_run":  # the digests it would queue, as it counts the stage actions' mails
        report["mails_queued"] += len(bulk.given.leads)
    if status != "imported":
        return report
    bulk.finish()
    report["import_id"] = store.new_id(conn.execute(sa.insert(imports).values(
        sha256=sha256, process=spec.id, file_name=path.name, actor=actor.name, started_at=at,
        finished_at=at, rows=rows, imported=bulk.stats["imported"], new_clients=bulk.stats["new_clients"],
        rejected=rejects.count)))
    report["mails_queued"] += bulk.given.queue(conn, at)  # a digest to each salesperson given leads
    return report


def read_rows(source: CsvFile, options: ImportOptions, read: Callable[[Rejects], int]) -> tuple[int, Rejects]:
    """``read(rejects)`` over the file, its rejected rows collected (and written to ``options.rejects``, kept only
    when the reading finished); returns the number of records and the rejects."""
    rejects = Rejects(options.rejects, source.header, source.delimiter)
    try:
        rows = read(rejects)
    except BaseException:
        rejects.discard()
        raise
    rejects.finish()
    return rows, rejects


def outcome(options: ImportOptions, rejects: Rejects) -> str:
    """What an import that read its file comes to: imported, dry_run, or aborted (a bad row with on_error abort)."""
    if options.dry_run:
        return "dry_run"
    return "aborted" if rejects.count and options.on_error == "abort" else "imported"


def _no_counts() -> results.ImportCounts:
    return {"imported": 0, "new_clients": 0, "existing_clients": 0, "repeated_clients": 0, "possible_duplicates": 0,
            "assigned_by_rules": 0, "unassigned": 0, "mails_queued": 0}


def _read(source: CsvFile, plan: ColumnPlan, bulk: BulkImport, rejects: Rejects, options: ImportOptions) -> int:
    """Check every record, batch the good ones, flush full batches; returns the number of records."""
    width = len(source.header)
    columns = plan.columns
    owner_index = next((c.index for c in columns if c.target == "owner"), None)
    batch: list[_Pending] = []
    writing = True
    rows = 0
    for line, cells in source.records():
        rows += 1
        if len(cells) != width and not (len(cells) > width and not any(c.strip() for c in cells[width:])):
            rejects.add(line, cells, Message(ROW_WIDTH, cells=len(cells), width=width))
            writing = writing and options.on_error == "skip"
            continue
        values = [(c, cell(cells[c.index])) for c in columns]
        inquiry, errors = check_inquiry(values, bulk.spec.calendar)
        if inquiry is not None and inquiry.owner:
            row = bulk._owner_row(inquiry.owner)
            if isinstance(row, str):
                header = source.header[owner_index] if owner_index is not None else "owner"
                errors.append(FieldError(header, row))
        if errors:
            rejects.add(line, cells, several([e.message for e in errors]))
            writing = writing and options.on_error == "skip"
            continue
        if writing:
            assert inquiry is not None
            batch.append(_Pending(line, inquiry))
            if len(batch) >= options.batch_size:
                bulk.flush(batch)
                batch = []
                if options.progress is not None:
                    options.progress(source.bytes_read, source.size, rows, rejects.count)
    if writing:
        bulk.flush(batch)
    if options.progress is not None:
        options.progress(source.size, source.size, rows, rejects.count)
    return rows


def cell(text: str) -> str:
    """A cell as the inquiry's value: an export's apostrophe undone, Windows line breaks inside it made plain."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return unneutralise(text) if text[:1] == "'" else text
