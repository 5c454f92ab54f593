"""A process's stage graph as a Mermaid ``stateDiagram-v2``.

A pure function of the frozen spec, so ``process show --mermaid``, a web page or an integrator's tooling all
draw the same picture.
"""

from __future__ import annotations

from engine.condition_text import condition_text
from engine.i18n import label
from engine.spec import ProcessSpec

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
        f"    %% {' '.join(label(spec.title).split())} ({spec.id})",
    ]
    for stage in spec.stages:
        lines.append(f'    state "{mermaid_label(label(stage.name))}" as {_node(stage.id)}')
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
