"""CRM lookups: the request, fields from the answer, every way to fail, stale answers and templates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ivr import actions as act
from ivr import events as ev
from ivr.flowset import FlowSet
from ivr.model import Flow
from ivr.session import Session
from ivr.templates import render, render_data, render_header, render_url, text
from support.session import recorded

NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def session(**lookup: Any) -> Session:
    spec = {
        "flow": "main",
        "start": "find",
        "nodes": {
            "find": {
                "lookup": {
                    "url": "https://crm.example/customers?phone={caller}&ref={ref}",
                    "fields": {
                        "name": "customer.name",
                        "tier": "customer.tier",
                        "first_account": "customer.accounts.0.id",
                        "vip": "customer.vip",
                        "address": "customer.address",
                        "missing": "customer.nothing.here",
                        "nothing": "customer.nothing",
                    },
                    **lookup,
                },
                "next": "found",
                "fallback": "unknown",
            },
            "found": {"play": "welcome-back", "next": "bye"},
            "unknown": {"play": "welcome", "next": "bye"},
            "bye": {"hangup": None},
        },
    }
    return Session(FlowSet({"main": Flow.model_validate(spec)}), "main")


def start(s: Session) -> list[act.Action]:
    return s.handle(
        ev.CallStarted(caller="+48221234567", dialed="100", variables={"ref": "a&b c/d", "crlf": "x\r\ny"}),
        NOW,
    )


ANSWER = {
    "customer": {
        "name": "Ann Kowalska",
        "tier": "gold",
        "accounts": [{"id": 1001}, {"id": 1002}],
        "vip": True,
        "address": {"city": "Warszawa"},
        "nothing": None,
    }
}


def test_the_request_and_its_guard_timer() -> None:
    s = session(
        method="POST",
        headers={"X-Caller": "{caller}{crlf}"},
        body={"phone": "{caller}", "tags": ["{ref}", 5]},
        timeout=1.5,
    )
    out = start(s)
    assert out[-2:] == [
        act.Lookup(
            request_id="r1",
            method="POST",
            url="https://crm.example/customers?phone=%2B48221234567&ref=a%26b%20c%2Fd",
            headers={"X-Caller": "+48221234567xy"},
            body={"phone": "+48221234567", "tags": ["a&b c/d", 5]},
            timeout=1.5,
        ),
        act.StartTimer("t1", 2.0),
    ]
    assert (s.waiting_for, s.lookup_id) == ("lookup", "r1")


def test_an_answer_sets_the_fields_it_has() -> None:
    s = session()
    start(s)
    out = s.handle(ev.LookupAnswered("r1", 200, ANSWER), NOW)
    assert out[: 1 + 5] == [
        act.CancelTimer("t1"),
        act.SetVariable("name", "Ann Kowalska"),
        act.SetVariable("tier", "gold"),
        act.SetVariable("first_account", "1001"),
        act.SetVariable("vip", "true"),
        act.SetVariable("address", '{"city":"Warszawa"}'),
    ]
    assert recorded(out, "lookup_done") == [
        {"node": "find", "status": 200, "fields": ["name", "tier", "first_account", "vip", "address"]}
    ]
    assert "missing" not in s.variables
    assert s.path == ("find", "found")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (ev.LookupAnswered("r1", 404, {"error": "no such customer"}), "HTTP status 404"),
        (ev.LookupAnswered("r1", 500, None), "HTTP status 500"),
        (ev.LookupAnswered("r1", 200, None), "the answer is not a JSON object"),
        (ev.LookupAnswered("r1", 200, [ANSWER]), "the answer is not a JSON object"),
        (ev.LookupFailed("r1", "connection refused"), "connection refused"),
    ],
)
def test_a_failed_lookup_takes_the_fallback(answer: ev.Event, reason: str) -> None:
    s = session()
    start(s)
    out = s.handle(answer, NOW)
    assert out[0] == act.CancelTimer("t1")
    assert recorded(out, "lookup_failed") == [{"node": "find", "reason": reason}]
    assert s.path == ("find", "unknown")
    assert "name" not in s.variables


def test_the_guard_timer_fails_the_lookup_and_a_late_answer_is_ignored() -> None:
    s = session()
    start(s)
    out = s.handle(ev.TimerFired("t1"), NOW)
    assert recorded(out, "lookup_failed") == [{"node": "find", "reason": "timeout"}]
    assert s.node == "unknown"
    assert s.handle(ev.LookupAnswered("r1", 200, ANSWER), NOW) == []
    assert "name" not in s.variables


def test_answers_to_other_requests_and_keys_are_ignored() -> None:
    s = session()
    start(s)
    assert s.handle(ev.LookupAnswered("r2", 200, ANSWER), NOW) == []
    assert s.handle(ev.LookupFailed("r0", "x"), NOW) == []
    assert s.handle(ev.Digit("1"), NOW) == []
    assert s.waiting_for == "lookup"


def test_caller_hangs_up_during_a_lookup() -> None:
    s = session()
    start(s)
    out = s.handle(ev.Hangup(), NOW)
    assert out == [
        act.CancelTimer("t1"),
        act.RecordEvent("abandoned", {"node": "find", "flow": "main", "where": "ivr"}),
    ]
    assert s.handle(ev.LookupAnswered("r1", 200, ANSWER), NOW) == []


# --- templates ------------------------------------------------------------------------------------


def test_templates() -> None:
    variables = {"name": "Ann", "n": "1/2"}
    assert render("hi {name}, {missing}!", variables) == "hi Ann, !"
    assert render("{not a placeholder} {1x} {{name}}", variables) == "{not a placeholder} {1x} {Ann}"
    assert render_url("https://x/{n}?q={name}", variables) == "https://x/1%2F2?q=Ann"
    assert render_header("{name}\r\n", {"name": "A\nB"}) == "AB\r\n"
    assert render_data({"a": ["{name}", 1, None], "{name}": True}, variables) == {
        "a": ["Ann", 1, None],
        "{name}": True,
    }
    assert [text(v) for v in (True, False, 3, 2.5, "x", None)] == ["true", "false", "3", "2.5", "x", ""]
