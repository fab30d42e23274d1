"""The switchboard: everything after a flow hands its caller to a queue, as one pure engine.

`Switchboard.handle(event, now) -> actions`, like `ivr.Session` and `routing.Router`: it never reads a
clock, waits or sends anything. It owns the `Router` (who rings whom) and the parties it serves:
`WaitingCaller`s (what a caller hears, their agent's phone, the bridge) and `CallbackCall`s (a
call-back's placeholder, the agent's and the customer's phones, the attempt's outcome). Each event
goes to the party whose channel, prompt or timer it names; the router's actions go to the party of
their contact. The service feeds events in and carries the actions out over ARI and the store.

The agents' phones are watched here too: a phone counts as able to ring when it is registered and not
busy, unless it is busy with a call of ours (a phone ringing for our own offer is not "busy elsewhere").

Agents' requests (log in, pause ...) are the router's: an illegal one raises `routing.errors.RoutingError`
with nothing changed. Everything else never raises: what the router refuses is logged (a `Log` action).
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from routing import actions as routing_actions
from routing import events as routing_events
from routing.errors import RoutingError
from routing.model import RoutingConfig
from routing.router import AgentView, QueueView, Router
from routing.switchboard import actions as act
from routing.switchboard import events as ev
from routing.switchboard.desk import Party, Settings
from routing.switchboard.dialing import CallbackCall
from routing.switchboard.talk import Talk
from routing.switchboard.waiting import WaitingCaller

#: Device states of a phone busy with a call (another one than ours) or unable to ring.
NOT_REACHABLE = frozenset({"INUSE", "BUSY", "RINGING", "RINGINUSE", "ONHOLD", "UNAVAILABLE", "INVALID"})
#: Device states that only say the phone is busy: a phone busy with our own call stays reachable.
BUSY = frozenset({"INUSE", "BUSY", "RINGING", "RINGINUSE", "ONHOLD"})
#: Contacts whose caller's channel is remembered after they left (late wrap-up events still name it).
CALL_IDS_KEPT = 10_000

_AGENT_REQUESTS = (
    routing_events.AgentLoggedIn,
    routing_events.AgentLoggedOut,
    routing_events.AgentPaused,
    routing_events.AgentResumed,
    routing_events.WrapUpEnded,
    routing_events.SkillsChanged,
)


def endpoint_name(device: str) -> str | None:
    """`PJSIP/agent1` -> `agent1`: the PJSIP endpoint an agent's phone is; None for other devices."""
    technology, sep, name = device.partition("/")
    if sep and technology.upper() == "PJSIP" and name and "/" not in name:
        return name
    return None


def reachable(phone: ev.Phone, *, ours: bool = False) -> bool:
    """Can the phone take a call? Registered and not busy, unless it is busy with our own call."""
    if not phone.registered:
        return False
    if ours and phone.device_state in BUSY:
        return True
    return phone.device_state not in NOT_REACHABLE


@dataclass(slots=True)
class _Leg:
    """A channel the switchboard holds: a leg it placed (to an agent's phone when `agent_id` is set, else
    to a customer's), or a waiting caller's own channel."""

    party: Party
    agent_id: str | None
    placed: bool = True
    adopted: bool = False  # an agent's leg found talking at start-up (not a call we offered)


class Switchboard:
    """The router and every party it serves. Feed events, carry out the actions."""

    def __init__(self, config: RoutingConfig, settings: Settings | None = None) -> None:
        self._config = config
        self._settings = settings or Settings()
        self.router = Router(config)
        self._now = datetime.fromtimestamp(0, UTC)
        self._out: list[act.Action] = []
        self._router_work: deque[routing_actions.Action] = deque()
        self._requeues: list[tuple[ev.DueCallback, ev.Customer | None]] = []
        self._over: list[Party] = []  # parties done in this step, to file away
        self._ids = 0
        self._parties: dict[str, Party] = {}  # contact id -> party
        self._callbacks: dict[str, CallbackCall] = {}  # call-back id -> its party
        self._channels: dict[str, _Leg] = {}  # channel id -> its party (and agent, for a leg to a phone)
        self._playbacks: dict[str, Party] = {}
        self._timers: dict[str, Party] = {}
        self._call_ids: dict[str, str] = {}  # contact id -> the caller's channel
        self._phones: Mapping[str, ev.Phone] | None = None
        self._told: dict[str, bool] = {}  # agent id -> reachable, as the router was last told

    # --- what the service reads ---------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self._now

    @property
    def config(self) -> RoutingConfig:
        return self._config

    @property
    def settings(self) -> Settings:
        return self._settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        """New dialing settings take effect from the next leg placed."""
        self._settings = settings

    def agents(self) -> list[AgentView]:
        return self.router.agents()

    def queues(self, now: datetime) -> list[QueueView]:
        return self.router.queues(now)

    def held_callbacks(self) -> list[str]:
        """The call-backs held now (waiting as placeholders, or being made): their leases are kept. One
        whose attempt is settled (its customer and agent talk) is the store's no more."""
        return [callback_id for callback_id, call in self._callbacks.items() if not call.settled]

    def placeholder(self, callback_id: str) -> str | None:
        """The contact id of the call-back's placeholder, while it is held."""
        call = self._callbacks.get(callback_id)
        return None if call is None else call.contact_id

    def owns(self, channel_id: str) -> bool:
        """Is the channel a waiting caller's, or a leg the switchboard placed?"""
        return channel_id in self._channels

    @property
    def legs(self) -> int:
        """Legs to agents' and customers' phones held now (ringing or talking)."""
        return sum(1 for leg in self._channels.values() if leg.placed)

    def party(self, contact_id: str) -> Party | None:
        return self._parties.get(contact_id)

    def talking(self, contact_id: str) -> bool:
        """Is the contact's caller (or customer) bridged with an agent now?"""
        party = self._parties.get(contact_id)
        if isinstance(party, WaitingCaller):
            return party.phase == "bridged"
        if isinstance(party, CallbackCall):
            return party.phase == "talking"
        return isinstance(party, Talk) and not party.over

    def channels(self) -> list[str]:
        """Every channel held now."""
        return list(self._channels)

    def playbacks(self) -> list[str]:
        """The prompts playing now whose end is awaited."""
        return list(self._playbacks)

    # --- the one entry point ------------------------------------------------------------------------

    def handle(self, event: ev.Event, now: datetime) -> list[act.Action]:
        """What to do now that `event` happened at `now`. Raises `RoutingError` for an agent's request
        the router refuses (nothing done)."""
        self._now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        self._out = []
        if isinstance(event, _AGENT_REQUESTS):
            self._router_work.extend(self.router.handle(event, self._now))
        else:
            self._dispatch(event)
        self._drain()
        out, self._out = self._out, []
        return out

    def _dispatch(self, event: ev.Event) -> None:
        match event:
            case ev.CallerQueued():
                self._caller_queued(event)
            case ev.CallerLeaving():
                party = self._parties.get(event.contact_id)
                if isinstance(party, WaitingCaller):
                    party.leave_for_callback()
                else:
                    self.emit(act.QueueExited(event.contact_id, "callback"))
            case ev.LegAnswered():
                leg = self._channels.get(event.channel_id)
                if leg is None:
                    self.log(
                        "info", "a leg answered that is no longer ours; hanging up", leg=event.channel_id
                    )
                    self.emit(act.HangUp(event.channel_id))
                else:
                    leg.party.on_leg_answered(event.channel_id)
            case ev.LegDialed():
                leg = self._channels.get(event.channel_id)
                if leg is not None:
                    leg.party.on_leg_dialed(event.channel_id, event.status)
            case ev.LegFailed():
                leg = self._channels.get(event.channel_id)
                if leg is not None:
                    leg.party.on_leg_failed(event.channel_id, event.reason)
            case ev.ChannelGone():
                leg = self._channels.get(event.channel_id)
                if leg is not None and event.lost:
                    leg.party.on_channel_lost(event.channel_id)
                elif leg is not None:
                    leg.party.on_channel_gone(event.channel_id, event.cause)
            case ev.TalkFound():
                self._talk_found(event)
            case ev.PlaybackEnded():
                owner = self._playbacks.pop(event.playback_id, None)
                if owner is not None:
                    owner.on_playback_ended(event.playback_id)
            case ev.TimerFired():
                self._timer(event.timer_id)
            case ev.PhoneChanged():
                phones = dict(self._phones or {})
                phones[event.endpoint] = event.phone
                self._phones = phones
                self._tell_reachable(
                    a for a, ac in self._config.agents.items() if endpoint_name(ac.endpoint) == event.endpoint
                )
            case ev.PhonesSeen():
                self._phones = None if event.phones is None else dict(event.phones)
                self._tell_reachable(self._config.agents)
            case ev.Reloaded():
                self._config = event.config
                self._router_work.extend(self.router.reload(event.config, self._now))
                self._tell_reachable(self._config.agents)
            case ev.CallbackDue():
                self._callback_due(event.callback, event.customer)
            case ev.CallbackWithdrawn():
                call = self._callbacks.get(event.callback_id)
                if call is not None:
                    call.withdraw(event.reason)
            case ev.DialApproved():
                call = self._callbacks.get(event.callback_id)
                if call is not None:
                    call.dial_approved(event.attempts)
            case ev.DialRefused():
                call = self._callbacks.get(event.callback_id)
                if call is not None:
                    call.dial_refused()
            case ev.Stopping():
                for party in list(self._parties.values()):
                    party.on_stopping()

    def _drain(self) -> None:
        """Carry the router's actions to their parties until nothing more comes, then file away what
        is over."""
        while True:
            while self._router_work:
                self._router_action(self._router_work.popleft())
            self._file_away()
            if self._router_work:
                continue
            if not self._requeues:
                return
            requeues, self._requeues = self._requeues, []
            for callback, customer in requeues:
                self._callback_due(callback, customer)

    def _file_away(self) -> None:
        done, self._over = self._over, []
        for party in done:
            if self._parties.get(party.contact_id) is not party:
                continue
            del self._parties[party.contact_id]
            if isinstance(party, CallbackCall) and self._callbacks.get(party.callback.id) is party:
                del self._callbacks[party.callback.id]
            for channel_id, leg in list(self._channels.items()):
                if leg.party is party:
                    del self._channels[channel_id]
                    if leg.placed:
                        self.log(
                            "error", "a leg was left up when its contact ended; hanging up", leg=channel_id
                        )
                        self.emit(act.HangUp(channel_id))
            for timer_id, owner in list(self._timers.items()):
                if owner is party:
                    del self._timers[timer_id]
                    self.emit(act.CancelTimer(timer_id))
            for playback_id, owner in list(self._playbacks.items()):
                if owner is party:
                    del self._playbacks[playback_id]
            if isinstance(party, Talk) and party.agent_id is not None:
                self._tell_reachable([party.agent_id])  # the agent's phone is free of the talk

    # --- callers and call-backs ---------------------------------------------------------------------

    def _caller_queued(self, event: ev.CallerQueued) -> None:
        queue = self._config.queues.get(event.queue)
        if queue is None:
            self.log(
                "warning",
                "the flow queues to a queue routing does not have; the call overflows",
                queue=event.queue,
                queues=sorted(self._config.queues),
                fix="add the queue to the routing file or fix the flow's queue name",
            )
            self.emit(act.QueueExited(event.contact_id, "no routing"))
            return
        if event.contact_id in self._parties:
            self.log("warning", "the contact is in a queue already", contact=event.contact_id)
            self.emit(act.QueueExited(event.contact_id, "no routing"))
            return
        caller = WaitingCaller(self, event, event.music or queue.music)
        self._parties[event.contact_id] = caller
        self._remember(event.contact_id, event.channel_id)
        caller.join()

    def _talk_found(self, found: ev.TalkFound) -> None:
        if found.contact_id in self._parties or any(
            channel in self._channels for channel in (found.customer_channel, found.agent_leg)
        ):
            self.log("warning", "the conversation is held already", contact=found.contact_id)
            return
        talk = Talk(self, found)
        self._parties[found.contact_id] = talk
        self._remember(found.contact_id, found.customer_channel)
        talk.join()

    def _callback_due(self, callback: ev.DueCallback, customer: ev.Customer | None) -> None:
        held = self._callbacks.get(callback.id)
        if held is not None and not held.over:
            return  # held already: the store handed it out again
        call = CallbackCall(self, callback, customer, self.new_id())
        self._parties[call.contact_id] = call
        self._callbacks[callback.id] = call
        call.join()

    def _remember(self, contact_id: str, channel_id: str) -> None:
        self._call_ids[contact_id] = channel_id
        while len(self._call_ids) > CALL_IDS_KEPT:
            del self._call_ids[next(iter(self._call_ids))]

    # --- the router ---------------------------------------------------------------------------------

    def _router_action(self, action: routing_actions.Action) -> None:
        match action:
            case routing_actions.RecordEvent():
                party = self._parties.get(action.contact_id)
                if action.type == "queued" and isinstance(party, WaitingCaller):
                    return  # the flow's queue node recorded it already
                self.emit(
                    act.RecordEvent(
                        action.contact_id, action.type, action.data, self._call_ids.get(action.contact_id)
                    )
                )
            case routing_actions.AgentStateChanged():
                self.emit(
                    act.Publish(
                        {
                            "type": "agent_state",
                            "agent": action.agent_id,
                            "state": action.state,
                            "reason": action.reason,
                            "at": self._now.isoformat(),
                        }
                    )
                )
            case routing_actions.StartTimer():
                self.emit(act.StartTimer(f"router/{action.timer_id}", max(0.0, action.seconds)))
            case routing_actions.CancelTimer():
                self.emit(act.CancelTimer(f"router/{action.timer_id}"))
            case (
                routing_actions.OfferContact()
                | routing_actions.CancelOffer()
                | routing_actions.AnnouncePosition()
                | routing_actions.OfferCallback()
                | routing_actions.Overflow()
            ):
                party = self._parties.get(action.contact_id)
                if party is not None:
                    party.on_router(action)
                elif isinstance(action, routing_actions.OfferContact):
                    self.log(
                        "warning",
                        "cannot offer the contact",
                        contact=action.contact_id,
                        agent=action.agent_id,
                    )
                    self.route(routing_events.AgentNoAnswer(action.agent_id, action.contact_id, "failed"))

    def _timer(self, timer_id: str) -> None:
        if timer_id.startswith("router/"):
            self._router_work.extend(
                self._feed_router(routing_events.TimerFired(timer_id.removeprefix("router/")))
            )
            return
        owner = self._timers.pop(timer_id, None)
        if owner is not None:
            owner.on_timer(timer_id)

    def _feed_router(self, event: routing_events.Event) -> list[routing_actions.Action]:
        try:
            return self.router.handle(event, self._now)
        except RoutingError as e:
            self.log("warning", "routing refused an event", event=repr(event), error=str(e))
            return []

    # --- the phones ---------------------------------------------------------------------------------

    def _busy_with_us(self, agent_id: str) -> bool:
        return any(leg.agent_id == agent_id and not leg.adopted for leg in self._channels.values())

    def _talking_adopted(self, agent_id: str) -> bool:
        return any(leg.agent_id == agent_id and leg.adopted for leg in self._channels.values())

    def _tell_reachable(self, agent_ids: Iterable[str]) -> None:
        for agent_id in list(agent_ids):
            agent = self._config.agents.get(agent_id)
            if agent is None:
                continue
            endpoint = endpoint_name(agent.endpoint)
            if self._talking_adopted(agent_id):
                now = False  # still talking in a conversation from before the restart
            elif endpoint is None or self._phones is None:
                now = True  # not a phone AMI watches (a Local test agent), or no AMI at all
            else:
                phone = self._phones.get(endpoint, ev.Phone(registered=False))
                now = reachable(phone, ours=self._busy_with_us(agent_id))
            if self._told.get(agent_id) == now:
                continue
            self._told[agent_id] = now
            self._router_work.extend(self._feed_router(routing_events.DeviceChanged(agent_id, now)))

    # --- Desk: what parties ask of the switchboard --------------------------------------------------

    def emit(self, action: act.Action) -> None:
        self._out.append(action)

    def route(self, event: routing_events.Event) -> bool:
        try:
            done = self.router.handle(event, self._now)
        except RoutingError as e:
            self.log("warning", "routing refused an event", event=repr(event), error=str(e))
            return False
        self._router_work.extend(done)
        return True

    def new_id(self) -> str:
        self._ids += 1
        return hashlib.sha256(f"{self._settings.seed}/{self._ids}".encode()).hexdigest()[:32]

    def place_leg(self, party: Party, agent_id: str | None) -> str:
        leg = self.new_id()
        self._channels[leg] = _Leg(party, agent_id)
        return leg

    def ring_agent(
        self,
        party: Party,
        offer: routing_actions.OfferContact,
        *,
        app: act.App,
        kind: str,
        caller_id: str | None,
    ) -> tuple[str, str]:
        agent = self._config.agents[offer.agent_id]
        leg = self.place_leg(party, offer.agent_id)
        timer = self.start_timer(party, f"ring/{leg}", offer.ring_timeout)
        self.emit(
            act.Originate(
                channel_id=leg,
                endpoint=agent.endpoint,
                app=app,
                args=(kind, party.contact_id),
                caller_id=caller_id,
                # Asterisk's own limit a second later: the ring timer decides, the originate only backs it up
                timeout=math.ceil(offer.ring_timeout) + 1,
                variables={"HOTLINE_CONTACT": party.contact_id, "HOTLINE_AGENT": offer.agent_id},
            )
        )
        return leg, timer

    def hold_channel(self, party: Party, channel_id: str) -> None:
        self._channels[channel_id] = _Leg(party, None, placed=False)

    def hold_leg(self, party: Party, channel_id: str, agent_id: str | None) -> None:
        self._channels[channel_id] = _Leg(party, agent_id, placed=True, adopted=True)
        if agent_id is not None:
            self._tell_reachable([agent_id])

    def forget_channel(self, channel_id: str) -> None:
        self._channels.pop(channel_id, None)

    def play(
        self, party: Party, channel_id: str, media: tuple[str, ...], language: str | None, tag: str
    ) -> str:
        playback_id = f"{channel_id}-{tag}"
        self._playbacks[playback_id] = party
        self.emit(act.Play(channel_id, playback_id, media, language))
        return playback_id

    def start_timer(self, party: Party, name: str, seconds: float) -> str:
        self._timers[name] = party
        self.emit(act.StartTimer(name, max(0.0, seconds)))
        return name

    def cancel_timer(self, timer_id: str | None) -> None:
        if timer_id is not None and self._timers.pop(timer_id, None) is not None:
            self.emit(act.CancelTimer(timer_id))

    def party_over(self, party: Party) -> None:
        self._over.append(party)

    def requeue(self, callback: Any, customer: ev.Customer | None) -> None:
        self._requeues.append((callback, customer))

    def log(self, level: Literal["info", "warning", "error"], message: str, **fields: Any) -> None:
        self.emit(act.Log(level, message, fields))
