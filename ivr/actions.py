"""What the engine asks an adapter to do on the call, returned by `Session.handle`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contacts import EventName, produced_by


@dataclass(frozen=True, slots=True)
class Play:
    """Play media URIs in order (`sound:...`, `digits:123`, `number:42`, `characters:abc`).

    With `barge_in`, a key press stops the playback (the adapter sends `PlaybackFinished` then or later;
    the engine also sends `StopPlayback`).
    """

    playback_id: str
    media: tuple[str, ...]
    language: str
    barge_in: bool = False


@dataclass(frozen=True, slots=True)
class StopPlayback:
    playback_id: str


@dataclass(frozen=True, slots=True)
class StartTimer:
    timer_id: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer_id: str


@dataclass(frozen=True, slots=True)
class SetVariable:
    """Set a channel variable, so the dialplan and agents see what the caller chose."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Lookup:
    """An HTTP request to a CRM. Answer with `LookupAnswered` or `LookupFailed` within `timeout`."""

    request_id: str
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    timeout: float = 2.0


@dataclass(frozen=True, slots=True)
class RecordEvent:
    """A contact event for the CRM store: `type` is one of `ivr.actions.EVENT_TYPES`."""

    type: EventName
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallbackOfferSpec:
    """When routing offers a queued caller a call-back, and what they hear.

    Offer once the caller has waited `after` seconds, or at once when the estimated wait is over
    `estimate_over` (None: never for that reason); then again every `every` seconds (0: once). `prompt`
    is media URIs in the caller's language, ready for a `Play`; pressing `key` reaches the engine as a
    `Digit`, which answers with `LeaveQueue`.
    """

    key: str
    after: float
    estimate_over: float | None
    every: float
    prompt: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Enqueue:
    """Hand the caller to skill routing.

    `callback`: offer a call-back while the caller waits (None: never). `since`: when the caller's place
    dates from; None means now, a time means the caller rejoins after declining a call-back and keeps the
    place they had.
    """

    queue: str
    skills: dict[str, int]
    priority: int
    music: str
    announce_every: float
    max_wait: float
    callback: CallbackOfferSpec | None
    language: str
    variables: dict[str, str] = field(default_factory=dict)
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class LeaveQueue:
    """Take the queued caller out of routing, leaving nothing running for them there.

    Answer with `events.QueueExited(reason=reason)` once they are out, or with `events.QueueAnswered()`
    when an agent already has them.
    """

    reason: str = "callback"


@dataclass(frozen=True, slots=True)
class RequestCallback:
    """The caller asked to be called back at `number`; they hang up and keep their place. The engine
    waits for `CallbackStored` (then thanks the caller) or `CallbackRefused` (then asks again).

    `place_since`: for a caller who asked while waiting in the queue, when they first joined it, so the
    call-back keeps their place; None from a `callback` node.
    """

    queue: str
    number: str
    skills: dict[str, int]
    priority: int
    language: str
    variables: dict[str, str] = field(default_factory=dict)
    place_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Transfer:
    """`kind` is extension (dial `target` in `context`), endpoint (PJSIP/...) or number (external)."""

    kind: str
    target: str
    context: str | None
    timeout: float


@dataclass(frozen=True, slots=True)
class Voicemail:
    """Record a message for `mailbox`; answer with `RecordingFinished`."""

    mailbox: str
    max_duration: float
    beep: bool
    terminator: str
    recording_name: str


@dataclass(frozen=True, slots=True)
class Hangup:
    cause: str = "normal"


Action = (
    Play
    | StopPlayback
    | StartTimer
    | CancelTimer
    | SetVariable
    | Lookup
    | RecordEvent
    | Enqueue
    | LeaveQueue
    | RequestCallback
    | Transfer
    | Voicemail
    | Hangup
)

#: Contact events the engine records; the store (hotline.store) knows these names.
#: The contact events the IVR engine records (`contacts.EVENTS` is the registry of them all).
EVENT_TYPES: tuple[EventName, ...] = produced_by("ivr")
