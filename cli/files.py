"""May a command write this file? One answer for every command that writes one (``export --output``,
``board --html``, ``report ... --chart``, ``import --rejects``, ``backup``, ``demo``).

A file that exists is replaced only with ``--force``; a SQLite database (recognised by its header, whatever its
name) is never replaced, not even then: ``export --output team.db`` must not turn the team's database into a
CSV. The demo database is the one exception ``demo`` makes: it carries a mark of its own in its header (SQLite's
application id), so a demo can be rebuilt and nothing else can be taken for one.

Only the standard library here: a command through a team server writes local files too, and imports no engine.
"""

from __future__ import annotations

from pathlib import Path

import click

from engine.i18n import _

#: The first 16 bytes of every SQLite 3 database file.
SQLITE_HEADER = b"SQLite format 3\x00"
#: The application id (``PRAGMA application_id``, bytes 68-71 of the header) that marks a demo database: "LFDM".
DEMO_APPLICATION_ID = 0x4C46444D
#: SQLite's own files beside a database in WAL mode: a target that has them is a database in use.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def _header(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(100)
    except OSError:
        return b""


def is_sqlite_database(path: Path) -> bool:
    """True when ``path`` is a SQLite database file (its header says so), or has SQLite's WAL files beside it."""
    return _header(path).startswith(SQLITE_HEADER) or any(
        Path(f"{path}{suffix}").exists() for suffix in SQLITE_COMPANIONS)


def is_demo_database(path: Path) -> bool:
    """True when ``path`` is a database that ``leadflow demo`` made (its header carries the demo's mark)."""
    header = _header(path)
    return header.startswith(SQLITE_HEADER) and int.from_bytes(header[68:72], "big") == DEMO_APPLICATION_ID


def writable(path: str | Path, *, force: bool, option: str, replaceable: bool = True) -> Path:
    """``path``, if a command may write it: new, or an existing file other than a database with ``force``.

    Refuses (a ``click.ClickException``: one line, exit 1, nothing written) a SQLite database even with
    ``force``, and any other existing file without it. ``option`` names the argument in the message (``--output``,
    ``FILE``). A folder is left to the writer, whose own error names it (nothing can be written over one). A
    command whose files are never replaced (``backup``: a backup is a database too) says so instead of offering
    ``--force``.
    """
    target = Path(path)
    if target.is_dir():
        return target
    if is_sqlite_database(target):
        raise click.ClickException(_(
            "{option} {path} is a SQLite database; leadflow never writes over a database, not even with --force: "
            "choose another file name", option=option, path=repr(str(path))))
    if target.exists() and not replaceable:
        raise click.ClickException(_("{option} {path} exists; it is never replaced: choose another file name",
                                     option=option, path=repr(str(path))))
    if target.exists() and not force:
        raise click.ClickException(_("{option} {path} exists; add --force to replace it, or choose another file name",
                                     option=option, path=repr(str(path))))
    return target


def demo_target(path: str | Path) -> Path:
    """``path``, if ``leadflow demo`` may (re)create its database there: a new file, or a demo database it made.

    Anything else that exists (a team's database, a CSV, any file) is refused, and left untouched.
    """
    target = Path(path)
    if target.is_dir():
        raise click.ClickException(_("--db {path} is a folder; give the demo database's file name",
                                     path=repr(str(path))))
    if target.exists() and not is_demo_database(target):
        raise click.ClickException(_(
            "--db {path} exists and is a leadflow or other SQLite database, not a demo database; the demo only "
            "creates a new file or rebuilds an earlier demo: choose another file name", path=repr(str(path)))
            if is_sqlite_database(target) else _(
            "--db {path} exists and is a file, not a demo database; the demo only creates a new file or rebuilds "
            "an earlier demo: choose another file name", path=repr(str(path))))
    return target


force_option = click.option("--force", is_flag=True,
                            help="Replace the file if it exists (never a database).")
