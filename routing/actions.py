"""What the router asks the service to do, returned by `Router.handle`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contacts import EventName


@dataclass(frozen=True, slots=True)
class OfferContact:
    """Ring `agent_id` for `contact_id`; answer with `AgentAnswered` or `AgentNoAnswer` (after
    `ring_timeout` at most)."""

    contact_id: str
    agent_id: str
    ring_timeout: float


@dataclass(frozen=True, slots=True)
class CancelOffer:
    """Stop ringing the agent (the caller left)."""

    contact_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class StartTimer:
    timer_id: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    timer_id: str


@dataclass(frozen=True, slots=True)
class AnnouncePosition:
    """Tell the waiting caller their place (1 = next) and the estimated wait in seconds."""

    contact_id: str
    position: int
    estimated_wait: float


@dataclass(frozen=True, slots=True)
class OfferCallback:
    """Play the flow's call-back offer to the waiting caller, who is at `position` (1 = next) with about
    `estimated_wait` seconds to go (None: unknown)."""

    contact_id: str
    position: int
    estimated_wait: float | None


@dataclass(frozen=True, slots=True)
class Overflow:
    """The caller leaves the queue for the flow's overflow node (max wait, or no agent can ever take it)."""

    contact_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class RecordEvent:
    """A contact event for the store: queued, position_announced, callback_offered, agent_offered,
    agent_no_answer, answered, abandoned (with where="queue" and wait), wrapup_ended."""

    contact_id: str
    type: EventName
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    """For the live stream and supervisors: the agent's new state and why."""

    agent_id: str
    state: str
    reason: str | None = None


Action = (
    OfferContact
    | CancelOffer
    | StartTimer
    | CancelTimer
    | AnnouncePosition
    | OfferCallback
    | Overflow
    | RecordEvent
    | AgentStateChanged
)
