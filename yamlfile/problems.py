"""One mistake in a YAML file, said the same way for every file the service reads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake in a file: the file, the 1-based line and column, the dotted key path and what is wrong,
    followed by what to write instead.

    The path is empty when the mistake is not inside a key (a YAML syntax error); the line is 0 when it is
    not in the file at all (an unreadable file, an environment variable), and then no position is shown.
    """

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line > 0 else self.file
        if self.path:
            return f"{where}: {self.path}: {self.message}"
        return f"{where}: {self.message}"


class YamlFileError(Exception):
    """The base of every error the yamlfile package raises on purpose."""


class ProblemsFound(YamlFileError):
    """A file has mistakes; `problems` holds every one found, in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(sorted(dict.fromkeys(problems)))
        super().__init__("\n".join(str(p) for p in self.problems))
