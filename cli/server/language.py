"""The language a team server answers a person in: the one place the server (and the web app) negotiates it.

The acting user's own (``users.language``, which the engine records once it knows who acts), else the request's
``Accept-Language`` (its q-values honoured, negotiated by Babel as the web app does before log-in), else English.
What a program reads stays the same in every language: the JSON of an answer (its labels as ``--json`` has them),
and a problem's machine part (cli/server/problems.py). Two things are in the person's language:

- a problem's ``detail`` (every refusal the engine makes), with ``Content-Language`` saying which;
- the labels of an answer (stage and task names, field labels...: a process file's ``i18n.Text``) and its
  phrases (``i18n.Message``: a process file's located problems) when the client asks for them in the reader's
  language with ``X-Leadflow-Labels: reader``, as the CLI does when it prints for a person (cli/remote.py; never
  for ``--json``).
"""

from __future__ import annotations

from typing import Any

from cli.operations import LABELS_HEADER, READER_LABELS
from engine import i18n


def accepted(header: str | None) -> str | None:
    """The best language of an ``Accept-Language`` header that leadflow speaks (q-values honoured, ``q=0``
    refused, ``*`` ignored), or None: ``"ro;q=0.5, pl-PL, en;q=0.8"`` -> ``"pl"``."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _sep, params = part.strip().partition(";")
        tag = tag.strip()
        quality = 1.0
        for param in params.split(";"):
            name, _eq, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and 0 < quality <= 1:
            ranked.append((-quality, position, tag))
    preferred = [tag for _q, _p, tag in sorted(ranked)]
    if not preferred:
        return None
    from babel import Locale

    found = Locale.negotiate(preferred, list(i18n.LANGUAGES), sep="-")
    return str(found.language) if found is not None else None


def negotiate(user_language: str | None, accept_language: str | None, fallback: str | None = None) -> str:
    """The language of an API answer: the person's own, else the request's ``Accept-Language``, else English.

    A request whose ``Accept-Language`` names only languages leadflow does not speak (a browser's ``de-DE``) gets
    ``fallback`` before English: the language of the process a refused web form is for. A request without the
    header is a program's, which reads English as it always has."""
    chosen = i18n.normalize(user_language) or accepted(accept_language)
    if chosen is None and accept_language and accept_language.strip():
        chosen = i18n.normalize(fallback)
    return chosen or i18n.SOURCE


def remember(error: BaseException) -> None:
    """Note on ``error``, in the thread where the engine raised it, the language of the user it acted for (the
    engine's record of it lives in that thread's context, which the answering coroutine does not see)."""
    error.reader_language = i18n.user_language()  # type: ignore[attr-defined]


def of_error(error: BaseException, accept_language: str | None) -> str:
    """The language to refuse in: the acting user's (``remember``), else the request's, else the language of the
    process a refused web form is for (``InquiryErrors.process_language``), else English."""
    return negotiate(getattr(error, "reader_language", None), accept_language,
                     getattr(error, "process_language", None))


def wants_labels(headers: Any) -> bool:
    """Whether a request asks for its answer's labels in the reader's language (``X-Leadflow-Labels: reader``)."""
    return str(headers.get(LABELS_HEADER.lower(), "")).strip().lower() == READER_LABELS


def labels_in(value: Any, code: str) -> Any:
    """``value`` (an engine result) with every process label (``i18n.Text``) and phrase (``i18n.Message``) as
    ``code``'s reader sees it; the rest unchanged."""
    if isinstance(value, i18n.Text):
        return i18n.label(value, code)
    if isinstance(value, i18n.Message):
        return value.in_language(code)
    if isinstance(value, dict):
        return {k: labels_in(v, code) for k, v in value.items()}
    if isinstance(value, list):
        return [labels_in(v, code) for v in value]
    return value
