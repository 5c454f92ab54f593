"""Set-up commands: init, users, loading and migrating processes, and the demo."""

from __future__ import annotations

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
    plural,
    print_json,
    short_time,
    styled,
    table,
)


@click.command("init")
@json_option
@pass_app
def init(app: App, as_json: bool) -> None:
    """Create or upgrade the database schema; on an empty database you become its first admin."""
    result = app.engine.init()
    if as_json:
        print_json(result)
        return
    click.echo(f"Database ready (schema revision {result['revision']}).")
    if result["admin_created"]:
        echo(f"You ({result['admin_created']}) are its first admin. Next: leadflow process load processes/")


@click.group("user")
def user() -> None:
    """People who use leadflow and their roles."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, metavar="salesperson|manager|admin|DEPARTMENT",
              help="salesperson, manager (sales director) or admin; or a department role declared by a "
                   "loaded process, such as analyst or technician.")
@click.option("--team")
@click.option("--email", help="Where the user's reminders and their role's e-mails go (docs/automation.md).")
@json_option
@pass_app
def user_add(app: App, name: str, role: str, team: str | None, email: str | None, as_json: bool) -> None:
    """Register a user (admins)."""
    result = app.engine.users.add(name, role, team, email)
    emit(result, as_json, lambda u: echo(
        f"User {u['name']} added as {u['role']}" + (f" in team {u['team']}" if u["team"] else "")
        + (f", e-mail {u['email']}" if u["email"] else "")))


@user.command("set")
@click.argument("name")
@click.option("--email", required=True, help="The new address; an empty value removes it.")
@json_option
@pass_app
def user_set(app: App, name: str, email: str, as_json: bool) -> None:
    """Change a user's e-mail address (admins)."""
    result = app.engine.users.set_email(name, email)
    emit(result, as_json, lambda u: echo(
        f"User {u['name']}: e-mail {u['email']}" if u["email"] else f"User {u['name']}: no e-mail address"))


@user.command("list")
@json_option
@pass_app
def user_list(app: App, as_json: bool) -> None:
    """All users."""
    emit(app.engine.users.list(), as_json, lambda rows: console().print(table(
        plural(len(rows), "user"), ["name", "role", "team", "e-mail"],
        [[r["name"], r["role"], r["team"], r["email"]] for r in rows])))


@click.command("load")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@json_option
@pass_app
def process_load(app: App, paths: tuple[str, ...], as_json: bool) -> None:
    """Validate and store processes (admins); a changed file becomes a new version.

    Every file is checked first; if any is invalid, nothing is loaded.
    """
    from engine.errors import ProcessFileError
    from engine.loader import check_file, expand_paths

    files = expand_paths(paths)
    problems = [p for f in files for p in check_file(f)[1]]
    if not files:
        raise click.ClickException("no process files (*.yaml, *.yml) found in " + ", ".join(paths))
    if problems:
        raise ProcessFileError(problems)
    with app.engine.transaction():
        results = [app.engine.processes.load(f) for f in files]
    emit(results, as_json, lambda rs: click.echo("\n".join(
        f"{r['process']}: version {r['version']} " + ("loaded" if r["created"] else "unchanged, nothing to do")
        for r in rs)))


@click.command("list")
@json_option
@pass_app
def process_list(app: App, as_json: bool) -> None:
    """Loaded processes and their versions, with open leads per version."""
    rows = app.engine.processes.list()
    emit(rows, as_json, lambda rs: console().print(table(
        plural(len(rs), "process version"),
        ["process", "version", "title", "open leads", "loaded", "by", "hash"],
        [[r["process"], r["version"], r["title"], r["open_leads"], short_time(r["loaded_at"]),
          r["loaded_by"], r["hash"][:12]] for r in rs])))


@click.command("migrate")
@click.argument("name")
@click.option("--to", "to_version", type=RecordId("version"), required=True, help="Target version number.")
@click.option("--dry-run", is_flag=True, help="Check and list the leads that would move; change nothing.")
@json_option
@pass_app
def process_migrate(app: App, name: str, to_version: int, dry_run: bool, as_json: bool) -> None:
    """Move every open lead of a process to another version (admins); refuses if any lead cannot move."""
    result = app.engine.processes.migrate(name, to_version, dry_run=dry_run)
    verb = "would move" if dry_run else "moved"
    emit(result, as_json, lambda r: click.echo(
        f"{r['process']}: {verb} {len(r['leads'])} open leads to version {r['to_version']}"))


@click.command("demo")
@click.option("--db", "db_path", default="leadflow-demo.db", show_default=True,
              help="SQLite file to (re)create for the demo.")
@pass_app
def demo(app: App, db_path: str) -> None:
    """Load the shipped processes into a fresh SQLite database with a realistic team and pipeline."""
    from cli.lead_cmds import render_lead
    from cli.present.demo import build_demo

    summary: dict[str, Any] = build_demo(db_path)
    con = console()
    con.print(f"[bold]leadflow demo[/bold]: {esc(summary['db'])} as of {summary['as_of']}")
    con.print(f"Loaded processes: {esc(', '.join(summary['processes']))}")
    con.print(f"Team: {esc(', '.join(summary['users']))}")
    con.print(f"{summary['leads']} leads: {summary['open']} open, {summary['won']} won, "
              f"{summary['lost']} lost")
    con.print()
    con.print(f"[bold]What salesperson {esc(summary['salesperson'])} sees[/bold] "
              f"(leadflow task list, as {esc(summary['salesperson'])}):")
    rows = summary["tasks"]
    shown = 12
    con.print(table(plural(len(rows), "open task"), ["lead", "client", "stage", "task", "due"],
                    [[r["lead_id"], r["name"], r["stage"], r["task_name"],
                      styled(f"{short_time(r['due_at'])} overdue", "red") if r["overdue"]
                      else short_time(r["due_at"])] for r in rows[:shown]]))
    if len(rows) > shown:
        con.print(f"... and {len(rows) - shown} more (leadflow task list, as {esc(summary['salesperson'])})")
    con.print()
    render_lead(summary["example_lead"], summary["example_history"])
    con.print()
    con.print("Try it yourself:")
    for line in summary["try"]:
        con.print(f"  {line}", markup=False)
