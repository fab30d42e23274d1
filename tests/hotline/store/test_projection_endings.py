"""How a contact ends when the caller did not end it: lost (Asterisk stopped), refused by the service,
or closed by a restart that found the call gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from contacts import EventName
from hotline.store.events import OUTCOMES, StoredEvent
from hotline.store.projection import apply

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def fold(*events: tuple[EventName, float, dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] | None = None
    for seq, (kind, seconds, data) in enumerate(events, 1):
        row = apply(
            row, StoredEvent(seq, f"e{seq}", kind, T0 + timedelta(seconds=seconds), "c1", "ch1", data)
        )
    assert row is not None
    return row


def test_a_call_lost_in_the_ivr_is_lost_and_ended_by_the_system() -> None:
    row = fold(
        ("call_started", 0, {"caller": "+48221234567"}), ("call_lost", 7, {"reason": "Asterisk stopped"})
    )
    assert (row["outcome"], row["ended_by"], row["ended_at"]) == ("lost", "system", T0 + timedelta(seconds=7))
    assert "lost" in OUTCOMES


def test_an_answered_call_that_is_cut_stays_answered_with_its_talk_time() -> None:
    row = fold(
        ("call_started", 0, {}),
        ("queued", 2, {"queue": "support"}),
        ("answered", 10, {"agent": "ann", "queue": "support", "wait": 8}),
        ("call_lost", 70, {"reason": "Asterisk stopped"}),
    )
    assert (row["outcome"], row["ended_by"], row["talk_seconds"]) == ("answered", "system", 60.0)


def test_a_refused_call_has_its_caller_and_ends_at_once() -> None:
    row = fold(
        ("call_refused", 0, {"caller": "+48 22 123 45 67", "dialed": "100", "reason": "over capacity"})
    )
    assert (row["outcome"], row["caller"], row["dialed"], row["ended_by"]) == (
        "refused",
        "+48221234567",
        "100",
        "service",
    )
    assert row["ended_at"] == T0


def test_a_restart_closes_an_open_contact_and_keeps_an_outcome_it_had() -> None:
    row = fold(("call_started", 0, {}), ("service_restarted", 30, {"where": "ivr", "node": "menu"}))
    assert (row["outcome"], row["ended_by"]) == ("service_restarted", "service")
    row = fold(
        ("call_started", 0, {}),
        ("callback_requested", 20, {"queue": "support", "number": "+48221234567"}),
        ("service_restarted", 30, {"where": "ivr", "node": "thanks"}),
    )
    assert (row["outcome"], row["ended_at"]) == ("callback", T0 + timedelta(seconds=30))
