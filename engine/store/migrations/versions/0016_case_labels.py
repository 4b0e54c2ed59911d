"""The case row keeps what supervisors see of it (customer, team, priority, assignee), so the
workbench filters, sorts and exports open cases by them without reading their data; and a
business key is found whatever its workflow (the dashboard's search box).

Existing cases are filled in from their data, by the fields their definition version names
(versions published before the ``supervision`` section existed name only the assignee).

Revision ID: 0016_case_labels
Revises: 0015_webhooks
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0016_case_labels"
down_revision = "0015_webhooks"
branch_labels = None
depends_on = None

LABELS = ("customer", "team", "priority", "assignee")


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        for label in LABELS:
            batch.add_column(sa.Column(label, sa.String(200), nullable=True))
    for label in ("team", "customer", "assignee"):
        op.create_index(f"ix_cases_status_{label}", "cases", ["status", label])
    # The search box finds a case by business key whatever its workflow.
    op.create_index("ix_cases_business_key", "cases", ["business_key"])
    _fill_in()


def _fill_in() -> None:
    """Copy each case's labels from its data. A frozen copy of engine/core/supervision.py's
    reading, so that later changes to it do not change what this revision did."""
    bind = op.get_bind()
    versions = sa.table(
        "definition_versions", sa.column("name"), sa.column("version"), sa.column("document")
    )
    cases = sa.table(
        "cases",
        sa.column("id"),
        sa.column("definition_name"),
        sa.column("definition_version"),
        sa.column("data", sa.JSON),
        *(sa.column(label) for label in LABELS),
    )
    for name, version, stored in bind.execute(sa.select(versions)).all():
        document = stored if isinstance(stored, dict) else {}
        section = document.get("supervision") or {}
        named = {label: section.get(label) for label in ("customer", "team", "priority")}
        named["assignee"] = document.get("assignee")
        paths = {label: str(path) for label, path in named.items() if path}
        if not paths:
            continue
        rows = bind.execute(
            sa.select(cases.c.id, cases.c.data).where(
                cases.c.definition_name == name, cases.c.definition_version == version
            )
        ).all()
        for case_id, data in rows:
            values = {label: _label(data, path) for label, path in paths.items()}
            bind.execute(sa.update(cases).where(cases.c.id == case_id).values(**values))


def _label(data: Any, path: str) -> str | None:
    value = data
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None or isinstance(value, dict | list):
        return None
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return text[:200] or None


def downgrade() -> None:
    op.drop_index("ix_cases_business_key", table_name="cases")
    for label in ("team", "customer", "assignee"):
        op.drop_index(f"ix_cases_status_{label}", table_name="cases")
    with op.batch_alter_table("cases") as batch:
        for label in LABELS:
            batch.drop_column(label)
