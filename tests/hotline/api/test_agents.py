"""The agent and supervisor API over loopback, on the real routing service and router with the shipped
example's agents and queues (no Asterisk: nothing here rings a phone)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp.test_utils import TestClient, TestServer

from hotline.agents import RoutingService
from hotline.agents.routing_file import load_routing_config
from hotline.api import make_app
from hotline.api.keys import STREAM_KEEPALIVE, STREAMS
from hotline.asterisk.ari import AriClient
from hotline.store.db import Store, open_store
from routing.switchboard import Switchboard
from routing.switchboard.events import CallerQueued, ChannelGone
from support.api_helpers import TOKEN, Api
from support.paths import ROUTING_EXAMPLE

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


class Clock:
    """The service's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Desk:
    api: Api
    routing: RoutingService
    clock: Clock


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'hotline.db'}")
    yield store
    await store.close()


@pytest.fixture
async def desk(sqlite_store: Store) -> AsyncIterator[Desk]:
    config = load_routing_config(ROUTING_EXAMPLE)
    clock = Clock()
    # no Asterisk behind this address: agents' requests never reach ARI, and a test that made them would fail
    ari = AriClient("http://127.0.0.1:9/ari", "hotline", "unused", "hotline")
    routing = RoutingService(Switchboard(config), ari, None, clock=clock)
    await routing.start()
    app = make_app(sqlite_store, [TOKEN], routing=routing, clock=clock)
    app[STREAM_KEEPALIVE] = 0.2
    server = TestServer(app, host="127.0.0.1", port=0)
    try:
        async with server, TestClient(server) as client:
            yield Desk(Api(client), routing, clock)
    finally:
        await routing.close()
        await ari.close()


def agent(listing: dict[str, Any], agent_id: str) -> dict[str, Any]:
    [found] = [a for a in listing["items"] if a["id"] == agent_id]
    return dict(found)


async def test_an_agent_logs_in_pauses_resumes_and_logs_out(desk: Desk) -> None:
    api = desk.api
    status, body = await api.send("POST", "/api/agents/agent1/login")
    assert status == 200, body
    assert body == {
        "id": "agent1",
        "name": "Anna Nowak",
        "state": "available",
        "reason": None,
        "since": "2026-11-02T08:00:00Z",
        "seconds_in_state": 0.0,
        "skills": {"customer_service": 8, "sales": 5, "internet": 4, "polish": 10},
        "calls_taken": 0,
        "reachable": True,
        "contact_id": None,
    }
    desk.clock.advance(42)
    status, listing = await api.get("/api/agents")
    assert status == 200
    assert [a["id"] for a in listing["items"]] == ["agent1", "agent2", "agent3", "agent4"]
    assert [a["state"] for a in listing["items"]] == ["available", "logged_out", "logged_out", "logged_out"]
    assert agent(listing, "agent1")["seconds_in_state"] == 42.0

    status, body = await api.send("POST", "/api/agents/agent1/pause", {"reason": "  lunch "})
    assert (status, body["state"], body["reason"], body["since"]) == (
        200,
        "paused",
        "lunch",
        "2026-11-02T08:00:42Z",
    )
    status, body = await api.send("POST", "/api/agents/agent1/pause", {"reason": "training"})
    assert (status, body["state"], body["reason"]) == (200, "paused", "training")
    status, body = await api.send("POST", "/api/agents/agent1/resume")
    assert (status, body["state"], body["reason"]) == (200, "available", None)
    status, body = await api.send("POST", "/api/agents/agent1/logout")
    assert (status, body["state"]) == (200, "logged_out")
    assert [a.state for a in desk.routing.agents()] == ["logged_out"] * 4


async def test_a_request_the_state_does_not_allow_is_409_with_the_reason(desk: Desk) -> None:
    api = desk.api
    status, body = await api.send("POST", "/api/agents/agent2/pause", {"reason": "break"})
    assert status == 409
    assert body["error"] == "illegal_transition"
    assert "agent2" in body["message"] and "logged_out" in body["message"]
    assert body["details"] == {
        "agent": "agent2",
        "state": "logged_out",
        "event": "pause",
        "allowed": ["log in"],
    }
    for path in ("/api/agents/agent2/resume", "/api/agents/agent2/wrapup/end", "/api/agents/agent2/logout"):
        status, body = await api.send("POST", path)
        assert (status, body["error"]) == (409, "illegal_transition"), path
    await api.send("POST", "/api/agents/agent2/login")
    status, body = await api.send("POST", "/api/agents/agent2/login")
    assert (status, body["details"]["state"]) == (409, "available")
    status, body = await api.send("POST", "/api/agents/agent2/wrapup/end")
    assert (status, body["details"]["event"]) == (409, "end wrap-up")
    assert agent((await api.get("/api/agents"))[1], "agent2")["state"] == "available"


async def test_an_unknown_agent_is_404(desk: Desk) -> None:
    status, body = await desk.api.send("POST", "/api/agents/agent9/login")
    assert status == 404
    assert body == {
        "error": "not_found",
        "message": "no agent 'agent9' in the routing file; the agents are agent1, agent2, agent3, agent4",
        "details": None,
    }
    status, body = await desk.api.send("PUT", "/api/agents/nobody/skills", {"sales": 1})
    assert (status, body["error"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [
        (None, "invalid_json", None),
        ({}, "invalid_body", "reason"),
        ({"reason": ""}, "invalid_body", "reason"),
        ({"reason": "   "}, "invalid_body", "reason"),
        ({"reason": "x" * 41}, "invalid_body", "reason"),
        ({"reason": 5}, "invalid_body", "reason"),
        ({"reason": "lunch", "until": "13:00"}, "invalid_body", "until"),
        (["lunch"], "invalid_body", ""),
    ],
)
async def test_a_pause_needs_a_reason_of_1_to_40_characters(
    desk: Desk, body: Any, error: str, field: str | None
) -> None:
    await desk.api.send("POST", "/api/agents/agent3/login")
    status, answer = await desk.api.send("POST", "/api/agents/agent3/pause", body)
    assert (status, answer["error"]) == (400, error)
    assert '{"reason": "lunch"}' in answer["message"]
    if field is not None:
        assert [d["field"] for d in answer["details"]] == [field]
    assert agent((await desk.api.get("/api/agents"))[1], "agent3")["state"] == "available"


async def test_a_pause_of_40_characters_and_a_body_that_is_not_json(desk: Desk) -> None:
    await desk.api.send("POST", "/api/agents/agent3/login")
    status, answer = await desk.api.send("POST", "/api/agents/agent3/pause", data=b"{reason: lunch}")
    assert (status, answer["error"]) == (400, "invalid_json")
    status, answer = await desk.api.send("POST", "/api/agents/agent3/pause", {"reason": "é" * 40})
    assert (status, answer["reason"]) == (200, "é" * 40)


async def test_skills_change_live_and_decide_who_may_take_a_queue(desk: Desk) -> None:
    api = desk.api
    status, body = await api.send("PUT", "/api/agents/agent2/skills", {"dispatch": 4, "tv": 10})
    assert (status, body["skills"]) == (200, {"dispatch": 4, "tv": 10})
    assert [a.skills for a in desk.routing.agents() if a.id == "agent2"] == [{"dispatch": 4, "tv": 10}]
    await api.send("POST", "/api/agents/agent2/login")
    await api.send("POST", "/api/agents/agent2/pause", {"reason": "coaching"})
    # paused agents do not staff a queue; agent2 staffs dispatch only once available
    dispatch = next(q for q in (await api.get("/api/queues"))[1]["items"] if q["name"] == "dispatch")
    assert dispatch["agents_eligible"] == 0
    status, body = await api.send(
        "PUT", "/api/agents/agent2/skills", {"dispatch": 11, "tv": 0, "bad name": 3}
    )
    assert status == 400 and body["error"] == "invalid_body"
    assert sorted(d["field"] for d in body["details"]) == ["bad name.[key]", "dispatch", "tv"]
    status, body = await api.send("PUT", "/api/agents/agent2/skills", [])
    assert (status, body["error"]) == (400, "invalid_body")
    status, body = await api.send("PUT", "/api/agents/agent2/skills", {})
    assert (status, body["skills"], body["state"]) == (200, {}, "paused")


async def test_queues_list_waiting_callers_with_places_and_targets(desk: Desk) -> None:
    routing = desk.routing
    await routing.feed(CallerQueued("c-1", "ch-1", "dispatch"))
    desk.clock.advance(10)
    await routing.feed(CallerQueued("c-2", "ch-2", "dispatch"))
    desk.clock.advance(5)
    await routing.feed(CallerQueued("c-3", "ch-3", "dispatch", priority=50))
    desk.clock.advance(1)
    status, body = await desk.api.get("/api/queues")
    assert status == 200
    assert [q["name"] for q in body["items"]] == ["customer_service", "sales", "support", "dispatch"]
    dispatch = body["items"][3]
    assert dispatch["agents_eligible"] == 0
    assert dispatch["service_level_target"] == {"percent": 90.0, "seconds": 15.0}
    assert [
        (w["contact_id"], w["position"], w["waited"], w["priority"], w["callback"], w["agent"])
        for w in dispatch["waiting"]
    ] == [
        ("c-3", 1, 1.0, 50.0, False, None),
        ("c-1", 2, 16.0, 20.0, False, None),
        ("c-2", 3, 6.0, 20.0, False, None),
    ]
    # nobody who could take them is logged in: no estimate rather than a made-up one
    assert [w["estimated_wait"] for w in dispatch["waiting"]] == [None, None, None]
    assert all(q["waiting"] == [] for q in body["items"][:3])
    nothing_yet = {
        "window": 3600.0,
        "answered": 0,
        "answered_within": 0,
        "abandoned": 0,
        "average_answer": None,
        "service_level": None,
    }
    assert dispatch["figures"] == nothing_yet

    # one caller hangs up after 20 s of waiting: the service level achieved is 0 of 1
    desk.clock.advance(3)
    await routing.feed(ChannelGone("ch-1"))  # the caller hung up
    dispatch = (await desk.api.get("/api/queues"))[1]["items"][3]
    assert dispatch["figures"] == {**nothing_yet, "abandoned": 1, "service_level": 0.0}


async def test_without_routing_every_agent_route_is_503(sqlite_store: Store) -> None:
    server = TestServer(make_app(sqlite_store, [TOKEN]), host="127.0.0.1", port=0)
    async with server, TestClient(server) as client:
        api = Api(client)
        for method, path in [
            ("GET", "/api/agents"),
            ("GET", "/api/queues"),
            ("GET", "/api/stream"),
            ("POST", "/api/agents/agent1/login"),
            ("PUT", "/api/agents/agent1/skills"),
        ]:
            status, body = await api.send(method, path)
            assert (status, body["error"]) == (503, "routing_disabled"), path
            assert "routing.file" in body["message"]
        status, body = await api.get("/api/contacts")
        assert status == 200


async def test_agent_routes_need_the_token(desk: Desk) -> None:
    for path in ("/api/agents", "/api/queues", "/api/stream"):
        status, body = await desk.api.get(path, token=None)
        assert (status, body["error"]) == (401, "unauthorized")
    async with desk.api.client.post("/api/agents/agent1/login") as response:
        assert response.status == 401
    assert [a.state for a in desk.routing.agents()] == ["logged_out"] * 4


async def read_event(lines: asyncio.StreamReader | Any, timeout: float = 3.0) -> list[str]:
    """The lines of the next server-sent event or comment block (up to the blank line)."""
    block: list[str] = []
    while True:
        line = (await asyncio.wait_for(lines.readline(), timeout)).decode()
        assert line, "the stream ended"
        if line == "\n":
            return block
        block.append(line.rstrip("\n"))


async def test_the_stream_sends_agent_states_and_keepalives(desk: Desk) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with desk.api.client.get("/api/stream", headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert response.headers["Cache-Control"] == "no-cache"
        assert await read_event(response.content) == ["retry: 3000", ": connected"]
        await desk.api.send("POST", "/api/agents/agent4/login")
        kind, data = await read_event(response.content)
        assert kind == "event: agent_state"
        message = json.loads(data.removeprefix("data: "))
        assert (message["type"], message["agent"], message["state"], message["reason"]) == (
            "agent_state",
            "agent4",
            "available",
            None,
        )
        await desk.api.send("POST", "/api/agents/agent4/pause", {"reason": "lunch"})
        kind, data = await read_event(response.content)
        message = json.loads(data.removeprefix("data: "))
        assert (kind, message["state"], message["reason"]) == ("event: agent_state", "paused", "lunch")
        # quiet: a comment every keepalive period (0.2 s here, 15 s by default)
        assert await read_event(response.content, timeout=1.0) == [": keepalive"]
    # the client went away: the service forgets the stream at the next write
    streams = desk.api.client.app[STREAMS]
    for _ in range(50):
        if not streams:
            break
        await asyncio.sleep(0.05)
    assert not streams


async def test_answers_match_the_openapi_document(desk: Desk) -> None:
    status, document = await desk.api.get("/api/openapi.json", token=None)
    assert status == 200
    await desk.routing.feed(CallerQueued("c-1", "ch-1", "dispatch"))
    answers = [
        ("POST", "/api/agents/{id}/login", None, 200),
        ("POST", "/api/agents/{id}/pause", {"reason": "lunch"}, 200),
        ("POST", "/api/agents/{id}/pause", {"reason": ""}, 400),
        ("POST", "/api/agents/{id}/wrapup/end", None, 409),
        ("PUT", "/api/agents/{id}/skills", {"sales": 2}, 200),
        ("GET", "/api/agents", None, 200),
        ("GET", "/api/queues", None, 200),
    ]
    for method, path, body, expected in answers:
        status, answer = await desk.api.send(method, path.replace("{id}", "agent1"), body)
        assert status == expected, (path, answer)
        schema = document["paths"][path][method.lower()]["responses"][str(status)]["content"][
            "application/json"
        ]["schema"]
        jsonschema.validate(
            answer, {**schema, "components": document["components"]}, jsonschema.Draft202012Validator
        )
    stream = document["paths"]["/api/stream"]["get"]["responses"]
    assert list(stream["200"]["content"]) == ["text/event-stream"]
    assert stream["503"]["description"] == "Not available: error routing_disabled or store_unavailable"
    assert document["paths"]["/api/agents/{id}/pause"]["post"]["responses"]["409"]["description"] == (
        "Not allowed in the agent's state: error illegal_transition"
    )
