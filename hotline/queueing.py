"""Routing on the real Asterisk: the `routing.Router` fed with what happens to callers and agents, and
its actions carried out over ARI.

Like `hotline.calls` over the IVR engine, `RoutingService` is a short "feed, collect, execute" loop over
a pure core. Everything that touches the router (an API request, a caller hanging up, an agent's phone
answering, a timer, a phone's device state from AMI) runs as one job on one worker task, so
`Router.handle` sees one event at a time and the service's own table of calls never changes under a
job's feet. A job awaits ARI while it runs; what it learns later (a channel event) comes back as a new
job, never as a nested one.

How the router's actions are carried out:

- `OfferContact`: the agent's endpoint (`AgentConfig.endpoint`) is originated into the hotline app with
  the customer's number and name as caller ID (the name from the customer store when the number is
  known there), and a screen pop goes out on the live stream. The leg's `StasisStart` (it answered)
  becomes `AgentAnswered`: the caller's music stops and caller and agent are bridged. Ringing longer
  than `ring_timeout`, or the leg ending first (busy, unreachable), becomes `AgentNoAnswer`.
- `CancelOffer`: the agent's leg is hung up.
- `StartTimer`/`CancelTimer`: asyncio timers that come back as `TimerFired`.
- `AnnouncePosition`: the music stops, Asterisk's queue sounds say the place and the estimate, the
  music starts again.
- `Overflow`: the music stops and the call goes back to its flow (`QueueExited`), to the overflow node.
- `RecordEvent`: a contact event in the store, under the caller's channel as call id (the router's
  `queued` is dropped: the flow's queue node recorded it already).
- `AgentStateChanged`: out on the live stream.

Once bridged, whoever hangs up first ends the contact (`CallEnded`, by "caller" or "agent") and the other
side is hung up; an agent hanging up first is recorded as `call_ended` by "agent" before the caller's
`hung_up`, so the contact shows who ended it. A caller who hangs up while waiting or while an agent rings leaves the queue
(`ContactLeft`: the router records the abandon with the wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import structlog

from hotline.asterisk.ami import AmiWatcher, EndpointState, endpoint_of_device
from hotline.asterisk.ari import AriClient, Event, channel_of
from hotline.asterisk.errors import AriError, AriNotFound
from hotline.calls import AGENT_LEG
from hotline.store import Customer, EventWriter, Store, StoreError, new_event
from ivr import events as ivr_events
from ivr import model as ivr_model
from routing import actions, events
from routing.errors import RoutingError
from routing.model import RoutingConfig
from routing.router import AgentView, QueueView, Router

if TYPE_CHECKING:
    from ivr.actions import Enqueue

log = structlog.get_logger("hotline.queueing")

T = TypeVar("T")
Clock = Callable[[], datetime]

#: Device states of a phone that is busy with a call (another one than ours) or cannot ring.
NOT_REACHABLE = frozenset({"INUSE", "BUSY", "RINGING", "RINGINUSE", "ONHOLD", "UNAVAILABLE", "INVALID"})
#: Device states that only say the phone is busy: a phone busy with our own call stays reachable.
BUSY = frozenset({"INUSE", "BUSY", "RINGING", "RINGINUSE", "ONHOLD"})
#: Q.850 causes of a leg that ended before answering, in the router's words.
CAUSES = {17: "busy", 21: "declined", 19: "no answer", 18: "no answer", 16: "no answer"}
#: How many stream messages a slow subscriber may fall behind before the oldest are dropped.
STREAM_BACKLOG = 1000
#: Contacts whose call id is remembered after they left routing (late wrap-up events still name it).
CALL_IDS_KEPT = 10_000

_QUEUE_DEFAULTS = ivr_model.QueueSpec.model_fields


def utc_now() -> datetime:
    return datetime.now(UTC)


def announcement(position: int, estimated_wait: float) -> list[str]:
    """What a waiting caller hears, as ARI media: their place, then the estimated wait in minutes."""
    if position <= 1:
        media = ["sound:queue-youarenext"]
    else:
        media = ["sound:queue-thereare", f"number:{position}", "sound:queue-callswaiting"]
    if estimated_wait > 0 and math.isfinite(estimated_wait):
        if estimated_wait < 60:
            media += ["sound:queue-holdtime", "sound:queue-less-than", "number:1", "sound:queue-minute"]
        else:
            minutes = round(estimated_wait / 60)
            unit = "sound:queue-minute" if minutes == 1 else "sound:queue-minutes"
            media += ["sound:queue-holdtime", f"number:{minutes}", unit]
    return media


def reachable(endpoint_state: EndpointState, *, ours: bool = False) -> bool:
    """Can the phone take a call? Registered and not busy, unless it is busy with our own call."""
    if not endpoint_state.registered:
        return False
    if ours and endpoint_state.device_state in BUSY:
        return True
    return endpoint_state.device_state not in NOT_REACHABLE


def caller_id(number: str | None, name: str | None) -> str | None:
    """ARI's `callerId`: `"Name" <number>`, or the number alone."""
    if not number:
        return None
    if name:
        clean = name.replace('"', "").replace("\\", "")
        return f'"{clean}" <{number}>'
    return number


class QueuedCall(Protocol):
    """What the service needs of a call in the queue: the hotline's `CallRunner` has all of it."""

    @property
    def channel_id(self) -> str: ...
    @property
    def contact_id(self) -> str: ...
    @property
    def caller(self) -> str | None: ...
    @property
    def caller_name(self) -> str | None: ...
    @property
    def path(self) -> tuple[str, ...]: ...
    def feed(self, event: ivr_events.Event) -> None: ...


@dataclass
class Offer:
    """One agent's leg ringing (then bridged) for one contact."""

    leg: str
    agent_id: str
    contact_id: str
    started: float
    timer: asyncio.TimerHandle | None = None
    answered: bool = False
    settled: bool = False  # answered, given up or cancelled: the leg's end means nothing more to routing


@dataclass
class Waiting:
    """A caller routing holds: waiting, ringing an agent, or bridged to one."""

    call: QueuedCall
    queue: str
    music: str
    language: str
    queued_at: datetime
    customer: Customer | None = None
    state: str = "waiting"  # waiting | bridged
    offer: Offer | None = None
    bridge_id: str | None = None
    announcing: str | None = None
    announcements: int = 0
    #: the flow's call-back offer ("press 1 to be called back"), played when the router says so
    offer_prompt: tuple[str, ...] = ()
    offer_pending: bool = False
    #: an announcement due while another prompt played: it follows that prompt
    announcement_pending: actions.AnnouncePosition | None = None

    @property
    def channel_id(self) -> str:
        return self.call.channel_id


@dataclass
class _Job:
    run: Callable[[], Awaitable[Any]]
    done: asyncio.Future[Any] | None = None


@dataclass(eq=False)
class _Stream:
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(STREAM_BACKLOG))


class OfferTaker(Protocol):
    """Handles the router's offers of contacts it owns, instead of the service ringing for a caller."""

    def owns(self, contact_id: str) -> bool: ...

    async def offer(self, action: actions.OfferContact) -> None: ...

    async def cancel(self, contact_id: str, agent_id: str) -> None: ...


class RoutingService:
    """The router, its timers, and the agents' legs over ARI. `start()` before use, `close()` at the end."""

    def __init__(
        self,
        router: Router,
        ari: AriClient,
        writer: EventWriter | None,
        *,
        config: RoutingConfig,
        clock: Clock = utc_now,
        ami: AmiWatcher | None = None,
        store: Store | None = None,
    ) -> None:
        self.router = router
        self.ari = ari
        self.config = config
        self._writer = writer
        self._clock = clock
        self._ami = ami
        self._store = store
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._calls: dict[str, Waiting] = {}  # contact id -> the call
        self._legs: dict[str, Offer] = {}  # agent's leg channel id -> its offer
        self._call_ids: dict[str, str] = {}  # contact id -> the caller's channel
        self._reachable: dict[str, bool] = {}  # agent id -> what the router was last told
        self._streams: set[_Stream] = set()
        self._takers: list[OfferTaker] = []
        self._unsubscribe: Callable[[], None] | None = None

    # --- start and stop -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the worker and tell the router which phones can ring now."""
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="hotline-routing")
        if self._ami is not None:
            self._unsubscribe = self._ami.on_change(self._device_changed)
        await self._run(self._devices_now)

    async def close(self) -> None:
        """Stop the timers and the worker; hang up agents' legs still ringing."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        while not self._jobs.empty():
            job = self._jobs.get_nowait()
            if job.done is not None and not job.done.done():
                job.done.cancel()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        legs, self._legs = list(self._legs.values()), {}
        for offer in legs:
            if offer.timer is not None:
                offer.timer.cancel()
            if not offer.answered:
                with contextlib.suppress(AriError):
                    await self.ari.hangup(offer.leg)

    # --- the API for others --------------------------------------------------------------------------

    async def submit(self, event: events.Event) -> list[actions.Action]:
        """Feed `event` to the router after everything before it and carry out its actions; raises
        `routing.errors.IllegalTransition` (nothing done) when the agent's state does not allow it."""
        return await self._run(lambda: self._handle(event))

    async def reload(self, config: RoutingConfig) -> list[actions.Action]:
        """Take a new routing config (agents, queues): the router keeps waiting callers and states."""

        async def reload() -> list[actions.Action]:
            self.config = config
            done = self.router.reload(config, self._clock())
            await self._execute_all(done)
            await self._devices_now()
            return done

        return await self._run(reload)

    def agents(self) -> list[AgentView]:
        return self.router.agents()

    def queues(self) -> list[QueueView]:
        return self.router.queues(self._clock())

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        """The live stream for agent desktops: agent state changes and screen pops, as they happen."""
        stream = _Stream()
        self._streams.add(stream)
        try:
            while True:
                yield await stream.queue.get()
        finally:
            self._streams.discard(stream)

    # --- from the call runner -----------------------------------------------------------------------

    async def enqueue(self, call: QueuedCall, action: Enqueue) -> bool:
        """Take a call the flow put in a queue; False when the router would not (the flow overflows)."""
        return bool(await self._run(lambda: self._enqueue(call, action)))

    def caller_event(self, contact_id: str, event: Event) -> None:
        """An ARI event on the channel of a caller routing holds."""
        kind = event.get("type")
        if kind in ("StasisEnd", "ChannelHangupRequest", "ChannelDestroyed"):
            self._post(lambda: self._caller_gone(contact_id))
        elif kind == "PlaybackFinished":
            playback_id = str((event.get("playback") or {}).get("id"))
            self._post(lambda: self._announced(contact_id, playback_id))

    # --- from the hotline app: agents' legs ----------------------------------------------------------

    @property
    def agent_legs(self) -> int:
        """How many agents' legs routing holds now (ringing or bridged)."""
        return len(self._legs)

    def owns(self, channel_id: str) -> bool:
        """Is the channel an agent's leg that routing made?"""
        return channel_id in self._legs

    def agent_event(self, event: Event) -> None:
        """An ARI event on an agent's leg."""
        leg = channel_of(event)
        if leg is None:
            return
        kind = event.get("type")
        if kind == "StasisStart":
            self._post(lambda: self._agent_answered(leg))
        elif kind in ("StasisEnd", "ChannelDestroyed", "ChannelHangupRequest"):
            cause = event.get("cause")
            self._post(lambda: self._agent_gone(leg, cause if isinstance(cause, int) else None))

    # --- the worker ---------------------------------------------------------------------------------

    async def _run(self, run: Callable[[], Awaitable[T]]) -> T:
        if self._worker is None:
            raise RuntimeError("the routing service is not running; start() it first")
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put_nowait(_Job(run, done))
        return await done

    def _post(self, run: Callable[[], Awaitable[Any]]) -> None:
        self._jobs.put_nowait(_Job(run))

    async def _work(self) -> None:
        while True:
            job = await self._jobs.get()
            try:
                result = await job.run()
            except Exception as e:
                if job.done is None:
                    log.exception("routing job failed")
                elif not job.done.done():
                    job.done.set_exception(e)
            else:
                if job.done is not None and not job.done.done():
                    job.done.set_result(result)

    async def _handle(self, event: events.Event) -> list[actions.Action]:
        done = self.router.handle(event, self._clock())
        await self._execute_all(done)
        return done

    async def _feed(self, event: events.Event) -> list[actions.Action]:
        """`_handle` for what the service itself saw: a refusal is logged, not raised."""
        try:
            return await self._handle(event)
        except RoutingError as e:
            log.warning("routing refused an event", event=repr(event), error=str(e))
            return []

    async def _execute_all(self, done: list[actions.Action]) -> None:
        for action in done:
            try:
                await self._execute(action)
            except Exception:
                log.exception("routing action failed", action=repr(action))

    async def _execute(self, action: actions.Action) -> None:
        if isinstance(action, actions.RecordEvent):
            self._record(action)
        elif isinstance(action, actions.AgentStateChanged):
            self._publish(
                {
                    "type": "agent_state",
                    "agent": action.agent_id,
                    "state": action.state,
                    "reason": action.reason,
                    "at": self._clock().isoformat(),
                }
            )
        elif isinstance(action, actions.StartTimer):
            old = self._timers.pop(action.timer_id, None)
            if old is not None:
                old.cancel()
            loop = asyncio.get_running_loop()
            self._timers[action.timer_id] = loop.call_later(
                max(0.0, action.seconds), self._timer_fired, action.timer_id
            )
        elif isinstance(action, actions.CancelTimer):
            timer = self._timers.pop(action.timer_id, None)
            if timer is not None:
                timer.cancel()
        elif isinstance(action, actions.OfferContact):
            taker = self._taker_of(action.contact_id)
            await (taker.offer(action) if taker is not None else self._offer(action))
        elif isinstance(action, actions.CancelOffer):
            taker = self._taker_of(action.contact_id)
            if taker is not None:
                await taker.cancel(action.contact_id, action.agent_id)
            else:
                await self._cancel_offer(action.contact_id, action.agent_id)
        elif isinstance(action, actions.AnnouncePosition):
            await self._announce(action)
        elif isinstance(action, actions.OfferCallback):
            await self._offer_callback(action.contact_id)
        elif isinstance(action, actions.Overflow):
            await self._overflow(action)

    def take_offers(self, taker: OfferTaker) -> Callable[[], None]:
        """Let `taker` ring agents for the contacts it owns (call-back placeholders, which have no caller
        on a channel); returns a function that gives those offers back."""
        self._takers.append(taker)

        def release() -> None:
            if taker in self._takers:
                self._takers.remove(taker)

        return release

    def _taker_of(self, contact_id: str) -> OfferTaker | None:
        return next((taker for taker in self._takers if taker.owns(contact_id)), None)

    def _timer_fired(self, timer_id: str) -> None:
        self._timers.pop(timer_id, None)
        self._post(lambda: self._feed(events.TimerFired(timer_id)))

    # --- callers ------------------------------------------------------------------------------------

    async def _enqueue(self, call: QueuedCall, action: Enqueue) -> bool:
        queue = self.config.queues.get(action.queue)
        if queue is None:
            log.warning(
                "the flow queues to a queue routing does not have; the call overflows",
                queue=action.queue,
                queues=sorted(self.config.queues),
                fix="add the queue to the routing file or fix the flow's queue name",
            )
            return False
        customer = await self.customer_of(call.caller)
        music = action.music if action.music != _QUEUE_DEFAULTS["music"].default else queue.music
        waiting = Waiting(call, action.queue, music, action.language, self._clock(), customer)
        offering = action.callback
        if offering is not None:
            waiting.offer_prompt = tuple(offering.prompt)
        self._calls[call.contact_id] = waiting
        self._remember(call.contact_id, call.channel_id)
        await self._music_on(waiting)
        queued = events.ContactQueued(
            contact_id=call.contact_id,
            queue=action.queue,
            skills=dict(action.skills) or None,
            priority=action.priority if action.priority != _QUEUE_DEFAULTS["priority"].default else None,
            max_wait=action.max_wait if action.max_wait != _QUEUE_DEFAULTS["max_wait"].default else None,
            callback=False,
            caller=call.caller,
            since=action.since,
            offer_callback=None
            if offering is None
            else events.CallbackOffering(offering.after, offering.estimate_over, offering.every),
        )
        try:
            await self._handle(queued)
        except RoutingError as e:
            log.warning("routing refused the call", contact=call.contact_id, error=str(e))
            self._calls.pop(call.contact_id, None)
            await self._music_off(waiting)
            return False
        return True

    async def _caller_gone(self, contact_id: str) -> None:
        waiting = self._calls.pop(contact_id, None)
        if waiting is None:
            return
        if waiting.state == "bridged":
            await self._feed(events.CallEnded(contact_id, by="caller"))
            await self._end_bridge(waiting, hang_up_agent=True)
            return
        await self._feed(events.ContactLeft(contact_id))
        offer = waiting.offer
        if offer is not None and not offer.settled:
            await self._drop_offer(offer)

    async def _announced(self, contact_id: str, playback_id: str) -> None:
        waiting = self._calls.get(contact_id)
        if waiting is None or waiting.announcing != playback_id:
            return
        waiting.announcing = None
        if waiting.state != "waiting":
            return
        pending, waiting.announcement_pending = waiting.announcement_pending, None
        if pending is not None:
            await self._announce(pending)
        elif waiting.offer_pending:
            await self._offer_callback(contact_id)
        else:
            await self._music_on(waiting)

    async def _offer_callback(self, contact_id: str) -> None:
        """Play the flow's call-back offer between the music (after an announcement still playing)."""
        waiting = self._calls.get(contact_id)
        if waiting is None or waiting.state != "waiting" or not waiting.offer_prompt:
            return
        if waiting.announcing is not None:
            waiting.offer_pending = True
            return
        waiting.offer_pending = False
        await self._between_music(waiting, "offer", list(waiting.offer_prompt))

    async def _between_music(self, waiting: Waiting, what: str, media: list[str]) -> None:
        """Stop the music, play `media`; the music comes back when it finished (`_announced`)."""
        waiting.announcements += 1
        playback_id = f"{waiting.channel_id}-{what}-{waiting.announcements}"
        await self._music_off(waiting)
        waiting.announcing = playback_id
        try:
            await self.ari.play(waiting.channel_id, media, lang=waiting.language, playback_id=playback_id)
        except AriError as e:
            log.info(
                "not played to the waiting caller", what=what, contact=waiting.call.contact_id, error=str(e)
            )
            waiting.announcing = None
            await self._music_on(waiting)

    async def leave(self, contact_id: str) -> bool:
        """Take a waiting caller out of routing for a call-back (no abandon is counted): False when an
        agent has them already. Their place lives on in the flow, which rejoins or hands it to the
        call-back with the time of their first entry."""
        return bool(await self._run(lambda: self._leave(contact_id)))

    async def _leave(self, contact_id: str) -> bool:
        waiting = self._calls.get(contact_id)
        if waiting is None:
            return True
        if waiting.state == "bridged" or (waiting.offer is not None and waiting.offer.answered):
            return False
        del self._calls[contact_id]
        await self._music_off(waiting)
        await self._feed(events.ContactLeft(contact_id, reason="callback"))
        offer = waiting.offer
        if offer is not None and not offer.settled:
            await self._drop_offer(offer)
        return True

    async def _announce(self, action: actions.AnnouncePosition) -> None:
        waiting = self._calls.get(action.contact_id)
        if waiting is None or waiting.state != "waiting":
            return
        if waiting.announcing is not None:
            waiting.announcement_pending = action
            return
        await self._between_music(waiting, "queue", announcement(action.position, action.estimated_wait))

    async def _overflow(self, action: actions.Overflow) -> None:
        waiting = self._calls.pop(action.contact_id, None)
        if waiting is None:
            return
        if waiting.offer is not None and not waiting.offer.settled:
            await self._drop_offer(waiting.offer)
        await self._music_off(waiting)
        log.info(
            "the caller leaves the queue for the overflow", contact=action.contact_id, reason=action.reason
        )
        waiting.call.feed(ivr_events.QueueExited(action.reason))

    async def _music_on(self, waiting: Waiting) -> None:
        try:
            await self.ari.post(f"/channels/{waiting.channel_id}/moh", mohClass=waiting.music)
        except AriNotFound:
            pass
        except AriError as e:
            log.warning("no music on hold", channel=waiting.channel_id, music=waiting.music, error=str(e))

    async def _music_off(self, waiting: Waiting) -> None:
        if waiting.announcing is not None:
            with contextlib.suppress(AriError):
                await self.ari.stop_playback(waiting.announcing)
            waiting.announcing = None
        with contextlib.suppress(AriError):
            await self.ari.delete(f"/channels/{waiting.channel_id}/moh")

    # --- agents -------------------------------------------------------------------------------------

    async def _offer(self, action: actions.OfferContact) -> None:
        waiting = self._calls.get(action.contact_id)
        agent = self.config.agents.get(action.agent_id)
        if waiting is None or waiting.state != "waiting" or agent is None:
            log.warning("cannot offer the contact", contact=action.contact_id, agent=action.agent_id)
            self._post(lambda: self._feed(events.AgentNoAnswer(action.agent_id, action.contact_id, "failed")))
            return
        call = waiting.call
        leg = uuid.uuid4().hex
        offer = Offer(leg, action.agent_id, action.contact_id, asyncio.get_running_loop().time())
        self._legs[leg] = offer
        waiting.offer = offer
        name = waiting.customer.name if waiting.customer is not None and waiting.customer.name else None
        self._publish(self._screen_pop(waiting, action.agent_id))
        offer.timer = asyncio.get_running_loop().call_later(
            action.ring_timeout, lambda: self._post(lambda: self._rang_out(leg))
        )
        try:
            await self.ari.originate(
                agent.endpoint,
                self.ari.app,
                leg,
                app_args=f"{AGENT_LEG},{action.contact_id}",
                caller_id=caller_id(call.caller, name or call.caller_name),
                timeout=math.ceil(action.ring_timeout) + 1,
                variables={"HOTLINE_CONTACT": action.contact_id, "HOTLINE_AGENT": action.agent_id},
            )
        except AriError as e:
            log.warning(
                "could not ring the agent",
                agent=action.agent_id,
                endpoint=agent.endpoint,
                error=str(e),
                fix="check the agent's endpoint in the routing file",
            )
            self._settle(offer)
            self._legs.pop(leg, None)
            self._post(lambda: self._feed(events.AgentNoAnswer(action.agent_id, action.contact_id, "failed")))

    def _screen_pop(self, waiting: Waiting, agent_id: str) -> dict[str, Any]:
        call = waiting.call
        customer = waiting.customer
        return {
            "type": "screen_pop",
            "agent": agent_id,
            "contact_id": call.contact_id,
            "caller": call.caller,
            "caller_name": call.caller_name,
            "customer": None
            if customer is None
            else {"id": customer.id, "name": customer.name, "attributes": dict(customer.attributes)},
            "ivr_path": list(call.path),  # the live path: the store's row may lag a few events behind
            "queue": waiting.queue,
            "wait": round((self._clock() - waiting.queued_at).total_seconds(), 3),
            "at": self._clock().isoformat(),
        }

    def _settle(self, offer: Offer) -> None:
        offer.settled = True
        if offer.timer is not None:
            offer.timer.cancel()
            offer.timer = None
        waiting = self._calls.get(offer.contact_id)
        if waiting is not None and waiting.offer is offer and not offer.answered:
            waiting.offer = None

    async def _drop_offer(self, offer: Offer) -> None:
        self._settle(offer)
        with contextlib.suppress(AriError):
            await self.ari.hangup(offer.leg)

    async def _cancel_offer(self, contact_id: str, agent_id: str) -> None:
        for offer in list(self._legs.values()):
            if offer.contact_id == contact_id and offer.agent_id == agent_id and not offer.answered:
                await self._drop_offer(offer)

    async def _rang_out(self, leg: str) -> None:
        offer = self._legs.get(leg)
        if offer is None or offer.settled:
            return
        await self._drop_offer(offer)
        await self._feed(events.AgentNoAnswer(offer.agent_id, offer.contact_id, "no answer"))

    async def _agent_answered(self, leg: str) -> None:
        offer = self._legs.get(leg)
        waiting = self._calls.get(offer.contact_id) if offer is not None else None
        if offer is None or offer.settled or waiting is None or waiting.offer is not offer:
            log.info("an agent answered an offer that is over; hanging up", leg=leg)
            if offer is not None:
                offer.settled = True
            with contextlib.suppress(AriError):
                await self.ari.hangup(leg)
            return
        offer.answered = True
        self._settle(offer)
        try:
            await self._handle(events.AgentAnswered(offer.agent_id, offer.contact_id))
        except RoutingError as e:
            log.warning("routing refused the answer; hanging up the agent", error=str(e))
            waiting.offer = None
            self._legs.pop(leg, None)
            with contextlib.suppress(AriError):
                await self.ari.hangup(leg)
            return
        waiting.state = "bridged"
        waiting.call.feed(ivr_events.QueueAnswered())
        await self._music_off(waiting)
        bridge_id = waiting.bridge_id = uuid.uuid4().hex
        try:
            await self.ari.create_bridge(bridge_id, "mixing", name=f"contact-{offer.contact_id}")
            await self.ari.add_channel(bridge_id, waiting.channel_id)
            await self.ari.add_channel(bridge_id, leg)
        except AriError as e:
            # one side is gone: its channel's end comes as an event and ends the contact
            log.warning("could not bridge caller and agent", contact=offer.contact_id, error=str(e))
        log.info("caller and agent bridged", contact=offer.contact_id, agent=offer.agent_id)

    async def _agent_gone(self, leg: str, cause: int | None) -> None:
        offer = self._legs.pop(leg, None)
        if offer is None:
            return
        if not offer.answered:
            if offer.settled:
                return
            self._settle(offer)
            reason = CAUSES.get(cause or 0, "no answer" if not cause else "failed")
            await self._feed(events.AgentNoAnswer(offer.agent_id, offer.contact_id, reason))
            return
        waiting = self._calls.get(offer.contact_id)
        if waiting is None or waiting.state != "bridged" or waiting.offer is not offer:
            return
        del self._calls[offer.contact_id]
        await self._feed(events.CallEnded(offer.contact_id, by="agent"))
        self._record(
            actions.RecordEvent(offer.contact_id, "call_ended", {"by": "agent", "cause": "agent hung up"})
        )
        await self._end_bridge(waiting, hang_up_agent=False)
        with contextlib.suppress(AriError):
            await self.ari.hangup(waiting.channel_id)

    async def _end_bridge(self, waiting: Waiting, *, hang_up_agent: bool) -> None:
        offer = waiting.offer
        if hang_up_agent and offer is not None:
            self._legs.pop(offer.leg, None)
            with contextlib.suppress(AriError):
                await self.ari.hangup(offer.leg)
        if waiting.bridge_id is not None:
            with contextlib.suppress(AriError):
                await self.ari.destroy_bridge(waiting.bridge_id)
            waiting.bridge_id = None

    # --- agents' phones ---------------------------------------------------------------------------

    def _agents_on(self, endpoint: str) -> list[str]:
        return [
            agent_id
            for agent_id, agent in self.config.agents.items()
            if endpoint_of_device(agent.endpoint) == endpoint
        ]

    def _busy_with_us(self, agent_id: str) -> bool:
        return any(offer.agent_id == agent_id for offer in self._legs.values())

    def _device_changed(self, endpoint: str, state: EndpointState) -> None:
        for agent_id in self._agents_on(endpoint):
            self._post(functools.partial(self._tell_reachable, agent_id, state))

    async def _tell_reachable(self, agent_id: str, state: EndpointState | None) -> None:
        now = True if state is None else reachable(state, ours=self._busy_with_us(agent_id))
        if self._reachable.get(agent_id) == now:
            return
        self._reachable[agent_id] = now
        await self._feed(events.DeviceChanged(agent_id, now))

    async def _devices_now(self) -> None:
        """Every agent's phone as it is now: a phone that is not PJSIP (a Local test agent) always
        counts as reachable, and so does every phone when AMI is not watched."""
        states = self._ami.endpoint_states() if self._ami is not None else {}
        for agent_id, agent in self.config.agents.items():
            endpoint = endpoint_of_device(agent.endpoint)
            if endpoint is None or self._ami is None:
                await self._tell_reachable(agent_id, None)
            else:
                await self._tell_reachable(agent_id, states.get(endpoint, EndpointState(registered=False)))

    # --- contact events and the live stream --------------------------------------------------------

    def _remember(self, contact_id: str, call_id: str) -> None:
        self._call_ids[contact_id] = call_id
        while len(self._call_ids) > CALL_IDS_KEPT:
            del self._call_ids[next(iter(self._call_ids))]

    async def customer_of(self, number: str | None) -> Customer | None:
        """The customer record a number belongs to, for screen pops (None: unknown, or no store)."""
        if self._store is None or not number:
            return None
        try:
            return await self._store.customer_by_phone(number)
        except (StoreError, ValueError) as e:
            log.info("no customer lookup for the number", number=number, error=str(e))
            return None

    def publish(self, message: Mapping[str, Any]) -> None:
        """Send a message to the live stream's subscribers (agent desktops)."""
        self._publish(message)

    def record(self, contact_id: str, event_type: str, data: dict[str, Any]) -> None:
        """A contact event of a contact routing knows (a call-back's attempt, say), written like its own."""
        self._record(actions.RecordEvent(contact_id, event_type, data))

    def _record(self, action: actions.RecordEvent) -> None:
        if action.type == "queued" and action.contact_id in self._calls:
            return  # the flow's queue node recorded it already, when it queued the call
        call_id = self._call_ids.get(action.contact_id)
        if self._writer is None:
            log.info("contact event", type=action.type, contact=action.contact_id, data=action.data)
            return
        try:
            written = self._writer.submit(
                new_event(action.type, action.contact_id, at=self._clock(), call_id=call_id, data=action.data)
            )
        except StoreError as e:
            log.error("contact event not written", contact=action.contact_id, type=action.type, error=str(e))
            return
        written.add_done_callback(_log_failed_write)

    def _publish(self, message: Mapping[str, Any]) -> None:
        for stream in list(self._streams):
            if stream.queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    stream.queue.get_nowait()
            stream.queue.put_nowait(dict(message))


def _log_failed_write(written: asyncio.Future[None]) -> None:
    if not written.cancelled() and written.exception() is not None:
        log.error("contact event not written", error=str(written.exception()))
