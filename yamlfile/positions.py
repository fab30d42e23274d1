"""Where each key path of a YAML file is written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

#: A key path: mapping keys as written, list indexes as numbers.
Path = tuple[str | int, ...]


class Position(NamedTuple):
    """1-based line and column in a file."""

    line: int
    column: int


@dataclass(frozen=True)
class Positions:
    """Where each key path of a file is written: its key and, for a scalar, its value."""

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
