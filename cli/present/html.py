"""Self-contained HTML pages (no network resources), rendered with Jinja2 with autoescaping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import results

TEMPLATES = Path(__file__).resolve().parent / "templates"


def render(template: str, **context: Any) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined)
    return env.get_template(template).render(**context)


def board_page(boards: list[results.Board], as_of: str, scope: str = "") -> str:
    return render("board.html.j2", boards=boards, as_of=as_of, scope=scope)
