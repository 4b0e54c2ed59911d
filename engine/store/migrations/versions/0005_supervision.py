"""Supervision: the SLA clock and parent-wait projections, dwell statistics, indexes for
dwelling cases and failed timers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

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
    op.create_table(
        "case_waits",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("case_id", ID, nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("child_id", ID, nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=True),
        sa.Column("detail", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_waits_case_id_cases"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_waits")),
    )
    op.create_index("ix_case_waits_reason_since", "case_waits", ["reason", "since"])
    _backfill_case_waits()
    op.create_index("ix_case_waits_case_id", "case_waits", ["case_id"])
    op.create_index(
        "ix_timers_failed",
        "timers",
        ["updated_at", "case_id", "id"],
        postgresql_where=sa.text("status = 'failed'"),
        sqlite_where=sa.text("status = 'failed'"),
    )


def _backfill_case_waits() -> None:
    """What open parents wait on in the existing history, as engine/services/links.py keeps
    it from now on: child news not followed by a state entry, children cancelled since the
    parent entered its state."""
    postgres = op.get_bind().dialect.name == "postgresql"
    child_id = (
        "CAST(e.payload ->> 'child_id' AS BIGINT)"
        if postgres
        else ("json_extract(e.payload, '$.child_id')")
    )
    op.execute(
        sa.text(
            f"""
INSERT INTO case_waits (case_id, reason, child_id, since, event_seq, detail)
SELECT e.case_id, 'orphaned_wait', {child_id}, e.at, e.seq, e.payload
FROM case_events AS e JOIN cases AS p ON p.id = e.case_id
WHERE e.event_type = 'child_update' AND p.status = 'open'
  AND NOT EXISTS (
    SELECT 1 FROM case_events AS l
    WHERE l.case_id = e.case_id AND l.seq > e.seq
      AND (l.event_type = 'forced'
           OR (l.event_type = 'transition' AND l.from_state <> l.to_state)))
"""
        )
    )
    op.execute(
        sa.text(
            """
INSERT INTO case_waits (case_id, reason, child_id, since, event_seq, detail)
SELECT c.parent_id, 'waiting_on_cancelled', c.id, c.updated_at, NULL, e.payload
FROM cases AS c
JOIN cases AS p ON p.id = c.parent_id
JOIN case_events AS e ON e.case_id = c.id AND e.event_type = 'cancelled'
WHERE c.status = 'cancelled' AND p.status = 'open' AND p.state_entered_at <= c.updated_at
"""
        )
    )


def downgrade() -> None:
    op.drop_index("ix_timers_failed", table_name="timers")
    op.drop_index("ix_case_waits_case_id", table_name="case_waits")
    op.drop_index("ix_case_waits_reason_since", table_name="case_waits")
    op.drop_table("case_waits")
    op.drop_index("ix_case_events_type", table_name="case_events")
    op.drop_index("ix_cases_dwell", table_name="cases")
    op.drop_table("dwell_stats")
    op.drop_index("ix_case_slas_open_due", table_name="case_slas")
    op.drop_index("ix_case_slas_status_warn", table_name="case_slas")
    op.drop_index("ix_case_slas_status_due", table_name="case_slas")
    op.drop_table("case_slas")
