"""Bearer-token auth: no token or a wrong one is 401 with a challenge; there is no default token."""

from __future__ import annotations

from typing import Any

import pytest

from hotline.store.db import Store
from support.api_helpers import TOKEN, Api, serve

OTHER = "second-token-abcdefghijklmnop"


async def status_and_body(
    api: Api, headers: dict[str, str], path: str = "/api/contacts"
) -> tuple[int, Any, str | None]:
    async with api.client.get(path, headers=headers) as response:
        return response.status, await response.json(), response.headers.get("WWW-Authenticate")


async def test_the_right_token_is_let_in(api: Api) -> None:
    status, body, challenge = await status_and_body(api, {"Authorization": f"Bearer {TOKEN}"})
    assert (status, body, challenge) == (200, {"items": [], "next_cursor": None}, None)


async def test_the_scheme_is_case_insensitive(api: Api) -> None:
    status, _, _ = await status_and_body(api, {"Authorization": f"bearer {TOKEN}"})
    assert status == 200


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "send the header Authorization: Bearer <token>"),
        (
            {"Authorization": f"Basic {TOKEN}"},
            "the Authorization header uses the scheme 'Basic'; send Authorization: Bearer <token>",
        ),
        (
            {"Authorization": "Bearer"},
            "the Authorization header uses the scheme 'Bearer'; send Authorization: Bearer <token>",
        ),
        (
            {"Authorization": f"Bearer {TOKEN}x"},
            "the token is not one of the service's API tokens; check api.tokens in its config",
        ),
        (
            {"Authorization": f"Bearer {TOKEN[:-1]}"},
            "the token is not one of the service's API tokens; check api.tokens in its config",
        ),
        (
            {"Authorization": "Bearer zażółć-gęślą-jaźń-token"},
            "the token is not one of the service's API tokens; check api.tokens in its config",
        ),
    ],
)
async def test_a_missing_or_wrong_token_is_401(api: Api, headers: dict[str, str], message: str) -> None:
    for path in ("/api/contacts", "/api/customers/c-1", "/api/events", "/api/no-such-route"):
        status, body, challenge = await status_and_body(api, headers, path)
        assert (status, body) == (401, {"error": "unauthorized", "message": message, "details": None})
        assert challenge is not None and challenge.startswith("Bearer ")


async def test_every_configured_token_works(store: Store) -> None:
    async with serve(store, [TOKEN, OTHER]) as api:
        for token in (TOKEN, OTHER):
            assert (await api.get("/api/events", token=token))[0] == 200
        assert (await api.get("/api/events", token="third-token-0123456789"))[0] == 401


async def test_without_tokens_every_request_is_refused(store: Store) -> None:
    async with serve(store, []) as api:
        for token in (TOKEN, "", None):
            status, body = await api.get("/api/contacts", token=token)
            assert status == 401
            assert body["error"] == "unauthorized"
        assert body["message"] == (
            "this service has no API tokens configured, so it refuses every request; "
            "add api.tokens to its config or set HOTLINE_API_TOKENS"
        )
        # what a client generator or a load balancer needs stays open
        assert (await api.get("/api/health", token=None))[0] == 200
        assert (await api.get("/api/openapi.json", token=None))[0] == 200


async def test_health_and_the_openapi_document_need_no_token(api: Api, store: Store) -> None:
    assert await api.get("/api/health", token=None) == (200, {"status": "ok", "store": store.dialect})
    status, document = await api.get("/api/openapi.json", token=None)
    assert status == 200
    assert document["openapi"] == "3.1.0"
