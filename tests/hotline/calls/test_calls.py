"""Calls on the real Asterisk: the hotline app runs a small flow on a live Local call while the test plays
the caller (its own ARI app `testcaller`), and the contact's events land in a real SQLite store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hotline.asterisk.events import AriEvent, PlaybackStarted, StasisEnd, StasisStart
from hotline.asterisk.sandbox import ARI_APP, Running
from hotline.calls import CallApp
from hotline.calls.runner import NO_ROUTING
from hotline.store import EventWriter, Store, StoredEvent, open_store
from ivr.flowset import FlowSet
from ivr.model import Flow
from support.harness import HOTLINE_NUMBER, Caller, Events, ari_client, is_event


def menu_flow(menu_timeout: float) -> FlowSet:
    """Welcome, then a menu: 1 queues (and, with no routing yet, overflows to goodbye), 2 says goodbye."""
    spec = {
        "flow": "test",
        "start": "welcome",
        "nodes": {
            "welcome": {"play": "beep", "next": "menu"},
            "menu": {
                "menu": "beep",
                "options": {"1": "support", "2": "bye"},
                "timeout": menu_timeout,
                "retries": 0,
                "failure": "bye",
            },
            "support": {"queue": {"name": "support"}, "overflow": "bye"},
            "bye": {"hangup": None},
        },
    }
    return FlowSet({"test": Flow.model_validate(spec)})


@dataclass
class Line:
    app: CallApp
    store: Store
    caller: Caller
    hotline_events: Events

    async def call(self) -> tuple[str, str]:
        """Dial the hotline and wait until the caller hears it answer; (caller's leg, hotline's leg)."""
        caller_leg, hotline_leg = await self.caller.call(HOTLINE_NUMBER)
        await self.caller.events.wait_for(is_event(caller_leg, StasisStart))
        return caller_leg, hotline_leg

    async def prompts_started(self, hotline_leg: str, count: int) -> None:
        deadline = time.monotonic() + 5.0
        while len(self.hotline_events.of(hotline_leg, PlaybackStarted)) < count:
            assert time.monotonic() < deadline, "the flow's prompts did not start"
            await asyncio.sleep(0.02)

    async def ended(self, hotline_leg: str, timeout: float = 8.0) -> list[StoredEvent]:
        """The call's contact events, once the call is over and they are all stored."""
        await self.hotline_events.wait_for(is_event(hotline_leg, StasisEnd), timeout)
        deadline = time.monotonic() + 5.0
        while True:
            stored = [e for e in await self.store.events_after(0) if e.call_id == hotline_leg]
            if hotline_leg not in self.app.calls and stored and stored[-1].type in ("hung_up", "abandoned"):
                return stored
            assert time.monotonic() < deadline, (
                f"the call did not end in the store: {[e.type for e in stored]}"
            )
            await asyncio.sleep(0.05)


@pytest.fixture
def menu_timeout() -> float:
    return 3.0


@pytest.fixture
async def line(asterisk: Running, tmp_path: Path, menu_timeout: float) -> AsyncIterator[Line]:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'hotline.db'}")
    writer = EventWriter(store, spool_dir=tmp_path / "spool", max_delay=0.01)
    await writer.start()
    hotline, caller = ari_client(asterisk, ARI_APP), Caller(asterisk)
    app = CallApp(hotline, menu_flow(menu_timeout), {"100": "test"}, "test", writer)
    hotline_events = Events()

    async def handle(event: AriEvent) -> None:
        await hotline_events(event)
        await app(event)

    result = Line(app, store, caller, hotline_events)
    hotline.start(handle)
    caller.start()
    try:
        await asyncio.gather(hotline.wait_connected(5), caller.wait_connected(5))
        yield result
    finally:
        await caller.hang_up_all()
        await app.close()
        await hotline.close()
        await caller.close()
        await writer.stop()
        await store.close()


def journey(stored: list[StoredEvent]) -> list[tuple[str, Any]]:
    return [(e.type, e.data.get("node")) for e in stored]


async def test_pressing_1_queues_and_without_routing_takes_the_overflow(line: Line) -> None:
    caller_leg, hotline_leg = await line.call()
    await line.prompts_started(hotline_leg, 2)  # the menu prompt: pressing barges in
    await line.caller.press(caller_leg, "1")

    stored = await line.ended(hotline_leg)
    assert journey(stored) == [
        ("call_started", None),
        ("node_entered", "welcome"),
        ("node_entered", "menu"),
        ("option_chosen", "menu"),
        ("node_entered", "support"),
        ("queued", None),
        ("queue_overflow", None),
        ("node_entered", "bye"),
        ("hung_up", "bye"),
    ]
    assert stored[3].data["digits"] == "1"
    assert stored[6].data["reason"] == NO_ROUTING
    assert len({e.contact_id for e in stored}) == 1
    assert stored[0].data["dialed"] == "100"
    assert [e.at for e in stored] == sorted(e.at for e in stored)
    # the flow hung up, not the caller
    await line.caller.events.wait_for(is_event(caller_leg, StasisEnd))


async def test_pressing_2_says_goodbye(line: Line) -> None:
    caller_leg, hotline_leg = await line.call()
    await line.prompts_started(hotline_leg, 2)
    await line.caller.press(caller_leg, "2")

    stored = await line.ended(hotline_leg)
    assert journey(stored) == [
        ("call_started", None),
        ("node_entered", "welcome"),
        ("node_entered", "menu"),
        ("option_chosen", "menu"),
        ("node_entered", "bye"),
        ("hung_up", "bye"),
    ]
    assert stored[3].data["digits"] == "2"


async def test_a_caller_hanging_up_mid_menu_is_abandoned(line: Line) -> None:
    caller_leg, hotline_leg = await line.call()
    await line.prompts_started(hotline_leg, 2)
    await line.caller.hang_up(caller_leg)

    stored = await line.ended(hotline_leg)
    assert journey(stored) == [
        ("call_started", None),
        ("node_entered", "welcome"),
        ("node_entered", "menu"),
        ("abandoned", "menu"),
    ]


@pytest.mark.parametrize("menu_timeout", [1.0])
async def test_silence_in_the_menu_is_no_input(line: Line) -> None:
    _, hotline_leg = await line.call()
    began = time.monotonic()

    stored = await line.ended(hotline_leg)
    assert journey(stored) == [
        ("call_started", None),
        ("node_entered", "welcome"),
        ("node_entered", "menu"),
        ("no_input", "menu"),
        ("node_entered", "bye"),
        ("hung_up", "bye"),
    ]
    assert time.monotonic() - began >= 1.0
