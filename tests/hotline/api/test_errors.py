"""Every bad input gets its 400 with a stable error id, before anything reaches the store; other
failures keep the same JSON shape (404, 405, 413, 500, 503)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from hotline.store.db import Store
from hotline.store.errors import StoreUnavailable
from support.api_helpers import TOKEN, Api

AUTH = {"Authorization": f"Bearer {TOKEN}"}
STORE_METHODS = (
    "append",
    "contacts",
    "contact",
    "timeline",
    "events_after",
    "customer_by_phone",
    "customer",
    "upsert_customers",
)


@pytest.fixture
def store_calls(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the store methods the API called."""
    calls: list[str] = []

    def spy(name: str) -> Callable[..., Any]:
        method = getattr(store, name)

        async def recorded(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return await method(*args, **kwargs)

        return recorded

    for name in STORE_METHODS:
        monkeypatch.setattr(store, name, spy(name))
    return calls


def error_of(body: Any) -> tuple[str, str, Any]:
    assert set(body) == {"error", "message", "details"}
    return body["error"], body["message"], body["details"]


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        (
            {"since": "yesterday"},
            "invalid_query",
            "since: 'yesterday' is not an ISO 8601 time; write it like 2026-11-01T08:00:00+01:00 or "
            "2026-11-01T07:00:00Z",
        ),
        (
            {"since": "2026-11-01T08:00:00"},
            "invalid_query",
            "since: '2026-11-01T08:00:00' has no UTC offset; add one, like 2026-11-01T08:00:00+01:00 or ...Z",
        ),
        (
            {"until": "2026-11-01"},
            "invalid_query",
            "until: '2026-11-01' has no UTC offset; add one, like 2026-11-01T08:00:00+01:00 or ...Z",
        ),
        (
            {"since": "2026-11-02T00:00:00+01:00", "until": "2026-11-01T22:59:59Z"},
            "invalid_query",
            "since is after until; swap them",
        ),
        ({"limit": "0"}, "invalid_query", "limit: Input should be greater than or equal to 1"),
        ({"limit": "501"}, "invalid_query", "limit: Input should be less than or equal to 500"),
        (
            {"limit": "ten"},
            "invalid_query",
            "limit: Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            {"limit": "5", "sort": "asc", "q": "x"},
            "invalid_query",
            "unknown query parameters sort, q; this route takes since, until, number, outcome, queue, agent, "
            "limit, cursor",
        ),
        (
            {"number": "call me"},
            "invalid_query",
            "number: 'call me' is not a phone number; use digits with an optional leading + (spaces, dashes, "
            "dots and brackets are ignored), e.g. +48 22 123 45 67",
        ),
        (
            {"outcome": "won"},
            "invalid_query",
            "outcome: unknown outcome 'won'; the outcomes are abandoned_ivr, abandoned_queue, answered, "
            "callback, callback_cancelled, callback_completed, callback_expired, callback_failed, ended_in_ivr, "
            "lost, not_reached, refused, service_restarted, transferred, voicemail",
        ),
        ({"queue": "q" * 65}, "invalid_query", "queue: String should have at most 64 characters"),
        (
            {"cursor": "<script>"},
            "invalid_cursor",
            "cursor: String should match pattern '^[A-Za-z0-9_\\-=.:~+/]+$'",
        ),
        ({"cursor": "x" * 513}, "invalid_cursor", "cursor: String should have at most 512 characters"),
    ],
)
async def test_bad_contact_queries(
    api: Api, store_calls: list[str], params: dict[str, str], error: str, message: str
) -> None:
    status, body = await api.get("/api/contacts", params)
    assert status == 400
    assert error_of(body)[:2] == (error, message)
    assert store_calls == []


async def test_a_400_lists_each_problem_by_field(api: Api) -> None:
    status, body = await api.get("/api/contacts", {"since": "soon", "limit": "0"})
    assert status == 400
    assert error_of(body) == (
        "invalid_query",
        "since: 'soon' is not an ISO 8601 time; write it like 2026-11-01T08:00:00+01:00 or 2026-11-01T07:00:00Z "
        "(and 1 more problem)",
        [
            {
                "field": "since",
                "message": "'soon' is not an ISO 8601 time; write it like 2026-11-01T08:00:00+01:00 or "
                "2026-11-01T07:00:00Z",
            },
            {"field": "limit", "message": "Input should be greater than or equal to 1"},
        ],
    )


async def test_a_repeated_parameter(api: Api, store_calls: list[str]) -> None:
    async with api.client.get("/api/contacts?limit=5&limit=6", headers=AUTH) as response:
        assert response.status == 400
        assert error_of(await response.json())[:2] == (
            "invalid_query",
            "query parameter limit given more than once; give each at most once",
        )
    assert store_calls == []


async def test_a_cursor_the_store_did_not_hand_out(api: Api) -> None:
    status, body = await api.get("/api/contacts", {"cursor": "bm90LWEtY3Vyc29y"})
    assert status == 400
    error, message, details = error_of(body)
    assert error == "invalid_cursor"
    assert message.startswith("cursor 'bm90LWEtY3Vyc29y' is not one this store handed out")
    assert details[0]["field"] == "cursor"


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"after": "-1"}, "invalid_cursor", "after: Input should be greater than or equal to 0"),
        (
            {"after": "abc"},
            "invalid_cursor",
            "after: Input should be a valid integer, unable to parse string as an integer",
        ),
        ({"limit": "0"}, "invalid_query", "limit: Input should be greater than or equal to 1"),
        (
            {"since": "2026-11-01"},
            "invalid_query",
            "unknown query parameter since; this route takes after, limit",
        ),
    ],
)
async def test_bad_event_queries(
    api: Api, store_calls: list[str], params: dict[str, str], error: str, message: str
) -> None:
    status, body = await api.get("/api/events", params)
    assert status == 400
    assert error_of(body)[:2] == (error, message)
    assert store_calls == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "phone: Field required"),
        ({"phone": ""}, "phone: Field required"),
        (
            {"phone": "12+34"},
            "phone: '12+34' is not a phone number; use digits with an optional leading + (spaces, dashes, "
            "dots and brackets are ignored), e.g. +48 22 123 45 67",
        ),
        ({"phone": "+48221234567", "name": "x"}, "unknown query parameter name; this route takes phone"),
    ],
)
async def test_bad_customer_lookups(
    api: Api, store_calls: list[str], params: dict[str, str], message: str
) -> None:
    status, body = await api.get("/api/customers", params)
    assert status == 400
    assert error_of(body)[:2] == ("invalid_query", message)
    assert store_calls == []


@pytest.mark.parametrize("path", ["/api/contacts/", "/api/customers/"])
async def test_bad_ids(api: Api, store_calls: list[str], path: str) -> None:
    status, body = await api.get(path + "x" * 65)
    assert (status, error_of(body)[:2]) == (
        400,
        ("invalid_id", "id: String should have at most 64 characters"),
    )
    status, body = await api.get(path + "a%01b")
    assert status == 400
    assert error_of(body)[0] == "invalid_id"
    assert store_calls == []


async def test_unknown_ids_are_404(api: Api) -> None:
    assert await api.get("/api/contacts/c-404") == (
        404,
        {"error": "not_found", "message": "no contact with id 'c-404'", "details": None},
    )
    assert await api.get("/api/customers/k-404") == (
        404,
        {"error": "not_found", "message": "no customer with id 'k-404'", "details": None},
    )
    assert await api.get("/api/customers", {"phone": "+48 22 000 00 00"}) == (
        404,
        {"error": "not_found", "message": "no customer has the number +48220000000", "details": None},
    )
    assert await api.get("/api/nothing-here") == (
        404,
        {
            "error": "not_found",
            "message": "no route /api/nothing-here; /api/openapi.json lists the routes",
            "details": None,
        },
    )


async def test_a_method_a_route_does_not_take(api: Api) -> None:
    async with api.client.delete("/api/customers", headers=AUTH) as response:
        assert response.status == 405
        assert response.headers["Allow"] == "GET, POST, PUT"
        assert error_of(await response.json())[:2] == (
            "method_not_allowed",
            "/api/customers does not take DELETE; it takes GET, POST, PUT",
        )


def customer(index: int, **changes: Any) -> dict[str, Any]:
    return {"id": f"k-{index}", "name": f"Customer {index}", "phones": [f"+4822{index:07}"], **changes}


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (b"", "invalid_json", "the body is empty; send a JSON list of customers"),
        (
            b"{nope",
            "invalid_json",
            "the body is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        (b"\xff\xfe[]", "invalid_json", None),
        (
            b'{"customers": []}',
            "invalid_body",
            'the body must be a JSON list of customers: [{"id": "c-1", "name": ..., "phones": [...]}]',
        ),
        (json.dumps([{"name": "No id"}]).encode(), "invalid_body", "0.id: Field required"),
        (
            json.dumps([customer(1), customer(2, phone="+48221234567")]).encode(),
            "invalid_body",
            "1.phone: Extra inputs are not permitted",
        ),
        (
            json.dumps([customer(1, phones=["+48 22 123 45 67", "ask reception"])]).encode(),
            "invalid_body",
            "0.phones.1: 'ask reception' is not a phone number; use digits with an optional leading + "
            "(spaces, dashes, dots and brackets are ignored), e.g. +48 22 123 45 67",
        ),
        (
            json.dumps([customer(1, phones="+48221234567")]).encode(),
            "invalid_body",
            "0.phones: Input should be a valid list",
        ),
        (
            json.dumps([customer(1), customer(1)]).encode(),
            "invalid_body",
            "1.id: id 'k-1' is also customer 0",
        ),
        (
            json.dumps([customer(1), customer(2, phones=["0048 22 0000001"])]).encode(),
            "invalid_body",
            "1.phones: +48220000001 also belongs to customer 0 ('k-1')",
        ),
        (
            json.dumps([customer(1, name="x" * 201)]).encode(),
            "invalid_body",
            "0.name: String should have at most 200 characters",
        ),
        (
            json.dumps([customer(1, attributes=[1])]).encode(),
            "invalid_body",
            "0.attributes: Input should be a valid dictionary",
        ),
        (json.dumps([customer(1, name="nul\u0000")]).encode(), "invalid_body", None),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_bad_imports(api: Api, method: str, body: bytes, error: str, message: str | None) -> None:
    status, answer = await api.send(method, "/api/customers", data=body)
    assert status == 400
    got_error, got_message, _ = error_of(answer)
    assert got_error == error
    if message is not None:
        assert got_message == message
    assert await api.get("/api/customers/k-1") == (
        404,
        {"error": "not_found", "message": "no customer with id 'k-1'", "details": None},
    )


async def test_too_many_customers(api: Api, store_calls: list[str]) -> None:
    status, body = await api.send("POST", "/api/customers", [{"id": f"k-{i}"} for i in range(10_001)])
    assert status == 400
    assert error_of(body) == (
        "too_many_customers",
        "10001 customers in one request; send at most 10000 per request",
        {"count": 10001, "limit": 10000},
    )
    assert store_calls == []


async def test_a_body_over_five_megabytes(api: Api, store_calls: list[str]) -> None:
    big = b"[" + b" " * (5 * 1024 * 1024) + b"]"
    status, body = await api.send("POST", "/api/customers", data=io.BytesIO(big))
    assert (status, error_of(body)[0]) == (413, "body_too_large")
    assert body["message"] == "the body is larger than 5 MB; send the customers in several requests"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(6):
            yield b" " * (1024 * 1024)

    # without a Content-Length the limit holds while reading
    async with api.client.put("/api/customers", data=chunks(), headers=AUTH) as response:
        assert response.status == 413
        assert error_of(await response.json())[0] == "body_too_large"
    assert store_calls == []


async def test_an_unexpected_failure_is_500_without_its_details(
    api: Api, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(**_: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(store, "contacts", broken)
    status, body = await api.get("/api/contacts")
    assert status == 500
    error, message, details = error_of(body)
    assert (error, details) == ("internal", None)
    assert message.startswith("the service failed to answer; its log has the details under incident ")
    assert "secret" not in message


async def test_a_store_that_does_not_answer_is_503(
    api: Api, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def away(*_: Any, **__: Any) -> Any:
        raise StoreUnavailable("database x is unavailable (OSError: refused); check that it is running")

    monkeypatch.setattr(store, "events_after", away)
    monkeypatch.setattr(store, "contact", away)
    status, body = await api.get("/api/events")
    assert (status, error_of(body)[0]) == (503, "store_unavailable")
    status, body = await api.get("/api/health", token=None)
    assert (status, error_of(body)[0]) == (503, "store_unavailable")


async def test_errors_are_json_even_for_head_and_options(api: Api) -> None:
    client: TestClient[Any, Any] = api.client
    async with client.options("/api/contacts", headers=AUTH) as response:
        assert response.status == 405
        assert response.content_type == "application/json"
