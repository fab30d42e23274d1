"""The store's tables (SQLAlchemy Core). Migrations in `migrations/versions` create exactly these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend.

    PostgreSQL keeps `timestamptz`. SQLite has no time zones: the value is stored as UTC text (fixed
    width, so text order is time order) and read back with UTC attached. A naive datetime is refused:
    its zone would be a guess.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"{value!r} is not a datetime")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{value.isoformat()} has no time zone; the store keeps aware times only")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(JSONB(), "postgresql")


def seq_type() -> sa.types.TypeEngine[int]:
    """BIGINT on PostgreSQL; SQLite needs exactly INTEGER for an auto-incrementing rowid key."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

contact_events = sa.Table(
    "contact_events",
    metadata,
    sa.Column("seq", seq_type(), primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("contact_id", sa.String(64), nullable=False),
    sa.Column("call_id", sa.String(128), nullable=True),
    sa.Column("data", json_type(), nullable=False),
    sa.Index(None, "contact_id", "seq"),
)

contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("parent_id", sa.String(64), nullable=True),
    sa.Column("call_id", sa.String(128), nullable=True),
    sa.Column("caller", sa.String(64), nullable=True),
    sa.Column("dialed", sa.String(64), nullable=True),
    sa.Column("customer_id", sa.String(64), nullable=True),
    sa.Column("language", sa.String(16), nullable=True),
    sa.Column("started_at", UTCDateTime(), nullable=True),
    sa.Column("queued_at", UTCDateTime(), nullable=True),
    sa.Column("answered_at", UTCDateTime(), nullable=True),
    sa.Column("ended_at", UTCDateTime(), nullable=True),
    sa.Column("wait_seconds", sa.Float(), nullable=True),
    sa.Column("talk_seconds", sa.Float(), nullable=True),
    sa.Column("outcome", sa.String(32), nullable=True),
    sa.Column("queue", sa.String(64), nullable=True),
    sa.Column("agent", sa.String(64), nullable=True),
    sa.Column("ended_by", sa.String(32), nullable=True),
    sa.Column("ivr_path", json_type(), nullable=False),
    sa.Column("last_seq", sa.BigInteger(), nullable=False),
    sa.Index(None, "started_at", "id"),
    sa.Index(None, "caller"),
    sa.Index(None, "parent_id"),
)

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("attributes", json_type(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

customer_phones = sa.Table(
    "customer_phones",
    metadata,
    sa.Column("phone", sa.String(32), primary_key=True),
    sa.Column(
        "customer_id",
        sa.String(64),
        sa.ForeignKey("customers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Index(None, "customer_id"),
)

callbacks = sa.Table(
    "callbacks",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("contact_id", sa.String(64), nullable=False),
    sa.Column("number", sa.String(32), nullable=False),
    sa.Column("queue", sa.String(64), nullable=True),
    sa.Column("skills", json_type(), nullable=False),
    sa.Column("priority", sa.Integer(), nullable=False),
    sa.Column("customer_ref", sa.String(200), nullable=True),
    sa.Column("note", sa.String(2000), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("window", json_type(), nullable=True),
    sa.Column("time_zone", sa.String(64), nullable=False),
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("lease_until", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("last_outcome", sa.String(16), nullable=True),
    sa.Column("attempt_contact_id", sa.String(64), nullable=True),
    sa.Column("place_since", UTCDateTime(), nullable=True),
    sa.Index(None, "next_attempt_at"),
    sa.Index(None, "state", "created_at", "id"),
    sa.Index(None, "contact_id"),
)
