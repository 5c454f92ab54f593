"""A process's condition as one readable line (``financing = leasing and budget >= 20000``): the engine's
refusals quote it, and ``process show`` and the Mermaid diagram print it."""

from __future__ import annotations

import re
from typing import Any

from engine.spec import UNARY_OPERATORS, Condition

_OPERATOR_TEXT = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "in": "in", "not_in": "not in",
                  "contains": "contains", "not_contains": "does not contain"}

#: Values printed bare; anything else (spaces, punctuation, look-alikes of numbers) is quoted.
_BARE_VALUE = re.compile(r"[^\W\d][\w.@/+-]*\Z")
_LOOKS_LIKE_KEYWORD = {"true", "false", "and", "or", "not", "in", "is", "set"}


def condition_text(cond: Condition) -> str:
    """A condition as one readable line, e.g. ``financing = leasing and budget >= 20000``: the engine's refusals
    quote it, and ``process show`` and the Mermaid diagram print it.

    Nested combinations are parenthesised; leaves read ``field op value``,
    ``field is set`` / ``field is not set``.
    """
    return _condition_text(cond, top=True)


def _condition_text(cond: Condition, *, top: bool = False) -> str:
    if cond.all or cond.any:
        joiner = " and " if cond.all else " or "
        parts = cond.all or cond.any
        inner = joiner.join(_condition_text(c) for c in parts)
        return inner if top or len(parts) == 1 else f"({inner})"
    if cond.not_ is not None:
        sub = cond.not_
        if (sub.field or sub.attribute) is not None and sub.op in UNARY_OPERATORS:
            return _condition_text(Condition(field=sub.field, attribute=sub.attribute,
                                             op="is_unset" if sub.op == "is_set" else "is_set"))
        return f"not ({_condition_text(sub, top=True)})"
    name = f"the lead's {cond.attribute}" if cond.attribute else cond.field
    if cond.op == "is_set":
        return f"{name} is set"
    if cond.op == "is_unset":
        return f"{name} is not set"
    op = _OPERATOR_TEXT.get(cond.op or "", cond.op or "?")
    return f"{name} {op} {_value_text(cond.value)}"


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
