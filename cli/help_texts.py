"""Babel's extractor of the CLI's help texts (``babel.cfg``): every command's and option's help, exactly as click
holds it (a docstring cleaned of its indentation), so ``pybabel extract`` puts into the catalogue the very texts
``cli.main.localize_help`` looks up. Run by Babel and the catalogue test, never by a command."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import click


def help_texts() -> Iterator[str]:
    """Every help text of the ``leadflow`` command tree, each once, in the order ``leadflow --help`` walks it."""
    from cli.main import COMMANDS, _load, cli, english_help

    seen: set[str] = set()

    def walk(command: click.Command) -> Iterator[str]:
        for item in [command, *command.params]:
            for text in english_help(item):  # the source's, even after a command showed its help translated
                if text and text not in seen:
                    seen.add(text)
                    yield text
        if isinstance(command, click.Group):
            for name in sorted(command.commands):
                yield from walk(command.commands[name])

    for name in sorted(COMMANDS):
        if name not in cli.commands:
            cli.add_command(_load(name))
    yield from walk(cli)


def extract(fileobj: Any, keywords: Any, comment_tags: Any, options: Any) -> Iterator[tuple[Any, ...]]:
    """Babel's extraction method for cli/main.py: its own marked messages, and every help text of the tree."""
    from babel.messages.extract import extract_python

    yield from extract_python(fileobj, keywords, comment_tags, options)
    for text in help_texts():
        yield 0, "_", text, ["click help"]
