"""Draw a flow as Graphviz DOT text, so an admin sees the paths a caller can take.

Each node shows its id, type and first prompt; its shape tells the type (a menu is a box, a branch a
diamond, a node where the call leaves the flow a double octagon); each edge tells what takes the caller
along it: a key, a condition, `next`, `timeout/invalid`, `fallback`, `overflow` or `else`. A `goto` into
another flow ends at a folder-shaped node named after that flow. Turning the text into a picture is
`dot`'s work (`hotline graph`), so this module stays pure.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ivr.checks import ENDINGS
from ivr.flowset import FlowSet
from ivr.model import (
    Branch,
    Callback,
    Collect,
    Condition,
    Goto,
    GotoTarget,
    Hangup,
    Language,
    Lookup,
    Menu,
    Play,
    Queue,
    Say,
    SetVariables,
    Transfer,
    Voicemail,
    node_type,
)

SHAPES: dict[str, str] = {
    "play": "ellipse",
    "say": "ellipse",
    "menu": "box",
    "collect": "parallelogram",
    "language": "parallelogram",
    "branch": "diamond",
    "set": "note",
    "lookup": "cylinder",
    "goto": "cds",
    **dict.fromkeys(ENDINGS, "doubleoctagon"),
}

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
        kind = node_type(node) or "node"
        attrs = {
            "label": "\n".join(_label(node_id, kind, node)),
            "shape": SHAPES.get(kind, "box"),
        }
        if node_id == spec.start:
            attrs["penwidth"] = "2.5"
        if kind in ENDINGS:
            attrs["fillcolor"] = "#e8f0fe"
        if node.description:
            attrs["tooltip"] = node.description
        lines.append(f"  {_quote(node_id)} [{_attrs(attrs)}];")

    foreign: dict[str, tuple[str, bool]] = {}  # drawing id -> (label, known), for what is not a node here
    edges: list[str] = [f"  {_quote(START_MARK)} -> {_quote(spec.start)};"]
    if spec.start not in spec.nodes:
        foreign[spec.start] = (f"{spec.start}\n(unknown node)", False)
    for node_id, node in spec.nodes.items():
        for target, label in _merged(_edges(node)):
            if isinstance(target, GotoTarget):
                other = flowset.flows.get(target.flow)
                entry = target.node or (other.start if other else "")
                draw_id = f"@{target.flow}/{entry}"
                text = f"flow {target.flow}" + (f"\n{entry}" if entry else "")
                foreign[draw_id] = (text, True) if other else (f"{text}\n(unknown flow)", False)
            else:
                draw_id = target
                if target not in spec.nodes:
                    foreign[target] = (f"{target}\n(unknown node)", False)
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


def condition_text(cond: Condition) -> str:
    """A short reading of a branch condition, e.g. `office open`, `tier = gold and language pl`."""
    parts: list[str] = []
    if cond.schedule is not None:
        parts.append(f"{cond.schedule} {'open' if cond.open else 'closed'}")
    if cond.caller is not None:
        parts.append("caller " + " | ".join(cond.caller))
    if cond.dialed is not None:
        parts.append("dialed " + " | ".join(cond.dialed))
    if cond.language is not None:
        parts.append(f"language {cond.language}")
    if cond.var is not None:
        parts.extend(_var_tests(cond))
    if cond.any is not None:
        parts.append("(" + " or ".join(condition_text(c) for c in cond.any) + ")")
    if cond.all is not None:
        parts.append("(" + " and ".join(condition_text(c) for c in cond.all) + ")")
    if cond.not_ is not None:
        parts.append(f"not ({condition_text(cond.not_)})")
    return " and ".join(parts)


def _var_tests(cond: Condition) -> Iterator[str]:
    name = cond.var
    if cond.equals is not None:
        yield f"{name} = {_value(cond.equals)}"
    if cond.not_equals is not None:
        yield f"{name} != {_value(cond.not_equals)}"
    if cond.in_ is not None:
        yield f"{name} in ({', '.join(_value(v) for v in cond.in_)})"
    if cond.matches is not None:
        yield f"{name} ~ /{cond.matches}/"
    if cond.exists is not None:
        yield f"{name} {'is set' if cond.exists else 'is not set'}"
    for op, bound in ((">", cond.gt), (">=", cond.ge), ("<", cond.lt), ("<=", cond.le)):
        if bound is not None:
            yield f"{name} {op} {bound:g}"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _prompt(prompts: tuple[str, ...]) -> str | None:
    """The first prompt, in quotes, as the node's third label line."""
    return f'"{prompts[0]}"' if prompts else None


def _label(node_id: str, kind: str, node: Any) -> list[str]:
    """The lines of a node's label: id, type (with what it does), first prompt or other details."""
    detail, more = _detail(node)
    lines = [node_id, f"{kind} {detail}" if detail else kind]
    if more:
        lines.append(more)
    return [_cut(line) for line in lines]


def _detail(node: Any) -> tuple[str, str | None]:
    """What a node does in a few words (after its type), and a line more: its first prompt mostly."""
    match node:
        case Play():
            return "", _prompt(node.play)
        case Menu():
            return (f"({node.repeat} repeats)" if node.repeat else ""), _prompt(node.menu)
        case Collect():
            return f"-> {node.collect}", _prompt(node.prompt)
        case Say():
            return f"{node.say} as {node.as_}", _prompt(node.before)
        case SetVariables():
            return ", ".join(f"{k} = {_value(v)}" for k, v in node.set.items()), None
        case Lookup():
            return node.lookup.method, node.lookup.url
        case Language():
            if isinstance(node.language, dict):
                choice = ", ".join(f"{k}: {v}" for k, v in node.language.items())
            else:
                choice = node.language
            return choice, _prompt(node.prompt)
        case Queue():
            spec = node.queue
            wants = [f"{k} {v}" for k, v in spec.skills.items()]
            if spec.priority:
                wants.append(f"priority {spec.priority}")
            return spec.name, ", ".join(wants) or None
        case Callback():
            return f"to {node.callback.queue}", _prompt(node.callback.confirm)
        case Transfer():
            target = node.transfer
            kind = next(k for k in ("extension", "endpoint", "number") if getattr(target, k) is not None)
            return f"to {kind}", str(getattr(target, kind))
        case Voicemail():
            return f"mailbox {node.voicemail.mailbox}", _prompt(node.voicemail.prompt)
        case Goto():
            if isinstance(node.goto, GotoTarget):
                return f"flow {node.goto.flow}", None
            return "", None
        case Hangup():
            return "", _prompt(node.hangup.prompt)
    return "", None  # pragma: no cover - every node type is matched above


def _edges(node: Any) -> Iterator[tuple[str | GotoTarget, str]]:
    """Every way out of a node: (target, label)."""
    match node:
        case Menu():
            for keys, target in node.options.items():
                yield target, keys
            if node.failure is not None:
                yield node.failure, "timeout/invalid"
        case Collect():
            yield node.next, "next"
            if node.failure is not None:
                yield node.failure, "timeout/invalid"
        case Branch():
            for case in node.branch:
                yield case.goto, _cut(condition_text(case.if_))
            yield node.else_, "else"
        case Lookup():
            yield node.next, "next"
            yield node.fallback, "fallback"
        case Queue():
            yield node.overflow, "overflow"
        case Callback() | Transfer():
            if node.failure is not None:
                yield node.failure, "failure"
        case Voicemail():
            if node.next is not None:
                yield node.next, "next"
        case Goto():
            yield node.goto, ""
        case Play() | Say() | SetVariables() | Language():
            yield node.next, "next"


def _merged(edges: Iterator[tuple[str | GotoTarget, str]]) -> list[tuple[str | GotoTarget, str]]:
    """One edge per target: menu keys leading to the same node share an edge (`1, 2`)."""
    merged: dict[str | GotoTarget, list[str]] = {}
    for target, label in edges:
        labels = merged.setdefault(target, [])
        if label not in labels:
            labels.append(label)
    return [(target, ", ".join(label for label in labels if label)) for target, labels in merged.items()]


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _quote(text: str) -> str:
    """A DOT string: quotes and backslashes escaped, line breaks as DOT's centred `\\n`."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\r\n", "\n").replace("\n", "\\n") + '"'


def _attrs(attrs: dict[str, str]) -> str:
    return ", ".join(f"{key}={_quote(value)}" for key, value in attrs.items())
