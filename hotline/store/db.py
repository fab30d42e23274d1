"""The contact store on SQLAlchemy's asyncio engine: SQLite (aiosqlite, the embedded default) or
PostgreSQL (asyncpg).

Writes are one transaction each and serialised (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a transaction
advisory lock), so `seq` grows in commit order and a reader syncing with `events_after(cursor)` never
skips an event that commits later with a smaller `seq`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from hotline.store import projection
from hotline.store.errors import (
    InvalidCursor,
    InvalidCustomer,
    InvalidEvent,
    InvalidPhone,
    InvalidQuery,
    InvalidStoreURL,
    SchemaOutOfDate,
    StoreUnavailable,
)
from hotline.store.events import (
    MAX_ID,
    OUTCOMES,
    Contact,
    ContactEvent,
    Customer,
    Page,
    StoredEvent,
    encode_data,
    validate_event,
)
from hotline.store.phones import normalise
from hotline.store.tables import contact_events, contacts, customer_phones, customers

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

#: Key of the PostgreSQL advisory locks that serialise appends and migrations ("hotline" in ASCII).
APPEND_LOCK = 0x686F746C696E65
MIGRATE_LOCK = APPEND_LOCK + 1

#: Rows per statement: well under both backends' limits on bound parameters.
CHUNK = 500
MAX_LIMIT = 1000
MAX_EVENTS_LIMIT = 10_000

_T = TypeVar("_T")


def default_url(data_dir: Path) -> str:
    """The embedded store: one SQLite file in the data folder."""
    return f"sqlite+aiosqlite:///{Path(data_dir).resolve() / 'hotline.db'}"


def store_url(url: str) -> URL:
    """`url` with the async driver the store uses (`sqlite:` -> aiosqlite, `postgresql:` -> asyncpg)."""
    fix = "use sqlite+aiosqlite:///path/to/hotline.db or postgresql+asyncpg://user:password@host:5432/hotline"
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError):
        raise InvalidStoreURL(f"database URL {url!r} is not a URL; {fix}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file::memory"):
            raise InvalidStoreURL(
                f"database URL {url!r} names no file; the store keeps its events in a file: {fix}"
            )
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        if not parsed.database:
            raise InvalidStoreURL(f"database URL {parsed!r} names no database; {fix}")
        return parsed.set(drivername="postgresql+asyncpg")
    raise InvalidStoreURL(f"database URL {parsed!r}: backend {backend!r} is not supported; {fix}")


def _create_engine(url: URL, *, busy_timeout: float, command_timeout: float) -> AsyncEngine:
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": busy_timeout})
        busy_ms = max(0, int(busy_timeout * 1000))

        @sa_event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # SQLAlchemy, not the sqlite3 module, decides when a transaction begins (see _on_begin).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            for pragma in (
                f"PRAGMA busy_timeout={busy_ms}",
                "PRAGMA journal_mode=WAL",
                "PRAGMA synchronous=FULL",
                "PRAGMA foreign_keys=ON",
            ):
                cursor.execute(pragma)
            cursor.close()

        @sa_event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Connection) -> None:
            # A writer takes the write lock up front: no lock upgrade half-way, no deadlock between writers.
            write = connection.get_execution_options().get("hotline_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    return create_async_engine(
        url,
        pool_pre_ping=True,
        connect_args={
            "timeout": min(command_timeout, 10.0),
            "command_timeout": command_timeout,
            "server_settings": {"application_name": "hotline"},
        },
    )


def describe_error(error: BaseException) -> str:
    """One line naming the driver's own error, without SQLAlchemy's statement dump."""
    original = getattr(error, "orig", None) or error
    text = str(original).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(original).__name__}: {first}" if first else type(original).__name__


def _is_unavailable(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        return not isinstance(error, sa_exc.IntegrityError | sa_exc.DataError | sa_exc.ProgrammingError)
    return isinstance(error, OSError | TimeoutError | sa_exc.TimeoutError | sa_exc.DisconnectionError)


@contextmanager
def _unavailable_as_store_error(display_url: str) -> Iterator[None]:
    try:
        yield
    except Exception as e:
        if _is_unavailable(e):
            raise StoreUnavailable(
                f"database {display_url} is unavailable ({describe_error(e)}); check that it is running and "
                "reachable, then retry"
            ) from e
        raise


def _chunks(items: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_CONTACT_COLUMNS = tuple(c.name for c in contacts.c)

_STRING_LIMITS = {
    column.name: column.type.length
    for column in contacts.c
    if isinstance(column.type, sa.String) and column.type.length is not None
}


def _clip(row: dict[str, Any]) -> dict[str, Any]:
    """Producer data can be longer than a projection column; the full value stays in the event."""
    for name, limit in _STRING_LIMITS.items():
        value = row.get(name)
        if isinstance(value, str) and len(value) > limit:
            row[name] = value[:limit]
    return row


def _encode_cursor(started_at: datetime, contact_id: str) -> str:
    raw = json.dumps([started_at.astimezone(UTC).isoformat(), contact_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    bad = InvalidCursor(
        f"cursor {cursor[:80]!r} is not one this store handed out; pass next_cursor from the previous page "
        "unchanged, or no cursor for the first page"
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise bad from None
    if not (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], str)
        and 0 < len(value[1]) <= MAX_ID
    ):
        raise bad
    try:
        at = datetime.fromisoformat(value[0])
    except ValueError:
        raise bad from None
    if at.tzinfo is None:
        raise bad
    return at, value[1]


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidQuery(f"{name} {value!r} needs a time zone, e.g. 2026-12-01T10:00:00+01:00")
    return value


def _dialect_insert(dialect: str, table: sa.Table) -> Any:
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


@dataclass(frozen=True, slots=True)
class Statements:
    """The statements of the write path, built once per dialect and reused for every batch.

    Building a statement and its cache key costs SQLAlchemy about 15-250 µs each time (the contacts
    upsert, with a SET for each of its 18 columns, the most): per batch, not per event, so it weighed
    most on the small batches of an ordinary day. A statement object built once keeps its cache key, and
    the engine's compiled cache then finds its SQL at once.
    """

    #: the idempotent insert of events: takes `e_id`, `e_type`, `e_at`, `e_contact_id`, `e_call_id` and
    #: `e_data_json`, the event's data already as JSON text (`ContactEvent.data_json`)
    insert_events: Any
    #: the contact rows of a batch: takes `ids`, a list
    select_contacts: Any
    #: insert or replace contact rows, every column
    upsert_contacts: Any
    #: PostgreSQL: the transaction advisory lock that orders appends (None on SQLite: BEGIN IMMEDIATE)
    append_lock: Any
    #: customer imports
    select_customer_ids: Any
    insert_customers: Any
    update_customers: Any
    delete_phones_of: Any
    delete_phones: Any
    insert_phones: Any


@functools.cache
def statements(dialect: str) -> Statements:
    """The write path's statements for `dialect` ("sqlite" or "postgresql"), built on first use."""
    data_json: Any = sa.bindparam("e_data_json", type_=sa.Text())
    if dialect == "postgresql":
        data_json = sa.cast(data_json, JSONB)
    columns = contact_events.c
    insert_events = (
        _dialect_insert(dialect, contact_events)
        .values(
            {
                columns.id: sa.bindparam("e_id", type_=columns.id.type),
                columns.type: sa.bindparam("e_type", type_=columns.type.type),
                columns.at: sa.bindparam("e_at", type_=columns.at.type),
                columns.contact_id: sa.bindparam("e_contact_id", type_=columns.contact_id.type),
                columns.call_id: sa.bindparam("e_call_id", type_=columns.call_id.type),
                columns.data: data_json,
            }
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(contact_events.c.seq, contact_events.c.id)
    )
    upsert = _dialect_insert(dialect, contacts)
    upsert = upsert.on_conflict_do_update(
        index_elements=["id"],
        set_={c.name: upsert.excluded[c.name] for c in contacts.c if c.name != "id"},
    )
    return Statements(
        insert_events=insert_events,
        select_contacts=sa.select(contacts).where(contacts.c.id.in_(sa.bindparam("ids", expanding=True))),
        upsert_contacts=upsert,
        append_lock=(
            sa.select(sa.func.pg_advisory_xact_lock(APPEND_LOCK)) if dialect == "postgresql" else None
        ),
        select_customer_ids=sa.select(customers.c.id).where(
            customers.c.id.in_(sa.bindparam("ids", expanding=True))
        ),
        insert_customers=sa.insert(customers),
        update_customers=(
            sa.update(customers)
            .where(customers.c.id == sa.bindparam("b_id"))
            .values(
                name=sa.bindparam("b_name"),
                attributes=sa.bindparam("b_attributes", type_=customers.c.attributes.type),
                updated_at=sa.bindparam("b_updated", type_=customers.c.updated_at.type),
            )
        ),
        delete_phones_of=sa.delete(customer_phones).where(
            customer_phones.c.customer_id.in_(sa.bindparam("ids", expanding=True))
        ),
        delete_phones=sa.delete(customer_phones).where(
            customer_phones.c.phone.in_(sa.bindparam("phones", expanding=True))
        ),
        insert_phones=sa.insert(customer_phones),
    )


def _stored(row: sa.Row[Any]) -> StoredEvent:
    return StoredEvent(
        seq=int(row.seq),
        id=row.id,
        type=row.type,
        at=row.at,
        contact_id=row.contact_id,
        call_id=row.call_id,
        data=dict(row.data),
    )


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _head() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def _upgrade_sync(connection: Connection) -> None:
    command.upgrade(_alembic_config(connection), "head")


def _current_sync(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def _upgrade(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        conn = await conn.execution_options(hotline_write=True)
        async with conn.begin():
            if conn.dialect.name == "postgresql":
                await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATE_LOCK)))
            await conn.run_sync(_upgrade_sync)


async def upgrade(url: str) -> None:
    """Bring the database at `url` to the newest schema (alembic upgrade head); a no-op when it is there."""
    parsed = store_url(url)
    engine = _create_engine(parsed, busy_timeout=30.0, command_timeout=300.0)
    try:
        with _unavailable_as_store_error(parsed.render_as_string(hide_password=True)):
            await _upgrade(engine)
    finally:
        await engine.dispose()


async def open_store(
    url: str, *, migrate: bool = True, busy_timeout: float = 5.0, command_timeout: float = 30.0
) -> Store:
    """Connect to the store at `url`; with `migrate`, bring its schema up to date first.

    `busy_timeout` is how long SQLite waits for another writer's lock; `command_timeout` how long a
    PostgreSQL statement may run. Without `migrate`, a database behind this version's schema raises
    SchemaOutOfDate.
    """
    parsed = store_url(url)
    engine = _create_engine(parsed, busy_timeout=busy_timeout, command_timeout=command_timeout)
    store = Store(engine, parsed)
    try:
        with _unavailable_as_store_error(store.url):
            if migrate:
                await _upgrade(engine)
            else:
                async with engine.connect() as conn:
                    current = await conn.run_sync(_current_sync)
                head = _head()
                if current != head:
                    raise SchemaOutOfDate(
                        f"database {store.url} is at schema {current or 'none (empty)'}, this version needs "
                        f"{head}; run `hotline db upgrade`"
                    )
    except BaseException:
        await engine.dispose()
        raise
    return store


class Store:
    """Contact events, their contact projection and customers, in one database."""

    def __init__(self, engine: AsyncEngine, url: URL) -> None:
        self._engine = engine
        #: The database URL with any password hidden, for messages and logs.
        self.url: str = url.render_as_string(hide_password=True)
        self.dialect: str = engine.dialect.name
        self._statements = statements(self.dialect)

    def _insert(self, table: sa.Table) -> Any:
        return _dialect_insert(self.dialect, table)

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        with _unavailable_as_store_error(self.url):
            async with self._engine.connect() as conn, conn.begin():
                yield conn

    @asynccontextmanager
    async def _write(self, lock: bool = False) -> AsyncIterator[AsyncConnection]:
        with _unavailable_as_store_error(self.url):
            async with self._engine.connect() as conn:
                conn = await conn.execution_options(hotline_write=True)
                async with conn.begin():
                    if lock and self._statements.append_lock is not None:
                        await conn.execute(self._statements.append_lock)
                    yield conn

    # -- contact events ----------------------------------------------------------------------------

    async def append(self, events: Sequence[ContactEvent], *, checked: bool = False) -> int:
        """Store `events` in one transaction and update their contacts; returns how many were new.

        An event whose id is already stored is skipped, so writing the same events again is harmless.
        `checked`: the caller has already passed each event through `validate_event` (the writer does,
        before it acknowledges one), so it is not done twice.
        """
        unique: dict[str, ContactEvent] = {}
        for event in events:
            if not checked:
                validate_event(event)
            unique.setdefault(event.id, event)
        if not unique:
            return 0
        async with self._write(lock=True) as conn:
            return await self.append_in(conn, list(unique.values()))

    async def append_in(self, conn: AsyncConnection, events: Sequence[ContactEvent]) -> int:
        """The append path inside a transaction the caller holds (with the write lock): for a state
        change elsewhere in the store that must commit together with its contact events. `events` are
        valid and have distinct ids; returns how many were new."""
        if not events:
            return 0
        rows = [
            {
                "e_id": e.id,
                "e_type": e.type,
                "e_at": e.at,
                "e_contact_id": e.contact_id,
                "e_call_id": e.call_id,
                "e_data_json": e.data_json if e.data_json is not None else validate_event(e),
            }
            for e in events
        ]
        insert = self._statements.insert_events
        seq_of: dict[str, int] = {}
        for chunk in _chunks(rows):
            result = await conn.execute(insert, list(chunk))
            seq_of.update((row.id, int(row.seq)) for row in result)
        if not seq_of:
            return 0
        fresh = sorted(
            (
                StoredEvent(seq_of[e.id], e.id, e.type, e.at, e.contact_id, e.call_id, e.data)
                for e in events
                if e.id in seq_of
            ),
            key=lambda e: e.seq,
        )
        await self._project(conn, fresh)
        return len(seq_of)

    async def _project(self, conn: AsyncConnection, fresh: Sequence[StoredEvent]) -> None:
        ids = sorted({e.contact_id for e in fresh})
        current: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(ids):
            result = await conn.execute(self._statements.select_contacts, {"ids": list(chunk)})
            current.update((row.id, dict(row._mapping)) for row in result)
        for event in fresh:
            current[event.contact_id] = projection.apply(current.get(event.contact_id), event)
        rows = [_clip({name: current[i].get(name) for name in _CONTACT_COLUMNS}) for i in ids]
        for part in _chunks(rows):
            await conn.execute(self._statements.upsert_contacts, list(part))

    async def events_after(self, after: int = 0, limit: int = 500) -> list[StoredEvent]:
        """Events with `seq` greater than `after`, oldest first: pass the last `seq` back to continue."""
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise InvalidQuery(f"after={after!r}: give the seq of the last event you have, 0 to start")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_EVENTS_LIMIT:
            raise InvalidQuery(f"limit={limit!r}: give a number from 1 to {MAX_EVENTS_LIMIT}")
        query = (
            sa.select(contact_events)
            .where(contact_events.c.seq > after)
            .order_by(contact_events.c.seq)
            .limit(limit)
        )
        async with self._read() as conn:
            return [_stored(row) for row in await conn.execute(query)]

    async def timeline(self, contact_id: str) -> list[StoredEvent]:
        """Every event of one contact, in the order they were stored."""
        query = (
            sa.select(contact_events)
            .where(contact_events.c.contact_id == contact_id)
            .order_by(contact_events.c.seq)
        )
        async with self._read() as conn:
            return [_stored(row) for row in await conn.execute(query)]

    # -- contacts ----------------------------------------------------------------------------------

    async def contact(self, contact_id: str) -> Contact | None:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(contacts).where(contacts.c.id == contact_id))).first()
        return None if row is None else projection.to_contact(row._mapping)

    async def contacts(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        number: str | None = None,
        outcome: str | None = None,
        queue: str | None = None,
        agent: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Contact]:
        """Contacts newest first, started in [since, until); `number` matches the caller or dialed number."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise InvalidQuery(f"limit={limit!r}: give a number from 1 to {MAX_LIMIT}")
        since = _aware(since, "since")
        until = _aware(until, "until")
        if since is not None and until is not None and until < since:
            raise InvalidQuery(f"until {until.isoformat()} is before since {since.isoformat()}; swap them")
        if outcome is not None and outcome not in OUTCOMES:
            raise InvalidQuery(f"outcome {outcome!r} is not one of: {', '.join(sorted(OUTCOMES))}")
        query = sa.select(contacts)
        if since is not None:
            query = query.where(contacts.c.started_at >= since)
        if until is not None:
            query = query.where(contacts.c.started_at < until)
        if number is not None:
            phone = normalise(number)
            query = query.where(sa.or_(contacts.c.caller == phone, contacts.c.dialed == phone))
        if outcome is not None:
            query = query.where(contacts.c.outcome == outcome)
        if queue is not None:
            query = query.where(contacts.c.queue == queue)
        if agent is not None:
            query = query.where(contacts.c.agent == agent)
        if cursor is not None:
            at, after_id = _decode_cursor(cursor)
            query = query.where(
                sa.or_(
                    contacts.c.started_at < at,
                    sa.and_(contacts.c.started_at == at, contacts.c.id < after_id),
                )
            )
        query = query.order_by(contacts.c.started_at.desc(), contacts.c.id.desc()).limit(limit + 1)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        items = [projection.to_contact(row._mapping) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit and items:
            last = items[-1]
            assert last.started_at is not None
            next_cursor = _encode_cursor(last.started_at, last.id)
        return Page(items=items, next_cursor=next_cursor)

    async def open_contacts(self, started_before: datetime, limit: int = 10_000) -> list[Contact]:
        """Contacts not ended yet that started before `started_before`, oldest first: what a restarted
        service closes or picks up."""
        before = _aware(started_before, "started_before")
        query = (
            sa.select(contacts)
            .where(contacts.c.ended_at.is_(None), contacts.c.started_at < before)
            .order_by(contacts.c.started_at, contacts.c.id)
            .limit(limit)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [projection.to_contact(row._mapping) for row in rows]

    async def has_call(self, call_id: str) -> bool:
        """Has the call (a channel id) a contact, ended or not?"""
        query = sa.select(contacts.c.id).where(contacts.c.call_id == call_id).limit(1)
        async with self._read() as conn:
            return (await conn.execute(query)).first() is not None

    # -- customers ---------------------------------------------------------------------------------

    async def customer_by_phone(self, phone: str) -> Customer | None:
        """The customer who owns `phone` (in any notation: it is normalised), or None."""
        number = normalise(phone)
        query = sa.select(customer_phones.c.customer_id).where(customer_phones.c.phone == number)
        async with self._read() as conn:
            customer_id = (await conn.execute(query)).scalar_one_or_none()
            if customer_id is None:
                return None
            return await self._customer(conn, customer_id)

    async def customer(self, customer_id: str) -> Customer | None:
        async with self._read() as conn:
            return await self._customer(conn, customer_id)

    async def _customer(self, conn: AsyncConnection, customer_id: str) -> Customer | None:
        row = (await conn.execute(sa.select(customers).where(customers.c.id == customer_id))).first()
        if row is None:
            return None
        phones = (
            await conn.execute(
                sa.select(customer_phones.c.phone)
                .where(customer_phones.c.customer_id == customer_id)
                .order_by(customer_phones.c.phone)
            )
        ).scalars()
        return Customer(
            id=row.id,
            name=row.name,
            phones=list(phones),
            attributes=dict(row.attributes),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    async def upsert_customers(
        self, customers_in: Sequence[Customer], *, now: datetime | None = None
    ) -> tuple[int, int]:
        """Create or replace customers (name, attributes and phone list); returns (created, updated).

        A phone number belongs to one customer: importing it for another moves it. Everything is
        checked before anything is written, and the import is one transaction.
        """
        prepared = _prepare_customers(customers_in)
        if not prepared:
            return 0, 0
        stamp = now.astimezone(UTC) if now is not None else datetime.now(UTC)
        ids = [c.id for c in prepared]
        phones = [(phone, c.id) for c in prepared for phone in c.phones]
        sql = self._statements
        async with self._write() as conn:
            existing: set[str] = set()
            for chunk in _chunks(ids):
                result = await conn.execute(sql.select_customer_ids, {"ids": list(chunk)})
                existing.update(result.scalars())
            new_rows = [
                {
                    "id": c.id,
                    "name": c.name,
                    "attributes": c.attributes,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
                for c in prepared
                if c.id not in existing
            ]
            changed = [
                {"b_id": c.id, "b_name": c.name, "b_attributes": c.attributes, "b_updated": stamp}
                for c in prepared
                if c.id in existing
            ]
            for part in _chunks(new_rows):
                await conn.execute(sql.insert_customers, list(part))
            for part in _chunks(changed):
                await conn.execute(sql.update_customers, list(part))
            for chunk in _chunks(ids):
                await conn.execute(sql.delete_phones_of, {"ids": list(chunk)})
            for chunk in _chunks([p for p, _ in phones]):
                await conn.execute(sql.delete_phones, {"phones": list(chunk)})
            for pairs in _chunks([{"phone": p, "customer_id": i} for p, i in phones]):
                await conn.execute(sql.insert_phones, list(pairs))
        return len(new_rows), len(changed)

    async def close(self) -> None:
        await self._engine.dispose()


def _prepare_customers(items: Iterable[Customer]) -> list[Customer]:
    """Validated customers with normalised, de-duplicated phones; raises InvalidCustomer/InvalidPhone."""
    seen_ids: set[str] = set()
    owner: dict[str, str] = {}
    prepared: list[Customer] = []
    for index, item in enumerate(items):
        where = f"customer #{index + 1}"
        if not isinstance(item, Customer):
            raise InvalidCustomer(f"{where}: {item!r} is not a Customer")
        if not isinstance(item.id, str) or not item.id.strip() or len(item.id) > MAX_ID or "\x00" in item.id:
            raise InvalidCustomer(
                f"{where}: id {item.id!r} must be non-empty text of at most {MAX_ID} characters"
            )
        where = f"customer {item.id!r}"
        if item.id in seen_ids:
            raise InvalidCustomer(f"{where} appears twice in one import; merge the two records")
        seen_ids.add(item.id)
        if item.name is not None and (
            not isinstance(item.name, str) or len(item.name) > 200 or "\x00" in item.name
        ):
            raise InvalidCustomer(f"{where}: name must be text of at most 200 characters")
        if not isinstance(item.attributes, dict):
            raise InvalidCustomer(f"{where}: attributes must be a JSON object")
        try:
            encode_data(item.attributes, "customer")
        except InvalidEvent as e:
            raise InvalidCustomer(f"{where}: attributes: {str(e).removeprefix('event customer: ')}") from None
        if isinstance(item.phones, str) or not isinstance(item.phones, list | tuple):
            raise InvalidCustomer(f"{where}: phones must be a list of phone numbers")
        phones: list[str] = []
        for raw in item.phones:
            try:
                phone = normalise(raw)
            except InvalidPhone as e:
                raise InvalidPhone(f"{where}: {e}") from None
            if phone in phones:
                continue
            if phone in owner:
                raise InvalidCustomer(
                    f"{where}: phone {phone} is also given for customer {owner[phone]!r}; a number belongs to "
                    "one customer"
                )
            owner[phone] = item.id
            phones.append(phone)
        prepared.append(
            Customer(id=item.id, name=item.name, phones=sorted(phones), attributes=dict(item.attributes))
        )
    return prepared
