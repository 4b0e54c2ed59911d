"""Fires per second through the HTTP API, against a bare Flask endpoint doing the same writes.

Both sides are served the way the Procfile serves the API: ``gunicorn --workers 2 --bind
127.0.0.1:PORT APP`` as a subprocess, with ``SVCFLOW_DATABASE_URL`` in its environment.

Two workloads (``--workflow``):

* ``bench_http`` (the default): a one-trigger definition defined below, ``ping`` from ``open``
  back to ``open`` incrementing ``data.count``, so every fire succeeds. It has no timers, so
  ``SVCFLOW_REDIS_URL`` points at a closed loopback port (nothing on its fire path uses Redis).
  The bare endpoint reads the case row, UPDATEs it guarded by the version it read (data,
  version, updated_at) and INSERTs one history row.
* ``repair_ticket``: the bundled ``workflows/repair_ticket.yaml`` (every bundled definition is
  published: a signature spawns a satisfaction survey). Each client walks its own tickets
  through a valid journey, logged -> closed in 11 fires (``bench/journey.py``: contact, remote
  diagnosis fails, dispatch, visit confirmed, arrival, diagnosis, consent, repair done, sign,
  report, close), so fires move SLA clocks, arm and cancel state and SLA timers, count a repair
  and spawn a child. A real Redis (``EmbeddedRedis``) takes the armed timers after commit, as
  in production; no worker runs, so none fires. The bare endpoint makes the same row writes:
  before the run the script fires one ticket through the journey with the engine's services
  and every statement captured, and turns each fire's INSERTs, UPDATEs and DELETEs (case
  update, history insert, timer inserts and cancels, ``case_slas`` inserts and updates, the
  repair counter, the spawned case with its rows) into a plan the bare endpoint replays with
  statements built once, reading nothing but the case row (``bench/journey.py``). It prints
  the plan: statements per fire of the engine against the bare writes.

Same run, same database (its own cases of the same definition), same client: ``--clients``
threads in this process, each with its own persistent ``http.client`` connection to
127.0.0.1 (gunicorn's sync workers answer ``Connection: close``, so in practice each request
opens a new TCP connection, on both sides alike), each phase bounded by time and by a count.

Phases: a warm-up of each side (untimed), then ``--rounds`` timed rounds per side splitting
``--seconds``, alternating, the side that goes first swapping each round; each client fires on
cases of its own, so clients never race for a version (``bench_http``: on ``--cases-per-client``
cases in turn, which keeps histories short; ``repair_ticket``: ticket after ticket, each through
its journey, ``--tickets-per-client`` prepared). Then a shorter *contended* variant in which
every client fires on one shared case (``repair_ticket``: a ticket in ``repairing`` taking the
``escalate`` self-loop): on PostgreSQL losers of the version race get 409, counted; on SQLite
``BEGIN IMMEDIATE`` serialises the read with the write, so there are none. Reported per side:
fires/s (successful fires over wall time), p50/p99 latency of successful fires, error counts by
status; and the ratio API/bare. After the runs the script checks every case holds exactly the
versions and history rows the client saw succeed.

    python bench/http.py [--workflow bench_http|repair_ticket] [--seconds 15] [--clients 8]
                         [--database sqlite|postgresql] [--cases-per-client 1]
                         [--tickets-per-client 150] [--rounds 3] [--warmup 3]
                         [--shared-seconds 5] [--max-fires 1000000] [--profile]
                         [--profile-n 1000] [--keep-logs]

Target: ratio >= 0.5 for the uncontended variant. Exits with status 1 when it is missed (or the
check fails). ``--profile`` then runs both apps in this process (Flask test client, same
database, cases of their own with short histories): CPU time per request of each side, a
cProfile breakdown of the API's fire, and (``bench_http``) the API's cost on one of the run's
long-history cases. Everything started (gunicorn, PostgreSQL, Redis) is stopped on the way out.
The servers' logs live in a temp directory, deleted at the end unless a fire answered 5xx (or
``--keep-logs``): then they are moved to ``var/bench-logs/http-<database>-<time>/`` and the path
is printed, since the traceback of a rare 500 is only there. Results: docs/benchmarks.md.
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
from typing import Any, ClassVar  # noqa: E402

from flask import Flask, request  # noqa: E402
from sqlalchemy import bindparam, func, insert, select, update  # noqa: E402

from bench import journey  # noqa: E402
from bench.databases import DATABASES  # noqa: E402
from engine.core.history_chain import ChainedEvent, event_hash  # noqa: E402
from engine.core.machine import Actor  # noqa: E402
from engine.runtime.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from engine.services.cases import create_case, fire  # noqa: E402
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
BARE_SELECT = select(
    cases.c.id, cases.c.state, cases.c.data, cases.c.version, cases.c.history_head
).where(cases.c.id == bindparam("case_id"))
BARE_UPDATE = update(cases).where(
    cases.c.id == bindparam("guard_id"), cases.c.version == bindparam("guard_version")
)
BARE_INSERT = insert(events)


PLAN_ENV = "SVCFLOW_BENCH_PLAN"  # path of the repair-ticket write plan, for the bare app


def create_bare_app(database_url: str | None = None, plan: journey.Plan | None = None) -> Flask:
    """The floor for a fire over HTTP: the same three statements in one transaction, on an
    engine from ``create_db_engine`` (so SQLite gets the same WAL and ``BEGIN IMMEDIATE``).
    With a repair-ticket plan (``plan``, or the file named by ``SVCFLOW_BENCH_PLAN``): the
    row writes of the ticket's fire instead (:func:`bench.journey.replay`)."""
    engine = create_db_engine(database_url)
    if plan is None and os.environ.get(PLAN_ENV):
        plan = journey.Plan.from_json(Path(os.environ[PLAN_ENV]).read_text("utf-8"))
    if plan is not None:
        return _bare_ticket_app(engine, plan)
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
            # The history's chain (docs/audit.md): a floor for a fire writes it too.
            event["hash"] = event_hash(ChainedEvent(**event, context=None), row.history_head)
            guarded["history_head"] = event["hash"]
            if conn.execute(BARE_UPDATE, guarded).rowcount != 1:
                return {"error": "conflict", "case_id": case_id}, 409
            conn.execute(BARE_INSERT, event)
        return {
            "case": {"id": case_id, "state": row.state, "data": data, "version": version},
            "event": {"seq": version, "trigger": trigger, "at": now.isoformat()},
        }

    return app


def _bare_ticket_app(engine: Any, plan: journey.Plan) -> Flask:
    """One endpoint, one transaction: read the ticket row, then the writes the engine's fire
    of that trigger from that state made (409 when the version guard misses, 404 for a
    trigger the journey does not take there)."""
    app = Flask("svcflow-bare-ticket")
    steps = plan.by_source()

    @app.post("/bare/cases/<int:case_id>/fire")
    def fire_ticket(case_id: int) -> Any:
        body = request.get_json()
        trigger = body["trigger"]
        now = datetime.now(UTC)
        try:
            with engine.begin() as conn:
                row = conn.execute(journey.SELECT_TICKET, {"b_id": case_id}).one_or_none()
                if row is None:
                    return {"error": "not found", "case_id": case_id}, 404
                step = steps.get((row.state, trigger))
                if step is None:
                    return {"error": "no such step", "state": row.state, "trigger": trigger}, 404
                case = journey.replay(conn, step, row, now)  # rolled back if it raises
        except journey.GuardMissed:
            return {"error": "conflict", "case_id": case_id}, 409
        return {"case": case, "event": {"trigger": trigger, "at": now.isoformat()}}

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


class Cycle:
    """A client's next request: its cases in turn, the same body every time."""

    def __init__(self, case_ids: Sequence[int], body: bytes = BODY) -> None:
        self.order = itertools.cycle(list(case_ids))
        self.body = body
        self.exhausted = False

    def next(self) -> tuple[int, bytes] | None:
        return next(self.order), self.body

    def done(self, case_id: int, ok: bool) -> None:
        pass


class Journeys:
    """A client's next request: its tickets one after the other, each through
    :data:`bench.journey.STEPS`. Kept across phases, so each phase goes on where the last left
    off; a ticket whose fire fails is given up (its next step would fail too)."""

    BODIES: ClassVar[list[bytes]] = [
        json.dumps({"trigger": t, "payload": p}).encode() for t, p in journey.STEPS
    ]

    def __init__(self, case_ids: Sequence[int]) -> None:
        self.left = list(reversed(case_ids))
        self.step = 0
        self.exhausted = False

    def next(self) -> tuple[int, bytes] | None:
        if not self.left:
            self.exhausted = True
            return None
        return self.left[-1], self.BODIES[self.step]

    def done(self, case_id: int, ok: bool) -> None:
        self.step += 1
        if not ok or self.step == len(self.BODIES):
            self.left.pop()
            self.step = 0


def _client(side: Side, cursor: Any, budget: int, start: Start, out: Tally) -> None:
    """Fire what ``cursor`` says until the deadline, the budget or the cursor runs out, on one
    connection (which http.client reopens whenever the server closed it)."""
    conn = http.client.HTTPConnection("127.0.0.1", side.port, timeout=REQUEST_TIMEOUT)
    ok, latencies, statuses = Counter[int](), [], Counter[str]()
    start.go.wait()
    try:
        while budget > 0 and time.perf_counter() < start.deadline:
            request_ = cursor.next()
            if request_ is None:
                break
            case_id, body = request_
            budget -= 1
            began = time.perf_counter()
            try:
                conn.request("POST", side.path.format(case_id=case_id), body, side.headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                statuses[type(exc).__name__] += 1
                conn.close()
                cursor.done(case_id, False)
                continue
            if response.status == 200:
                latencies.append(time.perf_counter() - began)
                ok[case_id] += 1
            else:
                statuses[str(response.status)] += 1
            cursor.done(case_id, response.status == 200)
    finally:
        conn.close()
        # Merged once per thread, at the end, so the timed loop shares nothing.
        with _MERGE_LOCK:
            out.ok.update(ok)
            out.latencies.extend(latencies)
            out.statuses.update(statuses)


def run_phase(side: Side, cursors: Sequence[Any], seconds: float, budget: int) -> Tally:
    """One client thread per cursor, each firing what its cursor says (give several clients
    cursors on the same case to make them race); ``budget`` fires at most in all."""
    tally = Tally(side.name)
    start = Start()
    per_client = max(1, budget // len(cursors))
    threads = [
        threading.Thread(target=_client, args=(side, c, per_client, start, tally), daemon=True)
        for c in cursors
    ]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    start.deadline = began + seconds
    start.go.set()
    for thread in threads:
        thread.join(timeout=seconds + REQUEST_TIMEOUT + 10)
    tally.elapsed = time.perf_counter() - began
    if any(c.exhausted for c in cursors):
        tally.statuses["ran out of tickets"] += 1
    return tally


# --- processes ---------------------------------------------------------------------------------


def _gunicorn() -> str:
    beside = Path(sys.executable).with_name("gunicorn")
    found = str(beside) if beside.exists() else shutil.which("gunicorn")
    if found is None:
        raise SystemExit("No `gunicorn` command beside this Python or on PATH.")
    return found


@contextmanager
def gunicorn(
    app: str,
    *,
    database_url: str,
    logs: Path,
    label: str,
    redis_url: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[int]:
    """``gunicorn --workers 2 --bind 127.0.0.1:PORT APP`` in its own process group; yields the
    port once a request gets an answer. Stopped with SIGTERM (SIGKILL after 10 s)."""
    port = free_port()
    env = {
        **os.environ,
        **(env or {}),
        "SVCFLOW_DATABASE_URL": database_url,
        # Without one, a port nothing listens on: the fire path of a workflow without timers
        # never uses Redis.
        "SVCFLOW_REDIS_URL": redis_url or f"redis://127.0.0.1:{free_port()}/0",
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
    plan: journey.Plan | None = None  # repair_ticket: what each fire writes
    shared_base: int = 1  # the shared cases' version before the run

    def expected_version(self, case_id: int, fires: int) -> int:
        if self.plan is None:
            return 1 + fires
        if case_id in (self.api_shared, self.bare_shared):
            return self.shared_base + fires
        return self.plan.version_after(fires)


def prepare(
    url: str, clients: int, cases_per_client: int, profile_cases: int, workflow: str = NAME
) -> Fixture:
    engine = create_db_engine(url)
    try:
        migrate.upgrade(engine)
        if workflow == journey.NAME:
            return _prepare_tickets(engine, clients, cases_per_client, profile_cases)
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


def _prepare_tickets(engine: Any, clients: int, tickets: int, profile_tickets: int) -> Fixture:
    """Every bundled definition published, the write plan captured from one ticket's journey
    through the services, and new tickets (created now: their SLA clocks run from the wall
    clock the API fires on), 50 per transaction; the shared ones taken to `repairing`."""
    now = datetime.now(UTC)
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        journey.publish_bundled(session, now)
        token = create_token(session, name="bench", role="integrator", actor="bench", now=now)
    plan = journey.capture_plan(engine, now)
    serials = itertools.count()

    def new(n: int) -> list[int]:
        ids: list[int] = []
        with sessions() as session:
            for chunk in range(0, n, 50):
                with session.begin():
                    for _ in range(min(50, n - chunk)):
                        data = journey.ticket_data(next(serials))
                        outcome = create_case(
                            session, journey.NAME, data, actor=journey.ACTOR, now=now
                        )
                        ids.append(outcome.case.id)
        return ids

    def shared() -> int:
        [ticket] = new(1)
        with sessions() as session:
            for trigger, payload in journey.STEPS[: journey.REPAIRING_AFTER]:
                with session.begin():
                    fire(session, ticket, trigger, payload, actor=journey.ACTOR, now=now)
        return ticket

    return Fixture(
        token=token,
        api_cases=[new(tickets) for _ in range(clients)],
        bare_cases=[new(tickets) for _ in range(clients)],
        api_shared=shared(),
        bare_shared=shared(),
        api_profile=new(profile_tickets),
        bare_profile=new(profile_tickets),
        plan=plan,
        shared_base=plan.version_after(journey.REPAIRING_AFTER),
    )


def check(url: str, succeeded: Counter[int], fixture: Fixture) -> list[str]:
    """Every case must be at the version the fires the client saw succeed take it to, with a
    contiguous history of that length; returns what does not hold."""
    engine = create_db_engine(url)
    problems = []
    try:
        with engine.connect() as conn:
            for case_id, n in sorted(succeeded.items()):
                version, data = conn.execute(
                    select(cases.c.version, cases.c.data).where(cases.c.id == case_id)
                ).one()
                rows, top = conn.execute(
                    select(func.count(), func.max(events.c.seq)).where(events.c.case_id == case_id)
                ).one()
                want = fixture.expected_version(case_id, n)
                counted = fixture.plan is not None or data["count"] == n
                if not (version == rows == top == want and counted):
                    problems.append(
                        f"case {case_id}: client saw {n} fires (version {want} expected), "
                        f"database has version {version}, {rows} events (max seq {top}), "
                        f"count {data.get('count')}"
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
    ("      engine fire (read, step, write, timers, clocks)", "engine/services/cases.py", "fire"),
    ("        read_case: SELECT of the case row", "engine/store/case_store.py", "read_case"),
    ("        counters.read: SELECT of the counters", "engine/services/counters.py", "read"),
    ("        machine step", "engine/core/machine.py", "step"),
    (
        "        write_event: UPDATE case + INSERT event",
        "engine/store/case_store.py",
        "write_event",
    ),
    (
        "        sync_after_event: timers and clocks",
        "engine/services/scheduling.py",
        "sync_after_event",
    ),
    ("          sla_clocks.sync: advance, write clocks", "engine/services/sla_clocks.py", "sync"),
    ("          arm: INSERT timers", "engine/services/scheduling.py", "arm"),
    ("          _cancel: UPDATE timers", "engine/services/scheduling.py", "_cancel"),
    ("        settle: spawned children", "engine/services/cases.py", "settle"),
    ("      api.cases._view: the response's read-back", "api/cases.py", "_view"),
    ("        case_detail()", "engine/services/case_detail.py", "case_detail"),
    ("          sla_clocks.clocks: SELECT clocks", "engine/services/sla_clocks.py", "clocks"),
    ("          armed_timers(): ORM SELECT", "engine/services/timer_firing.py", "armed_timers"),
    ("      commit", "sqlalchemy/orm/session.py", "commit"),
    ("        after commit: timers handed to Redis", "engine/runtime/delivery.py", "deliver"),
    ("    response: marshmallow dump", "marshmallow/schema.py", "dump"),
    ("  teardown: session close", "api/db.py", "_close"),
    (
        "(anywhere) calendars loaded (LazyCalendars)",
        "engine/store/calendar_store.py",
        "load_calendars",
    ),
    ("(anywhere) logging: records formatted and written", "logging/__init__.py", "_log"),
    ("(anywhere) after-commit observation sinks", "engine/store/observations.py", "_emit"),
)


def profile_view(
    url: str, fixture: Fixture, n: int, earlier: Counter[int], redis_url: str | None = None
) -> Counter[int]:
    """The API's fire view and the bare endpoint in this process (Flask test client, no
    gunicorn, no socket), on cases of their own with short histories: CPU time per request of
    each side, then where the API's goes (cProfile); then the API on one of the run's cases,
    whose history is long by now (``earlier``: the fires the run made per case). Returns the
    fires made here, for the check."""
    from api.app import create_app  # noqa: PLC0415

    redis_url = redis_url or f"redis://127.0.0.1:{free_port()}/0"  # closed: no timers
    api_app = create_app({"DATABASE_URL": url, "REDIS_URL": redis_url, "TESTING": True})
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
    bare_app = create_bare_app(url, fixture.plan)
    headers = {"Authorization": f"Bearer {fixture.token}", "Content-Type": "application/json"}
    api_client, bare_client = api_app.test_client(), bare_app.test_client()
    fired: Counter[int] = Counter()

    def loop(client: Any, path: str, cursor: Any, count: int) -> float:
        """CPU microseconds of this thread per request (the database server's excluded)."""
        began = time.thread_time()
        for _ in range(count):
            request_ = cursor.next()
            if request_ is None:
                raise SystemExit(f"{path}: out of cases to profile; use a smaller --profile-n")
            case_id, body = request_
            response = client.post(path.format(case_id=case_id), data=body, headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"{path}: {response.status_code} {response.get_data(True)}")
            cursor.done(case_id, True)
            fired[case_id] += 1
        return (time.thread_time() - began) / count * 1e6

    kind = Cycle if fixture.plan is None else Journeys
    api_cursor, bare_cursor = kind(fixture.api_profile), kind(fixture.bare_profile)
    api = functools.partial(loop, api_client, "/api/v1/cases/{case_id}/fire", api_cursor)
    bare = functools.partial(loop, bare_client, "/bare/cases/{case_id}/fire", bare_cursor)
    warm = min(n, len(fixture.api_profile))
    api(warm)
    bare(warm)
    api_us: list[float] = []
    bare_us: list[float] = []
    for i in range(3):
        for figures, side in (
            ((api_us, api), (bare_us, bare)) if i % 2 == 0 else ((bare_us, bare), (api_us, api))
        ):
            figures.append(side(n))
    api_cpu, bare_cpu = statistics.median(api_us), statistics.median(bare_us)
    history = sum(fired[i] for i in fixture.api_profile) / len(fixture.api_profile)
    if fixture.plan is not None:  # every ticket walks the same journey (1 to 13 events)
        history = fixture.plan.version_after(len(journey.STEPS)) + 1
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

    print("the same fires, the 12 functions with the most own time:")
    own = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    for (path, line, name), entry in own[:12]:
        where = "/".join(Path(path).parts[-2:])
        print(f"  {entry[2] / n * 1e6:6.0f} us {entry[2] / total:6.1%}  {where}:{line} {name}")
    if fixture.plan is not None:
        return fired  # a ticket's history ends with its journey
    long_case = fixture.api_cases[0][0]
    events_before = earlier[long_case] + 1
    count = max(20, n // 10)
    long_us = loop(api_client, "/api/v1/cases/{case_id}/fire", Cycle([long_case]), count)
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


def servers(
    stack: ExitStack, url: str, fixture: Fixture, logs: Path
) -> tuple[int, int, str | None]:
    """Both gunicorns (and, for the repair ticket, a Redis for the API's armed timers, and the
    write plan for the bare app); their ports and the Redis URL."""
    redis_url = None
    bare_env = {}
    if fixture.plan is not None:
        # Armed timers are handed to a real Redis after commit, as in production.
        redis_url = stack.enter_context(EmbeddedRedis(logs / "redis")).url
        plan_path = logs / "plan.json"
        plan_path.write_text(fixture.plan.to_json(), "utf-8")
        bare_env[PLAN_ENV] = str(plan_path)
    api_port = stack.enter_context(
        gunicorn(API_APP, database_url=url, logs=logs, label="api", redis_url=redis_url)
    )
    bare_port = stack.enter_context(
        gunicorn(BARE_APP, database_url=url, logs=logs, label="bare", env=bare_env)
    )
    return api_port, bare_port, redis_url


def bench_database(name: str, url: str, args: argparse.Namespace) -> Result:
    tickets = args.workflow == journey.NAME
    per_client = args.tickets_per_client if tickets else args.cases_per_client
    profile_cases = 0
    if args.profile:
        # repair_ticket: a warm-up, 3 timed runs and the cProfile run of --profile-n fires
        # each, over tickets of 11 fires.
        profile_cases = 5 * args.profile_n // len(journey.STEPS) + 5 if tickets else PROFILE_CASES
    began = time.perf_counter()
    fixture = prepare(url, args.clients, per_client, profile_cases, args.workflow)
    print(f"  prepared in {time.perf_counter() - began:.0f} s")
    if fixture.plan is not None:
        print_plan(fixture.plan)
    headers = {"Authorization": f"Bearer {fixture.token}", "Content-Type": "application/json"}
    logs = Path(tempfile.mkdtemp(prefix="svcflow-bench-http-logs-"))
    succeeded: Counter[int] = Counter()
    with ExitStack() as stack:
        api_port, bare_port, redis_url = servers(stack, url, fixture, logs)
        api = Side("api", api_port, "/api/v1/cases/{case_id}/fire", headers)
        bare = Side("bare", bare_port, "/bare/cases/{case_id}/fire", headers)
        kind = Journeys if tickets else Cycle
        own = {
            "api": [kind(ids) for ids in fixture.api_cases],
            "bare": [kind(ids) for ids in fixture.bare_cases],
        }
        shared = {"api": fixture.api_shared, "bare": fixture.bare_shared}
        shared_body = BODY
        if tickets:
            trigger, payload = journey.SELF_LOOP
            shared_body = json.dumps({"trigger": trigger, "payload": payload}).encode()

        answered: Counter[str] = Counter()  # every phase's errors, warm-up included

        def phase(side: Side, cursors: Sequence[Any], seconds: float) -> Tally:
            tally = run_phase(side, cursors, seconds, args.max_fires)
            succeeded.update(tally.ok)
            answered.update(tally.statuses)
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
            cursors = [Cycle([shared[side.name]], shared_body) for _ in range(args.clients)]
            contended[side.name] = phase(side, cursors, args.shared_seconds)

        def history(assignments: Sequence[Sequence[int]]) -> float:
            ids = [i for assigned in assignments for i in assigned if succeeded[i]]
            return sum(fixture.expected_version(i, succeeded[i]) for i in ids) / max(1, len(ids))

        histories = history(fixture.api_cases), history(fixture.bare_cases)
        if args.profile:
            succeeded.update(
                profile_view(url, fixture, args.profile_n, succeeded, redis_url=redis_url)
            )

    problems = check(url, succeeded, fixture)
    dispose_of_logs(logs, name, answered, keep=args.keep_logs)
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


KEPT_LOGS = ROOT / "var" / "bench-logs"


def dispose_of_logs(logs: Path, database: str, answered: Counter[str], *, keep: bool) -> None:
    """Delete a run's gunicorn and Redis logs, unless a fire was answered 5xx (or ``keep``):
    then move them to ``var/bench-logs/http-<database>-<UTC time>/`` and say where. A 5xx
    under load is rare and its traceback is only in the server's log."""
    server_errors = sum(n for status, n in answered.items() if status.startswith("5"))
    if not (server_errors or keep):
        shutil.rmtree(logs, ignore_errors=True)
        return
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    kept = KEPT_LOGS / f"http-{database}-{stamp}"
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(logs, kept)
    why = f"{server_errors} answer(s) 5xx" if server_errors else "--keep-logs"
    print(f"  gunicorn logs kept ({why}): {kept}")


# --- command line ------------------------------------------------------------------------------


def print_plan(plan: journey.Plan) -> None:
    """What one ticket's fires cost the engine in statements, against the bare replay."""
    print("  repair-ticket journey: statements per fire (engine: captured from its services)")
    print(f"    {'trigger':<16}{'from':<19}{'to':<19}{'engine':>7}{'writes':>8}{'bare':>6}")
    for step in plan.steps:
        bare = 1 + sum(1 for op in step.ops if op.kind != "insert_counter")
        print(
            f"    {step.trigger:<16}{step.source:<19}{step.dest:<19}{step.statements:>7}"
            f"{step.writes:>8}{bare:>6}"
        )


def print_result(result: Result, clients: int) -> None:
    def runs(figures: list[float]) -> str:
        return ", ".join(f"{f:.0f}" for f in figures)

    verdict = "meets" if result.ratio >= TARGET_RATIO else "BELOW"
    print(f"\n{result.database}: {clients} clients, cases of their own")
    print(f"  api   {result.api.summary()}  rounds {runs(result.api_rounds)}")
    print(f"  bare  {result.bare.summary()}  rounds {runs(result.bare_rounds)}")
    print(f"  ratio {result.ratio:.2f}  ({verdict} target {TARGET_RATIO})")
    if result.api.statuses.get("ran out of tickets") or result.bare.statuses.get(
        "ran out of tickets"
    ):
        print("  WARNING: a client ran out of tickets: give more --tickets-per-client")
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
    parser.add_argument(
        "--workflow",
        choices=[NAME, journey.NAME],
        default=NAME,
        help="the one-trigger benchmark definition, or the bundled repair ticket",
    )
    parser.add_argument(
        "--tickets-per-client",
        type=int,
        default=150,
        help="repair_ticket: tickets prepared per client and side, 11 fires each",
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
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="keep the gunicorn logs in var/bench-logs/ (kept anyway when a fire answered 5xx)",
    )
    args = parser.parse_args(argv)
    if min(args.clients, args.rounds, args.cases_per_client) < 1:
        parser.error("--clients, --rounds and --cases-per-client must be at least 1")

    print(
        f"svcflow http bench: {args.workflow} on {args.database}, {args.clients} clients x "
        f"{args.tickets_per_client if args.workflow == journey.NAME else args.cases_per_client}"
        f" case(s), {args.seconds:g} s per "
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
