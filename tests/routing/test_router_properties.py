"""Properties over random sequences of events on a small center: two queues sharing three agents.

The service side is simulated: timers fire when due, offered agents answer or ring out, calls end. The
indexed router and the scanning reference see the same events and must return the same actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from routing.actions import (
    Action,
    CancelOffer,
    CancelTimer,
    OfferCallback,
    OfferContact,
    Overflow,
    RecordEvent,
    StartTimer,
)
from routing.errors import IllegalTransition
from routing.events import (
    AgentAnswered,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentNoAnswer,
    AgentPaused,
    AgentResumed,
    CallbackOffering,
    CallEnded,
    ContactLeft,
    ContactQueued,
    DeviceChanged,
    Event,
    TimerFired,
    WrapUpEnded,
)
from routing.naive import scanning
from routing.router import Router, meets
from support.routing_helpers import at, config

AGENT_IDS = ("a1", "a2", "a3")
CFG = config(
    {
        "a1": {"skills": {"x": 3}, "wrapup": 5},
        "a2": {"skills": {"x": 1, "y": 2}, "wrapup": 0},
        "a3": {"skills": {"y": 3}, "wrapup": 10},
    },
    {
        "q1": {
            "skills": {"x": 2},
            "priority_aging": 2.0,
            "max_wait": 300,
            "announce_every": 20,
            "escalation": [{"after": 30, "skills": {"x": 1}}, {"after": 90, "skills": {}}],
        },
        "q2": {"skills": {"y": 1}, "priority": 1, "strategy": "best_skill", "max_wait": 200},
        "q3": {"skills": {"x": 1}, "strategy": "round_robin", "priority_aging": 0.5},
    },
)

step = st.tuples(st.integers(0, 13), st.integers(0, 50), st.integers(0, 40))

#: how a caller joins: afresh, or keeping a place from earlier (or "from" the future), with a call-back offer
SINCE = (None, 0, 25, 100, 400, -30)
OFFERINGS = (None, CallbackOffering(20, None, 0), CallbackOffering(10, 150, 30), CallbackOffering(40, 0, 60))


@dataclass
class Center:
    """The simulated service around both routers."""

    router: Router
    twin: Router
    now: float = 0.0
    timers: dict[str, float] = field(default_factory=dict)
    holding: dict[str, str] = field(default_factory=dict)  # agent -> contact offered or talking
    talking: set[str] = field(default_factory=set)
    queued: list[str] = field(default_factory=list)
    joined: dict[str, tuple[str, float]] = field(default_factory=dict)  # contact -> queue, place since
    done: set[str] = field(default_factory=set)
    count: int = 0

    def send(self, event: Event) -> list[Action]:
        before = self.router.agents()
        try:
            actions = self.router.handle(event, at(self.now))
        except IllegalTransition:
            assert self.router.agents() == before
            try:
                self.twin.handle(event, at(self.now))
            except IllegalTransition:
                return []
            raise AssertionError("the scanning router accepted what the indexed one refused") from None
        assert self.twin.handle(event, at(self.now)) == actions
        self.check(event, actions)
        return actions

    def check(self, event: Event, actions: list[Action]) -> None:
        r = self.router
        t = r._t(at(self.now))
        if isinstance(event, AgentNoAnswer) and any(
            isinstance(a, RecordEvent) and a.type == "agent_no_answer" for a in actions
        ):
            self.holding.pop(event.agent_id)
        if isinstance(event, ContactLeft):
            self.done.add(event.contact_id)
            if event.reason == "callback":
                assert not any(isinstance(a, RecordEvent) and a.type == "abandoned" for a in actions)
        if isinstance(event, CallEnded | ContactLeft):
            self.talking.discard(event.contact_id)
            for agent_id, contact_id in list(self.holding.items()):
                if contact_id == event.contact_id:
                    del self.holding[agent_id]
        for a in actions:
            if isinstance(a, StartTimer):
                self.timers[a.timer_id] = t + a.seconds
            elif isinstance(a, CancelTimer):
                self.timers.pop(a.timer_id)
            elif isinstance(a, OfferContact):
                assert a.agent_id not in self.holding, f"{a.agent_id} offered two calls"
                self.holding[a.agent_id] = a.contact_id
                offered = r._contacts[a.contact_id]
                agent = r._agents[a.agent_id]
                assert meets(agent.skills, offered.skills)
                for other in r._contacts.values():  # nobody better for this agent was left waiting
                    if other.agent is None and not other.answered and meets(agent.skills, other.skills):
                        assert r._rank(other, t) > r._rank(offered, t)
            elif isinstance(a, CancelOffer):
                assert self.holding.pop(a.agent_id, a.contact_id) == a.contact_id
            elif isinstance(a, OfferCallback):  # only to a caller still waiting, never to a placeholder
                offered = r._contacts[a.contact_id]
                assert offered.agent is None and not offered.answered and not offered.callback
                assert a.position == r.position(a.contact_id, at(self.now))
            elif isinstance(a, Overflow):
                self.done.add(a.contact_id)
            elif isinstance(a, RecordEvent) and a.type == "queued":
                self.queued.append(a.contact_id)
            elif isinstance(a, RecordEvent) and a.type in ("answered", "abandoned"):
                if a.type == "answered":
                    self.talking.add(a.contact_id)
                self.done.add(a.contact_id)
        # no free, reachable agent is left beside a waiting contact they could take
        for agent in r._agents.values():
            if agent.free:
                for c in r._contacts.values():
                    assert not (c.agent is None and not c.answered and meets(agent.skills, c.skills))
        # every queue lists its callers in order of effective priority, then time waited
        for q in r.queues(at(self.now)):
            ranks = [r._rank(r._contacts[w.contact_id], t) for w in q.waiting]
            assert ranks == sorted(ranks)

    def join(self, event: ContactQueued) -> None:
        if any(isinstance(a, RecordEvent) and a.type == "queued" for a in self.send(event)):
            since = self.now if event.since is None else min(self.now, (event.since - at(0)).total_seconds())
            self.joined[event.contact_id] = (event.queue, since)

    def fire_next(self) -> bool:
        if not self.timers:
            return False
        due, timer_id = min((due, tid) for tid, due in self.timers.items())
        self.now = max(self.now, due)
        del self.timers[timer_id]
        queue = self.order()
        self.send(TimerFired(timer_id))
        if ":escalate:" in timer_id:  # escalation never costs anyone their place
            after = self.order()
            kept = [cid for cid in queue if cid in after]
            assert [cid for cid in after if cid in kept] == kept
        return True

    def order(self) -> list[str]:
        return [w.contact_id for q in self.router.queues(at(self.now)) for w in q.waiting if w.agent is None]

    def apply(self, kind: int, index: int, dt: int) -> None:
        self.now += dt
        agent = AGENT_IDS[index % 3]
        ringing = sorted(a for a, c in self.holding.items() if c not in self.talking)
        if kind <= 2:
            self.count += 1
            queue = ("q1", "q2", "q3")[index % 3]
            callback = index % 7 == 0
            back = SINCE[(index + kind) % len(SINCE)]
            since = None if back is None else self.now - back
            self.join(
                ContactQueued(
                    f"c{self.count}",
                    queue,
                    priority=index % 4 if index % 2 else None,
                    callback=callback,
                    max_wait=400 if callback else None,
                    since=None if since is None else at(since),
                    offer_callback=OFFERINGS[(index // 3) % len(OFFERINGS)],
                )
            )
        elif kind == 3 and self.queued:
            contact = self.queued[index % len(self.queued)]
            if index % 3 or contact not in self.joined:
                self.send(ContactLeft(contact))
            else:  # the caller chooses a call-back: later a placeholder joins in their place
                self.send(ContactLeft(contact, reason="callback"))
                queue, since = self.joined[contact]
                self.now += dt
                self.join(
                    ContactQueued(
                        f"{contact}-cb", queue, callback=True, max_wait=index * 10 or None, since=at(since)
                    )
                )
        elif kind == 4:
            self.send(AgentLoggedIn(agent))
        elif kind == 5:
            self.send(AgentLoggedOut(agent))
        elif kind == 6:
            self.send(AgentPaused(agent, "break"))
        elif kind == 7:
            self.send(AgentResumed(agent))
        elif kind == 8 and ringing:
            a = ringing[index % len(ringing)]
            self.send(AgentAnswered(a, self.holding[a]))
        elif kind == 9 and ringing:
            a = ringing[index % len(ringing)]
            self.send(AgentNoAnswer(a, self.holding[a]))
        elif kind == 10 and self.talking:
            self.send(CallEnded(sorted(self.talking)[index % len(self.talking)]))
        elif kind == 11:
            self.send(WrapUpEnded(agent))
        elif kind == 12:
            self.send(DeviceChanged(agent, reachable=index % 2 == 0))
        elif kind == 13:
            self.fire_next()

    def drain(self) -> None:
        """Everyone logs in and answers, calls end, timers fire: every caller must come out."""
        for agent in AGENT_IDS:
            self.send(DeviceChanged(agent, reachable=True))
            for event in (AgentLoggedIn(agent), AgentResumed(agent)):
                self.send(event)
        for _ in range(2000):
            ringing = sorted(a for a, c in self.holding.items() if c not in self.talking)
            if ringing:
                self.send(AgentAnswered(ringing[0], self.holding[ringing[0]]))
            elif self.talking:
                contact = min(self.talking)
                self.talking.discard(contact)
                self.send(CallEnded(contact))
            elif not self.fire_next():
                break
            for agent in AGENT_IDS:
                if self.router._agents[agent].state.value == "paused":
                    self.send(AgentResumed(agent))


@settings(max_examples=200, deadline=None)
@given(st.lists(step, max_size=60))
def test_random_days_keep_every_promise(steps: list[tuple[int, int, int]]) -> None:
    router = Router(CFG)
    center = Center(router, scanning(router))
    for kind, index, dt in steps:
        center.apply(kind, index, dt)
    center.drain()
    assert set(center.queued) <= center.done  # nobody was lost
    assert center.router._contacts == {}
    assert center.holding == {}
