"""The RQ worker class svcflow's workers run (the Procfile's ``--worker-class``).

RQ 3.0's scheduler (``rq.scheduler.RQScheduler``) moves due jobs from the scheduled registry
to the queue once a second, and a worker builds it with that interval fixed; ``rq worker`` has
no option for it. For timers that adds up to 1 s of lag on top of the whole second RQ's
scheduled times are rounded to (see ``engine.runtime.delivery.release_at``). The interval
cannot just be made fractional either: RQ also derives its lock and heartbeat TTLs from it
(``interval + 60``, sent to Redis ``EXPIRE``, which takes whole seconds).

So :class:`Scheduler` keeps ``interval`` at 1 for those TTLs, and only checks for due jobs
more often (:data:`POLL_SECONDS`); its heartbeat and lock upkeep still run about once an
interval. :class:`Worker` is RQ's ``SimpleWorker`` (jobs run in the worker process, no fork
per job) with that scheduler.

Stopping within a second
------------------------
Every RQ worker listens for commands on a pub/sub channel in a thread that waits in
``PubSub.get_message(timeout=60)``. RQ stops it by sending UNSUBSCRIBE (whose reply wakes the
thread) and then clearing the thread's running flag. When the thread reads the reply before
the flag is cleared, it loops once more, finds itself subscribed to nothing and waits on
redis-py's ``subscribed_event`` for the full 60 s; since redis-py 8.2
``PubSubWorkerThread.stop()`` joins the thread without a timeout, so the worker lingered 60 s
after "done, quitting" in about half the shutdowns (a burst worker in the tests, and a real
shutdown, which a process manager cuts short: honcho killed after 5 s, systemd and
supervisord after their stop timeout). :class:`Worker` clears the flag
*before* it unsubscribes, so the wake-up always finds the flag down, and waits at most
:data:`PUBSUB_WAIT_SECONDS` in any read, so no other path can hold a shutdown longer.

A stop while starting
---------------------
RQ installs a worker's SIGTERM/SIGINT handlers only after it has subscribed and started the
scheduler process. A SIGTERM in between (the process manager stopping everything while a
worker starts)
killed the worker with the default action: no teardown, its scheduler process left running
as an orphan with the queue's scheduler lock. :class:`Worker` takes those signals from the
first moment and only notes them while starting (the work loop then stops at its first
check, with a normal teardown), does not start a scheduler once a stop is requested, and
stops its scheduler within :data:`SCHEDULER_STOP_SECONDS`, killing it and releasing its
locks itself if the scheduler missed the signal.

Healing without a human
-----------------------
- Housekeeping: every non-burst worker runs the shared duties in a thread
  (engine/runtime/housekeeping.py): its heartbeat in the database, the timer sweep when it
  holds the sweep lease, the hourly dwell statistics. No separate cron process exists to die.
- Webhooks: every non-burst worker also runs the webhook sender's loop in a thread; the one
  holding the sender lease sends (engine/runtime/webhook_sender.py, docs/events.md).
- Redis away: a worker waits for Redis before registering, rides out errors of its
  suspension check, and retries the dequeue with backoff capped at
  :data:`REDIS_RETRY_SECONDS` (RQ's default cap is 60 s, too long for a 60 s promise).
- A dead scheduler: RQ re-checks its scheduler lock only in its maintenance, every 10
  minutes and only between blocking dequeues of up to 405 s; here a worker wakes every
  :data:`DEQUEUE_SECONDS` and re-checks every :data:`SCHEDULER_RECHECK_SECONDS`, so another
  worker takes over the lock soon after its holder dies (the registries are still cleaned on
  RQ's 10-minute interval). Timers never wait for that: the sweep hands over again whatever
  is overdue, by the database's account.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import datetime
from types import FrameType
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.scheduler import RQScheduler
from rq.utils import now
from rq.worker import SimpleWorker
from sqlalchemy.exc import SQLAlchemyError

from engine.runtime.housekeeping import Housekeeper
from engine.runtime.webhook_sender import WebhookSender, allowed_hosts
from engine.services.delivery_health import SWEEP_INTERVAL
from workers import jobs

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
PUBSUB_WAIT_SECONDS = 1.0  # longest wait of the command thread between checks of its flag
SCHEDULER_STOP_SECONDS = 2.0  # a scheduler polls every POLL_SECONDS; more means it missed it
REDIS_RETRY_SECONDS = 5.0  # longest wait between attempts to reach Redis
DEQUEUE_SECONDS = 5  # longest blocking dequeue: how often an idle worker looks around
SCHEDULER_RECHECK_SECONDS = 10  # how often a worker checks that some scheduler runs


class Scheduler(RQScheduler):
    """RQ's scheduler, checking the scheduled registries every :data:`POLL_SECONDS`."""

    poll_seconds = POLL_SECONDS

    def work(self) -> None:
        self._install_signal_handlers()
        worker_pid = os.getppid()  # the worker that forked this process
        self.register_birth()
        next_upkeep = 0.0  # monotonic time of the next heartbeat / lock check
        while not self._stop_requested:
            if os.getppid() != worker_pid:
                # Its worker was killed (kill -9 skips every teardown): an orphan scheduler
                # would hold the queue's lock for ever, heartbeat after heartbeat.
                self.log.warning("Scheduler: its worker %s is gone; stopping", worker_pid)
                break
            clock = time.monotonic()
            try:
                if clock >= next_upkeep:
                    if self.should_reacquire_locks:
                        self.acquire_locks()
                    self.heartbeat()
                    next_upkeep = clock + self.interval
                self.enqueue_scheduled_jobs()
            except (RedisConnectionError, RedisTimeoutError) as exc:
                # Redis is away (restarting, failing over): wait and carry on, as the worker
                # does, instead of dying with the scheduler's process.
                self.log.warning("Scheduler: Redis unreachable (%s); retrying", exc)
                time.sleep(self.interval)
                continue
            time.sleep(self.poll_seconds)
        try:
            self.stop()
        except (RedisConnectionError, RedisTimeoutError):
            self.log.warning("Scheduler: Redis unreachable; its locks expire on their own")


class Housekeeping(threading.Thread):
    """Runs the worker process's share of the periodic duties until stopped."""

    def __init__(self, worker_name: str) -> None:
        super().__init__(name="housekeeping", daemon=True)
        self.worker_name = worker_name
        self.stopping = threading.Event()

    def run(self) -> None:
        keeper = Housekeeper(jobs.current(), self.worker_name)
        interval = SWEEP_INTERVAL.total_seconds()
        while True:
            keeper.run_once()
            if self.stopping.wait(interval):
                break
        keeper.stop()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=2 * SCHEDULER_STOP_SECONDS)


class WebhookSending(threading.Thread):
    """Runs the webhook sender's loop (engine/runtime/webhook_sender.py) until stopped; one
    worker at a time sends, through the sender's lease, the others stand by."""

    def __init__(self, worker_name: str) -> None:
        super().__init__(name="webhooks", daemon=True)
        self.worker_name = worker_name
        self.stopping = threading.Event()

    def run(self) -> None:
        runtime = jobs.current()
        sender = WebhookSender(
            runtime.sessions, runtime.clock, self.worker_name, hosts=allowed_hosts()
        )
        sender.run(self.stopping, runtime.feed_waiter)
        try:
            sender.release()  # the next worker takes over now, not after the lease runs out
        except SQLAlchemyError as exc:
            log.warning("webhooks: could not release the sender lease (%s)", exc)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=2 * SCHEDULER_STOP_SECONDS)


class Worker(SimpleWorker):
    """``SimpleWorker`` whose ``--with-scheduler`` process is a :class:`Scheduler`, which
    shares the housekeeping and rides out Redis outages (module docstring)."""

    scheduler_class = Scheduler
    max_connection_wait_time = REDIS_RETRY_SECONDS
    housekeeping: Housekeeping | None = None
    webhook_sending: WebhookSending | None = None
    keeps_house = False
    scheduler_checked_at: datetime | None = None  # the last maintenance's scheduler check

    @property
    def dequeue_timeout(self) -> int:
        return DEQUEUE_SECONDS

    @property
    def should_run_maintenance_tasks(self) -> bool:
        last = self.scheduler_checked_at
        return last is None or (now() - last).total_seconds() > SCHEDULER_RECHECK_SECONDS

    def run_maintenance_tasks(self) -> None:
        """RQ's maintenance, split in two: the scheduler check every
        :data:`SCHEDULER_RECHECK_SECONDS` (a dead holder's lock is taken over soon), the
        registry cleaning on RQ's own ``maintenance_interval`` (10 minutes: every 10 s it
        only filled the log with "cleaning registries")."""
        first_look = self.scheduler_checked_at is None
        self.scheduler_checked_at = now()
        # Not on the first look: work() has just started the scheduler (as RQ does).
        if not first_look and self.scheduler is not None:
            process = self.scheduler._process
            if process is None or not process.is_alive():
                self.scheduler.acquire_locks(auto_start=True)
        cleaned = self.last_cleaned_at
        if cleaned is None or (now() - cleaned).total_seconds() > self.maintenance_interval:
            self.clean_registries()  # sets last_cleaned_at
            self.clean_group_registries()

    def work(self, burst: bool = False, *args: Any, **kwargs: Any) -> bool:
        # A burst worker drains the queue and leaves; it keeps no duties.
        self.keeps_house = not burst
        return bool(super().work(burst, *args, **kwargs))

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            if self.webhook_sending is not None:
                self.webhook_sending.stop()
            if self.housekeeping is not None:
                self.housekeeping.stop()

    def check_for_suspension(self, burst: bool) -> None:
        try:
            super().check_for_suspension(burst)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            # Not a reason to quit: the dequeue that follows waits for Redis with backoff.
            self.log.warning("Worker %s: Redis unreachable (%s)", self.name, exc)

    def _wait_for_redis(self) -> None:
        """Before registering: wait for Redis (a worker started during an outage, or
        restarted by its process manager) instead of dying at once."""
        wait = 0.5
        while not self._stop_requested:
            try:
                self.connection.ping()
                return
            except (RedisConnectionError, RedisTimeoutError) as exc:
                self.log.warning("Worker: Redis unreachable (%s); retrying in %.1f s", exc, wait)
                time.sleep(wait)  # a real wait for another process, not a test's time
                wait = min(2 * wait, REDIS_RETRY_SECONDS)

    def bootstrap(
        self,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        # Until RQ installs its own handlers (after the scheduler starts), a stop is noted.
        signal.signal(signal.SIGTERM, self._stop_once_started)
        signal.signal(signal.SIGINT, self._stop_once_started)
        self._wait_for_redis()
        if self._stop_requested:
            raise SystemExit(0)  # stopped before it registered anything: nothing to undo
        super().bootstrap(logging_level, date_format, log_format)
        if self.keeps_house:
            self.housekeeping = Housekeeping(self.name)
            self.housekeeping.start()
            self.webhook_sending = WebhookSending(self.name)
            self.webhook_sending.start()

    def _stop_once_started(self, signum: int, frame: FrameType | None) -> None:
        self.log.info("Worker %s: stop requested while starting", self.name)
        self._shutdown_requested_date = now()
        self._stop_requested = True

    def stop_scheduler(self) -> None:
        """Stop the scheduler process within :data:`SCHEDULER_STOP_SECONDS`, whatever it did
        with the signal, and make sure its locks are released."""
        scheduler = self.scheduler
        process = scheduler._process if scheduler is not None else None
        if scheduler is None or process is None or process.pid is None:
            return
        if process.is_alive():
            os.kill(process.pid, signal.SIGTERM)
            process.join(SCHEDULER_STOP_SECONDS)
        if process.is_alive():
            self.log.warning("Worker %s: scheduler did not stop; killing it", self.name)
            process.kill()
            process.join()
        scheduler.release_locks()  # a no-op for locks the scheduler released itself

    def subscribe(self) -> None:
        """RQ's command subscription, with the thread's waits bounded (module docstring)."""
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=PUBSUB_WAIT_SECONDS,
            daemon=True,
            exception_handler=self._pubsub_exception_handler,
        )

    def unsubscribe(self) -> None:
        """Stop the command thread: flag first, then the UNSUBSCRIBE that wakes it."""
        thread, pubsub = self.pubsub_thread, self.pubsub
        if thread is None or pubsub is None:
            return
        self.log.info(
            "Worker %s: unsubscribing from channel %s", self.name, self.pubsub_channel_name
        )
        thread.stop(timeout=0)  # clears the running flag; joins below, after the wake-up
        pubsub.unsubscribe()
        thread.join(timeout=2 * PUBSUB_WAIT_SECONDS)
        pubsub.close()

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
        if self._stop_requested:
            return  # stopped while starting: the work loop ends at its first check
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
