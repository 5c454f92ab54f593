"""The outbox: sending due mail (``run-due``, for cron or a systemd timer) and watching it (``outbox``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from cli.app import App, pass_app
from cli.output import ID, LEAD, console, echo, emit, json_option, print_json, short_time, styled, table
from engine.i18n import _, ngettext
from engine.vocab import OutboxState

if TYPE_CHECKING:  # the results' types only: the remote path imports no engine module
    from engine import results

#: run-due's exit code when the SMTP server could not be reached or refused the login (docs/cli.md).
SMTP_DOWN = 3
STATE_STYLE: dict[str, str] = {OutboxState.QUEUED: "yellow", OutboxState.SENDING: "cyan", OutboxState.SENT: "green",
                               OutboxState.FAILED: "bold red", OutboxState.CANCELLED: "dim"}


@click.command("run-due")
@click.option("--limit", type=click.IntRange(1, 1_000_000), help="Send at most this many mails in this run.")
@json_option
@pass_app
def run_due(app: App, limit: int | None, as_json: bool) -> None:
    """Send the e-mails and reminders that are due (admins); safe to run often and in parallel."""
    result = app.engine.outbox.run_due(limit=limit)
    if as_json:
        print_json(result)
    else:
        _render_run(result)
    if result["smtp_error"]:
        sys.exit(SMTP_DOWN)  # nothing lost, but cron and systemd should notice a server that stays down


def _render_run(result: results.RunDue) -> None:
    echo(_("run-due as of {as_of}: {sent} sent, {retrying} to retry, {failed} failed, {cancelled} cancelled",
           as_of=result["as_of"], sent=result["sent"], retrying=result["retrying"], failed=result["failed"],
           cancelled=result["cancelled"]))
    for mail in result["mails"]:
        if mail["state"] != OutboxState.SENT or mail["error"]:
            echo("  " + _("mail {mail} ({template} to {to}, lead {lead}): {state}: {error}", mail=mail["id"],
                          template=mail["template"], to=mail["to"], lead=mail["lead_id"], state=mail["state"],
                          error=mail["error"]))
    if result["smtp_error"]:
        echo(ngettext("Stopped: {error}; {count} due mail stays queued for the next run",
                      "Stopped: {error}; {count} due mails stay queued for the next run", result["still_due"],
                      error=result["smtp_error"]))
    elif result["still_due"]:
        echo(ngettext("{count} due mail left for the next run (--limit)",
                      "{count} due mails left for the next run (--limit)", result["still_due"]))
    if result["next_due_at"]:
        echo(ngettext("{count} mail queued for later; the next is due at {at}",
                      "{count} mails queued for later; the next is due at {at}", result["queued_later"],
                      at=short_time(result["next_due_at"])))


@click.group("outbox")
def outbox() -> None:
    """Queued, sent and failed e-mails and reminders."""


@outbox.command("list")
@click.option("--state", type=click.Choice([s.value for s in OutboxState]))
@click.option("--lead", "lead_id", type=LEAD, help="Only the mails of this lead.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@json_option
@pass_app
def outbox_list(app: App, state: str | None, lead_id: int | None, limit: int, as_json: bool) -> None:
    """Mails of the leads you may see, by their next attempt."""
    rows = app.engine.outbox.list(state=state, lead_id=lead_id, limit=limit)

    def render(items: list[results.OutboxRow]) -> None:
        console().print(table(ngettext("{count} mail", "{count} mails", len(items)),
                              ["id", _("state"), _("kind"), _("template"), _("to"), _("lead"), _("due"),
                               _("attempts"), _("next attempt"), _("sent"), _("last error")],
                              [[r["id"], styled(r["state"], STATE_STYLE[r["state"]]), r["kind"], r["template"],
                                r["to_address"] or r["to"], r["lead_id"], short_time(r["due_at"]), r["attempts"],
                                short_time(r["next_attempt_at"]) if r["state"] == OutboxState.QUEUED else "",
                                short_time(r["sent_at"]), r["last_error"]] for r in items]))

    emit(rows, as_json, render)


@outbox.command("retry")
@click.argument("mail_id", type=ID)
@json_option
@pass_app
def outbox_retry(app: App, mail_id: int, as_json: bool) -> None:
    """Queue a failed or cancelled mail again (managers), e.g. after fixing an address or a template."""
    result = app.engine.outbox.retry(mail_id)
    emit(result, as_json, lambda r: echo(
        _("Mail {mail} ({template} to {to}, lead {lead}) queued again; the next run-due sends it", mail=r["id"],
          template=r["template"], to=r["to"], lead=r["lead_id"])))
