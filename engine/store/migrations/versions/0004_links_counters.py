"""Parent/child links between cases, cross-case counters, what a step read.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("parent_id", ID, nullable=True))
        batch.create_foreign_key(
            "fk_cases_parent_id_cases", "cases", ["parent_id"], ["id"], ondelete="RESTRICT"
        )
        batch.create_index("ix_cases_parent_id", ["parent_id"])
    with op.batch_alter_table("case_events") as batch:
        batch.add_column(sa.Column("context", JSON, nullable=True))
    op.create_table(
        "counters",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counters")),
        sa.UniqueConstraint("name", "key", name="uq_counters_name_key"),
    )


def downgrade() -> None:
    op.drop_table("counters")
    with op.batch_alter_table("case_events") as batch:
        batch.drop_column("context")
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_parent_id")
        batch.drop_constraint("fk_cases_parent_id_cases", type_="foreignkey")
        batch.drop_column("parent_id")
