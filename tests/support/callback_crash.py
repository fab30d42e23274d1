"""A stand-in for a service that crashes mid-dial: claims every due call-back, starts dialing some of
them, says so on stdout, then waits to be killed. The kill -9 test of the call-back store runs it.

usage: callback_crash.py DATABASE_URL OWNER NOW DIAL
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

from hotline.store.callbacks import CallbackStore
from hotline.store.db import open_store


async def crash_worker(url: str, owner: str, now: datetime, dial: int) -> None:
    """Claim every due call-back, start dialing `dial` of them, say so, then wait to be killed."""
    store = await open_store(url, migrate=False)
    callbacks = CallbackStore(store)
    claimed = await callbacks.claim_due(owner, now, 300, limit=100)
    for n, cb in enumerate(claimed):
        if n < dial:
            assert await callbacks.start_dial(cb.id, owner, f"{cb.id}-try", now, 300) is not None
            print("dialing", cb.id, flush=True)
        else:
            print("queued", cb.id, flush=True)
    print("ready", flush=True)
    await asyncio.sleep(120)


if __name__ == "__main__":
    asyncio.run(crash_worker(sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3]), int(sys.argv[4])))
