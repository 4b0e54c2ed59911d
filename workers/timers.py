"""RQ jobs that deliver timers, and the sweeper that guarantees delivery.

Deliveries are RQ jobs with deterministic ids, put in Redis with ``schedule_job(...,
unique=True)`` (or ``enqueue_job(..., unique=True)`` when already due), so one delivery exists
once in Redis however often it is handed over:

- a timer not yet due, on its first attempt, is delivered by the **batch job of its release
  second** (``svcflow-due-<epoch>-<part>``, running :func:`fire_due_second`): RQ releases
  scheduled jobs by whole seconds, so all timers due in ``(epoch - 1, epoch]`` are released at
  ``epoch`` anyway; one job per second (split in :data:`BATCH_PARTS` parts by timer id, so
  that several workers share a busy second) instead of one per timer saves RQ's per-job work
  (~7-9 ms per job, measured by bench/timers.py);
- a timer already due, and every retry, has a job of its own
  (``svcflow-timer-<id>-<attempt>``, running :func:`fire_timer`).

Either job does nothing for a timer but call :func:`engine.services.timers.fire_due_timer` in
a transaction of its own; that function decides, under row locks, whether the timer still
fires. Workers run ``rq worker --with-scheduler --worker-class workers.rq_worker.Worker``,
whose scheduler polls every 0.1 s instead of RQ's 1 s.

Jobs keep no result in Redis (``result_ttl=0``): the database is the record. That also lets
the sweeper re-deliver a timer whose job vanished (Redis flushed, worker killed): it looks
for every armed timer due soon and schedules the ones whose job (its own or its second's
batch) Redis does not hold in a live state.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from rq import Queue
from rq.exceptions import DuplicateJobError
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


BATCH_PARTS = 4  # batch jobs per release second; a timer's part is its id % BATCH_PARTS


def job_id(timer_id: int, attempt: int) -> str:
    return f"svcflow-timer-{timer_id}-{attempt}"


def release_second(due_at: datetime) -> int:
    """The epoch second whose batch job delivers a timer due at ``due_at``."""
    return int(release_at(due_at).timestamp())


def batch_job_id(epoch: int, part: int) -> str:
    return f"svcflow-due-{epoch}-{part}"


def batch_of(due: DueTimer) -> str | None:
    """The batch job that delivers ``due``, or None when it needs a job of its own: a retry
    (its delivery time is not the row's ``due_at``, which the batch selects on)."""
    if due.attempts:
        return None
    return batch_job_id(release_second(due.due_at), due.id % BATCH_PARTS)


def release_at(due_at: datetime) -> datetime:
    """When RQ may run a timer's job: its due time rounded up to the whole second.

    RQ scores scheduled jobs in whole seconds, truncated, and releases a job as soon as its
    second begins; a timer due at 12:00:07.8 would run at 12:00:07.0 and be refused as not
    due yet (bench/timers.py measured up to 72% of a run released early)."""
    if due_at.microsecond:
        return due_at.replace(microsecond=0) + timedelta(seconds=1)
    return due_at


def schedule(queue: Queue, due: DueTimer, *, suffix: str = "") -> bool:
    """Put one delivery in Redis; False when that exact delivery is already there.

    Due already: a job of its own, enqueued now. Due later: its release second's batch job
    on a first attempt (several timers share it, so False is the common answer), a job of
    its own for a retry."""
    if due.due_at <= datetime.now(UTC):
        return _put(queue, _timer_job(queue, due, suffix), None)
    batch = batch_of(due)
    if batch is None or suffix:
        return _put(queue, _timer_job(queue, due, suffix), release_at(due.due_at))
    return schedule_second(queue, release_second(due.due_at), due.id % BATCH_PARTS)


def schedule_second(queue: Queue, epoch: int, part: int, *, suffix: str = "") -> bool:
    """Schedule the batch job of one release second's part (unique); False if it exists."""
    job = queue.create_job(
        fire_due_second,
        args=(epoch, part),
        job_id=batch_job_id(epoch, part) + suffix,
        timeout=JOB_TIMEOUT,
        result_ttl=0,
        failure_ttl=24 * 3600,
        description=f"timers due at {epoch} part {part}",
    )
    return _put(queue, job, datetime.fromtimestamp(epoch, UTC))


def _timer_job(queue: Queue, due: DueTimer, suffix: str) -> Job:
    return queue.create_job(
        fire_timer,
        args=(due.id, due.attempts),
        job_id=job_id(due.id, due.attempts) + suffix,
        timeout=JOB_TIMEOUT,
        result_ttl=0,
        failure_ttl=24 * 3600,
        description=f"timer {due.id} attempt {due.attempts}",
    )


def _put(queue: Queue, job: Job, at: datetime | None) -> bool:
    try:
        if at is None:
            queue.enqueue_job(job, unique=True)
        else:
            queue.schedule_job(job, at, unique=True)
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
    """The job of one delivery. Never raises for a failed fire: the failure is recorded on the
    timer row and, when it may succeed later, a retry delivery is scheduled with backoff."""
    rt = runtime.current()
    result = _fire_one(rt, timer_id, attempt, rt.clock.now())
    log.info("timer %s attempt %s: %s", timer_id, attempt, result)
    return result


def fire_due_second(epoch: int, part: int = 0) -> str:
    """The batch job of one release second: fires every armed, never-attempted timer of
    ``part`` due in ``(epoch - 1, epoch]``, earliest first, each in its own transaction and
    with :func:`fire_timer`'s failure handling. A failure of one timer does not stop the
    others."""
    rt = runtime.current()
    second = datetime.fromtimestamp(epoch, UTC)
    now = rt.clock.now()
    if now < second:
        # Released before its second (clocks of hosts disagree): run again at that second,
        # under an id of its own, since this job's id stays taken until it ends.
        log.info("batch %s delivered early at %s", batch_job_id(epoch, part), now.isoformat())
        schedule_second(rt.queue, epoch, part, suffix=f"-early-{int(now.timestamp())}")
        return "early"
    with rt.sessions() as session, session.begin():
        due = timer_service.first_deliveries_in(
            session,
            after=second - timedelta(seconds=1),
            until=second,
            part=part,
            parts=BATCH_PARTS,
        )
    results: dict[str, int] = {}
    for item in due:
        result = _fire_one(rt, item.id, item.attempts, rt.clock.now())
        key = result.split(":")[0]
        results[key] = results.get(key, 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(results.items())) or "none due"
    log.info("timers due at %s part %s: %s", epoch, part, summary)
    return summary


def _fire_one(rt: runtime.Runtime, timer_id: int, attempt: int, now: datetime) -> str:
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
    log.debug("timer %s: %s %s", timer_id, outcome.result.value, outcome.note)
    return outcome.result.value


def _is_live(queue: Queue, timer: DueTimer) -> bool:
    """Whether Redis holds a live job that will deliver ``timer``: its own, or its release
    second's batch job. Finished or failed leftovers are deleted (the timer is still armed:
    deliver again)."""
    ids = [job_id(timer.id, timer.attempts)]
    batch = batch_of(timer)
    if batch is not None:
        ids.append(batch)
    for found in Job.fetch_many(ids, connection=queue.connection):
        if found is None:
            continue
        if found.get_status(refresh=False) in LIVE:
            return True
        found.delete()
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
