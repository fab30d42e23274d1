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
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from hotline.store.db import Store, open_store, upgrade
from hotline.store.errors import InvalidEvent, SpoolInUse, WriterStopped
from hotline.store.events import ContactEvent, new_event
from hotline.store.writer import EventWriter, spool_line
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


def spooled_ids(spool: Path) -> list[str]:
    return [json.loads(line)["id"] for path in segments(spool) for line in path.read_text().splitlines()]


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


letters = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")  # what validation lets in
text = st.text(letters, min_size=1, max_size=12)


@given(
    event_id=text,
    contact_id=text,
    call_id=st.none() | text,
    data=st.dictionaries(
        st.text(letters, max_size=4), st.none() | st.integers() | text | st.lists(text, max_size=2)
    ),
    minutes=st.integers(-600, 600),
)
def test_a_spool_line_is_what_json_dumps_writes(
    event_id: str, contact_id: str, call_id: str | None, data: dict[str, Any], minutes: int
) -> None:
    """The spool line is put together from the data's JSON as checked, not encoded again; it must stay
    the line an earlier version wrote and reads."""
    at = datetime(2026, 12, 1, 9, 0, 0, 123, tzinfo=timezone(timedelta(minutes=minutes)))
    event = ContactEvent(event_id, "queued", at, contact_id, call_id, data)
    record: dict[str, Any] = {"id": event_id, "type": "queued", "at": at.isoformat()}
    record |= {"contact_id": contact_id, "call_id": call_id, "data": data}
    assert spool_line(event) == json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"


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


async def test_a_slow_database_sends_the_batch_and_everything_after_it_to_the_spool(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    append = store.append
    answer = asyncio.Event()

    async def slow(batch: Any, **options: Any) -> int:
        await answer.wait()
        return await append(batch, **options)

    monkeypatch.setattr(store, "append", slow)
    spool = tmp_path / "spool"
    writer = EventWriter(store, spool_dir=spool, batch_size=20, slow_after=0.1)
    await writer.start()
    sent = events(20)
    loop = asyncio.get_running_loop()
    with capture_logs() as logs:
        handed = loop.time()
        await asyncio.wait_for(asyncio.gather(*[writer.write(e) for e in sent]), 5)
        # acknowledged while the database has not answered: they are on disk, in order
        assert loop.time() - handed < writer.durable_within + 0.2
        assert spooled_ids(spool) == [e.id for e in sent]
        later = events(5, start=100)
        await asyncio.wait_for(asyncio.gather(*[writer.write(e) for e in later]), 5)
        assert spooled_ids(spool) == [e.id for e in sent + later]
        answer.set()
        await until(lambda: writer.backlog == 0)
        await writer.stop()
    assert messages(logs, "store unavailable") == [
        f"store unavailable: no answer within 0.1 s; 20 events waiting, spooling them to disk in {spool}"
    ]
    assert len(messages(logs, "store back: wrote 25 waiting events")) == 1
    assert await stored_ids(store) == [e.id for e in sent + later]
    assert segments(spool) == []


async def test_no_event_waits_in_memory_longer_than_the_bound(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every commit answers within slow_after, but events arriving behind a slow batch would wait for
    two: the watchdog sends them to the spool at their deadline instead."""
    append = store.append

    async def sluggish(batch: Any, **options: Any) -> int:
        await asyncio.sleep(0.25)
        return await append(batch, **options)

    monkeypatch.setattr(store, "append", sluggish)
    spool = tmp_path / "spool"
    writer = EventWriter(store, spool_dir=spool, max_delay=0.05, slow_after=0.3)
    assert writer.durable_within == pytest.approx(0.35)
    await writer.start()
    loop = asyncio.get_running_loop()
    waited: dict[str, float] = {}

    def acknowledged(event: ContactEvent, handed: float) -> Callable[[asyncio.Future[None]], None]:
        return lambda _: waited.__setitem__(event.id, loop.time() - handed)

    sent = events(40)
    with capture_logs() as logs:
        for event in sent:
            writer.submit(event).add_done_callback(acknowledged(event, loop.time()))
            await asyncio.sleep(0.02)
        await until(lambda: len(waited) == len(sent))
        await until(lambda: writer.backlog == 0)
        await writer.stop()
    slowest = max(waited.values())
    assert slowest < writer.durable_within + 0.1, f"an event waited {slowest:.3f} s to be durable"
    [behind] = messages(logs, "store behind")
    assert re.fullmatch(
        rf"store behind: an event waited 0\.35 s for its commit; \d+ events waiting, spooling them to "
        rf"disk in {re.escape(str(spool))}",
        behind,
    ), behind
    assert not messages(logs, "store unavailable")  # every commit answered within slow_after
    assert await stored_ids(store) == [e.id for e in sent]


async def test_database_goes_away_mid_stream_and_comes_back(
    quick_store: Store, outage: Outage, tmp_path: Path
) -> None:
    """Events go to the spool as soon as the database fails, then reach it in order; one log line each
    way."""
    spool = tmp_path / "spool"
    writer = EventWriter(quick_store, spool_dir=spool, batch_size=10, max_delay=0.005, retry_max=0.2)
    await writer.start()
    sent = events(150)
    loop = asyncio.get_running_loop()
    with capture_logs() as logs:
        await asyncio.gather(*[writer.write(e) for e in sent[:50]])
        outage.begin()
        handed = loop.time()
        await asyncio.wait_for(asyncio.gather(*[writer.submit(e) for e in sent[50:]]), 10)
        assert loop.time() - handed < writer.durable_within + 0.2
        assert writer.backlog == 100
        assert spooled_ids(spool) == [e.id for e in sent[50:]]
        outage.end()
        await until(lambda: writer.backlog == 0)
        await writer.stop()
    [down] = messages(logs, "store unavailable")
    assert re.fullmatch(
        rf"store unavailable: .+; 100 events waiting, spooling them to disk in {re.escape(str(spool))}", down
    ), down
    assert messages(logs, "store back") and messages(logs, "store back")[0].startswith(
        "store back: wrote 100 waiting events"
    )
    assert not messages(logs, "store behind")
    assert await stored_ids(quick_store) == [e.id for e in sent]
    assert segments(spool) == []


async def test_while_the_database_is_away_every_event_goes_to_the_spool_in_order(
    quick_store: Store, outage: Outage, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    writer = EventWriter(
        quick_store,
        spool_dir=spool,
        batch_size=10,
        max_delay=0.005,
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
        assert spooled_ids(spool) == [e.id for e in sent[25:]]
        assert len(segments(spool)) >= 2
        outage.end()
        await until(lambda: writer.backlog == 0)
        after = events(5, start=1000)
        await asyncio.gather(*[writer.write(e) for e in after])
        await writer.stop()
    assert len(messages(logs, "store unavailable")) == 1
    assert len(messages(logs, "store back")) == 1
    assert await stored_ids(quick_store) == [e.id for e in sent + after]
    assert segments(spool) == []


async def test_a_burst_past_the_memory_bound_goes_through_the_spool_in_order(
    store: Store, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    writer = EventWriter(store, spool_dir=spool, batch_size=10, memory_limit=30)
    await writer.start()
    sent = events(100)
    with capture_logs() as logs:
        await asyncio.gather(*[writer.submit(e) for e in sent])
        await until(lambda: writer.backlog == 0)
        after = events(5, start=1000)
        await asyncio.gather(*[writer.write(e) for e in after])
        await writer.stop()
    assert messages(logs, "store behind") == [
        f"store behind: more than 30 events waiting for the database; 31 events waiting, spooling them to "
        f"disk in {spool}"
    ]
    assert not messages(logs, "store unavailable")
    assert await stored_ids(store) == [e.id for e in sent + after]
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


class WriterProcess:
    """tests/support/writer_process.py in a process of its own, and what it said: the events it handed
    to its writer (in order, with when) and those the writer acknowledged."""

    def __init__(self, url: str, spool: Path, *options: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), url, str(spool), *options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.handed: list[tuple[str, float]] = []
        self.acknowledged: set[str] = set()
        self.bound = -1.0
        self.errors: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_out, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_out(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            kind, _, rest = line.strip().partition(" ")
            if kind == "h":
                event_id, at = rest.split()
                self.handed.append((event_id, float(at)))
            elif kind == "a":
                self.acknowledged.add(rest)
            elif kind == "ready":
                self.bound = float(rest)

    def _read_err(self) -> None:
        assert self.process.stderr is not None
        self.errors.extend(self.process.stderr)

    async def until(self, condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"writer process: no {what}:\n{''.join(self.errors)[-5000:]}")
            await asyncio.sleep(0.02)

    def command(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def kill(self) -> float:
        """SIGKILL; returns when it was sent (time.monotonic()), once everything it said is read."""
        killed_at = time.monotonic()
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        for reader in self._readers:
            reader.join(timeout=30)
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        return killed_at


async def replay(url: str, spool: Path) -> list[str]:
    """Start a writer on the dead process's spool, as the service does after a crash; the stored ids."""
    store = await open_store(url)
    try:
        writer = EventWriter(store, spool_dir=spool)
        await writer.start()
        await until(lambda: writer.backlog == 0, timeout=60)
        await writer.stop()
        assert segments(spool) == []
        return await stored_ids(store)
    finally:
        await store.close()


def assert_survivors(stored: list[str], process: WriterProcess, killed_at: float) -> None:
    """Exact, by id: every acknowledged event and every event handed more than the writer's bound before
    the kill is stored, once, in the order handed; nothing else is."""
    handed = [event_id for event_id, _ in process.handed]
    assert len(stored) == len(set(stored)), "an event is stored twice"
    assert stored == handed[: len(stored)], "stored events are not the first ones handed, in order"
    lost = process.acknowledged - set(stored)
    assert not lost, f"{len(lost)} of {len(process.acknowledged)} acknowledged events are not stored"
    due = {event_id for event_id, at in process.handed if at < killed_at - process.bound}
    lost = due - set(stored)
    assert not lost, f"{len(lost)} events handed more than {process.bound} s before the kill are not stored"


@pytest.mark.parametrize("memory_limit", [100_000, 20], ids=["memory", "spool"])
async def test_kill_9_mid_batch_loses_no_acknowledged_event(
    store_url: str, tmp_path: Path, memory_limit: int
) -> None:
    await upgrade(store_url)
    spool = tmp_path / "spool"
    options = ["--memory-limit", str(memory_limit), "--batch-size", "25", "--max-delay", "0.002"]
    process = WriterProcess(store_url, spool, *options)
    try:
        await process.until(lambda: len(process.acknowledged) >= 1500, "1500 events acknowledged")
    finally:
        killed_at = process.kill()
    assert process.process.returncode == -signal.SIGKILL
    if memory_limit == 20:
        assert segments(spool), "the writer process should have been spooling when it was killed"
    assert_survivors(await replay(store_url, spool), process, killed_at)


async def kill_9_while_the_database_does_not_answer(
    url: str, spool: Path, fault: Callable[[WriterProcess], None]
) -> tuple[WriterProcess, float]:
    """The writer process writes 1000 events a second (and one write() at a time, as fast as they
    return); 1.5 s after the fault begins, SIGKILL. The caller ends the fault; then a new writer replays
    the spool into the database."""
    await upgrade(url)
    process = WriterProcess(url, spool, "--rate", "1000", "--segment-events", "100")
    try:
        await process.until(lambda: len(process.acknowledged) >= 300, "300 events acknowledged")
        fault_at = time.monotonic()
        fault(process)
        await asyncio.sleep(1.5)
    finally:
        killed_at = process.kill()
    assert process.process.returncode == -signal.SIGKILL
    assert process.bound == pytest.approx(0.55)  # the service's defaults
    assert segments(spool), "the writer process should have been spooling when it was killed"
    during = [i for i, at in process.handed if fault_at <= at < killed_at - process.bound]
    assert len(during) >= 500, "too few events handed during the fault for the test to mean anything"
    return process, killed_at


async def test_kill_9_while_postgresql_is_down(pg_cluster: Cluster, tmp_path: Path) -> None:
    url = pg_cluster.url(pg_cluster.create_database())
    spool = tmp_path / "spool"
    try:
        process, killed_at = await kill_9_while_the_database_does_not_answer(
            url, spool, lambda _: pg_cluster.stop()
        )
    finally:
        if not pg_cluster.running():
            pg_cluster.start()
    assert_survivors(await replay(url, spool), process, killed_at)


@pytest.mark.parametrize("fault", ["locked", "full"])
async def test_kill_9_while_sqlite_is_locked_or_full(tmp_path: Path, fault: str) -> None:
    """locked: another connection holds the write lock, so appends hang (for the 5 s busy timeout) and
    the writer goes to the spool after slow_after; full: the disk refuses to grow the database, so
    appends fail at once."""
    path = tmp_path / "data" / "hotline.db"
    url = f"sqlite+aiosqlite:///{path}"
    spool = tmp_path / "spool"
    lock: sqlite3.Connection | None = None

    def begin(process: WriterProcess) -> None:
        nonlocal lock
        if fault == "locked":
            lock = sqlite3.connect(path, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")
        else:
            process.command("full")

    try:
        process, killed_at = await kill_9_while_the_database_does_not_answer(url, spool, begin)
    finally:
        if lock is not None:
            lock.execute("ROLLBACK")
            lock.close()
    assert_survivors(await replay(url, spool), process, killed_at)
