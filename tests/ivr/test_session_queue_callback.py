"""The call-back offered in a queue: the caller presses its key while waiting, leaves the queue keeping
their place, gives a number and is called back, or rejoins the queue where they were."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ivr import actions as act
from ivr import events as ev
from ivr.errors import FlowErrors
from ivr.flowset import FlowSet
from ivr.loader import parse_flow
from ivr.model import Flow, QueueCallback, QueueSpec
from ivr.session import OUTCOMES, Session
from ivr.simulate import scripted, simulate
from support.session import played, recorded

JOINED = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
CALLER = "+48221234567"
OFFER_MEDIA = ("sound:vm-press", "sound:digits/1", "sound:vm-tocallback")
READ_BACK = ("sound:vm-num-i-have", "digits:48221234567", "sound:if-correct-press", "sound:digits/1")
ENTER = ("sound:vm-enter-num-to-call", "sound:astcc-followed-by-the-pound-key")

QUEUE: dict[str, Any] = {
    "queue": {"name": "support", "skills": {"internet": 3}, "priority": 5, "callback": True},
    "overflow": "busy",
}


def at(seconds: float) -> datetime:
    return JOINED + timedelta(seconds=seconds)


def session(node: dict[str, Any] = QUEUE, **flow: Any) -> Session:
    spec = {
        "flow": "main",
        "start": "node",
        "nodes": {
            "node": node,
            "busy": {"play": "all-busy", "next": "bye"},
            "bye": {"hangup": "goodbye"},
        },
        **flow,
    }
    return Session(FlowSet({"main": Flow.model_validate(spec)}), "main", call_id="c7")


def queued(node: dict[str, Any] = QUEUE, caller: str | None = CALLER, **flow: Any) -> Session:
    s = session(node, **flow)
    s.handle(ev.CallStarted(caller=caller, dialed="100"), JOINED)
    assert s.waiting_for == "queue"
    return s


def left(s: Session, seconds: float = 45.0) -> list[act.Action]:
    """The caller presses 1 in the queue and routing lets them go."""
    s.handle(ev.Digit("1"), at(seconds))
    return s.handle(ev.QueueExited("callback"), at(seconds + 0.2))


def finish(s: Session, seconds: float = 50.0) -> list[act.Action]:
    assert s.playback_id is not None, s.waiting_for
    return s.handle(ev.PlaybackFinished(s.playback_id), at(seconds))


def fire(s: Session, seconds: float = 60.0) -> list[act.Action]:
    assert s.timer_id is not None, s.waiting_for
    return s.handle(ev.TimerFired(s.timer_id), at(seconds))


def press(s: Session, keys: str, seconds: float = 55.0) -> list[act.Action]:
    out: list[act.Action] = []
    for key in keys:
        out += s.handle(ev.Digit(key), at(seconds))
    return out


def of(out: list[act.Action], kind: type[Any]) -> list[Any]:
    return [a for a in out if isinstance(a, kind)]


# --- the model --------------------------------------------------------------------------------------


def test_callback_true_is_the_offer_with_every_default() -> None:
    offer = QueueSpec.model_validate({"name": "q", "callback": True}).callback
    assert offer == QueueCallback()
    assert (offer.key, offer.after, offer.estimate_over, offer.every, offer.offer) == (
        "1",
        30.0,
        120.0,
        60.0,
        ("vm-press", "digits/1", "vm-tocallback"),
    )
    assert offer.retries == 2 and offer.done == ("auth-thankyou",)


@pytest.mark.parametrize("value", [False, None])
def test_callback_false_or_absent_is_no_offer(value: bool | None) -> None:
    assert QueueSpec.model_validate({"name": "q", "callback": value}).callback is None
    assert QueueSpec.model_validate({"name": "q"}).callback is None


def test_callback_as_a_mapping() -> None:
    offer = QueueSpec.model_validate(
        {
            "name": "q",
            "callback": {"key": 9, "after": 0, "estimate_over": None, "every": 0, "offer": "press-9"},
        }
    ).callback
    assert offer == QueueCallback(key="9", after=0, estimate_over=None, every=0, offer=("press-9",))


@pytest.mark.parametrize(
    ("field", "value"),
    [("key", "x"), ("key", "12"), ("after", -1), ("estimate_over", 0), ("every", 3601), ("queue", "q")],
)
def test_a_bad_offer_is_refused(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        QueueSpec.model_validate({"name": "q", "callback": {field: value}})


def test_a_pattern_that_is_not_a_regular_expression_is_refused_with_the_reason() -> None:
    with pytest.raises(ValidationError, match=r"'\(\[0-9' is not a regular expression \(unterminated"):
        QueueSpec.model_validate({"name": "q", "callback": {"pattern": "([0-9"}})


def test_a_bad_key_is_reported_at_its_line_and_column() -> None:
    text = (
        "flow: main\n"
        "start: q\n"
        "nodes:\n"
        "  q:\n"
        "    queue:\n"
        "      name: support\n"
        "      callback:\n"
        '        key: "x"\n'
        "    overflow: bye\n"
        "  bye:\n"
        "    hangup: goodbye\n"
    )
    with pytest.raises(FlowErrors) as raised:
        parse_flow(text, "main.yaml")
    assert [str(e) for e in raised.value.errors] == [
        "main.yaml:8:14: nodes.q.queue.callback.key: 'x' is not a key; use one of 0-9, * and # "
        "('#' and '*' in quotes)"
    ]


def test_the_json_schema_takes_true_false_and_a_mapping() -> None:
    schema = Flow.model_json_schema(by_alias=True)
    validator = jsonschema.Draft202012Validator(schema)

    def flow(callback: Any) -> dict[str, Any]:
        return {
            "flow": "x",
            "start": "q",
            "nodes": {"q": {"queue": {"name": "q", "callback": callback}, "overflow": "q"}},
        }

    for good in (True, False, None, {}, {"key": "*", "every": 0, "offer": ["a", "b"]}):
        assert not list(validator.iter_errors(flow(good))), good
    for bad in ("yes", {"kee": "1"}, {"every": -1}):
        assert list(validator.iter_errors(flow(bad))), bad


# --- pressing the key in the queue --------------------------------------------------------------------


def test_the_enqueue_carries_the_offer_in_the_callers_language() -> None:
    s = session(
        {
            "queue": {"name": "support", "callback": {"key": "*", "after": 10, "offer": ["offer-cb"]}},
            "overflow": "busy",
        },
        languages=["pl", "en"],
        prompts={"offer-cb": {"pl": "oferta", "en": "offer"}},
    )
    out = s.handle(ev.CallStarted(caller=CALLER, dialed="100"), JOINED)
    (enqueue,) = of(out, act.Enqueue)
    assert enqueue.callback == act.CallbackOfferSpec(
        key="*", after=10.0, estimate_over=120.0, every=60.0, prompt=("sound:oferta",)
    )
    assert enqueue.since is None


def test_the_key_takes_the_caller_out_of_the_queue() -> None:
    s = queued()
    out = s.handle(ev.Digit("1"), at(42.5))
    assert out == [
        act.LeaveQueue("callback"),
        act.RecordEvent("callback_chosen", {"queue": "support", "waited": 42.5}),
    ]
    assert (s.waiting_for, s.outcome) == ("queue", "queue")
    assert s.handle(ev.Digit("1"), at(43)) == []  # already leaving


@pytest.mark.parametrize("key", ["2", "0", "*", "#", "A", "x", "11", ""])
def test_other_keys_in_the_queue_are_ignored(key: str) -> None:
    s = queued()
    assert s.handle(ev.Digit(key), at(40)) == []
    assert (s.waiting_for, s.outcome) == ("queue", "queue")


@pytest.mark.parametrize("callback", [False, None])
def test_without_an_offer_the_key_is_ignored(callback: bool | None) -> None:
    node = {"queue": {"name": "support", "callback": callback}, "overflow": "busy"}
    s = session(node)
    out = s.handle(ev.CallStarted(caller=CALLER, dialed="100"), JOINED)
    assert of(out, act.Enqueue)[0].callback is None
    assert s.handle(ev.Digit("1"), at(40)) == []
    assert s.handle(ev.QueueExited("callback"), at(41))[:2] == [
        act.RecordEvent("queue_overflow", {"queue": "support", "reason": "callback"}),
        act.RecordEvent("node_entered", {"node": "busy", "flow": "main", "type": "play"}),
    ]


def test_keys_after_an_agent_answered_are_not_the_flows() -> None:
    s = queued()
    assert s.handle(ev.QueueAnswered(), at(20)) == []
    assert s.handle(ev.Digit("1"), at(40)) == []
    assert (s.waiting_for, s.outcome) == ("queue", "queue")


def test_an_agent_answering_while_the_caller_leaves_keeps_them() -> None:
    s = queued()
    assert of(s.handle(ev.Digit("1"), at(40)), act.LeaveQueue) == [act.LeaveQueue("callback")]
    assert s.handle(ev.QueueAnswered(), at(40.1)) == []
    assert s.handle(ev.QueueExited("callback"), at(40.2)) == []  # a late answer to LeaveQueue
    assert s.handle(ev.Digit("1"), at(41)) == []
    assert (s.waiting_for, s.outcome, s.node) == ("queue", "queue", "node")


def test_the_wait_running_out_while_leaving_is_an_overflow() -> None:
    s = queued()
    s.handle(ev.Digit("1"), at(40))
    out = s.handle(ev.QueueExited("max_wait"), at(40.1))
    assert recorded(out, "queue_overflow") == [{"queue": "support", "reason": "max_wait"}]
    assert played(out) == [("sound:all-busy",)]
    assert (s.node, s.outcome) == ("busy", None)


def test_a_callback_exit_nobody_asked_for_is_an_overflow() -> None:
    s = queued()
    out = s.handle(ev.QueueExited("callback"), at(40))
    assert recorded(out, "queue_overflow") == [{"queue": "support", "reason": "callback"}]
    assert s.node == "busy"


# --- the dialogue ---------------------------------------------------------------------------------


def test_the_caller_confirms_their_own_number() -> None:
    s = queued()
    out = left(s)
    assert played(out) == [(*READ_BACK, "sound:vm-calldiffnum")]
    assert (s.waiting_for, s.outcome, s.ended, s.node) == ("playback", None, False, "node")
    assert finish(s) == [act.StartTimer("t1", 6.0)]
    assert s.waiting_for == "input"
    out = press(s, "1", 52)
    assert out == [
        act.CancelTimer("t1"),
        act.RequestCallback(
            queue="support",
            number=CALLER,
            skills={"internet": 3},
            priority=5,
            language="en",
            variables=dict(s.variables),
            place_since=JOINED,
        ),
    ]
    assert (s.waiting_for, s.outcome) == ("callback", None)
    out = s.handle(ev.CallbackStored("cb1"), at(52.5))
    assert recorded(out, "callback_requested") == [{"queue": "support", "number": CALLER}]
    assert played(out) == [("sound:auth-thankyou",)]
    assert s.waiting_for == "playback"
    out = finish(s, 53)
    assert out == [
        act.RecordEvent("hung_up", {"by": "flow", "node": "node", "flow": "main"}),
        act.Hangup("normal"),
    ]
    # mypy still narrows waiting_for to "playback", from before finish()
    assert (s.outcome, s.waiting_for) == ("callback", None)  # type: ignore[comparison-overlap]


def test_the_caller_enters_another_number() -> None:
    s = queued()
    left(s)
    out = press(s, "2")
    assert played(out) == [ENTER]
    out = press(s, "601234567#")
    assert played(out) == [
        (
            "sound:vm-num-i-have",
            "digits:601234567",
            "sound:if-correct-press",
            "sound:digits/1",
            "sound:vm-calldiffnum",
        )
    ]
    out = press(s, "1")
    (request,) = of(out, act.RequestCallback)
    assert (request.number, request.place_since, request.queue) == ("601234567", JOINED, "support")
    out = s.handle(ev.CallbackStored("cb1"), at(56))
    assert recorded(out, "callback_requested") == [{"queue": "support", "number": "601234567"}]


def test_a_withheld_caller_is_asked_for_a_number() -> None:
    s = queued(caller=None)
    assert played(left(s)) == [ENTER]


def test_an_invalid_number_is_asked_for_again() -> None:
    s = queued(caller=None)
    left(s)
    out = press(s, "123#")
    assert recorded(out, "invalid_input") == [{"node": "node", "digits": "123"}]
    assert played(out) == [ENTER]
    assert not of(out, act.RequestCallback)
    assert s.waiting_for == "playback"


def test_a_caller_who_never_confirms_rejoins_at_their_place() -> None:
    s = queued(caller=None)
    left(s)
    out: list[act.Action] = []
    for attempt in range(3):  # retries: 2, so the third silence gives up
        finish(s, 50 + attempt)
        out = fire(s, 60 + attempt)
    assert recorded(out, "no_input") == [{"node": "node"}]
    (enqueue,) = of(out, act.Enqueue)
    assert enqueue.since == JOINED
    assert (enqueue.queue, enqueue.skills, enqueue.priority) == ("support", {"internet": 3}, 5)
    assert enqueue.callback is not None and enqueue.callback.key == "1"
    assert recorded(out, "queued") == [] and recorded(out, "node_entered") == []
    assert (s.waiting_for, s.outcome, s.node, s.timer_id, s.playback_id) == (
        "queue",
        "queue",
        "node",
        None,
        None,
    )
    assert s.path == ("node",)
    # they may press the key again; their wait still counts from the first entry
    out = s.handle(ev.Digit("1"), at(100))
    assert recorded(out, "callback_chosen") == [{"queue": "support", "waited": 100.0}]
    out = s.handle(ev.QueueExited("callback"), at(100.5))
    assert played(out) == [ENTER]


def test_a_caller_refusing_every_number_rejoins_too() -> None:
    s = queued()
    left(s)
    out: list[act.Action] = []
    for _ in range(3):
        press(s, "2")
        out = press(s, "601234567#")
        out += press(s, "2")
    (enqueue,) = of(out, act.Enqueue)
    assert enqueue.since == JOINED
    assert s.waiting_for == "queue"


def test_a_caller_hanging_up_in_the_dialogue_abandons() -> None:
    s = queued()
    left(s)
    out = s.handle(ev.Hangup(), at(50))
    assert recorded(out, "abandoned") == [{"node": "node", "flow": "main", "where": "ivr"}]
    assert not of(out, act.RequestCallback)
    assert (s.outcome, s.waiting_for) == ("abandoned", None)


def test_a_caller_hanging_up_while_leaving_the_queue_ends_in_the_queue() -> None:
    s = queued()
    s.handle(ev.Digit("1"), at(40))
    out = s.handle(ev.Hangup(), at(40.1))
    assert recorded(out, "hung_up") == [{"by": "caller", "node": "node", "flow": "main"}]
    assert s.outcome == "queue"
    assert s.handle(ev.QueueExited("callback"), at(40.2)) == []


def test_the_offers_own_prompts_and_retries_are_used() -> None:
    node = {
        "queue": {
            "name": "support",
            "callback": {
                "key": "5",
                "confirm": "my-number",
                "question": "ok-1",
                "done": "bye-bye",
                "retries": 0,
            },
        },
        "overflow": "busy",
    }
    s = queued(node)
    s.handle(ev.Digit("5"), at(40))
    out = s.handle(ev.QueueExited("callback"), at(41))
    assert played(out) == [("sound:my-number", "digits:48221234567", "sound:ok-1")]
    finish(s)
    out = press(s, "9")  # a wrong key with no retries left: back to the queue
    assert recorded(out, "invalid_input") == [{"node": "node", "digits": "9"}]
    assert of(out, act.Enqueue)[0].since == JOINED


def test_a_second_visit_to_the_queue_starts_a_new_place() -> None:
    node = {"queue": {"name": "support", "callback": True}, "overflow": "again"}
    spec = {
        "flow": "main",
        "start": "node",
        "nodes": {"node": node, "again": {"play": "all-busy", "next": "node"}},
    }
    s = Session(FlowSet({"main": Flow.model_validate(spec)}), "main")
    s.handle(ev.CallStarted(caller=CALLER, dialed="100"), JOINED)
    s.handle(ev.QueueExited("max_wait"), at(600))
    out = finish(s, 601)
    assert recorded(out, "queued") and of(out, act.Enqueue)[0].since is None
    s.handle(ev.Digit("1"), at(631))
    assert played(s.handle(ev.QueueExited("callback"), at(631.1)))
    finish(s, 640)
    (request,) = of(press(s, "1", 641), act.RequestCallback)
    assert request.place_since == at(601)


# --- any events -------------------------------------------------------------------------------------

EVENTS = st.sampled_from(
    [
        ("key", "1"),
        ("key", "1"),
        ("key", "2"),
        ("key", "5"),
        ("key", "#"),
        ("key", "601234567#"),
        ("exit", "callback"),
        ("exit", "callback"),
        ("exit", "max_wait"),
        ("answered",),
        ("playback",),
        ("playback",),
        ("timer",),
        ("timer",),
        ("stored",),
        ("refused",),
        ("hangup",),
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([CALLER, None]), st.lists(EVENTS, max_size=40))
def test_any_events_keep_the_callers_place(caller: str | None, steps: list[tuple[str, ...]]) -> None:
    """Whatever happens, the caller is queued once, every rejoin and call-back keeps the first entry
    time, the key only works while waiting, a call-back is recorded only once stored, and a silent
    caller ends up somewhere."""
    s = queued(caller=caller)
    clock = 0.0
    answered = False
    seen: list[act.Action] = []

    def feed(event: ev.Event) -> None:
        nonlocal clock, answered
        clock += 1.0
        waiting, was_answered = s.waiting_for, answered
        out = s.handle(event, at(clock))
        seen.extend(out)
        if isinstance(event, ev.QueueAnswered) and waiting == "queue":
            answered = True
        if recorded(out, "callback_requested"):
            # stored while the engine waited, or after the caller hung up on the wait
            assert isinstance(event, ev.CallbackStored) and waiting in ("callback", None)
        for action in out:
            if isinstance(action, act.LeaveQueue):
                assert waiting == "queue" and not was_answered and isinstance(event, ev.Digit)
            if isinstance(action, act.Enqueue):
                assert action.since == JOINED
                answered = False
            if isinstance(action, act.RequestCallback):
                assert action.place_since == JOINED
            if isinstance(action, act.RecordEvent):
                assert action.type in act.EVENT_TYPES and action.type != "flow_error", action.data
        assert s.outcome is None or s.outcome in OUTCOMES

    for step in steps:
        match step:
            case ("key", keys):
                for key in keys:
                    feed(ev.Digit(key))
            case ("exit", reason):
                feed(ev.QueueExited(reason))
            case ("answered",):
                feed(ev.QueueAnswered())
            case ("playback",):
                feed(ev.PlaybackFinished(s.playback_id or "p0"))
            case ("timer",):
                feed(ev.TimerFired(s.timer_id or "t0"))
            case ("stored",):
                feed(ev.CallbackStored("cb1"))
            case ("refused",):
                feed(ev.CallbackRefused("not an international number"))
            case _:
                feed(ev.Hangup())
    for _ in range(50):
        if s.ended:
            break
        if s.playback_id is not None:
            feed(ev.PlaybackFinished(s.playback_id))
        elif s.waiting_for == "callback":
            feed(ev.CallbackStored("cb1"))
        else:
            assert s.timer_id is not None, s.waiting_for
            feed(ev.TimerFired(s.timer_id))
    assert s.outcome in ("queue", "callback", "hangup", "abandoned")
    types = [a.type for a in seen if isinstance(a, act.RecordEvent)]
    assert types.count("queued") == 0  # recorded once, on entering the queue node, before these events
    assert types.count("callback_chosen") == len(of(seen, act.LeaveQueue))
    assert len(of(seen, act.Hangup)) <= 1


# --- the simulator -------------------------------------------------------------------------------------


def test_the_simulator_walks_the_offer() -> None:
    flows = FlowSet(
        {
            "main": Flow.model_validate(
                {"flow": "main", "start": "node", "nodes": {"node": QUEUE, "busy": {"hangup": "goodbye"}}}
            )
        }
    )
    keys, unused = scripted(["1", "1"])
    journey = simulate(flows, "main", keys=keys, start=JOINED, caller=CALLER)
    texts = [step.text for step in journey.steps]
    assert "hear sound:vm-press sound:digits/1 sound:vm-tocallback (the call-back offer)" in texts
    assert "leave the queue (callback)" in texts
    assert journey.outcome == "callback"
    assert isinstance(journey.final, act.Hangup)
    assert [e.type for e in journey.contact_events if e.type.startswith("callback")] == [
        "callback_chosen",
        "callback_requested",
    ]
    chosen = next(e for e in journey.contact_events if e.type == "callback_chosen")
    assert chosen.data["waited"] == 30.0 + 3 * 1.0 + 0.3  # offered after 30 s, three sounds, then the key
    assert unused() == ()


def test_the_simulator_ends_in_the_queue_when_the_caller_keeps_waiting() -> None:
    flows = FlowSet(
        {
            "main": Flow.model_validate(
                {"flow": "main", "start": "node", "nodes": {"node": QUEUE, "busy": {"hangup": "goodbye"}}}
            )
        }
    )
    keys, _ = scripted(["wait"])
    journey = simulate(flows, "main", keys=keys, start=JOINED, caller=CALLER)
    assert journey.outcome == "queue"
    assert isinstance(journey.final, act.Enqueue)
    assert sum("call-back offer" in step.text for step in journey.steps) == 1


# --- lint -------------------------------------------------------------------------------------------


def test_lint_finds_the_offers_prompts_in_the_sounds_folder() -> None:
    text = (
        "flow: main\n"
        "sounds: sounds\n"
        "start: q\n"
        "nodes:\n"
        "  q:\n"
        "    queue:\n"
        "      name: support\n"
        "      callback:\n"
        "        offer: press-9\n"
        "        key: 9\n"
        "    overflow: bye\n"
        "  bye:\n"
        "    hangup: goodbye\n"
    )
    defaults = ("vm-num-i-have", "if-correct-press", "digits/1", "vm-calldiffnum", "vm-enter-num-to-call")
    available = frozenset(f"en/{name}" for name in (*defaults, "astcc-followed-by-the-pound-key", "goodbye"))
    with pytest.raises(FlowErrors) as raised:
        parse_flow(text, "main.yaml", sounds=available)
    assert [str(e) for e in raised.value.errors] == [
        "main.yaml:8:7: nodes.q.queue.callback.done: prompt 'auth-thankyou' is missing from sounds folder "
        "'sounds': en/auth-thankyou",
        "main.yaml:9:16: nodes.q.queue.callback.offer: prompt 'press-9' is missing from sounds folder "
        "'sounds': en/press-9",
    ]
