"""Handing timers to RQ, and the sweeper that guarantees they are handed over.

Deliveries are RQ jobs with deterministic ids, put in Redis with ``schedule_job(...,
unique=True)`` (or ``enqueue_job(..., unique=True)`` when already due), so one delivery exists
once in Redis however often it is handed over:

- a timer not yet due, on its first attempt, is delivered by the **batch job of its release
  second** (``svcflow-due-<epoch>-<part>``, running ``workers.jobs.fire_due_second``): RQ
  releases scheduled jobs by whole seconds, so all timers due in ``(epoch - 1, epoch]`` are
  released at ``epoch`` anyway; one job per second (split in :data:`BATCH_PARTS` parts by
  timer id, so that several workers share a busy second) instead of one per timer saves RQ's
  per-job work (~7-9 ms per job, measured by bench/timers.py);
- a timer already due, and every retry, has a job of its own
  (``svcflow-timer-<id>-<attempt>``, running ``workers.jobs.fire_timer``).

The jobs name their functions by import path (:data:`FIRE_TIMER`, :data:`FIRE_DUE_SECOND`):
this module is shared by the web app, the CLI and the workers, and must not import the
workers package to hand work to it.

Jobs keep no result in Redis (``result_ttl=0``): the database is the record, and it decides
what was lost. Each armed timer has ``deliver_at``, when its next delivery is expected; the
sweeper (:func:`sweep`, run every few seconds by whichever worker holds the sweep lease)
hands over again every armed timer more than the tolerance behind that, whatever Redis says
about its job, and restores the jobs of timers due soon that Redis lost (a flush, a restart).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rq import Queue
from rq.exceptions import DuplicateJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from sqlalchemy.orm import Session, sessionmaker

from engine.services import timer_firing
from engine.services.delivery_health import TOLERANCE
from engine.services.scheduling import DueTimer

log = logging.getLogger(__name__)

FIRE_TIMER = "workers.jobs.fire_timer"
FIRE_DUE_SECOND = "workers.jobs.fire_due_second"
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


def schedule(queue: Queue, due: DueTimer, *, now: datetime, suffix: str = "") -> bool:
    """Put one delivery in Redis; False when that exact delivery is already there.

    Due already (by ``now``): a job of its own, enqueued now. Due later: its release second's
    batch job on a first attempt (several timers share it, so False is the common answer), a
    job of its own for a retry."""
    if due.due_at <= now:
        return _put(queue, _timer_job(queue, due, suffix), None)
    batch = batch_of(due)
    if batch is None or suffix:
        return _put(queue, _timer_job(queue, due, suffix), release_at(due.due_at))
    return schedule_second(queue, release_second(due.due_at), due.id % BATCH_PARTS)


def schedule_second(queue: Queue, epoch: int, part: int, *, suffix: str = "") -> bool:
    """Schedule the batch job of one release second's part (unique); False if it exists."""
    job = queue.create_job(
        FIRE_DUE_SECOND,
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
        FIRE_TIMER,
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

    def __init__(self, queue: Queue, now: Callable[[], datetime]) -> None:
        self.queue = queue
        self.now = now

    def deliver(self, due: Sequence[DueTimer]) -> None:
        now = self.now()
        for item in due:
            schedule(self.queue, item, now=now)


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


@dataclass(frozen=True)
class SweepOutcome:
    redelivered: int  # overdue beyond the tolerance: handed over again, whatever Redis said
    handed_over: int  # due soon, with no live job in Redis: handed over (after a flush)

    def to_dict(self) -> dict[str, int]:
        return {"redelivered": self.redelivered, "handed_over": self.handed_over}


def sweep(
    sessions: sessionmaker[Session],
    queue: Queue,
    *,
    now: datetime,
    horizon_seconds: int = int(SWEEP_HORIZON.total_seconds()),
    tolerance: timedelta = TOLERANCE,
) -> SweepOutcome:
    """Make sure every armed timer gets delivered. Safe to run anywhere, any number of times
    at once (workers take turns through a lease; the CLI may run it by hand).

    1. The database decides what is lost: an armed timer whose expected delivery is more than
       ``tolerance`` behind gets a fresh job now, whatever Redis says about its old one (a job
       "started" by a killed worker, "scheduled" under a dead scheduler, or flushed away).
    2. A timer falling due within the horizon gets its scheduled job back if Redis holds no
       live one (Redis was flushed or restarted empty), so it is not late in the first place.
       Timers already due are left to their delivery in flight until they are overdue.
    """
    # A job whose worker died stays "started" until its heartbeat runs out; cleaning the
    # registry marks it failed (measured on the caller's clock, so tests can skip time).
    StartedJobRegistry(queue=queue).cleanup(timestamp=now.timestamp())
    with sessions() as session, session.begin():
        late = timer_firing.claim_overdue(session, now=now, tolerance=tolerance)
        soon = timer_firing.due_for_delivery(
            session, after=now, until=now + timedelta(seconds=horizon_seconds)
        )
    for timer in late:
        # An id of its own per hand-over, so no leftover of the lost job can stand in for it.
        _put(queue, _timer_job(queue, timer, f"-late-{int(now.timestamp())}"), None)
    handed_over = 0
    for timer in soon:
        if not _is_live(queue, timer):
            handed_over += schedule(queue, timer, now=now)
    if late or handed_over:
        log.warning(
            "sweeper: %d overdue timer(s) delivered again, %d lost hand-over(s) restored",
            len(late),
            handed_over,
        )
    return SweepOutcome(len(late), handed_over)
