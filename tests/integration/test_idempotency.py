"""Idempotency keys: a retry of the same request returns its first result and changes nothing."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import ConcurrencyConflict, IdempotencyKeyReused, PayloadInvalid
from engine.services import cases
from engine.store.models import Case, CaseEvent
from tests.conftest import ADMIN, T0
from tests.factories import create_case, fire
from tests.workflows import COUNTER, PLAIN

LATER = T0.replace(hour=5)


@pytest.fixture
def counter_case(sessions: sessionmaker[Session], publish_workflow) -> int:
    publish_workflow(COUNTER)
    return create_case(sessions, "it_counter", {"count": 0}).case.id


def test_retry_returns_first_result_and_changes_nothing(
    sessions: sessionmaker[Session], counter_case: int, snapshot
) -> None:
    first = fire(sessions, counter_case, "ping", idempotency_key="req-1")
    assert not first.replayed
    after_first = snapshot(counter_case)

    retry = fire(sessions, counter_case, "ping", idempotency_key="req-1")

    assert retry.replayed
    assert retry.event == first.event
    assert retry.case == first.case
    assert snapshot(counter_case) == after_first
    assert [e.seq for e in after_first.history] == [1, 2]
    assert after_first.history[-1].idempotency_key == "req-1"


def test_retry_after_the_case_moved_on_still_answers_the_first_request(
    sessions: sessionmaker[Session], counter_case: int, snapshot
) -> None:
    """A client whose response was lost retries with the version it saw; it gets its answer."""
    first = fire(sessions, counter_case, "ping", idempotency_key="req-1", expected_version=1)
    fire(sessions, counter_case, "ping")
    before = snapshot(counter_case)

    retry = fire(sessions, counter_case, "ping", idempotency_key="req-1", expected_version=1)

    assert retry.replayed
    assert retry.event.seq == first.event.seq == 2
    assert retry.case.version == 3  # the case as it is now
    assert snapshot(counter_case) == before


def test_same_key_with_another_request_is_refused(
    sessions: sessionmaker[Session], counter_case: int, snapshot
) -> None:
    fire(sessions, counter_case, "ping", {"n": 1}, idempotency_key="req-1")
    before = snapshot(counter_case)

    with pytest.raises(IdempotencyKeyReused) as info:
        fire(sessions, counter_case, "ping", {"n": 2}, idempotency_key="req-1")
    assert info.value.fields["idempotency_key"] == "req-1"
    with pytest.raises(IdempotencyKeyReused):
        fire(sessions, counter_case, "divide", {"n": 1}, idempotency_key="req-1")

    assert snapshot(counter_case) == before


def test_keys_are_scoped_per_case(
    sessions: sessionmaker[Session], counter_case: int, snapshot
) -> None:
    other = create_case(sessions, "it_counter", {"count": 7}).case.id

    on_first = fire(sessions, counter_case, "ping", {"n": 1}, idempotency_key="shared")
    # Same key, another request, another case: independent, not a reuse.
    on_other = fire(sessions, other, "ping", {"n": 2}, idempotency_key="shared")

    assert not on_other.replayed
    assert on_other.case.id == other
    assert on_other.case.data == {"count": 8}
    assert on_first.case.data == {"count": 1}
    assert len(snapshot(other).history) == 2
    assert len(snapshot(counter_case).history) == 2
    # Each case answers a retry with its own first result.
    assert fire(sessions, other, "ping", {"n": 2}, idempotency_key="shared").event == on_other.event
    assert fire(sessions, counter_case, "ping", {"n": 1}, idempotency_key="shared").replayed


def test_failed_request_does_not_use_up_its_key(
    sessions: sessionmaker[Session], counter_case: int, snapshot
) -> None:
    for _ in range(3):
        fire(sessions, counter_case, "ping")
    fire(sessions, counter_case, "submit")
    before = snapshot(counter_case)

    with pytest.raises(PayloadInvalid):
        fire(sessions, counter_case, "approve", {}, idempotency_key="req-9")
    assert snapshot(counter_case) == before

    done = fire(sessions, counter_case, "approve", {"note": "ok"}, idempotency_key="req-9")
    assert not done.replayed
    assert done.case.state == "done"
    again = fire(sessions, counter_case, "approve", {"note": "ok"}, idempotency_key="req-9")
    assert again.replayed
    assert again.event == done.event


def test_idempotent_create(sessions: sessionmaker[Session], publish_workflow, row_count) -> None:
    publish_workflow(COUNTER)
    publish_workflow(PLAIN)
    create = partial(create_case, sessions, idempotency_key="new-1")  # one key throughout

    first = create("it_counter", {"count": 1}, business_key="BK-1")
    retry = create("it_counter", {"count": 1}, business_key="BK-1")

    assert retry.replayed
    assert retry.case == first.case
    assert retry.event == first.event
    assert row_count(Case) == 1
    assert row_count(CaseEvent) == 1

    with pytest.raises(IdempotencyKeyReused):
        create("it_counter", {"count": 2}, business_key="BK-1")
    with pytest.raises(IdempotencyKeyReused):
        create("it_counter", {"count": 1}, business_key="BK-2")
    assert row_count(Case) == 1

    # Create keys are scoped per definition.
    other = create("plain", {})
    assert not other.replayed
    assert other.case.id != first.case.id
    assert row_count(Case) == 2


def test_concurrent_creates_with_one_key_make_one_case(
    sessions: sessionmaker[Session], publish_workflow, row_count
) -> None:
    """Two retries of one create racing each other: one case; the other gets its answer or a
    conflict it can retry, never a raw database error."""
    publish_workflow(COUNTER)
    threads = 6
    barrier = threading.Barrier(threads)

    def create(_: int) -> int | str:
        barrier.wait()
        try:
            with sessions() as session, session.begin():
                return cases.create_case(
                    session,
                    "it_counter",
                    {"count": 0},
                    actor=ADMIN,
                    now=T0,
                    idempotency_key="same",
                ).case.id
        except ConcurrencyConflict:
            return "conflict"

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(create, range(threads)))

    ids = {r for r in results if r != "conflict"}
    assert len(ids) == 1
    assert row_count(Case) == 1
    # A retry after the race is answered from the record.
    with sessions() as session, session.begin():
        retry = cases.create_case(
            session, "it_counter", {"count": 0}, actor=ADMIN, now=LATER, idempotency_key="same"
        )
    assert retry.replayed
    assert retry.case.id in ids
