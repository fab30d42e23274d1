"""The switchboard across faults, with plain values: channels found gone once Asterisk can be seen again
(nobody counted as hanging up) and conversations found going on at start-up (adopted, ended like any
other, the agent's phone busy meanwhile)."""

from __future__ import annotations

from routing.switchboard import actions as act
from routing.switchboard import events as ev
from support.switchboard_helpers import Board, DueCallback, config


def board() -> Board:
    return Board(
        config(
            {"ann": {"skills": {"support": 5}}, "bob": {"skills": {"support": 3}}},
            {"support": {"skills": {"support": 1}, "ring_timeout": 10}},
        )
    )


def talk(customer: str = "caller") -> ev.TalkFound:
    return ev.TalkFound("c9", "ch-c9", "leg-ann", "br-9", "ann", customer)  # type: ignore[arg-type]


# --- lost channels -----------------------------------------------------------------------------------


def test_a_waiting_caller_found_gone_leaves_the_queue_without_an_abandon() -> None:
    b = board()
    b.queue_caller()
    out = b.feed(ev.ChannelGone("ch-c1", lost=True), 5)
    assert "abandoned" not in b.records(out)
    assert not b.board.owns("ch-c1")
    [queue] = b.board.queues(b.board.now)
    assert queue.waiting == []
    assert queue.figures is not None and queue.figures.abandoned == 0


def test_a_caller_found_gone_while_an_agent_rang_stops_the_phone_without_pausing_the_agent() -> None:
    b = board()
    b.log_in("ann")
    b.queue_caller()
    ring = b.one(act.Originate)
    out = b.feed(ev.ChannelGone("ch-c1", lost=True), 2)
    assert act.HangUp(ring.channel_id) in out
    assert "abandoned" not in b.records(out) and "agent_no_answer" not in b.records(out)
    assert b.state("ann")[0] == "available"
    assert b.feed(ev.ChannelGone(ring.channel_id, lost=True), 2) == []  # forgotten already


def test_a_conversation_found_gone_records_nothing_of_the_caller_and_the_agent_goes_to_wrap_up() -> None:
    b = board()
    b.log_in("ann")
    b.queue_caller()
    ring = b.one(act.Originate)
    b.feed(ev.LegAnswered(ring.channel_id), 3)
    out = b.feed(ev.ChannelGone("ch-c1", lost=True), 60)
    assert b.records(out) == []  # the caller's flow records the call lost; nobody hung up
    assert act.HangUp(ring.channel_id) in out
    assert b.state("ann")[0] == "wrap_up"
    assert b.feed(ev.ChannelGone(ring.channel_id, lost=True), 60) == []


def test_an_agent_s_line_found_gone_while_the_caller_s_is_up_ends_the_talk_as_it_is() -> None:
    b = board()
    b.log_in("ann")
    b.queue_caller()
    ring = b.one(act.Originate)
    b.feed(ev.LegAnswered(ring.channel_id), 3)
    out = b.feed(ev.ChannelGone(ring.channel_id, lost=True), 30)
    [ended] = b.of(act.RecordEvent, out)
    assert ended.type == "call_ended" and ended.data == {"by": "system", "cause": "agent's line lost"}
    assert act.HangUp("ch-c1") in out


def test_a_call_back_conversation_found_gone_ends_as_lost_not_hung_up() -> None:
    b = board()
    b.log_in("ann")
    b.feed(ev.CallbackDue(DueCallback()))
    agent_leg = b.one(act.Originate).channel_id
    contact = b.board.placeholder("cb1")
    assert contact is not None
    b.feed(ev.LegAnswered(agent_leg), 2)
    b.feed(ev.PlaybackEnded(b.one(act.Play).playback_id), 4)
    b.feed(ev.DialApproved("cb1", 1), 4)
    customer_leg = b.one(act.Originate).channel_id
    b.feed(ev.LegAnswered(customer_leg), 8)
    out = b.feed(ev.ChannelGone(customer_leg, lost=True), 60)
    [ended] = b.of(act.RecordEvent, out)
    assert ended.type == "call_ended" and ended.data == {"by": "system", "cause": "call lost"}
    assert act.HangUp(agent_leg) in out
    assert b.feed(ev.ChannelGone(agent_leg, lost=True), 60) == []


def test_a_call_back_found_gone_while_the_agent_rang_is_dropped_and_left_to_its_lease() -> None:
    b = board()
    b.log_in("ann")
    b.feed(ev.CallbackDue(DueCallback()))
    agent_leg = b.one(act.Originate).channel_id
    out = b.feed(ev.ChannelGone(agent_leg, lost=True), 2)
    assert "agent_no_answer" not in b.records(out)
    assert b.board.held_callbacks() == []
    assert b.state("ann")[0] == "available"


# --- conversations found at start-up ----------------------------------------------------------------


def test_a_conversation_found_going_on_is_held_and_ends_when_the_caller_hangs_up() -> None:
    b = board()
    out = b.feed(talk(), 0)
    assert b.records(out) == [] and not b.of(act.HangUp, out)
    assert b.board.owns("ch-c9") and b.board.owns("leg-ann")
    out = b.feed(ev.ChannelGone("ch-c9", 16), 30)
    [ended] = b.of(act.RecordEvent, out)
    assert (ended.contact_id, ended.type, ended.data) == (
        "c9",
        "call_ended",
        {"by": "caller", "cause": "caller hung up"},
    )
    assert ended.call_id == "ch-c9"
    assert act.HangUp("leg-ann") in out and act.EndBridge("br-9") in out
    assert not b.board.owns("ch-c9") and not b.board.owns("leg-ann")
    assert b.feed(ev.ChannelGone("leg-ann"), 31) == []  # its end means nothing more


def test_a_call_back_conversation_found_going_on_ends_when_the_agent_hangs_up() -> None:
    b = board()
    b.feed(talk("customer"), 0)
    out = b.feed(ev.ChannelGone("leg-ann", 16), 30)
    [ended] = b.of(act.RecordEvent, out)
    assert ended.data == {"by": "agent", "cause": "agent hung up"}
    assert act.HangUp("ch-c9") in out and act.EndBridge("br-9") in out


def test_an_agent_who_logs_in_while_still_talking_from_before_is_offered_no_one_until_the_end() -> None:
    b = board()
    b.feed(talk(), 0)
    b.log_in("ann")
    b.queue_caller("c1")
    assert b.of(act.Originate) == []  # ann talks still: nobody rings her
    out = b.feed(ev.ChannelGone("ch-c9"), 20)
    [ring] = b.of(act.Originate, out)
    assert ring.endpoint == "PJSIP/ann" and ring.args == ("agent", "c1")


def test_a_conversation_found_twice_is_held_once() -> None:
    b = board()
    b.feed(talk(), 0)
    out = b.feed(talk(), 1)
    assert [a.message for a in b.of(act.Log, out)] == ["the conversation is held already"]


def test_stopping_leaves_a_conversation_from_before_talking() -> None:
    b = board()
    b.feed(talk(), 0)
    out = b.feed(ev.Stopping(), 5)
    assert not b.of(act.HangUp, out) and not b.of(act.EndBridge, out)


def test_a_conversation_from_before_found_gone_is_said_lost() -> None:
    b = board()
    b.feed(talk(), 0)
    out = b.feed(ev.ChannelGone("leg-ann", lost=True), 10)
    [ended] = b.of(act.RecordEvent, out)
    assert ended.data == {"by": "system", "cause": "call lost"}
    assert act.HangUp("ch-c9") in out
