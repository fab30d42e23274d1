"""The caller-in-queue experience, with plain values: music, announcements and the call-back offer
between it, ringing an agent, ring-no-answer, bridging, hang-ups on either side, leaving for a
call-back, and the agents' phones as AMI sees them."""

from __future__ import annotations

from typing import Any

from routing import events as routing_events
from routing.events import CallbackOffering
from routing.switchboard import actions as act
from routing.switchboard import events as ev
from routing.switchboard.waiting import announcement, caller_id, ring_reason
from support.switchboard_helpers import Board, config

OFFER = ("sound:vm-press", "digits/1", "sound:vm-tocallback")


def busy_board(**queue: Any) -> Board:
    """A board whose one agent is on a call with caller c0: other callers wait, with estimates."""
    b = board(**queue)
    b.log_in("ann")
    b.queue_caller("c0")
    b.feed(ev.LegAnswered(b.one(act.Originate).channel_id))
    return b


def board(announce_every: float = 0, ring_timeout: float = 10, **queue: object) -> Board:
    return Board(
        config(
            {"ann": {"skills": {"support": 5}}, "bob": {"skills": {"support": 3}}},
            {
                "support": {
                    "skills": {"support": 1},
                    "announce_every": announce_every,
                    "ring_timeout": ring_timeout,
                    **queue,
                }
            },
        )
    )


def test_a_caller_with_no_agent_hears_the_queue_music() -> None:
    b = board(music="jazz")
    out = b.queue_caller()
    assert out[0] == act.MusicOn("ch-c1", "jazz")
    assert not b.of(act.Originate)
    assert "queued" not in b.records()  # the flow's queue node records it
    assert b.board.owns("ch-c1")


def test_the_flow_s_music_wins_over_the_queue_s() -> None:
    b = board(music="jazz")
    b.queue_caller(music="rock")
    assert b.one(act.MusicOn) == act.MusicOn("ch-c1", "rock")


def test_an_agent_rings_with_a_screen_pop_and_is_bridged_on_answer() -> None:
    b = board()
    b.log_in("ann")
    out = b.queue_caller(
        caller_name="Jan",
        customer=ev.Customer("cust1", "Jan Kowalski", {"tier": "gold"}),
        ivr_path=("welcome", "menu"),
    )
    pop = b.of(act.Publish)[0].message
    assert pop["type"] == "screen_pop" and pop["agent"] == "ann" and pop["contact_id"] == "c1"
    assert pop["customer"] == {"id": "cust1", "name": "Jan Kowalski", "attributes": {"tier": "gold"}}
    assert pop["ivr_path"] == ["welcome", "menu"] and pop["queue"] == "support"
    ring = b.one(act.Originate)
    assert ring.endpoint == "PJSIP/ann" and ring.app == "calls" and ring.args == ("agent", "c1")
    assert ring.caller_id == '"Jan Kowalski" <+48221234567>'
    assert ring.timeout == 11 and len(ring.channel_id) == 32
    assert "agent_offered" in b.records(out)
    assert b.state("ann")[0] == "ringing"

    out = b.feed(ev.LegAnswered(ring.channel_id), 3)
    assert b.of(act.QueueAnswered) == [act.QueueAnswered("c1")]
    assert act.MusicOff("ch-c1") in out
    bridge = b.one(act.Bridge)
    assert bridge.channel_ids == ("ch-c1", ring.channel_id)
    assert out.index(act.MusicOff("ch-c1")) < out.index(bridge)
    assert "answered" in b.records(out)
    assert b.state("ann")[0] == "on_call"
    assert act.CancelTimer(f"ring/{ring.channel_id}") in out


def test_an_agent_who_lets_it_ring_out_is_hung_up_and_paused_and_the_next_is_rung() -> None:
    b = board()
    b.log_in("ann", "bob")
    b.queue_caller()
    first = b.one(act.Originate)
    out = b.fire(f"ring/{first.channel_id}")
    assert act.HangUp(first.channel_id) in out
    assert b.state("ann") == ("paused", "no answer")
    assert "agent_no_answer" in b.records(out)
    second = b.one(act.Originate)
    assert second.endpoint == "PJSIP/bob" and second.channel_id != first.channel_id
    assert not b.board.owns(first.channel_id)
    # the late end of the first leg changes nothing
    assert b.feed(ev.ChannelGone(first.channel_id, 16)) == []


def test_a_busy_phone_counts_as_a_missed_call_with_its_reason() -> None:
    b = board()
    b.log_in("ann")
    b.queue_caller()
    leg = b.one(act.Originate).channel_id
    out = b.feed(ev.ChannelGone(leg, 17), 2)
    assert b.state("ann") == ("paused", "busy")
    assert act.CancelTimer(f"ring/{leg}") in out
    assert ring_reason(None) == "no answer" and ring_reason(21) == "declined" and ring_reason(34) == "failed"


def test_a_phone_asterisk_cannot_ring_is_a_failed_offer_with_a_fix_in_the_log() -> None:
    b = board()
    b.log_in("ann")
    b.queue_caller()
    leg = b.one(act.Originate).channel_id
    out = b.feed(ev.LegFailed(leg, "allocation failed"))
    assert b.state("ann") == ("paused", "failed")
    log = b.one(act.Log)
    assert log.level == "warning" and "endpoint" in str(log.fields.get("fix"))
    assert "agent_no_answer" in b.records(out)


def test_announcements_play_between_the_music() -> None:
    b = busy_board(announce_every=30)
    b.queue_caller()
    b.feed(ev.CallerQueued(contact_id="c2", channel_id="ch-c2", queue="support"), 1)
    b.fire("router/queue:c1:announce", after=30)
    out = b.fire("router/queue:c2:announce", after=31)
    second = b.one(act.Play)
    assert second.channel_id == "ch-c2"
    assert second.media == announcement(2, second_estimate(b))
    assert out.index(act.MusicOff("ch-c2")) < out.index(second)
    assert "position_announced" in b.records(out)
    out = b.feed(ev.PlaybackEnded(second.playback_id))
    assert out == [act.MusicOn("ch-c2", "default")]


def second_estimate(b: Board) -> float:
    view = next(q for q in b.board.queues(b.board.now) if q.name == "support")
    estimate = next(w for w in view.waiting if w.contact_id == "c2").estimated_wait
    return estimate or 0.0


def test_the_call_back_offer_follows_an_announcement_that_is_playing() -> None:
    b = busy_board(announce_every=20)
    offering = CallbackOffering(after=20, estimate_over=None, every=0)
    b.queue_caller(offer_callback=offering, offer_prompt=OFFER)
    announced = b.one(act.Play) if b.of(act.Play, b.fire("router/queue:c1:announce", after=20)) else None
    assert announced is not None and announced.media[0] == "sound:queue-youarenext"
    out = b.fire("router/queue:c1:offer", after=20)
    assert not b.of(act.Play, out)  # one prompt at a time: the offer waits for the announcement
    assert "callback_offered" in b.records(out)
    out = b.feed(ev.PlaybackEnded(announced.playback_id))
    offer = b.one(act.Play)
    assert offer.media == OFFER and not b.of(act.MusicOn)
    out = b.feed(ev.PlaybackEnded(offer.playback_id))
    assert out == [act.MusicOn("ch-c1", "default")]


def test_a_prompt_asterisk_refuses_brings_the_music_back() -> None:
    b = busy_board(announce_every=10)
    b.queue_caller()
    play = b.of(act.Play, b.fire("router/queue:c1:announce", after=10))[0]
    # the service reports a refused Play as ended
    assert b.feed(ev.PlaybackEnded(play.playback_id)) == [act.MusicOn("ch-c1", "default")]
    # a stale end (of a prompt stopped long ago) changes nothing
    assert b.feed(ev.PlaybackEnded(play.playback_id)) == []


def test_a_caller_who_hangs_up_while_the_agent_rings_abandons_and_the_phone_stops() -> None:
    b = board()
    b.log_in("ann")
    b.queue_caller()
    leg = b.one(act.Originate).channel_id
    out = b.feed(ev.ChannelGone("ch-c1", 16), 4)
    assert act.HangUp(leg) in out
    assert "abandoned" in b.records(out)
    assert b.state("ann")[0] == "available"
    assert not b.board.owns("ch-c1") and not b.board.owns(leg)
    assert b.board.party("c1") is None


def test_the_agent_hanging_up_first_ends_the_call_and_hangs_up_the_caller() -> None:
    b = board()
    b.log_in("ann")
    b.queue_caller()
    leg = b.one(act.Originate).channel_id
    b.feed(ev.LegAnswered(leg), 2)
    bridge = b.one(act.Bridge).bridge_id
    out = b.feed(ev.ChannelGone(leg, 16), 60)
    ended = b.one(act.RecordEvent)
    assert ended == act.RecordEvent("c1", "call_ended", {"by": "agent", "cause": "agent hung up"}, "ch-c1")
    assert act.EndBridge(bridge) in out and act.HangUp("ch-c1") in out
    assert b.state("ann")[0] == "wrap_up"
    # the caller's channel then leaves: nothing more
    assert b.feed(ev.ChannelGone("ch-c1")) == []


def test_the_caller_hanging_up_first_hangs_up_the_agent() -> None:
    b = board()
    b.log_in("ann")
    b.queue_caller()
    leg = b.one(act.Originate).channel_id
    b.feed(ev.LegAnswered(leg), 2)
    out = b.feed(ev.ChannelGone("ch-c1"), 30)
    assert act.HangUp(leg) in out and b.of(act.EndBridge)
    assert b.state("ann")[0] == "wrap_up"
    assert b.feed(ev.ChannelGone(leg)) == []


def test_a_late_answer_of_a_given_up_offer_is_hung_up() -> None:
    b = board()
    b.log_in("ann")
    b.queue_caller()
    leg = b.one(act.Originate).channel_id
    b.fire(f"ring/{leg}")
    out = b.feed(ev.LegAnswered(leg))
    assert act.HangUp(leg) in out and not b.of(act.Bridge)


def test_leaving_for_a_call_back_stops_the_ringing_phone_and_gives_the_caller_back() -> None:
    b = board()
    b.log_in("ann")
    b.queue_caller()
    leg = b.one(act.Originate).channel_id
    out = b.feed(ev.CallerLeaving("c1"), 5)
    assert act.HangUp(leg) in out and act.MusicOff("ch-c1") in out
    assert out[-1] == act.QueueExited("c1", "callback") or act.QueueExited("c1", "callback") in out
    assert "abandoned" not in b.records(out)
    assert b.state("ann")[0] == "available"


def test_leaving_after_an_agent_answered_keeps_the_caller_with_the_agent() -> None:
    b = board()
    b.log_in("ann")
    b.queue_caller()
    b.feed(ev.LegAnswered(b.one(act.Originate).channel_id))
    assert b.feed(ev.CallerLeaving("c1")) == [act.QueueAnswered("c1")]


def test_a_queue_routing_does_not_have_sends_the_caller_to_the_overflow() -> None:
    b = board()
    out = b.queue_caller(queue="sales")
    assert out[-1] == act.QueueExited("c1", "no routing")
    assert b.one(act.Log).fields["fix"]
    assert not b.board.owns("ch-c1")


def test_max_wait_gives_the_caller_back_to_the_flow_without_music() -> None:
    b = board()
    b.queue_caller(max_wait=30)
    out = b.fire("router/queue:c1:max_wait", after=30)
    assert act.MusicOff("ch-c1") in out
    assert act.QueueExited("c1", "max wait") in out or any(isinstance(a, act.QueueExited) for a in out)
    assert b.board.party("c1") is None


def test_unregistered_phones_are_not_rung_until_they_register() -> None:
    b = board()
    b.feed(ev.PhonesSeen({"ann": ev.Phone(registered=False)}))
    b.log_in("ann")
    b.queue_caller()
    assert not b.of(act.Originate)
    b.feed(ev.PhoneChanged("ann", ev.Phone(registered=True, device_state="NOT_INUSE")), 3)
    assert b.one(act.Originate).endpoint == "PJSIP/ann"


def test_a_phone_busy_with_our_own_ringing_stays_reachable_but_one_busy_elsewhere_does_not() -> None:
    b = board()
    b.feed(ev.PhonesSeen({"ann": ev.Phone(True, "NOT_INUSE"), "bob": ev.Phone(True, "INUSE")}))
    b.log_in("ann", "bob")
    b.queue_caller()
    leg = b.one(act.Originate)
    assert leg.endpoint == "PJSIP/ann"  # bob's phone is busy with a call that is not ours
    b.feed(ev.PhoneChanged("ann", ev.Phone(True, "RINGING")))
    assert next(a for a in b.board.agents() if a.id == "ann").reachable
    assert not next(a for a in b.board.agents() if a.id == "bob").reachable


def test_without_ami_every_phone_can_ring() -> None:
    b = board()
    b.feed(ev.PhonesSeen(None))
    b.log_in("ann")
    b.queue_caller()
    assert b.of(act.Originate)


def test_caller_id_keeps_quotes_out_of_the_name() -> None:
    assert caller_id("+481", 'Jan "J" \\K') == '"Jan J K" <+481>'
    assert caller_id(None, "Jan") is None and caller_id("+481", None) == "+481"


def test_a_reload_keeps_the_waiting_caller_and_offers_a_new_agent() -> None:
    b = board()
    b.queue_caller()
    new = config(
        {"ann": {"skills": {"support": 5}}, "cid": {"skills": {"support": 5}}},
        {"support": {"skills": {"support": 1}, "announce_every": 0}},
    )
    b.feed(ev.Reloaded(new))
    b.feed(routing_events.AgentLoggedIn("cid"))
    assert b.one(act.Originate).endpoint == "PJSIP/cid"


def test_when_the_service_stops_a_ringing_phone_is_hung_up_and_a_talk_goes_on() -> None:
    b = board()
    b.log_in("ann", "bob")
    b.queue_caller("c1")
    talking = b.one(act.Originate).channel_id
    b.feed(ev.LegAnswered(talking))
    b.queue_caller("c2")
    ringing = b.one(act.Originate).channel_id
    out = b.feed(ev.Stopping())
    assert act.HangUp(ringing) in out
    assert act.HangUp(talking) not in out and not b.of(act.EndBridge, out)
