"""Calls on the hotline: the Stasis app side of each call, feeding the `ivr` engine and doing what it says.

Like websockets' asyncio layer over its sans-I/O core, a `CallRunner` is a short "feed, collect, execute"
loop: what happens on the channel becomes an `ivr.events` event, `Session.handle` returns `ivr.actions`,
and the runner carries them out over ARI, HTTP and the contact store. Nothing here decides what the
call should do next: that is the engine's.

Each call has one inbox. ARI events (in the channel's order, from the client's per-channel worker),
timers and CRM answers all go through it, so the engine sees one event at a time, in the order they
happened. `CallApp` is the ARI event handler of the `hotline` app: it answers each new call, picks the
flow by the number dialed, and routes the channel's events to its runner.

How actions are carried out:

- `Play`: ARI playback with the id `<channel>-<engine id>`, so `PlaybackFinished` maps back to the engine's.
- `StartTimer`/`CancelTimer`: asyncio timers that post `TimerFired` to the inbox.
- `Lookup`: an HTTP request with the action's timeout; a JSON answer (or None when not JSON) comes back as
  `LookupAnswered`, a connection error or timeout as `LookupFailed`.
- `RecordEvent`: a contact event in the store, one contact id (a fresh uuid) per call.
- `Transfer`: the channel leaves Stasis for the dialplan. An extension goes to its `context` (by default
  `hotline-transfer`); a number goes to `hotline-transfer` with the number as the extension (the
  dialplan's trunk line); an endpoint goes to extension `endpoint` of `hotline-transfer` with the
  endpoint in the channel variable `TRANSFER_TARGET`. `TRANSFER_TIMEOUT` carries the flow's timeout.
- `Voicemail`: an ARI recording named by the engine; `RecordingFinished` (or `RecordingFailed`, with no
  duration) comes back as `RecordingFinished`. Asterisk ends a recording on `#`, `*` or any key, so
  another terminator key is taken as any key.
- `Enqueue`: the call is handed to routing (`hotline.queueing.RoutingService`), which plays music on
  hold, rings agents and bridges; the caller's channel events go to it while the call is queued, and it
  gives the call back with `QueueExited` when the wait runs out. Without routing (no routing file), or
  for a queue routing does not know, the call is given straight back as `QueueExited("no routing")` and
  the flow takes its overflow path.
- `RequestCallback`: the runner stores the call-back (`keep_callback`, `hotline.store.CallbackStore`) on
  the call's contact, due at once, with the queue's call-back expiry and time zone when routing has the
  queue, the number made international with `callbacks.country_code`, and answers the engine:
  `CallbackStored` (it thanks the caller and hangs up) or `CallbackRefused` with the reason (a number
  that is not E.164, a store that does not answer: the caller is asked for a number again). A request
  made while waiting in a queue carries the time of the caller's first entry (`place_since`), so the
  call-back's placeholder joins the queue at the caller's old place.
- `LeaveQueue`: the caller pressed the queue's call-back key: routing lets them go without counting an
  abandon, and the engine hears `QueueExited("callback")` (or `QueueAnswered` when an agent has them
  already) and asks for the number.

When Asterisk refuses a prompt, a recording or a transfer (an ARI error other than "channel gone"), the
engine is told it ended (`PlaybackFinished`, `RecordingFinished` with no duration, `TransferFailed`), so
the flow goes on instead of leaving the caller in silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import structlog

from hotline.asterisk.ari import AriClient, Event, channel_of
from hotline.asterisk.errors import AriError, AriNotFound
from hotline.features import handle_feature
from hotline.store import EventWriter, StoreError, new_event
from hotline.store.callbacks import Callback, CallbackStore
from hotline.store.phones import international
from ivr import actions, events
from ivr.flowset import FlowSet
from ivr.session import Session
from routing.callbacks import RetryPolicy
from routing.model import RoutingConfig

if TYPE_CHECKING:
    from hotline.queueing import RoutingService

log = structlog.get_logger("hotline.calls")

Clock = Callable[[], datetime]

#: Where `transfer:` targets go in the dialplan (dialplan/extensions.conf).
TRANSFER_CONTEXT = "hotline-transfer"
#: Why a queued call comes straight back to its flow when routing cannot take it.
NO_ROUTING = "no routing"
#: `QueueExited` reason: the caller left the queue to ask for a call-back, keeping their place.
LEFT_FOR_CALLBACK = "callback"
#: The first `Stasis(hotline,...)` argument of the leg routing rings an agent on.
AGENT_LEG = "agent"
#: `Stasis(hotline,feature,login|logout|pause)`: an agent's feature code.
FEATURE = "feature"
#: Call-back ids of IVR requests come from the contact, so one call stores at most one call-back.
_CALLBACK_IDS = uuid.UUID("0d7c2b1e-5a4f-4c3b-9e8d-7f6a5b4c3d2e")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _terminate_on(key: str) -> str:
    """ARI's `terminateOn` for a voicemail's terminator key."""
    return key if key in ("#", "*") else "any"


class CallRunner:
    """One call on one channel: the engine's session, its timers and lookups, fed through one inbox."""

    def __init__(
        self,
        ari: AriClient,
        flows: FlowSet,
        flow: str,
        writer: EventWriter | None,
        *,
        channel_id: str,
        caller: str | None,
        dialed: str,
        caller_name: str | None = None,
        http: aiohttp.ClientSession | None = None,
        clock: Clock = utc_now,
        routing: RoutingService | None = None,
        callbacks: CallbackStore | None = None,
    ) -> None:
        self.ari = ari
        self.channel_id = channel_id
        self.contact_id = uuid.uuid4().hex
        self.session = Session(flows, flow, call_id=channel_id)
        self._writer = writer
        self._http = http
        self._clock = clock
        self._start = events.CallStarted(caller=caller, dialed=dialed, caller_name=caller_name)
        self._inbox: asyncio.Queue[events.Event | None] = asyncio.Queue()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._lookups: set[asyncio.Task[None]] = set()
        self._playbacks: dict[str, str] = {}  # ARI playback id -> engine playback id
        self._now = clock()
        self._transferred = False
        self._routing = routing
        self._queued = False  # routing holds the call: the channel's events go to it too
        self._callbacks = callbacks
        #: called once a call-back is stored (the call-back worker looks for due call-backs at once)
        self.on_callback: Callable[[], None] | None = None
        #: makes a national call-back number international (`callbacks.country_code`)
        self.country_code: str | None = None
        self._refusal: str | None = None  # why the last call-back was not stored
        self.task: asyncio.Task[None] | None = None

    @property
    def caller(self) -> str | None:
        return self._start.caller

    @property
    def caller_name(self) -> str | None:
        return self._start.caller_name

    @property
    def path(self) -> tuple[str, ...]:
        """The nodes the caller went through."""
        return self.session.path

    # --- feeding -----------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Answer the channel and start the call's loop in the background."""
        self.task = asyncio.create_task(self.run(), name=f"call-{self.channel_id}")
        return self.task

    def feed(self, event: events.Event) -> None:
        """Queue an engine event; it is handled after everything queued before it."""
        if isinstance(event, events.QueueExited):
            self._queued = False
        self._inbox.put_nowait(event)

    def feed_ari(self, event: Event) -> None:
        """Queue what an ARI event on this channel means to the engine (others are ignored)."""
        if self._queued and self._routing is not None:
            self._routing.caller_event(self.contact_id, event)
        kind = event.get("type")
        if kind == "ChannelDtmfReceived":
            self.feed(events.Digit(str(event.get("digit", ""))))
        elif kind == "PlaybackFinished":
            engine_id = self._playbacks.pop(str((event.get("playback") or {}).get("id")), None)
            if engine_id is not None:
                self.feed(events.PlaybackFinished(engine_id))
        elif kind == "RecordingFinished":
            duration = (event.get("recording") or {}).get("duration", 0)
            self.feed(events.RecordingFinished(float(duration) if isinstance(duration, int | float) else 0.0))
        elif kind == "RecordingFailed":
            log.warning("voicemail recording failed", channel=self.channel_id, event=event.get("recording"))
            self.feed(events.RecordingFinished(0.0))
        elif kind == "ChannelHangupRequest":
            self.feed(events.Hangup())
        elif kind == "StasisEnd":
            if self._transferred:
                # The flow sent the call on into the dialplan: the hotline's part of it is over; the
                # caller did not hang up.
                self._record(actions.RecordEvent("call_ended", {"by": "flow", "cause": "transferred"}))
            else:
                self.feed(events.Hangup())
            self._inbox.put_nowait(None)  # the channel left the app: nothing more will come

    async def wait(self) -> None:
        """Back once the call's loop has ended."""
        if self.task is not None:
            await asyncio.shield(self.task)

    async def close(self) -> None:
        """Stop the loop now (the service is shutting down)."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    # --- the loop ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Answer, then handle the inbox until the channel leaves the app."""
        try:
            try:
                await self.ari.answer(self.channel_id)
            except AriError as e:
                log.warning("could not answer the call", channel=self.channel_id, error=str(e))
                return
            self.feed(self._start)
            while (event := await self._inbox.get()) is not None:
                self._now = self._clock()
                for action in self.session.handle(event, self._now):
                    await self._execute(action)
        finally:
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
            for task in self._lookups:
                task.cancel()
            if self._lookups:
                await asyncio.gather(*self._lookups, return_exceptions=True)

    async def _execute(self, action: actions.Action) -> None:
        try:
            await self._do(action)
        except AriNotFound as e:
            log.info("channel gone", channel=self.channel_id, action=type(action).__name__, error=str(e))
        except AriError as e:
            log.warning("action failed", channel=self.channel_id, action=type(action).__name__, error=str(e))
            self._refused(action, e)

    def _refused(self, action: actions.Action, error: AriError) -> None:
        """Asterisk refused to start something the engine now waits for the end of (a prompt, a
        recording, a transfer): tell the engine it ended, so the caller is never left in silence."""
        if isinstance(action, actions.Play):
            self._playbacks.pop(f"{self.channel_id}-{action.playback_id}", None)
            self.feed(events.PlaybackFinished(action.playback_id))
        elif isinstance(action, actions.Voicemail):
            self.feed(events.RecordingFinished(0.0))
        elif isinstance(action, actions.Transfer):
            self.feed(events.TransferFailed(f"Asterisk refused the transfer: {error}"))

    async def _do(self, action: actions.Action) -> None:
        channel = self.channel_id
        if isinstance(action, actions.Play):
            playback_id = f"{channel}-{action.playback_id}"
            self._playbacks[playback_id] = action.playback_id
            await self.ari.play(channel, action.media, lang=action.language, playback_id=playback_id)
        elif isinstance(action, actions.StopPlayback):
            with contextlib.suppress(AriNotFound):
                await self.ari.stop_playback(f"{channel}-{action.playback_id}")
        elif isinstance(action, actions.StartTimer):
            loop = asyncio.get_running_loop()
            fired = events.TimerFired(action.timer_id)
            self._timers[action.timer_id] = loop.call_later(action.seconds, self._fire, fired)
        elif isinstance(action, actions.CancelTimer):
            timer = self._timers.pop(action.timer_id, None)
            if timer is not None:
                timer.cancel()
        elif isinstance(action, actions.SetVariable):
            await self.ari.set_variable(channel, action.name, action.value)
        elif isinstance(action, actions.Lookup):
            task = asyncio.create_task(self._lookup(action))
            self._lookups.add(task)
            task.add_done_callback(self._lookups.discard)
        elif isinstance(action, actions.RecordEvent):
            self._record(action)
        elif isinstance(action, actions.Hangup):
            await self.ari.hangup(channel, reason=action.cause)
        elif isinstance(action, actions.Transfer):
            await self._transfer(action)
        elif isinstance(action, actions.Voicemail):
            await self.ari.record(
                channel,
                action.recording_name,
                max_duration=math.ceil(action.max_duration),
                beep=action.beep,
                terminate_on=_terminate_on(action.terminator),
            )
        elif isinstance(action, actions.Enqueue):
            await self._enqueue(action)
        elif isinstance(action, actions.RequestCallback):
            stored = await self.request_callback(action)
            # the engine thanks the caller only for a call-back that is kept; else it asks again
            if stored is not None:
                self.feed(events.CallbackStored(stored.id))
            else:
                self.feed(events.CallbackRefused(self._refusal or "the call-back could not be kept"))
        elif isinstance(action, actions.LeaveQueue):
            await self._leave_queue()

    async def request_callback(self, action: actions.RequestCallback) -> Callback | None:
        """Store the caller's call-back, due now, on this call's contact (None: not stored, and logged).

        The store write is awaited before the engine's next action (its "we will call you back"), so
        the caller hangs up only once the call-back is durable; a failure never breaks the call.
        """
        self._refusal = None
        if self._callbacks is None:
            log.info("call-back requested; no store to keep it", channel=self.channel_id, queue=action.queue)
            self._refusal = "no store to keep call-backs"
            return None
        config = None if self._routing is None else self._routing.config
        try:
            stored = await keep_callback(
                self._callbacks, action, self.contact_id, self._now, config, self.country_code
            )
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._refusal = str(e)
            log.error(
                "call-back not stored",
                channel=self.channel_id,
                contact=self.contact_id,
                queue=action.queue,
                number=action.number,
                error=str(e),
            )
            return None
        log.info("call-back stored", channel=self.channel_id, callback=stored.id, queue=action.queue)
        if self.on_callback is not None:
            self.on_callback()
        return stored

    async def _leave_queue(self) -> None:
        """The caller chose a call-back while waiting: out of routing, then the flow asks their number."""
        left = True
        if self._routing is not None and self._queued:
            try:
                left = await self._routing.leave(self.contact_id)
            except Exception:
                log.exception(
                    "routing could not let the caller go; the call-back goes on", channel=self.channel_id
                )
        if left:
            self.feed(events.QueueExited(LEFT_FOR_CALLBACK))
        else:
            self.feed(events.QueueAnswered())

    async def _enqueue(self, action: actions.Enqueue) -> None:
        if self._routing is None:
            log.info(
                "no routing: the call takes the queue's overflow", channel=self.channel_id, queue=action.queue
            )
            self.feed(events.QueueExited(NO_ROUTING))
            return
        self._queued = True
        try:
            taken = await self._routing.enqueue(self, action)
        except Exception:
            log.exception(
                "routing could not take the call; it takes the queue's overflow", queue=action.queue
            )
            taken = False
        if not taken:
            self.feed(events.QueueExited(NO_ROUTING))

    def _fire(self, fired: events.TimerFired) -> None:
        self._timers.pop(fired.timer_id, None)
        self.feed(fired)

    def _record(self, action: actions.RecordEvent) -> None:
        if self._writer is None:
            log.info("contact event", type=action.type, channel=self.channel_id, data=action.data)
            return
        try:
            event = new_event(
                action.type, self.contact_id, at=self._now, call_id=self.channel_id, data=action.data
            )
            written = self._writer.submit(event)
        except StoreError as e:
            log.error("contact event not written", channel=self.channel_id, type=action.type, error=str(e))
            return
        written.add_done_callback(self._written)

    def _written(self, written: asyncio.Future[None]) -> None:
        if not written.cancelled() and written.exception() is not None:
            log.error("contact event not written", channel=self.channel_id, error=str(written.exception()))

    async def _lookup(self, action: actions.Lookup) -> None:
        http = self._http
        own = http is None
        if http is None:
            http = aiohttp.ClientSession()
        try:
            async with http.request(
                action.method,
                action.url,
                headers=action.headers,
                json=action.body,
                timeout=aiohttp.ClientTimeout(total=action.timeout),
            ) as response:
                text = await response.text()
                status = response.status
            try:
                body: Any = json.loads(text)
            except ValueError:
                body = None
            self.feed(events.LookupAnswered(action.request_id, status, body))
        except (aiohttp.ClientError, OSError, TimeoutError, UnicodeDecodeError) as e:
            self.feed(events.LookupFailed(action.request_id, f"{type(e).__name__}: {e}".rstrip(": ")))
        finally:
            if own:
                await http.close()

    async def _transfer(self, action: actions.Transfer) -> None:
        channel = self.channel_id
        await self.ari.set_variable(channel, "TRANSFER_TIMEOUT", str(math.ceil(action.timeout)))
        if action.kind == "extension":
            context, extension = action.context or TRANSFER_CONTEXT, action.target
        elif action.kind == "number":
            context, extension = TRANSFER_CONTEXT, action.target
        else:
            await self.ari.set_variable(channel, "TRANSFER_TARGET", action.target)
            context, extension = TRANSFER_CONTEXT, "endpoint"
        # StasisEnd may arrive before continue's answer does: mark the hand-off first
        self._transferred = True
        try:
            await self.ari.continue_in_dialplan(channel, context, extension, 1)
        except AriError:
            self._transferred = False
            raise


async def keep_callback(
    callbacks: CallbackStore,
    action: actions.RequestCallback,
    contact_id: str,
    now: datetime,
    routing: RoutingConfig | None,
    country_code: str | None,
) -> Callback:
    """Store the call-back a caller asked for in a flow, due now, on their contact: the queue's call-back
    expiry and time zone (the defaults without routing), the flow's priority or else the queue's (what
    the caller had while waiting), the number made international with `country_code`. One per contact:
    asking again returns the one stored. Raises what the store raises for a number it refuses."""
    policy, time_zone = RetryPolicy(), "UTC"
    queue = None if routing is None else routing.queues.get(action.queue)
    if queue is not None and queue.callback is not None:
        policy, time_zone = queue.callback.retry_policy(), queue.callback.time_zone
    return await callbacks.create(
        number=international(action.number, country_code),
        now=now,
        next_attempt_at=now,
        queue=action.queue,
        skills=action.skills,
        priority=action.priority or (queue.priority if queue is not None else 0),
        contact_id=contact_id,
        time_zone=time_zone,
        expires_at=policy.expires_at(now),
        callback_id=uuid.uuid5(_CALLBACK_IDS, contact_id).hex,
        place_since=action.place_since,
    )


class CallApp:
    """The ARI event handler of the hotline app: one `CallRunner` per call.

    `flows` is the flow set new calls start on (or a function giving the current one, so a reload
    reaches new calls while calls in progress keep theirs); `numbers` maps a dialed number to a flow,
    and any other number gets `default_flow`.
    """

    def __init__(
        self,
        ari: AriClient,
        flows: FlowSet | Callable[[], FlowSet],
        numbers: Mapping[str, str],
        default_flow: str,
        writer: EventWriter | None,
        *,
        http: aiohttp.ClientSession | None = None,
        clock: Clock = utc_now,
        routing: RoutingService | None = None,
        callbacks: CallbackStore | None = None,
    ) -> None:
        self.ari = ari
        self._flows = flows
        self.numbers = dict(numbers)
        self.default_flow = default_flow
        self._writer = writer
        self._http = http
        self._clock = clock
        self.routing = routing
        self.callbacks = callbacks
        self.on_callback: Callable[[], None] | None = None
        self.country_code: str | None = None
        self.calls: dict[str, CallRunner] = {}

    def flows(self) -> FlowSet:
        return self._flows() if callable(self._flows) else self._flows

    def flow_for(self, dialed: str) -> str:
        return self.numbers.get(dialed, self.default_flow)

    async def __call__(self, event: Event) -> None:
        channel_id = channel_of(event)
        if channel_id is None:
            return
        if event.get("type") == "StasisStart":
            await self._stasis_start(channel_id, event)
            return
        runner = self.calls.get(channel_id)
        if runner is not None:
            runner.feed_ari(event)
        elif self.routing is not None and self.routing.owns(channel_id):
            self.routing.agent_event(event)

    async def _stasis_start(self, channel_id: str, event: Event) -> None:
        args = event.get("args")
        if args and args[0] == AGENT_LEG and self.routing is not None and self.routing.owns(channel_id):
            self.routing.agent_event(event)
            return
        if args and args[0] == FEATURE:
            # an agent's feature code (*21 log in, *22 log out, *23 pause) from the `agents` context
            feature = str(args[1]) if len(args) > 1 else ""
            await handle_feature(self.routing, self.ari, event.get("channel") or {"id": channel_id}, feature)
            return
        if args:
            log.info("not a hotline call; back to the dialplan", channel=channel_id, args=event.get("args"))
            with contextlib.suppress(AriError):
                await self.ari.continue_in_dialplan(channel_id)
            return
        channel = event.get("channel") or {}
        caller = channel.get("caller") or {}
        dialed = str((channel.get("dialplan") or {}).get("exten") or "")
        try:
            runner = CallRunner(
                self.ari,
                self.flows(),
                self.flow_for(dialed),
                self._writer,
                channel_id=channel_id,
                caller=caller.get("number") or None,
                caller_name=caller.get("name") or None,
                dialed=dialed,
                http=self._http,
                clock=self._clock,
                routing=self.routing,
                callbacks=self.callbacks,
            )
            runner.on_callback = self.on_callback
            runner.country_code = self.country_code
        except ValueError as e:
            log.error("no flow for the call; hanging up", channel=channel_id, dialed=dialed, error=str(e))
            with contextlib.suppress(AriError):
                await self.ari.hangup(channel_id)
            return
        self.calls[channel_id] = runner
        log.info("call started", channel=channel_id, dialed=dialed, flow=runner.session.flow)
        runner.start().add_done_callback(lambda _: self._ended(runner))

    def _ended(self, runner: CallRunner) -> None:
        if self.calls.get(runner.channel_id) is runner:
            del self.calls[runner.channel_id]

    async def close(self) -> None:
        """Stop every call's loop (the channels stay in Asterisk; a restarted service finds them)."""
        runners = list(self.calls.values())
        self.calls.clear()
        for runner in runners:
            await runner.close()
