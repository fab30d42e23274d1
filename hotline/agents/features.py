"""Feature codes on an agent's phone: `*21` logs in, `*22` logs out, `*23` pauses.

The dialplan's `agents` context sends them to the hotline app as `Stasis(hotline,feature,login)` (and
`logout`, `pause`). The phone is matched to its agent, the request goes to routing like the API's, the
agent hears how it went, and the call ends:

- `login`: `agent-loginok` ("agent logged in"), or `agent-alreadyon` when already logged in;
- `logout`: `agent-loggedoff`;
- `pause`: a beep (the reason is "phone");
- anything refused (a phone of no agent, a state that does not allow it, no routing): `beeperr`.

Which agent: the channel variable `AGENT_ID` when the dialplan or a test sets it (a Local channel has no
phone of its own); otherwise the phone the call comes from (`PJSIP/agent1-0000002a` is the endpoint
`PJSIP/agent1`), matched with the agents' `endpoint` in the routing file; otherwise the caller's number,
when it is an agent's id or the resource of an agent's endpoint (`agent1` for `PJSIP/agent1`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid

import structlog

from hotline.agents.service import RoutingService
from hotline.asterisk.ari import AriClient
from hotline.asterisk.errors import AriError, AriNotFound
from hotline.asterisk.events import Channel
from routing.errors import IllegalTransition, RoutingError
from routing.events import AgentLoggedIn, AgentLoggedOut, AgentPaused
from routing.model import RoutingConfig
from routing.switchboard.events import AgentRequest

log = structlog.get_logger("hotline.features")

#: `Stasis(hotline,feature,login|logout|pause)`: the first argument of an agent's feature code.
FEATURE = "feature"

#: The channel variable that names the agent outright.
AGENT_VARIABLE = "AGENT_ID"
#: The pause reason of `*23`.
PHONE_PAUSE = "phone"
#: What the agent hears when it worked, per feature.
DONE_SOUNDS = {
    "login": "sound:agent-loginok",
    "logout": "sound:agent-loggedoff",
    "pause": "sound:beep",
}
REFUSED_SOUND = "sound:beeperr"
ALREADY_ON_SOUND = "sound:agent-alreadyon"
_CHANNEL_NAME = re.compile(r"(.+)-[0-9a-fA-F]{8}(?:;[12])?")
#: The longest the agent's confirmation may play before the call is hung up anyway.
PLAY_LIMIT = 10.0


def feature_event(feature: str, agent_id: str) -> AgentRequest | None:
    """The routing event of a feature code; None for a feature this service does not have."""
    if feature == "login":
        return AgentLoggedIn(agent_id)
    if feature == "logout":
        return AgentLoggedOut(agent_id)
    if feature == "pause":
        return AgentPaused(agent_id, PHONE_PAUSE)
    return None


def endpoint_of_channel(name: str) -> str:
    """`PJSIP/agent1-0000002a` -> `PJSIP/agent1`: the endpoint a channel belongs to."""
    match = _CHANNEL_NAME.fullmatch(name)
    return match.group(1) if match else name


def agent_for_channel(
    config: RoutingConfig, channel: Channel, agent_variable: str | None = None
) -> str | None:
    """The agent a feature call comes from, or None when it is no agent's phone."""
    if agent_variable:
        return agent_variable if agent_variable in config.agents else None
    by_endpoint = {agent.endpoint.lower(): agent_id for agent_id, agent in config.agents.items()}
    if channel.name:
        found = by_endpoint.get(endpoint_of_channel(channel.name).lower())
        if found is not None:
            return found
    number = channel.caller_number or ""
    if not number:
        return None
    if number in config.agents:
        return number
    for agent_id, agent in config.agents.items():
        if agent.endpoint.split("/", 1)[1].lower() == number.lower():
            return agent_id
    return None


async def handle_feature(
    routing: RoutingService | None, ari: AriClient, channel: Channel, feature: str
) -> str | None:
    """Carry out a feature code dialed on `channel` (the StasisStart's channel), tell the agent how it
    went and hang up. Returns the agent's id when routing took the request, else None."""
    channel_id = channel.id
    agent_id: str | None = None
    sound = REFUSED_SOUND
    try:
        with contextlib.suppress(AriNotFound):
            await ari.answer(channel_id)
        if routing is None:
            log.warning(
                "feature code on a service without routing",
                feature=feature,
                channel=channel_id,
                fix="set routing.file in the config",
            )
        else:
            agent_id, sound = await _submit(routing, ari, channel, feature)
        await _play(ari, channel_id, sound)
    except AriError as e:
        log.info("feature call ended early", channel=channel_id, feature=feature, error=str(e))
    finally:
        with contextlib.suppress(AriError):
            await ari.hangup(channel_id)
    return agent_id


async def _submit(
    routing: RoutingService, ari: AriClient, channel: Channel, feature: str
) -> tuple[str | None, str]:
    """(the agent when routing took the request, what they hear)."""
    channel_id = channel.id
    variable: str | None = None
    with contextlib.suppress(AriError, KeyError):
        variable = (await ari.get_variable(channel_id, AGENT_VARIABLE)).strip() or None
    agent_id = agent_for_channel(routing.config, channel, variable)
    if agent_id is None:
        log.warning(
            "feature code from a phone of no agent",
            feature=feature,
            channel=channel.name,
            caller=channel.caller_number,
            agent_variable=variable,
            fix="give the agent this endpoint in the routing file, or set AGENT_ID in the dialplan",
        )
        return None, REFUSED_SOUND
    event = feature_event(feature, agent_id)
    if event is None:
        log.warning("unknown feature code", feature=feature, agent=agent_id, known=sorted(DONE_SOUNDS))
        return None, REFUSED_SOUND
    try:
        await routing.submit(event)
    except IllegalTransition as e:
        log.info("feature code refused", agent=agent_id, feature=feature, reason=str(e))
        return None, ALREADY_ON_SOUND if feature == "login" else REFUSED_SOUND
    except RoutingError as e:
        log.warning("feature code refused", agent=agent_id, feature=feature, reason=str(e))
        return None, REFUSED_SOUND
    log.info("feature code", agent=agent_id, feature=feature)
    return agent_id, DONE_SOUNDS[feature]


async def _play(ari: AriClient, channel_id: str, sound: str) -> None:
    """Play `sound` and wait until it is over (Asterisk forgets a playback when it ends)."""
    playback_id = uuid.uuid4().hex
    await ari.play(channel_id, [sound], playback_id=playback_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PLAY_LIMIT
    while loop.time() < deadline:
        await asyncio.sleep(0.1)
        try:
            await ari.get(f"/playbacks/{playback_id}")
        except AriNotFound:
            return
