"""Agent states as one table of legal transitions, after h11's `_state.py`.

Every agent event the router accepts is a row below; anything else raises `IllegalTransition` with the
agent, the state and the event named. Reachability of the phone (`DeviceChanged`) and skills are not
states: they decide whether an agent is offered calls without moving them in this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from routing.errors import IllegalTransition


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class AgentEvent(StrEnum):
    LOGIN = "log in"
    LOGOUT = "log out"
    PAUSE = "pause"
    RESUME = "resume"
    OFFER = "be offered a call"
    ANSWER = "answer"
    NO_ANSWER = "miss a call"
    CALLER_LEFT = "lose the caller while ringing"
    CALL_END = "end a call"
    WRAPUP_END = "end wrap-up"


S = AgentState
E = AgentEvent

#: state -> event -> next state. Pausing while paused changes the reason.
TRANSITIONS: Mapping[AgentState, Mapping[AgentEvent, AgentState]] = {
    S.LOGGED_OUT: {E.LOGIN: S.AVAILABLE},
    S.AVAILABLE: {E.LOGOUT: S.LOGGED_OUT, E.PAUSE: S.PAUSED, E.OFFER: S.RINGING},
    S.RINGING: {
        E.ANSWER: S.ON_CALL,
        E.NO_ANSWER: S.PAUSED,
        E.CALLER_LEFT: S.AVAILABLE,
        E.LOGOUT: S.LOGGED_OUT,
    },
    S.ON_CALL: {E.CALL_END: S.WRAP_UP},
    S.WRAP_UP: {E.WRAPUP_END: S.AVAILABLE, E.PAUSE: S.PAUSED, E.LOGOUT: S.LOGGED_OUT},
    S.PAUSED: {E.RESUME: S.AVAILABLE, E.PAUSE: S.PAUSED, E.LOGOUT: S.LOGGED_OUT},
}

#: Logged in and staffing the queues: counted as the agents who will take the waiting callers.
STAFFED: frozenset[AgentState] = frozenset({S.AVAILABLE, S.RINGING, S.ON_CALL, S.WRAP_UP})


def next_state(agent_id: str, state: AgentState, event: AgentEvent) -> AgentState:
    """The state after `event`, or `IllegalTransition` naming what the agent can do instead."""
    row = TRANSITIONS[state]
    try:
        return row[event]
    except KeyError:
        raise IllegalTransition(agent_id, state.value, event.value, (e.value for e in row)) from None
