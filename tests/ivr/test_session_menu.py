"""Menus: options of one or more keys, invalid keys, silence, retries, the repeat key, barge-in and
type-ahead, and a caller hanging up at each step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ivr import actions as act
from ivr import events as ev
from ivr.flowset import FlowSet
from ivr.model import Flow
from ivr.session import Session
from support.session import finish, fire, played, press, recorded, start

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def session(menu: dict[str, Any], first: str = "menu", **nodes: Any) -> Session:
    spec = {
        "flow": "main",
        "start": first,
        "nodes": {
            "menu": {"menu": "main-menu", "options": {"1": "sales", "2": "support"}, **menu},
            "sales": {"play": "sales", "next": "bye"},
            "support": {"play": "support", "next": "bye"},
            "sorry": {"play": "sorry", "next": "bye"},
            "bye": {"hangup": None},
            **nodes,
        },
    }
    return Session(FlowSet({"main": Flow.model_validate(spec)}), "main")


def test_menu_plays_then_waits_then_takes_an_option() -> None:
    s = session({"timeout": 4})
    out = start(s)
    assert out[-1] == act.Play("p1", ("sound:main-menu",), "en", True)
    assert finish(s) == [act.StartTimer("t1", 4.0)]
    assert s.waiting_for == "input"
    out = press(s, "2")
    assert out[:3] == [
        act.CancelTimer("t1"),
        act.RecordEvent("option_chosen", {"node": "menu", "digits": "2", "target": "support"}),
        act.RecordEvent("node_entered", {"node": "support", "flow": "main", "type": "play"}),
    ]
    assert played(out) == [("sound:support",)]
    assert s.handle(ev.TimerFired("t1"), NOW) == []  # cancelled: a late one is stale


def test_multi_digit_options_wait_the_inter_digit_timeout() -> None:
    s = session({"options": {"1": "sales", "21": "support", "22": "sorry"}, "inter_digit_timeout": 1.5})
    start(s)
    finish(s)
    assert press(s, "2") == [act.CancelTimer("t1"), act.StartTimer("t2", 1.5)]
    out = press(s, "2")
    assert recorded(out, "option_chosen") == [{"node": "menu", "digits": "22", "target": "sorry"}]


def test_a_prefix_left_alone_is_invalid() -> None:
    s = session({"options": {"1": "sales", "21": "support"}})
    start(s)
    finish(s)
    press(s, "2")
    out = fire(s)
    assert recorded(out, "invalid_input") == [{"node": "menu", "digits": "2"}]
    assert played(out) == [("sound:pm-invalid-option",)]


def test_invalid_key_plays_invalid_then_repeats_the_menu() -> None:
    s = session({"invalid": ["wrong", "try-again"]})
    start(s)
    finish(s)
    out = press(s, "7")
    assert recorded(out, "invalid_input") == [{"node": "menu", "digits": "7"}]
    assert played(out) == [("sound:wrong", "sound:try-again")]
    out = finish(s)
    assert played(out) == [("sound:main-menu",)]
    finish(s)
    out = press(s, "1")
    assert recorded(out, "option_chosen") == [{"node": "menu", "digits": "1", "target": "sales"}]
    assert s.path == ("menu", "sales")


def test_silence_records_no_input_and_repeats() -> None:
    s = session({"no_input": "are-you-there"})
    start(s)
    finish(s)
    out = fire(s)
    assert recorded(out, "no_input") == [{"node": "menu"}]
    assert played(out) == [("sound:are-you-there",)]
    assert played(finish(s)) == [("sound:main-menu",)]


def test_silence_without_a_no_input_prompt_repeats_at_once() -> None:
    s = session({})
    start(s)
    finish(s)
    out = fire(s)
    assert played(out) == [("sound:main-menu",)]


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_after_the_retries_the_menu_goes_to_failure(retries: int) -> None:
    s = session({"retries": retries, "failure": "sorry"})
    start(s)
    for _ in range(retries):
        finish(s)
        fire(s)
        assert s.node == "menu"
    finish(s)
    out = fire(s)
    assert recorded(out, "node_entered") == [{"node": "sorry", "flow": "main", "type": "play"}]


def test_after_the_retries_without_failure_the_flow_hangs_up() -> None:
    s = session({"retries": 1, "invalid": []})
    start(s)
    finish(s)
    press(s, "9")
    finish(s)
    out = press(s, "9")
    assert recorded(out, "invalid_input") == [{"node": "menu", "digits": "9"}]
    assert out[-1] == act.Hangup("normal")
    assert (s.outcome, s.path) == ("hangup", ("menu",))


def test_the_last_invalid_prompt_plays_before_failure() -> None:
    s = session({"retries": 0, "failure": "sorry"})
    start(s)
    finish(s)
    out = press(s, "9")
    assert played(out) == [("sound:pm-invalid-option",)]
    assert s.node == "menu"
    finish(s)
    assert s.node == "sorry"


def test_repeat_key_replays_and_counts_as_an_attempt() -> None:
    s = session({"repeat": "*", "retries": 2, "failure": "sorry"})
    start(s)
    finish(s)
    out = press(s, "*")
    assert out == [act.CancelTimer("t1"), act.Play("p2", ("sound:main-menu",), "en", True)]
    finish(s)
    press(s, "*")
    finish(s)
    out = press(s, "*")  # a caller holding down * reaches the failure node
    assert s.node == "sorry"
    assert recorded(out, "invalid_input") == []


def test_an_option_wins_over_the_repeat_key() -> None:
    s = session({"options": {"*": "sales", "1": "support"}, "repeat": "*"})
    start(s)
    finish(s)
    assert recorded(press(s, "*"), "option_chosen") == [{"node": "menu", "digits": "*", "target": "sales"}]


def test_barge_in_key_during_the_menu_prompt_is_taken() -> None:
    s = session({})
    start(s)
    out = press(s, "1")
    assert out[:2] == [
        act.StopPlayback("p1"),
        act.RecordEvent("option_chosen", {"node": "menu", "digits": "1", "target": "sales"}),
    ]


def test_without_barge_in_keys_during_the_menu_prompt_are_ignored() -> None:
    s = session({"barge_in": False})
    start(s)
    assert press(s, "1") == []
    assert finish(s) == [act.StartTimer("t1", 5.0)]
    assert recorded(press(s, "2"), "option_chosen")[0]["target"] == "support"


def test_barge_in_during_the_invalid_prompt_answers_the_repeated_menu() -> None:
    s = session({})
    start(s)
    finish(s)
    press(s, "9")
    out = press(s, "2")
    assert out[0] == act.StopPlayback("p2")
    assert played(out) == [("sound:support",)]  # the menu prompt was skipped
    assert recorded(out, "option_chosen") == [{"node": "menu", "digits": "2", "target": "support"}]


def test_quick_keys_run_through_nested_menus() -> None:
    s = session(
        {"options": {"1": "second"}},
        second={"menu": "second-menu", "options": {"2": "third"}},
        third={"menu": "third-menu", "options": {"3": "bye"}},
    )
    start(s)
    # each key stops the prompt it falls in and is taken by that menu
    out = press(s, "123")
    assert [a for a in out if isinstance(a, act.StopPlayback)] == [
        act.StopPlayback("p1"),
        act.StopPlayback("p2"),
        act.StopPlayback("p3"),
    ]
    assert s.path == ("menu", "second", "third", "bye")
    assert out[-1] == act.Hangup("normal")


def test_a_wrong_key_typed_ahead_is_retried_then_the_next_key_is_taken() -> None:
    s = session({"invalid": []}, first="welcome", welcome={"play": "hello", "barge_in": True, "next": "menu"})
    start(s)
    out = press(s, "9")  # stops the welcome; the menu finds 9 invalid and asks again
    assert recorded(out, "invalid_input") == [{"node": "menu", "digits": "9"}]
    assert played(out) == [("sound:main-menu",)]
    assert s.waiting_for == "playback"
    out = press(s, "1")
    assert recorded(out, "option_chosen") == [{"node": "menu", "digits": "1", "target": "sales"}]


@pytest.mark.parametrize("step", ["prompt", "waiting", "prefix", "invalid prompt"])
def test_caller_hangs_up_at_each_step_of_a_menu(step: str) -> None:
    s = session({"options": {"1": "sales", "21": "support"}})
    start(s)
    if step != "prompt":
        finish(s)
    if step == "prefix":
        press(s, "2")
    if step == "invalid prompt":
        press(s, "9")
    out = s.handle(ev.Hangup(), NOW)
    assert recorded(out, "abandoned") == [{"node": "menu", "flow": "main", "where": "ivr"}]
    assert not any(isinstance(a, act.Play | act.StartTimer | act.Hangup) for a in out)
    stops = [a for a in out if isinstance(a, act.StopPlayback | act.CancelTimer)]
    assert len(stops) == 1
    assert (s.outcome, s.waiting_for) == ("abandoned", None)
