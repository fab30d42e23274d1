"""Helpers for the API tests: a client that sends the token, and the events of typical calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from hotline.api import make_app
from hotline.store.db import Store
from hotline.store.events import ContactEvent, new_event

TOKEN = "api-test-token-0123456789abcdef"
#: Contacts start from here, one minute apart unless a test says otherwise.
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@dataclass
class Api:
    """A client of the running API that sends the token unless told otherwise."""

    client: TestClient[Any, Any]

    async def get(
        self, path: str, params: dict[str, str] | None = None, *, token: str | None = TOKEN
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        async with self.client.get(path, params=params, headers=headers) as response:
            return response.status, await response.json()

    async def send(self, method: str, path: str, body: Any = None, *, data: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with self.client.request(
            method, path, json=body if data is None else None, data=data, headers=headers
        ) as response:
            return response.status, await response.json()


def call(
    contact_id: str,
    start: datetime,
    *,
    caller: str = "+48221234567",
    path: Sequence[str] = ("main", "sales"),
    queue: str | None = "sales",
    agent: str | None = "anna",
    wait: float = 30.0,
    talk: float = 95.0,
) -> list[ContactEvent]:
    """The events of one call: IVR path, queue, then answered by `agent` or (agent None) abandoned."""
    at = start
    events = [
        new_event(
            "call_started",
            contact_id,
            at=at,
            call_id=f"call-{contact_id}",
            data={"caller": caller, "dialed": "100"},
        )
    ]
    for node in path:
        at += timedelta(seconds=2)
        events.append(new_event("node_entered", contact_id, at=at, data={"node": node}))
    if queue is None:
        events.append(new_event("hung_up", contact_id, at=at + timedelta(seconds=3), data={"by": "caller"}))
        return events
    at += timedelta(seconds=1)
    events.append(new_event("queued", contact_id, at=at, data={"queue": queue}))
    at += timedelta(seconds=wait)
    if agent is None:
        events.append(
            new_event("abandoned", contact_id, at=at, data={"where": "queue", "queue": queue, "wait": wait})
        )
        return events
    events.append(
        new_event("answered", contact_id, at=at, data={"queue": queue, "agent": agent, "wait": wait})
    )
    events.append(new_event("hung_up", contact_id, at=at + timedelta(seconds=talk), data={"by": "caller"}))
    return events


@asynccontextmanager
async def serve(store: Store, tokens: Sequence[str]) -> AsyncIterator[Api]:
    """The API over `store` on a free loopback port."""
    server = TestServer(make_app(store, tokens), host="127.0.0.1", port=0)
    async with server, TestClient(server) as client:
        yield Api(client)
