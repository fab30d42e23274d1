"""Call-backs a caller asks for in a flow (a `callback` node, or a queue's offer), kept in the store.

Both the ARI call runner and the FastAGI server hand `RequestCallback` here: the call-back is stored on
the call's contact, due at once, with the queue's expiry and time zone (the defaults without routing),
the flow's priority or else the queue's, the number made international with `callbacks.country_code`,
and the time of the caller's first queue entry (`place_since`), so the placeholder keeps their place.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from hotline.store.callbacks import Callback, CallbackStore
from hotline.store.phones import international
from ivr.actions import RequestCallback
from routing.callbacks import RetryPolicy
from routing.model import RoutingConfig

#: Call-back ids of IVR requests come from the contact, so one call stores at most one call-back.
_CALLBACK_IDS = uuid.UUID("0d7c2b1e-5a4f-4c3b-9e8d-7f6a5b4c3d2e")


async def keep_callback(
    callbacks: CallbackStore,
    action: RequestCallback,
    contact_id: str,
    now: datetime,
    routing: RoutingConfig | None,
    country_code: str | None,
) -> Callback:
    """Store the call-back a caller asked for, due now, on their contact. One per contact: asking
    again returns the one stored. Raises what the store raises for a number it refuses."""
    policy, time_zone = RetryPolicy(), "UTC"
    queue = None if routing is None else routing.queues.get(action.queue)
    if queue is not None and queue.callback is not None:
        policy, time_zone = queue.callback.retry_policy(), queue.callback.time_zone
    return await callbacks.create(
        number=international(action.number, country_code),
        now=now,
        next_attempt_at=now,
        queue=action.queue,
        skills=action.skills,
        priority=action.priority or (queue.priority if queue is not None else 0),
        contact_id=contact_id,
        time_zone=time_zone,
        expires_at=policy.expires_at(now),
        callback_id=uuid.uuid5(_CALLBACK_IDS, contact_id).hex,
        place_since=action.place_since,
    )


class CallbackRequests:
    """Where calls keep their callers' call-back requests: the store, the routing config of the moment
    (a queue's policy), the country code, and who to tell once one is kept (the worker looks at once)."""

    def __init__(
        self,
        callbacks: CallbackStore,
        *,
        routing: Callable[[], RoutingConfig | None] = lambda: None,
        country_code: str | None = None,
        kept: Callable[[], None] = lambda: None,
    ) -> None:
        self.callbacks = callbacks
        self._routing = routing
        self.country_code = country_code
        self._kept = kept

    async def keep(self, action: RequestCallback, contact_id: str, now: datetime) -> Callback:
        stored = await keep_callback(
            self.callbacks, action, contact_id, now, self._routing(), self.country_code
        )
        self._kept()
        return stored
