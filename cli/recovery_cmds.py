"""The recovery loop: refusal reviews, revisits, the monthly removals, stalled leads and rotation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cli.app import App, pass_app
from cli.output import (
    ID,
    LEAD,
    amount,
    as_of_option,
    console,
    emit,
    esc,
    if_version_option,
    json_option,
    print_change,
    print_json,
    short_time,
    table,
)
from cli.present import formats
from engine.i18n import _, label, ngettext
from engine.vocab import ClosureKind, ReviewState

if TYPE_CHECKING:  # the results' types only: the remote path imports no engine module
    from engine import results

# -- refusal reviews -----------------------------------------------------------------------------

@click.group("review")
def review() -> None:
    """The sales director's review of refused leads."""


@review.command("list")
@click.option("--all", "all_", is_flag=True, help="Decided reviews too.")
@json_option
@pass_app
def review_list(app: App, all_: bool, as_json: bool) -> None:
    """Refusals waiting for the director's decision (oldest first)."""
    rows = app.engine.recovery.reviews(state=None if all_ else ReviewState.OPEN)
    emit(rows, as_json, lambda rs: console().print(table(
        ngettext("{count} review", "{count} reviews", len(rs)),
        [_("lead"), _("client"), _("process"), _("owner"), _("reason"), _("value"), _("refused"), _("due"),
         _("state")],
        [[r["lead_id"], r["name"], r["process"], r["owner"], r["reason"], amount(r["value"]),
          short_time(r["requested_at"]),
          short_time(r["due_at"]), r["state"]] for r in rs])))


@review.command("return")
@click.argument("lead_id", type=LEAD)
@click.option("--stage", help="Reopen into this stage (default: the one it was lost in).")
@click.option("--note", help="What changes, e.g. the new offer.")
@click.option("--to", "to", help="Give the client to another salesperson.")
@if_version_option
@json_option
@pass_app
def review_return(app: App, lead_id: int, stage: str | None, note: str | None, to: str | None,
                  if_version: int | None, as_json: bool) -> None:
    """Send the client back into the funnel: the lead reopens."""
    result = app.engine.recovery.review_return(lead_id, stage=stage, note=note, to=to, if_version=if_version)
    print_change(result, _("Lead {lead} returned to '{stage_name}' ({stage}), owner {owner}", lead=lead_id,
                           stage_name=label(result["stage_name"]), stage=result["stage"], owner=result["owner"]),
                 as_json)


@review.command("confirm")
@click.argument("lead_id", type=LEAD)
@click.option("--note", required=True, help="What the director learned (e.g. after calling the client).")
@if_version_option
@json_option
@pass_app
def review_confirm(app: App, lead_id: int, note: str, if_version: int | None, as_json: bool) -> None:
    """Validate the refusal; the note records what was learned."""
    result = app.engine.recovery.review_confirm(lead_id, note, if_version=if_version)
    print_change(result, _("Refusal of lead {lead} confirmed", lead=lead_id), as_json)


# -- revisits ------------------------------------------------------------------------------------

@click.group("revisit")
def revisit() -> None:
    """Clients whose revisit date has come."""


@revisit.command("list")
@click.option("--process", "process_")
@click.option("--owner")
@click.option("--team")
@json_option
@pass_app
def revisit_list(app: App, process_: str | None, owner: str | None, team: str | None, as_json: bool) -> None:
    """Lost leads whose revisit is due and whose client has no newer lead."""
    rows = app.engine.recovery.revisits(process=process_, owner=owner, team=team)
    emit(rows, as_json, lambda rs: console().print(table(
        ngettext("{count} revisit", "{count} revisits", len(rs)),
        [_("client"), _("name"), _("process"), _("lost lead"), _("reason"), _("closed"), _("owner")],
        [[r["client_id"], r["name"], r["process"], r["lead_id"], r["reason"], short_time(r["closed_at"]),
          r["owner"]] for r in rs])))


@revisit.command("start")
@click.argument("client_id", type=ID)
@click.option("--process", "process_", required=True)
@click.option("--owner", help="Who works the new lead (default: you, if you are a salesperson).")
@json_option
@pass_app
def revisit_start(app: App, client_id: int, process_: str, owner: str | None, as_json: bool) -> None:
    """Open a new lead for a returning client; its earlier leads stay visible."""
    result = app.engine.recovery.start_revisit(client_id, process=process_, owner=owner)
    print_change(result, ngettext("Lead {lead} started for client {client} ({name}), {count} earlier lead: ",
                                  "Lead {lead} started for client {client} ({name}), {count} earlier leads: ",
                                  len(result["client_leads"]), lead=result["id"], client=client_id,
                                  name=result["name"])
                     + ", ".join(f"{x['id']} {x['status']}" + (f" ({x['close_reason']})" if x["close_reason"] else "")
                                 for x in result["client_leads"]), as_json)


# -- the monthly summary -------------------------------------------------------------------------

@click.command("removals")
@click.option("--month", required=True, metavar="YYYY-MM")
@click.option("--process", "process_")
@click.option("--kind", type=click.Choice(["all", *(k.value for k in ClosureKind)]), default="all", show_default=True)
@click.option("--team")
@click.option("--owner")
@json_option
@pass_app
def removals(app: App, month: str, process_: str | None, kind: str, team: str | None, owner: str | None,
             as_json: bool) -> None:
    """Leads closed without a sale in a month: by reason, salesperson and product; clients worth returning to first."""
    data = app.engine.recovery.removals(month, process=process_, kind=kind, team=team, owner=owner)

    def render(d: results.Removals) -> None:
        con = console(pipe_width=160)
        con.print(ngettext("[bold]{month}[/bold]: {count} lead closed without a sale ({kind}), value {value}, "
                           "median {median}",
                           "[bold]{month}[/bold]: {count} leads closed without a sale ({kind}), value {value}, "
                           "median {median}", d["total"], month=d["month"], kind=d["kind"],
                           value=formats.amount(d["value"]), median=formats.amount(d["median_value"] or None)))
        con.print(table(_("By reason"), [_("process"), _("reason"), _("kind"), _("leads"), _("value")],
                        [[r["process"], r["reason"], r["kind"], r["count"], amount(r["value"])]
                         for r in d["by_reason"]]))
        con.print(table(_("By salesperson"), [_("salesperson"), _("leads"), _("value")],
                        [[r["owner"], r["count"], amount(r["value"])] for r in d["by_salesperson"]]))
        con.print(table(_("By product"), [_("product"), _("leads"), _("value")],
                        [[r["product"], r["count"], amount(r["value"])] for r in d["by_product"]]))
        con.print(table(_("Clients (worth returning to first)"), ["", _("client"), _("name"), _("lead"), _("reason"),
                                                                   _("value"), _("owner"), _("closed")],
                        [["★" if c["worth_returning"] else (_("taken up") if c["taken_up"] else ""), c["client_id"],
                          c["name"], c["lead_id"], c["reason"],
                          amount(c["value"]), c["owner"], short_time(c["closed_at"])]
                         for c in d["clients"][:50]]))

    emit(data, as_json, render)


# -- stalled leads and rotation ------------------------------------------------------------------

@click.command("stalled")
@click.option("--process", "process_")
@click.option("--owner")
@click.option("--team")
@as_of_option
@json_option
@pass_app
def stalled(app: App, process_: str | None, owner: str | None, team: str | None, as_of: str | None,
            as_json: bool) -> None:
    """Leads held longer than the sales cycle, idle too long, or recalled (and not extended)."""
    data = app.engine.recovery.stalled(process=process_, owner=owner, team=team, as_of=as_of)

    def render(d: results.Stalled) -> None:
        con = console(pipe_width=160)
        for process, cycle in d["cycles"].items():
            con.print(_("{process}: sales cycle {days} days ({basis})", process=process, days=cycle["days"],
                        basis=cycle["basis"]))
        con.print(table(ngettext("{count} stalled lead", "{count} stalled leads", len(d["leads"])),
                        [_("lead"), _("client"), _("process"), _("stage"), _("owner"), _("held"), _("last activity"),
                         _("why"), _("latest report")],
                        [[r["lead_id"], r["name"], r["process"], r["stage"], r["owner"],
                          _("{days} d", days=r["days_held"]),
                          short_time(r["last_activity_at"]), r["why"], r["latest_report"] or "-"]
                         for r in d["leads"]]))

    emit(data, as_json, render)


@click.command("rotate")
@click.option("--process", "process_", help="Only this process's stalled leads.")
@click.option("--team", help="Only this team (a manager's own team by default).")
@click.option("--memory", type=click.IntRange(0, 100), default=None,
              help="Never hand a client to one of its last N owners (default 3).")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@json_option
@pass_app
def rotate(app: App, process_: str | None, team: str | None, memory: int | None, dry_run: bool,
           as_json: bool) -> None:
    """Give stalled leads to colleagues for a new working period (managers)."""
    plan = app.engine.recovery.rotate(process=process_, team=team, dry_run=dry_run, memory=memory)
    if as_json:
        print_json(plan)
        return
    con = console(pipe_width=160)
    moved = len(plan["moves"])
    as_of = formats.date_time(plan["as_of"])
    con.print((ngettext("Rotation as of {as_of}: would move {count} lead", "Rotation as of {as_of}: would move {count} "
                        "leads", moved, as_of=as_of) if dry_run else
               ngettext("Rotation as of {as_of}: moved {count} lead", "Rotation as of {as_of}: moved {count} leads",
                        moved, as_of=as_of))
              + (_(", {count} could not be placed", count=len(plan["unplaced"])) if plan["unplaced"] else ""))
    con.print(table(None, [_("lead"), _("client"), _("value"), _("from"), _("to"), _("team")],
                    [[m["lead_id"], m["name"], amount(m["value"]), m["from"], m["to"], m["team"]]
                     for m in plan["moves"][:200]]))
    if len(plan["moves"]) > 200:
        con.print(_("... and {more} more (--json lists all)", more=len(plan["moves"]) - 200))
    for u in plan["unplaced"][:20]:
        con.print(_("  not placed: lead {lead} ({owner}): {why}", lead=u["lead_id"], owner=esc(u["owner"]),
                    why=esc(u["why"])))
    if dry_run:
        con.print(_("Dry run: nothing was changed."))


# -- on one lead: the owner's report, a manager's recall --------------------------------------------

@click.command("report")
@click.argument("lead_id", type=LEAD)
@click.option("--text", required=True, help="What happened with the client, in a sentence or two.")
@click.option("--extend-until", metavar="DATE", help="Managers: the lead is not stalled until this date.")
@click.option("--reason", help="The objective reason for the extension (purchase cycle, public funding...).")
@if_version_option
@json_option
@pass_app
def lead_report(app: App, lead_id: int, text: str, extend_until: str | None, reason: str | None,
                if_version: int | None, as_json: bool) -> None:
    """File a short report on a lead (managers may extend it at the same time)."""
    if extend_until is not None and not reason:
        raise click.UsageError(_("--extend-until needs --reason: the objective reason for the extension"))
    result = app.engine.recovery.report(lead_id, text, extend_until=extend_until, reason=reason,
                                        if_version=if_version)
    print_change(result, _("Report filed on lead {lead}", lead=lead_id)
                 + (_("; extended until {until}", until=short_time(result["extended_until"])) if extend_until else ""),
                 as_json)


@click.command("recall")
@click.argument("lead_id", type=LEAD)
@click.option("--note")
@if_version_option
@json_option
@pass_app
def lead_recall(app: App, lead_id: int, note: str | None, if_version: int | None, as_json: bool) -> None:
    """Take a lead back from its owner early (managers); the next rotation gives it to a colleague."""
    result = app.engine.recovery.recall(lead_id, note, if_version=if_version)
    print_change(result, _("Lead {lead} recalled from {owner}; 'leadflow rotate' gives it to a colleague",
                           lead=lead_id, owner=result["owner"]), as_json)
