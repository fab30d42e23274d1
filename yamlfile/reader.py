"""YAML text in, plain values with a position for every key path out, under rules an admin can predict.

The text is parsed into events (libyaml's C parser when ruamel.yaml.clib is installed, ruamel's own
otherwise) and composed here, so the rules are ours whichever parser runs:

- a key is its text as written: `01` and `1` are two menu options;
- a value follows the YAML 1.2 core schema (`no` is the word no, `2026-12-25` is text until a model reads
  it as a date), except that digits with a leading zero or a leading + stay text as written: in telephony
  `0100` is an extension and `+48221234567` a number to dial, not the integers 100 and 48221234567;
- a duplicate key, an unknown tag, an alias to nothing, a value left empty because an unquoted `#` began
  a comment, and a comment line shaped like a `#: x` entry are mistakes, reported with their position;
- a file too large, nested too deep or repeating too much through aliases is refused at once, with the
  limit it passed.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from yamlfile.positions import Path, Position, Positions
from yamlfile.problems import Problem
from yamlfile.syntax import COMMENT_MESSAGE, alias_message, reader_problem, syntax_problem

try:  # libyaml's parser, several times faster than the pure Python one; the rules stay ours either way
    _CParser: Any = importlib.import_module("_ruamel_yaml").CParser
except ImportError:  # pragma: no cover - the dependency is installed wherever a wheel exists
    _CParser = None

#: A file larger than this (in bytes) is refused before it is parsed.
MAX_BYTES = 10 * 1024 * 1024
#: Nor may it nest deeper than this,
MAX_DEPTH = 100
#: hold more values than this,
MAX_VALUES = 2_000_000
#: or repeat more values than this through aliases (`*name`).
MAX_ALIAS_VALUES = 100_000


@dataclass(frozen=True)
class Limits:
    """What a file may hold, and how to stay within it in the words of the file's kind."""

    bytes: int = MAX_BYTES
    depth: int = MAX_DEPTH
    values: int = MAX_VALUES
    alias_values: int = MAX_ALIAS_VALUES
    #: how to make a file that is too big smaller
    split: str = "split it into smaller files"


@dataclass(frozen=True)
class Document:
    """What `read_yaml` found: the plain values, where each key path is written, and the mistakes in the
    YAML itself."""

    data: Any
    positions: Positions
    problems: tuple[Problem, ...]
    #: the values could be built; False after a syntax error or a limit (`data` is then None)
    readable: bool = True
    #: the file holds no document at all (nothing, or only comments)
    empty: bool = False


_COLON_IN_NAME = re.compile(r"[&*][^\s,\[\]{}]*:")


def read_yaml(text: str, filename: str, *, limits: Limits | None = None, fast: bool = True) -> Document:
    """Read YAML `text` (of the file `filename`, for messages) into plain values and positions. `fast`
    uses libyaml's parser when it is installed."""
    limits = limits or Limits()
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > limits.bytes:
        message = (
            f"the file is {_megabytes(size)}, more than the {_megabytes(limits.bytes)} a file may hold; "
            f"{limits.split}"
        )
        return Document(None, Positions({}), (Problem(filename, 1, 1, "", message),), readable=False)
    # an anchor or alias name holding ':' is one name to YAML 1.2 and two things to libyaml: ruamel reads it
    fast = fast and _CParser is not None and not _COLON_IN_NAME.search(text)
    composer = _Composer(text, filename, limits)
    try:
        try:
            root = composer.compose(_events(text, fast=fast))
        except YAMLError:
            if not fast:
                raise
            # libyaml reads YAML 1.1 and refuses a little that YAML 1.2 allows (a ':' inside a plain value
            # in [...] or {...}, as in `{mon-fri: 08:00-18:00}`): ruamel's parser has the last word.
            composer = _Composer(text, filename, limits)
            root = composer.compose(_events(text, fast=False))
    except MarkedYAMLError as e:
        return _unreadable(syntax_problem(e, text, filename))
    except _Refused as e:
        return _unreadable(e.problem)
    except YAMLError as e:  # a ReaderError: a character YAML does not allow
        return _unreadable(reader_problem(e, text, filename))
    if root is None:
        return Document(None, Positions({}), (), empty=True)
    builder = _Builder(text, filename, limits, composer.written)
    try:
        data = builder.build(root, ())
    except _Refused as e:
        return _unreadable(e.problem)
    problems = [*builder.problems, *builder.comment_entries(composer.spans)]
    return Document(data, builder.positions(), tuple(dict.fromkeys(problems)))


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def _unreadable(problem: Problem) -> Document:
    return Document(None, Positions({}), (problem,), readable=False)


class _Refused(Exception):
    """A limit was passed, or the YAML cannot be composed; carries the one problem to report."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def _events(text: str, *, fast: bool) -> Iterator[Any]:
    if fast:
        parser = _CParser(text)
        try:
            while True:
                event = parser.get_event()
                if event is None:
                    return
                yield event
        finally:
            parser.dispose()
    yaml = YAML(typ="safe", pure=True)
    yaml.version = (1, 2)
    yield from yaml.parse(text)


# --- composing: events to a graph of nodes -----------------------------------------------------------


class _Node:
    __slots__ = ("column", "line", "tag")

    def __init__(self, line: int, column: int, tag: str | None) -> None:
        self.line = line
        self.column = column
        self.tag = tag


class _Scalar(_Node):
    __slots__ = ("end", "plain", "text")

    def __init__(self, line: int, column: int, tag: str | None, text: str, plain: bool, end: int) -> None:
        super().__init__(line, column, tag)
        self.text = text
        self.plain = plain
        #: the 0-based column where the scalar ends (on its last line)
        self.end = end


class _Collection(_Node):
    __slots__ = ("items",)

    def __init__(self, line: int, column: int, tag: str | None) -> None:
        super().__init__(line, column, tag)
        #: a list's items, or a mapping's keys and values one after the other
        self.items: list[_Node] = []


class _Sequence(_Collection):
    __slots__ = ()


class _Mapping(_Collection):
    __slots__ = ()


def _tag(tag: Any) -> str | None:
    """The tag written in the file as the admin wrote it (`!!str`, `!custom`), or None."""
    if tag is None or tag == "!":
        return None
    text = str(tag)
    return "!!" + text.removeprefix("tag:yaml.org,2002:") if text.startswith("tag:yaml.org,2002:") else text


class _Composer:
    def __init__(self, text: str, filename: str, limits: Limits) -> None:
        self.text = text
        self.filename = filename
        self.limits = limits
        self.written = 0
        #: first and last line (0-based) of each scalar written over several lines
        self.spans: list[tuple[int, int]] = []

    def refuse(self, mark: Any, message: str) -> _Refused:
        return _Refused(Problem(self.filename, mark.line + 1, mark.column + 1, "", message))

    def compose(self, events: Iterator[Any]) -> _Node | None:
        root: _Node | None = None
        stack: list[_Collection] = []
        anchors: dict[str, _Node] = {}
        documents = 0
        limits = self.limits
        for event in events:
            kind = type(event)
            node: _Node
            if kind is ScalarEvent:
                start, end = event.start_mark, event.end_mark
                if end.line != start.line:
                    self.spans.append((start.line, end.line))
                node = _Scalar(
                    start.line,
                    start.column,
                    _tag(event.tag),
                    event.value,
                    not event.style,
                    end.column,
                )
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                mark = event.start_mark
                node = (_Mapping if kind is MappingStartEvent else _Sequence)(
                    mark.line, mark.column, _tag(event.tag)
                )
                if len(stack) >= limits.depth:
                    raise self.refuse(
                        mark,
                        f"the file nests more than {limits.depth} levels deep; "
                        "flatten it, or give the inner parts names of their own",
                    )
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                stack.pop()
                continue
            elif kind is AliasEvent:
                found = anchors.get(event.anchor)
                if found is None:
                    # the name as both parsers read it: the C parser ends it at a ':', ruamel does not
                    name = re.match(r"[^\s,\[\]{}:]*", str(event.anchor))
                    raise self.refuse(event.start_mark, alias_message(name.group() if name else ""))
                node = found
            elif kind is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise self.refuse(
                        event.start_mark,
                        "a second YAML document begins here (after '---'); keep one document in the file",
                    )
                continue
            else:
                continue
            if kind is not AliasEvent:
                self.written += 1
                if self.written > limits.values:
                    raise self.refuse(
                        event.start_mark,
                        f"the file holds more than {limits.values} values; {limits.split}",
                    )
                anchor = event.anchor
                if anchor is not None:
                    anchors[anchor] = node
            if stack:
                stack[-1].items.append(node)
            else:
                root = node
            if isinstance(node, _Collection) and kind is not AliasEvent:
                stack.append(node)
        return root


# --- building: nodes to plain values -----------------------------------------------------------------

_NULL = re.compile(r"~|null|Null|NULL|")
_BOOLEANS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+")
#: digits kept as written: a leading zero (`0100`) or a leading plus (`+48221234567`)
_AS_WRITTEN = re.compile(r"[-+]?0[0-9]+|\+[0-9]+")
_OCTAL = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INFINITY = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")


def core_value(text: str, *, as_written: bool = True) -> Any:
    """A plain scalar under the YAML 1.2 core schema: null, true/false, an integer, a float, or text.
    Digits with a leading zero or plus stay text (`as_written`)."""
    if _NULL.fullmatch(text):
        return None
    if text in _BOOLEANS:
        return _BOOLEANS[text]
    if _INT.fullmatch(text):
        if as_written and _AS_WRITTEN.fullmatch(text):
            return text
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


def _at(node: _Node) -> Position:
    return Position(node.line + 1, node.column + 1)


_WANTED: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (float, int),
    "bool": (bool,),
    "null": (type(None),),
}
_HOW_TAGGED = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "null": "nothing (null)",
}
#: `key: #...`: a value left empty because a comment starts where the value would be
_COMMENT_AT_VALUE = re.compile(r"[ \t]*:[ \t]+(#\S*)")
#: a comment line shaped like a mapping entry, `#: node`
_COMMENT_ENTRY = re.compile(r"^([ ]*)#:(?=[ \t]|$)", re.MULTILINE)


class _Builder:
    """Builds plain values from the node graph, recording positions and mistakes."""

    def __init__(self, text: str, filename: str, limits: Limits, written: int) -> None:
        self.text = text
        self.filename = filename
        self.limits = limits
        self.most = written + limits.alias_values
        self.lines: list[str] | None = None
        self.keys: dict[Path, Position] = {}
        self.values: dict[Path, Position] = {}
        self.problems: list[Problem] = []
        self.count = 0
        self.active: set[int] = set()
        self.reported: set[tuple[Position, str]] = set()

    def positions(self) -> Positions:
        return Positions(self.keys, self.values)

    def line(self, number: int) -> str:
        """The 0-based line `number` of the text."""
        if self.lines is None:
            self.lines = self.text.split("\n")
        return self.lines[number] if number < len(self.lines) else ""

    def problem(self, where: Position, path: Path, message: str) -> None:
        """Note a mistake once, even when aliases bring the same node in at several paths."""
        if (where, message) not in self.reported:
            self.reported.add((where, message))
            self.problems.append(Problem(self.filename, *where, ".".join(map(str, path)), message))

    def build(self, node: _Node, path: Path) -> Any:
        self.count += 1
        if self.count > self.most:
            raise _Refused(
                Problem(
                    self.filename,
                    *_at(node),
                    "",
                    f"aliases (*name) repeat more than {self.limits.alias_values} values; "
                    "write the repeated part fewer times, or give it a name of its own",
                )
            )
        if not path:
            self.keys[()] = _at(node)
        if id(node) in self.active:
            self.problem(
                _at(node),
                path,
                "an alias (*name) stands for a mapping or list that holds it; remove the alias",
            )
            return None
        if isinstance(node, _Scalar):
            return self.scalar(node, path)
        if node.tag is not None and node.tag not in ("!!map", "!!seq"):
            self.problem(_at(node), path, f"unknown tag '{node.tag}'; write the value without it")
        self.active.add(id(node))
        try:
            if isinstance(node, _Sequence):
                return self.sequence(node, path)
            assert isinstance(node, _Mapping)
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def scalar(self, node: _Scalar, path: Path) -> Any:
        text = node.text
        tag = node.tag
        if tag is None:
            return core_value(text) if node.plain else text
        kind = tag.removeprefix("!!")
        if tag == "!!str":
            return text
        if kind in _WANTED and tag.startswith("!!"):
            value = core_value(text, as_written=False)
            if isinstance(value, _WANTED[kind]) and not (kind != "bool" and isinstance(value, bool)):
                return float(str(value)) if kind == "float" else value
            self.problem(_at(node), path, f"'{text}' is not {_HOW_TAGGED[kind]}; write one, or drop {tag}")
            return text
        self.problem(_at(node), path, f"unknown tag '{tag}'; write the value without it")
        return text

    def sequence(self, node: _Sequence, path: Path) -> list[Any]:
        items: list[Any] = []
        for i, item in enumerate(node.items):
            self.keys[(*path, i)] = _at(item)
            if isinstance(item, _Scalar):
                self.values[(*path, i)] = _at(item)
            items.append(self.build(item, (*path, i)))
        return items

    def mapping(self, node: _Mapping, path: Path) -> dict[str, Any]:
        own: dict[str, tuple[_Node, _Node]] = {}
        order: list[str | _Node] = []  # keys, and the values of merge keys (`<<: *defaults`) where they stand
        items = node.items
        for index in range(0, len(items) - 1, 2):
            key, value = items[index], items[index + 1]
            if isinstance(key, _Scalar) and key.text == "<<" and key.plain:
                order.append(value)
                continue
            if not isinstance(key, _Scalar):
                self.problem(
                    _at(key), path, "a key must be plain text, not a list or mapping; write it as text"
                )
                continue
            text = key.text
            if text in own:
                self.problem(
                    _at(key),
                    (*path, text),
                    f"duplicate key '{text}' (first at line {_at(own[text][0]).line}); keep one of them",
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
                where = (*path, item)
                self.keys[where] = _at(key)
                # a value's own position is kept for text, numbers and the like; an empty value has none
                if isinstance(value, _Scalar) and (value.text != "" or not value.plain or value.tag):
                    self.values[where] = _at(value)
                else:
                    self.values.pop(where, None)
                    if isinstance(value, _Scalar) and isinstance(key, _Scalar) and value.tag is None:
                        comment = self.comment_at_value(key, where)
                        if comment is not None:
                            result[item] = comment
                            continue
                result[item] = self.build(value, where)
            else:
                for text, built in merged[id(item)].items():
                    if text not in own:
                        result.setdefault(text, built)
        return result

    def comment_at_value(self, key: _Scalar, where: Path) -> str | None:
        """`terminator: #`: the value is empty only because a comment begins where it would be. Reported,
        and read as the comment's first word so that nothing else is said about the missing value."""
        match = _COMMENT_AT_VALUE.match(self.line(key.line), key.end)
        if match is None:
            return None
        self.problem(Position(key.line + 1, match.start(1) + 1), where, COMMENT_MESSAGE)
        return match.group(1)

    def merge(self, node: _Node, path: Path) -> dict[str, Any]:
        """The keys a merge key (`<<: *defaults` or `<<: [*a, *b]`) brings in; earlier sources win."""
        sources = node.items if isinstance(node, _Sequence) else [node]
        merged: dict[str, Any] = {}
        for source in sources:
            if not isinstance(source, _Mapping):
                self.problem(_at(source), path, "'<<' merges a mapping; write <<: *name, or a list of them")
                continue
            for text, value in self.build(source, path).items():
                merged.setdefault(text, value)
        return merged

    def comment_entries(self, spans: list[tuple[int, int]]) -> Iterator[Problem]:
        """Comment lines shaped like a mapping entry (`#: node`), which YAML silently drops; not inside a
        value written over several lines (a `|` text may hold anything)."""
        if "#:" not in self.text:
            return
        for match in _COMMENT_ENTRY.finditer(self.text):
            line = self.text.count("\n", 0, match.start())
            if any(first < line <= last for first, last in spans):
                continue
            column = len(match.group(1))
            above = [
                (at.line, path)
                for path, at in self.keys.items()
                if path and at.column == column + 1 and at.line <= line
            ]
            path: Path = (*max(above, key=lambda a: a[0])[1][:-1], "#") if above else ("#",)
            yield Problem(self.filename, line + 1, column + 1, ".".join(map(str, path)), COMMENT_MESSAGE)
