"""Pieces of messages that tell an admin what to write instead: the closest name, the names there are."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: The most names a message lists before it cuts the list short.
LISTED = 8


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest of `choices`, or nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def listed(names: Iterable[str]) -> str:
    """`a, b, c`, cut short after `LISTED` names."""
    shown = list(names)
    text = ", ".join(shown[:LISTED])
    return text + ", ..." if len(shown) > LISTED else text


def either(words: Iterable[str]) -> str:
    """`a, b or c`."""
    shown = list(words)
    return ", ".join(shown[:-1]) + " or " + shown[-1] if len(shown) > 1 else "".join(shown)
