"""The event feed: every case event gets a global position in commit order, handed out from a
one-row counter (``event_feed_head``) in the event's own transaction.

Revision ID: 0014_event_feed
Revises: 0013_token_expiry
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_event_feed"
down_revision = "0013_token_expiry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case_events") as batch:
        batch.add_column(sa.Column("position", sa.BigInteger(), nullable=True))
    # Events from before the feed are all committed: their id order is as good as any, and
    # the feed continues after the largest.
    op.execute("UPDATE case_events SET position = id")
    op.create_index("ix_case_events_position", "case_events", ["position"], unique=True)
    op.create_table(
        "event_feed_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_feed_head")),
    )
    op.execute(
        "INSERT INTO event_feed_head (id, position) "
        "SELECT 1, COALESCE(MAX(position), 0) FROM case_events"
    )


def downgrade() -> None:
    op.drop_table("event_feed_head")
    op.drop_index("ix_case_events_position", table_name="case_events")
    with op.batch_alter_table("case_events") as batch:
        batch.drop_column("position")
