"""What happens to a call, fed into `Session.handle(event, now)` by an adapter (ARI, FastAGI, simulator)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class CallStarted:
    """The call reached the flow. `caller` is None when the number is withheld."""

    caller: str | None
    dialed: str
    variables: dict[str, str] = field(default_factory=dict)
    caller_name: str | None = None


@dataclass(frozen=True, slots=True)
class CallResumed:
    """The call goes on in the flow after the service restarted: it enters `node` of `flow` again, with
    the language and variables it had (as far as its contact events tell), and, when that node is a
    queue, keeps the place it held since `place_since`."""

    caller: str | None
    dialed: str
    flow: str
    node: str
    language: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    caller_name: str | None = None
    place_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class CallLost:
    """The call is gone, and not because the caller hung up: Asterisk stopped, or the channel vanished
    while the service could not see it."""

    reason: str


@dataclass(frozen=True, slots=True)
class Digit:
    """The caller pressed a key (0-9, *, #, A-D)."""

    digit: str


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    """A `Play` action's prompts have all been played (or were stopped)."""

    playback_id: str


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A `StartTimer` ran out without being cancelled."""

    timer_id: str


@dataclass(frozen=True, slots=True)
class LookupAnswered:
    """The CRM answered a `Lookup` with an HTTP status and a JSON body (None when not JSON)."""

    request_id: str
    status: int
    body: Any


@dataclass(frozen=True, slots=True)
class LookupFailed:
    """The lookup timed out, could not connect, or the adapter gave up."""

    request_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class RecordingFinished:
    """A voicemail recording ended; `duration` in seconds."""

    duration: float = 0.0


@dataclass(frozen=True, slots=True)
class QueueExited:
    """Routing gave the call back to the flow: the wait ran out, no agent can take it, or (`callback`,
    answering a `LeaveQueue`) the caller left to ask for a call-back."""

    reason: str = "overflow"


@dataclass(frozen=True, slots=True)
class QueueAnswered:
    """An agent answered the queued caller: from now on their keys are for the agent, not the flow."""


@dataclass(frozen=True, slots=True)
class TransferFailed:
    """The transfer target did not answer, was busy or unreachable."""

    reason: str = "no answer"


@dataclass(frozen=True, slots=True)
class CallbackStored:
    """The call-back asked for by the last `RequestCallback` is kept: only now is the caller thanked."""

    callback_id: str


@dataclass(frozen=True, slots=True)
class CallbackRefused:
    """The call-back asked for by the last `RequestCallback` was not kept (the store refused the number,
    say one without its country code, or could not take it); `reason` is for the contact record."""

    reason: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """The caller hung up."""


@dataclass(frozen=True, slots=True)
class ServiceHangup:
    """The service ends the call itself, neither the caller nor the flow: it is stopping, or it lost its
    conversation with Asterisk about the channel. `reason` is a short word for the contact record
    (`service_stopping`, `agi_error`); `error`, when a fault ended the call, says what went wrong."""

    reason: str
    error: str | None = None


Event = (
    CallStarted
    | CallResumed
    | CallLost
    | Digit
    | PlaybackFinished
    | TimerFired
    | LookupAnswered
    | LookupFailed
    | RecordingFinished
    | QueueExited
    | QueueAnswered
    | TransferFailed
    | CallbackStored
    | CallbackRefused
    | Hangup
    | ServiceHangup
)
