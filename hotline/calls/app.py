"""The calls of the hotline app: one `CallRunner` per caller's channel, on the flow of the number dialed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

import aiohttp
import structlog

from hotline.asterisk.ari import AriClient
from hotline.asterisk.errors import AriError
from hotline.asterisk.events import AriEvent, StasisStart
from hotline.callbacks.requests import CallbackRequests
from hotline.calls.runner import CallRunner, Queueing
from hotline.clock import Clock, utc_now
from hotline.store import EventWriter
from ivr.flowset import FlowSet

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
        """A caller entered the app: answer and run the flow of the number they dialed."""
        channel = event.channel
        try:
            runner = CallRunner(
                self.ari,
                self.flows(),
                self.flow_for(channel.exten),
                self._writer,
                channel_id=channel.id,
                caller=channel.caller_number,
                caller_name=channel.caller_name,
                dialed=channel.exten,
                http=self._http,
                clock=self._clock,
                queueing=self._queueing,
                callbacks=self._callbacks,
            )
        except ValueError as e:
            log.error(
                "no flow for the call; hanging up", channel=channel.id, dialed=channel.exten, error=str(e)
            )
            with contextlib.suppress(AriError):
                await self.ari.hangup(channel.id)
            return
        self.calls[channel.id] = runner
        log.info("call started", channel=channel.id, dialed=channel.exten, flow=runner.session.flow)
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
