"""The one translation function of leadflow, and the choice of language.

Every text a person reads is written in English in the source, marked for extraction, and translated where it is
presented: ``_("Open leads by stage")``, ``ngettext("{count} lead", "{count} leads", n, count=n)``. Messages use
``str.format`` placeholders with names (``{lead}``), which the translations must keep (a test checks every
catalogue). ``N_`` only marks a text for extraction (a constant, an error's template) and returns it unchanged.

The catalogues are gettext's, managed with Babel (``babel.cfg``, ``engine/locale/leadflow.pot``, a
``leadflow.po`` and its compiled ``leadflow.mo`` per language, docs/i18n.md). A language's catalogue is read on
first use and cached, so English costs nothing and nothing is read at start-up. The ``.mo`` is read with the
standard library's ``gettext.GNUTranslations`` (the class Babel's ``support.Translations`` extends): importing
``babel.support`` alone takes 30 ms, more than the start-up budget of ``lead show`` (docs/performance.md).

The language in effect: the acting user's (``users.language``, set by the engine once it knows who acts), else
``LEADFLOW_LANG``, else the locale of the environment (``LC_ALL``, ``LC_MESSAGES``, ``LANG``), else English.
Only the languages with a catalogue count (``LANGUAGES``); anything else falls through to the next source.

An engine error keeps its English template and its parameters (``LeadflowError.template``, ``.params``), so
``str(err)`` stays English (logs, tests, ``--json``) and the interfaces translate it at presentation with
``error_text(err)``.
"""

from __future__ import annotations

import gettext as _gettext
import math
import os
import re
import string
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

#: The source language and every language with a catalogue in ``engine/locale``.
SOURCE = "en"
LANGUAGES = ("en", "pl", "ro", "ru")
DOMAIN = "leadflow"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

#: The acting user's language, once the engine knows who acts (None: not known, or the user chose none).
_user_language: ContextVar[str | None] = ContextVar("leadflow_user_language", default=None)
#: A language forced for a block (``using``): the client's for a client's mail, a test's.
_forced: ContextVar[str | None] = ContextVar("leadflow_forced_language", default=None)


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it (a constant, an error's template)."""
    return message


def normalize(code: str | None) -> str | None:
    """The catalogue language of a locale name (``pl_PL.UTF-8``, ``ru-RU``, ``PL``), or None for another one."""
    if not code:
        return None
    base = code.strip().split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    if base in ("c", "posix"):
        return SOURCE
    return base if base in LANGUAGES else None


def environment_language(environ: Mapping[str, str] | None = None) -> str:
    """The language the environment asks for: ``LEADFLOW_LANG``, then ``LC_ALL``, ``LC_MESSAGES``, ``LANG``
    (the first that is set and known; ``LANGUAGE``'s list is gettext's own and not read), else English."""
    env = os.environ if environ is None else environ
    for name in ("LEADFLOW_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        found = normalize(env.get(name))
        if found:
            return found
    return SOURCE


def language() -> str:
    """The language in effect now (see the module's note)."""
    return _forced.get() or _user_language.get() or environment_language()


def user_language() -> str | None:
    """The acting user's own language in this context (None: nobody acts yet, or they chose none); a server reads
    it to answer in the language of the person it acted for (cli/server/language.py)."""
    return _user_language.get()


def set_user_language(code: str | None) -> None:
    """Record the acting user's chosen language (None: they chose none) for this context."""
    _user_language.set(normalize(code))


def reset() -> None:
    """Forget the acting user's language (a new command, a new request)."""
    _user_language.set(None)


@contextmanager
def using(code: str | None) -> Iterator[str]:
    """Speak ``code`` inside the block (a client's mail, an internal mail, a test); None keeps the current one."""
    token = _forced.set(normalize(code) or language())
    try:
        yield language()
    finally:
        _forced.reset(token)


@cache
def translations(code: str) -> _gettext.NullTranslations:
    """The catalogue of ``code``, read once and cached: a ``gettext.NullTranslations`` (English, or a language
    without a compiled catalogue) or ``GNUTranslations``, which Jinja's ``install_gettext_translations`` takes."""
    if code == SOURCE or code not in LANGUAGES:
        return _gettext.NullTranslations()
    path = LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.mo"
    try:
        with path.open("rb") as f:
            return _gettext.GNUTranslations(f)
    except OSError:
        return _gettext.NullTranslations()


def _format(text: str, params: Mapping[str, Any], code: str) -> str:
    if not params:
        return text
    return text.format(**{k: localized(v, code) for k, v in params.items()})


def _(message: str, /, **params: Any) -> str:
    """``message`` in the language in effect, its ``{placeholders}`` filled from ``params``."""
    code = language()
    return _format(translations(code).gettext(message), params, code)


gettext = _


def ngettext(singular: str, plural: str, count: int, /, **params: Any) -> str:
    """The form of ``singular``/``plural`` that ``count`` takes in the language in effect (Polish, Romanian and
    Russian have three); ``{count}`` is filled with ``count`` unless ``params`` says otherwise."""
    code = language()
    text = translations(code).ngettext(singular, plural, count)
    return _format(text, {"count": count, **params}, code)


class Text(str):
    """A process file's label given in several languages (``{en: Send the offer, pl: Wyślij ofertę}``).

    It is a ``str`` so that whatever reads a label as text keeps working: its text is the English one (leadflow's
    source language, what ``--json`` and the logs show), else the process's ``default`` language's, else the first.
    ``in_(code)`` is the text a reader of ``code`` sees (``label`` below is the one place that picks it). Two
    ``Text`` are equal when every language's text is; a plain label stays a plain ``str``.
    """

    texts: tuple[tuple[str, str], ...]
    default: str

    def __new__(cls, texts: Mapping[str, str], default: str = SOURCE) -> Text:
        pairs = tuple(sorted(texts.items()))  # equal whatever order the file wrote them in
        made = super().__new__(cls, _pick(dict(pairs), SOURCE, default))
        made.texts = pairs
        made.default = default
        return made

    def in_(self, code: str | None) -> str:
        """The text in ``code``; else in the process's language; else the English one; else any."""
        return _pick(dict(self.texts), code, self.default)

    in_language = in_

    def as_dict(self) -> dict[str, str]:
        return dict(self.texts)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Text):
            return self.texts == other.texts and self.default == other.default
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = str.__hash__

    def __repr__(self) -> str:
        return f"Text({dict(self.texts)!r}, default={self.default!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Text, (dict(self.texts), self.default))


def _pick(texts: Mapping[str, str], code: str | None, default: str) -> str:
    for candidate in (code, default, SOURCE):
        if candidate and texts.get(candidate):
            return texts[candidate]
    return next(iter(texts.values()), "")


def label(text: str | Mapping[str, str] | None, code: str | None = None, default: str = SOURCE) -> str:
    """The one place a process label (a stage's or task's name, a field's label, a reason's...) becomes the text
    a person reads: a plain label as it is, a label in several languages in ``code`` (default: the language in
    effect), falling back to the process's language, then to English, then to any."""
    if text is None:
        return ""
    lang = code or language()
    if isinstance(text, Text):
        return text.in_(lang)
    if isinstance(text, str):
        return text
    return _pick(text, lang, default)


def every_text(text: str) -> list[str]:
    """A process label in each of its languages (a ``Text``), else the label itself: what a file's header or value
    may name it by (a Polish team's old CRM writes the Polish)."""
    return [t for _, t in text.texts] if isinstance(text, Text) else [text]


class Named:
    """Something a message names by its id in English (as the English messages always have) and by its label in
    another language: a stage, a task, a field (``Named("send_offer", {"en": "Send the offer", "pl": ...})``)."""

    def __init__(self, ident: str, label: str | Mapping[str, str] | None = None, default: str = SOURCE):
        self.ident = ident
        self.label = label
        self.default = default

    def in_language(self, code: str) -> str:
        if code == SOURCE or not self.label:
            return self.ident
        return resolve(self.label, code, self.default) or self.ident

    def __str__(self) -> str:
        return self.ident

    def __repr__(self) -> str:
        return f"Named({self.ident!r})"


class Message(str):
    """A message not yet in any language: its English template and parameters, translated where it is shown. It is
    a part of a larger message (a "did you mean" clause, one of a refusal's several reasons, what an actor may not
    do), given as one of that message's parameters. It is the English text itself (a ``str``), so code that takes
    a text takes it; ``localized`` puts it in the reader's language."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, /, **params: Any) -> Message:
        made = super().__new__(cls, _format(template, params, SOURCE))
        made.template = template
        made.params = params
        return made

    def in_language(self, code: str) -> str:
        if not self.template:  # gettext("") is a catalogue's header, not an empty text
            return str(self)
        return _format(translations(code).gettext(self.template), self.params, code)

    def __repr__(self) -> str:
        return f"Message({self.template!r})"


def resolve(text: str | Mapping[str, str], code: str, default: str = SOURCE) -> str:
    """One text of a label that is a plain string or a mapping of language to text: ``code``'s, else the
    ``default`` language's (the process's), else English, else any."""
    return label(text, code, default)


def localized(value: Any, code: str | None = None) -> Any:
    """A parameter as the language ``code`` (default: the one in effect) shows it: a ``Text``, ``Named`` or
    ``Message`` in that language, a list of them joined (names with commas, messages with semicolons), an error
    that carries its template in that language; anything else unchanged."""
    lang = code or language()
    if isinstance(value, (Text, Named, Message)):
        return value.in_language(lang)
    if isinstance(value, BaseException) and isinstance(getattr(value, "template", None), str):
        return error_text(value, lang)
    if isinstance(value, (list, tuple)) and any(isinstance(v, (Text, Named, Message)) for v in value):
        separator = "; " if any(isinstance(v, Message) for v in value) else ", "
        return separator.join(str(localized(v, lang)) for v in value)
    return value


def error_text(error: BaseException, code: str | None = None) -> str:
    """An error's message in ``code`` (default: the language in effect): its template translated and filled
    when it carries one (``LeadflowError``), else ``str(error)``."""
    lang = code or language()
    own = getattr(error, "in_language", None)
    if callable(own):  # an error of several located messages (a process file's problems)
        return str(own(lang))
    template = getattr(error, "template", None)
    if not isinstance(template, str):
        return str(error)
    return _format(translations(lang).gettext(template), getattr(error, "params", {}) or {}, lang)


def placeholders(text: str) -> set[str]:
    """The names of the ``{placeholders}`` of a message, and of its ``%(name)s`` ones (Jinja's ``{% trans %}``
    blocks), which the catalogue test compares."""
    try:
        braces = {name.split(".")[0].split("[")[0] for _lit, name, _spec, _conv in string.Formatter().parse(text)
                  if name is not None}
    except ValueError:  # a lone brace: not a format string, the text itself is compared
        braces = {text}
    return braces | {f"%({name})" for name in re.findall(r"%\((\w+)\)", text)}


def null_translations_for(code: str) -> _gettext.NullTranslations:
    """The catalogue of ``code`` for Jinja's i18n extension (``env.install_gettext_translations(...)``); an
    unknown code gets English."""
    return translations(normalize(code) or SOURCE)


#: The template of several messages given as one (a refused row's or form's several reasons): joined with "; " in
#: the reader's language (``localized``). Not marked for the catalogues: it has no words.
SEVERAL = "{reasons}"


def several(messages: list[Message]) -> Message:
    """One message of ``messages``: the only one, or all of them joined (``SEVERAL``)."""
    return messages[0] if len(messages) == 1 else Message(SEVERAL, reasons=list(messages))


def message_of_error(error: BaseException) -> Message:
    """An error's message as a ``Message`` (its template and parameters), to carry as a part of a larger answer:
    an inquiry's refused value, an import's refused row."""
    template = getattr(error, "template", None)
    if isinstance(template, str) and template:
        return Message(template, **(getattr(error, "params", None) or {}))
    return Message(str(error))


def message_json(message: str) -> dict[str, Any]:
    """A message as JSON that is the same in every language: ``{"message_id": its English template, "params": its
    parameters}`` (a stage, task or field by its id, a phrase that is itself a ``Message`` as such an object, the
    rest as text); ``message_of`` makes the message again, to show it in any language. A plain text is its own
    id."""
    if isinstance(message, Message):
        return {"message_id": message.template, "params": {k: _param_json(v) for k, v in message.params.items()}}
    return {"message_id": str(message), "params": {}}


def _param_json(value: Any) -> Any:
    if isinstance(value, Message):
        return message_json(value)
    if isinstance(value, Named):
        return value.ident
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf or NaN: a form may send 1e999
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_param_json(v) for v in value]
    return str(value)


def message_of(data: Mapping[str, Any]) -> Message:
    """The message of ``message_json``'s object (a stored import report's refusal, for instance)."""
    return Message(str(data.get("message_id", "")), **{k: _param_of(v) for k, v in (data.get("params") or {}).items()})


def _param_of(value: Any) -> Any:
    if isinstance(value, Mapping) and "message_id" in value:
        return message_of(value)
    if isinstance(value, list):
        return [_param_of(v) for v in value]
    return value


def message_text(message: str | Mapping[str, Any], code: str | None = None) -> str:
    """A message (a ``Message``, a plain text or ``message_json``'s object) in ``code`` (default: the language in
    effect). A stored message whose parameters no longer fit its template (a date kept as text) is shown in
    English, as it was stored."""
    lang = code or language()
    english = message
    if isinstance(message, Mapping):
        # an import's rejected row ({"reason", "message_id", "params"}) or an intake's error ({"message", ...})
        english = str(message.get("reason") or message.get("message") or message.get("message_id", ""))
        try:
            message = message_of(message)
        except (ValueError, KeyError, IndexError, TypeError):
            return english
    try:
        return str(localized(message, lang)) if isinstance(message, Message) else str(message)
    except (ValueError, KeyError, IndexError, TypeError):
        return str(english)
