"""Service contracts, versioned, and the contract each case was created under.

Revision ID: 0017_contracts
Revises: 0016_case_labels
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0017_contracts"
down_revision = "0016_case_labels"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contracts",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=False),
        sa.Column("title_zh", sa.String(length=200), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("document", JSON, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("loaded_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contracts")),
        sa.UniqueConstraint("name", "version", name="uq_contracts_name_version"),
    )
    op.create_index("ix_contracts_name_fingerprint", "contracts", ["name", "fingerprint"])
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("contract_name", sa.String(length=63), nullable=True))
        batch.add_column(sa.Column("contract_version", sa.Integer(), nullable=True))
        batch.create_index("ix_cases_contract", ["contract_name", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_contract")
        batch.drop_column("contract_version")
        batch.drop_column("contract_name")
    op.drop_index("ix_contracts_name_fingerprint", table_name="contracts")
    op.drop_table("contracts")
