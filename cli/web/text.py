"""Every text a person reads in the web app goes through here: ``_`` and ``ngettext`` for Python-side strings,
and the same two callables in the templates (``{{ _("...") }}``, ``ngettext``) through Jinja's i18n extension.

The language is the request's: ``speaking(code)`` sets it for the block (a ``ContextVar``: every request runs in
a context of its own, so two requests in different languages never mix), and ``choose`` picks it (docs/web.md):
the signed-in person's own (``users.language``), else the browser's ``Accept-Language``, else the server's
(``LEADFLOW_LANG``, its locale), else English. The texts are looked up in ``engine.i18n``'s catalogues.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from cli.server.language import accepted  # the one negotiation of Accept-Language
from engine import i18n

#: The language of the request being answered (None outside a request: the server's).
_language: ContextVar[str | None] = ContextVar("leadflow_web_language", default=None)
#: The catalogue of a language: ``engine.i18n``'s (a test may put another in, ``install``).
catalogue: list[Callable[[str], Any]] = [i18n.translations]


def install(translations: Callable[[str], Any] | None) -> None:
    """Look every text up in ``translations(code)`` from now on (None: the engine's catalogues again)."""
    catalogue[0] = translations or i18n.translations


def language() -> str:
    """The language of the request being answered."""
    return _language.get() or i18n.environment_language()


@contextmanager
def speaking(code: str) -> Iterator[str]:
    """Answer in ``code`` inside the block: the texts, the formats and the engine's messages (``i18n.using``)."""
    token = _language.set(code)
    try:
        with i18n.using(code):
            yield code
    finally:
        _language.reset(token)


def choose(user_language: str | None, accept_language: str | None) -> str:
    """The language of a request: the person's own, else the browser's, else the server's, else English."""
    return i18n.normalize(user_language) or accepted(accept_language) or i18n.environment_language()


def _current() -> Any:
    return catalogue[0](language())


def _(message: str, **values: Any) -> str:
    """The translation of ``message``, with ``%(name)s`` placeholders filled from ``values``."""
    text = str(_current().gettext(message))
    return text % values if values else text


def ngettext(singular: str, plural: str, n: int, **values: Any) -> str:
    """The singular or plural translation for ``n`` (``%(num)s`` is ``n``)."""
    text = str(_current().ngettext(singular, plural, n))
    return text % {"num": n, **values}


def gettext(message: str) -> str:
    """``_`` without placeholders, as Jinja's newstyle gettext calls it (it fills them itself)."""
    return str(_current().gettext(message))


def plural(singular: str, plural_: str, n: int) -> str:
    """``ngettext`` without placeholders, for Jinja."""
    return str(_current().ngettext(singular, plural_, n))
