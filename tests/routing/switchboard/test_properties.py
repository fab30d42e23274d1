"""Properties of the switchboard under any order of events hypothesis can think of.

A small model of Asterisk and the store (`World`) carries out the switchboard's actions the way the
service does and turns them into the events that would follow (a hung-up channel leaves, a stopped
prompt ends, a refused prompt ends at once). Hypothesis then picks what the people do, step by step:
callers arrive and hang up or ask for a call-back, agents log in, pause, answer, let it ring or hang
up, customers answer or are busy, the store approves or refuses an attempt, call-backs are withdrawn,
phones register, time passes and timers fire. After every step:

- no caller is left in silence: a caller in the queue hears music or a prompt, a caller an agent
  answered is bridged with that agent;
- no agent's phone is rung twice at once;
- every call-back attempt ends in at most one outcome; and once everyone has hung up and every timer
  has run, in exactly one;
- nothing is left behind: no leg up, no party held, once everyone is gone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing import events as routing_events
from routing.errors import RoutingError
from routing.events import CallbackOffering
from routing.switchboard import Settings, Switchboard
from routing.switchboard import actions as act
from routing.switchboard import events as ev
from support.switchboard_helpers import T0, DueCallback, config

AGENTS = ("ann", "bob", "cid")


def routing(customer_first: bool) -> Any:
    return config(
        {
            "ann": {"skills": {"support": 5}, "wrapup": 5},
            "bob": {"skills": {"support": 3, "sales": 4}, "wrapup": 0},
            "cid": {"skills": {"sales": 5}, "wrapup": 2, "endpoint": "Local/cid@agents"},
        },
        {
            "support": {
                "skills": {"support": 1},
                "announce_every": 15,
                "ring_timeout": 8,
                "max_wait": 120,
                "callback": {"dial": "customer_first" if customer_first else "agent_first", "attempts": 2},
            },
            "sales": {"skills": {"sales": 1}, "announce_every": 0, "ring_timeout": 5, "max_wait": 60},
        },
    )


@dataclass
class Channel:
    kind: str  # caller, agent, customer
    answered: bool
    agent: str | None = None
    music: bool = False
    prompt: str | None = None
    bridge: str | None = None


@dataclass
class World:
    """Asterisk and the store as the switchboard sees them, and what the flows were told."""

    board: Switchboard
    t: float = 0.0
    channels: dict[str, Channel] = field(default_factory=dict)
    timers: dict[str, float] = field(default_factory=dict)
    pending: list[ev.Event] = field(default_factory=list)  # events on their way to the switchboard
    queued: set[str] = field(default_factory=set)  # contacts whose flow handed them to a queue
    answered: set[str] = field(default_factory=set)  # ... and was told an agent has them
    contact_channel: dict[str, str] = field(default_factory=dict)
    bridges: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dials: list[str] = field(default_factory=list)  # StartDial asked, not yet answered
    attempts: Counter[str] = field(default_factory=Counter)
    approved: Counter[str] = field(default_factory=Counter)
    settled: Counter[str] = field(default_factory=Counter)
    callbacks: int = 0
    callers: int = 0

    def feed(self, event: ev.Event) -> None:
        try:
            out = self.board.handle(event, T0 + timedelta(seconds=self.t))
        except RoutingError:
            return  # an agent's request the router refused: nothing was done
        for action in out:
            self.carry_out(action)
        self.check()

    def carry_out(self, action: act.Action) -> None:
        match action:
            case act.MusicOn():
                if action.channel_id in self.channels:
                    self.channels[action.channel_id].music = True
            case act.MusicOff():
                if action.channel_id in self.channels:
                    self.channels[action.channel_id].music = False
            case act.Play():
                channel = self.channels.get(action.channel_id)
                if channel is None:
                    self.pending.append(ev.PlaybackEnded(action.playback_id))  # Asterisk refused it
                else:
                    channel.prompt = action.playback_id
            case act.StopPlayback():
                for channel in self.channels.values():
                    if channel.prompt == action.playback_id:
                        channel.prompt = None
                        self.pending.append(ev.PlaybackEnded(action.playback_id))
            case act.Originate():
                agent = action.variables.get("HOTLINE_AGENT")
                if agent is not None:
                    busy = [c for c in self.channels.values() if c.agent == agent]
                    assert not busy, f"agent {agent} rung while a leg of ours to their phone is up"
                kind = "agent" if agent is not None else "customer"
                assert action.channel_id not in self.channels
                self.channels[action.channel_id] = Channel(kind, answered=False, agent=agent)
            case act.HangUp():
                if self.channels.pop(action.channel_id, None) is not None:
                    self.pending.append(ev.ChannelGone(action.channel_id, 16))
            case act.Bridge():
                assert all(c in self.channels or self._gone_soon(c) for c in action.channel_ids)
                self.bridges[action.bridge_id] = action.channel_ids
                for c in action.channel_ids:
                    if c in self.channels:
                        self.channels[c].bridge = action.bridge_id
            case act.EndBridge():
                for c in self.bridges.pop(action.bridge_id, ()):
                    if c in self.channels:
                        self.channels[c].bridge = None
            case act.QueueAnswered():
                assert action.contact_id in self.queued
                self.answered.add(action.contact_id)
            case act.QueueExited():
                assert action.contact_id in self.queued
                self.queued.discard(action.contact_id)
                self.answered.discard(action.contact_id)
            case act.StartTimer():
                self.timers[action.timer_id] = self.t + action.seconds
            case act.CancelTimer():
                self.timers.pop(action.timer_id, None)
            case act.StartDial():
                self.dials.append(action.callback_id)
            case act.SettleAttempt():
                self.settled[action.callback_id] += 1
                assert self.settled[action.callback_id] <= self.approved[action.callback_id], (
                    f"call-back {action.callback_id} settled {self.settled[action.callback_id]} times for "
                    f"{self.approved[action.callback_id]} attempts"
                )

    def _gone_soon(self, channel_id: str) -> bool:
        return any(isinstance(e, ev.ChannelGone) and e.channel_id == channel_id for e in self.pending)

    def check(self) -> None:
        for contact in self.queued:
            channel_id = self.contact_channel[contact]
            channel = self.channels.get(channel_id)
            if channel is None:
                continue  # hung up: the switchboard hears it when the event arrives
            if contact in self.answered:
                if channel.bridge is None:
                    # the agent hung up: the caller is being hung up too
                    assert self._gone_soon(channel_id) or not self.board.owns(channel_id), "caller left alone"
                continue
            assert channel.music or channel.prompt is not None, f"caller {contact} left in silence"
        ringing: Counter[str] = Counter(c.agent for c in self.channels.values() if c.agent is not None)
        assert all(n == 1 for n in ringing.values()), f"an agent rung twice at once: {ringing}"

    # --- what people (and the store) do ------------------------------------------------------------

    def caller_arrives(self, queue: str, offer: bool) -> None:
        self.callers += 1
        contact, channel = f"c{self.callers}", f"ch{self.callers}"
        self.channels[channel] = Channel("caller", answered=True)
        self.contact_channel[contact] = channel
        self.queued.add(contact)
        self.feed(
            ev.CallerQueued(
                contact_id=contact,
                channel_id=channel,
                queue=queue,
                caller=f"+4822000{self.callers:04d}",
                offer_callback=CallbackOffering(after=10, estimate_over=30, every=20) if offer else None,
                offer_prompt=("sound:vm-press",) if offer else (),
            )
        )

    def hang_up(self, channel_id: str, cause: int = 16) -> None:
        if self.channels.pop(channel_id, None) is not None:
            self.feed(ev.ChannelGone(channel_id, cause))

    def answer(self, channel_id: str) -> None:
        channel = self.channels.get(channel_id)
        if channel is not None and not channel.answered:
            channel.answered = True
            self.feed(ev.LegAnswered(channel_id))

    def fire_next_timer(self) -> None:
        timer_id = min(self.timers, key=lambda t: self.timers[t])
        self.t = max(self.t, self.timers.pop(timer_id))
        self.feed(ev.TimerFired(timer_id))

    def deliver(self) -> None:
        self.feed(self.pending.pop(0))

    def store_answers(self, approve: bool) -> None:
        callback_id = self.dials.pop(0)
        if approve:
            self.attempts[callback_id] += 1
            self.approved[callback_id] += 1
            self.feed(ev.DialApproved(callback_id, self.attempts[callback_id]))
        else:
            self.feed(ev.DialRefused(callback_id))

    def everyone_leaves(self) -> None:
        """Everyone hangs up, the store answers, call-backs are withdrawn, every timer runs."""
        for _ in range(2000):
            if self.pending:
                self.deliver()
            elif self.dials:
                self.store_answers(approve=True)
            elif self.channels:
                self.hang_up(next(iter(self.channels)))
            elif self.board.held_callbacks():
                self.feed(ev.CallbackWithdrawn(self.board.held_callbacks()[0], "cancelled"))
            elif any(not t.startswith("router/") for t in self.timers):
                self.fire_next_timer()
            else:
                return
        raise AssertionError("the switchboard never settles down")


def steps(world: World, data: st.DataObject, count: int) -> None:
    for _ in range(count):
        choices: list[str] = ["caller", "login", "time"]
        callers = [c for c, ch in world.contact_channel.items() if ch in world.channels]
        legs = [c for c, ch in world.channels.items() if ch.kind != "caller"]
        ringing = [c for c in legs if not world.channels[c].answered]
        if callers:
            choices += ["caller_hangs_up", "leaves_for_callback"]
        if ringing:
            choices += ["answer", "answer", "answer", "answer", "busy", "fail"]
        if legs:
            choices += ["leg_hangs_up"]
        if world.timers:
            choices += ["timer", "timer"]
        if world.pending:
            choices += ["deliver", "deliver", "deliver"]
        if world.dials:
            choices += ["store", "store", "store"]
        if world.board.held_callbacks():
            choices += ["withdraw"]
        if any(ch.prompt is not None for ch in world.channels.values()):
            choices += ["prompt_ends", "prompt_ends"]
        choices += ["callback", "callback", "agent_request", "phone"]
        move = data.draw(st.sampled_from(choices), label="move")
        if move == "caller":
            world.caller_arrives(
                data.draw(st.sampled_from(["support", "support", "sales", "nowhere"])),
                data.draw(st.booleans()),
            )
        elif move == "login":
            world.feed(routing_events.AgentLoggedIn(data.draw(st.sampled_from(AGENTS))))
        elif move == "store":
            world.store_answers(data.draw(st.sampled_from([True, True, True, False])))
        elif move == "agent_request":
            agent = data.draw(st.sampled_from(AGENTS))
            kind = data.draw(st.sampled_from(["pause", "resume", "logout", "wrapup"]))
            requests: dict[str, ev.Event] = {
                "pause": routing_events.AgentPaused(agent, "lunch"),
                "resume": routing_events.AgentResumed(agent),
                "logout": routing_events.AgentLoggedOut(agent),
                "wrapup": routing_events.WrapUpEnded(agent),
            }
            world.feed(requests[kind])
        elif move == "time":
            world.t += data.draw(st.sampled_from([0.5, 3.0, 20.0]))
        elif move == "caller_hangs_up":
            world.hang_up(world.contact_channel[data.draw(st.sampled_from(callers))])
        elif move == "leaves_for_callback":
            contact = data.draw(st.sampled_from(callers))
            if contact in world.queued:
                world.feed(ev.CallerLeaving(contact))
        elif move == "answer":
            world.answer(data.draw(st.sampled_from(ringing)))
        elif move == "busy":
            leg = data.draw(st.sampled_from(ringing))
            if world.channels[leg].kind == "customer":
                world.feed(ev.LegDialed(leg, "BUSY"))
            world.hang_up(leg, 17)
        elif move == "fail":
            leg = data.draw(st.sampled_from(ringing))
            del world.channels[leg]
            world.feed(ev.LegFailed(leg, "refused"))
        elif move == "leg_hangs_up":
            world.hang_up(data.draw(st.sampled_from(legs)))
        elif move == "timer":
            world.fire_next_timer()
        elif move == "deliver":
            world.deliver()
        elif move == "withdraw":
            world.feed(ev.CallbackWithdrawn(data.draw(st.sampled_from(world.board.held_callbacks()))))
        elif move == "callback":
            world.callbacks += 1
            world.feed(
                ev.CallbackDue(
                    DueCallback(
                        id=f"cb{world.callbacks}",
                        queue=data.draw(st.sampled_from(["support", "support", "sales", None])),
                        expires_at=T0 + timedelta(seconds=data.draw(st.sampled_from([30, 300, 3000]))),
                    )
                )
            )
        elif move == "phone":
            world.feed(
                ev.PhoneChanged(
                    data.draw(st.sampled_from(["ann", "bob"])),
                    ev.Phone(
                        data.draw(st.booleans()),
                        data.draw(st.sampled_from(["NOT_INUSE", "INUSE", "RINGING"])),
                    ),
                )
            )
        elif move == "prompt_ends":
            playing = [(c, ch.prompt) for c, ch in world.channels.items() if ch.prompt is not None]
            if playing:
                channel, prompt = data.draw(st.sampled_from(playing))
                world.channels[channel].prompt = None
                assert prompt is not None
                world.feed(ev.PlaybackEnded(prompt))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), customer_first=st.booleans())
def test_callers_are_never_silent_agents_rung_once_attempts_settled_once(
    data: st.DataObject, customer_first: bool
) -> None:
    world = World(Switchboard(routing(customer_first), Settings(seed="prop", hold_limit=20, dial_timeout=15)))
    for agent in data.draw(st.lists(st.sampled_from(AGENTS), unique=True), label="logged in"):
        world.feed(routing_events.AgentLoggedIn(agent))
    steps(world, data, data.draw(st.integers(10, 80), label="steps"))
    world.everyone_leaves()
    for callback_id, approved in world.approved.items():
        assert world.settled[callback_id] == approved, f"call-back {callback_id}: {approved} attempts"
    assert not world.channels
    assert world.board.held_callbacks() == []
    assert world.board.channels() == []
    for view in world.board.agents():
        assert view.state in ("logged_out", "available", "paused", "wrap_up"), view
