"""The call-back dialing sequences, with plain values: agent first (ring, whisper, count the attempt,
dial, bridge) and customer first (count, dial, hold, ring, bridge), every way an attempt can end, and
the placeholder's life in the queue (withdrawn, expired, refused)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from routing import events as routing_events
from routing.switchboard import Settings
from routing.switchboard import actions as act
from routing.switchboard import events as ev
from routing.switchboard.dialing import customer_outcome, whisper
from support.switchboard_helpers import T0, Board, DueCallback, config

DIAL = "PJSIP/{number}@trunk"


def board(dial: str = "agent_first", **policy: Any) -> Board:
    return Board(
        config(
            {agent: {"skills": {"support": 5}} for agent in ("ann", "bob")},
            {
                "support": {
                    "skills": {"support": 1},
                    "announce_every": 0,
                    "ring_timeout": 10,
                    "caller_id": "+48221110000",
                    "callback": {"dial": dial, "attempts": 3, "delay": 60, **policy},
                }
            },
        ),
        Settings(dial=DIAL, dial_timeout=20, whisper_timeout=15, hold_limit=30, seed="test"),
    )


def due(b: Board, callback: DueCallback | None = None, customer: ev.Customer | None = None) -> str:
    """Hand the board a due call-back; the placeholder's contact id."""
    b.feed(ev.CallbackDue(callback or DueCallback(), customer))
    contact = b.board.placeholder((callback or DueCallback()).id)
    assert contact is not None
    return contact


def agent_leg(b: Board) -> act.Originate:
    leg = b.one(act.Originate)
    assert leg.app == "callbacks"
    return leg


def answer_agent_and_whisper(b: Board) -> str:
    leg = agent_leg(b).channel_id
    b.feed(ev.LegAnswered(leg), b.t + 2)
    play = b.one(act.Play)
    assert play.media == ("sound:to-call-this-number", "digits:48221234567") and play.channel_id == leg
    assert whisper("+48 22", Settings(whisper=("sound:beep",), whisper_number=False)) == ("sound:beep",)
    b.feed(ev.PlaybackEnded(play.playback_id), b.t + 3)
    assert b.one(act.StartDial).callback_id == "cb1"
    return leg


def test_agent_first_rings_the_agent_whispers_counts_dials_and_bridges() -> None:
    b = board()
    b.log_in("ann")
    contact = due(b, customer=ev.Customer("cust1", "Jan Kowalski"))
    pop = b.of(act.Publish)[0].message
    assert pop["type"] == "screen_pop" and pop["contact_id"] == contact
    assert pop["callback"] == {
        "id": "cb1",
        "requested_by": "asked1",
        "requested_at": T0.isoformat(),
        "customer_ref": "ORDER-7",
        "note": "about the invoice",
        "attempt": 1,
    }
    assert pop["customer"]["name"] == "Jan Kowalski"
    ring = agent_leg(b)
    assert (
        ring.endpoint == "PJSIP/ann"
        and ring.caller_id == "+48221234567"
        and ring.args == ("callback", contact)
    )
    assert b.board.held_callbacks() == ["cb1"]

    agent = answer_agent_and_whisper(b)
    out = b.feed(ev.DialApproved("cb1", attempts=1), b.t + 1)
    customer = b.one(act.Originate)
    assert customer.endpoint == "PJSIP/+48221234567@trunk" and customer.caller_id == "+48221110000"
    assert customer.timeout == 20 and customer.args == ("customer", contact)
    assert not b.of(act.SettleAttempt, out)

    out = b.feed(ev.LegAnswered(customer.channel_id), b.t + 5)
    bridge = b.one(act.Bridge)
    assert set(bridge.channel_ids) == {agent, customer.channel_id}
    assert b.one(act.SettleAttempt) == act.SettleAttempt("cb1", "answered", None, "ann", b.board.now)
    assert b.board.held_callbacks() == []

    out = b.feed(ev.ChannelGone(customer.channel_id, 16), b.t + 90)
    assert act.RecordEvent(contact, "call_ended", {"by": "customer", "cause": "customer hung up"}) in out
    assert act.HangUp(agent) in out and act.EndBridge(bridge.bridge_id) in out
    assert b.state("ann")[0] == "wrap_up"
    assert not b.of(act.SettleAttempt, out)


def test_a_busy_customer_is_settled_with_the_next_attempt_and_the_agent_wraps_up() -> None:
    b = board()
    b.log_in("ann")
    due(b)
    agent = answer_agent_and_whisper(b)
    b.feed(ev.DialApproved("cb1", 1))
    customer = b.one(act.Originate).channel_id
    b.feed(ev.LegDialed(customer, "BUSY"))
    out = b.feed(ev.ChannelGone(customer, 17), b.t + 4)
    settle = b.one(act.SettleAttempt)
    assert settle.outcome == "busy" and settle.next_at == b.board.now + timedelta(seconds=60)
    assert act.HangUp(agent) in out
    assert b.state("ann")[0] == "wrap_up"
    assert b.board.held_callbacks() == []


def test_a_customer_who_never_answers_is_no_answer_after_the_dial_timeout() -> None:
    b = board()
    b.log_in("ann")
    due(b)
    answer_agent_and_whisper(b)
    b.feed(ev.DialApproved("cb1", 1))
    customer = b.one(act.Originate).channel_id
    out = b.fire(f"dial/{customer}")
    assert act.HangUp(customer) in out
    assert b.one(act.SettleAttempt).outcome == "no_answer"
    # the leg's own end afterwards settles nothing more
    assert not b.of(act.SettleAttempt, b.feed(ev.ChannelGone(customer)))


def test_the_last_attempt_is_settled_with_no_next_time() -> None:
    b = board()
    b.log_in("ann")
    due(b, DueCallback(attempts=2))
    answer_agent_and_whisper(b)
    b.feed(ev.DialApproved("cb1", 3))
    customer = b.one(act.Originate).channel_id
    b.feed(ev.LegFailed(customer, "no route"))
    settle = b.one(act.SettleAttempt)
    assert settle.outcome == "failed" and settle.next_at is None


def test_an_agent_who_misses_costs_no_attempt_and_the_next_agent_is_rung() -> None:
    b = board()
    b.log_in("ann", "bob")
    due(b)
    first = agent_leg(b).channel_id
    out = b.fire(f"ring/{first}")
    assert act.HangUp(first) in out
    assert b.state("ann") == ("paused", "no answer")
    second = agent_leg(b)
    assert second.endpoint == "PJSIP/bob"
    assert not b.of(act.StartDial, b.all)


def test_an_agent_hanging_up_during_the_whisper_leaves_it_to_the_next_as_a_new_placeholder() -> None:
    b = board()
    b.log_in("ann", "bob")
    first_contact = due(b)
    leg = agent_leg(b).channel_id
    b.feed(ev.LegAnswered(leg))
    out = b.feed(ev.ChannelGone(leg, 16), b.t + 1)
    assert not b.of(act.StartDial, out)
    assert b.state("ann")[0] == "wrap_up"
    second = b.one(act.Originate)
    assert second.endpoint == "PJSIP/bob" and second.args[1] != first_contact
    assert b.board.held_callbacks() == ["cb1"]


def test_a_dial_the_store_refuses_hangs_up_the_agent_and_drops_the_call_back() -> None:
    b = board()
    b.log_in("ann")
    due(b)
    agent = answer_agent_and_whisper(b)
    out = b.feed(ev.DialRefused("cb1"))
    assert act.HangUp(agent) in out and not b.of(act.Originate, out)
    assert b.state("ann")[0] == "wrap_up"
    assert b.board.held_callbacks() == []


def test_customer_first_counts_dials_holds_then_rings_the_reserved_agent() -> None:
    b = board("customer_first")
    b.log_in("ann")
    contact = due(b)
    assert not b.of(act.Originate)
    assert b.one(act.StartDial) == act.StartDial("cb1", contact)
    assert b.state("ann")[0] == "ringing"  # reserved while the customer is dialed
    b.feed(ev.DialApproved("cb1", 1))
    customer = b.one(act.Originate)
    assert customer.endpoint.endswith("@trunk")
    out = b.feed(ev.LegAnswered(customer.channel_id), b.t + 6)
    assert act.MusicOn(customer.channel_id, "default") in out
    agent = b.one(act.Originate)
    assert agent.endpoint == "PJSIP/ann" and agent.app == "callbacks"
    assert b.of(act.Publish, out)[0].message["callback"]["attempt"] == 1
    out = b.feed(ev.LegAnswered(agent.channel_id), b.t + 2)
    assert act.MusicOff(customer.channel_id) in out
    assert b.one(act.Bridge).channel_ids == (agent.channel_id, customer.channel_id)
    assert b.one(act.SettleAttempt).outcome == "answered"
    assert b.state("ann")[0] == "on_call"


def test_customer_first_a_customer_who_does_not_answer_frees_the_agent_without_a_pause() -> None:
    b = board("customer_first")
    b.log_in("ann")
    due(b)
    b.feed(ev.DialApproved("cb1", 1))
    customer = b.one(act.Originate).channel_id
    b.feed(ev.LegDialed(customer, "NOANSWER"))
    b.feed(ev.ChannelGone(customer, 19), b.t + 20)
    assert b.one(act.SettleAttempt).outcome == "no_answer"
    assert b.state("ann") == ("available", None)
    assert b.board.held_callbacks() == []


def test_customer_first_a_waiting_customer_gets_the_next_agent_or_is_settled_after_the_hold_limit() -> None:
    b = board("customer_first")
    b.log_in("ann")
    due(b)
    b.feed(ev.DialApproved("cb1", 1))
    customer = b.one(act.Originate).channel_id
    b.feed(ev.LegAnswered(customer))
    agent = b.one(act.Originate).channel_id
    out = b.fire(f"ring/{agent}")
    assert act.HangUp(agent) in out and b.state("ann") == ("paused", "no answer")
    assert not b.of(act.SettleAttempt, out)
    out = b.fire("hold/")
    assert act.HangUp(customer) in out
    assert b.one(act.SettleAttempt).outcome == "failed"
    assert b.board.held_callbacks() == []


def test_customer_first_the_customer_hanging_up_while_waiting_stops_the_agent_s_phone() -> None:
    b = board("customer_first")
    b.log_in("ann")
    due(b)
    b.feed(ev.DialApproved("cb1", 1))
    customer = b.one(act.Originate).channel_id
    b.feed(ev.LegAnswered(customer))
    agent = b.one(act.Originate).channel_id
    out = b.feed(ev.ChannelGone(customer, 16))
    assert act.HangUp(agent) in out
    assert b.one(act.SettleAttempt).outcome == "failed"
    assert b.state("ann")[0] == "available"


def test_withdrawn_while_waiting_the_placeholder_leaves_the_queue() -> None:
    b = board()
    due(b)
    assert [w.contact_id for q in b.board.queues(b.board.now) for w in q.waiting]
    b.feed(ev.CallbackWithdrawn("cb1", "cancelled"))
    assert not [w for q in b.board.queues(b.board.now) for w in q.waiting]
    assert b.board.held_callbacks() == []


def test_withdrawn_mid_dial_the_customer_is_hung_up_and_the_attempt_still_settled_once() -> None:
    b = board()
    b.log_in("ann")
    due(b)
    agent = answer_agent_and_whisper(b)
    b.feed(ev.DialApproved("cb1", 1))
    customer = b.one(act.Originate).channel_id
    out = b.feed(ev.CallbackWithdrawn("cb1", "cancelled"))
    assert act.HangUp(customer) in out and act.HangUp(agent) in out
    assert len(b.of(act.SettleAttempt, out)) == 1
    assert not b.of(act.SettleAttempt, b.feed(ev.ChannelGone(customer)))


def test_withdrawn_while_the_store_is_asked_settles_when_it_answers() -> None:
    b = board()
    b.log_in("ann")
    due(b)
    answer_agent_and_whisper(b)
    b.feed(ev.CallbackWithdrawn("cb1", "cancelled"))
    assert b.state("ann")[0] == "wrap_up"
    out = b.feed(ev.DialApproved("cb1", 1))
    assert not b.of(act.Originate, out)
    assert b.one(act.SettleAttempt).outcome == "failed"


def test_a_talk_goes_on_when_the_call_back_is_withdrawn() -> None:
    b = board()
    b.log_in("ann")
    due(b)
    answer_agent_and_whisper(b)
    b.feed(ev.DialApproved("cb1", 1))
    b.feed(ev.LegAnswered(b.one(act.Originate).channel_id))
    assert b.feed(ev.CallbackWithdrawn("cb1")) == []


def test_a_placeholder_whose_call_back_expires_while_waiting_is_released() -> None:
    b = board()
    due(b, DueCallback(expires_at=T0 + timedelta(seconds=90)))
    out = b.fire("expiry/", after=90)
    assert act.ReleaseCallback("cb1") in out
    assert b.board.held_callbacks() == []
    assert not [w for q in b.board.queues(b.board.now) for w in q.waiting]


def test_a_call_back_with_no_queue_is_not_held() -> None:
    b = board()
    b.feed(ev.CallbackDue(DueCallback(queue=None)))
    assert b.one(act.Log).fields["fix"]
    assert b.board.held_callbacks() == []


def test_a_first_attempt_keeps_the_caller_s_place() -> None:
    b = board()
    b.queue_caller("early", caller="+48220000001")
    b.feed(ev.CallbackDue(DueCallback(place_since=T0 - timedelta(seconds=120))), 10)
    waiting = next(q for q in b.board.queues(b.board.now) if q.name == "support").waiting
    assert waiting[0].callback and waiting[0].position == 1
    retry = replace(DueCallback(id="cb2", place_since=T0 - timedelta(seconds=120)), attempts=1)
    b.feed(ev.CallbackDue(retry), 11)
    waiting = next(q for q in b.board.queues(b.board.now) if q.name == "support").waiting
    assert [w.callback for w in waiting] == [True, False, True]


def test_outcomes_come_from_the_dial_status_first() -> None:
    assert customer_outcome("BUSY", 16) == "busy"
    assert customer_outcome("CHANUNAVAIL", None) == "failed"
    assert customer_outcome(None, 17) == "busy"
    assert customer_outcome(None, 19) == "no_answer"
    assert customer_outcome("ANSWER", None) == "failed"
    assert customer_outcome(None, None) == "failed"


def test_agents_who_log_in_later_get_the_waiting_call_back() -> None:
    b = board()
    due(b)
    assert not b.of(act.Originate)
    b.feed(routing_events.AgentLoggedIn("ann"), 5)
    assert agent_leg(b).endpoint == "PJSIP/ann"


def test_when_the_service_stops_a_call_back_being_dialed_is_hung_up_and_a_conversation_goes_on() -> None:
    b = board()
    b.log_in("ann")
    due(b)
    agent = answer_agent_and_whisper(b)
    b.feed(ev.DialApproved("cb1", 1))
    customer = b.one(act.Originate).channel_id
    dialing = board()  # the same call-back on a second board, stopped while dialing
    dialing.log_in("ann")
    due(dialing)
    dialing_agent = answer_agent_and_whisper(dialing)
    dialing.feed(ev.DialApproved("cb1", 1))
    dialing_customer = dialing.one(act.Originate).channel_id
    out = dialing.feed(ev.Stopping())
    assert {act.HangUp(dialing_agent), act.HangUp(dialing_customer)} <= set(out)

    b.feed(ev.LegAnswered(customer))
    b.one(act.Bridge)
    out = b.feed(ev.Stopping())  # talking: the next start adopts the conversation
    assert not b.of(act.HangUp, out) and not b.of(act.EndBridge, out)
    assert b.board.talking(b.board.placeholder("cb1") or "")
    assert b.board.owns(agent) and b.board.owns(customer)  # still held: their end still counts
