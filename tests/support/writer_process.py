"""A stand-in for the service: writes contact events through an EventWriter as fast as it can and prints
each event id once `write()` has returned (acknowledged). The kill -9 test kills it mid-stream.

usage: writer_process.py DATABASE_URL SPOOL_DIR MEMORY_LIMIT
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

import structlog

from hotline.store.db import open_store
from hotline.store.events import new_event
from hotline.store.writer import EventWriter

IN_FLIGHT = 300
MAX_EVENTS = 50_000  # stops by itself if nobody kills it


async def main(url: str, spool_dir: Path, memory_limit: int) -> None:
    store = await open_store(url)
    writer = EventWriter(
        store, spool_dir=spool_dir, batch_size=25, max_delay=0.002, memory_limit=memory_limit
    )
    await writer.start()

    async def one(number: int) -> None:
        event = new_event(
            "node_entered", f"c{number % 50}", at=datetime.now(UTC), data={"node": f"n{number}"}
        )
        await writer.write(event)
        sys.stdout.write(event.id + "\n")
        sys.stdout.flush()

    pending: set[asyncio.Task[None]] = set()
    for number in range(MAX_EVENTS):
        pending.add(asyncio.create_task(one(number)))
        if len(pending) >= IN_FLIGHT:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    await asyncio.gather(*pending)
    await writer.stop()
    await store.close()


if __name__ == "__main__":
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout carries the acks
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])))
