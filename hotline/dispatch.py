"""Where each event of the calls' Stasis app goes: to the caller's call, to the switchboard (a waiting
caller's channel, an agent's leg), or to an agent's feature code.

    StasisStart of a leg the switchboard placed (an agent answered)   -> the switchboard
    StasisStart with `feature,<code>` (`*21` ... from an agent's phone) -> the feature code
    StasisStart of a leg no longer held (`agent,<contact>`: an agent     -> hung up
      answering an offer from before a restart)
    StasisStart of a new caller                                        -> a new call (`CallApp`)
    any other event                                                    -> whoever holds the channel
                                                                          (a waiting caller's: both)
"""

from __future__ import annotations

import contextlib

import structlog

from hotline.agents.features import FEATURE, handle_feature
from hotline.agents.service import RoutingService
from hotline.asterisk.ari import AriClient
from hotline.asterisk.errors import AriError
from hotline.asterisk.events import AriEvent, StasisStart
from hotline.calls.app import CallApp
from routing.switchboard.waiting import AGENT_LEG

log = structlog.get_logger("hotline.dispatch")


class AppEvents:
    """The ARI event handler of the calls' app."""

    def __init__(self, ari: AriClient, calls: CallApp, routing: RoutingService | None = None) -> None:
        self.ari = ari
        self.calls = calls
        self.routing = routing

    async def __call__(self, event: AriEvent) -> None:
        routing = self.routing
        if isinstance(event, StasisStart):
            if routing is not None and routing.owns(event.channel_id):
                routing.channel_event(event)
            elif event.args and event.args[0] == FEATURE:
                feature = event.args[1] if len(event.args) > 1 else ""
                await handle_feature(routing, self.ari, event.channel, feature)
            elif event.args and event.args[0] == AGENT_LEG:
                log.info(
                    "an agent answered an offer that is no longer held; hanging up", leg=event.channel_id
                )
                with contextlib.suppress(AriError):
                    await self.ari.hangup(event.channel_id)
            else:
                await self.calls(event)
            return
        channel_id = event.channel_id
        if channel_id is None:
            return
        if self.calls.owns(channel_id):
            await self.calls(event)
        if routing is not None and routing.owns(channel_id):
            routing.channel_event(event)
