"""A realistic mix on the bundled workflows, through the services and the timer-fire path,
against a hand-written SQLAlchemy Core baseline that makes the same row writes.

The mix (bench/journeys.py): per unit, four repair tickets through full journeys (with the
loaner and satisfaction-survey cases they spawn), two complaints and three spare parts, every
trigger with the payload and role a real integration uses, and every timer the journey's
clock runs into fired through ``timer_firing.fire_due_timer`` at its due instant (time is
injected, nothing sleeps). Each step is one transaction: ``with session.begin():`` around
``cases.create_case``, ``cases.fire`` or ``fire_due_timer``. Every outcome is checked (the
state each step must reach, the timer that must fall due next); any surprise stops the run.

The baseline replays, per step, the statements of the engine that changed rows, as recorded
in a calibration round (bench/replay.py says exactly what it does), one ``engine.begin()``
per step. After a warm-up and calibration, engine and baseline rounds alternate (the side
that goes first swaps each round); each round's steps are timed one by one and summed.
Printed: the median steps/s of each side, ``ratio`` = engine / baseline (target >= 0.5 on
each database), and ``growth`` = the cost of one repair-ticket fire (a ``confirm_visit``
self-loop) on a ticket with 1,000 events in its history / on one with 10 (target <= 1.25).

    python bench/workload.py [--units N] [--rounds R] [--databases sqlite,postgresql]
                             [--quick] [--profile] [--model]

Exits with status 1 if a target is missed (a ``--quick`` smoke run judges nothing), 2 if the
run could not do what it promises. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/workload.py` puts bench/ first on sys.path, where bench/calendar.py and
# bench/http.py would shadow the standard library's. Drop it; use the repository root.
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
from collections import Counter, defaultdict  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import timedelta  # noqa: E402
from typing import Any  # noqa: E402

from sqlalchemy import Engine, func, select  # noqa: E402

from bench import fire_costs  # noqa: E402
from bench.databases import DATABASES  # noqa: E402
from bench.driver import Driver, confirm_visit  # noqa: E402
from bench.journeys import START, Journey, unit  # noqa: E402
from bench.replay import (  # noqa: E402
    BenchFailure,
    Plan,
    Recorder,
    baseline_plan,
    count_ops,
    run_baseline,
)
from engine.services.definitions import publish  # noqa: E402
from engine.store import migrate  # noqa: E402
from engine.store.database import create_db_engine, session_factory  # noqa: E402
from engine.store.models import Base  # noqa: E402

TARGET_RATIO = 0.5
TARGET_GROWTH = 1.25
WORKFLOWS = _BENCH.parent / "workflows"

case_table = Base.metadata.tables["cases"]
event_table = Base.metadata.tables["case_events"]
timer_table = Base.metadata.tables["timers"]
sla_table = Base.metadata.tables["case_slas"]


@dataclass(frozen=True)
class Sizes:
    units: int = 10  # journey units per round (about 95 steps each)
    rounds: int = 5
    growth_fires: int = 20  # per round and per history length
    long_history: int = 1000
    short_history: int = 10
    model_reps: int = 100
    quick: bool = False

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(units=1, rounds=2, growth_fires=3, long_history=100, model_reps=3, quick=True)


def mix(tag: int, units: int) -> list[Journey]:
    """``units`` units of journeys; ``tag`` (one per round) keeps their serials apart."""
    return [j for u in range(units) for j in unit(f"{tag:04d}{u:03d}")]


# --- what a round left behind ------------------------------------------------------------------


def snapshot(engine: Engine, case_ids: Sequence[int], *, data: bool) -> list[Any]:
    """The cases as the round left them, in the order they were created: state, status,
    version (and data), and per case its events, timers by status and SLA clocks."""
    slot = {case_id: i for i, case_id in enumerate(case_ids)}
    out: list[Any] = [None] * len(case_ids)
    extra: dict[int, list[Any]] = defaultdict(list)
    with engine.connect() as conn:
        where = case_table.c.id.in_(case_ids)
        for row in conn.execute(
            select(
                case_table.c.id,
                case_table.c.definition_name,
                case_table.c.state,
                case_table.c.status,
                case_table.c.version,
                case_table.c.data,
            ).where(where)
        ):
            out[slot[row.id]] = (row.definition_name, row.state, row.status, row.version) + (
                (row.data,) if data else ()
            )
        for row in conn.execute(
            select(event_table.c.case_id, func.count())
            .where(event_table.c.case_id.in_(case_ids))
            .group_by(event_table.c.case_id)
        ):
            extra[slot[row[0]]].append(("events", row[1]))
        for row in conn.execute(
            select(timer_table.c.case_id, timer_table.c.name, timer_table.c.status, func.count())
            .where(timer_table.c.case_id.in_(case_ids))
            .group_by(timer_table.c.case_id, timer_table.c.name, timer_table.c.status)
        ):
            extra[slot[row[0]]].append(("timer", row[1], row[2], row[3]))
        for row in conn.execute(
            select(
                sla_table.c.case_id, sla_table.c.sla, sla_table.c.status, sla_table.c.phase
            ).where(sla_table.c.case_id.in_(case_ids))
        ):
            extra[slot[row[0]]].append(("sla", row[1], row[2], row[3]))
    return [(case, sorted(extra[i], key=repr)) for i, case in enumerate(out)]


# --- the mix, engine against baseline ----------------------------------------------------------


@dataclass
class MixResult:
    steps: int
    engine_rates: list[float] = field(default_factory=list)  # steps/s per round
    baseline_rates: list[float] = field(default_factory=list)
    engine_by_kind: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    baseline_by_kind: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    kinds: Counter[str] = field(default_factory=Counter)
    engine_statements: Counter[str] = field(default_factory=Counter)  # per round, by kind
    baseline_statements: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return statistics.median(self.engine_rates) / statistics.median(self.baseline_rates)


def _by_kind(kinds: Sequence[str], seconds: Sequence[float]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for kind, s in zip(kinds, seconds, strict=True):
        out[kind] += s
    return out


def bench_mix(engine: Engine, driver: Driver, sizes: Sizes, profile: bool) -> MixResult:
    tag = iter(range(1, 10_000))
    driver.run(mix(next(tag), 1))  # warm-up: caches, compiled statements, the pool
    recorder = Recorder(engine)
    driver.recorder = recorder
    try:
        calibration = driver.run(mix(next(tag), sizes.units))
    finally:
        recorder.close()
        driver.recorder = None
    plan = baseline_plan(calibration)
    kinds = [s.kind for s in calibration]
    expected = snapshot(engine, [i for s in calibration for i in s.inserted["cases"]], data=True)
    expected_shape = [(case[:4], rest) for case, rest in expected]
    result = MixResult(len(calibration), kinds=Counter(kinds))
    result.baseline_statements = count_ops(plan)
    result.skipped = dict(plan.skipped)
    for step in calibration:
        for statement in step.statements:
            result.engine_statements[_verb(statement.sql)] += 1

    _check_baseline(engine, plan, run_baseline(engine, plan, "/warm-up").ids["cases"], expected)

    for i in range(sizes.rounds):

        def engine_round(i: int = i) -> None:
            steps = driver.run(mix(next(tag), sizes.units))
            seconds = [s.seconds for s in steps]
            if [s.kind for s in steps] != kinds:
                raise BenchFailure(f"engine round {i} took other steps than the calibration")
            ids = _created_ids(engine, len(expected))
            got = snapshot(engine, ids, data=False)
            if got != expected_shape:
                raise BenchFailure(f"engine round {i} left its cases unlike the calibration's")
            result.engine_rates.append(len(seconds) / sum(seconds))
            for kind, total in _by_kind(kinds, seconds).items():
                result.engine_by_kind[kind].append(total)

        def baseline_round(i: int = i) -> None:
            run = run_baseline(engine, plan, f"/b{i}")
            _check_baseline(engine, plan, run.ids["cases"], expected)
            result.baseline_rates.append(len(run.seconds) / sum(run.seconds))
            for kind, total in _by_kind(kinds, run.seconds).items():
                result.baseline_by_kind[kind].append(total)

        sides = [engine_round, baseline_round]
        for side in sides if i % 2 == 0 else reversed(sides):
            side()

    if profile:
        driver.profiler = cProfile.Profile()
        try:
            driver.run(mix(next(tag), sizes.units))
        finally:
            profiler, driver.profiler = driver.profiler, None
        print_profile(
            profiler, "the steps of one more engine round (the lookups between them left out)"
        )
    return result


def _created_ids(engine: Engine, count: int) -> list[int]:
    """The ids of the last ``count`` cases created (the round just run), in order."""
    with engine.connect() as conn:
        ids = list(
            conn.execute(
                select(case_table.c.id).order_by(case_table.c.id.desc()).limit(count)
            ).scalars()
        )
    return ids[::-1]


def _check_baseline(engine: Engine, plan: Plan, ids: Sequence[int], expected: list[Any]) -> None:
    if len(ids) != plan.slots["cases"] or snapshot(engine, ids, data=True) != expected:
        raise BenchFailure(
            "the baseline's cases differ from the engine's: it did not make the same writes"
        )


def _verb(sql: str) -> str:
    """SELECT, or a write with its table, or BEGIN / SAVEPOINT / RELEASE."""
    words = sql.upper().split()
    if words[0] in ("INSERT", "DELETE"):
        return f"{words[0]} {words[2].lower()}"
    if words[0] == "UPDATE":
        return f"UPDATE {words[1].lower()}"
    return words[0]


# --- growth: the same fire on a short and on a long history ------------------------------------


@dataclass
class GrowthResult:
    short: list[float]  # seconds per fire
    long: list[float]
    short_events: tuple[int, int]
    long_events: tuple[int, int]

    @property
    def growth(self) -> float:
        return statistics.median(self.long) / statistics.median(self.short)


def bench_growth(driver: Driver, sizes: Sizes) -> GrowthResult:
    """Per round a fresh ticket at ``short_history`` events, and one ticket built to
    ``long_history`` events once; the two are fired alternately, one fire each at a time,
    the one going first swapping each time."""
    base = START + timedelta(days=30)
    long_id = driver.ticket("GROWTH-LONG", base, events=sizes.long_history)
    long_clock = base + timedelta(seconds=sizes.long_history)
    short_times: list[float] = []
    long_times: list[float] = []
    for r in range(sizes.rounds):
        start = base + timedelta(hours=1 + r)
        short_id = driver.ticket(f"GROWTH-SHORT-{r}", start, events=sizes.short_history)
        short_clock = start + timedelta(seconds=sizes.short_history)
        for i in range(sizes.growth_fires):
            pairs = [(short_id, short_clock, short_times), (long_id, long_clock, long_times)]
            for case_id, clock, times in pairs if i % 2 == 0 else reversed(pairs):
                now = clock + timedelta(milliseconds=100 * (r * sizes.growth_fires + i))
                started = time.perf_counter()
                with driver.session.begin():
                    confirm_visit(driver.session, case_id, now)
                times.append(time.perf_counter() - started)
    fires = sizes.rounds * sizes.growth_fires
    return GrowthResult(
        short_times,
        long_times,
        (sizes.short_history, sizes.short_history + sizes.growth_fires - 1),
        (sizes.long_history, sizes.long_history + fires - 1),
    )


# --- one database ------------------------------------------------------------------------------


@dataclass
class Result:
    database: str
    mix: MixResult
    growth: GrowthResult
    model: list[fire_costs.StepKind] | None = None


def bench_database(
    name: str, url: str, sizes: Sizes, *, profile: bool = False, model: bool = False
) -> Result:
    engine = create_db_engine(url)
    try:
        migrate.upgrade(engine)
        sessions = session_factory(engine)
        with sessions() as session, session.begin():
            for path in sorted(WORKFLOWS.glob("*.yaml")):
                publish(
                    session, path.read_text("utf-8"), actor="bench", now=START, origin=str(path)
                )
        driver = Driver(engine, sessions)
        try:
            mix_result = bench_mix(engine, driver, sizes, profile)
            growth = bench_growth(driver, sizes)
            kinds = fire_costs.measure(driver, sizes.model_reps) if model else None
        finally:
            driver.close()
        return Result(name, mix_result, growth, kinds)
    finally:
        engine.dispose()


# Where profiled code lives, by file path or built-in name: the first match names it.
_PLACES = (
    ("sqlalchemy", "SQLAlchemy"),
    ("/engine/", "svcflow (engine/)"),
    ("Program", "CEL evaluation"),
    ("cel.compile", "CEL compilation"),
    ("sqlite3", "database driver (sqlite3, psycopg)"),
    ("psycopg", "database driver (sqlite3, psycopg)"),
    ("jsonschema", "jsonschema"),
    ("transitions", "transitions"),
    ("/bench/", "the bench's driver"),
)


def print_profile(profiler: cProfile.Profile, what: str) -> None:
    stats = pstats.Stats(profiler, stream=sys.stdout)
    own: dict[str, float] = defaultdict(float)
    for (path, _, name), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        place = next((p for key, p in _PLACES if key in path or key in name), "other")
        own[place] += tottime
    total = sum(own.values())
    print(f"\n--- cProfile of {what}: own time by where the code lives ---")
    for place, seconds in sorted(own.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / total * 100:5.1f}%  {seconds:6.2f} s  {place}")
    print("--- top 30 by own time ---")
    stats.strip_dirs().sort_stats("tottime").print_stats(30)
    print("--- top 30 by cumulative time ---")
    stats.sort_stats("cumulative").print_stats(30)


# --- command line ------------------------------------------------------------------------------


def print_result(result: Result, sizes: Sizes) -> None:
    mix_result, growth = result.mix, result.growth

    def runs(figures: list[float]) -> str:
        return ", ".join(f"{f:.0f}" for f in figures)

    print(f"\n{result.database}")
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(mix_result.kinds.items()))
    print(f"  mix: {mix_result.steps} steps per round ({kinds}), {sizes.rounds} rounds per side")
    print(f"  engine statements per round: {dict(sorted(mix_result.engine_statements.items()))}")
    print(
        f"  baseline statements per round: {dict(sorted(mix_result.baseline_statements.items()))}"
    )
    print(f"  engine statements not replayed: {mix_result.skipped}")
    for side, rates in (
        ("engine", mix_result.engine_rates),
        ("baseline", mix_result.baseline_rates),
    ):
        print(f"  {side:<9} {statistics.median(rates):8.0f} steps/s  (rounds {runs(rates)})")
    for kind in sorted(mix_result.kinds):
        n = mix_result.kinds[kind]
        e = statistics.median(mix_result.engine_by_kind[kind]) / n * 1e3
        b = statistics.median(mix_result.baseline_by_kind[kind]) / n * 1e3
        print(f"    {kind:<7} engine {e:6.2f} ms/step  baseline {b:6.2f} ms/step  ({b / e:.2f})")
    verdict = "meets" if mix_result.ratio >= TARGET_RATIO else "BELOW"
    print(f"  ratio {mix_result.ratio:.2f}  ({verdict} target {TARGET_RATIO})")
    print(
        f"  confirm_visit on a ticket of {growth.short_events[0]}-{growth.short_events[1]} events: "
        f"{statistics.median(growth.short) * 1e3:.2f} ms; of {growth.long_events[0]}-"
        f"{growth.long_events[1]} events: {statistics.median(growth.long) * 1e3:.2f} ms "
        f"(medians of {len(growth.short)} fires each)"
    )
    verdict = "meets" if growth.growth <= TARGET_GROWTH else "ABOVE"
    print(f"  growth {growth.growth:.2f}  ({verdict} target {TARGET_GROWTH})")
    if result.model is not None:
        fire_costs.report(result.database, result.model)


def met(result: Result) -> bool:
    return result.mix.ratio >= TARGET_RATIO and result.growth.growth <= TARGET_GROWTH


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Sizes()
    parser.add_argument("--units", type=int, default=defaults.units, help="journey units per round")
    parser.add_argument("--rounds", type=int, default=defaults.rounds, help="timed rounds per side")
    parser.add_argument("--growth-fires", type=int, default=defaults.growth_fires)
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--quick", action="store_true", help="a small smoke run; judges nothing")
    parser.add_argument("--profile", action="store_true", help="cProfile one extra engine round")
    parser.add_argument(
        "--model", action="store_true", help="time the statements of each kind of fire"
    )
    args = parser.parse_args(argv)
    names = [n for n in args.databases.split(",") if n]
    unknown = sorted(set(names) - set(DATABASES))
    if unknown:
        parser.error(f"unknown database(s) {', '.join(unknown)}; choose from sqlite, postgresql")
    sizes = (
        Sizes.smoke()
        if args.quick
        else Sizes(units=args.units, rounds=args.rounds, growth_fires=args.growth_fires)
    )
    print(
        f"svcflow workload bench: {sizes.units} units per round, {sizes.rounds} rounds; python "
        f"{platform.python_version()}, nproc {len(os.sched_getaffinity(0))}, load "
        f"{os.getloadavg()[0]:.1f}"
    )
    results = []
    try:
        for name in names:
            with DATABASES[name]() as url:
                result = bench_database(name, url, sizes, profile=args.profile, model=args.model)
            results.append(result)
            print_result(result, sizes)
    except BenchFailure as exc:
        print(f"\nbench failed: {exc}", file=sys.stderr)
        return 2
    print(f"\nload at the end {os.getloadavg()[0]:.1f}")
    if sizes.quick:
        print("quick run: sizes too small to judge the targets")
        return 0
    return 0 if all(met(r) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
