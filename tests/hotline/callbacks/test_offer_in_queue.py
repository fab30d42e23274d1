"""The call-back offered while a caller waits, on the real Asterisk: the caller hears the offer between
the music, presses 1, confirms their number and hangs up; their place lives on as a placeholder that the
call-back worker queues with the time of their first entry, which counts in other callers' positions,
and which, when an agent frees up, makes the call-back (the customer is `Local/answer@hotline-test`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from hotline.asterisk.sandbox import Running
from hotline.callbacks.worker import CallbackWorker
from hotline.store import Callback, CallbackStore
from ivr.flowset import FlowSet
from ivr.model import Flow
from routing.model import RoutingConfig
from routing.switchboard import Settings
from support.routed_hotline import ANSWERS, CALLER_ID, Desk, agent, desk, of_type, queue_flow, routing

OFFER = "sound:vm-tocallback"


def offer_flow() -> FlowSet:
    """The queue with its call-back offer half a second into the wait, made once."""
    spec = {
        "flow": "main",
        "start": "wait",
        "nodes": {
            "wait": {
                "queue": {
                    "name": "support",
                    "callback": {"after": 0.5, "estimate_over": None, "every": 0, "timeout": 4},
                },
                "overflow": "bye",
            },
            "bye": {"hangup": None},
        },
    }
    return FlowSet({"main": Flow.model_validate(spec)})


def config(announce_every: float = 0.0) -> RoutingConfig:
    return routing(
        {"ann": agent(ANSWERS, {"support": 5})},
        {
            "support": {
                "skills": {"support": 1},
                "priority": 7,
                "announce_every": announce_every,
                "callback": {"delay": 60},
            }
        },
    )


@contextlib.asynccontextmanager
async def desk_and_worker(
    asterisk: Running, tmp_path: Path, routing_config: RoutingConfig
) -> AsyncIterator[tuple[Desk, CallbackWorker]]:
    settings = Settings(dial="Local/answer@hotline-test", whisper=("sound:beep",), whisper_number=False)
    # a slow poll on purpose: the call's request wakes the worker at once
    async with desk(
        asterisk, tmp_path, routing_config, settings=settings, callback_app="hotline-callbacks", poll=5.0
    ) as d:
        assert d.hotline.worker is not None
        yield d, d.hotline.worker


async def until(what: object, timeout: float, why: str) -> None:
    deadline = time.monotonic() + timeout
    while not what():  # type: ignore[operator]
        assert time.monotonic() < deadline, why
        await asyncio.sleep(0.05)


async def choose_call_back(d: Desk, leg: str) -> None:
    """Wait for the offer, press 1, and 1 again to confirm the number read back."""
    caller_leg = d.calls[-1]
    await until(lambda: OFFER in d.hotline.media_played(leg), 8, "the call-back offer was not played")
    await d.caller.press(caller_leg, "1")
    await until(
        lambda: "sound:vm-num-i-have" in d.hotline.media_played(leg), 8, "the number was not read back"
    )
    await d.caller.press(caller_leg, "1")


async def held_callbacks(d: Desk, worker: CallbackWorker, timeout: float = 5.0) -> list[Callback]:
    await until(lambda: worker.held, timeout, "the worker holds no call-back")
    store = CallbackStore(d.hotline._store())
    found = [await store.get(callback_id) for callback_id in worker.held]
    return [cb for cb in found if cb is not None]


async def test_the_offer_taken_in_the_queue_keeps_the_place_and_the_customer_is_called_back(
    asterisk: Running, tmp_path: Path
) -> None:
    async with desk_and_worker(asterisk, tmp_path, config()) as (d, worker):
        leg = await d.call(offer_flow())
        await choose_call_back(d, leg)
        stored = await d.stored_until(leg, "hung_up", timeout=15)
        [cb] = await held_callbacks(d, worker)

        types = [e.type for e in stored]
        assert types.index("queued") < types.index("callback_offered") < types.index("callback_chosen")
        assert "callback_requested" in types and "abandoned" not in types
        assert of_type(stored, "callback_requested")[0]["number"] == CALLER_ID
        # the call-back's place is the caller's first entry into the queue
        queued_at = next(e.at for e in stored if e.type == "queued")
        assert cb.place_since is not None and abs(cb.place_since - queued_at) < timedelta(seconds=0.5)
        assert (cb.number, cb.queue, cb.contact_id) == (CALLER_ID, "support", stored[0].contact_id)
        [queue] = d.hotline.service().queues()
        [placeholder] = queue.waiting
        assert placeholder.callback and placeholder.waited >= 1.0  # waiting since the caller's entry
        assert cb.priority == placeholder.priority == 7  # the queue's priority, as the caller had it

        # an agent frees up: ann is rung, then the customer, and the two are bridged
        await d.hotline.log_in("ann")
        store = CallbackStore(d.hotline._store())

        async def completed() -> Callback:
            deadline = time.monotonic() + 15
            while True:
                got = await store.get(cb.id)
                assert got is not None
                if got.state == "completed":
                    return got
                assert time.monotonic() < deadline, f"call-back is {got.state}"
                await asyncio.sleep(0.1)

        done = await completed()
        assert (done.attempts, done.last_outcome) == (1, "answered")
        assert d.hotline.state("ann")[0] == "on_call"
        bridges = [b for b in await d.hotline.ari.get("/bridges") if b.get("name") == f"callback-{cb.id}"]
        assert len(bridges) == 1 and len(bridges[0]["channels"]) == 2
        attempt = [e for e in await d.hotline._store().timeline(done.attempt_contact_id or "")]
        [queued] = [e.data for e in attempt if e.type == "queued"]
        assert queued["waited"] >= 1.0 and [e.data["agent"] for e in attempt if e.type == "answered"] == [
            "ann"
        ]
        for channel in bridges[0]["channels"]:
            await d.hotline.ari.hangup(channel)


async def test_a_caller_behind_a_call_back_hears_the_place_it_keeps_in_their_position(
    asterisk: Running, tmp_path: Path
) -> None:
    async with desk_and_worker(asterisk, tmp_path, config(announce_every=1.0)) as (d, worker):
        # ann is busy with another caller: logged in, so there is an estimate to announce
        await d.hotline.log_in("ann")
        busy = await d.call(queue_flow("support"), caller_id="+48225550111")
        await d.bridged_with(busy)

        first = await d.call(offer_flow())
        await choose_call_back(d, first)
        await d.stored_until(first, "hung_up", timeout=15)
        await held_callbacks(d, worker)

        second = await d.call(offer_flow(), caller_id="+48223334444")
        stored = await d.stored_until(second, "position_announced", timeout=8)
        # the caller who chose the call-back is still ahead: second place, not first
        assert of_type(stored, "position_announced")[0]["position"] == 2
        # said after the call-back offer that was playing when the announcement fell due
        await until(lambda: "number:2" in d.hotline.media_played(second), 8, "position 2 was not said")
        media = d.hotline.media_played(second)
        assert media.index(OFFER) < media.index("number:2")
