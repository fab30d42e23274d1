"""What happens to agents and waiting contacts, fed into `Router.handle(event, now)` by the service."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ContactQueued:
    """A caller (or a call-back placeholder) joins `queue`. `skills` and `priority` from the flow's queue
    node override the queue's own when given; `max_wait` likewise."""

    contact_id: str
    queue: str
    skills: dict[str, int] | None = None
    priority: int | None = None
    max_wait: float | None = None
    callback: bool = False
    caller: str | None = None


@dataclass(frozen=True, slots=True)
class ContactLeft:
    """The caller hung up while waiting or ringing (abandoned), or a call-back was cancelled."""

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
