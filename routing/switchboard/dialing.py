"""A call-back being made: its placeholder in the queue, the agent's phone, the customer's, and how the
attempt ended. The caller who asked hung up long ago; the placeholder waits in their place.

Agent first (the default)::

    queued --an agent is offered--> ringing agent --answers--> whisper ("to call this number: ...")
        --the whisper ends--> approving (the store counts the attempt) --approved--> dialing customer
        --answers--> talking --either hangs up--> over

Customer first (`callback.dial: customer_first`)::

    queued --an agent is offered (reserved)--> approving --approved--> dialing customer
        --answers--> holding (music; the reserved agent rings, or the next one offered)
        --an agent answers--> talking --either hangs up--> over

An attempt begins when the store approves it (`StartDial` -> `DialApproved`) and ends with exactly one
`SettleAttempt`: answered (once customer and agent are bridged), or busy / no answer / failed, which
the queue's retry policy turns into the time of the next attempt. An agent who misses the call-back
before the customer is dialed costs no attempt: the router offers the placeholder to the next agent.
An agent who hangs up during the whisper leaves it to the next one, as a new placeholder.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from routing import actions as routing_actions
from routing import events as routing_events
from routing.callbacks import Callback, Outcome, RetryPolicy
from routing.model import RoutingConfig
from routing.switchboard import actions as act
from routing.switchboard.desk import Desk, Settings
from routing.switchboard.events import Customer, DueCallback
from routing.switchboard.waiting import caller_id, customer_card, ring_reason

#: Q.850 causes of a customer's phone that did not answer, as outcomes.
CUSTOMER_CAUSES: dict[int, Outcome] = {
    16: "no_answer",
    17: "busy",
    18: "no_answer",
    19: "no_answer",
    21: "no_answer",
}
#: A dial's status (ARI's `Dial` event) as an outcome.
DIAL_STATUSES: dict[str, Outcome] = {
    "BUSY": "busy",
    "NOANSWER": "no_answer",
    "CANCEL": "no_answer",
    "CONGESTION": "failed",
    "CHANUNAVAIL": "failed",
}
#: The first Stasis argument of a call-back's legs.
AGENT_LEG = "callback"
CUSTOMER_LEG = "customer"

Phase = Literal["queued", "ringing", "whisper", "approving", "dialing", "holding", "talking", "over"]


def retry_policy(config: RoutingConfig, queue: str | None) -> RetryPolicy:
    """The queue's retry policy from the routing file; the default one for a queue without its own."""
    found = config.queues.get(queue or "")
    if found is not None and found.callback is not None:
        return found.callback.retry_policy()
    return RetryPolicy()


def whisper(number: str, settings: Settings) -> tuple[str, ...]:
    """What the agent hears before the customer is dialed: the number about to be called."""
    digits = ("digits:" + "".join(c for c in number if c.isdigit()),) if settings.whisper_number else ()
    return (*settings.whisper, *digits)


def customer_outcome(status: str | None, cause: int | None) -> Outcome:
    """How a customer's phone that did not answer ended: the dial's status says it best (a Local
    channel's end carries no cause), else the hang-up cause."""
    if status is not None and status in DIAL_STATUSES:
        return DIAL_STATUSES[status]
    if cause:
        return CUSTOMER_CAUSES.get(cause, "failed")
    return "failed"


class CallbackCall:
    """One call-back the switchboard holds, under the contact id of its placeholder."""

    def __init__(self, desk: Desk, callback: DueCallback, customer: Customer | None, contact_id: str) -> None:
        self.desk = desk
        self.callback = callback
        self.customer = customer
        self._contact_id = contact_id
        self.attempts = callback.attempts
        self.counted = False  # the store counted this attempt (DialApproved)
        self.settled = False
        self.phase: Phase = "queued"
        self.agent_id: str | None = None  # the agent rung, or reserved (customer first)
        self.agent_leg: str | None = None
        self.agent_answered = False
        self.customer_leg: str | None = None
        self.dial_status: str | None = None
        self.bridge_id: str | None = None
        self.whisper: str | None = None
        self.ring_timer: str | None = None
        self.dial_timer: str | None = None
        self.hold_timer: str | None = None
        self.whisper_timer: str | None = None
        self.expiry_timer: str | None = None
        self.give_up = False  # settle as failed as soon as the store answers (agent gone, withdrawn)

    @property
    def contact_id(self) -> str:
        return self._contact_id

    @property
    def over(self) -> bool:
        return self.phase == "over"

    @property
    def customer_first(self) -> bool:
        queue = self.desk.config.queues.get(self.callback.queue or "")
        return queue is not None and queue.callback is not None and queue.callback.dial == "customer_first"

    def policy(self) -> RetryPolicy:
        return retry_policy(self.desk.config, self.callback.queue)

    # --- the placeholder --------------------------------------------------------------------------------

    def join(self) -> None:
        cb = self.callback
        if cb.queue is None:
            self.desk.log(
                "warning",
                "call-back has no queue; it waits until its lease lapses",
                callback=cb.id,
                fix="give call-backs a queue that is in the routing file",
            )
            self._end()
            return
        queued = routing_events.ContactQueued(
            contact_id=self.contact_id,
            queue=cb.queue,
            skills=dict(cb.skills) or None,
            priority=cb.priority,
            callback=True,
            caller=cb.number,
            # a caller who chose the call-back while waiting keeps their place for the first attempt
            since=cb.place_since if cb.attempts == 0 else None,
        )
        if not self.desk.route(queued):
            self.desk.log(
                "warning", "routing refused the call-back; it waits until its lease lapses", callback=cb.id
            )
            self._end()
            return
        if cb.expires_at is not None:
            left = max(0.0, (cb.expires_at - self.desk.now).total_seconds())
            self.expiry_timer = self.desk.start_timer(self, f"expiry/{self.contact_id}", left)
        self.desk.log(
            "info", "call-back placeholder queued", callback=cb.id, contact=self.contact_id, queue=cb.queue
        )

    def withdraw(self, reason: str) -> None:
        """The call-back is no longer ours to make: a waiting placeholder leaves the queue, an attempt
        under way is cut short (the store refuses its late outcome); a conversation goes on."""
        if self.phase in ("talking", "over"):
            return
        self.desk.log(
            "info", "call-back taken from this service; dropping it", callback=self.callback.id, reason=reason
        )
        if self.phase in ("queued", "ringing"):
            self._hang_up_agent()
            self.desk.route(routing_events.ContactLeft(self.contact_id, reason=reason))
            self._end()
        elif self.phase == "whisper":
            self._agent_done()
            self._end()
        elif self.phase == "approving":
            if not self.customer_first:
                self._agent_done()
            self.give_up = True  # the store's answer is still settled
        else:  # dialing or holding: the customer's phone is hung up, the attempt ends
            self.give_up = True
            if self.customer_leg is not None:
                self._hang_up(self.customer_leg)
            self._customer_not_reached(None)

    # --- the router's decisions -------------------------------------------------------------------------

    def on_router(self, action: Any) -> None:
        match action:
            case routing_actions.OfferContact():
                self._offered(action)
            case routing_actions.CancelOffer():
                self._offer_cancelled(action.agent_id)
            case routing_actions.Overflow():
                if self.phase == "queued":
                    self.desk.log(
                        "info",
                        "no agent can take the call-back now; it is queued again when its lease lapses",
                        callback=self.callback.id,
                    )
                    self._end()

    def _offered(self, offer: routing_actions.OfferContact) -> None:
        agent = self.desk.config.agents.get(offer.agent_id)
        if agent is None:
            self.desk.route(routing_events.AgentNoAnswer(offer.agent_id, self.contact_id, "failed"))
            return
        if self.phase == "queued":
            self.agent_id = offer.agent_id
            if self.customer_first:
                self._start_dial()
            else:
                self._ring_agent(offer)
        elif self.phase in ("approving", "dialing") and self.customer_first and self.agent_id is None:
            self.agent_id = offer.agent_id  # reserved for the customer being dialed
        elif self.phase == "holding" and self.agent_leg is None:
            self.agent_id = offer.agent_id
            self._ring_agent(offer)
        else:
            self.desk.log(
                "warning",
                "an offer the call-back cannot take now",
                callback=self.callback.id,
                phase=self.phase,
            )
            self.desk.route(routing_events.AgentNoAnswer(offer.agent_id, self.contact_id, "failed"))

    def _offer_cancelled(self, agent_id: str) -> None:
        if agent_id != self.agent_id or self.agent_answered:
            return
        self.agent_id = None
        if self.agent_leg is not None:
            self._hang_up_agent()
        if self.phase == "ringing":
            self.phase = "queued"
        elif self.phase == "holding":
            self._hold()

    # --- the agent's phone --------------------------------------------------------------------------

    def _ring_agent(self, offer: routing_actions.OfferContact) -> None:
        self.desk.emit(act.Publish(self._screen_pop(offer.agent_id)))  # the desktop knows before it rings
        self.desk.cancel_timer(self.hold_timer)
        self.hold_timer = None
        self.agent_answered = False
        if self.phase == "queued":
            self.phase = "ringing"
        self.agent_leg, self.ring_timer = self.desk.ring_agent(
            self, offer, app="callbacks", kind=AGENT_LEG, caller_id=caller_id(self.callback.number, None)
        )

    def _screen_pop(self, agent_id: str) -> dict[str, Any]:
        """Whom the agent calls back and why: the customer record, their reference and note, the queue,
        which attempt this is, and the contact that asked."""
        cb, now = self.callback, self.desk.now
        return {
            "type": "screen_pop",
            "agent": agent_id,
            "contact_id": self.contact_id,
            "caller": cb.number,
            "caller_name": self.customer.name if self.customer is not None else None,
            "customer": customer_card(self.customer),
            "queue": cb.queue,
            "callback": {
                "id": cb.id,
                "requested_by": cb.contact_id,
                "requested_at": cb.requested_at.isoformat(),
                "customer_ref": cb.customer_ref,
                "note": cb.note,
                "attempt": self.attempts + (0 if self.counted else 1),
            },
            "wait": round((now - (cb.place_since or cb.requested_at)).total_seconds(), 3),
            "at": now.isoformat(),
        }

    def _agent_missed(self, reason: str) -> None:
        """The agent's phone did not answer: the router pauses them and offers the call-back to the next."""
        agent_id = self.agent_id
        self._hang_up_agent()
        self.agent_id = None
        if self.phase == "ringing":
            self.phase = "queued"
        elif self.phase == "holding":
            self._hold()
        if agent_id is not None:
            self.desk.route(routing_events.AgentNoAnswer(agent_id, self.contact_id, reason))

    def on_leg_answered(self, channel_id: str) -> None:
        if channel_id == self.customer_leg:
            self._customer_answered()
            return
        if channel_id != self.agent_leg or self.agent_answered or self.phase not in ("ringing", "holding"):
            self.desk.log("info", "a call-back leg answered too late; hanging up", leg=channel_id)
            self._hang_up(channel_id)
            return
        self.desk.cancel_timer(self.ring_timer)
        self.ring_timer = None
        assert self.agent_id is not None
        if not self.desk.route(routing_events.AgentAnswered(self.agent_id, self.contact_id)):
            self.desk.log(
                "warning",
                "routing refused the agent's answer; hanging up the agent",
                callback=self.callback.id,
            )
            self._hang_up_agent()
            self.agent_id = None
            if self.phase == "ringing":
                self.phase = "queued"
            else:
                self._hold()
            return
        self.agent_answered = True
        if self.phase == "holding":
            assert self.customer_leg is not None
            self.desk.emit(act.MusicOff(self.customer_leg))
            self._talk()
            return
        self.phase = "whisper"
        media = whisper(self.callback.number, self.desk.settings)
        self.whisper = self.desk.play(self, channel_id, media, None, "whisper")
        self.whisper_timer = self.desk.start_timer(
            self, f"whisper/{channel_id}", self.desk.settings.whisper_timeout
        )

    def on_playback_ended(self, playback_id: str) -> None:
        if playback_id == self.whisper and self.phase == "whisper":
            self._whispered()

    def _whispered(self) -> None:
        self.whisper = None
        self.desk.cancel_timer(self.whisper_timer)
        self.whisper_timer = None
        self._start_dial()

    # --- the customer's phone -----------------------------------------------------------------------

    def _start_dial(self) -> None:
        self.phase = "approving"
        self.desk.cancel_timer(self.expiry_timer)
        self.expiry_timer = None
        self.desk.emit(act.StartDial(self.callback.id, self.contact_id))

    def dial_refused(self) -> None:
        if self.phase != "approving":
            return
        self.desk.log("info", "call-back no longer ours; not dialing", callback=self.callback.id)
        if self.customer_first:
            self.desk.route(routing_events.ContactLeft(self.contact_id, reason="callback_attempt_over"))
        elif not self.give_up:
            self._agent_done()
        self._end()

    def dial_approved(self, attempts: int) -> None:
        if self.phase != "approving":
            return
        self.attempts = attempts
        self.counted = True
        if self.give_up:
            self._settle("failed")
            if self.customer_first:
                self.desk.route(routing_events.ContactLeft(self.contact_id, reason="callback_attempt_over"))
            self._end()
            return
        settings = self.desk.settings
        leg = self.customer_leg = self.desk.place_leg(self, None)
        self.phase = "dialing"
        self.dial_timer = self.desk.start_timer(self, f"dial/{leg}", settings.dial_timeout + 1)
        self.desk.emit(
            act.Originate(
                channel_id=leg,
                endpoint=settings.dial.format(number=self.callback.number),
                app="callbacks",
                args=(CUSTOMER_LEG, self.contact_id),
                caller_id=self._outbound_caller_id(),
                timeout=math.ceil(settings.dial_timeout),
                variables={"HOTLINE_CONTACT": self.contact_id, "HOTLINE_CALLBACK": self.callback.id},
            )
        )

    def _outbound_caller_id(self) -> str | None:
        queue = self.desk.config.queues.get(self.callback.queue or "")
        if queue is not None and queue.caller_id:
            return queue.caller_id
        return self.desk.settings.caller_id

    def _customer_answered(self) -> None:
        if self.phase != "dialing":
            return
        self.desk.cancel_timer(self.dial_timer)
        self.dial_timer = None
        assert self.customer_leg is not None
        if not self.customer_first:
            self._talk()
            return
        queue = self.desk.config.queues.get(self.callback.queue or "")
        self.desk.emit(act.MusicOn(self.customer_leg, queue.music if queue is not None else "default"))
        self.phase = "holding"
        self.desk.log(
            "info",
            "call-back customer answered; ringing the agent",
            callback=self.callback.id,
            agent=self.agent_id,
        )
        if self.agent_id is not None:
            self._ring_agent(
                routing_actions.OfferContact(self.contact_id, self.agent_id, self._ring_timeout())
            )
        else:
            self._hold()

    def _ring_timeout(self) -> float:
        queue = self.desk.config.queues.get(self.callback.queue or "")
        return queue.ring_timeout if queue is not None else 15.0

    def _hold(self) -> None:
        """The customer waits with music for the router's next offer, at most `hold_limit` seconds."""
        if self.hold_timer is None:
            limit = self.desk.settings.hold_limit
            self.hold_timer = self.desk.start_timer(self, f"hold/{self.contact_id}", limit)

    def _customer_not_reached(self, cause: int | None) -> None:
        """The customer's phone did not answer (or the attempt was cut short): the outcome is stored and
        the agent is free again."""
        outcome = customer_outcome(self.dial_status, cause)
        self.desk.cancel_timer(self.dial_timer)
        self.dial_timer = None
        if self.customer_leg is not None:
            self.desk.forget_channel(self.customer_leg)
            self.customer_leg = None
        self._settle(outcome)
        self.desk.log("info", "call-back not answered", callback=self.callback.id, outcome=outcome)
        if self.customer_first:
            self._hang_up_agent()
            self.desk.route(routing_events.ContactLeft(self.contact_id, reason="callback_attempt_over"))
        else:
            self._agent_done()
        self._end()

    def _customer_left_waiting(self) -> None:
        """Customer first: the customer who answered hung up (or waited too long) before an agent came."""
        if self.customer_leg is not None:
            self._hang_up(self.customer_leg)
            self.customer_leg = None
        self._hang_up_agent()
        self._settle("failed")
        self.desk.route(routing_events.ContactLeft(self.contact_id, reason="callback_attempt_over"))
        self._end()

    # --- talking ------------------------------------------------------------------------------------

    def _talk(self) -> None:
        assert self.agent_leg is not None and self.customer_leg is not None
        self.phase = "talking"
        self.desk.cancel_timer(self.hold_timer)
        self.hold_timer = None
        bridge = self.bridge_id = self.desk.new_id()
        self.desk.emit(
            act.Bridge(bridge, (self.agent_leg, self.customer_leg), f"callback-{self.callback.id}")
        )
        self._settle("answered")
        self.desk.log("info", "call-back bridged", callback=self.callback.id, agent=self.agent_id)

    def _talk_ended(self, by: Literal["agent", "customer"], *, lost: bool = False) -> None:
        data = {"by": "system", "cause": "call lost"} if lost else {"by": by, "cause": f"{by} hung up"}
        self.desk.emit(act.RecordEvent(self.contact_id, "call_ended", data))
        for leg in (self.agent_leg, self.customer_leg):
            if leg is not None:
                self._hang_up(leg)
        self.agent_leg = self.customer_leg = None
        if self.bridge_id is not None:
            self.desk.emit(act.EndBridge(self.bridge_id))
            self.bridge_id = None
        self.desk.route(routing_events.CallEnded(self.contact_id, by="agent" if by == "agent" else "caller"))
        self._end()

    # --- what happens on the legs -------------------------------------------------------------------

    def on_leg_dialed(self, channel_id: str, status: str) -> None:
        if channel_id == self.customer_leg and status:
            self.dial_status = status

    def on_leg_failed(self, channel_id: str, reason: str) -> None:
        if channel_id == self.agent_leg:
            self.desk.log(
                "warning", "could not ring the agent for a call-back", agent=self.agent_id, error=reason
            )
            self._agent_missed("failed")
        elif channel_id == self.customer_leg:
            self.desk.log("warning", "could not dial the customer", callback=self.callback.id, error=reason)
            self.dial_status = None
            self._customer_not_reached(None)

    def on_channel_gone(self, channel_id: str, cause: int | None) -> None:
        if self.phase == "talking":
            if channel_id == self.agent_leg:
                self.desk.forget_channel(channel_id)
                self.agent_leg = None
                self._talk_ended("agent")
            elif channel_id == self.customer_leg:
                self.desk.forget_channel(channel_id)
                self.customer_leg = None
                self._talk_ended("customer")
            return
        if channel_id == self.customer_leg:
            self.desk.forget_channel(channel_id)
            if self.phase == "holding":
                self.customer_leg = None
                self.desk.log(
                    "info", "call-back customer hung up before an agent answered", callback=self.callback.id
                )
                self._customer_left_waiting()
            else:
                self._customer_not_reached(cause)
        elif channel_id == self.agent_leg:
            self.desk.forget_channel(channel_id)
            self.agent_leg = None
            self._agent_leg_gone(cause)

    def on_channel_lost(self, channel_id: str) -> None:
        """A leg found gone once Asterisk could be seen again: a conversation ends as lost; an attempt
        under way is dropped like a withdrawn one (the call-back is made again once its lease lapses)."""
        if self.phase == "talking":
            if channel_id in (self.agent_leg, self.customer_leg):
                by: Literal["agent", "customer"] = "agent" if channel_id == self.agent_leg else "customer"
                self.desk.forget_channel(channel_id)
                if by == "agent":
                    self.agent_leg = None
                else:
                    self.customer_leg = None
                self._talk_ended(by, lost=True)
            return
        if channel_id == self.agent_leg:
            self.desk.forget_channel(channel_id)
            self.agent_leg = None
        elif channel_id == self.customer_leg:
            self.desk.forget_channel(channel_id)
            self.customer_leg = None
        else:
            return
        self.withdraw("lost")

    def _agent_leg_gone(self, cause: int | None) -> None:
        if not self.agent_answered:
            self.desk.cancel_timer(self.ring_timer)
            self.ring_timer = None
            self._agent_missed(ring_reason(cause))
            return
        # the agent hung up after answering, before the customer was on the line
        if self.phase == "whisper":
            self.desk.cancel_timer(self.whisper_timer)
            self.whisper_timer = None
            self._agent_done()
            self.desk.requeue(self.callback, self.customer)  # still ours: the next agent makes it
            self._end()
        elif self.phase == "approving":
            self._agent_done()
            self.give_up = True
        elif self.phase == "dialing":
            self._agent_done()
            if self.customer_leg is not None:
                self._hang_up(self.customer_leg)
            self.dial_status = "CHANUNAVAIL"  # counted as failed: the customer was never put through
            self._customer_not_reached(None)

    def on_timer(self, timer_id: str) -> None:
        if timer_id == self.ring_timer:
            self.ring_timer = None
            self._agent_missed("no answer")
        elif timer_id == self.whisper_timer:
            self.whisper_timer = None
            if self.phase == "whisper":
                if self.whisper is not None:
                    self.desk.emit(act.StopPlayback(self.whisper))
                self._whispered()
        elif timer_id == self.dial_timer:
            self.dial_timer = None
            if self.customer_leg is not None:
                self._hang_up(self.customer_leg)
            if self.dial_status not in DIAL_STATUSES:
                self.dial_status = "NOANSWER"
            self._customer_not_reached(None)
        elif timer_id == self.hold_timer:
            self.hold_timer = None
            self.desk.log("info", "no agent came for the call-back's customer", callback=self.callback.id)
            self._customer_left_waiting()
        elif timer_id == self.expiry_timer:
            self.expiry_timer = None
            if self.phase in ("queued", "ringing"):
                self._hang_up_agent()
                self.desk.route(routing_events.ContactLeft(self.contact_id, reason="expired"))
                self.desk.emit(act.ReleaseCallback(self.callback.id))
                self._end()

    def on_stopping(self) -> None:
        """The service stops: the call-back's legs are hung up (its lease lapses and the store's
        recovery settles an attempt under way); a conversation goes on (the next start adopts it)."""
        if self.phase == "talking":
            return
        for leg in (self.agent_leg, self.customer_leg):
            if leg is not None:
                self._hang_up(leg)
        if self.bridge_id is not None:
            self.desk.emit(act.EndBridge(self.bridge_id))
            self.bridge_id = None

    # --- small tools --------------------------------------------------------------------------------

    def _settle(self, outcome: Outcome) -> None:
        """Exactly one outcome per attempt the store counted."""
        if not self.counted or self.settled:
            return
        self.settled = True
        now = self.desk.now
        facts = Callback(self.callback.requested_at, self.attempts, self.callback.time_zone)
        next_at = self.policy().next_attempt(facts, outcome, now)
        self.desk.emit(act.SettleAttempt(self.callback.id, outcome, next_at, self.agent_id, now))

    def _agent_done(self) -> None:
        """The agent's part is over before a conversation: hung up, and to wrap-up."""
        self._hang_up_agent()
        self.desk.cancel_timer(self.whisper_timer)
        self.whisper_timer = None
        if self.agent_answered:
            self.agent_answered = False
            self.desk.route(routing_events.CallEnded(self.contact_id, by="agent"))

    def _hang_up_agent(self) -> None:
        self.desk.cancel_timer(self.ring_timer)
        self.ring_timer = None
        if self.agent_leg is not None:
            self._hang_up(self.agent_leg)
            self.agent_leg = None

    def _hang_up(self, channel_id: str) -> None:
        self.desk.forget_channel(channel_id)
        self.desk.emit(act.HangUp(channel_id))

    def _end(self) -> None:
        for timer in (
            self.ring_timer,
            self.dial_timer,
            self.hold_timer,
            self.whisper_timer,
            self.expiry_timer,
        ):
            self.desk.cancel_timer(timer)
        self.ring_timer = self.dial_timer = self.hold_timer = self.whisper_timer = self.expiry_timer = None
        self.phase = "over"
        self.desk.party_over(self)
