"""Contact events: the one registry of their names, who records each, and the keys of its data.

A contact is one customer interaction from the first ring to the end; its events are append-only facts
(`call_started`, `queued`, `answered` ...). Every producer names its events with `EventName`, so a name
that is not registered here fails type checking; the store refuses one at run time too.
docs/contacts.md explains each event.

Pure: no I/O. The IVR engine (`ivr`), routing (`routing`) and the service (`hotline`) all import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

EventName = Literal[
    # the IVR engine
    "call_started",
    "node_entered",
    "option_chosen",
    "invalid_input",
    "no_input",
    "input_collected",
    "lookup_done",
    "lookup_failed",
    "language_chosen",
    "branch_taken",
    "queued",
    "queue_overflow",
    "callback_chosen",
    "callback_requested",
    "transferred",
    "transfer_failed",
    "voicemail_left",
    "abandoned",
    "hung_up",
    "flow_error",
    "call_resumed",
    "call_lost",
    # the service
    "call_refused",
    "service_restarted",
    # routing and the switchboard
    "position_announced",
    "callback_offered",
    "agent_offered",
    "agent_no_answer",
    "answered",
    "wrapup_ended",
    "call_ended",
    # the call-back store
    "callback_scheduled",
    "callback_attempted",
    "callback_attempt_ended",
    "callback_completed",
    "callback_failed",
    "callback_expired",
    "callback_cancelled",
]

Producer = Literal["ivr", "service", "routing", "call-backs"]

#: Who records each event and the keys of its `data` (every key is optional unless the store's
#: projection says otherwise; producers may add keys of their own).
EVENTS: Mapping[EventName, tuple[Producer, tuple[str, ...]]] = {
    # the call runner adds `parent_id` to the `call_started` of a call-back and `customer_id` to
    # `lookup_done` when it knows the customer
    "call_started": ("ivr", ("flow", "caller", "caller_withheld", "dialed", "parent_id")),
    "node_entered": ("ivr", ("node", "flow", "type")),
    "option_chosen": ("ivr", ("node", "digits", "target")),
    "invalid_input": ("ivr", ("node", "digits", "reason")),
    "no_input": ("ivr", ("node",)),
    "input_collected": ("ivr", ("node", "variable", "length", "value")),
    "lookup_done": ("ivr", ("node", "status", "fields", "customer_id")),
    "lookup_failed": ("ivr", ("node", "reason")),
    "language_chosen": ("ivr", ("language", "how")),
    "branch_taken": ("ivr", ("node", "case", "target")),
    "queued": ("ivr", ("queue", "skills", "priority", "waited")),
    "queue_overflow": ("ivr", ("queue", "reason")),
    "callback_requested": ("ivr", ("queue", "number")),
    "callback_chosen": ("ivr", ("queue", "waited")),
    "transferred": ("ivr", ("kind", "target", "agent")),
    "transfer_failed": ("ivr", ("node", "kind", "target", "reason")),
    "voicemail_left": ("ivr", ("mailbox", "duration", "recording")),
    "abandoned": ("ivr", ("where", "node", "flow", "queue", "wait")),
    "hung_up": ("ivr", ("by", "node", "flow", "reason")),
    "flow_error": ("ivr", ("node", "flow", "reason")),
    "call_resumed": ("ivr", ("flow", "node")),
    "call_lost": ("ivr", ("node", "flow", "reason")),
    "call_refused": ("service", ("flow", "caller", "dialed", "reason")),
    "service_restarted": ("service", ("where", "node", "queue")),
    "position_announced": ("routing", ("queue", "position", "estimated_wait")),
    "callback_offered": ("routing", ("queue", "position", "estimated_wait")),
    "agent_offered": ("routing", ("queue", "agent")),
    "agent_no_answer": ("routing", ("queue", "agent", "ring_seconds")),
    "answered": ("routing", ("queue", "agent", "wait")),
    "wrapup_ended": ("routing", ("agent", "seconds", "code")),
    "call_ended": ("routing", ("cause", "by")),
    "callback_scheduled": ("call-backs", ("queue", "number", "due", "outcome")),
    "callback_attempted": ("call-backs", ("number", "attempt", "contact_id")),
    "callback_attempt_ended": ("call-backs", ("callback_id", "attempt", "outcome")),
    "callback_completed": ("call-backs", ("contact_id", "agent")),
    "callback_failed": ("call-backs", ("reason", "attempts")),
    "callback_expired": ("call-backs", ("reason",)),
    "callback_cancelled": ("call-backs", ("reason", "attempts")),
}

#: Every event name, in the order above.
EVENT_NAMES: tuple[EventName, ...] = get_args(EventName)

if set(EVENTS) != set(EVENT_NAMES):  # pragma: no cover - a registry that disagrees with itself
    raise ImportError(f"contacts.EVENTS and EventName differ: {set(EVENTS) ^ set(EVENT_NAMES)}")


def produced_by(producer: Producer) -> tuple[EventName, ...]:
    """The events one producer records."""
    return tuple(name for name in EVENT_NAMES if EVENTS[name][0] == producer)
