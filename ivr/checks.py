"""Checks of a flow set's graph, beyond what the schema of one file can see.

The models in `ivr.model` check each file's shape; these checks look at how nodes, flows, prompts,
schedules and languages refer to each other: a target that does not exist, a node no caller can reach,
a loop a caller can never leave, a loop the engine would spin in, menu options that collide, prompts
without recordings, a branch on a schedule nobody defined.

Each finding is a `Problem`: the flow, the key path of the offending key and what to fix.
`ivr.loader` turns the path into a file, line and column.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

from ivr.model import (
    NODE_TYPES,
    Branch,
    Callback,
    Collect,
    Condition,
    Flow,
    Goto,
    GotoTarget,
    Hangup,
    Language,
    Lookup,
    Menu,
    NodeBase,
    Play,
    Queue,
    Say,
    SetVariables,
    Transfer,
    Voicemail,
    node_type,
)

Path = tuple[str | int, ...]

#: Node types where the caller leaves the flow: to an agent, a call-back, another phone, a mailbox or
#: nowhere.
ENDINGS: frozenset[str] = frozenset({"hangup", "transfer", "queue", "callback", "voicemail"})

#: Node types that go on at once, without waiting for the caller or for a sound to end.
#: (A `language` node waits only when it offers keys.)
NON_WAITING: frozenset[str] = frozenset({"branch", "set", "goto"})

#: Extensions of sound files Asterisk can play; a prompt names a sound without one.
SOUND_EXTENSIONS: tuple[str, ...] = (".wav", ".gsm", ".ulaw", ".alaw", ".sln", ".sln16", ".g722", ".mp3")

assert set(ENDINGS | NON_WAITING) <= set(NODE_TYPES)


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


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest of `choices`, or nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --- what a node refers to ---------------------------------------------------------------------------


def node_targets(node: NodeBase) -> list[tuple[Path, str]]:
    """The nodes of its own flow `node` may lead to, each with the key path (under the node) naming it.
    A `goto` into another flow is `goto_target`'s."""
    found: list[tuple[Path, str | None]] = []
    match node:
        case Play() | Say() | SetVariables() | Language() | Voicemail():
            found.append((("next",), node.next))
        case Menu():
            found.extend((("options", key), target) for key, target in node.options.items())
            found.append((("failure",), node.failure))
        case Collect():
            found += [(("next",), node.next), (("failure",), node.failure)]
        case Branch():
            found.extend((("branch", i, "goto"), case.goto) for i, case in enumerate(node.branch))
            found.append((("else",), node.else_))
        case Lookup():
            found += [(("next",), node.next), (("fallback",), node.fallback)]
        case Queue():
            found.append((("overflow",), node.overflow))
        case Callback() | Transfer():
            found.append((("failure",), node.failure))
        case Goto() if isinstance(node.goto, str):
            found.append((("goto",), node.goto))
    return [(path, target) for path, target in found if target is not None]


def goto_target(node: NodeBase) -> GotoTarget | None:
    """Where a `goto: {flow: x, node: y}` leads, or None for any other node."""
    if isinstance(node, Goto) and isinstance(node.goto, GotoTarget):
        return node.goto
    return None


def hangs_up_on_failure(node: NodeBase) -> bool:
    """A menu or collect without `failure` hangs up when the caller runs out of tries: a way out."""
    return isinstance(node, Menu | Collect) and node.failure is None


def waits(node: NodeBase) -> bool:
    """Does the node wait for the caller (a key, the end of a sound) before it goes on?"""
    kind = node_type(node)
    if kind == "language":
        return isinstance(node, Language) and not isinstance(node.language, str)
    return kind not in NON_WAITING


def node_prompts(node: NodeBase) -> Iterator[tuple[Path, str]]:
    """Every prompt `node` may play (defaults included), with its key path under the node."""
    fields: list[tuple[Path, tuple[str, ...]]] = []
    match node:
        case Play():
            fields = [(("play",), node.play)]
        case Menu():
            fields = [(("menu",), node.menu), (("invalid",), node.invalid), (("no_input",), node.no_input)]
        case Collect():
            fields = [
                (("prompt",), node.prompt),
                (("invalid",), node.invalid),
                (("no_input",), node.no_input),
            ]
            if node.confirm is not None:
                fields += [
                    (("confirm", "prompt"), node.confirm.prompt),
                    (("confirm", "question"), node.confirm.question),
                ]
        case Say():
            fields = [(("before",), node.before), (("after",), node.after)]
        case Language():
            fields = [(("prompt",), node.prompt)]
        case Queue() if node.queue.callback is not None:
            waiting = node.queue.callback
            fields = [
                (("queue", "callback", "offer"), waiting.offer),
                (("queue", "callback", "confirm"), waiting.confirm),
                (("queue", "callback", "question"), waiting.question),
                (("queue", "callback", "enter_number"), waiting.enter_number),
                (("queue", "callback", "done"), waiting.done),
            ]
        case Callback():
            offer = node.callback
            fields = [
                (("callback", "confirm"), offer.confirm),
                (("callback", "question"), offer.question),
                (("callback", "enter_number"), offer.enter_number),
                (("callback", "done"), offer.done),
            ]
        case Voicemail():
            fields = [(("voicemail", "prompt"), node.voicemail.prompt)]
        case Hangup():
            fields = [(("hangup", "prompt"), node.hangup.prompt)]
    for path, names in fields:
        for i, name in enumerate(names):
            yield (*path, i), name


def conditions(cond: Condition, path: Path) -> Iterator[tuple[Path, Condition]]:
    """`cond` and every condition nested in it (`any`, `all`, `not`), with their key paths."""
    yield path, cond
    for key, nested in (("any", cond.any), ("all", cond.all)):
        for i, sub in enumerate(nested or ()):
            yield from conditions(sub, (*path, key, i))
    if cond.not_ is not None:
        yield from conditions(cond.not_, (*path, "not"))


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
        problems += _collisions(name, flow)
        problems += _prompts(name, flow, sounds.get(name), skipped)
        problems += _conditions(name, flow, skipped)
        problems += _languages(name, flow)
    problems += _graph(flows, unchecked, misdirected)
    return problems


#: At most this many unknown node names of a flow get a did-you-mean.
_MOST_HINTS = 100


def _unknown(kind: str, name: str, known: Iterable[str]) -> str:
    return f"unknown {kind} '{name}'{did_you_mean(name, known)}"


def _targets(
    name: str,
    flow: Flow,
    flows: Mapping[str, Flow],
    skipped: Unchecked,
    failed_flows: frozenset[str] | None,
) -> Iterator[Problem]:
    known = set(flow.nodes) | skipped.nodes
    # a did-you-mean costs a pass over every node: each unknown name gets one, and only the first
    # _MOST_HINTS of them, so that a large flow with many mistakes is still checked in seconds
    hints: dict[str, str] = {}

    def unknown(target: str) -> str:
        if target not in hints:
            hints[target] = _unknown("node", target, known if len(hints) < _MOST_HINTS else ())
        return hints[target]

    if flow.start not in known:
        yield Problem(name, ("start",), unknown(flow.start), at_value=True)
    for node_id, node in flow.nodes.items():
        for path, target in node_targets(node):
            if target not in known:
                yield Problem(name, ("nodes", node_id, *path), unknown(target), at_value=True)
        jump = goto_target(node)
        if jump is None:
            continue
        if jump.flow not in flows:
            if failed_flows is not None and jump.flow not in failed_flows:
                hint = did_you_mean(jump.flow, flows) or f"; no flow file loaded has flow: {jump.flow}"
                yield Problem(
                    name,
                    ("nodes", node_id, "goto", "flow"),
                    f"unknown flow '{jump.flow}'{hint}",
                    at_value=True,
                )
            continue
        other = flows[jump.flow]
        if jump.node is not None and jump.node not in other.nodes:
            yield Problem(
                name,
                ("nodes", node_id, "goto", "node"),
                f"flow '{jump.flow}' has no node '{jump.node}'{did_you_mean(jump.node, other.nodes)}",
                at_value=True,
            )


def _collisions(name: str, flow: Flow) -> Iterator[Problem]:
    for node_id, node in flow.nodes.items():
        if isinstance(node, Menu):
            keys = list(node.options)
            for key in keys:
                at = ("nodes", node_id, "options", key)
                shorter = [other for other in keys if other != key and key.startswith(other)]
                if shorter:
                    yield Problem(
                        name,
                        at,
                        f"option '{key}' starts with option '{shorter[0]}'; give options keys of one length",
                    )
                if node.repeat is not None and key == node.repeat:
                    yield Problem(name, at, f"option '{key}' is also the repeat key; change one of them")
                elif node.repeat is not None and key.startswith(node.repeat):
                    yield Problem(
                        name,
                        at,
                        f"option '{key}' starts with the repeat key '{node.repeat}'; change one of them",
                    )
        if isinstance(node, Collect) and node.confirm is not None and node.confirm.yes == node.confirm.no:
            yield Problem(
                name,
                ("nodes", node_id, "confirm", "no"),
                f"confirm keys yes and no are both '{node.confirm.no}'; make them differ",
            )


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
                yield Problem(name, (*at, language), _not_a_flow_language(language, flow))
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


def _not_a_flow_language(language: str, flow: Flow) -> str:
    return f"language '{language}' is not one of the flow's languages ({', '.join(flow.languages)})"


def _conditions(name: str, flow: Flow, skipped: Unchecked) -> Iterator[Problem]:
    schedules = set(flow.schedules) | skipped.schedules
    for node_id, node in flow.nodes.items():
        if not isinstance(node, Branch):
            continue
        for i, case in enumerate(node.branch):
            for path, cond in conditions(case.if_, ("nodes", node_id, "branch", i, "if")):
                if cond.schedule is not None and cond.schedule not in schedules:
                    hint = did_you_mean(cond.schedule, schedules)
                    if not hint:
                        hint = "; define it under schedules:" if not schedules else ""
                    yield Problem(
                        name, (*path, "schedule"), f"unknown schedule '{cond.schedule}'{hint}", at_value=True
                    )
                if cond.language is not None and cond.language not in flow.languages:
                    yield Problem(
                        name, (*path, "language"), _not_a_flow_language(cond.language, flow), at_value=True
                    )


def _languages(name: str, flow: Flow) -> Iterator[Problem]:
    for node_id, node in flow.nodes.items():
        if not isinstance(node, Language):
            continue
        at = ("nodes", node_id)
        if isinstance(node.language, str):
            if "{" not in node.language and node.language not in flow.languages:
                yield Problem(
                    name, (*at, "language"), _not_a_flow_language(node.language, flow), at_value=True
                )
        else:
            for key, language in node.language.items():
                if language not in flow.languages:
                    yield Problem(
                        name, (*at, "language", key), _not_a_flow_language(language, flow), at_value=True
                    )
        if node.default is not None and node.default not in flow.languages:
            yield Problem(name, (*at, "default"), _not_a_flow_language(node.default, flow), at_value=True)


# --- reachability and loops --------------------------------------------------------------------------


def _graph(
    flows: Mapping[str, Flow], unchecked: Mapping[str, Unchecked], misdirected: set[str]
) -> Iterator[Problem]:
    edges: dict[Vertex, list[Vertex]] = {}
    exits: set[Vertex] = set()
    for name, flow in flows.items():
        for node_id, node in flow.nodes.items():
            here = (name, node_id)
            targets = [(name, target) for _, target in node_targets(node)]
            jump = goto_target(node)
            if jump is not None:
                other = flows.get(jump.flow)
                entry = jump.node if jump.node is not None else (other.start if other else "")
                targets.append((jump.flow, entry))
            known = [t for t in targets if t[0] in flows and t[1] in flows[t[0]].nodes]
            edges[here] = known
            # a target that is unknown, or left out by the schema, is reported elsewhere: count it as a
            # way out, so one mistake is not reported again as a trap
            if node_type(node) in ENDINGS or hangs_up_on_failure(node) or len(known) < len(targets):
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
            "to a hangup, transfer, queue, callback or voicemail",
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
