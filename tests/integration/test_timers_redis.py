"""Timer delivery through a real Redis and real RQ worker processes.

Workers are started as the Procfile starts them (``rq worker --with-scheduler --worker-class
workers.worker.Worker --url URL svcflow``). A worker reads the system clock, so the timers
here are armed already due (their case was created two hours "ago"): nothing waits for time to
pass. The only waiting is for the worker processes to finish, polled with a deadline.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue, Worker
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime import delivery
from engine.runtime.clock import ManualClock
from engine.runtime.delivery import SweepOutcome
from engine.runtime.embedded_redis import free_port
from engine.runtime.resources import QUEUE_NAME, Runtime
from engine.services import cases, timer_firing
from engine.services.definitions import publish
from engine.services.scheduling import DueTimer
from engine.store.database import create_db_engine, session_factory
from engine.store.models import Timer
from tests.conftest import ADMIN, DATABASES, ROOT
from workers import jobs

RQ = str(Path(sys.executable).with_name("rq"))
WAIT = 60.0  # seconds a worker process may take to start and drain the queue
HOUR = timedelta(hours=1)

# The timer's trigger is a self-loop that counts: a second fire of one timer would show as a
# second transition and nudges == 2, instead of being refused by the state machine.
RESERVATION = """\
name: trd_reservation
title: {en: Reservation, zh: 预留}
initial: reserved
data_schema:
  type: object
  properties:
    nudges: {type: integer, minimum: 0}
states:
  - name: reserved
    title: {en: Reserved, zh: 已预留}
    timers:
      - {name: nudge, after: 1h, trigger: nudge}
      - {name: reminder, after: 3h, trigger: remind}
  - name: reminded
    title: {en: Reminded, zh: 已提醒}
  - name: released
    title: {en: Released, zh: 已释放}
    final: true
transitions:
  - trigger: nudge
    source: reserved
    dest: reserved
    actions:
      - increment: nudges
  - trigger: remind
    source: reserved
    dest: reminded
  - trigger: release
    source: [reserved, reminded]
    dest: released
"""

needs_postgres = pytest.mark.skipif(
    "postgresql" not in DATABASES, reason="worker tests run on PostgreSQL"
)


@dataclass
class Fixture:
    url: str
    engine: Engine
    sessions: sessionmaker[Session]


def _database(url: str) -> Iterator[Fixture]:
    engine = create_db_engine(url)
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        publish(session, RESERVATION, actor="test", now=datetime(2025, 1, 1, tzinfo=UTC))
    yield Fixture(url, engine, sessions)
    engine.dispose()


@pytest.fixture
def db(db_url: str) -> Iterator[Fixture]:
    """SQLite and PostgreSQL, with the test definition published."""
    yield from _database(db_url)


@pytest.fixture
def pg(fresh_postgres_url: str) -> Iterator[Fixture]:
    """PostgreSQL only: several worker processes on one database, and row locks."""
    if "postgresql" not in DATABASES:
        pytest.skip("worker tests run on PostgreSQL")
    yield from _database(fresh_postgres_url)


@contextmanager
def _installed(rt: Runtime) -> Iterator[Runtime]:
    """Use ``rt`` as this process's runtime (as a worker or web process would), then undo."""
    before = jobs.install(rt)
    try:
        yield rt
    finally:
        jobs.install(before)
        rt.close()


@pytest.fixture
def queue(redis_url: str) -> Iterator[Queue]:
    connection = Redis.from_url(redis_url)
    yield Queue(QUEUE_NAME, connection=connection)
    connection.close()


class Workers:
    """``rq worker`` processes started as the Procfile starts them; stopped at the end."""

    def __init__(self, db_url: str, redis_url: str, logs: Path) -> None:
        self.env = {**os.environ, "SVCFLOW_DATABASE_URL": db_url, "SVCFLOW_REDIS_URL": redis_url}
        self.redis_url = redis_url
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *, burst: bool = False) -> subprocess.Popen[bytes]:
        args = [
            RQ,
            "worker",
            "--with-scheduler",
            "--worker-class",
            "workers.worker.Worker",
            "--url",
            self.redis_url,
            *(["--burst"] if burst else []),
            QUEUE_NAME,
        ]
        log = (self.logs / f"worker-{len(self.started)}.log").open("wb")
        process = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.started.append(process)
        return process

    def wait_for_exit(self, *processes: subprocess.Popen[bytes]) -> None:
        for process in processes:
            process.wait(timeout=WAIT)
            assert process.returncode == 0, self.output()

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # warm shutdown: finish the current job
        for process in self.started:
            try:
                process.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def workers(pg: Fixture, redis_url: str, tmp_path: Path) -> Iterator[Workers]:
    group = Workers(pg.url, redis_url, tmp_path)
    yield group
    group.stop()


def _wait_until(condition: Callable[[], bool], what: str, on_timeout: Callable[[], str]) -> None:
    """Poll a separate process's progress, bounded by a deadline (no time is being skipped)."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{on_timeout()}")
        time.sleep(0.05)


def _reserve(sessions: sessionmaker[Session], count: int, *, now: datetime) -> list[DueTimer]:
    """Cases whose one-hour nudge timer is due at ``now`` + 1h; its deliveries."""
    due = []
    with sessions() as session, session.begin():
        for _ in range(count):
            case = cases.create_case(session, "trd_reservation", {}, actor=ADMIN, now=now).case
            (nudge,) = [t for t in timer_firing.case_timers(session, case.id) if t.name == "nudge"]
            due.append(DueTimer(nudge.id, nudge.due_at, nudge.attempts))
    return due


def _two_hours_ago() -> datetime:
    return datetime.now(UTC) - 2 * HOUR


@dataclass(frozen=True)
class Outcome:
    status: str
    attempts: int
    nudges: int  # 'nudge' transitions in the case history
    counted: int  # the case's data.nudges
    actors: tuple[str, ...]


def _outcomes(sessions: sessionmaker[Session], due: list[DueTimer]) -> list[Outcome]:
    out = []
    with sessions() as session, session.begin():
        for item in due:
            timer = session.get_one(Timer, item.id)
            events = [e for e in cases.history(session, timer.case_id) if e.trigger == "nudge"]
            counted = cases.get_case(session, timer.case_id).data.get("nudges", 0)
            out.append(
                Outcome(
                    timer.status,
                    timer.attempts,
                    len(events),
                    counted,
                    tuple(e.actor for e in events),
                )
            )
    return out


def _armed_count(sessions: sessionmaker[Session], due: list[DueTimer]) -> int:
    with sessions() as session, session.begin():
        return session.execute(
            select(func.count())
            .select_from(Timer)
            .where(Timer.status == "armed", Timer.id.in_([d.id for d in due]))
        ).scalar_one()


FIRED_ONCE = Outcome("fired", 1, 1, 1, ("timer",))
NOTHING = SweepOutcome(redelivered=0, handed_over=0)


def _sweep(rt: Runtime, **options: int) -> SweepOutcome:
    """One sweep, as a worker holding the sweep lease runs it, on ``rt``'s clock."""
    return delivery.sweep(rt.sessions, rt.queue, now=rt.clock.now(), **options)


# --- the after-commit hand-over ----------------------------------------------------------------


def test_timers_reach_redis_only_after_commit_and_never_after_rollback(
    db: Fixture, redis_url: str
) -> None:
    with _installed(Runtime(database_url=db.url, redis_url=redis_url)) as rt:
        scheduled = ScheduledJobRegistry(queue=rt.queue)
        created = _two_hours_ago()
        with rt.sessions() as session, session.begin():
            case_id = cases.create_case(
                session, "trd_reservation", {}, actor=ADMIN, now=created
            ).case.id
            armed = {t.name: t for t in timer_firing.case_timers(session, case_id)}
            assert set(armed) == {"nudge", "reminder"}
            assert rt.redis.keys("rq:job:*") == []  # nothing leaves before commit
        nudge, reminder = armed["nudge"], armed["reminder"]

        # Due already: a job of its own, enqueued for a worker now. Due later: its release
        # second's batch job, in the scheduled registry for a worker's scheduler to enqueue then.
        batch = delivery.batch_job_id(
            delivery.release_second(reminder.due_at), reminder.id % delivery.BATCH_PARTS
        )
        assert rt.queue.job_ids == [delivery.job_id(nudge.id, 0)]
        assert scheduled.get_job_ids() == [batch]
        # RQ keeps whole seconds: the job is released at the due time rounded up, never
        # before it (bench/timers.py found truncation releasing timers early).
        released = scheduled.get_scheduled_time(batch)
        assert released == delivery.release_at(reminder.due_at)
        assert released >= reminder.due_at

        with pytest.raises(RuntimeError), rt.sessions() as session, session.begin():
            cases.create_case(session, "trd_reservation", {}, actor=ADMIN, now=created)
            raise RuntimeError("the request fails after the timers were armed")
        assert rt.queue.job_ids == [delivery.job_id(nudge.id, 0)]
        assert scheduled.get_job_ids() == [batch]
        assert len(rt.redis.keys("rq:job:*")) == 2


def test_a_hand_over_lost_to_a_redis_outage_is_late_never_lost(
    db: Fixture, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with (
        _installed(Runtime(database_url=db.url, redis_url=down)) as rt,
        caplog.at_level(logging.WARNING),
        rt.sessions() as session,
        session.begin(),
    ):
        case_id = cases.create_case(
            session, "trd_reservation", {}, actor=ADMIN, now=_two_hours_ago()
        ).case.id
    (warning,) = [r for r in caplog.records if r.name == "engine.services.scheduling"]
    assert warning.levelno == logging.WARNING
    assert "failed after commit" in warning.getMessage()
    with db.sessions() as session, session.begin():
        assert {t.status for t in timer_firing.case_timers(session, case_id)} == {"armed"}

    with _installed(Runtime(database_url=db.url, redis_url=redis_url)) as rt:
        # The nudge is an hour overdue: delivered again; the reminder is not due within the
        # horizon (and its batch job was lost too: nothing to restore yet).
        assert _sweep(rt) == SweepOutcome(redelivered=1, handed_over=0)
        assert len(rt.queue.job_ids) == 1
        assert _sweep(rt) == NOTHING  # handed over just now: not delivered twice


# --- real workers ------------------------------------------------------------------------------


@needs_postgres
def test_a_timer_delivered_three_times_to_two_workers_fires_once(
    pg: Fixture, queue: Queue, workers: Workers
) -> None:
    due = _reserve(pg.sessions, 20, now=_two_hours_ago())
    first, second = workers.start(), workers.start()
    _wait_until(lambda: Worker.count(queue=queue) == 2, "two workers", workers.output)

    handed_over = 0
    for item in due:
        now = datetime.now(UTC)
        handed_over += delivery.schedule(queue, item, now=now)
        handed_over += delivery.schedule(queue, item, now=now)  # the same delivery again
        retry = DueTimer(item.id, item.due_at, 1)
        handed_over += delivery.schedule(queue, retry, now=now)  # a retry's own job
    assert handed_over >= 2 * len(due)  # each timer really reaches the workers at least twice

    def drained() -> bool:
        return (
            _armed_count(pg.sessions, due) == 0
            and queue.count == 0
            and StartedJobRegistry(queue=queue).get_job_count() == 0
        )

    _wait_until(drained, "the workers to drain the queue", workers.output)
    assert first.poll() is None and second.poll() is None  # both still serving
    workers.stop()  # a warm shutdown finishes any job still in a worker's hands
    assert _outcomes(pg.sessions, due) == [FIRED_ONCE] * len(due)
    assert FailedJobRegistry(queue=queue).get_job_ids() == []
    assert queue.count == 0


@needs_postgres
def test_after_a_redis_flush_the_sweeper_redelivers_every_armed_timer(
    pg: Fixture, redis_url: str, queue: Queue, workers: Workers
) -> None:
    with _installed(Runtime(database_url=pg.url, redis_url=redis_url)) as rt:
        due = _reserve(rt.sessions, 50, now=_two_hours_ago())  # handed to Redis on commit
        assert queue.count == 50
        queue.connection.flushall()
        assert queue.count == 0

        assert _sweep(rt) == SweepOutcome(redelivered=50, handed_over=0)
        assert _sweep(rt) == NOTHING  # a second sweeper run adds nothing
        workers.wait_for_exit(workers.start(burst=True), workers.start(burst=True))

        assert _outcomes(pg.sessions, due) == [FIRED_ONCE] * 50
        assert _sweep(rt) == NOTHING


@needs_postgres
def test_a_worker_killed_mid_job_loses_nothing_and_fires_nothing_twice(
    pg: Fixture, redis_url: str, queue: Queue, workers: Workers
) -> None:
    (item,) = _reserve(pg.sessions, 1, now=_two_hours_ago())
    # Hold the timer's row lock, so the worker's job blocks inside fire_due_timer.
    blocker = pg.engine.connect()
    transaction = blocker.begin()
    blocker.execute(text("SELECT id FROM timers WHERE id = :id FOR UPDATE"), {"id": item.id})
    assert delivery.schedule(queue, item, now=datetime.now(UTC))
    doomed = workers.start()

    def blocked_on_the_lock() -> bool:
        with pg.engine.connect() as conn:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        return bool(waiting)

    _wait_until(blocked_on_the_lock, "the job to block on the timer row", workers.output)
    assert StartedJobRegistry(queue=queue).get_job_ids() == [delivery.job_id(item.id, 0)]
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=WAIT)
    transaction.rollback()
    blocker.close()

    assert _outcomes(pg.sessions, [item]) == [Outcome("armed", 0, 0, 0, ())]
    # RQ still counts the job as started until its heartbeat expires (two minutes): the
    # database says the timer is overdue, so it is delivered again now, not then.
    assert StartedJobRegistry(queue=queue).get_job_ids() == [delivery.job_id(item.id, 0)]
    with _installed(Runtime(database_url=pg.url, redis_url=redis_url)) as rt:
        assert _sweep(rt) == SweepOutcome(redelivered=1, handed_over=0)
        assert _sweep(rt) == NOTHING
    workers.wait_for_exit(workers.start(burst=True))

    assert _outcomes(pg.sessions, [item]) == [FIRED_ONCE]


def test_release_time_is_never_before_the_due_time() -> None:
    from datetime import UTC, datetime

    from engine.runtime.delivery import release_at

    due = datetime(2025, 10, 1, 2, 0, 7, 800_000, tzinfo=UTC)
    assert release_at(due) == datetime(2025, 10, 1, 2, 0, 8, tzinfo=UTC)
    exact = datetime(2025, 10, 1, 2, 0, 7, tzinfo=UTC)
    assert release_at(exact) == exact


# --- batch delivery: one job per release second ------------------------------------------------


def _set_due(sessions: sessionmaker[Session], timer_id: int, due_at: datetime) -> None:
    with sessions() as session, session.begin():
        session.get_one(Timer, timer_id).due_at = due_at


def test_a_second_s_batch_job_fires_its_timers_once_each_and_no_other(
    db: Fixture, redis_url: str
) -> None:
    """Two timers released in the same second share one batch job, which fires each once; a
    timer of another second is not touched; the sweeper recreates a batch job lost from Redis."""
    with _installed(Runtime(database_url=db.url, redis_url=redis_url)) as rt:
        # Ids of the same part, so they share one batch job (parts split by id).
        due = _reserve(rt.sessions, 2 * delivery.BATCH_PARTS + 1, now=datetime.now(UTC))
        first, second, other = due[0], due[delivery.BATCH_PARTS], due[2 * delivery.BATCH_PARTS]
        part = first.id % delivery.BATCH_PARTS
        assert second.id % delivery.BATCH_PARTS == part == other.id % delivery.BATCH_PARTS
        # Timers due in an hour; move two into the same release second (90 minutes from now, so
        # the handed-over jobs are in the scheduled registry) and one into the next second.
        # Not an hour from now: the timers left in place are due then, and one of this part
        # would join the batch whenever creating the cases crossed a second boundary.
        epoch = int(datetime.now(UTC).timestamp()) + 5400
        at = datetime.fromtimestamp(epoch, UTC)
        targets = {
            first.id: at - timedelta(milliseconds=700),
            second.id: at,
            other.id: at + timedelta(milliseconds=300),
        }
        for timer_id, due_at in targets.items():
            _set_due(rt.sessions, timer_id, due_at)
        rt.redis.flushall()

        # The sweeper hands every one over: two timers, one batch job; the other, another.
        assert _sweep(rt, horizon_seconds=2 * 3600).handed_over >= 2
        scheduled = ScheduledJobRegistry(queue=rt.queue)
        ids = set(scheduled.get_job_ids())
        assert delivery.batch_job_id(epoch, part) in ids
        assert delivery.batch_job_id(epoch + 1, part) in ids
        assert delivery.job_id(first.id, 0) not in ids
        for item in (first, second):
            again = DueTimer(item.id, targets[item.id], 0)
            assert not delivery.schedule(rt.queue, again, now=datetime.now(UTC))
        assert _sweep(rt, horizon_seconds=2 * 3600) == NOTHING  # all live already

        # Lost from Redis: the sweeper recreates the batch job.
        Job.fetch(delivery.batch_job_id(epoch, part), connection=rt.redis).delete()
        assert delivery.batch_job_id(epoch, part) not in scheduled.get_job_ids()
        # One job for both timers.
        assert _sweep(rt, horizon_seconds=2 * 3600) == SweepOutcome(redelivered=0, handed_over=1)
        assert delivery.batch_job_id(epoch, part) in scheduled.get_job_ids()

        # Run the batch job at its second (the worker's clock), twice.
        rt.clock = ManualClock(at + timedelta(milliseconds=50))
        assert jobs.fire_due_second(epoch, part) == "fired 2"
        assert jobs.fire_due_second(epoch, part) == "none due"

    outcomes = _outcomes(db.sessions, [first, second, other])
    assert outcomes[:2] == [FIRED_ONCE, FIRED_ONCE]
    assert outcomes[2] == Outcome("armed", 0, 0, 0, ())


def test_a_batch_job_released_early_runs_again_at_its_second(db: Fixture, redis_url: str) -> None:
    with _installed(Runtime(database_url=db.url, redis_url=redis_url)) as rt:
        (item,) = _reserve(rt.sessions, 1, now=datetime.now(UTC))
        epoch = int(item.due_at.timestamp()) + 1
        rt.clock = ManualClock(datetime.fromtimestamp(epoch - 1, UTC))
        part = item.id % delivery.BATCH_PARTS
        assert jobs.fire_due_second(epoch, part) == "early"
        (early,) = [
            i
            for i in ScheduledJobRegistry(queue=rt.queue).get_job_ids()
            if i.startswith(delivery.batch_job_id(epoch, part) + "-early-")
        ]
    assert _outcomes(db.sessions, [item]) == [Outcome("armed", 0, 0, 0, ())]
    assert early
