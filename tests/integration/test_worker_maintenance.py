"""A worker looks for a dead scheduler every 10 s but cleans RQ's registries on RQ's own
interval (workers/worker.py): every 10 s the cleaning only filled `make run`'s log with
"cleaning registries" lines. Time is skipped by moving the worker's marks back, never slept.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue

from workers.worker import SCHEDULER_RECHECK_SECONDS, Worker


@pytest.fixture
def worker(redis_url: str) -> Iterator[Worker]:
    connection = Redis.from_url(redis_url)
    queue = Queue(f"maintenance-{uuid.uuid4().hex}", connection=connection)
    yield Worker([queue], connection=connection)
    connection.close()


def _skip(worker: Worker, seconds: float) -> None:
    """As if ``seconds`` had passed since the worker's last look and last cleaning."""
    assert worker.scheduler_checked_at is not None and worker.last_cleaned_at is not None
    worker.scheduler_checked_at -= timedelta(seconds=seconds)
    worker.last_cleaned_at -= timedelta(seconds=seconds)


def _cleanings(caplog: pytest.LogCaptureFixture) -> int:
    return sum("cleaning registries" in record.getMessage() for record in caplog.records)


def test_registries_are_cleaned_on_rqs_interval_not_at_every_scheduler_check(
    worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert worker.should_run_maintenance_tasks
    worker.run_maintenance_tasks()  # the first look cleans, as RQ's does
    assert _cleanings(caplog) == 1
    cleaned_at = worker.last_cleaned_at
    assert not worker.should_run_maintenance_tasks

    for _ in range(5):  # five scheduler checks, 11 s apart
        _skip(worker, SCHEDULER_RECHECK_SECONDS + 1)
        assert worker.should_run_maintenance_tasks
        worker.run_maintenance_tasks()
        assert not worker.should_run_maintenance_tasks
    assert _cleanings(caplog) == 1
    assert cleaned_at is not None and worker.last_cleaned_at is not None
    assert worker.last_cleaned_at < cleaned_at  # only moved back by the skips

    _skip(worker, worker.maintenance_interval)  # RQ's interval has passed
    worker.run_maintenance_tasks()
    assert _cleanings(caplog) == 2
    assert worker.last_cleaned_at > cleaned_at


def test_a_worker_takes_the_scheduler_lock_at_its_next_check_after_the_first(
    worker: Worker,
) -> None:
    """The check that lets another worker take over a dead holder's lock: not on the first
    look (``work()`` has just started the scheduler), then at every look."""
    worker.scheduler = worker.scheduler_class(worker.queues, connection=worker.connection)
    lock = f"rq:scheduler-lock:{worker.queues[0].name}"
    worker.run_maintenance_tasks()
    assert not worker.connection.exists(lock)
    _skip(worker, SCHEDULER_RECHECK_SECONDS + 1)
    try:
        worker.run_maintenance_tasks()
        assert worker.connection.exists(lock)
        assert worker.scheduler._process is not None
    finally:
        worker.stop_scheduler()
    assert not worker.connection.exists(lock)
