"""Pieces of messages that tell an admin what to write instead: the closest name, the names there are."""

from __future__ import annotations

from collections.abc import Iterable

from yamlfile.schema import did_you_mean as yaml_did_you_mean

#: The most names a message lists before it cuts the list short.
LISTED = 8


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`; did you mean 'x'?` for the closest of `choices`, or nothing: the one hint of every YAML file."""
    return yaml_did_you_mean(word, choices)


def listed(names: Iterable[str]) -> str:
    """`a, b, c`, cut short after `LISTED` names."""
    shown = list(names)
    text = ", ".join(shown[:LISTED])
    return text + ", ..." if len(shown) > LISTED else text


def either(words: Iterable[str]) -> str:
    """`a, b or c`."""
    shown = list(words)
    return ", ".join(shown[:-1]) + " or " + shown[-1] if len(shown) > 1 else "".join(shown)
