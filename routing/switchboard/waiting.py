"""A caller in a queue, from the flow's hand-over to the end of their talk with an agent: what they hear
while they wait, which agent's phone rings for them, and the bridge once an agent answers.

    waiting (music; announcements and the call-back offer between it)
       |  the router offers an agent: their phone rings, the caller keeps hearing the music
       |  the agent answers: the music stops, caller and agent are bridged
       v
    bridged --either hangs up--> over (the other side is hung up; the agent goes to wrap-up)

    waiting --the caller hangs up------------------------------> over (abandoned: the router counts it)
    waiting --max wait, or no agent can ever take them---------> over (back to the flow's overflow)
    waiting --the call-back key---------------------------------> over (back to the flow, place kept)
    any     --the caller's channel found gone (Asterisk restarted)--> over (no abandon: the flow records
                                                                     the call lost)

A waiting caller always hears something: the music, or a prompt after which the music comes back.
A prompt that falls due while another plays (an announcement during the call-back offer) follows it.
An agent's phone that rings longer than the queue's ring timeout, is busy or fails to ring is hung up
and the router hears the agent missed the call (it pauses them and offers the caller to the next).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from routing import actions as routing_actions
from routing import events as routing_events
from routing.switchboard import actions as act
from routing.switchboard.desk import Desk
from routing.switchboard.events import CallerQueued

#: Q.850 causes of an agent's phone that did not answer, in the router's words.
RING_CAUSES = {16: "no answer", 17: "busy", 18: "no answer", 19: "no answer", 21: "declined"}
#: The first Stasis argument of an agent's leg for a waiting caller.
AGENT_LEG = "agent"


def ring_reason(cause: int | None) -> str:
    """Why an agent's phone stopped ringing, from its hang-up cause (none given: it rang out)."""
    if not cause:
        return "no answer"
    return RING_CAUSES.get(cause, "failed")


def announcement(position: int, estimated_wait: float) -> tuple[str, ...]:
    """What a waiting caller hears, as ARI media: their place, then the estimated wait in minutes."""
    if position <= 1:
        media = ["sound:queue-youarenext"]
    else:
        media = ["sound:queue-thereare", f"number:{position}", "sound:queue-callswaiting"]
    if estimated_wait > 0 and math.isfinite(estimated_wait):
        if estimated_wait < 60:
            media += ["sound:queue-holdtime", "sound:queue-less-than", "number:1", "sound:queue-minute"]
        else:
            minutes = round(estimated_wait / 60)
            unit = "sound:queue-minute" if minutes == 1 else "sound:queue-minutes"
            media += ["sound:queue-holdtime", f"number:{minutes}", unit]
    return tuple(media)


def caller_id(number: str | None, name: str | None) -> str | None:
    """ARI's `callerId`: `"Name" <number>`, or the number alone."""
    if not number:
        return None
    if name:
        clean = name.replace('"', "").replace("\\", "")
        return f'"{clean}" <{number}>'
    return number


def customer_card(customer: Any) -> dict[str, Any] | None:
    if customer is None:
        return None
    return {"id": customer.id, "name": customer.name, "attributes": dict(customer.attributes)}


@dataclass(slots=True)
class Ring:
    """One agent's phone ringing (then bridged) for the caller."""

    leg: str
    agent_id: str
    timer: str | None = None
    answered: bool = False
    settled: bool = False  # answered, given up or cancelled: its end means nothing more to the router


Phase = Literal["waiting", "bridged", "over"]


class WaitingCaller:
    """One caller the switchboard holds, on their own channel."""

    def __init__(self, desk: Desk, queued: CallerQueued, music: str) -> None:
        self.desk = desk
        self.queued = queued
        self.music = music
        self.queued_at: datetime = desk.now
        self.phase: Phase = "waiting"
        self.music_on = False
        self.prompt: str | None = None  # the prompt playing between the music
        self.announcement_due: routing_actions.AnnouncePosition | None = None
        self.offer_due = False
        self.prompts = 0
        self.ring: Ring | None = None
        self.bridge_id: str | None = None

    @property
    def contact_id(self) -> str:
        return self.queued.contact_id

    @property
    def channel_id(self) -> str:
        return self.queued.channel_id

    @property
    def over(self) -> bool:
        return self.phase == "over"

    @property
    def hearing(self) -> str:
        """What the caller hears now: music, a prompt, their agent, or nothing (only once over)."""
        if self.phase == "bridged":
            return "agent"
        if self.prompt is not None:
            return "prompt"
        return "music" if self.music_on else "nothing"

    # --- joining ----------------------------------------------------------------------------------------

    def join(self) -> None:
        """The flow's hand-over: music, and the router hears of the caller."""
        q = self.queued
        self.desk.hold_channel(self, self.channel_id)
        self._music_on()
        joined = self.desk.route(
            routing_events.ContactQueued(
                contact_id=q.contact_id,
                queue=q.queue,
                skills=dict(q.skills) if q.skills else None,
                priority=q.priority,
                max_wait=q.max_wait,
                callback=False,
                caller=q.caller,
                since=q.since,
                offer_callback=q.offer_callback,
            )
        )
        if not joined:
            self._music_off()
            self._back_to_flow("no routing")

    # --- the router's decisions for this caller ---------------------------------------------------

    def on_router(self, action: Any) -> None:
        match action:
            case routing_actions.AnnouncePosition():
                self._announce(action)
            case routing_actions.OfferCallback():
                self._offer_callback()
            case routing_actions.OfferContact():
                self._ring(action)
            case routing_actions.CancelOffer():
                ring = self.ring
                if ring is not None and ring.agent_id == action.agent_id and not ring.answered:
                    self._drop_ring(ring)
            case routing_actions.Overflow():
                self._overflow(action.reason)

    def _announce(self, action: routing_actions.AnnouncePosition) -> None:
        if self.phase != "waiting":
            return
        if self.prompt is not None:
            self.announcement_due = action
            return
        self._between_music("queue", announcement(action.position, action.estimated_wait))

    def _offer_callback(self) -> None:
        if self.phase != "waiting" or not self.queued.offer_prompt:
            return
        if self.prompt is not None:
            self.offer_due = True
            return
        self.offer_due = False
        self._between_music("offer", self.queued.offer_prompt)

    def _overflow(self, reason: str) -> None:
        if self.phase != "waiting":
            return
        if self.ring is not None and not self.ring.settled:
            self._drop_ring(self.ring)
        self._music_off()
        self.desk.log(
            "info", "the caller leaves the queue for the overflow", contact=self.contact_id, reason=reason
        )
        self._back_to_flow(reason)

    # --- the caller ---------------------------------------------------------------------------------

    def leave_for_callback(self) -> None:
        """The caller pressed the call-back key: out of the queue without an abandon, back to the flow;
        an agent who has them already keeps them."""
        ring = self.ring
        if self.phase == "bridged" or (ring is not None and ring.answered):
            self.desk.emit(act.QueueAnswered(self.contact_id))
            return
        if self.phase != "waiting":
            self.desk.emit(act.QueueExited(self.contact_id, "callback"))
            return
        self._music_off()
        self.desk.route(routing_events.ContactLeft(self.contact_id, reason="callback"))
        if ring is not None and not ring.settled:
            self._drop_ring(ring)
        self._back_to_flow("callback")

    def on_playback_ended(self, playback_id: str) -> None:
        if playback_id != self.prompt:
            return
        self.prompt = None
        if self.phase != "waiting":
            return
        due, self.announcement_due = self.announcement_due, None
        if due is not None:
            self._announce(due)
        elif self.offer_due:
            self._offer_callback()
        else:
            self._music_on()

    def on_channel_gone(self, channel_id: str, cause: int | None) -> None:
        if channel_id == self.channel_id:
            self._caller_gone()
        elif self.ring is not None and channel_id == self.ring.leg:
            self._agent_gone(cause)

    def on_channel_lost(self, channel_id: str) -> None:
        if channel_id == self.channel_id:
            self._caller_gone(lost=True)
        elif self.ring is not None and channel_id == self.ring.leg:
            ring = self.ring
            if ring.answered and self.phase == "bridged":
                # the agent's line is gone while the caller's is not: the talk is over, said as it is
                self._over()
                self.desk.forget_channel(ring.leg)
                self.desk.route(routing_events.CallEnded(self.contact_id, by="agent"))
                self.desk.emit(
                    act.RecordEvent(
                        self.contact_id,
                        "call_ended",
                        {"by": "system", "cause": "agent's line lost"},
                        self.channel_id,
                    )
                )
                self._end_bridge()
                self._hang_up(self.channel_id)
            else:
                self._agent_gone(None)

    def _caller_gone(self, lost: bool = False) -> None:
        self.desk.forget_channel(self.channel_id)
        ring = self.ring
        if self.phase == "bridged":
            self.desk.route(routing_events.CallEnded(self.contact_id, by="caller"))
            self._end_bridge()
            if ring is not None:
                self._hang_up(ring.leg)
        elif self.phase == "waiting":
            self.desk.route(
                routing_events.ContactLeft(self.contact_id, reason="lost" if lost else "abandoned")
            )
            if ring is not None and not ring.settled:
                self._drop_ring(ring)
        self.prompt = None
        self.music_on = False
        self._over()

    # --- the agent's phone --------------------------------------------------------------------------

    def _ring(self, offer: routing_actions.OfferContact) -> None:
        agent = self.desk.config.agents.get(offer.agent_id)
        if self.phase != "waiting" or agent is None:
            self.desk.log(
                "warning", "cannot offer the contact", contact=self.contact_id, agent=offer.agent_id
            )
            self.desk.route(routing_events.AgentNoAnswer(offer.agent_id, self.contact_id, "failed"))
            return
        if self.ring is not None and not self.ring.settled:
            self._drop_ring(self.ring)
        q = self.queued
        self.desk.emit(act.Publish(self._screen_pop(offer.agent_id)))  # the desktop knows before it rings
        name = q.customer.name if q.customer is not None and q.customer.name else None
        leg, timer = self.desk.ring_agent(
            self, offer, app="calls", kind=AGENT_LEG, caller_id=caller_id(q.caller, name or q.caller_name)
        )
        self.ring = Ring(leg, offer.agent_id, timer)

    def _screen_pop(self, agent_id: str) -> dict[str, Any]:
        q, now = self.queued, self.desk.now
        return {
            "type": "screen_pop",
            "agent": agent_id,
            "contact_id": self.contact_id,
            "caller": q.caller,
            "caller_name": q.caller_name,
            "customer": customer_card(q.customer),
            "ivr_path": list(q.ivr_path),
            "queue": q.queue,
            "wait": round((now - self.queued_at).total_seconds(), 3),
            "at": now.isoformat(),
        }

    def on_timer(self, timer_id: str) -> None:
        ring = self.ring
        if ring is None or ring.timer != timer_id or ring.settled:
            return
        ring.timer = None
        self._drop_ring(ring)
        self.desk.route(routing_events.AgentNoAnswer(ring.agent_id, self.contact_id, "no answer"))

    def on_leg_answered(self, channel_id: str) -> None:
        ring = self.ring
        if ring is None or ring.leg != channel_id or ring.settled or self.phase != "waiting":
            self.desk.log("info", "an agent answered an offer that is over; hanging up", leg=channel_id)
            self._hang_up(channel_id)
            return
        ring.answered = True
        self._settle(ring)
        if not self.desk.route(routing_events.AgentAnswered(ring.agent_id, self.contact_id)):
            self.desk.log(
                "warning", "routing refused the answer; hanging up the agent", contact=self.contact_id
            )
            self.ring = None
            self._hang_up(ring.leg)
            return
        self.phase = "bridged"
        self.desk.emit(act.QueueAnswered(self.contact_id))
        self._music_off()
        bridge = self.bridge_id = self.desk.new_id()
        self.desk.emit(act.Bridge(bridge, (self.channel_id, ring.leg), f"contact-{self.contact_id}"))
        self.desk.log("info", "caller and agent bridged", contact=self.contact_id, agent=ring.agent_id)

    def on_leg_failed(self, channel_id: str, reason: str) -> None:
        ring = self.ring
        if ring is None or ring.leg != channel_id:
            return
        agent = self.desk.config.agents.get(ring.agent_id)
        self.desk.log(
            "warning",
            "could not ring the agent",
            agent=ring.agent_id,
            endpoint=agent.endpoint if agent is not None else None,
            error=reason,
            fix="check the agent's endpoint in the routing file",
        )
        self.desk.forget_channel(channel_id)
        if not ring.settled:
            self._settle(ring)
            self.ring = None
            self.desk.route(routing_events.AgentNoAnswer(ring.agent_id, self.contact_id, "failed"))

    def on_leg_dialed(self, channel_id: str, status: str) -> None:
        """An agent's dial status adds nothing: the leg's end says how it went."""

    def _agent_gone(self, cause: int | None) -> None:
        ring = self.ring
        assert ring is not None
        self.desk.forget_channel(ring.leg)
        if not ring.answered:
            if ring.settled:
                return
            self._settle(ring)
            self.ring = None
            self.desk.route(routing_events.AgentNoAnswer(ring.agent_id, self.contact_id, ring_reason(cause)))
            return
        if self.phase != "bridged":
            return
        self._over()
        self.desk.route(routing_events.CallEnded(self.contact_id, by="agent"))
        self.desk.emit(
            act.RecordEvent(
                self.contact_id, "call_ended", {"by": "agent", "cause": "agent hung up"}, self.channel_id
            )
        )
        self._end_bridge()
        self._hang_up(self.channel_id)

    def on_stopping(self) -> None:
        """The service stops: a phone still ringing for the caller is hung up; a talk goes on."""
        if self.ring is not None and not self.ring.answered:
            self._hang_up(self.ring.leg)

    # --- small tools --------------------------------------------------------------------------------

    def _over(self) -> None:
        self.phase = "over"
        self.desk.party_over(self)

    def _between_music(self, what: str, media: tuple[str, ...]) -> None:
        """Stop the music, play `media`; the music comes back when it ended."""
        self._music_off()
        self.prompts += 1
        self.prompt = self.desk.play(
            self, self.channel_id, media, self.queued.language, f"{what}-{self.prompts}"
        )

    def _music_on(self) -> None:
        if not self.music_on:
            self.music_on = True
            self.desk.emit(act.MusicOn(self.channel_id, self.music))

    def _music_off(self) -> None:
        if self.prompt is not None:
            self.desk.emit(act.StopPlayback(self.prompt))
            self.prompt = None
        if self.music_on:
            self.music_on = False
            self.desk.emit(act.MusicOff(self.channel_id))

    def _back_to_flow(self, reason: str) -> None:
        self._over()
        self.desk.forget_channel(self.channel_id)
        self.desk.emit(act.QueueExited(self.contact_id, reason))

    def _settle(self, ring: Ring) -> None:
        ring.settled = True
        self.desk.cancel_timer(ring.timer)
        ring.timer = None
        if self.ring is ring and not ring.answered:
            self.ring = None

    def _drop_ring(self, ring: Ring) -> None:
        self._settle(ring)
        self._hang_up(ring.leg)

    def _hang_up(self, channel_id: str) -> None:
        self.desk.forget_channel(channel_id)
        self.desk.emit(act.HangUp(channel_id))

    def _end_bridge(self) -> None:
        if self.bridge_id is not None:
            self.desk.emit(act.EndBridge(self.bridge_id))
            self.bridge_id = None
