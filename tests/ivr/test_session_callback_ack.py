"""A caller is thanked for a call-back only once it is stored: after `RequestCallback` the engine waits for
`CallbackStored` or `CallbackRefused`, in a `callback` node and in a queue's call-back offer alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ivr import actions as act
from ivr import events as ev
from ivr.flowset import FlowSet
from ivr.model import Flow
from ivr.session import Session
from ivr.simulate import scripted, simulate
from support.session import played, recorded

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
CALLER = "+48221234567"
ENTER = ("sound:vm-enter-num-to-call", "sound:astcc-followed-by-the-pound-key")
REFUSED = "not an international number"

CALLBACK: dict[str, Any] = {
    "callback": {"queue": "support", "skills": {"internet": 2}, "priority": 3, "retries": 1},
    "failure": "busy",
}
QUEUE: dict[str, Any] = {
    "queue": {"name": "support", "skills": {"internet": 3}, "priority": 5, "callback": True},
    "overflow": "busy",
}


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def flows(node: dict[str, Any]) -> FlowSet:
    spec = {
        "flow": "main",
        "start": "node",
        "nodes": {
            "node": node,
            "busy": {"play": "all-busy", "next": "bye"},
            "bye": {"hangup": "goodbye"},
        },
    }
    return FlowSet({"main": Flow.model_validate(spec)})


def started(node: dict[str, Any], caller: str | None = CALLER) -> Session:
    s = Session(flows(node), "main", call_id="c9")
    s.handle(ev.CallStarted(caller=caller, dialed="100"), NOW)
    return s


def in_offer(caller: str | None = CALLER) -> Session:
    """A caller who joined the queue at NOW, pressed 1 after 40 s and is out of the queue."""
    s = started(QUEUE, caller)
    s.handle(ev.Digit("1"), at(40))
    s.handle(ev.QueueExited("callback"), at(40.2))
    return s


def finish(s: Session) -> list[act.Action]:
    assert s.playback_id is not None, s.waiting_for
    return s.handle(ev.PlaybackFinished(s.playback_id), at(50))


def press(s: Session, keys: str) -> list[act.Action]:
    out: list[act.Action] = []
    for key in keys:
        out += s.handle(ev.Digit(key), at(50))
    return out


def requested(s: Session, keys: str = "1") -> act.RequestCallback:
    """Press `keys` at the read-back; the engine asks for the call-back and waits for the store."""
    (request,) = [a for a in press(s, keys) if isinstance(a, act.RequestCallback)]
    assert (s.waiting_for, s.ended, s.playback_id, s.timer_id) == ("callback", False, None, None)
    return request


def of(out: list[act.Action], kind: type[Any]) -> list[Any]:
    return [a for a in out if isinstance(a, kind)]


# --- the request waits for the store ---------------------------------------------------------------------


@pytest.mark.parametrize("node", [CALLBACK, QUEUE])
def test_confirming_sends_only_the_request(node: dict[str, Any]) -> None:
    s = in_offer() if node is QUEUE else started(CALLBACK)
    finish(s)  # the number is read back; the caller is asked to press 1
    timer = s.timer_id
    assert timer is not None
    out = press(s, "1")
    assert [type(a) for a in out] == [act.CancelTimer, act.RequestCallback]
    assert out[0] == act.CancelTimer(timer)
    assert (s.waiting_for, s.outcome, s.node) == ("callback", None, "node")


def test_stored_thanks_the_caller_and_hangs_up() -> None:
    s = started(CALLBACK)
    requested(s)
    out = s.handle(ev.CallbackStored("cb-1"), at(51))
    assert out == [
        act.RecordEvent("callback_requested", {"queue": "support", "number": CALLER}),
        act.Play("p2", ("sound:auth-thankyou",), "en"),
    ]
    assert (s.waiting_for, s.outcome) == ("playback", None)
    assert finish(s) == [
        act.RecordEvent("hung_up", {"by": "flow", "node": "node", "flow": "main"}),
        act.Hangup("normal"),
    ]
    assert (s.waiting_for, s.outcome) == (None, "callback")


def test_stored_in_the_queue_offer_ends_the_same_way_keeping_the_place() -> None:
    s = in_offer()
    request = requested(s)
    assert (request.queue, request.number, request.place_since) == ("support", CALLER, NOW)
    out = s.handle(ev.CallbackStored("cb-1"), at(51))
    assert recorded(out, "callback_requested") == [{"queue": "support", "number": CALLER}]
    assert played(out) == [("sound:auth-thankyou",)]
    out = finish(s)
    assert out[-1] == act.Hangup("normal")
    assert (s.waiting_for, s.outcome) == (None, "callback")


# --- refused: the caller gives another number ----------------------------------------------------------


def test_refused_asks_for_another_number_then_keeps_the_second() -> None:
    s = started(CALLBACK)
    requested(s)
    out = s.handle(ev.CallbackRefused(REFUSED), at(51))
    assert out == [
        act.RecordEvent("invalid_input", {"node": "node", "digits": CALLER, "reason": REFUSED}),
        act.Play("p2", ENTER, "en", barge_in=True),
    ]
    assert (s.waiting_for, s.outcome, s.node) == ("playback", None, "node")
    out = press(s, "48221234567#")
    assert played(out) == [
        (
            "sound:vm-num-i-have",
            "digits:48221234567",
            "sound:if-correct-press",
            "sound:digits/1",
            "sound:vm-calldiffnum",
        )
    ]
    request = requested(s)
    assert request.number == "48221234567"
    out = s.handle(ev.CallbackStored("cb-2"), at(52))
    assert recorded(out, "callback_requested") == [{"queue": "support", "number": "48221234567"}]
    finish(s)
    assert s.outcome == "callback"


def test_refused_in_the_queue_offer_asks_for_another_number() -> None:
    s = in_offer()
    requested(s)
    out = s.handle(ev.CallbackRefused(REFUSED), at(51))
    assert recorded(out, "invalid_input") == [{"node": "node", "digits": CALLER, "reason": REFUSED}]
    assert played(out) == [ENTER]
    assert not of(out, act.Enqueue) and not of(out, act.Hangup)
    press(s, "48601234567#")
    request = requested(s)
    assert (request.number, request.place_since) == ("48601234567", NOW)


def test_refused_until_the_retries_run_out_goes_to_failure() -> None:
    s = started(CALLBACK)  # retries: 1
    requested(s)
    s.handle(ev.CallbackRefused(REFUSED), at(51))
    press(s, "601234567#")
    requested(s)
    out = s.handle(ev.CallbackRefused(REFUSED), at(52))
    assert recorded(out, "invalid_input") == [{"node": "node", "digits": "601234567", "reason": REFUSED}]
    assert recorded(out, "node_entered") == [{"node": "busy", "flow": "main", "type": "play"}]
    assert played(out) == [("sound:all-busy",)]
    assert not recorded(out, "callback_requested")
    assert (s.node, s.outcome, s.waiting_for) == ("busy", None, "playback")


def test_refused_until_the_retries_run_out_rejoins_the_queue_at_the_old_place() -> None:
    s = in_offer()  # retries: 2
    requested(s)
    out = s.handle(ev.CallbackRefused(REFUSED), at(51))
    for attempt in range(2):
        press(s, "601234567#")
        requested(s)
        out = s.handle(ev.CallbackRefused(REFUSED), at(52 + attempt))
    (enqueue,) = of(out, act.Enqueue)
    assert (enqueue.queue, enqueue.since) == ("support", NOW)
    assert recorded(out, "queued") == [] and recorded(out, "callback_requested") == []
    assert (s.waiting_for, s.outcome, s.node) == ("queue", "queue", "node")


def test_a_refusal_counts_with_the_wrong_entries_before_it() -> None:
    s = started(CALLBACK, caller=None)  # retries: 1
    press(s, "123#")  # a wrong entry: the one retry
    press(s, "601234567#")
    requested(s)
    out = s.handle(ev.CallbackRefused(REFUSED), at(51))
    assert s.node == "busy"
    assert played(out) == [("sound:all-busy",)]


# --- while waiting -------------------------------------------------------------------------------------


def test_keys_while_waiting_are_ignored() -> None:
    s = started(CALLBACK)
    requested(s)
    assert press(s, "2601234567#1") == []
    assert s.waiting_for == "callback"
    out = s.handle(ev.CallbackRefused(REFUSED), at(51))
    assert played(out) == [ENTER]  # the prompt is not skipped as if the caller had typed ahead
    out = press(s, "48221234567#")
    assert played(out)[0][1] == "digits:48221234567"


@pytest.mark.parametrize("node", [CALLBACK, QUEUE])
def test_hanging_up_while_waiting_ends_as_a_callback(node: dict[str, Any]) -> None:
    s = in_offer() if node is QUEUE else started(CALLBACK)
    requested(s)
    out = s.handle(ev.Hangup(), at(51))
    assert out == [act.RecordEvent("hung_up", {"by": "caller", "node": "node", "flow": "main"})]
    assert (s.waiting_for, s.outcome, s.ended) == (None, "callback", True)


def test_the_answer_after_a_hang_up_is_still_recorded_once() -> None:
    s = started(CALLBACK)
    requested(s)
    s.handle(ev.Hangup(), at(51))
    assert s.handle(ev.CallbackStored("cb-1"), at(52)) == [
        act.RecordEvent("callback_requested", {"queue": "support", "number": CALLER})
    ]
    assert s.handle(ev.CallbackStored("cb-1"), at(53)) == []
    assert s.handle(ev.CallbackRefused(REFUSED), at(53)) == []
    assert s.outcome == "callback"


def test_a_refusal_after_a_hang_up_records_why_the_call_back_was_lost() -> None:
    s = in_offer()
    requested(s)
    s.handle(ev.Hangup(), at(51))
    assert s.handle(ev.CallbackRefused(REFUSED), at(52)) == [
        act.RecordEvent("invalid_input", {"node": "node", "digits": CALLER, "reason": REFUSED})
    ]
    assert s.handle(ev.CallbackStored("cb-1"), at(53)) == []


# --- stale answers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", [ev.CallbackStored("cb-0"), ev.CallbackRefused(REFUSED)])
def test_an_answer_nobody_waits_for_is_ignored(answer: ev.Event) -> None:
    s = started(CALLBACK)
    assert s.handle(answer, at(1)) == []  # reading the number back
    assert s.waiting_for == "playback"
    q = started(QUEUE)
    assert q.handle(answer, at(1)) == []  # waiting in the queue
    assert q.waiting_for == "queue"
    requested(s)
    s.handle(ev.CallbackStored("cb-1"), at(51))
    assert s.handle(answer, at(52)) == []  # thanking the caller
    assert s.waiting_for == "playback"
    finish(s)
    assert s.handle(answer, at(53)) == []  # the flow hung up
    assert s.outcome == "callback"


def test_a_second_answer_to_one_request_is_ignored() -> None:
    s = started(CALLBACK)
    requested(s)
    s.handle(ev.CallbackRefused(REFUSED), at(51))
    assert s.handle(ev.CallbackStored("cb-1"), at(51.5)) == []
    assert (s.waiting_for, s.node) == ("playback", "node")


# --- the simulator -------------------------------------------------------------------------------------


def test_the_simulator_keeps_every_call_back() -> None:
    keys, unused = scripted(["1"])
    journey = simulate(flows(CALLBACK), "main", keys=keys, start=NOW, caller=CALLER)
    texts = [step.text for step in journey.steps]
    request = texts.index("call-back to +48221234567 from queue support")
    assert texts[request + 1 : request + 4] == [
        "call-back kept",
        "callback_requested queue=support number=+48221234567",
        "hear sound:auth-thankyou",
    ]
    assert journey.outcome == "callback"
    assert isinstance(journey.final, act.Hangup)
    assert unused() == ()
