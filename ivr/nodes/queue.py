"""`queue`: hand the caller to skill routing; with a call-back offer, a waiting caller may leave the queue
for a call-back that keeps their place."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator

from ivr import actions, events
from ivr.fields import Flag, Key, Name, NodeId, PromptList, Strict, flag_or_mapping
from ivr.nodes.base import Call, Exit, Hold, NodeBase, Path
from ivr.nodes.callback import CallbackDialogue, callback_dialogue


class QueueCallback(CallbackDialogue):
    """Offer a caller waiting in a queue to be called back, keeping their place: now and then they hear
    `offer`; pressing `key` takes them out of the queue into the call-back dialogue."""

    key: Key = "1"
    after: Annotated[float, Field(ge=0, le=86400)] = 30.0
    estimate_over: Annotated[float, Field(gt=0, le=86400)] | None = 120.0
    every: Annotated[float, Field(ge=0, le=3600)] = 60.0
    offer: PromptList = ("vm-press", "digits/1", "vm-tocallback")


class QueueSpec(Strict):
    """Hand the caller to skill routing."""

    name: Name
    skills: dict[Name, Annotated[int, Field(ge=1, le=10)]] = Field(default_factory=dict)
    priority: Annotated[int, Field(ge=0, le=100)] = 0
    music: str = "default"
    announce_every: Annotated[float, Field(ge=0, le=3600)] = 30.0
    max_wait: Annotated[float, Field(gt=0, le=86400)] = 600.0
    callback: QueueCallback | None = None

    @field_validator("callback", mode="before", json_schema_input_type=Flag | QueueCallback | None)
    @classmethod
    def _callback(cls, v: Any) -> Any:
        """`callback: true` offers a call-back with every default; `false` offers none."""
        return flag_or_mapping(v)


class Queue(NodeBase):
    """Put the caller in a queue for an agent; `overflow` when the wait runs out or nobody can take it."""

    TYPE_KEY: ClassVar[str] = "queue"
    ENDS: ClassVar[bool] = True
    EXAMPLE: ClassVar[str] = """\
nodes:
  internet_queue_pl:
    description: Internet faults, for Polish speakers.
    queue:
      name: support
      skills: {internet: 3, polish: 5}
      priority: 0
      music: default
      announce_every: 30
      max_wait: 900
      callback: true
    overflow: all_busy
"""

    queue: QueueSpec
    overflow: NodeId

    def enter(self, call: Call) -> None:
        spec = self.queue
        since = call.take_place()  # a caller resumed after a restart keeps their place
        _enqueue(self, call, since=since, place=since or call.now)
        waited = {} if since is None else {"waited": max((call.now - since).total_seconds(), 0.0)}
        call.record("queued", queue=spec.name, skills=dict(spec.skills), priority=spec.priority, **waited)

    def exits(self) -> Iterator[Exit]:
        yield Exit(("overflow",), self.overflow, "overflow")

    def prompts(self) -> Iterator[tuple[Path, tuple[str, ...]]]:
        waiting = self.queue.callback
        if waiting is not None:
            yield ("queue", "callback", "offer"), waiting.offer
            for path, names in waiting.dialogue_prompts():
                yield ("queue", "callback", *path), names

    def detail(self) -> tuple[str, str | None]:
        spec = self.queue
        wants = [f"{k} {v}" for k, v in spec.skills.items()]
        if spec.priority:
            wants.append(f"priority {spec.priority}")
        return spec.name, ", ".join(wants) or None


def _enqueue(node: Queue, call: Call, *, since: datetime | None, place: datetime) -> None:
    """Hand the caller to routing: `since` is when their place dates from (None: now, a first join),
    `place` when the caller first joined this queue."""
    spec = node.queue
    offer = spec.callback
    call.emit(
        actions.Enqueue(
            queue=spec.name,
            skills=dict(spec.skills),
            priority=spec.priority,
            music=spec.music,
            announce_every=spec.announce_every,
            max_wait=spec.max_wait,
            callback=None
            if offer is None
            else actions.CallbackOfferSpec(
                key=offer.key,
                after=offer.after,
                estimate_over=offer.estimate_over,
                every=offer.every,
                prompt=call.media(offer.offer),
            ),
            language=call.language,
            variables=dict(call.variables),
            since=since,
        )
    )
    call.hand_off("queue", _Waiting(node, call, place))


class _Waiting(Hold):
    """A caller in the queue: routing has them until it gives them back (`QueueExited`) or an agent
    answers (`QueueAnswered`); the call-back key takes them out, keeping their place."""

    waiting_for: ClassVar[str] = "queue"

    def __init__(self, node: Queue, call: Call, since: datetime) -> None:
        self.node = node
        self.call = call
        self.since = since  # the caller's place: when they first joined the queue
        self.state = "waiting"  # waiting, leaving (for a call-back) or answered

    def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Digit):
            self._key(event.digit)
        elif isinstance(event, events.QueueExited):
            self._exited(event)
        elif isinstance(event, events.QueueAnswered):
            self.state = "answered"

    def _waited(self) -> float:
        """Seconds since the caller's place in the queue began."""
        return max((self.call.now - self.since).total_seconds(), 0.0)

    def _key(self, key: object) -> None:
        """A key pressed while queued: the call-back key takes the caller out of the queue; any other
        key, or any key once an agent has the caller, is not for the flow."""
        offer = self.node.queue.callback
        if offer is None or self.state != "waiting" or key != offer.key:
            return
        self.state = "leaving"
        self.call.emit(actions.LeaveQueue("callback"))
        self.call.record("callback_chosen", queue=self.node.queue.name, waited=self._waited())

    def _exited(self, event: events.QueueExited) -> None:
        node, call = self.node, self.call
        offer = node.queue.callback
        if event.reason == "callback" and offer is not None and self.state != "waiting":
            if self.state == "leaving":
                self._callback(offer)
            # else an agent answered before the caller was out: they stay with the agent
            return
        call.record("queue_overflow", queue=node.queue.name, reason=str(event.reason))
        call.take_back()
        call.go(node.overflow)

    def _callback(self, offer: QueueCallback) -> None:
        """The caller left the queue for a call-back: take a number, or put them back in their place."""
        node, call, place = self.node, self.call, self.since
        spec = node.queue
        call.take_back()
        call.attempts = 0
        call.keys = ""

        def rejoin() -> None:
            call.cancel_timer()
            call.stop_playback()
            call.stop_input()
            call.attempts = 0
            call.keys = ""
            _enqueue(node, call, since=place, place=place)

        callback_dialogue(
            call,
            call.node_id,
            offer,
            queue=spec.name,
            skills=spec.skills,
            priority=spec.priority,
            place_since=place,
            give_up=rejoin,
        )
