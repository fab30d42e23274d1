"""The queue's figures for supervisors: the service level achieved over the last window, answered and
abandoned callers and the average speed of answer, computed from the router's own decisions."""

from __future__ import annotations

from routing.events import (
    AgentAnswered,
    AgentLoggedIn,
    AgentPaused,
    AgentResumed,
    CallEnded,
    ContactLeft,
    ContactQueued,
)
from routing.model import RoutingConfig
from routing.router import QueueFigures, Router
from support.routing_helpers import at, config


def support(window: float = 3600.0) -> RoutingConfig:
    spec = {
        "skills": {"support": 1},
        "announce_every": 0,
        "service_level": {"percent": 80, "seconds": 20, "window": window},
    }
    return config({"ann": {"skills": {"support": 5}, "wrapup": 0}}, {"q": spec})


def figures(router: Router, second: float) -> QueueFigures:
    [view] = router.queues(at(second))
    assert view.figures is not None
    return view.figures


def answer_after(router: Router, contact: str, queued: float, wait: float) -> None:
    """`contact` waits `wait` seconds with ann on a break, then ann takes it and the call ends."""
    router.handle(AgentPaused("ann"), at(queued))
    router.handle(ContactQueued(contact, "q"), at(queued))
    router.handle(AgentResumed("ann"), at(queued + wait))  # offered to ann at once
    router.handle(AgentAnswered("ann", contact), at(queued + wait))
    router.handle(CallEnded(contact), at(queued + wait + 1))


def test_nothing_measured_yet_reads_as_unknown_not_as_zero() -> None:
    router = Router(support())
    assert figures(router, 0) == QueueFigures(3600.0, 0, 0, 0, None, None)


def test_answered_within_the_target_over_all_who_left_the_queue_with_abandons_counting_against() -> None:
    router = Router(support())
    router.handle(AgentLoggedIn("ann"), at(0))
    answer_after(router, "fast", 0, 5)
    answer_after(router, "slow", 10, 45)
    answer_after(router, "edge", 100, 20)  # exactly the target counts as within
    router.handle(AgentPaused("ann"), at(200))
    router.handle(ContactQueued("gone", "q"), at(200))
    router.handle(ContactLeft("gone"), at(230))  # hung up after 30 s waiting
    assert figures(router, 300) == QueueFigures(
        window=3600.0,
        answered=3,
        answered_within=2,
        abandoned=1,
        average_answer=(5 + 45 + 20) / 3,
        service_level=50.0,
    )


def test_call_back_placeholders_and_callers_who_chose_a_call_back_are_not_counted() -> None:
    router = Router(support())
    router.handle(AgentLoggedIn("ann"), at(0))
    router.handle(AgentPaused("ann"), at(0))
    router.handle(ContactQueued("caller", "q"), at(0))
    router.handle(ContactLeft("caller", reason="callback"), at(40))  # kept their place instead
    router.handle(ContactQueued("placeholder", "q", callback=True, since=at(0)), at(41))
    router.handle(AgentResumed("ann"), at(60))
    router.handle(AgentAnswered("ann", "placeholder"), at(61))
    router.handle(CallEnded("placeholder"), at(90))  # wrap-up 0: ann is available again
    assert figures(router, 100) == QueueFigures(3600.0, 0, 0, 0, None, None)


def test_the_figures_cover_the_window_only() -> None:
    router = Router(support(window=600))
    router.handle(AgentLoggedIn("ann"), at(0))
    answer_after(router, "early", 0, 60)  # left at 60
    answer_after(router, "later", 500, 3)  # left at 503
    assert figures(router, 620).answered == 2
    late = figures(router, 700)  # "early" left more than 600 s ago
    assert (late.answered, late.answered_within, late.service_level) == (1, 1, 100.0)
    assert figures(router, 1200) == QueueFigures(600.0, 0, 0, 0, None, None)
