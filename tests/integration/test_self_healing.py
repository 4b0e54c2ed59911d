"""The pieces of self-healing delivery, on SQLite and PostgreSQL with injected time: leases
that pass to another worker when their holder stops renewing them, overdue timers claimed by
the database's account (never early, at most once per tolerance), and the housekeeping round
each worker runs (heartbeat, sweep under the lease, outages logged once).

The same behaviour with real worker processes and real faults is in test_faults.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime.clock import ManualClock
from engine.runtime.embedded_redis import free_port
from engine.runtime.housekeeping import ANCHOR_EVERY, LEASE_TTL, Housekeeper
from engine.runtime.resources import Runtime
from engine.services import audit, delivery_health, timer_firing
from engine.services.definitions import publish
from engine.store import leases
from engine.store.models import Timer
from tests.conftest import T0
from tests.factories import create_case

SECOND = timedelta(seconds=1)
TOLERANCE = delivery_health.TOLERANCE
ONE_TIMER = """\
name: one_timer
title: {en: One timer, zh: 一个定时器}
initial: waiting
states:
  - name: waiting
    title: {en: Waiting, zh: 等待}
    timers:
      - {name: nudge, after: 1h, trigger: nudge}
  - name: nudged
    title: {en: Nudged, zh: 已提醒}
    final: true
transitions:
  - {trigger: nudge, source: waiting, dest: nudged}
"""
DUE = T0 + timedelta(hours=1)


@pytest.fixture
def timer_id(sessions: sessionmaker[Session]) -> int:
    """An armed timer due at ``DUE`` (an hour after its case was created at T0)."""
    with sessions() as session, session.begin():
        publish(session, ONE_TIMER, actor="test", now=T0)
    case_id = create_case(sessions, "one_timer", now=T0).case.id
    with sessions() as session:
        found: int = session.execute(select(Timer.id).where(Timer.case_id == case_id)).scalar_one()
    return found


def _claim(sessions: sessionmaker[Session], at: timedelta) -> list[int]:
    with sessions() as session, session.begin():
        return [
            t.id for t in timer_firing.claim_overdue(session, now=DUE + at, tolerance=TOLERANCE)
        ]


# --- leases ------------------------------------------------------------------------------------


def test_a_lease_is_one_holder_s_until_it_expires_then_anyone_s(
    sessions: sessionmaker[Session],
) -> None:
    ttl = timedelta(seconds=15)

    def take(holder: str, at: timedelta) -> bool:
        with sessions() as session, session.begin():
            return leases.take(session, "duty", holder, now=T0 + at, ttl=ttl)

    assert take("a", timedelta(0))
    assert not take("b", 5 * SECOND)  # a holds it
    assert take("a", 10 * SECOND)  # a renews: now until 25 s
    assert not take("b", 24 * SECOND)
    assert take("b", 26 * SECOND)  # a stopped renewing: b takes over
    assert not take("a", 27 * SECOND)
    with sessions() as session, session.begin():
        leases.release(session, "duty", "b")  # a clean shutdown hands it on at once
    assert take("a", 28 * SECOND)


# --- overdue by the database's account ---------------------------------------------------------


def test_a_timer_is_claimed_only_once_overdue_beyond_the_tolerance_and_never_early(
    sessions: sessionmaker[Session], timer_id: int
) -> None:
    assert _claim(sessions, -timedelta(minutes=30)) == []  # not due: never early
    assert _claim(sessions, TOLERANCE - SECOND) == []  # late, but within the tolerance
    assert _claim(sessions, TOLERANCE + SECOND) == [timer_id]
    with sessions() as session:
        claimed = session.get_one(Timer, timer_id)
        assert claimed.deliver_at == DUE + TOLERANCE + SECOND and claimed.due_at == DUE
    # Handed over again just now: not again before another tolerance has passed.
    assert _claim(sessions, TOLERANCE + 5 * SECOND) == []
    assert _claim(sessions, 2 * TOLERANCE + 2 * SECOND) == [timer_id]


def test_a_timer_waiting_for_its_retry_is_claimed_only_once_the_retry_is_late(
    sessions: sessionmaker[Session], timer_id: int
) -> None:
    with sessions() as session, session.begin():
        retry = timer_firing.record_failure(session, timer_id, RuntimeError("db blip"), now=DUE)
    assert retry is not None
    backoff = retry.due_at - DUE  # the first retry's wait

    assert _claim(sessions, backoff + TOLERANCE - SECOND) == []
    assert _claim(sessions, backoff + TOLERANCE + SECOND) == [timer_id]


def test_a_fired_timer_is_never_claimed(sessions: sessionmaker[Session], timer_id: int) -> None:
    with sessions() as session, session.begin():
        timer_firing.fire_due_timer(session, timer_id, now=DUE)

    assert _claim(sessions, timedelta(hours=1)) == []


# --- the housekeeping round --------------------------------------------------------------------


@pytest.fixture
def runtime(db_url: str, redis_url: str) -> Iterator[Runtime]:
    rt = Runtime(database_url=db_url, redis_url=redis_url, clock=ManualClock(DUE))
    yield rt
    rt.close()


def _sweep_record(rt: Runtime) -> tuple[str | None, object]:
    with rt.sessions() as session:
        lease = leases.get(session, delivery_health.SWEEP_LEASE)
        return (lease.last_run_by, lease.last_run_at) if lease else (None, None)


def test_one_worker_sweeps_at_a_time_and_another_takes_over_when_it_stops(
    runtime: Runtime, timer_id: int
) -> None:
    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    first, second = Housekeeper(runtime, "worker-1"), Housekeeper(runtime, "worker-2")

    first.run_once()
    second.run_once()  # the lease is first's: second only reports in
    assert _sweep_record(runtime) == ("worker-1", DUE)

    # worker-1 dies (it runs no more rounds); its lease runs out and worker-2 sweeps.
    clock.advance(LEASE_TTL - SECOND)
    second.run_once()
    assert _sweep_record(runtime) == ("worker-1", DUE)
    clock.advance(2 * SECOND)
    second.run_once()
    assert _sweep_record(runtime) == ("worker-2", DUE + LEASE_TTL + SECOND)

    with runtime.sessions() as session:
        report = delivery_health.report(session, now=clock.now())
    # The timer, due at DUE and never fired (no worker runs here), was handed over again.
    assert report.last_sweep == {"redelivered": 1, "handed_over": 0}
    alive = {w.name: w.alive for w in report.workers}
    assert alive == {"worker-1": False, "worker-2": True}
    with runtime.sessions() as session:
        assert session.get_one(Timer, timer_id).deliver_at == DUE + LEASE_TTL + SECOND


def test_an_outage_is_logged_when_it_starts_and_when_it_ends_not_at_every_round(
    db_url: str, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(DUE)
    runtime = Runtime(
        database_url=db_url, redis_url=f"redis://127.0.0.1:{free_port()}/0", clock=clock
    )
    keeper = Housekeeper(runtime, "worker-1")
    with caplog.at_level(logging.WARNING, logger="engine.runtime.housekeeping"):
        for _ in range(3):
            keeper.run_once()
            clock.advance(5 * SECOND)
        # Redis comes back (the same runtime, now reaching a live server).
        runtime.redis.close()
        runtime.__dict__.pop("redis")
        runtime.__dict__.pop("queue", None)
        runtime.redis_url = redis_url
        keeper.run_once()
        keeper.run_once()
    messages = [r.getMessage() for r in caplog.records]

    assert len([m for m in messages if "redis failed" in m]) == 1
    assert [m for m in messages if "works again" in m] == [
        "housekeeping: redis works again after 15 s"
    ]
    with runtime.sessions() as session:
        (worker,) = delivery_health.report(session, now=clock.now()).workers
    assert worker.redis_ok is True
    runtime.close()


def test_workers_anchor_the_history_hourly_one_at_a_time(runtime: Runtime, timer_id: int) -> None:
    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    first, second = Housekeeper(runtime, "worker-1"), Housekeeper(runtime, "worker-2")

    first.run_once()
    second.run_once()
    clock.advance(ANCHOR_EVERY - SECOND)
    second.run_once()  # not yet an hour since the anchor
    with runtime.sessions() as session:
        assert [(a.anchored_by, a.events) for a in audit.list_anchors(session)] == [
            ("worker:worker-1", 1)
        ]

    clock.advance(2 * SECOND)
    second.run_once()
    with runtime.sessions() as session:
        taken = audit.list_anchors(session)
        assert [a.anchored_by for a in taken] == ["worker:worker-2", "worker:worker-1"]
        assert taken[0].previous_hash == taken[1].hash
        assert audit.verify(session).intact
