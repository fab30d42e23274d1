"""A stand-in for the service: writes contact events through an EventWriter and says on standard output
what it handed to the writer and what the writer acknowledged, so a test can kill it with SIGKILL and
then count, by id, what survived.

Standard output, one line each, flushed at once (a pipe keeps what was written before the kill):

    ready BOUND          the writer runs; BOUND is its `durable_within` in seconds
    h ID T               event ID was handed to the writer (submit() or write()) by time.monotonic() T
    a ID                 event ID is acknowledged (durable)

Two producers run together, as in the service: call runners that `submit()` without waiting (at `--rate`
events a second, or as fast as the writer takes them), and one that `await`s each `write()`.

Commands on standard input, one a line:

    full                 from now on this process may not grow a file beyond the size of the database's
                         write-ahead log (at least 32 KiB): RLIMIT_FSIZE, what a full disk does to the
                         database; spool files of up to 100 events still fit

usage: writer_process.py DATABASE_URL SPOOL_DIR [--batch-size N] [--max-delay S] [--memory-limit N]
                         [--rate N] [--segment-events N]
(the writer's own defaults otherwise: the service's)
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import structlog

from hotline.store.db import open_store
from hotline.store.events import ContactEvent, new_event
from hotline.store.writer import EventWriter

IN_FLIGHT = 300  # unpaced: submitted events not yet acknowledged
MAX_EVENTS = 50_000  # stops by itself if nobody kills it
MIN_FILE_SIZE = 32 * 1024


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def fill_the_disk(database: Path) -> None:
    """No file may grow past the write-ahead log's present size: the log cannot take another commit."""
    wal = database.with_name(database.name + "-wal")
    size = max(MIN_FILE_SIZE, wal.stat().st_size if wal.exists() else 0)
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))  # SIGXFSZ is ignored by Python


async def main(args: argparse.Namespace) -> None:
    store = await open_store(args.url)
    writer = EventWriter(
        store,
        spool_dir=args.spool_dir,
        batch_size=args.batch_size,
        max_delay=args.max_delay,
        memory_limit=args.memory_limit,
        segment_events=args.segment_events,
    )
    await writer.start()
    loop = asyncio.get_running_loop()
    if store.dialect == "sqlite":
        database = Path(args.url.split("///", 1)[1])
        loop.add_reader(sys.stdin.fileno(), lambda: _command(sys.stdin.readline(), database))
    say(f"ready {writer.durable_within}")
    numbers = iter(range(MAX_EVENTS))

    def event(number: int) -> ContactEvent:
        return new_event("node_entered", f"c{number % 50}", at=datetime.now(UTC), data={"node": f"n{number}"})

    def acknowledged(event_id: str, written: asyncio.Future[None]) -> None:
        if not written.cancelled() and written.exception() is None:
            say(f"a {event_id}")

    def submit(number: int) -> asyncio.Future[None]:
        one = event(number)
        written = writer.submit(one)
        say(f"h {one.id} {time.monotonic():.6f}")
        written.add_done_callback(functools.partial(acknowledged, one.id))
        return written

    async def waits_for_each() -> None:
        for number in numbers:
            one = event(number)
            say(f"h {one.id} {time.monotonic():.6f}")  # write() hands it over before its first await
            await writer.write(one)
            say(f"a {one.id}")

    async def paced() -> None:
        began = time.monotonic()
        for handed, number in enumerate(numbers, 1):
            submit(number)
            while handed >= (time.monotonic() - began) * args.rate:
                await asyncio.sleep(0.002)

    async def flat_out() -> None:
        pending: set[asyncio.Future[None]] = set()
        for number in numbers:
            pending.add(submit(number))
            if len(pending) >= IN_FLIGHT:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.gather(*pending)

    await asyncio.gather(waits_for_each(), paced() if args.rate else flat_out())
    await writer.stop()
    await store.close()


def _command(line: str, database: Path) -> None:
    if line.strip() == "full":
        fill_the_disk(database)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("spool_dir", type=Path)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--max-delay", type=float, default=0.05)
    parser.add_argument("--memory-limit", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=0.0, help="events a second (0: as fast as it goes)")
    parser.add_argument("--segment-events", type=int, default=10_000)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout carries the acks
    asyncio.run(main(parser.parse_args()))
