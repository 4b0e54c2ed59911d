"""Self-healing timer delivery: each timer's expected delivery time, leases for periodic
duties that any worker may perform, and worker heartbeats kept in the database.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("timers") as batch:
        batch.add_column(sa.Column("deliver_at", sa.DateTime(timezone=True), nullable=True))
    # A timer's next delivery was its due time, or, after failed attempts, a retry the
    # sweeper will hand over at once: either way due_at is the time it was expected.
    op.execute(sa.text("UPDATE timers SET deliver_at = due_at"))
    with op.batch_alter_table("timers") as batch:
        batch.alter_column("deliver_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.create_index("ix_timers_status_deliver", "timers", ["status", "deliver_at"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_by", sa.String(length=200), nullable=True),
        sa.Column("last_outcome", JSON, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "worker_heartbeats",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redis_ok", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_worker_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
    op.drop_table("leases")
    op.drop_index("ix_timers_status_deliver", table_name="timers")
    with op.batch_alter_table("timers") as batch:
        batch.drop_column("deliver_at")
