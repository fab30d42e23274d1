"""Everything `routing` raises, one tree, each message naming the thing and the fix::

RoutingError
 ├── IllegalTransition   an agent event the agent's state does not allow (the API answers 409)
 ├── UnknownAgent        an event names an agent the routing configuration does not have
 ├── InvalidSkills       a live skill change with a level outside 1-10
 ├── IllegalCallbackMove a call-back move its state does not allow (routing.callbacks)
 └── InvalidCallbackPolicy  a retry policy that cannot work (routing.callbacks)
"""

from __future__ import annotations

from collections.abc import Iterable


class RoutingError(Exception):
    """Base of every routing error."""


class IllegalTransition(RoutingError):
    """The agent's state does not allow the event, e.g. pausing an agent who is on a call."""

    def __init__(self, agent_id: str, state: str, event: str, allowed: Iterable[str] = ()) -> None:
        self.agent_id = agent_id
        self.state = state
        self.event = event
        self.allowed = tuple(allowed)
        hint = f"; while {state} the agent can: {', '.join(self.allowed)}" if self.allowed else ""
        super().__init__(f"agent '{agent_id}' cannot {event} while {state}{hint}")


class UnknownAgent(RoutingError):
    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        super().__init__(f"no agent '{agent_id}' in the routing configuration; add it under `agents:`")


class InvalidSkills(RoutingError):
    def __init__(self, agent_id: str, skill: str, level: int) -> None:
        self.agent_id = agent_id
        self.skill = skill
        self.level = level
        super().__init__(
            f"agent '{agent_id}': skill '{skill}' has level {level}; skill levels run from 1 to 10"
        )
