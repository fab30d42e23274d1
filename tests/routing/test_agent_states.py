"""Every agent transition: the table itself, and every API event in every state through the router."""

from __future__ import annotations

import itertools

import pytest

from routing.actions import AgentStateChanged
from routing.agents import TRANSITIONS, AgentEvent, AgentState, next_state
from routing.errors import IllegalTransition, UnknownAgent
from routing.events import (
    AgentAnswered,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentResumed,
    CallEnded,
    ContactQueued,
    Event,
    WrapUpEnded,
)
from routing.router import Router
from support.routing_helpers import at, config, of

S, E = AgentState, AgentEvent

LEGAL = [
    (S.LOGGED_OUT, E.LOGIN, S.AVAILABLE),
    (S.AVAILABLE, E.LOGOUT, S.LOGGED_OUT),
    (S.AVAILABLE, E.PAUSE, S.PAUSED),
    (S.AVAILABLE, E.OFFER, S.RINGING),
    (S.RINGING, E.ANSWER, S.ON_CALL),
    (S.RINGING, E.NO_ANSWER, S.PAUSED),
    (S.RINGING, E.CALLER_LEFT, S.AVAILABLE),
    (S.RINGING, E.LOGOUT, S.LOGGED_OUT),
    (S.ON_CALL, E.CALL_END, S.WRAP_UP),
    (S.WRAP_UP, E.WRAPUP_END, S.AVAILABLE),
    (S.WRAP_UP, E.PAUSE, S.PAUSED),
    (S.WRAP_UP, E.LOGOUT, S.LOGGED_OUT),
    (S.PAUSED, E.RESUME, S.AVAILABLE),
    (S.PAUSED, E.PAUSE, S.PAUSED),
    (S.PAUSED, E.LOGOUT, S.LOGGED_OUT),
]
ILLEGAL = [
    (state, event)
    for state, event in itertools.product(S, E)
    if (state, event) not in {(s, e) for s, e, _ in LEGAL}
]


def test_the_table_holds_exactly_the_legal_transitions() -> None:
    table = {(s, e, n) for s, row in TRANSITIONS.items() for e, n in row.items()}
    assert table == set(LEGAL)
    assert set(TRANSITIONS) == set(S)


@pytest.mark.parametrize(("state", "event", "expected"), LEGAL)
def test_legal_transition(state: AgentState, event: AgentEvent, expected: AgentState) -> None:
    assert next_state("ann", state, event) is expected


@pytest.mark.parametrize(("state", "event"), ILLEGAL)
def test_illegal_transition_names_agent_state_and_event(state: AgentState, event: AgentEvent) -> None:
    with pytest.raises(IllegalTransition) as info:
        next_state("ann", state, event)
    err = info.value
    assert (err.agent_id, err.state, err.event) == ("ann", state.value, event.value)
    assert f"agent 'ann' cannot {event.value} while {state.value}" in str(err)
    assert set(err.allowed) == {e.value for e in TRANSITIONS[state]}


# --- the same through the router: every state reached by real events --------------------------------

CFG = config(
    {"ann": {"skills": {"support": 5}, "wrapup": 10}},
    {"support": {"skills": {"support": 1}, "announce_every": 0}},
)

REACH: dict[AgentState, list[Event]] = {
    S.LOGGED_OUT: [],
    S.AVAILABLE: [AgentLoggedIn("ann")],
    S.RINGING: [AgentLoggedIn("ann"), ContactQueued("c1", "support")],
    S.ON_CALL: [AgentLoggedIn("ann"), ContactQueued("c1", "support"), AgentAnswered("ann", "c1")],
    S.WRAP_UP: [
        AgentLoggedIn("ann"),
        ContactQueued("c1", "support"),
        AgentAnswered("ann", "c1"),
        CallEnded("c1"),
    ],
    S.PAUSED: [AgentLoggedIn("ann"), AgentPaused("ann", "lunch")],
}

API: dict[AgentEvent, Event] = {
    E.LOGIN: AgentLoggedIn("ann"),
    E.LOGOUT: AgentLoggedOut("ann"),
    E.PAUSE: AgentPaused("ann", "training"),
    E.RESUME: AgentResumed("ann"),
    E.WRAPUP_END: WrapUpEnded("ann"),
}


def reach(state: AgentState) -> Router:
    router = Router(CFG)
    for i, event in enumerate(REACH[state]):
        router.handle(event, at(i))
    assert router.agents()[0].state == state.value
    return router


@pytest.mark.parametrize(("state", "event"), list(itertools.product(S, API)))
def test_every_agent_request_in_every_state(state: AgentState, event: AgentEvent) -> None:
    router = reach(state)
    expected = TRANSITIONS[state].get(event)
    if expected is None:
        with pytest.raises(IllegalTransition) as info:
            router.handle(API[event], at(100))
        assert (info.value.state, info.value.event) == (state.value, event.value)
        assert router.agents()[0].state == state.value  # nothing changed
        return
    actions = router.handle(API[event], at(100))
    changes = of(actions, AgentStateChanged)
    assert changes[0].state == expected.value
    view = router.agents()[0]
    assert view.state == expected.value
    assert view.since == at(100)
    assert view.reason == ("training" if expected is S.PAUSED else None)


def test_unknown_agent_names_the_fix() -> None:
    with pytest.raises(UnknownAgent, match="no agent 'bob' in the routing configuration"):
        Router(CFG).handle(AgentLoggedIn("bob"), at(0))
