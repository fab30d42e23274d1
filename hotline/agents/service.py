"""The switchboard on the real Asterisk: `routing.switchboard.Switchboard` fed with what happens, and its
actions carried out over ARI, the contact store and the live stream.

Like `hotline.calls` over the IVR engine, `RoutingService` is a short "feed, collect, execute" loop;
every decision (what a waiting caller hears, whose phone rings, when to bridge, how a call-back
attempt ended) is the engine's. Everything that reaches it (an agent's request from the API or a
feature code, a caller handed over by a flow, an event on a channel it holds, a timer, a phone's state
from AMI, a call-back from the store and the store's answers) runs as one job on one worker task, so
the engine sees one event at a time. A job awaits ARI while it carries out the actions, in order;
what follows from them (a refused prompt, a refused originate, the store's answer to a dial) comes
back as a new job, never a nested one.

How the actions are carried out:

- `MusicOn`/`MusicOff`, `Play`/`StopPlayback`, `HangUp`, `Bridge`/`EndBridge`: ARI requests (a
  channel that is gone already is no error). A `Play` Asterisk refuses comes back as
  `PlaybackEnded`, so the music returns; an `Originate` it refuses as `LegFailed`.
- `Originate`: a leg into the calls' app (a waiting caller's agent) or the call-backs' app (whose events
  come on its own ARI connection, so those legs never reach the calls).
- `QueueAnswered`/`QueueExited`: told to the caller's flow (`ivr.events`).
- `RecordEvent`: a contact event in the store; `Publish`: the live stream (agent desktops).
- `StartTimer`/`CancelTimer`: asyncio timers that come back as `TimerFired`.
- `StartDial`, `SettleAttempt`, `ReleaseCallback`: the call-back store, off the worker (a slow database
  never holds up callers); `StartDial`'s answer comes back as `DialApproved` or `DialRefused`.
- `Log`: a structured log line.

While Asterisk cannot be seen (`pause()`), the timers stop with the time they had left; `resume()` runs
them on, and tells the switchboard of prompts that ended meanwhile. Channels found gone come in as
`ChannelGone(lost=True)` (`lose()`): nobody is counted as having hung up. `adopt()` takes a conversation
found bridged at start-up (`TalkFound`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import structlog

from hotline.asterisk.ami import AmiWatcher, EndpointState
from hotline.asterisk.ari import AriClient
from hotline.asterisk.errors import AriError, AriNotFound
from hotline.asterisk.events import (
    AriEvent,
    ChannelDestroyed,
    ChannelHangupRequest,
    Dial,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
)
from hotline.clock import Clock, utc_now
from hotline.store import CallbackStore, Customer, EventWriter, Store, StoreError, new_event
from ivr import events as ivr_events
from ivr.actions import Enqueue
from ivr.model import QueueSpec
from routing.events import CallbackOffering
from routing.model import RoutingConfig
from routing.router import AgentView, QueueView
from routing.switchboard import Switchboard
from routing.switchboard import actions as act
from routing.switchboard import events as ev

log = structlog.get_logger("hotline.agents")

T = TypeVar("T")

#: How many stream messages a slow subscriber may fall behind before the oldest are dropped.
STREAM_BACKLOG = 1000
#: The flow's queue node defaults: a value left at its default takes the routing file's queue value.
_QUEUE_DEFAULTS = QueueSpec.model_fields


class QueuedCall(Protocol):
    """What the service needs of a caller's call: the call runner has all of it."""

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


def caller_queued(call: QueuedCall, action: Enqueue, customer: ev.Customer | None) -> ev.CallerQueued:
    """The switchboard's view of a flow's `Enqueue`: values the flow left at the queue node's defaults
    are the routing file's to give (its music, priority and max wait)."""
    offer = action.callback
    return ev.CallerQueued(
        contact_id=call.contact_id,
        channel_id=call.channel_id,
        queue=action.queue,
        language=action.language,
        skills=dict(action.skills) or None,
        priority=action.priority if action.priority != _QUEUE_DEFAULTS["priority"].default else None,
        max_wait=action.max_wait if action.max_wait != _QUEUE_DEFAULTS["max_wait"].default else None,
        music=action.music if action.music != _QUEUE_DEFAULTS["music"].default else None,
        since=action.since,
        offer_callback=None
        if offer is None
        else CallbackOffering(offer.after, offer.estimate_over, offer.every),
        offer_prompt=tuple(offer.prompt) if offer is not None else (),
        caller=call.caller,
        caller_name=call.caller_name,
        customer=customer,
        ivr_path=call.path,
    )


def switchboard_event(event: AriEvent) -> ev.Event | None:
    """What an ARI event on a channel the switchboard holds means to it."""
    match event:
        case StasisStart():
            return ev.LegAnswered(event.channel_id)
        case StasisEnd():
            return ev.ChannelGone(event.channel_id)
        case ChannelHangupRequest() | ChannelDestroyed():
            return ev.ChannelGone(event.channel_id, event.cause)
        case PlaybackFinished():
            return ev.PlaybackEnded(event.playback.id)
        case Dial():
            return ev.LegDialed(event.channel_id, event.status) if event.status else None
    return None


def phone(state: EndpointState) -> ev.Phone:
    return ev.Phone(state.registered, state.device_state)


@dataclass
class _Job:
    run: Callable[[], Awaitable[Any]]
    done: asyncio.Future[Any] | None = None


@dataclass(eq=False)
class _Stream:
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(STREAM_BACKLOG))


class RoutingService:
    """The switchboard, its timers and its legs over ARI. `start()` before use, `close()` at the end."""

    def __init__(
        self,
        switchboard: Switchboard,
        ari: AriClient,
        writer: EventWriter | None,
        *,
        clock: Clock = utc_now,
        ami: AmiWatcher | None = None,
        store: Store | None = None,
        callbacks: CallbackStore | None = None,
        callback_ari: AriClient | None = None,
        owner: str = "hotline",
        lease: float = 60.0,
    ) -> None:
        self.switchboard = switchboard
        self.ari = ari
        self.callback_ari = callback_ari
        self.owner = owner
        self.lease = lease
        self._writer = writer
        self._clock = clock
        self._ami = ami
        self._store = store
        self._callbacks = callbacks
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._frozen: dict[str, float] | None = None  # while paused: timer id -> seconds left
        self._calls: dict[str, QueuedCall] = {}  # contact id -> the caller's call, while queued
        self._streams: set[_Stream] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def config(self) -> RoutingConfig:
        return self.switchboard.config

    # --- start and stop -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the worker and tell the switchboard which phones can ring now."""
        if self._worker is None:
            self._worker = asyncio.create_task(self._work(), name="hotline-routing")
        phones: Mapping[str, ev.Phone] | None = None
        if self._ami is not None:
            self._unsubscribe = self._ami.on_change(self._phone_changed)
            phones = {endpoint: phone(state) for endpoint, state in self._ami.endpoint_states().items()}
        await self.feed(ev.PhonesSeen(phones))

    async def close(self) -> None:
        """Stop the worker and the timers, after the switchboard's last word: it hangs up the phones
        still ringing."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._worker is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.feed(ev.Stopping()), 5.0)
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
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- what others ask ----------------------------------------------------------------------------

    async def submit(self, event: ev.AgentRequest) -> list[act.Action]:
        """An agent's request, after everything before it; raises `routing.errors.RoutingError` (nothing
        done) when the agent's state does not allow it."""
        return await self.feed(event)

    async def feed(self, event: ev.Event) -> list[act.Action]:
        """Feed `event` after everything before it and carry out what the switchboard says."""
        return await self._run(lambda: self._handle(event))

    async def reload(self, config: RoutingConfig) -> list[act.Action]:
        """Take a new routing config (agents, queues): waiting callers and agents' states are kept."""
        return await self.feed(ev.Reloaded(config))

    def agents(self) -> list[AgentView]:
        return self.switchboard.agents()

    def queues(self) -> list[QueueView]:
        return self.switchboard.queues(self._clock())

    def held_callbacks(self) -> list[str]:
        return self.switchboard.held_callbacks()

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        """The live stream for agent desktops: agent state changes and screen pops, as they happen."""
        stream = _Stream()
        self._streams.add(stream)
        try:
            while True:
                yield await stream.queue.get()
        finally:
            self._streams.discard(stream)

    # --- callers, from their flow ---------------------------------------------------------------------

    async def enqueue(self, call: QueuedCall, action: Enqueue) -> None:
        """Take a caller the flow put in a queue; the answer reaches the flow as `QueueAnswered` or
        `QueueExited` (at once, with "no routing", for a queue routing does not have)."""
        customer = await self.customer_of(call.caller)
        self._calls[call.contact_id] = call
        await self.feed(caller_queued(call, action, customer))

    async def leave(self, contact_id: str) -> None:
        """The caller pressed the call-back key while waiting."""
        await self.feed(ev.CallerLeaving(contact_id))

    # --- channels ------------------------------------------------------------------------------------

    def owns(self, channel_id: str) -> bool:
        """Is the channel a waiting caller's, or a leg the switchboard placed?"""
        return self.switchboard.owns(channel_id)

    def channels(self) -> list[str]:
        """Every channel the switchboard holds now."""
        return self.switchboard.channels()

    def talking(self, contact_id: str) -> bool:
        """Is the contact's caller (or customer) talking to an agent now?"""
        return self.switchboard.talking(contact_id)

    # --- Asterisk away, and back ---------------------------------------------------------------------

    def pause(self) -> None:
        """Asterisk cannot be seen: the timers stop, keeping the time they had left."""
        self._post(self._pause)

    async def _pause(self) -> None:
        if self._frozen is not None:
            return
        now = asyncio.get_running_loop().time()
        self._frozen = {}
        for timer_id, timer in self._timers.items():
            self._frozen[timer_id] = max(timer.when() - now, 0.0)
            timer.cancel()
        self._timers.clear()

    async def resume(self, gone: list[str]) -> None:
        """Asterisk is back: `gone` are the channels found gone meanwhile (each lost, in that order);
        the timers run on, and prompts that ended meanwhile are told as ended."""
        await self._run(lambda: self._resume(gone))

    async def _resume(self, gone: list[str]) -> None:
        for channel_id in gone:
            if self.switchboard.owns(channel_id):
                await self._handle(ev.ChannelGone(channel_id, lost=True))
                await self._forget_call(channel_id)
        frozen, self._frozen = self._frozen or {}, None
        loop = asyncio.get_running_loop()
        for timer_id, left in frozen.items():
            self._timers[timer_id] = loop.call_later(left, self._timer_fired, timer_id)
        for playback_id in self.switchboard.playbacks():
            try:
                playing = await self.ari.playback_exists(playback_id)
            except AriError:
                continue
            if not playing:
                await self._handle(ev.PlaybackEnded(playback_id))

    async def adopt(self, found: ev.TalkFound) -> None:
        """A conversation found bridged at start-up goes on, held by the switchboard."""
        await self.feed(found)

    @property
    def agent_legs(self) -> int:
        """Legs to agents' and customers' phones held now."""
        return self.switchboard.legs

    def channel_event(self, event: AriEvent) -> None:
        """An ARI event on a channel the switchboard holds (of either app)."""
        fed = switchboard_event(event)
        if fed is not None:
            self._post(lambda: self._handle(fed))
        if isinstance(fed, ev.ChannelGone):
            self._post(lambda: self._forget_call(fed.channel_id))

    async def _forget_call(self, channel_id: str) -> None:
        """A waiting caller who hung up: their flow hears it from its own channel, not from us."""
        for contact_id, call in list(self._calls.items()):
            if call.channel_id == channel_id:
                del self._calls[contact_id]

    def _phone_changed(self, endpoint: str, state: EndpointState) -> None:
        self._post(lambda: self._handle(ev.PhoneChanged(endpoint, phone(state))))

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

    async def _handle(self, event: ev.Event) -> list[act.Action]:
        done = self.switchboard.handle(event, self._clock())  # an agent's refused request raises here
        for action in done:
            try:
                await self._execute(action)
            except Exception:
                log.exception("routing action failed", action=repr(action))
        return done

    # --- carrying out -------------------------------------------------------------------------------

    async def _execute(self, action: act.Action) -> None:
        match action:
            case act.MusicOn():
                try:
                    await self.ari.post(
                        f"/channels/{action.channel_id}/moh", idempotent=True, mohClass=action.music
                    )
                except AriNotFound:
                    pass
                except AriError as e:
                    log.warning(
                        "no music on hold", channel=action.channel_id, music=action.music, error=str(e)
                    )
            case act.MusicOff():
                with contextlib.suppress(AriError):
                    await self.ari.delete(f"/channels/{action.channel_id}/moh")
            case act.Play():
                try:
                    await self.ari.play(
                        action.channel_id, action.media, lang=action.language, playback_id=action.playback_id
                    )
                except AriError as e:
                    log.info("prompt not played", channel=action.channel_id, error=str(e))
                    self._post(lambda: self._handle(ev.PlaybackEnded(action.playback_id)))
            case act.StopPlayback():
                with contextlib.suppress(AriError):
                    await self.ari.stop_playback(action.playback_id)
            case act.Originate():
                await self._originate(action)
            case act.HangUp():
                with contextlib.suppress(AriError):
                    await self.ari.hangup(action.channel_id)
            case act.Bridge():
                await self._bridge(action)
            case act.EndBridge():
                with contextlib.suppress(AriError):
                    await self.ari.destroy_bridge(action.bridge_id)
            case act.QueueAnswered():
                call = self._calls.pop(action.contact_id, None)  # the flow's last word from the queue
                if call is not None:
                    call.feed(ivr_events.QueueAnswered())
            case act.QueueExited():
                call = self._calls.pop(action.contact_id, None)
                if call is not None:
                    call.feed(ivr_events.QueueExited(action.reason))
            case act.RecordEvent():
                self._record(action)
            case act.Publish():
                self.publish(action.message)
            case act.StartTimer():
                old = self._timers.pop(action.timer_id, None)
                if old is not None:
                    old.cancel()
                if self._frozen is not None:
                    self._frozen[action.timer_id] = action.seconds
                else:
                    self._timers[action.timer_id] = asyncio.get_running_loop().call_later(
                        action.seconds, self._timer_fired, action.timer_id
                    )
            case act.CancelTimer():
                if self._frozen is not None:
                    self._frozen.pop(action.timer_id, None)
                timer = self._timers.pop(action.timer_id, None)
                if timer is not None:
                    timer.cancel()
            case act.StartDial():
                self._spawn(self._start_dial(action))
            case act.SettleAttempt():
                self._spawn(self._settle(action))
            case act.ReleaseCallback():
                self._spawn(self._release(action))
            case act.Log():
                getattr(log, action.level)(action.message, **action.fields)

    async def _originate(self, action: act.Originate) -> None:
        app = (
            self.callback_ari.app
            if action.app == "callbacks" and self.callback_ari is not None
            else self.ari.app
        )
        try:
            await self.ari.originate(
                action.endpoint,
                app,
                action.channel_id,
                app_args=",".join(action.args),
                caller_id=action.caller_id,
                timeout=action.timeout,
                variables=dict(action.variables),
            )
        except AriError as e:
            failed = ev.LegFailed(action.channel_id, str(e))
            self._post(lambda: self._handle(failed))

    async def _bridge(self, action: act.Bridge) -> None:
        ari = self.ari
        try:
            await ari.create_bridge(action.bridge_id, "mixing", name=action.name)
            for channel_id in action.channel_ids:
                await ari.add_channel(action.bridge_id, channel_id)
        except AriError as e:
            # one side is gone: its channel's end comes as an event and ends the talk
            log.warning("could not bridge", bridge=action.name, error=str(e))

    def _timer_fired(self, timer_id: str) -> None:
        self._timers.pop(timer_id, None)
        self._post(lambda: self._handle(ev.TimerFired(timer_id)))

    # --- the call-back store ------------------------------------------------------------------------

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start_dial(self, action: act.StartDial) -> None:
        answer: ev.Event = ev.DialRefused(action.callback_id)
        if self._callbacks is not None:
            try:
                dialing = await self._callbacks.start_dial(
                    action.callback_id, self.owner, action.contact_id, self._clock(), self.lease
                )
            except StoreError as e:
                log.warning(
                    "could not count the call-back's attempt; not dialing",
                    callback=action.callback_id,
                    error=str(e),
                )
            else:
                if dialing is not None:
                    answer = ev.DialApproved(action.callback_id, dialing.attempts)
        self._post(lambda: self._handle(answer))

    async def _settle(self, action: act.SettleAttempt) -> None:
        if self._callbacks is None:
            return
        try:
            settled = await self._callbacks.record_attempt(
                action.callback_id, self.owner, action.outcome, action.next_at, action.at, action.agent_id
            )
        except StoreError as e:
            log.error(
                "call-back outcome not stored",
                callback=action.callback_id,
                outcome=action.outcome,
                error=str(e),
            )
            return
        log.info(
            "call-back attempt settled",
            callback=action.callback_id,
            outcome=action.outcome,
            state=settled.state if settled is not None else "no longer ours",
        )

    async def _release(self, action: act.ReleaseCallback) -> None:
        if self._callbacks is None:
            return
        with contextlib.suppress(StoreError):
            await self._callbacks.release(action.callback_id, self.owner, self._clock())

    # --- contact events and the live stream --------------------------------------------------------

    async def customer_of(self, number: str | None) -> ev.Customer | None:
        """The customer record a number belongs to, for screen pops (None: unknown, or no store)."""
        if self._store is None or not number:
            return None
        try:
            found: Customer | None = await self._store.customer_by_phone(number)
        except (StoreError, ValueError) as e:
            log.info("no customer lookup for the number", number=number, error=str(e))
            return None
        return None if found is None else ev.Customer(found.id, found.name, dict(found.attributes))

    def publish(self, message: Mapping[str, Any]) -> None:
        """Send a message to the live stream's subscribers (agent desktops)."""
        for stream in list(self._streams):
            if stream.queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    stream.queue.get_nowait()
            stream.queue.put_nowait(dict(message))

    def _record(self, action: act.RecordEvent) -> None:
        if self._writer is None:
            log.info("contact event", type=action.type, contact=action.contact_id, data=action.data)
            return
        try:
            written = self._writer.submit(
                new_event(
                    action.type, action.contact_id, at=self._clock(), call_id=action.call_id, data=action.data
                )
            )
        except StoreError as e:
            log.error("contact event not written", contact=action.contact_id, type=action.type, error=str(e))
            return
        written.add_done_callback(_log_failed_write)


def _log_failed_write(written: asyncio.Future[None]) -> None:
    if not written.cancelled() and written.exception() is not None:
        log.error("contact event not written", error=str(written.exception()))
