"""Persisted transitions per second: ``cases.fire`` against the same writes issued by hand.

Each engine iteration is one ``with session.begin(): fire(...)`` on a case that cycles
open -> working -> open, with a counter increment so the data changes every time; it does all
a fire does (read the case, step the machine, write, and whatever else fire brings along).
The baseline is what a fire cannot do without: the UPDATE of the case row (state, data,
version, updated_at, guarded by the old version), the INSERT of one history row, and that
row's feed position taken from the counter row (docs/events.md), as statements built once
with values computed in advance, in its own ``with engine.begin()`` per
iteration. Both sides run on the same database and engine (so the same pool, and on SQLite
the same WAL and ``BEGIN IMMEDIATE`` setup), on two cases of the same definition.

After a warm-up, the two sides run alternately for a few rounds (the side that goes first
swaps each round, so drift and table growth land on both); the median of each is reported,
with the ratio engine/baseline. The target is a ratio of at least 0.5 on every database: the
engine may spend as much time again as the bare writes on reading the case and deciding.

    python bench/transitions.py [--n N] [--databases sqlite,postgresql] [--profile]

Exits with status 1 if a ratio is below the target. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/transitions.py` puts bench/ first on sys.path, where this file would shadow the
# `transitions` library the engine's state machine imports. Drop it; use the repository root.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

import argparse  # noqa: E402
import cProfile  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402

from sqlalchemy import Engine, bindparam, func, insert, select, update  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bench.databases import DATABASES  # noqa: E402
from engine.core.history_chain import GENESIS, ChainedEvent, event_hash  # noqa: E402
from engine.core.machine import Actor  # noqa: E402
from engine.services import cases  # noqa: E402
from engine.services.definitions import publish  # noqa: E402
from engine.store import migrate  # noqa: E402
from engine.store.database import create_db_engine, session_factory  # noqa: E402
from engine.store.models import Base, EventType  # noqa: E402

TARGET_RATIO = 0.5
DEFAULT_N = 1000
DEFAULT_ROUNDS = 5
DEFAULT_WARMUP = 300

# A two-state loop: every fire moves the case and bumps data.count, so both the state and the
# data column change on each write, as in a real transition.
DEFINITION = """
name: bench_loop
title: {en: Benchmark loop, zh: 基准循环}
initial: open
data_schema:
  type: object
  required: [label]
  properties:
    label: {type: string}
    count: {type: integer, minimum: 0}
states:
  - name: open
    title: {en: Open, zh: 打开}
  - name: working
    title: {en: Working, zh: 处理中}
transitions:
  - trigger: start
    source: open
    dest: working
    actions:
      - increment: count
  - trigger: pause
    source: working
    dest: open
    actions:
      - increment: count
"""
NEXT = {"open": ("start", "working"), "working": ("pause", "open")}
ACTOR = Actor("bench")
T0 = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)

case_table = Base.metadata.tables["cases"]
events = Base.metadata.tables["case_events"]
feed_head = Base.metadata.tables["event_feed_head"]
# The baseline's three statements, built once. The SET and VALUES columns come from the keys
# of the parameters passed at execution; the guard's parameters get names of their own because
# SQLAlchemy reserves column names for the SET clause.
BASELINE_UPDATE = update(case_table).where(
    case_table.c.id == bindparam("guard_id"), case_table.c.version == bindparam("guard_version")
)
BASELINE_INSERT = insert(events)
# Every event carries its feed position (issue 15, docs/events.md): the least a hand-written
# outbox does is take the next one from the counter row in the same transaction.
BASELINE_POSITION = (
    update(feed_head)
    .where(feed_head.c.id == 1)
    .values(position=feed_head.c.position + 1)
    .returning(feed_head.c.position)
)


@dataclass
class Cursor:
    """Where one benchmarked case stands, so the next batch of work can be planned."""

    case_id: int
    state: str
    version: int
    count: int
    clock: int = 0  # instants handed out so far, in milliseconds after T0

    def plan(self, n: int) -> Iterator[tuple[str, str, str, int, int, datetime]]:
        """The next ``n`` transitions: trigger, from, to, new version, new count, now."""
        for _ in range(n):
            trigger, to_state = NEXT[self.state]
            self.clock += 1
            self.version += 1
            self.count += 1
            yield (
                trigger,
                self.state,
                to_state,
                self.version,
                self.count,
                T0 + timedelta(milliseconds=self.clock),
            )
            self.state = to_state


# --- the two sides -----------------------------------------------------------------------------


def engine_batch(session: Session, cursor: Cursor, n: int) -> Callable[[], None]:
    """``n`` fires through the engine; only the trigger and ``now`` are precomputed."""
    work = [(trigger, now) for trigger, *_, now in cursor.plan(n)]
    case_id, fire = cursor.case_id, cases.fire

    def run() -> None:
        for trigger, now in work:
            with session.begin():
                fire(session, case_id, trigger, actor=ACTOR, now=now)

    return run


def baseline_batch(engine: Engine, cursor: Cursor, n: int) -> Callable[[], None]:
    """``n`` times the writes a fire makes, with every value computed in advance."""
    work = []
    # The chain hash is a value like the others, computed in advance (the bench does not verify
    # chains; the engine's hashing is part of what it measures).
    head = GENESIS
    for trigger, from_state, to_state, version, count, now in cursor.plan(n):
        event = {
            "case_id": cursor.case_id,
            "seq": version,
            "event_type": EventType.TRANSITION.value,
            "trigger": trigger,
            "from_state": from_state,
            "to_state": to_state,
            "actor": ACTOR.name,
            "payload": {},
            "changes": {"count": count},
            "at": now,
            "idempotency_key": None,
        }
        head = event_hash(ChainedEvent(**event, context=None), head)
        event["hash"] = head
        row = {
            "guard_id": cursor.case_id,
            "guard_version": version - 1,
            "state": to_state,
            "data": {"label": "baseline", "count": count},
            "version": version,
            "updated_at": now,
            "history_head": head,
        }
        work.append((row, event))

    def run() -> None:
        for row, event in work:
            with engine.begin() as conn:
                if conn.execute(BASELINE_UPDATE, row).rowcount != 1:
                    raise RuntimeError(f"baseline lost its version guard at {row['version']}")
                position = conn.execute(BASELINE_POSITION).scalar_one()
                conn.execute(BASELINE_INSERT, {**event, "position": position})

    return run


def timed(run: Callable[[], None], n: int) -> float:
    start = time.perf_counter()
    run()
    return n / (time.perf_counter() - start)


# --- one database ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    database: str
    n: int
    rounds: int
    engine_tps: list[float]
    baseline_tps: list[float]

    @property
    def engine_median(self) -> float:
        return statistics.median(self.engine_tps)

    @property
    def baseline_median(self) -> float:
        return statistics.median(self.baseline_tps)

    @property
    def ratio(self) -> float:
        return self.engine_median / self.baseline_median


def _new_case(session: Session, label: str) -> Cursor:
    with session.begin():
        created = cases.create_case(
            session, "bench_loop", {"label": label, "count": 0}, actor=ACTOR, now=T0
        )
    case = created.case
    return Cursor(case.id, case.state, case.version, 0)


def _check(session: Session, cursor: Cursor) -> None:
    """Both sides must have persisted every transition they were timed for."""
    with session.begin():
        case = cases.get_case(session, cursor.case_id)
        seqs = session.execute(
            select(func.count(), func.max(events.c.seq)).where(events.c.case_id == cursor.case_id)
        ).one()
    if (case.version, case.state, case.data["count"]) != (
        cursor.version,
        cursor.state,
        cursor.count,
    ) or tuple(seqs) != (cursor.version, cursor.version):
        raise RuntimeError(f"case {cursor.case_id} does not hold the writes the bench made")


def bench_database(
    name: str, url: str, *, n: int, rounds: int, warmup: int, profile: bool
) -> Result:
    engine = create_db_engine(url)
    try:
        migrate.upgrade(engine)
        sessions = session_factory(engine)
        with sessions() as session:
            with session.begin():
                publish(session, DEFINITION, actor="bench", now=T0)
            engine_case = _new_case(session, "engine")
            baseline_case = _new_case(session, "baseline")

            engine_batch(session, engine_case, warmup)()
            baseline_batch(engine, baseline_case, warmup)()

            engine_tps: list[float] = []
            baseline_tps: list[float] = []
            for i in range(rounds):
                sides = [
                    (engine_tps, engine_batch(session, engine_case, n)),
                    (baseline_tps, baseline_batch(engine, baseline_case, n)),
                ]
                for figures, run in sides if i % 2 == 0 else reversed(sides):
                    figures.append(timed(run, n))

            if profile:
                profile_engine(name, engine_batch(session, engine_case, n))

            _check(session, engine_case)
            _check(session, baseline_case)
        return Result(name, n, rounds, engine_tps, baseline_tps)
    finally:
        engine.dispose()


def profile_engine(name: str, run: Callable[[], None]) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(run)
    print(f"\n--- cProfile of one engine batch on {name} (top 30 by own time) ---")
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    stats.sort_stats("tottime").print_stats(30)
    print("--- same batch, top 30 by cumulative time ---")
    stats.sort_stats("cumulative").print_stats(30)


# --- command line ------------------------------------------------------------------------------


def print_result(result: Result) -> None:
    def runs(figures: list[float]) -> str:
        return ", ".join(f"{f:.0f}" for f in figures)

    verdict = "meets" if result.ratio >= TARGET_RATIO else "BELOW"
    print(f"\n{result.database}")
    for side, median, figures in (
        ("engine", result.engine_median, result.engine_tps),
        ("baseline", result.baseline_median, result.baseline_tps),
    ):
        print(f"  {side:<9} {median:8.0f} transitions/s  (runs {runs(figures)})")
    print(f"  ratio     {result.ratio:8.2f}  ({verdict} target {TARGET_RATIO})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="transitions per timed run")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="timed runs per side")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="untimed, per side")
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile one extra engine batch"
    )
    args = parser.parse_args(argv)
    names = [name for name in args.databases.split(",") if name]
    unknown = sorted(set(names) - set(DATABASES))
    if unknown:
        parser.error(f"unknown database(s) {', '.join(unknown)}; choose from sqlite, postgresql")

    print(
        f"svcflow transitions bench: n={args.n} per run, {args.rounds} rounds, warm-up "
        f"{args.warmup}; python {platform.python_version()}, nproc {len(os.sched_getaffinity(0))}"
    )
    results = []
    for name in names:
        with DATABASES[name]() as url:
            result = bench_database(
                name, url, n=args.n, rounds=args.rounds, warmup=args.warmup, profile=args.profile
            )
        results.append(result)
        print_result(result)

    return 0 if all(r.ratio >= TARGET_RATIO for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
