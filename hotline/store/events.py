"""Contact events, contacts and customers as plain values: what producers write and readers get.

A *contact* is one customer interaction from the first ring to the end; its *events* are append-only
facts (`call_started`, `queued`, `answered`, ...). The `contacts` projection row keeps what KPIs need and
is rebuilt from the events alone (see `hotline.store.projection`).
"""

from __future__ import annotations

import builtins
import difflib
import json
import os
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
    """What producers write. `id` (uuid4 hex) makes a write idempotent: the same id is stored once.

    `data_json` is `data` as the compact JSON that was checked (by `new_event` or `validate_event`); the
    store and the spool write that text, so an event is encoded once however often it is handed on.
    """

    id: str
    type: EventName
    at: datetime
    contact_id: str
    call_id: str | None
    data: dict[str, Any]
    data_json: str | None = field(default=None, init=False, repr=False, compare=False)


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
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise InvalidEvent(f"{what} {value!r} is not valid Unicode (it holds a lone surrogate)") from None


def _check_at(value: object, event_type: str) -> None:
    if not isinstance(value, datetime):
        raise InvalidEvent(f"event {event_type}: at {value!r} is not a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidEvent(
            f"event {event_type}: at {value.isoformat()} has no time zone; "
            "give an aware time, e.g. datetime.now(UTC)"
        )


#: One encoder for every event (json.dumps with options builds a new one per call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)

#: Values that come back from JSON exactly as they went in: a flat object of these needs no round trip.
_PLAIN = frozenset({str, int, float, bool, type(None)})


def encode_data(data: Mapping[str, Any], event_type: str = "event") -> str:
    """`data` as compact JSON; raises InvalidEvent when it is not plain JSON the backends can store."""
    if not isinstance(data, Mapping):
        raise InvalidEvent(f"event {event_type}: data must be a JSON object, not {type(data).__name__}")
    for key in data:
        if not isinstance(key, str):
            raise InvalidEvent(f"event {event_type}: data key {key!r} is not text; JSON object keys are text")
    try:
        text = _ENCODER.encode(data)
    except (TypeError, ValueError) as e:
        raise InvalidEvent(
            f"event {event_type}: data is not JSON-serialisable ({e}); use plain JSON values"
        ) from None
    if "\x00" in text or "\\u0000" in text:
        raise InvalidEvent(f"event {event_type}: data holds a NUL character, which PostgreSQL cannot store")
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        raise InvalidEvent(
            f"event {event_type}: data holds text that is not valid Unicode (a lone surrogate); "
            "decode the producer's bytes with errors='replace'"
        ) from None
    if size > MAX_DATA_BYTES:
        raise InvalidEvent(
            f"event {event_type}: data is {size} bytes as JSON; keep it under {MAX_DATA_BYTES}"
        )
    return text


def _check_type(event_type: object) -> None:
    if event_type in EVENT_TYPES:
        return
    close = difflib.get_close_matches(str(event_type), sorted(EVENT_TYPES), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known types: {', '.join(sorted(EVENT_TYPES))}"
    raise InvalidEvent(f"unknown contact event type {event_type!r}{hint}")


def validate_event(event: ContactEvent) -> str:
    """Raise InvalidEvent unless `event` can be stored as it is (both backends, no truncation); returns
    its data as the JSON the store writes, and keeps it on the event (`data_json`).

    The data of an event made by `new_event`, or checked here before, was checked when its JSON was
    made; that JSON is what the store and the spool write, so it is not encoded again."""
    if not isinstance(event, ContactEvent):
        raise InvalidEvent(f"{event!r} is not a ContactEvent; build one with new_event()")
    _check_type(event.type)
    _check_id(event.id, "event id", MAX_ID)
    _check_id(event.contact_id, f"event {event.type}: contact id", MAX_ID)
    if event.call_id is not None:
        _check_id(event.call_id, f"event {event.type}: call id", MAX_CALL_ID)
    _check_at(event.at, event.type)
    text = event.data_json
    if text is None:
        text = encode_data(event.data, event.type)
        object.__setattr__(event, "data_json", text)
    return text


def new_event_id() -> str:
    """A fresh uuid4 in hex: 122 random bits from the system's CSPRNG (uuid.uuid4() without the object)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()


def new_event(
    type: EventName,
    contact_id: str,
    *,
    at: datetime,
    call_id: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> ContactEvent:
    """A validated event with a fresh id; `at` is kept in UTC and `data` as plain JSON values (a copy:
    the caller's mapping is not kept)."""
    _check_type(type)
    _check_id(contact_id, f"event {type}: contact id", MAX_ID)
    if call_id is not None:
        _check_id(call_id, f"event {type}: call id", MAX_CALL_ID)
    _check_at(at, type)
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    data = data or {}
    text = encode_data(data, type)
    kind = builtins.type
    if kind(data) is dict and all(kind(k) is str and kind(v) in _PLAIN for k, v in data.items()):
        plain = dict(data)  # exactly what the JSON round trip would give, without it
    else:
        plain = json.loads(text)
    event = ContactEvent(new_event_id(), type, at, contact_id, call_id, plain)
    object.__setattr__(event, "data_json", text)
    return event
