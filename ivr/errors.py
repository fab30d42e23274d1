"""What goes wrong in the flow language, and where.

The exception tree::

    Exception
    └── IvrError                  anything the ivr package raises on purpose
        └── FlowErrors            flow files that cannot be loaded; carries every FlowError found

A :class:`FlowError` is not raised on its own: a bad flow file usually has several mistakes, and an admin
fixes them best from one complete list, so loading collects them all and raises one :class:`FlowErrors`.
Each reads like a compiler message, ``flows/main.yaml:12:5: nodes.sales.options.1: unknown node 'sails'
; did you mean 'sales'?``, so editors and terminals can jump to the spot. A FlowError is the
`yamlfile.Problem` every YAML file of the service reports its mistakes with.
"""

from __future__ import annotations

from collections.abc import Iterable

from yamlfile import Problem

#: One mistake in a flow file: the file, the 1-based line and column, the dotted key path and what to fix.
FlowError = Problem


class IvrError(Exception):
    """The base of every error the ivr package raises on purpose."""


class FlowErrors(IvrError):
    """Flow files could not be loaded. `errors` holds every mistake found, sorted by file, line and
    column."""

    def __init__(self, errors: Iterable[FlowError]) -> None:
        self.errors: tuple[FlowError, ...] = tuple(sorted(errors))
        super().__init__("\n".join(str(e) for e in self.errors))
