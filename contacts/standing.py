"""Where a contact stood, from its events: what a restarted service reads to pick up a call it ran.

`standing(events)` folds a contact's timeline (its events in the order they were stored) into where the
call was when the events stop: in the flow (at which node, in which language, with which collected
values), waiting in a queue (since when: the caller's place), talking to an agent, or over. The
service decides from it what a call found at start-up gets: resumed at its node, put back in its queue
with its place, adopted with its agent, or closed with `service_restarted`.

Pure: no I/O, no clock. Values come from event data and are checked, never trusted: a missing or
malformed one reads as unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

Where = Literal["ivr", "queue", "talking", "ended"]

#: Events after which the contact is over: nothing of the call is left to pick up.
ENDINGS = frozenset(
    {"abandoned", "hung_up", "call_ended", "call_lost", "call_refused", "service_restarted", "transferred"}
)


class Fact(Protocol):
    """One stored contact event (the store's `StoredEvent` has these)."""

    @property
    def type(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Standing:
    """Where the call was: `where`, and what its events say of it (None where they do not say)."""

    where: Where
    flow: str | None = None
    node: str | None = None
    language: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    caller: str | None = None
    dialed: str | None = None
    queue: str | None = None
    #: the caller's place in the queue at `node` (when they first joined it): kept while they wait, and
    #: while they give a number for a call-back they chose there
    place_since: datetime | None = None
    agent: str | None = None
    started: bool = False  # a call of the flow (`call_started`), not a call-back's placeholder

    @property
    def resumable(self) -> bool:
        """Can the call go on in its flow (it was in the flow or waiting, and the events say where)?"""
        return self.where in ("ivr", "queue") and self.started and bool(self.flow) and bool(self.node)


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def standing(events: Iterable[Fact]) -> Standing:
    """Where the call stood after `events` (one contact's, in stored order)."""
    where: Where = "ivr"
    flow = node = language = caller = dialed = queue = agent = None
    place_since: datetime | None = None
    variables: dict[str, str] = {}
    started = False
    seen = False
    for event in events:
        seen = True
        data = event.data if isinstance(event.data, Mapping) else {}
        kind = event.type
        if kind in ENDINGS:
            where = "ended"
        if where == "ended":
            continue
        if kind == "call_started":
            started = True
            flow = _text(data, "flow") or flow
            caller = _text(data, "caller") or caller
            dialed = _text(data, "dialed") or dialed
        elif kind == "call_resumed":
            flow = _text(data, "flow") or flow
        elif kind == "node_entered":
            node = _text(data, "node") or node
            flow = _text(data, "flow") or flow
            where = "ivr"  # a node after the queue: the caller is back in the flow
            place_since = None
        elif kind == "language_chosen":
            language = _text(data, "language") or language
        elif kind == "input_collected":
            name, value = _text(data, "variable"), data.get("value")
            if name is not None and isinstance(value, str):
                variables[name] = value
        elif kind == "queued":
            where = "queue"
            queue = _text(data, "queue") or queue
            if place_since is None:
                place_since = event.at
        elif kind == "queue_overflow":
            where = "ivr"
            place_since = None
        elif kind == "callback_chosen":
            where = "ivr"  # giving a number for the call-back, at the queue node: the place is kept
        elif kind == "answered":
            where = "talking"
            agent = _text(data, "agent") or agent
    if not seen:
        where = "ended"
    return Standing(
        where=where,
        flow=flow,
        node=node,
        language=language,
        variables=variables,
        caller=caller,
        dialed=dialed,
        queue=queue,
        place_since=place_since,
        agent=agent,
        started=started,
    )
