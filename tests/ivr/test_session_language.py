"""Choosing the caller's language by key or setting it, and how prompts follow it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ivr import actions as act
from ivr import events as ev
from ivr.flowset import FlowSet
from ivr.model import Flow
from ivr.session import Session
from support.session import finish, fire, recorded

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def session(language: dict[str, Any], **flow: Any) -> Session:
    spec = {
        "flow": "main",
        "languages": ["en", "pl", "de"],
        "prompts": {"hello": {"en": "hello", "pl": "dzien-dobry", "de": "guten-tag"}},
        "start": "choose",
        "nodes": {
            "choose": {"next": "greet", **language},
            "greet": {"play": "hello", "next": "bye"},
            "bye": {"hangup": None},
        },
        **flow,
    }
    return Session(FlowSet({"main": Flow.model_validate(spec)}), "main")


def start(s: Session, **variables: str) -> list[act.Action]:
    return s.handle(ev.CallStarted(caller="+48221234567", dialed="100", variables=variables), NOW)


BY_KEY = {"language": {"1": "en", "2": "pl"}, "prompt": "choose-language", "timeout": 3, "retries": 1}


def test_a_key_chooses_the_language() -> None:
    s = session(BY_KEY)
    out = start(s)
    assert out[-1] == act.Play("p1", ("sound:choose-language",), "en", True)
    assert finish(s) == [act.StartTimer("t1", 3.0)]
    out = s.handle(ev.Digit("2"), NOW)
    assert out == [
        act.CancelTimer("t1"),
        act.SetVariable("CHANNEL(language)", "pl"),
        act.RecordEvent("language_chosen", {"language": "pl", "how": "key"}),
        act.RecordEvent("node_entered", {"node": "greet", "flow": "main", "type": "play"}),
        act.Play("p2", ("sound:dzien-dobry",), "pl", False),
    ]
    assert s.language == "pl"


def test_a_key_during_the_prompt_chooses_at_once() -> None:
    s = session(BY_KEY)
    start(s)
    out = s.handle(ev.Digit("2"), NOW)
    assert out[0] == act.StopPlayback("p1")
    assert s.language == "pl"


def test_a_wrong_key_asks_again_then_falls_back_to_the_default() -> None:
    s = session({**BY_KEY, "default": "pl"})
    start(s)
    finish(s)
    out = s.handle(ev.Digit("7"), NOW)
    assert recorded(out, "invalid_input") == [{"node": "choose", "digits": "7"}]
    assert [a.media for a in out if isinstance(a, act.Play)] == [("sound:choose-language",)]
    finish(s)
    out = fire(s)
    assert recorded(out, "no_input") == [{"node": "choose"}]
    assert recorded(out, "language_chosen") == [{"language": "pl", "how": "default"}]
    assert s.node == "greet"


def test_without_a_default_the_flows_first_language_is_taken() -> None:
    s = session({**BY_KEY, "retries": 0}, languages=["de", "en", "pl"])
    start(s)
    finish(s)
    out = fire(s)
    assert recorded(out, "language_chosen") == [{"language": "de", "how": "default"}]


@pytest.mark.parametrize(
    ("value", "variables", "language", "chosen"),
    [
        ("pl", {}, "pl", True),
        ("{lang}", {"lang": "de"}, "de", True),
        ("{lang}", {"lang": "fr"}, "en", False),  # not one of the flow's languages: kept
        ("{lang}", {}, "en", False),
    ],
)
def test_setting_the_language(value: str, variables: dict[str, str], language: str, chosen: bool) -> None:
    s = session({"language": value})
    out = start(s, **variables)
    assert s.language == language
    assert recorded(out, "language_chosen") == ([{"language": language, "how": "set"}] if chosen else [])
    assert next(a for a in out if isinstance(a, act.Play)).language == language


def test_caller_hangs_up_while_choosing() -> None:
    s = session(BY_KEY)
    start(s)
    finish(s)
    out = s.handle(ev.Hangup(), NOW)
    assert recorded(out, "abandoned") == [{"node": "choose", "flow": "main", "where": "ivr"}]
    assert s.outcome == "abandoned"
