"""The event writer: batches, order, a database that goes away and comes back, the spool, kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from hotline.store.db import Store, open_store, upgrade
from hotline.store.errors import InvalidEvent, SpoolInUse, WriterStopped
from hotline.store.events import ContactEvent, new_event
from hotline.store.writer import EventWriter
from support.paths import SUPPORT
from support.pg import Cluster

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SCRIPT = SUPPORT / "writer_process.py"


def events(count: int, start: int = 0) -> list[ContactEvent]:
    return [
        new_event(
            "node_entered",
            f"c{n % 5}",
            at=T0 + timedelta(seconds=n),
            call_id=f"ch{n % 5}",
            data={"node": f"n{n}"},
        )
        for n in range(start, start + count)
    ]


async def stored_ids(store: Store) -> list[str]:
    ids: list[str] = []
    after = 0
    while batch := await store.events_after(after, limit=10_000):
        ids += [e.id for e in batch]
        after = batch[-1].seq
    return ids


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {condition}")
        await asyncio.sleep(0.02)


def segments(spool: Path) -> list[Path]:
    return sorted(spool.glob("events-*.jsonl"))


def messages(logs: Sequence[Mapping[str, Any]], prefix: str) -> list[str]:
    return [entry["event"] for entry in logs if str(entry["event"]).startswith(prefix)]


class Outage:
    """Takes the database away: SQLite is locked by another connection, PostgreSQL is stopped."""

    def __init__(self, url: str, request: pytest.FixtureRequest) -> None:
        self.url = url
        self.request = request
        self.lock: sqlite3.Connection | None = None

    def begin(self) -> None:
        if self.url.startswith("sqlite"):
            self.lock = sqlite3.connect(self.url.split("///", 1)[1], isolation_level=None)
            self.lock.execute("BEGIN IMMEDIATE")
        else:
            cluster: Cluster = self.request.getfixturevalue("pg_cluster")
            cluster.stop()

    def end(self) -> None:
        if self.lock is not None:
            self.lock.execute("ROLLBACK")
            self.lock.close()
            self.lock = None
        elif self.url.startswith("postgresql"):
            cluster: Cluster = self.request.getfixturevalue("pg_cluster")
            if not cluster.running():
                cluster.start()


@pytest.fixture
def outage(store_url: str, request: pytest.FixtureRequest) -> Iterator[Outage]:
    taken = Outage(store_url, request)
    yield taken
    taken.end()


@pytest.fixture
async def quick_store(store_url: str) -> Any:
    """A store that gives up on a SQLite lock after 0.2 s, so outages show quickly."""
    opened = await open_store(store_url, busy_timeout=0.2, command_timeout=5.0)
    yield opened
    await opened.close()


async def test_batches_by_size_and_delay(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    append = store.append

    async def counting(batch: Any, **options: Any) -> int:
        sizes.append(len(batch))
        return await append(batch, **options)

    monkeypatch.setattr(store, "append", counting)
    writer = EventWriter(store, spool_dir=tmp_path / "spool", batch_size=10, max_delay=0.3)
    await writer.start()
    try:
        burst = events(35)
        await asyncio.gather(*[writer.submit(e) for e in burst])
        assert sizes == [10, 10, 10, 5]
        trickle = events(3, start=100)
        futures = []
        for event in trickle:
            futures.append(writer.submit(event))
            await asyncio.sleep(0.01)
        await asyncio.gather(*futures)
        assert sizes[4:] == [3]
    finally:
        await writer.stop()
    assert await stored_ids(store) == [e.id for e in burst + trickle]


async def test_write_returns_once_the_event_is_stored_in_order(store: Store, tmp_path: Path) -> None:
    writer = EventWriter(store, spool_dir=tmp_path / "spool", batch_size=7, max_delay=0.001)
    await writer.start()
    try:
        sent = events(120)
        one = sent[0]
        await writer.write(one)
        assert [e.id for e in await store.timeline(one.contact_id)] == [one.id]
        await asyncio.gather(*[writer.write(e) for e in sent[1:]])
        assert writer.backlog == 0
    finally:
        await writer.stop()
    assert await stored_ids(store) == [e.id for e in sent]
    assert segments(tmp_path / "spool") == []


async def test_refuses_bad_events_and_writes_only_while_running(store: Store, tmp_path: Path) -> None:
    writer = EventWriter(store, spool_dir=tmp_path / "spool")
    with pytest.raises(WriterStopped, match="start"):
        writer.submit(events(1)[0])
    await writer.start()
    bad = ContactEvent("x1", "no_such_event", T0, "c1", None, {})  # type: ignore[arg-type]  # what a typo makes
    with pytest.raises(InvalidEvent, match="unknown contact event type"):
        writer.submit(bad)
    await writer.write(events(1)[0])
    twin = EventWriter(store, spool_dir=tmp_path / "spool")
    with pytest.raises(SpoolInUse, match=f"in use by another event writer \\(pid {os.getpid()}\\)"):
        await twin.start()
    await writer.stop()
    await twin.start()
    await twin.stop()
    with pytest.raises(WriterStopped):
        await writer.write(events(1, start=1)[0])
    with pytest.raises(ValueError, match="at least 1"):
        EventWriter(store, spool_dir=tmp_path, batch_size=0)


async def test_a_slow_database_is_reported_once_and_waited_for(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    append = store.append

    async def slow(batch: Any, **options: Any) -> int:
        await asyncio.sleep(0.4)
        return await append(batch, **options)

    monkeypatch.setattr(store, "append", slow)
    writer = EventWriter(store, spool_dir=tmp_path / "spool", batch_size=50, slow_after=0.1)
    await writer.start()
    sent = events(20)
    with capture_logs() as logs:
        await asyncio.gather(*[writer.write(e) for e in sent])
        await writer.stop()
    assert messages(logs, "store unavailable") == [
        "store unavailable: no answer within 0.1 s; 20 events waiting, spooling to disk after 10000"
    ]
    assert len(messages(logs, "store back: wrote 20 waiting events")) == 1
    assert await stored_ids(store) == [e.id for e in sent]


async def test_database_goes_away_mid_stream_and_comes_back(
    quick_store: Store, outage: Outage, tmp_path: Path
) -> None:
    """Events wait in memory while the database is away, then arrive in order; one log line each way."""
    writer = EventWriter(
        quick_store, spool_dir=tmp_path / "spool", batch_size=10, max_delay=0.005, retry_max=0.2
    )
    await writer.start()
    sent = events(150)
    with capture_logs() as logs:
        await asyncio.gather(*[writer.write(e) for e in sent[:50]])
        outage.begin()
        waiting = [writer.submit(e) for e in sent[50:]]
        await until(lambda: bool(messages(logs, "store unavailable")))
        await asyncio.sleep(0.5)
        assert not any(f.done() for f in waiting)
        assert writer.backlog == 100
        outage.end()
        await asyncio.wait_for(asyncio.gather(*waiting), 30)
        await writer.stop()
    [down] = messages(logs, "store unavailable")
    assert re.fullmatch(r"store unavailable: .+; 100 events waiting, spooling to disk after 10000", down), (
        down
    )
    assert messages(logs, "store back") and messages(logs, "store back")[0].startswith(
        "store back: wrote 100 waiting events"
    )
    assert await stored_ids(quick_store) == [e.id for e in sent]
    assert segments(tmp_path / "spool") == []


async def test_past_the_memory_bound_events_are_spooled_and_drained_in_order(
    quick_store: Store, outage: Outage, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    writer = EventWriter(
        quick_store,
        spool_dir=spool,
        batch_size=10,
        max_delay=0.005,
        memory_limit=30,
        retry_max=0.2,
        segment_events=50,
    )
    await writer.start()
    sent = events(400)
    with capture_logs() as logs:
        await asyncio.gather(*[writer.write(e) for e in sent[:25]])
        assert segments(spool) == []
        outage.begin()
        first = [writer.submit(e) for e in sent[25:45]]
        await until(lambda: bool(messages(logs, "store unavailable")))
        rest = []
        for start in range(45, 400, 60):
            rest += [writer.submit(e) for e in sent[start : start + 60]]
            await asyncio.sleep(0.02)
        # acknowledged while the database is still away: they are on disk
        await asyncio.wait_for(asyncio.gather(*first, *rest), 20)
        assert writer.backlog == 375
        on_disk = [
            json.loads(line)["id"] for path in segments(spool) for line in path.read_text().splitlines()
        ]
        assert on_disk == [e.id for e in sent[25:]]
        assert len(segments(spool)) >= 2
        outage.end()
        await until(lambda: writer.backlog == 0)
        after = events(5, start=1000)
        await asyncio.gather(*[writer.write(e) for e in after])
        await writer.stop()
    assert messages(logs, "store behind: ")
    assert len(messages(logs, "store unavailable")) == 1
    assert len(messages(logs, "store back")) == 1
    assert await stored_ids(quick_store) == [e.id for e in sent + after]
    assert segments(spool) == []


async def test_stop_while_the_database_is_away_keeps_events_in_the_spool(
    quick_store: Store, outage: Outage, tmp_path: Path, store_url: str
) -> None:
    spool = tmp_path / "spool"
    writer = EventWriter(quick_store, spool_dir=spool, batch_size=10, max_delay=0.005, retry_max=0.2)
    await writer.start()
    sent = events(40)
    await asyncio.gather(*[writer.write(e) for e in sent[:10]])
    outage.begin()
    waiting = [writer.submit(e) for e in sent[10:]]
    await asyncio.sleep(0.3)
    await writer.stop(timeout=2.0)
    await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert segments(spool)
    outage.end()

    # the same writer started again picks up its own spool ...
    await writer.start()
    assert writer.backlog == 30
    await until(lambda: writer.backlog == 0)
    await writer.stop()
    assert await stored_ids(quick_store) == [e.id for e in sent]

    # a new writer (another process, another connection) on the same folder carries on after it
    second = await open_store(store_url)
    try:
        again = EventWriter(second, spool_dir=spool)
        await again.start()
        later = events(5, start=100)
        await asyncio.gather(*[again.write(e) for e in later])
        await until(lambda: again.backlog == 0)
        await again.stop()
        assert await stored_ids(second) == [e.id for e in sent + later]
    finally:
        await second.close()
    assert segments(spool) == []


async def test_start_replays_a_spool_left_by_a_crash(store: Store, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    old = events(30)
    already = old[:5]
    await store.append(already)  # a crash after the commit, before the spool file went

    def line(e: ContactEvent) -> str:
        record = {"id": e.id, "type": e.type, "at": e.at.isoformat(), "contact_id": e.contact_id}
        return json.dumps(record | {"call_id": e.call_id, "data": e.data}) + "\n"

    (spool / "events-000000000007.jsonl").write_text("".join(line(e) for e in old[:20]))
    # the last line was cut short by the crash: it was never acknowledged
    (spool / "events-000000000008.jsonl").write_text("".join(line(e) for e in old[20:]) + '{"id": "cut-sh')
    writer = EventWriter(store, spool_dir=spool, batch_size=8)
    with capture_logs() as logs:
        await writer.start()
        assert writer.backlog == 31
        new = events(3, start=500)
        await asyncio.gather(*[writer.write(e) for e in new])
        await until(lambda: writer.backlog == 0)
        await writer.stop()
    assert messages(logs, "store spool: 31 events from an earlier run")
    assert [e for e in logs if "line 11: skipped" in e["event"]]
    assert await stored_ids(store) == [e.id for e in old + new]
    assert segments(spool) == []
    contact = await store.contact("c0")
    assert contact is not None and contact.ivr_path == [f"n{n}" for n in (0, 5, 10, 15, 20, 25, 500)]


def _read_acks(process: subprocess.Popen[str], wanted: int, acks: list[str]) -> None:
    assert process.stdout is not None
    while len(acks) < wanted:
        line = process.stdout.readline()
        if not line:
            return
        acks.append(line.strip())


@pytest.mark.parametrize("memory_limit", [100_000, 20], ids=["memory", "spool"])
async def test_kill_9_mid_batch_loses_no_acknowledged_event(
    store_url: str, tmp_path: Path, memory_limit: int
) -> None:
    await upgrade(store_url)
    spool = tmp_path / "spool"
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), store_url, str(spool), str(memory_limit)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acks: list[str] = []
    try:
        await asyncio.wait_for(asyncio.to_thread(_read_acks, process, 1500, acks), 60)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        out, err = process.communicate(timeout=30)
    acks += [line for line in out.split() if line]
    assert process.returncode == -signal.SIGKILL
    assert len(acks) >= 1500, f"the writer process acknowledged only {len(acks)} events:\n{err}"
    assert all(re.fullmatch(r"[0-9a-f]{32}", a) for a in acks)
    if memory_limit == 20:
        assert segments(spool), "the writer process should have been spooling when it was killed"

    store = await open_store(store_url)
    try:
        writer = EventWriter(store, spool_dir=spool)
        await writer.start()
        await until(lambda: writer.backlog == 0)
        await writer.stop()
        ids = await stored_ids(store)
    finally:
        await store.close()
    missing = set(acks) - set(ids)
    assert not missing, f"{len(missing)} acknowledged events are not in the database"
    assert len(ids) == len(set(ids))
    assert segments(spool) == []
