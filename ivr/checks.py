"""Checks of a flow set's graph, beyond what the schema of one file can see.

The models in `ivr.model` check each file's shape; these checks look at how nodes, flows, prompts,
schedules and languages refer to each other: a target that does not exist, a node no caller can reach,
a loop a caller can never leave, a loop the engine would spin in, prompts without recordings. Each node
type adds checks of its own (`problems`: menu options that collide, a pattern that can never match, a
branch on a schedule nobody defined); what a node refers to comes from its type's `exits` and `prompts`.

Each finding is a `Problem`: the flow, the key path of the offending key and what to fix.
`ivr.loader` turns the path into a file, line and column.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from ivr.hints import did_you_mean, either, listed
from ivr.model import Flow, NodeBase
from ivr.nodes import REGISTRY, Exit, Scope
from ivr.nodes.base import not_a_flow_language

__all__ = [
    "ENDINGS",
    "NON_WAITING",
    "SOUND_EXTENSIONS",
    "Problem",
    "Unchecked",
    "check_flows",
    "did_you_mean",
    "node_prompts",
    "node_targets",
    "sound_name_problem",
    "waits",
]

Path = tuple[str | int, ...]

#: Node types where the caller leaves the flow: to an agent, a call-back, another phone, a mailbox or
#: nowhere.
ENDINGS: frozenset[str] = frozenset(unit.TYPE_KEY for unit in REGISTRY if unit.ENDS)

#: Node types that go on at once, without waiting for the caller or for a sound to end (a node may
#: decide for itself too: a `language` node waits only when it offers keys).
NON_WAITING: frozenset[str] = frozenset(unit.TYPE_KEY for unit in REGISTRY if not unit.WAITS)

#: Extensions of sound files Asterisk can play; a prompt names a sound without one.
SOUND_EXTENSIONS: tuple[str, ...] = (".wav", ".gsm", ".ulaw", ".alaw", ".sln", ".sln16", ".g722", ".mp3")


@dataclass(frozen=True)
class Problem:
    """A mistake in flow `flow` at key path `path`. `at_value` when the mistake is the value there (a
    node name that does not exist) rather than the key (a node nothing leads to)."""

    flow: str
    path: Path
    message: str
    at_value: bool = False


@dataclass(frozen=True)
class Unchecked:
    """Parts of a flow that failed the schema and were left out of it: they exist, so nothing is
    reported as unknown for naming them, but the graph checks cannot look inside them."""

    nodes: frozenset[str] = frozenset()
    schedules: frozenset[str] = frozenset()
    prompts: frozenset[str] = frozenset()


# --- what a node refers to ---------------------------------------------------------------------------


def node_targets(node: NodeBase) -> list[tuple[Path, str]]:
    """The nodes of its own flow `node` may lead to, each with the key path (under the node) naming it.
    A jump into another flow is one of its `exits()` with a `flow`."""
    return [(exit.path, exit.node) for exit in node.exits() if exit.flow is None and exit.node is not None]


def waits(node: NodeBase) -> bool:
    """Does the node wait for the caller (a key, the end of a sound) before it goes on?"""
    return node.waits()


def node_prompts(node: NodeBase) -> Iterator[tuple[Path, str]]:
    """Every prompt `node` may play (defaults included), with its key path under the node."""
    for path, names in node.prompts():
        for i, name in enumerate(names):
            yield (*path, i), name


# --- the checks --------------------------------------------------------------------------------------

Vertex = tuple[str, str]  # (flow, node)


def check_flows(
    flows: Mapping[str, Flow],
    *,
    sounds: Mapping[str, frozenset[str]] | None = None,
    unchecked: Mapping[str, Unchecked] | None = None,
    failed_flows: frozenset[str] | None = frozenset(),
) -> list[Problem]:
    """Every graph problem of `flows` (flow name -> flow).

    `sounds` gives, per flow name, the sound files found in that flow's `sounds:` folder as
    `language/name` without extension; a flow missing from it is not checked against its folder.
    `unchecked` names the parts of each flow the schema rejected. `failed_flows` names the flows of the
    set that could not be loaded at all (a `goto` into them is not checked); None when some file could
    not even be read far enough to know its flow's name, so no `goto` is reported as naming an unknown
    flow.
    """
    sounds = sounds or {}
    unchecked = unchecked or {}
    problems: list[Problem] = []
    for name, flow in flows.items():
        skipped = unchecked.get(name, Unchecked())
        problems += _targets(name, flow, flows, skipped, failed_flows)
    # in a flow that names a node of its own that does not exist, nodes look unreachable
    misdirected = {
        name
        for name, flow in flows.items()
        if flow.start not in flow.nodes
        or any(target not in flow.nodes for node in flow.nodes.values() for _, target in node_targets(node))
    }
    for name, flow in flows.items():
        skipped = unchecked.get(name, Unchecked())
        problems += _own(name, flow, skipped)
        problems += _prompts(name, flow, sounds.get(name), skipped)
    problems += _graph(flows, unchecked, misdirected)
    return problems


#: At most this many unknown node names of a flow get a did-you-mean (each costs a pass over every node).
_MOST_HINTS = 100


def _unknown_node(target: str, flow: Flow, exit: Exit | None, flow_names: Iterable[str]) -> str:
    """`unknown node 'x'` and what to write instead: the closest of the flow's nodes, the flow it names,
    or the nodes there are."""
    message = f"unknown node '{target}'"
    if target in flow_names:
        if exit is not None and exit.accepts_flow:
            return f"{message}; '{target}' is a flow: write {exit.path[-1]}: {{flow: {target}}}"
        return f"{message}; '{target}' is a flow: lead to a node with goto: {{flow: {target}}}"
    hint = did_you_mean(target, flow.nodes)
    return message + (hint or f"; add it under nodes: or name one of {listed(flow.nodes)}")


def _targets(
    name: str,
    flow: Flow,
    flows: Mapping[str, Flow],
    skipped: Unchecked,
    failed_flows: frozenset[str] | None,
) -> Iterator[Problem]:
    known = set(flow.nodes) | skipped.nodes
    flow_names = set(flows) | (failed_flows or frozenset())
    # each unknown name gets its hint once, and only the first _MOST_HINTS of them a did-you-mean, so
    # that a large flow with many mistakes is still checked in seconds
    hints: dict[tuple[str, bool], str] = {}

    def unknown(target: str, exit: Exit | None) -> str:
        key = (target, exit is not None and exit.accepts_flow)
        if key not in hints:
            if len(hints) < _MOST_HINTS or target in flow_names:
                hints[key] = _unknown_node(target, flow, exit, flow_names)
            else:
                hints[key] = f"unknown node '{target}'; add it under nodes: or correct the name"
        return hints[key]

    if flow.start not in known:
        yield Problem(name, ("start",), unknown(flow.start, None), at_value=True)
    for node_id, node in flow.nodes.items():
        for exit in node.exits():
            at = ("nodes", node_id, *exit.path)
            if exit.flow is None:
                if exit.node is not None and exit.node not in known:
                    yield Problem(name, at, unknown(exit.node, exit), at_value=True)
                continue
            if exit.flow not in flows:
                if failed_flows is not None and exit.flow not in failed_flows:
                    hint = did_you_mean(exit.flow, flows) or (
                        f"; load the file that has flow: {exit.flow}, or name a loaded flow ({listed(flows)})"
                    )
                    yield Problem(name, (*at, "flow"), f"unknown flow '{exit.flow}'{hint}", at_value=True)
                continue
            other = flows[exit.flow]
            if exit.node is not None and exit.node not in other.nodes:
                hint = did_you_mean(exit.node, other.nodes) or f"; name one of {listed(other.nodes)}"
                yield Problem(
                    name, (*at, "node"), f"flow '{exit.flow}' has no node '{exit.node}'{hint}", at_value=True
                )


def _own(name: str, flow: Flow, skipped: Unchecked) -> Iterator[Problem]:
    """The checks each node type makes of its nodes on their own."""
    scope = Scope(flow.languages, tuple(flow.schedules), skipped.schedules)
    for node_id, node in flow.nodes.items():
        for found in node.problems(scope):
            yield Problem(name, ("nodes", node_id, *found.path), found.message, found.at_value)


def sound_name_problem(name: str) -> str | None:
    """Why `name` cannot be an Asterisk sound name, or None when it can."""
    lowered = name.lower()
    for extension in SOUND_EXTENSIONS:
        if lowered.endswith(extension):
            return f"ends in '{extension}'; name a sound without its extension, Asterisk picks the format"
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "is not a sound name; write one like 'digits/1', without empty, '.' or '..' parts"
    return None


def _prompts(
    name: str, flow: Flow, available: frozenset[str] | None, skipped: Unchecked
) -> Iterator[Problem]:
    languages = flow.languages
    defined = set(flow.prompts) | skipped.prompts
    # where each prompt name is first used, when it is not defined under prompts:
    first_use: dict[str, Path] = {}
    for node_id, node in flow.nodes.items():
        for path, prompt in node_prompts(node):
            at = ("nodes", node_id, *path)
            if prompt in defined:
                continue
            problem = sound_name_problem(prompt)
            if problem is not None:
                yield Problem(name, at, f"prompt '{prompt}' {problem}", at_value=True)
            else:
                first_use.setdefault(prompt, at)
    # prompt -> (where it is defined or first used, language -> file)
    files: dict[str, tuple[Path, dict[str, str]]] = {}
    for prompt, spec in flow.prompts.items():
        at = ("prompts", prompt)
        if isinstance(spec, str):
            problem = sound_name_problem(spec)
            if problem is not None:
                yield Problem(name, at, f"file '{spec}' {problem}", at_value=True)
                continue
            files[prompt] = (at, dict.fromkeys(languages, spec))
            continue
        for language, file in spec.items():
            if language not in languages:
                yield Problem(name, (*at, language), not_a_flow_language(language, flow.languages))
            problem = sound_name_problem(file)
            if problem is not None:
                yield Problem(name, (*at, language), f"file '{file}' {problem}", at_value=True)
        missing = [language for language in languages if language not in spec]
        if missing:
            yield Problem(
                name,
                at,
                f"prompt '{prompt}' has no file for {', '.join(missing)}; add "
                + ", ".join(f"{language}: FILE" for language in missing),
            )
        files[prompt] = (at, {language: spec[language] for language in languages if language in spec})
    for prompt, at in first_use.items():
        files[prompt] = (at, dict.fromkeys(languages, prompt))
    if flow.sounds is None or available is None:
        return
    for prompt, (at, by_language) in files.items():
        lacking = [f"{language}/{file}" for language, file in by_language.items()]
        lacking = [file for file in lacking if file not in available]
        if lacking:
            yield Problem(
                name,
                at,
                f"prompt '{prompt}' is missing from sounds folder '{flow.sounds}': {', '.join(lacking)}",
                at_value=at[0] == "nodes",
            )


# --- reachability and loops --------------------------------------------------------------------------

#: The node types a caller leaves the flow by, as a message names them.
_ENDING_NAMES = "a " + either(unit.TYPE_KEY for unit in REGISTRY if unit.ENDS)


def _graph(
    flows: Mapping[str, Flow], unchecked: Mapping[str, Unchecked], misdirected: set[str]
) -> Iterator[Problem]:
    edges: dict[Vertex, list[Vertex]] = {}
    exits: set[Vertex] = set()
    for name, flow in flows.items():
        for node_id, node in flow.nodes.items():
            here = (name, node_id)
            targets: list[Vertex] = []
            for exit in node.exits():
                if exit.flow is None:
                    if exit.node is not None:
                        targets.append((name, exit.node))
                    continue
                other = flows.get(exit.flow)
                entry = exit.node if exit.node is not None else (other.start if other else "")
                targets.append((exit.flow, entry))
            known = [t for t in targets if t[0] in flows and t[1] in flows[t[0]].nodes]
            edges[here] = known
            # a target that is unknown, or left out by the schema, is reported elsewhere: count it as a
            # way out, so one mistake is not reported again as a trap
            if node.may_end() or len(known) < len(targets):
                exits.add(here)

    roots = [(name, flow.start) for name, flow in flows.items() if flow.start in flow.nodes]
    reached = _reach(roots, lambda v: edges[v])
    for name, flow in flows.items():
        if name in misdirected or unchecked.get(name, Unchecked()).nodes or flow.start not in flow.nodes:
            continue  # a mistake reported already would make nodes look unreachable
        for node_id in flow.nodes:
            if (name, node_id) not in reached:
                yield Problem(
                    name,
                    ("nodes", node_id),
                    f"no path from start '{flow.start}' leads to node '{node_id}'; link it or remove it",
                )

    order = {v: i for i, v in enumerate(edges)}
    still = {v for v in edges if not waits(flows[v[0]].nodes[v[1]])}
    spinning: set[frozenset[Vertex]] = set()  # a set: a large flow may have thousands of loops
    for component in _components(sorted(still, key=order.__getitem__), _within(edges, still)):
        first = min(component, key=order.__getitem__)
        if len(component) == 1 and first not in edges[first]:
            continue
        spinning.add(frozenset(component))
        cycle = _cycle(first, _within(edges, component))
        path = " -> ".join(_label(v, first[0]) for v in cycle)
        yield Problem(
            first[0],
            ("nodes", first[1]),
            f"{path} loop without waiting for the caller, so the call would spin forever; "
            "put a play, menu or collect in the loop",
        )

    backwards: dict[Vertex, list[Vertex]] = {v: [] for v in edges}
    for v, targets in edges.items():
        for t in targets:
            backwards[t].append(v)
    leaving = _reach(exits, lambda v: backwards[v])
    trapped = {v for v in reached if v not in leaving}
    for component in _components(sorted(trapped, key=order.__getitem__), lambda v: edges[v]):
        if any(t not in component for v in component for t in edges[v]) or frozenset(component) in spinning:
            continue  # it leads into a loop reported on its own
        first = min(component, key=order.__getitem__)
        members = ", ".join(_label(v, first[0]) for v in sorted(component, key=order.__getitem__))
        yield Problem(
            first[0],
            ("nodes", first[1]),
            f"the caller can never leave {'node' if len(component) == 1 else 'nodes'} {members}: add a way on "
            f"to {_ENDING_NAMES}",
        )


def _within(edges: Mapping[Vertex, list[Vertex]], inside: set[Vertex]) -> Callable[[Vertex], list[Vertex]]:
    return lambda v: [t for t in edges[v] if t in inside]


def _label(vertex: Vertex, flow: str) -> str:
    return f"'{vertex[1]}'" if vertex[0] == flow else f"'{vertex[1]}' (flow {vertex[0]})"


V = TypeVar("V", bound=Hashable)


def _reach(roots: Iterable[V], following: Callable[[V], Iterable[V]]) -> set[V]:
    seen = set(roots)
    todo = list(seen)
    while todo:
        for nxt in following(todo.pop()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _components(vertices: list[V], following: Callable[[V], Iterable[V]]) -> list[set[V]]:
    """Strongly connected components of the graph on `vertices` (Tarjan's, without recursion)."""
    inside = set(vertices)
    index: dict[V, int] = {}
    low: dict[V, int] = {}
    stack: list[V] = []
    on_stack: set[V] = set()
    found: list[set[V]] = []
    for root in vertices:
        if root in index:
            continue
        work: list[tuple[V, Iterator[V]]] = []
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work.append((root, iter([t for t in following(root) if t in inside])))
        while work:
            v, successors = work[-1]
            for t in successors:
                if t not in index:
                    index[t] = low[t] = len(index)
                    stack.append(t)
                    on_stack.add(t)
                    work.append((t, iter([u for u in following(t) if u in inside])))
                    break
                if t in on_stack:
                    low[v] = min(low[v], index[t])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component: set[V] = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.add(w)
                        if w == v:
                            break
                    found.append(component)
    return found


def _cycle(start: V, following: Callable[[V], Iterable[V]]) -> list[V]:
    """A shortest way from `start` back to itself (breadth first), `start` at both ends."""
    came_from: dict[V, V] = {}
    todo = [start]
    while todo:
        nxt: list[V] = []
        for v in todo:
            for t in following(v):
                if t == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start] if v != start else [start, start]
                if t not in came_from:
                    came_from[t] = v
                    nxt.append(t)
        todo = nxt
    return [start]
