"""Set-up commands: init, users, loading and migrating processes, and the demo."""

from __future__ import annotations

import sys
from typing import Any

import click

from cli.app import App, pass_app
from cli.output import (
    RecordId,
    console,
    echo,
    emit,
    esc,
    json_option,
    print_json,
    printable,
    process_sources,
    shipped_option,
    short_time,
    styled,
    table,
)
from engine.i18n import N_, _, label, message_text, ngettext


@click.command("init")
@click.option("--test", "test_database", is_flag=True,
              help="Make a new database a test database: its commands honour LEADFLOW_NOW.")
@json_option
@pass_app
def init(app: App, test_database: bool, as_json: bool) -> None:
    """Create or upgrade the database schema; on an empty database you become its first admin."""
    result = app.open_engine(create=True).init(purpose="test" if test_database else None)
    if as_json:
        print_json(result)
        return
    click.echo(_("Database ready (schema revision {revision}).", revision=result["revision"]))
    if result["admin_created"]:
        echo(_("You ({user}) are its first admin. Next: leadflow process load --shipped",
               user=result["admin_created"]))


@click.group("user")
def user() -> None:
    """People who use leadflow, their roles, and their passwords."""


def read_stdin_lines(count: int) -> list[str]:
    """``count`` lines of standard input, without their line ends (a password is never an argument)."""
    lines = sys.stdin.read().splitlines()
    if len(lines) < count:
        # the English "line(s)" is what scripts and tests have read since 0.1; the other languages' plural forms
        raise click.UsageError(ngettext("--password-stdin expects {count} line(s) on standard input, got {got}",
                                        "--password-stdin expects {count} line(s) on standard input, got {got}",
                                        count, got=len(lines)))
    return lines[:count]


def _with_one_time(u: dict[str, Any]) -> str:
    return "\n" + _("One-time password: {password}\nIt is not shown again; {user} changes it at the first login.",
                    password=u["password"], user=u["name"]) if "password" in u else ""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, metavar="salesperson|manager|admin|DEPARTMENT",
              help="salesperson, manager (sales director) or admin; or a department role declared by a "
                   "loaded process, such as analyst or technician.")
@click.option("--team")
@click.option("--email", help="Where the user's reminders and their role's e-mails go (docs/automation.md).")
@click.option("--password-stdin", is_flag=True, help="Read the user's first password from standard input.")
@click.option("--one-time-password", is_flag=True, help="Make a random first password and print it once.")
@json_option
@pass_app
def user_add(app: App, name: str, role: str, team: str | None, email: str | None, password_stdin: bool,
             one_time_password: bool, as_json: bool) -> None:
    """Register a user (admins). A first password (either way) is changed at the first login on a server."""
    if password_stdin and one_time_password:
        raise click.UsageError(_("--password-stdin and --one-time-password exclude each other"))
    password = read_stdin_lines(1)[0] if password_stdin else None
    engine = app.engine
    with engine.transaction():
        result: dict[str, Any] = {**engine.users.add(name, role, team, email, password=password)}
        if one_time_password:
            made = engine.auth.one_time_password(result["name"])
            result = {**made["user"], "password": made["password"]}
    emit(result, as_json, lambda u: echo(
        _("User {user} added as {role}", user=u["name"], role=u["role"])
        + (_(" in team {team}", team=u["team"]) if u["team"] else "")
        + (_(", e-mail {email}", email=u["email"]) if u["email"] else "") + _with_one_time(u)))


@user.command("passwd")
@click.argument("name", required=False)
@click.option("--password-stdin", is_flag=True,
              help="Read the new password from standard input; for your own password, the current one first.")
@click.option("--one-time", is_flag=True, help="Make a random password and print it once (admins).")
@json_option
@pass_app
def user_passwd(app: App, name: str | None, password_stdin: bool, one_time: bool, as_json: bool) -> None:
    """Set your own password (with the current one), or any user's (admins: it is changed at their next login)."""
    engine = app.engine
    me = engine.users.whoami()
    name_ = name if name is not None else me["name"]
    result: dict[str, Any]
    if one_time:
        made = engine.auth.one_time_password(name_)
        result = {**made["user"], "password": made["password"]}
    else:
        own = name_ == me["name"]
        needs_old = own and me["password_set"]
        if password_stdin:
            lines = read_stdin_lines(2 if needs_old else 1)
            old, new = (lines[0], lines[1]) if needs_old else (None, lines[0])
        else:
            old = click.prompt(_("Current password"), hide_input=True) if needs_old else None
            new = click.prompt(_("New password for {user}", user=name_), hide_input=True, confirmation_prompt=True)
        result = {**engine.auth.set_password(name_, new, old_password=old)}
    emit(result, as_json, lambda u: echo(
        (_("Password of {user} set, to be changed at the next login", user=u["name"]) if u["must_change_password"]
         else _("Password of {user} set", user=u["name"])) + _with_one_time(u)))


@user.command("set")
@click.argument("name")
@click.option("--email", help="The new address; an empty value removes it.")
@click.option("--role", metavar="salesperson|manager|admin|DEPARTMENT", help="The new role.")
@click.option("--team", help="The new team; an empty value removes it.")
@click.option("--deactivate", "active", flag_value=False, default=None,
              help="The user can no longer act or log in; their sessions and tokens are revoked, their leads wait "
                   "for reassignment.")
@click.option("--activate", "active", flag_value=True, help="Let a deactivated user act and log in again.")
@click.option("--language", metavar="en|pl|ro|ru",
              help="The language the user reads leadflow in; an empty value: the environment's (LEADFLOW_LANG, LANG).")
@json_option
@pass_app
def user_set(app: App, name: str, email: str | None, role: str | None, team: str | None, active: bool | None,
             language: str | None, as_json: bool) -> None:
    """Change a user's e-mail, role, team or language, or deactivate or reactivate them (admins; anyone their
    own language)."""
    if email is None and role is None and team is None and active is None and language is None:
        raise click.UsageError(_("nothing to change: give --email, --role, --team, --language, --deactivate or "
                                 "--activate"))
    engine = app.engine
    result: dict[str, Any] = {}
    with engine.transaction():
        if language is not None:
            result = {**engine.users.set_language(name, language)}
        if email is not None:
            result = {**engine.users.set_email(name, email)}
        if role is not None or team is not None or active is not None:
            result = {**engine.users.set(name, role=role, team=team or None, clear_team=team == "", active=active)}

    def render(u: dict[str, Any]) -> None:
        if language is not None and email is None and role is None and team is None and active is None:
            echo(_("User {name}: reads leadflow in {language}", name=u["name"], language=u["language"])
                 if u["language"] else _("User {name}: reads leadflow in the environment's language",
                                         name=u["name"]))
            return
        if email is not None and role is None and team is None and active is None:
            echo(_("User {name}: e-mail {email}", name=u["name"], email=u["email"]) if u["email"] else
                 _("User {name}: no e-mail address", name=u["name"]))
            return
        echo((_("User {name}: {role} in team {team}", name=u["name"], role=u["role"], team=u["team"]) if u["team"]
              else _("User {name}: {role}", name=u["name"], role=u["role"]))
             + ("" if u["active"] else _(", deactivated")))
        if not u["active"] and u.get("open_leads"):
            echo(ngettext("{count} open lead of {name} to reassign: leadflow lead list --owner {name}",
                          "{count} open leads of {name} to reassign: leadflow lead list --owner {name}",
                          u["open_leads"], name=u["name"]))

    emit(result, as_json, render)


@user.command("list")
@json_option
@pass_app
def user_list(app: App, as_json: bool) -> None:
    """All users."""
    emit(app.engine.users.list(), as_json, lambda rows: console().print(table(
        ngettext("{count} user", "{count} users", len(rows)), [_("name"), _("role"), _("team"), _("e-mail")],
        [[r["name"], r["role"], r["team"], r["email"]] for r in rows])))


@click.command("load")
@click.argument("paths", nargs=-1, metavar="[PATH_OR_NAME]...")
@shipped_option("Load")
@json_option
@pass_app
def process_load(app: App, paths: tuple[str, ...], shipped: bool, as_json: bool) -> None:
    """Validate and store processes (admins); a changed file becomes a new version.

    Takes process files, folders of them, and the ids of shipped processes (``photovoltaics``); a file
    in the current folder wins over a shipped process of its name. Every file is checked first; if any
    is invalid, nothing is loaded.
    """
    from cli.process_cmds import check, problem_line
    from engine.loader import expand_paths

    files = expand_paths(process_sources(paths, shipped))
    if not files:
        raise click.ClickException(_("no process files (*.yaml, *.yml) found in {paths}", paths=", ".join(paths)))
    # every file first (through a server too, which then loads them one by one): if any is invalid, none loads
    problems = [problem_line(r["file"], p) for r in (check(app, str(f)) for f in files) for p in r["problems"]]
    if problems:
        raise click.ClickException(printable("\n".join(problems)))
    with app.engine.transaction():
        results = [app.engine.processes.load(f) for f in files]
    emit(results, as_json, lambda rs: click.echo("\n".join(
        _("{process}: version {version} loaded", process=r["process"], version=r["version"]) if r["created"] else
        _("{process}: version {version} unchanged, nothing to do", process=r["process"], version=r["version"])
        for r in rs)))


@click.command("list")
@json_option
@pass_app
def process_list(app: App, as_json: bool) -> None:
    """Loaded processes and their versions, with open leads per version."""
    rows = app.engine.processes.list()
    emit(rows, as_json, lambda rs: console().print(table(
        ngettext("{count} process version", "{count} process versions", len(rs)),
        [_("process"), _("version"), _("title"), _("open leads"), _("loaded"), _("by"), _("hash")],
        [[r["process"], r["version"], label(r["title"]), r["open_leads"], short_time(r["loaded_at"]),
          r["loaded_by"], r["hash"][:12]] for r in rs])))


@click.command("migrate")
@click.argument("name")
@click.option("--to", "to_version", type=RecordId(N_("version")), required=True, help="Target version number.")
@click.option("--dry-run", is_flag=True, help="Check and list the leads that would move; change nothing.")
@json_option
@pass_app
def process_migrate(app: App, name: str, to_version: int, dry_run: bool, as_json: bool) -> None:
    """Move every open lead of a process to another version (admins); refuses if any lead cannot move."""
    result = app.engine.processes.migrate(name, to_version, dry_run=dry_run)
    emit(result, as_json, lambda r: click.echo(ngettext(
        "{process}: would move {count} open lead to version {version}",
        "{process}: would move {count} open leads to version {version}", len(r["leads"]),
        process=r["process"], version=r["to_version"]) if dry_run else ngettext(
        "{process}: moved {count} open lead to version {version}",
        "{process}: moved {count} open leads to version {version}", len(r["leads"]),
        process=r["process"], version=r["to_version"])))


@click.command("check")
@json_option
@pass_app
def check(app: App, as_json: bool) -> None:
    """Check the database (admins): its integrity, every lead against its history, every projection against a
    recount. Exit 1 when anything differs."""
    report = app.engine.admin.check()
    if as_json:
        print_json(report)
    else:
        for difference in report["differences"]:
            # in the reader's language, from its template (through a server too: the JSON has message_id, params)
            click.echo(printable(f"{difference['kind']}: {message_text(difference)}"))
        if report["more"]:
            click.echo(ngettext("... and {count} more difference", "... and {count} more differences",
                                report["more"]))
        found = len(report["differences"]) + report["more"]
        seconds = format(report["seconds"], ".1f")
        click.echo(ngettext("Checked {count} lead on {database} in {seconds} s: ",
                            "Checked {count} leads on {database} in {seconds} s: ", report["leads"],
                            database=report["database"], seconds=seconds)
                   + (_("everything agrees.") if report["ok"] else
                      ngettext("{count} difference.", "{count} differences.", found)))
    if not report["ok"]:
        sys.exit(1)


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@pass_app
def backup(app: App, file: str, as_json: bool) -> None:
    """Write a consistent backup of the database to FILE, a new file (admins; docs/operations.md)."""
    from cli.files import writable

    target = writable(file, force=False, option="FILE", replaceable=False)
    emit(app.engine.admin.backup(target), as_json, lambda r: echo(
        _("Backed up the {database} database (schema revision {revision}) to {file}: {bytes} bytes in {seconds} s.",
          database=r["database"], revision=r["revision"], file=r["file"], bytes=format(r["bytes"], ","),
          seconds=format(r["seconds"], ".1f"))))


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@pass_app
def restore(app: App, file: str, as_json: bool) -> None:
    """Restore a backup into this database, which must be empty (admins); verified before it is reported."""
    emit(app.open_engine(create=True).admin.restore(file), as_json, lambda r: echo(
        ngettext("Restored {file} into the {database} database: {count} lead, each equal to its history; schema "
                 "revision {revision}.",
                 "Restored {file} into the {database} database: {count} leads, each equal to its history; schema "
                 "revision {revision}.", r["leads"], file=r["file"], database=r["database"], revision=r["revision"])))


@click.command("demo")
@click.option("--db", "db_path", default="leadflow-demo.db", show_default=True,
              help="The new SQLite file for the demo (an earlier demo's is rebuilt; nothing else is replaced).")
@pass_app
def demo(app: App, db_path: str) -> None:
    """Load the shipped processes into a new SQLite database with a realistic team and pipeline.

    Refuses a file that exists and is not an earlier demo database: a team's database is never replaced.
    """
    from cli.files import demo_target
    from cli.lead_cmds import render_lead
    from cli.present import formats
    from cli.present.demo import build_demo

    summary: dict[str, Any] = build_demo(demo_target(db_path))
    con = console()
    con.print(_("[bold]leadflow demo[/bold]: {db} as of {as_of}", db=esc(summary["db"]),
                as_of=formats.date_time(summary["as_of"])))
    con.print(_("Loaded processes: {processes}", processes=esc(", ".join(summary["processes"]))))
    con.print(_("Team: {users}", users=esc(", ".join(summary["users"]))))
    con.print(ngettext("{count} lead: {open} open, {won} won, {lost} lost",
                       "{count} leads: {open} open, {won} won, {lost} lost", summary["leads"],
                       open=summary["open"], won=summary["won"], lost=summary["lost"]))
    con.print()
    con.print(_("[bold]What salesperson {name} sees[/bold] (leadflow task list, as {name}):",
                name=esc(summary["salesperson"])))
    rows = summary["tasks"]
    shown = 12
    con.print(table(ngettext("{count} open task", "{count} open tasks", len(rows)),
                    [_("lead"), _("client"), _("stage"), _("task"), _("due")],
                    [[r["lead_id"], r["name"], r["stage"], r["task_name"],
                      styled(_("{due} overdue", due=formats.short_time(r["due_at"])), "red") if r["overdue"]
                      else formats.short_time(r["due_at"])] for r in rows[:shown]]))
    if len(rows) > shown:
        con.print(_("... and {more} more (leadflow task list, as {name})", more=len(rows) - shown,
                    name=esc(summary["salesperson"])))
    con.print()
    render_lead(summary["example_lead"], summary["example_history"])
    con.print()
    con.print(_("Try it yourself:"))
    for line in summary["try"]:
        con.print(f"  {line}", markup=False)
