"""An operator's pause of an SLA clock may carry the time it ends by itself, and the paused
clocks are found by an index of their own.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case_slas") as batch:
        batch.add_column(sa.Column("resume_at", sa.DateTime(timezone=True), nullable=True))
    # The clocks operators paused and nobody resumed (inspection's sla_paused rule).
    op.create_index(
        "ix_case_slas_paused",
        "case_slas",
        ["updated_at"],
        postgresql_where=sa.text("manual_pause AND stopped_at IS NULL"),
        sqlite_where=sa.text("manual_pause AND stopped_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_case_slas_paused", table_name="case_slas")
    with op.batch_alter_table("case_slas") as batch:
        batch.drop_column("resume_at")
