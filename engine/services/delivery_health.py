"""Is every promise on its way? What the database knows about timer delivery, for readiness
checks, metrics and operators: the oldest armed timer that should have been delivered by
now, when the sweeper last ran, and which workers are alive.

The database decides, not Redis: an armed timer whose expected delivery (``deliver_at``) is
more than the tolerance behind is overdue whatever Redis says about its job, and the
sweeper hands it over again (engine/runtime/delivery.py). Workers write their heartbeat here
as well as in Redis, so the view holds while Redis is away.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from engine.store import leases
from engine.store.database import affected_rows
from engine.store.models import Timer, TimerStatus, WorkerHeartbeat

TOLERANCE = timedelta(seconds=10)  # how late a delivery may be before the sweeper steps in
SWEEP_INTERVAL = timedelta(seconds=5)  # how often each worker tries to sweep
SWEEP_LEASE = "timer-sweep"
# A sweep or a heartbeat older than this means the duty stopped (a few missed intervals).
STALE_AFTER = 3 * SWEEP_INTERVAL
FORGET_WORKERS_AFTER = timedelta(days=1)

timers = Timer.__table__
beats = WorkerHeartbeat.__table__


@dataclass(frozen=True)
class WorkerSeen:
    name: str
    hostname: str
    pid: int
    started_at: datetime
    seen_at: datetime
    redis_ok: bool
    alive: bool


@dataclass(frozen=True)
class DeliveryReport:
    """What /readyz and /metrics say about timer delivery, as of ``now``."""

    now: datetime
    tolerance: timedelta
    armed: int
    oldest_overdue_id: int | None
    oldest_overdue_since: datetime | None  # its deliver_at
    last_sweep_at: datetime | None
    last_sweep_by: str | None
    last_sweep: dict[str, Any]
    workers: list[WorkerSeen] = field(default_factory=list)

    @property
    def overdue_seconds(self) -> float:
        """How far behind the most overdue armed timer is (0 when none is)."""
        if self.oldest_overdue_since is None:
            return 0.0
        return max(0.0, (self.now - self.oldest_overdue_since).total_seconds())

    @property
    def sweep_age_seconds(self) -> float | None:
        if self.last_sweep_at is None:
            return None
        return (self.now - self.last_sweep_at).total_seconds()

    @property
    def problems(self) -> list[str]:
        """Why delivery is not healthy, in words; empty when it is."""
        out = []
        if self.overdue_seconds > self.tolerance.total_seconds():
            out.append(
                f"timer {self.oldest_overdue_id} is {self.overdue_seconds:.0f} s overdue "
                f"(tolerance {self.tolerance.total_seconds():.0f} s)"
            )
        if not any(w.alive for w in self.workers):
            out.append(f"no worker has reported in the last {STALE_AFTER.total_seconds():.0f} s")
        age = self.sweep_age_seconds
        if age is None or age > STALE_AFTER.total_seconds():
            out.append("the timer sweep has not run" + ("" if age is None else f" for {age:.0f} s"))
        return out


def report(session: Session, *, now: datetime, tolerance: timedelta = TOLERANCE) -> DeliveryReport:
    oldest = session.execute(
        select(timers.c.id, timers.c.deliver_at)
        .where(timers.c.status == TimerStatus.ARMED.value, timers.c.deliver_at < now)
        .order_by(timers.c.deliver_at, timers.c.id)
        .limit(1)
    ).first()
    armed = session.execute(
        select(func.count()).select_from(timers).where(timers.c.status == TimerStatus.ARMED.value)
    ).scalar_one()
    sweep = leases.get(session, SWEEP_LEASE)
    workers = [
        WorkerSeen(
            b.name,
            b.hostname,
            b.pid,
            b.started_at,
            b.seen_at,
            b.redis_ok,
            alive=now - b.seen_at <= STALE_AFTER,
        )
        for b in session.execute(select(WorkerHeartbeat).order_by(WorkerHeartbeat.name)).scalars()
    ]
    return DeliveryReport(
        now=now,
        tolerance=tolerance,
        armed=int(armed),
        oldest_overdue_id=oldest.id if oldest else None,
        oldest_overdue_since=oldest.deliver_at if oldest else None,
        last_sweep_at=sweep.last_run_at if sweep else None,
        last_sweep_by=sweep.last_run_by if sweep else None,
        last_sweep=dict(sweep.last_outcome) if sweep else {},
        workers=workers,
    )


def beat(
    session: Session,
    *,
    name: str,
    hostname: str,
    pid: int,
    started_at: datetime,
    now: datetime,
    redis_ok: bool,
) -> None:
    """Record that a worker is alive (insert or update its row)."""
    updated = session.execute(
        update(beats).where(beats.c.name == name).values(seen_at=now, redis_ok=redis_ok)
    )
    if affected_rows(updated) == 0:
        session.add(
            WorkerHeartbeat(
                name=name,
                hostname=hostname,
                pid=pid,
                started_at=started_at,
                seen_at=now,
                redis_ok=redis_ok,
            )
        )
        session.flush()


def forget(session: Session, name: str) -> None:
    """A worker that stops cleanly takes its heartbeat with it."""
    session.execute(delete(beats).where(beats.c.name == name))


def forget_stale(session: Session, *, now: datetime) -> int:
    """Drop heartbeats of workers gone for a day (killed ones never say goodbye)."""
    gone = session.execute(delete(beats).where(beats.c.seen_at < now - FORGET_WORKERS_AFTER))
    return affected_rows(gone)
