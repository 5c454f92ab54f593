"""Printing: JSON for programs, rich tables and colour for people. ``rich`` loads only when used."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import click

from engine.i18n import N_, Text, _, label
from engine.vocab import ID_END, LeadStatus, TaskStatus

json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print JSON (stable keys, see docs/cli.md).")
as_of_option = click.option("--as-of", "as_of", metavar="DATE",
                            help="As the leads stood at this past instant: YYYY-MM-DD (the end of that day) or "
                                 "YYYY-MM-DDTHH:MM (see docs/reports.md).")
if_version_option = click.option(
    "--if-version", "if_version", type=click.IntRange(1, 2**63 - 1), default=None, metavar="N",
    help="Refuse (changing nothing) unless the lead is still at version N, the 'version' you last saw.")



def shipped_option(verb: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``--shipped`` of the process commands that take PATH_OR_NAME..."""
    return click.option("--shipped", is_flag=True, help=f"{verb} every process shipped with leadflow too "
                        "(the ids 'leadflow process show NAME' takes).")


def process_sources(paths: tuple[str, ...], shipped: bool) -> list[str]:
    """The files and folders that PATH_OR_NAME... and --shipped name (``engine.paths.process_sources``)."""
    from engine.paths import process_sources as sources

    if not paths and not shipped:
        raise click.UsageError(_("name process files, folders or shipped processes, or give --shipped"))
    return sources(paths, shipped=shipped)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=_json_default))


def print_json_pages(pages: Iterable[list[Any]]) -> None:
    """One JSON array of the items of ``pages``, written a page at a time as ``print_json`` writes the whole list
    (the same text), so that a long list read page by page is never held whole."""
    first = True
    for page in pages:
        if not page:
            continue
        text = json.dumps(page, ensure_ascii=False, indent=2, default=_json_default)
        click.echo(("[\n" if first else ",\n") + text[2:-2], nl=False)  # the page's items, without its brackets
        first = False
    click.echo("[]" if first else "\n]")


def _json_default(value: Any) -> Any:
    """What json cannot write itself: a database row as an object, instants as ISO-8601, amounts as text.

    (``default=str`` printed a row as its Python repr, one JSON string: ``user add --json`` did.)
    """
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)  # Decimal and the like


#: Width of tables and lines written to a pipe or a file: wide enough that no row is folded, so that
#: names stay whole and ``grep`` finds them (a terminal, or COLUMNS, keeps its own width).
PIPE_WIDTH = 100_000


def console(pipe_width: int = PIPE_WIDTH) -> Any:
    """A rich console; written to a pipe it is ``pipe_width`` wide (boxed layouts ask for less)."""
    from rich.console import Console

    con = Console(highlight=False, soft_wrap=False)
    if not con.is_terminal and not os.environ.get("COLUMNS"):
        con = Console(highlight=False, soft_wrap=False, width=pipe_width)
    return con


# Control characters (C0 but tab and newline, DEL, C1) in stored text would reach the terminal as escape
# sequences; people see them as \x1b instead. JSON output escapes C0 itself and keeps the data as stored.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(value: Any) -> str:
    """``value`` as text safe to print to a terminal: control characters shown as ``\\xNN``; a process's label in
    the reader's language."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", label(value) if isinstance(value, Text) else str(value))


def esc(value: Any) -> str:
    """Data (a name, a field value, a path) for a rich markup string: printable, and ``[`` not markup."""
    from rich.markup import escape

    return escape(printable(value))


def styled(value: Any, style: str) -> Any:
    """A table cell shown in ``style``; its text is never read as markup."""
    from rich.text import Text

    return Text(printable(value), style=style)


def echo(message: str) -> None:
    """A plain line for people (the summaries of write commands), control characters made visible."""
    click.echo(printable(message))


def warn(message: str) -> None:
    """A warning for people on standard error (the command still succeeds), control characters made visible."""
    click.echo(printable(message), err=True)


def print_change(result: Any, message: str, as_json: bool) -> None:
    """What every write command prints: a one-line summary, or the whole result as JSON."""
    if as_json:
        print_json(result)
    else:
        echo(message)


T = TypeVar("T")


def emit(data: T, as_json: bool, render: Callable[[T], None]) -> None:
    """``data`` as JSON, or shown to people by ``render``."""
    if as_json:
        print_json(data)
    else:
        render(data)


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Any:
    """A rich table: ``title`` is markup (data in it goes through ``esc``), cells plain text or ``styled``."""
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_lines=False, header_style="bold")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*[_cell(v) for v in row])
    return t


def _cell(value: Any) -> Any:
    """A table cell: ``styled(...)`` as is; anything else as plain text (data is never rich markup)."""
    from rich.text import Text

    if isinstance(value, Text):
        return value
    return Text("" if value is None else printable(value))


def plural(n: int, word: str) -> str:
    """(1, 'lead') -> '1 lead'; (2, 'open task') -> '2 open tasks'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def amount(value: Any) -> Any:
    """An amount cell in the locale's separators (English: as stored); a missing one stays empty."""
    from cli.present import formats

    return value if value is None else formats.amount(value)


def short_time(iso: str | None) -> str:
    """'2026-03-03T23:59:59' -> '2026-03-03 23:59' (English), '3.03.2026, 23:59' (Polish): the locale's form."""
    from cli.present import formats

    return formats.short_time(iso)


STATE_STYLE: dict[str, str] = {TaskStatus.OPEN: "yellow", TaskStatus.DONE: "green", TaskStatus.NOT_APPLICABLE: "dim"}
STATUS_STYLE: dict[str, str] = {LeadStatus.OPEN: "cyan", LeadStatus.WON: "bold green", LeadStatus.LOST: "red"}


class RecordId(click.ParamType):  # type: ignore[type-arg]
    """A lead, client or version number: a whole number from 1 to 2**63-1 (the largest a database key holds).

    Anything else is bad usage (exit 2) that names the argument, never a driver's overflow error.
    """

    name = "integer"
    MAX = ID_END - 1

    def __init__(self, what: str = N_("id")) -> None:
        self.what = what  # marked with N_ by the caller, translated in the message

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = int(str(value).strip())
            except ValueError:
                self.fail(_("{value} is not a valid integer.", value=repr(value)), param, ctx)
        if not 1 <= number <= self.MAX:
            self.fail(_("{value} is not a valid {what}: a whole number from 1 to {max}", value=repr(value),
                        what=_(self.what), max=self.MAX),
                      param, ctx)
        return number


ID = RecordId()


class LeadRef(RecordId):
    """A lead's id, or ``ext:ID``: its id in the system it was migrated from, looked up through the engine (here or
    on the team server: ``leads.find_external``, which shows a lead only to whoever may see it). Every command that
    takes a lead takes either."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, str) and value.startswith("ext:"):
            from cli.app import App

            app = ctx.find_object(App) if ctx is not None else None
            assert app is not None, "a lead's external id is looked up within a command"
            return int(app.engine.leads.find_external(value[4:]))
        return super().convert(value, param, ctx)


LEAD = LeadRef()


def parse_assignments(pairs: tuple[str, ...], what: str = "FIELD=VALUE") -> dict[str, str]:
    """('a=1', 'b=x=y') -> {'a': '1', 'b': 'x=y'}; a pair without '=' is a usage error (exit 2)."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.UsageError(_("expected {what}, got {pair}", what=what, pair=repr(pair)))
        if name.strip() in out:
            raise click.UsageError(_("'{name}' is given twice", name=name.strip()))
        out[name.strip()] = value
    return out
