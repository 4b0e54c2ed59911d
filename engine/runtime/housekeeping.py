"""The periodic duties every worker process shares, so that none depends on one process
staying alive: a heartbeat in the database, the timer sweep (one worker at a time, through
a lease), the hourly dwell statistics for the `dwelling` rule, the hourly anchor of the
case history (docs/audit.md), and on SQLite the hourly statistics of its query planner.

A worker runs :meth:`Housekeeper.run_once` every ``SWEEP_INTERVAL`` in a thread of its own
(workers/worker.py). Whoever holds the sweep lease sweeps; if it dies, its lease expires
after :data:`LEASE_TTL` and another worker takes over. Outages are logged once when they
start and once when they end, not at every attempt, and never stop the loop: the next run
simply tries again.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from engine.runtime import delivery
from engine.runtime.resources import Runtime
from engine.services import audit, delivery_health, inspection
from engine.store import leases, migrate

log = logging.getLogger(__name__)

LEASE_TTL = 3 * delivery_health.SWEEP_INTERVAL  # a holder that misses three runs loses it
DWELL_LEASE = "dwell-stats"
DWELL_EVERY = timedelta(hours=1)  # dwell percentiles move slowly
ANCHOR_LEASE = "history-anchor"
ANCHOR_EVERY = timedelta(hours=1)  # how much history a rewrite could hide before it is fixed
PLANNER_LEASE = "planner-statistics"
PLANNER_EVERY = timedelta(hours=1)
T = TypeVar("T")


@dataclass
class Housekeeper:
    runtime: Runtime
    name: str  # the worker's (RQ's) name
    hostname: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started_at: datetime | None = None
    _failing: dict[str, datetime] = field(default_factory=dict)  # what is down, since when

    def run_once(self) -> None:
        """One round of duties; never raises for an outage (it is logged and retried)."""
        now = self.runtime.clock.now()
        if self.started_at is None:
            self.started_at = now
        redis_ok = self._guard("redis", now, lambda: bool(self.runtime.redis.ping()))
        self._guard("heartbeat", now, lambda: self._beat(now, bool(redis_ok)))
        if redis_ok:  # a sweep needs both: it hands timers over to Redis
            self._guard("sweep", now, lambda: self._sweep(now))
        self._guard("dwell statistics", now, lambda: self._dwell(now))
        self._guard("history anchor", now, lambda: self._anchor(now))
        self._guard("planner statistics", now, lambda: self._planner(now))

    def stop(self) -> None:
        """A clean shutdown: give the lease to the next worker now, and say goodbye."""
        try:
            with self.runtime.sessions() as session, session.begin():
                leases.release(session, delivery_health.SWEEP_LEASE, self.name)
                delivery_health.forget(session, self.name)
        except (SQLAlchemyError, RedisError) as exc:
            log.warning("housekeeping: could not release the sweep lease (%s)", exc)

    # --- duties -------------------------------------------------------------------------------

    def _beat(self, now: datetime, redis_ok: bool) -> None:
        assert self.started_at is not None
        with self.runtime.sessions() as session, session.begin():
            delivery_health.beat(
                session,
                name=self.name,
                hostname=self.hostname,
                pid=self.pid,
                started_at=self.started_at,
                now=now,
                redis_ok=redis_ok,
            )

    def _sweep(self, now: datetime) -> None:
        with self.runtime.sessions() as session, session.begin():
            held = leases.take(
                session, delivery_health.SWEEP_LEASE, self.name, now=now, ttl=LEASE_TTL
            )
        if not held:
            return
        outcome = delivery.sweep(self.runtime.sessions, self.runtime.queue, now=now)
        with self.runtime.sessions() as session, session.begin():
            leases.record_run(
                session,
                delivery_health.SWEEP_LEASE,
                self.name,
                now=self.runtime.clock.now(),
                outcome=outcome.to_dict(),
            )
            delivery_health.forget_stale(session, now=now)

    def _dwell(self, now: datetime) -> None:
        with self.runtime.sessions() as session, session.begin():
            last = leases.get(session, DWELL_LEASE)
            if last is not None and last.last_run_at and now - last.last_run_at < DWELL_EVERY:
                return
            if not leases.take(session, DWELL_LEASE, self.name, now=now, ttl=DWELL_EVERY):
                return
            rows = inspection.refresh_dwell_stats(session, now=now)
            leases.record_run(session, DWELL_LEASE, self.name, now=now, outcome={"rows": rows})

    def _anchor(self, now: datetime) -> None:
        with self.runtime.sessions() as session, session.begin():
            last = leases.get(session, ANCHOR_LEASE)
            if last is not None and last.last_run_at and now - last.last_run_at < ANCHOR_EVERY:
                return
            if not leases.take(session, ANCHOR_LEASE, self.name, now=now, ttl=ANCHOR_EVERY):
                return
        # The point is fixed under a short lock and committed; the digest is taken after it.
        with self.runtime.sessions() as session, session.begin():
            through = audit.anchor_point(session)
        with self.runtime.sessions() as session, session.begin():
            anchor = audit.take_anchor(
                session, through_event_id=through, now=now, actor=f"worker:{self.name}"
            )
            leases.record_run(
                session, ANCHOR_LEASE, self.name, now=now, outcome=audit.published(anchor)
            )

    def _planner(self, now: datetime) -> None:
        if self.runtime.engine.dialect.name != "sqlite":
            return  # PostgreSQL's autovacuum analyses tables as they change
        with self.runtime.sessions() as session, session.begin():
            last = leases.get(session, PLANNER_LEASE)
            if last is not None and last.last_run_at and now - last.last_run_at < PLANNER_EVERY:
                return
            if not leases.take(session, PLANNER_LEASE, self.name, now=now, ttl=PLANNER_EVERY):
                return
            leases.record_run(session, PLANNER_LEASE, self.name, now=now, outcome={})
        migrate.refresh_statistics(self.runtime.engine)

    # --- outages, logged once -----------------------------------------------------------------

    def _guard(self, duty: str, now: datetime, run: Callable[[], T]) -> T | None:
        try:
            result = run()
        except (SQLAlchemyError, RedisError, OSError) as exc:
            if duty not in self._failing:
                self._failing[duty] = now
                log.warning(
                    "housekeeping: %s failed (%s: %s); retrying", duty, type(exc).__name__, exc
                )
            return None
        since = self._failing.pop(duty, None)
        if since is not None:
            log.warning(
                "housekeeping: %s works again after %.0f s", duty, (now - since).total_seconds()
            )
        return result
