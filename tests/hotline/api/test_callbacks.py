"""Web call-backs over loopback, on the real store (SQLite and PostgreSQL) and the real routing service
with the shipped example's queues (no Asterisk: nothing here dials). The clock stands on Monday
2026-11-02 08:00 UTC, 09:00 in Warsaw, where customer_service calls back on weekdays 08:00-18:00."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from aiohttp.test_utils import TestClient, TestServer

from hotline.agents import RoutingService
from hotline.agents.routing_file import load_routing_config
from hotline.api import make_app
from hotline.asterisk.ari import AriClient
from hotline.store.callbacks import CallbackStore
from hotline.store.db import Store
from routing.switchboard import Switchboard
from support.api_helpers import TOKEN, Api, serve
from support.paths import ROUTING_EXAMPLE

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
WINDOW = {"from": "2026-11-02T14:00:00+01:00", "to": "2026-11-02T16:00:00+01:00"}


@pytest.fixture
async def api(store: Store) -> AsyncIterator[Api]:
    config = load_routing_config(ROUTING_EXAMPLE)
    # no Asterisk behind this address: call-back requests never reach ARI
    ari = AriClient("http://127.0.0.1:9/ari", "hotline", "unused", "hotline")
    routing = RoutingService(Switchboard(config), ari, None, clock=lambda: T0)
    await routing.start()
    server = TestServer(make_app(store, [TOKEN], routing=routing, clock=lambda: T0), host="127.0.0.1", port=0)
    try:
        async with server, TestClient(server) as client:
            yield Api(client)
    finally:
        await routing.close()
        await ari.close()


async def ask(api: Api, **body: Any) -> tuple[int, Any]:
    return await api.send("POST", "/api/callbacks", {"number": "+48221234567", **body})


async def test_a_web_call_back_is_scheduled_in_the_customers_window(api: Api, store: Store) -> None:
    status, body = await ask(
        api, queue="customer_service", window=WINDOW, customer_ref="crm-1001", note="router reboots"
    )
    assert status == 201, body
    callback_id = body["id"]
    assert body == {
        "id": callback_id,
        "contact_id": callback_id,
        "number": "+48221234567",
        "queue": "customer_service",
        "skills": {},
        "priority": 0,
        "customer_ref": "crm-1001",
        "note": "router reboots",
        "state": "scheduled",
        "attempts": 0,
        "next_attempt_at": "2026-11-02T13:00:00Z",
        "expires_at": "2026-11-02T15:00:00Z",
        "window": {"from": "2026-11-02T13:00:00Z", "to": "2026-11-02T15:00:00Z"},
        "time_zone": "Europe/Warsaw",
        "requested_at": "2026-11-02T08:00:00Z",
        "updated_at": "2026-11-02T08:00:00Z",
        "last_outcome": None,
        "attempt_contact_id": None,
    }
    assert await api.get(f"/api/callbacks/{callback_id}") == (200, body)
    timeline = await store.timeline(callback_id)
    assert [(e.type, e.data["due"]) for e in timeline] == [
        ("callback_scheduled", "2026-11-02T13:00:00+00:00")
    ]


async def test_the_first_attempt_waits_for_the_queues_hours(api: Api) -> None:
    # now: 09:00 in Warsaw on a Monday, inside the hours: at once, expiring after the queue's day
    status, body = await ask(api, queue="customer_service")
    assert (status, body["next_attempt_at"], body["expires_at"]) == (
        201,
        "2026-11-02T08:00:00Z",
        "2026-11-03T08:00:00Z",
    )
    # Tuesday 06:00-09:00 Warsaw: the hours open at 08:00 Warsaw, 07:00 UTC
    early = {"from": "2026-11-03T06:00:00+01:00", "to": "2026-11-03T09:00:00+01:00"}
    status, body = await ask(api, queue="customer_service", window=early)
    assert (status, body["next_attempt_at"]) == (201, "2026-11-03T07:00:00Z")
    # a customer in New York: 03:00 there now, so 08:00 New York time (13:00 UTC)
    status, body = await ask(api, queue="customer_service", time_zone="America/New_York")
    assert (status, body["next_attempt_at"], body["time_zone"]) == (
        201,
        "2026-11-02T13:00:00Z",
        "America/New_York",
    )
    # skills alone: the default policy, any time, in UTC
    status, body = await ask(api, skills={"internet": 3})
    assert (status, body["queue"], body["skills"], body["next_attempt_at"], body["time_zone"]) == (
        201,
        None,
        {"internet": 3},
        "2026-11-02T08:00:00Z",
        "UTC",
    )
    # the sales queue's priority goes with its call-backs
    status, body = await ask(api, queue="sales")
    assert (status, body["priority"]) == (201, 5)


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [
        ({"number": "0221234567", "queue": "sales"}, "invalid_number", "number"),
        ({"number": "+48 22 123 45 67 89 01 23", "queue": "sales"}, "invalid_number", "number"),
        ({"number": "+48221234567", "queue": "suport"}, "unknown_queue", "queue"),
        ({"number": "+48221234567"}, "invalid_body", ""),
        ({"number": "+48221234567", "queue": "sales", "colour": "red"}, "invalid_body", "colour"),
        ({"number": "+48221234567", "queue": "sales", "time_zone": "Mars/Base"}, "invalid_body", "time_zone"),
        (
            {"number": "+48221234567", "queue": "sales", "window": {"from": "2026-11-02T14:00", "to": "x"}},
            "invalid_body",
            "window.from",
        ),
        (
            {
                "number": "+48221234567",
                "queue": "sales",
                "window": {"from": WINDOW["to"], "to": WINDOW["from"]},
            },
            "invalid_body",
            "window",
        ),
        (
            {
                "number": "+48221234567",
                "queue": "sales",
                "window": {"from": "2026-11-01T10:00:00Z", "to": "2026-11-02T07:00:00Z"},
            },
            "window_in_the_past",
            "window.to",
        ),
        (
            # Sunday: customer_service calls back Monday to Saturday only
            {
                "number": "+48221234567",
                "queue": "customer_service",
                "window": {"from": "2026-11-08T10:00:00+01:00", "to": "2026-11-08T12:00:00+01:00"},
            },
            "window_outside_hours",
            "window",
        ),
        (
            # Saturday afternoon: the Saturday hours end at 13:00
            {
                "number": "+48221234567",
                "queue": "customer_service",
                "window": {"from": "2026-11-07T14:00:00+01:00", "to": "2026-11-07T17:00:00+01:00"},
            },
            "window_outside_hours",
            "window",
        ),
    ],
)
async def test_every_bad_request_has_its_error(
    api: Api, body: dict[str, Any], error: str, field: str
) -> None:
    status, answer = await api.send("POST", "/api/callbacks", body)
    assert (status, answer["error"]) == (400, error), answer
    assert field in [d["field"] for d in answer["details"]]
    status, listing = await api.get("/api/callbacks")
    assert (status, listing["items"]) == (200, [])


async def test_a_body_that_is_not_json_and_a_missing_token_are_refused(api: Api) -> None:
    status, answer = await api.send("POST", "/api/callbacks", data=b"{number")
    assert (status, answer["error"]) == (400, "invalid_json")
    assert (await api.get("/api/callbacks", token=None))[0] == 401


async def test_listing_filters_by_state_and_pages(api: Api) -> None:
    ids = []
    for n in range(3):
        status, body = await ask(api, queue="sales", customer_ref=f"c-{n}")
        assert status == 201
        ids.append(body["id"])
    status, body = await api.send("DELETE", f"/api/callbacks/{ids[1]}")
    assert (status, body["state"], body["last_outcome"], body["next_attempt_at"]) == (
        200,
        "cancelled",
        "cancelled",
        None,
    )
    status, page = await api.get("/api/callbacks", {"state": "cancelled"})
    assert (status, [cb["id"] for cb in page["items"]], page["next_cursor"]) == (200, [ids[1]], None)
    status, page = await api.get("/api/callbacks", {"state": "scheduled", "limit": "1"})
    assert status == 200 and page["next_cursor"] is not None
    seen = [cb["id"] for cb in page["items"]]
    status, rest = await api.get("/api/callbacks", {"state": "scheduled", "cursor": page["next_cursor"]})
    seen += [cb["id"] for cb in rest["items"]]
    assert (status, sorted(seen), rest["next_cursor"]) == (200, sorted([ids[0], ids[2]]), None)
    status, answer = await api.get("/api/callbacks", {"state": "waiting"})
    assert (status, answer["error"]) == (400, "invalid_query")
    status, answer = await api.get("/api/callbacks", {"cursor": "bm90LWEtY3Vyc29y"})
    assert (status, answer["error"]) == (400, "invalid_cursor")


async def test_cancel_and_reschedule(api: Api, store: Store) -> None:
    _, first = await ask(api, queue="customer_service", window=WINDOW)
    callback_id = first["id"]
    status, body = await api.send(
        "POST", f"/api/callbacks/{callback_id}/reschedule", {"at": "2026-11-03T10:30:00+01:00"}
    )
    assert (status, body["state"], body["next_attempt_at"]) == (200, "scheduled", "2026-11-03T09:30:00Z")
    status, answer = await api.send(
        "POST", f"/api/callbacks/{callback_id}/reschedule", {"at": "2026-11-02T07:00:00Z"}
    )
    assert (status, answer["error"]) == (400, "time_in_the_past")
    status, answer = await api.send("POST", f"/api/callbacks/{callback_id}/reschedule", {})
    assert (status, answer["error"]) == (400, "invalid_body")
    assert (await api.send("DELETE", f"/api/callbacks/{callback_id}"))[0] == 200
    for method, path, body in (
        ("DELETE", f"/api/callbacks/{callback_id}", None),
        ("POST", f"/api/callbacks/{callback_id}/reschedule", {"at": "2026-11-03T10:30:00+01:00"}),
    ):
        status, answer = await api.send(method, path, body)
        assert (status, answer["error"], answer["details"]["state"]) == (409, "callback_final", "cancelled")
    status, answer = await api.send("DELETE", "/api/callbacks/nobody")
    assert (status, answer["error"]) == (404, "not_found")
    assert (await api.get("/api/callbacks/nobody"))[1]["error"] == "not_found"
    status, answer = await api.send(
        "POST", "/api/callbacks/nobody/reschedule", {"at": "2026-11-03T10:30:00Z"}
    )
    assert (status, answer["error"]) == (404, "not_found")

    # one being dialed cannot be moved, but can be called off
    _, second = await ask(api, queue="sales")
    callbacks = CallbackStore(store)
    assert await callbacks.claim(second["id"], "node-1", T0, 60) is not None
    assert await callbacks.start_dial(second["id"], "node-1", "attempt-1", T0, 60) is not None
    status, answer = await api.send(
        "POST", f"/api/callbacks/{second['id']}/reschedule", {"at": "2026-11-03T10:30:00Z"}
    )
    assert (status, answer["error"], answer["details"]["state"]) == (409, "illegal_transition", "dialing")
    status, body = await api.send("DELETE", f"/api/callbacks/{second['id']}")
    assert (status, body["state"], body["attempts"]) == (200, "cancelled", 1)
    assert (
        await callbacks.record_attempt(second["id"], "node-1", "answered", None, T0 + timedelta(seconds=5))
        is None
    )


async def test_without_routing_new_call_backs_are_refused_but_the_rest_works(store: Store) -> None:
    await CallbackStore(store).create(number="+48221234567", now=T0, next_attempt_at=T0, queue="sales")
    async with serve(store, [TOKEN]) as api:
        status, answer = await ask(api, queue="sales")
        assert (status, answer["error"]) == (503, "routing_disabled")
        status, page = await api.get("/api/callbacks")
        assert (status, [cb["queue"] for cb in page["items"]]) == (200, ["sales"])


async def test_answers_match_the_openapi_document(api: Api) -> None:
    _, document = await api.get("/api/openapi.json", token=None)
    operations = document["paths"]

    def check(path: str, method: str, status: int, answer: Any) -> None:
        schema = operations[path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
        jsonschema.validate(
            answer, {**schema, "components": document["components"]}, jsonschema.Draft202012Validator
        )

    assert set(operations["/api/callbacks"]["post"]["responses"]) == {
        "201",
        "400",
        "401",
        "405",
        "413",
        "500",
        "503",
    }
    status, created = await ask(api, queue="customer_service", window=WINDOW)
    check("/api/callbacks", "post", status, created)
    status, page = await api.get("/api/callbacks")
    check("/api/callbacks", "get", status, page)
    status, cancelled = await api.send("DELETE", f"/api/callbacks/{created['id']}")
    check("/api/callbacks/{id}", "delete", status, cancelled)
    status, conflict = await api.send("DELETE", f"/api/callbacks/{created['id']}")
    check("/api/callbacks/{id}", "delete", status, conflict)
    assert operations["/api/callbacks/{id}"]["delete"]["responses"]["409"]["description"] == (
        "Not allowed in the call-back's state: error callback_final"
    )
    request_body = operations["/api/callbacks"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    jsonschema.validate(
        {"number": "+48221234567", "queue": "sales", "window": WINDOW},
        {**request_body, "components": document["components"]},
        jsonschema.Draft202012Validator,
    )
