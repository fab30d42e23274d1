"""Call-backs in the store on real SQLite files and a real PostgreSQL: create, list, cancel, reschedule,
due order, one claimer per call-back, lapsed leases, and recovery after kill -9 (of the stand-in for a
crashing service, support/callback_crash.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command

from hotline.store import db
from hotline.store.callbacks import Callback, CallbackStore, InvalidCallback
from hotline.store.db import Store, _alembic_config, open_store, upgrade
from hotline.store.errors import SchemaOutOfDate
from hotline.store.events import new_event
from hotline.store.tables import contact_events
from routing.callbacks import IllegalCallbackMove, RetryPolicy
from support.paths import SUPPORT

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SCRIPT = SUPPORT / "callback_crash.py"
POLICY = RetryPolicy(attempts=3, delay=120, expiry=24 * 3600)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def make(
    callbacks: CallbackStore, n: int, *, due: float = 0, priority: int = 0, **kw: object
) -> Callback:
    return await callbacks.create(
        number=f"+4822123{n:04d}",
        now=T0,
        next_attempt_at=at(due),
        queue="support",
        priority=priority,
        expires_at=POLICY.expires_at(T0),
        callback_id=f"cb{n}",
        **kw,  # type: ignore[arg-type]
    )


async def event_types(store: Store, contact_id: str) -> list[str]:
    return [e.type for e in await store.timeline(contact_id)]


# -- create, read, change ----------------------------------------------------------------------------


async def test_create_get_and_the_scheduled_event(store: Store) -> None:
    callbacks = CallbackStore(store)
    created = await callbacks.create(
        number="+48 22 123 45 67",
        now=T0,
        next_attempt_at=at(60),
        queue="sales",
        skills={"polish": 5},
        priority=7,
        customer_ref="C-19",
        note="about the invoice",
        contact_id="contact-a",
        window=(at(0), at(3600)),
        time_zone="Europe/Warsaw",
        expires_at=at(86400),
        callback_id="cb-a",
    )
    assert created == await callbacks.get("cb-a")
    assert (created.number, created.state, created.attempts, created.priority) == (
        "+48221234567",
        "scheduled",
        0,
        7,
    )
    assert created.skills == {"polish": 5}
    assert created.window == (at(0), at(3600))
    assert (created.next_attempt_at, created.requested_at, created.time_zone) == (at(60), T0, "Europe/Warsaw")
    again = await callbacks.create(
        number="+48221234567", now=at(5), next_attempt_at=at(99), queue="x", callback_id="cb-a"
    )
    assert again == created
    events = await store.timeline("contact-a")
    assert [(e.type, e.data) for e in events] == [
        ("callback_scheduled", {"queue": "sales", "number": "+48221234567", "due": at(60).isoformat()})
    ]
    assert await callbacks.get("nope") is None


@pytest.mark.parametrize(
    ("number", "message"),
    [("221234567", "E.164"), ("+48 abc", "not a phone number"), ("+0123456789", "E.164")],
)
async def test_numbers_must_be_e164(store: Store, number: str, message: str) -> None:
    with pytest.raises(InvalidCallback, match=message):
        await CallbackStore(store).create(number=number, now=T0, next_attempt_at=T0, queue="q")
    assert (await CallbackStore(store).list()).items == []


async def test_a_callback_needs_a_queue_or_skills(store: Store) -> None:
    with pytest.raises(InvalidCallback, match="queue or skills"):
        await CallbackStore(store).create(number="+48221234567", now=T0, next_attempt_at=T0)


async def test_list_pages_newest_first_and_filters_by_state(store: Store) -> None:
    callbacks = CallbackStore(store)
    for n in range(5):
        await callbacks.create(
            number=f"+4822123{n:04d}", now=at(n), next_attempt_at=at(n), queue="q", callback_id=f"cb{n}"
        )
    await callbacks.cancel("cb2", at(10))
    first = await callbacks.list(limit=2)
    assert [c.id for c in first.items] == ["cb4", "cb3"]
    assert first.next_cursor is not None
    second = await callbacks.list(limit=2, cursor=first.next_cursor)
    third = await callbacks.list(limit=2, cursor=second.next_cursor)
    assert [c.id for c in second.items + third.items] == ["cb2", "cb1", "cb0"]
    assert third.next_cursor is None
    assert [c.id for c in (await callbacks.list(state="cancelled")).items] == ["cb2"]
    assert [c.id for c in (await callbacks.list(state="scheduled")).items] == ["cb4", "cb3", "cb1", "cb0"]


async def test_a_place_in_the_queue_is_kept_through_claims(store: Store) -> None:
    callbacks = CallbackStore(store)
    await make(callbacks, 1, place_since=at(-95))
    await make(callbacks, 2)
    claimed = await callbacks.claim("cb1", "node-a", T0, 60)
    assert claimed is not None and claimed.place_since == at(-95)
    plain = await callbacks.get("cb2")
    assert plain is not None and plain.place_since is None
    with pytest.raises(InvalidCallback, match=r"place .* has no time zone"):
        await make(callbacks, 3, place_since=datetime(2026, 12, 1, 8, 0))


async def test_cancel_and_reschedule(store: Store) -> None:
    callbacks = CallbackStore(store)
    await make(callbacks, 1, contact_id="contact-1")
    await make(callbacks, 2)
    moved = await callbacks.reschedule("cb1", at(900), at(10))
    assert moved is not None and (moved.state, moved.next_attempt_at) == ("scheduled", at(900))
    assert [c.id for c in await callbacks.due(at(600))] == ["cb2"]
    cancelled = await callbacks.cancel("cb1", at(20), reason="customer called in")
    assert cancelled is not None and cancelled.state == "cancelled" and cancelled.next_attempt_at is None
    assert await callbacks.due(at(1000)) == [await callbacks.get("cb2")]
    with pytest.raises(IllegalCallbackMove, match="'cb1' cannot cancel while cancelled"):
        await callbacks.cancel("cb1", at(30))
    with pytest.raises(IllegalCallbackMove, match="cannot reschedule while cancelled"):
        await callbacks.reschedule("cb1", at(2000), at(30))
    assert await callbacks.cancel("nope", at(30)) is None
    events = await store.timeline("contact-1")
    assert [e.type for e in events] == ["callback_scheduled", "callback_scheduled", "callback_cancelled"]
    assert events[1].data["due"] == at(900).isoformat()
    assert events[2].data == {"reason": "customer called in", "attempts": 0}
    contact = await store.contact("contact-1")
    assert contact is not None and contact.outcome == "callback_cancelled"


async def test_due_orders_by_priority_then_the_longest_overdue(store: Store) -> None:
    callbacks = CallbackStore(store)
    await make(callbacks, 1, due=30)
    await make(callbacks, 2, due=10)
    await make(callbacks, 3, due=20, priority=5)
    await make(callbacks, 4, due=500, priority=9)
    assert [c.id for c in await callbacks.due(at(100))] == ["cb3", "cb2", "cb1"]
    assert [c.id for c in await callbacks.due(at(100), limit=1)] == ["cb3"]
    assert [c.id for c in await callbacks.due(at(500))] == ["cb4", "cb3", "cb2", "cb1"]
    assert await callbacks.due(at(5)) == []


# -- claims and leases -------------------------------------------------------------------------------


async def test_a_full_attempt_answered(store: Store) -> None:
    callbacks = CallbackStore(store)
    await make(callbacks, 1, contact_id="contact-1")
    assert await callbacks.claim("cb1", "node-a", at(-1), 60) is None  # not due yet
    claimed = await callbacks.claim("cb1", "node-a", T0, 60)
    assert claimed is not None and (claimed.state, claimed.lease_owner, claimed.lease_until) == (
        "queued",
        "node-a",
        at(60),
    )
    assert await callbacks.due(at(30)) == []
    renewed = await callbacks.renew("cb1", "node-a", at(50), 60)
    assert renewed is not None and renewed.lease_until == at(110)
    assert await callbacks.start_dial("cb1", "node-b", "contact-2", at(55), 60) is None
    dialing = await callbacks.start_dial("cb1", "node-a", "contact-2", at(55), 60)
    assert dialing is not None and (dialing.state, dialing.attempts, dialing.attempt_contact_id) == (
        "dialing",
        1,
        "contact-2",
    )
    done = await callbacks.record_attempt("cb1", "node-a", "answered", None, at(80), agent="ann")
    assert done is not None and (done.state, done.lease_owner, done.last_outcome) == (
        "completed",
        None,
        "answered",
    )
    events = await store.timeline("contact-1")
    assert [(e.type, e.data) for e in events[1:]] == [
        ("callback_attempted", {"number": "+48221230001", "attempt": 1, "contact_id": "contact-2"}),
        ("callback_completed", {"contact_id": "contact-2", "agent": "ann"}),
    ]
    contact = await store.contact("contact-1")
    assert contact is not None and contact.outcome == "callback_completed"


async def test_retries_then_fails_after_the_last_attempt(store: Store) -> None:
    callbacks = CallbackStore(store)
    cb = await make(callbacks, 1)
    now = T0
    for attempt in (1, 2, 3):
        assert await callbacks.claim("cb1", "node-a", now, 60) is not None
        dialing = await callbacks.start_dial("cb1", "node-a", f"try-{attempt}", now, 60)
        assert dialing is not None and dialing.attempts == attempt
        now += timedelta(seconds=30)
        next_at = POLICY.next_attempt(dialing, "busy", now)
        settled = await callbacks.record_attempt("cb1", "node-a", "busy", next_at, now)
        assert settled is not None
        if attempt < 3:
            assert next_at == now + timedelta(seconds=120)
            assert (settled.state, settled.next_attempt_at) == ("retry_wait", next_at)
            assert await callbacks.claim("cb1", "node-a", now, 60) is None  # not due yet
            assert next_at is not None
            now = next_at
        else:
            assert next_at is None and settled.state == "failed"
    assert await event_types(store, cb.contact_id) == [
        "callback_scheduled",
        "callback_attempted",
        "callback_scheduled",
        "callback_attempted",
        "callback_scheduled",
        "callback_attempted",
        "callback_failed",
    ]


async def test_expiry_closes_waiting_callbacks_and_ends_a_late_attempt(store: Store) -> None:
    callbacks = CallbackStore(store)
    await make(callbacks, 1, due=10)
    await make(callbacks, 2)
    assert await callbacks.claim("cb2", "node-a", T0, 60) is not None
    assert await callbacks.start_dial("cb2", "node-a", "try", T0, 60) is not None
    expired = await callbacks.expire(at(24 * 3600))
    assert [c.id for c in expired] == ["cb1"]
    assert (await event_types(store, "cb1"))[-1] == "callback_expired"
    late = await callbacks.record_attempt("cb2", "node-a", "no_answer", None, at(24 * 3600 + 5))
    assert late is not None and late.state == "expired"


async def test_two_claimers_never_get_the_same_callback(store_url: str) -> None:
    first = await open_store(store_url)
    second = await open_store(store_url)
    try:
        a, b = CallbackStore(first), CallbackStore(second)
        for n in range(20):
            await make(a, n)
        won: list[str] = []
        for n in range(20):
            got = await asyncio.gather(
                a.claim(f"cb{n}", "node-a", T0, 60),
                b.claim(f"cb{n}", "node-b", T0, 60),
                a.claim(f"cb{n}", "node-c", T0, 60),
            )
            assert sum(g is not None for g in got) == 1, got
            won.extend(str(g.lease_owner) for g in got if g is not None)
        batches = await asyncio.gather(
            a.claim_due("node-a", at(61), 60, 20), b.claim_due("node-b", at(61), 60, 20)
        )
        ids = [c.id for batch in batches for c in batch]
        assert sorted(ids) == sorted(f"cb{n}" for n in range(20))
    finally:
        await first.close()
        await second.close()
    assert len(won) == 20


async def test_a_lapsed_lease_is_reclaimed_and_the_first_owner_is_refused(store: Store) -> None:
    callbacks = CallbackStore(store)
    await make(callbacks, 1)
    assert await callbacks.claim("cb1", "node-a", T0, 60) is not None
    assert await callbacks.claim("cb1", "node-b", at(59), 60) is None
    taken = await callbacks.claim("cb1", "node-b", at(60), 60)
    assert taken is not None and taken.lease_owner == "node-b"
    assert await callbacks.renew("cb1", "node-a", at(61), 60) is None
    assert await callbacks.start_dial("cb1", "node-a", "try-a", at(61), 60) is None
    assert await callbacks.start_dial("cb1", "node-b", "try-b", at(61), 60) is not None
    # node-b stalls mid-dial; its lease lapses and node-c recovers the call-back by the policy
    recovered = await callbacks.recover(
        "node-c", at(200), lambda cb: POLICY.next_attempt(cb, "failed", at(200))
    )
    assert [(c.id, c.state, c.attempts, c.next_attempt_at) for c in recovered] == [
        ("cb1", "retry_wait", 1, at(320))
    ]
    assert await callbacks.record_attempt("cb1", "node-b", "answered", None, at(201)) is None
    again = await callbacks.claim("cb1", "node-c", at(320), 60)
    assert again is not None and again.attempts == 1
    assert await callbacks.record_attempt("cb1", "node-c", "answered", None, at(321)) is None  # not dialing


async def test_cancel_mid_dial_refuses_the_workers_outcome(store: Store) -> None:
    callbacks = CallbackStore(store)
    await make(callbacks, 1)
    assert await callbacks.claim("cb1", "node-a", T0, 60) is not None
    assert await callbacks.start_dial("cb1", "node-a", "try", T0, 60) is not None
    cancelled = await callbacks.cancel("cb1", at(5))
    assert cancelled is not None and (cancelled.state, cancelled.lease_owner) == ("cancelled", None)
    assert await callbacks.record_attempt("cb1", "node-a", "answered", None, at(6)) is None
    assert await callbacks.recover("node-a", at(600), lambda cb: at(700)) == []


# -- migrations --------------------------------------------------------------------------------------


async def test_a_store_at_the_first_schema_upgrades_and_keeps_its_events(store_url: str) -> None:
    engine = db._create_engine(db.store_url(store_url), busy_timeout=5.0, command_timeout=30.0)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), "0001"))
            event = new_event("hung_up", "c1", at=T0)
            row = {"id": event.id, "type": event.type, "at": event.at, "contact_id": "c1", "call_id": None}
            await conn.execute(contact_events.insert(), {**row, "data": {}})
            await conn.commit()
    finally:
        await engine.dispose()
    with pytest.raises(SchemaOutOfDate):
        await open_store(store_url, migrate=False)
    store = await open_store(store_url)
    try:
        cb = await make(CallbackStore(store), 1, contact_id="c1")
        assert await event_types(store, "c1") == ["hung_up", "callback_scheduled"]
        assert cb.state == "scheduled"
    finally:
        await store.close()


# -- kill -9 -----------------------------------------------------------------------------------------


async def test_kill_9_mid_dial_every_callback_happens_exactly_once(store_url: str) -> None:
    await upgrade(store_url)
    store = await open_store(store_url)
    try:
        callbacks = CallbackStore(store)
        for n in range(10):
            await make(callbacks, n, contact_id=f"contact-{n}")
    finally:
        await store.close()
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), store_url, "node-a", T0.isoformat(), "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        while "ready" not in lines:
            line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)
            if not line:
                break
            lines.append(line.strip())
    finally:
        os.kill(process.pid, signal.SIGKILL)
        _, err = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert "ready" in lines, err
    dialing = sorted(line.split()[1] for line in lines if line.startswith("dialing"))
    queued = sorted(line.split()[1] for line in lines if line.startswith("queued"))
    assert len(dialing) == 4 and len(queued) == 6

    store = await open_store(store_url)
    try:
        callbacks = CallbackStore(store)
        restart = at(5)  # the same node comes back before its leases lapse
        recovered = await callbacks.recover(
            "node-a", restart, lambda cb: POLICY.next_attempt(cb, "failed", restart)
        )
        assert sorted(c.id for c in recovered) == dialing
        assert {(c.state, c.attempts, c.next_attempt_at) for c in recovered} == {("retry_wait", 1, at(125))}
        assert await callbacks.recover("node-a", restart, lambda cb: restart) == []
        assert sorted(c.id for c in await callbacks.due(restart)) == queued
        later = at(125)
        batches = await asyncio.gather(
            callbacks.claim_due("node-a", later, 60, 100), callbacks.claim_due("node-b", later, 60, 100)
        )
        ids = [c.id for batch in batches for c in batch]
        assert sorted(ids) == sorted(dialing + queued)
        assert await callbacks.due(later + timedelta(seconds=59)) == []
        for cb_id in dialing:
            number = cb_id.removeprefix("cb")
            assert await event_types(store, f"contact-{number}") == [
                "callback_scheduled",
                "callback_attempted",
                "callback_scheduled",
            ]
    finally:
        await store.close()


async def test_a_released_placeholder_is_due_again_or_expires(store: Store) -> None:
    callbacks = CallbackStore(store)
    await make(callbacks, 1)
    await make(callbacks, 2)
    assert await callbacks.claim("cb1", "node-a", T0, 60) is not None
    assert await callbacks.release("cb1", "node-b", at(1)) is None  # not node-b's to give up
    assert [c.id for c in await callbacks.due(at(2))] == ["cb2"]
    released = await callbacks.release("cb1", "node-a", at(2))
    assert released is not None and (released.state, released.lease_owner) == ("queued", None)
    assert [c.id for c in await callbacks.due(at(3))] == ["cb1", "cb2"]
    day = 24 * 3600
    assert await callbacks.claim("cb1", "node-a", at(day - 10), 60) is not None
    assert await callbacks.claim("cb2", "node-a", at(day - 10), 60) is not None
    assert [c.id for c in await callbacks.expire(at(day + 1))] == []  # live leases keep them
    assert await callbacks.release("cb1", "node-a", at(day + 2)) is not None
    [expired] = await callbacks.expire(at(day + 3))
    assert (expired.id, expired.state) == ("cb1", "expired")


async def test_leases_tell_a_worker_what_it_still_holds(store: Store) -> None:
    callbacks = CallbackStore(store)
    for n in (1, 2, 3):
        await make(callbacks, n)
    await callbacks.claim("cb1", "node-a", T0, 60)
    await callbacks.claim("cb2", "node-b", T0, 60)
    await callbacks.claim("cb3", "node-a", T0, 60)
    await callbacks.cancel("cb3", at(1))
    assert await callbacks.leases(["cb1", "cb2", "cb3", "nope"]) == {
        "cb1": ("queued", "node-a"),
        "cb2": ("queued", "node-b"),
        "cb3": ("cancelled", None),
    }
    assert await callbacks.leases([]) == {}


async def test_each_attempt_contact_ends_with_how_the_customer_side_went(store: Store) -> None:
    callbacks = CallbackStore(store)
    cb = await make(callbacks, 1)
    await callbacks.claim("cb1", "node-a", T0, 60)
    await callbacks.start_dial("cb1", "node-a", "try-1", T0, 60)
    retry = at(400)
    await callbacks.record_attempt("cb1", "node-a", "busy", retry, at(30))
    await callbacks.claim("cb1", "node-a", retry, 60)
    await callbacks.start_dial("cb1", "node-a", "try-2", retry, 60)
    await callbacks.record_attempt("cb1", "node-a", "answered", None, at(430), agent="ann")

    first, second = await store.timeline("try-1"), await store.timeline("try-2")
    assert [(e.type, e.data) for e in first] == [
        ("callback_attempt_ended", {"callback_id": "cb1", "attempt": 1, "outcome": "busy"})
    ]
    assert [e.data["outcome"] for e in second] == ["answered"]
    tried = await store.contact("try-1")
    assert tried is not None and (tried.outcome, tried.ended_at) == ("not_reached", at(30))
    own = [(e.type, e.data.get("outcome")) for e in await store.timeline(cb.contact_id)]
    assert own == [
        ("callback_scheduled", None),
        ("callback_attempted", None),
        ("callback_scheduled", "busy"),  # the next attempt, and why there is one
        ("callback_attempted", None),
        ("callback_completed", None),
    ]
