"""Call-backs: one row per requested call-back, with its state, attempts and the lease of the worker
dialing it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(JSONB(), "postgresql")


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "callbacks",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("contact_id", sa.String(64), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("queue", sa.String(64), nullable=True),
        sa.Column("skills", _json(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("customer_ref", sa.String(200), nullable=True),
        sa.Column("note", sa.String(2000), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _time(), nullable=True),
        sa.Column("expires_at", _time(), nullable=True),
        sa.Column("window", _json(), nullable=True),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_until", _time(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("last_outcome", sa.String(16), nullable=True),
        sa.Column("attempt_contact_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_callbacks"),
    )
    op.create_index("ix_callbacks_next_attempt_at", "callbacks", ["next_attempt_at"])
    op.create_index("ix_callbacks_state_created_at_id", "callbacks", ["state", "created_at", "id"])
    op.create_index("ix_callbacks_contact_id", "callbacks", ["contact_id"])


def downgrade() -> None:
    op.drop_table("callbacks")
