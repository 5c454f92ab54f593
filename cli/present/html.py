"""Self-contained HTML pages (no network resources), rendered with Jinja2 with autoescaping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import i18n, results

TEMPLATES = Path(__file__).resolve().parent / "templates"


def render(template: str, **context: Any) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, finalize=i18n.localized)  # a process's labels in the reader's language
    # the one translation function (engine/i18n.py), so the pages' texts are the catalogues' ({name} placeholders)
    env.globals.update(_=i18n.gettext, ngettext=i18n.ngettext, lang=i18n.language())
    return env.get_template(template).render(**context)


def board_page(boards: list[results.Board], as_of: str, scope: str = "") -> str:
    from cli.present import formats

    def amount(value: str | None) -> str:
        return formats.amount(value) if value else "-"

    shown_at = as_of if i18n.language() == i18n.SOURCE else formats.short_time(as_of)
    return render("board.html.j2", boards=boards, as_of=as_of, scope=scope, amount=amount, shown_at=shown_at)
