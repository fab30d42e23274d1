"""Where a call leaves the flow: a queue, a transfer, a voicemail, a call-back; what happens when the
hand-off gives the call back, and when the caller hangs up meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ivr import actions as act
from ivr import events as ev
from ivr.flowset import FlowSet
from ivr.model import Flow
from ivr.session import Session
from support.session import finish, fire, played, press, recorded

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def session(node: dict[str, Any], **nodes: Any) -> Session:
    spec = {
        "flow": "main",
        "start": "node",
        "nodes": {
            "node": node,
            "busy": {"play": "all-busy", "next": "bye"},
            "bye": {"hangup": "goodbye"},
            **nodes,
        },
    }
    return Session(FlowSet({"main": Flow.model_validate(spec)}), "main", call_id="c42")


def start(s: Session, caller: str | None = "+48221234567") -> list[act.Action]:
    return s.handle(ev.CallStarted(caller=caller, dialed="100", variables={"tier": "gold"}), NOW)


# --- queue ----------------------------------------------------------------------------------------

QUEUE = {
    "queue": {"name": "support", "skills": {"internet": 3}, "priority": 5, "max_wait": 300, "callback": True},
    "overflow": "busy",
}


def test_queue_hands_the_caller_to_routing() -> None:
    s = session(QUEUE)
    out = start(s)
    assert out[-2:] == [
        act.Enqueue(
            queue="support",
            skills={"internet": 3},
            priority=5,
            music="default",
            announce_every=30.0,
            max_wait=300.0,
            callback=act.CallbackOfferSpec(
                key="1",
                after=30.0,
                estimate_over=120.0,
                every=60.0,
                prompt=("sound:vm-press", "sound:digits/1", "sound:vm-tocallback"),
            ),
            language="en",
            variables={
                "tier": "gold",
                "caller": "+48221234567",
                "caller_withheld": "false",
                "dialed": "100",
                "caller_name": "",
            },
        ),
        act.RecordEvent("queued", {"queue": "support", "skills": {"internet": 3}, "priority": 5}),
    ]
    assert (s.ended, s.outcome, s.waiting_for) == (True, "queue", "queue")
    assert s.handle(ev.Digit("5"), NOW) == []
    assert s.handle(ev.TransferFailed(), NOW) == []


def test_queue_overflow_resumes_the_flow() -> None:
    s = session(QUEUE)
    start(s)
    out = s.handle(ev.QueueExited("max wait"), NOW)
    assert recorded(out, "queue_overflow") == [{"queue": "support", "reason": "max wait"}]
    assert played(out) == [("sound:all-busy",)]
    assert (s.ended, s.outcome, s.node) == (False, None, "busy")
    assert s.handle(ev.QueueExited(), NOW) == []  # not queued any more
    finish(s)
    finish(s)
    assert s.outcome == "hangup"


def test_caller_hangs_up_in_the_queue() -> None:
    s = session(QUEUE)
    start(s)
    out = s.handle(ev.Hangup(), NOW)
    assert out == [act.RecordEvent("hung_up", {"by": "caller", "node": "node", "flow": "main"})]
    assert (s.outcome, s.waiting_for) == ("queue", None)
    assert s.handle(ev.QueueExited(), NOW) == []


# --- transfer -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "kind", "destination", "context"),
    [
        ({"extension": "operator"}, "extension", "operator", "hotline-transfer"),
        ({"extension": "200", "context": "agents"}, "extension", "200", "agents"),
        ({"endpoint": "PJSIP/{tier}-desk"}, "endpoint", "PJSIP/gold-desk", None),
        ({"number": "+48221112233"}, "number", "+48221112233", None),
    ],
)
def test_transfer(target: dict[str, str], kind: str, destination: str, context: str | None) -> None:
    s = session({"transfer": {**target, "timeout": 20}, "failure": "busy"})
    out = start(s)
    assert out[-2:] == [
        act.RecordEvent("transferred", {"kind": kind, "target": destination}),
        act.Transfer(kind=kind, target=destination, context=context, timeout=20.0),
    ]
    assert (s.outcome, s.waiting_for) == ("transfer", "transfer")


def test_a_failed_transfer_goes_to_failure() -> None:
    s = session({"transfer": {"extension": "operator"}, "failure": "busy"})
    start(s)
    out = s.handle(ev.TransferFailed("busy"), NOW)
    assert recorded(out, "transfer_failed") == [
        {"node": "node", "kind": "extension", "target": "operator", "reason": "busy"}
    ]
    assert (s.outcome, s.node) == (None, "busy")


def test_a_failed_transfer_without_failure_hangs_up() -> None:
    s = session({"transfer": {"extension": "operator"}})
    start(s)
    out = s.handle(ev.TransferFailed(), NOW)
    assert out[-1] == act.Hangup("normal")
    assert s.outcome == "hangup"


def test_caller_hangs_up_during_a_transfer() -> None:
    s = session({"transfer": {"extension": "operator"}, "failure": "busy"})
    start(s)
    assert recorded(s.handle(ev.Hangup(), NOW), "hung_up") == [
        {"by": "caller", "node": "node", "flow": "main"}
    ]
    assert s.outcome == "transfer"
    assert s.handle(ev.TransferFailed(), NOW) == []


# --- voicemail ------------------------------------------------------------------------------------

VOICEMAIL = {"voicemail": {"mailbox": "sales", "max_duration": 60, "beep": False, "terminator": "*"}}


def test_voicemail_plays_its_prompt_then_records() -> None:
    s = session({**VOICEMAIL, "next": "bye"})
    out = start(s)
    assert played(out) == [("sound:vm-intro",)]
    assert not s.ended
    assert s.handle(ev.Digit("1"), NOW) == []  # no barge-in
    out = finish(s)
    assert out == [
        act.Voicemail(mailbox="sales", max_duration=60.0, beep=False, terminator="*", recording_name="c42-1")
    ]
    assert (s.outcome, s.waiting_for) == ("voicemail", "recording")


def test_after_the_recording_the_flow_goes_on_and_ends_as_voicemail() -> None:
    s = session({**VOICEMAIL, "next": "bye"})
    start(s)
    finish(s)
    out = s.handle(ev.RecordingFinished(12.5), NOW)
    assert recorded(out, "voicemail_left") == [{"mailbox": "sales", "duration": 12.5, "recording": "c42-1"}]
    assert (s.outcome, s.node) == (None, "bye")
    out = finish(s)
    assert out[-1] == act.Hangup("normal")
    assert s.outcome == "voicemail"


def test_after_the_recording_without_next_the_flow_hangs_up() -> None:
    s = session(VOICEMAIL)
    start(s)
    finish(s)
    out = s.handle(ev.RecordingFinished(3), NOW)
    assert out[-1] == act.Hangup("normal")
    assert s.outcome == "voicemail"


def test_caller_hanging_up_while_recording_still_leaves_the_message() -> None:
    s = session({**VOICEMAIL, "next": "bye"})
    start(s)
    finish(s)
    assert recorded(s.handle(ev.Hangup(), NOW), "hung_up") == [
        {"by": "caller", "node": "node", "flow": "main"}
    ]
    assert (s.outcome, s.waiting_for) == ("voicemail", None)
    # the recording ends when the line drops; its event may come after the hang-up
    assert s.handle(ev.RecordingFinished(7), NOW) == [
        act.RecordEvent("voicemail_left", {"mailbox": "sales", "duration": 7.0, "recording": "c42-1"})
    ]
    assert s.handle(ev.RecordingFinished(7), NOW) == []


def test_caller_hanging_up_after_the_message_is_not_abandoned() -> None:
    s = session({**VOICEMAIL, "next": "bye"})
    start(s)
    finish(s)
    s.handle(ev.RecordingFinished(5), NOW)
    out = s.handle(ev.Hangup(), NOW)
    assert recorded(out, "abandoned") == []
    assert s.outcome == "voicemail"


def test_caller_hanging_up_during_the_voicemail_prompt_abandons() -> None:
    s = session(VOICEMAIL)
    start(s)
    assert recorded(s.handle(ev.Hangup(), NOW), "abandoned") == [
        {"node": "node", "flow": "main", "where": "ivr"}
    ]
    assert s.outcome == "abandoned"
    assert s.handle(ev.RecordingFinished(1), NOW) == []


# --- call-back ------------------------------------------------------------------------------------

CALLBACK = {
    "callback": {"queue": "support", "skills": {"internet": 2}, "priority": 3, "retries": 1},
    "failure": "busy",
}
OFFER = ("sound:vm-num-i-have", "digits:48221234567", "sound:if-correct-press")


def test_callback_reads_the_callers_number_and_requests_on_1() -> None:
    s = session(CALLBACK)
    out = start(s)
    assert played(out)[0][:3] == OFFER
    assert finish(s) == [act.StartTimer("t1", 6.0)]
    out = press(s, "1")
    assert out == [
        act.CancelTimer("t1"),
        act.RequestCallback(
            queue="support",
            number="+48221234567",
            skills={"internet": 2},
            priority=3,
            language="en",
            variables=dict(s.variables),
        ),
    ]
    assert (s.ended, s.waiting_for) == (False, "callback")
    out = s.handle(ev.CallbackStored("cb1"), NOW)
    assert out == [
        act.RecordEvent("callback_requested", {"queue": "support", "number": "+48221234567"}),
        act.Play("p2", ("sound:auth-thankyou",), "en"),
    ]
    assert (s.ended, s.waiting_for) == (False, "playback")
    out = finish(s)
    assert out[-1] == act.Hangup("normal")
    assert (s.ended, s.outcome) == (True, "callback")


def test_caller_hanging_up_after_the_request_keeps_the_callback() -> None:
    s = session(CALLBACK)
    start(s)
    press(s, "1")
    s.handle(ev.CallbackStored("cb1"), NOW)
    out = s.handle(ev.Hangup(), NOW)
    assert recorded(out, "hung_up") == [{"by": "caller", "node": "node", "flow": "main"}]
    assert s.outcome == "callback"


def test_callback_to_another_number() -> None:
    s = session(CALLBACK)
    start(s)
    out = press(s, "2")
    assert played(out) == [("sound:vm-enter-num-to-call", "sound:astcc-followed-by-the-pound-key")]
    out = press(s, "601234567#")
    assert played(out)[0][:2] == ("sound:vm-num-i-have", "digits:601234567")
    press(s, "1")
    out = s.handle(ev.CallbackStored("cb1"), NOW)
    assert recorded(out, "callback_requested") == [{"queue": "support", "number": "601234567"}]


def test_a_withheld_caller_enters_a_number_straight_away() -> None:
    s = session(CALLBACK)
    out = start(s, caller=None)
    assert played(out) == [("sound:vm-enter-num-to-call", "sound:astcc-followed-by-the-pound-key")]


def test_a_caller_id_that_is_no_phone_number_is_not_offered() -> None:
    s = session(CALLBACK)
    out = start(s, caller="201")
    assert played(out)[0][0] == "sound:vm-enter-num-to-call"


def test_an_invalid_number_is_asked_again_then_fails() -> None:
    s = session(CALLBACK)
    start(s, caller=None)
    out = press(s, "123#")
    assert recorded(out, "invalid_input") == [{"node": "node", "digits": "123"}]
    assert played(out) == [("sound:vm-enter-num-to-call", "sound:astcc-followed-by-the-pound-key")]
    out = press(s, "9#")
    assert s.node == "busy"


def test_an_entered_number_ends_after_a_pause() -> None:
    s = session(CALLBACK)
    start(s, caller=None)
    finish(s)
    press(s, "601234567")
    out = fire(s)
    assert played(out)[0][1] == "digits:601234567"


def test_silence_and_wrong_keys_at_the_offer() -> None:
    s = session(CALLBACK)
    start(s)
    finish(s)
    out = fire(s)
    assert recorded(out, "no_input") == [{"node": "node"}]
    assert played(out)[0][:3] == OFFER
    out = press(s, "5")
    assert recorded(out, "invalid_input") == [{"node": "node", "digits": "5"}]
    assert s.node == "busy"


def test_refusing_an_entered_number_counts() -> None:
    s = session({**CALLBACK, "failure": None})
    start(s, caller=None)
    press(s, "601234567#")
    press(s, "2")
    press(s, "601234568#")
    out = press(s, "2")
    assert out[-1] == act.Hangup("normal")
    assert s.outcome == "hangup"


@pytest.mark.parametrize("step", ["offer", "question", "entering", "digits", "read-back"])
def test_caller_hangs_up_at_each_step_of_a_callback(step: str) -> None:
    s = session(CALLBACK)
    start(s)
    if step == "question":
        finish(s)
    if step in ("entering", "digits", "read-back"):
        press(s, "2")
    if step in ("digits", "read-back"):
        press(s, "60123")
    if step == "read-back":
        press(s, "4567#")
    out = s.handle(ev.Hangup(), NOW)
    assert recorded(out, "abandoned") == [{"node": "node", "flow": "main", "where": "ivr"}]
    assert not any(isinstance(a, act.RequestCallback) for a in out)
    assert s.outcome == "abandoned"
