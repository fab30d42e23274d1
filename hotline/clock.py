"""The service's one clock: the pure engines never read it; the shell reads it once per event it feeds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def offset_clock(at: datetime) -> Clock:
    """A clock that starts at `at` and runs at the real pace: a demo or test of the opening hours."""
    delta = at - datetime.now(UTC)
    return lambda: datetime.now(UTC) + delta
