"""Concurrent fires on one case: optimistic locking keeps history contiguous and loses nothing.

On SQLite write transactions begin with BEGIN IMMEDIATE and so run one after the other; a fire
that expected an older version then gets VersionMismatch. On PostgreSQL they really overlap and
the version-guarded UPDATE turns the loser away with ConcurrencyConflict. Either way exactly one
fire per version wins and nothing of a loser is written.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import ConcurrencyConflict, VersionMismatch
from engine.services import cases
from engine.services.definitions import PublishResult, list_versions, publish
from tests.conftest import ADMIN, T0
from tests.factories import create_case
from tests.workflows import COUNTER, VERSIONED_V1, VERSIONED_V2

THREADS = 12


def _assert_contiguous(sessions: sessionmaker[Session], case_id: int) -> list[Any]:
    with sessions() as session, session.begin():
        case = cases.get_case(session, case_id)
        events = cases.history(session, case_id)
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(events) + 1))
    assert case.version == seqs[-1]
    return events


def test_one_fire_wins_per_version(
    sessions: sessionmaker[Session], dialect: str, publish_workflow
) -> None:
    publish_workflow(COUNTER)
    case_id = create_case(sessions, "it_counter", {"count": 0}).case.id
    rounds = 6
    outcomes: Counter[str] = Counter()

    for version in range(1, rounds + 1):
        barrier = threading.Barrier(THREADS)

        def attempt(
            worker: int, version: int = version, barrier: threading.Barrier = barrier
        ) -> str:
            barrier.wait()
            try:
                with sessions() as session, session.begin():
                    cases.fire(
                        session, case_id, "ping", actor=ADMIN, now=T0, expected_version=version
                    )
            except (ConcurrencyConflict, VersionMismatch) as exc:
                return type(exc).__name__
            return "won"

        # Any other exception escapes pool.map and fails the test.
        with ThreadPoolExecutor(THREADS) as pool:
            results = Counter(pool.map(attempt, range(THREADS)))
        assert results["won"] == 1, results
        assert sum(results.values()) == THREADS
        outcomes.update(results)

    events = _assert_contiguous(sessions, case_id)
    assert len(events) == rounds + 1
    with sessions() as session, session.begin():
        assert cases.get_case(session, case_id).data == {"count": rounds}
    if dialect == "sqlite":
        # BEGIN IMMEDIATE serialises writers: a loser reads the new version, never a stale one.
        assert outcomes["ConcurrencyConflict"] == 0, outcomes


def test_retried_fires_without_expected_version_all_count(
    sessions: sessionmaker[Session], dialect: str, publish_workflow
) -> None:
    publish_workflow(COUNTER)
    case_id = create_case(sessions, "it_counter", {"count": 0}).case.id
    fires_each = 8
    barrier = threading.Barrier(THREADS)

    def worker(_: int) -> tuple[int, int]:
        barrier.wait()
        done = conflicts = 0
        while done < fires_each:
            assert conflicts < 1000, "a fire kept losing; retries should eventually win"
            try:
                with sessions() as session, session.begin():
                    cases.fire(session, case_id, "ping", actor=ADMIN, now=T0)
            except ConcurrencyConflict:
                conflicts += 1
                continue
            done += 1
        return done, conflicts

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(worker, range(THREADS)))
    successes = sum(done for done, _ in results)
    if dialect == "sqlite":
        assert sum(conflicts for _, conflicts in results) == 0

    assert successes == THREADS * fires_each
    events = _assert_contiguous(sessions, case_id)
    transitions = [e for e in events if e.event_type == "transition"]
    assert len(transitions) == successes
    assert [e.changes["count"] for e in transitions] == list(range(1, successes + 1))
    with sessions() as session, session.begin():
        assert cases.get_case(session, case_id).data["count"] == successes


def _wait_for_lock_waiter(engine: Engine) -> None:
    """Return once some other PostgreSQL backend is blocked on a lock (bounded poll)."""
    with engine.connect() as conn:
        for _ in range(2000):
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            if waiting:
                return
            conn.rollback()
            time.sleep(0.005)
    raise AssertionError("the second fire never waited for the first one's row lock")


@pytest.mark.parametrize("expected_version", [1, None], ids=["expected", "unconditional"])
def test_fire_computed_from_a_stale_read_writes_nothing(
    sessions: sessionmaker[Session],
    db_engine: Engine,
    publish_workflow,
    expected_version: int | None,
) -> None:
    """A holds the case uncommitted; B fires meanwhile. B never overwrites A's change."""
    publish_workflow(COUNTER)
    case_id = create_case(sessions, "it_counter", {"count": 0}).case.id
    outcome: dict[str, Any] = {}

    def second() -> None:
        try:
            with sessions() as session, session.begin():
                fired = cases.fire(
                    session,
                    case_id,
                    "ping",
                    actor=ADMIN,
                    now=T0,
                    expected_version=expected_version,
                )
            outcome["result"] = fired.case.version
        except (ConcurrencyConflict, VersionMismatch) as exc:
            outcome["result"] = exc

    with sessions() as first, first.begin():
        cases.fire(first, case_id, "ping", actor=ADMIN, now=T0)
        thread = threading.Thread(target=second)
        thread.start()
        if db_engine.dialect.name == "postgresql":
            # B read version 1 and now waits on A's row lock in its guarded UPDATE.
            _wait_for_lock_waiter(db_engine)
    thread.join(timeout=60)
    assert not thread.is_alive()

    result = outcome["result"]
    if db_engine.dialect.name == "postgresql":
        assert isinstance(result, ConcurrencyConflict)
        assert result.fields["version"] == 2
    elif expected_version is None:
        assert result == 3  # SQLite: B began only after A committed, and read version 2
    else:
        assert isinstance(result, VersionMismatch)
        assert result.fields["version"] == 2
    events = _assert_contiguous(sessions, case_id)
    with sessions() as session, session.begin():
        assert cases.get_case(session, case_id).data == {"count": len(events) - 1}


def test_instances_publishing_the_same_definition_at_once_store_one_version(
    sessions: sessionmaker[Session],
) -> None:
    """Every instance publishes the bundled workflows at start; starting several together
    stores one version and every one of them is told which (none fails)."""
    barrier = threading.Barrier(THREADS)

    def publish_at_start(_: int) -> PublishResult:
        barrier.wait()
        with sessions() as session, session.begin():
            return publish(session, COUNTER, actor="instance", now=T0)

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(publish_at_start, range(THREADS)))

    assert {r.version for r in results} == {1}
    assert sum(r.created for r in results) == 1
    with sessions() as session, session.begin():
        assert [v for v, _, _ in list_versions(session, "it_counter")] == [1]


def test_concurrent_publishes_of_different_documents_take_distinct_versions(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(VERSIONED_V1)
    barrier = threading.Barrier(2)

    def publish_one(source: str) -> PublishResult | str:
        barrier.wait()
        try:
            with sessions() as session, session.begin():
                return publish(session, source, actor="instance", now=T0)
        except ConcurrencyConflict:
            return "conflict"

    third = VERSIONED_V2.replace("by: 5", "by: 7")
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(publish_one, [VERSIONED_V2, third]))

    stored = [r for r in results if isinstance(r, PublishResult)]
    assert stored, results  # at least one of the two is stored, whatever the other is told
    assert all(r.created for r in stored)
    with sessions() as session, session.begin():
        versions = [v for v, _, _ in list_versions(session, "it_versioned")]
    assert versions == list(range(1, len(stored) + 2))
    assert sorted(r.version for r in stored) == versions[1:]
