"""GET /api/contacts (filters, cursor pages) and GET /api/contacts/{id} (the contact and its timeline)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hotline.store.db import Store
from support.api_helpers import T0, TOKEN, Api, call

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_a_contact_with_its_kpis_and_timeline(api: Api, store: Store) -> None:
    await store.append(call("c-1", T0, caller="+48 22 123 45 67", wait=30, talk=95))
    status, contact = await api.get("/api/contacts/c-1")
    assert status == 200
    timeline = contact.pop("timeline")
    assert [(e["type"], e["at"], e["data"]) for e in timeline] == [
        ("call_started", "2026-11-02T08:00:00Z", {"caller": "+48 22 123 45 67", "dialed": "100"}),
        ("node_entered", "2026-11-02T08:00:02Z", {"node": "main"}),
        ("node_entered", "2026-11-02T08:00:04Z", {"node": "sales"}),
        ("queued", "2026-11-02T08:00:05Z", {"queue": "sales"}),
        ("answered", "2026-11-02T08:00:35Z", {"queue": "sales", "agent": "anna", "wait": 30.0}),
        ("hung_up", "2026-11-02T08:02:10Z", {"by": "caller"}),
    ]
    seqs = [e["seq"] for e in timeline]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6
    assert {e["contact_id"] for e in timeline} == {"c-1"}
    assert timeline[0]["call_id"] == "call-c-1"
    assert contact == {
        "id": "c-1",
        "parent_id": None,
        "call_id": "call-c-1",
        "caller": "+48221234567",
        "dialed": "100",
        "customer_id": None,
        "language": None,
        "started_at": "2026-11-02T08:00:00Z",
        "queued_at": "2026-11-02T08:00:05Z",
        "answered_at": "2026-11-02T08:00:35Z",
        "ended_at": "2026-11-02T08:02:10Z",
        "wait_seconds": 30.0,
        "talk_seconds": 95.0,
        "outcome": "answered",
        "queue": "sales",
        "agent": "anna",
        "ended_by": "caller",
        "ivr_path": ["main", "sales"],
        "last_seq": seqs[-1],
    }
    status, page = await api.get("/api/contacts")
    assert (status, page) == (200, {"items": [contact], "next_cursor": None})


async def seed(store: Store) -> None:
    """Six contacts, one a minute from T0: c-0 is the oldest."""
    await store.append(call("c-0", T0, caller="+48221234567", queue="sales", agent="anna"))
    await store.append(
        call("c-1", T0 + timedelta(minutes=1), caller="+48 600 700 800", queue="support", agent=None)
    )
    await store.append(
        call("c-2", T0 + timedelta(minutes=2), caller="+48221234567", queue="support", agent="bob")
    )
    await store.append(call("c-3", T0 + timedelta(minutes=3), caller="+44 20 7946 0000", queue=None))
    await store.append(
        call("c-4", T0 + timedelta(minutes=4), caller="+48221234567", queue="sales", agent=None)
    )
    await store.append(
        call("c-5", T0 + timedelta(minutes=5), caller="+48600700800", queue="sales", agent="bob")
    )


async def ids(api: Api, params: dict[str, str]) -> list[str]:
    status, page = await api.get("/api/contacts", params)
    assert status == 200, page
    assert page["next_cursor"] is None
    return [item["id"] for item in page["items"]]


async def test_filters(api: Api, store: Store) -> None:
    await seed(store)
    assert await ids(api, {}) == ["c-5", "c-4", "c-3", "c-2", "c-1", "c-0"]
    assert await ids(api, {"number": "+48 (22) 123-45-67"}) == ["c-4", "c-2", "c-0"]
    assert await ids(api, {"number": "0048600700800"}) == ["c-5", "c-1"]
    assert await ids(api, {"outcome": "abandoned_queue"}) == ["c-4", "c-1"]
    assert await ids(api, {"outcome": "abandoned_ivr"}) == ["c-3"]
    assert await ids(api, {"queue": "sales"}) == ["c-5", "c-4", "c-0"]
    assert await ids(api, {"agent": "bob"}) == ["c-5", "c-2"]
    assert await ids(api, {"queue": "support", "agent": "bob"}) == ["c-2"]
    assert await ids(api, {"queue": "billing"}) == []
    # since is inclusive, until exclusive; any offset, always compared in UTC
    assert await ids(api, {"since": "2026-11-02T09:02:00+01:00"}) == ["c-5", "c-4", "c-3", "c-2"]
    assert await ids(api, {"until": "2026-11-02T08:02:00Z"}) == ["c-1", "c-0"]
    assert await ids(api, {"since": "2026-11-02T08:01:00Z", "until": "2026-11-02T03:04:00-05:00"}) == [
        "c-3",
        "c-2",
        "c-1",
    ]
    assert await ids(api, {"since": "2026-11-02T08:01:00Z", "until": "2026-11-02T08:01:00Z"}) == []
    assert await ids(api, {"queue": "", "agent": ""}) == ["c-5", "c-4", "c-3", "c-2", "c-1", "c-0"]


async def test_an_unencoded_plus_in_a_time_still_reads_as_an_offset(api: Api, store: Store) -> None:
    await seed(store)
    async with api.client.get("/api/contacts?since=2026-11-02T09:04:00+01:00", headers=AUTH) as response:
        assert response.status == 200
        assert [item["id"] for item in (await response.json())["items"]] == ["c-5", "c-4"]


async def walk(api: Api, params: dict[str, str]) -> tuple[list[str], int]:
    """Every page from the first; returns the ids in order and how many pages there were."""
    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {**params, **({"cursor": cursor} if cursor else {})}
        status, page = await api.get("/api/contacts", query)
        assert status == 200, page
        pages += 1
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen, pages
        assert len(page["items"]) == int(params["limit"])


async def test_pages_cover_everything_once(api: Api, store: Store) -> None:
    # 23 contacts; some start at the same instant, so the cursor must break ties
    events = []
    expected = []
    for n in range(23):
        start = T0 + timedelta(minutes=n // 3)
        contact_id = f"p-{n:02}"
        events += call(contact_id, start, queue="sales" if n % 2 else "support", agent="anna")
        expected.append((start, contact_id))
    await store.append(events)
    newest_first = [contact_id for _, contact_id in sorted(expected, reverse=True)]

    seen, pages = await walk(api, {"limit": "5"})
    assert (seen, pages) == (newest_first, 5)
    seen, pages = await walk(api, {"limit": "23"})
    assert (seen, pages) == (newest_first, 1)
    seen, pages = await walk(api, {"limit": "1"})
    assert (seen, pages) == (newest_first, 23)

    sales = [c for c in newest_first if int(c[2:]) % 2]
    seen, pages = await walk(api, {"limit": "4", "queue": "sales"})
    assert (seen, pages) == (sales, 3)


async def test_a_page_is_stable_while_new_contacts_arrive(api: Api, store: Store) -> None:
    await seed(store)
    status, first = await api.get("/api/contacts", {"limit": "3"})
    assert [item["id"] for item in first["items"]] == ["c-5", "c-4", "c-3"]
    await store.append(call("c-6", T0 + timedelta(minutes=6)))
    status, second = await api.get("/api/contacts", {"limit": "3", "cursor": first["next_cursor"]})
    assert status == 200
    assert [item["id"] for item in second["items"]] == ["c-2", "c-1", "c-0"]
    assert second["next_cursor"] is None
