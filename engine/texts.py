"""The human-readable texts of a process file that may be given in several languages.

Every label (the title and description, role names, field labels and descriptions, stage and task names and
descriptions, closure reasons' labels) is a plain string or a mapping of language to text
(``name: {en: Send the offer, pl: Wyślij ofertę}``), the schema's ``$defs/text``. The spec keeps each label as
one string, its English (else the process's ``language``), as before, and the translations beside it in
``ProcessSpec.texts`` under a key naming the label (``stage:send_offer``, ``task:send_offer.call``); a view or a
message picks one with ``i18n.resolve`` (the reader's language, else the process's, else English, else any).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from engine import i18n

Path_ = tuple[str | int, ...]


def locations(data: Mapping[str, Any]) -> Iterator[tuple[Path_, str]]:
    """Where a process document has texts: each one's path in the document and its key in ``texts``."""
    for name in ("title", "description"):
        if name in data:
            yield (name,), name
    for i, role in enumerate(_items(data, "roles")):
        yield ("roles", i, "name"), f"role:{role.get('id')}"
    for i, fld in enumerate(_items(data, "fields")):
        yield ("fields", i, "label"), f"field:{fld.get('id')}"
        yield ("fields", i, "description"), f"field:{fld.get('id')}.description"
    for i, stage in enumerate(_items(data, "stages")):
        yield ("stages", i, "name"), f"stage:{stage.get('id')}"
        yield ("stages", i, "description"), f"stage:{stage.get('id')}.description"
        for j, task in enumerate(_items(stage, "tasks")):
            yield ("stages", i, "tasks", j, "name"), f"task:{stage.get('id')}.{task.get('id')}"
            yield ("stages", i, "tasks", j, "description"), f"task:{stage.get('id')}.{task.get('id')}.description"
    for i, reason in enumerate(_items(data, "closure_reasons")):
        yield ("closure_reasons", i, "label"), f"reason:{reason.get('id')}"


def _items(data: Any, key: str) -> list[Any]:
    found = data.get(key) if isinstance(data, Mapping) else None
    return [x for x in found if isinstance(x, Mapping)] if isinstance(found, list) else []


def _get(data: Any, path: Path_) -> Any:
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def missing_default(data: Mapping[str, Any], language: str) -> Iterator[tuple[Path_, str]]:
    """The texts given as a mapping without the process's ``language``: each one's path and the message."""
    for path, _key in locations(data):
        value = _get(data, path)
        if isinstance(value, Mapping) and language not in value:
            given = ", ".join(str(k) for k in value)
            yield path, (f"a text in several languages must have the process's language '{language}' (the "
                         f"process's 'language'); this one has {given}")


def split(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (schema- and semantically valid) with each text a string (English, else the process's language)
    and the texts given in several languages under ``texts`` (none when every text is a plain string)."""
    resolved = copy.deepcopy(data)
    language = resolved.get("language", i18n.SOURCE)
    texts: dict[str, dict[str, str]] = {}
    for path, key in locations(data):
        value = _get(data, path)
        if isinstance(value, Mapping):
            texts[key] = dict(value)
            parent = _get(resolved, path[:-1])
            parent[path[-1]] = i18n.resolve(value, i18n.SOURCE, language)
    if texts:
        resolved["texts"] = texts
    return resolved
