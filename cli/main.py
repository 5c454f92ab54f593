"""The ``leadflow`` command group and the one place where engine errors become CLI errors."""

from __future__ import annotations

import sys
from typing import Any

import click

from cli.app import App
from engine.errors import LeadflowError


class LeadflowGroup(click.Group):
    """Turns every ``LeadflowError`` into ``Error: ...`` on stderr with exit code 1; never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LeadflowError as exc:
            raise click.ClickException(str(exc)) from None
        except Exception as exc:
            # Database trouble (server down, locked file, bad credentials) is the user's to fix, not a bug.
            if type(exc).__module__.startswith("sqlalchemy") and hasattr(exc, "orig"):
                raise click.ClickException(f"database error: {exc.orig}") from None
            raise


class _App(App):
    """``App`` whose engine acts as ``--user`` (``App.engine`` opened it without the user, so ``--user``
    was ignored and every command ran as ``LEADFLOW_USER`` or the OS login)."""

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from engine.api import Engine

            self._engine = Engine.open(self.db_url, user=self.user)
        return self._engine


@click.group(cls=LeadflowGroup)
@click.option("--db", "db_url", envvar="LEADFLOW_DB", default=None, metavar="URL",
              help="SQLAlchemy database URL (env LEADFLOW_DB). Default: sqlite:///leadflow.db")
@click.option("--user", envvar="LEADFLOW_USER", default=None,
              help="Acting user (env LEADFLOW_USER). Default: your OS login.")
@click.version_option(package_name="leadflow")
@click.pass_context
def cli(ctx: click.Context, db_url: str | None, user: str | None) -> None:
    """leadflow: sales processes declared in YAML, run on a state machine."""
    ctx.obj = _App(db_url=db_url, user=user)
    ctx.call_on_close(ctx.obj.close)


def _register() -> None:
    from cli import admin_cmds, board_cmds, lead_cmds, process_cmds

    process_cmds.process.add_command(admin_cmds.process_load)
    process_cmds.process.add_command(admin_cmds.process_list)
    process_cmds.process.add_command(admin_cmds.process_migrate)
    for command in (admin_cmds.init, admin_cmds.user, process_cmds.process, lead_cmds.lead, lead_cmds.task,
                    lead_cmds.client, board_cmds.board, board_cmds.daily, admin_cmds.demo):
        cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="leadflow")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
