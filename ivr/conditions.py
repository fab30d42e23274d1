"""Conditions: what a `branch` arm tests, whether it holds, and how a drawing reads it.

All tests given in one condition must hold together; `any`, `all` and `not` combine conditions. A test
never fails loudly: an unknown schedule, a variable that is not a number for `gt`, or a missing variable
simply does not hold, so a branch always finds its way (at worst to `else`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from ivr.fields import Flag, LanguageCode, Strict, VariableName, as_list, regex
from ivr.schedules import Schedule
from ivr.templates import shown, text

WITHHELD = "anonymous"
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


class Condition(Strict):
    """One test in a `branch`. Fields given together must all hold; `any`/`all`/`not` combine tests.

    - `schedule: office` (with `open: true`, the default, or `open: false`);
    - `caller: "+4822*"` or a list of such patterns (`*` any digits, `?` one digit, `[0-4]` a digit range);
      `caller: anonymous` matches a withheld number;
    - `dialed:` the same for the number the caller dialed;
    - `language: pl`;
    - `var: tier` with one of `equals`, `not_equals`, `in`, `matches` (a regular expression), `exists`,
      `gt`, `ge`, `lt`, `le` (numbers).
    """

    KEY_TABLE: ClassVar[bool] = False

    schedule: str | None = None
    open: Flag = True
    caller: tuple[str, ...] | None = None
    dialed: tuple[str, ...] | None = None
    language: LanguageCode | None = None
    var: VariableName | None = None
    equals: str | int | float | bool | None = None
    not_equals: str | int | float | bool | None = None
    in_: tuple[str | int | float, ...] | None = Field(default=None, alias="in")
    matches: str | None = None
    exists: Flag | None = None
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    any: tuple[Condition, ...] | None = None
    all: tuple[Condition, ...] | None = None
    not_: Condition | None = Field(default=None, alias="not")

    @field_validator("caller", "dialed", mode="before", json_schema_input_type=str | list[str] | None)
    @classmethod
    def _patterns(cls, v: Any) -> Any:
        return as_list(v)

    @field_validator("matches")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return None if v is None else regex(v)

    @model_validator(mode="after")
    def _coherent(self) -> Condition:
        tests = ("equals", "not_equals", "in_", "matches", "exists", "gt", "ge", "lt", "le")
        used = [t for t in tests if getattr(self, t) is not None]
        if used and self.var is None:
            raise ValueError(f"'{used[0].rstrip('_')}' compares a variable: add 'var: NAME'")
        if self.var is not None and not used:
            raise ValueError("'var' needs a test: equals, not_equals, in, matches, exists, gt, ge, lt or le")
        given = [
            f
            for f in ("schedule", "caller", "dialed", "language", "var", "any", "all", "not_")
            if getattr(self, f) is not None
        ]
        if not given:
            raise ValueError("an empty condition; test a schedule, caller, dialed, language or var")
        return self


Path = tuple[str | int, ...]


def each_condition(cond: Condition, path: Path) -> Iterator[tuple[Path, Condition]]:
    """`cond` and every condition nested in it (`any`, `all`, `not`), with their key paths."""
    yield path, cond
    for key, nested in (("any", cond.any), ("all", cond.all)):
        for i, sub in enumerate(nested or ()):
            yield from each_condition(sub, (*path, key, i))
    if cond.not_ is not None:
        yield from each_condition(cond.not_, (*path, "not"))


@dataclass(frozen=True, slots=True)
class Facts:
    """What a condition may look at, taken from the call at the moment of the branch."""

    now: datetime
    caller: str | None  # None when the number is withheld
    dialed: str
    language: str
    variables: Mapping[str, str]
    schedules: Mapping[str, Schedule]


def number_matches(patterns: Iterable[str], number: str | None) -> bool:
    """`*` any run of characters, `?` one, `[0-4]` one of a class; `anonymous` matches a withheld number."""
    if number is None:
        return any(p.lower() == WITHHELD for p in patterns)
    return any(p.lower() != WITHHELD and fnmatchcase(number, p) for p in patterns)


def as_number(value: str) -> float | None:
    """A decimal number, or None; `inf`, `nan` and `1_000` are not numbers a caller or a CRM means."""
    value = value.strip()
    return float(value) if _NUMBER.fullmatch(value) else None


def holds(condition: Condition, facts: Facts) -> bool:
    c = condition
    if c.schedule is not None:
        schedule = facts.schedules.get(c.schedule)
        if schedule is None or schedule.is_open(facts.now) != c.open:
            return False
    if c.caller is not None and not number_matches(c.caller, facts.caller):
        return False
    if c.dialed is not None and not number_matches(c.dialed, facts.dialed):
        return False
    if c.language is not None and c.language != facts.language:
        return False
    if c.var is not None and not _variable_holds(c, facts.variables.get(c.var)):
        return False
    if c.any is not None and not any(holds(part, facts) for part in c.any):
        return False
    if c.all is not None and not all(holds(part, facts) for part in c.all):
        return False
    return not (c.not_ is not None and holds(c.not_, facts))


def _variable_holds(c: Condition, value: str | None) -> bool:
    """Tests on one variable. An empty variable counts as missing, as it reads empty in templates."""
    current = value or ""
    if c.exists is not None and bool(current) != c.exists:
        return False
    if c.equals is not None and current != text(c.equals):
        return False
    if c.not_equals is not None and current == text(c.not_equals):
        return False
    if c.in_ is not None and current not in {text(item) for item in c.in_}:
        return False
    if c.matches is not None and re.fullmatch(c.matches, current) is None:
        return False
    limits = ((c.gt, float.__gt__), (c.ge, float.__ge__), (c.lt, float.__lt__), (c.le, float.__le__))
    if any(limit is not None for limit, _ in limits):
        number = as_number(current)
        if number is None:
            return False
        for limit, compare in limits:
            if limit is not None and not compare(number, float(limit)):
                return False
    return True


# --- as a drawing reads it ----------------------------------------------------------------------


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
        yield f"{name} = {shown(cond.equals)}"
    if cond.not_equals is not None:
        yield f"{name} != {shown(cond.not_equals)}"
    if cond.in_ is not None:
        yield f"{name} in ({', '.join(shown(v) for v in cond.in_)})"
    if cond.matches is not None:
        yield f"{name} ~ /{cond.matches}/"
    if cond.exists is not None:
        yield f"{name} {'is set' if cond.exists else 'is not set'}"
    for op, bound in ((">", cond.gt), (">=", cond.ge), ("<", cond.lt), ("<=", cond.le)):
        if bound is not None:
            yield f"{name} {op} {bound:g}"
