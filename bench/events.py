"""The event feed and webhooks at 10,000 events on the bundled repair ticket.

Three figures, each beside a baseline run in the same process on the same database:

1. **Webhook delivery lag, live.** A subscription to every event, the sender's loop running
   in a thread with its Redis doorbell (as in a worker), and a fast local receiver (an HTTP
   server on 127.0.0.1 answering 204). The producer creates ``N/2`` repair tickets from the
   bundled workflow and cancels each (``N`` events, one transaction each, as fast as it can);
   each event's lag is from its commit to its arrival at the receiver. Target: p99 <= 2 s.
   Baseline: the producer's own commit-to-commit pace (how fast events appear), so the
   sender's throughput reads as a ratio to the rate events are made.
2. **Feed throughput**: reading all ``N`` events by cursor, pages of 1,000
   (``engine.runtime.feed.read_page``), against a hand-written keyset SELECT of the same
   columns on the same join, in the same page size.
3. **Backlog drain**: a subscription replaying all ``N`` events (its cursor set back to 0)
   drained by the sender (signing, POSTing on its threads, noting each outcome), against a
   hand loop that signs and POSTs the same bodies on as many threads and notes nothing.

    python bench/events.py [--events N] [--database sqlite|postgresql]

Exits 1 if the lag's p99 is over 2 s. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from typing import Any  # noqa: E402

import requests  # noqa: E402
from sqlalchemy import select, update  # noqa: E402
from standardwebhooks.webhooks import Webhook  # noqa: E402

from bench.databases import DATABASES  # noqa: E402
from engine.core.machine import ADMIN_ROLE, Actor  # noqa: E402
from engine.runtime.clock import SystemClock  # noqa: E402
from engine.runtime.embedded_redis import EmbeddedRedis  # noqa: E402
from engine.runtime.feed import read_page  # noqa: E402
from engine.runtime.resources import Runtime  # noqa: E402
from engine.runtime.webhook_sender import SEND_THREADS, WebhookSender, drain  # noqa: E402
from engine.services import cases, webhooks  # noqa: E402
from engine.services.definitions import publish  # noqa: E402
from engine.store import event_feed, migrate  # noqa: E402
from engine.store.models import WebhookSubscription  # noqa: E402

ROOT = _BENCH.parent
case_table = event_feed.cases
event_table = event_feed.events
LAG_TARGET_SECONDS = 2.0
PAGE = 1000
ACTOR = Actor("bench", frozenset({ADMIN_ROLE}))
TICKET = {
    "customer": "Xiangya Hospital",
    "device_serial": "CT-2025-0042",
    "fault": "Gantry does not rotate",
    "priority": "normal",
}


# --- a fast local receiver ---------------------------------------------------------------------


class Arrivals:
    def __init__(self) -> None:
        self.at: dict[str, float] = {}  # webhook-id -> first arrival (monotonic)
        self.total = 0
        self.lock = threading.Lock()
        self.all_in = threading.Event()
        self.expected = 0

    def note(self, webhook_id: str) -> None:
        now = time.monotonic()
        with self.lock:
            self.total += 1
            self.at.setdefault(webhook_id, now)
            if len(self.at) >= self.expected:
                self.all_in.set()

    def expect(self, count: int) -> None:
        with self.lock:
            self.at.clear()
            self.total = 0
            self.expected = count
            self.all_in.clear()


@contextmanager
def receiver(arrivals: Arrivals) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            arrivals.note(self.headers["webhook-id"])
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks"
    finally:
        server.shutdown()
        server.server_close()


# --- the phases --------------------------------------------------------------------------------


def live_lag(runtime: Runtime, url: str, arrivals: Arrivals, n: int) -> dict[str, float]:
    with runtime.sessions() as session, session.begin():
        webhooks.create_subscription(
            session, url=url, events=["*"], definition=None, owner="bench",
            now=runtime.clock.now(), allowed_hosts=["127.0.0.1"],
        )  # fmt: skip
    sender = WebhookSender(runtime.sessions, runtime.clock, "bench-worker", hosts=["127.0.0.1"])
    stopping = threading.Event()
    loop = threading.Thread(target=sender.run, args=(stopping, runtime.feed_waiter), daemon=True)
    arrivals.expect(n)
    loop.start()
    committed: dict[tuple[int, int], float] = {}
    started = time.monotonic()
    for _ in range(n // 2):
        now = runtime.clock.now()
        with runtime.sessions() as session, session.begin():
            case_id = cases.create_case(
                session, "repair_ticket", TICKET, actor=ACTOR, now=now
            ).case.id
        committed[(case_id, 1)] = time.monotonic()
        with runtime.sessions() as session, session.begin():
            cases.cancel_case(session, case_id, actor=ACTOR, now=now, reason="bench")
        committed[(case_id, 2)] = time.monotonic()
    produced = time.monotonic() - started
    arrivals.all_in.wait(timeout=600)
    stopping.set()
    loop.join(timeout=30)
    sender.release()
    with runtime.sessions() as session:
        positions = {
            (r.case_id, r.seq): f"evt_{r.position}"
            for r in session.execute(
                select(event_table.c.case_id, event_table.c.seq, event_table.c.position)
            )
        }
    lags = sorted(
        arrivals.at[positions[k]] - t for k, t in committed.items() if positions[k] in arrivals.at
    )
    if len(lags) != n:
        raise SystemExit(f"only {len(lags)} of {n} events arrived")
    return {
        "produced_per_s": n / produced,
        "p50": statistics.median(lags),
        "p99": lags[int(0.99 * (len(lags) - 1))],
        "max": lags[-1],
        "duplicates": arrivals.total - len(arrivals.at),
    }


def feed_throughput(runtime: Runtime, n: int) -> tuple[float, float]:
    def engine_side() -> int:
        after, seen = 0, 0
        while True:
            page = read_page(runtime.sessions, after, limit=PAGE)
            seen += len(page.items)
            if not page.items:
                return seen
            after = page.next

    keyset = (
        select(
            event_table.c.position,
            event_table.c.case_id,
            event_table.c.seq,
            case_table.c.definition_name,
            case_table.c.definition_version,
            case_table.c.business_key,
            event_table.c.event_type,
            event_table.c.trigger,
            event_table.c.from_state,
            event_table.c.to_state,
            event_table.c.actor,
            event_table.c.payload,
            event_table.c.changes,
            event_table.c.at,
        )
        .join(case_table, case_table.c.id == event_table.c.case_id)
        .order_by(event_table.c.position)
        .limit(PAGE)
    )

    def baseline_side() -> int:
        after, seen = 0, 0
        while True:
            with runtime.engine.connect() as conn:
                rows = conn.execute(keyset.where(event_table.c.position > after)).all()
            seen += len(rows)
            if not rows:
                return seen
            after = rows[-1].position

    rates: dict[str, list[float]] = {"engine": [], "baseline": []}
    for _ in range(3):
        for name, side in (("baseline", baseline_side), ("engine", engine_side)):
            start = time.perf_counter()
            if side() != n:
                raise SystemExit(f"{name} read a different number of events")
            rates[name].append(n / (time.perf_counter() - start))
    return statistics.median(rates["engine"]), statistics.median(rates["baseline"])


def backlog_drain(runtime: Runtime, url: str, arrivals: Arrivals, n: int) -> tuple[float, float]:
    with runtime.sessions() as session, session.begin():
        sub, secret = webhooks.create_subscription(
            session, url=url, events=["*"], definition=None, owner="bench",
            now=runtime.clock.now(), allowed_hosts=["127.0.0.1"],
        )  # fmt: skip
        session.execute(
            update(WebhookSubscription).where(WebhookSubscription.id == sub.id).values(cursor=0)
        )
    sender = WebhookSender(runtime.sessions, runtime.clock, "bench-drain", hosts=["127.0.0.1"])
    arrivals.expect(n)
    start = time.perf_counter()
    drain(sender, rounds=100_000)
    engine_rate = n / (time.perf_counter() - start)
    if len(arrivals.at) != n:
        raise SystemExit(f"the drain delivered {len(arrivals.at)} of {n}")

    bodies = []
    with runtime.sessions() as session:
        after = 0
        while True:
            page = read_page(runtime.sessions, after, limit=PAGE)
            if not page.items:
                break
            after = page.next
            for e in page.items:
                body = json.dumps(
                    {"type": e.event_type, "timestamp": e.at.isoformat(), "data": e.to_dict()},
                    ensure_ascii=False, separators=(",", ":"),
                ).encode()  # fmt: skip
                bodies.append((e.event_id, body))
    signer = Webhook(secret)
    clock = SystemClock()
    local = threading.local()

    def post(item: tuple[str, bytes]) -> None:
        http = getattr(local, "http", None)
        if http is None:
            http = local.http = requests.Session()
        sent_at = clock.now()
        headers = {
            "content-type": "application/json",
            "webhook-id": item[0],
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signer.sign(item[0], sent_at, item[1]),
        }
        http.post(url, data=item[1], headers=headers, timeout=10).raise_for_status()

    arrivals.expect(n)
    start = time.perf_counter()
    with ThreadPoolExecutor(SEND_THREADS) as pool:
        list(pool.map(post, bodies))
    baseline_rate = n / (time.perf_counter() - start)
    return engine_rate, baseline_rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--database", choices=sorted(DATABASES), default="sqlite")
    args = parser.parse_args(argv)
    n = args.events - args.events % 2
    print(
        f"svcflow events bench: {n} events on repair_ticket, {args.database}; "
        f"python {platform.python_version()}"
    )
    arrivals = Arrivals()
    with (
        DATABASES[args.database]() as url,
        tempfile.TemporaryDirectory(prefix="svcflow-bench-redis-") as redis_dir,
        receiver(arrivals) as hook_url,
    ):
        redis = EmbeddedRedis(Path(redis_dir)).start()
        runtime = Runtime(database_url=url, redis_url=redis.url, clock=SystemClock())
        try:
            migrate.upgrade(runtime.engine)
            with runtime.sessions() as session, session.begin():
                source = (ROOT / "workflows" / "repair_ticket.yaml").read_text("utf-8")
                publish(session, source, actor="bench", now=runtime.clock.now())
            lag = live_lag(runtime, hook_url, arrivals, n)
            with runtime.sessions() as session, session.begin():
                session.execute(update(WebhookSubscription).values(status="paused"))
            feed, feed_base = feed_throughput(runtime, n)
            sent, sent_base = backlog_drain(runtime, hook_url, arrivals, n)
        finally:
            runtime.close()
            redis.stop()
    verdict = "meets" if lag["p99"] <= LAG_TARGET_SECONDS else "MISSES"
    print(
        f"  producer        {lag['produced_per_s']:8.0f} events/s committed (one per transaction)"
    )
    print(
        f"  delivery lag    p50 {lag['p50']:.3f} s  p99 {lag['p99']:.3f} s  max {lag['max']:.3f} s"
        f"  ({verdict} p99 <= {LAG_TARGET_SECONDS:.0f} s); duplicates {lag['duplicates']:.0f}"
    )
    print(
        f"  feed read       {feed:8.0f} events/s      baseline {feed_base:8.0f}"
        f"  ratio {feed / feed_base:.2f}"
    )
    print(
        f"  backlog drain   {sent:8.0f} deliveries/s  baseline {sent_base:8.0f}"
        f"  ratio {sent / sent_base:.2f}"
    )
    return 0 if lag["p99"] <= LAG_TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
