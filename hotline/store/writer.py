"""The event writer: contact events reach the database in batches, in the order they arrived, and an
acknowledged event is never lost, whatever happens to the database or to the process.

An event is *acknowledged* (`write()` returns, the future of `submit()` resolves) once it is durable:
committed in the database, or appended to a spool file on local disk and fsync'd.

**What a crash can take.** Only events handed to the writer in the last `durable_within` seconds,
`max_delay + slow_after` (0.05 + 0.5 = 0.55 s by default), plus the time the disk takes to append and
fsync the spool (milliseconds on a healthy disk). Acknowledged events, never. Because:

- While the database answers, an event waits in memory for its batch (at most `max_delay`) and then
  for the batch's commit.
- As soon as the database does not answer or falls behind, every event waiting in memory goes to the
  spool at once, and every later event goes straight there until the database has taken the whole
  spool (so the order holds): when an append fails (the database is down, locked, refuses the write),
  a batch has no answer within `slow_after`, an event has waited `durable_within` for its commit (a
  watchdog: it holds whatever the writer is busy with), or more than `memory_limit` events wait.

Only when the database and the spool's disk both fail are events held in memory until one of them
takes them (`write()` does not return meanwhile).

On `start()` the writer first replays what an earlier run left in the spool, and new events follow
them through the spool; events are stored once by id, so replaying events that were already committed
is harmless.

Spool: `<spool_dir>/events-<number>.jsonl`, one JSON event per line, oldest file first; a file is
deleted once all its events are committed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import json
import os
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from json.encoder import encode_basestring
from pathlib import Path
from typing import IO

import structlog

from hotline.store.db import Store, describe_error
from hotline.store.errors import InvalidEvent, SpoolInUse, StoreUnavailable, WriterStopped
from hotline.store.events import ContactEvent, validate_event

log = structlog.get_logger("hotline.store")

SEGMENT_PREFIX = "events-"
SEGMENT_SUFFIX = ".jsonl"


def default_spool_dir(data_dir: Path) -> Path:
    """Where the service spools events while the database is behind: `<data_dir>/spool`."""
    return Path(data_dir) / "spool"


@dataclass(slots=True)
class _Pending:
    event: ContactEvent
    future: asyncio.Future[None]
    arrived: float


@dataclass(slots=True)
class _Segment:
    path: Path
    count: int = 0
    file: IO[bytes] | None = None


@dataclass(slots=True)
class _Outage:
    since: float
    written: int = 0


@dataclass(slots=True)
class _Spooled:
    events: list[ContactEvent] = field(default_factory=list)
    lines: int = 0


def _resolve(items: Sequence[_Pending]) -> None:
    for item in items:
        if not item.future.done():
            item.future.set_result(None)


def spool_line(event: ContactEvent) -> str:
    """The event as one spool line: the JSON object json.dumps(separators=(",", ":"), ensure_ascii=False)
    writes, with the data's JSON as it was checked (not encoded again)."""
    data = event.data_json if event.data_json is not None else validate_event(event)
    call_id = "null" if event.call_id is None else encode_basestring(event.call_id)
    return (
        f'{{"id":{encode_basestring(event.id)},"type":{encode_basestring(event.type)},'
        f'"at":{encode_basestring(event.at.isoformat())},"contact_id":{encode_basestring(event.contact_id)},'
        f'"call_id":{call_id},"data":{data}}}\n'
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _append_durably(segment: _Segment, data: bytes) -> None:
    """Runs in a worker thread: append, flush and fsync (the folder too, for a new file)."""
    created = segment.file is None
    if segment.file is None:
        segment.file = open(segment.path, "ab")  # noqa: SIM115 - kept open across writes, closed on rotation
    segment.file.write(data)
    segment.file.flush()
    os.fsync(segment.file.fileno())
    if created:
        _fsync_dir(segment.path.parent)


def _read_segment(path: Path) -> _Spooled:
    """The events of a spool file. A line cut short by a crash was never acknowledged: it is skipped."""
    spooled = _Spooled()
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            spooled.lines += 1
            try:
                record = json.loads(raw)
                event = ContactEvent(
                    id=record["id"],
                    type=record["type"],
                    at=datetime.fromisoformat(record["at"]),
                    contact_id=record["contact_id"],
                    call_id=record["call_id"],
                    data=record["data"],
                )
                validate_event(event)
            except (ValueError, KeyError, TypeError, InvalidEvent) as e:
                log.warning(
                    f"spool {path}, line {number}: skipped, not an event ({e})", path=str(path), line=number
                )
                continue
            spooled.events.append(event)
    return spooled


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for raw in f if raw.strip())


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    _fsync_dir(path.parent)


class EventWriter:
    """Writes contact events to the store in batches; `write()` returns once the event is durable.

    Call `submit()`/`write()` from the event loop the writer was started on.
    """

    def __init__(
        self,
        store: Store,
        *,
        spool_dir: Path,
        batch_size: int = 500,
        max_delay: float = 0.05,
        memory_limit: int = 10_000,
        slow_after: float = 0.5,
        retry_max: float = 5.0,
        segment_events: int = 10_000,
    ) -> None:
        if batch_size < 1 or memory_limit < 1 or segment_events < 1:
            raise ValueError("batch_size, memory_limit and segment_events must be at least 1")
        if max_delay < 0 or slow_after <= 0 or retry_max <= 0:
            raise ValueError("max_delay must be >= 0, slow_after and retry_max > 0 (seconds)")
        self._store = store
        self.spool_dir = Path(spool_dir)
        self.batch_size = batch_size
        self.max_delay = max_delay
        self.memory_limit = memory_limit
        self.slow_after = slow_after
        self.retry_max = retry_max
        self.segment_events = segment_events

        self._memory: deque[_Pending] = deque()
        self._inflight: list[_Pending] = []
        self._inflight_spilled = False
        self._to_spool: list[_Pending] = []
        self._spooling = False
        self._spool_busy = False
        self._spooled = 0
        self._segments: deque[_Segment] = deque()
        self._open: _Segment | None = None
        self._next_number = 1
        self._spool_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._spool_wake = asyncio.Event()
        self._spool_idle = asyncio.Event()
        self._stop_requested = asyncio.Event()
        self._outage: _Outage | None = None
        self._running = False
        self._stopping = False
        self._consumer: asyncio.Task[None] | None = None
        self._spooler: asyncio.Task[None] | None = None
        self._lock_fd: int | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        #: events taken by `submit`, by type, since the writer was made (for the service's metrics)
        self.submitted: collections.Counter[str] = collections.Counter()

    # -- what producers call -----------------------------------------------------------------------

    @property
    def durable_within(self) -> float:
        """Seconds after `submit()` by which an event is durable, while the spool's disk works: what a
        crash can take is the events handed to the writer in the last `durable_within` seconds (plus
        one fsync of the spool)."""
        return self.max_delay + self.slow_after

    @property
    def backlog(self) -> int:
        """Events not yet in the database: waiting in memory or in the spool."""
        inflight = 0 if self._inflight_spilled else len(self._inflight)
        return len(self._memory) + inflight + len(self._to_spool) + self._spooled

    def submit(self, event: ContactEvent) -> asyncio.Future[None]:
        """Queue `event`; the future resolves once it is durable. Raises InvalidEvent at once for an
        event the store would refuse, and WriterStopped when the writer is not running."""
        if not self._running or self._stopping:
            raise WriterStopped(
                f"the event writer for {self._store.url} is not running; start() it before writing events"
            )
        validate_event(event)
        self.submitted[event.type] += 1
        loop = asyncio.get_running_loop()
        pending = _Pending(event, loop.create_future(), loop.time())
        if self._spooling:
            self._to_spool.append(pending)
            self._spool_wake.set()
            return pending.future
        self._memory.append(pending)
        if self._watchdog is None:
            self._watch()
        if len(self._memory) + len(self._inflight) > self.memory_limit:
            self._spill(f"more than {self.memory_limit} events waiting for the database")
        elif len(self._memory) == 1 or len(self._memory) >= self.batch_size:
            self._wake.set()
        return pending.future

    async def write(self, event: ContactEvent) -> None:
        """Write `event` and return once it is durable (cancelling the caller does not cancel the write)."""
        await asyncio.shield(self.submit(event))

    # -- life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start writing; what an earlier run left in the spool goes to the database first, in order."""
        if self._running:
            return
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self._lock_spool()
        self._segments.clear()
        self._spooled = 0
        self._spooling = False
        self._outage = None
        found = sorted(
            p
            for p in self.spool_dir.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}")
            if p.name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)].isdigit()
        )
        for path in found:
            count = await asyncio.to_thread(_count_lines, path)
            self._segments.append(_Segment(path, count))
            self._spooled += count
            self._next_number = max(
                self._next_number, int(path.name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)]) + 1
            )
        if self._spooled:
            log.info(
                f"store spool: {self._spooled} events from an earlier run in {self.spool_dir}, writing them first",
                waiting=self._spooled,
                spool_dir=str(self.spool_dir),
            )
            self._spooling = True  # new events follow them through the spool, in order
        self._running = True
        self._stopping = False
        self._stop_requested.clear()
        self._spool_idle.set()
        self._consumer = asyncio.create_task(self._run(), name="hotline-store-writer")
        self._spooler = asyncio.create_task(self._run_spooler(), name="hotline-store-spooler")

    async def stop(self, timeout: float = 10.0) -> None:
        """Write what the database takes within `timeout`; everything else stays in the spool."""
        if not self._running:
            return
        self._stopping = True
        self._stop_requested.set()
        self._wake.set()
        assert self._consumer is not None and self._spooler is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._consumer), timeout)
        except TimeoutError:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
        if self._memory or (self._inflight and not self._inflight_spilled):
            self._spill(f"stopping after {timeout:g} s")
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._spooled_all(), timeout)
        self._spooler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._spooler
        async with self._spool_lock:
            self._close_open()
        self._unlock_spool()
        lost, self._to_spool = self._to_spool, []
        for item in lost:
            if not item.future.done():
                item.future.set_exception(
                    WriterStopped(
                        f"event {item.event.id} was neither stored nor spooled: the database and the spool "
                        f"in {self.spool_dir} both failed; check the disk and the database"
                    )
                )
        self._running = False

    async def _spooled_all(self) -> None:
        while self._to_spool or self._spool_busy:
            self._spool_idle.clear()
            self._spool_wake.set()
            await self._spool_idle.wait()

    # -- the consumer: spool first, then memory ------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                if await self._step():
                    return
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bug or a broken spool folder must not stop the writer for good
                log.exception(
                    f"event writer: {describe_error(e)}; trying again in 1 s", spool_dir=str(self.spool_dir)
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_requested.wait(), 1.0)
                if self._stopping:
                    return

    async def _step(self) -> bool:
        """One round of the consumer; True when it is done (stopping, nothing more it can write)."""
        segment = await self._next_segment()
        if segment is not None:
            return not await self._drain(segment)
        if self._spooling:
            if self._to_spool or self._spool_busy:
                await self._wait_for_wake()
                return False
            self._spooling = False
            self._check_caught_up()
            return False
        if self._memory:
            if not self._stopping and len(self._memory) < self.batch_size:
                left = self._memory[0].arrived + self.max_delay - asyncio.get_running_loop().time()
                if left > 0:
                    await self._wait_for_wake(left)
                    return False
            return not await self._write_memory_batch()
        self._check_caught_up()
        if self._stopping:
            return True
        await self._wait_for_wake()
        return False

    async def _wait_for_wake(self, timeout: float | None = None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    async def _write_memory_batch(self) -> bool:
        """Commit the oldest events in memory. True once they are committed or in the spool's hands (a
        failed commit sends them there); False would leave them for stop() to spool."""
        count = min(len(self._memory), self.batch_size)
        self._inflight = [self._memory.popleft() for _ in range(count)]
        self._inflight_spilled = False
        if await self._commit([p.event for p in self._inflight], memory_batch=True):
            _resolve(self._inflight)
        elif not self._inflight_spilled:
            return False
        # committed, or the spool has the batch now (and the spool goes first)
        self._inflight = []
        self._inflight_spilled = False
        return True

    async def _next_segment(self) -> _Segment | None:
        if not self._segments and self._open is not None and self._open.count > 0:
            async with self._spool_lock:
                self._close_open()
        return self._segments[0] if self._segments else None

    async def _drain(self, segment: _Segment) -> bool:
        if not segment.path.exists():
            log.warning(f"spool file {segment.path} is gone; {segment.count} events in it were not written")
            self._spooled -= segment.count
            self._segments.popleft()
            return True
        spooled = await asyncio.to_thread(_read_segment, segment.path)
        unreadable = spooled.lines - len(spooled.events)
        for start in range(0, len(spooled.events), self.batch_size):
            chunk = spooled.events[start : start + self.batch_size]
            if not await self._commit(chunk, memory_batch=False):
                return False
            self._spooled -= len(chunk)
        self._spooled -= unreadable
        await asyncio.to_thread(_remove, segment.path)
        self._segments.popleft()
        return True

    async def _commit(self, events: list[ContactEvent], *, memory_batch: bool) -> bool:
        """Append `events`; False when the append failed for a memory batch (it went to the spool with
        everything behind it) or when stopping. A spool file's events are retried with capped backoff."""
        delay = 0.05
        while True:
            try:
                stored = await self._append_watched(events)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                cause = e.__cause__ if isinstance(e, StoreUnavailable) and e.__cause__ is not None else e
                self._failed(describe_error(cause))
                self._spill()
                if self._stopping or memory_batch:
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_requested.wait(), delay)
                delay = min(delay * 2, self.retry_max)
                continue
            if self._outage is not None:
                self._outage.written += stored
            return True

    async def _append_watched(self, events: list[ContactEvent]) -> int:
        task = asyncio.ensure_future(self._store.append(events, checked=True))
        try:
            done, _ = await asyncio.wait({task}, timeout=self.slow_after)
            if not done:
                self._failed(f"no answer within {self.slow_after:g} s")
                self._spill()
                await asyncio.wait({task})
            return task.result()
        except asyncio.CancelledError:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise

    def _failed(self, reason: str) -> None:
        if self._outage is not None:
            return
        self._outage = _Outage(since=asyncio.get_running_loop().time())
        log.warning(
            f"store unavailable: {reason}; {self.backlog} events waiting, spooling them to disk in {self.spool_dir}",
            database=self._store.url,
            waiting=self.backlog,
            spool_dir=str(self.spool_dir),
        )

    def _check_caught_up(self) -> None:
        outage = self._outage
        if outage is None or self._segments or self._spooling or len(self._memory) >= self.batch_size:
            return
        self._outage = None
        seconds = asyncio.get_running_loop().time() - outage.since
        log.info(
            f"store back: wrote {outage.written} waiting events (unavailable for {seconds:.1f} s)",
            database=self._store.url,
            written=outage.written,
            seconds=round(seconds, 3),
        )

    # -- the spool -----------------------------------------------------------------------------------

    def _lock_spool(self) -> None:
        """One writer per spool folder: two would replay and delete each other's files."""
        path = self.spool_dir / "writer.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise SpoolInUse(
                f"spool folder {self.spool_dir} is in use by another event writer (pid {holder}); "
                "give each hotline process its own spool folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _unlock_spool(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _spill(self, why: str | None = None) -> None:
        """Everything waiting in memory (the batch being committed too) goes to the spool, in order, and
        every later event follows it there until the database has taken the whole spool. `why` is
        logged when the database has not failed (too slow for a burst, stopping); a failure is logged
        by `_failed`."""
        moved: list[_Pending] = []
        if self._inflight and not self._inflight_spilled:
            moved.extend(self._inflight)
            self._inflight_spilled = True
        moved.extend(self._memory)
        self._memory.clear()
        self._to_spool[:0] = moved
        if not self._spooling:
            self._spooling = True
            if why is not None:
                log.warning(
                    f"store behind: {why}; {self.backlog} events waiting, spooling them to disk in "
                    f"{self.spool_dir}",
                    database=self._store.url,
                    waiting=self.backlog,
                    spool_dir=str(self.spool_dir),
                )
        self._spool_wake.set()

    def _oldest_waiting(self) -> _Pending | None:
        """The oldest event that is durable nowhere yet and waits for the database (not for the disk)."""
        if self._inflight and not self._inflight_spilled:
            return self._inflight[0]
        return self._memory[0] if self._memory else None

    def _watch(self) -> None:
        """Arm the watchdog for the oldest event waiting in memory: at its deadline it goes to the spool."""
        oldest = self._oldest_waiting()
        if oldest is not None:
            loop = asyncio.get_running_loop()
            self._watchdog = loop.call_at(oldest.arrived + self.durable_within, self._deadline)

    def _deadline(self) -> None:
        self._watchdog = None
        oldest = self._oldest_waiting()
        if oldest is None:
            return
        if asyncio.get_running_loop().time() >= oldest.arrived + self.durable_within:
            self._spill(f"an event waited {self.durable_within:g} s for its commit")
        else:
            self._watch()

    async def _run_spooler(self) -> None:
        failing = False
        while True:
            if not self._to_spool:
                self._spool_idle.set()
                await self._spool_wake.wait()
                self._spool_wake.clear()
                continue
            batch = self._to_spool
            self._to_spool = []
            self._spool_busy = True
            self._spool_idle.clear()
            try:
                await self._spool_batch(batch)
            except asyncio.CancelledError:
                self._to_spool[:0] = batch
                raise
            except OSError as e:
                self._to_spool[:0] = batch
                if not failing:
                    log.error(
                        f"cannot write the spool in {self.spool_dir}: {e}; {len(self._to_spool)} events are "
                        "held in memory until the disk takes them",
                        spool_dir=str(self.spool_dir),
                    )
                    failing = True
                await asyncio.sleep(0.5)
                continue
            finally:
                self._spool_busy = False
            if failing:
                log.info(f"spool writable again in {self.spool_dir}", spool_dir=str(self.spool_dir))
                failing = False
            self._spooled += len(batch)
            _resolve(batch)
            self._wake.set()

    async def _spool_batch(self, batch: list[_Pending]) -> None:
        data = "".join([spool_line(p.event) for p in batch]).encode()
        async with self._spool_lock:
            if self._open is None or self._open.count >= self.segment_events:
                self._close_open()
                self._open = _Segment(
                    self.spool_dir / f"{SEGMENT_PREFIX}{self._next_number:012d}{SEGMENT_SUFFIX}"
                )
                self._next_number += 1
            segment = self._open
            try:
                await asyncio.to_thread(_append_durably, segment, data)
            except OSError:
                # A half-written line must not swallow the retry's first line: retry in a new file.
                if segment.file is not None:
                    with contextlib.suppress(OSError):
                        segment.file.close()
                    segment.file = None
                self._open = None
                if segment.path.exists():
                    segment.count = await asyncio.to_thread(_count_lines, segment.path)
                    self._spooled += segment.count
                    self._segments.append(segment)
                raise
            segment.count += len(batch)

    def _close_open(self) -> None:
        """Close the file being appended to; it joins the files to drain (or goes, when empty)."""
        segment = self._open
        if segment is None:
            return
        self._open = None
        if segment.file is not None:
            segment.file.close()
            segment.file = None
        if segment.count > 0:
            self._segments.append(segment)
        else:
            segment.path.unlink(missing_ok=True)
