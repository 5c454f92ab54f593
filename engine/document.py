"""A parsed process file: its data, and where in the file each value and key was written.

Shared by the loader (``engine.process_yaml`` builds it) and the semantic checks (which locate their problems
through it), so that neither imports the other's internals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from yaml.nodes import Node, ScalarNode

from engine.errors import Problem

Path_ = tuple[str | int, ...]


def format_path(path: Iterable[str | int]) -> str:
    """``('stages', 2, 'tasks', 0, 'owner')`` -> ``stages[2].tasks[0].owner``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class Document:
    """Parsed YAML data with the source position of every node and every mapping key.

    ``refused`` holds the paths of values already refused (a tag, a control character, a
    value the schema refused...): later checks say nothing more about them.
    """

    file: str
    text: str
    data: Any = None
    nodes: dict[Path_, Node] = field(default_factory=dict)
    keys: dict[Path_, Node] = field(default_factory=dict)
    refused: set[Path_] = field(default_factory=set)
    #: Unquoted scalars YAML 1.1 and YAML 1.2 read differently, with the problem that explains each.
    surprises: dict[Path_, Problem] = field(default_factory=dict)

    def problem(self, path: Path_, message: str, *, at_key: bool = False) -> Problem:
        node = (self.keys.get(path) if at_key else None) or self._nearest(path)
        line, col = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (1, 1)
        return Problem(self.file, line, col, format_path(path), message)

    def source(self, path: Path_) -> str | None:
        """The raw text of a scalar, as written in the file."""
        node = self.nodes.get(path)
        if not isinstance(node, ScalarNode):
            return None
        return self.text[node.start_mark.index : node.end_mark.index]

    def _nearest(self, path: Path_) -> Node | None:
        while path:
            if path in self.nodes:
                return self.nodes[path]
            path = path[:-1]
        return self.nodes.get(())
