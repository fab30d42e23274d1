"""Read flow files: YAML 1.2 text in, a validated `Flow` with a position for every key out, or every
mistake as a `FlowError` an admin can act on.

The text is composed, not loaded, with ruamel.yaml: the node graph keeps each key's source text and
start mark, so values are built here under rules an admin can predict. A key is always its text as
written (`01` and `1` are two menu options), a value follows the YAML 1.2 core schema (`no` is the word
no, `2026-12-25` is text until a model reads it as a date), and each key path gets its line and column.

Pydantic's errors then become messages in the admin's words, positioned at the offending key or value:
``flows/main.yaml:13:5: nodes.queue.timout: unknown key 'timout' (did you mean 'timeout'?)``. The graph
checks of `ivr.checks` run too, on whatever part of the file the schema accepted, so one run reports
everything.
"""

from __future__ import annotations

import copy
import difflib
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin

from pydantic import BaseModel, Discriminator, Tag, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ivr.checks import Problem, Unchecked, check_flows, did_you_mean
from ivr.errors import FlowError, FlowErrors
from ivr.flowset import FlowSet
from ivr.model import (
    NODE_TYPES,
    Flow,
    Key,
    Keys,
    LanguageCode,
    Name,
    NodeId,
    PromptName,
    VariableName,
)

Path = tuple[str | int, ...]

#: A flow file may not expand (through aliases) to more values than this.
MAX_VALUES = 100_000
#: Nor nest deeper than this.
MAX_DEPTH = 100


class Position(NamedTuple):
    """1-based line and column in a flow file."""

    line: int
    column: int


@dataclass(frozen=True)
class Positions:
    """Where each key path of a flow file is written: its key and, for a scalar, its value."""

    keys: Mapping[Path, Position]
    values: Mapping[Path, Position] = field(default_factory=dict)

    def of(self, path: Sequence[str | int], *, value: bool = False) -> Position:
        """The position of `path` (of its value with `value`, when it has one of its own); a path the
        file does not hold (a missing key) is placed at its closest enclosing key."""
        path = tuple(path)
        while path:
            if value and path in self.values:
                return self.values[path]
            if path in self.keys:
                return self.keys[path]
            path = path[:-1]
        return self.keys.get((), Position(1, 1))

    def shown(self, path: Sequence[str | int]) -> str:
        """`path` as dotted text, without list indexes the file does not hold (`play: hi` is read as a
        list of one prompt, but the file has no `play.0`)."""
        path = tuple(path)
        while path and isinstance(path[-1], int) and path not in self.keys:
            path = path[:-1]
        return ".".join(str(part) for part in path)

    def find(self, dotted: str) -> Path:
        """The key path a dotted path such as `nodes.main.options.1` stands for in this file."""
        path: Path = ()
        for part in dotted.split(".") if dotted else ():
            if (
                (*path, part) not in self.keys
                and part.lstrip("-").isdigit()
                and (*path, int(part)) in self.keys
            ):
                path = (*path, int(part))
            else:
                path = (*path, part)
        return path


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
    sources: Mapping[str, str], *, sounds: Mapping[str, frozenset[str]] | None = None
) -> dict[str, ParsedFlow]:
    """Read a set of flow files (file name -> text) that may `goto` each other, keyed by flow name.

    Each file is checked on its own, then the set as a whole; `sounds` lists, per flow name, the
    files in its `sounds:` folder as `language/name`. Raises FlowErrors with every mistake of every
    file.
    """
    errors: list[FlowError] = []
    reads: dict[str, _Read] = {}
    owners: dict[str, str] = {}
    failed: set[str] = set()
    unnamed = False
    for filename, text in sources.items():
        read = _read(text, filename)
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


def _read(text: str, filename: str, *, validate: bool = True) -> _Read:
    try:
        root = _compose(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        return _Read(filename, Positions({}), [FlowError(filename, line, column, "", _syntax_message(e))])
    except YAMLError as e:  # pragma: no cover - ruamel raises marked errors for what a file can hold
        return _Read(filename, Positions({}), [FlowError(filename, 1, 1, "", f"invalid YAML: {e}")])
    if root is None:
        return _Read(
            filename,
            Positions({}),
            [FlowError(filename, 1, 1, "", "the file is empty; a flow needs flow:, start: and nodes:")],
        )
    builder = _Builder(filename)
    try:
        data = builder.build(root, ())
    except _TooBig:
        return _Read(filename, builder.positions(), builder.errors[:1])
    positions = builder.positions()
    read = _Read(filename, positions, list(dict.fromkeys(builder.errors)), data=data)
    if not validate:
        return read
    if isinstance(data, dict) and isinstance(data.get("flow"), str):
        read.name = data["flow"].strip()
    try:
        flow = Flow.model_validate(data)
    except ValidationError as e:
        issues = _issues(e, data)
        read.errors += (_issue_error(filename, positions, issue) for issue in issues)
        read.checked, read.unchecked = _without(data, issues)
        return read
    read.checked = flow
    if not read.errors:
        read.flow = flow
    return read


def _compose(text: str) -> Node | None:
    yaml = YAML(typ="rt")
    yaml.version = (1, 2)
    yaml.max_depth = MAX_DEPTH
    # YAML lets an anchor be defined again (later aliases see the new one); ruamel would warn.
    yaml.composer.warn_double_anchors = False
    node: Node | None = yaml.compose(text)
    return node


def _syntax_message(e: MarkedYAMLError) -> str:
    problem = str(e.problem or "").strip() or "cannot be read"
    if "'\\t'" in problem:
        return "invalid YAML: a tab cannot indent YAML; indent with spaces"
    if problem.startswith("maximum depth"):
        return f"invalid YAML: nested more than {MAX_DEPTH} levels deep"
    message = f"invalid YAML: {problem}"
    if e.context and e.context_mark is not None and e.context_mark is not e.problem_mark:
        message += f" ({e.context} at line {e.context_mark.line + 1})"
    return message


# --- YAML nodes to plain values ----------------------------------------------------------------------

_NULL = re.compile(r"~|null|Null|NULL|")
_BOOLEANS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+")
_OCTAL = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INFINITY = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")


def core_value(text: str) -> Any:
    """A plain scalar under the YAML 1.2 core schema: null, true/false, an integer, a float, or text."""
    if _NULL.fullmatch(text):
        return None
    if text in _BOOLEANS:
        return _BOOLEANS[text]
    if _INT.fullmatch(text):
        return int(text, 10)
    if _OCTAL.fullmatch(text):
        return int(text[2:], 8)
    if _HEX.fullmatch(text):
        return int(text[2:], 16)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INFINITY.fullmatch(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.fullmatch(text):
        return float("nan")
    return text


class _TooBig(Exception):
    pass


def _at(node: Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _explicit_tag(node: Node) -> str | None:
    """The tag written in the file (`!!str`, `!custom`), or None when the value's tag was resolved."""
    tag = node.ctag
    handle = getattr(tag, "handle", None)
    if handle is None:
        return None
    return f"{handle}{getattr(tag, 'suffix', '')}"


class _Builder:
    """Builds plain values from a composed node graph, recording positions and mistakes."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.keys: dict[Path, Position] = {}
        self.values: dict[Path, Position] = {}
        self.errors: list[FlowError] = []
        self.count = 0
        self.active: set[int] = set()
        self.reported: set[tuple[Position, str]] = set()

    def positions(self) -> Positions:
        return Positions(self.keys, self.values)

    def error(self, where: Position, path: Path, message: str) -> None:
        """Note a mistake once, even when aliases bring the same node in at several paths."""
        if (where, message) not in self.reported:
            self.reported.add((where, message))
            self.errors.append(FlowError(self.filename, *where, ".".join(map(str, path)), message))

    def build(self, node: Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            self.errors[:] = [
                FlowError(
                    self.filename,
                    *_at(node),
                    "",
                    f"the file holds more than {MAX_VALUES} values; are aliases (*name) repeating each other?",
                )
            ]
            raise _TooBig
        if not path:
            self.keys[()] = _at(node)
        if id(node) in self.active:
            self.error(_at(node), path, "an alias (*name) stands for a mapping or list that holds it")
            return None
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        tag = _explicit_tag(node)
        if tag is not None and tag not in ("!!map", "!!seq"):
            self.error(_at(node), path, f"unknown tag '{tag}'; flow files use plain YAML values")
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return self.sequence(node, path)
            assert isinstance(node, MappingNode)
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def scalar(self, node: ScalarNode, path: Path) -> Any:
        text: str = node.value
        tag = _explicit_tag(node)
        if tag is None:
            return core_value(text) if node.style is None else text
        kind = tag.removeprefix("!!")
        if kind == "str" and tag.startswith("!!"):
            return text
        if kind in ("int", "float", "bool", "null") and tag.startswith("!!"):
            value = core_value(text)
            wanted: dict[str, tuple[type, ...]] = {
                "int": (int,),
                "float": (float, int),
                "bool": (bool,),
                "null": (type(None),),
            }
            if isinstance(value, wanted[kind]) and not (kind != "bool" and isinstance(value, bool)):
                return float(str(value)) if kind == "float" else value
            self.error(_at(node), path, f"'{text}' is not a valid {tag}")
            return text
        self.error(_at(node), path, f"unknown tag '{tag}'; flow files use plain YAML values")
        return text

    def sequence(self, node: SequenceNode, path: Path) -> list[Any]:
        items: list[Any] = []
        for i, item in enumerate(node.value):
            self.keys[(*path, i)] = _at(item)
            if isinstance(item, ScalarNode):
                self.values[(*path, i)] = _at(item)
            items.append(self.build(item, (*path, i)))
        return items

    def mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        own: dict[str, tuple[Node, Node]] = {}
        order: list[str | Node] = []  # keys, and the values of merge keys (`<<: *defaults`) where they stand
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == "<<" and key.style is None:
                order.append(value)
                continue
            if not isinstance(key, ScalarNode):
                self.error(_at(key), path, "a key must be plain text, not a list or mapping")
                continue
            text: str = key.value
            if text in own:
                self.error(
                    _at(key),
                    (*path, text),
                    f"duplicate key '{text}' (first at line {_at(own[text][0]).line})",
                )
                continue
            own[text] = (key, value)
            order.append(text)
        merged: dict[int, dict[str, Any]] = {}
        for item in order:
            if not isinstance(item, str):
                merged[id(item)] = self.merge(item, path)
        result: dict[str, Any] = {}
        for item in order:
            if isinstance(item, str):
                key, value = own[item]
                self.keys[(*path, item)] = _at(key)
                # a value's own position is kept for text, numbers and the like; an empty value has none
                if isinstance(value, ScalarNode) and (value.value != "" or value.style is not None):
                    self.values[(*path, item)] = _at(value)
                else:
                    self.values.pop((*path, item), None)
                result[item] = self.build(value, (*path, item))
            else:
                for text, built in merged[id(item)].items():
                    if text not in own:
                        result.setdefault(text, built)
        return result

    def merge(self, node: Node, path: Path) -> dict[str, Any]:
        """The keys a merge key (`<<: *defaults` or `<<: [*a, *b]`) brings in; earlier sources win."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in sources:
            if not isinstance(source, MappingNode):
                self.error(_at(source), path, "'<<' merges a mapping (*name) or a list of them")
                continue
            for text, value in self.build(source, path).items():
                merged.setdefault(text, value)
        return merged


# --- schema errors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Issue:
    """A schema error in the admin's words, before it is positioned."""

    path: Path
    message: str
    kind: Literal["key", "value", "missing"]
    #: an unknown key, which the graph checks can simply leave out
    unknown_key: bool = False


@dataclass
class _Walk:
    """Where a pydantic error location leads in the flow file and in the models."""

    path: list[str | int] = field(default_factory=list)
    #: the type expected at the end, with its Annotated metadata
    leaf: Any = None
    meta: list[Any] = field(default_factory=list)
    #: the model whose keys the last step named
    model: type[BaseModel] | None = None
    #: the error is about a mapping's key, not its value
    on_key: bool = False
    #: the first union on the way: where it stands, its members, and the member the error is about
    union: tuple[Path, tuple[Any, ...], Any] | None = None


def _strip(tp: Any, meta: list[Any]) -> tuple[Any, list[Any]]:
    """`tp` without Annotated (its metadata joins `meta`) and without `| None`."""
    while True:
        if get_origin(tp) is Annotated:
            meta = [*meta, *tp.__metadata__]
            tp = tp.__origin__
            continue
        if get_origin(tp) in (Union, types.UnionType):
            members = [m for m in get_args(tp) if m is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
            if len(members) < len(get_args(tp)):
                tp = Union[tuple(members)]  # noqa: UP007 - built from a list
                continue
        return tp, meta


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _tag_of(member: Any) -> str | None:
    if get_origin(member) is Annotated:
        for item in member.__metadata__:
            if isinstance(item, Tag):
                return item.tag
    return None


def _member(label: str, members: Sequence[Any]) -> Any:
    """The union member pydantic names `label` in an error location ('constrained-str', 'GotoTarget')."""
    for member in members:
        base, _ = _strip(member, [])
        origin = get_origin(base)
        if (
            (_is_model(base) and label == base.__name__)
            or (origin is dict and label.startswith("dict["))
            or (origin in (tuple, list) and label.startswith(("tuple[", "list[")))
            or (base in (int, float, bool) and label == base.__name__)
        ):
            return member
    for member in members:
        if _strip(member, [])[0] is str and label in ("str", "constrained-str"):
            return member
    return None


def _field(model: type[BaseModel], key: str) -> FieldInfo | None:
    for name, info in model.model_fields.items():
        if (info.alias or name) == key:
            return info
    return None


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _node_models() -> dict[str, type[BaseModel]]:
    """Node type -> its model, read from the tagged union of `Flow.nodes`."""
    info = Flow.model_fields["nodes"]
    node, _ = _strip(get_args(info.annotation)[1], [])
    found: dict[str, type[BaseModel]] = {}
    for member in get_args(node):
        tag, model = _tag_of(member), _strip(member, [])[0]
        if tag is not None and _is_model(model):
            found[tag] = model
    return found


_NODE_MODELS = _node_models()


def _unknown_key_hint(key: str, model: type[BaseModel] | None) -> str:
    """Did-you-mean for an unknown key: a key of the same mapping; for a node, also a key of its type's
    own mapping (`max_wait` belongs under `queue:`) or of another node type."""
    if model is None:
        return ""
    hint = did_you_mean(key, _keys_of(model))
    if hint or model not in _NODE_MODELS.values():
        return hint
    for name, info in model.model_fields.items():
        inner, _ = _strip(info.annotation, [])
        if _is_model(inner) and key in _keys_of(inner):
            return f" (did you mean to put it under '{info.alias or name}:'?)"
    others = {kind: _keys_of(other) for kind, other in _NODE_MODELS.items() if other is not model}
    close = difflib.get_close_matches(key, sorted({k for keys in others.values() for k in keys}), n=1)
    if not close:
        return ""
    having = [kind for kind, keys in others.items() if close[0] in keys]
    kinds = ", ".join(having[:-1]) + " and " + having[-1] if len(having) > 1 else having[0]
    if close[0] == key:
        return f" (only {kinds} nodes have it)"
    return f" (did you mean '{close[0]}'? only {kinds} nodes have it)"


def _walk(loc: Sequence[str | int]) -> _Walk:
    walk = _Walk(leaf=Flow)
    tp: Any = Flow
    meta: list[Any] = []
    items = list(loc)
    i = 0
    while i < len(items):
        element = items[i]
        tp, meta = _strip(tp, meta)
        if any(isinstance(m, Discriminator) for m in meta) and _is_union(tp):
            tagged = [m for m in get_args(tp) if _tag_of(m) == element]
            if not tagged:
                walk.path += items[i:]
                tp = None
                break
            tp, meta, i = tagged[0], [], i + 1
            continue
        if _is_union(tp):
            members = get_args(tp)
            chosen = _member(str(element), members)
            if walk.union is None:
                walk.union = (tuple(walk.path), members, chosen)
            if chosen is None:
                tp = None
                break
            tp, meta, i = chosen, [], i + 1
            continue
        if _is_model(tp):
            walk.model = tp
            walk.path.append(element)
            info = _field(tp, str(element))
            if info is None:
                walk.path += items[i + 1 :]
                tp = None
                break
            tp, meta, i = info.annotation, list(info.metadata), i + 1
            continue
        origin = get_origin(tp)
        if origin is dict:
            key_type, value_type = get_args(tp)
            walk.path.append(element)
            if i + 1 < len(items) and items[i + 1] == "[key]":
                walk.on_key = True
                tp, meta, i = key_type, [], i + 2
            else:
                tp, meta, i = value_type, [], i + 1
            continue
        if origin in (tuple, list):
            walk.path.append(element)
            tp, meta, i = get_args(tp)[0], [], i + 1
            continue
        walk.path += items[i:]
        break
    if tp is not None:
        tp, meta = _strip(tp, meta)
    walk.leaf, walk.meta = tp, meta
    return walk


def _pattern(meta: Iterable[Any]) -> str | None:
    for item in meta:
        if isinstance(item, FieldInfo):
            found = _pattern(item.metadata)
            if found:
                return found
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            return pattern
    return None


def _pattern_of(annotated: Any) -> str:
    found = _pattern(_strip(annotated, [])[1])
    assert found is not None, annotated
    return found


#: What a value matching a pattern is called, and how to write one.
_PATTERNS: dict[str, tuple[str, str]] = {
    _pattern_of(NodeId): ("a node name", "use letters, digits, _ and -, starting with a letter or _"),
    _pattern_of(VariableName): ("a variable name", "use letters, digits and _, starting with a letter or _"),
    _pattern_of(PromptName): ("a prompt name", "use letters, digits, _, -, . and /"),
    _pattern_of(Keys): ("a key sequence", "use 1 to 8 of the keys 0-9, * and #"),
    _pattern_of(Key): ("a key", "use one of 0-9, * and #"),
    _pattern_of(Name): ("a name", "use letters, digits, _ and -"),
    _pattern_of(LanguageCode): ("a language code", "use a code such as en, pl or pt-BR"),
    r"^https?://": ("a web address", "start it with http:// or https://"),
    r"^[A-Za-z]+/.+$": ("an endpoint", "write it as TECHNOLOGY/NAME, e.g. PJSIP/agent1"),
    r"^\+?[0-9]{2,20}$": ("a phone number", "use 2 to 20 digits with an optional leading +"),
    r"^[0-9*#+A-Za-z_\-]+$": ("an extension", "use digits, letters, *, #, +, _ and -"),
    r"^[A-Za-z0-9_\-@]+$": ("a mailbox", "use letters, digits, _, - and @"),
}


def _expected(tp: Any, meta: list[Any]) -> str:
    """What a value of type `tp` is called in a message: 'a node name', 'a number', 'a mapping'."""
    tp, meta = _strip(tp, meta)
    if tp is str:
        pattern = _pattern(meta)
        return _PATTERNS[pattern][0] if pattern in _PATTERNS else "text"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "a whole number"
    if tp is float:
        return "a number"
    if tp is datetime:
        return "a date and time such as 2026-12-24 12:00"
    if tp is date:
        return "a date such as 2026-12-24"
    if _is_model(tp) or get_origin(tp) is dict:
        return "a mapping"
    if get_origin(tp) in (tuple, list):
        return "a list"
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(f"'{v}'" for v in get_args(tp))
    if _is_union(tp):
        names = list(dict.fromkeys(_expected(m, []) for m in get_args(tp)))
        names = ["a number" if n == "a whole number" and "a number" in names else n for n in names]
        names = list(dict.fromkeys("true/false" if n == "true or false" else n for n in names))
        return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    return "a value"


def describe(value: Any) -> str:
    """A value as a message shows it: 'five', 5, true, a list, a mapping, nothing."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return f"'{value}'" if len(value) <= 40 else f"'{value[:37]}...'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _node_type_message(value: Any) -> str:
    types_list = ", ".join(NODE_TYPES)
    if not isinstance(value, dict):
        return f"a node needs exactly one type key: {types_list}; got {describe(value)}"
    present = [key for key in NODE_TYPES if key in value]
    if len(present) > 1:
        named = ", ".join(f"'{key}'" for key in present[:-1]) + f" and '{present[-1]}'"
        return f"a node needs exactly one type key, not {named}; split it into {len(present)} nodes"
    for key in value:
        close = difflib.get_close_matches(str(key), NODE_TYPES, n=1, cutoff=0.6)
        if close:
            return f"a node needs exactly one type key: {types_list} (did you mean '{close[0]}' for '{key}'?)"
    return f"a node needs exactly one type key: {types_list}"


_TYPE_ERRORS: dict[str, Any] = {
    "string_type": str,
    "int_type": int,
    "int_parsing": int,
    "int_from_float": int,
    "float_type": float,
    "float_parsing": float,
    "bool_type": bool,
    "bool_parsing": bool,
    "dict_type": dict,
    "model_type": dict,
    "model_attributes_type": dict,
    "tuple_type": tuple,
    "list_type": list,
}


def _message(error: ErrorDetails, walk: _Walk) -> str:
    kind: str = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    path = walk.path
    if kind == "missing":
        return f"required key '{path[-1]}' is missing"
    if kind == "extra_forbidden":
        return f"unknown key '{path[-1]}'{_unknown_key_hint(str(path[-1]), walk.model)}"
    if kind == "node_type":
        return _node_type_message(value)
    if kind in ("value_error", "assertion_error"):
        cause = ctx.get("error")
        return str(cause) if cause is not None else str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        if pattern in _PATTERNS:
            noun, how = _PATTERNS[pattern]
            return f"{describe(value)} is not {noun}; {how}"
        return f"{describe(value)} does not match the pattern {pattern}"
    if kind in _TYPE_ERRORS:
        if not path and kind == "model_type":
            return f"a flow file is a mapping with flow:, start: and nodes:; got {describe(value)}"
        expected = _expected(walk.leaf, walk.meta) if walk.leaf is not None else "a value"
        if expected == "a value":
            expected = _expected(_TYPE_ERRORS[kind], [])
        return f"expected {expected}, got {describe(value)}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"is longer than {ctx.get('max_length')} characters"
    if kind == "too_short":
        needed = ctx.get("min_length", 1)
        return "must not be empty" if needed == 1 else f"needs at least {needed} entries"
    if kind == "too_long":
        return f"has {ctx.get('actual_length')} entries; at most {ctx.get('max_length')} are allowed"
    bounds = {
        "greater_than": ("more than", "gt"),
        "greater_than_equal": ("at least", "ge"),
        "less_than": ("less than", "lt"),
        "less_than_equal": ("at most", "le"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {_number(ctx.get(key))}, got {describe(value)}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}, got {describe(value)}"
    if kind.startswith(("datetime", "date")):
        return f"expected {_expected(walk.leaf, walk.meta)}, got {describe(value)}"
    return str(error["msg"])


def _data_at(data: Any, path: Sequence[str | int]) -> Any:
    for part in path:
        if isinstance(data, dict):
            if part not in data:
                return None
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def _fits(member: Any, value: Any, members: Sequence[Any]) -> bool:
    """Is `value` of the kind union member `member` takes (a mapping for a model, text for str)?"""
    base, _ = _strip(member, [])
    bases = [_strip(m, [])[0] for m in members]
    if isinstance(value, bool):
        return base is bool
    if isinstance(value, int):
        return base is int or (base is float and int not in bases)
    if isinstance(value, float):
        return base is float
    if isinstance(value, str):
        return base is str
    if isinstance(value, dict):
        return _is_model(base) or get_origin(base) is dict
    if isinstance(value, list):
        return get_origin(base) in (tuple, list)
    return False


def _issues(exc: ValidationError, data: Any) -> list[_Issue]:
    """Pydantic's errors as issues: tags of node types and union members taken out of the paths, one
    issue per union that fits nothing, no 'too short' echoing the failure of an item inside."""
    walked = [(error, _walk(error["loc"])) for error in exc.errors(include_url=False)]
    kept: list[tuple[ErrorDetails, _Walk]] = []
    unions: dict[Path, tuple[tuple[Any, ...], list[tuple[ErrorDetails, _Walk]]]] = {}
    for error, walk in walked:
        if walk.union is None:
            kept.append((error, walk))
        else:
            where, members, _ = walk.union
            unions.setdefault(where, (members, []))[1].append((error, walk))
    issues: list[_Issue] = []
    for where, (members, errors) in unions.items():
        value = _data_at(data, where)
        fitting = [(e, w) for e, w in errors if w.union is not None and _fits(w.union[2], value, members)]
        if fitting:
            kept += fitting
        else:
            expected = _expected(Union[members], [])  # noqa: UP007 - built from a tuple
            issues.append(_Issue(where, f"expected {expected}, got {describe(value)}", "value"))
    paths = [tuple(w.path) for _, w in kept] + [issue.path for issue in issues]
    for error, walk in kept:
        path = tuple(walk.path)
        if error["type"] == "too_short" and any(len(p) > len(path) and p[: len(path)] == path for p in paths):
            continue
        message = _message(error, walk)
        kind: Literal["key", "value", "missing"] = "value"
        if error["type"] == "missing":
            kind = "missing"
        elif error["type"] == "extra_forbidden" or walk.on_key:
            kind = "key"
        elif error["type"] == "value_error":
            named = _entry_named(message, _data_at(data, path))
            if named is not None:
                path, kind = (*path, named[0]), named[1]
        issues.append(_Issue(path, message, kind, unknown_key=error["type"] == "extra_forbidden"))
    return list(dict.fromkeys(issues))


def _entry_named(message: str, value: Any) -> tuple[str, Literal["key", "value"]] | None:
    """The entry of a mapping that a validator's message quotes, by its key (`'satu' is not a day`) or
    by its value (`'13:00-09:00' ends before it starts`), so the message points at that line."""
    if not isinstance(value, dict):
        return None
    for quoted in re.findall(r"'([^']+)'", message):
        for key, item in value.items():
            if quoted == key:
                return key, "key"
            if isinstance(item, str) and quoted.strip() and quoted in item:
                return key, "value"
    return None


def _issue_error(filename: str, positions: Positions, issue: _Issue) -> FlowError:
    if issue.kind == "missing":
        line, column = positions.of(issue.path[:-1])
    else:
        line, column = positions.of(issue.path, value=issue.kind == "value")
    return FlowError(filename, line, column, positions.shown(issue.path), issue.message)


# --- what the graph checks can still look at ---------------------------------------------------------

#: Parts of a flow that can be left out, so the rest is checked: a node, a schedule, a prompt, a variable.
_SEPARABLE = ("nodes", "schedules", "prompts", "variables")
#: Keys of a flow whose value can be dropped for its default without other checks going astray (without
#: its prompts or schedules, a flow would seem to name unknown ones).
_OPTIONAL = ("description", "sounds", "variables")


def _without(data: Any, issues: Iterable[_Issue]) -> tuple[Flow | None, Unchecked]:
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
    parent = _data_at(data, path[:-1]) if len(path) > 1 else data
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
