"""Printing: JSON for programs, rich tables and colour for people. ``rich`` loads only when used."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON (stable keys, see docs/cli.md).")


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def emit(data: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    if as_json:
        print_json(data)
    else:
        render(data)


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> Any:
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_lines=False, header_style="bold")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*["" if v is None else str(v) for v in row])
    return t


def short_time(iso: str | None) -> str:
    """'2026-03-03T23:59:59' -> '2026-03-03 23:59'."""
    return iso.replace("T", " ")[:16] if iso else ""


STATE_STYLE = {"open": "yellow", "done": "green", "not_applicable": "dim"}
STATUS_STYLE = {"open": "cyan", "won": "bold green", "lost": "red"}


def parse_assignments(pairs: tuple[str, ...], what: str = "FIELD=VALUE") -> dict[str, str]:
    """('a=1', 'b=x=y') -> {'a': '1', 'b': 'x=y'}; a pair without '=' is a usage error (exit 2)."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.UsageError(f"expected {what}, got {pair!r}")
        if name.strip() in out:
            raise click.UsageError(f"'{name.strip()}' is given twice")
        out[name.strip()] = value
    return out
