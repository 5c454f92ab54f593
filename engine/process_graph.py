"""The stage and task graphs of a process file as its checks walk them (engine/semantics.py): where a stage leads,
what is reachable, and circles of ``after`` references."""

from __future__ import annotations

from typing import Any


def cycle_through(start: str, after: dict[str, list[str]]) -> list[str]:
    """The tasks of a circle of ``after`` references that leads back to ``start`` (in order), or []."""
    todo: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while todo:
        current, trail = todo.pop()
        for earlier in after.get(current, []):
            if earlier == start and len(trail) > 1:
                return trail
            if earlier not in seen and earlier != start:
                seen.add(earlier)
                todo.append((earlier, [*trail, earlier]))
    return []


def next_ids(stages: list[dict[str, Any]], index: int, won_stage: str) -> list[str]:
    """The ids of the stages a process file's stage ``index`` leads to: its ``next``, else the stage after it
    (none after the won stage or the last)."""
    stage = stages[index]
    if "next" in stage:
        return [n["stage"] for n in stage["next"]]
    if stage["id"] == won_stage or index + 1 >= len(stages):
        return []
    return [stages[index + 1]["id"]]


def reachable(start: str, edges: dict[str, list[str]]) -> set[str]:
    """Every stage ``edges`` lead to from ``start``, ``start`` included."""
    seen = {start}
    todo = [start]
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen
