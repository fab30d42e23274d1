"""Calls on the hotline: the Stasis app side of each call, feeding the `ivr` engine and doing what it says.

Like websockets' asyncio layer over its sans-I/O core, a `CallRunner` is a short "feed, collect, execute"
loop: what happens on the channel becomes an `ivr.events` event, `Session.handle` returns `ivr.actions`,
and the runner carries them out over ARI, HTTP and the contact store. Nothing here decides what the
call should do next: that is the engine's.

Each call has one inbox. ARI events (in the channel's order, from the client's per-channel worker),
timers and CRM answers all go through it, so the engine sees one event at a time, in the order they
happened. `hotline.calls.app.CallApp` starts a runner for each new call.

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
- `Enqueue`: the call is handed to its `Queueing` (the switchboard, `hotline.agents.RoutingService`),
  which plays music on hold, rings agents and bridges, and answers the engine with `QueueAnswered` or
  `QueueExited` (when the wait runs out, or at once for a queue routing does not have). Without routing
  (no routing file) the call is given straight back as `QueueExited("no routing")` and the flow takes
  its overflow path.
- `RequestCallback`: the call-back is kept (`hotline.callbacks.CallbackRequests`) on the call's contact,
  and the engine hears `CallbackStored` (it thanks the caller and hangs up) or `CallbackRefused` with
  the reason (a number that is not E.164, a store that does not answer: the caller is asked for a
  number again).
- `LeaveQueue`: the caller pressed the queue's call-back key: routing lets them go without counting an
  abandon, and the engine hears `QueueExited("callback")` (or `QueueAnswered` when an agent has them
  already) and asks for the number.

When Asterisk refuses a prompt, a recording or a transfer (an ARI error other than "channel gone"), the
engine is told it ended (`PlaybackFinished`, `RecordingFinished` with no duration, `TransferFailed`), so
the flow goes on instead of leaving the caller in silence.

The call's first request is its answer (tried again on a broken connection). A channel gone by then is
a caller who hung up while it rang (the contact says they abandoned at the flow's start); an answer
Asterisk refuses gets the channel hung up and the contact `call_refused`: no call is left ringing.

While Asterisk cannot be seen (the event socket is down) the call is paused (`pause()`): its timers
stop with the time they had left, nothing it holds is handled, and what Asterisk failed to start is
kept for later. Once Asterisk answers again the service either resumes it (`resume()`: the channel is
still there; the timers run on) or declares it lost (`lose()`: the channel is gone; the contact records
`call_lost` and nothing else that was waiting). A call the service picks up after a restart starts
with `CallResumed` instead of `CallStarted`, on its contact of before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import uuid
from typing import Any, Protocol

import aiohttp
import structlog

from hotline.asterisk.ari import AriClient
from hotline.asterisk.errors import AriError, AriNotFound, AriUnavailable
from hotline.asterisk.events import (
    AriEvent,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    PlaybackFinished,
    RecordingFailed,
    RecordingFinished,
    StasisEnd,
)
from hotline.callbacks.requests import CallbackRequests
from hotline.clock import Clock, utc_now
from hotline.store import EventWriter, StoreError, new_event
from hotline.store.callbacks import Callback
from ivr import actions, events
from ivr.flowset import FlowSet
from ivr.session import Session

log = structlog.get_logger("hotline.calls")


#: Where `transfer:` targets go in the dialplan (dialplan/extensions.conf).
TRANSFER_CONTEXT = "hotline-transfer"
#: Why a queued call comes straight back to its flow when routing cannot take it.
NO_ROUTING = "no routing"
#: `QueueExited` reason: the caller left the queue to ask for a call-back, keeping their place.
LEFT_FOR_CALLBACK = "callback"


def _terminate_on(key: str) -> str:
    """ARI's `terminateOn` for a voicemail's terminator key."""
    return key if key in ("#", "*") else "any"


class Queueing(Protocol):
    """Where a flow's queue node hands its caller (the switchboard); its answers come back through
    `CallRunner.feed` as `QueueAnswered` and `QueueExited`."""

    async def enqueue(self, call: CallRunner, action: actions.Enqueue) -> None: ...

    async def leave(self, contact_id: str) -> None: ...


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
        queueing: Queueing | None = None,
        callbacks: CallbackRequests | None = None,
        contact_id: str | None = None,
        resume: events.CallResumed | None = None,
    ) -> None:
        self.ari = ari
        self.channel_id = channel_id
        self.contact_id = contact_id or uuid.uuid4().hex
        self.session = Session(flows, flow, call_id=channel_id)
        self._writer = writer
        self._http = http
        self._clock = clock
        self._start: events.CallStarted | events.CallResumed = resume or events.CallStarted(
            caller=caller, dialed=dialed, caller_name=caller_name
        )
        self._inbox: asyncio.Queue[events.Event | None] = asyncio.Queue()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._lookups: set[asyncio.Task[None]] = set()
        self._playbacks: dict[str, str] = {}  # ARI playback id -> engine playback id
        self._now = clock()
        self._transferred = False
        self._queueing = queueing
        self._callbacks = callbacks
        self._refusal: str | None = None  # why the last call-back was not stored
        self._running = asyncio.Event()  # clear while paused: Asterisk cannot be seen
        self._running.set()
        self._frozen: dict[str, float] = {}  # timer id -> seconds it had left when paused
        self._deferred: list[events.Event] = []  # what Asterisk failed to start while it was away
        self._lost = False
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

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def playbacks(self) -> list[str]:
        """The ARI ids of the prompts playing now (their end has not come)."""
        return list(self._playbacks)

    # --- feeding -----------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Answer the channel and start the call's loop in the background."""
        self.task = asyncio.create_task(self.run(), name=f"call-{self.channel_id}")
        return self.task

    def feed(self, event: events.Event) -> None:
        """Queue an engine event; it is handled after everything queued before it."""
        self._inbox.put_nowait(event)

    def feed_ari(self, event: AriEvent) -> None:
        """Queue what an ARI event on this channel means to the engine (others are ignored)."""
        if isinstance(event, ChannelDtmfReceived):
            self.feed(events.Digit(event.digit))
        elif isinstance(event, PlaybackFinished):
            engine_id = self._playbacks.pop(event.playback.id, None)
            if engine_id is not None:
                self.feed(events.PlaybackFinished(engine_id))
        elif isinstance(event, RecordingFinished):
            self.feed(events.RecordingFinished(event.recording.duration or 0.0))
        elif isinstance(event, RecordingFailed):
            log.warning(
                "voicemail recording failed",
                channel=self.channel_id,
                recording=event.recording.name,
                cause=event.recording.cause,
            )
            self.feed(events.RecordingFinished(0.0))
        elif isinstance(event, ChannelHangupRequest):
            self.feed(events.Hangup())
        elif isinstance(event, StasisEnd):
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

    # --- Asterisk away ------------------------------------------------------------------------------

    def pause(self) -> None:
        """Asterisk cannot be seen: stop the timers (keeping the time they had left) and handle nothing
        until `resume()` or `lose()`."""
        if self._lost or not self._running.is_set():
            return
        self._running.clear()
        now = asyncio.get_running_loop().time()
        for timer_id, timer in self._timers.items():
            self._frozen[timer_id] = max(timer.when() - now, 0.0)
            timer.cancel()
        self._timers.clear()

    def resume(self, ended: list[str] | None = None) -> None:
        """Asterisk is back and the channel is still there: the timers run on for the time they had
        left. `ended` are prompts (ARI playback ids) that ended while Asterisk could not tell."""
        if self._lost:
            return
        for playback_id in ended or ():
            engine_id = self._playbacks.pop(playback_id, None)
            if engine_id is not None:
                self._deferred.append(events.PlaybackFinished(engine_id))
        if self._running.is_set():
            self._feed_deferred()
            return
        loop = asyncio.get_running_loop()
        for timer_id, left in self._frozen.items():
            self._timers[timer_id] = loop.call_later(left, self._fire, events.TimerFired(timer_id))
        self._frozen.clear()
        self._feed_deferred()
        self._running.set()

    def lose(self, reason: str) -> None:
        """The channel is gone and not because the caller hung up (Asterisk restarted): the contact
        records `call_lost`, and nothing that was waiting to be handled."""
        if self._lost:
            return
        self._lost = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._frozen.clear()
        self._deferred.clear()
        while not self._inbox.empty():
            self._inbox.get_nowait()
        self._inbox.put_nowait(events.CallLost(reason))
        self._inbox.put_nowait(None)
        self._running.set()

    def _feed_deferred(self) -> None:
        deferred, self._deferred = self._deferred, []
        for event in deferred:
            self.feed(event)

    # --- the loop ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Answer, then handle the inbox until the channel leaves the app."""
        try:
            if isinstance(self._start, events.CallStarted) and not await self._answer():
                return
            self.feed(self._start)
            while (event := await self._inbox.get()) is not None:
                await self._running.wait()
                if self._lost and not isinstance(event, events.CallLost):
                    continue
                self._now = self._clock()
                done = self.session.handle(event, self._now)
                # the contact events of this step first: what the engine decided happened now, before
                # what carrying it out sets off elsewhere (routing's `agent_offered` after `queued`)
                for action in done:
                    if isinstance(action, actions.RecordEvent):
                        self._record(action)
                for action in done:
                    if not isinstance(action, actions.RecordEvent):
                        await self._execute(action)
        finally:
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
            for task in self._lookups:
                task.cancel()
            if self._lookups:
                await asyncio.gather(*self._lookups, return_exceptions=True)

    async def _answer(self) -> bool:
        """Answer the channel (ARI tries again on a broken connection). False: the call is over
        already, and its contact says how."""
        try:
            await self.ari.answer(self.channel_id)
        except AriNotFound:
            # the caller hung up while it rang: the contact starts and is abandoned at the flow's start
            log.info("the caller hung up before the call was answered", channel=self.channel_id)
            self._now = self._clock()
            for event in (self._start, events.Hangup()):
                for action in self.session.handle(event, self._now):
                    if isinstance(action, actions.RecordEvent):
                        self._record(action)
            return False
        except AriError as e:
            log.warning("could not answer the call; hanging up", channel=self.channel_id, error=str(e))
            self._now = self._clock()
            self._refuse(f"Asterisk did not answer the call: {e.message or type(e).__name__}")
            with contextlib.suppress(AriError):
                await self.ari.hangup(self.channel_id)
            return False
        return True

    def _refuse(self, reason: str) -> None:
        start = self._start
        self._record(
            actions.RecordEvent(
                "call_refused",
                {
                    "flow": self.session.flow,
                    "caller": start.caller or "",
                    "dialed": start.dialed,
                    "reason": reason,
                },
            )
        )

    async def _execute(self, action: actions.Action) -> None:
        try:
            await self._do(action)
        except AriNotFound as e:
            log.info("channel gone", channel=self.channel_id, action=type(action).__name__, error=str(e))
        except AriUnavailable as e:
            log.warning(
                "Asterisk did not answer", channel=self.channel_id, action=type(action).__name__, error=str(e)
            )
            if self.paused or not self.ari.connected:
                # Asterisk is away: whether the call is still there is told when it is back
                self._deferred.extend(self._refused(action, e))
            else:
                for event in self._refused(action, e):
                    self.feed(event)
        except AriError as e:
            log.warning("action failed", channel=self.channel_id, action=type(action).__name__, error=str(e))
            for event in self._refused(action, e):
                self.feed(event)

    def _refused(self, action: actions.Action, error: AriError) -> list[events.Event]:
        """Asterisk refused to start something the engine now waits for the end of (a prompt, a
        recording, a transfer): what tells the engine it ended, so the caller is never left in silence."""
        if isinstance(action, actions.Play):
            self._playbacks.pop(f"{self.channel_id}-{action.playback_id}", None)
            return [events.PlaybackFinished(action.playback_id)]
        if isinstance(action, actions.Voicemail):
            return [events.RecordingFinished(0.0)]
        if isinstance(action, actions.Transfer):
            return [events.TransferFailed(f"Asterisk refused the transfer: {error}")]
        return []

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
            if self.paused:
                self._frozen[action.timer_id] = action.seconds
            else:
                loop = asyncio.get_running_loop()
                fired = events.TimerFired(action.timer_id)
                self._timers[action.timer_id] = loop.call_later(action.seconds, self._fire, fired)
        elif isinstance(action, actions.CancelTimer):
            self._frozen.pop(action.timer_id, None)
            timer = self._timers.pop(action.timer_id, None)
            if timer is not None:
                timer.cancel()
        elif isinstance(action, actions.SetVariable):
            await self.ari.set_variable(channel, action.name, action.value)
        elif isinstance(action, actions.Lookup):
            await self._running.wait()  # no request goes out for a call Asterisk may have lost
            if self._lost:
                return
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
        try:
            stored = await self._callbacks.keep(action, self.contact_id, self._now)
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
        return stored

    async def _leave_queue(self) -> None:
        """The caller chose a call-back while waiting: out of routing, then the flow asks their number
        (routing answers `QueueExited("callback")`, or `QueueAnswered` when an agent has them already)."""
        if self._queueing is None:
            self.feed(events.QueueExited(LEFT_FOR_CALLBACK))
            return
        try:
            await self._queueing.leave(self.contact_id)
        except Exception:
            log.exception(
                "routing could not let the caller go; the call-back goes on", channel=self.channel_id
            )
            self.feed(events.QueueExited(LEFT_FOR_CALLBACK))

    async def _enqueue(self, action: actions.Enqueue) -> None:
        if self._queueing is None:
            log.info(
                "no routing: the call takes the queue's overflow", channel=self.channel_id, queue=action.queue
            )
            self.feed(events.QueueExited(NO_ROUTING))
            return
        try:
            await self._queueing.enqueue(self, action)
        except Exception:
            log.exception(
                "routing could not take the call; it takes the queue's overflow", queue=action.queue
            )
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
