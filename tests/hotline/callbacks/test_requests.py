"""A caller's call-back request from the IVR is stored durably by the call's runner, on the real store
(SQLite and PostgreSQL), with the queue's call-back policy from the real routing file. No Asterisk:
storing a call-back sends nothing to ARI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from hotline.agents.routing_file import load_routing_config
from hotline.asterisk.ari import AriClient
from hotline.callbacks import CallbackRequests
from hotline.calls import CallRunner
from hotline.store.callbacks import CallbackStore
from hotline.store.db import Store
from hotline.store.phones import international
from ivr import actions, events
from ivr.flowset import FlowSet
from ivr.model import Flow
from routing.model import RoutingConfig
from support.paths import ROUTING_EXAMPLE

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
FLOWS = FlowSet(
    {"test": Flow.model_validate({"flow": "test", "start": "bye", "nodes": {"bye": {"hangup": None}}})}
)


def request(queue: str, number: str = "+48221234567") -> actions.RequestCallback:
    return actions.RequestCallback(
        queue=queue, number=number, skills={"internet": 3}, priority=7, language="en"
    )


@pytest.fixture
async def ari() -> AsyncIterator[AriClient]:
    # no Asterisk behind this address: a test that reached ARI would fail
    client = AriClient("http://127.0.0.1:9/ari", "hotline", "unused", "hotline")
    yield client
    await client.close()


@pytest.fixture
def routing() -> RoutingConfig:
    return load_routing_config(ROUTING_EXAMPLE)


def runner(
    ari: AriClient, store: Store, routing: RoutingConfig | None, country_code: str | None = None
) -> CallRunner:
    kept: list[str] = []
    return CallRunner(
        ari,
        FLOWS,
        "test",
        None,
        channel_id="chan-1",
        caller="+48221234567",
        dialed="100",
        clock=lambda: T0,
        callbacks=CallbackRequests(
            CallbackStore(store),
            routing=lambda: routing,
            country_code=country_code,
            kept=lambda: kept.append("x"),
        ),
    )


async def test_the_request_is_stored_with_the_queues_policy_once(
    ari: AriClient, store: Store, routing: RoutingConfig
) -> None:
    call = runner(ari, store, routing)
    stored = await call.request_callback(request("customer_service"))
    assert stored is not None
    assert (
        stored.contact_id,
        stored.number,
        stored.queue,
        stored.skills,
        stored.priority,
        stored.state,
        stored.next_attempt_at,
        stored.expires_at,
        stored.time_zone,
    ) == (
        call.contact_id,
        "+48221234567",
        "customer_service",
        {"internet": 3},
        7,
        "scheduled",
        T0,
        T0 + timedelta(days=1),
        "Europe/Warsaw",
    )
    again = await call.request_callback(request("customer_service"))
    assert again is not None and again.id == stored.id
    page = await CallbackStore(store).list()
    assert [cb.id for cb in page.items] == [stored.id]
    assert [e.type for e in await store.timeline(call.contact_id)] == ["callback_scheduled"]

    other = await runner(ari, store, routing).request_callback(request("support"))
    assert other is not None and (other.expires_at, other.time_zone) == (
        T0 + timedelta(days=2),
        "Europe/Warsaw",
    )


async def test_without_routing_the_default_policy_applies(ari: AriClient, store: Store) -> None:
    stored = await runner(ari, store, None).request_callback(request("customer_service"))
    assert stored is not None
    assert (stored.expires_at, stored.time_zone, stored.next_attempt_at) == (
        T0 + timedelta(days=1),
        "UTC",
        T0,
    )


async def test_a_request_the_store_refuses_is_logged_not_raised(
    ari: AriClient, store: Store, routing: RoutingConfig
) -> None:
    call = runner(ari, store, routing)
    assert await call.request_callback(request("sales", number="1001")) is None
    assert (await CallbackStore(store).list()).items == []
    assert await store.timeline(call.contact_id) == []


async def test_the_engine_hears_whether_the_call_back_was_kept(
    ari: AriClient, store: Store, routing: RoutingConfig
) -> None:
    refused = runner(ari, store, routing)
    await refused._execute(request("sales", number="0221234567"))  # national: no country known
    assert refused._inbox.get_nowait() == events.CallbackRefused(
        "call-back number '0221234567' is not an international number; write it in E.164 form with the "
        "country code, e.g. +48221234567"
    )
    assert (await CallbackStore(store).list()).items == []

    kept = runner(ari, store, routing, country_code="48")  # a national number becomes international
    await kept._execute(request("sales", number="0221234567"))
    [stored] = (await CallbackStore(store).list()).items
    assert stored.number == "+48221234567"
    assert kept._inbox.get_nowait() == events.CallbackStored(stored.id)


def test_international_numbers_from_national_ones() -> None:
    assert international("0221234567", "48") == "+48221234567"
    assert international("221234567", "48") == "+48221234567"
    assert international("0048 22 123 45 67", "44") == "+48221234567"  # its own country wins
    assert international("+44 20 7946 0000", "48") == "+442079460000"
    assert international("0221234567", None) == "0221234567"
