"""Pydantic's validation errors in an admin's words, at the key or value they are about.

`Schema(Model)` walks each error's location through the model's annotations (unions, tagged unions,
dicts, lists, aliases) to find what the file holds there and what was expected, then says it as what is
wrong and what to write instead::

    unknown key 'timout'; did you mean 'timeout'?
    expected true or false, got 'yes'; write true or false
    must be at most 65535, got 70000; write a whole number from 1 to 65535

Names are the names written in the file: a field `else_` is offered as `else`, never as `else_`.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import PurePath
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, Discriminator, Tag, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from yamlfile.positions import Path, Positions
from yamlfile.problems import Problem

#: What a value matching a pattern is called, and how to write one; a schema adds its own.
PATTERNS: dict[str, tuple[str, str]] = {
    r"^[A-Za-z0-9_\-]+$": ("a name", "use letters, digits, _ and -"),
    r"^https?://": ("a web address", "start it with http:// or https://"),
    r"^[A-Za-z]+/.+$": ("an endpoint", "write it as TECHNOLOGY/NAME, e.g. PJSIP/agent1"),
    r"^\+?[0-9]{2,20}$": ("a phone number", "use 2 to 20 digits with an optional leading +"),
}


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`; did you mean 'x'?` for the closest of `choices`, or nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


#: Words YAML 1.1 (and lax parsers) read as booleans, and the one YAML 1.2 word to write instead.
BOOLEAN_WORDS = {
    **dict.fromkeys(("yes", "y", "on", "1", "t"), "true"),
    **dict.fromkeys(("no", "n", "off", "0", "f"), "false"),
}


def boolean_fix(value: Any) -> str:
    """What to write for a boolean given as `value`: `write true` for `yes`, `write false` for `off`."""
    word = BOOLEAN_WORDS.get(str(value).strip().lower()) if isinstance(value, str | int) else None
    return f"write {word}" if word else "write true or false"


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


def number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Issue:
    """A schema error in the admin's words, before it is positioned: at the key (`key`), at the value
    (`value`) or at the mapping a key is missing from (`missing`)."""

    path: Path
    message: str
    kind: Literal["key", "value", "missing"]
    #: an unknown key, which a caller checking the rest of the file can simply leave out
    unknown_key: bool = False

    def problem(self, filename: str, positions: Positions) -> Problem:
        if self.kind == "missing":
            line, column = positions.of(self.path[:-1])
        else:
            line, column = positions.of(self.path, value=self.kind == "value")
        return Problem(filename, line, column, positions.shown(self.path), self.message)


@dataclass
class Walk:
    """Where a pydantic error location leads in the file and in the models."""

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


def strip(tp: Any, meta: list[Any]) -> tuple[Any, list[Any]]:
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


def is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def tag_of(member: Any) -> str | None:
    """The tag of a member of a tagged union (`Annotated[Play, Tag("play")]`)."""
    if get_origin(member) is Annotated:
        for item in member.__metadata__:
            if isinstance(item, Tag):
                return item.tag
    return None


def keys_of(model: type[BaseModel]) -> list[str]:
    """The keys a model's mapping takes, as written in the file (`else`, not `else_`)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def field_of(model: type[BaseModel], key: str) -> FieldInfo | None:
    for name, info in model.model_fields.items():
        if (info.alias or name) == key:
            return info
    return None


def pattern_of(meta: Iterable[Any]) -> str | None:
    """The regular expression a value must match, from its Annotated metadata."""
    for item in meta:
        if isinstance(item, FieldInfo):
            found = pattern_of(item.metadata)
            if found:
                return found
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            return pattern
    return None


def type_pattern(annotated: Any) -> str:
    """The pattern of an `Annotated[str, Field(pattern=...)]` type, to name it in a `patterns` table."""
    found = pattern_of(strip(annotated, [])[1])
    assert found is not None, annotated
    return found


_BOUND_TYPES: dict[str, type] = {
    "ge": annotated_types.Ge,
    "gt": annotated_types.Gt,
    "le": annotated_types.Le,
    "lt": annotated_types.Lt,
}


def _bounds(meta: Iterable[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in meta:
        if isinstance(item, FieldInfo):
            found.update(_bounds(item.metadata))
        for kind, bound in _BOUND_TYPES.items():
            if isinstance(item, bound):
                found[kind] = getattr(item, kind)
    return found


def _member(label: str, members: Sequence[Any]) -> Any:
    """The union member pydantic names `label` in an error location ('constrained-str', 'GotoTarget')."""
    for member in members:
        base, _ = strip(member, [])
        origin = get_origin(base)
        if (
            (is_model(base) and label == base.__name__)
            or (origin is dict and label.startswith("dict["))
            or (origin in (tuple, list) and label.startswith(("tuple[", "list[")))
            or (base in (int, float, bool) and label == base.__name__)
        ):
            return member
    for member in members:
        if strip(member, [])[0] is str and label in ("str", "constrained-str"):
            return member
    return None


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
    "path_type": PurePath,
}

_BOUNDS = {
    "greater_than": ("more than", "gt"),
    "greater_than_equal": ("at least", "ge"),
    "less_than": ("less than", "lt"),
    "less_than_equal": ("at most", "le"),
}

#: A hook that words an error its own way (a node without a type key), or None for the usual words.
Hook = Callable[[ErrorDetails, Walk], str | None]
#: A hook that hints at an unknown key's right place (`; put it under 'queue:'`), or None.
KeyHint = Callable[[str, type[BaseModel]], str | None]


class Schema:
    """The errors of validating a file's values against `root`, in the admin's words.

    `document` says what the whole file is (`a flow file is a mapping with flow:, start: and nodes:`),
    `patterns` names the file's own patterns, `hook` and `key_hint` word the file's own cases."""

    def __init__(
        self,
        root: type[BaseModel],
        *,
        document: str,
        patterns: Mapping[str, tuple[str, str]] | None = None,
        hook: Hook | None = None,
        key_hint: KeyHint | None = None,
    ) -> None:
        self.root = root
        self.document = document
        self.patterns = {**PATTERNS, **(patterns or {})}
        self.hook = hook
        self.key_hint = key_hint

    # --- the public side ---

    def problems(
        self, error: ValidationError, data: Any, filename: str, positions: Positions
    ) -> list[Problem]:
        """Every error of `error` (from validating `data`) as a positioned problem, in file order."""
        return sorted(dict.fromkeys(issue.problem(filename, positions) for issue in self.issues(error, data)))

    def issues(self, exc: ValidationError, data: Any) -> list[Issue]:
        """Pydantic's errors as issues: tags of tagged unions and union members taken out of the paths,
        one issue per union that fits nothing, no 'too short' echoing the failure of an item inside."""
        walked = [(error, self.walk(error["loc"])) for error in exc.errors(include_url=False)]
        kept: list[tuple[ErrorDetails, Walk]] = []
        unions: dict[Path, tuple[tuple[Any, ...], list[tuple[ErrorDetails, Walk]]]] = {}
        for error, walk in walked:
            if walk.union is None:
                kept.append((error, walk))
            else:
                where, members, _ = walk.union
                unions.setdefault(where, (members, []))[1].append((error, walk))
        issues: list[Issue] = []
        for where, (members, errors) in unions.items():
            value = data_at(data, where)
            fitting = [(e, w) for e, w in errors if w.union is not None and _fits(w.union[2], value, members)]
            if fitting:
                kept += fitting
            else:
                expected = self.expected(Union[members], [])  # noqa: UP007 - built from a tuple
                issues.append(Issue(where, self.wrong_type(expected, value), "value"))
        paths = [tuple(w.path) for _, w in kept] + [issue.path for issue in issues]
        for error, walk in kept:
            path = tuple(walk.path)
            if error["type"] == "too_short" and any(
                len(p) > len(path) and p[: len(path)] == path for p in paths
            ):
                continue
            message = self.message(error, walk)
            kind: Literal["key", "value", "missing"] = "value"
            if error["type"] == "missing":
                kind = "missing"
            elif error["type"] == "extra_forbidden" or walk.on_key:
                kind = "key"
            elif error["type"] == "value_error":
                named = _entry_named(message, data_at(data, path))
                if named is not None:
                    path, kind = (*path, named[0]), named[1]
            issues.append(Issue(path, message, kind, unknown_key=error["type"] == "extra_forbidden"))
        return list(dict.fromkeys(issues))

    # --- where an error is ---

    def walk(self, loc: Sequence[str | int]) -> Walk:
        walk = Walk(leaf=self.root)
        tp: Any = self.root
        meta: list[Any] = []
        items = list(loc)
        i = 0
        while i < len(items):
            element = items[i]
            tp, meta = strip(tp, meta)
            if any(isinstance(m, Discriminator) for m in meta) and is_union(tp):
                tagged = [m for m in get_args(tp) if tag_of(m) == element]
                if not tagged:
                    walk.path += items[i:]
                    tp = None
                    break
                tp, meta, i = tagged[0], [], i + 1
                continue
            if is_union(tp):
                members = get_args(tp)
                chosen = _member(str(element), members)
                if walk.union is None:
                    walk.union = (tuple(walk.path), members, chosen)
                if chosen is None:
                    tp = None
                    break
                tp, meta, i = chosen, [], i + 1
                continue
            if is_model(tp):
                walk.model = tp
                walk.path.append(element)
                info = field_of(tp, str(element))
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
            tp, meta = strip(tp, meta)
        walk.leaf, walk.meta = tp, meta
        return walk

    # --- what it is called ---

    def expected(self, tp: Any, meta: list[Any]) -> str:
        """What a value of type `tp` is called in a message: 'a node name', 'a number', 'a mapping'."""
        tp, meta = strip(tp, meta)
        if tp is str:
            pattern = pattern_of(meta)
            return self.patterns[pattern][0] if pattern in self.patterns else "text"
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
        if isinstance(tp, type) and issubclass(tp, PurePath):
            return "a path"
        if is_model(tp) or get_origin(tp) is dict:
            return "a mapping"
        if get_origin(tp) in (tuple, list):
            return "a list"
        if get_origin(tp) is Literal:
            return "one of " + ", ".join(f"'{v}'" for v in get_args(tp))
        if is_union(tp):
            names = list(dict.fromkeys(self.expected(m, []) for m in get_args(tp)))
            names = ["a number" if n == "a whole number" and "a number" in names else n for n in names]
            names = list(dict.fromkeys("true/false" if n == "true or false" else n for n in names))
            return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
        return "a value"

    def how(self, expected: str, value: Any) -> str:
        """What to write instead, for a value that should be `expected`."""
        if expected == "true or false":
            return boolean_fix(value)
        if expected == "text" or expected == "a path":
            if isinstance(value, bool | int | float):
                return f"write it in quotes: '{describe(value)}'"
            return f"write {expected}"
        if expected == "a whole number":
            return "write a whole number such as 30"
        if expected == "a number":
            return "write a number such as 30 or 2.5"
        if expected == "a mapping":
            return "write key: value entries under it"
        if expected == "a list":
            return "write a list such as [a, b]"
        for pattern, (noun, how) in self.patterns.items():
            if noun == expected:
                if isinstance(value, bool | int | float) and re.search(pattern, describe(value)):
                    return f"write it in quotes: '{describe(value)}'"
                return how
        if expected.startswith("one of "):
            return "write one of them"
        if " such as " in expected:
            return "write it like " + expected.split(" such as ", 1)[1]
        return f"write {expected}"

    def wrong_type(self, expected: str, value: Any) -> str:
        hint = ""
        if expected.startswith("one of ") and isinstance(value, str):
            hint = did_you_mean(value, re.findall(r"'([^']*)'", expected))
        return f"expected {expected}, got {describe(value)}; " + (
            hint[2:] if hint else self.how(expected, value)
        )

    def unknown_key(self, key: str, model: type[BaseModel] | None) -> str:
        message = f"unknown key '{key}'"
        if model is None:
            return message + "; remove it"
        hint = did_you_mean(key, keys_of(model))
        if hint:
            return message + hint
        if self.key_hint is not None:
            own = self.key_hint(key, model)
            if own:
                return message + own
        return message + "; the keys here are " + ", ".join(keys_of(model))

    def message(self, error: ErrorDetails, walk: Walk) -> str:
        kind: str = error["type"]
        ctx: Mapping[str, Any] = error.get("ctx") or {}
        value = error.get("input")
        path = walk.path
        if self.hook is not None:
            own = self.hook(error, walk)
            if own is not None:
                return own
        if kind == "missing":
            expected = self.expected(walk.leaf, walk.meta) if walk.leaf is not None else "a value"
            return f"required key '{path[-1]}' is missing; add '{path[-1]}:' with {expected}"
        if kind == "extra_forbidden":
            return self.unknown_key(str(path[-1]), walk.model)
        if kind in ("value_error", "assertion_error"):
            cause = ctx.get("error")
            return str(cause) if cause is not None else str(error["msg"]).removeprefix("Value error, ")
        if kind == "string_pattern_mismatch":
            pattern = str(ctx.get("pattern", ""))
            if pattern in self.patterns:
                noun, how = self.patterns[pattern]
                return f"{describe(value)} is not {noun}; {how}"
            return f"{describe(value)} does not match the pattern {pattern}; write text that does"
        if kind in _TYPE_ERRORS:
            if not path and kind in ("model_type", "dict_type"):
                return f"the file holds {describe(value)}; {self.document}"
            expected = self.expected(walk.leaf, walk.meta) if walk.leaf is not None else "a value"
            if expected == "a value":
                expected = self.expected(_TYPE_ERRORS[kind], [])
            return self.wrong_type(expected, value)
        if kind == "string_too_short":
            expected = self.expected(walk.leaf, walk.meta) if walk.leaf is not None else "text"
            return f"must not be empty; write {expected}"
        if kind == "string_too_long":
            most = ctx.get("max_length")
            return f"is longer than {most} characters; shorten it to {most} at most"
        if kind == "too_short":
            needed = ctx.get("min_length", 1)
            if needed == 1:
                return "must not be empty; write at least one entry"
            return f"needs at least {needed} entries; add more"
        if kind == "too_long":
            return (
                f"has {ctx.get('actual_length')} entries, more than the {ctx.get('max_length')} allowed; "
                "remove some"
            )
        if kind in _BOUNDS:
            words, key = _BOUNDS[kind]
            return f"must be {words} {number(ctx.get(key))}, got {describe(value)}; {self.in_range(walk)}"
        if kind == "literal_error":
            expected = self.expected(walk.leaf, walk.meta) if walk.leaf is not None else "a value"
            if not expected.startswith("one of "):
                expected = f"one of {ctx.get('expected')}"
            return self.wrong_type(expected, value)
        if kind.startswith(("datetime", "date")):
            return self.wrong_type(self.expected(walk.leaf, walk.meta), value)
        return f"{error['msg']}; write {self.expected(walk.leaf, walk.meta)}"

    def in_range(self, walk: Walk) -> str:
        """`write a whole number from 1 to 65535`: the range a bounded number must be in."""
        noun = "a whole number" if walk.leaf is int else "a number"
        bounds = _bounds(walk.meta)
        if "ge" in bounds and "le" in bounds:
            return f"write {noun} from {number(bounds['ge'])} to {number(bounds['le'])}"
        parts = []
        for key, words in (("ge", "at least"), ("gt", "more than"), ("le", "at most"), ("lt", "less than")):
            if key in bounds:
                parts.append(f"{words} {number(bounds[key])}")
        return f"write {noun} " + " and ".join(parts) if parts else f"write {noun} in range"


def data_at(data: Any, path: Sequence[str | int]) -> Any:
    """The value at `path` in plain values, or None."""
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
    base, _ = strip(member, [])
    bases = [strip(m, [])[0] for m in members]
    if isinstance(value, bool):
        return base is bool
    if isinstance(value, int):
        return base is int or (base is float and int not in bases)
    if isinstance(value, float):
        return base is float
    if isinstance(value, str):
        return base is str
    if isinstance(value, dict):
        return is_model(base) or get_origin(base) is dict
    if isinstance(value, list):
        return get_origin(base) in (tuple, list)
    return False


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
