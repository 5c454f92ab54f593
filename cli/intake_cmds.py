"""Intake commands: import and export CSV files, API tokens, and the HTTP intake service. Parse, call, print."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.app import App, pass_app
from cli.files import force_option, writable
from cli.output import RecordId, console, echo, emit, json_option, print_change, short_time, table, warn
from engine.i18n import N_, _, message_text, ngettext

if TYPE_CHECKING:  # the results' types only: the remote path imports no engine module
    from engine import results

#: Rejected rows printed by ``import`` (all of them are in the report's JSON up to 1000, and in --rejects).
REJECTS_SHOWN = 50


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--process", "process_", required=True, help="The process the leads enter, e.g. photovoltaics.")
@click.option("--mapping", type=click.Path(dir_okay=False), help="A YAML file naming what other headers mean.")
@click.option("--owner", help="Owner of the leads whose row names none (default: the assignment rules).")
@click.option("--assign", type=click.Choice(["auto"]),
              help="auto: leave the owner of rows that name none to the assignment rules (the default).")
@click.option("--dry-run", is_flag=True, help="Check every row and report; import nothing.")
@click.option("--on-error", type=click.Choice(["skip", "abort"]), default="skip", show_default=True,
              help="skip: import the good rows and report the bad; abort: import nothing if any row is bad.")
@click.option("--rejects", type=click.Path(dir_okay=False, writable=True),
              help="Write the rejected rows to this CSV, with their line number and reason.")
@force_option
@click.option("--encoding", help="The file's encoding when it is not UTF-8, e.g. cp1250 or cp1251.")
@click.option("--again", is_flag=True, help="Import a file that was already imported into this process.")
@click.option("--history", is_flag=True,
              help="Deals from another CRM with their stage or status and dates (admins): docs/intake.md.")
@click.option("--map-reason", "map_reason", multiple=True, metavar="OLD=NEW",
              help="With --history: the old system's closure reason OLD is the process's NEW; repeatable; '*=NEW' "
                   "for every reason nothing else maps.")
@json_option
@pass_app
def import_(app: App, file: str, process_: str, mapping: str | None, owner: str | None, assign: str | None,
            dry_run: bool, on_error: str, rejects: str | None, force: bool, encoding: str | None, again: bool,
            history: bool, map_reason: tuple[str, ...], as_json: bool) -> None:
    """Import leads from a CSV file (managers and admins), all in one transaction.

    Columns named like the lead's attributes (name, company, email, phone, source, product, value, owner)
    or the process's fields are recognised; rows with the e-mail or phone of an existing client become new
    leads of that client.
    """
    if owner and assign:
        raise click.UsageError(_("give either --owner or --assign auto, not both"))
    if map_reason and not history:
        raise click.UsageError(_("--map-reason maps the closure reasons of a --history import"))
    if rejects and app.remote:
        raise click.UsageError(_("--rejects writes a file where the import runs, which is the server: through a "
                                 "server the report (--json) lists the rejected rows' lines and reasons"))
    if rejects is not None:
        writable(rejects, force=force, option="--rejects")
    with _progress(enabled=not as_json) as progress:
        report = app.engine.intake.import_csv(file, process=process_, mapping=mapping, owner=owner, assign=assign,
                                       dry_run=dry_run, on_error=on_error, encoding=encoding, rejects=rejects,
                                       again=again, progress=progress, history=history,
                                       map_reason="\n".join(map_reason) or None)
    emit(report, as_json, _render_import)
    if report.get("possible_duplicates") and report["status"] != "aborted":
        warn(ngettext("Warning: {count} row names a client by e-mail or phone that you may not see (another "
                      "team's); it got a client of its own, and a manager will review the pair in 'leadflow "
                      "client duplicates'.",
                      "Warning: {count} rows name clients by e-mail or phone that you may not see (another "
                      "team's); they got clients of their own, and a manager will review the pairs in 'leadflow "
                      "client duplicates'.", report["possible_duplicates"], count=report["possible_duplicates"]))
    if report["status"] == "aborted":
        sys.exit(1)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int, int, int, int], None] | None]:
    """A rich progress bar on stderr when it is a terminal; nothing when output goes to a pipe or is JSON."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("importing"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TextColumn("{task.fields[rows]:,} rows"), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("import", total=None, rows=0)

        def update(done: int, total: int, rows: int, _rejected: int) -> None:
            bar.update(task, completed=done, total=total, rows=rows)

        yield update


def _render_import(r: results.ImportReport) -> None:
    """The import's report for a person, in their language (``--json`` gives the same figures, neutral)."""
    name = Path(r["file"]).name
    attached = (ngettext("{count} new client", "{count} new clients", r["new_clients"])
                + _(", {existing} existing, {repeated} repeated in the file", existing=r["existing_clients"],
                    repeated=r["repeated_clients"])
                + (ngettext(", {count} possible duplicate of another's client (see 'leadflow client duplicates')",
                            ", {count} possible duplicates of another's client (see 'leadflow client duplicates')",
                            r["possible_duplicates"]) if r.get("possible_duplicates") else ""))
    rejected = ngettext("{count} row rejected", "{count} rows rejected", r["rejected"])
    if r["status"] == "imported" and r["import_id"] is None:  # the same file again: nothing written, none recorded
        echo(_("Nothing changed in {process} from {file}, no import recorded: {clients}; {rejected}.",
               process=r["process"], file=name, clients=attached, rejected=rejected))
    elif r["status"] == "imported":
        echo(ngettext("Imported {count} lead into {process} from {file}", "Imported {count} leads into {process} from "
                      "{file}", r["imported"], process=r["process"], file=name)
             + _(" (import {id}, leads {first}-{last}): {clients}; {rejected}.", id=r["import_id"],
                 first=r["first_lead_id"] or "-", last=r["last_lead_id"] or "-", clients=attached, rejected=rejected))
    elif r["status"] == "dry_run":
        echo(ngettext("Dry run: {count} lead would be imported into {process} from {file}",
                      "Dry run: {count} leads would be imported into {process} from {file}", r["imported"],
                      process=r["process"], file=name)
             + _(" ({clients}); {rejected}. Nothing was imported.", clients=attached, rejected=rejected))
    else:
        echo(_("Nothing imported from {file}: {rejected}, and --on-error abort imports all rows or none.", file=name,
               rejected=rejected))
    if r["history"] is not None and r["status"] != "aborted":
        h = r["history"]
        echo(ngettext("History: {count} deal moved on", "History: {count} deals moved on", h["updated"])
             + _(", {unchanged} unchanged; of the deals written {open} open, {won} won, {lost} lost.",
                 unchanged=h["unchanged"], open=h["open"], won=h["won"], lost=h["lost"]))
    if r["status"] != "aborted":
        parts = []
        if r["assigned_by_rules"]:
            parts.append(ngettext("the assignment rules placed {count} lead", "the assignment rules placed {count} "
                                  "leads", r["assigned_by_rules"]))
        if r["unassigned"]:
            parts.append(ngettext("{count} lead without an owner waits in the manager's queue (leadflow lead list "
                                  "--unassigned)", "{count} leads without an owner wait in the manager's queue "
                                  "(leadflow lead list --unassigned)", r["unassigned"]))
        if r["mails_queued"] and r["status"] == "dry_run":
            parts.append(ngettext("{count} mail would be queued for run-due", "{count} mails would be queued for "
                                  "run-due", r["mails_queued"]))
        elif r["mails_queued"]:
            parts.append(ngettext("{count} mail queued for run-due", "{count} mails queued for run-due",
                                  r["mails_queued"]))
        if parts:
            text = "; ".join(parts)
            echo(f"{text[0].upper()}{text[1:]}.")
    if r["ignored_columns"]:
        echo(_("Columns read past: {columns}", columns=", ".join(r["ignored_columns"])))
    if r["unknown_columns"]:
        # each column's hint made first: pybabel extracts no message given inside another one's parameters
        unknown = [c["column"] + (_(" (did you mean {name}?)", name=c["did_you_mean"]) if c["did_you_mean"] else "")
                   for c in r["unknown_columns"]]
        echo(_("Columns not recognised, ignored (map them with --mapping): {columns}", columns=", ".join(unknown)))
    if r.get("history_columns"):  # an older server's report has none
        echo(_("The columns {columns} give each deal's stage and dates, which an import of new leads leaves aside: "
               "import the file with --history (an admin) to bring each deal in as it stood.",
               columns=", ".join(r["history_columns"])))
    for reject in r["rejects"][:REJECTS_SHOWN]:
        # in the reader's language, from its template (through a server too: the report's JSON has it)
        echo(_("  line {line}: {reason}", line=reject["line"], reason=message_text(reject)))
    if r["rejected"] > REJECTS_SHOWN:
        more = (_("all of them are in {file}", file=r["rejects_file"]) if r["rejects_file"]
                else _("write them all with --rejects FILE"))
        echo(ngettext("  ... and {count} more rejected row ({more})", "  ... and {count} more rejected rows ({more})",
                      r["rejected"] - REJECTS_SHOWN, more=more))
    elif r["rejects_file"] and r["rejected"]:
        echo(_("Rejected rows written to {file}", file=r["rejects_file"]))


@click.command("export")
@click.option("--process", "process_", help="Only this process (default: every process).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write here (default: stdout).")
@click.option("--excel", is_flag=True, help="A BOM, semicolons and CRLF: what Excel opens directly.")
@click.option("--xlsx", "xlsx_file", type=click.Path(dir_okay=False), default=None, metavar="FILE.xlsx",
              help="Write an Excel workbook instead: numbers, amounts and dates as real cells, phones as text.")
@force_option
@pass_app
def export(app: App, process_: str | None, output: str | None, excel: bool, xlsx_file: str | None,
           force: bool) -> None:
    """Export the leads you may see as CSV; cells a spreadsheet would run as formulas are neutralised."""
    if xlsx_file is not None:
        if output is not None or excel:
            raise click.UsageError(_("--xlsx FILE writes a workbook: give it without --output and --excel"))
        _export_xlsx(app, process_, xlsx_file, force)
        return
    if output is None:
        # UTF-8 whatever the terminal's locale, the CSV's own line endings kept (CRLF for Excel)
        stream = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="", write_through=True)
        try:
            app.engine.intake.export_csv(stream, process=process_, excel=excel)
        finally:
            stream.detach()  # leave stdout itself open
        return
    target = writable(output, force=force, option="--output")
    partial = target.with_name(f".{target.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            count = app.engine.intake.export_csv(out, process=process_, excel=excel)
        partial.replace(target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise click.ClickException(_("cannot write {path}: {strerror}", path=output,
                                     strerror=exc.strerror or exc)) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    click.echo(ngettext("Exported {count} lead to {file}", "Exported {count} leads to {file}", count, file=output),
               err=True)


def _export_xlsx(app: App, process_: str | None, xlsx_file: str, force: bool) -> None:
    from cli.present.xlsx import write_workbook

    target = writable(xlsx_file, force=force, option="--xlsx")
    table = app.engine.intake.export_table(process=process_)
    partial = target.with_name(f".{target.name}.partial")
    try:
        count = write_workbook(table, partial)
        partial.replace(target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise click.ClickException(_("cannot write {path}: {strerror}", path=xlsx_file,
                                     strerror=exc.strerror or exc)) from None
    click.echo(ngettext("Exported {count} lead to {file}", "Exported {count} leads to {file}", count,
                        file=xlsx_file), err=True)


@click.group("token")
def token() -> None:
    """API tokens: integration tokens of the HTTP intake (admins) and personal access tokens."""


def _until(value: str | None) -> str:
    return _(", expires {when}", when=short_time(value)) if value else ""


@token.command("add")
@click.option("--source", help="Who sends with it, e.g. website; the leads' source and actor (integration).")
@click.option("--process", "process_", help="The process of requests that name none (integration).")
@click.option("--read", is_flag=True, help="Also let it read leads and boards (GET endpoints; integration).")
@click.option("--team", help="The team whose manager gets its leads that no assignment rule places (integration).")
@click.option("--personal", is_flag=True, help="A personal access token: it acts as you (or --owner).")
@click.option("--name", "name_", help="What a personal token is for, e.g. laptop.")
@click.option("--owner", help="The user a personal token acts as (admins; default: you).")
@click.option("--expires", "expires_days", type=click.IntRange(1), metavar="DAYS",
              help="Days until it expires (personal: default 90, at most 365; integration: default never).")
@click.option("--rate-limit", type=click.IntRange(1), metavar="N", help="Requests a minute it may make.")
@json_option
@pass_app
def token_add(app: App, source: str | None, process_: str | None, read: bool, team: str | None, personal: bool,
              name_: str | None, owner: str | None, expires_days: int | None, rate_limit: int | None,
              as_json: bool) -> None:
    """Make a token; it is printed this once and stored only as a hash."""
    if personal:
        if source is not None or process_ is not None or read or team is not None:
            raise click.UsageError(_("--source, --process and --read are for integration tokens, not --personal ones; "
                                     "so is --team"))
        if not name_:
            raise click.UsageError(_("a personal token needs --name, e.g. --name laptop"))
        result = app.engine.tokens.add_personal(name_, owner=owner, expires_days=expires_days,
                                                rate_limit=rate_limit)
        what = _("Personal token {id} ({name}) of {owner}", id=result["id"], name=result["name"],
                 owner=result["source"])
    else:
        if source is None:
            raise click.UsageError(_("give --source NAME for an integration token, or --personal --name NAME"))
        if name_ is not None or owner is not None:
            raise click.UsageError(_("--name and --owner are for --personal tokens"))
        result = app.engine.tokens.add(source, process=process_, read=read, expires_days=expires_days,
                                       rate_limit=rate_limit, team=team)
        what = (_("Token {id} for {source}", id=result["id"], source=result["source"])
                + (_(" (default process {process})", process=result["process"]) if result["process"] else "")
                + (_(", may read") if result["read"] else ""))
    print_change(result, f"{what}{_until(result['expires_at'])}:\n{result['token']}\n"
                         + _("Keep it now: it is not shown again."), as_json)


@token.command("list")
@click.option("--mine", is_flag=True, help="Only your personal tokens (anyone may list theirs).")
@click.option("--owner", help="Only this user's personal tokens (admins, or the user).")
@json_option
@pass_app
def token_list(app: App, mine: bool, owner: str | None, as_json: bool) -> None:
    """Every token (not the secret), revoked ones too (admins); or one user's personal tokens."""
    emit(app.engine.tokens.list(owner=owner, mine=mine), as_json, lambda rows: console().print(table(
        ngettext("{count} token", "{count} tokens", len(rows)),
        ["id", _("kind"), _("acts as"), _("name"), _("token"), _("process"), _("read"), _("created"), _("expires"),
         _("revoked")],
        [[r["id"], r["kind"], r["source"], r["name"] or "-", r["hint"], r["process"] or "-",
          _("yes") if r["read"] else _("no"),
          _("{when} by {who}", when=short_time(r["created_at"]), who=r["created_by"]),
          short_time(r["expires_at"]) if r["expires_at"] else _("never"),
          _("{when} by {who}", when=short_time(r["revoked_at"]), who=r["revoked_by"]) if r["revoked_at"] else "-"]
         for r in rows])))


@token.command("revoke")
@click.argument("token_id", type=RecordId(N_("token id")))
@json_option
@pass_app
def token_revoke(app: App, token_id: int, as_json: bool) -> None:
    """Stop accepting a token at once (admins any token, anyone their own personal ones)."""
    result = app.engine.tokens.revoke(token_id)
    print_change(result, _("Token {id} ({name}) revoked", id=token_id, name=result["name"] or result["source"]),
                 as_json)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--db", "db_url", default=None, metavar="URL",
              help="The database (default: leadflow's --db, LEADFLOW_DB). Only the server needs it.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes on this port (PostgreSQL: they share nothing but the database).")
@click.option("--test-clock", is_flag=True, envvar="LEADFLOW_TEST_MODE",
              help="Honour LEADFLOW_NOW (tests and demos only); every response then says so in a header.")
@click.option("--max-body", type=click.IntRange(1024, 10 * 1024 * 1024), default=65536, show_default=True,
              help="Largest JSON or form body accepted, in bytes (larger: 413).")
@click.option("--trust-proxy", is_flag=True, envvar="LEADFLOW_TRUST_PROXY",
              help="Behind a reverse proxy: believe its X-Forwarded-For (the client's address, for rate limits) and "
                   "X-Forwarded-Proto (HTTPS: Secure cookies). Without it both headers are ignored.")
@pass_app
def serve(app: App, host: str, port: int, db_url: str | None, workers: int, test_clock: bool, max_body: int,
          trust_proxy: bool) -> None:
    """Run the team server: the JSON API under /v1 (every command's operation), the web forms' intake,
    /openapi.json and the docs page /docs (docs/server.md)."""
    try:
        from cli.server import run
    except ImportError as exc:
        raise click.ClickException(_("the server needs {module}: pip install 'leadflow[server]'",
                                     module=exc.name)) from None
    import logging

    # the server's own lines (refusals of credentials, the access log, internal errors) beside uvicorn's
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    address = f"http://{host}:{port}"
    click.echo(_("leadflow server listening on {address} with the TEST CLOCK (LEADFLOW_NOW honoured) (API docs: "
                 "/docs)", address=address) if test_clock else
               _("leadflow server listening on {address} (API docs: /docs)", address=address), err=True)
    run.serve(url=db_url or app.db_url, host=host, port=port, workers=workers, test_clock=test_clock,
              max_body=max_body, trust_proxy=trust_proxy)
