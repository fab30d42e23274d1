"""The agent and supervisor API over the running service's routing: log in, log out, pause with a reason,
resume, end wrap-up, change skills live; the agents and queues as they are now; and `/api/stream`, the
live events an agent desktop shows (agent state changes, screen pops) as server-sent events.

Every request goes through `RoutingService.submit`, so it is ordered with the calls' own events, and
the router decides: a request the agent's state does not allow (pausing an agent on a call) is a 409
`illegal_transition` whose message names the agent, the state and what they can do instead. Without a
routing file there is nothing to control: every route answers 503 `routing_disabled`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from hotline.agents.service import RoutingService
from hotline.api.errors import ApiError
from hotline.api.keys import CLOCK, ROUTING, STREAM_KEEPALIVE, STREAMS
from hotline.api.routes import Route, path_id, problems, read_json, respond
from hotline.api.schemas import UtcTime
from routing.errors import IllegalTransition, InvalidSkills, UnknownAgent
from routing.events import (
    AgentLoggedIn,
    AgentLoggedOut,
    AgentPaused,
    AgentResumed,
    SkillsChanged,
    WrapUpEnded,
)
from routing.model import Level, Name
from routing.switchboard.events import AgentRequest

log = structlog.get_logger("hotline.api")

#: Seconds between keepalive comments on a quiet stream (proxies close connections idle for long).
KEEPALIVE_SECONDS = 15.0
#: The longest pause reason: it fits a supervisor's wallboard column.
REASON_MAX = 40

B = TypeVar("B", bound=BaseModel)


# --- what the routes take and answer -------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class AgentOut(_Out):
    id: str
    name: str
    state: str = Field(description="logged_out, available, ringing, on_call, wrap_up or paused")
    reason: str | None = Field(description="why the agent is paused (paused only)")
    since: UtcTime | None = Field(description="when the agent entered this state (null: not since start)")
    seconds_in_state: float | None
    skills: dict[str, int]
    calls_taken: int
    reachable: bool = Field(description="the agent's phone is registered and not busy with another call")
    contact_id: str | None = Field(description="the contact the agent is ringing for or talking to")


class AgentList(_Out):
    items: list[AgentOut]


class WaitingOut(_Out):
    contact_id: str
    position: int = Field(
        description="the place among callers waiting for the same agents; 1 is next, 0 ringing"
    )
    waited: float = Field(description="seconds waited so far")
    estimated_wait: float | None = Field(
        description="seconds still to wait; null when no agent can take the call"
    )
    priority: float
    callback: bool = Field(description="a call-back request holding its place, not a caller on the line")
    agent: str | None = Field(description="the agent ringing for this caller")


class ServiceLevelOut(_Out):
    percent: float
    seconds: float


class QueueFiguresOut(_Out):
    window: float = Field(description="the figures cover the last `window` seconds")
    answered: int = Field(description="callers answered (call-back placeholders left out)")
    answered_within: int = Field(description="of those, answered within the target's seconds")
    abandoned: int = Field(description="callers who hung up while waiting")
    average_answer: float | None = Field(description="average seconds waited by the callers answered")
    service_level: float | None = Field(
        description="percent answered within the target's seconds of all answered or abandoned; "
        "null before the first"
    )


class QueueOut(_Out):
    name: str
    waiting: list[WaitingOut]
    agents_eligible: int = Field(description="logged-in agents with the queue's skills")
    service_level_target: ServiceLevelOut | None = Field(
        description="the queue's target: `percent` of callers answered within `seconds`"
    )
    figures: QueueFiguresOut | None = Field(
        description="what the queue did over the target's window: the service level achieved"
    )


class QueueList(_Out):
    items: list[QueueOut]


class PauseBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    reason: Annotated[str, Field(min_length=1, max_length=REASON_MAX, examples=["lunch"])]


class SkillsBody(RootModel[dict[Name, Level]]):
    """Every skill of the agent with its level 1-10; skills left out are taken away."""


# --- helpers -------------------------------------------------------------------------------------------


def _routing(request: web.Request) -> RoutingService:
    if ROUTING not in request.app:
        raise ApiError(
            "routing_disabled",
            "this service routes no calls to agents: it has no routing file; set routing.file in its "
            "config (routing.example.yaml shows one) and restart it",
        )
    return request.app[ROUTING]


def _now(request: web.Request) -> datetime:
    return request.app[CLOCK]() if CLOCK in request.app else datetime.now(UTC)


def _agent_id(request: web.Request, routing: RoutingService) -> str:
    agent_id = path_id(request)
    known = [agent.id for agent in routing.agents()]
    if agent_id not in known:
        shown = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
        raise ApiError(
            "not_found",
            f"no agent '{agent_id}' in the routing file; the agents are {shown or 'none'}",
        )
    return agent_id


async def _submit(routing: RoutingService, event: AgentRequest) -> None:
    try:
        await routing.submit(event)
    except IllegalTransition as e:
        raise ApiError(
            "illegal_transition",
            str(e),
            {"agent": e.agent_id, "state": e.state, "event": e.event, "allowed": list(e.allowed)},
        ) from None
    except UnknownAgent as e:
        raise ApiError("not_found", str(e)) from None
    except InvalidSkills as e:
        raise ApiError("invalid_body", str(e)) from None


def _agent_out(routing: RoutingService, agent_id: str, now: datetime) -> AgentOut:
    [view] = [agent for agent in routing.agents() if agent.id == agent_id]
    return _out(view, now)


def _out(view: Any, now: datetime) -> AgentOut:
    since: datetime | None = view.since
    return AgentOut(
        id=view.id,
        name=view.name,
        state=view.state,
        reason=view.reason,
        since=since,
        seconds_in_state=None if since is None else round(max(0.0, (now - since).total_seconds()), 3),
        skills=dict(view.skills),
        calls_taken=view.calls_taken,
        reachable=view.reachable,
        contact_id=view.contact_id,
    )


async def _body(request: web.Request, model: type[B], example: str) -> B:
    """The JSON body as `model`; too large a body is refused before it is read in full."""
    data = await read_json(request, example, "a body here is a few bytes")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        details = problems(e)
        first = details[0]
        text = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        raise ApiError("invalid_body", f"{text}; send {example}", details) from None


# --- the routes ----------------------------------------------------------------------------------------


async def _change(request: web.Request, make: Any) -> web.Response:
    routing = _routing(request)
    agent_id = _agent_id(request, routing)
    await _submit(routing, make(agent_id))
    return respond(_agent_out(routing, agent_id, _now(request)))


async def log_in(request: web.Request) -> web.Response:
    return await _change(request, AgentLoggedIn)


async def log_out(request: web.Request) -> web.Response:
    return await _change(request, AgentLoggedOut)


async def pause(request: web.Request) -> web.Response:
    routing = _routing(request)
    agent_id = _agent_id(request, routing)
    body = await _body(request, PauseBody, '{"reason": "lunch"} (1 to 40 characters)')
    await _submit(routing, AgentPaused(agent_id, body.reason))
    return respond(_agent_out(routing, agent_id, _now(request)))


async def resume(request: web.Request) -> web.Response:
    return await _change(request, AgentResumed)


async def end_wrapup(request: web.Request) -> web.Response:
    return await _change(request, WrapUpEnded)


async def set_skills(request: web.Request) -> web.Response:
    routing = _routing(request)
    agent_id = _agent_id(request, routing)
    body = await _body(request, SkillsBody, '{"support": 7, "polish": 10} (levels 1 to 10)')
    await _submit(routing, SkillsChanged(agent_id, dict(body.root)))
    return respond(_agent_out(routing, agent_id, _now(request)))


async def list_agents(request: web.Request) -> web.Response:
    routing = _routing(request)
    now = _now(request)
    return respond(AgentList(items=[_out(view, now) for view in routing.agents()]))


async def list_queues(request: web.Request) -> web.Response:
    routing = _routing(request)
    items = []
    for view in routing.queues():
        queue = routing.config.queues.get(view.name)
        target = (
            None
            if queue is None
            else ServiceLevelOut(percent=queue.service_level.percent, seconds=queue.service_level.seconds)
        )
        waiting = [
            WaitingOut(
                contact_id=w.contact_id,
                position=w.position,
                waited=round(w.waited, 3),
                estimated_wait=None if w.estimated_wait is None else round(w.estimated_wait, 3),
                priority=w.priority,
                callback=w.callback,
                agent=w.agent,
            )
            for w in view.waiting
        ]
        items.append(
            QueueOut(
                name=view.name,
                waiting=waiting,
                agents_eligible=view.agents_eligible,
                service_level_target=target,
                figures=None
                if view.figures is None
                else QueueFiguresOut(
                    window=view.figures.window,
                    answered=view.figures.answered,
                    answered_within=view.figures.answered_within,
                    abandoned=view.figures.abandoned,
                    average_answer=None
                    if view.figures.average_answer is None
                    else round(view.figures.average_answer, 3),
                    service_level=None
                    if view.figures.service_level is None
                    else round(view.figures.service_level, 2),
                ),
            )
        )
    return respond(QueueList(items=items))


def server_sent(message: dict[str, Any]) -> bytes:
    """One server-sent event: `event:` from the message's type, `data:` the message as JSON."""
    kind = str(message.get("type") or "message").replace("\n", " ")
    data = json.dumps(message, ensure_ascii=False, default=str)
    return f"event: {kind}\ndata: {data}\n\n".encode()


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events until the client goes away or the service stops."""
    routing = _routing(request)
    keepalive = request.app.get(STREAM_KEEPALIVE, KEEPALIVE_SECONDS)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    messages = routing.subscribe()
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def pump() -> None:
        async for message in messages:
            inbox.put_nowait(message)

    pumping = asyncio.create_task(pump(), name="hotline-api-stream")
    this = asyncio.current_task()
    streams = request.app.get(STREAMS, set())
    if this is not None:
        streams.add(this)
    try:
        await asyncio.sleep(0)  # the pump subscribes before the client is told the stream is open
        await response.write(b"retry: 3000\n: connected\n\n")
        while True:
            try:
                message = await asyncio.wait_for(inbox.get(), keepalive)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            await response.write(server_sent(message))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        if this is not None:
            streams.discard(this)
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
    return response


async def close_streams(app: web.Application) -> None:
    """`on_shutdown`: end the open streams, so stopping the service does not wait for their clients."""
    streams: set[asyncio.Task[Any]] = app[STREAMS]
    for task in list(streams):
        task.cancel()


_AGENT = {"id": "the agent's id from the routing file"}
_CHANGE_ERRORS = ("invalid_id", "not_found", "illegal_transition", "routing_disabled")

AGENT_ROUTES: Sequence[Route] = (
    Route(
        "GET",
        "/api/agents",
        list_agents,
        "Every agent with their state, time in state, skills and calls taken",
        AgentList,
        errors=("routing_disabled",),
    ),
    Route(
        "POST",
        "/api/agents/{id}/login",
        log_in,
        "Log the agent in: they become available",
        AgentOut,
        errors=_CHANGE_ERRORS,
        path_params=_AGENT,
    ),
    Route(
        "POST",
        "/api/agents/{id}/logout",
        log_out,
        "Log the agent out (not while on a call)",
        AgentOut,
        errors=_CHANGE_ERRORS,
        path_params=_AGENT,
    ),
    Route(
        "POST",
        "/api/agents/{id}/pause",
        pause,
        "Pause the agent with a reason: no calls are offered until they resume",
        AgentOut,
        body=PauseBody,
        errors=(*_CHANGE_ERRORS, "invalid_json", "invalid_body", "body_too_large"),
        path_params=_AGENT,
    ),
    Route(
        "POST",
        "/api/agents/{id}/resume",
        resume,
        "End the agent's pause: they become available",
        AgentOut,
        errors=_CHANGE_ERRORS,
        path_params=_AGENT,
    ),
    Route(
        "POST",
        "/api/agents/{id}/wrapup/end",
        end_wrapup,
        "End the agent's wrap-up before its time: they become available",
        AgentOut,
        errors=_CHANGE_ERRORS,
        path_params=_AGENT,
    ),
    Route(
        "PUT",
        "/api/agents/{id}/skills",
        set_skills,
        "Replace the agent's skills, live: the next decision uses them",
        AgentOut,
        body=SkillsBody,
        errors=(
            "invalid_id",
            "not_found",
            "routing_disabled",
            "invalid_json",
            "invalid_body",
            "body_too_large",
        ),
        path_params=_AGENT,
        description="The body lists every skill with its level 1-10; a skill left out is taken away. "
        "The routing file is not changed: a reload of the file sets the skills it lists.",
    ),
    Route(
        "GET",
        "/api/queues",
        list_queues,
        "Every queue with its waiting callers, their places and estimated waits",
        QueueList,
        errors=("routing_disabled",),
    ),
    Route(
        "GET",
        "/api/stream",
        stream,
        "Live events for agent desktops, as server-sent events",
        None,
        errors=("routing_disabled",),
        content_type="text/event-stream",
        description="`event: agent_state` (an agent's new state and reason) and `event: screen_pop` "
        "(an agent is offered a contact: caller, customer record, IVR path, queue, wait), each with "
        "`data:` one JSON object; a comment line `: keepalive` every 15 s while nothing happens.",
    ),
)
