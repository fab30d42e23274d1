"""How many contact events per second the store writes durably, beside the raw driver.

First the events are made with `new_event` (id, checks, JSON), as producers make them; that is timed on its
own. Then, for SQLite and PostgreSQL, the same event rows are written, in the same run, by:

- the raw driver: sqlite3 `executemany`, one transaction per batch (WAL, synchronous=FULL); asyncpg
  `executemany` and `copy_records_to_table`, one transaction per batch;
- `Store.append`, one call per batch (SQLAlchemy, idempotent insert, contact projection);
- `EventWriter`: every event submitted at once, timed until each `write()` is acknowledged (with
  `slow_after` long enough that the writer keeps the whole burst in memory: the database keeps up);
- `EventWriter` past its memory bound: most events go through the spool on disk first, timed until the
  database has them all.

PostgreSQL is a throwaway cluster on a free loopback port with default durability settings (fsync on,
synchronous_commit on). Run:

    .venv/bin/python bench/store_bench.py [--events 20000] [--batch 500] [--only sqlite|postgresql]

`--batch 20` shows the per-transaction costs that weigh on the small batches of an ordinary day.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import structlog

from contacts import EventName
from hotline.store.db import open_store
from hotline.store.events import ContactEvent, new_event
from hotline.store.writer import EventWriter

# the tests' throwaway PostgreSQL (tests/support/pg.py): one helper for tests and benchmarks
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.pg import Cluster

JOURNEY: list[tuple[EventName, dict[str, Any]]] = [
    (
        "call_started",
        {"flow": "hotline", "caller": "+48221234567", "caller_withheld": False, "dialed": "100"},
    ),
    ("node_entered", {"node": "welcome", "flow": "hotline", "type": "play"}),
    ("node_entered", {"node": "main_menu", "flow": "hotline", "type": "menu"}),
    ("option_chosen", {"node": "main_menu", "digits": "1", "target": "sales"}),
    ("node_entered", {"node": "sales", "flow": "hotline", "type": "queue"}),
    ("queued", {"queue": "sales", "skills": {"sales": 3}, "priority": 0}),
    ("agent_offered", {"queue": "sales", "agent": "ann"}),
    ("answered", {"queue": "sales", "agent": "ann", "wait": 21.5}),
    ("hung_up", {"by": "caller", "node": "sales", "flow": "hotline"}),
    ("call_ended", {"cause": "16"}),
]


def make_events(count: int) -> list[ContactEvent]:
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    events = []
    for number in range(count):
        contact, step = divmod(number, len(JOURNEY))
        kind, data = JOURNEY[step]
        at = start + timedelta(seconds=contact * 3 + step * 5)
        events.append(new_event(kind, f"bench-{contact}", at=at, call_id=f"ch-{contact}", data=data))
    return events


def rows(events: list[ContactEvent]) -> list[tuple[str, str, datetime, str, str | None, str]]:
    return [(e.id, e.type, e.at, e.contact_id, e.call_id, json.dumps(e.data)) for e in events]


def batches(items: list, size: int) -> list[list]:  # type: ignore[type-arg]
    return [items[i : i + size] for i in range(0, len(items), size)]


class Timer:
    def __init__(self) -> None:
        self.results: list[tuple[str, str, int, float]] = []

    async def run(self, backend: str, path: str, count: int, work: Callable[[], Awaitable[None]]) -> None:
        began = time.perf_counter()
        await work()
        seconds = time.perf_counter() - began
        self.results.append((backend, path, count, seconds))
        print(f"  {backend:<10} {path:<34} {count / seconds:>9,.0f} events/s", file=sys.stderr, flush=True)


# -- SQLite ------------------------------------------------------------------------------------------

RAW_SQLITE_TABLE = """CREATE TABLE contact_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id VARCHAR(64) NOT NULL UNIQUE, type VARCHAR(40) NOT NULL,
    at DATETIME NOT NULL, contact_id VARCHAR(64) NOT NULL, call_id VARCHAR(128), data JSON NOT NULL)"""


def raw_sqlite(path: Path, events: list[ContactEvent], batch: int) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(RAW_SQLITE_TABLE)
    connection.execute("CREATE INDEX ix_contact ON contact_events (contact_id, seq)")
    data = [(i, t, at.strftime("%Y-%m-%d %H:%M:%S.%f"), c, call, d) for i, t, at, c, call, d in rows(events)]
    for chunk in batches(data, batch):
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "INSERT INTO contact_events (id, type, at, contact_id, call_id, data) VALUES (?, ?, ?, ?, ?, ?)",
            chunk,
        )
        connection.execute("COMMIT")
    connection.close()


# -- both backends through the store ---------------------------------------------------------------


async def through_store(
    timer: Timer, backend: str, url_for: Callable[[], str], events: list[ContactEvent], batch: int
) -> None:
    store = await open_store(url_for())

    async def append() -> None:
        for chunk in batches(events, batch):
            await store.append(chunk)

    await timer.run(backend, "Store.append", len(events), append)
    await store.close()

    for path, memory_limit in (("EventWriter", len(events) + 1), ("EventWriter via the spool", batch * 2)):
        store = await open_store(url_for())
        with tempfile.TemporaryDirectory(prefix="hotline-spool-") as spool:
            writer = EventWriter(
                store, spool_dir=Path(spool), batch_size=batch, memory_limit=memory_limit, slow_after=600.0
            )
            await writer.start()

            async def write_all(writer: EventWriter = writer) -> None:
                await asyncio.gather(*[writer.submit(e) for e in events])
                while writer.backlog:
                    await asyncio.sleep(0.001)

            await timer.run(backend, path, len(events), write_all)
            await writer.stop()
        await store.close()


async def bench_sqlite(timer: Timer, events: list[ContactEvent], batch: int) -> None:
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as folder:
        base = Path(folder)

        async def raw() -> None:
            await asyncio.to_thread(raw_sqlite, base / "raw.db", events, batch)

        await timer.run("sqlite", "sqlite3 executemany (raw)", len(events), raw)
        counter = iter(range(1000))
        await through_store(
            timer, "sqlite", lambda: f"sqlite+aiosqlite:///{base}/store-{next(counter)}.db", events, batch
        )


# -- PostgreSQL ---------------------------------------------------------------------------------------

RAW_PG_TABLE = """CREATE TABLE contact_events (
    seq BIGSERIAL PRIMARY KEY, id VARCHAR(64) NOT NULL UNIQUE, type VARCHAR(40) NOT NULL,
    at TIMESTAMPTZ NOT NULL, contact_id VARCHAR(64) NOT NULL, call_id VARCHAR(128), data JSONB NOT NULL);
    CREATE INDEX ix_contact ON contact_events (contact_id, seq)"""


async def bench_postgresql(timer: Timer, events: list[ContactEvent], batch: int) -> None:
    cluster = Cluster.create(settings=())  # durable defaults: fsync and synchronous_commit on
    try:
        data = rows(events)
        for path in ("asyncpg executemany (raw)", "asyncpg copy (raw)"):
            connection = await asyncpg.connect(cluster.url(cluster.create_database(), driver="postgresql"))
            await connection.execute(RAW_PG_TABLE)

            async def raw(connection: asyncpg.Connection = connection, path: str = path) -> None:
                for chunk in batches(data, batch):
                    async with connection.transaction():
                        if "copy" in path:
                            await connection.copy_records_to_table(
                                "contact_events",
                                records=chunk,
                                columns=["id", "type", "at", "contact_id", "call_id", "data"],
                            )
                        else:
                            await connection.executemany(
                                "INSERT INTO contact_events (id, type, at, contact_id, call_id, data) "
                                "VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
                                chunk,
                            )

            await timer.run("postgresql", path, len(events), raw)
            await connection.close()
        await through_store(
            timer, "postgresql", lambda: cluster.url(cluster.create_database()), events, batch
        )
    finally:
        cluster.destroy()


def table(timer: Timer) -> str:
    lines = ["| backend | path | events/s | vs raw driver |", "|---|---|---:|---:|"]
    baseline: dict[str, float] = {}
    for backend, path, count, seconds in timer.results:
        rate = count / seconds
        if path.endswith("executemany (raw)"):
            baseline[backend] = rate
        ratio = f"{rate / baseline[backend]:.2f}" if backend in baseline else "-"
        lines.append(f"| {backend} | {path} | {rate:,.0f} | {ratio} |")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20_000, help="events per path (default 20000)")
    parser.add_argument("--batch", type=int, default=500, help="events per transaction (default 500)")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="one backend only")
    args = parser.parse_args()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    timer = Timer()
    print(f"{args.events} events per path, {args.batch} per transaction", file=sys.stderr)
    made: list[ContactEvent] = []

    async def make() -> None:
        made.extend(make_events(args.events))

    await timer.run("any", "new_event (making the events)", args.events, make)
    events = made
    if args.only in (None, "sqlite"):
        await bench_sqlite(timer, events, args.batch)
    if args.only in (None, "postgresql"):
        await bench_postgresql(timer, events, args.batch)
    print(
        f"\n{platform.node()} {platform.machine()}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    print(table(timer))


if __name__ == "__main__":
    asyncio.run(main())
