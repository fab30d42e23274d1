"""The store on real SQLite files and a real PostgreSQL: round trips, migrations, queries, customers."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import create_async_engine

from hotline.store.db import Store, default_url, open_store, statements, store_url, upgrade
from hotline.store.errors import (
    InvalidCursor,
    InvalidCustomer,
    InvalidEvent,
    InvalidPhone,
    InvalidQuery,
    InvalidStoreURL,
    SchemaOutOfDate,
    StoreUnavailable,
)
from hotline.store.events import EVENT_DATA, EVENT_TYPES, Customer, new_event
from hotline.store.tables import UTCDateTime, metadata
from support.paths import FLOWS

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PLUS_FIVE_HALF = timezone(timedelta(hours=5, minutes=30))


def at(second: float) -> datetime:
    return T0 + timedelta(seconds=second)


# -- events ----------------------------------------------------------------------------------------


async def test_every_event_type_round_trips(store: Store) -> None:
    sent = []
    for number, kind in enumerate(sorted(EVENT_DATA)):
        data: dict[str, Any] = {key: f"{key}-ł-{number}" for key in EVENT_DATA[kind][1]}
        data |= {"n": number, "ratio": 0.25, "ok": True, "none": None, "list": [1, "two", {"x": []}]}
        local = datetime(2026, 12, 1, 14, 30, 15, 123456 + number, tzinfo=PLUS_FIVE_HALF)
        sent.append(new_event(kind, "c-all", at=local, call_id=f"ch-{number}", data=data))
    assert await store.append(sent) == len(EVENT_TYPES)
    stored = await store.timeline("c-all")
    assert [e.id for e in stored] == [e.id for e in sent]
    for original, back in zip(sent, stored, strict=True):
        assert (back.type, back.contact_id, back.call_id, back.data) == (
            original.type,
            original.contact_id,
            original.call_id,
            original.data,
        )
        assert back.at == original.at
        assert back.at.tzinfo is not None and back.at.utcoffset() == timedelta(0)
        assert back.at.microsecond == original.at.microsecond
    assert [e.seq for e in stored] == sorted(e.seq for e in stored)
    assert [e.id for e in await store.events_after(0)] == [e.id for e in sent]


async def test_append_is_idempotent_by_event_id(store: Store) -> None:
    events = [
        new_event("call_started", "c1", at=at(0), data={"caller": "+48221234567", "dialed": "100"}),
        new_event("node_entered", "c1", at=at(1), data={"node": "menu"}),
        new_event("queued", "c1", at=at(5), data={"queue": "sales"}),
    ]
    assert await store.append(events) == 3
    first = await store.contact("c1")
    assert await store.append(events) == 0
    assert await store.append([events[1], events[1], events[2]]) == 0
    assert await store.contact("c1") == first
    assert first is not None and first.ivr_path == ["menu"] and first.last_seq == 3
    more = new_event("answered", "c1", at=at(25), data={"agent": "ann"})
    assert await store.append([events[0], more, more]) == 1
    contact = await store.contact("c1")
    assert contact is not None and (contact.wait_seconds, contact.ivr_path) == (20.0, ["menu"])
    assert len(await store.timeline("c1")) == 4


async def test_seq_follows_arrival_order_across_statements(store: Store) -> None:
    events = [
        new_event("node_entered", f"c{i % 7}", at=at(1000 - i), data={"node": f"n{i}"}) for i in range(1200)
    ]
    assert await store.append(events) == 1200
    stored = await store.events_after(0, limit=5000)
    assert [e.id for e in stored] == [e.id for e in events]
    page = await store.events_after(stored[599].seq, limit=100)
    assert [e.id for e in page] == [e.id for e in events[600:700]]
    contact = await store.contact("c3")
    assert contact is not None and contact.ivr_path == [f"n{i}" for i in range(3, 1200, 7)][:200]


async def test_concurrent_appends_lose_no_projection_update(store: Store) -> None:
    """Appends are serialised: two writers folding the same contact never overwrite each other."""
    groups = [
        [
            new_event("node_entered", "shared", at=at(g * 100 + i), data={"node": f"g{g}-{i}"})
            for i in range(20)
        ]
        for g in range(8)
    ]
    assert await asyncio.gather(*[store.append(group) for group in groups]) == [20] * 8
    contact = await store.contact("shared")
    assert contact is not None and len(contact.ivr_path) == 160
    stored = await store.timeline("shared")
    assert contact.last_seq == stored[-1].seq
    # each append is one transaction: its events have consecutive seqs
    by_id = {e.id: e.seq for e in stored}
    for group in groups:
        seqs = [by_id[e.id] for e in group]
        assert seqs == list(range(seqs[0], seqs[0] + 20))


async def test_the_write_path_builds_no_statement(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its statements are built once per dialect (`statements`) and reused for every batch."""
    assert statements(store.dialect) is statements(store.dialect)
    first = [new_event("call_started", f"c{n}", at=at(n), data={"caller": "+48221234567"}) for n in range(3)]
    await store.append(first)

    def no_statement(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a statement was built on the write path")

    for module, name in [(sa, "select"), (sa, "insert"), (sa, "update"), (sa, "delete")]:
        monkeypatch.setattr(module, name, no_statement)
    for dialect in (sqlite, postgresql):
        monkeypatch.setattr(dialect, "insert", no_statement)
    more = [new_event("queued", f"c{n}", at=at(10 + n), data={"queue": "sales"}) for n in range(5)]
    assert await store.append(first + more) == 5
    assert await store.upsert_customers([Customer("k1", "Ann", ["+48 22 123 45 67"])], now=T0) == (1, 0)
    assert await store.upsert_customers([Customer("k1", "Ann B.", ["+48 22 765 43 21"])], now=T0) == (0, 1)
    monkeypatch.undo()
    contact = await store.contact("c2")
    assert contact is not None and contact.queue == "sales" and contact.caller == "+48221234567"
    customer = await store.customer_by_phone("+48227654321")
    assert customer is not None and customer.name == "Ann B." and customer.phones == ["+48227654321"]


async def test_events_are_stored_as_the_json_that_was_checked(store: Store) -> None:
    event = new_event("node_entered", "c1", at=T0, data={"node": "menü", "path": ("a", "b"), "n": 1.5})
    assert event.data_json == '{"node":"menü","path":["a","b"],"n":1.5}'
    await store.append([event])
    [back] = await store.timeline("c1")
    assert back.data == {"node": "menü", "path": ["a", "b"], "n": 1.5} == event.data


async def test_invalid_events_reach_no_table(store: Store) -> None:
    good = new_event("hung_up", "c1", at=at(0))
    bad = good.__class__(good.id + "x", "hung_up", datetime(2026, 1, 1), "c1", None, {})
    with pytest.raises(InvalidEvent, match="no time zone"):
        await store.append([good, bad])
    assert await store.events_after(0) == []
    with pytest.raises(InvalidQuery):
        await store.events_after(-1)
    with pytest.raises(InvalidQuery):
        await store.events_after(0, limit=0)


def test_utc_datetime_refuses_naive_times() -> None:
    column = UTCDateTime()
    with pytest.raises(ValueError, match="no time zone"):
        column.process_bind_param(datetime(2026, 1, 1), sqlite.dialect())
    local = datetime(2026, 1, 1, 12, tzinfo=PLUS_FIVE_HALF)
    assert column.process_bind_param(local, sqlite.dialect()) == datetime(2026, 1, 1, 6, 30)
    postgres = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it untyped
    assert column.process_bind_param(local, postgres) == datetime(2026, 1, 1, 6, 30, tzinfo=UTC)
    assert column.process_result_value(datetime(2026, 1, 1, 6, 30), sqlite.dialect()) == datetime(
        2026, 1, 1, 6, 30, tzinfo=UTC
    )


# -- migrations ------------------------------------------------------------------------------------


def _schema_diff(connection: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _tables_and_revision(connection: sa.Connection) -> tuple[set[str], list[str]]:
    tables = set(sa.inspect(connection).get_table_names())
    revisions = [row[0] for row in connection.execute(sa.text("SELECT version_num FROM alembic_version"))]
    return tables, revisions


async def test_migrations_run_from_empty_and_match_the_tables(store_url: str) -> None:
    with pytest.raises(SchemaOutOfDate, match="hotline db upgrade"):
        await open_store(store_url, migrate=False)
    await upgrade(store_url)
    await upgrade(store_url)
    engine = create_async_engine(store_url)
    try:
        async with engine.connect() as conn:
            tables, revisions = await conn.run_sync(_tables_and_revision)
            assert await conn.run_sync(_schema_diff) == []
    finally:
        await engine.dispose()
    assert tables == {
        "alembic_version",
        "contact_events",
        "contacts",
        "customers",
        "customer_phones",
        "callbacks",
    }
    assert revisions == ["0003"]
    opened = await open_store(store_url, migrate=False)
    try:
        assert await opened.append([new_event("hung_up", "c1", at=at(0))]) == 1
    finally:
        await opened.close()


def test_urls() -> None:
    assert default_url(Path("/var/lib/hotline")) == "sqlite+aiosqlite:////var/lib/hotline/hotline.db"
    assert store_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert store_url("postgres://u:p@h/db").drivername == "postgresql+asyncpg"
    for bad, message in [
        ("mysql://h/db", "not supported"),
        ("sqlite://", "names no file"),
        ("sqlite+aiosqlite:///:memory:", "names no file"),
        ("postgresql+asyncpg://h", "names no database"),
        ("not a url", "is not a URL"),
    ]:
        with pytest.raises(InvalidStoreURL, match=message):
            store_url(bad)


async def test_store_hides_the_password_and_reports_an_unreachable_database() -> None:
    from support.pg import free_port

    url = f"postgresql+asyncpg://hotline:s3cret@127.0.0.1:{free_port()}/hotline"
    with pytest.raises(StoreUnavailable, match="is unavailable") as raised:
        await open_store(url)
    assert "s3cret" not in str(raised.value) and "***" in str(raised.value)


async def test_sqlite_file_uses_wal_and_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "hotline.db"
    opened = await open_store(f"sqlite+aiosqlite:///{path}")
    try:
        await opened.append([new_event("hung_up", "c1", at=at(0))])
        engine = opened._engine
        async with engine.connect() as conn:
            pragmas = [
                (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys")
            ]
        assert pragmas == ["wal", 2, 1]
    finally:
        await opened.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM contact_events").fetchone() == (1,)


# -- contacts: filters and pages -------------------------------------------------------------------


async def _call(
    store: Store,
    contact: str,
    start: float,
    *,
    caller: str = "+48221234567",
    queue: str | None = None,
    agent: str | None = None,
    abandon: bool = False,
) -> None:
    events = [new_event("call_started", contact, at=at(start), data={"caller": caller, "dialed": "100"})]
    if queue:
        events.append(new_event("queued", contact, at=at(start + 10), data={"queue": queue}))
    if abandon:
        events.append(
            new_event("abandoned", contact, at=at(start + 40), data={"where": "queue" if queue else "ivr"})
        )
    elif agent:
        events.append(new_event("answered", contact, at=at(start + 30), data={"agent": agent}))
    events.append(new_event("hung_up", contact, at=at(start + 100), data={"by": "caller"}))
    await store.append(events)


async def test_contacts_filters(store: Store) -> None:
    await _call(store, "a", 0, queue="sales", agent="ann")
    await _call(store, "b", 60, caller="+1 555 0100", queue="sales", abandon=True)
    await _call(store, "c", 120, queue="service", agent="bob")
    await _call(store, "d", 180, caller="+1 (555) 0100", abandon=True)
    await _call(store, "e", 240, queue="service", agent="ann")

    async def ids(**filters: Any) -> list[str]:
        return [c.id for c in (await store.contacts(**filters)).items]

    assert await ids() == ["e", "d", "c", "b", "a"]
    assert await ids(since=at(60), until=at(180)) == ["c", "b"]
    assert await ids(since=at(60).astimezone(PLUS_FIVE_HALF)) == ["e", "d", "c", "b"]
    assert await ids(number="+15550100") == ["d", "b"]
    assert await ids(number="+1-555-0100") == ["d", "b"]
    assert await ids(outcome="abandoned_queue") == ["b"]
    assert await ids(outcome="abandoned_ivr") == ["d"]
    assert await ids(queue="service") == ["e", "c"]
    assert await ids(agent="ann") == ["e", "a"]
    assert await ids(agent="ann", queue="sales") == ["a"]
    assert await ids(number="+99") == []
    with pytest.raises(InvalidPhone):
        await store.contacts(number="call me")
    with pytest.raises(InvalidQuery, match="one of"):
        await store.contacts(outcome="happy")
    with pytest.raises(InvalidQuery, match="before since"):
        await store.contacts(since=at(10), until=at(0))
    with pytest.raises(InvalidQuery, match="time zone"):
        await store.contacts(since=datetime(2026, 1, 1))
    with pytest.raises(InvalidQuery, match="limit"):
        await store.contacts(limit=0)
    contact = await store.contact("b")
    assert contact is not None
    assert (contact.caller, contact.outcome, contact.wait_seconds, contact.ended_at) == (
        "+15550100",
        "abandoned_queue",
        30.0,
        at(100),
    )
    assert await store.contact("nope") is None


async def test_contacts_cursor_pages_through_everything_once(store: Store) -> None:
    # 23 contacts, several starting in the same microsecond: the id breaks the tie.
    starts = {f"k{n:02d}": float(n // 3 * 7) for n in range(23)}
    for contact, start in starts.items():
        await store.append(
            [new_event("call_started", contact, at=at(start), data={"caller": "+48221234567"})]
        )
    expected = sorted(starts, key=lambda c: (starts[c], c), reverse=True)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await store.contacts(limit=5, cursor=cursor)
        pages += 1
        seen += [c.id for c in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == expected and pages == 5
    filtered = await store.contacts(limit=2, until=at(14))
    assert [c.id for c in filtered.items] == ["k05", "k04"]
    assert filtered.next_cursor is not None
    rest = await store.contacts(limit=10, until=at(14), cursor=filtered.next_cursor)
    assert [c.id for c in rest.items] == ["k03", "k02", "k01", "k00"] and rest.next_cursor is None
    exact = await store.contacts(limit=23)
    assert len(exact.items) == 23 and exact.next_cursor is None


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not-base64!",
        "bm9wZQ",
        "WzEsMl0",
        "WyJ5ZXN0ZXJkYXkiLCJrMDEiXQ",
        "WyIyMDI2LTEyLTAxVDA5OjAwOjAwIiwiazAxIl0",
    ],
)
async def test_a_bad_cursor_is_refused(store: Store, cursor: str) -> None:
    # not base64, "nope", [1,2], ["yesterday","k01"], a naive time
    with pytest.raises(InvalidCursor, match="next_cursor"):
        await store.contacts(cursor=cursor)


# -- customers -------------------------------------------------------------------------------------


async def test_customers_upsert_and_lookup_by_normalised_phone(store: Store) -> None:
    ada = Customer(
        "C-1", "Ada", ["+48 22 123 45 67", "0048221234567", "+48 600-100-200"], {"tier": "gold", "n": 1}
    )
    bob = Customer("C-2", "Bob", ["+1 (555) 0100"], {})
    assert await store.upsert_customers([ada, bob], now=at(0)) == (2, 0)
    found = await store.customer_by_phone("+48 (22) 123-45-67")
    assert found is not None
    assert (found.id, found.name, found.phones, found.attributes) == (
        "C-1",
        "Ada",
        ["+48221234567", "+48600100200"],
        {"tier": "gold", "n": 1},
    )
    assert (found.created_at, found.updated_at) == (at(0), at(0))
    assert await store.customer_by_phone("+48 999") is None
    with pytest.raises(InvalidPhone):
        await store.customer_by_phone("call me")

    # the CRM re-imports Ada with new details; her second number now belongs to Bob
    ada2 = Customer("C-1", "Ada L.", ["+48221234567"], {"tier": "platinum"})
    bob2 = Customer("C-2", None, ["+15550100", "+48 600 100 200"], {"vip": True})
    carol = Customer("C-3", "Carol", [], {})
    assert await store.upsert_customers([ada2, bob2, carol], now=at(60)) == (1, 2)
    ada_now = await store.customer("C-1")
    assert ada_now is not None
    assert (ada_now.name, ada_now.phones, ada_now.attributes) == (
        "Ada L.",
        ["+48221234567"],
        {"tier": "platinum"},
    )
    assert (ada_now.created_at, ada_now.updated_at) == (at(0), at(60))
    moved = await store.customer_by_phone("+48600100200")
    assert moved is not None and (moved.id, moved.name, moved.attributes) == ("C-2", None, {"vip": True})
    assert (await store.customer("C-3")) is not None
    assert await store.customer("C-9") is None
    assert await store.upsert_customers([]) == (0, 0)


@pytest.mark.parametrize(
    ("customers", "error", "message"),
    [
        ([Customer("", "x", [])], InvalidCustomer, "id"),
        ([Customer("C-1", "x", []), Customer("C-1", "y", [])], InvalidCustomer, "appears twice"),
        (
            [Customer("C-1", "x", ["+48 1"]), Customer("C-2", "y", ["+481"])],
            InvalidCustomer,
            "belongs to one",
        ),
        ([Customer("C-1", "x", ["not a number"])], InvalidPhone, "customer 'C-1'"),
        ([Customer("C-1", "x", "+481")], InvalidCustomer, "list of phone numbers"),  # type: ignore[arg-type]
        ([Customer("C-1", "x", [], {"at": object()})], InvalidCustomer, "attributes"),
        ([Customer("C-1", "x" * 201, [])], InvalidCustomer, "200 characters"),
    ],
)
async def test_a_bad_import_writes_nothing(
    store: Store, customers: list[Customer], error: type[Exception], message: str
) -> None:
    assert await store.upsert_customers([Customer("C-0", "Zoe", ["+48 1"])]) == (1, 0)
    with pytest.raises(error, match=message):
        await store.upsert_customers([Customer("C-5", "Eve", ["+48 5"]), *customers])
    assert await store.customer("C-5") is None
    zoe = await store.customer_by_phone("+481")
    assert zoe is not None and zoe.id == "C-0"


# -- the engine's own events -----------------------------------------------------------------------


def _simulated(contact: str, digits: list[str], start: datetime) -> list[Any]:
    from hotline.flowfiles import load_flow_files
    from ivr.simulate import scripted, simulate

    flows = load_flow_files(sorted(FLOWS.glob("*.yaml")))
    keys, _ = scripted(digits)
    journey = simulate(flows, "hotline", keys=keys, start=start, caller="+48 22 123 45 67", dialed="100")
    recorded = [(step.at, step.data) for step in journey.steps if step.kind == "event"]
    assert recorded, "the simulated call recorded no contact event"
    return [
        new_event(r.type, contact, at=start + timedelta(seconds=second), call_id="sim", data=r.data)
        for second, r in recorded
    ]


async def test_the_engines_events_are_stored_as_recorded(store: Store) -> None:
    """A call walked through the shipped flow by the real IVR engine, stored event by event."""
    weekday = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    queued = _simulated("sim-queue", ["1", "1"], weekday)
    gave_up = _simulated("sim-hangup", ["hangup"], weekday + timedelta(minutes=5))
    assert await store.append(queued + gave_up) == len(queued) + len(gave_up)

    contact = await store.contact("sim-queue")
    assert contact is not None
    assert (contact.caller, contact.dialed, contact.call_id, contact.started_at) == (
        "+48221234567",
        "100",
        "sim",
        weekday,
    )
    assert contact.ivr_path == [e.data["node"] for e in queued if e.type == "node_entered"]
    assert contact.queue is not None and contact.queued_at is not None
    assert contact.outcome is None and contact.ended_at is None  # still waiting for an agent

    abandoned = await store.contact("sim-hangup")
    assert abandoned is not None and abandoned.outcome == "abandoned_ivr"
    assert [e.type for e in await store.timeline("sim-hangup")] == [e.type for e in gave_up]
