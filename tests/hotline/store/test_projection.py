"""The contact projection as a pure fold over events: KPIs for realistic caller journeys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from contacts import EventName
from hotline.store.events import EVENT_TYPES, OUTCOMES, StoredEvent
from hotline.store.projection import FIELDS, MAX_IVR_PATH, apply, empty, to_contact

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Journey:
    """Events of one or more contacts with growing seq; `at` in seconds after T0."""

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []

    def add(
        self, second: float, type: EventName, contact: str = "c1", call_id: str | None = None, **data: Any
    ) -> None:
        self.events.append(
            StoredEvent(
                seq=len(self.events) + 1,
                id=f"e{len(self.events) + 1}",
                type=type,
                at=T0 + timedelta(seconds=second),
                contact_id=contact,
                call_id=call_id,
                data=data,
            )
        )

    def fold(self, contact: str = "c1") -> dict[str, Any]:
        row: dict[str, Any] | None = None
        for event in self.events:
            if event.contact_id == contact:
                row = apply(row, event)
        assert row is not None
        return row


def at(second: float) -> datetime:
    return T0 + timedelta(seconds=second)


def test_ivr_then_queue_then_answered_then_hung_up() -> None:
    j = Journey()
    j.add(0, "call_started", call_id="ch-1", caller="+48 22 123-45-67", dialed="100", flow="hotline")
    j.add(1, "node_entered", node="welcome")
    j.add(3, "node_entered", node="language")
    j.add(5, "language_chosen", language="pl", how="menu")
    j.add(6, "node_entered", node="main_menu")
    j.add(9, "option_chosen", node="main_menu", digits="1", target="sales")
    j.add(9, "node_entered", node="sales")
    j.add(10, "lookup_done", node="sales", status=200, fields=["customer_name"], customer_id="C-7")
    j.add(12, "queued", queue="sales", skills={"sales": 3}, priority=0)
    j.add(30, "position_announced", queue="sales", position=2)
    j.add(40, "agent_offered", queue="sales", agent="bob")
    j.add(55, "agent_no_answer", queue="sales", agent="bob", ring_seconds=15)
    j.add(57, "answered", queue="sales", agent="ann")
    j.add(177, "hung_up", by="agent")
    j.add(178, "call_ended", cause="normal")
    row = j.fold()
    assert row == {
        "id": "c1",
        "parent_id": None,
        "call_id": "ch-1",
        "caller": "+48221234567",
        "dialed": "100",
        "customer_id": "C-7",
        "language": "pl",
        "started_at": at(0),
        "queued_at": at(12),
        "answered_at": at(57),
        "ended_at": at(177),
        "wait_seconds": 45.0,
        "talk_seconds": 120.0,
        "outcome": "answered",
        "queue": "sales",
        "agent": "ann",
        "ivr_path": ["welcome", "language", "main_menu", "sales"],
        "last_seq": 15,
        "ended_by": "agent",
    }
    contact = to_contact(row)
    assert contact.wait_seconds == 45.0 and contact.ivr_path == ["welcome", "language", "main_menu", "sales"]


def test_abandoned_in_ivr() -> None:
    j = Journey()
    j.add(0, "call_started", caller="+48221234567", dialed="100")
    j.add(1, "node_entered", node="main_menu")
    j.add(8, "no_input", node="main_menu", attempt=1)
    j.add(14, "abandoned", where="ivr", node="main_menu")
    j.add(14, "hung_up", by="caller")
    row = j.fold()
    assert row["outcome"] == "abandoned_ivr"
    assert row["ended_at"] == at(14)
    assert row["ended_by"] == "caller"
    assert (row["queued_at"], row["answered_at"], row["wait_seconds"], row["talk_seconds"]) == (None,) * 4


def test_abandoned_in_queue_measures_the_wait() -> None:
    j = Journey()
    j.add(0, "call_started", caller="+48221234567", dialed="100")
    j.add(5, "queued", queue="service")
    j.add(65, "abandoned", where="queue", queue="service")
    j.add(65, "hung_up", by="caller")
    row = j.fold()
    assert (row["outcome"], row["wait_seconds"], row["queue"], row["ended_at"]) == (
        "abandoned_queue",
        60.0,
        "service",
        at(65),
    )


def test_routing_measured_wait_wins() -> None:
    j = Journey()
    j.add(0, "call_started")
    j.add(5, "queued", queue="service")
    j.add(65, "abandoned", where="queue", wait=58.5)
    assert j.fold()["wait_seconds"] == 58.5
    k = Journey()
    k.add(0, "call_started")
    k.add(5, "queued", queue="service")
    k.add(25, "answered", agent="ann", wait=19.25)
    assert k.fold()["wait_seconds"] == 19.25


def test_callback_is_a_new_contact_linked_to_its_parent() -> None:
    j = Journey()
    j.add(0, "call_started", contact="a", caller="+48221234567", dialed="100")
    j.add(4, "queued", contact="a", queue="sales")
    j.add(60, "callback_requested", contact="a", queue="sales", number="+48221234567")
    j.add(61, "hung_up", contact="a", by="caller")
    j.add(62, "callback_scheduled", contact="a", queue="sales", number="+48221234567")
    j.add(600, "callback_attempted", contact="a", number="+48221234567", attempt=1, contact_id="b")
    j.add(600, "call_started", contact="b", caller="+48221234567", dialed="outbound", parent_id="a")
    j.add(612, "answered", contact="b", agent="ann", queue="sales")
    j.add(700, "hung_up", contact="b", by="caller")
    j.add(700, "callback_completed", contact="a", contact_id="b", agent="ann")
    a = j.fold("a")
    assert (a["outcome"], a["queue"], a["ended_at"], a["wait_seconds"]) == (
        "callback_completed",
        "sales",
        at(61),
        None,
    )
    b = j.fold("b")
    assert (b["parent_id"], b["outcome"], b["agent"], b["talk_seconds"]) == ("a", "answered", "ann", 88.0)


def test_callback_that_never_reaches_the_caller() -> None:
    j = Journey()
    j.add(0, "call_started")
    j.add(30, "callback_requested", queue="sales", number="+48221234567")
    j.add(31, "hung_up", by="caller")
    assert j.fold()["outcome"] == "callback"
    j.add(3600, "callback_failed", reason="no answer", attempts=3)
    assert j.fold()["outcome"] == "callback_failed"
    k = Journey()
    k.add(0, "callback_requested")
    k.add(90_000, "callback_expired", reason="not reached before closing")
    assert k.fold()["outcome"] == "callback_expired"


def test_ends_without_an_outcome_event_get_one_from_where_the_caller_was() -> None:
    queue = Journey()
    queue.add(0, "call_started")
    queue.add(10, "queued", queue="sales")
    queue.add(40, "hung_up", by="caller")
    assert (queue.fold()["outcome"], queue.fold()["wait_seconds"]) == ("abandoned_queue", 30.0)

    caller_left = Journey()
    caller_left.add(0, "call_started")
    caller_left.add(3, "hung_up", by="caller")
    assert caller_left.fold()["outcome"] == "abandoned_ivr"

    flow_ended = Journey()
    flow_ended.add(0, "call_started")
    flow_ended.add(3, "node_entered", node="closed")
    flow_ended.add(9, "hung_up", by="flow", cause="normal")
    assert flow_ended.fold()["outcome"] == "ended_in_ivr"


def test_voicemail_and_transfers() -> None:
    voicemail = Journey()
    voicemail.add(0, "call_started")
    voicemail.add(5, "voicemail_left", mailbox="sales", duration=21.5)
    voicemail.add(27, "hung_up", by="caller")
    assert voicemail.fold()["outcome"] == "voicemail"

    ivr_transfer = Journey()
    ivr_transfer.add(0, "call_started")
    ivr_transfer.add(5, "transferred", kind="extension", target="200")
    ivr_transfer.add(90, "call_ended")
    assert ivr_transfer.fold()["outcome"] == "transferred"

    agent_transfer = Journey()
    agent_transfer.add(0, "call_started")
    agent_transfer.add(2, "queued", queue="sales")
    agent_transfer.add(12, "answered", agent="ann")
    agent_transfer.add(50, "transferred", kind="endpoint", target="PJSIP/bob", agent="ann")
    agent_transfer.add(55, "answered", agent="bob")
    agent_transfer.add(112, "hung_up", by="caller")
    row = agent_transfer.fold()
    assert (row["outcome"], row["agent"], row["answered_at"], row["talk_seconds"]) == (
        "answered",
        "ann",
        at(12),
        100.0,
    )


def test_events_before_call_started_keep_a_start_until_it_arrives() -> None:
    j = Journey()
    j.add(5, "node_entered", node="menu")
    assert j.fold()["started_at"] == at(5)
    j.add(0, "call_started", call_id="ch-9", caller="anonymous")
    row = j.fold()
    assert (row["started_at"], row["call_id"], row["caller"], row["ivr_path"]) == (
        at(0),
        "ch-9",
        "anonymous",
        ["menu"],
    )


def test_requeue_keeps_first_queue_time_and_last_queue() -> None:
    j = Journey()
    j.add(0, "call_started")
    j.add(10, "queued", queue="sales")
    j.add(70, "queue_overflow", queue="sales", reason="max wait")
    j.add(71, "queued", queue="service")
    j.add(100, "answered", agent="eve")
    row = j.fold()
    assert (row["queued_at"], row["queue"], row["wait_seconds"]) == (at(10), "service", 90.0)


def test_apply_leaves_its_input_alone() -> None:
    j = Journey()
    j.add(0, "call_started")
    j.add(1, "node_entered", node="menu")
    before = apply(None, j.events[0])
    frozen = dict(before)
    after = apply(before, j.events[1])
    assert before == frozen and before["ivr_path"] == []
    assert after["ivr_path"] == ["menu"]


def test_ivr_path_is_capped() -> None:
    row = empty("c1")
    for seq in range(1, MAX_IVR_PATH + 20):
        row = apply(row, StoredEvent(seq, f"e{seq}", "node_entered", at(seq), "c1", None, {"node": "menu"}))
    assert len(row["ivr_path"]) == MAX_IVR_PATH
    assert row["last_seq"] == MAX_IVR_PATH + 19


def test_timeline_only_events_change_nothing_but_last_seq() -> None:
    j = Journey()
    j.add(0, "call_started", caller="+48221234567", dialed="100")
    base = j.fold()
    timeline_only: list[EventName] = [
        "option_chosen",
        "invalid_input",
        "no_input",
        "input_collected",
        "lookup_failed",
        "branch_taken",
        "queue_overflow",
        "transfer_failed",
        "flow_error",
        "position_announced",
        "agent_offered",
        "agent_no_answer",
        "callback_scheduled",
        "callback_attempted",
        "wrapup_ended",
    ]
    for number, kind in enumerate(timeline_only, 2):
        row = apply(
            base, StoredEvent(number, f"x{number}", kind, at(number), "c1", None, {"node": "n", "agent": "a"})
        )
        assert row == {**base, "last_seq": number}, kind


def test_data_of_the_wrong_shape_is_ignored_not_fatal() -> None:
    j = Journey()
    j.add(0, "call_started", caller=["not", "text"], dialed=100)
    j.add(1, "node_entered", node={"id": "menu"})
    j.add(2, "queued", queue=None)
    j.add(3, "answered", agent=True, wait=-5)
    row = j.fold()
    assert (row["caller"], row["dialed"], row["ivr_path"], row["queue"], row["agent"]) == (
        None,
        "100",
        [],
        None,
        None,
    )
    assert row["wait_seconds"] == 1.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(EVENT_TYPES)),
            st.integers(min_value=0, max_value=3600),
            st.fixed_dictionaries(
                {},
                optional={
                    "where": st.sampled_from(["ivr", "queue", "lobby"]),
                    "by": st.sampled_from(["caller", "agent", "flow"]),
                    "wait": st.floats(allow_nan=True, allow_infinity=True),
                    "node": st.text(max_size=5),
                    "agent": st.text(max_size=5),
                },
            ),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_any_sequence_of_events_gives_a_sane_row(steps: list[tuple[EventName, int, dict[str, Any]]]) -> None:
    row: dict[str, Any] | None = None
    for seq, (kind, second, data) in enumerate(sorted(steps, key=lambda s: s[1]), 1):
        row = apply(row, StoredEvent(seq, f"e{seq}", kind, at(second), "c1", None, data))
    assert row is not None
    assert set(row) == set(FIELDS)
    assert row["outcome"] is None or row["outcome"] in OUTCOMES
    for key in ("wait_seconds", "talk_seconds"):
        assert row[key] is None or row[key] >= 0
    assert row["started_at"] is not None and row["last_seq"] == len(steps)
    to_contact(row)


def test_a_call_back_attempt_whose_customer_was_not_reached_says_so_whatever_the_order() -> None:
    for answered_first in (True, False):
        j = Journey()
        j.add(0, "queued", queue="support", waited=95.0)
        j.add(1, "agent_offered", queue="support", agent="ann")
        if answered_first:
            j.add(3, "answered", queue="support", agent="ann", wait=98.0)
            j.add(40, "callback_attempt_ended", callback_id="cb1", attempt=1, outcome="busy")
        else:  # the store's transaction may land before the writer's batch
            j.add(40, "callback_attempt_ended", callback_id="cb1", attempt=1, outcome="busy")
            j.add(41, "answered", queue="support", agent="ann", wait=98.0)
        row = j.fold()
        assert (row["outcome"], row["agent"], row["wait_seconds"]) == ("not_reached", "ann", 98.0)
        assert row["ended_at"] == T0 + timedelta(seconds=40)


def test_a_call_back_attempt_that_reached_the_customer_is_answered_with_its_talk_time() -> None:
    j = Journey()
    j.add(0, "queued", queue="support")
    j.add(3, "answered", queue="support", agent="ann", wait=3.0)
    j.add(20, "callback_attempt_ended", callback_id="cb1", attempt=1, outcome="answered")
    j.add(200, "call_ended", by="customer", cause="customer hung up")
    row = j.fold()
    assert (row["outcome"], row["ended_by"], row["talk_seconds"]) == ("answered", "customer", 197.0)
