"""Versions of the process format, and the steps that upgrade a document or a stored spec from one to the next.

Every process file says which format it is written in (``format: 1``); every stored spec (the JSON of a process
version in ``process_versions``) carries the format it was stored in. The engine works on the current format
only: an older document or stored spec is brought to it by running, in order, one named function per step, each
with a docstring saying what changed (SpiffWorkflow's discipline: ``bpmn/serializer/migration``). Nothing else
reads an older format, and ``ProcessSpec.from_dict`` refuses one instead of guessing with defaults.

Format 2 adds keys (``after`` on tasks, ``written_by`` and ``option_labels`` on fields, ``stages`` and ``requires``
on closure reasons, ``attribute`` in conditions) and values (labels in several languages, the field type
``choices``, the operators ``contains`` and ``not_contains``: docs/process-format.md) and changes the meaning of
none, so a format-1 document means exactly what the
same document with ``format: 2`` means; a format-1 document may not use the new keys (``format_problems``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from engine.errors import Problem
from engine.i18n import N_, Message

if TYPE_CHECKING:  # the document (and with it PyYAML) only where a file is read: spec imports this module
    from engine.document import Document, Path_

#: The format this leadflow writes and works on.
FORMAT = 2
#: Every format a process file or a stored spec may be in.
FORMATS = (1, 2)


# -- the steps -------------------------------------------------------------------------------------------------

def document_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Format 1 -> 2 of a parsed process file.

    Format 2 only adds keys, each optional and each meaning "as in format 1" when left out (no task order, fields
    written by the lead's owner only, every closure reason in every stage with nothing to fill), so the step
    changes the version and nothing else.
    """
    return {**data, "format": 2}


def stored_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Format 1 -> 2 of a stored spec (``ProcessSpec.to_dict`` of format 1).

    A stored spec leaves out empty lists, and format 2 lists are empty where format 1 had nothing (``after``,
    ``written_by``, ``requires``; a closure reason's ``stages`` is empty for "any stage"), so the stored form of a
    format-1 spec is a valid format-2 spec once it says so.
    """
    return {**data, "format": 2}


#: format N -> the step from N to N + 1.
DOCUMENT_STEPS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: document_1_to_2}
STORED_STEPS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: stored_1_to_2}


def upgrade_document(data: dict[str, Any]) -> dict[str, Any]:
    """A parsed, valid process file in the current format (a copy: ``data`` is left as it is)."""
    return _upgrade(copy.deepcopy(data), DOCUMENT_STEPS, "process file")


def upgrade_stored(data: dict[str, Any]) -> dict[str, Any]:
    """A stored spec's dict in the current format, ready for ``ProcessSpec.from_dict``."""
    return _upgrade(data, STORED_STEPS, "stored spec")


def _upgrade(data: dict[str, Any], steps: dict[int, Callable[[dict[str, Any]], dict[str, Any]]],
             what: str) -> dict[str, Any]:
    version = data.get("format")
    if version not in FORMATS:
        raise ValueError(f"{what} of format {version!r}: this leadflow reads formats "
                         f"{', '.join(map(str, FORMATS))}")
    while data["format"] < FORMAT:
        data = steps[data["format"]](data)
    return data


# -- what each format may say ----------------------------------------------------------------------------------

#: Where a process file writes a label a person reads (``*``: any item of a list); each may be plain text or, from
#: format 2, a mapping of language to text (docs/process-format.md, "Labels in several languages"). A field's
#: ``option_labels`` hold labels too, one per option.
LABEL_SLOTS: tuple[Path_, ...] = (
    ("title",), ("description",), ("roles", "*", "name"), ("fields", "*", "label"), ("fields", "*", "description"),
    ("stages", "*", "name"), ("stages", "*", "description"),
    ("stages", "*", "tasks", "*", "name"), ("stages", "*", "tasks", "*", "description"),
    ("stages", "*", "on_enter", "*", "create_task", "name"),
    ("stages", "*", "on_enter", "*", "create_task", "description"),
    ("closure_reasons", "*", "label"),
)

#: The keys format 2 added, where they may be written (``*``: any item of a list).
ADDED_IN: dict[int, tuple[Path_, ...]] = {
    2: (("fields", "*", "written_by"),
        ("fields", "*", "personal"),
        ("stages", "*", "tasks", "*", "after"),
        ("stages", "*", "on_enter", "*", "create_task", "after"),
        ("stages", "*", "tasks", "*", "deadline_hours"),
        ("stages", "*", "on_enter", "*", "create_task", "deadline_hours"),
        ("business_hours",),
        ("stages", "*", "on_enter", "*", "remind", "chases"),
        ("closure_reasons", "*", "stages"),
        ("closure_reasons", "*", "requires"),
        ("closure_reasons", "*", "min_attempts"),
        ("fields", "*", "option_labels")),
}


#: The keys format 2 added to conditions, wherever a condition is written (a ``when``, at any depth of it).
CONDITION_KEYS_ADDED_IN: dict[int, tuple[str, ...]] = {2: ("attribute",)}


#: The values format 2 added, under the keys that may hold them (anywhere in the document).
VALUES_ADDED_IN: dict[int, dict[str, tuple[str, ...]]] = {
    2: {"type": ("choices",), "op": ("contains", "not_contains")},
}


#: Values format 2 allowed at one place only: (where, which values are new, what they are).
NEW_AT: dict[int, tuple[tuple[Path_, Callable[[Any], bool], str], ...]] = {
    2: ((("stages", "*", "on_enter", "*", "remind", "to"), lambda to: to not in ("client", "owner"),
         N_("a reminder to a role")),
        *((slot, lambda text: isinstance(text, dict), N_("a label in several languages")) for slot in LABEL_SLOTS)),
}


_KEY_OF_LATER_FORMAT = N_("'{key}' is a key of format {added}, and this file is written in format {version}; write "
                          "'format: {added}' at its top (leadflow process upgrade FILE does it)")


def format_problems(doc: Document) -> Iterator[Problem]:
    """Keys and values of a later format in a document that says it is written in an earlier one."""
    version = doc.data.get("format") if isinstance(doc.data, dict) else None
    if version not in FORMATS:
        return  # the schema says what is wrong with the version
    for added, patterns in sorted(ADDED_IN.items()):
        if version >= added:
            continue
        for pattern in patterns:
            for path in _matches(doc.data, pattern, ()):
                yield doc.problem(path, Message(_KEY_OF_LATER_FORMAT, key=path[-1], added=added, version=version),
                                  at_key=True)
        for pattern, new, what in NEW_AT[added]:
            for path in _matches(doc.data, pattern, ()):
                refused = any(path[:i] in doc.refused for i in range(len(path) + 1))
                if not refused and new(_at(doc.data, path)):
                    yield doc.problem(path, Message(
                        N_("{what} is new in format {added}, and this file is written in format {version}; write "
                           "'format: {added}' at its top (leadflow process upgrade FILE does it)"),
                        what=Message(what), added=added, version=version))
        for path in _condition_keys(doc.data, CONDITION_KEYS_ADDED_IN[added], (), inside=False):
            yield doc.problem(path, Message(_KEY_OF_LATER_FORMAT, key=path[-1], added=added, version=version),
                              at_key=True)
        for path, value in _values(doc.data, VALUES_ADDED_IN[added], ()):
            yield doc.problem(path, Message(
                N_("{key} '{value}' is new in format {added}, and this file is written in format {version}; write "
                   "'format: {added}' at its top (leadflow process upgrade FILE does it)"),
                key=path[-1], value=value, added=added, version=version))

def _at(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


def _condition_keys(data: Any, wanted: tuple[str, ...], at: Path_, *, inside: bool) -> Iterator[Path_]:
    """The paths of the ``wanted`` keys in the conditions (the ``when`` values) of ``data``."""
    if isinstance(data, dict):
        for key, value in data.items():
            if inside and key in wanted:
                yield (*at, key)
            yield from _condition_keys(value, wanted, (*at, key), inside=inside or key == "when")
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from _condition_keys(item, wanted, (*at, i), inside=inside)


def _values(data: Any, wanted: dict[str, tuple[str, ...]], at: Path_) -> Iterator[tuple[Path_, str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, str) and value in wanted.get(key, ()):
                yield (*at, key), value
            yield from _values(value, wanted, (*at, key))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            yield from _values(item, wanted, (*at, i))


def matches(data: Any, pattern: Path_, at: Path_ = ()) -> Iterator[Path_]:
    """The paths of ``data`` that ``pattern`` names (``*``: any item of a list)."""
    return _matches(data, pattern, at)


def _matches(data: Any, pattern: Path_, at: Path_) -> Iterator[Path_]:
    if not pattern:
        return
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        if isinstance(data, list):
            for i, item in enumerate(data):
                yield from _matches(item, rest, (*at, i))
    elif isinstance(data, dict) and head in data:
        if rest:
            yield from _matches(data[head], rest, (*at, head))
        else:
            yield (*at, head)


# -- rewriting a file ------------------------------------------------------------------------------------------

def upgraded_text(doc: Document) -> str:
    """The text of a valid process file rewritten in the current format, every comment and all layout kept.

    The steps so far change only the version, so the rewrite replaces the version's scalar where it is written
    and leaves every other character as it is.
    """
    node = doc.nodes[("format",)]
    start, end = node.start_mark.index, node.end_mark.index
    return doc.text[:start] + str(FORMAT) + doc.text[end:]
