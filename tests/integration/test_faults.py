"""svcflow's promise under real faults: with real worker processes on PostgreSQL and a Redis of
their own, after each single fault every timer fires exactly once, none early, and the last
within 60 s of its due time, with no human action (issue "Promises kept without a human").

Each test arms a few timers falling due in the next seconds, breaks something the way it
breaks in production (FLUSHALL, kill -9, a Redis restart), and reads the outcome from the
database. Time is real: the workers read the system clock; every wait has a deadline.
bench/faults.py runs the same faults with a thousand timers each.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from engine.runtime.housekeeping import LEASE_TTL
from engine.services.delivery_health import SWEEP_INTERVAL
from tests.conftest import DATABASES
from tests.faults import Cluster, FaultReport, cluster

pytestmark = pytest.mark.skipif(
    "postgresql" not in DATABASES, reason="the fault tests run on PostgreSQL"
)


@pytest.fixture
def workers(fresh_postgres_url: str, tmp_path: Path) -> Iterator[Cluster]:
    with cluster(fresh_postgres_url, tmp_path, workers=2) as running:
        yield running
    assert running.processes_left() == []  # a stop leaves no worker or scheduler behind


def _assert_kept(report: FaultReport, run: Cluster) -> None:
    assert report.ok, f"{report.line()}\n{run.logs()}"


def test_flushall_during_delivery(workers: Cluster) -> None:
    dues = workers.arm(20, lead=2, spread=6)
    # Some have fired and the rest sit in Redis as scheduled jobs when it is flushed.
    workers.wait_for(lambda: workers.report("flushall").fired_once >= 3, "the first timers")
    workers.connection.flushall()
    workers.wait_settled(dues)

    _assert_kept(workers.report("flushall"), workers)


def test_kill_9_of_an_idle_worker_holding_the_scheduler_lock(workers: Cluster) -> None:
    dues = workers.arm(10, lead=5, spread=3)  # nothing is due yet when the holder dies
    workers.kill(workers.worker_holding_scheduler_lock())
    workers.wait_settled(dues)

    _assert_kept(workers.report("kill_scheduler_holder"), workers)


def test_kill_9_in_the_middle_of_a_job(workers: Cluster) -> None:
    dues = workers.arm(10, lead=2, spread=3)
    # Hold the first timer's row: the worker that takes its job blocks inside the fire.
    blocker = workers.runtime.engine.connect()
    transaction = blocker.begin()
    blocker.execute(text("SELECT id FROM timers ORDER BY due_at LIMIT 1 FOR UPDATE"))
    busy: list[int] = []

    def a_worker_is_in_a_job() -> bool:
        found = workers.worker_in_a_job()
        busy.extend([found] if found is not None else [])
        return found is not None

    workers.wait_for(a_worker_is_in_a_job, "a worker to start a job")
    workers.kill(busy[0])
    transaction.rollback()
    blocker.close()
    workers.wait_settled(dues)

    _assert_kept(workers.report("kill_mid_job"), workers)


def test_kill_9_of_the_sweeping_worker(workers: Cluster) -> None:
    workers.wait_for(lambda: workers.sweep_lease_holder() is not None, "a first sweep")
    dues = workers.arm(10, lead=3, spread=3)
    dead = workers.worker_holding_sweep_lease()
    doomed = workers.sweep_lease_holder()
    workers.kill(dead)
    # The other worker takes the sweep over once the lease runs out.
    workers.wait_for(
        lambda: workers.sweep_lease_holder() not in (None, doomed),
        "another worker to take the sweep lease",
        timeout=(LEASE_TTL + 3 * SWEEP_INTERVAL).total_seconds(),
    )
    workers.wait_settled(dues)

    _assert_kept(workers.report("kill_sweeper"), workers)


def test_redis_stopped_30_s_and_restarted_empty(workers: Cluster) -> None:
    dues = workers.arm(10, lead=2, spread=20)  # most fall due while Redis is away
    workers.restart_redis_empty(down_for=30)
    workers.wait_settled(dues)

    _assert_kept(workers.report("redis_restart_empty"), workers)
