"""The RQ worker class svcflow's workers run (the Procfile's ``--worker-class``).

RQ 3.0's scheduler (``rq.scheduler.RQScheduler``) moves due jobs from the scheduled registry
to the queue once a second, and a worker builds it with that interval fixed; ``rq worker`` has
no option for it. For timers that adds up to 1 s of lag on top of the whole second RQ's
scheduled times are rounded to (see ``workers.timers.release_at``). The interval cannot just
be made fractional either: RQ also derives its lock and heartbeat TTLs from it
(``interval + 60``, sent to Redis ``EXPIRE``, which takes whole seconds).

So :class:`Scheduler` keeps ``interval`` at 1 for those TTLs, and only checks for due jobs
more often (:data:`POLL_SECONDS`); its heartbeat and lock upkeep still run about once an
interval. :class:`Worker` is RQ's ``SimpleWorker`` (jobs run in the worker process, no fork
per job) with that scheduler.
"""

from __future__ import annotations

import time

from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.scheduler import RQScheduler
from rq.worker import SimpleWorker

POLL_SECONDS = 0.1


class Scheduler(RQScheduler):
    """RQ's scheduler, checking the scheduled registries every :data:`POLL_SECONDS`."""

    poll_seconds = POLL_SECONDS

    def work(self) -> None:
        self._install_signal_handlers()
        self.register_birth()
        next_upkeep = 0.0  # monotonic time of the next heartbeat / lock check
        while not self._stop_requested:
            clock = time.monotonic()
            if clock >= next_upkeep:
                if self.should_reacquire_locks:
                    self.acquire_locks()
                self.heartbeat()
                next_upkeep = clock + self.interval
            self.enqueue_scheduled_jobs()
            time.sleep(self.poll_seconds)
        self.stop()


class Worker(SimpleWorker):
    """``SimpleWorker`` whose ``--with-scheduler`` process is a :class:`Scheduler`."""

    scheduler_class = Scheduler

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        """What RQ's worker does for ``--with-scheduler``, with :class:`Scheduler`: take the
        queues' scheduler locks; with them, either move what is due once and let go (burst)
        or run the scheduler in its own process (which the worker restarts if it dies, by
        calling ``acquire_locks(auto_start=True)`` on it)."""
        scheduler = self.scheduler_class(
            self.queues,
            connection=self.connection,
            logging_level=self.log.level if logging_level is None else logging_level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler = scheduler
        scheduler.acquire_locks()
        if not scheduler.acquired_locks:
            return  # another worker's scheduler holds them
        if not burst:
            scheduler.start()
            return
        try:
            scheduler.register_birth()
            scheduler.enqueue_scheduled_jobs()
        finally:
            scheduler.release_locks()
            scheduler.register_death()
