"""docs/api.md's table of the HTTP API is the operation table's: every route, as generated."""

from __future__ import annotations

from pathlib import Path

from cli.operations import OPERATIONS, markdown_table

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_the_docs_list_every_route_as_the_table_makes_it() -> None:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    assert markdown_table() in text
    for op in OPERATIONS:
        assert f"| {op.http} | `{op.url}` | `{op.name}` |" in text


def test_server_md_names_every_status_the_server_answers() -> None:
    text = (DOCS / "server.md").read_text(encoding="utf-8")
    for status in (400, 401, 403, 404, 408, 409, 413, 422, 429):
        assert f"| {status} |" in text
