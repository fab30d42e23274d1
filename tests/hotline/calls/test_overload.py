"""Calls the service cannot or will not take, on the real Asterisk: callers beyond `calls.limit` get the
busy treatment with a contact that says so, and a call whose answer fails is never left ringing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotline.asterisk.ari import AriClient
from hotline.asterisk.events import AriEvent, ChannelDestroyed, ChannelStateChange, StasisEnd, StasisStart
from hotline.asterisk.sandbox import ARI_APP, Running
from hotline.calls import CallApp
from hotline.calls.runner import CallRunner
from hotline.store import EventWriter, Store, StoredEvent, open_store
from ivr.flowset import FlowSet
from ivr.model import Flow
from support.harness import HOTLINE_NUMBER, Caller, Events, ari_client, is_event, new_id

FLOWS = FlowSet(
    {
        "test": Flow.model_validate(
            {
                "flow": "test",
                "start": "menu",
                "nodes": {
                    "menu": {
                        "menu": "beep",
                        "options": {"1": "bye"},
                        "timeout": 30,
                        "retries": 0,
                        "failure": "bye",
                    },
                    "bye": {"hangup": None},
                },
            }
        )
    }
)


@dataclass
class Line:
    app: CallApp
    ari: AriClient
    store: Store
    writer: EventWriter
    caller: Caller
    events: Events

    async def stored(self, call_id: str) -> list[StoredEvent]:
        return [e for e in await self.store.events_after(0, limit=10_000) if e.call_id == call_id]

    async def stored_until(self, call_id: str, done: Callable[[list[str]], bool]) -> list[StoredEvent]:
        deadline = time.monotonic() + 8.0
        while True:
            found = await self.stored(call_id)
            if done([e.type for e in found]):
                return found
            assert time.monotonic() < deadline, [e.type for e in found]
            await asyncio.sleep(0.05)


def went_up(caller: Caller, channel_id: str) -> bool:
    """Did the caller's side of the call go up (was it answered)?"""
    return any(
        isinstance(e, ChannelStateChange) and e.channel.state == "Up"
        for e in caller.events.of(channel_id, ChannelStateChange)
    )


def make_line(limit: int | None, busy_prompt: str | None) -> Callable[[Running, Path], AsyncIterator[Line]]:
    async def line(asterisk: Running, tmp_path: Path) -> AsyncIterator[Line]:
        store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'hotline.db'}")
        writer = EventWriter(store, spool_dir=tmp_path / "spool", max_delay=0.01)
        await writer.start()
        hotline, caller = ari_client(asterisk, ARI_APP), Caller(asterisk)
        app = CallApp(hotline, FLOWS, {"100": "test"}, "test", writer, limit=limit, busy_prompt=busy_prompt)
        events = Events()

        async def handle(event: AriEvent) -> None:
            await events(event)
            await app(event)

        hotline.start(handle)
        caller.start()
        try:
            await asyncio.gather(hotline.wait_connected(5), caller.wait_connected(5))
            yield Line(app, hotline, store, writer, caller, events)
        finally:
            await caller.hang_up_all()
            await app.close()
            await hotline.close()
            await caller.close()
            await writer.stop()
            await store.close()

    return line


busy_line = pytest.fixture(make_line(limit=2, busy_prompt=None), name="busy_line")
prompt_line = pytest.fixture(make_line(limit=1, busy_prompt="beep"), name="prompt_line")
open_line = pytest.fixture(make_line(limit=None, busy_prompt=None), name="open_line")


async def test_callers_beyond_the_limit_get_busy_unanswered_and_a_refused_contact(busy_line: Line) -> None:
    line = busy_line
    taken = [await line.caller.call(HOTLINE_NUMBER) for _ in range(2)]
    for _, hotline_leg in taken:
        await line.stored_until(hotline_leg, lambda t: "node_entered" in t)
    refused = [await line.caller.call(HOTLINE_NUMBER) for _ in range(2)]
    for caller_leg, hotline_leg in refused:
        gone = await line.caller.events.wait_for(is_event(caller_leg, ChannelDestroyed), 5)
        assert isinstance(gone, ChannelDestroyed) and gone.cause == 17  # busy
        found = await line.stored_until(hotline_leg, lambda t: "call_refused" in t)
        assert [e.type for e in found] == ["call_refused"]
        assert found[0].data == {"flow": "test", "caller": "", "dialed": "100", "reason": "busy"}
        contact = await line.store.contact(found[0].contact_id)
        assert contact is not None and contact.outcome == "refused" and contact.ended_at is not None
        # never answered: the caller's side never went up
        assert not went_up(line.caller, caller_leg)
    assert line.app.refused == 2 and len(line.app.calls) == 2

    # the load falls: the next caller is taken again, nothing to reset
    await line.caller.hang_up(taken[0][0])
    await line.stored_until(taken[0][1], lambda t: "abandoned" in t)
    _, again = await line.caller.call(HOTLINE_NUMBER)
    found = await line.stored_until(again, lambda t: "node_entered" in t)
    assert [e.type for e in found] == ["call_started", "node_entered"]


async def test_with_a_busy_prompt_the_dialplan_answers_plays_it_and_hangs_up_busy(prompt_line: Line) -> None:
    line = prompt_line
    _, first = await line.caller.call(HOTLINE_NUMBER)
    await line.stored_until(first, lambda t: "node_entered" in t)
    caller_leg, hotline_leg = await line.caller.call(HOTLINE_NUMBER)
    gone = await line.caller.events.wait_for(is_event(caller_leg, ChannelDestroyed), 8)
    assert isinstance(gone, ChannelDestroyed) and gone.cause == 17
    # the hotline-busy context answered it before playing the prompt
    assert went_up(line.caller, caller_leg)
    await line.events.wait_for(is_event(hotline_leg, StasisEnd), 2)  # left the app for the dialplan
    found = await line.stored_until(hotline_leg, lambda t: "call_refused" in t)
    assert [(e.type, e.data["reason"]) for e in found] == [("call_refused", "busy")]


async def test_a_caller_who_hangs_up_before_the_answer_is_an_abandoned_contact(open_line: Line) -> None:
    line = open_line
    gone = new_id()  # a channel that is not there (any more): Asterisk says 404 to the answer
    runner = CallRunner(
        line.ari, FLOWS, "test", line.writer, channel_id=gone, caller="+48221234567", dialed="100"
    )
    await runner.start()
    found = await line.stored_until(gone, lambda t: "abandoned" in t)
    assert [e.type for e in found] == ["call_started", "node_entered", "abandoned"]
    contact = await line.store.contact(found[0].contact_id)
    assert contact is not None and contact.outcome == "abandoned_ivr"


async def test_a_call_whose_answer_asterisk_refuses_is_hung_up_with_a_refused_contact(
    open_line: Line,
) -> None:
    line = open_line
    # a channel that is not in the hotline's app: Asterisk refuses to answer it over ARI (409)
    caller_leg, far_leg = await line.caller.call("Local/answer@hotline-test")
    await line.caller.events.wait_for(is_event(caller_leg, StasisStart), 5)
    runner = CallRunner(
        line.ari, FLOWS, "test", line.writer, channel_id=far_leg, caller="+48221234567", dialed="100"
    )
    await runner.start()
    found = await line.stored_until(far_leg, lambda t: "call_refused" in t)
    assert [e.type for e in found] == ["call_refused"]
    assert found[0].data["reason"].startswith("Asterisk did not answer the call: ")
    await line.caller.events.wait_for(is_event(caller_leg, ChannelDestroyed), 5)  # hung up, not left ringing
