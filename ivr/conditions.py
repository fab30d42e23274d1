"""Decide whether a `branch` arm holds.

All tests given in one condition must hold together; `any`, `all` and `not` combine conditions. A test
never fails loudly: an unknown schedule, a variable that is not a number for `gt`, or a missing variable
simply does not hold, so a branch always finds its way (at worst to `else`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase

from ivr.model import Condition, Schedule
from ivr.templates import text

WITHHELD = "anonymous"
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


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
