"""The lengths a `collect` pattern can match: exact for what patterns are made of (checked against every
keyed-in text up to a length), never short of a length the pattern can match."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.fields import CALLER_KEYS
from ivr.patterns import CAP, describe, lengths


def matched(pattern: str, keys: str = CALLER_KEYS, up_to: int = 12) -> list[int]:
    found = lengths(pattern, keys)
    assert found is not None
    return sorted(n for n in found if n <= up_to)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"^[0-9]{4}$", [4]),
        (r"^[12]0[0-9]{6}$", [8]),
        (r"^\+?[0-9]{6,10}$", [6, 7, 8, 9, 10]),
        (r"\d{2}|\d{5}", [2, 5]),
        (r"(12|345)*", [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
        (r"[*#]{3}", [3]),
        (r"[^0-9]{2}", [2]),
        (r"\w{3}\W", [4]),
        (r"^[a-z]+$", []),
        (r"x?", [0]),
        (r"1{2,}", list(range(2, 13))),
        (r"(?:0|1(?:2|34))5", [2, 3, 4]),
        (r"(?P<a>1)(?P=a)", list(range(1, 13))),  # a back reference: any length (a superset)
        (r"^(?=1)\d{3}$", [3]),  # a look-ahead takes no text (a superset)
    ],
)
def test_lengths_of_common_patterns(pattern: str, expected: list[int]) -> None:
    assert matched(pattern) == expected


def test_the_keys_count() -> None:
    assert matched(r"\d{3}#", keys="0123456789*") == []
    assert matched(r"\d{3}#") == [4]


def test_long_repeats_are_capped() -> None:
    assert lengths(r"\d{1000}", CALLER_KEYS) == frozenset({CAP})
    assert lengths(r"\d{3,}", CALLER_KEYS) == frozenset(range(3, CAP + 1))


def test_an_unreadable_pattern_cannot_be_told() -> None:
    assert lengths("[0-9", CALLER_KEYS) is None


def test_describe() -> None:
    assert describe([4]) == "4"
    assert describe([4, 5, 6]) == "4 to 6"
    assert describe([2, 4, 5, 8]) == "2, 4 to 5 or 8"


# --- against every text: patterns built from what patterns are made of -----------------------------

KEYS = "01*"
ATOMS = ["0", "1", r"\*", "#", "a", ".", "[01]", "[^0]", r"\d", r"\D", r"\w", "[a-z]", "[*1]"]


def _patterns() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.lists(inner, min_size=2, max_size=3).map("".join),
            st.lists(inner, min_size=2, max_size=3).map(lambda parts: "(?:" + "|".join(parts) + ")"),
            st.tuples(inner, st.sampled_from(["?", "*", "+", "{2}", "{0,2}", "{1,3}", "{2,}"])).map(
                lambda pair: f"(?:{pair[0]}){pair[1]}"
            ),
        )

    return st.recursive(st.sampled_from(ATOMS), extend, max_leaves=6)


UP_TO = 5
TEXTS = {n: ["".join(t) for t in itertools.product(KEYS, repeat=n)] for n in range(UP_TO + 1)}


@settings(max_examples=300, deadline=None)
@given(_patterns(), st.booleans())
def test_lengths_are_exact_for_what_patterns_are_made_of(pattern: str, anchored: bool) -> None:
    if anchored:
        pattern = f"^{pattern}$"
    compiled = re.compile(pattern)
    really = [n for n in range(UP_TO + 1) if any(compiled.fullmatch(t) for t in TEXTS[n])]
    assert matched(pattern, KEYS, UP_TO) == really


@settings(max_examples=200, deadline=None)
@given(_patterns(), st.sampled_from([r"(?=1)", r"(?!0)", r"\b", "^", "$", r"(?:(1)\1)?"]), st.integers(0, 3))
def test_lengths_never_miss_a_length_the_pattern_matches(pattern: str, extra: str, where: int) -> None:
    """Look-arounds, anchors in the middle, back references: the answer may claim too much, never too
    little."""
    pattern = pattern[:where] + extra + pattern[where:] if where <= len(pattern) else pattern + extra
    try:
        compiled = re.compile(pattern)
    except re.error:
        return
    claimed = matched(pattern, KEYS, UP_TO)
    for n in range(UP_TO + 1):
        if any(compiled.fullmatch(t) for t in TEXTS[n]):
            assert n in claimed, (pattern, n)
