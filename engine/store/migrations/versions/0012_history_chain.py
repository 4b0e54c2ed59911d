"""Tamper-evident history: every case event carries a hash chaining it to the case's previous
event, each case row the hash of its latest event, and anchors publish digests over them.

Existing histories are chained here, in seq order, with the same function the engine writes
them with (engine/core/history_chain.py, whose canonical form is versioned), so a database
migrated from before this revision verifies like one that always had it.

Revision ID: 0012_history_chain
Revises: 0011_versions
Create Date: 2026-12-06
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from engine.core.history_chain import GENESIS, ChainedEvent, event_hash

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
CASES_PER_BATCH = 500

revision = "0012_history_chain"
down_revision = "0011_versions"
branch_labels = None
depends_on = None

events = sa.table(
    "case_events",
    sa.column("id", ID),
    sa.column("case_id", ID),
    sa.column("seq", sa.Integer()),
    sa.column("event_type", sa.String()),
    sa.column("trigger", sa.String()),
    sa.column("from_state", sa.String()),
    sa.column("to_state", sa.String()),
    sa.column("actor", sa.String()),
    sa.column("payload", JSON),
    sa.column("changes", JSON),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("idempotency_key", sa.String()),
    sa.column("context", JSON),
    sa.column("hash", sa.String()),
)
cases = sa.table("cases", sa.column("id", ID), sa.column("history_head", sa.String()))


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _chain(conn: sa.Connection, case_ids: list[int]) -> None:
    rows = conn.execute(
        sa.select(events)
        .where(events.c.case_id.in_(case_ids))
        .order_by(events.c.case_id, events.c.seq)
    ).all()
    event_hashes: list[dict[str, Any]] = []
    heads: dict[int, str] = {}
    for row in rows:
        chained = ChainedEvent(
            case_id=row.case_id,
            seq=row.seq,
            event_type=row.event_type,
            trigger=row.trigger,
            from_state=row.from_state,
            to_state=row.to_state,
            actor=row.actor,
            payload=row.payload,
            changes=row.changes,
            at=_aware(row.at),
            idempotency_key=row.idempotency_key,
            context=row.context or None,
        )
        heads[row.case_id] = event_hash(chained, heads.get(row.case_id, GENESIS))
        event_hashes.append({"event_id": row.id, "event_hash": heads[row.case_id]})
    if event_hashes:
        conn.execute(
            events.update()
            .where(events.c.id == sa.bindparam("event_id"))
            .values(hash=sa.bindparam("event_hash")),
            event_hashes,
        )
    conn.execute(
        cases.update()
        .where(cases.c.id == sa.bindparam("case_key"))
        .values(history_head=sa.bindparam("head")),
        [{"case_key": case_id, "head": heads.get(case_id, "")} for case_id in case_ids],
    )


def upgrade() -> None:
    with op.batch_alter_table("case_events") as batch:
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("history_head", sa.String(length=64), nullable=True))

    conn = op.get_bind()
    after = 0
    while True:
        case_ids = list(
            conn.execute(
                sa.select(cases.c.id)
                .where(cases.c.id > after)
                .order_by(cases.c.id)
                .limit(CASES_PER_BATCH)
            ).scalars()
        )
        if not case_ids:
            break
        _chain(conn, case_ids)
        after = case_ids[-1]

    with op.batch_alter_table("case_events") as batch:
        batch.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
    with op.batch_alter_table("cases") as batch:
        batch.alter_column("history_head", existing_type=sa.String(length=64), nullable=False)

    op.create_table(
        "history_anchors",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("anchored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("anchored_by", sa.String(length=200), nullable=False),
        sa.Column("through_event_id", sa.BigInteger(), nullable=False),
        sa.Column("cases", sa.BigInteger(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("heads_digest", sa.String(length=64), nullable=False),
        sa.Column("previous_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_anchors")),
    )


def downgrade() -> None:
    op.drop_table("history_anchors")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("history_head")
    with op.batch_alter_table("case_events") as batch:
        batch.drop_column("hash")
