"""The tamper-evident history on SQLite and PostgreSQL: an edit made in SQL behind the
engine's back, a deleted event, a re-hashed chain and an edited anchor are each found by
``svcflow audit verify``, which names the first broken event; an untouched history verifies.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from engine.cli import main
from engine.core.history_chain import GENESIS, ChainedEvent, event_hash
from engine.services import audit, cases
from engine.store import case_store, migrate
from tests.conftest import T0
from tests.factories import create_case, create_ticket, fire
from tests.workflows import PLAIN, TICKET

HOUR = timedelta(hours=1)


def svcflow(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--database-url", url, "--actor", "cli:auditor", *args])


@pytest.fixture
def history(
    sessions: sessionmaker[Session], publish_workflow: Callable[..., int]
) -> tuple[int, int]:
    """Two tickets with a few events each (a transition with data, a self-loop, an SLA
    warning), and a plain case: (the first ticket's id, the second's)."""
    publish_workflow(TICKET)
    publish_workflow(PLAIN)
    first = create_ticket(sessions, allowed=False, engineer="Wang", team="CT")
    fire(sessions, first, "permit", now=T0 + HOUR)
    fire(sessions, first, "hold", now=T0 + 2 * HOUR)
    fire(sessions, first, "unhold", now=T0 + 3 * HOUR)
    second = create_ticket(sessions, device_serial="CT-0042", engineer="Li")
    fire(sessions, second, "start", {"note": "parts 1.0 ok", "count": 3.0}, now=T0 + HOUR)
    create_case(sessions, "plain", {})
    return first, second


def _sql(sessions: sessionmaker[Session], statement: str, **params: object) -> None:
    with sessions() as session, session.begin():
        session.execute(text(statement), params)


def test_an_untouched_history_verifies_and_each_event_is_chained(
    db_url: str, sessions: sessionmaker[Session], history: tuple[int, int]
) -> None:
    first, _ = history

    result = svcflow(db_url, "audit", "verify")

    assert result.exit_code == 0, result.output
    assert "history intact: 3 cases" in result.output
    with sessions() as session, session.begin():
        events = case_store.history(session, first)
        rows = session.execute(
            text("SELECT seq, hash FROM case_events WHERE case_id = :c ORDER BY seq"), {"c": first}
        ).all()
        head = cases.get_case(session, first).history_head
    # Recomputed from the documented form, as a hospital would: each hash covers the previous.
    previous = GENESIS
    for event, (seq, stored) in zip(events, rows, strict=True):
        chained = ChainedEvent(**{k: getattr(event, k) for k in ChainedEvent.__annotations__})
        previous = event_hash(chained, previous)
        assert (event.seq, previous) == (seq, stored)
    assert head == previous


def test_editing_an_events_data_in_sql_is_named(
    db_url: str, sessions: sessionmaker[Session], history: tuple[int, int]
) -> None:
    _, second = history
    # The deposit-dispute case: someone changes what was recorded, straight in the database.
    _sql(
        sessions,
        "UPDATE case_events SET payload = :p WHERE case_id = :c AND seq = 2",
        p='{"note": "parts 2.0 ok", "count": 3}',
        c=second,
    )

    result = svcflow(db_url, "audit", "verify")

    assert result.exit_code == 1
    assert f"broken: case {second}, event seq 2: its content" in result.output
    assert "this event was changed" in result.output
    assert "history NOT intact" in result.output
    # The other cases are not blamed.
    assert result.output.count("broken:") == 1


def test_an_edit_that_keeps_the_json_equal_is_not_a_false_alarm(
    db_url: str, sessions: sessionmaker[Session], history: tuple[int, int]
) -> None:
    _, second = history
    # Same values, other key order, spacing and spelling of 3.0: the canonical form is equal.
    _sql(
        sessions,
        "UPDATE case_events SET payload = :p WHERE case_id = :c AND seq = 2",
        p='{ "count": 3, "note": "parts 1.0 ok" }',
        c=second,
    )

    assert svcflow(db_url, "audit", "verify", "--case", str(second)).exit_code == 0


def test_deleting_an_event_is_named(
    db_url: str, sessions: sessionmaker[Session], history: tuple[int, int]
) -> None:
    first, _ = history
    _sql(sessions, "DELETE FROM case_events WHERE case_id = :c AND seq = 2", c=first)

    result = svcflow(db_url, "audit", "verify", "--case", str(first))

    assert result.exit_code == 1
    assert f"case {first}, event seq 2: seq 2 is missing (the history jumps to seq 3)" in (
        result.output
    )
    assert "1 cases" in result.output


def test_deleting_the_latest_event_is_named(
    db_url: str, sessions: sessionmaker[Session], history: tuple[int, int]
) -> None:
    first, _ = history
    _sql(sessions, "DELETE FROM case_events WHERE case_id = :c AND seq = 4", c=first)

    result = svcflow(db_url, "audit", "verify")

    assert result.exit_code == 1
    assert (
        f"case {first}, event seq 4: missing: the case is at version 4 but its history ends "
        "at seq 3" in result.output
    )


def test_a_rewritten_chain_is_caught_by_the_anchor_taken_before(
    db_url: str, sessions: sessionmaker[Session], history: tuple[int, int]
) -> None:
    _, second = history
    anchored = svcflow(db_url, "audit", "anchor")
    assert anchored.exit_code == 0, anchored.output
    assert '"heads_digest"' in anchored.output
    # A careful forger edits the event, re-hashes it and moves the case's head along.
    _sql(sessions, "UPDATE case_events SET actor = 'token:someone' WHERE case_id = :c", c=second)
    with sessions() as session, session.begin():
        previous = GENESIS
        for event in case_store.history(session, second):
            chained = ChainedEvent(**{k: getattr(event, k) for k in ChainedEvent.__annotations__})
            previous = event_hash(chained, previous)
            session.execute(
                text("UPDATE case_events SET hash = :h WHERE case_id = :c AND seq = :s"),
                {"h": previous, "c": second, "s": event.seq},
            )
        session.execute(
            text("UPDATE cases SET history_head = :h WHERE id = :c"), {"h": previous, "c": second}
        )
    assert svcflow(db_url, "audit", "verify", "--case", str(second)).exit_code == 0

    result = svcflow(db_url, "audit", "verify")

    assert result.exit_code == 1
    assert "anchor 1" in result.output
    assert "no longer matches it (heads_digest" in result.output


def test_anchors_keep_verifying_as_history_grows_and_an_edited_anchor_is_caught(
    db_url: str, sessions: sessionmaker[Session], history: tuple[int, int]
) -> None:
    first, _ = history
    assert svcflow(db_url, "audit", "anchor").exit_code == 0
    fire(sessions, first, "close", now=T0 + 5 * HOUR)  # history after the anchor
    assert svcflow(db_url, "audit", "anchor").exit_code == 0
    ok = svcflow(db_url, "audit", "verify")
    assert ok.exit_code == 0, ok.output
    assert "2 anchors" in ok.output

    _sql(sessions, "UPDATE history_anchors SET events = events - 1 WHERE id = 1")
    result = svcflow(db_url, "audit", "verify")

    assert result.exit_code == 1
    assert "anchor 1" in result.output
    assert "the anchor row was edited" in result.output


def test_an_anchor_covers_only_committed_events_and_is_listed(
    sessions: sessionmaker[Session], history: tuple[int, int], db_url: str
) -> None:
    with sessions() as session, session.begin():
        through = audit.anchor_point(session)
        anchor = audit.take_anchor(session, through_event_id=through, now=T0, actor="test")
        count = session.execute(text("SELECT count(*) FROM case_events")).scalar_one()
    assert (anchor.events, anchor.cases) == (count, 3)

    listed = svcflow(db_url, "audit", "anchors")
    assert listed.exit_code == 0, listed.output
    assert anchor.hash in listed.output


def test_verify_of_an_unknown_case_says_so(db_url: str, history: tuple[int, int]) -> None:
    result = svcflow(db_url, "audit", "verify", "--case", "999")

    assert result.exit_code == 1
    assert "No case with id 999" in result.output


def test_the_migration_chains_existing_histories_as_the_engine_does(
    db_url: str, db_engine: Engine, sessions: sessionmaker[Session], history: tuple[int, int]
) -> None:
    _, second = history
    # Values whose spelling databases change: a whole float, a big one, text beyond ASCII.
    fire(sessions, second, "close", {"kg": 2.0, "big": 1e300, "who": "王工"}, now=T0 + 2 * HOUR)
    before = _hashes(sessions)

    migrate.downgrade(db_engine, "0011_versions")  # as a database from before the chain was
    migrate.upgrade(db_engine)

    assert _hashes(sessions) == before
    result = svcflow(db_url, "audit", "verify")
    assert result.exit_code == 0, result.output


def _hashes(sessions: sessionmaker[Session]) -> list[tuple[object, ...]]:
    with sessions() as session, session.begin():
        events = session.execute(text("SELECT case_id, seq, hash FROM case_events ORDER BY id"))
        heads = session.execute(text("SELECT id, history_head FROM cases ORDER BY id"))
        return [tuple(r) for r in events] + [tuple(r) for r in heads]
