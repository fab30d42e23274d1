"""Skill routing on the real Asterisk: callers queued by a flow reach agents through `RoutingService`.

Agents here are Local channels that answer (`Local/answer@hotline-test`) or ring forever
(`Local/ring@hotline-test`), and the sandbox's PJSIP endpoint `agent2`, which never registers. The test
plays the callers over ARI (support/routed_hotline.py), and checks the bridges Asterisk holds, the contact
events in a real SQLite store, the router's agent states and the live stream."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hotline.asterisk.events import AriEvent, PlaybackStarted, StasisEnd
from hotline.asterisk.sandbox import Running
from hotline.store import Customer
from routing.switchboard.waiting import announcement
from support.harness import in_order, is_event
from support.routed_hotline import (
    ANSWERS,
    CALLER_ID,
    RINGS,
    agent,
    desk,
    of_type,
    queue_flow,
    routing,
    wait_until,
)


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
        in_order(stored)  # queued before agent_offered before answered, as it happened
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
