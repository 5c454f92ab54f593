"""The object every command receives: where it works (a local database, or a team server) and the engine,
opened on first use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import click

if TYPE_CHECKING:  # the engine (SQLAlchemy and all) loads only when a command needs the database
    from cli.credentials import Login
    from engine.api import Engine


@dataclass
class App:
    db_url: str | None = None
    user: str | None = None
    #: Through a server: its address and the token that says who acts (``leadflow login``, LEADFLOW_TOKEN).
    login: Login | None = None
    #: ``--server``/LEADFLOW_SERVER as given, for the commands that log in and out.
    server_url: str | None = None
    #: The command could have worked through a team server but found no login: a missing default database then
    #: says how to log in too (a team member after ``leadflow logout`` wants the server, not a file of their own).
    login_possible: bool = False
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def remote(self) -> bool:
        """Whether the commands run through a team server."""
        return self.login is not None

    @property
    def engine(self) -> Engine:
        """The engine, opened lazily so that commands without a database never touch one. Through a server, a
        client with the engine's surface (cli/remote.py) whose calls are the server's operations. It never creates
        a database: a SQLite file that does not exist is refused with its path."""
        return self.open_engine()

    def open_engine(self, *, create: bool = False) -> Engine:
        """The engine; only ``init`` and ``restore`` pass ``create=True`` (``demo`` builds its own file)."""
        if self._engine is None:
            if self.login is not None:
                from cli.remote import RemoteEngine, Server

                # the same grouped surface and results, generated from cli/operations.py (tests check both)
                self._engine = cast("Engine", RemoteEngine(Server(self.login.server, self.login.token)))
            else:
                from engine.api import Engine
                from engine.errors import NotFoundError
                from engine.i18n import N_

                try:
                    engine = Engine.open(self.db_url, user=self.user, create=create)
                except NotFoundError as exc:  # the database file is missing (nothing else is looked up here)
                    if self.db_url is not None or not self.login_possible:
                        raise
                    # neither --db nor LEADFLOW_DB: the default file, which a team member never had
                    raise NotFoundError(N_(
                        "no leadflow database at {path} (database URL {url}), and no team server: "
                        "'leadflow login URL' works through your team's server; 'leadflow init' creates a local "
                        "database there, or point --db or LEADFLOW_DB at an existing one"), **exc.params) from None
                try:
                    engine.require_clock()  # LEADFLOW_NOW: only on a demo or test database
                except BaseException:
                    engine.close()
                    raise
                self._engine = engine
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


pass_app = click.make_pass_decorator(App)
