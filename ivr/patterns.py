"""Which lengths of keyed-in text a regular expression can match, to tell a pattern that never matches.

A `collect` node keeps what the caller keyed in only when its whole text matches `pattern`; a pattern
that matches no text of `min_length` to `max_length` keys (`0-9`, `*`, `#`) turns every caller away.
`lengths` reads the pattern's parse tree (Python's own `re` parser) and computes, for text made of the
given keys only, the set of lengths it can match:

- exactly, for what patterns are made of: characters and classes, sequences, alternatives, groups,
  repeats and anchors at the ends;
- as a superset where the parse tree cannot tell (look-arounds, anchors in the middle, back references,
  anything unknown): such a part is taken to match any length, or to match whatever it wraps.

So the answer may claim a length the pattern cannot match, never the reverse: a pattern reported as
never matching truly never does.
"""

from __future__ import annotations

from collections.abc import Iterable
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

from ivr.hints import either

#: Lengths are counted up to this; `CAP` stands for it and every greater length.
CAP = 65

_ANY_LENGTH = frozenset(range(CAP + 1))


def lengths(pattern: str, keys: str) -> frozenset[int] | None:
    """The lengths (up to `CAP`, which stands for any greater length) of texts made of `keys` that
    `pattern` can match as a whole; None when the pattern cannot be read."""
    try:
        tree = _parser.parse(pattern)
        return _sequence(tree, frozenset(keys))
    except Exception:  # an unreadable pattern is refused elsewhere; here it only means: cannot tell
        return None


def _plus(a: frozenset[int], b: frozenset[int]) -> frozenset[int]:
    return frozenset(min(x + y, CAP) for x in a for y in b)


def _sequence(items: Iterable[tuple[Any, Any]], keys: frozenset[str]) -> frozenset[int]:
    total = frozenset({0})
    for op, av in items:
        total = _plus(total, _item(op, av, keys))
        if not total:
            break
    return total


def _item(op: Any, av: Any, keys: frozenset[str]) -> frozenset[int]:
    if op in (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN):
        return frozenset({1}) if _characters(op, av, keys) else frozenset()
    if op is sre.SUBPATTERN:
        return _sequence(av[3], keys)
    if op is sre.ATOMIC_GROUP:
        return _sequence(av, keys)
    if op is sre.BRANCH:
        found: frozenset[int] = frozenset()
        for alternative in av[1]:
            found |= _sequence(alternative, keys)
        return found
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        low, high, inner = av
        return _repeat(_sequence(inner, keys), low, high)
    if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
        return frozenset({0})  # takes no text; what it demands is not counted (a superset)
    if op is sre.GROUPREF_EXISTS:
        _, yes, no = av
        return _sequence(yes, keys) | (_sequence(no, keys) if no is not None else frozenset({0}))
    if op is sre.FAILURE:
        return frozenset()
    return _ANY_LENGTH  # a back reference or anything else: any length (a superset)


def _characters(op: Any, av: Any, keys: frozenset[str]) -> frozenset[str]:
    """The keys one character of the pattern matches."""
    if op is sre.LITERAL:
        return keys & {chr(av)}
    if op is sre.NOT_LITERAL:
        return keys - {chr(av)}
    if op is sre.ANY:
        return keys
    found: set[str] = set()
    negate = False
    for kind, value in av:
        if kind is sre.NEGATE:
            negate = True
        elif kind is sre.LITERAL:
            found |= keys & {chr(value)}
        elif kind is sre.RANGE:
            found |= {k for k in keys if value[0] <= ord(k) <= value[1]}
        elif kind is sre.CATEGORY:
            found |= _category(value, keys)
        else:
            return keys  # an unknown member: it may match any key (a superset)
    return frozenset(keys - found if negate else found)


def _category(category: Any, keys: frozenset[str]) -> frozenset[str]:
    digits = frozenset(k for k in keys if k.isdigit())
    words = frozenset(k for k in keys if k.isalnum() or k == "_")
    table = {
        sre.CATEGORY_DIGIT: digits,
        sre.CATEGORY_NOT_DIGIT: keys - digits,
        sre.CATEGORY_WORD: words,
        sre.CATEGORY_NOT_WORD: keys - words,
        sre.CATEGORY_SPACE: frozenset(),
        sre.CATEGORY_NOT_SPACE: keys,
        sre.CATEGORY_LINEBREAK: frozenset(),
        sre.CATEGORY_NOT_LINEBREAK: keys,
    }
    found: frozenset[str] = table.get(category, keys)
    return found


def _repeat(each: frozenset[int], low: int, high: int) -> frozenset[int]:
    """Lengths of `low` to `high` matches in a row of something matching lengths `each`."""
    total: frozenset[int] = frozenset()
    current = frozenset({0})  # the lengths of exactly `count` matches
    count = 0
    while True:
        if count >= low:
            total |= current
        if count >= high:
            return total
        following = _plus(current, each)
        if following == current:
            # every further count gives the same lengths (capped sums settle within CAP steps)
            return total | current
        current, count = following, count + 1


def describe(found: Iterable[int]) -> str:
    """`4`, `4 to 8`, `4, 6 or 8 to 10`: lengths as an admin reads them."""
    runs: list[tuple[int, int]] = []
    for n in sorted(found):
        if runs and n == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return either(f"{a}" if a == b else f"{a} to {b}" for a, b in runs)
