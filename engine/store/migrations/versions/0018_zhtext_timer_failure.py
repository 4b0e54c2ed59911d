"""A failed timer's error and note as data, besides their English text.

``timers.failure`` holds the error record of the last failed attempt (svcflow's error code,
its message, a guard's own words in both languages) and the failure's note as a message code
(engine/core/messages.py), so the dashboard can say them in the reader's language. Rows
failed before this keep only ``last_error`` and ``note``, which readers fall back to.

Revision ID: 0018_zhtext_timer_failure
Revises: 0017_contracts
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0018_zhtext_timer_failure"
down_revision = "0017_contracts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("timers") as batch:
        batch.add_column(sa.Column("failure", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("timers") as batch:
        batch.drop_column("failure")
