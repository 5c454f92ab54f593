"""The manager's views: the opportunities board and the daily stand-up."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cli.app import App, pass_app
from cli.files import force_option, writable
from cli.output import as_of_option, console, esc, json_option, print_json
from cli.present import formats
from engine import i18n
from engine.i18n import _, ngettext

if TYPE_CHECKING:  # the results' types only: the remote path imports no engine module
    from engine import results

#: Agenda lines per salesperson in the terminal view of ``daily``.
ITEMS_PER_PERSON = 3

LIGHT_STYLE = {"red": "bold red", "yellow": "yellow", "green": "green"}
DOT = "●"


@click.command("board")
@click.option("--process", "process_", help="Only this process (default: every process with open leads).")
@click.option("--owner", help="Only this salesperson's leads.")
@click.option("--team", help="Only this team's leads (managers).")
@click.option("--light", type=click.Choice(["red", "yellow", "green"]), help="Only leads with this light.")
@click.option("--limit", type=click.IntRange(0, 10_000), default=20, show_default=True,
              help="Leads listed per stage; the counts are always complete.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, writable=True),
              help="Also write a self-contained HTML page to this file.")
@as_of_option
@force_option
@json_option
@pass_app
def board(app: App, process_: str | None, owner: str | None, team: str | None, light: str | None, limit: int,
          html_file: str | None, as_of: str | None, force: bool, as_json: bool) -> None:
    """Every open lead by stage with green/yellow/red deadline lights."""
    target = writable(html_file, force=force, option="--html") if html_file else None
    boards = app.engine.boards.board(process=process_, owner=owner, team=team, light=light, limit=limit, as_of=as_of)
    as_of = boards[0]["as_of"] if boards else as_of or _now()
    if target is not None:
        from cli.present.html import board_page

        scope = ", ".join(x for x in (_("owner {owner}", owner=owner) if owner else "",
                                      _("team {team}", team=team) if team else "",
                                      _("{light} only", light=light) if light else "") if x)
        try:
            target.write_text(board_page(boards, as_of, scope), encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(_("cannot write {path}: {strerror}", path=html_file,
                                         strerror=exc.strerror or exc)) from None
    if as_json:
        print_json(boards[0] if process_ else boards)
    elif not html_file:
        _render(boards, as_of)
    if html_file:
        click.echo(_("Board written to {file}", file=html_file), err=as_json)


def _now() -> str:
    from engine import clock

    return clock.now().isoformat()


def _render(boards: list[results.Board], as_of: str) -> None:
    from rich.panel import Panel
    from rich.table import Table

    con = console(pipe_width=120)  # panels fill the width: keep a page-like width in a pipe
    shown_at = formats.short_time(as_of) if i18n.language() != i18n.SOURCE else as_of
    if not boards:
        con.print(_("No open leads as of {as_of}.", as_of=shown_at))
    for b in boards:
        t = b["totals"]
        money = formats.money(t["value"], b["currency"])
        con.print(ngettext("[bold]{title}[/bold] ({process}) as of {as_of}: {count} open lead, {value}; "
                           "[bold red]{red} red[/], [yellow]{yellow} yellow[/], [green]{green} green[/]; "
                           "{too_long} too long",
                           "[bold]{title}[/bold] ({process}) as of {as_of}: {count} open leads, {value}; "
                           "[bold red]{red} red[/], [yellow]{yellow} yellow[/], [green]{green} green[/]; "
                           "{too_long} too long", t["count"], title=esc(b["title"]), process=b["process"],
                           as_of=shown_at, value=money, red=t["red"], yellow=t["yellow"], green=t["green"],
                           too_long=t["too_long"]))
        for s in b["stages"]:
            lights = s["lights"]
            leads = ngettext("{count} lead", "{count} leads", s["count"])
            title = (f"{esc(s['name'])} ({s['id']}): {leads}, {formats.money(s['value'], b['currency'])}  "
                     f"[bold red]{DOT} {lights['red']}[/] [yellow]{DOT} {lights['yellow']}[/] "
                     f"[green]{DOT} {lights['green']}[/]")
            if not s["leads"]:
                con.print(f"[dim]  {esc(s['name'])} ({s['id']}): {leads}[/]")
                continue
            table = Table(expand=True, box=None, show_header=True, header_style="dim", pad_edge=False)
            for col in ("", _("lead"), _("client"), _("owner"), _("value"), _("in stage"), _("in process")):
                table.add_column(col, overflow="ellipsis", no_wrap=True)
            for lead in s["leads"]:
                table.add_row(f"[{LIGHT_STYLE[lead['light']]}]{DOT}[/]", str(lead["id"]), esc(lead["name"]),
                              esc(lead["owner"] or "-"),
                              formats.amount(lead["value"]),
                              _("{days} d", days=lead["days_in_stage"]),
                              _("{days} d", days=lead["days_in_process"])
                              + (_(" [magenta]too long[/]") if lead["too_long"] else ""))
            more = s["count"] - len(s["leads"])
            if more:
                table.add_row("", "", _("[dim]and {more} more[/]", more=more), "", "", "", "")
            con.print(Panel(table, title=title, title_align="left", expand=True))


@click.command("daily")
@click.option("--owner", help="Only this salesperson.")
@click.option("--team", help="This team (managers; default: your team).")
@as_of_option
@json_option
@pass_app
def daily(app: App, owner: str | None, team: str | None, as_of: str | None, as_json: bool) -> None:
    """The stand-up agenda: red items, due today and next business day, revisits, new leads, done."""
    agenda = app.engine.boards.daily(owner=owner, team=team, as_of=as_of)
    if as_json:
        print_json(agenda)
        return
    con = console(pipe_width=120)
    con.print(_("[bold]Stand-up[/bold] as of {as_of}", as_of=formats.date_time(agenda["as_of"])))
    # the unassigned leads first: nobody works them until the manager gives them to someone
    queue = agenda.get("unassigned")
    if queue and queue["count"]:
        con.print(_("[bold]Unassigned leads[/bold] (no rule could place them; 'leadflow lead assign ID --to NAME'): "
                    "{count}", count=queue["count"]))
        for q in queue["leads"][:5]:
            con.print(_("  #{lead} {name} ({process}, {team}) waiting {days} d", lead=q["lead_id"], name=esc(q["name"]),
                        process=esc(q["process"]), team=esc(q["team"] or _("no team")), days=q["waiting_days"])
                      + (_(", owner {owner} deactivated", owner=esc(q["deactivated_owner"]))
                         if q.get("deactivated_owner") else "")
                      + (_(" [bold red]overdue[/]") if q["overdue"] else ""))
    reviews = agenda.get("reviews") or []
    if reviews:
        con.print(_("[bold]Refusals to review[/bold]: {count}", count=len(reviews)))
        for r in reviews[:5]:
            con.print(_("  review #{lead} {name} ({owner}, {reason}, {value}) due {due}", lead=r["lead_id"],
                        name=esc(r["name"]), owner=esc(r["owner"] or "-"), reason=r["reason"],
                        value=formats.amount(r["value"] or None), due=formats.date(r["due_at"][:10])))
    if not agenda["people"]:
        con.print(_("No salespeople in scope."))
    for p in agenda["people"]:
        red, today, upcoming = p["red"], p["due_today"], p["due_next_business_day"]
        counts = [
            ngettext("[bold red]{count} red[/]", "[bold red]{count} red[/]", red["count"]),
            ngettext("{count} due today", "{count} due today", today["count"]),
            ngettext("{count} due next", "{count} due next", upcoming["count"]),
            ngettext("{count} revisits", "{count} revisits", len(p["revisits_due"])),
            ngettext("{count} new", "{count} new", len(p["new_leads"])),
            ngettext("{count} done since {since} ({calendar} business days)",
                     "{count} done since {since} ({calendar} business days)", len(p["done"]),
                     since=formats.date(p["since"][:10]), calendar=p["calendar"]),
        ]
        con.print(f"[bold]{esc(p['salesperson'])}[/bold]: " + ", ".join(counts))

        def item(lead: results.DueLead) -> str:
            tasks = f": {', '.join(lead['tasks'])}" if lead["tasks"] else ""
            contact = lead.get("next_contact")
            booked = _(", contact {when}", when=formats.short_time(contact)) if contact else ""
            return f"#{lead['lead_id']} {esc(lead['name'])} ({lead['stage']}{tasks}{booked})"

        # the agenda in priority order; three items a person keep a team of ten on one screen (--json has all)
        lines = (
            [_("  [bold red]red[/]   {item} overdue since {since}", item=item(r), since=formats.date(_missed(r)[:10]))
             for r in red["leads"]]
            + [_("  [yellow]today[/] {item}", item=item(t)) for t in today["leads"]]
            + [_("  next  {item}", item=item(t)) for t in upcoming["leads"]]
            + [_("  revisit client {client} {name} ({reason}, closed {closed})", client=r["client_id"],
                 name=esc(r["name"]), reason=r["reason"], closed=formats.date(r["closed_at"][:10]))
               for r in p["revisits_due"]]
            + [_("  [cyan]new[/]   #{lead} {name} ({process})", lead=n["lead_id"], name=esc(n["name"]),
                 process=n["process"]) for n in p["new_leads"]]
        )[:ITEMS_PER_PERSON]
        for line in lines:
            con.print(line)


def _missed(lead: results.DueLead) -> str:
    """Since when a red lead is late: its earliest missed deadline or booked contact."""
    return min(x for x in (lead["due_at"], lead.get("next_contact")) if x)
