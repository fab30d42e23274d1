"""The call-back worker: due call-backs from the store become placeholders in the router, and an agent
who is offered one is rung first, told whom they are calling, then bridged to the customer it dials.

The store (`CallbackStore`) makes each call-back happen once: the worker claims it under a lease, keeps
the lease renewed while the placeholder waits and while it dials, counts the attempt (`start_dial`)
before the customer's phone rings, and settles it with the queue's retry policy (`record_attempt`).
At start-up `recover()` settles what a crashed worker with the same name left behind.

The worker speaks to Asterisk on its own Stasis app (its `ari` client), so its agents' and customers'
legs never reach the call app. The router offers a placeholder like any caller; `RoutingService` has
no caller to bridge for it, so the worker takes the router's `OfferContact` and `CancelOffer` for its
placeholders and hands every other contact's on to the service unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from hotline.asterisk.ari import CHANNEL_END_EVENTS, AriClient, Event, channel_of
from hotline.asterisk.errors import AriError, AriNotFound
from hotline.queueing import CAUSES, RoutingService, caller_id, utc_now
from hotline.store.callbacks import Callback, CallbackStore
from routing import actions, events
from routing.callbacks import Outcome, RetryPolicy
from routing.errors import RoutingError
from routing.model import RoutingConfig

log = structlog.get_logger("hotline.callback_worker")

Clock = Callable[[], datetime]
#: Where the customer is dialed; `{number}` is the call-back's number in E.164 form.
DIAL = "PJSIP/{number}@hotline-trunk"
#: A dial string through a PJSIP trunk: `PJSIP/{number}@<endpoint>`.
_TRUNK = re.compile(r"PJSIP/\{number\}@([A-Za-z0-9_.\-]+)")
#: The prompt of the whisper, before the number's digits.
WHISPER = "sound:to-call-this-number"
#: Q.850 causes of a customer's leg that ended before answering, as call-back outcomes.
OUTCOMES: dict[int, Outcome] = {
    17: "busy",
    16: "no_answer",
    18: "no_answer",
    19: "no_answer",
    21: "no_answer",
}

#: A dial's status (ARI's `Dial` event) as a call-back outcome.
DIAL_STATUSES: dict[str, Outcome] = {
    "BUSY": "busy",
    "NOANSWER": "no_answer",
    "CANCEL": "no_answer",
    "CONGESTION": "failed",
    "CHANUNAVAIL": "failed",
}


def no_caller_id(queue: str | None) -> str | None:
    return None


def queue_policy(config: RoutingConfig, queue: str | None) -> RetryPolicy:
    """The queue's retry policy from the routing file; the default one for a queue without its own."""
    qc = config.queues.get(queue or "")
    return qc.callback.retry_policy() if qc is not None and qc.callback is not None else RetryPolicy()


def whisper(callback: Callback) -> list[str]:
    """What the agent hears before the customer is dialed: the number about to be called."""
    return [WHISPER, "digits:" + "".join(c for c in callback.number if c.isdigit())]


@dataclass
class Held:
    """A call-back this worker holds: its placeholder in the router, and the legs of the attempt."""

    callback: Callback
    contact_id: str
    agent_id: str | None = None
    agent_leg: str | None = None
    customer_leg: str | None = None
    bridge_id: str | None = None
    cancelled: bool = False
    taken: bool = False  # cancelled or rescheduled meanwhile: no longer this worker's to make
    task: asyncio.Task[None] | None = None
    #: the router's offer not yet served (an agent reserved for this call-back), and its signal
    offer: actions.OfferContact | None = None
    offered: asyncio.Event = field(default_factory=asyncio.Event)


class CallbackWorker:
    """Claims due call-backs and dials them agent-first. `start()` before use, `close()` at the end."""

    def __init__(
        self,
        callbacks: CallbackStore,
        routing: RoutingService,
        ari: AriClient,
        *,
        owner: str,
        policy_for: Callable[[str | None], RetryPolicy] | None = None,
        clock: Clock = utc_now,
        poll: float = 1.0,
        lease: float = 60.0,
        dial: str = DIAL,
        caller_id_for: Callable[[str | None], str | None] = no_caller_id,
        dial_timeout: float = 30.0,
        whisper: Callable[[Callback], list[str]] = whisper,
        whisper_timeout: float = 30.0,
        hold_limit: float = 60.0,
    ) -> None:
        self.callbacks = callbacks
        self.routing = routing
        self.ari = ari
        self.owner = owner
        self.policy_for = policy_for or (lambda queue: queue_policy(routing.config, queue))
        self.hold_limit = hold_limit
        self.poll = poll
        self.lease = lease
        self.dial = dial
        self.caller_id_for = caller_id_for
        self.dial_timeout = dial_timeout
        self.whisper = whisper
        self.whisper_timeout = whisper_timeout
        self._clock = clock
        self._held: dict[str, Held] = {}  # placeholder contact id -> the call-back
        self._talking: dict[str, Held] = {}  # bridge id -> a call-back whose agent and customer talk
        self._legs: dict[str, asyncio.Queue[Event]] = {}  # our leg's channel id -> its events
        self._loop_task: asyncio.Task[None] | None = None
        self._release: Callable[[], None] | None = None
        self._wake = asyncio.Event()

    @property
    def held(self) -> list[Callback]:
        """The call-backs this worker holds now (waiting as placeholders or being dialed)."""
        return [h.callback for h in self._held.values()]

    # --- start and stop -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Settle what this worker's name left behind, take the placeholders' offers, start the loop."""
        now = self._clock()
        recovered = await self.callbacks.recover(
            self.owner, now, lambda cb: self.policy_for(cb.queue).next_attempt(cb, "failed", now)
        )
        for cb in recovered:
            log.info("call-back recovered after a restart", callback=cb.id, state=cb.state)
        self._release = self.routing.take_offers(self)
        self.ari.start(self.handle_event)
        try:
            await self.ari.wait_connected(5)
        except TimeoutError:
            log.warning("call-backs wait for Asterisk; the ARI socket reconnects", app=self.ari.app)
        else:
            await self._hang_up_leftovers()
            await self._check_dial()
        self._loop_task = asyncio.create_task(self._run(), name="hotline-callbacks")

    async def _check_dial(self) -> None:
        """Say at start when the customers' dial string names a PJSIP trunk Asterisk does not have:
        otherwise every call-back would ring an agent and then fail to reach its customer."""
        trunk = _TRUNK.fullmatch(self.dial)
        if trunk is None:
            return
        try:
            await self.ari.get(f"/endpoints/PJSIP/{trunk.group(1)}")
        except AriNotFound:
            log.warning(
                "call-backs cannot reach customers: Asterisk has no such PJSIP endpoint",
                dial=self.dial,
                endpoint=trunk.group(1),
                fix="define the trunk in pjsip.conf (dialplan/pjsip.conf has an example) or set callbacks.dial",
            )
        except AriError as e:
            log.info("could not check the call-backs' trunk", dial=self.dial, error=str(e))

    async def _hang_up_leftovers(self) -> None:
        """Legs in our app from before a restart belong to attempts `recover()` has settled: a customer
        who answered one now would reach nobody, so they are hung up."""
        try:
            app = await self.ari.get(f"/applications/{self.ari.app}")
        except AriError as e:
            log.info("could not list the call-backs' leftover legs", error=str(e))
            return
        for channel_id in app.get("channel_ids") or []:
            if channel_id not in self._legs:
                log.info("hanging up a call-back leg left from before a restart", channel=channel_id)
                await self._hang_up(channel_id)

    async def close(self) -> None:
        """Stop claiming; hang up the legs still up (their call-backs' leases lapse and are recovered)."""
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for held in [*self._held.values(), *self._talking.values()]:
            if held.task is not None:
                held.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await held.task
            await self._hang_up(held.agent_leg, held.customer_leg)
            if held.bridge_id is not None:
                with contextlib.suppress(AriError):
                    await self.ari.destroy_bridge(held.bridge_id)
        self._held.clear()
        self._talking.clear()
        if self._release is not None:
            self._release()
            self._release = None
        await self.ari.close()

    # --- the router's offers of our placeholders (RoutingService.take_offers) -------------------------

    def owns(self, contact_id: str) -> bool:
        return contact_id in self._held

    async def offer(self, action: actions.OfferContact) -> None:
        held = self._held.get(action.contact_id)
        if held is None:
            return
        held.offer = action
        held.offered.set()
        if held.task is None or held.task.done():
            held.task = asyncio.create_task(self._attempt(held), name=f"callback-{held.callback.id}")

    async def cancel(self, contact_id: str, agent_id: str) -> None:
        held = self._held.get(contact_id)
        if held is None:
            return
        if held.offer is not None and held.offer.agent_id == agent_id:
            held.offer = None
            held.offered.clear()
        if held.agent_id == agent_id and held.bridge_id is None:
            held.cancelled = True
            if held.customer_leg is None or held.agent_leg is not None:
                await self._hang_up(held.agent_leg)

    # --- the loop -----------------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for due call-backs now (one was just requested), not at the next poll."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except Exception:
                log.exception("call-back round failed; trying again", owner=self.owner)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)

    async def tick(self) -> None:
        """One round: expire, renew what we hold, claim what is due and queue its placeholder."""
        now = self._clock()
        await self._release_expired(now)
        for cb in await self.callbacks.expire(now):
            log.info("call-back expired", callback=cb.id)
        await self._renew(now)
        await self._drop_taken()
        for cb in await self.callbacks.claim_due(self.owner, now, self.lease):
            await self._queue(Held(cb, uuid.uuid4().hex))

    async def _release_expired(self, now: datetime) -> None:
        """Placeholders whose call-back expired while they waited leave the queue; `expire()` closes them."""
        for contact_id, held in list(self._held.items()):
            expires = held.callback.expires_at
            if expires is None or expires > now or held.task is not None or held.customer_leg is not None:
                continue
            del self._held[contact_id]
            with contextlib.suppress(RoutingError):
                await self.routing.submit(events.ContactLeft(contact_id, reason="expired"))
            await self.callbacks.release(held.callback.id, self.owner, now)

    async def _renew(self, now: datetime) -> None:
        for contact_id, held in list(self._held.items()):
            until = held.callback.lease_until
            if until is not None and until - now > timedelta(seconds=self.lease / 2):
                continue
            renewed = await self.callbacks.renew(held.callback.id, self.owner, now, self.lease)
            if renewed is not None:
                held.callback = renewed
                continue
            if held.customer_leg is not None or held.task is not None:
                continue  # the attempt's own outcome settles it (and is refused if it is no longer ours)
            log.info("call-back no longer ours; its placeholder leaves the queue", callback=held.callback.id)
            del self._held[contact_id]
            with contextlib.suppress(RoutingError):
                await self.routing.submit(events.ContactLeft(contact_id, reason="cancelled"))

    async def _drop_taken(self) -> None:
        """Call-backs taken from this worker meanwhile (an agent or supervisor cancelled or rescheduled
        them): a waiting placeholder leaves the queue, an attempt under way is hung up."""
        if not self._held:
            return
        leases = await self.callbacks.leases([h.callback.id for h in self._held.values()])
        for contact_id, held in list(self._held.items()):
            state, owner = leases.get(held.callback.id, (None, None))
            if (owner == self.owner and state in ("queued", "dialing")) or held.bridge_id or held.taken:
                continue
            log.info("call-back taken from this worker; dropping it", callback=held.callback.id, state=state)
            held.taken = True
            if held.customer_leg is not None:
                await self._hang_up(held.customer_leg)  # the attempt ends; its late outcome is refused
                continue
            with contextlib.suppress(RoutingError):
                await self.routing.submit(events.ContactLeft(contact_id, reason="cancelled"))
            self._held.pop(contact_id, None)
            await self._hang_up(held.agent_leg)

    async def _queue(self, held: Held) -> None:
        cb = held.callback
        if cb.queue is None:
            log.warning(
                "call-back has no queue; it waits until its lease lapses",
                callback=cb.id,
                fix="give call-backs a queue that is in the routing file",
            )
            return
        self._held[held.contact_id] = held
        queued = events.ContactQueued(
            contact_id=held.contact_id,
            queue=cb.queue,
            skills=dict(cb.skills) or None,
            priority=cb.priority,
            callback=True,
            caller=cb.number,
            # a caller who chose the call-back while waiting keeps their place for the first attempt
            since=cb.place_since if cb.attempts == 0 else None,
        )
        try:
            done = await self.routing.submit(queued)
        except RoutingError as e:
            del self._held[held.contact_id]
            log.warning("routing refused the call-back; it waits until its lease lapses", error=str(e))
            return
        if any(isinstance(a, actions.Overflow) and a.contact_id == held.contact_id for a in done):
            self._held.pop(held.contact_id, None)
            log.info(
                "no agent can take the call-back now; it is queued again when its lease lapses",
                callback=cb.id,
            )
            return
        log.info("call-back placeholder queued", callback=cb.id, contact=held.contact_id, queue=cb.queue)

    # --- one attempt ----------------------------------------------------------------------------------

    def _dial_order(self, queue: str | None) -> str:
        qc = self.routing.config.queues.get(queue or "")
        return qc.callback.dial if qc is not None and qc.callback is not None else "agent_first"

    def _outbound_caller_id(self, queue: str | None) -> str | None:
        qc = self.routing.config.queues.get(queue or "")
        if qc is not None and qc.caller_id:
            return qc.caller_id
        return self.caller_id_for(queue)

    async def _attempt(self, held: Held) -> None:
        """Serve the router's offers for the placeholder until its attempt is settled: an agent who
        misses is followed by the router's next offer, taken here in turn."""
        try:
            while self._held.get(held.contact_id) is held:
                offer = held.offer
                if offer is None:
                    if held.customer_leg is None or held.bridge_id is not None:
                        return
                    offer = await self._hold_customer(held)
                    if offer is None:
                        return
                held.offer = None
                held.offered.clear()
                if held.customer_leg is not None:
                    await self._ring_for_customer(held, offer)
                elif self._dial_order(held.callback.queue) == "customer_first":
                    await self._customer_first(held, offer)
                else:
                    await self._ring_agent(held, offer)
        except Exception:
            log.exception("call-back attempt failed", callback=held.callback.id)
        finally:
            if held.task is asyncio.current_task():
                held.task = None

    # --- customer first: the customer is dialed, then an agent rung while they hear music ----------------

    async def _customer_first(self, held: Held, offer: actions.OfferContact) -> None:
        cb = held.callback
        held.agent_id = offer.agent_id  # reserved: the router keeps them for this call-back meanwhile
        held.cancelled = False
        dialing = await self.callbacks.start_dial(
            cb.id, self.owner, held.contact_id, self._clock(), self.lease
        )
        if dialing is None:
            log.info("call-back no longer ours; not dialing", callback=cb.id)
            self._held.pop(held.contact_id, None)
            await self._leave(held)
            return
        held.callback = dialing
        leg, outcome = await self._call_customer(held)
        if outcome is not None:
            await self._settle_unanswered(held, outcome)
            return
        qc = self.routing.config.queues.get(cb.queue or "")
        with contextlib.suppress(AriError):
            await self.ari.post(f"/channels/{leg}/moh", mohClass=qc.music if qc is not None else "default")
        log.info("call-back customer answered; ringing the agent", callback=cb.id, agent=offer.agent_id)
        if held.cancelled:
            return  # the agent was taken away while the customer's phone rang: wait for the next offer
        await self._ring_for_customer(held, offer)

    async def _ring_for_customer(self, held: Held, offer: actions.OfferContact) -> None:
        """Ring `offer`'s agent for the customer who answered and waits; bridge them on answer."""
        cb, customer = held.callback, held.customer_leg
        assert customer is not None
        leg = await self._call_agent(held, offer)
        if leg is None:
            return
        answered = asyncio.ensure_future(
            self._next(leg, offer.ring_timeout, "StasisStart", *CHANNEL_END_EVENTS)
        )
        gone = asyncio.ensure_future(self._next(customer, None, *CHANNEL_END_EVENTS))
        await asyncio.wait({answered, gone}, return_when=asyncio.FIRST_COMPLETED)
        if gone.done():
            answered.cancel()
            await self._hang_up(leg)
            self._forget(leg)
            held.agent_leg = None
            log.info("call-back customer hung up before an agent answered", callback=cb.id)
            await self._settle_unanswered(held, "failed", hang_up=False)
            return
        gone.cancel()
        event = answered.result()
        if not await self._agent_took(held, offer, leg, event):
            return
        with contextlib.suppress(AriError):
            await self.ari.delete(f"/channels/{customer}/moh")
        await self._bridge(held, leg, customer, offer.agent_id)

    async def _hold_customer(self, held: Held) -> actions.OfferContact | None:
        """The customer waits with music for the router's next offer: that offer, or None when they hung
        up or waited `hold_limit` seconds (the attempt is then settled)."""
        customer = held.customer_leg
        assert customer is not None
        offered = asyncio.ensure_future(held.offered.wait())
        gone = asyncio.ensure_future(self._next(customer, self.hold_limit, *CHANNEL_END_EVENTS))
        await asyncio.wait({offered, gone}, return_when=asyncio.FIRST_COMPLETED)
        if offered.done() and held.offer is not None:
            gone.cancel()
            return held.offer
        offered.cancel()
        log.info("no agent came for the call-back's customer", callback=held.callback.id)
        await self._settle_unanswered(held, "failed", hang_up=gone.done() and gone.result() is None)
        return None

    async def _settle_unanswered(self, held: Held, outcome: Outcome, *, hang_up: bool = True) -> None:
        """The attempt ends without agent and customer talking: the retry policy decides what next, and
        the placeholder leaves the router (its reserved agent is free again, not paused)."""
        cb, leg = held.callback, held.customer_leg
        if hang_up:
            await self._hang_up(leg)
        self._forget(leg)
        held.customer_leg = None
        now = self._clock()
        next_at = self.policy_for(cb.queue).next_attempt(cb, outcome, now)
        settled = await self.callbacks.record_attempt(cb.id, self.owner, outcome, next_at, now, held.agent_id)
        log.info("call-back not answered", callback=cb.id, outcome=outcome, state=settled and settled.state)
        self._held.pop(held.contact_id, None)
        await self._leave(held)

    async def _leave(self, held: Held) -> None:
        with contextlib.suppress(RoutingError):
            await self.routing.submit(events.ContactLeft(held.contact_id, reason="callback_attempt_over"))

    async def _call_customer(self, held: Held) -> tuple[str, Outcome | None]:
        """Dial the customer: their leg and None when they answered, else how the attempt ended."""
        cb = held.callback
        leg = held.customer_leg = uuid.uuid4().hex
        self._legs[leg] = asyncio.Queue()
        try:
            await self.ari.originate(
                self.dial.format(number=cb.number),
                self.ari.app,
                leg,
                app_args=f"customer,{held.contact_id}",
                caller_id=self._outbound_caller_id(cb.queue),
                timeout=math.ceil(self.dial_timeout),
                variables={"HOTLINE_CONTACT": held.contact_id, "HOTLINE_CALLBACK": cb.id},
            )
        except AriError as e:
            log.warning("could not dial the customer", callback=cb.id, error=str(e))
            return leg, "failed"
        return leg, await self._customer_answer(leg)

    async def _call_agent(self, held: Held, offer: actions.OfferContact) -> str | None:
        """Ring `offer`'s agent, showing the customer's number, with a screen pop saying why: their leg,
        or None when it could not be rung (the router is told the agent missed it)."""
        agent = self.routing.config.agents.get(offer.agent_id)
        if agent is not None:
            await self._screen_pop(held, offer.agent_id)
        leg = held.agent_leg = uuid.uuid4().hex
        held.agent_id = offer.agent_id
        held.cancelled = False
        self._legs[leg] = asyncio.Queue()
        if agent is None:
            await self._agent_missed(held, "failed")
            return None
        try:
            await self.ari.originate(
                agent.endpoint,
                self.ari.app,
                leg,
                app_args=f"callback,{held.contact_id}",
                caller_id=caller_id(held.callback.number, None),
                timeout=math.ceil(offer.ring_timeout) + 1,
                variables={"HOTLINE_CONTACT": held.contact_id, "HOTLINE_AGENT": offer.agent_id},
            )
        except AriError as e:
            log.warning("could not ring the agent for a call-back", agent=offer.agent_id, error=str(e))
            await self._agent_missed(held, "failed")
            return None
        return leg

    async def _screen_pop(self, held: Held, agent_id: str) -> None:
        """The agent's desktop shows whom they call back and why: the customer record, the customer's
        reference and note, the queue, which attempt this is, and the contact that asked."""
        cb = held.callback
        customer = await self.routing.customer_of(cb.number)
        now = self._clock()
        self.routing.publish(
            {
                "type": "screen_pop",
                "agent": agent_id,
                "contact_id": held.contact_id,
                "caller": cb.number,
                "caller_name": customer.name if customer is not None else None,
                "customer": None
                if customer is None
                else {"id": customer.id, "name": customer.name, "attributes": dict(customer.attributes)},
                "queue": cb.queue,
                "callback": {
                    "id": cb.id,
                    "requested_by": cb.contact_id,
                    "requested_at": cb.requested_at.isoformat(),
                    "customer_ref": cb.customer_ref,
                    "note": cb.note,
                    "attempt": cb.attempts + (1 if cb.state != "dialing" else 0),
                },
                "wait": round((now - (cb.place_since or cb.requested_at)).total_seconds(), 3),
                "at": now.isoformat(),
            }
        )

    async def _agent_took(
        self, held: Held, offer: actions.OfferContact, leg: str, event: Event | None
    ) -> bool:
        """Did the agent's leg answer (`event` is its StasisStart)? The router hears either way."""
        if event is None or event["type"] != "StasisStart":
            await self._hang_up(leg)
            cause = None if event is None else event.get("cause")
            reason = CAUSES.get(cause, "failed") if isinstance(cause, int) and cause else "no answer"
            await self._agent_missed(held, reason)
            return False
        try:
            await self.routing.submit(events.AgentAnswered(offer.agent_id, held.contact_id))
        except RoutingError as e:
            log.warning("routing refused the agent's answer; hanging up the agent", error=str(e))
            self._forget(leg)
            await self._hang_up(leg)
            return False
        return True

    async def _ring_agent(self, held: Held, offer: actions.OfferContact) -> None:
        leg = await self._call_agent(held, offer)
        if leg is None:
            return
        event = await self._next(leg, offer.ring_timeout, "StasisStart", *CHANNEL_END_EVENTS)
        if not await self._agent_took(held, offer, leg, event):
            return
        if not await self._whisper(held, leg):
            await self._agent_ended(held, by="agent")
            if self._held.pop(held.contact_id, None) is held:  # still ours: the next agent makes it
                await self._queue(Held(held.callback, uuid.uuid4().hex))
            return
        await self._dial_customer(held, leg)

    async def _agent_missed(self, held: Held, reason: str) -> None:
        """The agent did not take the call-back: the router pauses them and offers it to the next."""
        self._forget(held.agent_leg)
        agent_id, held.agent_id, held.agent_leg = held.agent_id, None, None
        if held.cancelled or agent_id is None:
            return
        with contextlib.suppress(RoutingError):
            await self.routing.submit(events.AgentNoAnswer(agent_id, held.contact_id, reason))

    async def _whisper(self, held: Held, leg: str) -> bool:
        """Tell the agent whom they are calling; False when the agent hung up meanwhile."""
        try:
            await self.ari.play(leg, self.whisper(held.callback), playback_id=f"{leg}-whisper")
        except AriError as e:
            log.info("no whisper for the agent", leg=leg, error=str(e))
            return True
        event = await self._next(leg, self.whisper_timeout, "PlaybackFinished", *CHANNEL_END_EVENTS)
        return event is None or event["type"] == "PlaybackFinished"

    async def _dial_customer(self, held: Held, agent_leg: str) -> None:
        cb, agent_id = held.callback, held.agent_id
        now = self._clock()
        dialing = await self.callbacks.start_dial(cb.id, self.owner, held.contact_id, now, self.lease)
        if dialing is None:
            log.info("call-back no longer ours; not dialing", callback=cb.id)
            del self._held[held.contact_id]
            await self._hang_up(agent_leg)
            await self._agent_ended(held, by="agent")
            return
        held.callback = dialing
        leg, outcome = await self._call_customer(held)
        if outcome is None:
            await self._bridge(held, agent_leg, leg, agent_id)
            return
        await self._hang_up(leg)
        self._forget(leg)
        now = self._clock()
        next_at = self.policy_for(cb.queue).next_attempt(dialing, outcome, now)
        settled = await self.callbacks.record_attempt(cb.id, self.owner, outcome, next_at, now, agent_id)
        log.info("call-back not answered", callback=cb.id, outcome=outcome, state=settled and settled.state)
        self._held.pop(held.contact_id, None)
        await self._hang_up(agent_leg)
        await self._agent_ended(held, by="agent")

    async def _customer_answer(self, leg: str) -> Outcome | None:
        """None when the customer answered; else how the attempt ended, from the dial's status (a
        Local channel's end carries no cause) or the leg's hang-up cause."""
        status: str | None = None
        deadline = asyncio.get_running_loop().time() + self.dial_timeout + 1
        while True:
            left = deadline - asyncio.get_running_loop().time()
            event = await self._next(leg, max(0.0, left), "StasisStart", "Dial", *CHANNEL_END_EVENTS)
            if event is None:
                return "no_answer"
            if event["type"] == "StasisStart":
                return None
            if event["type"] == "Dial":
                status = str(event.get("dialstatus") or "") or status
                continue
            if status is not None and status in DIAL_STATUSES:
                return DIAL_STATUSES[status]
            cause = event.get("cause")
            return OUTCOMES.get(cause, "failed") if isinstance(cause, int) and cause else "failed"

    async def _bridge(self, held: Held, agent_leg: str, customer_leg: str, agent_id: str | None) -> None:
        bridge_id = held.bridge_id = uuid.uuid4().hex
        try:
            await self.ari.create_bridge(bridge_id, "mixing", name=f"callback-{held.callback.id}")
            await self.ari.add_channel(bridge_id, agent_leg)
            await self.ari.add_channel(bridge_id, customer_leg)
        except AriError as e:
            log.warning("could not bridge agent and customer", callback=held.callback.id, error=str(e))
        await self.callbacks.record_attempt(
            held.callback.id, self.owner, "answered", None, self._clock(), agent_id
        )
        self._held.pop(held.contact_id, None)
        self._talking[bridge_id] = held  # so close() still hangs up and clears this call
        log.info("call-back bridged", callback=held.callback.id, agent=agent_id)
        ended = await self._either_ends(agent_leg, customer_leg)
        by = "agent" if ended == agent_leg else "customer"
        self.routing.record(held.contact_id, "call_ended", {"by": by, "cause": f"{by} hung up"})
        await self._hang_up(agent_leg, customer_leg)
        with contextlib.suppress(AriError):
            await self.ari.destroy_bridge(bridge_id)
        held.bridge_id = None
        self._talking.pop(bridge_id, None)
        await self._agent_ended(held, by="agent" if ended == agent_leg else "caller")

    async def _either_ends(self, *legs: str) -> str:
        waits = {asyncio.ensure_future(self._next(leg, None, *CHANNEL_END_EVENTS)): leg for leg in legs}
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return waits[next(iter(done))]

    async def _agent_ended(self, held: Held, *, by: str) -> None:
        """The contact is over for the agent: they go to wrap-up."""
        for leg in (held.agent_leg, held.customer_leg):
            self._forget(leg)
        with contextlib.suppress(RoutingError):
            await self.routing.submit(events.CallEnded(held.contact_id, by=by))

    # --- our legs' events ------------------------------------------------------------------------------

    async def handle_event(self, event: Event) -> None:
        """An ARI event of the worker's app: kept for the attempt waiting on that leg."""
        channel_id = channel_of(event)
        queue = self._legs.get(channel_id) if channel_id is not None else None
        if queue is not None:
            queue.put_nowait(event)

    async def _next(self, leg: str, timeout: float | None, *kinds: str) -> Event | None:
        """The leg's next event of one of `kinds` (a leg that is gone counts as ended); None on timeout."""
        queue = self._legs.get(leg)
        if queue is None:
            return {"type": "ChannelDestroyed", "cause": 0}

        async def wait() -> Event:
            while True:
                event = await queue.get()
                if event["type"] in kinds:
                    return event

        waiting: Awaitable[Event] = wait()
        try:
            return await asyncio.wait_for(waiting, timeout)
        except TimeoutError:
            return None

    def _forget(self, leg: str | None) -> None:
        if leg is not None:
            self._legs.pop(leg, None)

    async def _hang_up(self, *legs: str | None) -> None:
        for leg in legs:
            if leg is not None:
                with contextlib.suppress(AriError):
                    await self.ari.hangup(leg)
