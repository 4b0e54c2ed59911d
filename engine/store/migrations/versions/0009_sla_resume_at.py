"""An operator's pause of an SLA clock keeps when it began and may carry the time it ends by
itself, and the paused clocks are found by an index of their own.

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
        batch.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("resume_at", sa.DateTime(timezone=True), nullable=True))
    # Clocks paused before this revision: their pause began at the row's last change (the
    # history has the exact instant; the rule's "since" is what needs it).
    op.execute("UPDATE case_slas SET paused_at = updated_at WHERE manual_pause")
    # The clocks operators paused and nobody resumed (inspection's sla_paused rule). The
    # conditions are spelt as the rule's query renders them on each database, so that each
    # planner matches the query to this partial index.
    op.create_index(
        "ix_case_slas_paused",
        "case_slas",
        ["paused_at"],
        postgresql_where=sa.text("manual_pause AND stopped_at IS NULL"),
        sqlite_where=sa.text("manual_pause = 1 AND stopped_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_case_slas_paused", table_name="case_slas")
    with op.batch_alter_table("case_slas") as batch:
        batch.drop_column("resume_at")
        batch.drop_column("paused_at")
