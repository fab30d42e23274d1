"""What the switchboard is told, fed into `Switchboard.handle(event, now)` by the service.

Callers handed over by their flow, what happens on the channels it placed or holds, call-backs the
store hands out and its answers, timers, the agents' phones, and the agents' own requests (the
`routing.events` agent events pass straight through to the router).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from routing import events as routing_events
from routing.model import RoutingConfig


@dataclass(frozen=True, slots=True)
class Customer:
    """The customer record a number belongs to, for screen pops."""

    id: str
    name: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


class DueCallback(Protocol):
    """What the switchboard needs of a call-back the store handed out (the store's record has these)."""

    @property
    def id(self) -> str: ...
    @property
    def contact_id(self) -> str: ...
    @property
    def number(self) -> str: ...
    @property
    def queue(self) -> str | None: ...
    @property
    def skills(self) -> dict[str, int]: ...
    @property
    def priority(self) -> int: ...
    @property
    def attempts(self) -> int: ...
    @property
    def requested_at(self) -> datetime: ...
    @property
    def place_since(self) -> datetime | None: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def time_zone(self) -> str: ...
    @property
    def customer_ref(self) -> str | None: ...
    @property
    def note(self) -> str | None: ...


# --- callers, from their flow ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallerQueued:
    """A flow put its caller (on `channel_id`) in `queue`. Given values override the queue's own:
    `skills`, `priority`, `max_wait`, `music`. `since` keeps the place of a caller who left for a
    call-back and came back; `offer_callback` and `offer_prompt` are the flow's call-back offer."""

    contact_id: str
    channel_id: str
    queue: str
    language: str = "en"
    skills: Mapping[str, int] | None = None
    priority: int | None = None
    max_wait: float | None = None
    music: str | None = None
    since: datetime | None = None
    offer_callback: routing_events.CallbackOffering | None = None
    offer_prompt: tuple[str, ...] = ()
    caller: str | None = None
    caller_name: str | None = None
    customer: Customer | None = None
    ivr_path: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CallerLeaving:
    """The waiting caller pressed the call-back key: out of the queue (no abandon), back to the flow."""

    contact_id: str


# --- channels -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LegAnswered:
    """A leg the switchboard placed (`Originate`) answered and entered the app."""

    channel_id: str


@dataclass(frozen=True, slots=True)
class LegDialed:
    """How the dial of a leg went (Asterisk's dial status: ANSWER, BUSY, NOANSWER, CONGESTION ...)."""

    channel_id: str
    status: str


@dataclass(frozen=True, slots=True)
class LegFailed:
    """A leg could not be placed at all (Asterisk refused the originate)."""

    channel_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ChannelGone:
    """A channel the switchboard holds (a waiting caller's, or a leg it placed) hung up or left the app;
    `cause` is the Q.850 cause when Asterisk gave one. `lost`: nobody hung up that we know of, the
    channel was found gone once Asterisk could be seen again (it restarted)."""

    channel_id: str
    cause: int | None = None
    lost: bool = False


@dataclass(frozen=True, slots=True)
class TalkFound:
    """A conversation the service found bridged when it started (it restarted while they talked): the
    caller's (or call-back customer's) channel and the agent's leg in bridge `bridge_id`, on the
    contact `contact_id`. It goes on, and ends in the store like any other."""

    contact_id: str
    customer_channel: str
    agent_leg: str
    bridge_id: str
    agent_id: str | None = None
    customer: Literal["caller", "customer"] = "caller"


@dataclass(frozen=True, slots=True)
class PlaybackEnded:
    """A prompt ended: played to its end, stopped, or refused by Asterisk."""

    playback_id: str


@dataclass(frozen=True, slots=True)
class TimerFired:
    timer_id: str


# --- agents' phones and the configuration ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Phone:
    """A phone as AMI sees it: registered, and Asterisk's device state (NOT_INUSE, INUSE, RINGING ...)."""

    registered: bool
    device_state: str = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class PhoneChanged:
    """The phone of PJSIP endpoint `endpoint` (`agent1`) changed."""

    endpoint: str
    phone: Phone


@dataclass(frozen=True, slots=True)
class PhonesSeen:
    """Every phone as it is now (after a (re)connect); None: phones are not watched, every agent's
    phone counts as able to ring."""

    phones: Mapping[str, Phone] | None


@dataclass(frozen=True, slots=True)
class Reloaded:
    """A new routing configuration: agents and queues; waiting callers and agents' states are kept."""

    config: RoutingConfig


# --- call-backs -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallbackDue:
    """The store handed this service a due call-back (claimed under its lease)."""

    callback: DueCallback
    customer: Customer | None = None


@dataclass(frozen=True, slots=True)
class CallbackWithdrawn:
    """A call-back this service holds is no longer its own to make: cancelled, rescheduled, taken by
    another worker, or its lease lost."""

    callback_id: str
    reason: str = "cancelled"


@dataclass(frozen=True, slots=True)
class DialApproved:
    """The store counted the attempt (`StartDial`): the customer may be dialed."""

    callback_id: str
    attempts: int


@dataclass(frozen=True, slots=True)
class DialRefused:
    """The store refused to start the attempt: the call-back is no longer this service's."""

    callback_id: str


@dataclass(frozen=True, slots=True)
class Stopping:
    """The service is stopping: phones still ringing are hung up."""


AgentRequest = (
    routing_events.AgentLoggedIn
    | routing_events.AgentLoggedOut
    | routing_events.AgentPaused
    | routing_events.AgentResumed
    | routing_events.WrapUpEnded
    | routing_events.SkillsChanged
)

Event = (
    CallerQueued
    | CallerLeaving
    | LegAnswered
    | LegDialed
    | LegFailed
    | ChannelGone
    | TalkFound
    | PlaybackEnded
    | TimerFired
    | PhoneChanged
    | PhonesSeen
    | Reloaded
    | CallbackDue
    | CallbackWithdrawn
    | DialApproved
    | DialRefused
    | Stopping
    | AgentRequest
)
