"""GET /api/events?after=CURSOR: incremental sync sees every event once, in order, and then only new ones."""

from __future__ import annotations

from datetime import timedelta

from hotline.store.db import Store
from support.api_helpers import T0, Api, call


async def sync(api: Api, after: int, limit: int) -> tuple[list[str], list[int], int]:
    """Read from `after` until caught up; returns the event ids, their seqs and the cursor to keep."""
    ids: list[str] = []
    seqs: list[int] = []
    while True:
        status, page = await api.get("/api/events", {"after": str(after), "limit": str(limit)})
        assert status == 200, page
        ids += [event["id"] for event in page["items"]]
        seqs += [event["seq"] for event in page["items"]]
        if page["items"]:
            assert page["next"] == page["items"][-1]["seq"]
        else:
            assert page["next"] == after
        after = page["next"]
        if len(page["items"]) < limit:
            return ids, seqs, after


async def test_an_empty_store(api: Api) -> None:
    assert await api.get("/api/events") == (200, {"items": [], "next": 0})
    assert await api.get("/api/events", {"after": "1000"}) == (200, {"items": [], "next": 1000})


async def test_incremental_sync(api: Api, store: Store) -> None:
    first = call("c-1", T0) + call("c-2", T0 + timedelta(minutes=1), agent=None)
    await store.append(first)
    ids, seqs, cursor = await sync(api, 0, 4)
    assert ids == [event.id for event in first]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert cursor == seqs[-1]

    # nothing new: the same cursor comes back
    assert await sync(api, cursor, 4) == ([], [], cursor)

    later = call("c-3", T0 + timedelta(minutes=2)) + call("c-1", T0)[-1:]
    await store.append(later)
    ids, new_seqs, cursor = await sync(api, cursor, 4)
    assert ids == [event.id for event in later]
    assert min(new_seqs) > seqs[-1]
    assert cursor == new_seqs[-1]

    # the default limit takes everything here in one answer
    status, page = await api.get("/api/events")
    assert status == 200
    assert [event["id"] for event in page["items"]] == [event.id for event in first + later]


async def test_an_event_as_the_api_shows_it(api: Api, store: Store) -> None:
    [event] = call("c-1", T0.astimezone(), queue=None)[:1]
    await store.append([event])
    status, page = await api.get("/api/events")
    assert status == 200
    [shown] = page["items"]
    assert shown == {
        "seq": shown["seq"],
        "id": event.id,
        "type": "call_started",
        "at": "2026-11-02T08:00:00Z",
        "contact_id": "c-1",
        "call_id": "call-c-1",
        "data": {"caller": "+48221234567", "dialed": "100"},
    }
    assert page["next"] == shown["seq"]
