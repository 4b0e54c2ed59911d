"""SLA rounds: a clock with ``rounds: repeat`` keeps one row per round (a second
rectification, a re-dispatch), so a case may have several rows of one SLA.

Existing rows are round 1, which is what every clock was before rounds.

Revision ID: 0010_sla_rounds
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_sla_rounds"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case_slas") as batch:
        batch.add_column(sa.Column("round", sa.Integer(), nullable=False, server_default="1"))
        batch.drop_constraint("uq_case_slas_case_id_sla", type_="unique")
        batch.create_unique_constraint(
            "uq_case_slas_case_id_sla_round", ["case_id", "sla", "round"]
        )


def downgrade() -> None:
    # Before rounds a clock ran once: its first round is what that version folds from the
    # history, so the later rounds' rows go (they are a projection of the history, which
    # keeps every event of them).
    op.execute("DELETE FROM case_slas WHERE round > 1")
    with op.batch_alter_table("case_slas") as batch:
        batch.drop_constraint("uq_case_slas_case_id_sla_round", type_="unique")
        batch.create_unique_constraint("uq_case_slas_case_id_sla", ["case_id", "sla"])
        batch.drop_column("round")
