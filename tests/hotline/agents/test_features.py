"""Agents' feature codes on the real Asterisk: `*21`, `*22`, `*23` dialed in the `agents` context reach the
hotline app as `Stasis(hotline,feature,...)`, change the agent's state in routing, and play the agent
the confirmation before hanging up.

The agent's phone is a Local channel here (`Local/*21@agents`), named by the channel variable AGENT_ID
(a Local channel is no agent's endpoint); the test's own small ARI handler on the hotline app calls
`handle_feature` for each feature call. How a SIP phone's channel maps to its agent is checked on
channel names and numbers as Asterisk gives them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from hotline.agents import RoutingService
from hotline.agents.features import (
    ALREADY_ON_SOUND,
    DONE_SOUNDS,
    REFUSED_SOUND,
    agent_for_channel,
    endpoint_of_channel,
    handle_feature,
)
from hotline.asterisk.ari import AriClient
from hotline.asterisk.events import (
    AriEvent,
    Channel,
    ChannelDestroyed,
    PlaybackFinished,
    PlaybackStarted,
    StasisEnd,
    StasisStart,
)
from hotline.asterisk.sandbox import ARI_APP, Running
from routing.model import RoutingConfig
from routing.switchboard import Switchboard
from support.harness import Caller, Events, ari_client, is_event
from support.paths import DIALPLAN

CONFIG = RoutingConfig.model_validate(
    {
        "agents": {
            "ann": {"name": "Ann", "endpoint": "PJSIP/agent1", "skills": {"sales": 5}},
            "bob": {"name": "Bob", "endpoint": "PJSIP/agent2", "skills": {"sales": 3}},
        },
        "queues": {"sales": {"skills": {"sales": 1}}},
    }
)


@dataclass
class Desk:
    """The hotline app reduced to feature codes: each feature call goes to `handle_feature`."""

    ari: AriClient
    routing: RoutingService
    events: Events = field(default_factory=Events)
    done: dict[str, str | None] = field(default_factory=dict)  # channel -> the agent routing took

    async def __call__(self, event: AriEvent) -> None:
        await self.events(event)
        if isinstance(event, StasisStart) and event.args[:1] == ("feature",):
            self.done[event.channel_id] = await handle_feature(
                self.routing, self.ari, event.channel, event.args[1]
            )

    async def result(self, channel_id: str, timeout: float = 8.0) -> str | None:
        async with asyncio.timeout(timeout):
            while channel_id not in self.done:
                await asyncio.sleep(0.02)
        return self.done[channel_id]

    def heard(self, channel_id: str) -> list[str]:
        return [e.playback.media_uri for e in self.events.of(channel_id) if isinstance(e, PlaybackStarted)]

    def state(self, agent_id: str) -> tuple[str, str | None]:
        [view] = [a for a in self.routing.agents() if a.id == agent_id]
        return view.state, view.reason


@pytest.fixture
async def desk(asterisk: Running) -> AsyncIterator[Desk]:
    ari = ari_client(asterisk, ARI_APP)
    routing = RoutingService(Switchboard(CONFIG), ari, None)
    await routing.start()
    desk = Desk(ari, routing)
    ari.start(desk)
    await ari.wait_connected(5)
    yield desk
    await routing.close()
    await ari.close()


@pytest.fixture
async def phone(asterisk: Running) -> AsyncIterator[Caller]:
    caller = Caller(asterisk)
    caller.start()
    await caller.wait_connected()
    yield caller
    await caller.hang_up_all()
    await caller.close()


async def dial(desk: Desk, phone: Caller, code: str, *, agent: str) -> tuple[str, str | None]:
    """Dial a feature code from an agent's "phone"; (the feature leg, the agent routing took)."""
    phone_leg, feature_leg = await phone.call(f"Local/{code}@agents", {"AGENT_ID": agent})
    taken = await desk.result(feature_leg)
    await phone.events.wait_for(is_event(phone_leg, ChannelDestroyed), 5)
    await desk.events.wait_for(is_event(feature_leg, StasisEnd), 5)
    return feature_leg, taken


async def test_log_in_pause_and_log_out_from_the_phone(desk: Desk, phone: Caller) -> None:
    leg, taken = await dial(desk, phone, "*21", agent="ann")
    assert taken == "ann"
    assert desk.state("ann") == ("available", None)
    assert desk.heard(leg) == [DONE_SOUNDS["login"]] == ["sound:agent-loginok"]
    assert len(desk.events.of(leg, PlaybackFinished)) == 1

    leg, taken = await dial(desk, phone, "*23", agent="ann")
    assert (taken, desk.state("ann"), desk.heard(leg)) == ("ann", ("paused", "phone"), ["sound:beep"])

    leg, taken = await dial(desk, phone, "*22", agent="ann")
    assert (taken, desk.state("ann"), desk.heard(leg)) == (
        "ann",
        ("logged_out", None),
        ["sound:agent-loggedoff"],
    )
    assert desk.state("bob") == ("logged_out", None)


async def test_refused_codes_say_so_and_change_nothing(desk: Desk, phone: Caller) -> None:
    leg, taken = await dial(desk, phone, "*23", agent="bob")  # pausing a logged-out agent
    assert (taken, desk.state("bob"), desk.heard(leg)) == (None, ("logged_out", None), [REFUSED_SOUND])
    await dial(desk, phone, "*21", agent="bob")
    leg, taken = await dial(desk, phone, "*21", agent="bob")
    assert (taken, desk.state("bob"), desk.heard(leg)) == (None, ("available", None), [ALREADY_ON_SOUND])
    leg, taken = await dial(desk, phone, "*21", agent="nobody")
    assert (taken, desk.heard(leg)) == (None, [REFUSED_SOUND])
    assert [a.state for a in desk.routing.agents()] == ["logged_out", "available"]


def test_a_phone_channel_is_matched_by_its_endpoint() -> None:
    assert endpoint_of_channel("PJSIP/agent1-0000002a") == "PJSIP/agent1"
    assert endpoint_of_channel("Local/*21@agents-00000001;2") == "Local/*21@agents"
    assert endpoint_of_channel("PJSIP/agent-x") == "PJSIP/agent-x"

    def phone(name: str, number: str | None = None) -> Channel:
        return Channel("c", name=name, caller_number=number)

    assert agent_for_channel(CONFIG, phone("PJSIP/agent2-000000ff", "555")) == "bob"
    assert agent_for_channel(CONFIG, phone("pjsip/AGENT1-000000ff")) == "ann"
    assert agent_for_channel(CONFIG, phone("PJSIP/caller-00000003", "ann")) == "ann"
    assert agent_for_channel(CONFIG, phone("PJSIP/caller-00000003", "agent1")) == "ann"
    assert agent_for_channel(CONFIG, phone("PJSIP/caller-00000003", "+4822")) is None
    assert agent_for_channel(CONFIG, phone("PJSIP/agent1-00000003"), "bob") == "bob"
    assert agent_for_channel(CONFIG, phone("PJSIP/agent1-00000003"), "nobody") is None


def test_the_dialplan_sends_the_codes_this_module_handles() -> None:
    dialplan = (DIALPLAN / "extensions.conf").read_text()
    for code, feature in (("*21", "login"), ("*22", "logout"), ("*23", "pause")):
        assert f"exten => {code},1,Stasis(hotline,feature,{feature})" in dialplan
        assert feature in DONE_SOUNDS
