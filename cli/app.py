"""The object every command receives: options from the group, the engine opened on first use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # the engine (SQLAlchemy and all) loads only when a command needs the database
    from engine.api import Engine


@dataclass
class App:
    db_url: str | None = None
    user: str | None = None
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        """The engine, opened lazily so that commands without a database never touch one.

        It never creates a database: a SQLite file that does not exist is refused with its path.
        """
        return self.open_engine()

    def open_engine(self, *, create: bool = False) -> Engine:
        """The engine; only ``init`` and ``restore`` pass ``create=True`` (``demo`` builds its own file)."""
        if self._engine is None:
            from engine.api import Engine

            self._engine = Engine.open(self.db_url, user=self.user, create=create)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


pass_app = click.make_pass_decorator(App)
