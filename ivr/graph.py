"""Draw a flow as Graphviz DOT text, so an admin sees the paths a caller can take.

Each node shows its id, type and first prompt; its shape tells the type (a menu is a box, a branch a
diamond, a node where the call leaves the flow a double octagon); each edge tells what takes the caller
along it: a key, a condition, `next`, `timeout/invalid`, `fallback`, `overflow` or `else`. A `goto` into
another flow ends at a folder-shaped node named after that flow. Turning the text into a picture is
`dot`'s work (`hotline graph`), so this module stays pure.
"""

from __future__ import annotations

from collections.abc import Iterable

from ivr.conditions import condition_text
from ivr.flowset import FlowSet
from ivr.model import NodeBase
from ivr.nodes import REGISTRY, Exit

__all__ = ["MAX_TEXT", "SHAPES", "START_MARK", "condition_text", "to_dot"]

#: The shape of each node type: its own, or a double octagon for an ending.
SHAPES: dict[str, str] = {unit.TYPE_KEY: "doubleoctagon" if unit.ENDS else unit.SHAPE for unit in REGISTRY}

#: Longest text in a label line or edge label before it is cut with an ellipsis.
MAX_TEXT = 56

# Ids of the drawing's own nodes hold characters a node id cannot, so they never meet a flow's node.
START_MARK = "@start"


def to_dot(flowset: FlowSet, flow: str) -> str:
    """The DOT text of `flow` (a name in `flowset`): its nodes and every way from one to the next."""
    spec = flowset[flow]
    lines = [
        f"digraph {_quote(spec.flow)} {{",
        f"  graph [label={_quote(f'flow {spec.flow}')}, labelloc=t, fontname=Helvetica, fontsize=12];",
        "  node [fontname=Helvetica, fontsize=10, style=filled, fillcolor=white];",
        "  edge [fontname=Helvetica, fontsize=9];",
        f'  {_quote(START_MARK)} [label="start", shape=circle, fillcolor=black, fontcolor=white];',
    ]
    for node_id, node in spec.nodes.items():
        attrs = {
            "label": "\n".join(_label(node_id, node)),
            "shape": SHAPES.get(node.TYPE_KEY, node.SHAPE),
        }
        if node_id == spec.start:
            attrs["penwidth"] = "2.5"
        if node.ENDS:
            attrs["fillcolor"] = "#e8f0fe"
        if node.description:
            attrs["tooltip"] = node.description
        lines.append(f"  {_quote(node_id)} [{_attrs(attrs)}];")

    foreign: dict[str, tuple[str, bool]] = {}  # drawing id -> (label, known), for what is not a node here
    edges: list[str] = [f"  {_quote(START_MARK)} -> {_quote(spec.start)};"]
    if spec.start not in spec.nodes:
        foreign[spec.start] = (f"{spec.start}\n(unknown node)", False)
    for node_id, node in spec.nodes.items():
        for target, label in _merged(node.exits()):
            if target.flow is not None:
                other = flowset.flows.get(target.flow)
                entry = target.node or (other.start if other else "")
                draw_id = f"@{target.flow}/{entry}"
                text = f"flow {target.flow}" + (f"\n{entry}" if entry else "")
                foreign[draw_id] = (text, True) if other else (f"{text}\n(unknown flow)", False)
            else:
                draw_id = target.node or ""
                if draw_id not in spec.nodes:
                    foreign[draw_id] = (f"{draw_id}\n(unknown node)", False)
            labelled = f" [label={_quote(label)}]" if label else ""
            edges.append(f"  {_quote(node_id)} -> {_quote(draw_id)}{labelled};")
    for draw_id, (label, known) in foreign.items():
        look = (
            {"shape": "folder", "fillcolor": "#f3f3f3"}
            if known
            else {"shape": "box", "style": "dashed", "color": "red"}
        )
        lines.append(f"  {_quote(draw_id)} [{_attrs({'label': label, **look})}];")
    lines.extend(edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _label(node_id: str, node: NodeBase) -> list[str]:
    """The lines of a node's label: id, type (with what it does), first prompt or other details."""
    detail, more = node.detail()
    lines = [node_id, f"{node.TYPE_KEY} {detail}" if detail else node.TYPE_KEY]
    if more:
        lines.append(more)
    return [_cut(line) for line in lines]


def _merged(exits: Iterable[Exit]) -> list[tuple[Exit, str]]:
    """One edge per target: menu keys leading to the same node share an edge (`1, 2`)."""
    merged: dict[tuple[str | None, str | None], tuple[Exit, list[str]]] = {}
    for exit in exits:
        _, labels = merged.setdefault((exit.flow, exit.node), (exit, []))
        label = _cut(exit.label)
        if label not in labels:
            labels.append(label)
    return [(exit, ", ".join(label for label in labels if label)) for exit, labels in merged.values()]


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _quote(text: str) -> str:
    """A DOT string: quotes and backslashes escaped, line breaks as DOT's centred `\\n`."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r\n", "\n").replace("\n", "\\n") + '"'


def _attrs(attrs: dict[str, str]) -> str:
    return ", ".join(f"{key}={_quote(value)}" for key, value in attrs.items())
