"""The calls of the hotline app: one `CallRunner` per caller's channel, on the flow of the number dialed.

The service takes at most `limit` callers at once. A caller beyond it never enters a flow: their
contact records `call_refused` (reason "busy"), and they get the busy treatment at once, before any
work is spent on them: with a `busy_prompt`, the channel goes to the dialplan's `hotline-busy` context
(which answers, plays the prompt and hangs up with cause 17); without one, it is hung up unanswered with
cause "busy" (the caller's network plays its busy tone).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Mapping

import aiohttp
import structlog

from hotline.asterisk.ari import AriClient
from hotline.asterisk.errors import AriError
from hotline.asterisk.events import AriEvent, Channel, StasisStart
from hotline.callbacks.requests import CallbackRequests
from hotline.calls.runner import CallRunner, Queueing
from hotline.clock import Clock, utc_now
from hotline.store import EventWriter, StoreError, new_event
from ivr import events
from ivr.flowset import FlowSet

#: The dialplan context that plays the busy prompt (`BUSY_PROMPT`) and hangs up (dialplan/extensions.conf).
BUSY_CONTEXT = "hotline-busy"

log = structlog.get_logger("hotline.calls")


class CallApp:
    """The callers' calls: a runner for each, fed the events of its channel.

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
        queueing: Queueing | None = None,
        callbacks: CallbackRequests | None = None,
        limit: int | None = None,
        busy_prompt: str | None = None,
    ) -> None:
        self.ari = ari
        self._flows = flows
        self.numbers = dict(numbers)
        self.default_flow = default_flow
        self._writer = writer
        self._http = http
        self._clock = clock
        self._queueing = queueing
        self._callbacks = callbacks
        self.limit = limit
        self.busy_prompt = busy_prompt
        self.refused = 0  # callers turned away busy since the start
        self.calls: dict[str, CallRunner] = {}

    def flows(self) -> FlowSet:
        return self._flows() if callable(self._flows) else self._flows

    def flow_for(self, dialed: str) -> str:
        return self.numbers.get(dialed, self.default_flow)

    def owns(self, channel_id: str) -> bool:
        return channel_id in self.calls

    async def __call__(self, event: AriEvent) -> None:
        """An event of the app: a new caller starts a call, any other event goes to its call."""
        if isinstance(event, StasisStart):
            if event.args:
                log.info(
                    "not a hotline call; back to the dialplan", channel=event.channel_id, args=event.args
                )
                with contextlib.suppress(AriError):
                    await self.ari.continue_in_dialplan(event.channel_id)
            else:
                await self.start(event)
            return
        runner = self.calls.get(event.channel_id or "")
        if runner is not None:
            runner.feed_ari(event)

    async def start(self, event: StasisStart) -> None:
        """A caller entered the app: answer and run the flow of the number they dialed (or, beyond the
        limit, refuse them busy)."""
        if self.limit is not None and len(self.calls) >= self.limit:
            await self.refuse_busy(event.channel)
            return
        await self.run(event.channel)

    async def refuse_busy(self, channel: Channel) -> None:
        """The busy treatment: the contact says the call was refused, the caller hears busy."""
        self.refused += 1
        log.warning(
            "too many calls: a caller gets busy", channel=channel.id, limit=self.limit, calls=len(self.calls)
        )
        self._record_refused(channel, "busy")
        with contextlib.suppress(AriError):
            if self.busy_prompt:
                await self.ari.set_variable(channel.id, "BUSY_PROMPT", self.busy_prompt)
                await self.ari.continue_in_dialplan(channel.id, BUSY_CONTEXT, "s", 1)
            else:
                await self.ari.hangup(channel.id, reason="busy")

    def _record_refused(self, channel: Channel, reason: str) -> None:
        if self._writer is None:
            return
        data = {
            "flow": self.flow_for(channel.exten),
            "caller": channel.caller_number or "",
            "dialed": channel.exten,
            "reason": reason,
        }
        try:
            self._writer.submit(
                new_event("call_refused", uuid.uuid4().hex, at=self._clock(), call_id=channel.id, data=data)
            )
        except StoreError as e:
            log.error("contact event not written", channel=channel.id, type="call_refused", error=str(e))

    async def run(
        self, channel: Channel, *, contact_id: str | None = None, resume: events.CallResumed | None = None
    ) -> CallRunner | None:
        """Run a call on `channel`: a new one, or (`resume`) one picked up on its contact after a restart."""
        flow = resume.flow if resume is not None else self.flow_for(channel.exten)
        try:
            runner = CallRunner(
                self.ari,
                self.flows(),
                flow,
                self._writer,
                channel_id=channel.id,
                caller=channel.caller_number,
                caller_name=channel.caller_name,
                dialed=channel.exten,
                http=self._http,
                clock=self._clock,
                queueing=self._queueing,
                callbacks=self._callbacks,
                contact_id=contact_id,
                resume=resume,
            )
        except ValueError as e:
            log.error(
                "no flow for the call; hanging up", channel=channel.id, dialed=channel.exten, error=str(e)
            )
            self._record_refused(channel, f"no flow: {e}")
            with contextlib.suppress(AriError):
                await self.ari.hangup(channel.id)
            return None
        self.calls[channel.id] = runner
        log.info(
            "call resumed" if resume is not None else "call started",
            channel=channel.id,
            dialed=channel.exten,
            flow=runner.session.flow,
        )
        runner.start().add_done_callback(lambda _: self._ended(runner))
        return runner

    def pause(self) -> None:
        """Asterisk cannot be seen: every call stops where it is."""
        for runner in self.calls.values():
            runner.pause()

    def _ended(self, runner: CallRunner) -> None:
        if self.calls.get(runner.channel_id) is runner:
            del self.calls[runner.channel_id]

    async def close(self) -> None:
        """Stop every call's loop (the channels stay in Asterisk; a restarted service finds them)."""
        runners = list(self.calls.values())
        self.calls.clear()
        for runner in runners:
            await runner.close()
