"""Turn prompt names and said values into the media URIs a `Play` action carries.

A flow's `prompts:` maps a name to a file, either one for every language or one per language; any other
name is used as written (an Asterisk core sound such as `digits/1`). With `sounds: DIR` the flow brings
its own recordings, one folder per language, so the URI is `sound:DIR/<language>/<file>`; without it the
URI is `sound:<file>` and the `Play` action's language tells Asterisk which language folder to use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Protocol


class Sounds(Protocol):
    """What playing a prompt needs of a flow: its prompt table, its sounds folder, its first language."""

    @property
    def prompts(self) -> Mapping[str, str | Mapping[str, str]]: ...
    @property
    def sounds(self) -> str | None: ...
    @property
    def default_language(self) -> str: ...


SAYABLE_DIGITS = frozenset("0123456789*#")
# A media list reaches Asterisk comma-separated, so a said value keeps only characters Asterisk can spell.
_SAYABLE_CHARACTER = re.compile(r"[A-Za-z0-9.@+\-_*#]")
_INTEGER_PART = re.compile(r"\s*([+-]?\d+)")


def prompt_file(flow: Sounds, language: str, name: str) -> str:
    """The file a prompt name stands for in `language`."""
    spec = flow.prompts.get(name, name)
    if isinstance(spec, str):
        return spec
    return spec.get(language) or spec.get(flow.default_language) or next(iter(spec.values()), name)


def prompt_uri(flow: Sounds, language: str, name: str) -> str:
    file = prompt_file(flow, language, name)
    if flow.sounds:
        return f"sound:{flow.sounds.rstrip('/')}/{language}/{file}"
    return f"sound:{file}"


def prompt_media(flow: Sounds, language: str, names: Iterable[str]) -> tuple[str, ...]:
    return tuple(prompt_uri(flow, language, name) for name in names)


def say_media(value: str, how: str) -> str | None:
    """The URI saying `value` digit by digit, as a number or letter by letter; None when nothing is left
    to say (no digits, no integer part)."""
    if how == "number":
        match = _INTEGER_PART.match(value)
        return f"number:{int(match.group(1))}" if match else None
    if how == "characters":
        kept = "".join(_SAYABLE_CHARACTER.findall(value))
        return f"characters:{kept}" if kept else None
    digits = "".join(c for c in value if c in SAYABLE_DIGITS)
    return f"digits:{digits}" if digits else None
