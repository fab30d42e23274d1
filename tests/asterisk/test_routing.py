"""Skill routing on the real Asterisk: callers queued by a flow reach agents through `RoutingService`.

Agents here are Local channels that answer (`Local/answer@hotline-test`) or ring forever
(`Local/ring@hotline-test`), and the sandbox's PJSIP endpoint `agent2`, which never registers. The test
plays the callers over ARI, and checks the bridges Asterisk holds, the contact events in a real SQLite
store, the router's agent states and the live stream."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness import HOTLINE_NUMBER, Caller, Hotline, ari_client, is_event

from hotline.agents import RoutingService
from hotline.asterisk.ami import AmiWatcher
from hotline.asterisk.events import AriEvent, PlaybackStarted, StasisEnd, StasisStart
from hotline.asterisk.sandbox import Running
from hotline.callbacks import CallbackRequests
from hotline.callbacks.worker import CallbackWorker
from hotline.store import CallbackStore, Customer, StoredEvent
from ivr.flowset import FlowSet
from ivr.model import Flow
from routing import events
from routing.model import RoutingConfig
from routing.switchboard import Settings, Switchboard
from routing.switchboard.waiting import announcement

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


# --- the tests ------------------------------------------------------------------------------------


async def test_a_caller_reaches_the_best_skilled_agent_is_bridged_and_the_agent_wraps_up(
    asterisk: Running, tmp_path: Path
) -> None:
    config = routing(
        {"ann": agent(ANSWERS, {"support": 4}), "bob": agent(ANSWERS, {"support": 9}, wrapup=1.0)},
        {"support": {"skills": {"support": 2}, "strategy": "best_skill"}},
    )
    async with desk(asterisk, tmp_path, config) as d:
        await d.hotline._store().upsert_customers(
            [Customer("c-1", "Ewa Kowalska", [CALLER_ID], {"tier": "gold"})]
        )
        await d.hotline.log_in("ann", "bob")
        leg = await d.call(queue_flow("support"))

        agent_leg = await d.bridged_with(leg)
        stored = await d.stored_until(leg, "answered")
        assert of_type(stored, "answered")[0]["agent"] == "bob"
        assert d.hotline.state("bob")[0] == "on_call"
        assert d.hotline.state("ann")[0] == "available"
        # the agent's phone shows the customer's number and name
        channel = await d.hotline.ari.get(f"/channels/{agent_leg}")
        assert channel["caller"] == {"name": "Ewa Kowalska", "number": CALLER_ID}
        # the screen pop: the contact, its IVR path and the customer record
        pop = next(m for m in d.hotline.stream if m["type"] == "screen_pop")
        assert pop["agent"] == "bob"
        assert pop["caller"] == CALLER_ID
        assert pop["queue"] == "support"
        assert pop["ivr_path"] == ["welcome", "wait"]
        assert pop["customer"] == {"id": "c-1", "name": "Ewa Kowalska", "attributes": {"tier": "gold"}}
        assert pop["contact_id"] == stored[0].contact_id

        # the agent hangs up: the caller is hung up, bob wraps up for 1 s, then is available again
        await d.hang_up(agent_leg)
        await d.caller.events.wait_for(is_event(d.calls[0], StasisEnd))
        await d.hotline.until_state("bob", "wrap_up", timeout=3)
        ended = time.monotonic()
        await d.hotline.until_state("bob", "available", timeout=4)
        assert 0.7 < time.monotonic() - ended < 2.5
        contact = await d.hotline.contact(leg)
        assert (contact.queue, contact.agent, contact.outcome, contact.ended_by) == (
            "support",
            "bob",
            "answered",
            "agent",
        )
        assert contact.wait_seconds is not None and contact.wait_seconds < 3
        states = [(m["agent"], m["state"]) for m in d.hotline.stream if m["type"] == "agent_state"]
        assert [s for a, s in states if a == "bob"][-4:] == ["ringing", "on_call", "wrap_up", "available"]
        assert not await d.hotline.ari.get("/bridges")  # the bridge went with the call


async def test_ring_no_answer_pauses_the_agent_and_offers_the_caller_to_the_next(
    asterisk: Running, tmp_path: Path
) -> None:
    config = routing(
        {"ann": agent(RINGS, {"support": 9}), "bob": agent(ANSWERS, {"support": 3})},
        {"support": {"skills": {"support": 1}, "strategy": "best_skill", "ring_timeout": 1.0}},
    )
    async with desk(asterisk, tmp_path, config) as d:
        await d.hotline.log_in("ann", "bob")
        began = time.monotonic()
        leg = await d.call(queue_flow("support"))

        await d.bridged_with(leg, timeout=6)
        assert time.monotonic() - began > 1.0  # ann rang for her ring timeout first
        stored = await d.stored_until(leg, "answered")
        assert [e["agent"] for e in of_type(stored, "agent_offered")] == ["ann", "bob"]
        assert [e["agent"] for e in of_type(stored, "agent_no_answer")] == ["ann"]
        assert of_type(stored, "answered")[0]["agent"] == "bob"
        assert d.hotline.state("ann") == ("paused", "no answer")
        # ann's ringing leg is gone: only the caller's legs and bob's remain
        ringing = [c for c in await d.hotline.ari.list_channels() if "ring@hotline-test" in c.name]
        assert ringing == []


async def test_a_caller_who_hangs_up_in_the_queue_is_abandoned_with_the_wait(
    asterisk: Running, tmp_path: Path
) -> None:
    config = routing(
        {"ann": agent(RINGS, {"support": 5})},
        {"support": {"skills": {"support": 1}, "ring_timeout": 30.0}},
    )
    async with desk(asterisk, tmp_path, config) as d:
        await d.hotline.log_in("ann")
        leg = await d.call(queue_flow("support"))
        await d.stored_until(leg, "agent_offered")
        await d.hotline.until_state("ann", "ringing")
        await asyncio.sleep(1.0)

        await d.caller.hang_up(d.calls[0])
        stored = await d.stored_until(leg, "abandoned")
        abandoned = of_type(stored, "abandoned")[-1]
        assert abandoned["where"] == "queue"
        assert 1.0 <= abandoned["wait"] < 4.0
        contact = await d.hotline.contact(leg)
        assert contact.outcome == "abandoned_queue"
        assert contact.wait_seconds is not None and contact.wait_seconds >= 1.0
        # the agent stopped ringing and is free again
        await d.hotline.until_state("ann", "available")
        await wait_until(lambda: d.hotline.service().agent_legs == 0, why="the agent's leg is hung up")


async def test_two_queues_share_an_agent(asterisk: Running, tmp_path: Path) -> None:
    config = routing(
        {"ann": agent(ANSWERS, {"sales": 5, "support": 5}, wrapup=0.3)},
        {"sales": {"skills": {"sales": 1}}, "support": {"skills": {"support": 1}}},
    )
    async with desk(asterisk, tmp_path, config) as d:
        await d.hotline.log_in("ann")
        first = await d.call(queue_flow("sales"), caller_id="+48221000001")
        first_agent = await d.bridged_with(first)
        second = await d.call(queue_flow("support"), caller_id="+48221000002")
        await d.stored_until(second, "queued")
        await asyncio.sleep(0.5)
        assert not of_type(await d.hotline.stored(second), "agent_offered")  # ann is busy

        await d.hang_up(first_agent)  # ann ends the sales call; after wrap-up she takes support
        await d.bridged_with(second, timeout=6)
        stored = await d.stored_until(second, "answered")
        assert of_type(stored, "answered")[0]["agent"] == "ann"
        assert (await d.hotline.contact(first)).queue == "sales"
        assert (await d.hotline.contact(second)).queue == "support"


async def test_escalation_after_its_time_reaches_a_wider_pool(asterisk: Running, tmp_path: Path) -> None:
    config = routing(
        {"ann": agent(ANSWERS, {"support": 3})},
        {"support": {"skills": {"support": 8}, "escalation": [{"after": 2.0, "skills": {"support": 2}}]}},
    )
    async with desk(asterisk, tmp_path, config) as d:
        await d.hotline.log_in("ann")
        leg = await d.call(queue_flow("support"))
        await d.stored_until(leg, "queued")
        began = time.monotonic()
        await d.bridged_with(leg, timeout=6)
        assert time.monotonic() - began > 1.5  # nobody could take it before the escalation
        stored = await d.stored_until(leg, "answered")
        assert of_type(stored, "answered")[0]["agent"] == "ann"
        assert of_type(stored, "answered")[0]["wait"] >= 2.0


async def test_an_unregistered_phone_is_skipped(asterisk: Running, tmp_path: Path) -> None:
    config = routing(
        {"agent2": agent("PJSIP/agent2", {"support": 10}), "ann": agent(ANSWERS, {"support": 2})},
        {"support": {"skills": {"support": 1}, "strategy": "best_skill"}},
    )
    async with desk(asterisk, tmp_path, config, ami=True) as d:
        await d.hotline.log_in("agent2", "ann")
        leg = await d.call(queue_flow("support"))
        await d.bridged_with(leg)
        stored = await d.stored_until(leg, "answered")
        assert [e["agent"] for e in of_type(stored, "agent_offered")] == ["ann"]
        assert d.hotline.state("agent2")[0] == "available"  # logged in, but its phone cannot ring


async def test_the_waiting_caller_hears_their_place_between_music(asterisk: Running, tmp_path: Path) -> None:
    config = routing(
        {"ann": agent(RINGS, {"support": 5})},
        {"support": {"skills": {"support": 1}, "ring_timeout": 30.0, "announce_every": 1.0}},
    )
    async with desk(asterisk, tmp_path, config) as d:
        await d.hotline.log_in("ann")
        await d.call(queue_flow("support"), caller_id="+48221000001")  # ann rings for this one
        second = await d.call(queue_flow("support"), caller_id="+48221000002")

        stored = await d.stored_until(second, "position_announced", timeout=6)
        announced = of_type(stored, "position_announced")[0]
        expected = announcement(announced["position"], announced["estimated_wait"])

        def announcing(e: AriEvent) -> bool:
            return (
                isinstance(e, PlaybackStarted)
                and e.channel_id == second
                and e.playback.media_uri == expected[0]
            )

        started = await d.hotline.events.wait_for(announcing, timeout=4)
        # Asterisk plays the list in order: the place, then "the estimated hold time is ... minutes"
        assert isinstance(started, PlaybackStarted) and started.playback.next_media_uri == expected[1]
        assert expected[0] in ("sound:queue-youarenext", "sound:queue-thereare")
        assert "sound:queue-holdtime" in expected  # an agent is logged in: there is an estimate
        media = [e.playback.media_uri for e in d.hotline.events.of(second) if isinstance(e, PlaybackStarted)]
        assert media[:2] == ["sound:beep", expected[0]]  # the welcome, then the place
