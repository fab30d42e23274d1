"""Driving an IVR `Session` by hand in the engine's tests: the caller calls, prompts end, timers fire,
keys are pressed, all at a time the test gives; and what came out, read back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ivr import actions as act
from ivr import events as ev
from ivr.session import Session

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
CALLER = "+48221234567"


def start(
    s: Session, caller: str | None = CALLER, *, at: datetime = NOW, **variables: str
) -> list[act.Action]:
    """The call arrives from `caller` on number 100, with channel `variables`."""
    return s.handle(ev.CallStarted(caller=caller, dialed="100", variables=variables), at)


def finish(s: Session, at: datetime = NOW) -> list[act.Action]:
    """The prompt playing now ends."""
    assert s.playback_id is not None, s.waiting_for
    return s.handle(ev.PlaybackFinished(s.playback_id), at)


def fire(s: Session, at: datetime = NOW) -> list[act.Action]:
    """The timer running now fires."""
    assert s.timer_id is not None, s.waiting_for
    return s.handle(ev.TimerFired(s.timer_id), at)


def press(s: Session, keys: str, at: datetime = NOW) -> list[act.Action]:
    """The caller presses `keys`, one after the other."""
    out: list[act.Action] = []
    for key in keys:
        out += s.handle(ev.Digit(key), at)
    return out


def recorded(out: list[act.Action], type_: str) -> list[Any]:
    """The data of the contact events of `type_` among `out`."""
    return [a.data for a in out if isinstance(a, act.RecordEvent) and a.type == type_]


def played(out: list[act.Action]) -> list[tuple[str, ...]]:
    """The media of every prompt among `out`."""
    return [a.media for a in out if isinstance(a, act.Play)]
