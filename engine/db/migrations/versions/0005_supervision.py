"""Supervision: the SLA clock projection, dwell statistics, an index for dwelling cases.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_slas",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("definition_name", sa.String(length=63), nullable=False),
        sa.Column("sla", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("target_seconds", sa.Float(), nullable=False),
        sa.Column("elapsed_seconds", sa.Float(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_slas_case_id_cases"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_slas")),
        sa.UniqueConstraint("case_id", "sla", name="uq_case_slas_case_id_sla"),
    )
    op.create_index("ix_case_slas_status_due", "case_slas", ["status", "due_at"])
    op.create_index("ix_case_slas_status_warn", "case_slas", ["status", "warn_at"])
    op.create_index(
        "ix_case_slas_open_due",
        "case_slas",
        ["due_at"],
        postgresql_where=sa.text("stopped_at IS NULL"),
        sqlite_where=sa.text("stopped_at IS NULL"),
    )
    op.create_table(
        "dwell_stats",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("definition_name", sa.String(length=63), nullable=False),
        sa.Column("definition_version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=63), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("p50_seconds", sa.Float(), nullable=False),
        sa.Column("p95_seconds", sa.Float(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dwell_stats")),
        sa.UniqueConstraint(
            "definition_name", "definition_version", "state", name="uq_dwell_stats_definition_name"
        ),
    )
    op.create_index(
        "ix_cases_dwell", "cases", ["status", "definition_name", "state", "state_entered_at"]
    )
    op.create_index("ix_case_events_type", "case_events", ["event_type", "case_id"])


def downgrade() -> None:
    op.drop_index("ix_case_events_type", table_name="case_events")
    op.drop_index("ix_cases_dwell", table_name="cases")
    op.drop_table("dwell_stats")
    op.drop_index("ix_case_slas_open_due", table_name="case_slas")
    op.drop_index("ix_case_slas_status_warn", table_name="case_slas")
    op.drop_index("ix_case_slas_status_due", table_name="case_slas")
    op.drop_table("case_slas")
