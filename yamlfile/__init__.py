"""YAML files an admin writes, read one way: text in, plain values with a position for every key out, and
every mistake as a `Problem` that reads ``file:line:column: key.path: what is wrong; what to write
instead``.

Pure: no I/O. The flows (`ivr.loader`), the service config (`hotline.config`) and the routing file
(`hotline.agents.routing_file`) all read their YAML with `read_yaml` and word their schema errors with
`Schema`, so the same mistake reads the same way in each.

The exception tree::

    Exception
    └── YamlFileError         anything the yamlfile package raises on purpose
        └── ProblemsFound     a file has mistakes; carries every Problem found

The readers of each kind of file raise their own exceptions (`FlowErrors`, `ConfigError`), carrying these
`Problem` objects.
"""

from yamlfile.positions import Path, Position, Positions
from yamlfile.problems import Problem, ProblemsFound, YamlFileError
from yamlfile.reader import (
    MAX_ALIAS_VALUES,
    MAX_BYTES,
    MAX_DEPTH,
    MAX_VALUES,
    Document,
    Limits,
    core_value,
    read_yaml,
)
from yamlfile.schema import PATTERNS, Issue, Schema, Walk, describe, did_you_mean, type_pattern

__all__ = [
    "MAX_ALIAS_VALUES",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_VALUES",
    "PATTERNS",
    "Document",
    "Issue",
    "Limits",
    "Path",
    "Position",
    "Positions",
    "Problem",
    "ProblemsFound",
    "Schema",
    "Walk",
    "YamlFileError",
    "core_value",
    "describe",
    "did_you_mean",
    "read_yaml",
    "type_pattern",
]
