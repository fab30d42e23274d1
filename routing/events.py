"""What happens to agents and waiting contacts, fed into `Router.handle(event, now)` by the service."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CallbackOffering:
    """When a waiting caller hears the flow's call-back offer: first `after` seconds into their wait, or
    at once when their estimated wait is over `estimate_over` seconds; then again every `every` seconds
    (0: once)."""

    after: float
    estimate_over: float | None = None
    every: float = 0.0

    def __post_init__(self) -> None:
        for name in ("after", "every"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"call-back offer: `{name}` is {getattr(self, name):g} s; give 0 or more seconds"
                )
        if self.estimate_over is not None and self.estimate_over < 0:
            raise ValueError(
                f"call-back offer: `estimate_over` is {self.estimate_over:g} s; give 0 or more seconds, "
                "or none to offer on time alone"
            )


@dataclass(frozen=True, slots=True)
class ContactQueued:
    """A caller (or a call-back placeholder) joins `queue`. `skills` and `priority` from the flow's queue
    node override the queue's own when given; `max_wait` likewise.

    `since` keeps a place across a call-back: a placeholder (or a caller who declined the call-back and
    came back) ranks, ages and escalates as if waiting since then, and its max wait runs for what is
    left. `offer_callback` lets the router decide when the waiting caller hears the call-back offer."""

    contact_id: str
    queue: str
    skills: dict[str, int] | None = None
    priority: int | None = None
    max_wait: float | None = None
    callback: bool = False
    caller: str | None = None
    since: datetime | None = None
    offer_callback: CallbackOffering | None = None


@dataclass(frozen=True, slots=True)
class ContactLeft:
    """The caller hung up while waiting or ringing (abandoned), a call-back was cancelled, or the caller
    chose a call-back (reason "callback": no abandoned record; the placeholder keeps their place)."""

    contact_id: str
    reason: str = "abandoned"


@dataclass(frozen=True, slots=True)
class AgentLoggedIn:
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentLoggedOut:
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentPaused:
    agent_id: str
    reason: str = "break"


@dataclass(frozen=True, slots=True)
class AgentResumed:
    agent_id: str


@dataclass(frozen=True, slots=True)
class AgentAnswered:
    """The agent offered `contact_id` answered; caller and agent are bridged."""

    agent_id: str
    contact_id: str


@dataclass(frozen=True, slots=True)
class AgentNoAnswer:
    """The agent's phone rang out, was busy or declined: the agent is paused ("no answer")."""

    agent_id: str
    contact_id: str
    reason: str = "no answer"


@dataclass(frozen=True, slots=True)
class CallEnded:
    """Caller or agent hung up after they were bridged: the agent goes to wrap-up."""

    contact_id: str
    by: str = "caller"


@dataclass(frozen=True, slots=True)
class WrapUpEnded:
    """The agent ended wrap-up early (the wrap-up timer ends it otherwise)."""

    agent_id: str


@dataclass(frozen=True, slots=True)
class DeviceChanged:
    """The agent's phone: `reachable` (registered and not busy with another call) or not."""

    agent_id: str
    reachable: bool


@dataclass(frozen=True, slots=True)
class SkillsChanged:
    agent_id: str
    skills: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TimerFired:
    timer_id: str


Event = (
    ContactQueued
    | ContactLeft
    | AgentLoggedIn
    | AgentLoggedOut
    | AgentPaused
    | AgentResumed
    | AgentAnswered
    | AgentNoAnswer
    | CallEnded
    | WrapUpEnded
    | DeviceChanged
    | SkillsChanged
    | TimerFired
)
