"""The router's decisions on small, hand-checkable cases."""

from __future__ import annotations

import copy

import pydantic
import pytest

from routing.actions import (
    Action,
    AgentStateChanged,
    AnnouncePosition,
    CancelOffer,
    CancelTimer,
    OfferContact,
    Overflow,
    RecordEvent,
    StartTimer,
)
from routing.errors import InvalidSkills
from routing.events import (
    AgentAnswered,
    AgentLoggedIn,
    AgentNoAnswer,
    AgentPaused,
    AgentResumed,
    CallEnded,
    ContactLeft,
    ContactQueued,
    DeviceChanged,
    SkillsChanged,
    TimerFired,
    WrapUpEnded,
)
from routing.model import RoutingConfig
from routing.router import Router
from support.routing_helpers import at, config, of


def offers(actions: list[Action]) -> list[tuple[str, str]]:
    return [(o.contact_id, o.agent_id) for o in of(actions, OfferContact)]


def staffed(cfg: RoutingConfig, *agents: str, t: float = 0) -> Router:
    router = Router(cfg)
    for agent in agents:
        router.handle(AgentLoggedIn(agent), at(t))
    return router


def take_call(router: Router, agent: str, contact: str, start: float, end: float) -> None:
    """Answer and end a call that is ringing `agent`, then end wrap-up at `end`."""
    router.handle(AgentAnswered(agent, contact), at(start))
    router.handle(CallEnded(contact), at(end))
    router.handle(WrapUpEnded(agent), at(end))


# --- strategies --------------------------------------------------------------------------------------

AGENTS = {
    "ann": {"skills": {"support": 3}},
    "bob": {"skills": {"support": 9}},
    "cy": {"skills": {"support": 6}},
}


def test_best_skill_picks_the_highest_level() -> None:
    router = staffed(
        config(AGENTS, {"q": {"skills": {"support": 1}, "strategy": "best_skill"}}), "ann", "bob", "cy"
    )
    assert offers(router.handle(ContactQueued("c1", "q"), at(1))) == [("c1", "bob")]
    assert offers(router.handle(ContactQueued("c2", "q"), at(2))) == [("c2", "cy")]


def test_best_skill_sums_the_required_skills_and_ties_go_to_the_lowest_id() -> None:
    agents = {
        "ann": {"skills": {"support": 5, "polish": 5}},
        "bob": {"skills": {"support": 9, "polish": 1}},
        "cy": {"skills": {"support": 1, "polish": 9, "sales": 10}},
    }
    router = staffed(
        config(agents, {"q": {"skills": {"support": 1, "polish": 1}, "strategy": "best_skill"}}),
        "cy",
        "bob",
        "ann",
    )
    assert offers(router.handle(ContactQueued("c1", "q"), at(1))) == [("c1", "ann")]


def test_longest_idle_picks_who_ended_a_call_first() -> None:
    router = staffed(config(AGENTS, {"q": {"skills": {"support": 1}, "announce_every": 0}}), "cy", t=0)
    router.handle(AgentLoggedIn("bob"), at(5))
    router.handle(AgentLoggedIn("ann"), at(10))
    # cy logged in first: cy idle longest
    assert offers(router.handle(ContactQueued("c1", "q"), at(20))) == [("c1", "cy")]
    take_call(router, "cy", "c1", 21, 30)
    # now bob (idle since 5) is idle longer than ann (10) and cy (call ended at 30)
    assert offers(router.handle(ContactQueued("c2", "q"), at(40))) == [("c2", "bob")]
    assert offers(router.handle(ContactQueued("c3", "q"), at(41))) == [("c3", "ann")]
    assert offers(router.handle(ContactQueued("c4", "q"), at(42))) == [("c4", "cy")]


def test_fewest_calls_then_agent_id() -> None:
    router = staffed(
        config(AGENTS, {"q": {"skills": {"support": 1}, "strategy": "fewest_calls"}}), "ann", "bob", "cy"
    )
    assert offers(router.handle(ContactQueued("c1", "q"), at(1))) == [("c1", "ann")]
    take_call(router, "ann", "c1", 2, 3)
    assert offers(router.handle(ContactQueued("c2", "q"), at(4))) == [("c2", "bob")]
    take_call(router, "bob", "c2", 5, 6)
    assert offers(router.handle(ContactQueued("c3", "q"), at(7))) == [("c3", "cy")]
    take_call(router, "cy", "c3", 8, 9)
    assert offers(router.handle(ContactQueued("c4", "q"), at(10))) == [("c4", "ann")]


def test_round_robin_rotates_per_queue() -> None:
    cfg = config(
        AGENTS,
        {
            "q": {"skills": {"support": 1}, "strategy": "round_robin"},
            "r": {"skills": {"support": 1}, "strategy": "round_robin"},
        },
    )
    router = staffed(cfg, "ann", "bob", "cy")
    chosen = []
    for i in range(4):
        actions = router.handle(ContactQueued(f"q{i}", "q"), at(10 * i + 1))
        chosen += [a for _, a in offers(actions)]
        take_call(router, chosen[-1], f"q{i}", 10 * i + 2, 10 * i + 3)
    assert chosen == ["ann", "bob", "cy", "ann"]
    # queue r has its own pointer: it starts again from the lowest id
    assert offers(router.handle(ContactQueued("r0", "r"), at(100))) == [("r0", "ann")]


def test_same_inputs_give_the_same_choice() -> None:
    cfg = config(AGENTS, {"q": {"skills": {"support": 1}}})
    runs = []
    for _ in range(2):
        router = staffed(cfg, "bob", "ann", "cy")
        runs.append([router.handle(ContactQueued(f"c{i}", "q"), at(1 + i)) for i in range(4)])
    assert runs[0] == runs[1]


# --- order of waiting contacts -----------------------------------------------------------------------


def test_priority_then_time_waited_then_contact_id() -> None:
    router = Router(config(AGENTS, {"q": {"skills": {"support": 1}, "announce_every": 0}}))
    router.handle(ContactQueued("late-low", "q", priority=0), at(1))
    router.handle(ContactQueued("b-high", "q", priority=5), at(3))
    router.handle(ContactQueued("a-high", "q", priority=5), at(3))
    router.handle(ContactQueued("early-high", "q", priority=5), at(2))
    [queue] = router.queues(at(4))
    assert [(w.contact_id, w.position) for w in queue.waiting] == [
        ("early-high", 1),
        ("a-high", 2),
        ("b-high", 3),
        ("late-low", 4),
    ]
    got = []
    for agent in ("ann", "bob", "cy"):
        got += offers(router.handle(AgentLoggedIn(agent), at(5)))
    assert got == [("early-high", "ann"), ("a-high", "bob"), ("b-high", "cy")]


def test_priority_ages_per_minute_waited() -> None:
    cfg = config(AGENTS, {"q": {"skills": {"support": 1}, "priority_aging": 1.0, "announce_every": 0}})
    router = Router(cfg)
    router.handle(ContactQueued("old", "q", priority=0), at(0))
    router.handle(ContactQueued("vip", "q", priority=2), at(60))
    # at 150 s: old has 0 + 2.5 = 2.5, vip has 2 + 1.5 = 3.5
    [q] = router.queues(at(150))
    assert [(w.contact_id, w.priority) for w in q.waiting] == [("vip", 3.5), ("old", 2.5)]
    # vip came 60 s later with 2 points more: old only passes them if they had come 120 s earlier
    router.handle(ContactQueued("older", "q", priority=0), at(-100))
    [q] = router.queues(at(200))
    assert [w.contact_id for w in q.waiting] == ["older", "vip", "old"]


def test_aging_across_queues_lets_a_long_wait_overtake() -> None:
    cfg = config(
        {"ann": {"skills": {"x": 1}}},
        {
            "slow": {"skills": {"x": 1}, "priority": 0, "priority_aging": 2.0},
            "vip": {"skills": {"x": 1}, "priority": 5},
        },
    )
    router = Router(cfg)
    router.handle(ContactQueued("s", "slow"), at(0))
    router.handle(ContactQueued("v", "vip"), at(100))
    # at 120 s: s has 4, v has 5 -> v first; at 180 s: s has 6 -> s first
    assert offers(Router.handle(_copy(router), AgentLoggedIn("ann"), at(120))) == [("v", "ann")]
    assert offers(router.handle(AgentLoggedIn("ann"), at(180))) == [("s", "ann")]


def _copy(router: Router) -> Router:
    return copy.deepcopy(router)


# --- ring-no-answer, leaving, devices ----------------------------------------------------------------


def test_ring_no_answer_pauses_the_agent_and_offers_the_caller_to_the_next() -> None:
    router = staffed(
        config(AGENTS, {"q": {"skills": {"support": 1}, "strategy": "best_skill"}}), "ann", "bob"
    )
    router.handle(ContactQueued("c0", "q"), at(1))  # bob
    router.handle(AgentAnswered("bob", "c0"), at(2))
    router.handle(ContactQueued("c1", "q"), at(3))  # ann rings
    router.handle(ContactQueued("c2", "q"), at(4))  # waits behind c1
    actions = router.handle(AgentNoAnswer("ann", "c1"), at(18))
    assert AgentStateChanged("ann", "paused", "no answer") in actions
    assert (
        RecordEvent("c1", "agent_no_answer", {"queue": "q", "agent": "ann", "ring_seconds": 15.0}) in actions
    )
    assert offers(actions) == []  # nobody free: ann is paused
    [q] = router.queues(at(20))
    assert [(w.contact_id, w.position, w.agent) for w in q.waiting] == [("c1", 1, None), ("c2", 2, None)]
    # when bob is free, c1 (who kept their place) goes first
    router.handle(CallEnded("c0"), at(30))
    assert offers(router.handle(WrapUpEnded("bob"), at(31))) == [("c1", "bob")]


def test_ring_no_answer_re_offers_at_once_when_another_agent_is_free() -> None:
    router = staffed(
        config(AGENTS, {"q": {"skills": {"support": 1}, "strategy": "best_skill"}}), "ann", "bob", "cy"
    )
    assert offers(router.handle(ContactQueued("c1", "q"), at(1))) == [("c1", "bob")]
    actions = router.handle(AgentNoAnswer("bob", "c1"), at(16))
    assert offers(actions) == [("c1", "cy")]
    assert router.agents()[1].state == "paused"


def test_stale_answer_after_the_caller_left_is_ignored() -> None:
    router = staffed(config(AGENTS, {"q": {"skills": {"support": 1}}}), "ann")
    router.handle(ContactQueued("c1", "q"), at(1))
    actions = router.handle(ContactLeft("c1"), at(5))
    assert CancelOffer("c1", "ann") in actions
    assert AgentStateChanged("ann", "available") in actions
    assert RecordEvent("c1", "abandoned", {"where": "queue", "queue": "q", "wait": 4.0}) in actions
    assert router.handle(AgentAnswered("ann", "c1"), at(6)) == []


def test_abandon_while_waiting_cancels_its_timers() -> None:
    cfg = config(AGENTS, {"q": {"skills": {"support": 1}, "escalation": [{"after": 30, "skills": {}}]}})
    router = Router(cfg)
    started = of(router.handle(ContactQueued("c1", "q"), at(0)), StartTimer)
    assert started == [
        StartTimer("queue:c1:max_wait", 600.0),
        StartTimer("queue:c1:announce", 30.0),
        StartTimer("queue:c1:escalate:0", 30.0),
    ]
    actions = router.handle(ContactLeft("c1"), at(12))
    assert of(actions, CancelTimer) == [CancelTimer(s.timer_id) for s in started]
    assert router.queues(at(13))[0].waiting == []


def test_unreachable_agent_is_skipped_but_stays_logged_in() -> None:
    router = staffed(
        config(AGENTS, {"q": {"skills": {"support": 1}, "strategy": "best_skill"}}), "ann", "bob"
    )
    assert router.handle(DeviceChanged("bob", reachable=False), at(1)) == []
    assert offers(router.handle(ContactQueued("c1", "q"), at(2))) == [("c1", "ann")]
    assert offers(router.handle(ContactQueued("c2", "q"), at(3))) == []
    assert [a.state for a in router.agents()] == ["ringing", "available", "logged_out"]
    assert offers(router.handle(DeviceChanged("bob", reachable=True), at(4))) == [("c2", "bob")]


def test_paused_agent_resumes_into_the_waiting_caller() -> None:
    router = staffed(config(AGENTS, {"q": {"skills": {"support": 1}}}), "ann")
    router.handle(AgentPaused("ann", "lunch"), at(1))
    assert offers(router.handle(ContactQueued("c1", "q"), at(2))) == []
    assert offers(router.handle(AgentResumed("ann"), at(3))) == [("c1", "ann")]


def test_wrap_up_timer_returns_the_agent_and_records_wrapup_ended() -> None:
    cfg = config({"ann": {"skills": {"support": 3}, "wrapup": 20}}, {"q": {"skills": {"support": 1}}})
    router = staffed(cfg, "ann")
    router.handle(ContactQueued("c1", "q"), at(1))
    router.handle(ContactQueued("c2", "q"), at(2))
    answered = router.handle(AgentAnswered("ann", "c1"), at(5))
    assert RecordEvent("c1", "answered", {"queue": "q", "agent": "ann", "wait": 4.0}) in answered
    ended = router.handle(CallEnded("c1"), at(65))
    assert StartTimer("agent:ann:wrapup", 20.0) in ended
    assert AgentStateChanged("ann", "wrap_up") in ended
    actions = router.handle(TimerFired("agent:ann:wrapup"), at(85))
    assert RecordEvent("c1", "wrapup_ended", {"agent": "ann", "seconds": 20.0}) in actions
    assert offers(actions) == [("c2", "ann")]
    assert router.handle(TimerFired("agent:ann:wrapup"), at(86)) == []


def test_skills_changed_live_takes_effect_and_refuses_bad_levels() -> None:
    router = staffed(config(AGENTS, {"q": {"skills": {"support": 5}}}), "ann")
    assert offers(router.handle(ContactQueued("c1", "q"), at(1))) == []
    assert offers(router.handle(SkillsChanged("ann", {"support": 5}), at(2))) == [("c1", "ann")]
    with pytest.raises(InvalidSkills, match="skill 'support' has level 11; skill levels run from 1 to 10"):
        router.handle(SkillsChanged("ann", {"support": 11}), at(3))


# --- queues, escalation, overflow ----------------------------------------------------------------------


def test_two_queues_share_agents_and_the_higher_priority_goes_first() -> None:
    cfg = config(
        {"ann": {"skills": {"sales": 5, "support": 5}}, "bob": {"skills": {"sales": 5}}},
        {"sales": {"skills": {"sales": 1}}, "support": {"skills": {"support": 1}, "priority": 3}},
    )
    router = Router(cfg)
    router.handle(ContactQueued("s1", "sales"), at(0))
    router.handle(ContactQueued("p1", "support"), at(10))
    router.handle(ContactQueued("s2", "sales"), at(20))
    # ann can take both queues: the support caller has the higher priority
    assert offers(router.handle(AgentLoggedIn("ann"), at(30))) == [("p1", "ann")]
    # bob only sales: the one who waited longest
    assert offers(router.handle(AgentLoggedIn("bob"), at(31))) == [("s1", "bob")]
    take_call(router, "ann", "p1", 32, 40)
    assert router.agents()[0].calls_taken == 1


def test_escalation_after_t_reaches_a_wider_pool_and_keeps_the_place() -> None:
    cfg = config(
        {"ann": {"skills": {"support": 9}}, "bob": {"skills": {"support": 3}}},
        {
            "q": {
                "skills": {"support": 8},
                "announce_every": 0,
                "escalation": [{"after": 60, "skills": {"support": 2}}],
            },
            "low": {"skills": {"support": 2}, "announce_every": 0},
        },
    )
    router = staffed(cfg, "ann", "bob")
    router.handle(ContactQueued("c0", "q"), at(0))  # ann takes it
    router.handle(AgentAnswered("ann", "c0"), at(1))
    router.handle(ContactQueued("c1", "q"), at(2))
    assert router.position("c1", at(3)) == 1
    # bob cannot take c1 (needs 8); a later caller of `low` takes bob
    router.handle(AgentPaused("bob", "coffee"), at(3))
    router.handle(ContactQueued("x1", "low"), at(10))
    actions = router.handle(TimerFired("queue:c1:escalate:0"), at(62))
    assert offers(actions) == []
    [q, _low] = router.queues(at(62))
    assert [w.contact_id for w in q.waiting] == ["c1"]
    # c1 waited longer than x1: once both need only support 2, c1 is ahead of x1
    assert router.position("c1", at(62)) == 1
    assert router.position("x1", at(62)) == 2
    assert offers(router.handle(AgentResumed("bob"), at(63))) == [("c1", "bob")]


def test_max_wait_overflows_and_no_agent_at_all_overflows_at_once() -> None:
    router = Router(
        config(AGENTS, {"q": {"skills": {"support": 1}, "max_wait": 90}, "x": {"skills": {"x": 1}}})
    )
    assert router.handle(ContactQueued("c2", "x"), at(0)) == [Overflow("c2", "no_agent")]
    assert router.handle(ContactQueued("c3", "nowhere"), at(0)) == [Overflow("c3", "unknown_queue")]
    router.handle(ContactQueued("c1", "q"), at(0))
    actions = router.handle(TimerFired("queue:c1:max_wait"), at(90))
    assert Overflow("c1", "max_wait") in actions
    assert CancelTimer("queue:c1:announce") in actions
    assert router.queues(at(91))[0].waiting == []


def test_max_wait_during_a_ring_overflows_only_if_the_ring_fails() -> None:
    router = staffed(config(AGENTS, {"q": {"skills": {"support": 1}, "max_wait": 30}}), "ann")
    router.handle(ContactQueued("c1", "q"), at(20))
    assert router.handle(TimerFired("queue:c1:max_wait"), at(50)) == []
    actions = router.handle(AgentNoAnswer("ann", "c1"), at(55))
    assert Overflow("c1", "max_wait") in actions


def test_callback_placeholder_waits_silently_and_counts_in_positions() -> None:
    router = Router(config(AGENTS, {"q": {"skills": {"support": 1}}}))
    started = of(router.handle(ContactQueued("cb", "q", callback=True), at(0)), StartTimer)
    assert started == []
    router.handle(ContactQueued("c1", "q"), at(5))
    assert router.position("c1", at(6)) == 2
    [q] = router.queues(at(6))
    assert [(w.contact_id, w.callback) for w in q.waiting] == [("cb", True), ("c1", False)]


def test_reload_logs_out_removed_agents_and_overflows_removed_queues() -> None:
    cfg = config(AGENTS, {"q": {"skills": {"support": 1}}, "gone": {"skills": {"support": 1}}})
    router = staffed(cfg, "ann", "bob")
    router.handle(AgentPaused("ann", "x"), at(1))
    router.handle(AgentPaused("bob", "x"), at(1))
    router.handle(ContactQueued("c1", "gone"), at(2))
    router.handle(ContactQueued("c2", "q"), at(3))
    new = config({"bob": AGENTS["bob"], "dee": {"skills": {"support": 1}}}, {"q": {"skills": {"support": 1}}})
    actions = router.reload(new, at(10))
    assert AgentStateChanged("ann", "logged_out") in actions
    assert Overflow("c1", "queue_removed") in actions
    assert [a.id for a in router.agents()] == ["bob", "dee"]
    assert offers(router.handle(AgentLoggedIn("dee"), at(11))) == [("c2", "dee")]


def test_config_errors_name_the_fix() -> None:
    with pytest.raises(pydantic.ValidationError, match="sort the steps by their waiting time"):
        config({}, {"q": {"escalation": [{"after": 60, "skills": {}}, {"after": 30, "skills": {}}]}})
    with pytest.raises(pydantic.ValidationError, match="strateg"):
        config({}, {"q": {"strategy": "random"}})
    with pytest.raises(pydantic.ValidationError, match="less than or equal to 10"):
        config({"ann": {"skills": {"x": 11}}}, {})


# --- estimates ---------------------------------------------------------------------------------------


def test_estimate_is_position_times_handle_time_over_agents() -> None:
    cfg = config(
        {
            "ann": {"skills": {"s": 1}, "wrapup": 0},
            "bob": {"skills": {"s": 1}, "wrapup": 0},
            "cy": {"skills": {"t": 1}},
        },
        {"q": {"skills": {"s": 1}, "announce_every": 60}},
        estimates={"default_handle_time": 120, "smoothing": 0.5},
    )
    router = staffed(cfg, "ann", "bob", "cy")
    router.handle(ContactQueued("a", "q"), at(0))
    router.handle(ContactQueued("b", "q"), at(0))
    router.handle(AgentAnswered("ann", "a"), at(1))
    router.handle(AgentAnswered("bob", "b"), at(1))
    for i in range(3):
        router.handle(ContactQueued(f"w{i}", "q"), at(10 + i))
    # positions 1, 2, 3 with two agents at the default 120 s: 60, 120, 180
    assert [router.estimate(f"w{i}", at(20)) for i in range(3)] == [60.0, 120.0, 180.0]
    # ann's call ends after 301 s (no wrap-up): her handle time becomes 301; w0 rings her
    router.handle(CallEnded("a"), at(302))
    assert router.estimate("w0", at(303)) == 0.0
    # w1 is now first among those waiting: 1 * (301 + 120) / 2 / 2
    assert router.estimate("w1", at(303)) == pytest.approx(105.25)
    actions = router.handle(TimerFired("queue:w1:announce"), at(303))
    announced = [(a.contact_id, a.position, a.estimated_wait) for a in of(actions, AnnouncePosition)]
    assert ("w1", 1, pytest.approx(105.25)) in announced
    # second call of ann, 101 s: smoothed 0.5 * 101 + 0.5 * 301 = 201
    router.handle(AgentAnswered("ann", "w0"), at(303))
    router.handle(CallEnded("w0"), at(404))
    assert [a.calls_taken for a in router.agents()] == [2, 1, 0]
    assert router.estimate("w2", at(405)) == pytest.approx(1 * (201 + 120) / 2 / 2)


def test_no_estimate_without_agents_and_no_announcement() -> None:
    router = Router(config(AGENTS, {"q": {"skills": {"support": 1}}}))
    router.handle(ContactQueued("c1", "q"), at(0))
    assert router.estimate("c1", at(1)) is None
    actions = router.handle(TimerFired("queue:c1:announce"), at(30))
    assert actions == [StartTimer("queue:c1:announce", 30.0)]
    [q] = router.queues(at(31))
    assert (q.agents_eligible, q.waiting[0].estimated_wait) == (0, None)


def test_positions_count_only_callers_competing_for_the_same_agents() -> None:
    cfg = config(
        {
            "ann": {"skills": {"polish": 5}},
            "bob": {"skills": {"english": 5}},
            "cy": {"skills": {"polish": 5, "english": 5}},
        },
        {"pl": {"skills": {"polish": 1}}, "en": {"skills": {"english": 1}}, "de": {"skills": {"german": 1}}},
    )
    cfg2 = config(
        {"ann": {"skills": {"polish": 5}}, "bob": {"skills": {"english": 5}}},
        {"pl": {"skills": {"polish": 1}}, "en": {"skills": {"english": 1}}},
    )
    shared, apart = Router(cfg), Router(cfg2)
    for router in (shared, apart):
        router.handle(ContactQueued("e1", "en"), at(0))
        router.handle(ContactQueued("e2", "en"), at(1))
        router.handle(ContactQueued("p1", "pl"), at(2))
    # cy could take either language: the English callers are ahead of p1; without cy they are not
    assert shared.position("p1", at(3)) == 3
    assert apart.position("p1", at(3)) == 1
    assert apart.position("e2", at(3)) == 2
