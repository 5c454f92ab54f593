"""Read a process file's bytes into a ``Document``: the defensive YAML reading the loader starts with.

Size limit, UTF-8 only, no tabs in indentation, one document, safe tags only, no duplicate or merge keys,
bounded alias expansion and nesting, and no plain scalar that YAML 1.1 (PyYAML) and YAML 1.2 read differently.
Every refusal is a ``Problem`` with the file, line, column and document path; a value refused is recorded in
``Document.refused`` so the schema and the semantic checks (``engine.process_schema``, ``engine.semantics``)
skip it. The loader (``engine.loader``) puts the steps together.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engine.document import Document, Path_, format_path
from engine.errors import Problem
from engine.i18n import N_, Message

MAX_FILE_BYTES = 1_000_000
#: Nodes a document may expand to once aliases are followed; guards against "billion laughs".
MAX_NODES = 100_000
#: Nesting levels a document may have; the deepest real process is far shallower, and
#: validation recurses per level, so an absurdly deep document must stop here.
MAX_DEPTH = 64

#: Characters PyYAML's reader refuses (the C0/C1 controls except tab and line breaks, and U+FFFE/U+FFFF).
_NON_PRINTABLE = re.compile(r"[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")


class _SafeLoader(yaml.SafeLoader):
    """SafeLoader that keeps dates (and a lone ``=``) as text (the schema checks their format)."""


_NO_IMPLICIT = ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value", "tag:yaml.org,2002:yaml")
_SafeLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _NO_IMPLICIT]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
#: The YAML readers, fastest first: libyaml's (C, when PyYAML was built with it) and PyYAML's own.
#: Both feed the same composer below, so the nodes, marks and every problem are the same with either;
#: a syntax error found by libyaml is explained by re-reading with PyYAML's (its words are the documented ones).
YAML_READERS: dict[str, type[Any]] = {"python": _SafeLoader}
if yaml.__with_libyaml__:
    class _CSafeLoader(yaml.CSafeLoader):
        """libyaml's parser with the resolvers of ``_SafeLoader``."""

    _CSafeLoader.yaml_implicit_resolvers = _SafeLoader.yaml_implicit_resolvers
    YAML_READERS = {"libyaml": _CSafeLoader, **YAML_READERS}
#: The reader ``parse`` uses; tests switch it to prove both report alike.
yaml_reader = next(iter(YAML_READERS))
#: Collections a document may nest while it is read: far beyond ``MAX_DEPTH`` (which ``_build`` reports
#: with the document path), so that only absurd nesting stops the reading itself.
MAX_READ_DEPTH = 4 * MAX_DEPTH

#: Scalar tags whose values are plain JSON data; any other (``!!binary``, ``!!timestamp``,
#: ``!!python/...``, custom ``!Tags``) is refused before it is constructed.
_SCALAR_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null")
)
_MERGE_TAG = "tag:yaml.org,2002:merge"
#: Line breaks as PyYAML counts them, so that our line numbers match its marks.
_LINE_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of ``text[index]``, counting lines the way PyYAML does."""
    line, start = 1, 0
    for match in _LINE_BREAK.finditer(text, 0, index):
        line, start = line + 1, match.end()
    return line, index - start + 1


def _shown_tag(tag: str) -> str:
    """``tag:yaml.org,2002:python/name`` -> ``!!python/name`` (as the author wrote it)."""
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def file_too_big(file: str, size: int) -> Problem:
    return Problem(file, 1, 1, "", Message(N_("file is {size} bytes; a process file may be at most {limit} bytes"),
                                           size=f"{size:,}", limit=f"{MAX_FILE_BYTES:,}"))


def _mostly_nul(data: bytes) -> bool:
    return bool(data) and data.count(0) * 10 >= len(data) * 9


def _utf16_or_32(raw: bytes) -> str | None:
    """The encoding's name if ``raw`` is evidently UTF-16 or UTF-32 (with or without a byte-order mark)."""
    if raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "UTF-32"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16"
    head = raw[: len(raw[:256]) // 4 * 4]
    if len(head) < 8:
        return None
    # Mostly-ASCII text has a NUL in three of every four bytes in UTF-32, in every other byte in UTF-16.
    if (_mostly_nul(head[1::4]) and _mostly_nul(head[2::4])
            and (_mostly_nul(head[3::4]) or _mostly_nul(head[0::4]))):
        return "UTF-32"
    if _mostly_nul(head[1::2]) or _mostly_nul(head[0::2]):
        return "UTF-16"
    return None


class _Stop(Exception):
    """Parsing cannot go on; the problems recorded so far say why."""


def parse(raw: bytes, file: str) -> tuple[Document | None, list[Problem]]:
    """Decode and parse one process file's bytes, rejecting everything unsafe or ambiguous.

    Returns no document when the file cannot be read at all; otherwise the document and the
    problems of single values or keys (each value refused is in ``Document.refused``), so that
    the schema and the semantic checks can still look at the rest.
    """
    problems: list[Problem] = []
    if len(raw) > MAX_FILE_BYTES:
        return None, [file_too_big(file, len(raw))]
    encoding = _utf16_or_32(raw)
    if encoding:
        return None, [Problem(file, 1, 1, "",
                              Message(N_("file is {encoding} encoded; save it as UTF-8"), encoding=encoding))]
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # the byte-order mark Windows editors write
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start].decode("utf-8", errors="replace")
        line, col = _line_col(before, len(before))
        byte = raw[exc.start : exc.start + 1].hex().upper()
        return None, [Problem(file, line, col, "",
                              Message(N_("not valid UTF-8 (byte 0x{byte}); save the file as UTF-8"), byte=byte))]
    if "\x00" in text:
        line, col = _line_col(text, text.index("\x00"))
        return None, [Problem(file, line, col, "",
                              Message(N_("file contains a NUL character; is it a binary file?")))]
    bad = _NON_PRINTABLE.search(text)
    if bad:
        line, col = _line_col(text, bad.start())
        return None, [Problem(file, line, col, "",
                              Message(N_("control character U+{code} is not allowed in a process file; delete it"),
                                      code=format(ord(bad.group()), "04X")))]

    for number, line_text in enumerate(_LINE_BREAK.split(text), start=1):
        indent = re.match(r"[ \t]*", line_text)
        assert indent is not None
        if "\t" in indent.group():
            problems.append(
                Problem(file, number, indent.group().index("\t") + 1, "",
                        Message(N_("tab character in indentation; YAML indents with spaces only")))
            )
    if problems:
        return None, problems

    reader = YAML_READERS[yaml_reader]
    if "\t" in text:
        reader = _SafeLoader  # libyaml takes a tab where PyYAML refuses one ("cannot start any token")
    doc, problems = _read(text, file, reader)
    if doc is None and reader is not _SafeLoader and any(p.message.startswith("YAML") for p in problems):
        return _read(text, file, _SafeLoader)
    return doc, problems


def _read(text: str, file: str, reader: type[Any]) -> tuple[Document | None, list[Problem]]:
    problems: list[Problem] = []
    doc = Document(file=file, text=text)
    loader = reader(text)  # cannot fail: the characters its reader refuses were refused above
    try:
        root = _single_node(loader, doc, problems)
        if root is None:
            return None, problems
        counter = [0]
        doc.data = _build(loader, root, (), doc, problems, counter)
    except _Stop:
        return None, problems
    except yaml.constructor.ConstructorError as exc:  # pragma: no cover - _build refuses unknown tags first
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return None, [*problems, Problem(file, line, col, "", Message(
            N_("unsupported YAML tag: {problem}; process files use plain YAML without tags"), problem=exc.problem))]
    except yaml.MarkedYAMLError as exc:
        return None, [*problems, _yaml_problem(file, exc)]
    except yaml.YAMLError as exc:
        return None, [*problems, Problem(file, 1, 1, "", Message(N_("YAML error: {error}"), error=str(exc)))]
    finally:
        loader.dispose()
    return doc, problems


def _single_node(loader: Any, doc: Document, problems: list[Problem]) -> Node | None:
    loader.get_event()  # the stream's start
    if loader.check_event(yaml.StreamEndEvent):
        problems.append(
            Problem(doc.file, 1, 1, "", Message(N_("the file is empty; a process file holds one YAML mapping")))
        )
        return None
    loader.get_event()  # the document's start
    root = _compose(loader, doc, problems)
    loader.get_event()  # the document's end
    if loader.check_event(yaml.DocumentStartEvent):
        loader.get_event()
        mark = loader.peek_event().start_mark  # where the second document's content begins
        problems.append(
            Problem(doc.file, mark.line + 1, mark.column + 1, "",
                    Message(N_("a second YAML document starts here; a process file holds exactly one")))
        )
        return None
    return root


def _compose(loader: Any, doc: Document, problems: list[Problem]) -> Node:
    """One document's events into nodes, as PyYAML's composer does, but without recursion: a
    document nested thousands deep is refused where the reading stopped, never a crash."""
    anchors: dict[str, Node] = {}
    open_: list[tuple[Node, list[Any]]] = []  # the collections being filled, innermost last
    while True:
        event: Any = loader.get_event()
        start: Any = event.start_mark  # libyaml's marks are of another class than PyYAML's, alike in use
        node: Node | None
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:
                raise yaml.composer.ComposerError(None, None, Message(N_("found undefined alias {anchor}"),
                                                                     anchor=repr(event.anchor)), start)
            node = anchors[event.anchor]
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            node, _ = open_.pop()
            node.end_mark = event.end_mark
        else:
            if event.anchor is not None and event.anchor in anchors:
                raise yaml.composer.ComposerError(
                    Message(N_("found duplicate anchor {anchor}; first occurrence"), anchor=repr(event.anchor)),
                    anchors[event.anchor].start_mark, Message(N_("second occurrence")), start)
            tag = event.tag
            if isinstance(event, yaml.ScalarEvent):
                if tag is None or tag == "!":  # a lone ! reads as plain, as PyYAML's parser has it
                    implicit = (True, False) if tag == "!" else event.implicit
                    tag = loader.resolve(ScalarNode, event.value, implicit)
                end: Any = event.end_mark
                if not event.value and not event.style and start.index == end.index:
                    start = end = _empty_value_mark(doc.text, start)
                node = ScalarNode(tag, event.value, start, end, style=event.style or None)
            else:
                kind = SequenceNode if isinstance(event, yaml.SequenceStartEvent) else MappingNode
                if tag is None or tag == "!":
                    tag = loader.resolve(kind, None, event.implicit)
                node = kind(tag, [], start, None, flow_style=event.flow_style)
            if event.anchor is not None:
                anchors[event.anchor] = node
            if not isinstance(event, yaml.ScalarEvent):
                if len(open_) >= MAX_READ_DEPTH:
                    mark = event.start_mark
                    problems.append(Problem(doc.file, mark.line + 1, mark.column + 1, "", _too_deep()))
                    raise _Stop
                open_.append((node, []))
                continue
        if not open_:
            return node
        parent, pending = open_[-1]
        if isinstance(parent, SequenceNode):
            parent.value.append(node)
        elif pending:
            parent.value.append((pending.pop(), node))
        else:
            pending.append(node)


def _empty_value_mark(text: str, mark: Any) -> Any:
    """Where an empty value is: right after its ``:``, as PyYAML says (libyaml names the next token in a
    flow mapping, ``{name: , ...}``)."""
    before = text[: mark.index].rstrip(" \n\r\x85\u2028\u2029")
    if not before.endswith(":") or len(before) == mark.index:
        return mark
    line, column = _line_col(text, len(before))
    return yaml.Mark(mark.name, len(before), line - 1, column - 1, None, 0)


def _yaml_problem(file: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    context: str | None = exc.context and yaml_words(exc.context)
    if context and exc.context_mark and exc.problem_mark and exc.context_mark.line != exc.problem_mark.line:
        # The error shows where the parser gave up; where the construct began is often the real culprit.
        context = Message(N_("{context} (started on line {line}):"), context=context, line=exc.context_mark.line + 1)
    said = exc.problem and yaml_words(exc.problem)
    what = Message("{context} {problem}", context=context, problem=said) if context and said else context or said
    return Problem(file, line, col, "", Message(N_("YAML syntax error: {what}"), what=what or ""))


def _build(
    loader: Any,
    node: Node,
    path: Path_,
    doc: Document,
    problems: list[Problem],
    counter: list[int],
    ancestors: frozenset[int] = frozenset(),
) -> Any:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        problems.append(doc.problem(path, Message(N_("the document expands to more than {limit} nodes (an alias "
                                                     "bomb?)"), limit=f"{MAX_NODES:,}")))
        raise _Stop
    doc.nodes.setdefault(path, node)
    if id(node) in ancestors:
        problems.append(doc.problem(path, Message(N_("an alias refers to a collection that contains it; "
                                                     "process files cannot be recursive"))))
        raise _Stop
    if len(path) > MAX_DEPTH:
        problems.append(doc.problem(path, _too_deep()))
        raise _Stop
    if isinstance(node, ScalarNode):
        if node.tag == _MERGE_TAG:
            return node.value  # a lone << as a value is just text; as a key it is refused below
        if node.tag not in _SCALAR_TAGS:
            _refuse(doc, problems, path, _tag_message(node.tag))
            return None
        value = loader.construct_object(node)
        if node.style is None:  # plain: the only scalars whose type YAML guesses
            surprise = yaml12_surprise(node.value, value)
            if surprise:
                doc.surprises[path] = doc.problem(path, surprise)
        if isinstance(value, float) and not math.isfinite(value):
            _refuse(doc, problems, path, Message(N_("'{value}' is not a finite number"), value=node.value))
        elif isinstance(value, str) and _UNSAFE_TEXT.search(value):
            _refuse(doc, problems, path, _unsafe_text_message(value))
        return value
    inner = ancestors | {id(node)}
    if isinstance(node, SequenceNode):
        if node.tag != "tag:yaml.org,2002:seq":
            _refuse(doc, problems, path, _tag_message(node.tag))
        return [_build(loader, child, (*path, i), doc, problems, counter, inner)
                for i, child in enumerate(node.value)]
    if isinstance(node, MappingNode):
        if node.tag != "tag:yaml.org,2002:map":
            _refuse(doc, problems, path, _tag_message(node.tag))
        out: dict[str, Any] = {}
        first_seen: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                mark = key_node.start_mark
                problems.append(Problem(doc.file, mark.line + 1, mark.column + 1, format_path(path),
                                        Message(N_("merge keys (<<) are not supported; write the keys out"))))
                doc.refused.add(path)  # which keys the mapping meant to have is anyone's guess
                continue
            plain = isinstance(key_node, ScalarNode) and key_node.tag in _SCALAR_TAGS
            key = loader.construct_object(key_node) if plain else None
            if not isinstance(key, str):
                mark = key_node.start_mark
                problems.append(Problem(doc.file, mark.line + 1, mark.column + 1, format_path(path), Message(
                    N_("key {key} is not text; keys are names such as 'id' or 'stages' (quote it if you mean text)"),
                    key=repr(key_node.value)) if isinstance(key_node, ScalarNode) else Message(
                    N_("a list or mapping used as a key is not text; keys are names such as 'id' or 'stages' (quote "
                       "it if you mean text)"))))
                continue
            if _UNSAFE_TEXT.search(key):
                mark = key_node.start_mark
                problems.append(Problem(doc.file, mark.line + 1, mark.column + 1, format_path(path),
                                        _unsafe_text_message(key, in_key=True)))
                continue
            if key in first_seen:
                mark = key_node.start_mark
                first = first_seen[key].start_mark.line + 1
                problems.append(Problem(doc.file, mark.line + 1, mark.column + 1, format_path((*path, key)), Message(
                    N_("duplicate key '{key}' (first given on line {line}); YAML would silently keep only the last "
                       "one"), key=key, line=first)))
                doc.refused.add((*path, key))
                continue
            first_seen[key] = key_node
            doc.keys[(*path, key)] = key_node
            out[key] = _build(loader, value_node, (*path, key), doc, problems, counter, inner)
        return out
    raise _Stop  # pragma: no cover - PyYAML has no other node kinds


def _refuse(doc: Document, problems: list[Problem], path: Path_, message: str) -> None:
    problems.append(doc.problem(path, message))
    doc.refused.add(path)


# -- what a plain scalar may be -------------------------------------------------------------------
#
# PyYAML reads YAML 1.1, where an unquoted yes is true, 010 is 8 and 1:30 is 90; YAML 1.2 (what
# editors, linters and every other YAML tool read today) says otherwise. A plain scalar is accepted
# only when both agree and it is written in decimal, whatever slot it is in; the schema's types
# then see the value the file shows.

#: The YAML 1.2 core schema (spec 1.2.2, section 10.3.2), in the order it resolves a plain scalar.
_CORE_NULL = re.compile(r"null|Null|NULL|~|")
_CORE_BOOL = re.compile(r"true|True|TRUE|false|False|FALSE")
_CORE_OCT = re.compile(r"0o[0-7]+")
_CORE_INT = re.compile(r"[-+]?[0-9]+")
_CORE_HEX = re.compile(r"0x[0-9a-fA-F]+")
_CORE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_CORE_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_CORE_NAN = re.compile(r"\.(nan|NaN|NAN)")


def yaml12_reading(plain: str) -> Any:
    """The value YAML 1.2 (its core schema) gives an unquoted scalar."""
    if _CORE_NULL.fullmatch(plain):
        return None
    if _CORE_BOOL.fullmatch(plain):
        return plain.lower() == "true"
    if _CORE_OCT.fullmatch(plain):
        return int(plain[2:], 8)
    if _CORE_INT.fullmatch(plain):
        return int(plain)
    if _CORE_HEX.fullmatch(plain):
        return int(plain[2:], 16)
    if _CORE_FLOAT.fullmatch(plain):
        return float(plain)
    if _CORE_INF.fullmatch(plain):
        return -math.inf if plain.startswith("-") else math.inf
    if _CORE_NAN.fullmatch(plain):
        return math.nan
    return plain


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


def _plain_number(value: float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return Message(N_("the text '{text}'"), text=value)
    if value is None:
        return Message(N_("nothing"))
    return Message(N_("the number {number}"), number=_plain_number(value))


def yaml12_surprise(plain: str, value: Any) -> str | None:
    """Why an unquoted scalar that PyYAML (YAML 1.1) read as ``value`` is refused, or None if it is not.

    The one rule for every slot: YAML 1.1 and YAML 1.2 must read it alike, and a number must be decimal.
    """
    v12 = yaml12_reading(plain)
    hexadecimal = isinstance(value, int) and not isinstance(value, bool) and "x" in plain.lower()
    if _same(value, v12) and not hexadecimal:
        return None
    said = {"plain": plain, "v11": _shown(value), "v12": _shown(v12)}
    if hexadecimal:
        return Message(N_("{plain} is a hexadecimal number; write it in decimal, {value}, or '{plain}' in quotes if "
                          "you mean the text"), plain=plain, value=value)
    if isinstance(value, bool):
        return Message(N_("YAML 1.1 reads an unquoted {plain} as {v11}, YAML 1.2 as {v12}; write {v11}, or "
                          "'{plain}' in quotes if you mean the text"), **said)
    digits = plain.lstrip("+-")
    if isinstance(v12, int) and not isinstance(v12, bool) and digits.startswith("0") and digits != "0":
        if isinstance(value, int):
            return Message(N_("{plain} has a leading zero: YAML 1.1 reads it as the octal number {value}, YAML 1.2 "
                              "as {v12}; write {number} without the leading zero, or '{plain}' in quotes if you mean "
                              "the text"), **said, value=value, number=v12)
        return Message(N_("{plain} has a leading zero: YAML 1.1 reads it as {v11}, YAML 1.2 as {v12}; write {number} "
                          "without the leading zero, or '{plain}' in quotes if you mean the text"), **said, number=v12)
    if isinstance(value, (int, float)) and ":" in plain:
        return Message(N_("YAML 1.1 reads {plain} as the base-60 number {value}, YAML 1.2 as {v12}; write {value}, "
                          "or '{plain}' in quotes if you mean the text"), **said, value=_plain_number(value))
    if isinstance(value, (int, float)) and "_" in plain:
        return Message(N_("YAML 1.1 reads {plain} as {v11} (it skips the underscores), YAML 1.2 as {v12}; write "
                          "{value}, or '{plain}' in quotes if you mean the text"), **said, value=_plain_number(value))
    if isinstance(value, int) and plain.lower().lstrip("+-").startswith("0b"):
        return Message(N_("YAML 1.1 reads {plain} as the binary number {value}, YAML 1.2 as {v12}; write {value}, "
                          "or '{plain}' in quotes if you mean the text"), **said, value=value)
    if isinstance(value, str) and isinstance(v12, (int, float)) and not isinstance(v12, bool):
        return Message(N_("YAML 1.2 reads {plain} as {v12}, YAML 1.1 as {v11}; write {value}, or '{plain}' in quotes "
                          "if you mean the text"), **said, value=_plain_number(v12))
    return Message(N_("YAML 1.1 reads {plain} as {v11}, YAML 1.2 as {v12}; write what you mean "  # pragma: no cover
                      "so that both agree, or '{plain}' in quotes if you mean the text"), **said)


#: Characters that act on a terminal or reorder the text around them: the C0 and C1 controls but
#: tab and line feed, DEL, and the bidirectional marks, embeddings, overrides and isolates.
_UNSAFE_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _unsafe_text_message(text: str, *, in_key: bool = False) -> str:
    found = _UNSAFE_TEXT.search(text)
    assert found is not None
    char = found.group()
    code = format(ord(char), "04X")
    if char in "\u061c\u200e\u200f" or "\u202a" <= char <= "\u202e" or "\u2066" <= char <= "\u2069":
        if in_key:
            return Message(N_("a key contains the bidirectional control U+{code}, which shows the text around it in "
                              "another order than it is written; process texts are plain, printable text: delete it"),
                           code=code)
        return Message(N_("contains the bidirectional control U+{code}, which shows the text around it in another "
                          "order than it is written; process texts are plain, printable text: delete it"), code=code)
    if in_key:
        return Message(N_("a key contains the control character U+{code}, which a terminal would act on; process "
                          "texts are plain, printable text: delete it"), code=code)
    return Message(N_("contains the control character U+{code}, which a terminal would act on; process texts are "
                      "plain, printable text: delete it"), code=code)


def _tag_message(tag: str) -> str:
    return Message(N_("unsupported YAML tag {tag}; process files use plain YAML without tags"), tag=_shown_tag(tag))


def _too_deep() -> str:
    return Message(N_("the document nests too deeply (more than {depth} levels)"), depth=MAX_DEPTH)


#: PyYAML's own words in a syntax error (its scanner's and parser's fixed phrases), for the catalogues: a problem
#: shows one in the reader's language; any other stays as PyYAML says it.
YAML_WORDS = frozenset({
    N_("while scanning for the next token"),
    N_("while scanning a simple key"),
    N_("while scanning a quoted scalar"),
    N_("while scanning a double-quoted scalar"),
    N_("while scanning a block scalar"),
    N_("while scanning an anchor"),
    N_("while scanning an alias"),
    N_("while scanning a tag"),
    N_("while parsing a node"),
    N_("while parsing a block node"),
    N_("while parsing a flow node"),
    N_("while parsing a block mapping"),
    N_("while parsing a block collection"),
    N_("while parsing a flow mapping"),
    N_("while parsing a flow sequence"),
    N_("mapping values are not allowed here"),
    N_("mapping keys are not allowed here"),
    N_("could not find expected ':'"),
    N_("found unexpected end of stream"),
    N_("found unexpected document separator"),
})
#: PyYAML's phrases that name a character or a token, as templates (the token stays as PyYAML writes it).
_YAML_PHRASES = (
    (re.compile(r"found character (?P<char>.+) that cannot start any token"),
     N_("found character {char} that cannot start any token")),
    (re.compile(r"found unknown escape character (?P<char>.+)"), N_("found unknown escape character {char}")),
    (re.compile(r"expected (?P<expected>.+), but found (?P<found>.+)"), N_("expected {expected}, but found {found}")),
    (re.compile(r"expected (?P<expected>.+), but got (?P<found>.+)"), N_("expected {expected}, but got {found}")),
)


def yaml_words(said: str) -> str:
    """One of PyYAML's phrases in a syntax error, in the reader's language when the catalogues have it."""
    if isinstance(said, Message):
        return said
    if said in YAML_WORDS:
        return Message(said)
    for pattern, template in _YAML_PHRASES:
        found = pattern.fullmatch(said)
        if found:
            return Message(template, **found.groupdict())
    return said
