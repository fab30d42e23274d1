"""Collecting digits: terminator, lengths, timeouts, patterns, read-back confirmation, retries, barge-in
and type-ahead, and a caller hanging up at each step."""

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


def session(collect: dict[str, Any], first: str = "account", **nodes: Any) -> Session:
    spec = {
        "flow": "main",
        "start": first,
        "nodes": {
            "account": {"collect": "account", "prompt": "enter-account", "next": "thanks", **collect},
            "thanks": {"play": "thanks", "next": "bye"},
            "sorry": {"play": "sorry", "next": "bye"},
            "bye": {"hangup": None},
            **nodes,
        },
    }
    return Session(FlowSet({"main": Flow.model_validate(spec)}), "main")


def collected(out: list[act.Action]) -> list[Any]:
    return recorded(out, "input_collected")


def test_digits_until_the_terminator() -> None:
    s = session({})
    start(s)
    assert finish(s) == [act.StartTimer("t1", 6.0)]
    assert press(s, "4") == [act.CancelTimer("t1"), act.StartTimer("t2", 3.0)]
    press(s, "2")
    out = press(s, "#")
    assert out[:3] == [
        act.CancelTimer("t3"),
        act.SetVariable("account", "42"),
        act.RecordEvent(
            "input_collected", {"node": "account", "variable": "account", "length": 2, "value": "42"}
        ),
    ]
    assert s.variables["account"] == "42"
    assert s.path == ("account", "thanks")


def test_max_length_ends_the_input() -> None:
    s = session({"max_length": 3, "min_length": 3})
    start(s)
    finish(s)
    out = press(s, "123")
    assert collected(out) == [{"node": "account", "variable": "account", "length": 3, "value": "123"}]


def test_inter_digit_timeout_ends_the_input_when_long_enough() -> None:
    s = session({"min_length": 2})
    start(s)
    finish(s)
    press(s, "12")
    out = fire(s)
    assert collected(out)[0]["value"] == "12"


def test_inter_digit_timeout_too_short_is_invalid() -> None:
    s = session({"min_length": 3, "invalid": "too-short"})
    start(s)
    finish(s)
    press(s, "12")
    out = fire(s)
    assert recorded(out, "invalid_input") == [{"node": "account", "digits": "12"}]
    assert played(out) == [("sound:too-short",)]
    assert played(finish(s)) == [("sound:enter-account",)]
    finish(s)
    assert collected(press(s, "123#"))[0]["value"] == "123"


def test_terminator_alone_is_invalid() -> None:
    s = session({})
    start(s)
    finish(s)
    assert recorded(press(s, "#"), "invalid_input") == [{"node": "account", "digits": ""}]


def test_silence_is_no_input_and_asks_again() -> None:
    s = session({"no_input": "are-you-there"})
    start(s)
    finish(s)
    out = fire(s)
    assert recorded(out, "no_input") == [{"node": "account"}]
    assert played(out) == [("sound:are-you-there",)]
    assert played(finish(s)) == [("sound:enter-account",)]


def test_pattern_must_match_the_whole_input() -> None:
    s = session({"pattern": "[12]0[0-9]{2}"})
    start(s)
    finish(s)
    assert recorded(press(s, "30123#"), "invalid_input") == [{"node": "account", "digits": "30123"}]
    finish(s)
    finish(s)
    assert recorded(press(s, "10123#"), "invalid_input") == [{"node": "account", "digits": "10123"}]
    finish(s)
    finish(s)
    assert collected(press(s, "1012#"))[0]["value"] == "1012"


def test_without_a_terminator_hash_is_a_digit() -> None:
    s = session({"terminator": None, "max_length": 3})
    start(s)
    finish(s)
    assert collected(press(s, "1#2"))[0]["value"] == "1#2"


@pytest.mark.parametrize("failure", [None, "sorry"])
def test_after_the_retries(failure: str | None) -> None:
    s = session({"retries": 1, "invalid": [], **({"failure": failure} if failure else {})})
    start(s)
    finish(s)
    press(s, "#")
    finish(s)
    out = fire(s)
    if failure:
        assert s.node == "sorry"
        assert s.outcome is None
    else:
        assert out[-1] == act.Hangup("normal")
        assert s.outcome == "hangup"


def test_barge_in_key_starts_the_input() -> None:
    s = session({})
    start(s)
    out = press(s, "5")
    assert out == [act.StopPlayback("p1"), act.StartTimer("t1", 3.0)]
    assert collected(press(s, "#"))[0]["value"] == "5"


def test_without_barge_in_keys_during_the_prompt_are_ignored() -> None:
    s = session({"barge_in": False})
    start(s)
    assert press(s, "5") == []
    finish(s)
    assert collected(press(s, "7#"))[0]["value"] == "7"


def test_no_prompt_waits_at_once_and_takes_type_ahead() -> None:
    s = session(
        {"prompt": []},
        first="welcome",
        welcome={"play": "hello", "barge_in": True, "next": "account"},
    )
    start(s)
    out = press(s, "9")
    assert out == [
        act.StopPlayback("p1"),
        act.RecordEvent("node_entered", {"node": "account", "flow": "main", "type": "collect"}),
        act.StartTimer("t1", 3.0),
    ]
    assert collected(press(s, "#"))[0]["value"] == "9"


# --- confirmation ---------------------------------------------------------------------------------


def confirming(**confirm: Any) -> Session:
    s = session({"confirm": confirm or True, "retries": 1, "failure": "sorry"})
    start(s)
    finish(s)
    out = press(s, "123#")
    assert played(out) == [
        (
            "sound:you-entered",
            "digits:123",
            "sound:if-correct-press",
            "sound:digits/1",
        )
    ]
    assert collected(out) == []
    return s


def test_confirmed_input_is_kept() -> None:
    s = confirming()
    assert finish(s) == [act.StartTimer("t5", 6.0)]
    out = press(s, "1")
    assert collected(out) == [{"node": "account", "variable": "account", "length": 3, "value": "123"}]


def test_confirm_keys_can_be_chosen() -> None:
    s = confirming(yes="9", no="8")
    out = press(s, "9")  # barge-in: answering during the read-back
    assert collected(out)[0]["value"] == "123"


def test_no_collects_again() -> None:
    s = confirming()
    finish(s)
    out = press(s, "2")
    assert played(out) == [("sound:enter-account",)]
    assert "account" not in s.variables
    finish(s)
    press(s, "45#")
    assert collected(press(s, "1"))[0]["value"] == "45"


def test_no_counts_as_an_attempt() -> None:
    s = confirming()
    press(s, "2")
    finish(s)
    press(s, "45#")
    press(s, "2")
    assert s.node == "sorry"


def test_another_key_is_invalid_and_reads_back_again() -> None:
    s = confirming()
    finish(s)
    out = press(s, "5")
    assert recorded(out, "invalid_input") == [{"node": "account", "digits": "5"}]
    assert played(out) == [("sound:pm-invalid-option",)]
    assert played(finish(s))[0][1] == "digits:123"


def test_silence_at_the_question_counts_as_a_retry() -> None:
    s = confirming()
    finish(s)
    out = fire(s)
    assert recorded(out, "no_input") == [{"node": "account"}]
    assert played(out)[0][1] == "digits:123"
    finish(s)
    fire(s)
    assert s.node == "sorry"


@pytest.mark.parametrize("step", ["prompt", "first key", "digits", "read-back", "question"])
def test_caller_hangs_up_at_each_step(step: str) -> None:
    s = session({"confirm": True})
    start(s)
    if step != "prompt":
        finish(s)
    if step in ("digits", "read-back", "question"):
        press(s, "12")
    if step in ("read-back", "question"):
        press(s, "#")
    if step == "question":
        finish(s)
    out = s.handle(ev.Hangup(), NOW)
    assert recorded(out, "abandoned") == [{"node": "account", "flow": "main", "where": "ivr"}]
    assert len([a for a in out if isinstance(a, act.StopPlayback | act.CancelTimer)]) == 1
    assert "account" not in s.variables
    assert (s.outcome, s.waiting_for) == ("abandoned", None)
