"""The FastAGI server against the real Asterisk: the test is the caller, an ARI app (`testcaller`) that
originates `Local/100@hotline-agi` with the channel variable FLOW; its `;2` half runs
`AGI(agi://127.0.0.1:4573/${FLOW})` into our server, or into a link that breaks on the test's word
(`support.agi.AgiLink`) in front of it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from hotline.asterisk.events import ChannelVarset, StasisEnd, StasisStart
from hotline.asterisk.fastagi import DEFAULT_PORT, AgiLimits, FastAgiServer
from hotline.asterisk.sandbox import Running
from ivr.loader import load_flowset
from support.agi import AgiLink, Contacts, Fault
from support.harness import Caller, Events, is_event

AGI_NUMBER = "Local/100@hotline-agi"

FLOW = """
flow: agitest
start: welcome
nodes:
  welcome: {play: beep, next: menu}
  menu: {menu: beep, options: {"1": hangup-a, "2": hangup-b}, timeout: 10}
  hangup-a: {hangup: null}
  hangup-b: {hangup: null}
"""

Recorded = list[tuple[str, str, dict[str, Any]]]


@dataclass
class Setup:
    server: FastAgiServer
    caller: Caller
    events: Events
    recorded: Recorded
    identified: list[str]

    async def call(self, flow: str) -> tuple[str, str]:
        """Send a call into the FastAGI context; returns (the caller's leg, the AGI leg)."""
        return await self.caller.call(AGI_NUMBER, {"FLOW": flow}, caller_id="Zoe <48221234567>")

    async def wait_recorded(self, event_type: str, timeout: float = 10.0, **data: Any) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(t == event_type and data.items() <= d.items() for _, t, d in self.recorded):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {event_type} within {timeout} s; got {[t for _, t, _ in self.recorded]}")


@pytest.fixture
async def setup(asterisk: Running) -> AsyncIterator[Setup]:
    recorded: Recorded = []
    identified: list[str] = []

    async def record(call_id: str, event_type: str, data: dict[str, Any]) -> None:
        recorded.append((call_id, event_type, data))

    async def identify(phone: str) -> dict[str, str] | None:
        identified.append(phone)
        return {"CUSTOMER_ID": "c-7", "CUSTOMER_NAME": "Zoë Gold"} if phone == "48221234567" else None

    server = FastAgiServer(
        load_flowset({"agitest.yaml": FLOW}), port=DEFAULT_PORT, record=record, identify=identify
    )
    events = Events(timeout=10.0)
    caller = Caller(asterisk, events)
    await server.start()
    caller.start()
    result = Setup(server, caller, events, recorded, identified)
    try:
        await caller.wait_connected(5)
        yield result
    finally:
        await caller.hang_up_all()
        await caller.close()
        await server.close()


async def test_a_flow_runs_on_a_live_call_and_hears_the_callers_key(setup: Setup) -> None:
    caller_leg, agi_leg = await setup.call("agitest")
    await setup.events.wait_for(is_event(caller_leg, StasisStart))  # the AGI answered the call
    await setup.wait_recorded("node_entered", node="menu")  # keys during the welcome are not heard
    await setup.caller.press(caller_leg, "1")
    await setup.wait_recorded("hung_up")
    await setup.events.wait_for(is_event(caller_leg, StasisEnd))

    assert {call_id for call_id, _, _ in setup.recorded} == {agi_leg}  # the channel's unique id
    types = [t for _, t, _ in setup.recorded]
    assert types[0] == "call_started"
    assert setup.recorded[0][2]["caller"] == "48221234567"
    assert [d["node"] for _, t, d in setup.recorded if t == "node_entered"] == ["welcome", "menu", "hangup-a"]
    chosen = [d for _, t, d in setup.recorded if t == "option_chosen"]
    assert chosen == [{"node": "menu", "digits": "1", "target": "hangup-a"}]
    assert types[-1] == "hung_up"
    assert setup.recorded[-1][2]["by"] == "flow"
    assert setup.server.calls_served == 1


async def test_identify_sets_channel_variables_from_the_customer_store(setup: Setup) -> None:
    _, agi_leg = await setup.call("identify")
    name = await setup.events.wait_for(
        lambda e: isinstance(e, ChannelVarset) and e.variable == "CUSTOMER_NAME"
    )
    assert isinstance(name, ChannelVarset) and name.value == "Zoë Gold"
    assert name.channel_id == agi_leg
    customer = await setup.events.wait_for(
        lambda e: isinstance(e, ChannelVarset) and e.variable == "CUSTOMER_ID"
    )
    assert isinstance(customer, ChannelVarset) and customer.value == "c-7"
    assert setup.identified == ["48221234567"]


async def test_a_caller_hanging_up_mid_menu_abandons_and_nothing_stays_open(setup: Setup) -> None:
    caller_leg, agi_leg = await setup.call("agitest")
    await setup.wait_recorded("node_entered", node="menu")
    await setup.caller.hang_up(caller_leg)
    await setup.wait_recorded("abandoned")
    types = [t for c, t, _ in setup.recorded if c == agi_leg]
    assert types == ["call_started", "node_entered", "node_entered", "abandoned"]
    assert setup.recorded[-1][2] == {"node": "menu", "flow": "agitest", "where": "ivr"}
    assert setup.server.calls == 0


LINK_FLOW = """
flow: linktest
start: menu
nodes:
  menu: {menu: beep, options: {"1": bye}, timeout: 2, retries: 0, failure: bye}
  bye: {hangup: null}
"""


@pytest.mark.parametrize("fault", ["garbage", "silence", "cut"])
async def test_a_link_that_breaks_mid_call_closes_the_contact_and_ends_the_channel(
    asterisk: Running, fault: Fault
) -> None:
    contacts = Contacts()
    limits = AgiLimits(answer_seconds=1.0, prompt_seconds=5.0)
    server = FastAgiServer(
        load_flowset({"linktest.yaml": LINK_FLOW}), port=0, record=contacts.record, limits=limits
    )
    link = AgiLink(server_port=0)
    caller = Caller(asterisk, Events(timeout=15.0))
    await server.start()
    link.server_port = server.port
    await link.start()
    caller.start()
    try:
        await caller.wait_connected(5)
        caller_leg, agi_leg = await caller.call(AGI_NUMBER, {"FLOW": "linktest"})
        deadline = time.monotonic() + 10
        while not any(line.startswith(b"WAIT FOR DIGIT") for line in link.to_asterisk):
            assert time.monotonic() < deadline, f"the menu did not start: {link.to_asterisk}"
            await asyncio.sleep(0.02)
        link.break_at(fault)  # Asterisk's answer to the wait (a timeout, 2 s on) is the one that breaks
        contact = await contacts.wait_closed(agi_leg, timeout=10)
        await caller.events.wait_for(is_event(caller_leg, StasisEnd))  # the channel is not left stuck
    finally:
        await caller.hang_up_all()
        await caller.close()
        await link.close()
        await server.close()
    assert link.broken.is_set()
    assert contacts.calls() == [agi_leg]
    assert contacts.ends() == {agi_leg: ("ended_in_ivr", "service", "agi_error")}
    assert contact.ivr_path == ["menu"]
    reason = contacts.data(agi_leg, "flow_error")[0]["reason"]
    assert {
        "garbage": "not an AGI answer",
        "silence": "did not answer 'WAIT FOR DIGIT",
        "cut": "closed the AGI connection during 'WAIT FOR DIGIT",
    }[fault] in reason
    if fault != "cut":  # the server's HANGUP reached Asterisk through the link
        assert link.to_asterisk[-1] == b"HANGUP\n"
