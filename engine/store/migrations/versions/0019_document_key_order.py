"""Definition and contract documents keep their keys in the order written, on PostgreSQL too.

``jsonb`` stores an object's keys sorted by length, then bytes; the written order is lost.
A document's order carries meaning: the values a field's labels list (``fields:``) are its
choices in that order, and a form shows fields in the order they are declared. So the
documents move to ``json``, which keeps the text as given. SQLite stores JSON as text and
already kept it. Documents stored before keep the order ``jsonb`` gave them.

Revision ID: 0019_document_key_order
Revises: 0018_zhtext_timer_failure
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0019_document_key_order"
down_revision = "0018_zhtext_timer_failure"
branch_labels = None
depends_on = None

TABLES = ("definition_versions", "contracts")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.alter_column(
            table,
            "document",
            type_=sa.JSON(),
            existing_type=postgresql.JSONB(),
            existing_nullable=False,
            postgresql_using="document::json",
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.alter_column(
            table,
            "document",
            type_=postgresql.JSONB(),
            existing_type=sa.JSON(),
            existing_nullable=False,
            postgresql_using="document::jsonb",
        )
