"""PostgreSQL stopped and started again under HTTP load: nothing acknowledged is lost, clients
are told to retry (503 + Retry-After, never 500), the log says it once, and service resumes
with no one touching it.

Clients create cases and fire triggers as fast as they can, each request with its own
Idempotency-Key, retrying a 503 with the same key as an integrator should. The server is
stopped as ``pg_ctl stop`` does (fast mode: open sessions are ended mid-transaction), held
down until the clients have been refused many times, and started again. The test owns its
server, so stopping it disturbs no other test.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from api import state
from api.app import create_app
from api.problems import RETRY_AFTER_SECONDS
from engine.runtime.embedded_postgres import EmbeddedPostgres
from engine.services.definitions import publish
from engine.services.tokens import create_token
from engine.store import migrate
from engine.store.database import create_db_engine, session_factory
from engine.store.models import Case, CaseEvent, EventType
from tests.api.conftest import API_COUNTER
from tests.conftest import DATABASES, T0

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif("postgresql" not in DATABASES, reason="PostgreSQL not tested"),
]

CLIENTS = 6
FIRES_PER_CASE = 2
ACKS_BEFORE_THE_STOP = 60
DOWN_FOR = 3.0  # seconds the server stays stopped (the scenario: a restart that takes a while)
REFUSALS_WHILE_DOWN = 100  # ... and until clients were refused this often while it was down
ACKS_PER_CLIENT_AFTER = 5  # each client must get this many writes through after the restart
RESUMES_WITHIN = 5.0  # seconds from the server being up again to the first acknowledged write
PHASE_DEADLINE = 20.0
COUNTER = {"definition": "api_counter", "data": {"count": 0}}
OUTAGE_LOG = "engine.runtime.outages"


@dataclass(frozen=True)
class Answer:
    client: int
    status: int
    sent: float  # time.monotonic()
    received: float
    retry_after: str | None
    mimetype: str
    code: str | None
    replayed: bool  # answered from the record of a first attempt that did commit


@dataclass
class Ledger:
    """What the clients were told, kept under a lock: every answer, and each acknowledged
    write with its idempotency key."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: list[Answer] = field(default_factory=list)
    created: dict[str, int] = field(default_factory=dict)  # create key -> case id
    fired: dict[str, int] = field(default_factory=dict)  # fire key -> case id
    failures: list[str] = field(default_factory=list)

    def note(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)

    def count(self, wanted: Callable[[Answer], bool]) -> int:
        with self.lock:
            return sum(1 for a in self.answers if wanted(a))


def _until(condition: Callable[[], bool], what: str, deadline: float = PHASE_DEADLINE) -> None:
    """Wait for ``condition``, polling, at most ``deadline`` seconds."""
    give_up = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < give_up, f"not within {deadline} s: {what}"
        time.sleep(0.05)


class Client(threading.Thread):
    """Creates a counter case, fires ``ping`` on it a few times, and again, until stopped.
    Each write is retried with its own key until it is acknowledged (2xx)."""

    def __init__(self, number: int, base: str, token: str, ledger: Ledger) -> None:
        super().__init__(name=f"client-{number}", daemon=True)
        self.number, self.base, self.ledger = number, base, ledger
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                key, case = self._acknowledged("/api/v1/cases", COUNTER)
                with self.ledger.lock:
                    self.ledger.created[key] = case["id"]
                for _ in range(FIRES_PER_CASE):
                    key, _case = self._acknowledged(
                        f"/api/v1/cases/{case['id']}/fire", {"trigger": "ping"}
                    )
                    with self.ledger.lock:
                        self.ledger.fired[key] = case["id"]
        except Exception as exc:  # reported by the test, which would otherwise wait in vain
            with self.ledger.lock:
                self.ledger.failures.append(f"{self.name}: {exc!r}")
        finally:
            self.http.close()

    def _acknowledged(self, path: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        key = f"{self.number}-{uuid.uuid4().hex}"
        give_up = time.monotonic() + 2 * PHASE_DEADLINE
        while time.monotonic() < give_up:
            sent = time.monotonic()
            response = self.http.post(
                self.base + path, json=body, headers={"Idempotency-Key": key}, timeout=30
            )
            problem = response.json() if response.status_code >= 400 else {}
            self.ledger.note(
                Answer(
                    self.number,
                    response.status_code,
                    sent,
                    time.monotonic(),
                    response.headers.get("Retry-After"),
                    response.headers.get("Content-Type", ""),
                    problem.get("code"),
                    response.headers.get("Idempotent-Replayed") == "true",
                )
            )
            if response.status_code < 300:
                return key, response.json()
            if response.status_code != 503:
                raise AssertionError(f"{path}: {response.status_code} {problem}")
        raise AssertionError(f"{path} was not acknowledged within {2 * PHASE_DEADLINE} s")


def _assert_stored_exactly_once(app: Flask, ledger: Ledger) -> None:
    """Every acknowledged create and fire is in the database, with its history, once; and
    nothing is there that no client was told of."""
    with state.of(app).runtime.sessions() as session:
        counts = {
            case_id: data["count"] for case_id, data in session.execute(select(Case.id, Case.data))
        }
        events = session.execute(
            select(
                CaseEvent.case_id, CaseEvent.seq, CaseEvent.event_type, CaseEvent.idempotency_key
            )
        ).all()
    qualified = {e.idempotency_key.split(":", 1)[1]: e for e in events}
    assert len(qualified) == len(events)  # every event carries its request's key
    acknowledged_keys = ledger.created.keys() | ledger.fired.keys()
    lost, unacknowledged = (
        acknowledged_keys - qualified.keys(),
        qualified.keys() - acknowledged_keys,
    )
    assert (lost, unacknowledged) == (set(), set())
    assert {k: qualified[k].case_id for k in ledger.created} == ledger.created
    assert {k: qualified[k].case_id for k in ledger.fired} == ledger.fired
    assert sorted(counts) == sorted(ledger.created.values())  # no case nobody was told of
    assert Counter(e.event_type for e in events) == {
        EventType.CREATED.value: len(ledger.created),
        EventType.TRANSITION.value: len(ledger.fired),
    }
    fired = Counter(ledger.fired.values())
    assert counts == {case: fired[case] for case in counts}
    for case in counts:
        seqs = sorted(e.seq for e in events if e.case_id == case)
        assert seqs == list(range(1, fired[case] + 2)), case  # contiguous history


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres(prefix="svcflow-pg-restart-") as server:
        yield server


@pytest.fixture
def app(own_postgres: EmbeddedPostgres, closed_redis_url: str) -> Iterator[Flask]:
    """Overrides the API tests' app: this one runs on the test's own server."""
    url = own_postgres.create_database("svcflow")
    engine = create_db_engine(url)
    migrate.upgrade(engine)
    with session_factory(engine)() as session, session.begin():
        publish(session, API_COUNTER, actor="test", now=T0)
    engine.dispose()
    flask_app = create_app({"DATABASE_URL": url, "REDIS_URL": closed_redis_url})
    yield flask_app
    state.of(flask_app).runtime.close()


@pytest.fixture
def token(app: Flask) -> str:
    with state.of(app).runtime.sessions() as session, session.begin():
        return create_token(session, name="load", role="integrator", actor="test", now=T0)


def test_a_postgres_restart_under_load_loses_nothing_and_heals_by_itself(
    app: Flask,
    live_server: str,
    token: str,
    own_postgres: EmbeddedPostgres,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # In this order: each call also sets the capturing handler's level, and the last one wins.
    caplog.set_level(logging.WARNING, logger="werkzeug")  # not a line per request
    caplog.set_level(logging.INFO, logger=OUTAGE_LOG)
    ledger = Ledger()
    clients = [Client(n, live_server, token, ledger) for n in range(CLIENTS)]
    for client in clients:
        client.start()

    def acknowledged() -> int:
        return ledger.count(lambda a: a.status < 300)

    def healthy() -> bool:
        assert not ledger.failures, ledger.failures
        return True

    try:
        _until(lambda: healthy() and acknowledged() >= ACKS_BEFORE_THE_STOP, "load under way")
        stopping = time.monotonic()
        own_postgres.halt()
        halted = time.monotonic()
        _until(
            lambda: (
                healthy()
                and time.monotonic() - halted >= DOWN_FOR
                and ledger.count(lambda a: a.status == 503 and a.sent > halted)
                >= REFUSALS_WHILE_DOWN
            ),
            "clients refused while the server is down",
        )
        own_postgres.resume()
        up = time.monotonic()
        _until(
            lambda: (
                healthy()
                and all(
                    ledger.count(lambda a, n=n: a.client == n and a.status < 300 and a.sent > up)
                    >= ACKS_PER_CLIENT_AFTER
                    for n in range(CLIENTS)
                )
            ),
            "every client's writes acknowledged again after the restart",
        )
    finally:
        for client in clients:
            client.stopping.set()
        for client in clients:
            client.join(timeout=2 * PHASE_DEADLINE)
    assert not ledger.failures, ledger.failures

    answers = ledger.answers
    statuses = Counter(a.status for a in answers)
    refused = [a for a in answers if a.status == 503]
    first_after = min(a.received for a in answers if a.status < 300 and a.sent > up)
    print(
        f"requests {len(answers)}, statuses {dict(statuses)}; stopping took "
        f"{halted - stopping:.1f} s, down {up - halted:.1f} s; first acknowledged write "
        f"{first_after - up:.2f} s after the restart, last 503 for a request sent "
        f"{max(a.sent for a in refused) - up:+.2f} s after it; acknowledged: "
        f"{len(ledger.created)} creates, {len(ledger.fired)} fires, "
        f"{sum(a.replayed for a in answers)} of them answered from a committed first attempt"
    )

    # Told to retry, never told of a bug; and only while the server was away.
    assert set(statuses) <= {200, 201, 503}, statuses
    assert min(a.received for a in refused) >= stopping
    assert {(a.retry_after, a.mimetype, a.code) for a in refused} == {
        (str(RETRY_AFTER_SECONDS), "application/problem+json", "database-unavailable")
    }
    assert first_after - up <= RESUMES_WITHIN
    assert max(a.sent for a in refused) - up <= RESUMES_WITHIN  # and no one is refused later

    _assert_stored_exactly_once(app, ledger)

    # One warning for the outage, one line for its end, and no traceback at all.
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == OUTAGE_LOG]
    assert [level for level, _ in lines] == ["WARNING", "INFO"], lines
    assert lines[0][1].startswith("database unavailable since ")
    assert lines[1][1].startswith("database available again after ")
    assert [
        r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR
    ] == []
