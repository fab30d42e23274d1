"""A caller keeps their place across a call-back, and the router decides when to offer the call-back."""

from __future__ import annotations

import pytest

from routing.actions import (
    Action,
    CancelTimer,
    OfferCallback,
    OfferContact,
    Overflow,
    RecordEvent,
    StartTimer,
)
from routing.events import (
    AgentAnswered,
    AgentLoggedIn,
    AgentNoAnswer,
    AgentPaused,
    AgentResumed,
    CallbackOffering,
    ContactLeft,
    ContactQueued,
    TimerFired,
)
from routing.model import RoutingConfig
from routing.router import Router
from support.routing_helpers import at, config, of


def offers(actions: list[Action]) -> list[tuple[str, str]]:
    return [(o.contact_id, o.agent_id) for o in of(actions, OfferContact)]


def timers(actions: list[Action]) -> dict[str, float]:
    return {s.timer_id: s.seconds for s in of(actions, StartTimer)}


def records(actions: list[Action], kind: str) -> list[RecordEvent]:
    return [r for r in of(actions, RecordEvent) if r.type == kind]


def one_queue(**queue: object) -> RoutingConfig:
    spec = {"skills": {"support": 1}, "announce_every": 0, **queue}
    return config({"ann": {"skills": {"support": 5}}}, {"q": spec})


def paused_ann(cfg: RoutingConfig) -> Router:
    """Ann is logged in but on a break, so callers wait until she resumes."""
    router = Router(cfg)
    router.handle(AgentLoggedIn("ann"), at(0))
    router.handle(AgentPaused("ann"), at(0))
    return router


# --- keeping a place --------------------------------------------------------------------------------


def test_a_placeholder_takes_the_place_of_the_caller_who_chose_a_call_back() -> None:
    def day(since: bool) -> list[tuple[str, str]]:
        router = paused_ann(one_queue())
        router.handle(ContactQueued("a", "q"), at(10))
        router.handle(ContactQueued("b", "q"), at(20))
        router.handle(ContactLeft("a", reason="callback"), at(30))
        placeholder = ContactQueued("p", "q", callback=True, since=at(10) if since else None)
        queued = router.handle(placeholder, at(40))
        if since:
            assert records(queued, "queued")[0].data["waited"] == 30.0
            assert router.position("p", at(45)) == 1
            assert router.position("b", at(45)) == 2  # the placeholder counts ahead of b
        else:
            assert "waited" not in records(queued, "queued")[0].data
            assert router.position("b", at(45)) == 1
        return offers(router.handle(AgentResumed("ann"), at(50)))

    assert day(since=True) == [("p", "ann")]
    assert day(since=False) == [("b", "ann")]


def test_a_caller_who_declines_comes_back_at_their_old_place() -> None:
    router = paused_ann(one_queue())
    router.handle(ContactQueued("a", "q"), at(10))
    router.handle(ContactQueued("b", "q"), at(20))
    router.handle(ContactLeft("a", reason="callback"), at(30))
    router.handle(ContactQueued("a", "q", since=at(10)), at(35))
    waiting = router.queues(at(40))[0].waiting
    assert [(w.contact_id, w.position, w.waited) for w in waiting] == [("a", 1, 30.0), ("b", 2, 20.0)]


def test_leaving_for_a_call_back_records_no_abandon_but_hanging_up_does() -> None:
    router = paused_ann(one_queue())
    router.handle(ContactQueued("a", "q"), at(10))
    router.handle(ContactQueued("b", "q"), at(10))
    left = router.handle(ContactLeft("a", reason="callback"), at(30))
    assert records(left, "abandoned") == []
    assert CancelTimer("queue:a:max_wait") in left
    hung_up = router.handle(ContactLeft("b"), at(30))
    assert [r.data for r in records(hung_up, "abandoned")] == [{"where": "queue", "queue": "q", "wait": 20.0}]


def test_max_wait_runs_for_what_is_left() -> None:
    router = paused_ann(one_queue(max_wait=300))
    assert timers(router.handle(ContactQueued("a", "q", since=at(0)), at(100))) == {"queue:a:max_wait": 200.0}
    assert timers(router.handle(ContactQueued("b", "q", since=at(-500)), at(100))) == {
        "queue:b:max_wait": 0.0
    }
    assert router.handle(TimerFired("queue:b:max_wait"), at(100)) == [Overflow("b", "max_wait")]


def test_a_placeholder_has_no_max_wait_unless_given() -> None:
    router = paused_ann(one_queue(max_wait=300))
    old = at(-5000)
    assert timers(router.handle(ContactQueued("p", "q", callback=True, since=old), at(10))) == {}
    given = router.handle(ContactQueued("r", "q", callback=True, since=old, max_wait=60), at(10))
    assert timers(given) == {"queue:r:max_wait": 0.0}
    assert router.handle(TimerFired("queue:r:max_wait"), at(10)) == [Overflow("r", "max_wait")]
    assert router.position("p", at(10)) == 1


def test_passed_escalation_steps_apply_at_once_and_the_others_run_for_what_is_left() -> None:
    cfg = config(
        {"bob": {"skills": {"support": 3}}},
        {
            "q": {
                "skills": {"support": 5},
                "announce_every": 0,
                "max_wait": 600,
                "escalation": [{"after": 30, "skills": {"support": 3}}, {"after": 90, "skills": {}}],
            }
        },
    )
    router = Router(cfg)
    router.handle(AgentLoggedIn("bob"), at(0))
    fresh = router.handle(ContactQueued("new", "q"), at(100))  # bob cannot take it yet
    assert offers(fresh) == []
    assert timers(fresh) == {
        "queue:new:max_wait": 600.0,
        "queue:new:escalate:0": 30.0,
        "queue:new:escalate:1": 90.0,
    }
    back = router.handle(ContactQueued("old", "q", since=at(50)), at(100))  # waited 50 s: step 0 passed
    assert records(back, "queued")[0].data == {
        "queue": "q",
        "skills": {"support": 3},
        "priority": 0,
        "waited": 50.0,
    }
    assert timers(back) == {"queue:old:max_wait": 550.0, "queue:old:escalate:1": 40.0}
    assert offers(back) == [("old", "bob")]

    longer = Router(cfg)
    queued = longer.handle(ContactQueued("c", "q", since=at(-100)), at(0))  # both steps passed
    assert records(queued, "queued")[0].data["skills"] == {}
    assert timers(queued) == {"queue:c:max_wait": 500.0}


def test_a_passed_step_can_save_a_caller_no_agent_could_take_at_first() -> None:
    cfg = config(
        {"bob": {"skills": {"support": 3}}},
        {"q": {"skills": {"sales": 5}, "escalation": [{"after": 30, "skills": {"support": 1}}]}},
    )
    router = Router(cfg)
    router.handle(AgentLoggedIn("bob"), at(0))
    assert offers(router.handle(ContactQueued("c", "q", since=at(0)), at(40))) == [("c", "bob")]


def test_priority_ages_from_since() -> None:
    cfg = config(
        {"ann": {"skills": {"support": 5}}},
        {
            "aging": {"skills": {"support": 1}, "priority_aging": 1.0, "announce_every": 0},
            "vip": {"skills": {"support": 1}, "priority": 1, "announce_every": 0},
        },
    )

    def first_served(since: bool) -> str:
        router = paused_ann(cfg)
        router.handle(ContactQueued("v", "vip"), at(100))
        router.handle(ContactQueued("a", "aging", since=at(0) if since else None), at(200))
        return offers(router.handle(AgentResumed("ann"), at(210)))[0][0]

    assert first_served(since=True) == "a"  # 210 s of aging: 3.5 points beat the vip's 1
    assert first_served(since=False) == "v"  # 10 s of aging: 0.17 points do not
    router = paused_ann(cfg)
    router.handle(ContactQueued("a", "aging", since=at(0)), at(200))
    (view,) = router.queues(at(210))[0].waiting
    assert view.priority == pytest.approx(3.5)
    assert view.waited == 210.0


def test_since_in_the_future_counts_as_now() -> None:
    router = paused_ann(one_queue(max_wait=300, escalation=[{"after": 60, "skills": {}}]))
    router.handle(ContactQueued("b", "q"), at(50))
    queued = router.handle(ContactQueued("a", "q", since=at(500)), at(100))
    assert records(queued, "queued")[0].data["waited"] == 0.0
    assert timers(queued) == {"queue:a:max_wait": 300.0, "queue:a:escalate:0": 60.0}
    assert router.position("a", at(100)) == 2


def test_the_announce_timer_starts_afresh() -> None:
    router = paused_ann(one_queue(announce_every=30))
    queued = router.handle(ContactQueued("a", "q", since=at(-1000)), at(10))
    assert timers(queued)["queue:a:announce"] == 30.0


# --- call-back offers -------------------------------------------------------------------------------


def busy_ann(cfg: RoutingConfig) -> Router:
    """Ann is staffing but ringing for another caller: a new caller is first in line, about 180 s away."""
    router = Router(cfg)
    router.handle(AgentLoggedIn("ann"), at(0))
    assert offers(router.handle(ContactQueued("x", "q"), at(0))) == [("x", "ann")]
    return router


def test_a_long_estimate_offers_the_call_back_at_once() -> None:
    router = busy_ann(one_queue())
    queued = router.handle(ContactQueued("a", "q", offer_callback=CallbackOffering(60, 100, 0)), at(10))
    assert of(queued, OfferCallback) == [OfferCallback("a", 1, 180.0)]
    assert [r.data for r in records(queued, "callback_offered")] == [
        {"queue": "q", "position": 1, "estimated_wait": 180.0}
    ]
    assert "queue:a:offer" not in timers(queued)
    again = router.handle(ContactQueued("b", "q", offer_callback=CallbackOffering(60, 100, 45)), at(10))
    assert of(again, OfferCallback) == [OfferCallback("b", 2, 360.0)]
    assert timers(again)["queue:b:offer"] == 45.0


def test_a_short_or_unknown_estimate_waits_for_after() -> None:
    router = busy_ann(one_queue())
    short = router.handle(ContactQueued("a", "q", offer_callback=CallbackOffering(60, 500, 0)), at(10))
    assert of(short, OfferCallback) == []
    assert timers(short)["queue:a:offer"] == 60.0
    nobody = Router(one_queue())  # nobody logged in: no estimate
    unknown = nobody.handle(ContactQueued("a", "q", offer_callback=CallbackOffering(60, 0, 0)), at(10))
    assert of(unknown, OfferCallback) == []
    assert timers(unknown)["queue:a:offer"] == 60.0


def test_the_offer_timer_counts_the_time_already_waited() -> None:
    router = busy_ann(one_queue())
    offering = CallbackOffering(60, None, 0)
    assert (
        timers(router.handle(ContactQueued("a", "q", since=at(-10), offer_callback=offering), at(10)))[
            "queue:a:offer"
        ]
        == 40.0
    )
    late = router.handle(ContactQueued("b", "q", since=at(-100), offer_callback=offering), at(10))
    assert timers(late)["queue:b:offer"] == 0.0
    assert of(late, OfferCallback) == []


def test_the_offer_comes_when_due_and_repeats_every_every() -> None:
    router = busy_ann(one_queue())
    router.handle(ContactQueued("a", "q", offer_callback=CallbackOffering(60, None, 45)), at(10))
    fired = router.handle(TimerFired("queue:a:offer"), at(70))
    assert fired == [
        OfferCallback("a", 1, 180.0),
        RecordEvent("a", "callback_offered", {"queue": "q", "position": 1, "estimated_wait": 180.0}),
        StartTimer("queue:a:offer", 45.0),
    ]
    assert of(router.handle(TimerFired("queue:a:offer"), at(115)), OfferCallback) == [
        OfferCallback("a", 1, 180.0)
    ]


def test_a_single_offer_is_not_repeated() -> None:
    router = busy_ann(one_queue())
    router.handle(ContactQueued("a", "q", offer_callback=CallbackOffering(60, None, 0)), at(10))
    fired = router.handle(TimerFired("queue:a:offer"), at(70))
    assert of(fired, OfferCallback) == [OfferCallback("a", 1, 180.0)]
    assert of(fired, StartTimer) == []


def test_no_offer_while_an_agent_rings_but_the_rhythm_holds() -> None:
    router = Router(one_queue())
    router.handle(AgentLoggedIn("ann"), at(0))
    queued = router.handle(ContactQueued("a", "q", offer_callback=CallbackOffering(60, 0, 30)), at(0))
    assert offers(queued) == [("a", "ann")]
    assert of(queued, OfferCallback) == []  # rung at once: no offer though any estimate is over 0
    assert timers(queued)["queue:a:offer"] == 60.0
    assert router.handle(TimerFired("queue:a:offer"), at(60)) == [StartTimer("queue:a:offer", 30.0)]
    router.handle(AgentNoAnswer("ann", "a"), at(70))  # back to waiting
    assert of(router.handle(TimerFired("queue:a:offer"), at(90)), OfferCallback) == [
        OfferCallback("a", 1, None)
    ]


def test_call_back_placeholders_are_never_offered_a_call_back() -> None:
    router = busy_ann(one_queue())
    queued = router.handle(
        ContactQueued("p", "q", callback=True, offer_callback=CallbackOffering(0, 0, 10)), at(10)
    )
    assert of(queued, OfferCallback) == []
    assert "queue:p:offer" not in timers(queued)


@pytest.mark.parametrize("end", ["answered", "left", "overflowed"])
def test_the_offer_timer_goes_with_the_other_timers(end: str) -> None:
    router = busy_ann(one_queue(max_wait=100))
    router.handle(ContactQueued("a", "q", offer_callback=CallbackOffering(60, None, 30)), at(10))
    if end == "answered":
        router.handle(ContactLeft("x"), at(20))  # ann is free and rings for a
        actions = router.handle(AgentAnswered("ann", "a"), at(25))
    elif end == "left":
        actions = router.handle(ContactLeft("a"), at(20))
    else:
        actions = router.handle(TimerFired("queue:a:max_wait"), at(110))
    assert CancelTimer("queue:a:offer") in actions
    assert router.handle(TimerFired("queue:a:offer"), at(130)) == []


def test_offering_refuses_negative_seconds() -> None:
    with pytest.raises(ValueError, match="`every` is -1 s; give 0 or more seconds"):
        CallbackOffering(60, None, -1)
    with pytest.raises(ValueError, match="`estimate_over` is -5 s"):
        CallbackOffering(60, -5, 0)
