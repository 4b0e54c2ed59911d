"""Timer delivery under faults, at scale: for each fault, a thousand timers falling due over
twenty seconds on two real worker processes, and one fault while they come due.

Usage::

    .venv/bin/python bench/faults.py                       # PostgreSQL and SQLite
    .venv/bin/python bench/faults.py --database sqlite --timers 200

Each database first runs with no fault at all (the baseline, in this same process), then
each fault on a fresh database, Redis and pair of workers (tests/faults.py):

- ``flushall``: FLUSHALL once a quarter of the timers fired;
- ``kill_scheduler_holder``: kill -9 of the idle worker whose scheduler holds the lock, before
  the first timer is due;
- ``kill_mid_job``: kill -9 of a worker while it runs a job;
- ``kill_sweeper``: kill -9 of the worker holding the sweep lease, before the first is due;
- ``redis_restart_empty``: Redis stopped for 30 s from the first due time, restarted empty.

It prints one line per fault, ``fault NAME: armed N fired_once N lost N duplicates N early N
max_lag S`` with the ratio of its max lag to the baseline's, and last ``faults: lost L
duplicates D early E max_lag S``; it exits 1 unless nothing was lost, duplicated or early and
every max lag is within 60 s. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/faults.py` puts bench/ first on sys.path, where bench/calendar.py would shadow
# the standard library. Drop it; use the repository root.
_BENCH = Path(__file__).resolve().parent
ROOT = _BENCH.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402

from engine.runtime.embedded_postgres import EmbeddedPostgres  # noqa: E402
from tests.faults import LAG_BOUND, Cluster, FaultReport, cluster  # noqa: E402

LEAD = 10.0  # seconds from arming to the first due time: creating the cases fits in it
SPREAD = 20.0  # seconds the due times span
REDIS_DOWN = 30.0  # seconds Redis stays away in redis_restart_empty

Fault = Callable[[Cluster, float, int], None]  # the cluster, the first due (monotonic), count


def _until(when: float) -> None:
    time.sleep(max(0.0, when - time.monotonic()))  # waiting for a real moment


def no_fault(run: Cluster, first_due: float, armed: int) -> None:
    """The baseline: nothing breaks."""


def flushall(run: Cluster, first_due: float, armed: int) -> None:
    quarter = max(1, armed // 4)
    run.wait_for(lambda: run.report("").fired_once >= quarter, "a quarter fired", timeout=120)
    run.connection.flushall()


def kill_scheduler_holder(run: Cluster, first_due: float, armed: int) -> None:
    run.kill(run.worker_holding_scheduler_lock())


def kill_mid_job(run: Cluster, first_due: float, armed: int) -> None:
    _until(first_due)
    busy: list[int] = []

    def in_a_job() -> bool:
        found = run.worker_in_a_job()
        busy.extend([found] if found is not None else [])
        return found is not None

    run.wait_for(in_a_job, "a worker in a job", timeout=60)
    run.kill(busy[0])


def kill_sweeper(run: Cluster, first_due: float, armed: int) -> None:
    run.wait_for(lambda: run.sweep_lease_holder() is not None, "a first sweep")
    run.kill(run.worker_holding_sweep_lease())


def redis_restart_empty(run: Cluster, first_due: float, armed: int) -> None:
    _until(first_due)
    run.restart_redis_empty(down_for=REDIS_DOWN)


FAULTS: dict[str, Fault] = {
    "flushall": flushall,
    "kill_scheduler_holder": kill_scheduler_holder,
    "kill_mid_job": kill_mid_job,
    "kill_sweeper": kill_sweeper,
    "redis_restart_empty": redis_restart_empty,
}


@contextmanager
def databases(kind: str) -> Iterator[Callable[[str], str]]:
    """A factory of fresh databases of ``kind``, by name."""
    if kind == "postgresql":
        with EmbeddedPostgres(prefix="svcflow-bench-faults-pg-") as server:
            yield server.create_database
        return
    directory = Path(tempfile.mkdtemp(prefix="svcflow-bench-faults-sqlite-"))
    try:
        yield lambda name: f"sqlite:///{directory}/{name}.db"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run_fault(
    name: str, fault: Fault, database_url: str, scratch: Path, *, timers: int, workers: int
) -> FaultReport:
    with cluster(database_url, scratch / name, workers=workers) as run:
        armed_at = time.monotonic()
        dues = run.arm(timers, lead=LEAD, spread=SPREAD)
        fault(run, armed_at + LEAD, timers)
        run.wait_settled(dues)
        report = run.report(name)
        if run.processes_left() and not report.ok:
            print(f"    note: processes still running: {run.processes_left()}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timers", type=int, default=1000, help="timers per fault")
    parser.add_argument("--workers", type=int, default=2, help="rq worker processes")
    parser.add_argument("--database", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--fault", choices=sorted(FAULTS), action="append", help="only these")
    args = parser.parse_args(argv)
    kinds = ["postgresql", "sqlite"] if args.database == "both" else [args.database]
    chosen = {name: FAULTS[name] for name in (args.fault or FAULTS)}
    print(
        f"svcflow faults bench: {args.timers} timers per fault over {SPREAD:g} s, "
        f"{args.workers} workers; python {platform.python_version()}, nproc "
        f"{len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f}"
    )
    reports: list[FaultReport] = []
    scratch = Path(tempfile.mkdtemp(prefix="svcflow-bench-faults-"))
    try:
        for kind in kinds:
            print(f"{kind}:")
            with databases(kind) as fresh:
                size = {"timers": args.timers, "workers": args.workers}
                base = run_fault("none", no_fault, fresh("baseline"), scratch / kind, **size)
                print(f"  baseline {base.line()}")
                for name, fault in chosen.items():
                    report = run_fault(name, fault, fresh(name), scratch / kind, **size)
                    reports.append(report)
                    ratio = report.max_lag / base.max_lag if base.max_lag else float("inf")
                    print(f"  {report.line()} ({ratio:.1f}x the baseline's max lag)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    lost = sum(r.lost for r in reports)
    duplicates = sum(r.duplicates for r in reports)
    early = sum(r.early for r in reports)
    max_lag = max((r.max_lag for r in reports), default=0.0)
    print(f"faults: lost {lost} duplicates {duplicates} early {early} max_lag {max_lag:.1f}")
    kept = lost == duplicates == early == 0 and max_lag <= LAG_BOUND
    kept = kept and all(r.fired_once == r.armed for r in reports)
    return 0 if kept else 1


if __name__ == "__main__":
    sys.exit(main())
