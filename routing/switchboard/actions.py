"""What the switchboard asks the service to do, returned by `Switchboard.handle`, in order.

Telephony is named in the contact center's words (music, prompts, legs, bridges); the service carries
each out over ARI. A request Asterisk refuses comes back as an event so the engine decides what next:
a refused `Play` as `PlaybackEnded`, a refused `Originate` as `LegFailed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from contacts import EventName
from routing.callbacks import Outcome

#: Which Stasis app a leg enters when answered: the calls' app, or the call-backs' own.
App = Literal["calls", "callbacks"]


@dataclass(frozen=True, slots=True)
class MusicOn:
    channel_id: str
    music: str


@dataclass(frozen=True, slots=True)
class MusicOff:
    channel_id: str


@dataclass(frozen=True, slots=True)
class Play:
    """Play `media` (ARI media URIs: `sound:...`, `number:3`, `digits:...`); `PlaybackEnded` follows."""

    channel_id: str
    playback_id: str
    media: tuple[str, ...]
    language: str | None = None


@dataclass(frozen=True, slots=True)
class StopPlayback:
    playback_id: str


@dataclass(frozen=True, slots=True)
class Originate:
    """Place a leg to `endpoint` that enters `app` with `args` when answered (`LegAnswered`); it rings at
    most `timeout` seconds. `channel_id`s all have one length, so none is a prefix of another."""

    channel_id: str
    endpoint: str
    app: App
    args: tuple[str, ...]
    caller_id: str | None
    timeout: int
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HangUp:
    channel_id: str


@dataclass(frozen=True, slots=True)
class Bridge:
    """Put the channels together in a new mixing bridge."""

    bridge_id: str
    channel_ids: tuple[str, ...]
    name: str


@dataclass(frozen=True, slots=True)
class EndBridge:
    bridge_id: str


@dataclass(frozen=True, slots=True)
class QueueAnswered:
    """Tell the caller's flow: an agent has them (their keys are no longer the flow's)."""

    contact_id: str


@dataclass(frozen=True, slots=True)
class QueueExited:
    """Give the caller back to their flow: `reason` is the overflow's ("max wait", "no agents", "no
    routing") or "callback" (they chose a call-back, keeping their place)."""

    contact_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class RecordEvent:
    """A contact event for the store; `call_id` is the caller's channel (None for a call-back's)."""

    contact_id: str
    type: EventName
    data: Mapping[str, Any] = field(default_factory=dict)
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class Publish:
    """A message for the live stream: an agent's new state (`agent_state`) or a `screen_pop`."""

    message: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class StartTimer:
    timer_id: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer_id: str


@dataclass(frozen=True, slots=True)
class StartDial:
    """Count the attempt in the store before the customer's phone rings; `DialApproved` or
    `DialRefused` follows. `contact_id` is the attempt's own contact."""

    callback_id: str
    contact_id: str


@dataclass(frozen=True, slots=True)
class SettleAttempt:
    """The attempt ended at `at`: store its outcome; `next_at` is when to try again (None: no retry)."""

    callback_id: str
    outcome: Outcome
    next_at: datetime | None
    agent_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ReleaseCallback:
    """Give the call-back's lease back now (its placeholder left the queue without an attempt, e.g. it
    expired while waiting). A call-back the switchboard simply stops holding keeps its lease until it
    lapses, and is claimed again after that."""

    callback_id: str


@dataclass(frozen=True, slots=True)
class Log:
    """Something an operator should see in the log (a refusal, a misconfiguration); `fix` says what to do."""

    level: Literal["info", "warning", "error"]
    message: str
    fields: Mapping[str, Any] = field(default_factory=dict)


Telephony = MusicOn | MusicOff | Play | StopPlayback | Originate | HangUp | Bridge | EndBridge

Action = (
    Telephony
    | QueueAnswered
    | QueueExited
    | RecordEvent
    | Publish
    | StartTimer
    | CancelTimer
    | StartDial
    | SettleAttempt
    | ReleaseCallback
    | Log
)
