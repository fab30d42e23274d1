"""ARI's events and channels as typed values: the one place that reads Asterisk's JSON.

The ARI client turns each event it receives into one of these classes once (`parse_event`); every
other module matches on the classes, never on Asterisk's type strings or dict keys. An event type the
service has no use for becomes `Other`, kept with its name for logs. Every event keeps Asterisk's
`timestamp` (ISO 8601 text, as sent).

    StasisStart(channel, args)          a channel entered the app (`Stasis(app,args...)`, or an originate)
    StasisEnd(channel)                  it left the app (hung up, or sent on into the dialplan)
    ChannelHangupRequest(channel, cause)
    ChannelDestroyed(channel, cause)    gone; `cause` is the Q.850 cause (16 normal, 17 busy ...)
    ChannelDtmfReceived(channel, digit)
    ChannelStateChange(channel)         e.g. Ring -> Up
    ChannelVarset(channel, variable, value)
    PlaybackStarted / PlaybackContinuing / PlaybackFinished(playback)
    RecordingStarted / RecordingFinished / RecordingFailed(recording)
    Dial(peer, status)                  how a dial of `peer` goes (ANSWER, BUSY, NOANSWER ...)
    ApplicationReplaced(application)    another connection took the app over
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    return value if isinstance(value, str) else ""


def _mapping(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key)
    return value if isinstance(value, Mapping) else {}


def _int(raw: Mapping[str, Any], key: str) -> int | None:
    value = raw.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _target_channel(uri: str) -> str | None:
    return uri.removeprefix("channel:") if uri.startswith("channel:") else None


@dataclass(frozen=True, slots=True)
class Channel:
    """An ARI channel: its id and name (`PJSIP/agent1-0000002a`), state, caller, where it is in the
    dialplan (`exten` is the number dialed) and the dialplan application it runs (`Stasis`, with its
    data `hotline,agent,...`)."""

    id: str
    name: str = ""
    state: str = ""
    caller_number: str | None = None
    caller_name: str | None = None
    exten: str = ""
    context: str = ""
    app_name: str = ""
    app_data: str = ""
    language: str = ""

    @classmethod
    def parse(cls, raw: Any) -> Channel | None:
        """The channel in an event or REST answer; None when it has no id."""
        if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
            return None
        caller = _mapping(raw, "caller")
        dialplan = _mapping(raw, "dialplan")
        return cls(
            id=str(raw["id"]),
            name=_text(raw, "name"),
            state=_text(raw, "state"),
            caller_number=_text(caller, "number") or None,
            caller_name=_text(caller, "name") or None,
            exten=_text(dialplan, "exten"),
            context=_text(dialplan, "context"),
            app_name=_text(dialplan, "app_name"),
            app_data=_text(dialplan, "app_data"),
            language=_text(raw, "language"),
        )

    def in_app(self, app: str) -> bool:
        """Is the channel sitting in Stasis app `app`?"""
        return self.app_name == "Stasis" and (self.app_data == app or self.app_data.startswith(app + ","))


@dataclass(frozen=True, slots=True)
class Bridge:
    """An ARI bridge: its id, the name its creator gave it and the channels in it."""

    id: str
    name: str = ""
    channels: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: Any) -> Bridge | None:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
            return None
        channels = raw.get("channels")
        return cls(
            id=str(raw["id"]),
            name=_text(raw, "name"),
            channels=tuple(str(c) for c in channels if isinstance(c, str))
            if isinstance(channels, list)
            else (),
        )


@dataclass(frozen=True, slots=True)
class Playback:
    id: str
    media_uri: str = ""
    target_uri: str = ""
    state: str = ""
    language: str = ""
    next_media_uri: str = ""

    @property
    def channel_id(self) -> str | None:
        return _target_channel(self.target_uri)


@dataclass(frozen=True, slots=True)
class Recording:
    name: str
    target_uri: str = ""
    state: str = ""
    duration: float | None = None
    cause: str = ""

    @property
    def channel_id(self) -> str | None:
        return _target_channel(self.target_uri)


@dataclass(frozen=True, slots=True)
class _OnChannel:
    """An event about one channel."""

    channel: Channel

    @property
    def channel_id(self) -> str:
        return self.channel.id


@dataclass(frozen=True, slots=True)
class StasisStart(_OnChannel):
    args: tuple[str, ...] = ()
    timestamp: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class StasisEnd(_OnChannel):
    timestamp: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class ChannelHangupRequest(_OnChannel):
    cause: int | None = None
    timestamp: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class ChannelDestroyed(_OnChannel):
    cause: int | None = None
    cause_txt: str = ""
    timestamp: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class ChannelDtmfReceived(_OnChannel):
    digit: str
    duration_ms: int | None = None
    timestamp: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class ChannelStateChange(_OnChannel):
    timestamp: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class ChannelVarset:
    channel: Channel | None
    variable: str
    value: str
    timestamp: str = field(default="", compare=False)

    @property
    def channel_id(self) -> str | None:
        return None if self.channel is None else self.channel.id


@dataclass(frozen=True, slots=True)
class _OfPlayback:
    """An event about one playback (on a channel, or on a bridge)."""

    playback: Playback
    timestamp: str = field(default="", compare=False)

    @property
    def channel_id(self) -> str | None:
        return self.playback.channel_id


@dataclass(frozen=True, slots=True)
class PlaybackStarted(_OfPlayback):
    pass


@dataclass(frozen=True, slots=True)
class PlaybackContinuing(_OfPlayback):
    pass


@dataclass(frozen=True, slots=True)
class PlaybackFinished(_OfPlayback):
    pass


@dataclass(frozen=True, slots=True)
class _OfRecording:
    """An event about one recording."""

    recording: Recording
    timestamp: str = field(default="", compare=False)

    @property
    def channel_id(self) -> str | None:
        return self.recording.channel_id


@dataclass(frozen=True, slots=True)
class RecordingStarted(_OfRecording):
    pass


@dataclass(frozen=True, slots=True)
class RecordingFinished(_OfRecording):
    pass


@dataclass(frozen=True, slots=True)
class RecordingFailed(_OfRecording):
    pass


@dataclass(frozen=True, slots=True)
class Dial:
    """How the dial of `peer` goes: `status` is ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL,
    or empty while it rings."""

    peer: Channel
    status: str = ""

    timestamp: str = field(default="", compare=False)

    @property
    def channel_id(self) -> str:
        return self.peer.id


@dataclass(frozen=True, slots=True)
class ApplicationReplaced:
    application: str

    timestamp: str = field(default="", compare=False)

    @property
    def channel_id(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Other:
    """An event the service has no use for, under Asterisk's name for it."""

    name: str
    channel_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    timestamp: str = field(default="", compare=False)


AriEvent = (
    StasisStart
    | StasisEnd
    | ChannelHangupRequest
    | ChannelDestroyed
    | ChannelDtmfReceived
    | ChannelStateChange
    | ChannelVarset
    | PlaybackStarted
    | PlaybackContinuing
    | PlaybackFinished
    | RecordingStarted
    | RecordingFinished
    | RecordingFailed
    | Dial
    | ApplicationReplaced
    | Other
)

#: The event types the service reads; the event filter asks Asterisk for these alone (a call makes
#: dozens of others: variables set, dialplan steps, state changes, prompts started).
SERVICE_EVENTS: tuple[str, ...] = (
    "StasisStart",
    "StasisEnd",
    "ChannelHangupRequest",
    "ChannelDestroyed",
    "ChannelDtmfReceived",
    "PlaybackFinished",
    "RecordingFinished",
    "RecordingFailed",
    "Dial",
    "ApplicationReplaced",
)

#: Events after which a channel is gone from the app.
ChannelEnd = StasisEnd | ChannelDestroyed


def ends_channel(event: AriEvent) -> bool:
    """Is this the end of its channel in the app (it left Stasis, or it is destroyed)?"""
    return isinstance(event, StasisEnd | ChannelDestroyed)


def _playback(raw: Mapping[str, Any]) -> Playback | None:
    playback = _mapping(raw, "playback")
    if not isinstance(playback.get("id"), str):
        return None
    return Playback(
        str(playback["id"]),
        _text(playback, "media_uri"),
        _text(playback, "target_uri"),
        _text(playback, "state"),
        _text(playback, "language"),
        _text(playback, "next_media_uri"),
    )


def _recording(raw: Mapping[str, Any]) -> Recording:
    recording = _mapping(raw, "recording")
    duration = recording.get("duration")
    return Recording(
        _text(recording, "name"),
        _text(recording, "target_uri"),
        _text(recording, "state"),
        float(duration) if isinstance(duration, int | float) and not isinstance(duration, bool) else None,
        _text(recording, "cause"),
    )


_CHANNEL_EVENTS: dict[str, type[StasisEnd | ChannelStateChange]] = {
    "StasisEnd": StasisEnd,
    "ChannelStateChange": ChannelStateChange,
}
_PLAYBACK_EVENTS: dict[str, type[PlaybackStarted | PlaybackContinuing | PlaybackFinished]] = {
    "PlaybackStarted": PlaybackStarted,
    "PlaybackContinuing": PlaybackContinuing,
    "PlaybackFinished": PlaybackFinished,
}
_RECORDING_EVENTS: dict[str, type[RecordingStarted | RecordingFinished | RecordingFailed]] = {
    "RecordingStarted": RecordingStarted,
    "RecordingFinished": RecordingFinished,
    "RecordingFailed": RecordingFailed,
}


def parse_event(raw: Mapping[str, Any]) -> AriEvent:
    """The typed value of one event as Asterisk sent it (a JSON object). Never raises: an event with
    missing or odd parts becomes `Other`."""
    name = _text(raw, "type")
    at = _text(raw, "timestamp")
    channel = Channel.parse(raw.get("channel"))
    if channel is not None:
        if name == "StasisStart":
            args = raw.get("args")
            return StasisStart(channel, tuple(str(a) for a in args) if isinstance(args, list) else (), at)
        if name in _CHANNEL_EVENTS:
            return _CHANNEL_EVENTS[name](channel, at)
        if name == "ChannelHangupRequest":
            return ChannelHangupRequest(channel, _int(raw, "cause"), at)
        if name == "ChannelDestroyed":
            return ChannelDestroyed(channel, _int(raw, "cause"), _text(raw, "cause_txt"), at)
        if name == "ChannelDtmfReceived" and _text(raw, "digit"):
            return ChannelDtmfReceived(channel, _text(raw, "digit"), _int(raw, "duration_ms"), at)
    if name == "ChannelVarset":
        return ChannelVarset(channel, _text(raw, "variable"), _text(raw, "value"), at)
    if name in _PLAYBACK_EVENTS:
        playback = _playback(raw)
        if playback is not None:
            return _PLAYBACK_EVENTS[name](playback, at)
    if name in _RECORDING_EVENTS:
        return _RECORDING_EVENTS[name](_recording(raw), at)
    if name == "Dial":
        peer = Channel.parse(raw.get("peer"))
        if peer is not None:
            return Dial(peer, _text(raw, "dialstatus"), at)
    if name == "ApplicationReplaced":
        return ApplicationReplaced(_text(raw, "application"), at)
    return Other(name or "(no type)", channel.id if channel is not None else None, raw, at)
