"""How fast the durable call-back store claims, dials and recovers call-backs, beside the raw driver
doing the same conditional updates in the same run.

For SQLite (a temporary file, opened as `open_store` opens it: WAL, synchronous=FULL) and PostgreSQL (a
throwaway cluster on a free loopback port with default durability: fsync and synchronous_commit on):

1. Claiming: N due call-backs are claimed by `claim_due(owner, now, lease, limit)` rounds until none is
   left, by one worker and by two workers at the same time (two processes, each with its own Store),
   racing on the same rows. Every id must be claimed exactly once in all, or the run fails. Baseline:
   the raw driver (sqlite3 / asyncpg) running the same conditional UPDATE per row, one transaction per
   row, over the ids of one plain SELECT of the due rows.
2. A whole attempt: `start_dial` then `record_attempt(..., "answered", ...)` for each of N claimed
   call-backs (each writes its contact event in the same transaction). Baseline: the raw driver running
   the same two state UPDATEs, each in its own transaction, without the events.
3. Recovery: `recover(owner, now, decide)` with N call-backs left dialing by a worker that died,
   shown beside the raw per-row claim rate of (1).

The call-backs are written straight into the table before each timed part (with their
`callback_scheduled` event, as `create` leaves them), so only the part itself is timed. Run:

    .venv/bin/python bench/callback_bench.py [--callbacks 2000] [--limit 10] [--only sqlite|postgresql]

Progress goes to standard error; a JSON summary (machine facts, rates, ratios) to standard output.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import sqlite3
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
import structlog

from hotline.store.callbacks import Callback, CallbackStore
from hotline.store.db import open_store
from hotline.store.events import new_event
from hotline.store.tables import callbacks, contact_events
from routing.callbacks import DUE

# the tests' throwaway PostgreSQL (tests/support/pg.py): one helper for tests and benchmarks
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.pg import Cluster

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
LEASE = 300.0
DEAD_WORKER = "node-dead"
RETRY = NOW + timedelta(minutes=5)
DUE_SQL = ", ".join(f"'{state}'" for state in sorted(DUE))


class ExactlyOnceBroken(AssertionError):
    """A call-back was claimed twice, or not at all: the store failed its one promise."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ExactlyOnceBroken(message)


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# -- preparing the call-backs (not timed) -----------------------------------------------------------


def callback_rows(count: int, state: str, owner: str | None) -> list[dict[str, Any]]:
    """`count` call-backs due before NOW, in `state`, leased to `owner` (None: no lease)."""
    rows = []
    for number in range(count):
        identity = f"cb-{number:06d}"
        rows.append(
            {
                "id": identity,
                "contact_id": identity,
                "number": f"+4822{number:07d}",
                "queue": "sales",
                "skills": {},
                "priority": number % 3,
                "customer_ref": None,
                "note": None,
                "state": state,
                "attempts": 1 if state == "dialing" else 0,
                "next_attempt_at": NOW - timedelta(seconds=count - number),
                "expires_at": NOW + timedelta(days=2),
                "window": None,
                "time_zone": "Europe/Warsaw",
                "lease_owner": owner,
                "lease_until": None if owner is None else NOW + timedelta(seconds=LEASE),
                "created_at": NOW - timedelta(hours=1),
                "updated_at": NOW - timedelta(hours=1),
                "last_outcome": None,
                "attempt_contact_id": f"{identity}-a1" if state == "dialing" else None,
                "place_since": None,
            }
        )
    return rows


async def prepare(url: str, count: int, state: str = "scheduled", owner: str | None = None) -> list[str]:
    """A migrated database holding `count` call-backs and their `callback_scheduled` events."""
    store = await open_store(url)
    try:
        rows = callback_rows(count, state, owner)
        async with store._write() as conn:
            for start in range(0, count, 500):
                await conn.execute(sa.insert(callbacks), rows[start : start + 500])
        events = [
            new_event(
                "callback_scheduled",
                row["contact_id"],
                at=row["created_at"],
                data={
                    "queue": row["queue"],
                    "number": row["number"],
                    "due": row["next_attempt_at"].isoformat(),
                },
            )
            for row in rows
        ]
        for start in range(0, count, 500):
            await store.append(events[start : start + 500])
    finally:
        await store.close()
    return [row["id"] for row in rows]


async def count_events(url: str, kind: str) -> int:
    store = await open_store(url, migrate=False)
    try:
        async with store._read() as conn:
            query = (
                sa.select(sa.func.count()).select_from(contact_events).where(contact_events.c.type == kind)
            )
            return int((await conn.execute(query)).scalar_one())
    finally:
        await store.close()


# -- 1. claiming through the store, one or two worker processes --------------------------------------


async def claim_all(url: str, owner: str, limit: int, barrier: Any) -> tuple[list[str], float, float, int]:
    """`claim_due` rounds until no due call-back is left; returns the ids claimed, start, end, rounds."""
    store = await open_store(url, migrate=False)
    try:
        store_callbacks = CallbackStore(store)
        await store_callbacks.due(NOW, 1)  # the connection is open before the clock starts
        await asyncio.to_thread(barrier.wait)
        began = time.perf_counter()
        claimed: list[str] = []
        rounds = 0
        while True:
            rounds += 1
            got = await store_callbacks.claim_due(owner, NOW, LEASE, limit=limit)
            claimed += [cb.id for cb in got]
            # An empty round may only mean the other worker took these first: stop when none is due.
            if not got and not await store_callbacks.due(NOW, 1):
                break
        ended = time.perf_counter()
    finally:
        await store.close()
    return claimed, began, ended, rounds


def claim_process(url: str, owner: str, limit: int, barrier: Any, results: Any) -> None:
    """One worker in a process of its own (spawned), so two workers really run at the same time."""
    try:
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
        results.put((owner, asyncio.run(claim_all(url, owner, limit, barrier)), None))
    except BaseException:
        barrier.abort()
        results.put((owner, None, traceback.format_exc()))


async def claim_with_workers(url: str, owners: list[str], limit: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(owners) + 1)
    results = context.Queue()
    workers = [
        context.Process(target=claim_process, args=(url, owner, limit, barrier, results), name=owner)
        for owner in owners
    ]
    for worker in workers:
        worker.start()
    try:
        # A worker that fails before the start breaks the barrier; its error is on the queue.
        with contextlib.suppress(threading.BrokenBarrierError):
            await asyncio.to_thread(barrier.wait, 120)
        outcomes = [await asyncio.to_thread(results.get, True, 600) for _ in owners]
    finally:
        for worker in workers:
            worker.join(30)
    failures = [error for _, result, error in outcomes if result is None]
    if failures:
        raise RuntimeError("a claiming worker failed:\n" + "\n".join(failures))
    by_owner = {owner: result for owner, result, _ in outcomes}
    began = min(result[1] for result in by_owner.values())
    ended = max(result[2] for result in by_owner.values())
    return {
        "seconds": ended - began,
        "claimed": {owner: result[0] for owner, result in by_owner.items()},
        "rounds": {owner: result[3] for owner, result in by_owner.items()},
    }


def check_exactly_once(ids: list[str], claimed: dict[str, list[str]], what: str) -> None:
    every = [identity for got in claimed.values() for identity in got]
    twice = sorted(identity for identity, times in Counter(every).items() if times > 1)
    missing = sorted(set(ids) - set(every))
    check(not twice, f"{what}: {len(twice)} call-backs claimed twice, e.g. {twice[:5]}")
    check(not missing, f"{what}: {len(missing)} call-backs never claimed, e.g. {missing[:5]}")
    check(len(every) == len(ids), f"{what}: {len(every)} claims for {len(ids)} call-backs")


async def leased_by(url: str) -> dict[str, str | None]:
    """Who holds each call-back's lease, as the database has it after the race."""
    store = await open_store(url, migrate=False)
    try:
        async with store._read() as conn:
            rows = await conn.execute(sa.select(callbacks.c.id, callbacks.c.state, callbacks.c.lease_owner))
            return {row.id: row.lease_owner if row.state == "queued" else None for row in rows}
    finally:
        await store.close()


# -- 2. a whole attempt through the store ---------------------------------------------------------------


async def attempts_through_store(url: str, ids: list[str], owner: str) -> None:
    store = await open_store(url, migrate=False)
    try:
        store_callbacks = CallbackStore(store)
        for identity in ids:
            dialing = await store_callbacks.start_dial(identity, owner, f"{identity}-a1", NOW, LEASE)
            check(dialing is not None and dialing.state == "dialing", f"start_dial({identity}) refused")
            done = await store_callbacks.record_attempt(identity, owner, "answered", None, NOW)
            check(done is not None and done.state == "completed", f"record_attempt({identity}) refused")
    finally:
        await store.close()


async def recover_through_store(url: str) -> list[Callback]:
    store = await open_store(url, migrate=False)
    try:
        return await CallbackStore(store).recover(DEAD_WORKER, NOW, lambda cb: RETRY)
    finally:
        await store.close()


# -- the raw drivers -----------------------------------------------------------------------------------


def sqlite_time(at: datetime) -> str:
    """A time as the store keeps it in SQLite: naive UTC text, fixed width."""
    return at.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


RAW_DUE = (
    f"SELECT id FROM callbacks WHERE state IN ({DUE_SQL}) AND next_attempt_at <= {{now}} "
    "AND (lease_owner IS NULL OR lease_until <= {now}) ORDER BY priority DESC, next_attempt_at, id"
)
RAW_CLAIM = (
    "UPDATE callbacks SET state = 'queued', lease_owner = {owner}, lease_until = {until}, updated_at = {now} "
    f"WHERE id = {{id}} AND state IN ({DUE_SQL}) AND next_attempt_at <= {{now}} "
    "AND (lease_owner IS NULL OR lease_until <= {now}) RETURNING id"
)
RAW_DIAL = (
    "UPDATE callbacks SET state = 'dialing', attempts = attempts + 1, attempt_contact_id = {contact}, "
    "lease_until = {until}, updated_at = {now} "
    "WHERE id = {id} AND state = 'queued' AND lease_owner = {owner} AND lease_until > {now} RETURNING id"
)
RAW_SETTLE = (
    "UPDATE callbacks SET state = 'completed', next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, "
    "updated_at = {now}, last_outcome = 'answered' "
    "WHERE id = {id} AND state = 'dialing' AND lease_owner = {owner} RETURNING id"
)
SQLITE_MARKS = {"now": ":now", "owner": ":owner", "until": ":until", "id": ":id", "contact": ":contact"}


def sqlite_connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    return connection


def sqlite_in_transaction(connection: sqlite3.Connection, sql: str, values: dict[str, str]) -> bool:
    connection.execute("BEGIN IMMEDIATE")
    changed = connection.execute(sql, values).fetchone() is not None
    connection.execute("COMMIT")
    return changed


def raw_sqlite_claims(path: str, owner: str) -> list[str]:
    connection = sqlite_connect(path)
    now, until = sqlite_time(NOW), sqlite_time(NOW + timedelta(seconds=LEASE))
    due = [row[0] for row in connection.execute(RAW_DUE.format(**SQLITE_MARKS), {"now": now})]
    claim = RAW_CLAIM.format(**SQLITE_MARKS)
    claimed = [
        identity
        for identity in due
        if sqlite_in_transaction(
            connection, claim, {"now": now, "owner": owner, "until": until, "id": identity}
        )
    ]
    connection.close()
    return claimed


def raw_sqlite_attempts(path: str, ids: list[str], owner: str) -> None:
    connection = sqlite_connect(path)
    now, until = sqlite_time(NOW), sqlite_time(NOW + timedelta(seconds=LEASE))
    dial, settle = RAW_DIAL.format(**SQLITE_MARKS), RAW_SETTLE.format(**SQLITE_MARKS)
    for identity in ids:
        values = {"now": now, "owner": owner, "until": until, "id": identity, "contact": f"{identity}-a1"}
        check(sqlite_in_transaction(connection, dial, values), f"raw dial of {identity} changed no row")
        check(sqlite_in_transaction(connection, settle, values), f"raw outcome of {identity} changed no row")
    connection.close()


def pg_sql(template: str, used: tuple[str, ...]) -> str:
    """The statement with asyncpg's numbered placeholders, numbered in the order `used` gives."""
    return template.format(**{name: f"${number}" for number, name in enumerate(used, 1)})


async def raw_pg_claims(dsn: str, owner: str) -> list[str]:
    connection = await asyncpg.connect(dsn)
    try:
        until = NOW + timedelta(seconds=LEASE)
        due = [row["id"] for row in await connection.fetch(pg_sql(RAW_DUE, ("now",)), NOW)]
        claim = pg_sql(RAW_CLAIM, ("now", "owner", "until", "id"))
        claimed = []
        for identity in due:
            async with connection.transaction():
                if await connection.fetchval(claim, NOW, owner, until, identity) is not None:
                    claimed.append(identity)
        return claimed
    finally:
        await connection.close()


async def raw_pg_attempts(dsn: str, ids: list[str], owner: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        until = NOW + timedelta(seconds=LEASE)
        dial = pg_sql(RAW_DIAL, ("now", "owner", "until", "id", "contact"))
        settle = pg_sql(RAW_SETTLE, ("now", "owner", "id"))
        for identity in ids:
            async with connection.transaction():
                changed = await connection.fetchval(dial, NOW, owner, until, identity, f"{identity}-a1")
            check(changed is not None, f"raw dial of {identity} changed no row")
            async with connection.transaction():
                changed = await connection.fetchval(settle, NOW, owner, identity)
            check(changed is not None, f"raw outcome of {identity} changed no row")
    finally:
        await connection.close()


# -- one backend -----------------------------------------------------------------------------------------


async def timed(work: Callable[[], Awaitable[Any]]) -> tuple[Any, float]:
    began = time.perf_counter()
    result = await work()
    return result, time.perf_counter() - began


class Backend:
    """Where each part gets a fresh database: `url()` for the store, `raw()` for the raw driver."""

    name: str

    def url(self) -> str:
        raise NotImplementedError

    def raw(self, url: str) -> str:
        raise NotImplementedError

    async def raw_claims(self, url: str, owner: str) -> list[str]:
        raise NotImplementedError

    async def raw_attempts(self, url: str, ids: list[str], owner: str) -> None:
        raise NotImplementedError


class SQLiteBackend(Backend):
    name = "sqlite"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files = 0

    def url(self) -> str:
        self.files += 1
        return f"sqlite+aiosqlite:///{self.folder / f'callbacks-{self.files}.db'}"

    def raw(self, url: str) -> str:
        return url.removeprefix("sqlite+aiosqlite:///")

    async def raw_claims(self, url: str, owner: str) -> list[str]:
        return raw_sqlite_claims(self.raw(url), owner)

    async def raw_attempts(self, url: str, ids: list[str], owner: str) -> None:
        raw_sqlite_attempts(self.raw(url), ids, owner)


class PostgreSQLBackend(Backend):
    name = "postgresql"

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def url(self) -> str:
        return self.cluster.url(self.cluster.create_database())

    def raw(self, url: str) -> str:
        return url.replace("postgresql+asyncpg://", "postgresql://")

    async def raw_claims(self, url: str, owner: str) -> list[str]:
        return await raw_pg_claims(self.raw(url), owner)

    async def raw_attempts(self, url: str, ids: list[str], owner: str) -> None:
        await raw_pg_attempts(self.raw(url), ids, owner)


async def bench(backend: Backend, count: int, limit: int) -> dict[str, Any]:
    name = backend.name
    out: dict[str, Any] = {}

    def rate(part: str, per_second: float, unit: str, baseline: float | None = None) -> None:
        out[part] = {"per_second": round(per_second, 1)}
        line = f"  {name:<10} {part:<28} {per_second:>9,.0f} {unit}/s"
        if baseline is not None:
            out[part]["vs_raw"] = round(per_second / baseline, 3)
            line += f"   {per_second / baseline:5.2f} x raw"
        say(line)

    # 1. claiming
    url = backend.url()
    ids = await prepare(url, count)
    claimed, seconds = await timed(lambda: backend.raw_claims(url, "node-raw"))
    check_exactly_once(ids, {"node-raw": claimed}, f"{name} raw claims")
    raw_claims = count / seconds
    rate("raw claim (per row)", raw_claims, "claims")

    for owners in (["node-1"], ["node-1", "node-2"]):
        url = backend.url()
        ids = await prepare(url, count)
        race = await claim_with_workers(url, owners, limit)
        what = f"{name} claim_due by {len(owners)} worker(s)"
        check_exactly_once(ids, race["claimed"], what)
        holders = await leased_by(url)
        for owner, got in race["claimed"].items():
            wrong = [identity for identity in got if holders[identity] != owner]
            check(not wrong, f"{what}: {len(wrong)} call-backs {owner} claimed are leased to another")
        part = f"claim_due, {len(owners)} worker{'s' if len(owners) > 1 else ''}"
        rate(part, count / race["seconds"], "claims", raw_claims)
        out[part]["claims_by_worker"] = {owner: len(got) for owner, got in race["claimed"].items()}
        out[part]["rounds_by_worker"] = race["rounds"]

    # 2. a whole attempt
    url = backend.url()
    ids = await prepare(url, count, state="queued", owner="node-raw")
    _, seconds = await timed(lambda: backend.raw_attempts(url, ids, "node-raw"))
    raw_attempts = count / seconds
    rate("raw dial + outcome", raw_attempts, "attempts")

    url = backend.url()
    ids = await prepare(url, count, state="queued", owner="node-1")
    _, seconds = await timed(lambda: attempts_through_store(url, ids, "node-1"))
    rate("start_dial + record_attempt", count / seconds, "attempts", raw_attempts)
    for kind in ("callback_attempted", "callback_completed"):
        written = await count_events(url, kind)
        check(written == count, f"{name}: {written} {kind} events for {count} attempts")

    # 3. recovery
    url = backend.url()
    ids = await prepare(url, count, state="dialing", owner=DEAD_WORKER)
    resolved, seconds = await timed(lambda: recover_through_store(url))
    check(
        sorted(cb.id for cb in resolved) == ids
        and all(cb.state == "retry_wait" and cb.next_attempt_at == RETRY for cb in resolved),
        f"{name}: recover() resolved {len(resolved)} of {count} call-backs left dialing",
    )
    rate("recover (per call-back)", count / seconds, "call-backs", raw_claims)
    out["recover (per call-back)"]["seconds"] = round(seconds, 3)
    return out


def machine(server: str | None) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "host": platform.node(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        facts["cpu"] = next(
            line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line
        )
        meminfo = Path("/proc/meminfo").read_text().split()
        facts["memory_gib"] = round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        pass
    if server is not None:
        facts["postgresql"] = server
    return facts


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--callbacks", type=int, default=2000, help="call-backs per part (default 2000)")
    parser.add_argument("--limit", type=int, default=10, help="call-backs per claim_due round (default 10)")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="one backend only")
    args = parser.parse_args()
    if not 1 <= args.callbacks <= 1_000_000:
        parser.error(f"--callbacks {args.callbacks}: give 1 to 1000000")
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    say(f"{args.callbacks} call-backs per part, claim_due limit {args.limit}")
    began = time.perf_counter()
    results: dict[str, Any] = {}
    server = None
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory(prefix="hotline-bench-") as folder:
            results["sqlite"] = await bench(SQLiteBackend(Path(folder)), args.callbacks, args.limit)
    if args.only in (None, "postgresql"):
        cluster = Cluster.create(settings=())  # durable defaults: fsync and synchronous_commit on
        try:
            server = cluster.sql("SHOW server_version").strip()
            results["postgresql"] = await bench(PostgreSQLBackend(cluster), args.callbacks, args.limit)
        finally:
            cluster.destroy()
    summary = {
        "machine": machine(server),
        "callbacks": args.callbacks,
        "claim_due_limit": args.limit,
        "lease_seconds": LEASE,
        "exactly_once": "checked",
        "results": results,
        "seconds": round(time.perf_counter() - began, 1),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
