"""Where a contact stood, from its events: what a restarted service reads to pick up a call."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from contacts import EVENT_NAMES
from contacts.standing import ENDINGS, standing

T0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Fact:
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    at: datetime = T0


def facts(*steps: tuple[str, dict[str, Any]]) -> list[Fact]:
    return [Fact(kind, data, T0 + timedelta(seconds=i)) for i, (kind, data) in enumerate(steps)]


STARTED = ("call_started", {"flow": "hotline", "caller": "+48221234567", "dialed": "100"})


def test_a_caller_in_a_menu_stands_at_the_menu_with_their_language_and_keys() -> None:
    found = standing(
        facts(
            STARTED,
            ("node_entered", {"node": "language", "flow": "hotline"}),
            ("language_chosen", {"language": "pl", "how": "key"}),
            ("node_entered", {"node": "account", "flow": "hotline"}),
            ("input_collected", {"node": "account", "variable": "account", "value": "1234"}),
            ("node_entered", {"node": "menu", "flow": "hotline"}),
        )
    )
    assert found.where == "ivr" and found.resumable
    assert (found.flow, found.node, found.language) == ("hotline", "menu", "pl")
    assert found.variables == {"account": "1234"}
    assert (found.caller, found.dialed) == ("+48221234567", "100")
    assert found.place_since is None


def test_a_waiting_caller_keeps_the_place_of_their_first_queueing() -> None:
    found = standing(
        facts(
            STARTED,
            ("node_entered", {"node": "support", "flow": "hotline"}),
            ("queued", {"queue": "support"}),
            ("callback_offered", {"queue": "support"}),
            ("callback_chosen", {"queue": "support"}),
            ("queued", {"queue": "support"}),  # declined the call-back: back in place
            ("agent_offered", {"queue": "support", "agent": "ann"}),
        )
    )
    assert found.where == "queue" and found.resumable
    assert found.node == "support" and found.queue == "support"
    assert found.place_since == T0 + timedelta(seconds=2)


def test_a_caller_giving_a_call_back_number_resumes_at_the_queue_with_their_place() -> None:
    found = standing(
        facts(
            STARTED,
            ("node_entered", {"node": "q", "flow": "f"}),
            ("queued", {"queue": "s"}),
            ("callback_chosen", {}),
        )
    )
    assert found.where == "ivr" and found.node == "q" and found.place_since == T0 + timedelta(seconds=2)


def test_an_overflowed_caller_loses_the_place() -> None:
    found = standing(
        facts(
            STARTED,
            ("node_entered", {"node": "q", "flow": "f"}),
            ("queued", {"queue": "s"}),
            ("queue_overflow", {"queue": "s", "reason": "max wait"}),
            ("node_entered", {"node": "voicemail", "flow": "f"}),
        )
    )
    assert found.where == "ivr" and found.node == "voicemail" and found.place_since is None


def test_a_caller_with_an_agent_stands_talking_with_the_agent() -> None:
    found = standing(
        facts(
            STARTED,
            ("node_entered", {"node": "q", "flow": "f"}),
            ("queued", {"queue": "s"}),
            ("answered", {"queue": "s", "agent": "ann", "wait": 3.0}),
        )
    )
    assert found.where == "talking" and found.agent == "ann" and not found.resumable


def test_a_call_back_placeholder_is_not_a_call_of_the_flow() -> None:
    found = standing(facts(("queued", {"queue": "support"})))
    assert found.where == "queue" and not found.started and not found.resumable


def test_nothing_and_endings_stand_ended() -> None:
    assert standing([]).where == "ended"
    for ending in ENDINGS:
        assert standing(facts(STARTED, (ending, {}), ("node_entered", {"node": "x"}))).where == "ended"


@given(
    st.lists(
        st.tuples(
            st.sampled_from(EVENT_NAMES),
            st.dictionaries(
                st.sampled_from(["node", "flow", "language", "variable", "value", "queue", "agent"]),
                st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)),
                max_size=4,
            ),
        ),
        max_size=12,
    )
)
def test_any_timeline_stands_somewhere_and_only_text_is_believed(
    steps: list[tuple[str, dict[str, Any]]],
) -> None:
    found = standing(facts(*steps))
    assert found.where in ("ivr", "queue", "talking", "ended")
    for value in (found.flow, found.node, found.language, found.queue, found.agent):
        assert value is None or (isinstance(value, str) and value)
    assert all(isinstance(v, str) for v in found.variables.values())
    if found.resumable:
        assert found.started and found.where in ("ivr", "queue")
