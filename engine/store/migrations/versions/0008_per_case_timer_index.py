"""A case's armed timers by an index of their own, in due order.

``WHERE case_id = ? AND status = 'armed' ORDER BY due_at`` ran on every case read and fire;
without statistics SQLite chose ``ix_timers_status_due`` for it (no sort needed) and scanned
every armed timer in the database: 4.5 ms at 10,000 armed timers, 11 ms at 40,000. An index
on (case_id, status, due_at) answers it directly on both databases.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_timers_case_status_due", "timers", ["case_id", "status", "due_at"])
    op.drop_index("ix_timers_case_status", table_name="timers")


def downgrade() -> None:
    op.create_index("ix_timers_case_status", "timers", ["case_id", "status"])
    op.drop_index("ix_timers_case_status_due", table_name="timers")
