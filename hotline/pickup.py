"""What the service finds in Asterisk when it (re)connects, and how it picks it up: no call is cut, none
left in silence, no contact left open, no event invented.

While the event socket is down (`disconnected()`), Asterisk cannot be seen: every call and the
switchboard pause (timers stopped with the time they had left, nothing handled, no lookup sent).

After every connect (`connected()`) the channels are listed, once:

- a call the service runs whose channel is still there goes on (`CallRunner.resume`), told of the
  prompts that ended meanwhile; one whose channel is gone is lost (`call_lost`: nobody is counted as
  having hung up); the switchboard's channels likewise;
- a channel in the service's apps that nobody here holds (left from before a restart) is picked up
  from its contact in the store (`contacts.standing`):
    - a caller talking to an agent (the two channels in one bridge, the agent's leg named by its
      `HOTLINE_AGENT` variable) is adopted as it is: the conversation goes on and ends in the store
      like any other (inbound or call-back);
    - a caller who was in the flow resumes at the node they were in (`call_resumed`), in their
      language, with the values they had keyed in; one who was waiting goes back to the queue with the
      place they had;
    - a caller with no contact at all (its first event never reached the store) starts the flow anew,
      on a new contact;
    - anything else (an agent's leg with nobody on the other side, a call-back leg whose attempt was
      settled, a call whose contact is over or cannot be resumed) is hung up;
- every contact still open from before the service started that nobody picked up is closed with
  `service_restarted`, saying where the call was (`ivr`, `queue`, `talking`).

The store is read only once the writer has put every event it holds into it (a contact's last events
may be in the spool after a crash), so nothing is closed that had ended. Callers found waiting hear
music on hold until they are picked up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

from contacts.standing import Standing, standing
from hotline.agents.service import RoutingService
from hotline.asterisk.ari import AriClient
from hotline.asterisk.errors import AriError, AriNotFound
from hotline.asterisk.events import Bridge, Channel, StasisEnd
from hotline.calls.app import CallApp
from hotline.clock import Clock
from hotline.store import EventWriter, Store, StoreError, new_event
from ivr import events
from routing.switchboard import events as ev

log = structlog.get_logger("hotline.pickup")

#: How long the pick-up waits for the writer to put what it holds into the store.
WRITER_WAIT = 30.0
#: Seconds between tries to pick up calls from before while the store does not answer.
RETRY_SECONDS = 5.0


def stasis_args(channel: Channel) -> list[str]:
    """The arguments a channel entered Stasis with (after the app's name)."""
    parts = channel.app_data.split(",")
    return [part for part in parts[1:] if part] if channel.app_name == "Stasis" else []


def resumed_call(found: Standing, channel: Channel) -> events.CallResumed | None:
    """The `CallResumed` a caller found at `found` gets, or None when the events do not say enough."""
    if not found.resumable or found.flow is None or found.node is None:
        return None
    return events.CallResumed(
        caller=found.caller if found.caller is not None else channel.caller_number,
        dialed=found.dialed or channel.exten,
        flow=found.flow,
        node=found.node,
        language=found.language,
        variables=dict(found.variables),
        caller_name=channel.caller_name,
        place_since=found.place_since,
    )


class Pickup:
    """The service's view of Asterisk across disconnects and restarts."""

    def __init__(
        self,
        ari: AriClient,
        calls: CallApp,
        *,
        routing: RoutingService | None = None,
        callback_app: str | None = None,
        store: Store | None = None,
        writer: EventWriter | None = None,
        clock: Clock,
        started_at: datetime,
        grace: float = 1.0,
        is_ours: Callable[[str], bool] = lambda _: False,
    ) -> None:
        self.ari = ari
        self.calls = calls
        self.routing = routing
        self.callback_app = callback_app
        self.store = store
        self.writer = writer
        self.clock = clock
        self.started_at = started_at
        self.grace = grace
        self.is_ours = is_ours  # a channel whose StasisStart the service handled
        self._lock = asyncio.Lock()
        self._retry: asyncio.Task[None] | None = None
        self.picked_up = 0  # calls resumed or adopted since the start
        self.closed = 0  # contacts from before closed with `service_restarted`

    # --- the socket ----------------------------------------------------------------------------------

    def disconnected(self) -> None:
        """The event socket is lost: every call stops where it is until Asterisk can be seen again."""
        log.warning("Asterisk cannot be seen: calls paused", calls=len(self.calls.calls))
        self.calls.pause()
        if self.routing is not None:
            self.routing.pause()

    async def connected(self) -> None:
        """After every (re)connect: settle the calls the service runs, pick up what it finds."""
        async with self._lock:
            try:
                channels = {channel.id: channel for channel in await self.ari.list_channels()}
            except AriError as e:
                log.warning("could not list Asterisk's channels; calls go on as they are", error=str(e))
                await self._resume_all()
                return
            await self._settle_own(channels)
            if not await self._pick_up(channels):
                self._retry_later()

    def _retry_later(self) -> None:
        if self._retry is not None and not self._retry.done():
            return
        self._retry = asyncio.create_task(self._pick_up_later(), name="hotline-pickup-retry")

    async def _pick_up_later(self) -> None:
        await asyncio.sleep(RETRY_SECONDS)
        async with self._lock:
            try:
                channels = {channel.id: channel for channel in await self.ari.list_channels()}
            except AriError:
                done = False
            else:
                done = await self._pick_up(channels)
        if not done:
            self._retry = None
            self._retry_later()

    async def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry

    async def _resume_all(self) -> None:
        for runner in list(self.calls.calls.values()):
            runner.resume()
        if self.routing is not None:
            await self.routing.resume([])

    # --- the calls the service runs ------------------------------------------------------------------

    async def _settle_own(self, channels: dict[str, Channel]) -> None:
        for channel_id, runner in list(self.calls.calls.items()):
            channel = channels.get(channel_id)
            if channel is None:
                log.info("call gone while Asterisk could not be seen", channel=channel_id)
                runner.lose("the call was gone when Asterisk could be seen again")
            elif not channel.in_app(self.ari.app):
                # it left the app meanwhile (a transfer the flow asked for)
                runner.resume()
                runner.feed_ari(StasisEnd(Channel(channel_id)))
            else:
                ended = []
                for playback_id in runner.playbacks:
                    with contextlib.suppress(AriError):
                        if not await self.ari.playback_exists(playback_id):
                            ended.append(playback_id)
                runner.resume(ended)
        routing = self.routing
        if routing is not None:
            held = routing.channels()
            gone = [channel_id for channel_id in held if channel_id not in channels]
            # callers first: a caller's loss settles their agent's ringing phone, not the other way
            gone.sort(key=lambda channel_id: channel_id not in self.calls.calls)
            if gone:
                log.info("channels of the switchboard gone while Asterisk could not be seen", channels=gone)
            await routing.resume(gone)

    # --- what nobody here holds --------------------------------------------------------------------

    def _holds(self, channel_id: str) -> bool:
        routing = self.routing
        return (
            self.calls.owns(channel_id)
            or (routing is not None and routing.owns(channel_id))
            or self.is_ours(channel_id)
        )

    def _in_our_apps(self, channel: Channel) -> bool:
        return channel.in_app(self.ari.app) or (
            self.callback_app is not None and channel.in_app(self.callback_app)
        )

    async def _pick_up(self, channels: dict[str, Channel]) -> bool:
        """Pick up what nobody here holds; False when the store did not answer (try again later)."""
        strangers = {
            cid: ch for cid, ch in channels.items() if self._in_our_apps(ch) and not self._holds(cid)
        }
        if strangers:
            for channel in strangers.values():
                if not stasis_args(channel):  # a caller: music while they wait to be picked up
                    with contextlib.suppress(AriError):
                        await self.ari.post(f"/channels/{channel.id}/moh", idempotent=True)
            await asyncio.sleep(self.grace)  # a StasisStart on its way makes a channel ours
            strangers = {cid: ch for cid, ch in strangers.items() if not self._holds(cid)}
        open_contacts = await self._open_contacts()
        if open_contacts is None:
            # the store cannot tell where the calls were: they are not cut for it
            for channel in strangers.values():
                log.warning(
                    "a call from before waits to be picked up: the store does not answer", channel=channel.id
                )
            return False
        by_call = {contact.call_id: contact for contact, _ in open_contacts.values() if contact.call_id}
        picked: set[str] = set()  # contacts picked up (their calls go on)
        if strangers:
            picked |= await self._adopt_talks(strangers, open_contacts)
        for channel in list(strangers.values()):
            if channel.id not in strangers:
                continue  # adopted in a talk
            picked |= await self._pick_up_one(channel, by_call, open_contacts)
        held = {runner.contact_id for runner in self.calls.calls.values()}
        for contact_id, (contact, found) in open_contacts.items():
            if contact_id in picked or contact_id in held:
                continue
            if self.routing is not None and self.routing.switchboard.party(contact_id) is not None:
                continue
            self._close(contact_id, contact.call_id, found)
        return True

    async def _open_contacts(self) -> dict[str, tuple[Any, Standing]] | None:
        """The contacts still open from before the start, with where each stood (None: the store does
        not answer)."""
        if self.store is None:
            return {}
        writer = self.writer
        if writer is not None:
            deadline = time.monotonic() + WRITER_WAIT
            while writer.backlog and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        try:
            contacts = await self.store.open_contacts(self.started_at)
            found = {}
            for contact in contacts:
                found[contact.id] = (contact, standing(await self.store.timeline(contact.id)))
        except StoreError as e:
            log.warning("the store does not answer: calls from before are not picked up", error=str(e))
            return None
        return found

    async def _adopt_talks(
        self, strangers: dict[str, Channel], open_contacts: dict[str, tuple[Any, Standing]]
    ) -> set[str]:
        """Conversations found going on: both channels in one bridge, one of them an agent's leg."""
        routing = self.routing
        if routing is None:
            return set()
        try:
            bridges = await self.ari.list_bridges()
        except AriError as e:
            log.warning("could not list the bridges", error=str(e))
            return set()
        adopted: set[str] = set()
        for bridge in bridges:
            found = await self._talk_in(bridge, strangers)
            if found is None:
                continue
            await routing.adopt(found)
            for channel_id in (found.customer_channel, found.agent_leg):
                strangers.pop(channel_id, None)
            adopted.add(found.contact_id)
            self.picked_up += 1
            log.info(
                "a conversation from before the restart goes on",
                contact=found.contact_id,
                agent=found.agent_id,
                bridge=bridge.id,
            )
        return adopted

    async def _talk_in(self, bridge: Bridge, strangers: dict[str, Channel]) -> ev.TalkFound | None:
        if len(bridge.channels) != 2 or not all(channel_id in strangers for channel_id in bridge.channels):
            return None
        agent_leg = contact_id = agent_id = None
        for channel_id in bridge.channels:
            with contextlib.suppress(AriError):
                agent_id = await self.ari.get_variable(channel_id, "HOTLINE_AGENT") or None
            if agent_id:
                agent_leg = channel_id
                with contextlib.suppress(AriError):
                    contact_id = await self.ari.get_variable(channel_id, "HOTLINE_CONTACT") or None
                break
        if agent_leg is None or contact_id is None:
            return None
        customer_channel = next(channel_id for channel_id in bridge.channels if channel_id != agent_leg)
        customer = strangers[customer_channel]
        is_callback = self.callback_app is not None and customer.in_app(self.callback_app)
        return ev.TalkFound(
            contact_id=contact_id,
            customer_channel=customer_channel,
            agent_leg=agent_leg,
            bridge_id=bridge.id,
            agent_id=agent_id,
            customer="customer" if is_callback else "caller",
        )

    async def _pick_up_one(
        self,
        channel: Channel,
        by_call: dict[str | None, Any],
        open_contacts: dict[str, tuple[Any, Standing]],
    ) -> set[str]:
        """A channel nobody here holds, not in a conversation: resume it, start it anew or hang it up."""
        if channel.in_app(self.ari.app) and not stasis_args(channel):
            contact = by_call.get(channel.id)
            if contact is not None:
                found = open_contacts[contact.id][1]
                resume = resumed_call(found, channel)
                if resume is not None and self._resumable(resume):
                    await self._stop_music(channel.id)
                    runner = await self.calls.run(channel, contact_id=contact.id, resume=resume)
                    if runner is not None:
                        self.picked_up += 1
                        return {contact.id}
            elif not await self._had_contact(channel.id):
                log.warning(
                    "a caller from before the restart has no contact; the flow starts anew",
                    channel=channel.id,
                )
                await self._stop_music(channel.id)
                await self.calls.run(channel)
                return set()
        log.warning(
            "hanging up a channel left in the app from before a restart",
            channel=channel.id,
            caller=channel.caller_number,
            args=stasis_args(channel),
        )
        with contextlib.suppress(AriNotFound):
            try:
                await self.ari.hangup(channel.id)
            except AriError as e:
                log.warning("could not hang up a channel left from before", channel=channel.id, error=str(e))
        return set()

    def _resumable(self, resume: events.CallResumed) -> bool:
        flow = self.calls.flows().flows.get(resume.flow)
        return flow is not None and resume.node in flow.nodes

    async def _had_contact(self, call_id: str) -> bool:
        """Did the call ever have a contact (an ended one: its call is over)?"""
        if self.store is None:
            return False
        with contextlib.suppress(StoreError):
            return await self.store.has_call(call_id)
        return True  # the store cannot tell: the call is not started twice

    async def _stop_music(self, channel_id: str) -> None:
        with contextlib.suppress(AriError):
            await self.ari.delete(f"/channels/{channel_id}/moh")

    def _close(self, contact_id: str, call_id: str | None, found: Standing) -> None:
        """Close a contact nobody picked up: its call is gone."""
        self.closed += 1
        log.info("closing a contact from before the restart", contact=contact_id, where=found.where)
        if self.writer is None:
            return
        data: dict[str, Any] = {"where": found.where if found.where != "ended" else "ivr"}
        if found.node:
            data["node"] = found.node
        if found.queue and found.where in ("queue", "talking"):
            data["queue"] = found.queue
        try:
            self.writer.submit(
                new_event("service_restarted", contact_id, at=self.clock(), call_id=call_id, data=data)
            )
        except StoreError as e:
            log.error("contact event not written", contact=contact_id, type="service_restarted", error=str(e))
