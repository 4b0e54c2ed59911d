"""Versions a process owner steers: which version new cases get (promote), retired versions
and definitions, and the audit of those decisions (docs/versions.md).

Revision ID: 0011_versions
Revises: 0010_sla_rounds
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_versions"
down_revision = "0010_sla_rounds"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("definition_versions") as batch:
        batch.add_column(sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("retired_by", sa.String(200), nullable=True))
    op.create_table(
        "definition_heads",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=True),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_definition_heads"),
    )
    op.create_table(
        "definition_audit",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_definition_audit"),
    )
    op.create_index("ix_definition_audit_name_at", "definition_audit", ["name", "at"])


def downgrade() -> None:
    op.drop_index("ix_definition_audit_name_at", table_name="definition_audit")
    op.drop_table("definition_audit")
    op.drop_table("definition_heads")
    with op.batch_alter_table("definition_versions") as batch:
        batch.drop_column("retired_by")
        batch.drop_column("retired_at")
