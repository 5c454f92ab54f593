"""Every text a person reads in the web app goes through here: ``_`` and ``ngettext`` for Python-side strings,
and the same two callables in the templates (``{{ _("...") }}``, ``ngettext``) through Jinja's i18n extension.

One hook: ``install(translations)`` (a ``gettext.NullTranslations`` or a Babel ``Translations``) switches the
language of every page at once; until the catalogues land (engine/i18n.py) the texts stay English.
"""

from __future__ import annotations

import gettext as _gettext
from typing import Any

#: The one hook: ``_current[0]`` is the translations every text is looked up in.
_current: list[Any] = [_gettext.NullTranslations()]


def install(translations: Any) -> None:
    """Speak ``translations`` from now on (Python-side texts and every template)."""
    _current[0] = translations


def _(message: str, **values: Any) -> str:
    """The translation of ``message``, with ``%(name)s`` placeholders filled from ``values``."""
    text = str(_current[0].gettext(message))
    return text % values if values else text


def ngettext(singular: str, plural: str, n: int, **values: Any) -> str:
    """The singular or plural translation for ``n`` (``%(num)s`` is ``n``)."""
    text = str(_current[0].ngettext(singular, plural, n))
    return text % {"num": n, **values}


def gettext(message: str) -> str:
    """``_`` without placeholders, as Jinja's newstyle gettext calls it (it fills them itself)."""
    return str(_current[0].gettext(message))


def plural(singular: str, plural_: str, n: int) -> str:
    """``ngettext`` without placeholders, for Jinja."""
    return str(_current[0].ngettext(singular, plural_, n))
