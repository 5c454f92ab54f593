"""The salesperson's log of work with the client: activities and the next contact. Parse, call the engine, print."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cli.app import App, pass_app
from cli.output import LEAD, console, emit, if_version_option, json_option, print_change, short_time, table
from engine.i18n import N_, _, ngettext

if TYPE_CHECKING:  # the results' types only: the remote path imports no engine module
    from engine import results

KINDS = ("call", "meeting", "email", "note")
#: What ``activity add`` says, by kind (a sentence each: the languages inflect the kind).
LOGGED = {"call": N_("Call logged on lead {lead}"), "meeting": N_("Meeting logged on lead {lead}"),
          "email": N_("Email logged on lead {lead}"), "note": N_("Note logged on lead {lead}")}
OUTCOMES = ("reached", "no_answer", "left_message", "busy", "wrong_number")


@click.group("activity")
def activity() -> None:
    """Calls, meetings, e-mails and notes on leads."""


@activity.command("add")
@click.argument("lead_id", type=LEAD)
@click.option("--kind", required=True, type=click.Choice(KINDS), help="What it was.")
@click.option("--text", required=True, help="What happened (at most 5000 characters).")
@click.option("--outcome", type=click.Choice(OUTCOMES), help="How a call went; no_answer counts an attempt.")
@click.option("--next-contact", "next_contact", metavar="DATETIME",
              help="Book the next contact, e.g. 2026-03-02T09:30 (a date alone: 09:00 that day).")
@if_version_option
@json_option
@pass_app
def activity_add(app: App, lead_id: int, kind: str, text: str, outcome: str | None, next_contact: str | None,
                 if_version: int | None, as_json: bool) -> None:
    """Log an activity on a lead (the owner, a manager of its team, an admin)."""
    result = app.engine.activities.add(lead_id, kind=kind, text=text, outcome=outcome, next_contact=next_contact,
                                       if_version=if_version)
    booked = _("; next contact {at}", at=short_time(result["next_contact"])) if result["next_contact"] else ""
    print_change(result, _(LOGGED[kind], lead=lead_id) + booked, as_json)


@activity.command("list")
@click.argument("lead_id", type=LEAD, required=False)
@click.option("--mine", is_flag=True, help="Only the activities you logged.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@json_option
@pass_app
def activity_list(app: App, lead_id: int | None, mine: bool, limit: int, as_json: bool) -> None:
    """Activities, newest first: of one lead, or of every lead you may see."""
    rows = app.engine.activities.list(lead_id, mine=mine, limit=limit)

    def render(items: list[results.Activity]) -> None:
        console().print(table(ngettext("{count} activity", "{count} activities", len(items)),
                              [_("when"), _("lead"), _("client"), _("who"), _("kind"), _("outcome"), _("text")],
                              [[short_time(a["at"]), a["lead_id"], a["name"], a["actor"], a["kind"],
                                a["outcome"] or "", a["text"]] for a in items]))

    emit(rows, as_json, render)
