"""click's own words (``Usage:``, ``Options``, ``Error: ...``, ``Show this message and exit.``, ``No such option``,
``Missing argument``...) in the reader's language.

click marks them for gettext and looks them up with the standard library's ``gettext.gettext`` and ``ngettext``
(the global ``messages`` domain, the language of ``LANGUAGE``/``LC_*``), each of its modules holding them as ``_``
and ``ngettext``. ``install`` points those names, in click's modules only, at leadflow's catalogues and language
(engine/i18n.py), so the words follow ``user set --language``, ``LEADFLOW_LANG`` and the locale like every other
text, and nothing else in the process changes. ``extract`` gives pybabel click's messages (babel.cfg), so the
catalogues hold them: ``tests/test_i18n.py`` fails when one is untranslated, also after a click upgrade adds one.
"""

from __future__ import annotations

import gettext as _gettext
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: click's modules that ``import click`` loads and that hold words a person reads. Not among them: the test
#: runner, Windows' console, and the shell completion's and pager's modules, which click loads when used (their
#: few messages stay English).
MODULES = ("core", "decorators", "exceptions", "formatting", "parser", "termui", "types", "utils")


def gettext(message: str) -> str:
    """``message`` (click's, with its own placeholders, which click fills) in the language in effect."""
    from engine import i18n

    code = i18n.language()
    return message if code == i18n.SOURCE else i18n.translations(code).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    from engine import i18n

    code = i18n.language()
    if code == i18n.SOURCE:
        return singular if count == 1 else plural
    return i18n.translations(code).ngettext(singular, plural, count)


def install() -> None:
    """Make click's modules, those loaded now, speak through leadflow's catalogues (idempotent)."""
    for name in MODULES:
        module = sys.modules.get(f"click.{name}")
        if module is None:
            continue
        if getattr(module, "_", None) in (_gettext.gettext, gettext):
            module._ = gettext  # type: ignore[attr-defined]
        if getattr(module, "ngettext", None) in (_gettext.ngettext, ngettext):
            module.ngettext = ngettext  # type: ignore[attr-defined]


#: click's messages for the programmer who defines commands (raised when a command is built, or a repr), which
#: nobody using leadflow reads: not put into the catalogues.
FOR_PROGRAMMERS = frozenset({
    "Name '{name}' defined twice", "Boolean option {decl!r} cannot use the same flag for true/false.",
    "Could not determine name for option with declarations {decls!r}",
    "No options defined but a name was passed ({name}). Did you mean to declare an argument instead? Did you mean "
    "to pass '--{name}'?",
    "Arguments take exactly one parameter declaration, got {length}: {decls}.", "Value must be an iterable.",
    "Unknown color {colour!r}", "Unknown standard stream '{name}'", "Choice({choices})",
})


def messages() -> Iterator[tuple[int, str, Any, list[str]]]:
    """click's marked messages as Babel extracts them (its ``_`` and ``ngettext`` calls), from the installed click,
    but those ``FOR_PROGRAMMERS``."""
    import click
    from babel.messages.extract import extract_python

    folder = Path(click.__file__).resolve().parent
    for name in MODULES:
        with (folder / f"{name}.py").open("rb") as f:
            for line, function, message, _comments in extract_python(f, {"_": None, "ngettext": (1, 2)}, [], {}):
                if not message:
                    continue
                first = message if isinstance(message, str) else message[0]
                if first and first not in FOR_PROGRAMMERS:
                    yield line, str(function), message, ["click's own words"]


def extract(fileobj: Any, keywords: Any, comment_tags: Any, options: Any) -> Iterator[tuple[Any, ...]]:
    """Babel's extraction method for cli/click_words.py: click's messages."""
    yield from messages()
