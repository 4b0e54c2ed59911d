"""The event feed's outbox: every committed case event gets a global position in its own
transaction, positions become visible in order, and a reader following the feed by cursor
never skips an event that commits later, even with writers racing (engine/store/event_feed.py).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from engine.runtime.feed import FeedWaiter, read_page, read_waiting
from engine.services import cases
from engine.store import event_feed
from engine.store.models import CaseEvent
from tests.conftest import ADMIN, DATABASES, T0
from tests.factories import create_case, fire
from tests.workflows import COUNTER

PG_ONLY = pytest.mark.parametrize(
    "db_url", [d for d in DATABASES if d == "postgresql"], indirect=True
)


def _positions(sessions: sessionmaker[Session]) -> list[tuple[int, int, int | None]]:
    with sessions() as session:
        rows = session.execute(
            select(CaseEvent.case_id, CaseEvent.seq, CaseEvent.position).order_by(CaseEvent.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def _read_all(sessions: sessionmaker[Session], after: int = 0, **filters: object) -> list[int]:
    seen: list[int] = []
    while True:
        page = read_page(sessions, after, limit=3, **filters)  # type: ignore[arg-type]
        seen += [e.position for e in page.items]
        if page.next == after:
            return seen
        after = page.next


def test_every_committed_event_gets_the_next_position(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(COUNTER)
    first = create_case(sessions, "it_counter", {"count": 0}).case.id
    fire(sessions, first, "ping")
    second = create_case(sessions, "it_counter", {"count": 0}).case.id
    with sessions() as session, session.begin():  # two events in one transaction
        cases.fire(session, first, "ping", actor=ADMIN, now=T0)
        cases.cancel_case(session, second, actor=ADMIN, now=T0, reason="duplicate")

    assert _positions(sessions) == [
        (first, 1, 1),
        (first, 2, 2),
        (second, 1, 3),
        (first, 3, 4),
        (second, 2, 5),
    ]
    page = read_page(sessions, 0, limit=10)
    assert [(e.case_id, e.seq, e.event_type) for e in page.items] == [
        (first, 1, "created"),
        (first, 2, "transition"),
        (second, 1, "created"),
        (first, 3, "transition"),
        (second, 2, "cancelled"),
    ]
    assert page.items[0].definition == "it_counter"
    assert page.items[3].changes == {"count": 2}
    assert page.next == 5


def test_a_rolled_back_transaction_takes_no_position(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(COUNTER)
    case_id = create_case(sessions, "it_counter", {"count": 0}).case.id
    with sessions() as session:
        session.begin()
        cases.fire(session, case_id, "ping", actor=ADMIN, now=T0)
        session.rollback()
    fire(sessions, case_id, "ping")
    assert _positions(sessions) == [(case_id, 1, 1), (case_id, 2, 2)]


def test_a_rolled_back_savepoint_leaves_a_gap_the_cursor_steps_over(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(COUNTER)
    case_id = create_case(sessions, "it_counter", {"count": 0}).case.id
    with sessions() as session, session.begin():
        savepoint = session.begin_nested()
        cases.fire(session, case_id, "ping", actor=ADMIN, now=T0)
        savepoint.rollback()
        cases.fire(session, case_id, "ping", actor=ADMIN, now=T0)
    positions = [p for _, _, p in _positions(sessions)]
    assert positions[0] == 1 and positions[-1] in (2, 3)  # increasing, maybe with a gap
    assert _read_all(sessions) == positions


def test_filters_and_a_cursor_that_passes_what_they_exclude(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(COUNTER)
    case_id = create_case(sessions, "it_counter", {"count": 0}).case.id
    for _ in range(4):
        fire(sessions, case_id, "ping")
    page = read_page(sessions, 0, limit=10, types=["created"])
    assert [e.seq for e in page.items] == [1]
    assert page.next == 5  # the unmatched transitions are not scanned again
    assert read_page(sessions, 0, limit=10, definition="nothing_like_it").items == []
    assert _read_all(sessions, definition="it_counter") == [1, 2, 3, 4, 5]
    # A page full to the limit stops at its last item, not at the head.
    assert read_page(sessions, 0, limit=2).next == 2


def test_history_after_seq_returns_only_newer_events(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(COUNTER)
    case_id = create_case(sessions, "it_counter", {"count": 0}).case.id
    fire(sessions, case_id, "ping")
    fire(sessions, case_id, "ping")
    with sessions() as session:
        assert [e.seq for e in cases.history(session, case_id, after_seq=1)] == [2, 3]
        assert cases.history(session, case_id, after_seq=3) == []


def test_a_reader_racing_writers_sees_every_event_once_in_order(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    """Writers on many cases commit while a reader follows the feed by cursor: the reader
    must end with every event exactly once, in increasing positions."""
    publish_workflow(COUNTER)
    case_ids = [create_case(sessions, "it_counter", {"count": 0}).case.id for _ in range(6)]
    done = threading.Event()
    seen: list[int] = []

    def follow() -> None:
        after = 0
        while True:
            finished = done.is_set()  # read before the page: the last page is then complete
            page = read_page(sessions, after, limit=25)
            seen.extend(e.position for e in page.items)
            after = page.next
            if finished and not page.items:
                return

    def write(case_id: int) -> None:
        for _ in range(15):
            fire(sessions, case_id, "ping")

    reader = threading.Thread(target=follow)
    reader.start()
    with ThreadPoolExecutor(len(case_ids)) as pool:
        list(pool.map(write, case_ids))
    done.set()
    reader.join(timeout=60)
    committed = sorted(p for _, _, p in _positions(sessions) if p is not None)
    assert len(committed) == 6 * 16
    assert seen == committed


def _wait_for_lock_waiter(engine: Engine) -> None:
    """Return once another PostgreSQL backend is blocked on a lock (bounded poll)."""
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
    raise AssertionError("the second writer never waited for the first one's positions")


@PG_ONLY
def test_a_later_position_cannot_commit_before_an_earlier_one(
    sessions: sessionmaker[Session], db_engine: Engine, publish_workflow
) -> None:
    """The case a sequence gets wrong: transaction A has taken position N but not committed;
    B, which commits afterwards, must not become visible at N+1 first, or a reader would move
    its cursor past N and never see A's event."""
    publish_workflow(COUNTER)
    slow = create_case(sessions, "it_counter", {"count": 0}).case.id
    fast = create_case(sessions, "it_counter", {"count": 0}).case.id
    head = 2
    a = sessions()
    a.begin()
    cases.fire(a, slow, "ping", actor=ADMIN, now=T0)
    a.dispatch.before_commit(a)  # A takes its position now, as its commit would
    b = threading.Thread(target=fire, args=(sessions, fast, "ping"))
    b.start()
    _wait_for_lock_waiter(db_engine)
    page = read_page(sessions, head, limit=10)
    assert page.items == [] and page.next == head  # nothing visible yet, cursor held back
    a.commit()
    a.close()
    b.join(timeout=30)
    assert [(e.case_id, e.position) for e in read_page(sessions, head, limit=10).items] == [
        (slow, 3),
        (fast, 4),
    ]


def test_a_long_poll_returns_when_an_event_commits(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    """Without Redis the waiter polls: the wait ends at the first poll that finds the event,
    well before the wait runs out."""
    publish_workflow(COUNTER)
    case_id = create_case(sessions, "it_counter", {"count": 0}).case.id
    waiter = FeedWaiter(None, poll_seconds=0.05)
    writer = threading.Timer(0.1, fire, args=(sessions, case_id, "ping"))
    started = time.monotonic()
    writer.start()
    page = read_waiting(sessions, waiter, 1, limit=10, wait_seconds=10)
    elapsed = time.monotonic() - started
    writer.join()
    assert [e.seq for e in page.items] == [2]
    assert elapsed < 5


def test_a_long_poll_with_nothing_new_returns_after_its_wait(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(COUNTER)
    create_case(sessions, "it_counter", {"count": 0})
    clock = iter([0.0, 0.0, 0.4, 0.8, 1.2])  # a fake monotonic clock: the wait is skipped
    waiter = FeedWaiter(None, poll_seconds=0.001, monotonic=lambda: next(clock))
    page = read_waiting(sessions, waiter, 1, limit=10, wait_seconds=1.0)
    assert page.items == [] and page.next == 1


def test_the_feed_head_counts_every_position_handed_out(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    publish_workflow(COUNTER)
    case_id = create_case(sessions, "it_counter", {"count": 0}).case.id
    fire(sessions, case_id, "ping")
    with sessions() as session:
        assert event_feed.head_position(session.connection()) == 2


@PG_ONLY
def test_positions_are_taken_at_the_commit_not_when_a_savepoint_is_released(
    sessions: sessionmaker[Session], publish_workflow
) -> None:
    """Taking them at the savepoint would hold the counter's lock, and so every other
    committing writer, for the rest of the transaction."""
    publish_workflow(COUNTER)
    case_id = create_case(sessions, "it_counter", {"count": 0}).case.id
    with sessions() as session, session.begin():
        with session.begin_nested():
            cases.fire(session, case_id, "ping", actor=ADMIN, now=T0)
        unstamped = session.execute(
            select(CaseEvent.position).where(CaseEvent.case_id == case_id, CaseEvent.seq == 2)
        ).scalar_one()
        assert unstamped is None
    assert _positions(sessions) == [(case_id, 1, 1), (case_id, 2, 2)]
