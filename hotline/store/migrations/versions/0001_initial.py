"""The contact store: contact events, the contact projection, customers and their phone numbers.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(JSONB(), "postgresql")


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "contact_events",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("at", _time(), nullable=False),
        sa.Column("contact_id", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(128), nullable=True),
        sa.Column("data", _json(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_contact_events"),
        sa.UniqueConstraint("id", name="uq_contact_events_id"),
    )
    op.create_index("ix_contact_events_contact_id_seq", "contact_events", ["contact_id", "seq"])

    op.create_table(
        "contacts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("parent_id", sa.String(64), nullable=True),
        sa.Column("call_id", sa.String(128), nullable=True),
        sa.Column("caller", sa.String(64), nullable=True),
        sa.Column("dialed", sa.String(64), nullable=True),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("started_at", _time(), nullable=True),
        sa.Column("queued_at", _time(), nullable=True),
        sa.Column("answered_at", _time(), nullable=True),
        sa.Column("ended_at", _time(), nullable=True),
        sa.Column("wait_seconds", sa.Float(), nullable=True),
        sa.Column("talk_seconds", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("queue", sa.String(64), nullable=True),
        sa.Column("agent", sa.String(64), nullable=True),
        sa.Column("ended_by", sa.String(32), nullable=True),
        sa.Column("ivr_path", _json(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_contacts"),
    )
    op.create_index("ix_contacts_started_at_id", "contacts", ["started_at", "id"])
    op.create_index("ix_contacts_caller", "contacts", ["caller"])
    op.create_index("ix_contacts_parent_id", "contacts", ["parent_id"])

    op.create_table(
        "customers",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("attributes", _json(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_customers"),
    )
    op.create_table(
        "customer_phones",
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name="fk_customer_phones_customer_id_customers",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("phone", name="pk_customer_phones"),
    )
    op.create_index("ix_customer_phones_customer_id", "customer_phones", ["customer_id"])


def downgrade() -> None:
    op.drop_table("customer_phones")
    op.drop_table("customers")
    op.drop_table("contacts")
    op.drop_table("contact_events")
