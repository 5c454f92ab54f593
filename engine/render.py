"""Human-readable renderings of a process: conditions as text, the stage graph as Mermaid.

Pure functions of the frozen spec, so the CLI, a web page or an integrator's
tooling all draw the same picture.
"""

from __future__ import annotations

import re
from typing import Any

from engine.spec import Condition, ProcessSpec

_OPERATOR_TEXT = {
    "eq": "=",
    "ne": "!=",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "in": "in",
    "not_in": "not in",
}

#: Values printed bare; anything else (spaces, punctuation, look-alikes of numbers) is quoted.
_BARE_VALUE = re.compile(r"[^\W\d][\w.@/+-]*\Z")
_LOOKS_LIKE_KEYWORD = {"true", "false", "and", "or", "not", "in", "is", "set"}


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing"
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_value_text(v) for v in value) + ")"
    text = str(value)
    if _BARE_VALUE.match(text) and text.lower() not in _LOOKS_LIKE_KEYWORD:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def condition_text(cond: Condition) -> str:
    """A condition as one readable line, e.g. ``financing = leasing and budget >= 20000``.

    Nested combinations are parenthesised; leaves read ``field op value``,
    ``field is set`` / ``field is not set``.
    """
    return _text(cond, top=True)


def _text(cond: Condition, *, top: bool = False) -> str:
    if cond.all or cond.any:
        joiner = " and " if cond.all else " or "
        parts = cond.all or cond.any
        inner = joiner.join(_text(c) for c in parts)
        return inner if top or len(parts) == 1 else f"({inner})"
    if cond.not_ is not None:
        sub = cond.not_
        if sub.field is not None and sub.op in ("is_set", "is_unset"):
            return _text(Condition(field=sub.field, op="is_unset" if sub.op == "is_set" else "is_set"))
        inner = _text(sub, top=True)
        return f"not ({inner})"
    if cond.op == "is_set":
        return f"{cond.field} is set"
    if cond.op == "is_unset":
        return f"{cond.field} is not set"
    op = _OPERATOR_TEXT.get(cond.op or "", cond.op or "?")
    return f"{cond.field} {op} {_value_text(cond.value)}"


# -- Mermaid ------------------------------------------------------------------------------------

#: Words Mermaid's state-diagram grammar reserves; a stage with such an id gets a prefixed node id.
_MERMAID_RESERVED = {
    "end",
    "state",
    "note",
    "direction",
    "class",
    "classdef",
    "click",
    "style",
    "as",
    "default",
    "left",
    "right",
    "of",
    "over",
    "hide",
    "top",
    "bottom",
    "lr",
    "rl",
    "tb",
    "bt",
    "won",
    "lost",
}

_MERMAID_ESCAPES = {
    "#": "#35;",
    '"': "#quot;",
    ":": "#58;",
    ";": "#59;",
    "<": "#lt;",
    ">": "#gt;",
    "{": "#123;",
    "}": "#125;",
    "|": "#124;",
    "`": "#96;",
}


def mermaid_label(text: str) -> str:
    """Text made safe for a Mermaid label: entity codes for the characters its parser chokes on."""
    text = " ".join(text.split())  # no line breaks inside a label
    return "".join(_MERMAID_ESCAPES.get(ch, ch) for ch in text)


def _node(stage_id: str) -> str:
    return f"stage_{stage_id}" if stage_id.lower() in _MERMAID_RESERVED else stage_id


def mermaid(spec: ProcessSpec) -> str:
    """The process as a Mermaid ``stateDiagram-v2``.

    One state per stage (labelled with its name), an edge per allowed transition
    (labelled with its condition, if any), the won stage leading to ``Won``, and a
    ``close`` edge from every stage to ``Lost``: an open lead may be closed anywhere.
    """
    lines = [
        "stateDiagram-v2",
        f"    %% {' '.join(spec.title.split())} ({spec.id})",
    ]
    for stage in spec.stages:
        lines.append(f'    state "{mermaid_label(stage.name)}" as {_node(stage.id)}')
    lines.append('    state "Won" as Won')
    lines.append('    state "Lost (closed)" as Lost')
    lines.append("")
    lines.append(f"    [*] --> {_node(spec.first_stage.id)}")
    for stage in spec.stages:
        for transition in stage.next:
            edge = f"    {_node(stage.id)} --> {_node(transition.stage)}"
            if transition.when is not None:
                edge += f" : {mermaid_label(condition_text(transition.when))}"
            lines.append(edge)
    lines.append(f"    {_node(spec.won_stage)} --> Won : completed")
    lines.append("    Won --> [*]")
    lines.append("")
    lines.append("    %% any open stage may be closed as lost, for one of the process's closure reasons")
    for stage in spec.stages:
        lines.append(f"    {_node(stage.id)} --> Lost : close")
    lines.append("    Lost --> [*]")
    lines.append("")
    lines.append("    classDef won fill:#d9f2d9,stroke:#2e7d32")
    lines.append("    classDef lost fill:#f8d7da,stroke:#b02a37")
    lines.append("    class Won won")
    lines.append("    class Lost lost")
    return "\n".join(lines) + "\n"
