"""The session's frame: starting a call, play, say, set, goto, hangup, prompts, stale and stray events,
a caller hanging up, and flows that go wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ivr import actions as act
from ivr import events as ev
from ivr.flowset import FlowSet
from ivr.model import Flow
from ivr.session import MAX_STEPS, Session
from support.session import played

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def flow(nodes: dict[str, Any], **extra: Any) -> Flow:
    return Flow.model_validate({"flow": "main", "start": next(iter(nodes)), "nodes": nodes, **extra})


def session(nodes: dict[str, Any], **extra: Any) -> Session:
    return Session(FlowSet({"main": flow(nodes, **extra)}), "main")


def start(s: Session, caller: str | None = "+48221234567", **kw: Any) -> list[act.Action]:
    return s.handle(ev.CallStarted(caller=caller, dialed="100", **kw), NOW)


def finish(s: Session) -> list[act.Action]:
    assert s.playback_id is not None
    return s.handle(ev.PlaybackFinished(s.playback_id), NOW)


def recorded(out: list[act.Action], type_: str | None = None) -> list[Any]:
    found = [(a.type, a.data) for a in out if isinstance(a, act.RecordEvent)]
    return [data for t, data in found if t == type_] if type_ else found


GOODBYE = {"hangup": {"prompt": "goodbye"}}


# --- starting a call -------------------------------------------------------------------------------


def test_call_started_sets_variables_records_and_enters_start() -> None:
    s = session(
        {"welcome": {"play": "hello", "next": "bye"}, "bye": GOODBYE},
        variables={"tier": "standard", "vip": True, "caller": "ignored"},
    )
    assert s.waiting_for == "call"
    out = start(s, variables={"campaign": "spring", "tier": "gold"}, caller_name="Ann")
    assert out == [
        act.RecordEvent(
            "call_started",
            {"flow": "main", "caller": "+48221234567", "caller_withheld": False, "dialed": "100"},
        ),
        act.RecordEvent("node_entered", {"node": "welcome", "flow": "main", "type": "play"}),
        act.Play("p1", ("sound:hello",), "en", False),
    ]
    assert dict(s.variables) == {
        "campaign": "spring",
        "tier": "gold",  # a channel variable wins over the flow's default
        "caller": "+48221234567",
        "caller_withheld": "false",
        "dialed": "100",
        "caller_name": "Ann",
        "vip": "true",
    }
    assert (s.node, s.flow, s.path, s.waiting_for, s.ended) == (
        "welcome",
        "main",
        ("welcome",),
        "playback",
        False,
    )


@pytest.mark.parametrize("caller", [None, "", "anonymous", "Anonymous"])
def test_withheld_caller(caller: str | None) -> None:
    s = session({"bye": GOODBYE})
    start(s, caller=caller)
    assert s.variables["caller"] == ""
    assert s.variables["caller_withheld"] == "true"


def test_events_before_the_call_starts_are_ignored() -> None:
    s = session({"welcome": {"play": "hello", "next": "bye"}, "bye": GOODBYE})
    for event in (ev.Digit("1"), ev.PlaybackFinished("p1"), ev.TimerFired("t1"), ev.Hangup()):
        assert s.handle(event, NOW) == []
    assert s.waiting_for == "call"
    assert played(start(s)) == [("sound:hello",)]


def test_a_second_call_started_is_ignored() -> None:
    s = session({"welcome": {"play": "hello", "next": "bye"}, "bye": GOODBYE})
    start(s)
    assert start(s, caller="+1") == []
    assert s.variables["caller"] == "+48221234567"


def test_unknown_start_flow_is_refused_with_the_loaded_names() -> None:
    with pytest.raises(ValueError, match=r"flow 'sales' is not loaded \(loaded flows: main\)"):
        Session(FlowSet({"main": flow({"bye": GOODBYE})}), "sales")


# --- play -----------------------------------------------------------------------------------------


def test_play_goes_next_when_the_playback_finishes() -> None:
    s = session({"welcome": {"play": ["hello", "thanks"], "next": "bye"}, "bye": {"hangup": None}})
    start(s)
    assert s.handle(ev.PlaybackFinished("p1"), NOW) == [
        act.RecordEvent("node_entered", {"node": "bye", "flow": "main", "type": "hangup"}),
        act.RecordEvent("hung_up", {"by": "flow", "node": "bye", "flow": "main"}),
        act.Hangup("normal"),
    ]
    assert (s.ended, s.outcome, s.waiting_for) == (True, "hangup", None)


def test_stale_and_unknown_playback_ids_are_ignored() -> None:
    s = session({"welcome": {"play": "hello", "next": "bye"}, "bye": GOODBYE})
    start(s)
    assert s.handle(ev.PlaybackFinished("p7"), NOW) == []
    assert s.handle(ev.TimerFired("p1"), NOW) == []
    assert s.handle(ev.LookupFailed("p1", "x"), NOW) == []
    assert s.node == "welcome"
    finish(s)
    assert s.handle(ev.PlaybackFinished("p1"), NOW) == []
    assert s.node == "bye"


def test_keys_during_a_prompt_without_barge_in_are_ignored() -> None:
    s = session(
        {
            "welcome": {"play": "hello", "next": "menu"},
            "menu": {"menu": "main-menu", "options": {"1": "bye"}},
            "bye": GOODBYE,
        }
    )
    start(s)
    assert s.handle(ev.Digit("1"), NOW) == []
    out = finish(s)
    assert played(out) == [("sound:main-menu",)]  # the 1 was not kept for the menu
    assert s.node == "menu"


def test_barge_in_stops_the_prompt_and_keeps_the_key_for_the_next_input() -> None:
    s = session(
        {
            "welcome": {"play": "hello", "barge_in": True, "next": "news"},
            "news": {"play": "news", "next": "menu"},
            "menu": {"menu": "main-menu", "options": {"1": "sales", "2": "bye"}},
            "sales": {"play": "sales", "next": "bye"},
            "bye": GOODBYE,
        }
    )
    start(s)
    out = s.handle(ev.Digit("1"), NOW)
    # a prompt without barge-in still plays after the type-ahead
    assert out[0] == act.StopPlayback("p1")
    assert played(out) == [("sound:news",)]
    out = finish(s)
    assert recorded(out, "option_chosen") == [{"node": "menu", "digits": "1", "target": "sales"}]
    assert played(out) == [("sound:sales",)]
    assert s.path == ("welcome", "news", "menu", "sales")


def test_a_barge_in_prompt_is_skipped_when_the_caller_typed_ahead() -> None:
    s = session(
        {
            "welcome": {"play": "hello", "barge_in": True, "next": "news"},
            "news": {"play": "news", "barge_in": True, "next": "menu"},
            "menu": {"menu": "main-menu", "options": {"12": "sales"}},
            "sales": GOODBYE,
        }
    )
    start(s)
    out = s.handle(ev.Digit("1"), NOW)
    assert played(out) == []
    assert s.node == "menu"
    assert [a for a in out if isinstance(a, act.StartTimer)] == [act.StartTimer("t1", 2.0)]
    out = s.handle(ev.Digit("2"), NOW)
    assert recorded(out, "option_chosen") == [{"node": "menu", "digits": "12", "target": "sales"}]
    # the stopped playback's late PlaybackFinished is stale
    assert s.handle(ev.PlaybackFinished("p1"), NOW) == []


@pytest.mark.parametrize("key", ["", "12", "x", "E", " "])
def test_keys_that_are_not_keys_are_ignored(key: str) -> None:
    s = session(
        {"menu": {"menu": "main-menu", "options": {"1": "bye"}}, "bye": GOODBYE},
    )
    start(s)
    assert s.handle(ev.Digit(key), NOW) == []
    assert s.playback_id == "p1"


# --- say ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "as_", "media"),
    [
        ("{account}", "digits", "digits:0012*#"),
        ("{balance}", "number", "number:-42"),
        ("{code}", "characters", "characters:AB-12ok"),
        ("{missing}", "number", None),
        ("{missing}", "digits", None),
        ("x{code}y", "characters", "characters:xAB-12oky"),
    ],
)
def test_say_values(value: str, as_: str, media: str | None) -> None:
    s = session(
        {
            "say": {"say": value, "as": as_, "before": "your", "after": "thanks", "next": "bye"},
            "bye": GOODBYE,
        }
    )
    out = start(s, variables={"account": "00-12 *#", "balance": "-42.75", "code": "AB-12, ok?"})
    expected = ("sound:your", media, "sound:thanks") if media else ("sound:your", "sound:thanks")
    assert played(out) == [expected]


def test_say_with_nothing_to_say_goes_straight_on() -> None:
    s = session({"say": {"say": "{nothing}", "as": "number", "next": "bye"}, "bye": {"hangup": None}})
    start(s)
    assert s.outcome == "hangup"
    assert s.path == ("say", "bye")


def test_say_barge_in() -> None:
    s = session(
        {
            "say": {"say": "123", "barge_in": True, "next": "menu"},
            "menu": {"menu": "m", "options": {"5": "bye"}},
            "bye": {"hangup": None},
        }
    )
    start(s)
    out = s.handle(ev.Digit("5"), NOW)
    assert out[0] == act.StopPlayback("p1")
    assert recorded(out, "option_chosen") == [{"node": "menu", "digits": "5", "target": "bye"}]


# --- set ------------------------------------------------------------------------------------------


def test_set_fills_templates_in_order_and_sets_channel_variables() -> None:
    s = session(
        {
            "set": {
                "set": {"greeting": "hi {caller_name}", "vip": False, "score": 1.5, "copy": "{greeting}!{x}"},
                "next": "bye",
            },
            "bye": {"hangup": None},
        }
    )
    out = start(s, caller_name="Ann")
    assert [a for a in out if isinstance(a, act.SetVariable)] == [
        act.SetVariable("greeting", "hi Ann"),
        act.SetVariable("vip", "false"),
        act.SetVariable("score", "1.5"),
        act.SetVariable("copy", "hi Ann!"),
    ]
    assert s.variables["copy"] == "hi Ann!"


# --- goto and prompts -------------------------------------------------------------------------------


def two_flows() -> FlowSet:
    main = flow(
        {
            "welcome": {"play": "hello", "next": "jump"},
            "jump": {"goto": {"flow": "shared"}},
            "local": {"goto": "welcome"},
        },
        languages=["pl", "en"],
        prompts={"hello": {"en": "hello-en", "pl": "witaj"}},
        variables={"tier": "standard"},
    )
    shared = Flow.model_validate(
        {
            "flow": "shared",
            "languages": ["en"],
            "sounds": "sounds/shared/",
            "prompts": {"sorry": "all-busy", "bye": {"en": "goodbye-now"}},
            "variables": {"tier": "gold", "reason": "busy"},
            "start": "sorry",
            "nodes": {
                "sorry": {"play": ["sorry", "im-sorry"], "next": "end"},
                "end": {"hangup": "bye"},
                "back": {"goto": {"flow": "main", "node": "welcome"}},
            },
        }
    )
    return FlowSet({"main": main, "shared": shared})


def test_prompts_resolve_per_language_without_a_sounds_folder() -> None:
    s = Session(two_flows(), "main")
    out = start(s)
    assert out[-1] == act.Play("p1", ("sound:witaj",), "pl", False)


def test_goto_another_flow_switches_prompts_language_and_defaults() -> None:
    s = Session(two_flows(), "main")
    start(s)
    out = finish(s)
    assert recorded(out) == [
        ("node_entered", {"node": "jump", "flow": "main", "type": "goto"}),
        ("language_chosen", {"language": "en", "how": "default"}),
        ("node_entered", {"node": "sorry", "flow": "shared", "type": "play"}),
    ]
    assert act.SetVariable("CHANNEL(language)", "en") in out
    assert played(out) == [("sound:sounds/shared/en/all-busy", "sound:sounds/shared/en/im-sorry")]
    assert (s.flow, s.language, s.variables["tier"], s.variables["reason"]) == (
        "shared",
        "en",
        "standard",
        "busy",
    )
    out = finish(s)
    assert played(out) == [("sound:sounds/shared/en/goodbye-now",)]
    assert s.path == ("welcome", "jump", "shared:sorry", "shared:end")


def test_goto_a_named_node_of_another_flow_and_back() -> None:
    main = flow({"jump": {"goto": {"flow": "shared", "node": "back"}}, "bye": {"hangup": None}})
    shared = Flow.model_validate(
        {
            "flow": "shared",
            "start": "sorry",
            "nodes": {"sorry": {"hangup": None}, "back": {"goto": {"flow": "main", "node": "bye"}}},
        }
    )
    s = Session(FlowSet({"main": main, "shared": shared}), "main")
    start(s)
    assert s.path == ("jump", "shared:back", "bye")
    assert (s.flow, s.outcome) == ("main", "hangup")


def test_goto_a_local_node() -> None:
    s = session({"start": {"goto": "end"}, "end": {"hangup": None}})
    start(s)
    assert s.path == ("start", "end")
    assert s.outcome == "hangup"


# --- hangup -----------------------------------------------------------------------------------------


def test_hangup_plays_its_prompt_then_hangs_up_with_its_cause() -> None:
    s = session({"bye": {"hangup": {"prompt": ["thanks", "goodbye"], "cause": "busy"}}})
    out = start(s)
    assert played(out) == [("sound:thanks", "sound:goodbye")]
    assert (s.ended, s.waiting_for) == (False, "playback")
    out = finish(s)
    assert out == [
        act.RecordEvent("hung_up", {"by": "flow", "node": "bye", "flow": "main"}),
        act.Hangup("busy"),
    ]
    assert (s.ended, s.outcome, s.waiting_for) == (True, "hangup", None)


def test_events_after_the_end_are_ignored() -> None:
    s = session({"bye": {"hangup": None}})
    start(s)
    for event in (
        ev.Digit("1"),
        ev.PlaybackFinished("p1"),
        ev.Hangup(),
        ev.QueueExited(),
        ev.RecordingFinished(3),
    ):
        assert s.handle(event, NOW) == []
    assert s.outcome == "hangup"


def test_caller_hanging_up_during_the_goodbye_keeps_the_outcome() -> None:
    s = session({"bye": {"hangup": "goodbye"}})
    start(s)
    out = s.handle(ev.Hangup(), NOW)
    assert out == [
        act.StopPlayback("p1"),
        act.RecordEvent("hung_up", {"by": "caller", "node": "bye", "flow": "main"}),
    ]
    assert s.outcome == "hangup"


# --- the caller hangs up --------------------------------------------------------------------------


def test_caller_hanging_up_during_a_prompt_abandons_the_call() -> None:
    s = session({"welcome": {"play": "hello", "next": "bye"}, "bye": GOODBYE})
    start(s)
    out = s.handle(ev.Hangup(), NOW)
    assert out == [
        act.StopPlayback("p1"),
        act.RecordEvent("abandoned", {"node": "welcome", "flow": "main", "where": "ivr"}),
    ]
    assert (s.ended, s.outcome, s.waiting_for) == (True, "abandoned", None)
    assert s.handle(ev.PlaybackFinished("p1"), NOW) == []


def test_caller_hanging_up_while_a_menu_waits_cancels_its_timer() -> None:
    s = session({"menu": {"menu": "m", "options": {"1": "bye"}}, "bye": GOODBYE})
    start(s)
    finish(s)
    assert s.timer_id == "t1"
    out = s.handle(ev.Hangup(), NOW)
    assert out == [
        act.CancelTimer("t1"),
        act.RecordEvent("abandoned", {"node": "menu", "flow": "main", "where": "ivr"}),
    ]
    assert s.handle(ev.TimerFired("t1"), NOW) == []


# --- the service hangs up --------------------------------------------------------------------------


def test_the_service_stopping_during_a_menu_hangs_up_without_an_abandon() -> None:
    s = session({"menu": {"menu": "m", "options": {"1": "bye"}}, "bye": GOODBYE})
    start(s)
    finish(s)
    out = s.handle(ev.ServiceHangup("service_stopping"), NOW)
    assert out == [
        act.CancelTimer("t1"),
        act.RecordEvent(
            "hung_up", {"by": "service", "node": "menu", "flow": "main", "reason": "service_stopping"}
        ),
        act.Hangup("normal"),
    ]
    assert (s.ended, s.outcome, s.waiting_for) == (True, "hangup", None)
    assert s.handle(ev.Hangup(), NOW) == []  # the channel's end afterwards adds nothing


def test_a_fault_ending_the_call_is_a_flow_error_with_its_reason() -> None:
    s = session({"welcome": {"play": "hello", "next": "bye"}, "bye": GOODBYE})
    start(s)
    out = s.handle(ev.ServiceHangup("agi_error", "Asterisk sent 'garbage', no AGI answer"), NOW)
    assert recorded(out) == [
        (
            "flow_error",
            {"node": "welcome", "flow": "main", "reason": "Asterisk sent 'garbage', no AGI answer"},
        ),
        ("hung_up", {"by": "service", "node": "welcome", "flow": "main", "reason": "agi_error"}),
    ]
    assert act.StopPlayback("p1") in out and out[-1] == act.Hangup("normal")
    assert s.outcome == "hangup"


def test_the_service_ending_a_handed_off_call_keeps_its_outcome() -> None:
    s = session({"out": {"transfer": {"extension": "operator"}}})
    start(s)
    assert s.outcome == "transfer"
    out = s.handle(ev.ServiceHangup("service_stopping"), NOW)
    assert recorded(out, "hung_up") == [
        {"by": "service", "node": "out", "flow": "main", "reason": "service_stopping"}
    ]
    assert (s.outcome, s.waiting_for) == ("transfer", None)


def test_the_service_hanging_up_before_the_call_starts_or_after_it_ended_does_nothing() -> None:
    s = session({"bye": {"hangup": None}})
    assert s.handle(ev.ServiceHangup("service_stopping"), NOW) == []
    start(s)
    assert s.handle(ev.ServiceHangup("service_stopping"), NOW) == []
    assert s.outcome == "hangup"


# --- flows that go wrong ----------------------------------------------------------------------------


def test_a_flow_spinning_without_waiting_is_hung_up() -> None:
    s = session({"a": {"goto": "b"}, "b": {"set": {"n": "1"}, "next": "a"}})
    out = start(s)
    errors = recorded(out, "flow_error")
    assert len(errors) == 1
    assert "flow loops" in errors[0]["reason"]
    assert out[-1] == act.Hangup("normal")
    assert len(recorded(out, "node_entered")) == MAX_STEPS
    assert (s.outcome, s.waiting_for) == ("hangup", None)


def test_an_unknown_target_is_a_flow_error_not_an_exception() -> None:
    s = session({"welcome": {"play": "hello", "next": "nowhere"}})
    start(s)
    out = finish(s)
    assert recorded(out, "flow_error") == [
        {
            "node": "welcome",
            "flow": "main",
            "reason": "flow 'main' has no node 'nowhere'; correct the target's name",
        }
    ]
    assert out[-1] == act.Hangup("normal")


def test_a_goto_to_an_unloaded_flow_is_a_flow_error() -> None:
    s = session({"jump": {"goto": {"flow": "gone", "node": "x"}}})
    out = start(s)
    assert "flow 'gone'" in recorded(out, "flow_error")[0]["reason"]
    assert s.outcome == "hangup"


def test_a_naive_time_is_taken_as_utc() -> None:
    s = session(
        {
            "check": {
                "branch": [{"if": {"schedule": "office"}, "goto": "open"}],
                "else": "closed",
            },
            "open": {"hangup": None},
            "closed": {"hangup": None},
        },
        schedules={"office": {"timezone": "UTC", "hours": {"mon-sun": "09:00-17:00"}}},
    )
    s.handle(ev.CallStarted(caller="1", dialed="2"), datetime(2026, 3, 4, 10, 0))
    assert s.path == ("check", "open")
