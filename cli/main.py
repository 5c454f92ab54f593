"""The ``leadflow`` command group and the one place where engine errors become CLI errors."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from cli import click_words
from cli.app import App
from cli.output import printable

click_words.install()  # click's own words (Usage:, Error: ...) in the reader's language

#: Each top-level command and the module that defines it (cli/<module>.py, attribute): a command's module is
#: imported only when it runs, so ``lead show`` does not pay for the reports, the import or the HTTP service.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("admin_cmds", "init"), "user": ("admin_cmds", "user"), "process": ("process_cmds", "process"),
    "lead": ("lead_cmds", "lead"), "task": ("lead_cmds", "task"), "client": ("lead_cmds", "client"),
    "find": ("lead_cmds", "find"),
    "activity": ("activity_cmds", "activity"),
    "board": ("board_cmds", "board"), "daily": ("board_cmds", "daily"), "review": ("recovery_cmds", "review"),
    "revisit": ("recovery_cmds", "revisit"), "removals": ("recovery_cmds", "removals"),
    "stalled": ("recovery_cmds", "stalled"), "rotate": ("recovery_cmds", "rotate"),
    "report": ("report_cmds", "report"), "import": ("intake_cmds", "import_"), "export": ("intake_cmds", "export"),
    "token": ("intake_cmds", "token"), "serve": ("intake_cmds", "serve"), "run-due": ("automation_cmds", "run_due"),
    "outbox": ("automation_cmds", "outbox"), "demo": ("admin_cmds", "demo"),
    "check": ("admin_cmds", "check"), "backup": ("admin_cmds", "backup"), "restore": ("admin_cmds", "restore"),
    "login": ("login_cmds", "login"), "logout": ("login_cmds", "logout"), "whoami": ("login_cmds", "whoami"),
}
#: Commands that work on a local database by nature, never through a server: ``serve`` is the server, ``demo``
#: makes a SQLite file of its own, ``init`` creates the schema of the database the server will use, and the
#: operator's ``check``, ``backup`` and ``restore`` read and write the database (and backup files) where they run.
LOCAL_COMMANDS = frozenset({"init", "demo", "serve", "check", "backup", "restore"})
#: Commands that choose the server themselves and act as nobody yet (or any more): the acting user of a local
#: database (``--user``, ``LEADFLOW_USER``) is not refused for them.
LOGIN_COMMANDS = frozenset({"login", "logout"})
#: Subcommands a group takes from another module (the recovery side of ``lead``, the admin side of ``process``).
SUBCOMMANDS: dict[str, list[tuple[str, str]]] = {
    "lead": [("recovery_cmds", "lead_report"), ("recovery_cmds", "lead_recall")],
    "process": [("admin_cmds", "process_load"), ("admin_cmds", "process_list"), ("admin_cmds", "process_migrate")],
}


def _load(name: str) -> click.Command:
    import importlib

    module, attribute = COMMANDS[name]
    command: click.Command = getattr(importlib.import_module(f"cli.{module}"), attribute)
    if isinstance(command, click.Group):
        for sub_module, sub_attribute in SUBCOMMANDS.get(name, []):
            command.add_command(getattr(importlib.import_module(f"cli.{sub_module}"), sub_attribute))
    assert command.name == name, f"cli.{module}.{attribute} is named {command.name!r}, not {name!r}"
    return command


class LeadflowGroup(click.Group):
    """Turns every ``LeadflowError`` into ``Error: ...`` on stderr with exit code 1; never a traceback. Loads
    each command's module when the command is asked for (``COMMANDS``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.add_command(_load(cmd_name))
        command = self.commands.get(cmd_name)
        if command is not None:
            localize_help(command)
        return command

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        from engine import i18n

        i18n.reset()  # a new command: nobody acts yet, the environment's language until the engine knows who
        localize_help(self)
        return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # usage errors (exit 2), --help, Ctrl-C: click prints them
        except Exception as exc:
            message = user_error(exc)
            if message is not None:
                raise click.ClickException(printable(message)) from None
            from engine.i18n import _

            # Database trouble (server down, locked file, bad credentials) is the user's to fix, not a bug.
            if type(exc).__module__.startswith("sqlalchemy") and hasattr(exc, "orig"):
                raise click.ClickException(_("database error: {error}", error=_one_line(exc.orig))) from None
            if os.environ.get("LEADFLOW_DEBUG"):
                raise
            # A bug: still one line on stderr and exit code 1, the traceback on request.
            raise click.ClickException(_(
                "internal error ({kind}: {error}); this is a bug in leadflow, please report it (LEADFLOW_DEBUG=1 "
                "shows the traceback)", kind=type(exc).__name__, error=_one_line(exc))) from None


def user_error(exc: BaseException) -> str | None:
    """The message of an error the user caused: the engine's refusal (a ``LeadflowError``), here or on the
    server (a ``RemoteError`` carries the server's message; one that could not be reached says so). None for a
    bug. A module never imported raised nothing, so checking costs the remote path no engine import."""
    engine_errors = sys.modules.get("engine.errors")
    if engine_errors is not None and isinstance(exc, engine_errors.LeadflowError):
        from engine.i18n import error_text

        return error_text(exc)
    remote = sys.modules.get("cli.remote")
    if remote is not None and isinstance(exc, remote.RemoteError):
        return str(exc.message)
    credentials = sys.modules.get("cli.credentials")
    if credentials is not None and isinstance(exc, credentials.CredentialsError):
        return str(exc)
    return None


#: The help of click's --help option, in English (click's msgid, in leadflow's catalogues: cli/click_words.py).
CLICK_HELP = "Show this message and exit."
#: The English help of each command and option that ``localize_help`` changed, to restore or translate again.
_ENGLISH_HELP: dict[int, tuple[Any, str | None, str | None]] = {}


def localize_help(command: click.Command) -> None:
    """Show the help of ``command`` (and its options and subcommands) in the language in effect: click reads
    ``help`` when it prints it, so the English given in the source is swapped for its translation here (and
    back). English that was never translated costs nothing: no catalogue is read."""
    from engine import i18n

    code = i18n.language()
    if code == i18n.SOURCE and not _ENGLISH_HELP:
        return
    _translate(command, i18n.translations(code))


def english_help(item: Any) -> tuple[str | None, str | None]:
    """The source (English) ``help`` and ``short_help`` of a command or option, whatever language it shows now."""
    english = _ENGLISH_HELP.get(id(item))
    if english is not None:
        return english[1], english[2]
    return getattr(item, "help", None), getattr(item, "short_help", None)


def _translate(command: click.Command, catalogue: Any) -> None:
    # click keeps the --help option it made once (8.2+), its help in the language of that moment: translated too
    help_option = getattr(command, "_help_option", None)
    for item in [command, *command.params, *([help_option] if help_option is not None else [])]:
        # click makes a command's --help option on its first use, in the language of that moment: its English is
        # click's own text, not what it holds then
        english = _ENGLISH_HELP.setdefault(id(item), (item, CLICK_HELP if item is help_option else
                                                      getattr(item, "help", None), getattr(item, "short_help", None)))
        for attribute, text in (("help", english[1]), ("short_help", english[2])):
            if text:
                setattr(item, attribute, catalogue.gettext(text))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _translate(sub, catalogue)


def _one_line(exc: BaseException) -> str:
    """A driver's multi-line message ('connection failed: ...\\n\\tIs the server running...') on one line."""
    return printable(" ".join(str(exc).split()))


def _version() -> str:
    """The installed version; from a checkout that is not installed (python -m cli.main), pyproject's."""
    from importlib import metadata

    try:
        return metadata.version("leadflow")
    except metadata.PackageNotFoundError:
        import tomllib
        from pathlib import Path

        try:
            with (Path(__file__).resolve().parent.parent / "pyproject.toml").open("rb") as f:
                return f"{tomllib.load(f)['project']['version']} (not installed)"
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown (not installed)"


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    # click.version_option(package_name=...) raises RuntimeError, a traceback, when leadflow is not installed.
    if value and not ctx.resilient_parsing:
        from engine.i18n import _

        click.echo(_("leadflow, version {version}", version=_version()))
        ctx.exit()


@click.group(cls=LeadflowGroup)
@click.option("--db", "db_url", envvar="LEADFLOW_DB", default=None, metavar="URL",
              help="SQLAlchemy database URL (env LEADFLOW_DB). Default: sqlite:///leadflow.db")
@click.option("--server", "server_url", envvar="LEADFLOW_SERVER", default=None, metavar="URL",
              help="Work through this team server (env LEADFLOW_SERVER). Default: the server of your last "
                   "'leadflow login', if any; else the local database.")
@click.option("--user", envvar="LEADFLOW_USER", default=None,
              help="Acting user on a local database (env LEADFLOW_USER). Default: your OS login. "
                   "Through a server you are who your login says.")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version and exit.")
@click.pass_context
def cli(ctx: click.Context, db_url: str | None, server_url: str | None, user: str | None) -> None:
    """leadflow: sales processes declared in YAML, run on a state machine.

    On a local database (--db, the demo, one person) or through a team server (leadflow login URL, or
    LEADFLOW_SERVER and LEADFLOW_TOKEN): the commands, their output and exit codes are the same.
    """
    ctx.obj = _app(ctx, db_url, server_url, user)
    ctx.call_on_close(ctx.obj.close)


def _app(ctx: click.Context, db_url: str | None, server_url: str | None, user: str | None) -> App:
    """Where the command works: a local database, or a server and the token that says who acts there."""
    from engine.i18n import _

    command = ctx.invoked_subcommand
    if db_url is not None and server_url is not None:
        raise click.UsageError(_("{db} and {server} both say where to work: give a local database or a server, not "
                                 "both", db=_given(ctx, "db_url"), server=_given(ctx, "server_url")))
    if db_url is not None or (command in LOCAL_COMMANDS and command != "init") or command in LOGIN_COMMANDS:
        return App(db_url=db_url, user=user, server_url=server_url)
    from cli import credentials

    try:
        login = credentials.resolve(server_url)
    except credentials.CredentialsError as exc:
        raise click.UsageError(str(exc)) from None
    if login is None:
        return App(db_url=db_url, user=user, login_possible=True)  # the local database (LEADFLOW_DB's default)
    if command == "init":
        raise click.UsageError(_("init creates the schema of a local database, not through a server ({server}): "
                                 "give --db URL, where the server runs", server=login.server))
    if user is not None:
        raise click.UsageError(_("{user} is refused through a server ({server}): there you act as the user of your "
                                 "login and nobody else (leadflow whoami); unset it, or give --db URL to work on a "
                                 "local database", user=_given(ctx, "user"), server=login.server))
    return App(login=login)


def _given(ctx: click.Context, name: str) -> str:
    """How the user gave the group option ``name``: '--user root' or 'LEADFLOW_USER=root'."""
    from click.core import ParameterSource

    option = next(p for p in ctx.command.params if p.name == name)
    assert isinstance(option, click.Option)
    value = ctx.params[name]
    if ctx.get_parameter_source(name) == ParameterSource.ENVIRONMENT:
        return f"{option.envvar}={value}"
    return f"{option.opts[0]} {value}"


def main() -> None:
    cli(prog_name="leadflow")


if __name__ == "__main__":  # pragma: no cover
    main()
