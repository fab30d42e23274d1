"""Read flow files: YAML text in, a validated `Flow` with a position for every key out, or every
mistake as a `FlowError` an admin can act on.

The YAML is read by `yamlfile.read_yaml`, like the service config and the routing file: keys as written
(`01` and `1` are two menu options), YAML 1.2 core values (`no` is the word no), digits with a leading
zero kept as written (`extension: 0100`), and a line and column for each key path. Schema errors are
worded by `yamlfile.Schema`, with the flow's own patterns and node types:
``flows/main.yaml:13:5: nodes.queue.timout: unknown key 'timout'; did you mean 'timeout'?``. The graph
checks of `ivr.checks` run too, on whatever part of the file the schema accepted, so one run reports
everything.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ivr.checks import Problem, Unchecked, check_flows
from ivr.errors import FlowError, FlowErrors
from ivr.flowset import FlowSet
from ivr.model import (
    NODE_TYPES,
    Flow,
    Key,
    Keys,
    LanguageCode,
    NodeId,
    PromptName,
    VariableName,
)
from yamlfile import (
    Document,
    Issue,
    Limits,
    Position,
    Positions,
    Schema,
    Walk,
    core_value,
    describe,
    read_yaml,
    type_pattern,
)
from yamlfile.schema import data_at, is_model, keys_of, strip, tag_of

__all__ = [
    "ParsedFlow",
    "Position",
    "Positions",
    "core_value",
    "describe",
    "load_flows",
    "load_flowset",
    "parse_flow",
    "parse_yaml",
    "position_of",
    "read_flow_yaml",
]

#: How a flow file may be too big, and how to make it smaller.
LIMITS = Limits(split="split it into flows joined with goto: {flow: NAME}")


@dataclass(frozen=True)
class ParsedFlow:
    """A flow that passed every check, with where each of its keys is written."""

    filename: str
    flow: Flow
    positions: Positions

    def position(self, path: str | Sequence[str | int]) -> Position:
        """Where `path` (`("nodes", "main", "options", "1")` or `"nodes.main.options.1"`) is written."""
        return position_of(self, path)


def position_of(parsed: ParsedFlow, path: str | Sequence[str | int]) -> Position:
    """Where a key path of a loaded flow is written, for tools that point an admin at a node."""
    if isinstance(path, str):
        path = parsed.positions.find(path)
    return parsed.positions.of(path)


# --- public API --------------------------------------------------------------------------------------


def parse_flow(text: str, filename: str, *, sounds: frozenset[str] | None = None) -> ParsedFlow:
    """Read one flow file on its own: its schema and its graph (a `goto` into another flow is not
    checked). `sounds` lists its sounds folder as `language/name`. Raises FlowErrors."""
    read = _read(text, filename)
    errors = list(read.errors)
    if read.checked is not None:
        name = read.checked.flow
        found = check_flows(
            {name: read.checked},
            sounds=None if sounds is None else {name: sounds},
            unchecked={name: read.unchecked},
            failed_flows=None,
        )
        errors += (_positioned(filename, read.positions, problem) for problem in found)
    if errors or read.flow is None:
        raise FlowErrors(dict.fromkeys(errors))
    return ParsedFlow(filename, read.flow, read.positions)


def load_flows(
    sources: Mapping[str, str],
    *,
    sounds: Mapping[str, frozenset[str]] | None = None,
    documents: Mapping[str, Document] | None = None,
) -> dict[str, ParsedFlow]:
    """Read a set of flow files (file name -> text) that may `goto` each other, keyed by flow name.

    Each file is checked on its own, then the set as a whole; `sounds` lists, per flow name, the
    files in its `sounds:` folder as `language/name`. `documents` holds files the caller has already
    read with `read_flow_yaml` (a large file is not read twice). Raises FlowErrors with every mistake of
    every file.
    """
    errors: list[FlowError] = []
    reads: dict[str, _Read] = {}
    owners: dict[str, str] = {}
    failed: set[str] = set()
    unnamed = False
    for filename, text in sources.items():
        read = _read(text, filename, document=(documents or {}).get(filename))
        errors += read.errors
        if read.name is None:
            unnamed = True
            continue
        if read.name in owners:
            errors.append(
                FlowError(
                    filename,
                    *read.positions.of(("flow",), value=True),
                    "flow",
                    f"flow '{read.name}' is also in {owners[read.name]}; give each flow its own name",
                )
            )
            continue
        owners[read.name] = filename
        if read.checked is None:
            failed.add(read.name)
        else:
            reads[read.name] = read
    found = check_flows(
        {name: read.checked for name, read in reads.items() if read.checked is not None},
        sounds=sounds,
        unchecked={name: read.unchecked for name, read in reads.items()},
        failed_flows=None if unnamed else frozenset(failed),
    )
    for problem in found:
        read = reads[problem.flow]
        errors.append(_positioned(read.filename, read.positions, problem))
    if errors:
        raise FlowErrors(dict.fromkeys(errors))
    parsed: dict[str, ParsedFlow] = {}
    for name, read in reads.items():
        assert read.flow is not None
        parsed[name] = ParsedFlow(read.filename, read.flow, read.positions)
    return parsed


def load_flowset(
    sources: Mapping[str, str], *, sounds: Mapping[str, frozenset[str]] | None = None
) -> FlowSet:
    """`load_flows`, as the frozen set of flows calls run on."""
    parsed = load_flows(sources, sounds=sounds)
    return FlowSet(
        flows={name: p.flow for name, p in parsed.items()},
        sources={name: p.filename for name, p in parsed.items()},
    )


def read_flow_yaml(text: str, filename: str) -> Document:
    """The YAML of a flow file as `yamlfile` reads it, within a flow file's limits."""
    return read_yaml(text, filename, limits=LIMITS)


def parse_yaml(text: str, filename: str) -> tuple[Any, Positions]:
    """The plain values of a flow file (keys as written, YAML 1.2 core values) and where each key is
    written, before any schema; for tools that need a key or two of a file that may be broken. Raises
    FlowErrors for mistakes in the YAML itself."""
    read = _read(text, filename, validate=False)
    if read.errors:
        raise FlowErrors(read.errors)
    return read.data, read.positions


def _positioned(filename: str, positions: Positions, problem: Problem) -> FlowError:
    line, column = positions.of(problem.path, value=problem.at_value)
    return FlowError(filename, line, column, positions.shown(problem.path), problem.message)


# --- one file ----------------------------------------------------------------------------------------


@dataclass
class _Read:
    filename: str
    positions: Positions
    errors: list[FlowError]
    #: the flow's name, when the file gets as far as naming one
    name: str | None = None
    #: the flow, when the file has no mistake in its YAML or schema
    flow: Flow | None = None
    #: the flow the graph checks can look at: the whole flow, or what is left of it without the parts the
    #: schema rejected
    checked: Flow | None = None
    unchecked: Unchecked = field(default_factory=Unchecked)
    #: the plain values of the file
    data: Any = None


def _read(text: str, filename: str, *, validate: bool = True, document: Document | None = None) -> _Read:
    if document is None:
        document = read_flow_yaml(text, filename)
    if document.empty:
        return _Read(
            filename,
            Positions({}),
            [FlowError(filename, 1, 1, "", "the file is empty; a flow needs flow:, start: and nodes:")],
        )
    if not document.readable:
        return _Read(filename, document.positions, list(document.problems))
    data, positions = document.data, document.positions
    read = _Read(filename, positions, list(document.problems), data=data)
    if not validate:
        return read
    if isinstance(data, dict) and isinstance(data.get("flow"), str):
        read.name = data["flow"].strip()
    try:
        flow = Flow.model_validate(data)
    except ValidationError as e:
        issues = SCHEMA.issues(e, data)
        read.errors += (issue.problem(filename, positions) for issue in issues)
        read.checked, read.unchecked = _without(data, issues)
        return read
    read.checked = flow
    if not read.errors:
        read.flow = flow
    return read


# --- schema errors: the flow's own words -------------------------------------------------------------

#: What a value matching each of the flow's patterns is called, and how to write one.
PATTERNS: dict[str, tuple[str, str]] = {
    type_pattern(NodeId): ("a node name", "use letters, digits, _ and -, starting with a letter or _"),
    type_pattern(VariableName): ("a variable name", "use letters, digits and _, starting with a letter or _"),
    type_pattern(PromptName): ("a prompt name", "use letters, digits, _, -, . and /"),
    type_pattern(Keys): ("a key sequence", "use 1 to 8 of the keys 0-9, * and # ('#' and '*' in quotes)"),
    type_pattern(Key): ("a key", "use one of 0-9, * and # ('#' and '*' in quotes)"),
    type_pattern(LanguageCode): ("a language code", "use a code such as en, pl or pt-BR"),
    r"^[0-9*#+A-Za-z_\-]+$": ("an extension", "use digits, letters, *, #, +, _ and -"),
    r"^[A-Za-z0-9_\-@]+$": ("a mailbox", "use letters, digits, _, - and @"),
}


def _node_models() -> dict[str, type[BaseModel]]:
    """Node type -> its model, read from the tagged union of `Flow.nodes`."""
    info = Flow.model_fields["nodes"]
    node, _ = strip(get_args(info.annotation)[1], [])
    found: dict[str, type[BaseModel]] = {}
    for member in get_args(node):
        tag, model = tag_of(member), strip(member, [])[0]
        if tag is not None and is_model(model):
            found[tag] = model
    return found


_NODE_MODELS = _node_models()


def _node_type_message(value: Any) -> str:
    types_list = ", ".join(NODE_TYPES)
    if not isinstance(value, dict):
        return (
            f"expected a node (a mapping with one type key), got {describe(value)}; write one of {types_list}"
        )
    present = [key for key in NODE_TYPES if key in value]
    if len(present) > 1:
        named = ", ".join(f"'{key}'" for key in present[:-1]) + f" and '{present[-1]}'"
        return f"a node needs exactly one type key, not {named}; split it into {len(present)} nodes"
    for key in value:
        close = difflib.get_close_matches(str(key), NODE_TYPES, n=1, cutoff=0.6)
        if close:
            return f"a node needs exactly one type key: {types_list}; did you mean '{close[0]}' for '{key}'?"
    return f"a node needs exactly one type key; add one of {types_list}"


def _hook(error: ErrorDetails, walk: Walk) -> str | None:
    if error["type"] == "node_type":
        return _node_type_message(error.get("input"))
    return None


def _key_hint(key: str, model: type[BaseModel]) -> str | None:
    """For a node: the key belongs in its type's own mapping (`max_wait` under `queue:`), or to another
    node type."""
    if model not in _NODE_MODELS.values():
        return None
    for name, info in model.model_fields.items():
        inner, _ = strip(info.annotation, [])
        if is_model(inner) and key in keys_of(inner):
            return f"; put it under '{info.alias or name}:'"
    others = {kind: keys_of(other) for kind, other in _NODE_MODELS.items() if other is not model}
    close = difflib.get_close_matches(key, sorted({k for keys in others.values() for k in keys}), n=1)
    if not close:
        return None
    having = [kind for kind, keys in others.items() if close[0] in keys]
    kinds = ", ".join(having[:-1]) + " and " + having[-1] if len(having) > 1 else having[0]
    if close[0] == key:
        return f"; only {kinds} nodes have it, remove it here"
    return f"; did you mean '{close[0]}'? only {kinds} nodes have it"


SCHEMA = Schema(
    Flow,
    document="a flow file is a mapping with flow:, start: and nodes:",
    patterns=PATTERNS,
    hook=_hook,
    key_hint=_key_hint,
)


# --- what the graph checks can still look at ---------------------------------------------------------

#: Parts of a flow that can be left out, so the rest is checked: a node, a schedule, a prompt, a variable.
_SEPARABLE = ("nodes", "schedules", "prompts", "variables")
#: Keys of a flow whose value can be dropped for its default without other checks going astray (without
#: its prompts or schedules, a flow would seem to name unknown ones).
_OPTIONAL = ("description", "sounds", "variables")


def _without(data: Any, issues: Iterable[Issue]) -> tuple[Flow | None, Unchecked]:
    """The flow without the parts the schema rejected (for the graph checks), and what was left out;
    None when the flow cannot stand without them (a bad `start`, `languages` or `nodes`)."""
    if not isinstance(data, dict):
        return None, Unchecked()
    data = copy.deepcopy(data)
    left_out: dict[str, set[str]] = {key: set() for key in _SEPARABLE}
    for issue in issues:
        path = issue.path
        if issue.unknown_key:
            _delete(data, path)
        elif len(path) >= 2 and path[0] in _SEPARABLE and isinstance(path[1], str):
            _delete(data, path[:2])
            left_out[str(path[0])].add(path[1])
        elif len(path) >= 1 and path[0] in _OPTIONAL:
            _delete(data, path[:1])
        else:
            return None, Unchecked()
    try:
        flow = Flow.model_validate(data)
    except ValidationError:
        return None, Unchecked()
    unchecked = Unchecked(
        nodes=frozenset(left_out["nodes"]),
        schedules=frozenset(left_out["schedules"]),
        prompts=frozenset(left_out["prompts"]),
    )
    return flow, unchecked


def _delete(data: Any, path: Sequence[str | int]) -> None:
    parent = data_at(data, path[:-1]) if len(path) > 1 else data
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
