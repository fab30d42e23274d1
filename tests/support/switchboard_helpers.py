"""Builders for the switchboard tests: a board fed with plain values at times given in seconds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from routing import events as routing_events
from routing.model import RoutingConfig
from routing.switchboard import Settings, Switchboard
from routing.switchboard import actions as act
from routing.switchboard import events as ev
from support.routing_helpers import T0, at, config

A = TypeVar("A")

__all__ = ["T0", "Board", "DueCallback", "at", "config"]


@dataclass(frozen=True)
class DueCallback:
    """A call-back as the store hands it out, as plain values."""

    id: str = "cb1"
    contact_id: str = "asked1"
    number: str = "+48221234567"
    queue: str | None = "support"
    skills: dict[str, int] = field(default_factory=dict)
    priority: int = 0
    attempts: int = 0
    requested_at: datetime = T0
    place_since: datetime | None = None
    expires_at: datetime | None = None
    time_zone: str = "UTC"
    customer_ref: str | None = "ORDER-7"
    note: str | None = "about the invoice"


class Board:
    """A switchboard and the actions of its last `feed`, with the time as seconds after T0."""

    def __init__(self, routing: RoutingConfig, settings: Settings | None = None) -> None:
        self.board = Switchboard(routing, settings or Settings(seed="test"))
        self.t = 0.0
        self.out: list[act.Action] = []
        self.all: list[act.Action] = []

    def feed(self, event: ev.Event, t: float | None = None) -> list[act.Action]:
        if t is not None:
            self.t = t
        self.out = self.board.handle(event, at(self.t))
        self.all += self.out
        return self.out

    def log_in(self, *agents: str) -> None:
        for agent in agents:
            self.feed(routing_events.AgentLoggedIn(agent))

    def queue_caller(self, contact: str = "c1", queue: str = "support", **extra: Any) -> list[act.Action]:
        extra.setdefault("caller", "+48221234567")
        return self.feed(
            ev.CallerQueued(contact_id=contact, channel_id=f"ch-{contact}", queue=queue, **extra)
        )

    def of(self, kind: type[A], actions: list[act.Action] | None = None) -> list[A]:
        return [a for a in (self.out if actions is None else actions) if isinstance(a, kind)]

    def one(self, kind: type[A]) -> A:
        found = self.of(kind)
        assert len(found) == 1, f"expected one {kind.__name__} in {self.out}"
        return found[0]

    def records(self, actions: list[act.Action] | None = None) -> list[str]:
        return [a.type for a in self.of(act.RecordEvent, actions)]

    def state(self, agent: str) -> tuple[str, str | None]:
        view = next(a for a in self.board.agents() if a.id == agent)
        return view.state, view.reason

    def timer(self, prefix: str) -> act.StartTimer:
        """The last timer started whose id begins with `prefix`."""
        found = [a for a in self.all if isinstance(a, act.StartTimer) and a.timer_id.startswith(prefix)]
        assert found, f"no timer {prefix}* started"
        return found[-1]

    def fire(self, prefix: str, after: float | None = None) -> list[act.Action]:
        """Fire the last timer started whose id begins with `prefix`, its seconds later (or `after`)."""
        timer = self.timer(prefix)
        return self.feed(ev.TimerFired(timer.timer_id), self.t + (timer.seconds if after is None else after))
