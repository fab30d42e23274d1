"""The events of one contact are stored in the order they happened: a property over the IVR engine and the
switchboard together, carried out the way the service does it.

`Line` plays the two shells with plain values: the call runner hands each step's contact events to the
store first and then carries out the rest (an `Enqueue` feeds the switchboard, whose events follow);
the switchboard's shell hands its events over in the order the switchboard returns them. Hypothesis
picks what happens: prompts end, timers fire, the caller presses keys or hangs up, agents log in,
answer, let it ring or hang up, time passes. After every step the store's order, per contact, agrees
with the time of each event and with the order things can happen in: the call starts first, the caller
is queued before any agent is offered or answers, an agent answers before the talk ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr import actions as ivr_actions
from ivr import events as ivr_events
from ivr.flowset import FlowSet
from ivr.model import Flow
from ivr.session import Session
from routing import events as routing_events
from routing.errors import RoutingError
from routing.switchboard import Settings, Switchboard
from routing.switchboard import actions as act
from routing.switchboard import events as ev
from support.routing_helpers import config

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
FLOW = FlowSet(
    {
        "main": Flow.model_validate(
            {
                "flow": "main",
                "start": "welcome",
                "nodes": {
                    "welcome": {"play": "welcome", "next": "menu"},
                    "menu": {"menu": "main-menu", "options": {"1": "wait", "2": "bye"}, "failure": "bye"},
                    "wait": {
                        "queue": {"name": "support", "max_wait": 120, "callback": {"after": 10, "every": 0}},
                        "overflow": "bye",
                    },
                    "bye": {"hangup": {"prompt": "goodbye"}},
                },
            }
        )
    }
)
#: (event, events of the same contact that must come before it in the store)
BEFORE: dict[str, set[str]] = {
    "agent_offered": {"call_started", "queued"},
    "agent_no_answer": {"queued", "agent_offered"},
    "answered": {"queued", "agent_offered"},
    "position_announced": {"queued"},
    "callback_offered": {"queued"},
    "callback_chosen": {"queued"},
    "queue_overflow": {"queued"},
    "wrapup_ended": {"answered"},
}


@dataclass
class Caller:
    session: Session
    channel: str
    playing: str | None = None
    timers: dict[str, float] = field(default_factory=dict)
    gone: bool = False


@dataclass
class Line:
    board: Switchboard
    t: float = 0.0
    callers: dict[str, Caller] = field(default_factory=dict)  # contact id -> caller
    legs: dict[str, str] = field(default_factory=dict)  # agent leg -> contact
    board_timers: dict[str, float] = field(default_factory=dict)
    stored: list[tuple[str, str, float, dict[str, Any]]] = field(
        default_factory=list
    )  # (contact, type, at, data)

    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.t)

    # --- the call runner -----------------------------------------------------------------------

    def call(self, contact: str) -> None:
        caller = self.callers[contact] = Caller(Session(FLOW, "main", call_id=contact), f"ch-{contact}")
        self.ivr(contact, ivr_events.CallStarted(caller="+48221234567", dialed="100"))
        del caller

    def ivr(self, contact: str, event: ivr_events.Event) -> None:
        caller = self.callers[contact]
        done = caller.session.handle(event, self.now())
        for action in done:
            if isinstance(action, ivr_actions.RecordEvent):
                self.stored.append((contact, action.type, self.t, dict(action.data)))
        for action in done:
            match action:
                case ivr_actions.Play():
                    caller.playing = action.playback_id
                case ivr_actions.StartTimer():
                    caller.timers[action.timer_id] = self.t + action.seconds
                case ivr_actions.CancelTimer():
                    caller.timers.pop(action.timer_id, None)
                case ivr_actions.Enqueue():
                    self.switchboard(
                        ev.CallerQueued(contact_id=contact, channel_id=caller.channel, queue=action.queue)
                    )
                case ivr_actions.LeaveQueue():
                    self.switchboard(ev.CallerLeaving(contact))
                case ivr_actions.RequestCallback():
                    self.ivr(contact, ivr_events.CallbackStored("cb"))
                case ivr_actions.Hangup():
                    self.hang_up(contact)

    # --- the switchboard's shell ---------------------------------------------------------------

    def switchboard(self, event: ev.Event) -> None:
        try:
            done = self.board.handle(event, self.now())
        except RoutingError:
            return
        for action in done:
            match action:
                case act.RecordEvent():
                    self.stored.append((action.contact_id, action.type, self.t, dict(action.data)))
                case act.StartTimer():
                    self.board_timers[action.timer_id] = self.t + action.seconds
                case act.CancelTimer():
                    self.board_timers.pop(action.timer_id, None)
                case act.Originate():
                    self.legs[action.channel_id] = action.args[1]
                case act.Play():
                    self.switchboard(ev.PlaybackEnded(action.playback_id))
                case act.HangUp():
                    contact = self.legs.pop(action.channel_id, None)
                    if contact is not None:
                        self.switchboard(ev.ChannelGone(action.channel_id))
                    else:
                        caller = next(
                            (c for c, x in self.callers.items() if x.channel == action.channel_id), None
                        )
                        if caller is not None:
                            self.hang_up(caller)
                case act.QueueAnswered():
                    self.ivr(action.contact_id, ivr_events.QueueAnswered())
                case act.QueueExited():
                    self.ivr(action.contact_id, ivr_events.QueueExited(action.reason))

    def hang_up(self, contact: str) -> None:
        caller = self.callers[contact]
        if caller.gone:
            return
        caller.gone = True
        self.ivr(contact, ivr_events.Hangup())
        self.switchboard(ev.ChannelGone(caller.channel))

    def check(self) -> None:
        seen: dict[str, list[tuple[str, float]]] = {}
        for contact, kind, at, _ in self.stored:
            earlier = seen.setdefault(contact, [])
            assert not earlier or earlier[-1][1] <= at, f"{contact}: {kind} at {at} after {earlier[-1]}"
            if not earlier and contact in self.callers:
                assert kind == "call_started", f"{contact} begins with {kind}"
            types = {k for k, _ in earlier}
            missing = BEFORE.get(kind, set()) - types
            assert not missing, f"{contact}: {kind} stored before {missing}; so far {[k for k, _ in earlier]}"
            earlier.append((kind, at))


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_each_contact_s_events_are_stored_in_the_order_they_happened(data: st.DataObject) -> None:
    routing = config(
        {"ann": {"skills": {"support": 5}, "wrapup": 3}, "bob": {"skills": {"support": 2}, "wrapup": 0}},
        {"support": {"skills": {"support": 1}, "announce_every": 5, "ring_timeout": 4, "max_wait": 120}},
    )
    line = Line(Switchboard(routing, Settings(seed="order")))
    callers = 0
    for _ in range(data.draw(st.integers(5, 60), label="steps")):
        live = [c for c, x in line.callers.items() if not x.gone]
        moves = ["call", "time", "login", "timer"]
        if live:
            moves += ["prompt", "prompt", "key", "key", "hang_up"]
        if line.legs:
            moves += ["answer", "answer", "leg_gone"]
        move = data.draw(st.sampled_from(moves), label="move")
        if move == "call":
            callers += 1
            line.call(f"c{callers}")
        elif move == "time":
            line.t += data.draw(st.sampled_from([0.5, 2.0, 6.0]))
        elif move == "login":
            line.switchboard(routing_events.AgentLoggedIn(data.draw(st.sampled_from(["ann", "bob"]))))
        elif move == "timer":
            pending = [
                (at, c, t) for c, x in line.callers.items() if not x.gone for t, at in x.timers.items()
            ]
            pending += [(at, "", t) for t, at in line.board_timers.items()]
            if pending:
                at, contact, timer = min(pending)
                line.t = max(line.t, at)
                if contact:
                    del line.callers[contact].timers[timer]
                    line.ivr(contact, ivr_events.TimerFired(timer))
                else:
                    del line.board_timers[timer]
                    line.switchboard(ev.TimerFired(timer))
        elif move == "prompt":
            caller = line.callers[data.draw(st.sampled_from(live))]
            if caller.playing is not None:
                playback, caller.playing = caller.playing, None
                line.ivr(caller.session.call_id, ivr_events.PlaybackFinished(playback))
        elif move == "key":
            line.ivr(data.draw(st.sampled_from(live)), ivr_events.Digit(data.draw(st.sampled_from("121"))))
        elif move == "hang_up":
            line.hang_up(data.draw(st.sampled_from(live)))
        elif move == "answer":
            line.switchboard(ev.LegAnswered(data.draw(st.sampled_from(sorted(line.legs)))))
        elif move == "leg_gone":
            leg = data.draw(st.sampled_from(sorted(line.legs)))
            del line.legs[leg]
            line.switchboard(ev.ChannelGone(leg, 16))
        line.check()
