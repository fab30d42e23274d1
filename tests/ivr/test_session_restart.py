"""A call the service picks up again after a restart (`CallResumed`), and a call that is lost without
the caller hanging up (`CallLost`): what the engine does and records."""

from __future__ import annotations

from datetime import timedelta

from ivr import actions as act
from ivr import events as ev
from ivr.flowset import FlowSet
from ivr.model import Flow
from ivr.session import Session
from support.session import NOW, press, recorded

FLOWS = FlowSet(
    {
        "main": Flow.model_validate(
            {
                "flow": "main",
                "languages": ["en", "pl"],
                "start": "welcome",
                "nodes": {
                    "welcome": {"play": "welcome", "next": "menu"},
                    "menu": {"menu": "main-menu", "options": {"1": "wait", "2": "bye"}},
                    "wait": {"queue": {"name": "support"}, "overflow": "bye"},
                    "bye": {"hangup": {"prompt": "goodbye"}},
                },
            }
        )
    }
)


def resume(node: str, **extra: object) -> tuple[Session, list[act.Action]]:
    s = Session(FLOWS, "main", call_id="ch1")
    event = ev.CallResumed(caller="+48221234567", dialed="100", flow="main", node=node, **extra)  # type: ignore[arg-type]
    return s, s.handle(event, NOW)


def test_a_resumed_call_enters_its_node_again_without_starting_over() -> None:
    s, out = resume("menu", variables={"account": "42"})
    assert recorded(out, "call_resumed") == [{"flow": "main", "node": "menu"}]
    assert not recorded(out, "call_started")
    assert recorded(out, "node_entered") == [{"node": "menu", "flow": "main", "type": "menu"}]
    assert [a.media for a in out if isinstance(a, act.Play)] == [("sound:main-menu",)]
    assert s.variables["account"] == "42" and s.variables["caller"] == "+48221234567"
    assert s.path == ("menu",)


def test_a_resumed_call_keeps_its_language() -> None:
    s, out = resume("menu", language="pl")
    assert act.SetVariable("CHANNEL(language)", "pl") in out
    assert s.language == "pl"
    assert not recorded(out, "language_chosen")


def test_a_caller_resumed_in_a_queue_keeps_their_place() -> None:
    place = NOW - timedelta(seconds=95)
    s, out = resume("wait", place_since=place)
    [enqueue] = [a for a in out if isinstance(a, act.Enqueue)]
    assert enqueue.since == place
    assert recorded(out, "queued")[0]["waited"] == 95.0
    assert s.waiting_for == "queue"


def test_a_resumed_call_at_a_node_the_flows_no_longer_have_is_hung_up_with_the_reason() -> None:
    s, out = resume("gone")
    assert recorded(out, "flow_error")[0]["reason"].startswith("flow 'main' has no node 'gone'")
    assert act.Hangup("normal") in out
    assert s.waiting_for is None


def test_a_lost_call_says_so_instead_of_a_caller_hanging_up() -> None:
    s = Session(FLOWS, "main", call_id="ch1")
    s.handle(ev.CallStarted(caller="+48221234567", dialed="100"), NOW)
    out = s.handle(ev.CallLost("Asterisk stopped"), NOW)
    assert recorded(out, "call_lost") == [{"node": "welcome", "flow": "main", "reason": "Asterisk stopped"}]
    assert not recorded(out, "abandoned") and not recorded(out, "hung_up")
    assert s.outcome == "lost" and s.waiting_for is None
    assert press(s, "1") == []  # nothing more happens on a lost call


def test_a_call_lost_in_a_queue_keeps_its_outcome() -> None:
    s, _ = resume("wait", place_since=NOW)
    out = s.handle(ev.CallLost("Asterisk stopped"), NOW)
    assert recorded(out, "call_lost")[0]["node"] == "wait"
    assert s.outcome == "queue"
