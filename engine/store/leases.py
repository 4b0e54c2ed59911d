"""Leases on periodic duties: one process at a time performs a duty (the timer sweep), any
process may take it over when its holder stops renewing it.

Taking a lease is one guarded UPDATE (free, expired, or already ours), so of two processes
racing for it exactly one wins, on PostgreSQL (the row lock orders them and the second
re-checks the condition) and on SQLite (writers are serialised). A holder that dies simply
stops renewing: its lease expires and the next contender takes it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.store.database import affected_rows
from engine.store.models import Lease

leases = Lease.__table__


def take(session: Session, name: str, holder: str, *, now: datetime, ttl: timedelta) -> bool:
    """Take or renew lease ``name`` for ``holder`` until ``now + ttl``; False when another
    holder's lease is still running."""
    _ensure(session, name)
    taken = session.execute(
        update(leases)
        .where(
            leases.c.name == name,
            or_(
                leases.c.holder.is_(None),
                leases.c.holder == holder,
                leases.c.expires_at < now,
            ),
        )
        .values(holder=holder, expires_at=now + ttl)
    )
    return affected_rows(taken) == 1


def release(session: Session, name: str, holder: str) -> None:
    """Give the lease up at once (a clean shutdown), if ``holder`` still has it."""
    session.execute(
        update(leases)
        .where(leases.c.name == name, leases.c.holder == holder)
        .values(holder=None, expires_at=None)
    )


def record_run(
    session: Session, name: str, holder: str, *, now: datetime, outcome: dict[str, Any]
) -> None:
    session.execute(
        update(leases)
        .where(leases.c.name == name)
        .values(last_run_at=now, last_run_by=holder, last_outcome=outcome)
    )


def get(session: Session, name: str) -> Lease | None:
    return session.execute(select(Lease).where(Lease.name == name)).scalar_one_or_none()


def _ensure(session: Session, name: str) -> None:
    if session.execute(select(leases.c.name).where(leases.c.name == name)).first():
        return
    try:
        with session.begin_nested():
            session.execute(insert(leases).values(name=name, last_outcome={}))
    except IntegrityError:
        pass  # another process created it first: the UPDATE decides
