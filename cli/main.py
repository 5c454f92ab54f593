"""The ``leadflow`` command group and the one place where engine errors become CLI errors."""

from __future__ import annotations

import os
from typing import Any

import click

from cli.app import App
from cli.output import printable
from engine.errors import LeadflowError


class LeadflowGroup(click.Group):
    """Turns every ``LeadflowError`` into ``Error: ...`` on stderr with exit code 1; never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # usage errors (exit 2), --help, Ctrl-C: click prints them
        except LeadflowError as exc:
            raise click.ClickException(printable(str(exc))) from None
        except Exception as exc:
            # Database trouble (server down, locked file, bad credentials) is the user's to fix, not a bug.
            if type(exc).__module__.startswith("sqlalchemy") and hasattr(exc, "orig"):
                raise click.ClickException(f"database error: {_one_line(exc.orig)}") from None
            if os.environ.get("LEADFLOW_DEBUG"):
                raise
            # A bug: still one line on stderr and exit code 1, the traceback on request.
            raise click.ClickException(
                f"internal error ({type(exc).__name__}: {_one_line(exc)}); this is a bug in leadflow, please "
                "report it (LEADFLOW_DEBUG=1 shows the traceback)") from None


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
        click.echo(f"leadflow, version {_version()}")
        ctx.exit()


@click.group(cls=LeadflowGroup)
@click.option("--db", "db_url", envvar="LEADFLOW_DB", default=None, metavar="URL",
              help="SQLAlchemy database URL (env LEADFLOW_DB). Default: sqlite:///leadflow.db")
@click.option("--user", envvar="LEADFLOW_USER", default=None,
              help="Acting user (env LEADFLOW_USER). Default: your OS login.")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version and exit.")
@click.pass_context
def cli(ctx: click.Context, db_url: str | None, user: str | None) -> None:
    """leadflow: sales processes declared in YAML, run on a state machine."""
    ctx.obj = App(db_url=db_url, user=user)
    ctx.call_on_close(ctx.obj.close)


def _register() -> None:
    from cli import (
        admin_cmds,
        automation_cmds,
        board_cmds,
        intake_cmds,
        lead_cmds,
        process_cmds,
        recovery_cmds,
        report_cmds,
    )

    lead_cmds.lead.add_command(recovery_cmds.lead_report)
    lead_cmds.lead.add_command(recovery_cmds.lead_recall)
    process_cmds.process.add_command(admin_cmds.process_load)
    process_cmds.process.add_command(admin_cmds.process_list)
    process_cmds.process.add_command(admin_cmds.process_migrate)
    for command in (admin_cmds.init, admin_cmds.user, process_cmds.process, lead_cmds.lead, lead_cmds.task,
                    lead_cmds.client, board_cmds.board, board_cmds.daily, recovery_cmds.review,
                    recovery_cmds.revisit, recovery_cmds.removals, recovery_cmds.stalled, recovery_cmds.rotate,
                    report_cmds.report, intake_cmds.import_, intake_cmds.export, intake_cmds.token,
                    intake_cmds.serve, automation_cmds.run_due, automation_cmds.outbox, admin_cmds.demo):
        cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="leadflow")


if __name__ == "__main__":  # pragma: no cover
    main()
