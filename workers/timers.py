"""RQ jobs that deliver timers, and the sweeper that guarantees delivery.

Each delivery is an RQ job with a deterministic id (``svcflow-timer-<id>-<attempt>``) put in
the scheduled registry with ``Queue.schedule_job(..., unique=True)``, so one delivery exists
once in Redis however often it is handed over. Workers run ``rq worker --with-scheduler``.
The job does nothing but call :func:`engine.services.timers.fire_due_timer` in a transaction;
that function decides, under a row lock, whether the timer still fires.

Jobs keep no result in Redis (``result_ttl=0``): the database is the record. That also lets
the sweeper re-deliver a timer whose job vanished (Redis flushed, worker killed): it looks
for every armed timer due soon and schedules the ones Redis does not hold in a live state.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from engine.services import inspection
from engine.services import timers as timer_service
from engine.services.scheduling import DueTimer
from workers import runtime

log = logging.getLogger(__name__)

JOB_TIMEOUT = 60  # seconds: a timer fire is one short transaction
SWEEP_HORIZON = timedelta(minutes=2)
LIVE = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED}


def job_id(timer_id: int, attempt: int) -> str:
    return f"svcflow-timer-{timer_id}-{attempt}"


def release_at(due_at: datetime) -> datetime:
    """When RQ may run a timer's job: its due time rounded up to the whole second.

    RQ scores scheduled jobs in whole seconds, truncated, and releases a job as soon as its
    second begins; a timer due at 12:00:07.8 would run at 12:00:07.0 and be refused as not
    due yet (bench/timers.py measured up to 72% of a run released early)."""
    if due_at.microsecond:
        return due_at.replace(microsecond=0) + timedelta(seconds=1)
    return due_at


def schedule(queue: Queue, due: DueTimer, *, suffix: str = "") -> bool:
    """Put one delivery in Redis; False when that exact delivery is already there."""
    job = queue.create_job(
        fire_timer,
        args=(due.id, due.attempts),
        job_id=job_id(due.id, due.attempts) + suffix,
        timeout=JOB_TIMEOUT,
        result_ttl=0,
        failure_ttl=24 * 3600,
        description=f"timer {due.id} attempt {due.attempts}",
    )
    try:
        if due.due_at <= datetime.now(UTC):
            queue.enqueue_job(job, unique=True)
        else:
            queue.schedule_job(job, release_at(due.due_at), unique=True)
    except DuplicateJobError:
        return False
    return True


class RqDelivery:
    """The TimerDelivery sessions use after commit (see engine/services/scheduling.py)."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def deliver(self, due: Sequence[DueTimer]) -> None:
        for item in due:
            schedule(self.queue, item)


def fire_timer(timer_id: int, attempt: int = 0) -> str:
    """The job. Never raises for a failed fire: the failure is recorded on the timer row and,
    when it may succeed later, a retry delivery is scheduled with backoff."""
    rt = runtime.current()
    now = rt.clock.now()
    try:
        with rt.sessions() as session, session.begin():
            outcome = timer_service.fire_due_timer(session, timer_id, now=now)
    except Exception as exc:
        with rt.sessions() as session, session.begin():
            retry = timer_service.record_failure(session, timer_id, exc, now=now)
        if retry is not None:
            schedule(rt.queue, retry)
        log.warning("timer %s attempt %s failed: %s", timer_id, attempt, exc)
        return f"failed: {type(exc).__name__}"
    if outcome.result is timer_service.FireResult.NOT_DUE and outcome.due_at is not None:
        # Delivered before its time (clocks of hosts disagree): deliver again at the due
        # time, under an id of its own, since this job's id stays taken until it ends.
        log.info("timer %s delivered early; due %s", timer_id, outcome.due_at)
        schedule(
            rt.queue,
            DueTimer(timer_id, outcome.due_at, attempt),
            suffix=f"-early-{int(now.timestamp())}",
        )
    log.info("timer %s: %s %s", timer_id, outcome.result.value, outcome.note)
    return outcome.result.value


def _is_live(queue: Queue, timer: DueTimer) -> bool:
    try:
        job = Job.fetch(job_id(timer.id, timer.attempts), connection=queue.connection)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    if status in LIVE:
        return True
    job.delete()  # failed/stopped/finished but the timer is still armed: deliver again
    return False


def sweep(horizon_seconds: int = int(SWEEP_HORIZON.total_seconds())) -> int:
    """Make sure every armed timer due within the horizon has a live delivery in Redis.

    Safe to run anywhere, any number of times at once: scheduling is unique per delivery.
    Returns how many deliveries it (re)created.
    """
    rt = runtime.current()
    now = rt.clock.now()
    # A job whose worker died stays "started" until its heartbeat (job timeout + 60 s) runs
    # out; cleanup then marks it failed, and the timer below is delivered again. Measured on
    # the runtime's clock like everything else the sweeper decides, so it can be time-skipped.
    StartedJobRegistry(queue=rt.queue).cleanup(timestamp=now.timestamp())
    with rt.sessions() as session, session.begin():
        due = timer_service.due_for_delivery(
            session, until=now + timedelta(seconds=horizon_seconds)
        )
    created = 0
    for timer in due:
        if not _is_live(rt.queue, timer) and schedule(rt.queue, timer):
            created += 1
    if created:
        log.warning("sweeper re-delivered %d timer(s)", created)
    return created


def refresh_dwell_stats() -> int:
    """Periodic job: recompute how long cases stay in each state (for the `dwelling` rule)."""
    rt = runtime.current()
    with rt.sessions() as session, session.begin():
        return inspection.refresh_dwell_stats(session, now=rt.clock.now())
