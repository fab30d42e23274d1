"""Contact events and phone numbers as values: what the store accepts, refuses, and documents."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.store.errors import InvalidEvent, InvalidPhone, StoreError
from hotline.store.events import EVENT_DATA, EVENT_TYPES, ContactEvent, new_event, validate_event
from hotline.store.phones import normalise, normalise_or_keep
from ivr.actions import EVENT_TYPES as IVR_EVENT_TYPES
from support.paths import DOCS

DOC = DOCS / "contacts.md"
WARSAW_WINTER = timezone(timedelta(hours=1))


def test_event_types_cover_the_engine_and_routing() -> None:
    assert set(IVR_EVENT_TYPES) <= EVENT_TYPES
    extra = {
        "position_announced",
        "agent_offered",
        "agent_no_answer",
        "answered",
        "callback_scheduled",
        "callback_attempted",
        "callback_completed",
        "callback_failed",
        "callback_expired",
        "wrapup_ended",
        "call_ended",
    }
    assert extra <= EVENT_TYPES
    assert set(EVENT_DATA) == EVENT_TYPES


def test_every_event_type_and_data_key_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8").split("## Event types", 1)[1].split("\n## ", 1)[0]
    for kind, (_, keys) in EVENT_DATA.items():
        row = re.search(rf"^\| `{kind}` \|.*$", text, re.MULTILINE)
        assert row, f"docs/contacts.md has no table row for `{kind}`"
        for key in keys:
            assert f"`{key}`" in row.group(0), f"docs/contacts.md: `{kind}` does not mention data key `{key}`"


def test_new_event_keeps_utc_and_plain_json() -> None:
    event = new_event(
        "queued", "c1", at=datetime(2026, 12, 1, 10, 0, tzinfo=WARSAW_WINTER), data={"skills": ("a", "b")}
    )
    assert event.at == datetime(2026, 12, 1, 9, 0, tzinfo=UTC) and event.at.utcoffset() == timedelta(0)
    assert event.data == {"skills": ["a", "b"]}
    assert re.fullmatch(r"[0-9a-f]{32}", event.id)
    assert new_event("queued", "c1", at=event.at).id != event.id


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "queud"}, "did you mean 'queued'"),
        ({"at": datetime(2026, 12, 1, 10, 0)}, "has no time zone"),
        ({"at": "2026-12-01T10:00Z"}, "is not a datetime"),
        ({"contact_id": ""}, "contact id"),
        ({"contact_id": "x" * 65}, "at most 64"),
        ({"call_id": "y" * 129}, "at most 128"),
        ({"data": {"when": datetime(2026, 1, 1, tzinfo=UTC)}}, "not JSON-serialisable"),
        ({"data": {"wait": float("nan")}}, "not JSON-serialisable"),
        ({"data": {1: "one"}}, "is not text"),
        ({"data": ["not", "an", "object"]}, "must be a JSON object"),
        ({"data": {"note": "nul\x00"}}, "NUL"),
        ({"data": {"blob": "x" * 70_000}}, "keep it under"),
    ],
)
def test_bad_events_are_refused_with_the_reason(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"type": "queued", "contact_id": "c1", "at": datetime(2026, 12, 1, tzinfo=UTC)}
    args.update(kwargs)
    with pytest.raises(InvalidEvent, match=re.escape(message)) as raised:
        new_event(args.pop("type"), args.pop("contact_id"), **args)  # type: ignore[arg-type]
    assert isinstance(raised.value, StoreError)


def test_validate_event_checks_hand_built_events() -> None:
    good = ContactEvent("a" * 32, "hung_up", datetime(2026, 1, 1, tzinfo=UTC), "c1", None, {"by": "caller"})
    validate_event(good)
    with pytest.raises(InvalidEvent, match="event id"):
        validate_event(ContactEvent("", "hung_up", good.at, "c1", None, {}))
    with pytest.raises(InvalidEvent, match="not a ContactEvent"):
        validate_event({"id": "x"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("+48 22 123 45 67", "+48221234567"),
        ("+48 (22) 123-45-67", "+48221234567"),
        ("0048.22.123.45.67", "+48221234567"),
        ("  +1 [555] 010/0199 ", "+15550100199"),
        ("100", "100"),
        ("0221234567", "0221234567"),
    ],
)
def test_phone_numbers_are_normalised(given: str, stored: str) -> None:
    assert normalise(given) == stored


@pytest.mark.parametrize("garbage", ["", "   ", "call me", "+48+22", "12a45", "+", "1" * 21, "+48 22 ext. 5"])
def test_garbage_is_no_phone_number(garbage: str) -> None:
    with pytest.raises(InvalidPhone, match="is not a phone number"):
        normalise(garbage)


def test_a_withheld_caller_id_is_kept_as_given() -> None:
    assert normalise_or_keep("anonymous") == "anonymous"
    assert normalise_or_keep("") is None and normalise_or_keep(None) is None
    assert normalise_or_keep("+48 22 123 45 67") == "+48221234567"


# -- the fast path of new_event against the obvious one --------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["ł", '"', "\u2028"])
)
json_ish = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=3)
    ),
    max_leaves=8,
)


def obvious(data: Mapping[Any, Any]) -> tuple[str, Any] | None:
    """What new_event used to do: json.dumps, json.loads; None when it refused the data."""
    if any(not isinstance(key, str) for key in data):
        return None
    try:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        text.encode()
    except (TypeError, ValueError):
        return None
    if "\x00" in text or "\\u0000" in text:
        return None
    return text, json.loads(text)


@settings(max_examples=400)
@given(st.dictionaries(st.text(max_size=6) | st.integers(), json_ish, max_size=5))
def test_new_event_keeps_exactly_what_the_json_round_trip_keeps(data: dict[Any, Any]) -> None:
    expected = obvious(data)
    if expected is None:
        with pytest.raises(InvalidEvent):
            new_event("queued", "c1", at=datetime(2026, 12, 1, tzinfo=UTC), data=data)
        return
    event = new_event("queued", "c1", at=datetime(2026, 12, 1, tzinfo=UTC), data=data)
    text, plain = expected
    assert event.data_json == text
    assert event.data == plain
    assert json.dumps(event.data) == json.dumps(plain)  # True is not 1, 1.0 is not 1
    if event.data:
        assert event.data is not data  # a copy: the producer's dict may change, the event does not


def test_event_ids_are_uuid4() -> None:
    ids = {new_event("queued", "c1", at=datetime(2026, 12, 1, tzinfo=UTC)).id for _ in range(1000)}
    assert len(ids) == 1000
    for event_id in ids:
        assert re.fullmatch(r"[0-9a-f]{32}", event_id)
        parsed = uuid.UUID(hex=event_id)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_validate_event_keeps_the_json_it_checked() -> None:
    event = ContactEvent("a" * 32, "hung_up", datetime(2026, 1, 1, tzinfo=UTC), "c1", None, {"by": "caller"})
    assert event.data_json is None
    assert validate_event(event) == '{"by":"caller"}' == event.data_json
    assert event == ContactEvent("a" * 32, "hung_up", event.at, "c1", None, {"by": "caller"})
    assert "data_json" not in repr(event)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            ContactEvent("a\ud800", "hung_up", datetime(2026, 1, 1, tzinfo=UTC), "c1", None, {}),
            "lone surrogate",
        ),
        (
            ContactEvent("a1", "hung_up", datetime(2026, 1, 1, tzinfo=UTC), "c\udfff", None, {}),
            "lone surrogate",
        ),
        (
            ContactEvent("a1", "hung_up", datetime(2026, 1, 1, tzinfo=UTC), "c1", None, {"x": "\ud800"}),
            "surrogate",
        ),
    ],
)
def test_text_that_is_not_unicode_is_refused(event: ContactEvent, message: str) -> None:
    """It could be neither stored nor spooled (UTF-8 has no lone surrogates)."""
    with pytest.raises(InvalidEvent, match=message):
        validate_event(event)
    assert new_event("hung_up", "c-ł", at=event.at, data={"x": "ł"}).contact_id == "c-ł"
