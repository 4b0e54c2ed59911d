"""A worker stops within a process manager's grace period (5 s, the shortest we know), every
time.

RQ's command thread could outlive the worker's own shutdown by 60 s when it won a race with
the main thread (workers/worker.py explains it); a process manager kills a process that takes
longer to stop (honcho after 5 s), and the timer tests waited for burst workers that would not
exit. These tests force the race's losing order, then stop real ``rq worker`` processes
started as the Procfile does.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from engine.runtime.resources import QUEUE_NAME
from tests.conftest import ROOT
from workers.worker import Worker

RQ = str(Path(sys.executable).with_name("rq"))
GRACE_SECONDS = 5.0  # honcho's, the shortest: SIGTERM, then SIGKILL 5 s later
START_SECONDS = 30.0  # a process may take this long to start on a loaded machine


@pytest.fixture
def connection(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    client.close()


def _finishes_within(seconds: float, call: object) -> bool:
    """Run ``call`` in a thread; whether it returned within ``seconds``."""
    runner = threading.Thread(target=call, daemon=True)  # type: ignore[arg-type]
    runner.start()
    runner.join(seconds)
    return not runner.is_alive()


def test_the_command_thread_stops_even_when_it_read_the_unsubscribe_reply_first(
    connection: Redis,
) -> None:
    worker = Worker([Queue(QUEUE_NAME, connection=connection)], connection=connection)
    worker.subscribe()
    assert worker.pubsub is not None and worker.pubsub_thread is not None
    # The losing order of the race: the thread has already consumed an UNSUBSCRIBE reply and
    # gone back to waiting, subscribed to nothing, while its running flag is still up.
    worker.pubsub.unsubscribe()
    deadline = time.monotonic() + START_SECONDS
    while worker.pubsub.subscribed:
        assert time.monotonic() < deadline, "the command thread never read the reply"
        time.sleep(0.01)  # waiting for another thread, not skipping time

    assert _finishes_within(GRACE_SECONDS, worker.unsubscribe)
    assert not worker.pubsub_thread.is_alive()


def _start_worker(redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                RQ,
                "worker",
                "--with-scheduler",
                "--worker-class",
                "workers.worker.Worker",
                "--url",
                redis_url,
                QUEUE_NAME,
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.parametrize("run", range(4))
def test_a_worker_with_its_scheduler_stops_on_sigterm_within_the_grace_period(
    run: int, redis_url: str, connection: Redis, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    others = set(connection.pubsub_channels())  # other tests' in-process workers may listen
    process = _start_worker(redis_url, log)
    try:
        deadline = time.monotonic() + START_SECONDS
        # Up when its scheduler holds the queue's lock and its command thread listens.
        while not (
            connection.exists(f"rq:scheduler-lock:{QUEUE_NAME}")
            and set(connection.pubsub_channels()) - others
        ):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)  # waiting for another process, not skipping time

        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {GRACE_SECONDS} s after SIGTERM:\n{log.read_text()}")
        assert process.returncode == 0, log.read_text()
        assert set(connection.pubsub_channels()) == others  # its command channel is closed
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has exited


@pytest.mark.parametrize("delay", [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
def test_a_worker_stopped_while_it_starts_exits_cleanly_and_leaves_no_scheduler(
    delay: float, redis_url: str, connection: Redis, tmp_path: Path
) -> None:
    """SIGTERM at points through a worker's start (the process manager stops everything while a
    worker is still starting): it exits within the grace period, cleanly once it has begun to start
    (Python's own default kills it before that, when it has done nothing yet), and leaves
    nothing behind: no scheduler process, no scheduler lock, no worker registration."""
    log = tmp_path / "worker.log"
    process = _start_worker(redis_url, log)
    try:
        time.sleep(delay)  # where in the start the signal lands; no time is being skipped
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {GRACE_SECONDS} s after SIGTERM:\n{log.read_text()}")
        output = log.read_text()
        if output:  # it had begun: RQ's startup logs its first line before anything else
            assert process.returncode == 0, output
        else:
            assert process.returncode == -signal.SIGTERM
        assert not [pid for pid in _scheduler_pids(output) if _alive(pid)], output
        assert not connection.exists(f"rq:scheduler-lock:{QUEUE_NAME}"), output
        assert Worker.all(connection=connection) == [], output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_scheduler_whose_worker_is_killed_stops_and_frees_the_lock(
    redis_url: str, connection: Redis, tmp_path: Path
) -> None:
    """kill -9 of a worker skips its teardown; its scheduler process notices the lost parent
    and stops, releasing the queue's scheduler lock for another worker, instead of living on
    as an orphan that holds it for ever."""
    log = tmp_path / "worker.log"
    process = _start_worker(redis_url, log)
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _scheduler_pids(log.read_text()):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)  # waiting for another process, not skipping time
        (scheduler,) = _scheduler_pids(log.read_text())
        assert connection.exists(f"rq:scheduler-lock:{QUEUE_NAME}")

        process.send_signal(signal.SIGKILL)
        process.wait(timeout=GRACE_SECONDS)
        deadline = time.monotonic() + GRACE_SECONDS
        while _alive(scheduler) or connection.exists(f"rq:scheduler-lock:{QUEUE_NAME}"):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)  # waiting for another process, not skipping time
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _scheduler_pids(output: str) -> list[int]:
    """The scheduler processes the log says were started (plain or JSON log lines)."""
    return sorted(
        {int(pid) for pid in re.findall(r"Scheduler for \S+ started with PID (\d+)", output)}
    )
