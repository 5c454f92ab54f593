"""Leads coming in and going out (``engine.intake``): the CSV import and export, and the web form's lead.

The parsing, checking and writing of an import are the engine/intake package's; this service checks who asks and
runs it in its transaction.
"""

from __future__ import annotations

import contextvars
import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from engine import clock, policy, results, rules, store
from engine.errors import InvalidInputError, NotFoundError
from engine.i18n import N_, Message
from engine.services.context import Service, operation
from engine.vocab import is_id


class IntakeService(Service):
    """``engine.intake``: import, export and submit leads."""

    name = "intake"

    @operation
    def import_csv(self, path: str | Path, *, process: str, mapping: str | Path | None = None,
                   owner: str | None = None, assign: str | None = None, dry_run: bool = False,
                   on_error: str = "skip", encoding: str | None = None, rejects: str | Path | None = None,
                   again: bool = False, progress: Callable[[int, int, int, int], None] | None = None,
                   history: bool = False, map_reason: Mapping[str, str] | str | None = None,
                   ) -> results.ImportReport:
        """Import the leads of a CSV file into ``process`` (managers and admins), in one transaction.

        Every row is checked like ``leads.add``'s input; rows whose e-mail or phone belongs to an existing client
        (or to an earlier row) become new leads of that client. ``on_error="skip"`` imports the good rows and
        reports the others (``rejects``: also as a CSV file); ``"abort"`` imports nothing if any row is bad;
        ``dry_run`` checks everything and imports nothing. The report is documented in docs/intake.md.

        ``history`` (admins): each row is a deal from another CRM with its stage or status and its dates, written as
        the events that made it (engine/intake/history_import.py); ``map_reason`` maps the old system's closure
        reasons to the process's ({"Too expensive": "price"}, or lines of OLD=NEW). Importing the same file again
        changes nothing.
        """
        from engine import intake

        ctx = self.ctx
        if ctx.conn is not None:
            raise RuntimeError("import_csv runs in a transaction of its own; call it outside Engine.transaction()")
        # a migration into a database without leads may have it for itself (engine/store/loading.py): who may not
        # import is refused before the import's connection changes its journal, not only inside its transaction
        size = Path(path).stat().st_size if history and Path(path).is_file() else 0
        if size:
            with ctx.reading() as conn:
                policy.require_can_import(ctx.actor(conn), history=history)
        try:
            with ctx.transaction(around=lambda conn: store.alone(conn, size)) as conn:
                actor = ctx.actor(conn)
                spec = ctx.spec(conn, process)
                policy.require_can_import(actor, history=history)  # before any file of theirs is read
                mapped = intake.load_mapping(mapping) if mapping is not None else None
                reasons = _history_options(history, map_reason, owner, assign, mapped)
                options = intake.ImportOptions(
                    process=process, mapping=mapped,
                    owner=owner, assign=assign, dry_run=dry_run, on_error=on_error, encoding=encoding,
                    rejects=rejects, again=again, progress=progress)
                if history:
                    version = ctx.version_of(conn, spec)
                    report = intake.run_history_import(
                        conn, path, actor=actor, spec=spec, version=version, at=clock.now(),
                        specs=ctx.specs_lookup(conn), user=lambda name: ctx.user(conn, name),
                        allowed=ctx.machine(spec, version).allowed, options=options,
                        reason_map=reasons)
                    if report["status"] != "imported":
                        raise _Undo(report)
                else:
                    report = intake.run_import(
                        conn, path, actor=actor, spec=spec, version=ctx.version_of(conn, spec), at=clock.now(),
                        specs=ctx.specs_lookup(conn), user=lambda name: ctx.user(conn, name), options=options)
                    if report["status"] != "imported":
                        raise _Undo(report)
        except _Undo as undo:
            return undo.report
        if report["imported"]:  # the planner's statistics, when the tables have outgrown them (docs/intake.md)
            with ctx.transaction() as conn:
                store.keep_statistics(conn)
        return report

    @operation
    def start_import(self, path: str | Path, *, process: str, mapping: str | Path | None = None,
                     owner: str | None = None, assign: str | None = None, on_error: str = "skip",
                     encoding: str | None = None, again: bool = False, history: bool = False,
                     map_reason: Mapping[str, str] | str | None = None) -> results.ImportJob:
        """Start importing ``path`` as a job of this process (the server): ``import_csv`` with these arguments in
        a thread, as the acting user, on a copy of the file; returns the job at once (``import_job`` reads it
        later: its progress, then its report or why it failed). Who may import and an unknown process are refused
        here, before any job exists; everything else the import finds (a bad file, bad rows) ends the job."""
        from engine import intake
        from engine.intake import import_jobs

        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            spec = ctx.spec(conn, process)
            policy.require_can_import(actor, history=history)
            # refused now, not as a failed job
            _history_options(history, map_reason, owner, assign,
                             intake.load_mapping(mapping) if mapping is not None else None)
            kept = import_jobs.keep(Path(path))
            try:
                job_id = import_jobs.create(conn, actor=actor.name, process=spec.id, file_name=kept.name,
                                            size=kept.stat().st_size, at=clock.now())
            except BaseException:
                shutil.rmtree(kept.parent, ignore_errors=True)
                raise
        options = {"process": spec.id, "mapping": mapping, "owner": owner, "assign": assign, "on_error": on_error,
                   "encoding": encoding, "again": again, "history": history, "map_reason": map_reason}
        runner = self.engine.as_user(ctx.user_name)  # a context of its own: this one serves its request
        # the starter's language goes with the job (its messages), as the contextvars of this request
        threading.Thread(target=contextvars.copy_context().run, args=(import_jobs.run, runner, job_id, kept, options),
                         name=f"leadflow-import-{job_id}", daemon=True).start()
        return self.import_job(job_id)

    @operation
    def import_job(self, job_id: int) -> results.ImportJob:
        """An import job (``start_import``): whoever started it and admins see it; to anyone else it does not
        exist."""
        from engine.intake import import_jobs

        ctx = self.ctx
        with ctx.reading() as conn:  # not a writer: on SQLite the running import is the one writer
            actor = ctx.actor(conn)
            row = import_jobs.read(conn, job_id) if is_id(job_id) else None
            if row is None or not policy.may_see_job(actor, row["actor"]):
                raise NotFoundError(N_("import job {job_id} does not exist"), job_id=job_id)
            return import_jobs.view(ctx.db, row, clock.now())

    @operation
    def export_csv(self, out: IO[str], *, process: str | None = None, excel: bool = False) -> int:
        """Write the leads the acting user may see (of ``process``, else of every process) as CSV; returns how
        many. Cells a spreadsheet would run as formulas are neutralised; the file imports back as it is."""
        from engine import intake

        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            return intake.export_csv(conn, out, actor=actor, specs=ctx.latest_specs(conn, process), excel=excel)

    @operation
    def export_table(self, *, process: str | None = None) -> results.ExportTable:
        """The leads the acting user may see (of ``process``, else of every process) as a typed table for a
        spreadsheet (``leadflow export --xlsx``): the columns, each one's type, each process's currency and the
        rows in their stored forms (money a decimal string, dates ISO)."""
        from engine import intake

        ctx = self.ctx
        with ctx.transaction() as conn:
            actor = ctx.actor(conn)
            specs = ctx.latest_specs(conn, process)
            columns, types, rows = intake.export_rows(conn, actor=actor, specs=specs)
            return {"columns": columns, "types": types, "currencies": {s.id: s.currency for s in specs},
                    "rows": list(rows)}

    @operation
    def submit(self, values: Mapping[str, Any], *, process: str | None = None) -> results.Submission:
        """A lead from a web form, acting as its source (the HTTP intake's ``POST /v1/leads``).

        ``values`` are named like an import's columns (attributes, field ids or labels; fields may also come as
        a ``fields`` object) with ``process`` among them or as the default. Every refused value is reported at
        once (``InquiryErrors.errors``); an e-mail or phone of an existing client adds the lead to that client
        when all its leads are in the form's scope (``policy.may_join_client``: the lead's team, the token's or
        the process's ``default_team``), and otherwise gives it a client of its own, recorded as
        ``possible_duplicate_of`` for a manager; the owner is left to ``leads.add`` (the assignment rules).
        Returns ``{"lead": ..., "client_existed": ...}``.
        """
        from engine import intake

        values = dict(values)
        chosen = values.pop("process", None) or process
        if not isinstance(chosen, str) or not chosen.strip():
            raise intake.InquiryErrors([intake.FieldError("process", Message(
                N_("which process the lead is for is missing: send 'process' or use a token with a default process"))
                if chosen in (None, "") else Message(N_("process must be a name, got {value!r}"), value=chosen))])
        ctx = self.ctx
        with ctx.transaction() as conn:
            try:
                spec = ctx.spec(conn, chosen.strip())
            except NotFoundError as exc:
                raise intake.InquiryErrors([intake.FieldError.of("process", exc)]) from None
            inquiry = intake.check_submission(spec, values)
            found = intake.find_client(conn, inquiry.email_norm, inquiry.phone_norm)  # first: PostgreSQL's locks
            ctx.client_looked_up = (inquiry.email_norm, inquiry.phone_norm, found)  # leads.add asks no more
            lead = self.engine.leads.add(
                process=spec.id, name=inquiry.name, company=inquiry.company, email=inquiry.email,
                phone=inquiry.phone, source=inquiry.source or ctx.user_name, product=inquiry.product,
                value=rules.minor_to_money(inquiry.value_minor), owner=None, fields=inquiry.fields)
            # a client out of the token's scope is not named to the form: it got a new one, as for a new person
            lead.pop("possible_duplicate", None)
            return {"lead": lead, "client_existed": found is not None and lead["client_id"] == found}


class _Undo(Exception):  # the way out of a transaction that must not commit, not an error
    """Rolls back a transaction that ran to its end but must not commit (a dry run), carrying its result."""

    def __init__(self, report: results.ImportReport):
        super().__init__("rolled back")
        self.report = report


def _history_options(history: bool, map_reason: Mapping[str, str] | str | None, owner: str | None,
                     assign: str | None, mapped: Mapping[str, Any] | None) -> dict[str, str]:
    """The options that only a history import takes, or that it refuses, checked before a file is read: the old
    system's reasons mapped (``intake.reason_map``, over the mapping file's ``reasons``; an import of new inquiries
    has no closed deals to map), and no owner or assignment for the whole file (a history takes each deal's owner
    from its row)."""
    from engine import intake

    in_file = dict(mapped.get("reasons") or {}) if mapped else {}
    if not history:
        if map_reason or in_file:
            raise InvalidInputError(N_("closure reasons are mapped only for an import with history (deals closed in "
                                       "another system); import the file with history, or leave the mapping out"))
        return {}
    if owner or assign:
        raise InvalidInputError(N_("a history import takes each deal's owner from its owner column; an owner or an "
                                   "assignment for the whole file is for new inquiries"))
    return {**in_file, **intake.reason_map(map_reason)}
