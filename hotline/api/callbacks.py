"""Web call-backs: a customer (or a CRM, or an agent) asks to be called back; agents and supervisors list,
reschedule and cancel call-backs.

`POST /api/callbacks` checks what a customer could get wrong — the number (E.164), the queue (it must be
in the routing file), the preferred window (in the future, and overlapping the queue's call-back hours
in the customer's time zone) — each with its own error id, then stores the call-back through
`hotline.store.CallbackStore` with its first attempt from `routing.callbacks.first_attempt`. Creating
needs the routing file (503 `routing_disabled` without one); reading, rescheduling and cancelling work
on the store alone, so a supervisor can still call a call-back off while routing is down.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hotline.api.agents import _body, _now, _routing
from hotline.api.errors import ApiError
from hotline.api.keys import STORE
from hotline.api.routes import Route, parse_query, path_id, respond
from hotline.api.schemas import MAX_LIMIT, Cursor, Query, Time, UtcTime
from hotline.store.callbacks import Callback, CallbackStore, InvalidCallback, e164
from hotline.store.errors import InvalidCursor
from routing.callbacks import (
    FINAL,
    STATES,
    WEEKDAYS,
    IllegalCallbackMove,
    InvalidCallbackPolicy,
    RetryPolicy,
    State,
    zone,
)
from routing.callbacks import first_attempt as first_attempt_at
from routing.model import Level, Name

_TEXT = r"^[^\x00]*$"


# --- what the routes take and answer -------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class WindowIn(_In):
    start: Time = Field(alias="from", description="the earliest time the customer wants the call")
    end: Time = Field(alias="to", description="the latest time the customer wants the call")

    @model_validator(mode="after")
    def _in_order(self) -> WindowIn:
        if self.end <= self.start:
            raise ValueError("the window's `to` is not after its `from`; swap them")
        return self


class CallbackIn(_In):
    number: Annotated[
        str,
        Field(
            min_length=1,
            max_length=40,
            description="the customer's number in E.164 form (+, country code, digits)",
            examples=["+48221234567"],
        ),
    ]
    queue: Name | None = Field(None, description="a queue of the routing file")
    skills: dict[Name, Level] | None = Field(
        None, description="skills the agent needs (without a queue, or to narrow it)"
    )
    window: WindowIn | None = Field(
        None, description="when the customer wants the call; left out: as soon as the queue's hours allow"
    )
    time_zone: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None,
        description="the customer's IANA time zone, for the calling hours; left out: the queue's",
        examples=["Europe/Warsaw"],
    )
    customer_ref: Annotated[str, Field(min_length=1, max_length=200, pattern=_TEXT)] | None = None
    note: Annotated[str, Field(max_length=2000, pattern=_TEXT)] | None = None

    @model_validator(mode="after")
    def _routable(self) -> CallbackIn:
        if self.queue is None and not self.skills:
            raise ValueError("give a queue or skills, so the call-back reaches an agent who can help")
        return self


class RescheduleIn(_In):
    at: Time = Field(description="when to make the next attempt")


class WindowOut(BaseModel):
    model_config = ConfigDict(frozen=True, serialize_by_alias=True)

    start: UtcTime = Field(alias="from")
    end: UtcTime = Field(alias="to")


class CallbackOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    contact_id: str = Field(description="the contact that asked (a web call-back is its own contact)")
    number: str
    queue: str | None
    skills: dict[str, int]
    priority: int
    customer_ref: str | None
    note: str | None
    state: str = Field(description=", ".join(STATES))
    attempts: int = Field(description="attempts made so far")
    next_attempt_at: UtcTime | None
    expires_at: UtcTime | None
    window: WindowOut | None = Field(description="the customer's preferred window")
    time_zone: str
    requested_at: UtcTime
    updated_at: UtcTime
    last_outcome: str | None
    attempt_contact_id: str | None = Field(description="the contact of the current or last attempt")


class CallbackPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[CallbackOut]
    next_cursor: str | None


class CallbacksQuery(Query):
    state: State | None = Field(None, description="only call-backs in this state")
    limit: int = Field(50, ge=1, le=MAX_LIMIT, description="call-backs per page")
    cursor: Cursor | None = None


# --- helpers -------------------------------------------------------------------------------------------


def callback_out(callback: Callback) -> CallbackOut:
    window = None
    if callback.window is not None:
        window = WindowOut.model_validate({"from": callback.window[0], "to": callback.window[1]})
    fields = {name: getattr(callback, name) for name in CallbackOut.model_fields if name != "window"}
    return CallbackOut.model_validate({**fields, "window": window})


def _callbacks(request: web.Request) -> CallbackStore:
    return CallbackStore(request.app[STORE])


def _refused(callback_id: str, error: IllegalCallbackMove) -> ApiError:
    details = {"callback": callback_id, "state": error.state, "move": error.move}
    if error.state in FINAL:
        return ApiError(
            "callback_final",
            f"call-back '{callback_id}' is {error.state} already; request a new call-back instead",
            details,
        )
    return ApiError("illegal_transition", str(error), details)


def _time_zone(value: str) -> str:
    try:
        zone(value)
    except InvalidCallbackPolicy as e:
        raise ApiError(
            "invalid_body", f"time_zone: {e}", [{"field": "time_zone", "message": str(e)}]
        ) from None
    return value


def _hours(policy: RetryPolicy, time_zone: str) -> str:
    spans = [
        f"{WEEKDAYS[s.day]} {s.start // 60:02d}:{s.start % 60:02d}-{s.end // 60:02d}:{s.end % 60:02d}"
        for s in policy.window.spans
    ]
    return f"{', '.join(spans)} ({time_zone})"


# --- the routes ----------------------------------------------------------------------------------------


async def create_callback(request: web.Request) -> web.Response:
    routing = _routing(request)
    body = await _body(
        request,
        CallbackIn,
        '{"number": "+48221234567", "queue": "support", "window": {"from": "...", "to": "..."}}',
    )
    now = _now(request)
    try:
        number = e164(body.number)
    except InvalidCallback as e:
        raise ApiError("invalid_number", str(e), [{"field": "number", "message": str(e)}]) from None
    policy = RetryPolicy()
    time_zone = "UTC"
    priority = 0
    if body.queue is not None:
        queue = routing.config.queues.get(body.queue)
        if queue is None:
            known = ", ".join(routing.config.queues) or "none"
            raise ApiError(
                "unknown_queue",
                f"no queue '{body.queue}' in the routing file; the queues are {known}",
                [{"field": "queue", "message": "not in the routing file"}],
            )
        priority = queue.priority
        if queue.callback is not None:
            policy = queue.callback.retry_policy()
            time_zone = queue.callback.time_zone
    if body.time_zone is not None:
        time_zone = _time_zone(body.time_zone)
    preferred: tuple[datetime, datetime] | None = None
    expires_at = policy.expires_at(now)
    first: datetime | None
    if body.window is not None:
        if body.window.end <= now:
            raise ApiError(
                "window_in_the_past",
                f"the window ends at {body.window.end.isoformat()}, which has passed; give a window in the future",
                [{"field": "window.to", "message": "in the past"}],
            )
        preferred = (body.window.start, body.window.end)
        # the expiry counts from when the customer wants the call, not from when they asked
        opens = max(now, body.window.start)
        first = first_attempt_at(opens, preferred, policy, now, time_zone)
        expires_at = min(body.window.end, policy.expires_at(opens))
    else:
        first = first_attempt_at(now, None, policy, now, time_zone)
    if first is None:
        hours = _hours(policy, time_zone)
        raise ApiError(
            "window_outside_hours",
            f"no time in the window is inside the calling hours {hours} before the call-back would expire; "
            "give a window that overlaps them",
            [{"field": "window", "message": f"outside the calling hours {hours}"}],
        )
    try:
        created = await _callbacks(request).create(
            number=number,
            now=now,
            next_attempt_at=first,
            queue=body.queue,
            skills=body.skills,
            priority=priority,
            customer_ref=body.customer_ref,
            note=body.note,
            window=preferred,
            time_zone=time_zone,
            expires_at=expires_at,
        )
    except InvalidCallback as e:
        raise ApiError("invalid_body", str(e)) from None
    return respond(callback_out(created), status=201)


async def list_callbacks(request: web.Request) -> web.Response:
    query = parse_query(request, CallbacksQuery)
    try:
        page = await _callbacks(request).list(state=query.state, limit=query.limit, cursor=query.cursor)
    except InvalidCursor as e:
        raise ApiError("invalid_cursor", str(e), [{"field": "cursor", "message": str(e)}]) from None
    return respond(CallbackPage(items=[callback_out(cb) for cb in page.items], next_cursor=page.next_cursor))


def _missing(callback_id: str) -> ApiError:
    return ApiError("not_found", f"no call-back with id '{callback_id}'; GET /api/callbacks lists them")


async def get_callback(request: web.Request) -> web.Response:
    callback_id = path_id(request)
    found = await _callbacks(request).get(callback_id)
    if found is None:
        raise _missing(callback_id)
    return respond(callback_out(found))


async def cancel_callback(request: web.Request) -> web.Response:
    callback_id = path_id(request)
    try:
        cancelled = await _callbacks(request).cancel(
            callback_id, _now(request), reason="cancelled by an agent"
        )
    except IllegalCallbackMove as e:
        raise _refused(callback_id, e) from None
    if cancelled is None:
        raise _missing(callback_id)
    return respond(callback_out(cancelled))


async def reschedule_callback(request: web.Request) -> web.Response:
    callback_id = path_id(request)
    body = await _body(request, RescheduleIn, '{"at": "2026-11-02T15:00:00+01:00"}')
    now = _now(request)
    if body.at <= now:
        raise ApiError(
            "time_in_the_past",
            f"at: {body.at.isoformat()} has passed; give a time in the future",
            [{"field": "at", "message": "in the past"}],
        )
    try:
        changed = await _callbacks(request).reschedule(callback_id, body.at, now)
    except IllegalCallbackMove as e:
        raise _refused(callback_id, e) from None
    if changed is None:
        raise _missing(callback_id)
    return respond(callback_out(changed))


_CALLBACK = {"id": "the call-back's id"}
_BODY_ERRORS = ("invalid_json", "invalid_body", "body_too_large")

CALLBACK_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/api/callbacks",
        create_callback,
        "Ask for a call-back: the customer is called in their preferred window, within the queue's hours",
        CallbackOut,
        body=CallbackIn,
        status=201,
        errors=(
            *_BODY_ERRORS,
            "invalid_number",
            "unknown_queue",
            "window_in_the_past",
            "window_outside_hours",
            "routing_disabled",
        ),
        description="The first attempt is the earliest time that is in the window (from now on), inside "
        "the queue's call-back hours in the customer's time zone and before the call-back expires (the "
        "queue's expiry, counted from when the window opens, and no later than the window's end).",
    ),
    Route(
        "GET",
        "/api/callbacks",
        list_callbacks,
        "Call-backs, newest first, optionally in one state, paged",
        CallbackPage,
        query=CallbacksQuery,
        errors=("invalid_query", "invalid_cursor"),
    ),
    Route(
        "GET",
        "/api/callbacks/{id}",
        get_callback,
        "One call-back with its state, attempts and next attempt",
        CallbackOut,
        errors=("invalid_id", "not_found"),
        path_params=_CALLBACK,
    ),
    Route(
        "DELETE",
        "/api/callbacks/{id}",
        cancel_callback,
        "Cancel a call-back that is not over yet",
        CallbackOut,
        errors=("invalid_id", "not_found", "callback_final"),
        path_params=_CALLBACK,
        description="A worker dialing it loses its lease, so its outcome is refused. A call-back that is "
        "completed, failed, expired or cancelled already answers 409 callback_final.",
    ),
    Route(
        "POST",
        "/api/callbacks/{id}/reschedule",
        reschedule_callback,
        "Move the next attempt of a call-back to another time",
        CallbackOut,
        body=RescheduleIn,
        errors=(
            *_BODY_ERRORS,
            "invalid_id",
            "not_found",
            "time_in_the_past",
            "callback_final",
            "illegal_transition",
        ),
        path_params=_CALLBACK,
        description="Not while an attempt is being dialed (409 illegal_transition), nor once the call-back "
        "is over (409 callback_final). The time is not held to the calling hours: the agent agreed it.",
    ),
)
