"""Every row of every table, to show that something wrote nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.store.models import Base


def every_row(sessions: sessionmaker[Session], *, leave_out: frozenset[str] = frozenset()) -> Any:
    """Each table's rows in primary-key order, by table name (``leave_out``: tables the caller
    expects to change for reasons of its own, such as a token's last use)."""
    with sessions() as session, session.begin():
        return {
            table.name: [
                tuple(row)
                for row in session.execute(select(table).order_by(*table.primary_key.columns)).all()
            ]
            for table in Base.metadata.sorted_tables
            if table.name not in leave_out
        }
