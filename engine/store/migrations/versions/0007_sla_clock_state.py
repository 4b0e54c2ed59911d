"""SLA clocks kept as state: each clock's fold over the history, advanced by every event
instead of recomputed from the whole history.

Existing rows get no state (``phase`` NULL): the next event of their case recomputes it from
the history once, then advances it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS: list[sa.Column[Any]] = [
    sa.Column("phase", sa.String(length=16), nullable=True),
    sa.Column("running_since", sa.DateTime(timezone=True), nullable=True),
    sa.Column("banked_seconds", sa.Float(), nullable=True),
    sa.Column("manual_pause", sa.Boolean(), nullable=True),
    sa.Column("warned", JSON, nullable=True),
    sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("breach_recorded", sa.Boolean(), nullable=True),
    sa.Column("unit", sa.String(length=8), nullable=True),
    sa.Column("calendar", sa.String(length=63), nullable=True),
]


def upgrade() -> None:
    with op.batch_alter_table("case_slas") as batch:
        for column in COLUMNS:
            batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("case_slas") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column.name)
