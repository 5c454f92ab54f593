"""The salesperson's commands: leads, tasks and clients. Parse, call the engine, print."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import click

from cli.app import App, pass_app
from cli.output import (
    ID,
    LEAD,
    STATE_STYLE,
    STATUS_STYLE,
    amount,
    console,
    echo,
    emit,
    esc,
    if_version_option,
    json_option,
    parse_assignments,
    print_change,
    print_json,
    print_json_pages,
    short_time,
    styled,
    table,
    warn,
)
from cli.present import formats
from cli.present.words import left_undone, status_word, task_state_word
from engine.i18n import _, label, ngettext
from engine.vocab import EventKind, LeadStatus, TaskStatus

if TYPE_CHECKING:  # the results' types only: the remote path imports no engine module
    from engine import results

#: ``task list``'s table: a screenful; its ``--json``: every row, read this many at a time (bounded memory, and few
#: enough requests through a server; each page is one SQL read of that many rows per source).
TABLE_PAGE = 20
JSON_PAGE = 10_000

# -- rendering -------------------------------------------------------------------------------
# Data (names, field values, notes) goes through ``esc`` in markup strings and into table cells as plain
# text: a client called "[/bold] Corp" prints as written, control characters show as \x1b.

def render_lead(lead: results.Lead, history: list[results.HistoryEvent] | None = None) -> None:
    con = console()
    status = lead["status"]
    con.print("[bold]" + _("Lead {lead}", lead=lead["id"]) + f"[/bold]  {esc(lead['name'])}"
              + (f" ({esc(lead['company'])})" if lead["company"] else "")
              + f"  [{STATUS_STYLE[status]}]{esc(status_word(status))}[/]")
    value = formats.money(lead["value"], lead["currency"]) if lead["value"] else "-"
    team = _(" (team {team})", team=esc(lead["team"])) if lead["team"] else ""
    con.print(_("process {process} v{version} | stage [bold]{stage_name}[/bold] ({stage}) since {since}, due {due}",
                process=esc(lead["process"]), version=lead["process_version"], stage_name=esc(lead["stage_name"]),
                stage=esc(lead["stage"]), since=formats.short_time(lead["stage_entered_at"]),
                due=_stage_due(lead)))
    con.print(_("owner {owner}{team} | value {value} | source {source} | product {product} | client {client}",
                owner=esc(lead["owner"] or "-"), team=team, value=esc(value), source=esc(lead["source"] or "-"),
                product=esc(lead["product"] or "-"), client=lead["client_id"])
              + (f" | {esc(lead['email'])}" if lead["email"] else "")
              + (f" | {esc(lead['phone'])}" if lead["phone"] else "")
              # the deal's id in the CRM it was migrated from: what its people still call it (lead show ext:ID)
              + (_(" | external id {external}", external=esc(lead["external_id"])) if lead.get("external_id") else ""))
    if status != LeadStatus.OPEN:
        con.print(_("closed {at}", at=formats.short_time(lead["closed_at"]))
                  + (_(" for {reason}", reason=esc(lead["close_reason"])) if lead["close_reason"] else "")
                  + (f": {esc(lead['close_note'])}" if lead["close_note"] else ""))
    if lead["fields"]:
        chosen = lead.get("choice_labels") or {}  # an older server sends none: the options' ids
        con.print(_("fields: ") + ", ".join(f"{esc(k)}={esc(_shown(chosen.get(k, v)))}"
                                            for k, v in lead["fields"].items()))
    rows = []
    lead_open = status == LeadStatus.OPEN
    for t in lead["tasks"]:
        if t["stage"] != lead["stage"]:
            continue  # earlier stages' work is in the history
        left = left_undone(t["state"], lead_open=lead_open)  # nobody is to do it: no deadline to show
        rows.append([t["id"], t["name"], t["owner"], _("yes") if t["mandatory"] else _("no"),
                     styled(task_state_word(t["state"], lead_open=lead_open),
                            "dim" if left else STATE_STYLE.get(t["state"], "")),
                     formats.short_time(t["done_at"]) + (_(" by {who}", who=t["done_by"]) if t["done_by"] else "")
                     if t["state"] == TaskStatus.DONE else "-" if left else formats.short_time(t["due_at"])])
    con.print(table(_("Tasks of '{stage}'", stage=esc(lead["stage_name"])),
                    [_("task"), _("name"), _("owner"), _("must"), _("state"), _("due / done")], rows))
    if history is not None:
        render_history(history)


def _stage_due(lead: results.Lead) -> str:
    """The stage's deadline, marked overdue as ``task list`` marks a task's (an older server sends no mark)."""
    due = formats.short_time(lead["stage_due_at"])
    return f"[red]{esc(_('{due} overdue', due=due))}[/]" if lead.get("stage_overdue") else due


def render_history(history: list[results.HistoryEvent]) -> None:
    rows = [[formats.short_time(e["at"]), e["actor"], e["kind"], describe_event(e)] for e in history]
    console().print(table(_("History"), [_("when"), _("who"), _("what"), _("details")], rows))


def _v(value: Any) -> str:
    return "-" if value is None else str(value)


def _money(minor: int | None) -> str:
    """4500050 (minor units, as the history stores the lead's value) -> '45000.50'."""
    return "-" if minor is None else f"{minor // 100}.{minor % 100:02d}"


def describe_event(e: results.HistoryEvent) -> str:
    d = e["data"]
    kind = e["kind"]
    if kind == EventKind.CREATED:
        return _("in {process} v{version}, owner {owner}", process=d["process"], version=d["process_version"],
                 owner=_v(d.get("owner")))
    if kind == EventKind.ASSIGNED:
        return f"{_v(d.get('from'))} -> {d['to']}"
    if kind == EventKind.FIELD_SET:
        if d.get("attribute") and d["field"] == "value":  # the lead's value is stored in minor units
            return _("value: {before} -> {after}", before=_money(d["before"]), after=_money(d["after"]))
        return f"{d['field']}: {_v(d['before'])} -> {_v(d['after'])}"
    if kind == EventKind.TASK_DONE:
        return f"{d['stage']}.{d['task']}" + (f": {d['note']}" if d.get("note") else "")
    if kind == EventKind.ADVANCED:
        return f"{d['from']} -> {d['to']}"
    if kind == EventKind.CLOSED:
        note = f": {d['note']}" if d.get("note") else ""
        return _("{reason} ({kind}) from {stage}", reason=d["reason"], kind=d.get("kind"), stage=d["from"]) + note
    if kind == EventKind.WON:
        return _("from {stage}", stage=d["from"])
    if kind == EventKind.REOPENED:
        return f"{d['from_status']} -> {d['to']}"
    if kind == EventKind.MIGRATED:
        return f"v{d['from_version']} -> v{d['to_version']}"
    return ", ".join(f"{k}={v}" for k, v in d.items())




# -- lead ------------------------------------------------------------------------------------

@click.group("lead")
def lead() -> None:
    """Add, move and close leads."""


@lead.command("add")
@click.option("--process", "process_", required=True, help="Process id, e.g. photovoltaics.")
@click.option("--name", help="The client's name (a person); without it, --company makes the lead a company's.")
@click.option("--company")
@click.option("--email")
@click.option("--phone")
@click.option("--source", help="referral, organic, paid, mailing, import, web_form, ...")
@click.option("--product")
@click.option("--value", help="Expected value, an exact amount such as 45000.50.")
@click.option("--owner", help="Salesperson who owns the lead (default: you, if you are a salesperson).")
@click.option("--client", "client_id", type=ID, help="Attach the lead to this existing client.")
@click.option("--tax-id", help="The client's tax id (NIP, CUI, INN...): search finds the client by it.")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Set a process field; repeatable.")
@click.option("--external-id", help="The deal's id in another system (unique); 'lead show ext:ID' finds it.")
@json_option
@pass_app
def lead_add(app: App, *, process_: str, name: str | None, company: str | None, email: str | None,
             phone: str | None, source: str | None, product: str | None, value: str | None, owner: str | None,
             client_id: int | None, tax_id: str | None, sets: tuple[str, ...], external_id: str | None,
             as_json: bool) -> None:
    """Register an inquiry as a lead at the first stage. An e-mail or phone of a client you may see adds the lead
    to that client; phones are stored in E.164 (docs/intake.md)."""
    fields = parse_assignments(sets)
    result = app.engine.leads.add(process=process_, name=name, company=company, email=email, phone=phone,
                                 source=source, product=product, value=value, owner=owner, fields=fields,
                                 client_id=client_id, **({"tax_id": tax_id} if tax_id else {}),
                                 **({"external_id": external_id} if external_id else {}))
    print_change(result, _("Lead {lead} added for {name} in {process}, stage '{stage_name}', owner {owner}",
                           lead=result["id"], name=result["name"], process=result["process"],
                           stage_name=label(result["stage_name"]), owner=result["owner"] or _("- (unassigned)")),
                 as_json)
    if result.get("possible_duplicate") == "email":
        warn(_("Warning: a client with this e-mail already exists, one you may not see (another team's or "
               "salesperson's); the lead got a client of its own, and a manager will review the two in "
               "'leadflow client duplicates'."))
    elif result.get("possible_duplicate"):
        warn(_("Warning: a client with this phone already exists, one you may not see (another team's or "
               "salesperson's); the lead got a client of its own, and a manager will review the two in "
               "'leadflow client duplicates'."))


@lead.command("list")
@click.option("--process", "process_")
@click.option("--stage")
@click.option("--owner")
@click.option("--status", type=click.Choice([s.value for s in LeadStatus]))
@click.option("--unassigned", is_flag=True,
              help="Only leads without an owner: the manager's queue (open ones unless --status says otherwise).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("--search", "--name", "search", metavar="TEXT",
              help="Only leads of the clients TEXT finds: name, company, e-mail, phone, tax id (as 'leadflow find').")
@json_option
@pass_app
def lead_list(app: App, *, process_: str | None, stage: str | None, owner: str | None, status: str | None,
              unassigned: bool, limit: int, search: str | None, as_json: bool) -> None:
    """List leads you may see."""
    if unassigned and owner:
        raise click.UsageError(_("--unassigned and --owner exclude each other"))
    rows = app.engine.leads.list(process=process_, stage=stage, owner=owner, status=status, unassigned=unassigned,
                                 limit=limit, **({"search": search} if search is not None else {}))

    def render(items: list[results.LeadRow]) -> None:
        columns = ["id", _("name"), _("process"), _("stage"), _("status"), _("owner"), _("value")]
        console().print(table(ngettext("{count} lead", "{count} leads", len(items)), columns,
                              [[r["id"], r["name"], r["process"], r["stage"], r["status"], r["owner"],
                                amount(r["value"])]
                               for r in items]))

    emit(rows, as_json, render)


@lead.command("show")
@click.argument("lead_id", type=LEAD)
@json_option
@pass_app
def lead_show(app: App, lead_id: int, as_json: bool) -> None:
    """Stage, tasks with their state, fields, owner and history of a lead (by id, or ext:ID by its id in the
    system it was migrated from)."""
    data = app.engine.leads.get(lead_id)
    if as_json:
        print_json(data)
    else:
        render_lead(data, app.engine.leads.history(lead_id))


@lead.command("set")
@click.argument("lead_id", type=LEAD)
@click.argument("assignments", nargs=-1, required=True, metavar="FIELD=VALUE...")
@if_version_option
@json_option
@pass_app
def lead_set(app: App, lead_id: int, assignments: tuple[str, ...], if_version: int | None, as_json: bool) -> None:
    """Set fields (typed by the process) or value/product/source; an empty VALUE clears a field."""
    values = parse_assignments(assignments)
    result = app.engine.leads.set_fields(lead_id, values, if_version=if_version)
    print_change(result, _("Lead {lead}: {changes}", lead=lead_id,
                           changes=", ".join(_stored(result, k) for k in values)), as_json)


def _stored(lead: results.Lead, name: str) -> str:
    """'roof_area_m2=45.5' as stored (typed, normalised), or 'roof_type cleared'."""
    attributes = {"value": lead["value"], "product": lead["product"], "source": lead["source"]}
    value = attributes[name] if name in attributes else lead["fields"].get(name)
    return _("{name} cleared", name=name) if value is None else f"{name}={_shown(value)}"


def _shown(value: Any) -> Any:
    """A choices field's options as they are typed (rebar,tools); any other value as it is."""
    return ",".join(label(v) for v in value) if isinstance(value, list) else value


@lead.command("assign")
@click.argument("lead_id", type=LEAD)
@click.option("--to", "to", required=True, help="The new owner.")
@if_version_option
@json_option
@pass_app
def lead_assign(app: App, lead_id: int, to: str, if_version: int | None, as_json: bool) -> None:
    """Give a lead to another salesperson (managers)."""
    result = app.engine.leads.assign(lead_id, to, if_version=if_version)
    print_change(result, _("Lead {lead} now belongs to {owner}", lead=lead_id, owner=result["owner"]), as_json)


@lead.command("advance")
@click.argument("lead_ids", type=LEAD, nargs=-1, required=True, metavar="LEAD_ID")
@click.option("--to", "to", help="The next stage, when the process allows several.")
@click.option("--skip-refused", is_flag=True,
              help="With several leads: advance those the rules allow and list the others (default: all or none).")
@if_version_option
@json_option
@pass_app
def lead_advance(app: App, lead_ids: tuple[int, ...], to: str | None, skip_refused: bool, if_version: int | None,
                 as_json: bool) -> None:
    """Move leads to their next stage; refused while mandatory tasks or required fields are open."""
    if len(lead_ids) > 1:
        _one_lead_only(if_version)
        _print_batch(app.engine.bulk.advance_many(list(lead_ids), to=to, on_refusal=_on_refusal(skip_refused)),
                     "advanced", as_json)
        return
    result = app.engine.leads.advance(lead_ids[0], to, if_version=if_version)
    print_change(result, _("Lead {lead} advanced to '{stage_name}' ({stage}), due {due}", lead=lead_ids[0],
                           stage_name=label(result["stage_name"]), stage=result["stage"],
                           due=short_time(result["stage_due_at"])), as_json)


def _one_lead_only(if_version: int | None) -> None:
    if if_version is not None:
        raise click.UsageError(_("--if-version names the version of one lead; give one LEAD_ID with it"))


def _on_refusal(skip_refused: bool) -> str:
    return "skip" if skip_refused else "abort"


#: What a bulk command says it did, by its verb, for a number of leads (each language's plural forms).
BATCH_DONE: dict[str, Callable[[int], str]] = {
    "advanced": lambda n: ngettext("{count} lead advanced", "{count} leads advanced", n),
    "closed": lambda n: ngettext("{count} lead closed", "{count} leads closed", n),
    "won": lambda n: ngettext("{count} lead won", "{count} leads won", n),
}


def _print_batch(report: results.BulkResult, done: str, as_json: bool) -> None:
    """A bulk call's report; with refused leads (``--skip-refused``) the exit code is 1."""
    if as_json:
        print_json(report)
    else:
        ids = ", ".join(str(i) for i in report["done"])
        click.echo(BATCH_DONE[done](len(report["done"])) + (f": {ids}" if ids else ""))
        if report["refused"]:
            console().print(table(_("Refused ({count})", count=len(report["refused"])), [_("lead"), _("why")],
                                  [[r["lead_id"], r["reason"]] for r in report["refused"]]))
    if report["refused"]:
        raise click.exceptions.Exit(1)


@lead.command("close")
@click.argument("lead_ids", type=LEAD, nargs=-1, required=True, metavar="LEAD_ID")
@click.option("--reason", required=True,
              help="A closure reason of the process's catalogue: its id, or its label in any of its languages.")
@click.option("--note", help="What happened, in your words.")
@click.option("--set", "assignments", multiple=True, metavar="FIELD=VALUE",
              help="Set a field with the closing (those the reason requires); repeatable.")
@click.option("--skip-refused", is_flag=True,
              help="With several leads: close those the rules allow and list the others (default: all or none).")
@if_version_option
@json_option
@pass_app
def lead_close(app: App, lead_ids: tuple[int, ...], reason: str, note: str | None, assignments: tuple[str, ...],
               skip_refused: bool, if_version: int | None, as_json: bool) -> None:
    """Close leads as lost or removed, with a reason from the catalogue."""
    if len(lead_ids) > 1:
        _one_lead_only(if_version)
        if assignments:
            raise click.UsageError(_("--set sets the fields of one lead; give one LEAD_ID with it"))
        _print_batch(app.engine.bulk.close_many(list(lead_ids), reason=reason, note=note,
                                                on_refusal=_on_refusal(skip_refused)), "closed", as_json)
        return
    result = app.engine.leads.close(lead_ids[0], reason, note, if_version=if_version,
                                    **({"values": parse_assignments(assignments)} if assignments else {}))
    print_change(result, _("Lead {lead} closed ({reason}); it stays in the database", lead=lead_ids[0],
                           reason=result["close_reason"]), as_json)


@lead.command("win")
@click.argument("lead_ids", type=LEAD, nargs=-1, required=True, metavar="LEAD_ID")
@click.option("--skip-refused", is_flag=True,
              help="With several leads: win those the rules allow and list the others (default: all or none).")
@if_version_option
@json_option
@pass_app
def lead_win(app: App, lead_ids: tuple[int, ...], skip_refused: bool, if_version: int | None, as_json: bool) -> None:
    """Win sales: each lead must be in the won stage with its mandatory tasks done."""
    if len(lead_ids) > 1:
        _one_lead_only(if_version)
        _print_batch(app.engine.bulk.win_many(list(lead_ids), on_refusal=_on_refusal(skip_refused)), "won", as_json)
        return
    result = app.engine.leads.win(lead_ids[0], if_version=if_version)
    print_change(result, _("Lead {lead} won", lead=lead_ids[0]), as_json)


@lead.command("reopen")
@click.argument("lead_id", type=LEAD)
@click.option("--stage", help="Stage to reopen into (default: the one it was closed in).")
@if_version_option
@json_option
@pass_app
def lead_reopen(app: App, lead_id: int, stage: str | None, if_version: int | None, as_json: bool) -> None:
    """Reopen a won or lost lead (managers)."""
    result = app.engine.leads.reopen(lead_id, stage, if_version=if_version)
    print_change(result, _("Lead {lead} reopened in '{stage_name}' ({stage})", lead=lead_id,
                           stage_name=label(result["stage_name"]), stage=result["stage"]), as_json)


@lead.command("history")
@click.argument("lead_id", type=LEAD)
@json_option
@pass_app
def lead_history(app: App, lead_id: int, as_json: bool) -> None:
    """Every change of a lead, oldest first."""
    emit(app.engine.leads.history(lead_id), as_json, render_history)


@lead.command("next-contact")
@click.argument("lead_id", type=LEAD)
@click.argument("when", metavar="DATETIME", required=False)
@click.option("--clear", is_flag=True, help="Cancel the booked contact.")
@if_version_option
@json_option
@pass_app
def lead_next_contact(app: App, lead_id: int, when: str | None, clear: bool, if_version: int | None,
                      as_json: bool) -> None:
    """Book the next contact with a lead's client at a date and time (or --clear it)."""
    if clear == (when is not None):
        raise click.UsageError(_("give the DATETIME of the next contact, or --clear (not both)"))
    result = app.engine.activities.set_next_contact(lead_id, None if clear else when, if_version=if_version)
    booked = short_time(result["next_contact"])
    print_change(result, _("Next contact of lead {lead}: {booked}", lead=lead_id, booked=booked) if booked else
                 _("Lead {lead} has no next contact booked", lead=lead_id), as_json)


# -- task ------------------------------------------------------------------------------------

@click.group("task")
def task() -> None:
    """Your open tasks, and completing them."""


@task.command("list")
@click.option("--owner", help="Whose tasks (default: yours; managers may name their team's people).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=None,
              help="At most this many rows (default: a screenful, 20; with --json: every row).")
@click.option("--offset", type=click.IntRange(0, 2**63 - 1), default=0, help="Skip this many rows first.")
@json_option
@pass_app
def task_list(app: App, owner: str | None, limit: int | None, offset: int, as_json: bool) -> None:
    """Open tasks across open leads and the contacts you booked, by time, with the client's phone and e-mail."""
    if as_json and (limit is not None or offset):  # the rows asked for: a list, as scripts read it
        print_json(app.engine.tasks.list(owner=owner, limit=limit, offset=offset))
        return
    if as_json:  # every row, read a page at a time (GET /v1/tasks and its Link header through a server)
        print_json_pages(_task_pages(app, owner))
        return
    # the table asks for a screenful: that page and how many rows there are in all (one request through a server)
    page = app.engine.tasks.page(owner=owner, limit=limit or TABLE_PAGE, offset=offset)
    total, items = page["total"], page["tasks"]
    out = []
    for r in items:
        due = short_time(r["due_at"])
        contact = " ".join(x for x in (r.get("phone"), r.get("email")) if x)  # a server before 0.3 sends neither
        out.append([r["lead_id"], r["name"], r["stage"], r["task"], r["task_name"], r["owner"],
                    _("yes") if r["mandatory"] else _("no"),
                    styled(_("{due} overdue", due=due), "red") if r["overdue"] else due,
                    short_time(r.get("next_contact")), contact])
    shown = (_("{first}-{last} of {total}", first=offset + 1, last=offset + len(items), total=total)
             if offset or len(items) < total else "")
    console().print(table(ngettext("{count} open task", "{count} open tasks", total) + (f" ({shown})" if shown else ""),
                          [_("lead"), _("client"), _("stage"), _("task"), _("name"), _("owner"), _("mandatory"),
                           _("due"), _("next contact"), _("phone / e-mail")], out))
    more = total - offset - len(items)
    if more > 0:
        console().print(_("and {more} more: --offset {offset} for the next page", more=more,
                          offset=offset + len(items)))


def _task_pages(app: App, owner: str | None) -> Iterator[list[results.TaskRow]]:
    after = None
    while True:
        page = app.engine.tasks.page(owner=owner, limit=JSON_PAGE, after=after)
        yield page["tasks"]
        after = page.get("next")
        if not after:
            return


@task.command("done")
@click.argument("lead_id", type=LEAD)
@click.argument("task_ids", metavar="TASK_ID", nargs=-1, required=True)
@click.option("--note")
@click.option("--set", "assignments", multiple=True, metavar="FIELD=VALUE",
              help="Record a field with the task (one its doer may write); repeatable.")
@if_version_option
@json_option
@pass_app
def task_done(app: App, lead_id: int, task_ids: tuple[str, ...], note: str | None, assignments: tuple[str, ...],
              if_version: int | None, as_json: bool) -> None:
    """Mark tasks of a lead's current stage done, recording fields with them (--set); several at once are all
    done, or none."""
    values = {"values": parse_assignments(assignments)} if assignments else {}
    if len(task_ids) == 1:
        result = app.engine.leads.complete_task(lead_id, task_ids[0], note, if_version=if_version, **values)
    else:
        result = app.engine.leads.complete_tasks(lead_id, list(task_ids), note, if_version=if_version, **values)
    still = [t["id"] for t in result["tasks"] if t["stage"] == result["stage"] and t["state"] == TaskStatus.OPEN
             and t["mandatory"]]
    done = ", ".join(f"'{t}'" for t in task_ids)
    print_change(result, ngettext("Task {tasks} of lead {lead} done", "Tasks {tasks} of lead {lead} done",
                                  len(task_ids), tasks=done, lead=lead_id)
                 + (_("; mandatory tasks still open: {tasks}", tasks=", ".join(still)) if still else
                    _("; the stage's mandatory tasks are all done")), as_json)


# -- client ----------------------------------------------------------------------------------

@click.group("client")
def client() -> None:
    """Clients and all their leads."""


@client.command("show")
@click.argument("client_id", type=ID)
@json_option
@pass_app
def client_show(app: App, client_id: int, as_json: bool) -> None:
    """A client with all its leads, past and present."""
    data = app.engine.clients.get(client_id)

    def render(c: results.Client) -> None:
        con = console()
        con.print(_("[bold]Client {client}[/bold]  {name}", client=c["id"], name=esc(c["name"]))
                  + (f" ({esc(c['company'])})" if c["company"] and c["company"] != c["name"] else "")
                  + (_(" | company") if c["kind"] == "company" else "")
                  + (f" | ext:{esc(c['external_id'])}" if c["external_id"] else "")
                  + (f" | {esc(c['email'])}" if c["email"] else "")
                  + (f" | {esc(c['phone'])}" if c["phone"] else ""))
        con.print(table(ngettext("{count} lead", "{count} leads", len(c["leads"])),
                        [_("lead"), _("process"), _("stage"), _("status"), _("owner"), _("created"), _("closed"),
                         _("reason")],
                        [[x["id"], x["process"], x["stage"], x["status"], x["owner"],
                          short_time(x["created_at"]), short_time(x["closed_at"]), x["close_reason"]]
                         for x in c["leads"]]))
        if c["contacts"]:
            con.print(table(_("Contact persons"), [_("name"), _("role"), _("e-mail"), _("phone")],
                            [[p["name"], p["role"], p["email"], p["phone"]] for p in c["contacts"]]))

    emit(data, as_json, render)


@client.command("company")
@click.argument("name")
@click.option("--external-id", help="The company's id in another system (unique).")
@json_option
@pass_app
def client_company(app: App, name: str, external_id: str | None, as_json: bool) -> None:
    """Add a company as a client (B2B): its leads are the company's, its people its contacts."""
    data = app.engine.clients.add_company(name, external_id=external_id)
    print_change(data, _("Client {id}: company {name}", id=data["id"], name=data["name"]), as_json)


@client.command("contact")
@click.argument("client_id", type=ID)
@click.argument("name")
@click.option("--role", help="What the person does for the company: buyer, site manager, ...")
@click.option("--email")
@click.option("--phone")
@json_option
@pass_app
def client_contact(app: App, client_id: int, name: str, role: str | None, email: str | None, phone: str | None,
                   as_json: bool) -> None:
    """Add a contact person to a company."""
    data = app.engine.clients.add_contact(client_id, name, role=role, email=email, phone=phone)
    print_change(data, ngettext("Client {id} ({name}): {count} contact person",
                                "Client {id} ({name}): {count} contact persons", len(data["contacts"]),
                                id=client_id, name=data["name"]), as_json)


@client.command("set")
@click.argument("client_id", type=ID)
@click.option("--language", required=True, metavar="en|pl|ro|ru",
              help="The language of the client's mails; an empty value: each lead's process's.")
@json_option
@pass_app
def client_set(app: App, client_id: int, language: str, as_json: bool) -> None:
    """Set the language a client's mails are written in."""
    data = app.engine.clients.set_language(client_id, language)
    emit(data, as_json, lambda c: echo(
        _("Client {id}: mails in {language}", id=c["id"], language=c["language"]) if c["language"]
        else _("Client {id}: mails in each process's language", id=c["id"])))


@client.command("edit")
@click.argument("client_id", type=ID)
@click.option("--name", help="The corrected name.")
@click.option("--email", help="The corrected e-mail address (empty: none).")
@click.option("--phone", help="The corrected phone number (empty: none).")
@click.option("--company", help="The corrected company (empty: none).")
@click.option("--tax-id", help="The corrected tax id (empty: none).")
@click.option("--reason", required=True, help="Why: who asked for the correction, or what was wrong.")
@json_option
@pass_app
def client_edit(app: App, client_id: int, name: str | None, email: str | None, phone: str | None,
                company: str | None, tax_id: str | None, reason: str, as_json: bool) -> None:
    """Correct a client's data (GDPR article 16; the owner of one of its leads, a manager of their team or an
    admin): recorded on each of its leads, with who and why."""
    data = app.engine.clients.edit(client_id, name=name, email=email, phone=phone, company=company, tax_id=tax_id,
                                   reason=reason)
    print_change(data, _("Client {id} corrected: {name}", id=data["id"], name=data["name"]), as_json)


@client.command("erase")
@click.argument("client_id", type=ID)
@click.option("--reason", required=True, help="Why, such as the request it answers (kept; say no personal data).")
@json_option
@pass_app
def client_erase(app: App, client_id: int, reason: str, as_json: bool) -> None:
    """Erase a client's personal data (GDPR article 17; admins): names, contacts, notes and personal fields
    become [erased]; the leads, stages, values, reasons and dates stay. It cannot be undone."""
    data = app.engine.clients.erase(client_id, reason=reason)
    print_change(data, ngettext("Client {id}: personal data erased; {count} lead kept",
                                "Client {id}: personal data erased; {count} leads kept", len(data["leads"]),
                                id=data["id"]), as_json)


@client.command("duplicates")
@click.option("--limit", type=click.IntRange(1, 10_000), default=200, show_default=True)
@json_option
@pass_app
def client_duplicates(app: App, limit: int, as_json: bool) -> None:
    """Likely duplicate clients (managers): the same phone, e-mail or tax id, or the same name and company."""
    groups = app.engine.clients.duplicates(limit=limit)

    def render(items: list[results.Duplicates]) -> None:
        rows = [[g["reason"], g["value"], c["id"], c["name"], c["company"], c["phone"], c["email"], c["leads"]]
                for g in items for c in g["clients"]]
        console().print(table(ngettext("{count} group", "{count} groups", len(items)),
                              [_("same"), _("value"), _("client"), _("name"), _("company"), _("phone"), _("e-mail"),
                               _("leads")], rows))

    emit(groups, as_json, render)


@client.command("merge")
@click.argument("keep", type=ID)
@click.argument("other", type=ID)
@json_option
@pass_app
def client_merge(app: App, keep: int, other: int, as_json: bool) -> None:
    """Merge client OTHER into KEEP (managers): OTHER's leads, history and contact data move to KEEP; the merge is
    an event on every moved lead; OTHER stays, marked as merged. Nothing is deleted."""
    result = app.engine.clients.merge(keep, other)
    print_change(result, ngettext("Client {other} merged into client {keep} ({name}): {count} lead now",
                                  "Client {other} merged into client {keep} ({name}): {count} leads now",
                                  len(result["leads"]), other=other, keep=keep, name=result["name"]), as_json)


# -- find ------------------------------------------------------------------------------------

@click.command("find")
@click.argument("text")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@json_option
@pass_app
def find(app: App, text: str, limit: int, as_json: bool) -> None:
    """Find clients and leads by name, company, e-mail, phone (any format), tax id or lead id; case and
    diacritics do not matter ('zolc' finds Żółć). Best matches first, only what you may see."""
    hits = app.engine.search.find(text, limit=limit)

    def render(items: list[results.SearchHit]) -> None:
        console().print(table(ngettext("{count} match", "{count} matches", len(items)),
                              [_("client"), _("name"), _("company"), _("phone"), _("e-mail"), _("lead"), _("stage"),
                               _("owner"), _("light"), _("match")],
                              [[h["client_id"], h["name"], h["company"], h["phone"], h["email"], h["lead_id"],
                                h["stage"], h["owner"], h["light"], f"{h['match']} ({h['matched']})"]
                               for h in items]))

    emit(hits, as_json, render)
