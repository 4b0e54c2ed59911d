"""A cluster to break on purpose: real worker processes started as the Procfile starts them, a
Redis of its own (so it can be stopped, flushed and restarted on the same port), a database,
and timers falling due while a fault happens. Shared by tests/integration/test_faults.py
(a few timers per fault, in ``make test``) and bench/faults.py (a thousand per fault).

What is checked after each fault is svcflow's promise: every timer fires exactly once, none
before its due time, and the last one within :data:`LAG_BOUND` of its due time, with no
human action. Time here is real: the workers read the system clock, and the faults are real
processes killed and servers stopped. Every wait polls a condition against a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis import Redis
from rq import Queue, Worker
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from engine.core.machine import Actor
from engine.runtime.embedded_redis import EmbeddedRedis
from engine.runtime.resources import QUEUE_NAME, Runtime
from engine.services import cases, delivery_health
from engine.services.definitions import publish
from engine.store import leases, migrate
from engine.store.models import CaseEvent, Timer, WorkerHeartbeat

ROOT = Path(__file__).resolve().parents[1]
LAG_BOUND = 60.0  # seconds: the promise after any single fault
START_TIMEOUT = 30.0  # seconds for the workers to register and a scheduler to take the lock
POLL = 0.1  # seconds between looks at another process's progress
ACTOR = Actor("faults")
NAME = "fault_timer"
# The timer's trigger is allowed again after it fired: a second fire of one timer would be a
# second 'ring' transition in the case's history, not a refusal by the state machine.
DEFINITION = f"""\
name: {NAME}
title: {{en: Fault timer, zh: 故障定时器}}
initial: waiting
data_schema:
  type: object
  required: [due]
  properties:
    due: {{type: string, format: date-time}}
states:
  - name: waiting
    title: {{en: Waiting, zh: 等待}}
    timers:
      - {{name: due, at: "timestamp(data.due)", trigger: ring}}
  - name: rang
    title: {{en: Rang, zh: 已响}}
transitions:
  - {{trigger: ring, source: [waiting, rang], dest: rang}}
"""


class FaultSetupError(Exception):
    """Something the run depends on did not come up in time (a worker died at start)."""


@dataclass(frozen=True)
class FaultReport:
    """What became of the timers armed for one fault."""

    name: str
    armed: int
    fired_once: int
    lost: int  # not fired by the deadline
    duplicates: int  # fired more than once
    early: int  # fired before their due time
    max_lag: float  # seconds, over the timers that fired

    @property
    def ok(self) -> bool:
        return (
            self.lost == self.duplicates == self.early == 0
            and self.fired_once == self.armed
            and self.max_lag <= LAG_BOUND
        )

    def line(self) -> str:
        return (
            f"fault {self.name}: armed {self.armed} fired_once {self.fired_once} lost {self.lost}"
            f" duplicates {self.duplicates} early {self.early} max_lag {self.max_lag:.1f}"
        )


@dataclass
class Cluster:
    """``workers`` worker processes on one database and one Redis, started with the
    Procfile's command; each in a process group of its own, so its scheduler child goes with
    it when it is stopped."""

    database_url: str
    directory: Path
    workers: int = 2
    redis: EmbeddedRedis = field(init=False)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    killed: set[int] = field(default_factory=set)  # workers a fault killed on purpose
    runtime: Runtime = field(init=False)

    def __post_init__(self) -> None:
        self.redis = EmbeddedRedis(self.directory / "redis")

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Cluster:
        self.redis.start()
        self.runtime = Runtime(database_url=self.database_url, redis_url=self.redis.url)
        migrate.upgrade(self.runtime.engine)
        with self.runtime.sessions() as session, session.begin():
            publish(session, DEFINITION, actor="faults", now=datetime.now(UTC))
        for _ in range(self.workers):
            self.processes.append(self._spawn(len(self.processes)))
        self.wait_for(self._up, "the workers to register and a scheduler to hold the lock")
        return self

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.runtime.close()
        self.redis.stop()

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "SVCFLOW_DATABASE_URL": self.database_url,
            "SVCFLOW_REDIS_URL": self.redis.url,
            "SVCFLOW_LOG_FORMAT": "text",
        }
        command = [
            str(Path(sys.executable).with_name("rq")),
            "worker",
            "--with-scheduler",
            "--worker-class",
            "workers.worker.Worker",
            "--url",
            self.redis.url,
            QUEUE_NAME,
        ]
        with (self.directory / f"worker-{index}.log").open("ab") as log:
            return subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _up(self) -> bool:
        self._check_alive()
        try:
            registered = len(Worker.all(connection=self.connection))
            locked = self.connection.exists(f"rq:scheduler-lock:{QUEUE_NAME}")
        except OSError:
            return False
        return registered >= self.workers and bool(locked)

    def _check_alive(self) -> None:
        dead = {i for i, p in enumerate(self.processes) if p.poll() is not None}
        if dead - self.killed:
            raise FaultSetupError(f"a worker exited on its own:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-4000:]
            for p in sorted(self.directory.glob("worker-*.log"))
        )

    @property
    def connection(self) -> Redis:
        return self.runtime.redis

    def wait_for(
        self, condition: Callable[[], bool], what: str, timeout: float = START_TIMEOUT
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise FaultSetupError(f"timed out waiting for {what}\n{self.logs()}")
            time.sleep(POLL)  # another process's progress, in real time

    # --- timers -------------------------------------------------------------------------------

    def arm(self, count: int, *, lead: float, spread: float) -> list[datetime]:
        """``count`` cases whose timers fall due evenly over ``spread`` seconds, the first
        ``lead`` seconds from now (handed to Redis after commit, as the web app does)."""
        first = datetime.now(UTC) + timedelta(seconds=lead)
        dues = [first + timedelta(seconds=spread * i / count) for i in range(count)]
        now = datetime.now(UTC)
        batch = 200
        for start in range(0, count, batch):
            with self.runtime.sessions() as session, session.begin():
                for due in dues[start : start + batch]:
                    cases.create_case(session, NAME, {"due": due.isoformat()}, actor=ACTOR, now=now)
        return dues

    def settled(self) -> bool:
        """No timer of the run is armed any more."""
        with self.runtime.sessions() as session:
            armed = session.execute(
                select(func.count()).select_from(Timer).where(Timer.status == "armed")
            ).scalar_one()
        return armed == 0

    def wait_settled(self, dues: Sequence[datetime]) -> None:
        """Until every timer fired, or the promise's bound after the last due time passed."""
        deadline = max(dues) + timedelta(seconds=LAG_BOUND + 5)
        while datetime.now(UTC) < deadline and not self._quiet_settled():
            time.sleep(POLL)  # the timers come due in real time

    def _quiet_settled(self) -> bool:
        try:
            return self.settled()
        except Exception:  # the database may be the fault; keep waiting for the deadline
            return False

    def report(self, name: str) -> FaultReport:
        with self.runtime.sessions() as session:
            rows = session.execute(select(Timer.id, Timer.case_id, Timer.due_at)).all()
            fires: dict[int, list[datetime]] = {}
            for case_id, at in session.execute(
                select(CaseEvent.case_id, CaseEvent.at).where(CaseEvent.trigger == "ring")
            ):
                fires.setdefault(case_id, []).append(at)
            timers = {r.id: (r.case_id, r.due_at) for r in rows}
        armed = len(timers)
        once = lost = duplicates = early = 0
        lags: list[float] = []
        for case_id, due in timers.values():
            fired = fires.get(case_id, [])
            if not fired:
                lost += 1
                continue
            duplicates += len(fired) > 1
            once += len(fired) == 1
            early += any(at < due for at in fired)
            lags.append(max((min(fired) - due).total_seconds(), 0.0))
        return FaultReport(name, armed, once, lost, duplicates, early, max(lags, default=0.0))

    # --- faults -------------------------------------------------------------------------------

    def kill(self, index: int) -> None:
        """kill -9 worker ``index`` alone (its scheduler child, if any, sees its parent go)."""
        self.killed.add(index)
        os.kill(self.processes[index].pid, signal.SIGKILL)
        self.processes[index].wait(timeout=10)

    def worker_holding_scheduler_lock(self) -> int:
        """The index of the worker whose scheduler holds the queue's lock."""
        holder = self.connection.get(f"rq:scheduler-lock:{QUEUE_NAME}")
        if holder is None:
            raise FaultSetupError("no scheduler holds the lock")
        # The scheduler's own record names its process; its worker is that process's parent.
        pid = self.connection.hget(f"rq:scheduler:{holder.decode()}", "pid")
        if pid is None:
            raise FaultSetupError(f"scheduler {holder.decode()} keeps no record")
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        return self._index_of(int(stat.rsplit(")", 1)[1].split()[1]))

    def worker_holding_sweep_lease(self) -> int:
        with self.runtime.sessions() as session:
            lease = leases.get(session, delivery_health.SWEEP_LEASE)
            holder = lease.holder if lease else None
            pid = session.execute(
                select(WorkerHeartbeat.pid).where(WorkerHeartbeat.name == holder)
            ).scalar_one_or_none()
        if pid is None:
            raise FaultSetupError("no worker holds the sweep lease")
        return self._index_of(pid)

    def sweep_lease_holder(self) -> str | None:
        with self.runtime.sessions() as session:
            lease = leases.get(session, delivery_health.SWEEP_LEASE)
            return lease.holder if lease else None

    def worker_in_a_job(self) -> int | None:
        """A worker that has a job started right now, if any."""
        started = StartedJobRegistry(queue=Queue(QUEUE_NAME, connection=self.connection))
        for job_id in started.get_job_ids():
            for worker in Worker.all(connection=self.connection):
                if worker.get_current_job_id() == job_id:
                    return self._index_of(worker.pid)
        return None

    def _index_of(self, pid: int) -> int:
        for i, process in enumerate(self.processes):
            if process.pid == pid:
                return i
        raise FaultSetupError(f"pid {pid} is not one of this cluster's workers")

    def restart_redis_empty(self, down_for: float) -> None:
        """Stop Redis, keep it down ``down_for`` seconds, start it again, empty, on the same
        port (no persistence: like a restarted cache server)."""
        port = self.redis.port
        self.redis.stop()
        time.sleep(down_for)  # the outage itself is what is being tested
        self.redis = EmbeddedRedis(self.directory / "redis", port=port).start()
        if self.redis.port != port:
            raise FaultSetupError(f"Redis came back on {self.redis.port}, not {port}")

    def processes_left(self) -> list[int]:
        """Pids of this cluster's processes (workers and their children) still running."""
        groups = {p.pid for p in self.processes}
        found = []
        for status in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = status.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            state, pgrp = fields[0], int(fields[2])
            if pgrp in groups and state != "Z":
                found.append(int(status.parent.name))
        return found


@contextmanager
def cluster(database_url: str, directory: Path, workers: int = 2) -> Iterator[Cluster]:
    running = Cluster(database_url, directory, workers)
    try:
        yield running.start()
    finally:
        running.stop()
