"""Contact events, contacts and customers as plain values: what producers write and readers get.

A *contact* is one customer interaction from the first ring to the end; its *events* are append-only
facts (`call_started`, `queued`, `answered`, ...). The `contacts` projection row keeps what KPIs need and
is rebuilt from the events alone (see `hotline.store.projection`).
"""

from __future__ import annotations

import difflib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from contacts import EVENT_NAMES, EVENTS, EventName
from hotline.store.errors import InvalidEvent

#: Who records each event and the keys of its `data`: the one registry, `contacts.EVENTS`.
EVENT_DATA: Mapping[EventName, tuple[str, tuple[str, ...]]] = EVENTS

EVENT_TYPES: frozenset[str] = frozenset(EVENT_NAMES)

#: The values of `Contact.outcome` (None while the contact is still going on).
OUTCOMES: frozenset[str] = frozenset(
    {
        "answered",
        "abandoned_ivr",
        "abandoned_queue",
        "callback",
        "callback_completed",
        "callback_failed",
        "callback_expired",
        "callback_cancelled",
        "not_reached",
        "voicemail",
        "transferred",
        "ended_in_ivr",
        "lost",
        "refused",
        "service_restarted",
    }
)

MAX_ID = 64
MAX_CALL_ID = 128
MAX_DATA_BYTES = 65_536

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ContactEvent:
    """What producers write. `id` (uuid4 hex) makes a write idempotent: the same id is stored once."""

    id: str
    type: EventName
    at: datetime
    contact_id: str
    call_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """What readers get: the event plus `seq`, its place in the store's one order (the sync cursor)."""

    seq: int
    id: str
    type: EventName
    at: datetime
    contact_id: str
    call_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Contact:
    """The projection row of one contact: what KPIs and the front office need at a glance."""

    id: str
    parent_id: str | None
    call_id: str | None
    caller: str | None
    dialed: str | None
    customer_id: str | None
    language: str | None
    started_at: datetime | None
    queued_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    wait_seconds: float | None
    talk_seconds: float | None
    outcome: str | None
    queue: str | None
    agent: str | None
    ivr_path: list[str]
    last_seq: int
    ended_by: str | None = None


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    name: str | None
    phones: list[str]
    attributes: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; pass `next_cursor` back to get the next one (None: this was the last)."""

    items: list[T]
    next_cursor: str | None


def _check_id(value: object, what: str, limit: int) -> None:
    if not isinstance(value, str) or not value or len(value) > limit or "\x00" in value:
        raise InvalidEvent(f"{what} {value!r} must be non-empty text of at most {limit} characters")


def _check_at(value: object, event_type: str) -> None:
    if not isinstance(value, datetime):
        raise InvalidEvent(f"event {event_type}: at {value!r} is not a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidEvent(
            f"event {event_type}: at {value.isoformat()} has no time zone; "
            "give an aware time, e.g. datetime.now(UTC)"
        )


def encode_data(data: Mapping[str, Any], event_type: str = "event") -> str:
    """`data` as compact JSON; raises InvalidEvent when it is not plain JSON the backends can store."""
    if not isinstance(data, Mapping):
        raise InvalidEvent(f"event {event_type}: data must be a JSON object, not {type(data).__name__}")
    for key in data:
        if not isinstance(key, str):
            raise InvalidEvent(f"event {event_type}: data key {key!r} is not text; JSON object keys are text")
    try:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidEvent(
            f"event {event_type}: data is not JSON-serialisable ({e}); use plain JSON values"
        ) from None
    if "\x00" in text or "\\u0000" in text:
        raise InvalidEvent(f"event {event_type}: data holds a NUL character, which PostgreSQL cannot store")
    if len(text.encode()) > MAX_DATA_BYTES:
        raise InvalidEvent(
            f"event {event_type}: data is {len(text.encode())} bytes as JSON; keep it under {MAX_DATA_BYTES}"
        )
    return text


def validate_event(event: ContactEvent) -> None:
    """Raise InvalidEvent unless `event` can be stored as it is (both backends, no truncation)."""
    if not isinstance(event, ContactEvent):
        raise InvalidEvent(f"{event!r} is not a ContactEvent; build one with new_event()")
    if event.type not in EVENT_TYPES:
        close = difflib.get_close_matches(str(event.type), sorted(EVENT_TYPES), n=1)
        hint = (
            f"; did you mean '{close[0]}'?" if close else f"; known types: {', '.join(sorted(EVENT_TYPES))}"
        )
        raise InvalidEvent(f"unknown contact event type {event.type!r}{hint}")
    _check_id(event.id, "event id", MAX_ID)
    _check_id(event.contact_id, f"event {event.type}: contact id", MAX_ID)
    if event.call_id is not None:
        _check_id(event.call_id, f"event {event.type}: call id", MAX_CALL_ID)
    _check_at(event.at, event.type)
    encode_data(event.data, event.type)


def new_event(
    type: EventName,
    contact_id: str,
    *,
    at: datetime,
    call_id: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> ContactEvent:
    """A validated event with a fresh id; `at` is kept in UTC and `data` as plain JSON values."""
    if isinstance(at, datetime) and at.tzinfo is not None and at.utcoffset() is not None:
        at = at.astimezone(UTC)
    text = encode_data(data or {}, type)
    event = ContactEvent(
        id=uuid.uuid4().hex, type=type, at=at, contact_id=contact_id, call_id=call_id, data=json.loads(text)
    )
    validate_event(event)
    return event
