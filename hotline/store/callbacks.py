"""Call-backs in the store: created, listed, claimed by one worker at a time, resolved exactly once.

A call-back is a row in `callbacks`; its state follows `routing.callbacks.TRANSITIONS`. A worker *claims*
a due call-back with one conditional UPDATE (state due, time come, lease free or lapsed), which takes a
lease in its name: two workers can never hold the same call-back. Only the lease holder can start the
dial and record how the attempt ended. Every state change writes its contact events in the same
transaction, with ids derived from the call-back and the attempt, so writing them again is harmless.

After a crash, `recover()` releases the call-backs the dead worker held in its queue and resolves the
ones it was dialing by the retry policy the caller passes: none is lost, none is made twice.
docs/callbacks.md tells the whole story.
"""

from __future__ import annotations

import builtins
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from contacts import EventName
from hotline.store.db import MAX_LIMIT, Store, _aware, _decode_cursor, _encode_cursor
from hotline.store.errors import InvalidPhone, InvalidQuery, StoreError
from hotline.store.events import MAX_ID, ContactEvent, Page, encode_data, validate_event
from hotline.store.phones import normalise
from hotline.store.tables import callbacks
from routing.callbacks import DUE, OUTCOMES, STATES, IllegalCallbackMove, Outcome, State, move, outcome_move

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_EVENT_IDS = uuid.UUID("6f1c3a52-7d0e-4b8e-9a51-2c0b8f4e6d17")


class InvalidCallback(StoreError, ValueError):
    """A call-back request that cannot be stored (a number that is not E.164, a naive time, ...)."""


@dataclass(frozen=True, slots=True)
class Callback:
    """One call-back as the store keeps it. `contact_id` is the contact that asked for it (a web
    request is its own contact); `attempt_contact_id` is the contact of the current or last attempt;
    `place_since` is when the caller's place in the queue dates from (a caller who chose a call-back
    while waiting keeps it for the first attempt), None for a call-back that joins when it is due."""

    id: str
    contact_id: str
    number: str
    queue: str | None
    skills: dict[str, int]
    priority: int
    customer_ref: str | None
    note: str | None
    state: State
    attempts: int
    next_attempt_at: datetime | None
    expires_at: datetime | None
    window: tuple[datetime, datetime] | None
    time_zone: str
    lease_owner: str | None
    lease_until: datetime | None
    requested_at: datetime
    updated_at: datetime
    last_outcome: str | None
    attempt_contact_id: str | None
    place_since: datetime | None = None


def e164(number: str) -> str:
    """`number` normalised and checked to be E.164 (`+`, country code, at most 15 digits)."""
    try:
        phone = normalise(number)
    except InvalidPhone as e:
        raise InvalidCallback(f"call-back number: {e}") from None
    if not _E164.fullmatch(phone):
        raise InvalidCallback(
            f"call-back number {number!r} is not an international number; write it in E.164 form with the "
            "country code, e.g. +48221234567"
        )
    return phone


def _window_json(window: tuple[datetime, datetime] | None) -> dict[str, str] | None:
    if window is None:
        return None
    opens, closes = window
    return {"start": opens.astimezone(UTC).isoformat(), "end": closes.astimezone(UTC).isoformat()}


def _record(row: sa.Row[Any]) -> Callback:
    m = row._mapping
    window = m["window"]
    return Callback(
        id=m["id"],
        contact_id=m["contact_id"],
        number=m["number"],
        queue=m["queue"],
        skills=dict(m["skills"]),
        priority=int(m["priority"]),
        customer_ref=m["customer_ref"],
        note=m["note"],
        state=m["state"],
        attempts=int(m["attempts"]),
        next_attempt_at=m["next_attempt_at"],
        expires_at=m["expires_at"],
        window=None
        if window is None
        else (datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])),
        time_zone=m["time_zone"],
        lease_owner=m["lease_owner"],
        lease_until=m["lease_until"],
        requested_at=m["created_at"],
        updated_at=m["updated_at"],
        last_outcome=m["last_outcome"],
        attempt_contact_id=m["attempt_contact_id"],
        place_since=m["place_since"],
    )


def _event(
    callback: Callback,
    kind: EventName,
    key: str,
    now: datetime,
    data: Mapping[str, Any],
    contact_id: str | None = None,
) -> ContactEvent:
    """A contact event of the call-back's own contact (or `contact_id`, an attempt's); its id comes from
    (call-back, kind, key), so the same step never writes two events."""
    event = ContactEvent(
        id=uuid.uuid5(_EVENT_IDS, f"{callback.id}/{kind}/{key}").hex,
        type=kind,
        at=now.astimezone(UTC),
        contact_id=contact_id or callback.contact_id,
        call_id=None,
        data=dict(data),
    )
    validate_event(event)
    return event


def _check_owner(owner: str) -> None:
    if not isinstance(owner, str) or not owner or len(owner) > 128:
        raise InvalidQuery(f"lease owner {owner!r}: give the worker's name, 1 to 128 characters")


def _check_lease(lease_seconds: float) -> timedelta:
    if not 0 < lease_seconds <= 24 * 3600:
        raise InvalidQuery(f"lease of {lease_seconds!r} s: give 1 to 86400 seconds")
    return timedelta(seconds=lease_seconds)


def _now(now: datetime) -> datetime:
    value = _aware(now, "now")
    assert value is not None
    return value


class CallbackStore:
    """The call-backs of one `Store`. Every method takes `now`: the store reads no clock."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- writing events in the state change's transaction ------------------------------------------

    async def _append_in(self, conn: AsyncConnection, events: Sequence[ContactEvent]) -> None:
        """Store `events` and update their contacts inside the state change's transaction."""
        await self._store.append_in(conn, events)

    async def _get_in(self, conn: AsyncConnection, callback_id: str, lock: bool = True) -> Callback | None:
        """The row; with `lock`, locked until the transaction ends (PostgreSQL; SQLite writes one at a time)."""
        query = sa.select(callbacks).where(callbacks.c.id == callback_id)
        if lock:
            query = query.with_for_update()
        row = (await conn.execute(query)).first()
        return None if row is None else _record(row)

    async def _update_in(self, conn: AsyncConnection, callback: Callback, **values: Any) -> Callback:
        """Change a row read in this same transaction (the write lock is held, so it cannot have moved)."""
        result = await conn.execute(
            sa.update(callbacks).where(callbacks.c.id == callback.id).values(**values).returning(callbacks)
        )
        return _record(result.one())

    # -- create and read ----------------------------------------------------------------------------

    async def create(
        self,
        *,
        number: str,
        now: datetime,
        next_attempt_at: datetime,
        queue: str | None = None,
        skills: Mapping[str, int] | None = None,
        priority: int = 0,
        customer_ref: str | None = None,
        note: str | None = None,
        contact_id: str | None = None,
        window: tuple[datetime, datetime] | None = None,
        time_zone: str = "UTC",
        expires_at: datetime | None = None,
        callback_id: str | None = None,
        place_since: datetime | None = None,
    ) -> Callback:
        """Store a scheduled call-back (first attempt at `next_attempt_at`, from `routing.callbacks.
        first_attempt`) and write `callback_scheduled` on its contact.

        Giving the same `callback_id` again returns the stored call-back unchanged, so a retried request
        is stored once. Without `contact_id` the call-back is its own contact (a web request).
        """
        now = _now(now)
        phone = e164(number)
        if queue is None and not skills:
            raise InvalidCallback("a call-back needs a queue or skills to route it; give at least one")
        if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 100:
            raise InvalidCallback(f"call-back priority {priority!r}: give a number from 0 to 100")
        for name, value, limit in (("customer reference", customer_ref, 200), ("note", note, 2000)):
            if value is not None and (not isinstance(value, str) or len(value) > limit or "\x00" in value):
                raise InvalidCallback(f"call-back {name} must be text of at most {limit} characters")
        for name, at in (("next attempt", next_attempt_at), ("expiry", expires_at), ("place", place_since)):
            if at is not None and (at.tzinfo is None or at.utcoffset() is None):
                raise InvalidCallback(
                    f"call-back {name} {at.isoformat()} has no time zone; pass an aware time"
                )
        if window is not None and any(t.tzinfo is None or t.utcoffset() is None for t in window):
            raise InvalidCallback("call-back window times need a time zone; pass aware times")
        identity = callback_id or uuid.uuid4().hex
        for name, value in (("id", identity), ("contact id", contact_id or identity)):
            if not value or len(value) > MAX_ID or "\x00" in value:
                raise InvalidCallback(f"call-back {name} {value!r} must be text of 1 to {MAX_ID} characters")
        skill_map = dict(skills or {})
        encode_data(skill_map, "callback skills")
        row = {
            "id": identity,
            "contact_id": contact_id or identity,
            "number": phone,
            "queue": queue,
            "skills": skill_map,
            "priority": priority,
            "customer_ref": customer_ref,
            "note": note,
            "state": "scheduled",
            "attempts": 0,
            "next_attempt_at": next_attempt_at,
            "expires_at": expires_at,
            "window": _window_json(window),
            "time_zone": time_zone,
            "lease_owner": None,
            "lease_until": None,
            "created_at": now,
            "updated_at": now,
            "last_outcome": None,
            "attempt_contact_id": None,
            "place_since": place_since,
        }
        insert = self._store._insert(callbacks).on_conflict_do_nothing(index_elements=["id"])
        async with self._store._write(lock=True) as conn:
            created = (await conn.execute(insert, row)).rowcount == 1
            stored = await self._get_in(conn, identity)
            assert stored is not None
            if created:
                due = next_attempt_at.astimezone(UTC).isoformat()
                scheduled = _event(
                    stored, "callback_scheduled", "0", now, {"queue": queue, "number": phone, "due": due}
                )
                await self._append_in(conn, [scheduled])
        return stored

    async def get(self, callback_id: str) -> Callback | None:
        async with self._store._read() as conn:
            return await self._get_in(conn, callback_id, lock=False)

    async def leases(self, callback_ids: Sequence[str]) -> dict[str, tuple[State, str | None]]:
        """Each call-back's state and lease holder, in one query (a worker checks what it holds)."""
        if not callback_ids:
            return {}
        query = sa.select(callbacks.c.id, callbacks.c.state, callbacks.c.lease_owner).where(
            callbacks.c.id.in_(list(callback_ids))
        )
        async with self._store._read() as conn:
            return {row.id: (row.state, row.lease_owner) for row in await conn.execute(query)}

    async def list(
        self, state: State | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[Callback]:
        """Call-backs newest first, optionally in one state; pass `next_cursor` back for the next page."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise InvalidQuery(f"limit={limit!r}: give a number from 1 to {MAX_LIMIT}")
        query = sa.select(callbacks)
        if state is not None:
            if state not in STATES:
                raise InvalidQuery(f"call-back state {state!r} is not one of: {', '.join(STATES)}")
            query = query.where(callbacks.c.state == state)
        if cursor is not None:
            at, after_id = _decode_cursor(cursor)
            query = query.where(
                sa.or_(
                    callbacks.c.created_at < at,
                    sa.and_(callbacks.c.created_at == at, callbacks.c.id < after_id),
                )
            )
        query = query.order_by(callbacks.c.created_at.desc(), callbacks.c.id.desc()).limit(limit + 1)
        async with self._store._read() as conn:
            rows = (await conn.execute(query)).all()
        items = [_record(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit and items:
            next_cursor = _encode_cursor(items[-1].requested_at, items[-1].id)
        return Page(items=items, next_cursor=next_cursor)

    def _due_query(self, now: datetime) -> sa.Select[Any]:
        return (
            sa.select(callbacks)
            .where(
                callbacks.c.state.in_(sorted(DUE)),
                callbacks.c.next_attempt_at <= now,
                sa.or_(callbacks.c.lease_owner.is_(None), callbacks.c.lease_until <= now),
            )
            .order_by(callbacks.c.priority.desc(), callbacks.c.next_attempt_at, callbacks.c.id)
        )

    async def due(self, now: datetime, limit: int = 100) -> builtins.list[Callback]:
        """Call-backs whose time has come and that no live worker holds: highest priority first, then the
        longest overdue."""
        now = _now(now)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise InvalidQuery(f"limit={limit!r}: give a number from 1 to {MAX_LIMIT}")
        async with self._store._read() as conn:
            return [_record(row) for row in await conn.execute(self._due_query(now).limit(limit))]

    # -- agent and supervisor changes ---------------------------------------------------------------

    async def cancel(self, callback_id: str, now: datetime, reason: str = "cancelled") -> Callback | None:
        """Cancel a call-back that is not over yet (None: no such call-back); a worker dialing it loses
        its lease, so its outcome is refused. Written as `callback_cancelled` with the reason."""
        now = _now(now)
        async with self._store._write(lock=True) as conn:
            current = await self._get_in(conn, callback_id)
            if current is None:
                return None
            move(current.id, current.state, "cancel")
            changed = await self._update_in(
                conn,
                current,
                state="cancelled",
                lease_owner=None,
                lease_until=None,
                next_attempt_at=None,
                updated_at=now,
                last_outcome="cancelled",
            )
            cancelled = _event(
                changed, "callback_cancelled", "final", now, {"reason": reason, "attempts": changed.attempts}
            )
            await self._append_in(conn, [cancelled])
            return changed

    async def reschedule(self, callback_id: str, at: datetime, now: datetime) -> Callback | None:
        """Move the next attempt to `at` (None: no such call-back). A worker holding it in its queue
        loses its lease."""
        now = _now(now)
        if at.tzinfo is None or at.utcoffset() is None:
            raise InvalidCallback(f"reschedule time {at.isoformat()} has no time zone; pass an aware time")
        async with self._store._write(lock=True) as conn:
            current = await self._get_in(conn, callback_id)
            if current is None:
                return None
            move(current.id, current.state, "reschedule")
            changed = await self._update_in(
                conn,
                current,
                state="scheduled",
                next_attempt_at=at,
                lease_owner=None,
                lease_until=None,
                updated_at=now,
            )
            due = at.astimezone(UTC).isoformat()
            scheduled = _event(
                changed,
                "callback_scheduled",
                f"{changed.attempts}/{due}",
                now,
                {"queue": changed.queue, "number": changed.number, "due": due},
            )
            await self._append_in(conn, [scheduled])
            return changed

    # -- the exactly-once part ----------------------------------------------------------------------

    async def claim(
        self, callback_id: str, owner: str, now: datetime, lease_seconds: float
    ) -> Callback | None:
        """Take a due call-back into `owner`'s queue for `lease_seconds` (renew to keep it).

        One conditional UPDATE: it succeeds only while the call-back is due and no live lease holds it,
        so of two claimers exactly one gets it; the other gets None.
        """
        now = _now(now)
        _check_owner(owner)
        lease = _check_lease(lease_seconds)
        update = (
            sa.update(callbacks)
            .where(
                callbacks.c.id == callback_id,
                callbacks.c.state.in_(sorted(DUE)),
                callbacks.c.next_attempt_at <= now,
                sa.or_(callbacks.c.lease_owner.is_(None), callbacks.c.lease_until <= now),
            )
            .values(state="queued", lease_owner=owner, lease_until=now + lease, updated_at=now)
            .returning(callbacks)
        )
        async with self._store._write() as conn:
            row = (await conn.execute(update)).first()
        return None if row is None else _record(row)

    async def claim_due(
        self, owner: str, now: datetime, lease_seconds: float, limit: int = 10
    ) -> builtins.list[Callback]:
        """Claim up to `limit` due call-backs in `due()` order; those another worker took first are skipped."""
        claimed: builtins.list[Callback] = []
        for candidate in await self.due(now, limit):
            got = await self.claim(candidate.id, owner, now, lease_seconds)
            if got is not None:
                claimed.append(got)
        return claimed

    async def renew(
        self, callback_id: str, owner: str, now: datetime, lease_seconds: float
    ) -> Callback | None:
        """Extend `owner`'s live lease (None: the lease is no longer theirs, or has lapsed)."""
        now = _now(now)
        _check_owner(owner)
        lease = _check_lease(lease_seconds)
        update = (
            sa.update(callbacks)
            .where(
                callbacks.c.id == callback_id,
                callbacks.c.state.in_(("queued", "dialing")),
                callbacks.c.lease_owner == owner,
                callbacks.c.lease_until > now,
            )
            .values(lease_until=now + lease, updated_at=now)
            .returning(callbacks)
        )
        async with self._store._write() as conn:
            row = (await conn.execute(update)).first()
        return None if row is None else _record(row)

    async def release(self, callback_id: str, owner: str, now: datetime) -> Callback | None:
        """Give up `owner`'s lease on a call-back waiting in its queue (not being dialed): it is due again
        for any worker, or closed by `expire()` when its time is over. None: it was not `owner`'s."""
        now = _now(now)
        _check_owner(owner)
        update = (
            sa.update(callbacks)
            .where(
                callbacks.c.id == callback_id,
                callbacks.c.state == "queued",
                callbacks.c.lease_owner == owner,
            )
            .values(lease_owner=None, lease_until=None, updated_at=now)
            .returning(callbacks)
        )
        async with self._store._write() as conn:
            row = (await conn.execute(update)).first()
        return None if row is None else _record(row)

    async def start_dial(
        self, callback_id: str, owner: str, attempt_contact_id: str, now: datetime, lease_seconds: float
    ) -> Callback | None:
        """Mark the attempt as started (counted, `callback_attempted` written) before dialing the customer.

        Only the holder of a live lease can; None means another worker has it now, so do not dial.
        """
        now = _now(now)
        _check_owner(owner)
        lease = _check_lease(lease_seconds)
        if not attempt_contact_id or len(attempt_contact_id) > MAX_ID:
            raise InvalidCallback(f"attempt contact id {attempt_contact_id!r}: give 1 to {MAX_ID} characters")
        async with self._store._write(lock=True) as conn:
            current = await self._get_in(conn, callback_id)
            if (
                current is None
                or current.state != "queued"
                or current.lease_owner != owner
                or current.lease_until is None
                or current.lease_until <= now
            ):
                return None
            changed = await self._update_in(
                conn,
                current,
                state=move(current.id, current.state, "dial"),
                attempts=current.attempts + 1,
                attempt_contact_id=attempt_contact_id,
                lease_until=now + lease,
                updated_at=now,
            )
            attempted = _event(
                changed,
                "callback_attempted",
                str(changed.attempts),
                now,
                {"number": changed.number, "attempt": changed.attempts, "contact_id": attempt_contact_id},
            )
            await self._append_in(conn, [attempted])
            return changed

    async def record_attempt(
        self,
        callback_id: str,
        owner: str,
        outcome: Outcome,
        next_at: datetime | None,
        now: datetime,
        agent: str | None = None,
    ) -> Callback | None:
        """Settle the attempt `owner` is dialing: answered completes it, cancelled cancels it, otherwise it
        waits for `next_at` (from `RetryPolicy.next_attempt`) or, with None, fails or expires.

        None: `owner` no longer holds it (its lease lapsed and the call-back was recovered, cancelled or
        taken by another worker), so this late outcome is refused and changes nothing.
        """
        now = _now(now)
        _check_owner(owner)
        if outcome not in OUTCOMES:
            raise InvalidCallback(f"call-back outcome {outcome!r} is not one of: {', '.join(OUTCOMES)}")
        if next_at is not None and (next_at.tzinfo is None or next_at.utcoffset() is None):
            raise InvalidCallback(f"next attempt {next_at.isoformat()} has no time zone; pass an aware time")
        async with self._store._write(lock=True) as conn:
            current = await self._get_in(conn, callback_id)
            if current is None or current.state != "dialing" or current.lease_owner != owner:
                return None
            return await self._settle(conn, current, outcome, next_at, now, agent)

    async def _settle(
        self,
        conn: AsyncConnection,
        current: Callback,
        outcome: Outcome,
        next_at: datetime | None,
        now: datetime,
        agent: str | None = None,
    ) -> Callback:
        step = outcome_move(outcome, next_at, current.expires_at, now)
        state = move(current.id, current.state, step)
        changed = await self._update_in(
            conn,
            current,
            state=state,
            next_attempt_at=next_at if step == "retry" else None,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
            last_outcome=outcome,
        )
        event: ContactEvent
        if step == "complete":
            event = _event(
                changed,
                "callback_completed",
                "final",
                now,
                {"contact_id": changed.attempt_contact_id, "agent": agent},
            )
        elif step == "retry":
            assert next_at is not None
            due = next_at.astimezone(UTC).isoformat()
            event = _event(
                changed,
                "callback_scheduled",
                str(changed.attempts),
                now,
                {"queue": changed.queue, "number": changed.number, "due": due, "outcome": outcome},
            )
        elif step == "expire":
            event = _event(
                changed,
                "callback_expired",
                "final",
                now,
                {"reason": f"no attempt fits before the expiry after {outcome}"},
            )
        else:
            event = _event(
                changed,
                "callback_failed",
                "final",
                now,
                {"reason": outcome, "attempts": changed.attempts},
            )
        written = [event]
        if changed.attempt_contact_id is not None:
            # the attempt's own contact ends with how the customer's side went
            ended = {"callback_id": changed.id, "attempt": changed.attempts, "outcome": outcome}
            written.insert(
                0,
                _event(
                    changed,
                    "callback_attempt_ended",
                    str(changed.attempts),
                    now,
                    ended,
                    contact_id=changed.attempt_contact_id,
                ),
            )
        await self._append_in(conn, written)
        return changed

    async def expire(self, now: datetime, limit: int = 100) -> builtins.list[Callback]:
        """Close call-backs not yet being dialed whose expiry has passed (`callback_expired`)."""
        now = _now(now)
        expired: builtins.list[Callback] = []
        async with self._store._write(lock=True) as conn:
            rows = await conn.execute(
                sa.select(callbacks)
                .where(
                    callbacks.c.state.in_(sorted(DUE | {"requested"})),
                    callbacks.c.expires_at <= now,
                    sa.or_(callbacks.c.lease_owner.is_(None), callbacks.c.lease_until <= now),
                )
                .order_by(callbacks.c.expires_at, callbacks.c.id)
                .limit(limit)
                .with_for_update()
            )
            for current in [_record(row) for row in rows]:
                changed = await self._update_in(
                    conn,
                    current,
                    state=move(current.id, current.state, "expire"),
                    next_attempt_at=None,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
                event = _event(
                    changed, "callback_expired", "final", now, {"reason": "expired before an attempt"}
                )
                await self._append_in(conn, [event])
                expired.append(changed)
        return expired

    async def recover(
        self, owner: str, now: datetime, decide: Callable[[Callback], datetime | None]
    ) -> builtins.list[Callback]:
        """At start-up: settle what a crashed worker left behind.

        Call-backs `owner` (this worker's name from before the crash) held in its queue go back to the
        due list. Call-backs being dialed by `owner`, or by anyone whose lease has lapsed, count their
        attempt as `failed` and are resolved by `decide(callback) -> next attempt | None` (the queue's
        `RetryPolicy.next_attempt(callback, "failed", now)`). Returns the resolved ones.
        """
        now = _now(now)
        _check_owner(owner)
        async with self._store._write() as conn:
            await conn.execute(
                sa.update(callbacks)
                .where(callbacks.c.state == "queued", callbacks.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None, updated_at=now)
            )
        resolved: builtins.list[Callback] = []
        async with self._store._write(lock=True) as conn:
            rows = await conn.execute(
                sa.select(callbacks)
                .where(
                    callbacks.c.state == "dialing",
                    sa.or_(callbacks.c.lease_owner == owner, callbacks.c.lease_until <= now),
                )
                .order_by(callbacks.c.id)
                .with_for_update()
            )
            for current in [_record(row) for row in rows]:
                resolved.append(await self._settle(conn, current, "failed", decide(current), now))
        return resolved


__all__ = ["Callback", "CallbackStore", "IllegalCallbackMove", "InvalidCallback", "e164"]
