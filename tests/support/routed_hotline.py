"""The hotline with skill routing on the real Asterisk, for the routing and call-back tests: a
`Switchboard` behind a `RoutingService` (and, when asked, the call-back worker) in the test, the
callers it serves (`desk`), and the routing config built from plain dicts (`routing`, `agent`).

Agents are Local channels that answer (`ANSWERS`, `Local/answer@hotline-test`) or ring forever
(`RINGS`, `Local/ring@hotline-test`), or the sandbox's PJSIP endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hotline.agents import RoutingService
from hotline.asterisk.ami import AmiWatcher
from hotline.asterisk.events import AriEvent, PlaybackStarted, StasisStart
from hotline.asterisk.sandbox import Running
from hotline.callbacks import CallbackRequests
from hotline.callbacks.worker import CallbackWorker
from hotline.store import CallbackStore, StoredEvent
from ivr.flowset import FlowSet
from ivr.model import Flow
from routing import events
from routing.model import RoutingConfig
from routing.switchboard import Settings, Switchboard
from support.harness import HOTLINE_NUMBER, Caller, Hotline, ari_client, is_event

ANSWERS = "Local/answer@hotline-test"
RINGS = "Local/ring@hotline-test"
CALLER_ID = "+48221234567"


def queue_flow(queue: str, *, max_wait: float = 600.0) -> FlowSet:
    """Welcome, then the queue; the overflow says sorry and hangs up."""
    spec = {
        "flow": "main",
        "start": "welcome",
        "nodes": {
            "welcome": {"play": "beep", "next": "wait"},
            "wait": {"queue": {"name": queue, "max_wait": max_wait}, "overflow": "sorry"},
            "sorry": {"play": "beep", "next": "bye"},
            "bye": {"hangup": None},
        },
    }
    return FlowSet({"main": Flow.model_validate(spec)})


def agent(endpoint: str, skills: dict[str, int], wrapup: float = 0.5) -> dict[str, Any]:
    return {"name": endpoint, "endpoint": endpoint, "skills": skills, "wrapup": wrapup}


def routing(agents: dict[str, Any], queues: dict[str, Any]) -> RoutingConfig:
    base = {"announce_every": 0, "ring_timeout": 1.0}
    return RoutingConfig.model_validate(
        {"agents": agents, "queues": {name: {**base, **queue} for name, queue in queues.items()}}
    )


class RecordingWorker(CallbackWorker):
    """The call-back worker, keeping every ARI event of its app for the test to look at."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heard: list[AriEvent] = []

    async def _on_event(self, event: AriEvent) -> None:
        self.heard.append(event)
        await super()._on_event(event)

    def media_played(self) -> list[str]:
        return [e.playback.media_uri for e in self.heard if isinstance(e, PlaybackStarted)]


class RoutedHotline(Hotline):
    """The harness's hotline with routing: a `Switchboard` of `config` behind a `RoutingService`."""

    def __init__(
        self,
        asterisk: Running,
        data_dir: Path,
        config: RoutingConfig,
        ami: AmiWatcher | None,
        *,
        settings: Settings | None = None,
        callback_app: str | None = None,
        poll: float = 0.2,
    ) -> None:
        super().__init__(asterisk, data_dir, queue_flow("support"), {"100": "main"})
        self.config = config
        self.ami = ami
        self.settings = settings
        self.callback_app = callback_app
        self.poll = poll
        self.routing: RoutingService | None = None
        self.worker: RecordingWorker | None = None
        self.stream: list[dict[str, Any]] = []
        self._listener: asyncio.Task[None] | None = None

    async def start_routing(self) -> RoutingService:
        assert self.writer is not None
        assert self.store is not None
        routing_service = self.routing = RoutingService(
            Switchboard(self.config, replace(self.settings or Settings(), seed=uuid.uuid4().hex)),
            self.ari,
            self.writer,
            ami=self.ami,
            store=self.store,
            callbacks=CallbackStore(self.store),
            callback_ari=None if self.callback_app is None else ari_client(self.asterisk, self.callback_app),
            owner="node-1",
            lease=30.0,
        )
        await routing_service.start()
        self._listener = asyncio.create_task(self._listen(routing_service))
        if routing_service.callback_ari is not None:
            self.worker = RecordingWorker(
                CallbackStore(self.store),
                routing_service,
                routing_service.callback_ari,
                owner="node-1",
                dial=routing_service.switchboard.settings.dial,
                poll=self.poll,
                lease=30.0,
            )
            await self.worker.start()
        await asyncio.sleep(0)
        return routing_service

    def callback_requests(self) -> CallbackRequests:
        assert self.store is not None
        worker = self.worker
        return CallbackRequests(
            CallbackStore(self.store),
            routing=lambda: self.config,
            kept=worker.wake if worker is not None else lambda: None,
        )

    async def _listen(self, routing_service: RoutingService) -> None:
        async for message in routing_service.subscribe():
            self.stream.append(message)

    async def stop(self) -> None:
        try:
            if self._listener is not None:
                self._listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._listener
            if self.app is not None:
                await self.app.close()
            if self.worker is not None:
                await self.worker.close()
            if self.routing is not None:
                await self.routing.close()
        finally:
            await super().stop()

    def service(self) -> RoutingService:
        assert self.routing is not None
        return self.routing

    async def log_in(self, *agent_ids: str) -> None:
        for agent_id in agent_ids:
            await self.service().submit(events.AgentLoggedIn(agent_id))

    def state(self, agent_id: str) -> tuple[str, str | None]:
        view = next(a for a in self.service().agents() if a.id == agent_id)
        return str(view.state), view.reason

    async def until_state(self, agent_id: str, state: str, timeout: float = 6.0) -> tuple[str, str | None]:
        deadline = time.monotonic() + timeout
        while self.state(agent_id)[0] != state:
            if time.monotonic() > deadline:
                raise AssertionError(f"agent {agent_id} is {self.state(agent_id)}, not {state}")
            await asyncio.sleep(0.05)
        return self.state(agent_id)


@dataclass
class Desk:
    """One test's hotline, its callers, and the bridges Asterisk holds."""

    hotline: RoutedHotline
    caller: Caller
    calls: list[str] = field(default_factory=list)

    async def call(self, flow_set: FlowSet, caller_id: str = CALLER_ID) -> str:
        """Dial the hotline running `flow_set`; the hotline's leg of the call once it answered."""
        self.hotline.flows = flow_set
        caller_leg, hotline_leg = await self.caller.call(HOTLINE_NUMBER, caller_id=caller_id)
        await self.caller.events.wait_for(is_event(caller_leg, StasisStart))
        self.calls.append(caller_leg)
        return hotline_leg

    async def stored_until(self, call_id: str, event_type: str, timeout: float = 8.0) -> list[StoredEvent]:
        return await self.hotline.stored_until(call_id, event_type, timeout)

    async def bridged_with(self, hotline_leg: str, timeout: float = 6.0) -> str:
        """The channel in a bridge with the caller (the agent's leg), from ARI's `GET /bridges`."""
        deadline = time.monotonic() + timeout
        while True:
            for bridge in await self.hotline.ari.get("/bridges"):
                channels = list(bridge.get("channels") or [])
                if hotline_leg in channels and len(channels) == 2:
                    return str(next(c for c in channels if c != hotline_leg))
            if time.monotonic() > deadline:
                raise AssertionError(f"the call {hotline_leg} is in no bridge with an agent")
            await asyncio.sleep(0.05)

    async def hang_up(self, channel_id: str) -> None:
        await self.hotline.ari.hangup(channel_id)


def of_type(stored: list[StoredEvent], event_type: str) -> list[dict[str, Any]]:
    return [e.data for e in stored if e.type == event_type]


@contextlib.asynccontextmanager
async def desk(
    asterisk: Running,
    tmp_path: Path,
    config: RoutingConfig,
    *,
    ami: bool = False,
    settings: Settings | None = None,
    callback_app: str | None = None,
    poll: float = 0.2,
) -> AsyncIterator[Desk]:
    watcher = None
    if ami:
        watcher = AmiWatcher(asterisk.ami_host, asterisk.ami_port, asterisk.ami_user, asterisk.ami_secret)
        await watcher.start()
    hotline = RoutedHotline(
        asterisk, tmp_path, config, watcher, settings=settings, callback_app=callback_app, poll=poll
    )
    caller = Caller(asterisk)
    try:
        await hotline.start()
        caller.start()
        await caller.wait_connected(5)
        yield Desk(hotline, caller)
    finally:
        await caller.hang_up_all()
        await hotline.stop()
        await caller.close()
        if watcher is not None:
            await watcher.close()


async def wait_until(what: Callable[[], bool], timeout: float = 6.0, why: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {why}")
        await asyncio.sleep(0.05)
