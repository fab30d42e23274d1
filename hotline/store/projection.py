"""The contact projection: one row per contact, folded from its events in `seq` order.

Pure: `apply(row, event)` takes the row as a dict (or None for a new contact) and returns the new row.
The store runs it for each newly stored event, so replaying the same events changes nothing.

KPI rules, in the contact-center's words:
- `started_at` is when the call started (`call_started`); until that event arrives, the first event's time.
- `queued_at` is the first time the caller was queued; `queue` is the last queue they were put in.
- `answered_at` and `agent` are the first agent's answer; `wait_seconds` is the time from `queued_at` to
  that answer, or to abandoning the queue (an event's `data.wait` wins when routing measured it).
- `ended_at` is the first of abandoned / hung_up / call_ended; `talk_seconds` runs from `answered_at`
  to `ended_at`.
- `outcome`: answered, abandoned_ivr, abandoned_queue, callback (then callback_completed / _failed /
  _expired / _cancelled), voicemail, transferred (by the IVR, before any agent answered), ended_in_ivr
  (the flow hung up), not_reached (a call-back attempt whose customer was busy, did not answer or
  could not be dialed), lost (the call was gone and the caller did not hang up), refused (the service
  did not take it) or service_restarted (the service restarted and found it gone). A call that ends
  with no outcome recorded gets one from where it was.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from hotline.store.events import Contact, StoredEvent
from hotline.store.phones import normalise_or_keep

#: A looping menu must not grow a row without end; later nodes are still in the timeline.
MAX_IVR_PATH = 200

FIELDS: tuple[str, ...] = tuple(Contact.__dataclass_fields__)

CALLBACK_RESULTS = {
    "callback_completed": "callback_completed",
    "callback_failed": "callback_failed",
    "callback_expired": "callback_expired",
    "callback_cancelled": "callback_cancelled",
}


def empty(contact_id: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(FIELDS)
    row["id"] = contact_id
    row["ivr_path"] = []
    row["last_seq"] = 0
    return row


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


def _number(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _seconds(start: datetime | None, end: datetime) -> float | None:
    if start is None:
        return None
    return max(0.0, (end - start).total_seconds())


def apply(row: Mapping[str, Any] | None, event: StoredEvent) -> dict[str, Any]:
    """The contact row after `event` (a new dict; `row` is left as it was)."""
    c = empty(event.contact_id) if row is None else dict(row)
    c["ivr_path"] = list(c.get("ivr_path") or [])
    data = event.data
    at = event.at
    kind = event.type

    if c["started_at"] is None:
        c["started_at"] = at
    if c["call_id"] is None and event.call_id is not None:
        c["call_id"] = event.call_id

    if kind == "call_started":
        c["started_at"] = at
        if event.call_id is not None:
            c["call_id"] = event.call_id
        c["caller"] = normalise_or_keep(_text(data, "caller"))
        c["dialed"] = _text(data, "dialed")
        c["parent_id"] = _text(data, "parent_id") or c["parent_id"]
        c["language"] = _text(data, "language") or c["language"]
    elif kind == "node_entered":
        node = _text(data, "node")
        if node is not None and len(c["ivr_path"]) < MAX_IVR_PATH:
            c["ivr_path"].append(node)
    elif kind == "language_chosen":
        c["language"] = _text(data, "language") or c["language"]
    elif kind == "lookup_done":
        c["customer_id"] = _text(data, "customer_id") or c["customer_id"]
    elif kind == "queued":
        if c["queued_at"] is None:
            c["queued_at"] = at
        c["queue"] = _text(data, "queue") or c["queue"]
    elif kind == "answered":
        if c["answered_at"] is None:
            c["answered_at"] = at
            c["agent"] = _text(data, "agent") or c["agent"]
            c["queue"] = _text(data, "queue") or c["queue"]
            wait = _number(data, "wait")
            c["wait_seconds"] = wait if wait is not None else _seconds(c["queued_at"], at)
            if c["outcome"] != "not_reached":  # a call-back attempt's agent answered; the customer did not
                c["outcome"] = "answered"
    elif kind == "abandoned":
        where = _text(data, "where")
        if where not in ("ivr", "queue"):
            where = "queue" if c["queued_at"] is not None else "ivr"
        c["outcome"] = f"abandoned_{where}"
        c["queue"] = _text(data, "queue") or c["queue"]
        if where == "queue":
            wait = _number(data, "wait")
            c["wait_seconds"] = wait if wait is not None else _seconds(c["queued_at"], at)
        if c["ended_at"] is None:
            c["ended_at"] = at
    elif kind == "transferred":
        if c["answered_at"] is None:
            c["outcome"] = "transferred"
    elif kind == "voicemail_left":
        c["outcome"] = "voicemail"
    elif kind == "callback_requested":
        c["outcome"] = "callback"
        c["queue"] = _text(data, "queue") or c["queue"]
    elif kind in CALLBACK_RESULTS:
        c["outcome"] = CALLBACK_RESULTS[kind]
    elif kind == "callback_attempt_ended":
        if _text(data, "outcome") != "answered":
            c["outcome"] = "not_reached"
            if c["ended_at"] is None:
                c["ended_at"] = at
    elif kind == "call_refused":
        c["caller"] = normalise_or_keep(_text(data, "caller")) or c["caller"]
        c["dialed"] = _text(data, "dialed") or c["dialed"]
        c["outcome"] = "refused"
        c["ended_by"] = c["ended_by"] or "service"
        if c["ended_at"] is None:
            c["ended_at"] = at
    elif kind in ("call_lost", "service_restarted"):
        if c["ended_at"] is None:
            c["ended_at"] = at
        if c["ended_by"] is None:
            c["ended_by"] = "system" if kind == "call_lost" else "service"
        if c["answered_at"] is not None and c["talk_seconds"] is None:
            c["talk_seconds"] = _seconds(c["answered_at"], c["ended_at"])
        if c["outcome"] is None:  # an answered call that was cut stays answered, ended by the system
            c["outcome"] = "lost" if kind == "call_lost" else "service_restarted"
    elif kind in ("hung_up", "call_ended"):
        if c["ended_at"] is None:
            c["ended_at"] = at
        if c["ended_by"] is None:
            c["ended_by"] = _text(data, "by")
        if c["answered_at"] is not None and c["talk_seconds"] is None:
            c["talk_seconds"] = _seconds(c["answered_at"], c["ended_at"])
        if c["outcome"] is None:
            if c["queued_at"] is not None:
                c["outcome"] = "abandoned_queue"
                if c["wait_seconds"] is None:
                    c["wait_seconds"] = _seconds(c["queued_at"], c["ended_at"])
            elif c["ended_by"] == "caller":
                c["outcome"] = "abandoned_ivr"
            else:
                c["outcome"] = "ended_in_ivr"

    c["last_seq"] = max(int(c["last_seq"] or 0), event.seq)
    return c


def to_contact(row: Mapping[Any, Any]) -> Contact:
    values: dict[str, Any] = {name: row.get(name) for name in FIELDS}
    values["ivr_path"] = list(values["ivr_path"] or [])
    values["last_seq"] = int(values["last_seq"] or 0)
    return Contact(**values)
